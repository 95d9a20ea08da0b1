/*
 * The probe guest's ACPI parser (guests/lib/acpi.c) run hosted, behind types of its own:
 * guest.h declares the guests' printf and string functions and cannot share a translation
 * unit with the C library's headers.
 */
#ifndef MEMVISOR_FUZZ_PROBE_ACPI_H
#define MEMVISOR_FUZZ_PROBE_ACPI_H

#include <stdbool.h>
#include <stdint.h>

struct probe_dev {
	char name[5];
	uint32_t uid, irq;
	uint64_t base, size;
	bool has_uid, has_base, has_irq;
};

/*
 * The DSDT the probe finds from the RSDP at rsdp, with guest RAM identity-mapped up to limit
 * (the tables must lie there: the caller maps them at their guest physical address); NULL as
 * the probe would fail to find it.
 */
const void *probe_acpi__dsdt(uint64_t rsdp, uint64_t limit);
/* acpi_find_hid and acpi_find_device of guests/lib/acpi.c on that DSDT. */
#define PROBE_DEV_MAX 256	/* at most as many devices as this per call */
int probe_acpi__find_hid(const void *dsdt, const char *hid, struct probe_dev *out, int max);
bool probe_acpi__find_device(const void *dsdt, const char *name, struct probe_dev *out);

#endif
