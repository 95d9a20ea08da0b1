/* ACPI tables (RSDP, XSDT, FADT, DSDT, MADT, SRAT, SLIT) describing the VM. */
#ifndef MEMVISOR_ARCH_X86_ACPI_H
#define MEMVISOR_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>
#include "memory/config.h"
#include "memory/layout.h"
#include "memory/numa.h"

struct aml;

/* Appends the devices' objects to the DSDT (device.h's devices__dsdt, with the vm as ctx). */
typedef void (*acpi_aml_fn)(const void *ctx, struct aml *aml);

/*
 * Build every table into buf, which the guest sees at guest physical address buf_gpa.
 * The RSDP is at buf_gpa. The DSDT is devices_aml's objects (none when NULL), then the
 * processors under \_SB_. Returns the number of bytes used, or 0 with one line in err: bufsize
 * is too small, the guest_numa_ids are not 0..N-1 (the SLIT is indexed by them), or the DSDT's
 * AML could not be built (the builder's message).
 * SRAT and SLIT are built only when cfg->nnuma > 0.
 */
size_t acpi__build(const struct vm_config *cfg, const struct layout *l, acpi_aml_fn devices_aml,
		   const void *ctx, uint8_t *buf, uint64_t buf_gpa, size_t bufsize, char *err,
		   size_t errlen);

/* The APIC id of vCPU n, for CPUID and KVM_CREATE_VCPU: the rule the tables take from numa.h. */
static inline uint32_t acpi__apic_id(unsigned cpu) { return numa__apic_id(cpu); }

/*
 * The NUMA description (numa.h) of one vCPU and of one pair of nodes, for callers holding only a
 * configuration: the tables' tests compare with them. acpi__cpu_node is the node id of vCPU n
 * (0 without --numa, for n beyond max, or for ids numa__build refuses); acpi__distance takes
 * indices into cfg->numa (10 for i == j, 20 for indices or ids numa__build cannot describe).
 */
uint32_t acpi__cpu_node(const struct vm_config *cfg, unsigned cpu);
uint8_t acpi__distance(const struct vm_config *cfg, int i, int j);

#endif
