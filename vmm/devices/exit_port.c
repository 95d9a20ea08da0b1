/*
 * Test exit port (arch/x86/platform.h): a write of code C at its first port ends memvisor with
 * exit status C (the low 8 bits, as exit(3) keeps them). Unlike QEMU's isa-debug-exit, the code
 * is not shifted. The range is 4 ports wide, like isa-debug-exit's iosize=4 in the harness, so a
 * 32-bit write reaches the device whole. Reads see all ones. No lock: vm__stop is atomic.
 */
#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

static void exit_port__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct vm *vm = opaque;

	/* The status is the low byte, which a write at offset 0 of any width carries first. */
	(void)size;
	if (offset == 0)
		vm__stop(vm, data[0]);
}

static const struct bus_ops exit_port_ops = { .write = exit_port__write };

static int exit_port__init(struct vm *vm, char *err, size_t errlen)
{
	return bus__register(&vm->pio, ISA_EXIT_PORT, ISA_EXIT_PORT_LEN, &exit_port_ops, vm,
			     "exit-port", err, errlen);
}

static int exit_port__exit(struct vm *vm, char *err, size_t errlen)
{
	return bus__unregister(&vm->pio, ISA_EXIT_PORT, err, errlen);
}

const struct device_def exit_port_device = {
	.name = "exit-port",
	.init = exit_port__init,
	.exit = exit_port__exit,
};
