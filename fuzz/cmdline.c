/*
 * The memory, CPU and NUMA options from fuzzer bytes split into argv (NUL-separated, fuzz.h):
 * parse, validate against the unit tests' made-up host, lay out, describe the NUMA topology.
 * A refusal must be one line naming the option; a configuration that validation accepts must
 * give a layout that keeps every promise of layout.h, a NUMA description that agrees with it,
 * an E820 map of exactly its boot RAM and --print-layout JSON that json-c can read back.
 */
#include <json-c/json.h>

#include "fuzz/fuzz.h"
#include "memory/layout.h"
#include "memory/numa.h"
#include "tests/config_checks.h"

/* "--option: reason", or "'ARG': reason" for an argument that is no option. */
static void check_refusal(const char *err)
{
	FUZZ_CHECK(!strncmp(err, "--", 2) || err[0] == '\'', "refusal names no option: %s", err);
	/* One harmless line, whatever the argument held: control characters come escaped. */
	for (const char *c = err; *c; c++)
		FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "control character 0x%02x in "
			   "the refusal: %s", (unsigned char)*c, err);
}

static bool overlaps(uint64_t a, uint64_t asize, uint64_t b, uint64_t bsize)
{
	return a < b + bsize && b < a + asize;
}

/* The RAM ranges of zone zi tile its boot size in order, from offset 0. */
static void check_zone(const struct vm_config *cfg, const struct layout *l, int zi)
{
	const struct zone_config *z = &cfg->zones[zi];
	uint64_t off = 0;
	int nvirtio = 0;

	FUZZ_CHECK(z->guest_node >= -1 && z->guest_node < cfg->nnuma, "zone %d node %d", zi,
		   z->guest_node);
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		if (r->zone != zi)
			continue;
		FUZZ_CHECK(r->guest_node == numa__zone_node(cfg, zi), "range %d node", i);
		if (r->kind == RANGE_VIRTIO_MEM) {
			nvirtio++;
			FUZZ_CHECK(r->size == z->hotplug_size && r->zone_offset == z->size,
				   "virtio-mem range %d of zone %d", i, zi);
			continue;
		}
		FUZZ_CHECK(r->kind == RANGE_RAM && r->zone_offset == off, "range %d offset", i);
		off += r->size;
	}
	FUZZ_CHECK(off == z->size, "zone %d: %llu of %llu bytes laid out", zi,
		   (unsigned long long)off, (unsigned long long)z->size);
	FUZZ_CHECK(nvirtio == (z->hotplug_size != 0), "zone %d: %d virtio-mem ranges", zi, nvirtio);
}

static void check_layout(const struct vm_config *cfg, const struct layout *l)
{
	uint64_t ram = 0, ram_end = 0;
	int nacpi = 0;
	bool acpi = cfg->memory.hotplug_size && cfg->memory.hotplug_method == HOTPLUG_ACPI;

	FUZZ_CHECK(l->nranges > 0 && l->nranges <= MAX_RANGES, "%d ranges", l->nranges);
	FUZZ_CHECK(l->ranges[0].gpa == 0 && l->ranges[0].kind == RANGE_RAM &&
		   l->ranges[0].size >= LAYOUT_MIN_BOOT_RAM, "no boot RAM at 0");
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		FUZZ_CHECK(r->size && IS_ALIGNED(r->gpa | r->size, LAYOUT_PAGE_ALIGN),
			   "range %d: 0x%llx+0x%llx", i, (unsigned long long)r->gpa,
			   (unsigned long long)r->size);
		FUZZ_CHECK(r->size <= LAYOUT_MAX_GPA && r->gpa <= LAYOUT_MAX_GPA - r->size,
			   "range %d beyond the limit", i);
		FUZZ_CHECK(!overlaps(r->gpa, r->size, MMIO32_START, MMIO32_END - MMIO32_START),
			   "range %d in the MMIO hole", i);
		if (i)
			FUZZ_CHECK(l->ranges[i - 1].gpa + l->ranges[i - 1].size <= r->gpa,
				   "ranges %d and %d overlap or are out of order", i - 1, i);
		if (r->kind == RANGE_RAM) {
			ram += r->size;
			ram_end = r->gpa + r->size;
			FUZZ_CHECK(r->zone >= 0 && r->zone < cfg->nzones, "range %d zone", i);
			continue;
		}
		FUZZ_CHECK(r->gpa >= RAM_64BIT_START && IS_ALIGNED(r->gpa, HOTPLUG_ALIGN) &&
			   r->gpa >= l->ram_end, "hotplug range %d at 0x%llx", i,
			   (unsigned long long)r->gpa);
		if (r->kind == RANGE_ACPI_HOTPLUG) {
			nacpi++;
			FUZZ_CHECK(r->zone == -1 && r->size == cfg->memory.hotplug_size &&
				   r->guest_node == numa__default_node(cfg), "ACPI hotplug range");
		} else {
			FUZZ_CHECK(r->kind == RANGE_VIRTIO_MEM && r->zone >= 0 &&
				   r->zone < cfg->nzones, "range %d kind %d", i, r->kind);
		}
	}
	FUZZ_CHECK(nacpi == acpi, "%d ACPI hotplug ranges", nacpi);
	FUZZ_CHECK(ram == l->boot_ram && ram_end == l->ram_end, "boot_ram or ram_end");
	FUZZ_CHECK(l->end == l->ranges[l->nranges - 1].gpa + l->ranges[l->nranges - 1].size,
		   "end 0x%llx", (unsigned long long)l->end);
	for (int zi = 0; zi < cfg->nzones; zi++)
		check_zone(cfg, l, zi);
}

