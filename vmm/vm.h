/* struct vm: the one piece of mutable state of memvisor. */
#ifndef MEMVISOR_VM_H
#define MEMVISOR_VM_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "bus.h"
#include "device.h"
#include "memory/backing.h"
#include "memory/config.h"
#include "memory/layout.h"

struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
};

struct serial;		/* devices/serial.c's own */

/* Exit statuses of memvisor beside the guest's own (exit port) codes. */
#define EXIT_CONFIG 1		/* rejected configuration or setup failure */
#define EXIT_GUEST_CRASH 2	/* triple fault, internal KVM error */

struct vm {
	struct vm_config cfg;
	struct host_info host;
	struct layout layout;
	struct backing backings[MAX_ZONES];
	int nbackings;

	int kvm_fd, vm_fd;
	int nslots;
	uint64_t pvh_entry;	/* guest physical 32-bit entry point */

	struct vcpu vcpus[MAX_VCPUS];
	struct timespec start;	/* when memvisor started: the debug port's time base */

	/* Built by vm__init_devices before any vCPU runs, read-only while they run (bus.h). */
	struct bus pio, mmio;
	struct gsi_alloc gsi;
	struct mmio_window mmio_window;
	struct devices devices;
	struct serial *serial;

	sem_t stopped;			/* posted when a vCPU decides the VM is over */
	volatile bool stopping;
	bool vcpus_started;		/* the guest may have written to its memory since */
	bool verbose;			/* -v: log each zone's mapping and the boot steps */
	int exit_code;
};

/* Host address of guest physical [gpa, gpa+len), or NULL when not all in one RAM range. */
void *vm__gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/* Copy into guest memory during setup (main thread); dies when not guest RAM (a VMM bug). */
void vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len);
/* End the VM with this exit status (first caller wins); callable from any vCPU thread. */
void vm__stop(struct vm *vm, int code);
/* Seconds since memvisor started; a clock that cannot be read stops the VM (vCPU context). */
double vm__uptime(struct vm *vm);
/*
 * The buses, the GSI and MMIO-window allocators, then every device of device_table in order.
 * Needs no KVM: runs before /dev/kvm is opened. On failure nothing is left running: -1, err.
 */
int vm__init_devices(struct vm *vm, char *err, size_t errlen);
/* The devices in reverse order, then the buses; with the vCPUs stopped. */
void vm__exit_devices(struct vm *vm);

/* kvm.c */
void kvm__init(struct vm *vm);
void kvm__register_memory(struct vm *vm);
/* Called by devices on vCPU threads: a failure stops the VM with EXIT_GUEST_CRASH. */
void kvm__irq_line(struct vm *vm, uint32_t irq, int level);
void kvm__exit(struct vm *vm);

/* arch/x86/cpu.c */
void cpu__init(struct vm *vm, struct vcpu *v);
/*
 * Hand a KVM_EXIT_IO (string I/O included) or KVM_EXIT_MMIO of run to the PIO or MMIO bus.
 * False when the exit describes data outside run (run_size bytes for I/O): nothing is done.
 */
bool cpu__emulate_io(struct vm *vm, struct kvm_run *run, size_t run_size);
bool cpu__emulate_mmio(struct vm *vm, struct kvm_run *run);
void cpu__start(struct vm *vm);
void cpu__stop_all(struct vm *vm);

/* arch/x86/boot.c */
struct boot_image;
/* These three run before any guest memory exists; each returns NULL/-1 with one line in err. */
struct boot_image *boot__load_kernel(const char *path, char *err, size_t errlen);
int boot__load_initramfs(struct boot_image *img, const char *path, char *err, size_t errlen);
/* Kernel segments must lie in boot RAM above 1 MiB; places the initramfs (if any). */
int boot__check_kernel(struct boot_image *img, const struct layout *l, char *err, size_t errlen);
void boot__setup(struct vm *vm, const struct boot_image *img);
void boot__free(struct boot_image *img);

#endif
