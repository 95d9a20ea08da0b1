/*
 * Guest memory access, the VM's states and end, and its device model, shared by main, devices
 * and vCPU threads.
 */
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/api.h"
#include "arch/x86/platform.h"
#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"

#define STATE_MASK 0xffu

static uint32_t vm__word(enum vm_state s, int status)
{
	return (uint32_t)s | (uint32_t)(status & 0xff) << 8;
}

void vm__init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm->loop = LOOP_EMPTY;
	for (unsigned i = 0; i < MAX_VCPUS; i++)
		vm->vcpus[i] = (struct vcpu){ .id = i, .fd = -1 };
	vm->mem_lock = (pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER;
	__atomic_store_n(&vm->run_state, vm__word(VM_CREATED, 0), __ATOMIC_SEQ_CST);
}

void *vm__gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < vm->layout.nranges; i++) {
		const struct mem_range *r = &vm->layout.ranges[i];

		if (r->zone < 0 || gpa < r->gpa || gpa - r->gpa > r->size ||
		    len > r->size - (gpa - r->gpa))
			continue;
		/*
		 * An unplugged block is not the guest's: a device that touched it would allocate
		 * host memory the guest gave back, or, on hugetlb with an empty pool, take SIGBUS.
		 */
		if (r->kind == RANGE_VIRTIO_MEM &&
		    !virtio_mem__range_plugged(vm, r->zone, gpa - r->gpa, len))
			return NULL;
		return (uint8_t *)vm->backings[r->zone].host + r->zone_offset + (gpa - r->gpa);
	}
	/* The ACPI hotplug area has no zone: its memory is the DIMMs plugged so far. */
	return mem_hotplug__gpa_to_hva(vm, gpa, len);
}

bool vm__mem_lock(struct vm *vm, bool exclusive)
{
	int e = exclusive ? pthread_rwlock_wrlock(&vm->mem_lock) :
			    pthread_rwlock_rdlock(&vm->mem_lock);

	if (e)
		vm__fail(vm, EXIT_VMM_FAILURE, "guest-memory lock: %s", strerror(e));
	return !e;
}

void vm__mem_unlock(struct vm *vm)
{
	int e = pthread_rwlock_unlock(&vm->mem_lock);

	if (e)
		vm__fail(vm, EXIT_VMM_FAILURE, "guest-memory unlock: %s", strerror(e));
}

int vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len, char *err,
	      size_t errlen)
{
	void *dst = vm__gpa_to_hva(vm, gpa, len);

	/* Callers write only where the layout put RAM: this is a VMM bug, not a bad option. */
	if (!dst)
		return error(err, errlen, "internal error: guest range 0x%llx+%llu is not RAM",
			     (unsigned long long)gpa, (unsigned long long)len);
	memcpy(dst, src, len);
	return 0;
}

const char *vm_state__name(enum vm_state s)
{
	switch (s) {
	case VM_CREATED:
		return "created";
	case VM_RUNNING:
		return "running";
	case VM_STOPPING:
		return "stopping";
	case VM_STOPPED:
		return "stopped";
	}
	return "invalid";
}

bool vm_state__allowed(enum vm_state from, enum vm_state to)
{
	switch (from) {
	case VM_CREATED:
		return to == VM_RUNNING || to == VM_STOPPING;
	case VM_RUNNING:
		return to == VM_STOPPING;
	case VM_STOPPING:
		return to == VM_STOPPED;
	case VM_STOPPED:
		return false;
	}
	return false;
}

enum vm_state vm__state(const struct vm *vm)
{
	return (enum vm_state)(__atomic_load_n(&vm->run_state, __ATOMIC_SEQ_CST) & STATE_MASK);
}

bool vm__stopping(const struct vm *vm)
{
	return vm__state(vm) >= VM_STOPPING;
}

int vm__exit_status(const struct vm *vm)
{
	return (int)(__atomic_load_n(&vm->run_state, __ATOMIC_SEQ_CST) >> 8);
}