/* Usable E820 RAM is the boot RAM less what falls in the legacy window. */
static void check_e820(const struct layout *l)
{
	struct e820_entry e[MAX_RANGES * 3];
	int n = layout__e820(l, e, (int)ARRAY_SIZE(e));
	uint64_t usable = 0, legacy = 0;

	FUZZ_CHECK(n > 0, "layout__e820: %d", n);
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(e[i].size && (e[i].type == E820_RAM || e[i].type == E820_RESERVED),
			   "e820 entry %d", i);
		if (i)
			FUZZ_CHECK(e[i - 1].addr + e[i - 1].size <= e[i].addr, "e820 %d overlaps", i);
		if (e[i].type == E820_RAM)
			usable += e[i].size;
		else
			legacy += e[i].size;
	}
	FUZZ_CHECK(usable + legacy == l->boot_ram, "e820 covers %llu of %llu bytes",
		   (unsigned long long)(usable + legacy), (unsigned long long)l->boot_ram);
	FUZZ_CHECK(legacy == HIGH_RAM_START - LOW_RAM_END, "legacy window %llu",
		   (unsigned long long)legacy);
}

static uint64_t hotplug_size(const struct layout *l)
{
	uint64_t size = 0;

	for (int i = 0; i < l->nranges; i++)
		if (l->ranges[i].kind != RANGE_RAM)
			size += l->ranges[i].size;
	return size;
}

static void check_numa(const struct vm_config *cfg, const struct layout *l)
{
	static struct numa n;
	uint64_t ram = 0, hotplug = 0;
	char err[256];

	FUZZ_CHECK(!numa__build(&n, cfg, l, err, sizeof(err)), "numa__build: %s", err);
	FUZZ_CHECK(n.nnodes == cfg->nnuma && n.nboot == cfg->boot_cpus &&
		   n.nvcpus == numa__vcpu_count(cfg) && n.nvcpus >= n.nboot, "counts");
	for (unsigned c = 0; c < n.nvcpus; c++)
		FUZZ_CHECK(n.apic_id[c] == c && (n.nnodes ? n.vcpu_node[c] >= 0 &&
			   n.vcpu_node[c] < n.nnodes : n.vcpu_node[c] == -1), "vCPU %u", c);
	for (int i = 0; i < n.nnodes; i++) {
		ram += n.nodes[i].ram;
		hotplug += n.nodes[i].hotplug;
		FUZZ_CHECK(n.distance[i][i] == NUMA_LOCAL_DISTANCE, "distance %d-%d", i, i);
		for (int j = 0; j < n.nnodes; j++)
			FUZZ_CHECK(n.distance[i][j] >= NUMA_LOCAL_DISTANCE, "distance %d-%d: %u", i,
				   j, n.distance[i][j]);
	}
	if (n.nnodes)
		FUZZ_CHECK(ram == l->boot_ram && hotplug == hotplug_size(l), "nodes hold %llu RAM "
			   "and %llu hotplug", (unsigned long long)ram, (unsigned long long)hotplug);
}

/* --print-layout's JSON reads back with every range. */
static void check_json(const struct vm_config *cfg, const struct layout *l)
{
	struct json_object *o, *ranges;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	FUZZ_CHECK(f, "open_memstream");
	layout__print_json(l, cfg, f);
	FUZZ_CHECK(!fclose(f), "fclose");
	o = json_tokener_parse(buf);
	FUZZ_CHECK(o && json_object_object_get_ex(o, "ranges", &ranges) &&
		   json_object_array_length(ranges) == (size_t)l->nranges, "JSON: %s", buf);
	json_object_put(o);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_config cfg;
	static struct layout l;
	struct host_info host = test_host();
	char err[512] = "";
	int argc;
	char **argv = fuzz__argv(data, size, &argc);

	if (config__parse(&cfg, argc, argv, err, sizeof(err)) < 0) {
		check_refusal(err);
		free(argv);
		return 0;
	}
	free(argv);		/* the configuration keeps copies of what it needs */
	if (config__validate(&cfg, &host, err, sizeof(err)) < 0) {
		check_refusal(err);
	} else if (layout__build(&l, &cfg, err, sizeof(err)) < 0) {
		check_refusal(err);
	} else {
		FUZZ_CHECK(cfg.boot_cpus >= 1 && cfg.boot_cpus <= cfg.max_cpus &&
			   cfg.max_cpus <= MAX_VCPUS, "cpus boot=%u max=%u", cfg.boot_cpus,
			   cfg.max_cpus);
		check_layout(&cfg, &l);
		check_e820(&l);
		check_numa(&cfg, &l);
		check_json(&cfg, &l);
	}
	config__free(&cfg);
	return 0;
}
