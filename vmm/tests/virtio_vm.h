/*
 * A VM with real guest memory (layout and backings as main builds them) and its devices, and a
 * driver's side of virtio-mmio written from the specification: register accesses through the
 * MMIO bus, the set-up handshake, and split rings laid out in guest RAM by hand. Shared by
 * test_virtio (transport and queues) and test_virtio_mem.
 */
#ifndef MEMVISOR_TESTS_VIRTIO_VM_H
#define MEMVISOR_TESTS_VIRTIO_VM_H

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"
#include "tests/vmcfg.h"

/* The rings of the queue under test: fixed places in the first zone's RAM. */
#define RING_DESC	0x100000ULL
#define RING_AVAIL	0x101000ULL
#define RING_USED	0x102000ULL
#define RING_BUFS	0x200000ULL

/*
 * Start vm with cfg (its zones each given a backing of size + hotplug_size, as main does), its
 * devices and its loop, RUNNING: a VM whose vCPUs could start, without KVM.
 */
static inline struct vm *virtio_vm(struct vm *vm, const struct vm_config *cfg)
{
	char err[512];

	vm__init(vm);
	vm->cfg = *cfg;
	vm->host = (struct host_info){ .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
	if (layout__build(&vm->layout, &vm->cfg, err, sizeof(err)) < 0)
		fail_msg("layout__build: %s", err);
	if (loop__init(&vm->loop, err, sizeof(err)) < 0)
		fail_msg("loop__init: %s", err);
	if (vm__init_devices(vm, err, sizeof(err)) < 0)
		fail_msg("vm__init_devices: %s", err);
	for (int i = 0; i < vm->cfg.nzones; i++) {
		const struct zone_config *z = &vm->cfg.zones[i];

		if (backing__create(&vm->backings[i], &vm->cfg, z, z->size + z->hotplug_size,
				    &vm->host, err, sizeof(err)) < 0)
			fail_msg("backing__create: %s", err);
		vm->nbackings = i + 1;
	}
	vm->vcpus_started = true;	/* the files keep what the "guest" wrote */
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
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

static inline uint32_t mmio_rd(struct vm *vm, const struct virtio_mmio *t, uint64_t off)
{
	uint8_t d[4];

	bus__read(&vm->mmio, t->base + off, d, 4);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void mmio_wr(struct vm *vm, const struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	uint8_t d[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	bus__write(&vm->mmio, t->base + off, d, 4);
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK: the Status read back. */
static inline uint32_t driver_features(struct vm *vm, const struct virtio_mmio *t, uint64_t f)
{
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, 0);
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_wr(vm, t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		mmio_wr(vm, t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> (32 * sel)));
	}
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_FEATURES_OK);
	return mmio_rd(vm, t, VIRTIO_MMIO_STATUS);
}

/* Queue q with num entries at the fixed ring addresses (or the ones given); QueueReady read back. */
static inline uint32_t queue_at(struct vm *vm, const struct virtio_mmio *t, unsigned q,
				uint32_t num, uint64_t desc, uint64_t avail, uint64_t used)
{
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_SEL, q);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_NUM, num);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_READY, 1);
	return mmio_rd(vm, t, VIRTIO_MMIO_QUEUE_READY);
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
