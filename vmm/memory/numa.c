/*
 * The NUMA description of the guest, computed in one place from the validated configuration and
 * the layout (numa.h). The rules are those of DEVELOPERS.md: node ids are the guest_numa_ids
 * 0..N-1, a vCPU or zone in no --numa belongs to the lowest id, a distance missing in one
 * direction takes the other's, else 20, the diagonal is 10, and the APIC id of vCPU n is n.
 */
#include <inttypes.h>
#include <string.h>

#include "memory/numa.h"
#include "util.h"

unsigned numa__vcpu_count(const struct vm_config *cfg)
{
	unsigned n = cfg->max_cpus > cfg->boot_cpus ? cfg->max_cpus : cfg->boot_cpus;

	return n > MAX_VCPUS ? MAX_VCPUS : n;
}

/* Unvalidated configurations reach the rule functions: never read past cfg->numa[]. */
static int configured_nodes(const struct vm_config *cfg)
{
	return cfg->nnuma < 0 ? 0 : cfg->nnuma > MAX_NUMA_NODES ? MAX_NUMA_NODES : cfg->nnuma;
}

int numa__default_node(const struct vm_config *cfg)
{
	int first = -1;

	for (int i = 0; i < configured_nodes(cfg); i++)
		if (first < 0 || cfg->numa[i].guest_numa_id < cfg->numa[first].guest_numa_id)
			first = i;
	return first;
}

/*
 * A zone left without a node while NUMA is configured would be memory the SRAT does not cover,
 * and Linux then drops NUMA altogether ("SRAT: PXMs only cover ..."): it joins the default node.
 */
int numa__zone_node(const struct vm_config *cfg, int zone)
{
	int node = cfg->zones[zone].guest_node;

	if (configured_nodes(cfg) == 0)
		return -1;
	if (node >= 0 && node < configured_nodes(cfg))
		return node;
	return numa__default_node(cfg);
}

static int node_index(const struct vm_config *cfg, uint32_t id)
{
	for (int i = 0; i < configured_nodes(cfg); i++)
		if (cfg->numa[i].guest_numa_id == id)
			return i;
	return -1;
}

/* Every duplicate before any id out of range: the message a bad --numa gets stays what it was. */
int numa__check_ids(const struct vm_config *cfg, char *err, size_t errlen)
{
	if (cfg->nnuma < 0 || cfg->nnuma > MAX_NUMA_NODES)
		return error(err, errlen, "--numa: at most %d nodes", MAX_NUMA_NODES);
	for (int i = 0; i < cfg->nnuma; i++)
		if (node_index(cfg, cfg->numa[i].guest_numa_id) != i)
			return error(err, errlen, "--numa: duplicate guest_numa_id %" PRIu32,
				     cfg->numa[i].guest_numa_id);
	for (int i = 0; i < cfg->nnuma; i++)
		if (cfg->numa[i].guest_numa_id >= (uint32_t)cfg->nnuma)
			return error(err, errlen, "--numa: guest_numa_id %" PRIu32 " out of range: "
				     "with %d nodes the ids are 0-%d", cfg->numa[i].guest_numa_id,
				     cfg->nnuma, cfg->nnuma - 1);
	return 0;
}

static bool given_distance(const struct numa_config *from, uint32_t dest, uint8_t *out)
{
	for (int k = 0; k < from->ndistances && k < MAX_NUMA_NODES; k++)
		if (from->distances[k].dest == dest) {
			*out = from->distances[k].distance;
			return true;
		}
	return false;
}

/* From node id to node id, once n->nodes[] maps ids to --numa entries. */
static uint8_t distance(const struct vm_config *cfg, const struct numa *n, int from, int to)
{
	const struct numa_config *a = &cfg->numa[n->nodes[from].config];
	const struct numa_config *b = &cfg->numa[n->nodes[to].config];
	uint8_t d;

	if (from == to)
		return NUMA_LOCAL_DISTANCE;
	if (given_distance(a, (uint32_t)to, &d) || given_distance(b, (uint32_t)from, &d))
		return d;
	return NUMA_DEFAULT_DISTANCE;
}

/* The first --numa, in command-line order, that lists the vCPU, else the default node. */
static int vcpu_node(const struct vm_config *cfg, unsigned cpu, int def)
{
	for (int i = 0; i < cfg->nnuma; i++)
		if (cfg->numa[i].cpus[cpu / 8] & (1u << (cpu % 8)))
			return i;
	return def;
}

/* Node id of an index into cfg->numa: ids are 0..N-1 by now. */
static int node_id(const struct vm_config *cfg, int index)
{
	return index < 0 ? -1 : (int)cfg->numa[index].guest_numa_id;
}

static void build_ranges(struct numa *n, const struct vm_config *cfg, const struct layout *l)
{
	int def = numa__default_node(cfg);

	n->nranges = l->nranges;
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];
		int index = r->guest_node >= 0 && r->guest_node < cfg->nnuma ? r->guest_node : def;
		int node = node_id(cfg, index);

		n->range_node[i] = node;
		if (node < 0)
			continue;
		if (r->kind == RANGE_RAM)
			n->nodes[node].ram += r->size;
		else
			n->nodes[node].hotplug += r->size;
	}
}

/*
 * Its own failures are not the user's to read (validation refused all of them first, with
 * "--option:" lines): they say what the tables cannot describe.
 */
int numa__build(struct numa *n, const struct vm_config *cfg, const struct layout *l, char *err,
		size_t errlen)
{
	int def;

	memset(n, 0, sizeof(*n));
	if (cfg->nnuma < 0 || cfg->nnuma > MAX_NUMA_NODES)
		return error(err, errlen, "%d NUMA nodes, at most %d", cfg->nnuma, MAX_NUMA_NODES);
	if (cfg->nzones < 0 || cfg->nzones > MAX_ZONES)
		return error(err, errlen, "%d memory zones, at most %d", cfg->nzones, MAX_ZONES);
	if (l && (l->nranges < 0 || l->nranges > MAX_RANGES))
		return error(err, errlen, "%d memory ranges, at most %d", l->nranges, MAX_RANGES);
	for (int id = 0; id < cfg->nnuma; id++) {
		n->nodes[id].config = node_index(cfg, (uint32_t)id);
		/* N nodes cover 0..N-1 exactly when none is missing: no duplicate, none beyond */
		if (n->nodes[id].config < 0)
			return error(err, errlen, "no guest_numa_id %d: the SLIT needs ids 0..%d", id,
				     cfg->nnuma - 1);
	}
	n->nnodes = cfg->nnuma;
	for (int from = 0; from < n->nnodes; from++)
		for (int to = 0; to < n->nnodes; to++)
			n->distance[from][to] = distance(cfg, n, from, to);

	def = numa__default_node(cfg);
	n->nvcpus = numa__vcpu_count(cfg);
	n->nboot = cfg->boot_cpus < n->nvcpus ? cfg->boot_cpus : n->nvcpus;
	for (unsigned cpu = 0; cpu < MAX_VCPUS; cpu++) {
		int node = cpu < n->nvcpus ? node_id(cfg, vcpu_node(cfg, cpu, def)) : -1;

		n->apic_id[cpu] = cpu < n->nvcpus ? numa__apic_id(cpu) : 0;
		n->vcpu_node[cpu] = node;
		if (node >= 0)
			n->nodes[node].nvcpus++;
	}

	n->nzones = cfg->nzones;
	for (int z = 0; z < cfg->nzones; z++)
		n->zone_node[z] = node_id(cfg, numa__zone_node(cfg, z));
	if (l)
		build_ranges(n, cfg, l);
	return 0;
}
