/*
 * Debug port 0x80 (the POST code port): each byte written is logged with the time since
 * memvisor started, as Cloud Hypervisor's debug port does. The boot-time benchmarks read these
 * lines, so their format is fixed:
 *     memvisor: debug-port code=0xCC t_us=MICROSECONDS
 */
#include <stdio.h>
#include <string.h>

#include "vm.h"

#define DEBUG_PORT 0x80

bool debug_port__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	if (port != DEBUG_PORT)
		return false;
	if (!out) {
		memset(data, 0xff, size);
		return true;
	}
	fprintf(stderr, "memvisor: debug-port code=0x%02x t_us=%.0f\n", data[0],
		vm__uptime(vm) * 1e6);
	return true;
}
