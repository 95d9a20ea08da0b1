/*
 * The Generic Event Device (ACPI 6.3 section 5.6.9, _HID "ACPI0013"): how a hardware-reduced
 * platform, which has no GPE blocks, tells the guest that something changed. memvisor raises
 * two events, with Cloud Hypervisor's bit numbers (CH devices/src/lib.rs):
 *
 *	bit 1  memory devices changed: \_SB.MHPC.MSCN scans the DIMM slots (devices/mem_hotplug.c)
 *	bit 3  power button: Notify (\_SB.PWRB, 0x80), which Linux's button driver turns into
 *	       KEY_POWER (systemd-logind or acpid then powers the guest off)
 *
 * The register is CH's: one byte in MMIO, from the devices' MMIO window. A read returns the
 * pending events and clears them; writes are ignored (the first one logged). Raising an event
 * sets its bit, then pulses the GED's interrupt (KVM_IRQ_LINE 1 then 0: the line is declared
 * edge-triggered, and Linux's evged requests it oneshot and evaluates _EVT once per edge). An
 * event raised while _EVT runs is not lost: its bit waits for the next read, and its own edge
 * brings that read.
 *
 * A guest without an AML interpreter drives it by hand: read the byte at the address of
 * \_SB.GEC_'s Memory32Fixed _CRS (or poll it, there is no need for the interrupt) and act on
 * the bits it finds.
 *
 * No lock: the only state the guest touches is the pending byte, changed by atomic operations.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "arch/x86/aml.h"
#include "util.h"
#include "vm.h"

#define GED_MMIO_LEN	1	/* CH's GED_DEVICE_ACPI_SIZE */
#define GED_MMIO_ALIGN	16	/* keeps the next device's registers aligned as it asks */

struct ged {
	struct vm *vm;
	uint64_t base;
	uint32_t gsi;
	atomic_uint pending;	/* GED_* bits not read yet */
	atomic_bool write_logged;
};

static void ged__read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct ged *g = opaque;

	/* The bus gives only accesses inside the one byte: offset 0, size 1. */
	(void)offset;
	(void)size;
	data[0] = (uint8_t)atomic_exchange(&g->pending, 0);
}

/* The register is read-only: a write is the guest's mistake, ignored and logged once. */
static void ged__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct ged *g = opaque;

	(void)offset;
	(void)size;
	if (!atomic_exchange(&g->write_logged, true))
		report("GED: write of 0x%02x to its read-only register ignored (further ones are "
		       "not logged)", data[0]);
}

static const struct bus_ops ged_ops = {
	.read = ged__read,
	.write = ged__write,
};

void ged__event(struct vm *vm, unsigned events)
{
	struct ged *g = vm->ged;

	if (!g)
		return;
	atomic_fetch_or(&g->pending, events & 0xff);
	kvm__irq_line(vm, g->gsi, 1);
	kvm__irq_line(vm, g->gsi, 0);
}

int ged__power_button(struct vm *vm, char *err, size_t errlen)
{
	if (!vm->ged)
		return error(err, errlen, "vm.power-button: the VM has no ACPI power button");
	if (vm__state(vm) != VM_RUNNING)
		return error(err, errlen, "vm.power-button: the VM is %s",
			     vm_state__name(vm__state(vm)));
	ged__event(vm, GED_POWER_BUTTON);
	return 0;
}

static int ged__init(struct vm *vm, char *err, size_t errlen)
{
	struct ged *g = calloc(1, sizeof(*g));

	if (!g)
		return error(err, errlen, "ged: out of memory");
	g->vm = vm;
	atomic_init(&g->pending, 0);
	atomic_init(&g->write_logged, false);
	if (mmio_window__alloc(&vm->mmio_window, GED_MMIO_LEN, GED_MMIO_ALIGN, &g->base, "ged",
			       err, errlen) < 0 ||
	    gsi__alloc(&vm->gsi, &g->gsi, "ged", err, errlen) < 0) {
		free(g);
		return -1;
	}
	if (bus__register(&vm->mmio, g->base, GED_MMIO_LEN, &ged_ops, g, "ged", err,
			  errlen) < 0) {
		gsi__release(&vm->gsi, g->gsi);
		free(g);
		return -1;
	}
	vm->ged = g;
	return 0;
}

static int ged__exit(struct vm *vm, char *err, size_t errlen)
{
	struct ged *g = vm->ged;
	int r = bus__unregister(&vm->mmio, g->base, err, errlen);

	gsi__release(&vm->gsi, g->gsi);
	free(g);
	vm->ged = NULL;
	return r;
}

/* If ((Local0 & bit) == bit) { ... }: the body follows, closed by the caller. */
static void ged__if_bit(struct aml *a, unsigned bit)
{
	aml__if(a);
	aml__op(a, AML_LEQUAL);
	aml__op(a, AML_AND);
	aml__local(a, 0);
	aml__int(a, bit);
	aml__no_target(a);
	aml__int(a, bit);
}

/*
 * \_SB.PWRB, the control-method power button (the FADT's PWR_BUTTON flag says there is no
 * fixed one); \_SB.GEC_, the register and ESCN, which reads it and dispatches; \_SB.GED_,
 * whose _EVT Linux runs on each interrupt. Names and methods are CH's, so that a guest's AML
 * dump compares with one taken under CH. \_SB.MHPC.MSCN is mem_hotplug.c's, which always
 * defines it, with or without hotplug memory.
 */
static void ged__dsdt(const struct vm *vm, struct aml *a)
{
	const struct ged *g = vm->ged;

	aml__scope(a, "\\_SB_");

	aml__device(a, "PWRB");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0C0C");
	aml__name(a, "_UID");
	aml__int(a, 0);
	aml__pkg_close(a);

	aml__device(a, "GEC_");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0A06");
	aml__name(a, "_UID");
	aml__string(a, "Generic Event Controller");
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_memory32_fixed(a, true, (uint32_t)g->base, GED_MMIO_LEN);
	aml__pkg_close(a);
	aml__operation_region(a, "GDST", AML_SYSTEM_MEMORY, g->base, GED_MMIO_LEN);
	aml__field(a, "GDST", AML_BYTE_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_unit(a, "GDAT", 8);
	aml__pkg_close(a);
	aml__method(a, "ESCN", 0, true);
	aml__op(a, AML_STORE);		/* Local0 = GDAT: one read, which clears the bits */
	aml__path(a, "GDAT");
	aml__local(a, 0);
	ged__if_bit(a, GED_MEMORY_CHANGED);
	aml__path(a, "\\_SB_.MHPC.MSCN");
	aml__pkg_close(a);
	ged__if_bit(a, GED_POWER_BUTTON);
	aml__op(a, AML_NOTIFY);
	aml__path(a, "\\_SB_.PWRB");
	aml__int(a, 0x80);
	aml__pkg_close(a);
	aml__pkg_close(a);		/* ESCN */
	aml__pkg_close(a);		/* GEC_ */

	aml__device(a, "GED_");
	aml__name(a, "_HID");
	aml__string(a, "ACPI0013");
	aml__name(a, "_UID");
	aml__int(a, 0);
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_interrupt(a, AML_IRQ_EDGE, &g->gsi, 1);
	aml__pkg_close(a);
	aml__method(a, "_EVT", 1, true);
	aml__path(a, "\\_SB_.GEC_.ESCN");
	aml__pkg_close(a);
	aml__pkg_close(a);		/* GED_ */

	aml__pkg_close(a);		/* \_SB_ */
}

const struct device_def ged_device = {
	.name = "ged",
	.init = ged__init,
	.exit = ged__exit,
	.dsdt = ged__dsdt,
};
