/*
 * A VM whose devices are started, without KVM or guest memory (vm__init_devices needs neither):
 * what the table builders' tests pass as the source of the devices' DSDT objects, so that they
 * check the DSDT a real VM gets.
 */
#ifndef MEMVISOR_TESTS_DEVICES_VM_H
#define MEMVISOR_TESTS_DEVICES_VM_H

#include "vm.h"

static inline const struct vm *devices_vm(void)
{
	static struct vm vm;
	static bool up;
	char err[256];

	if (!up) {
		vm__init(&vm);
		vm.cfg.serial = SERIAL_OFF;
		if (vm__init_devices(&vm, err, sizeof(err)) < 0)
			fail_msg("vm__init_devices: %s", err);
		up = true;
	}
	return &vm;
}

#endif
