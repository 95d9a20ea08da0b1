/* x86 vCPUs: CPUID, the PVH entry state, and the run loop (one thread per boot vCPU). */
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "util.h"
#include "vm.h"

#define CPUID_MAX_ENTRIES 256
#define KVM_CPUID_SIGNATURE 0x40000000
#define KVM_CPUID_TIMING 0x40000010	/* TSC and APIC bus kHz, as VMware and QEMU define it */
#define KICK_SIGNAL SIGUSR1

/* The PVH ABI's GDT: null, null, flat 32-bit code (0x10), flat data (0x18), TSS (0x20). */
#define GDT_CODE 0x10
#define GDT_DATA 0x18
#define GDT_TSS 0x20

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       ((uint64_t)(flags & 0xf0ff) << 40) | ((uint64_t)(limit & 0x000f0000) << 32) |
	       (limit & 0x0000ffff);
}

static struct kvm_segment segment(uint64_t desc, uint16_t sel)
{
	uint32_t limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000));

	/* KVM wants the limit in bytes: with G set the descriptor counts 4 KiB units. */
	if ((desc >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	return (struct kvm_segment){
		.base = (uint32_t)(((desc >> 16) & 0xffffff) | ((desc >> 32) & 0xff000000)),
		.limit = limit,
		.selector = sel,
		.type = (desc >> 40) & 0xf,
		.present = (desc >> 47) & 1,
		.dpl = (desc >> 45) & 3,
		.db = (desc >> 54) & 1,
		.s = (desc >> 44) & 1,
		.l = (desc >> 53) & 1,
		.g = (desc >> 55) & 1,
		.avl = (desc >> 52) & 1,
	};
}

static void cpu__setup_cpuid(struct vm *vm, struct vcpu *v)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, sz);
	uint32_t apic = acpi__apic_id(v->id);
	int tsc_khz;

	if (!cpuid)
		die("out of memory");
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		die_perror("KVM_GET_SUPPORTED_CPUID");
	tsc_khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);

	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			/* The initial APIC id must match the MADT and SRAT entries of this vCPU. */
			e->ebx = (e->ebx & 0x0000ffff) | (apic << 24) |
				 ((vm->cfg.max_cpus > 1 ? vm->cfg.max_cpus : 1) << 16);
			e->ecx |= 1u << 31;	/* running under a hypervisor */
			if (vm->cfg.max_cpus > 1)
				e->edx |= 1u << 28;	/* HTT: the logical count above is valid */
			break;
		case 0xb:
		case 0x1f:
			e->edx = apic;	/* x2APIC id */
			break;
		case 0x8000001e:
			e->eax = apic;	/* AMD extended APIC id */
			break;
		case KVM_CPUID_SIGNATURE:
			if (tsc_khz > 0 && e->eax < KVM_CPUID_TIMING)
				e->eax = KVM_CPUID_TIMING;
			break;
		}
	}
	/* Guests without a PIT (ours) read the TSC frequency here instead of calibrating. */
	if (tsc_khz > 0 && cpuid->nent < CPUID_MAX_ENTRIES) {
		cpuid->entries[cpuid->nent++] = (struct kvm_cpuid_entry2){
			.function = KVM_CPUID_TIMING,
			.eax = (uint32_t)tsc_khz,
			.ebx = 1000000,	/* KVM's APIC timer runs at 1 GHz */
		};
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
		die_perror("KVM_SET_CPUID2 for vCPU %u", v->id);
	free(cpuid);
}

/* The state the PVH ABI promises at the 32-bit entry point. */
static void cpu__setup_pvh(struct vm *vm, struct vcpu *v)
{
	static const uint16_t code = 0xc09b, data = 0xc093, tss = 0x008b;
	uint64_t gdt[5] = {
		0, 0,
		gdt_entry(code, 0, 0xfffff),
		gdt_entry(data, 0, 0xfffff),
		gdt_entry(tss, 0, 0x67),
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = vm->pvh_entry,
		.rbx = PVH_START_INFO_ADDR,
		.rflags = 0x2,
	};

	vm__write(vm, BOOT_GDT_ADDR, gdt, sizeof(gdt));
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		die_perror("KVM_GET_SREGS");
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = segment(gdt[2], GDT_CODE);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(gdt[3], GDT_DATA);
	sregs.tr = segment(gdt[4], GDT_TSS);
	sregs.cr0 = 0x11;	/* PE | ET: protected mode, paging off */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		die_perror("KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		die_perror("KVM_SET_REGS");
}

void cpu__init(struct vm *vm, struct vcpu *v)
{
	int mmap_size;

	v->vm = vm;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)acpi__apic_id(v->id));
	if (v->fd < 0)
		die_perror("KVM_CREATE_VCPU %u", v->id);
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run))
		die_perror("KVM_GET_VCPU_MMAP_SIZE");
	v->run_size = (size_t)mmap_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED)
		die_perror("mmap of vCPU %u's kvm_run", v->id);
	cpu__setup_cpuid(vm, v);
	/* Only the BSP starts at the PVH entry; APs wait for INIT/SIPI in the in-kernel LAPIC. */
	if (v->id == 0)
		cpu__setup_pvh(vm, v);
}

