/* Guest physical address layout: where each zone's RAM and hotplug areas live. */
#ifndef MEMVISOR_MEMORY_LAYOUT_H
#define MEMVISOR_MEMORY_LAYOUT_H

#include <stdio.h>
#include "memory/config.h"

/* The PC's fixed addresses (the 32-bit MMIO hole, the boot data area) are the platform's. */
#include "arch/x86/platform.h"

/* A choice of the layout, not a fact of the platform: hotplug areas start 128 MiB aligned. */
#define HOTPLUG_ALIGN		0x8000000ULL	/* 128 MiB: ACPI DIMM and virtio-mem areas */

enum range_kind {
	RANGE_RAM,		/* boot RAM of a zone */
	RANGE_ACPI_HOTPLUG,	/* --memory hotplug_size with hotplug_method=acpi */
	RANGE_VIRTIO_MEM,	/* a zone's virtio-mem region */
};

struct mem_range {
	enum range_kind kind;
	uint64_t gpa, size;
	int zone;		/* index into vm_config.zones; -1 for the ACPI hotplug area */
	uint64_t zone_offset;	/* offset of gpa inside the zone's host mapping */
	int guest_node;		/* index into vm_config.numa, or -1 */
};

#define MAX_RANGES (2 * MAX_ZONES + MAX_ZONES + 1)
struct layout {
	int nranges;
	struct mem_range ranges[MAX_RANGES];	/* sorted by gpa */
	uint64_t boot_ram;	/* sum of RANGE_RAM sizes */
	uint64_t ram_end;	/* first address after the highest RANGE_RAM */
	uint64_t end;		/* first address after everything, hotplug areas included */
};

/*
 * Limits layout__build enforces. 1 TiB stays inside the 40 physical address bits that QEMU's TCG
 * "-cpu max" (the test host) and every KVM host we target offer. The RAM range at GPA 0 (the first
 * non-empty zone) must be at least 2 MiB: it holds the boot data below 1 MiB and the start of a
 * PVH kernel loaded at 1 MiB.
 */
#define LAYOUT_MAX_GPA		(1ULL << 40)
#define LAYOUT_MIN_BOOT_RAM	0x00200000ULL
#define LAYOUT_PAGE_ALIGN	0x1000ULL	/* every range is a KVM slot: 4 KiB granular */

int layout__build(struct layout *l, const struct vm_config *cfg, char *err, size_t errlen);
/* numa__default_node (numa.h): the node of the ACPI hotplug area and of zones in no --numa. */
int layout__first_node(const struct vm_config *cfg);
/* "ram", "acpi-hotplug", "virtio-mem": the names the JSON output and the FDT use. */
const char *layout__kind_name(enum range_kind kind);
/* The E820 map the guest gets: usable RAM below 640 KiB, from 1 MiB, and above 4 GiB. */
struct e820_entry { uint64_t addr, size; uint32_t type; };
#define E820_RAM 1
#define E820_RESERVED 2
/* Returns the number of entries written, or -1 when more than max are needed. */
int layout__e820(const struct layout *l, struct e820_entry *out, int max);
void layout__print_json(const struct layout *l, const struct vm_config *cfg, FILE *out);

#endif
