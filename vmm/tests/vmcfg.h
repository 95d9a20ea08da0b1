/* Hand-built configurations shared by the unit tests of the tables that describe a VM. */
#ifndef MEMVISOR_TESTS_VMCFG_H
#define MEMVISOR_TESTS_VMCFG_H

#include <stdio.h>
#include <string.h>

#include "memory/config.h"
#include "util.h"

static inline void cfg_init(struct vm_config *c, unsigned boot, unsigned max)
{
	memset(c, 0, sizeof(*c));
	c->boot_cpus = boot;
	c->max_cpus = max;
}

static inline int add_zone(struct vm_config *c, const char *id, uint64_t size, uint64_t hotplug, int node)
{
	struct zone_config *z = &c->zones[c->nzones];

	snprintf(z->id, sizeof(z->id), "%s", id);
	z->size = size;
	z->hotplug_size = hotplug;
	z->host_numa_node = -1;
	z->guest_node = node;
	return c->nzones++;
}

static inline int add_node(struct vm_config *c, uint32_t id)
{
	c->numa[c->nnuma].guest_numa_id = id;
	return c->nnuma++;
}

static inline void node_cpu(struct vm_config *c, int node, unsigned cpu)
{
	c->numa[node].cpus[cpu / 8] |= (uint8_t)(1u << (cpu % 8));
}

static inline void node_distance(struct vm_config *c, int node, uint32_t dest, uint8_t d)
{
	struct numa_config *n = &c->numa[node];

	n->distances[n->ndistances++] = (struct numa_distance){ .dest = dest, .distance = d };
}

/*
 * Three nodes whose indices differ from their ids (index 0 = id 2, 1 = id 0, 2 = id 1), CPUs split
 * 1/5/1 with CPU 7 in no node, asymmetric and missing distances, a zone split across the hole,
 * an ACPI hotplug area and a virtio-mem region.
 */
static inline void cfg_three_nodes(struct vm_config *c)
{
	int n2, n0, n1;

	cfg_init(c, 6, 8);
	n2 = add_node(c, 2);
	n0 = add_node(c, 0);
	n1 = add_node(c, 1);
	node_cpu(c, n0, 0);
	for (unsigned cpu = 1; cpu <= 5; cpu++)
		node_cpu(c, n1, cpu);
	node_cpu(c, n2, 6);
	node_distance(c, n0, 1, 15);
	node_distance(c, n1, 0, 17);
	node_distance(c, n1, 2, 22);
	c->memory.hotplug_size = 512 * MiB;
	c->memory.hotplug_method = HOTPLUG_ACPI;
	add_zone(c, "z0", 1 * GiB, 0, n0);
	add_zone(c, "z1", 3 * GiB, 0, n1);
	add_zone(c, "z2", 512 * MiB, 256 * MiB, n2);
}

/* 256 vCPUs: the last has APIC id 255 and needs x2APIC entries. */
#endif
