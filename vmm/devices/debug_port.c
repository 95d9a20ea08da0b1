/*
 * Debug port (the POST code port, arch/x86/platform.h): each byte written is logged with the
 * time since memvisor started, as Cloud Hypervisor's debug port does. The boot-time benchmarks
 * read these lines, so their format is fixed:
 *     memvisor: debug-port code=0xCC t_us=MICROSECONDS
 * Reads see all ones (no read handler). No lock: the one line per write is a single stdio call,
 * which stdio serialises.
 */
#include <stdio.h>

#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

static void debug_port__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct vm *vm = opaque;

	(void)offset;
	(void)size;
	fprintf(stderr, "memvisor: debug-port code=0x%02x t_us=%.0f\n", data[0],
		vm__uptime(vm) * 1e6);
}

static const struct bus_ops debug_port_ops = { .write = debug_port__write };

static int debug_port__init(struct vm *vm, char *err, size_t errlen)
{
	return bus__register(&vm->pio, ISA_DEBUG_PORT, ISA_DEBUG_PORT_LEN, &debug_port_ops, vm,
			     "debug-port", err, errlen);
}

static int debug_port__exit(struct vm *vm, char *err, size_t errlen)
{
	return bus__unregister(&vm->pio, ISA_DEBUG_PORT, err, errlen);
}

const struct device_def debug_port_device = {
	.name = "debug-port",
	.init = debug_port__init,
	.exit = debug_port__exit,
};
