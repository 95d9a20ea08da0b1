/* Guest memory access, the VM's end and its device model, shared by devices and vCPU threads. */
#include <sys/mman.h>

#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

void *vm__gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < vm->layout.nranges; i++) {
		const struct mem_range *r = &vm->layout.ranges[i];

		if (r->zone < 0 || gpa < r->gpa || gpa - r->gpa > r->size ||
		    len > r->size - (gpa - r->gpa))
			continue;
		return (uint8_t *)vm->backings[r->zone].host + r->zone_offset + (gpa - r->gpa);
	}
	return NULL;
}

void vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = vm__gpa_to_hva(vm, gpa, len);

	if (!dst)
		die("internal error: guest range 0x%llx+%llu is not RAM", (unsigned long long)gpa,
		    (unsigned long long)len);
	memcpy(dst, src, len);
}

void vm__stop(struct vm *vm, int code)
{
	bool first = !__atomic_exchange_n(&vm->stopping, true, __ATOMIC_SEQ_CST);

	if (!first)
		return;
	vm->exit_code = code;
	if (sem_post(&vm->stopped) < 0)
		die_perror("sem_post");
}

double vm__uptime(struct vm *vm)
{
	struct timespec now;

	/* Cannot fail for CLOCK_MONOTONIC; if it does, exit(1) on a vCPU thread would be wrong. */
	if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) {
		if (!vm->stopping)
			perror("memvisor: clock_gettime(CLOCK_MONOTONIC)");
		vm__stop(vm, EXIT_GUEST_CRASH);
		return 0;
	}
	return (double)(now.tv_sec - vm->start.tv_sec) + (now.tv_nsec - vm->start.tv_nsec) / 1e9;
}

int vm__init_devices(struct vm *vm, char *err, size_t errlen)
{
	FILE *log = vm->verbose ? stderr : NULL;

	if (bus__init(&vm->pio, "pio", PIO_LAST_PORT, log, err, errlen) < 0)
		return -1;
	if (bus__init(&vm->mmio, "mmio", UINT64_MAX, log, err, errlen) < 0) {
		bus__exit(&vm->pio);
		return -1;
	}
	/*
	 * The layout keeps RAM out of the 32-bit hole but has no field for the devices' part of it
	 * yet: the window's bounds come from the platform's fixed areas (arch/x86/platform.h).
	 */
	if (gsi__init(&vm->gsi, ISA_NR_IRQS, IOAPIC_NR_PINS, err, errlen) < 0 ||
	    mmio_window__init(&vm->mmio_window, MMIO32_WINDOW_BASE, MMIO32_WINDOW_SIZE, err,
			      errlen) < 0 ||
	    devices__init(vm, device_table, device_table_len, err, errlen) < 0) {
		bus__exit(&vm->mmio);
		bus__exit(&vm->pio);
		return -1;
	}
	return 0;
}

void vm__exit_devices(struct vm *vm)
{
	devices__exit(vm);
	bus__exit(&vm->mmio);
	bus__exit(&vm->pio);
}
