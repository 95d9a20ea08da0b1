/*
 * memvisor: a KVM VMM with Cloud Hypervisor's memory model.
 *
 * Order matters: everything that can reject the configuration (options, host resources, zone
 * files, the kernel and initramfs and where they go, the command line, the serial file) runs
 * before /dev/kvm is opened and before any guest memory is mapped.
 */
#include <signal.h>
#include <unistd.h>

#include "util.h"
#include "vm.h"

#define MEMVISOR_VERSION "0.1"

/* The one struct vm (see DEVELOPERS.md). */
static struct vm the_vm = { .kvm_fd = -1, .vm_fd = -1 };

/* These end the VM cleanly: shared file-backed zones are synced, nothing leaks. */
static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };

static void vm__signal(int sig)
{
	vm__stop(&the_vm, 128 + sig);
}

static void vm__mask_stop_signals(int how)
{
	sigset_t set;
	int err;

	if (sigemptyset(&set) < 0)
		die_perror("sigemptyset");
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if (sigaddset(&set, stop_signals[i]) < 0)
			die_perror("sigaddset");
	err = pthread_sigmask(how, &set, NULL);
	if (err)
		die("pthread_sigmask: %s", strerror(err));
}

/*
 * The stop signals stay blocked until the vCPUs run: setup is never interrupted (the handlers
 * have no SA_RESTART), and one that came meanwhile is taken when main unblocks them. vCPU threads
 * inherit the blocked mask, so only main takes them; the vCPU kick (SIGUSR1) is not among them.
 * SIGPIPE is ignored: a closed stdout is an EPIPE for the serial device, not the death of
 * memvisor before shared file zones are synced.
 */
static void vm__catch_signals(void)
{
	struct sigaction sa = { .sa_handler = vm__signal }, ign = { .sa_handler = SIG_IGN };

	vm__mask_stop_signals(SIG_BLOCK);
	if (sigemptyset(&sa.sa_mask) < 0 || sigemptyset(&ign.sa_mask) < 0)
		die_perror("sigemptyset");
	for (size_t i = 0; i < ARRAY_SIZE(stop_signals); i++)
		if (sigaction(stop_signals[i], &sa, NULL) < 0)
			die_perror("sigaction");
	if (sigaction(SIGPIPE, &ign, NULL) < 0)
		die_perror("sigaction(SIGPIPE)");
}

/* Checks that need the kernel image and the layout, before any memory is mapped. */
static struct boot_image *vm__load_boot_files(struct vm *vm)
{
	struct boot_image *img;
	char err[512];
	size_t len = vm->cfg.cmdline ? strlen(vm->cfg.cmdline) : 0;

	if (!vm->cfg.kernel)
		die("--kernel: missing (a PVH ELF image to boot)");
	if (len >= PVH_CMDLINE_MAX)
		die("--cmdline: %zu bytes, at most %llu", len, PVH_CMDLINE_MAX - 1);
	img = boot__load_kernel(vm->cfg.kernel, err, sizeof(err));
	if (!img ||
	    (vm->cfg.initramfs && boot__load_initramfs(img, vm->cfg.initramfs, err, sizeof(err)) < 0) ||
	    boot__check_kernel(img, &vm->layout, err, sizeof(err)) < 0)
		die("%s", err);
	return img;
}

/*
 * die() once the backings exist: undo what setup did to the file system (a created file=
 * removed, a user's file shrunk back), but only while the guest has not run. From then on the
 * files hold the guest's data, as after a normal run, and vCPU threads may still be using the
 * mappings: exit() is left to drop them. A normal end has destroyed the backings already.
 */
static void vm__abort(void)
{
	struct vm *vm = &the_vm;

	if (vm->vcpus_started)
		return;
	while (vm->nbackings > 0)
		backing__abort(&vm->backings[--vm->nbackings]);
}

static void vm__create_backings(struct vm *vm)
{
	char err[512];

	for (int i = 0; i < vm->cfg.nzones; i++) {
		const struct zone_config *z = &vm->cfg.zones[i];

		if (backing__create(&vm->backings[i], &vm->cfg, z, z->size + z->hotplug_size,
				    &vm->host, err, sizeof(err)) < 0) {
			/* Nothing half-made: earlier zones unmapped, their files as they were. */
			vm__abort();
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
	if (atexit(vm__abort)) {
		vm__abort();
		die("atexit failed");
	}
}

static void vm__destroy(struct vm *vm)
{
	cpu__stop_all(vm);
	kvm__exit(vm);
	for (int i = 0; i < vm->nbackings; i++)
		backing__destroy(&vm->backings[i]);
	vm->nbackings = 0;
	vm__exit_devices(vm);
	config__free(&vm->cfg);
	if (sem_destroy(&vm->stopped) < 0)
		die_perror("sem_destroy");
}

int main(int argc, char **argv)
{
	struct vm *vm = &the_vm;
	struct boot_image *img;
	char err[512];
	int code;

	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		die_perror("clock_gettime");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			/* Not a configuration option: take it out before the parser sees argv. */
			vm->verbose = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
			continue;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			config__print_help(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("memvisor %s\n", MEMVISOR_VERSION);
			return 0;
		}
	}
	vm__catch_signals();
	if (config__parse(&vm->cfg, argc, argv, err, sizeof(err)) < 0 ||
	    host__probe(&vm->host, err, sizeof(err)) < 0 ||
	    config__validate(&vm->cfg, &vm->host, err, sizeof(err)) < 0 ||
	    layout__build(&vm->layout, &vm->cfg, err, sizeof(err)) < 0)
		die("%s", err);
	if (vm->cfg.print_layout) {
		layout__print_json(&vm->layout, &vm->cfg, stdout);
		config__free(&vm->cfg);
		return 0;
	}
	img = vm__load_boot_files(vm);
	/* No KVM needed: a bad --serial file= is refused here, before any guest memory. */
	if (vm__init_devices(vm, err, sizeof(err)) < 0)
		die("%s", err);

	if (sem_init(&vm->stopped, 0, 0) < 0)
		die_perror("sem_init");
	for (unsigned i = 0; i < MAX_VCPUS; i++)
		vm->vcpus[i] = (struct vcpu){ .id = i, .fd = -1 };
	vm__create_backings(vm);
	kvm__init(vm);
	kvm__register_memory(vm);
	boot__setup(vm, img);
	boot__free(img);
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++)
		cpu__init(vm, &vm->vcpus[i]);

	/* The stop signals are blocked so far; nothing sets stopping yet, but never start late. */
	if (!vm->stopping) {
		vm->vcpus_started = true;
		cpu__start(vm);
		vm__mask_stop_signals(SIG_UNBLOCK);
		while (sem_wait(&vm->stopped) < 0)
			if (errno != EINTR)
				die_perror("sem_wait");
		/* The teardown (msync of shared files) is not interrupted either. */
		vm__mask_stop_signals(SIG_BLOCK);
	}
	code = vm->exit_code;
	vm__destroy(vm);
	return code;
}
