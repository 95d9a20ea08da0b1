/* guests/lib/acpi.c's entry points for the hosted acpi target (probe_acpi.h). */
#include "guest.h"
#include "fuzz/lib/probe_acpi.h"

/* What guests/lib/setup.c fills at boot: acpi_find_dsdt reads the start info and the map. */
struct boot boot;

const void *probe_acpi__dsdt(uint64_t rsdp, uint64_t limit)
{
	static struct hvm_start_info si;

	si = (struct hvm_start_info){ .magic = HVM_START_MAGIC, .rsdp_paddr = rsdp };
	boot.si = &si;
	boot.mapped_limit = limit;
	return acpi_find_dsdt();
}

static void copy(struct probe_dev *out, const struct acpi_dev *d)
{
	memcpy(out->name, d->name, sizeof(out->name));
	out->uid = d->uid;
	out->irq = d->irq;
	out->base = d->base;
	out->size = d->size;
	out->has_uid = d->has_uid;
	out->has_base = d->has_base;
	out->has_irq = d->has_irq;
}

int probe_acpi__find_hid(const void *dsdt, const char *hid, struct probe_dev *out, int max)
{
	static struct acpi_dev d[PROBE_DEV_MAX];
	int n = acpi_find_hid(dsdt, hid, d, max < PROBE_DEV_MAX ? max : PROBE_DEV_MAX);

	for (int i = 0; i < n; i++)
		copy(&out[i], &d[i]);
	return n;
}

bool probe_acpi__find_device(const void *dsdt, const char *name, struct probe_dev *out)
{
	struct acpi_dev d;

	if (!acpi_find_device(dsdt, name, &d))
		return false;
	copy(out, &d);
	return true;
}
