/*
 * The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2; the register file of
 * linux/virtio_mmio.h), for any virtio device: a device describes itself in a struct
 * virtio_mmio_def and gets a struct virtio_mmio, which owns the registers, feature
 * negotiation, the status state machine, the queues' addresses and the interrupt.
 *
 * Writing a device against it (virtio-mem, virtio-balloon):
 *
 *	static const struct virtio_mmio_def balloon_def = {
 *		.name = "virtio-balloon", .device_id = 5,
 *		.features = 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
 *		.nqueues = 2, .queue_max = { 128, 128 },
 *		.config_read = ..., .config_write = ..., .notify = ..., .reset = ...,
 *	};
 *	// in the device's init:
 *	t = virtio_mmio__create(vm, &balloon_def, dev, err, errlen);
 *	// in its exit:       virtio_mmio__destroy(t);
 *	// in its dsdt hook:  virtio_mmio__dsdt(t, aml);
 *	// in its fdt hook:   return virtio_mmio__fdt(t, fdt);
 *
 * Each transport takes a 4 KiB window from vm->mmio_window and a GSI from vm->gsi, and claims
 * its window on vm->mmio. VIRTIO_F_VERSION_1 is always offered and a driver that does not
 * accept it never gets FEATURES_OK (a v2 transport is a virtio 1.x device). Nothing else is
 * offered on the device's behalf: no INDIRECT_DESC, no EVENT_IDX, no ACCESS_PLATFORM.
 *
 * Locking. The transport has a lock of its own, held while a vCPU's access is handled. The
 * device's callbacks (config_read, config_write, notify, reset) run with it held, on a vCPU
 * thread; they may take the device's own lock (order: transport, then device) and must not
 * call back into the transport except for the functions marked "any thread". Those take no
 * transport lock, so a device may call them with its own lock held, from a vCPU or from the
 * main thread (a resize from the API).
 *
 * Interrupts are edge-triggered (the DSDT says so): each one is KVM_IRQ_LINE 1 then 0 on the
 * GSI. Not an irqfd: devices start before KVM exists (vm__init_devices runs first) and these
 * interrupts are rare (a request completed, a resize), so one ioctl each costs nothing worth a
 * second set-up stage. Before KVM exists no line can be raised: the status bit is latched and
 * the driver, which cannot run yet, sees it on its first read.
 */
#ifndef MEMVISOR_VIRTIO_MMIO_H
#define MEMVISOR_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/queue.h"

struct vm;
struct aml;

#define VIRTIO_MMIO_SIZE	0x1000	/* the window each transport takes */
#define VIRTIO_MMIO_CONFIG	0x100	/* device-specific configuration starts here */
#define VIRTIO_MMIO_MAX_QUEUES	8
#define VIRTIO_MMIO_LOG_MAX	64	/* log lines of one transport: a looping driver stops there */

#define VIRTIO_MMIO_MAGIC	0x74726976	/* "virt" */
#define VIRTIO_MMIO_VERSION	2
#define VIRTIO_MMIO_VENDOR	0x4d564d53	/* "SMVM": no registered vendor id; Linux ignores it */

#define VIRTIO_F_VERSION_1	32

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING	1
#define VIRTIO_MMIO_INT_CONFIG	2

struct virtio_mmio;

struct virtio_mmio_def {
	const char *name;		/* "virtio-mem": log lines and bus range names */
	uint32_t device_id;		/* 24 virtio-mem, 5 balloon */
	/*
	 * The device's features (bits 0-63) besides VIRTIO_F_VERSION_1, which the transport adds.
	 * Per instance: create copies the def, so a device may fill it at run time (virtio-mem
	 * offers ACPI_PXM only for a zone on a NUMA node).
	 */
	uint64_t features;
	unsigned nqueues;		/* 1..VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max[VIRTIO_MMIO_MAX_QUEUES];	/* powers of two, <= VIRTQ_MAX_SIZE */
	/*
	 * Bytes of configuration at 0x100. Accesses of 1, 2, 4 or 8 bytes (Linux reads 64-bit fields
	 * as two 32-bit halves) that lie wholly inside it reach the callbacks, with offset relative
	 * to the configuration; anything else reads as zeros and ignores writes.
	 */
	uint32_t config_size;
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, unsigned size);
	/* NULL: the configuration is read-only for the driver. */
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, unsigned size);
	/*
	 * The driver wrote queue's index to QueueNotify, DRIVER_OK set and the queue ready (others
	 * are dropped). The device walks the queue with virtq__pop/virtq__push on
	 * virtio_mmio__queue(t, queue) and ends with virtio_mmio__signal_used when it pushed
	 * anything. VIRTQ_BROKEN from virtq__pop: call virtio_mmio__needs_reset.
	 */
	void (*notify)(void *dev, struct virtio_mmio *t, unsigned queue);
	/*
	 * notify and reset run under the guest-memory lock (vm__mem_lock): shared, or exclusive
	 * for a device whose requests give guest memory back to the host (virtio-mem).
	 */
	bool changes_memory;
	/*
	 * The driver wrote 0 to Status (or the transport is being destroyed: no): the device goes
	 * back to its initial state. The transport then clears its own (features, queues,
	 * interrupt status); the configuration generation is kept increasing.
	 */
	void (*reset)(void *dev);
};

