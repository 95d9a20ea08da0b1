/* Guest memory access and the VM's end, shared by the devices and the vCPU threads. */
#include <sys/mman.h>

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
