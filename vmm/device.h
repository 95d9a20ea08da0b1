/*
 * The device table and the resources devices draw from: interrupt lines (GSIs) and MMIO space.
 *
 * Each device file defines one `const struct device_def NAME_device` and is listed once in
 * devices/devices.def; devices__init starts them in that order and devices__exit stops them in
 * the reverse one.
 */
#ifndef MEMVISOR_DEVICE_H
#define MEMVISOR_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct aml;	/* arch/x86/aml.h */

struct device_def {
	const char *name;
	/*
	 * Claim bus ranges and resources, open what the device needs. On failure: -1 with one line
	 * in err, shown as is (a message about an option keeps the `--option: reason` form), and
	 * nothing of the device left behind: exit is not called for a device whose init failed.
	 */
	int (*init)(struct vm *vm, char *err, size_t errlen);
	/*
	 * Undo init, with the vCPUs stopped; NULL: nothing to undo. A failure (a VMM bug, or a file
	 * that would not close) is -1 with one line in err: the teardown reports it and goes on.
	 */
	int (*exit)(struct vm *vm, char *err, size_t errlen);
	/*
	 * Optional. Append the device's objects to the DSDT (arch/x86/aml.h), at its root: a
	 * device under \_SB_ opens that Scope itself. Called once the device started, with the
	 * resources init got; the builder's errors are sticky, so there is no return value.
	 */
	void (*dsdt)(const struct vm *vm, struct aml *aml);
	/*
	 * Optional. Append the device's nodes to the FDT (arch/x86/fdt.h), written with libfdt's
	 * sequential-write API, at the root node: -1 on a libfdt error.
	 */
	int (*fdt)(const struct vm *vm, void *fdt);
};

/* The devices of every VM, in start order (devices/devices.def). */
extern const struct device_def *const device_table[];
extern const size_t device_table_len;

/* Which devices of which table are running: devices__exit stops exactly these. */
struct devices {
	const struct device_def *const *table;
	size_t started;
};

/* Start table[0..n) in order. On failure, the ones started are stopped in reverse, -1. */
int devices__init(struct vm *vm, const struct device_def *const *table, size_t n, char *err,
		  size_t errlen);
/*
 * Stop the started devices in reverse order; a no-op when none runs. Each is stopped whatever
 * the others did: -1 with the first failure in err.
 */
int devices__exit(struct vm *vm, char *err, size_t errlen);

/* Every started device's DSDT contribution, in start order: acpi__build's devices_aml. */
void devices__dsdt(const void *vm, struct aml *aml);
/* Every started device's FDT nodes, in start order: fdt__build's devices_fdt. -1: failed. */
int devices__fdt(const void *vm, void *fdt);

/*
 * GSIs [0, nr): lines below first_dynamic are fixed by the platform (ISA IRQs) and can only be
 * reserved by number; gsi__alloc hands out the lowest free line from first_dynamic up.
 */
#define GSI_MAX 64
struct gsi_alloc {
	uint32_t first_dynamic, nr;
	uint64_t used;		/* bit n: GSI n taken */
};

int gsi__init(struct gsi_alloc *a, uint32_t first_dynamic, uint32_t nr, char *err, size_t errlen);
int gsi__reserve(struct gsi_alloc *a, uint32_t gsi, const char *who, char *err, size_t errlen);
int gsi__alloc(struct gsi_alloc *a, uint32_t *gsi, const char *who, char *err, size_t errlen);
void gsi__release(struct gsi_alloc *a, uint32_t gsi);

/*
 * A window of guest physical space for device registers, handed out upwards and never given
 * back: devices are created once per VM, so a bump allocator cannot fragment.
 */
struct mmio_window {
	uint64_t base, size;
	uint64_t next;		/* offset of the first free byte */
};

int mmio_window__init(struct mmio_window *w, uint64_t base, uint64_t size, char *err,
		      size_t errlen);
/* size bytes aligned to align (a power of two); the window's base is aligned as asked too. */
int mmio_window__alloc(struct mmio_window *w, uint64_t size, uint64_t align, uint64_t *gpa,
		       const char *who, char *err, size_t errlen);

#endif
