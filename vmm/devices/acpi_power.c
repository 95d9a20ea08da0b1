/*
 * The hardware-reduced ACPI power registers (ACPI 6.3 section 4.8.3.7, arch/x86/platform.h):
 * sleep control, sleep status and reset, which the FADT names. A guest powers off by evaluating
 * \_S5 (this device's DSDT contribution) and writing SLP_TYP << 2 | SLP_EN to sleep control:
 * memvisor then ends with status 0, as a powered-off machine would. Writing the FADT's reset
 * value to the reset register ends it with EXIT_GUEST_RESET: memvisor does not restart guests,
 * and a harness must be able to tell a reboot from a power-off.
 *
 * Sleep states other than S5 are not offered (the DSDT has no _S1-_S4), so a write asking for
 * one is a guest bug: it is logged once and ignored. Sleep status reads 0: the VM never wakes
 * from a sleep, so WAK_STS is never set. No lock: the only state is an atomic log flag, and
 * vm__stop is atomic.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "arch/x86/aml.h"
#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

#define SLP_EN		(1u << 5)	/* sleep control: enter the state in SLP_TYP */
#define SLP_TYP_SHIFT	2
#define SLP_TYP_MASK	(7u << SLP_TYP_SHIFT)

struct acpi_power {
	struct vm *vm;
	atomic_bool warned;	/* a sleep type we do not offer was logged */
};

static void acpi_power__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct acpi_power *p = opaque;
	struct vm *vm = p->vm;
	uint8_t v = data[0];

	(void)size;
	if (offset == ACPI_SLEEP_CONTROL_PORT - ACPI_PM_PORT && (v & SLP_EN)) {
		unsigned typ = (v & SLP_TYP_MASK) >> SLP_TYP_SHIFT;

		if (typ == ACPI_S5_SLP_TYP)
			vm__stop(vm, 0);
		else if (!atomic_exchange(&p->warned, true))
			report("ACPI: the guest asked for sleep type %u, which the DSDT does not "
			       "offer; ignored", typ);
	} else if (offset == ACPI_RESET_PORT - ACPI_PM_PORT && v == ACPI_RESET_VALUE) {
		vm__stop(vm, EXIT_GUEST_RESET);
	}
}

static const struct bus_ops acpi_power_ops = {
	.read = bus__read_zero,
	.write = acpi_power__write,
};

static int acpi_power__init(struct vm *vm, char *err, size_t errlen)
{
	struct acpi_power *p = calloc(1, sizeof(*p));

	if (!p)
		return error(err, errlen, "acpi-power: out of memory");
	p->vm = vm;
	atomic_init(&p->warned, false);
	if (bus__register(&vm->pio, ACPI_PM_PORT, ACPI_PM_LEN, &acpi_power_ops, p, "acpi-power",
			  err, errlen) < 0) {
		free(p);
		return -1;
	}
	vm->acpi_power = p;
	return 0;
}

static int acpi_power__exit(struct vm *vm, char *err, size_t errlen)
{
	int r = bus__unregister(&vm->pio, ACPI_PM_PORT, err, errlen);

	free(vm->acpi_power);
	vm->acpi_power = NULL;
	return r;
}

/* Name (_S5, Package () { SLP_TYPa, SLP_TYPb, 0, 0 }) at the root, where OSPM looks for it. */
static void acpi_power__dsdt(const struct vm *vm, struct aml *a)
{
	(void)vm;
	aml__name(a, "_S5_");
	aml__package(a, 4);
	aml__int(a, ACPI_S5_SLP_TYP);
	aml__int(a, ACPI_S5_SLP_TYP);
	aml__int(a, 0);
	aml__int(a, 0);
	aml__pkg_close(a);
}

const struct device_def acpi_power_device = {
	.name = "acpi-power",
	.init = acpi_power__init,
	.exit = acpi_power__exit,
	.dsdt = acpi_power__dsdt,
};
