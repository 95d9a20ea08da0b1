/* The device table, its start and stop order, and the GSI and MMIO-window allocators. */
#include "device.h"
#include "util.h"
#include "vm.h"

#define DEVICE(n) extern const struct device_def n##_device;
#include "devices/devices.def"
#undef DEVICE

const struct device_def *const device_table[] = {
#define DEVICE(n) &n##_device,
#include "devices/devices.def"
#undef DEVICE
};
const size_t device_table_len = ARRAY_SIZE(device_table);

int devices__init(struct vm *vm, const struct device_def *const *table, size_t n, char *err,
		  size_t errlen)
{
	vm->devices = (struct devices){ .table = table };
	for (size_t i = 0; i < n; i++) {
		if (table[i]->init(vm, err, errlen) < 0) {
			char undo[256];
			size_t len = strlen(err);

			/* Nothing half-started; the device's own line comes first, unchanged. */
			if (devices__exit(vm, undo, sizeof(undo)) < 0)
				snprintf(err + len, errlen - len, " (and undoing: %s)", undo);
			return -1;
		}
		vm->devices.started = i + 1;
	}
	return 0;
}

int devices__exit(struct vm *vm, char *err, size_t errlen)
{
	struct devices *d = &vm->devices;
	char later[256];	/* err holds one line: failures after the first go to stderr */
	int r = 0;

	while (d->started > 0) {
		const struct device_def *def = d->table[--d->started];

		if (!def->exit)
			continue;
		if (def->exit(vm, r ? later : err, r ? sizeof(later) : errlen) < 0) {
			if (r)
				report("%s", later);
			r = -1;
		}
	}
	return r;
}

void devices__dsdt(const void *opaque, struct aml *aml)
{
	const struct vm *vm = opaque;

	for (size_t i = 0; i < vm->devices.started; i++)
		if (vm->devices.table[i]->dsdt)
			vm->devices.table[i]->dsdt(vm, aml);
}

int devices__fdt(const void *opaque, void *fdt)
{
	const struct vm *vm = opaque;

	for (size_t i = 0; i < vm->devices.started; i++)
		if (vm->devices.table[i]->fdt && vm->devices.table[i]->fdt(vm, fdt) < 0)
			return -1;
	return 0;
}

int gsi__init(struct gsi_alloc *a, uint32_t first_dynamic, uint32_t nr, char *err, size_t errlen)
{
	if (nr > GSI_MAX || first_dynamic > nr)
		return error(err, errlen, "GSIs: %u lines with the first dynamic at %u (at most %d)",
			     nr, first_dynamic, GSI_MAX);
	*a = (struct gsi_alloc){ .first_dynamic = first_dynamic, .nr = nr };
	return 0;
}

int gsi__reserve(struct gsi_alloc *a, uint32_t gsi, const char *who, char *err, size_t errlen)
{
	if (gsi >= a->nr)
		return error(err, errlen, "%s: GSI %u does not exist (%u lines)", who, gsi, a->nr);
	if (a->used & (1ULL << gsi))
		return error(err, errlen, "%s: GSI %u is already taken", who, gsi);
	a->used |= 1ULL << gsi;
	return 0;
}

int gsi__alloc(struct gsi_alloc *a, uint32_t *gsi, const char *who, char *err, size_t errlen)
{
	for (uint32_t g = a->first_dynamic; g < a->nr; g++) {
		if (!(a->used & (1ULL << g))) {
			a->used |= 1ULL << g;
			*gsi = g;
			return 0;
		}
	}
	return error(err, errlen, "%s: no free GSI (%u-%u all taken)", who, a->first_dynamic,
		     a->nr ? a->nr - 1 : 0);
}

void gsi__release(struct gsi_alloc *a, uint32_t gsi)
{
	if (gsi < a->nr)
		a->used &= ~(1ULL << gsi);
}

int mmio_window__init(struct mmio_window *w, uint64_t base, uint64_t size, char *err,
		      size_t errlen)
{
	if (size == 0 || size - 1 > UINT64_MAX - base)
		return error(err, errlen, "MMIO window 0x%llx+0x%llx is empty or wraps",
			     (unsigned long long)base, (unsigned long long)size);
	*w = (struct mmio_window){ .base = base, .size = size };
	return 0;
}

int mmio_window__alloc(struct mmio_window *w, uint64_t size, uint64_t align, uint64_t *gpa,
		       const char *who, char *err, size_t errlen)
{
	uint64_t start, pad;

	if (size == 0 || align == 0 || (align & (align - 1)))
		return error(err, errlen, "%s: MMIO request of 0x%llx bytes aligned to 0x%llx",
			     who, (unsigned long long)size, (unsigned long long)align);
	/* Pad in offsets from the window's base: no sum below can pass 2^64. */
	start = w->base + w->next;
	pad = (align - (start & (align - 1))) & (align - 1);
	if (pad > w->size - w->next || size > w->size - w->next - pad)
		return error(err, errlen,
			     "%s: MMIO window [0x%llx-0x%llx] has no 0x%llx bytes aligned to 0x%llx left",
			     who, (unsigned long long)w->base,
			     (unsigned long long)(w->base + (w->size - 1)),
			     (unsigned long long)size, (unsigned long long)align);
	*gpa = start + pad;
	w->next += pad + size;
	return 0;
}
