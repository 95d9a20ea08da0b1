/*
 * The i8042 keyboard controller, as far as a VM needs it: its command port's "pulse reset line"
 * (0xfe), which Linux uses with `reboot=k` (its default on a hardware-reduced FADT is EFI, then
 * the reset vector: arch/x86/platform.h). It ends memvisor with EXIT_GUEST_RESET, like
 * devices/acpi_power.c's reset register.
 * There is no keyboard: the status register reads 0 (no data, input buffer empty) so that a guest
 * waiting for the controller to take a command never spins, and the data port reads 0. The FADT
 * does not announce an 8042, so Linux's i8042 driver does not bind to it.
 */
#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

static void i8042__write_cmd(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	(void)size;
	if (offset == 0 && data[0] == I8042_CMD_RESET)
		vm__stop(opaque, EXIT_GUEST_RESET);
}

static const struct bus_ops i8042_data_ops = { .read = bus__read_zero };
static const struct bus_ops i8042_cmd_ops = { .read = bus__read_zero, .write = i8042__write_cmd };

static int i8042__init(struct vm *vm, char *err, size_t errlen)
{
	char undo[128];

	if (bus__register(&vm->pio, ISA_I8042_DATA_PORT, 1, &i8042_data_ops, vm, "i8042", err,
			  errlen) < 0)
		return -1;
	if (bus__register(&vm->pio, ISA_I8042_CMD_PORT, 1, &i8042_cmd_ops, vm, "i8042", err,
			  errlen) < 0) {
		/* Registered a moment ago, with no vCPU running: it cannot fail to go. */
		bus__unregister(&vm->pio, ISA_I8042_DATA_PORT, undo, sizeof(undo));
		return -1;
	}
	return 0;
}

static int i8042__exit(struct vm *vm, char *err, size_t errlen)
{
	int r = bus__unregister(&vm->pio, ISA_I8042_CMD_PORT, err, errlen);

	if (bus__unregister(&vm->pio, ISA_I8042_DATA_PORT, r ? NULL : err, r ? 0 : errlen) < 0)
		r = -1;
	return r;
}

const struct device_def i8042_device = {
	.name = "i8042",
	.init = i8042__init,
	.exit = i8042__exit,
};