int vm__set_state(struct vm *vm, enum vm_state to, char *err, size_t errlen)
{
	uint32_t old = __atomic_load_n(&vm->run_state, __ATOMIC_SEQ_CST), new;

	/* Only vm__stop records a status: no other path may enter STOPPING without one. */
	if (to == VM_STOPPING)
		return error(err, errlen, "internal error: only vm__stop enters VM state stopping");
	do {
		enum vm_state from = (enum vm_state)(old & STATE_MASK);

		if (!vm_state__allowed(from, to))
			return error(err, errlen, "internal error: VM state %s -> %s",
				     vm_state__name(from), vm_state__name(to));
		new = (old & ~STATE_MASK) | (uint32_t)to;
	} while (!__atomic_compare_exchange_n(&vm->run_state, &old, new, false, __ATOMIC_SEQ_CST,
					      __ATOMIC_SEQ_CST));
	return 0;
}

bool vm__stop(struct vm *vm, int status)
{
	uint32_t old = __atomic_load_n(&vm->run_state, __ATOMIC_SEQ_CST);
	char err[256];

	do {
		if (!vm_state__allowed((enum vm_state)(old & STATE_MASK), VM_STOPPING))
			return false;
	} while (!__atomic_compare_exchange_n(&vm->run_state, &old,
					      vm__word(VM_STOPPING, status), false,
					      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	if (loop__wake(&vm->loop, err, sizeof(err)) < 0) {
		/*
		 * Without its wake-up main would wait for ever. The signalfd is the loop's other
		 * door: a SIGTERM wakes it, and the status recorded above stands (first wins).
		 */
		report("%s", err);
		if (kill(getpid(), SIGTERM) < 0)
			report("kill(SIGTERM) to wake the main loop: %s", strerror(errno));
	}
	return true;
}

void vm__fail(struct vm *vm, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	/* The first failure is the story; what breaks while the VM comes down is noise. */
	if (!vm__stopping(vm)) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		report("%s", msg);
	}
	vm__stop(vm, status);
}

double vm__uptime(struct vm *vm)
{
	struct timespec now;

	/* Cannot fail for CLOCK_MONOTONIC; if it does, the VM ends as a VMM failure. */
	if (clock_gettime(CLOCK_MONOTONIC, &now) < 0) {
		vm__fail(vm, EXIT_VMM_FAILURE, "clock_gettime(CLOCK_MONOTONIC): %s",
			 strerror(errno));
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
	vm->devices_up = true;
	return 0;
}

int vm__exit_devices(struct vm *vm, char *err, size_t errlen)
{
	int r;

	if (!vm->devices_up)
		return 0;
	r = devices__exit(vm, err, errlen);
	bus__exit(&vm->mmio);
	bus__exit(&vm->pio);
	vm->devices_up = false;
	return r;
}

int vm__teardown(struct vm *vm)
{
	enum vm_state was = vm__state(vm);
	bool failed = false;
	char err[512];

	/* Joining vCPUs that were never told to stop would wait for ever. */
	if (vm__stop(vm, EXIT_VMM_FAILURE)) {
		report("internal error: teardown of a %s VM", vm_state__name(was));
		failed = true;
	}
	/* First: the socket file goes on every way out, even one that leaves vCPUs running. */
	if (api__stop(vm, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	if (cpu__stop_all(vm, err, sizeof(err)) < 0) {
		/* A thread still running may touch guest memory and devices: exit() drops them. */
		report("%s", err);
		return EXIT_VMM_FAILURE;
	}
	if (vm->verbose)
		cpu__report_state(vm);
	if (cpu__exit(vm, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	if (kvm__exit(vm, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	/* Before the guest ran the files hold nothing of it: put them back as they were. */
	while (vm->nbackings > 0) {
		struct backing *b = &vm->backings[--vm->nbackings];

		if (vm->vcpus_started)
			backing__destroy(b);
		else
			backing__abort(b);
	}
	if (vm__exit_devices(vm, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	if (loop__exit(&vm->loop, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	if (vm__set_state(vm, VM_STOPPED, err, sizeof(err)) < 0) {
		report("%s", err);
		failed = true;
	}
	return failed ? EXIT_VMM_FAILURE : vm__exit_status(vm);
}
