/*
 * memvisor: a KVM VMM with Cloud Hypervisor's memory model.
 *
 * Order matters: everything that can reject the configuration (options, host resources, zone
 * files, the kernel and initramfs and where they go, the command line, the serial file) runs
 * before /dev/kvm is opened and before any guest memory is mapped, and dies with status 1.
 * Once a backing exists, every failure first tears the VM down from wherever setup got to
 * (vm__teardown): a backing the host refuses is still a rejected configuration (status 1);
 * anything after it is memvisor's or the host's failure (EXIT_VMM_FAILURE), reported in one line
 * and never exit()ed from a vCPU thread.
 */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "api/api.h"
#include "util.h"
#include "vm.h"

/* The one struct vm (see DEVELOPERS.md). */
static struct vm the_vm;

/*
 * The stop signals are blocked by loop__init before any thread exists and stay blocked: main
 * reads them from the loop's signalfd, so none interrupts setup or teardown. SIGPIPE is
 * ignored: a closed stdout is an EPIPE for the serial device, not the death of memvisor before
 * shared file zones are synced.
 */
static void vm__catch_signals(struct vm *vm)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	char err[256];

	/*
	 * A closed stdin, stdout or stderr would be reused by the next open: the epoll set as
	 * "stdin", the serial output in an unrelated file. Each becomes /dev/null instead.
	 */
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd)
			exit(EXIT_VMM_FAILURE);	/* no stderr to say it on */
	}
	if (loop__init(&vm->loop, err, sizeof(err)) < 0) {
		report("%s", err);
		exit(EXIT_VMM_FAILURE);
	}
	if (sigemptyset(&ign.sa_mask) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0) {
		report("sigaction(SIGPIPE): %s", strerror(errno));
		exit(EXIT_VMM_FAILURE);
	}
}

static void main__restore_terminal(void)
{
	serial__restore_terminal(&the_vm);
}

/*
 * Checks that need the kernel image and the layout, before any memory is mapped. --print-layout
 * makes them too: it accepts what a run accepts. Without a kernel (--print-layout's choice) only
 * the command line's room is known; returns NULL then.
 */
static struct boot_image *vm__load_boot_files(struct vm *vm)
{
	struct boot_image *img;
	char err[512];

	if (!vm->cfg.kernel && !vm->cfg.print_layout)
		die("--kernel: missing (a PVH ELF image or a Linux bzImage to boot)");
	if (!vm->cfg.kernel) {
		if (boot__check_cmdline(NULL, vm->cfg.cmdline, err, sizeof(err)) < 0)
			die("%s", err);
		return NULL;
	}
	img = boot__load_kernel(vm->cfg.kernel, err, sizeof(err));
	if (!img ||
	    (vm->cfg.initramfs && boot__load_initramfs(img, vm->cfg.initramfs, err, sizeof(err)) < 0) ||
	    boot__check_kernel(img, &vm->layout, err, sizeof(err)) < 0 ||
	    boot__check_cmdline(img, vm->cfg.cmdline, err, sizeof(err)) < 0)
		die("%s", err);
	return img;
}

/* The last rejection point: a zone that cannot be made leaves nothing behind (backing.h). */
static void vm__create_backings(struct vm *vm)
{
	char err[512];

	for (int i = 0; i < vm->cfg.nzones; i++) {
		const struct zone_config *z = &vm->cfg.zones[i];

		if (backing__create(&vm->backings[i], &vm->cfg, z, z->size + z->hotplug_size,
				    &vm->host, err, sizeof(err)) < 0) {
			/* Nothing half-made: earlier zones unmapped, their files as they were. */
			vm__stop(vm, EXIT_CONFIG);
			vm__teardown(vm);
			die("%s", err);
		}
		vm->nbackings = i + 1;
		/* The harness finds each zone in /proc/PID/smaps from these lines. */
		if (vm->verbose)
			fprintf(stderr, "memvisor: zone %s backing=%s host=0x%llx size=%llu page_size=%llu\n",
				z->id, backing__name(vm->backings[i].type),
				(unsigned long long)(uintptr_t)vm->backings[i].host,
				(unsigned long long)vm->backings[i].size,
				(unsigned long long)vm->backings[i].page_size);
	}
}

/* KVM, guest memory slots, boot data, vCPUs: everything the vCPUs need before they start. */
static int vm__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	if (kvm__init(vm, err, errlen) < 0 ||
	    kvm__register_memory(vm, err, errlen) < 0 ||
	    boot__setup(vm, img, err, errlen) < 0)
		return -1;
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++)
		if (cpu__init(vm, &vm->vcpus[i], err, errlen) < 0)
			return -1;
	return 0;
}

/*
 * Start the vCPUs and wait in the main loop until the VM is stopping. A stop signal that came
 * during setup is taken first: a VM asked to stop never starts.
 */
static int vm__run(struct vm *vm, char *err, size_t errlen)
{
	if (loop__poll(vm, 0, err, errlen) < 0)
		return -1;
	if (vm__stopping(vm))
		return 0;
	if (vm__set_state(vm, VM_RUNNING, err, errlen) < 0 ||
	    cpu__start(vm, err, errlen) < 0)
		return -1;
	return loop__run(vm, err, errlen);
}

int main(int argc, char **argv)
{
	struct vm *vm = &the_vm;
	struct boot_image *img;
	char err[512];
	int status;

	vm__init(vm);
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		die_perror("clock_gettime");
	if (config__parse(&vm->cfg, argc, argv, err, sizeof(err)) < 0)
		die("%s", err);
	if (vm->cfg.help) {
		config__print_help(stdout);
		return 0;
	}
	if (vm->cfg.version) {
		printf("memvisor %s\n", MEMVISOR_VERSION);
		return 0;
	}
	vm->verbose = vm->cfg.verbose;
	vm__catch_signals(vm);
	/* A raw terminal is given back on every way out, exit() and die() included. */
	if (atexit(main__restore_terminal) != 0)
		die("atexit failed");
	if (host__probe(&vm->host, err, sizeof(err)) < 0 ||
	    config__validate(&vm->cfg, &vm->host, err, sizeof(err)) < 0 ||
	    layout__build(&vm->layout, &vm->cfg, err, sizeof(err)) < 0)
		die("%s", err);
	img = vm__load_boot_files(vm);
	if (vm->cfg.print_layout) {
		boot__free(img);
		layout__print_json(&vm->layout, &vm->cfg, stdout);
		vm__stop(vm, 0);
		status = vm__teardown(vm);
		config__free(&vm->cfg);
		return status;
	}
	/* No KVM needed: a bad --serial file= is refused here, before any guest memory. */
	if (vm__init_devices(vm, err, sizeof(err)) < 0)
		die("%s", err);
	/* Still a rejected configuration (an existing socket path): nothing else to undo yet. */
	if (api__start(vm, err, sizeof(err)) < 0) {
		vm__stop(vm, EXIT_CONFIG);
		vm__teardown(vm);
		die("%s", err);
	}
	vm__create_backings(vm);

	/* From here on a failure is memvisor's or the host's, not the configuration's. */
	if (vm__setup(vm, img, err, sizeof(err)) < 0 || vm__run(vm, err, sizeof(err)) < 0)
		vm__fail(vm, EXIT_VMM_FAILURE, "%s", err);
	boot__free(img);
	status = vm__teardown(vm);
	config__free(&vm->cfg);
	return status;
}
