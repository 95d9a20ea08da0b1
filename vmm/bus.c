/*
 * Port I/O and MMIO buses: a sorted array of ranges searched by binary search. A VM has a handful
 * of ranges, registered once at setup, so an array beats a tree for both code and cache.
 */
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "util.h"

#define BUS_MAX_ACCESS 8	/* the widest access KVM reports (kvm_run.mmio.data) */

int bus__init(struct bus *bus, const char *name, uint64_t last, FILE *log, char *err,
	      size_t errlen)
{
	int e;

	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	bus->last = last;
	bus->log = log;
	e = pthread_mutex_init(&bus->log_lock, NULL);
	if (e)
		return error(err, errlen, "%s bus: pthread_mutex_init: %s", name, strerror(e));
	return 0;
}

void bus__exit(struct bus *bus)
{
	int e = pthread_mutex_destroy(&bus->log_lock);

	/* EBUSY would mean a vCPU still inside the bus: a teardown-order bug, not a guest's. */
	if (e)
		die("%s bus: pthread_mutex_destroy: %s", bus->name, strerror(e));
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nranges = bus->cap = 0;
}

static uint64_t range_last(const struct bus_range *r)
{
	return r->base + (r->len - 1);
}

/*
 * Index of the first range whose last byte is at or above addr. Ranges never overlap, so their
 * ends are sorted like their bases.
 */
static size_t bus__search(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (range_last(&bus->ranges[mid]) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct bus_range *bus__find(const struct bus *bus, uint64_t addr)
{
	size_t i = bus__search(bus, addr);

	if (i < bus->nranges && bus->ranges[i].base <= addr)
		return &bus->ranges[i];
	return NULL;
}

int bus__register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		  void *opaque, const char *name, char *err, size_t errlen)
{
	size_t i;

	if (!ops)
		return error(err, errlen, "%s bus: %s: no handlers", bus->name, name);
	if (len == 0)
		return error(err, errlen, "%s bus: %s: empty range at 0x%llx", bus->name, name,
			     (unsigned long long)base);
	if (base > bus->last || len - 1 > bus->last - base)
		return error(err, errlen, "%s bus: %s: 0x%llx+0x%llx is beyond the bus end 0x%llx",
			     bus->name, name, (unsigned long long)base, (unsigned long long)len,
			     (unsigned long long)bus->last);
	i = bus__search(bus, base);
	/* ranges[i] is the only one that can reach base or above while starting at or below it. */
	if (i < bus->nranges && bus->ranges[i].base <= base + (len - 1)) {
		const struct bus_range *o = &bus->ranges[i];

		return error(err, errlen, "%s bus: %s [0x%llx-0x%llx] overlaps %s [0x%llx-0x%llx]",
			     bus->name, name, (unsigned long long)base,
			     (unsigned long long)(base + (len - 1)), o->name,
			     (unsigned long long)o->base, (unsigned long long)range_last(o));
	}
	if (bus->nranges == bus->cap) {
		size_t cap = bus->cap ? 2 * bus->cap : 8;
		struct bus_range *r = reallocarray(bus->ranges, cap, sizeof(*r));

		if (!r)
			return error(err, errlen, "%s bus: %s: out of memory", bus->name, name);
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nranges - i) * sizeof(bus->ranges[0]));
	bus->ranges[i] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
	bus->nranges++;
	return 0;
}

int bus__unregister(struct bus *bus, uint64_t base, char *err, size_t errlen)
{
	size_t i = bus__search(bus, base);

	if (i >= bus->nranges || bus->ranges[i].base != base)
		return error(err, errlen, "%s bus: nothing registered at 0x%llx", bus->name,
			     (unsigned long long)base);
	memmove(&bus->ranges[i], &bus->ranges[i + 1],
		(bus->nranges - i - 1) * sizeof(bus->ranges[0]));
	bus->nranges--;
	return 0;
}

static void bus__unclaimed(struct bus *bus, uint64_t addr, unsigned size, bool write)
{
	const char *dir = write ? "write" : "read";

	/* Once full, a guest hammering unclaimed addresses pays one load per access, no lock. */
	if (!bus->log || __atomic_load_n(&bus->log_full, __ATOMIC_ACQUIRE))
		return;
	/* Logging is best effort: a lock that fails must not take the access down with it. */
	if (pthread_mutex_lock(&bus->log_lock))
		return;
	for (unsigned i = 0; i < bus->nlogged; i++) {
		if (bus->logged[i].addr == addr && bus->logged[i].write == write) {
			pthread_mutex_unlock(&bus->log_lock);
			return;
		}
	}
	if (bus->nlogged < BUS_LOG_MAX) {
		bus->logged[bus->nlogged++] = (struct bus_log_entry){ .addr = addr, .write = write };
		fprintf(bus->log, "memvisor: unclaimed %s %s 0x%llx size %u\n", bus->name, dir,
			(unsigned long long)addr, size);
	} else if (!bus->log_full) {
		__atomic_store_n(&bus->log_full, true, __ATOMIC_RELEASE);
		fprintf(bus->log, "memvisor: unclaimed %s: more than %d addresses, no more logged\n",
			bus->name, BUS_LOG_MAX);
	}
	pthread_mutex_unlock(&bus->log_lock);
}

static void bus__access(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size, bool write)
{
	/* An access that would wrap past 2^64 ends there; its missing bytes stay unclaimed. */
	uint64_t last = size - 1 > UINT64_MAX - addr ? UINT64_MAX : addr + (size - 1);
	size_t i = bus__search(bus, addr);
	const struct bus_range *r = i < bus->nranges ? &bus->ranges[i] : NULL;

	if (!r || r->base > last) {
		bus__unclaimed(bus, addr, size, write);
		return;
	}
	if (r->base <= addr && last - r->base < r->len && last - addr == size - 1 &&
	    size <= BUS_MAX_ACCESS) {
		if (write && r->ops->write)
			r->ops->write(r->opaque, addr - r->base, data, size);
		else if (!write && r->ops->read)
			r->ops->read(r->opaque, addr - r->base, data, size);
		return;
	}
	/* Partly claimed, or wider than any device takes: byte by byte (one level deep). */
	for (uint64_t k = 0; k <= last - addr; k++)
		bus__access(bus, addr + k, data + k, 1, write);
}

void bus__read(struct bus *bus, uint64_t addr, uint8_t *data, unsigned size)
{
	memset(data, 0xff, size);
	if (size)
		bus__access(bus, addr, data, size, false);
}

void bus__write(struct bus *bus, uint64_t addr, const uint8_t *data, unsigned size)
{
	/* The write path never stores through data: the cast only shares bus__access. */
	if (size)
		bus__access(bus, addr, (uint8_t *)data, size, true);
}

void bus__read_zero(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, size);
}
