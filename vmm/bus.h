/*
 * The port I/O and MMIO buses: address ranges claimed by devices, and the dispatch of the
 * guest's accesses that KVM hands to user space.
 *
 * Concurrency: a bus is built (bus__register) before the vCPUs start and only read while they
 * run, so a lookup takes no lock. Registering or unregistering a range while a vCPU runs is a
 * bug. Each device serialises its own state with its own lock, taken inside its ops: two vCPUs
 * touching two devices never wait for each other. The log of unclaimed accesses is the one part
 * of a bus written at run time; it has its own lock.
 */
#ifndef MEMVISOR_BUS_H
#define MEMVISOR_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A device's handlers. offset is relative to the registered base; the bus guarantees
 * 1 <= size <= 8 and offset + size <= len, so a device never sees an access run off its end.
 * data is the access's bytes in guest (little-endian) order. Before read is called, data holds
 * all ones: a register the device does not implement reads as on a bus with nothing there.
 * A NULL read or write makes the range read all ones or ignore writes.
 */
struct bus_ops {
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, unsigned size);
};

/* A read handler for registers that read as zero (status registers with nothing to report). */
void bus__read_zero(void *opaque, uint64_t offset, uint8_t *data, unsigned size);

struct bus_range {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;	/* for messages; not copied */
};

/*
 * Each unclaimed address (per direction) is logged once, and at most BUS_LOG_MAX of them: a
 * guest that sweeps the address space costs BUS_LOG_MAX + 1 lines and no memory.
 */
#define BUS_LOG_MAX 32

struct bus_log_entry {
	uint64_t addr;
	bool write;
};

struct bus {
	const char *name;		/* "pio" or "mmio" */
	uint64_t last;			/* highest address the bus decodes */
	struct bus_range *ranges;	/* sorted by base, never overlapping */
	size_t nranges, cap;

	FILE *log;			/* unclaimed accesses go here; NULL: not logged */
	pthread_mutex_t log_lock;
	bool log_full;			/* read without the lock to keep a flood cheap */
	unsigned nlogged;
	struct bus_log_entry logged[BUS_LOG_MAX];
};

/* log: where unclaimed accesses are reported (stderr under -v), or NULL. */
int bus__init(struct bus *bus, const char *name, uint64_t last, FILE *log, char *err,
	      size_t errlen);
void bus__exit(struct bus *bus);

/* Claim [base, base+len) for a device; a range overlapping another is refused. */
int bus__register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		  void *opaque, const char *name, char *err, size_t errlen);
/* Release the range registered at base (device teardown, vCPUs stopped). */
int bus__unregister(struct bus *bus, uint64_t base, char *err, size_t errlen);

/* The range holding addr, or NULL. */
const struct bus_range *bus__find(const struct bus *bus, uint64_t addr);

/*
 * Dispatch one access of size bytes (KVM gives 1, 2, 4 or 8). An access that does not lie
 * within one range is split into single bytes, each going to its own range or nowhere, as a PC
 * bus splits a wide cycle to narrow devices. Unclaimed: reads give all ones, writes vanish.
 */
void bus__read(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size);
void bus__write(struct bus *bus, uint64_t addr, const uint8_t *data, unsigned size);

#endif
