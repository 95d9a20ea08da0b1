/*
 * The NUMA description the guest is given (DEVELOPERS.md, "NUMA description given to the guest"):
 * the nodes, the node of every possible vCPU and of every layout range, the distances between
 * nodes with the defaults applied, and the APIC id of every vCPU.
 *
 * numa__build computes it from a validated configuration and its layout; the MADT, SRAT, SLIT
 * and FDT only read the result, so the two descriptions the guest gets cannot disagree.
 * Validation and layout__build run before the description can exist (the layout is one of its
 * inputs), so the few rules they need are also offered as functions of the configuration, and
 * numa__build applies the same functions; only the ids are checked twice, worded for the user by
 * numa__check_ids and for the tables by numa__build. The functions work on any --numa, validated
 * or not: the unit tests hand-build configurations.
 */
#ifndef MEMVISOR_MEMORY_NUMA_H
#define MEMVISOR_MEMORY_NUMA_H

#include <stddef.h>
#include <stdint.h>

#include "memory/config.h"
#include "memory/layout.h"

#define NUMA_LOCAL_DISTANCE	10	/* the SLIT's diagonal, whatever was given */
#define NUMA_DEFAULT_DISTANCE	20	/* given in neither direction */

struct numa_node {
	int config;		/* index into vm_config.numa */
	unsigned nvcpus;	/* possible vCPUs in the node, boot or not */
	uint64_t ram;		/* boot RAM of its layout ranges */
	uint64_t hotplug;	/* its hotplug areas (ACPI hotplug area, virtio-mem regions) */
};

/*
 * Node ids are guest_numa_ids, which numa__build requires to be 0..nnodes-1: they index nodes[]
 * and distance[] directly, as they index the SLIT and the FDT distance map.
 */
struct numa {
	int nnodes;				/* 0 without --numa: no SRAT, SLIT, numa-node-id */
	struct numa_node nodes[MAX_NUMA_NODES];
	uint8_t distance[MAX_NUMA_NODES][MAX_NUMA_NODES];	/* [from][to] */
	unsigned nvcpus;			/* possible vCPUs: boot, then hotpluggable to max */
	unsigned nboot;				/* vCPUs 0..nboot-1 run at boot */
	uint32_t apic_id[MAX_VCPUS];		/* of vCPUs 0..nvcpus-1 */
	int vcpu_node[MAX_VCPUS];		/* of vCPUs 0..nvcpus-1; -1 without --numa */
	int nzones;				/* vm_config.nzones */
	int zone_node[MAX_ZONES];		/* -1 without --numa */
	int nranges;				/* layout.nranges; 0 when built without one */
	int range_node[MAX_RANGES];		/* of layout.ranges[i]; -1 without --numa */
};

/*
 * The APIC id of vCPU n is n. KVM_CREATE_VCPU's id and CPUID take it from here (as
 * acpi__apic_id), the MADT, SRAT and FDT from numa.apic_id. From 0xff on only x2APIC works.
 */
static inline uint32_t numa__apic_id(unsigned cpu) { return cpu; }

/* Possible vCPUs: max(boot, max), at most MAX_VCPUS. The DSDT lists as many processors. */
unsigned numa__vcpu_count(const struct vm_config *cfg);

/*
 * Index into cfg->numa of the node with the lowest guest_numa_id, -1 without --numa: it takes
 * the vCPUs and zones listed in no --numa, and the ACPI hotplug area.
 */
int numa__default_node(const struct vm_config *cfg);

/*
 * Index into cfg->numa of zone's node: zone.guest_node (which validation resolves from
 * memory_zones=) when it names a node, else the default node; -1 without --numa.
 */
int numa__zone_node(const struct vm_config *cfg, int zone);

/* Validation's rule: guest_numa_ids must be 0..N-1, each once; "--numa: ..." in err otherwise. */
int numa__check_ids(const struct vm_config *cfg, char *err, size_t errlen);

/*
 * The description of cfg, validated, and of l, its layout (NULL: no ranges). Returns 0, or -1
 * with one line in err when cfg cannot be described: a guest_numa_id of 0..N-1 missing, more
 * nodes or zones than the limits, a layout with more ranges than MAX_RANGES. n is then empty.
 */
int numa__build(struct numa *n, const struct vm_config *cfg, const struct layout *l, char *err,
		size_t errlen);

#endif