bool cpu__emulate_io(struct vm *vm, struct kvm_run *run, size_t run_size)
{
	uint64_t off = run->io.data_offset, bytes = (uint64_t)run->io.count * run->io.size;
	uint8_t *data = (uint8_t *)run + off;

	/* KVM puts string I/O's count * size bytes in the shared page: never trust past its end. */
	if (off > run_size || bytes > run_size - off)
		return false;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus__write(&vm->pio, run->io.port, data, run->io.size);
		else
			bus__read(&vm->pio, run->io.port, data, run->io.size);
	}
	return true;
}

bool cpu__emulate_mmio(struct vm *vm, struct kvm_run *run)
{
	if (run->mmio.len > sizeof(run->mmio.data))
		return false;
	if (run->mmio.is_write)
		bus__write(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
	else
		bus__read(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len);
	return true;
}

static void cpu__report_crash(struct vcpu *v, const char *what)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "memvisor: vCPU %u: %s\n", v->id, what);
		return;
	}
	fprintf(stderr,
		"memvisor: vCPU %u: %s at rip=0x%llx rsp=0x%llx cr0=0x%llx cr3=0x%llx cr4=0x%llx "
		"efer=0x%llx\n",
		v->id, what, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		(unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
		(unsigned long long)sregs.cr4, (unsigned long long)sregs.efer);
}

static void *cpu__thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;

	while (!vm->stopping) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "memvisor: KVM_RUN on vCPU %u: %s\n", v->id, strerror(errno));
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (!cpu__emulate_io(vm, run, v->run_size)) {
				fprintf(stderr, "memvisor: vCPU %u: port I/O exit with %u x %u bytes "
					"at offset %llu of kvm_run\n", v->id, run->io.count,
					run->io.size, (unsigned long long)run->io.data_offset);
				vm__stop(vm, EXIT_GUEST_CRASH);
			}
			break;
		case KVM_EXIT_MMIO:
			if (!cpu__emulate_mmio(vm, run)) {
				fprintf(stderr, "memvisor: vCPU %u: MMIO exit of %u bytes\n", v->id,
					run->mmio.len);
				vm__stop(vm, EXIT_GUEST_CRASH);
			}
			break;
		case KVM_EXIT_HLT:
			cpu__report_crash(v, "halted with interrupts off");
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		case KVM_EXIT_SHUTDOWN:
			cpu__report_crash(v, "shutdown (triple fault)");
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "memvisor: vCPU %u: entry failed, reason 0x%llx\n", v->id,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "memvisor: vCPU %u: KVM internal error, suberror %u\n", v->id,
				run->internal.suberror);
			cpu__report_crash(v, "internal error");
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			fprintf(stderr, "memvisor: vCPU %u: unexpected exit reason %u\n", v->id,
				run->exit_reason);
			vm__stop(vm, EXIT_GUEST_CRASH);
			break;
		}
	}
	return NULL;
}

static void cpu__kick_handler(int sig)
{
	(void)sig;
}

void cpu__start(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = cpu__kick_handler };

	/* No SA_RESTART: the kick must make a blocked KVM_RUN return EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		die_perror("sigaction");
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int err = pthread_create(&v->thread, NULL, cpu__thread, v);

		if (err)
			die("pthread_create for vCPU %u: %s", i, strerror(err));
		v->started = true;
	}
}

void cpu__stop_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int err;

		if (!v->started)
			continue;
		/* immediate_exit closes the window between the stopping check and KVM_RUN. */
		v->run->immediate_exit = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		/*
		 * ESRCH: the thread has returned on its own already (vm->stopping), join reaps it.
		 * Any other failure leaves a thread that may still use kvm_run: die before unmapping.
		 */
		err = pthread_kill(v->thread, KICK_SIGNAL);
		if (err && err != ESRCH)
			die("pthread_kill of vCPU %u: %s", i, strerror(err));
		err = pthread_join(v->thread, NULL);
		if (err)
			die("pthread_join of vCPU %u: %s", i, strerror(err));
		v->started = false;
	}
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run && munmap(v->run, v->run_size) < 0)
			die_perror("munmap kvm_run");
		if (v->fd >= 0 && close(v->fd) < 0)
			die_perror("close vCPU fd");
		v->run = NULL;
		v->fd = -1;
	}
}