struct virtio_mmio {
	struct vm *vm;
	struct virtio_mmio_def def;
	void *dev;
	uint64_t base;
	uint32_t gsi;
	unsigned index;			/* n of \_SB.Vnnn and _UID */
	char qname[VIRTIO_MMIO_MAX_QUEUES][40];

	pthread_mutex_t lock;		/* the registers below and the queues */
	uint32_t status;		/* NEEDS_RESET may be or-ed in without the lock */
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
	unsigned logged;		/* bad register accesses logged, up to VIRTIO_MMIO_LOG_MAX */

	uint32_t interrupt_status;	/* atomic: raised from any thread */
	uint32_t config_generation;	/* atomic */
};

/*
 * Allocate the window and the GSI, claim the window on vm->mmio, and start in the reset state.
 * Before the vCPUs run (a device's init). NULL with one line in err; nothing is left taken.
 */
struct virtio_mmio *virtio_mmio__create(struct vm *vm, const struct virtio_mmio_def *def,
					void *dev, char *err, size_t errlen);
/* Release the bus range and the GSI (the window is never given back, device.h). */
int virtio_mmio__destroy(struct virtio_mmio *t, char *err, size_t errlen);

/* Under the transport lock (in notify): the queue's state for virtq__pop and virtq__push. */
struct virtq *virtio_mmio__queue(struct virtio_mmio *t, unsigned queue);
/*
 * Under the transport lock (in notify): every available request of `queue` handed to `handle`
 * (with the device), which may write into its writable buffers (virtq__write), then returned
 * as used; the used-buffer interrupt once if anything was returned. Failed chains are returned
 * by the walker; a broken ring sets DEVICE_NEEDS_RESET. The loop every device's notify needs.
 */
void virtio_mmio__serve(struct virtio_mmio *t, unsigned queue,
			void (*handle)(void *dev, unsigned queue, struct virtq_req *req));
/* Whether the driver accepted feature bit `bit` (FEATURES_OK reached). Under the lock. */
bool virtio_mmio__has_feature(const struct virtio_mmio *t, unsigned bit);

/* Any thread: the device used buffers (InterruptStatus bit 0) and the interrupt. */
void virtio_mmio__signal_used(struct virtio_mmio *t);
/*
 * Any thread: the configuration changed. Bumps ConfigGeneration first, so that a driver that
 * read some fields before the change and some after sees two generations and reads again.
 * Call it after the device changed its configuration under its own lock.
 */
void virtio_mmio__signal_config(struct virtio_mmio *t);
/* Any thread: DEVICE_NEEDS_RESET in Status, and a configuration change to tell the driver. */
void virtio_mmio__needs_reset(struct virtio_mmio *t);

/*
 * Device (\_SB.Vnnn) { _HID "LNRO0005", _UID n, _CCA One, _CRS { Memory32Fixed (window),
 * Interrupt (Edge, ActiveHigh, Exclusive) { gsi } } }: what Linux's virtio_mmio binds to.
 */
void virtio_mmio__dsdt(const struct virtio_mmio *t, struct aml *aml);
/*
 * /virtio_mmio@<base> { compatible "virtio,mmio"; reg <base 0x1000>; interrupts <gsi>; }
 * in the sequential-write FDT (arch/x86/fdt.h): -1 on a libfdt error.
 */
int virtio_mmio__fdt(const struct virtio_mmio *t, void *fdt);

/* The register offsets, for tests and for the guest-side driver's authors. */
enum {
	VIRTIO_MMIO_MAGIC_VALUE		= 0x000,
	VIRTIO_MMIO_VERSION_REG		= 0x004,
	VIRTIO_MMIO_DEVICE_ID		= 0x008,
	VIRTIO_MMIO_VENDOR_ID		= 0x00c,
	VIRTIO_MMIO_DEVICE_FEATURES	= 0x010,
	VIRTIO_MMIO_DEVICE_FEATURES_SEL	= 0x014,
	VIRTIO_MMIO_DRIVER_FEATURES	= 0x020,
	VIRTIO_MMIO_DRIVER_FEATURES_SEL	= 0x024,
	VIRTIO_MMIO_QUEUE_SEL		= 0x030,
	VIRTIO_MMIO_QUEUE_NUM_MAX	= 0x034,
	VIRTIO_MMIO_QUEUE_NUM		= 0x038,
	VIRTIO_MMIO_QUEUE_READY		= 0x044,
	VIRTIO_MMIO_QUEUE_NOTIFY	= 0x050,
	VIRTIO_MMIO_INTERRUPT_STATUS	= 0x060,
	VIRTIO_MMIO_INTERRUPT_ACK	= 0x064,
	VIRTIO_MMIO_STATUS		= 0x070,
	VIRTIO_MMIO_QUEUE_DESC_LOW	= 0x080,
	VIRTIO_MMIO_QUEUE_DESC_HIGH	= 0x084,
	VIRTIO_MMIO_QUEUE_AVAIL_LOW	= 0x090,
	VIRTIO_MMIO_QUEUE_AVAIL_HIGH	= 0x094,
	VIRTIO_MMIO_QUEUE_USED_LOW	= 0x0a0,
	VIRTIO_MMIO_QUEUE_USED_HIGH	= 0x0a4,
	VIRTIO_MMIO_CONFIG_GENERATION	= 0x0fc,
};

#endif
