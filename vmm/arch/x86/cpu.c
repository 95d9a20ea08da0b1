/* x86 vCPUs: CPUID, the boot protocol's entry state, the run loop (a thread per boot vCPU). */
#include <asm/kvm_para.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "util.h"
#include "vm.h"

#define CPUID_MAX_ENTRIES 256
#define KVM_CPUID_TIMING 0x40000010	/* TSC and APIC bus kHz, as VMware and QEMU define it */
#define KICK_SIGNAL SIGUSR1

/*
 * The boot GDT: null, null, flat code (0x10), flat data (0x18), TSS (0x20): the selectors of the
 * PVH ABI and of Linux's boot protocol (__BOOT_CS, __BOOT_DS).
 */
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

static int cpu__setup_cpuid(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, sz);
	uint32_t apic = acpi__apic_id(v->id);
	int tsc_khz;

	if (!cpuid)
		return error(err, errlen, "vCPU %u: out of memory for CPUID", v->id);
	cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		error(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(cpuid);
		return -1;
	}
	/* Optional: without it the guest calibrates, so a failure only leaves the leaf out. */
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
		case KVM_CPUID_FEATURES:
			/*
			 * kvm_pv_eoi=off: the guest's EOI is an APIC write that exits, as in QEMU's
			 * kvm-pv-eoi=off. The test host needs it (conformance/linux.py says why).
			 */
			if (!vm->cfg.kvm_pv_eoi)
				e->eax &= ~(1u << KVM_FEATURE_PV_EOI);
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
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		error(err, errlen, "KVM_SET_CPUID2 for vCPU %u: %s", v->id, strerror(errno));
		free(cpuid);
		return -1;
	}
	free(cpuid);
	return 0;
}

/*
 * The entry state the boot protocol asked for (vm->boot_cpu): flat segments from a GDT of our
 * own, 32-bit protected mode without paging (PVH) or 64-bit mode on the protocol's page tables
 * (Linux), interrupts off.
 */
