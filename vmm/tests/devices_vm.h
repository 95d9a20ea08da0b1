/*
 * A VM whose devices are started, without KVM or guest memory (vm__init_devices needs neither):
 * what the table builders' tests pass as the source of the devices' DSDT objects, so that they
 * check the DSDT a real VM gets.
 */
#ifndef MEMVISOR_TESTS_DEVICES_VM_H
#define MEMVISOR_TESTS_DEVICES_VM_H

#include <errno.h>
#include <string.h>
#include <time.h>

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

/*
 * vm as main has it once setup is done and before the vCPUs start: the clock, the main loop and
 * the devices (serial as given), RUNNING. No KVM: vm_fd stays -1.
 */
static inline struct vm *running_vm(struct vm *vm, enum serial_mode serial, const char *file)
{
	char err[256];

	vm__init(vm);
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
	if (loop__init(&vm->loop, err, sizeof(err)) < 0)
		fail_msg("loop__init: %s", err);
	vm->cfg.serial = serial;
	vm->cfg.serial_file = (char *)file;
	if (vm__init_devices(vm, err, sizeof(err)) < 0)
		fail_msg("vm__init_devices: %s", err);
	assert_true(vm->devices_up);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	return vm;
}

#endif
