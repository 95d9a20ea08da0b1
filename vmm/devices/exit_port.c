/*
 * Test exit port at 0xf4: a write of code C ends memvisor with exit status C (the low 8 bits,
 * as exit(3) keeps them). Unlike QEMU's isa-debug-exit, the code is not shifted.
 */
#include <string.h>

#include "vm.h"

#define EXIT_PORT 0xf4

bool exit_port__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	uint32_t code = 0;

	if (port != EXIT_PORT)
		return false;
	if (!out) {
		memset(data, 0xff, size);
		return true;
	}
	memcpy(&code, data, size < sizeof(code) ? size : sizeof(code));
	vm__stop(vm, (int)(code & 0xff));
	return true;
}