static int cpu__setup_boot(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	const struct boot_cpu *b = &vm->boot_cpu;
	bool long_mode = b->mode == BOOT_CPU_LONG64;
	/* 64-bit code has L set and D clear; the data descriptor is the same in both modes. */
	uint16_t code = long_mode ? 0xa09b : 0xc09b, data = 0xc093, tss = 0x008b;
	uint64_t gdt[5] = {
		0, 0,
		gdt_entry(code, 0, 0xfffff),
		gdt_entry(data, 0, 0xfffff),
		gdt_entry(tss, 0, 0x67),
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = b->rip,
		.rbx = b->rbx,
		.rsi = b->rsi,
		.rflags = 0x2,
	};

	if (vm__write(vm, BOOT_GDT_ADDR, gdt, sizeof(gdt), err, errlen) < 0)
		return -1;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return error(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
	sregs.gdt.base = BOOT_GDT_ADDR;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = segment(gdt[2], GDT_CODE);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(gdt[3], GDT_DATA);
	sregs.tr = segment(gdt[4], GDT_TSS);
	if (long_mode) {
		sregs.cr0 = 0x80000011;	/* PG | ET | PE */
		sregs.cr3 = b->cr3;
		sregs.cr4 = 0x20;	/* PAE: long mode needs it */
		sregs.efer = 0x500;	/* LMA | LME */
	} else {
		sregs.cr0 = 0x11;	/* PE | ET: protected mode, paging off */
		sregs.cr4 = 0;
		sregs.efer = 0;
	}
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return error(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return error(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

/* On failure what was made stays in v (fd, kvm_run) for cpu__exit to undo. */
int cpu__init(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	void *run;
	int mmap_size;

	v->vm = vm;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)acpi__apic_id(v->id));
	if (v->fd < 0)
		return error(err, errlen, "KVM_CREATE_VCPU %u: %s", v->id, strerror(errno));
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < 0)
		return error(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	if (mmap_size < (int)sizeof(struct kvm_run))
		return error(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %d bytes, kvm_run needs %zu",
			     mmap_size, sizeof(struct kvm_run));
	run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return error(err, errlen, "mmap of vCPU %u's kvm_run: %s", v->id, strerror(errno));
	v->run = run;
	v->run_size = (size_t)mmap_size;
	if (cpu__setup_cpuid(vm, v, err, errlen) < 0)
		return -1;
	/* Only the BSP starts at the kernel's entry; APs wait for INIT/SIPI in the in-kernel LAPIC. */
	if (v->id == 0 && cpu__setup_boot(vm, v, err, errlen) < 0)
		return -1;
	return 0;
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

/*
 * Where vCPU v is: registers and the 16 bytes at rip, read through the guest's own page tables
 * (KVM_TRANSLATE). -1 when KVM does not give the registers. Not while the vCPU is in KVM_RUN on
 * another thread: KVM_GET_REGS would wait for it.
 */
static int cpu__describe(struct vm *vm, struct vcpu *v, char *buf, size_t len)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_translation tr;
	char code[3 * 16 + 1] = "";
	const uint8_t *p;
	int n = 16;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	tr = (struct kvm_translation){ .linear_address = sregs.cs.base + regs.rip };
	/* Up to the page's end: the next linear page may be anywhere physically. */
	if ((tr.linear_address & 0xfff) > 0x1000 - 16)
		n = (int)(0x1000 - (tr.linear_address & 0xfff));
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid && vm__mem_lock(vm, false)) {
		if ((p = vm__gpa_to_hva(vm, tr.physical_address, (uint64_t)n)))
			for (int b = 0; b < n; b++)
				snprintf(code + 3 * b, sizeof(code) - 3 * (size_t)b, " %02x", p[b]);
		vm__mem_unlock(vm);
	}
	snprintf(buf, len, "rip=0x%llx rsp=0x%llx rflags=0x%llx cs=0x%x cr0=0x%llx cr3=0x%llx "
		 "cr4=0x%llx efer=0x%llx code:%s", (unsigned long long)regs.rip,
		 (unsigned long long)regs.rsp, (unsigned long long)regs.rflags, sregs.cs.selector,
		 (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
		 (unsigned long long)sregs.cr4, (unsigned long long)sregs.efer,
		 code[0] ? code : " unmapped");
	return 0;
}

/* A guest crash: its registers say where, when KVM still gives them. */
static void cpu__crash(struct vcpu *v, const char *what)
{
	char where[320];

	if (cpu__describe(v->vm, v, where, sizeof(where)) < 0)
		vm__fail(v->vm, EXIT_GUEST_CRASH, "vCPU %u: %s", v->id, what);
	else
		vm__fail(v->vm, EXIT_GUEST_CRASH, "vCPU %u: %s at %s", v->id, what, where);
}

/*
 * Every way out of the loop goes through vm__stop, whose status says whose fault it was: the
 * guest's (EXIT_GUEST_CRASH), memvisor's or the host's (EXIT_VMM_FAILURE), or a normal end.
 * Nothing here may exit(): main must still join this thread and tear the VM down.
 */
static void *cpu__thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct kvm_run *run = v->run;
	char why[128];

	while (!vm__stopping(vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vm__fail(vm, EXIT_VMM_FAILURE, "KVM_RUN on vCPU %u: %s", v->id,
				 strerror(errno));
			break;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			/* KVM itself would have to be wrong: not the guest's doing. */
			if (!cpu__emulate_io(vm, run, v->run_size))
				vm__fail(vm, EXIT_VMM_FAILURE, "vCPU %u: port I/O exit with %u x "
					 "%u bytes at offset %llu of kvm_run", v->id, run->io.count,
					 run->io.size, (unsigned long long)run->io.data_offset);
			break;
		case KVM_EXIT_MMIO:
			if (!cpu__emulate_mmio(vm, run))
				vm__fail(vm, EXIT_VMM_FAILURE, "vCPU %u: MMIO exit of %u bytes",
					 v->id, run->mmio.len);
			break;
		case KVM_EXIT_HLT:
			cpu__crash(v, "halted with interrupts off");
			break;
		case KVM_EXIT_SHUTDOWN:
			cpu__crash(v, "shutdown (triple fault)");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			vm__fail(vm, EXIT_GUEST_CRASH, "vCPU %u: entry failed, reason 0x%llx",
				 v->id, (unsigned long long)
				 run->fail_entry.hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(why, sizeof(why), "KVM internal error, suberror %u",
				 run->internal.suberror);
			cpu__crash(v, why);
			break;
		case KVM_EXIT_INTR:
			break;
		default:
			vm__fail(vm, EXIT_GUEST_CRASH, "vCPU %u: unexpected exit reason %u", v->id,
				 run->exit_reason);
			break;
		}
	}
	return NULL;
}

static void cpu__kick_handler(int sig)
{
	(void)sig;
}

int cpu__start(struct vm *vm, char *err, size_t errlen)
{
	struct sigaction sa = { .sa_handler = cpu__kick_handler };

	/* No SA_RESTART: the kick must make a blocked KVM_RUN return EINTR. */
	if (sigemptyset(&sa.sa_mask) < 0 || sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return error(err, errlen, "sigaction(SIGUSR1): %s", strerror(errno));
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int e;

		/* From the first thread on, the guest may write its memory: files keep it. */
		vm->vcpus_started = true;
		e = pthread_create(&v->thread, NULL, cpu__thread, v);
		if (e)
			return error(err, errlen, "pthread_create for vCPU %u: %s", i, strerror(e));
		v->started = true;
	}
	return 0;
}

int cpu__stop_all(struct vm *vm, char *err, size_t errlen)
{
	int r = 0;

	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int e;

		if (!v->started)
			continue;
		/* immediate_exit closes the window between the stopping check and KVM_RUN. */
		v->run->immediate_exit = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		/*
		 * ESRCH: the thread has returned on its own already (the VM is stopping), join
		 * reaps it. Any other failure leaves a thread that may block in KVM_RUN: joining it
		 * could wait for ever, so it is left running, with everything it may use.
		 */
		e = pthread_kill(v->thread, KICK_SIGNAL);
		if (e && e != ESRCH) {
			if (!r)
				r = error(err, errlen, "pthread_kill of vCPU %u: %s", i,
					  strerror(e));
			continue;
		}
		e = pthread_join(v->thread, NULL);
		if (e) {
			if (!r)
				r = error(err, errlen, "pthread_join of vCPU %u: %s", i,
					  strerror(e));
			continue;
		}
		v->started = false;
	}
	return r;
}

/*
 * The return addresses on a hung vCPU's stack say who called the code it hangs in (which lock a
 * spinning kernel waits for, say); symbolised against the guest kernel's System.map they are a
 * backtrace. Only words that look like x86-64 kernel text are shown, to keep the line short.
 */
static void cpu__report_stack(struct vm *vm, struct vcpu *v)
{
	enum { WORDS = 96 };
	struct kvm_regs regs;
	char line[WORDS * 17 + 1] = "";
	size_t used = 0;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || (regs.rsp & 7) || !vm__mem_lock(vm, false))
		return;
	for (unsigned w = 0; w < WORDS; w++) {
		struct kvm_translation tr = { .linear_address = regs.rsp + 8ull * w };
		const uint64_t *p;

		if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid ||
		    !(p = vm__gpa_to_hva(vm, tr.physical_address, 8)))
			break;
		if (*p >= 0xffffffff80000000ull && *p < 0xffffffffc0000000ull)
			used += (size_t)snprintf(line + used, sizeof(line) - used, " %llx",
						 (unsigned long long)*p);
	}
	vm__mem_unlock(vm);
	if (used)
		report("vCPU %u stack text:%s", v->id, line);
}

/*
 * Where each vCPU was when the VM stopped, for -v: a guest that hangs is killed by a signal, and
 * these lines (with the bytes at rip, through the guest's own page tables) say where it hung.
 * Joined threads only: KVM_GET_REGS on a running vCPU would wait for its KVM_RUN to return.
 */
void cpu__report_state(struct vm *vm)
{
	char where[320];

	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->fd >= 0 && !v->started && cpu__describe(vm, v, where, sizeof(where)) == 0) {
			report("vCPU %u at stop: %s", i, where);
			cpu__report_stack(vm, v);
		}
	}
}

int cpu__exit(struct vm *vm, char *err, size_t errlen)
{
	int r = 0;

	/* Every vCPU is undone whatever happens to the others; the first failure is returned. */
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run && munmap(v->run, v->run_size) < 0 && !r)
			r = error(err, errlen, "munmap of vCPU %u's kvm_run: %s", i,
				  strerror(errno));
		if (v->fd >= 0 && close(v->fd) < 0 && !r)
			r = error(err, errlen, "close of vCPU %u's fd: %s", i, strerror(errno));
		v->run = NULL;
		v->fd = -1;
	}
	return r;
}
