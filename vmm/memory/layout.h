/* Guest physical address layout: where each zone's RAM and hotplug areas live. */
#ifndef MEMVISOR_MEMORY_LAYOUT_H
#define MEMVISOR_MEMORY_LAYOUT_H

#include <stdio.h>
#include "memory/config.h"

/* x86_64 fixed addresses */
#define LOW_RAM_END		0x000a0000ULL	/* legacy VGA/BIOS area starts here */
#define HIGH_RAM_START		0x00100000ULL
#define MMIO32_START		0xc0000000ULL	/* 32-bit MMIO hole: never RAM */
#define MMIO32_END		0x100000000ULL
#define RAM_64BIT_START		0x100000000ULL
#define HOTPLUG_ALIGN		0x8000000ULL	/* 128 MiB: ACPI DIMM and virtio-mem areas */

/* Boot data placed by the VMM in guest RAM below 1 MiB (not reported as usable in E820) */
#define BOOT_GDT_ADDR		0x00000500ULL
#define PVH_START_INFO_ADDR	0x00006000ULL
#define PVH_MODLIST_ADDR	0x00006800ULL
#define PVH_MEMMAP_ADDR		0x00007000ULL	/* up to 128 E820 entries */
#define PVH_CMDLINE_ADDR	0x00020000ULL
#define PVH_CMDLINE_MAX		0x00010000ULL
#define FDT_ADDR		0x00030000ULL
#define FDT_MAX			0x00010000ULL
#define ACPI_TABLES_ADDR	0x000e0000ULL	/* RSDP first, then the tables: 0xe0000-0xfffff */
#define ACPI_TABLES_MAX		0x00020000ULL

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

int layout__build(struct layout *l, const struct vm_config *cfg, char *err, size_t errlen);
/* The E820 map the guest gets: usable RAM below 640 KiB, from 1 MiB, and above 4 GiB. */
struct e820_entry { uint64_t addr, size; uint32_t type; };
#define E820_RAM 1
#define E820_RESERVED 2
int layout__e820(const struct layout *l, struct e820_entry *out, int max);
void layout__print_json(const struct layout *l, const struct vm_config *cfg, FILE *out);

#endif
