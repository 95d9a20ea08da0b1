/* /dev/kvm: the VM file descriptor, its memory slots and interrupt lines. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

static int kvm__check_extension(struct vm *vm, int ext)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, ext);

	return r > 0 ? r : 0;
}

int kvm__init(struct vm *vm, char *err, size_t errlen)
{
	uint64_t addr = KVM_IDENTITY_MAP_ADDR;
	int version, max;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return error(err, errlen, "cannot open /dev/kvm: %s (run under ci/testhost where KVM "
			     "is not available)", strerror(errno));
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version < 0)
		return error(err, errlen, "KVM_GET_API_VERSION: %s", strerror(errno));
	if (version != KVM_API_VERSION)
		return error(err, errlen, "KVM API version %d, expected %d", version,
			     KVM_API_VERSION);
	if (!kvm__check_extension(vm, KVM_CAP_USER_MEMORY) ||
	    !kvm__check_extension(vm, KVM_CAP_IRQCHIP) ||
	    !kvm__check_extension(vm, KVM_CAP_EXT_CPUID))
		return error(err, errlen,
			     "this KVM lacks user memory, an in-kernel irqchip or extended CPUID");
	max = kvm__check_extension(vm, KVM_CAP_MAX_VCPUS);
	if ((unsigned)max < vm->cfg.max_cpus)
		return error(err, errlen, "--cpus: this KVM supports %d vCPUs, %u asked", max,
			     vm->cfg.max_cpus);

	/* EINTR: a signal during VM creation (rare but documented) is worth one retry. */
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		return error(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
		return error(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		return error(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	/* LAPIC, IOAPIC and PIC in the kernel: interrupts never cost a trip to user space. */
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return error(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	return 0;
}

/*
 * One slot per layout range backed by a zone: boot RAM ranges and virtio-mem regions. The ACPI
 * hotplug area gets memory only when a DIMM is plugged, so it has no slot at boot.
 */
int kvm__register_memory(struct vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < vm->layout.nranges; i++) {
		const struct mem_range *r = &vm->layout.ranges[i];
		struct kvm_userspace_memory_region region;

		if (r->zone < 0)
			continue;
		region = (struct kvm_userspace_memory_region){
			.slot = (uint32_t)vm->nslots,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->backings[r->zone].host + r->zone_offset,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
			return error(err, errlen, "KVM_SET_USER_MEMORY_REGION slot %d at 0x%llx "
				     "(%llu bytes): %s", vm->nslots, (unsigned long long)r->gpa,
				     (unsigned long long)r->size, strerror(errno));
		vm->nslots++;
	}
	return 0;
}

void kvm__irq_line(struct vm *vm, uint32_t irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = (uint32_t)level };

	/* Devices call this on vCPU threads: a lost interrupt is a VMM failure, so the VM ends. */
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		vm__fail(vm, EXIT_VMM_FAILURE, "KVM_IRQ_LINE %u: %s", irq, strerror(errno));
}

/* Both fds are closed whatever happens to the other; the first failure is returned. */
int kvm__exit(struct vm *vm, char *err, size_t errlen)
{
	int r = 0;

	if (vm->vm_fd >= 0 && close(vm->vm_fd) < 0)
		r = error(err, errlen, "close(vm fd): %s", strerror(errno));
	if (vm->kvm_fd >= 0 && close(vm->kvm_fd) < 0 && !r)
		r = error(err, errlen, "close(/dev/kvm): %s", strerror(errno));
	vm->vm_fd = vm->kvm_fd = -1;
	vm->nslots = 0;
	return r;
}
