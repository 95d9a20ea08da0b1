/* struct vm: the one piece of mutable state of memvisor. */
#ifndef MEMVISOR_VM_H
#define MEMVISOR_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "arch/x86/boot.h"
#include "bus.h"
#include "device.h"
#include "loop.h"
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

#define MEMVISOR_VERSION "0.1"

struct serial;		/* devices/serial.c's own */
struct api;		/* api/server.c's */
struct acpi_power;	/* devices/acpi_power.c's */
struct ged;		/* devices/ged.c's */
struct mem_hotplug;	/* devices/mem_hotplug.c's; NULL without an ACPI hotplug area */
struct virtio_mem;	/* devices/virtio_mem.c's */
struct virtio_balloon;	/* devices/virtio_balloon.c's */

/*
 * Exit statuses of memvisor beside the guest's own (exit port) codes and 128 + a stop signal
 * (loop__signal_status). README.md lists them for users.
 */
#define EXIT_CONFIG 1		/* rejected configuration: main's die(), before any KVM or memory */
#define EXIT_GUEST_CRASH 2	/* triple fault, KVM internal error, failed entry */
#define EXIT_VMM_FAILURE 3	/* memvisor or the host failed once setup went past the checks */
#define EXIT_GUEST_RESET 4	/* the guest reset the machine (reboot): memvisor does not restart it */

/*
 * The VM's life. The only changes: CREATED -> RUNNING (main starts the vCPUs), CREATED or
 * RUNNING -> STOPPING (vm__stop, any thread: the guest's exit, a crash, a signal, a failure),
 * STOPPING -> STOPPED (the teardown is done). STOPPING before RUNNING means the vCPUs never ran.
 */
enum vm_state { VM_CREATED, VM_RUNNING, VM_STOPPING, VM_STOPPED };

struct vm {
	struct vm_config cfg;
	struct host_info host;
	struct layout layout;
	struct backing backings[MAX_ZONES];
	int nbackings;

	int kvm_fd, vm_fd;
	int nslots;
	struct boot_cpu boot_cpu;	/* the boot vCPU's entry state (boot__setup) */

	struct vcpu vcpus[MAX_VCPUS];
	struct timespec start;	/* when memvisor started: the debug port's time base */

	/* Built by vm__init_devices before any vCPU runs, read-only while they run (bus.h). */
	struct bus pio, mmio;
	struct gsi_alloc gsi;
	struct mmio_window mmio_window;
	struct devices devices;
	bool devices_up;		/* the buses exist: vm__exit_devices has work */
	struct serial *serial;
	struct acpi_power *acpi_power;
	struct ged *ged;
	struct mem_hotplug *mem_hotplug;
	struct virtio_mem *virtio_mem[MAX_ZONES];	/* per zone; NULL: no virtio-mem region */
	struct virtio_balloon *balloon;	/* NULL: no --balloon */
	unsigned nvirtio_mmio;		/* virtio-mmio transports so far: the next one's _UID */

	/*
	 * The guest-memory lock (vm__mem_lock): shared while guest RAM is used through pointers
	 * from vm__gpa_to_hva after the vCPUs start, exclusive while memory goes back to the host.
	 */
	pthread_rwlock_t mem_lock;

	struct loop loop;		/* main waits here; vm__stop wakes it */
	struct api *api;		/* --api-socket: served from the loop (api/api.h) */
	/*
	 * enum vm_state in the low byte, the exit status above it: one word, changed only by
	 * compare-and-swap, so the transition to VM_STOPPING and its status are seen together.
	 */
	uint32_t run_state;
	bool vcpus_started;		/* the guest may have written to its memory since */
	bool verbose;			/* -v: log each zone's mapping and the boot steps */
};

/* A VM before setup: nothing open, nothing mapped, VM_CREATED. */
void vm__init(struct vm *vm);

/*
 * Host address of guest physical [gpa, gpa+len), or NULL when not all in one RAM range or, in
 * a virtio-mem region, not all in plugged blocks. Takes the virtio-mem device's lock: never
 * call it with that lock held.
 */
void *vm__gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len);
/*
 * Once vCPUs run, a pointer from vm__gpa_to_hva is good only under the guest-memory lock:
 * shared for using guest RAM (a device's queue processing, a vCPU's register report),
 * exclusive for giving it back to the host (virtio-mem's unplug). Without it a device on one
 * vCPU could copy into a block that virtio-mem on another has just discarded: SIGBUS on a
 * hugetlb zone whose pool is empty, elsewhere a write into memory the host took back. false
 * (the VM then fails, vm__fail) only on a lock error: the caller must not go on.
 */
