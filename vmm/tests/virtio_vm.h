/*
 * A VM with real guest memory (layout and backings as main builds them) and its devices, and a
 * driver's side of virtio-mmio written from the specification: register accesses through the
 * MMIO bus, the set-up handshake, and split rings laid out in guest RAM by hand. Shared by
 * test_virtio (transport and queues) and test_virtio_mem.
 */
#ifndef MEMVISOR_TESTS_VIRTIO_VM_H
#define MEMVISOR_TESTS_VIRTIO_VM_H

#include <unistd.h>

#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"
#include "tests/ram_vm.h"
#include "tests/vmcfg.h"

/* The rings of the queue under test: fixed places in the first zone's RAM. */
#define RING_DESC	0x100000ULL
#define RING_AVAIL	0x101000ULL
#define RING_USED	0x102000ULL
#define RING_BUFS	0x200000ULL

/* ram_vm__start, or the test fails. */
static inline struct vm *virtio_vm(struct vm *vm, const struct vm_config *cfg)
{
	struct host_info host = { .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	char err[512];

	if (ram_vm__start(vm, cfg, &host, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return vm;
}

static inline void virtio_vm_end(struct vm *vm)
{
	vm__stop(vm, 0);
	assert_int_equal(vm__teardown(vm), 0);
}

static inline void *gpa(struct vm *vm, uint64_t addr, uint64_t len)
{
	void *p = vm__gpa_to_hva(vm, addr, len);

	assert_non_null(p);
	return p;
}

/* The whole set-up with VERSION_1 and `f`, queue 0 of num entries, DRIVER_OK. */
static inline void driver_up(struct vm *vm, const struct virtio_mmio *t, uint64_t f, uint32_t num)
{
	uint32_t s = driver_features(vm, t, f | 1ULL << VIRTIO_F_VERSION_1);

	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(queue_at(vm, t, 0, num, RING_DESC, RING_AVAIL, RING_USED), 1);
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- the driver's rings (virtio 1.2, 2.7), written as a driver would ---- */
struct drv_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

static inline struct drv_desc *drv_desc(struct vm *vm, unsigned i)
{
	return (struct drv_desc *)gpa(vm, RING_DESC + 16 * i, 16);
}

static inline void drv_set(struct vm *vm, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
			   uint16_t next)
{
	*drv_desc(vm, i) = (struct drv_desc){ addr, len, flags, next };
}

static inline uint16_t *avail_idx(struct vm *vm)
{
	return (uint16_t *)gpa(vm, RING_AVAIL + 2, 2);
}

/* Offer the chain at head in the next available slot of a queue of num. */
static inline void drv_offer(struct vm *vm, unsigned num, uint16_t head)
{
	uint16_t idx = *avail_idx(vm);

	*(uint16_t *)gpa(vm, RING_AVAIL + 4 + 2 * (idx % num), 2) = head;
	__atomic_store_n(avail_idx(vm), (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

/* drv_offer, and notify queue 0. */
static inline void drv_kick(struct vm *vm, const struct virtio_mmio *t, unsigned num, uint16_t head)
{
	drv_offer(vm, num, head);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static inline uint16_t used_idx(struct vm *vm)
{
	return __atomic_load_n((uint16_t *)gpa(vm, RING_USED + 2, 2), __ATOMIC_ACQUIRE);
}

/* The used element for the n-th completion: id and len. */
static inline void used_elem(struct vm *vm, unsigned num, uint16_t n, uint32_t *id, uint32_t *len)
{
	uint32_t *e = gpa(vm, RING_USED + 4 + 8 * (n % num), 8);

	*id = e[0];
	*len = e[1];
}

#endif
