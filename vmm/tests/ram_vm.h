/*
 * A VM with real guest memory (layout and backings as main builds them) and its devices,
 * RUNNING, without KVM, and the driver's register accesses and set-up through the MMIO bus. Free of
 * cmocka: the unit tests (virtio_vm.h) and the memdev fuzz target start their VMs with it.
 */
#ifndef MEMVISOR_TESTS_RAM_VM_H
#define MEMVISOR_TESTS_RAM_VM_H

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"

/*
 * Start vm with cfg on host (each zone given a backing of size + hotplug_size, as main does),
 * its devices and its loop, RUNNING: a VM whose vCPUs could start. -1 with one line in err;
 * the caller then stops and tears the VM down as after any failed setup.
 */
static inline int ram_vm__start(struct vm *vm, const struct vm_config *cfg,
				const struct host_info *host, char *err, size_t errlen)
{
	char why[448];

	vm__init(vm);
	vm->cfg = *cfg;
	vm->host = *host;
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		return error(err, errlen, "clock_gettime: %s", strerror(errno));
	if (layout__build(&vm->layout, &vm->cfg, why, sizeof(why)) < 0)
		return error(err, errlen, "layout__build: %s", why);
	if (loop__init(&vm->loop, why, sizeof(why)) < 0)
		return error(err, errlen, "loop__init: %s", why);
	if (vm__init_devices(vm, why, sizeof(why)) < 0)
		return error(err, errlen, "vm__init_devices: %s", why);
	for (int i = 0; i < vm->cfg.nzones; i++) {
		const struct zone_config *z = &vm->cfg.zones[i];

		if (backing__create(&vm->backings[i], &vm->cfg, z, z->size + z->hotplug_size,
				    &vm->host, why, sizeof(why)) < 0)
			return error(err, errlen, "backing__create: %s", why);
		vm->nbackings = i + 1;
	}
	vm->vcpus_started = true;	/* the files keep what the "guest" wrote */
	return vm__set_state(vm, VM_RUNNING, err, errlen);
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

#endif
