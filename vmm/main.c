/*
 * memvisor: a KVM VMM with Cloud Hypervisor's memory model.
 *
 * Order matters: everything that can reject the configuration (options, host resources, the
 * kernel image) runs before /dev/kvm is opened and before any guest memory is mapped.
 */
#include <signal.h>
#include <unistd.h>

#include "util.h"
#include "vm.h"

#define MEMVISOR_VERSION "0.1"

/* The one struct vm (see DEVELOPERS.md). */
static struct vm the_vm = { .kvm_fd = -1, .vm_fd = -1 };

/* SIGTERM and friends end the VM cleanly: shared file-backed zones are synced, nothing leaks. */
static void vm__signal(int sig)
{
	vm__stop(&the_vm, 128 + sig);
}

static void vm__catch_signals(void)
{
	struct sigaction sa = { .sa_handler = vm__signal };
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			die_perror("sigaction");
}

static void vm__check_files(const struct vm_config *cfg)
{
	if (cfg->initramfs && access(cfg->initramfs, R_OK) < 0)
		die_perror("--initramfs: cannot read '%s'", cfg->initramfs);
}

static void vm__create_backings(struct vm *vm)
{
	char err[512];

	for (int i = 0; i < vm->cfg.nzones; i++) {
		const struct zone_config *z = &vm->cfg.zones[i];

		if (backing__create(&vm->backings[i], &vm->cfg, z, z->size + z->hotplug_size,
				    &vm->host, err, sizeof(err)) < 0) {
			/* Nothing half-made: earlier zones are unmapped (and temp files gone). */
			while (i-- > 0)
				backing__destroy(&vm->backings[i]);
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

static void vm__destroy(struct vm *vm)
{
	cpu__stop_all(vm);
	kvm__exit(vm);
	for (int i = 0; i < vm->nbackings; i++)
		backing__destroy(&vm->backings[i]);
	vm->nbackings = 0;
	serial__exit(vm);
	config__free(&vm->cfg);
	sem_destroy(&vm->stopped);
	pthread_mutex_destroy(&vm->io_lock);
}

int main(int argc, char **argv)
{
	struct vm *vm = &the_vm;
	struct boot_image *img;
	char err[512];

	clock_gettime(CLOCK_MONOTONIC, &vm->start);
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
	if (!vm->cfg.kernel)
		die("--kernel: missing (a PVH ELF image to boot)");
	img = boot__load_kernel(vm->cfg.kernel, err, sizeof(err));
	if (!img)
		die("%s", err);
	vm__check_files(&vm->cfg);

	if (pthread_mutex_init(&vm->io_lock, NULL) || sem_init(&vm->stopped, 0, 0) < 0)
		die_perror("cannot initialise locks");
	vm__catch_signals();
	for (unsigned i = 0; i < MAX_VCPUS; i++)
		vm->vcpus[i] = (struct vcpu){ .id = i, .fd = -1 };
	vm__create_backings(vm);
	kvm__init(vm);
	kvm__register_memory(vm);
	boot__setup(vm, img);
	boot__free(img);
	serial__init(vm);
	for (unsigned i = 0; i < vm->cfg.boot_cpus; i++)
		cpu__init(vm, &vm->vcpus[i]);
	cpu__start(vm);

	while (sem_wait(&vm->stopped) < 0)
		if (errno != EINTR)
			die_perror("sem_wait");
	{
		int code = vm->exit_code;

		vm__destroy(vm);
		return code;
	}
}