bool vm__mem_lock(struct vm *vm, bool exclusive);
void vm__mem_unlock(struct vm *vm);
/* Copy into guest memory during setup: -1 and err when the range is not guest RAM. */
int vm__write(struct vm *vm, uint64_t gpa, const void *src, uint64_t len, char *err,
	      size_t errlen);

const char *vm_state__name(enum vm_state s);
/* Whether the state machine allows from -> to (VM_STOPPING is entered through vm__stop). */
bool vm_state__allowed(enum vm_state from, enum vm_state to);
enum vm_state vm__state(const struct vm *vm);
/* STOPPING or STOPPED: vCPU threads leave their run loop, failures stop being reported. */
bool vm__stopping(const struct vm *vm);
/* The status vm__stop recorded (0 until then). */
int vm__exit_status(const struct vm *vm);
/* CREATED -> RUNNING or STOPPING -> STOPPED; any other change: -1, err, nothing changed. */
int vm__set_state(struct vm *vm, enum vm_state to, char *err, size_t errlen);
/*
 * End the VM with this exit status (0-255, as exit(3) keeps it) and wake the main loop. Any
 * thread. True for the call that moved the VM to STOPPING; later calls change nothing.
 */
bool vm__stop(struct vm *vm, int status);
/*
 * A failure where no caller can take an error (vCPU threads, device handlers): one line on
 * stderr, unless the VM is ending already, then vm__stop with status.
 */
void vm__fail(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Seconds since memvisor started; a clock that cannot be read stops the VM (vCPU context). */
double vm__uptime(struct vm *vm);
/*
 * The buses, the GSI and MMIO-window allocators, then every device of device_table in order.
 * Needs no KVM: runs before /dev/kvm is opened. On failure nothing is left running: -1, err.
 */
int vm__init_devices(struct vm *vm, char *err, size_t errlen);
/* The devices in reverse order, then the buses; with the vCPUs stopped. First failure in err. */
int vm__exit_devices(struct vm *vm, char *err, size_t errlen);
/*
 * The end of a stopping VM, from whatever point setup reached: vCPUs joined, KVM closed, guest
 * memory unmapped (files put back as they were when the guest never ran, synced when it did),
 * devices stopped, the loop closed; then VM_STOPPED. Each failure is reported on stderr and
 * makes the status EXIT_VMM_FAILURE; otherwise it is vm__exit_status.
 */
int vm__teardown(struct vm *vm);

/* kvm.c: each returns 0, or -1 with one line in err; kvm__exit closes what kvm__init opened. */
int kvm__init(struct vm *vm, char *err, size_t errlen);
int kvm__register_memory(struct vm *vm, char *err, size_t errlen);
/* Called by devices on vCPU threads: a failure stops the VM with EXIT_VMM_FAILURE. */
void kvm__irq_line(struct vm *vm, uint32_t irq, int level);
int kvm__exit(struct vm *vm, char *err, size_t errlen);

/*
 * devices/ged.c: press the ACPI power button (the GED's event, Notify(PWRB, 0x80)); -1 with
 * err when the VM has no GED. Main thread (the API).
 */
int ged__power_button(struct vm *vm, char *err, size_t errlen);
/* The GED's events (Cloud Hypervisor's bits): set them and pulse its interrupt. Main thread. */
#define GED_MEMORY_CHANGED	(1u << 1)
#define GED_POWER_BUTTON	(1u << 3)
void ged__event(struct vm *vm, unsigned events);

/* devices/serial.c: the terminal as it was before the guest's input took it (atexit). */
void serial__restore_terminal(struct vm *vm);

/* arch/x86/cpu.c */
int cpu__init(struct vm *vm, struct vcpu *v, char *err, size_t errlen);
/*
 * Hand a KVM_EXIT_IO (string I/O included) or KVM_EXIT_MMIO of run to the PIO or MMIO bus.
 * False when the exit describes data outside run (run_size bytes for I/O): nothing is done.
 */
bool cpu__emulate_io(struct vm *vm, struct kvm_run *run, size_t run_size);
bool cpu__emulate_mmio(struct vm *vm, struct kvm_run *run);
/* A thread per boot vCPU; on failure, the ones started keep running until cpu__stop_all. */
int cpu__start(struct vm *vm, char *err, size_t errlen);
/*
 * Kick and join the vCPU threads (the VM must be stopping). -1 when one could not be joined: it
 * may still use its kvm_run, guest memory and the devices, so none of them may be undone.
 */
int cpu__stop_all(struct vm *vm, char *err, size_t errlen);
/* One line per stopped vCPU: registers and the code at rip (-v, after cpu__stop_all). */
void cpu__report_state(struct vm *vm);
/* Unmap each vCPU's kvm_run and close its fd, once cpu__stop_all succeeded. */
int cpu__exit(struct vm *vm, char *err, size_t errlen);

#endif
