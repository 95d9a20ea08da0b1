/* struct vm: the one piece of mutable state of memvisor. */
#ifndef MEMVISOR_VM_H
#define MEMVISOR_VM_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

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

struct serial {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thr_irq_pending;
	int out_fd;		/* -1 when --serial off */
	bool owns_fd;
};

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
	struct serial serial;
	struct timespec start;	/* when memvisor started: the debug port's time base */

	pthread_mutex_t io_lock;	/* devices are shared by every vCPU thread */
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

/* kvm.c */
void kvm__init(struct vm *vm);
void kvm__register_memory(struct vm *vm);
/* Called by devices on vCPU threads: a failure stops the VM with EXIT_GUEST_CRASH. */
void kvm__irq_line(struct vm *vm, uint32_t irq, int level);
void kvm__exit(struct vm *vm);

/* arch/x86/cpu.c */
void cpu__init(struct vm *vm, struct vcpu *v);
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

/* devices: each returns true when it handled the port */
bool serial__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size);
void serial__init(struct vm *vm);
void serial__exit(struct vm *vm);
bool exit_port__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size);
bool debug_port__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size);

#endif
