/*
 * Split virtqueues (virtio 1.2, 2.7) read from and written to guest memory, with every check a
 * hostile driver calls for. The driver owns the rings and may change them at any moment, from
 * any vCPU: each descriptor is read once into a local copy and checked there, never re-read.
 *
 * What is checked, and what a failure costs:
 *  - at QueueReady (virtq__enable): size a power of two, 1..max; the descriptor table, the
 *    available and the used ring aligned (16, 2, 4) and each wholly inside guest RAM. A failure
 *    leaves the queue disabled.
 *  - per request (virtq__pop): head and next indices below the size, no VIRTQ_DESC_F_INDIRECT
 *    (never offered), each buffer's address + length inside guest RAM (no wrap), no descriptor
 *    twice in one chain (loops), at most VIRTQ_MAX_SEGS buffers, device-writable buffers after
 *    the readable ones. Such a request is failed alone: it is returned to the driver as used
 *    with 0 bytes written, and logged once per queue.
 *  - per notification: rings that are no longer guest RAM (virtio-mem memory unplugged under
 *    them), an available index that moved by more than the queue size, or a head
 *    index beyond it, cannot be answered at all: the driver is broken. The queue stops
 *    (virtq__pop returns VIRTQ_BROKEN until the device is reset) and the transport is told to
 *    set DEVICE_NEEDS_RESET and raise a configuration change, as virtio 1.2, 2.1.2 asks.
 *
 * Not thread-safe: the transport calls the device's notify with its lock held, and the device
 * walks its queues from there only.
 */
#ifndef MEMVISOR_VIRTIO_QUEUE_H
#define MEMVISOR_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define VIRTQ_MAX_SIZE	1024	/* the largest queue size a device may offer */
/* Buffers in one chain, more is a failed request: Linux's free page reporting sends 32 in one
 * (PAGE_REPORTING_CAPACITY, include/linux/page_reporting.h); 16 refused every report of it. */
#define VIRTQ_MAX_SEGS	64
#define VIRTQ_LOG_MAX	64	/* log lines of one queue: a driver resetting in a loop stops there */

#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4

struct virtq {
	struct vm *vm;
	/* Set by the driver through the transport; checked only by virtq__enable. */
	uint16_t max, num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Valid while ready. */
	bool ready, broken;
	bool warned;		/* one log line per queue until reset... */
	unsigned logged;	/* ...and VIRTQ_LOG_MAX over its life: kept across resets */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t last_avail;	/* next available entry the device takes */
	uint16_t used_idx;	/* the device's copy of used->idx */
	const char *name;	/* "virtio-mem0 queue 0": for log lines */
};

struct virtq_seg {
	uint8_t *hva;
	uint32_t len;
};

/* One request: the driver's readable buffers (out) and then its writable ones (in). */
struct virtq_req {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;	/* total bytes */
	uint32_t written;		/* bytes written into in so far (virtq__write) */
	struct virtq_seg out[VIRTQ_MAX_SEGS], in[VIRTQ_MAX_SEGS];
};

/* Back to the state after a device reset: not ready, no addresses, size max (q zeroed first). */
void virtq__reset(struct virtq *q, struct vm *vm, uint16_t max, const char *name);
/* QueueReady = 1: 0, or -1 with the reason in err and the queue left disabled. */
int virtq__enable(struct virtq *q, char *err, size_t errlen);

enum virtq_pop {
	VIRTQ_EMPTY,	/* nothing available */
	VIRTQ_OK,	/* *req holds a checked request */
	VIRTQ_FAILED,	/* a bad chain: already returned to the driver as used, logged */
	VIRTQ_BROKEN,	/* the driver broke the ring: stop, ask for a reset (err says why) */
};
enum virtq_pop virtq__pop(struct virtq *q, struct virtq_req *req, char *err, size_t errlen);

/*
 * Copy len bytes at offset off of the request's readable buffers into dst: false when they hold
 * fewer bytes.
 */
bool virtq__read(const struct virtq_req *req, uint64_t off, void *dst, uint64_t len);
/* Append len bytes to the writable buffers: false (nothing written) when they have no room. */
bool virtq__write(struct virtq_req *req, const void *src, uint64_t len);
/* Hand the request back as used with req->written bytes, publishing the used index. */
void virtq__push(struct virtq *q, const struct virtq_req *req);

#endif
