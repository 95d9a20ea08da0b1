/* ACPI tables (RSDP, XSDT, FADT, DSDT, MADT, SRAT, SLIT) describing the VM. */
#ifndef MEMVISOR_ARCH_X86_ACPI_H
#define MEMVISOR_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include "memory/config.h"
#include "memory/layout.h"

/*
 * Build every table into buf, which the guest sees at guest physical address buf_gpa.
 * The RSDP is at buf_gpa. Returns the number of bytes used, or 0 when bufsize is too small
 * or the guest_numa_ids are not 0..N-1 (the SLIT is indexed by them).
 * SRAT and SLIT are built only when cfg->nnuma > 0.
 */
size_t acpi__build(const struct vm_config *cfg, const struct layout *l, uint8_t *buf,
		   uint64_t buf_gpa, size_t bufsize);

/* The APIC id of vCPU n: the same function feeds CPUID, MADT and SRAT. */
static inline uint32_t acpi__apic_id(unsigned cpu) { return cpu; }

/* Guest NUMA node (proximity domain) of vCPU n: its --numa node, else the first node. */
uint32_t acpi__cpu_node(const struct vm_config *cfg, unsigned cpu);

/* SLIT entry from node index i to node index j, with the spec's defaults applied. */
uint8_t acpi__distance(const struct vm_config *cfg, int i, int j);

#endif
