/*
 * A polling virtio-mmio (version 2) driver: feature negotiation, one split virtqueue, and
 * synchronous requests (publish a chain, notify, spin on the used ring). Interrupts stay off in
 * our guests, so completion is observed by polling, as the spec allows.
 * Registers: virtio 1.2, 4.2.2; rings: 2.7 (split virtqueues).
 */
#include "guest.h"

static void barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

int virtio_open(struct virtio_dev *d, u64 base, u32 device_id, u64 wanted, const char **why)
{
	u64 b = base;

	d->base = base;
	if (mmio_read32(b + R_MAGIC) != 0x74726976)
		return *why = "bad magic", -1;
	if (mmio_read32(b + R_VERSION) != 2)
		return *why = "not a version 2 transport", -1;
	if (mmio_read32(b + R_DEVICE_ID) != device_id)
		return *why = "other device id", -1;
	mmio_write32(b + R_STATUS, 0);
	if (mmio_read32(b + R_STATUS) != 0)
		return *why = "reset did not clear status", -1;
	mmio_write32(b + R_STATUS, S_ACK);
	mmio_write32(b + R_STATUS, S_ACK | S_DRIVER);
	for (u32 sel = 0; sel < 2; sel++) {
		mmio_write32(b + R_DEV_FEAT_SEL, sel);
		d->offered |= (u64)mmio_read32(b + R_DEV_FEAT) << (32 * sel);
	}
	if (!(d->offered & VIRTIO_F_VERSION_1))
		return *why = "VIRTIO_F_VERSION_1 not offered", -1;
	d->features = d->offered & (wanted | VIRTIO_F_VERSION_1);
	for (u32 sel = 0; sel < 2; sel++) {
		mmio_write32(b + R_DRV_FEAT_SEL, sel);
		mmio_write32(b + R_DRV_FEAT, (u32)(d->features >> (32 * sel)));
	}
	mmio_write32(b + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(mmio_read32(b + R_STATUS) & S_FEATURES_OK))
		return *why = "FEATURES_OK refused", -1;
	return 0;
}

int virtio_queue(struct virtio_dev *d, u32 index, void *mem, u16 num, const char **why)
{
	u64 b = d->base, desc = (u64)(uintptr_t)mem;
	struct virtio_vq *q = &d->q[index];
	u32 max;

	if (index >= VIRTIO_MAX_QUEUES)
		return *why = "queue index beyond the driver's", -1;
	mmio_write32(b + R_QUEUE_SEL, index);
	max = mmio_read32(b + R_QUEUE_NUM_MAX);
	if (!max)
		return *why = "queue absent", -1;
	if (mmio_read32(b + R_QUEUE_READY))
		return *why = "queue ready before setup", -1;
	if (num > VIRTIO_QUEUE_MAX)
		num = VIRTIO_QUEUE_MAX;
	q->num = num < max ? num : (u16)max;
	q->desc = mem;
	q->avail = (u16 *)(uintptr_t)(desc + 16 * VIRTIO_QUEUE_MAX);
	q->used = (volatile u8 *)(uintptr_t)(desc + 16 * VIRTIO_QUEUE_MAX + 512);
	memset(mem, 0, VIRTIO_QUEUE_BYTES);
	q->avail_idx = q->used_idx = 0;
	mmio_write32(b + R_QUEUE_NUM, q->num);
	mmio_write64_halves(b + R_QUEUE_DESC, desc);
	mmio_write64_halves(b + R_QUEUE_AVAIL, (u64)(uintptr_t)q->avail);
	mmio_write64_halves(b + R_QUEUE_USED, (u64)(uintptr_t)q->used);
	mmio_write32(b + R_QUEUE_READY, 1);
	return 0;
}

void virtio_ready(struct virtio_dev *d)
{
	mmio_write32(d->base + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

u32 virtio_status(const struct virtio_dev *d) { return mmio_read32(d->base + R_STATUS); }

int virtio_request(struct virtio_dev *d, u32 index, const void *out, u32 out_len, void *in,
		   u32 in_len, u32 *written)
{
	struct virtio_vq *q;
	struct vring_desc *desc;
	u16 head, slot;

	/* Checked before anything is read: an unset queue has num 0, a divisor below. */
	if (index >= VIRTIO_MAX_QUEUES || !d->q[index].num)
		return -1;
	q = &d->q[index];
	desc = q->desc;
	head = (u16)(q->avail_idx % q->num) & (u16)~1u;
	/* Two descriptors per request, one request in flight: head and head+1 are always free. */
	if (out) {
		desc[head] = (struct vring_desc){ (u64)(uintptr_t)out, out_len, in ? DESC_F_NEXT : 0,
						  (u16)(head + 1) };
		desc[head + 1] = (struct vring_desc){ (u64)(uintptr_t)in, in_len, DESC_F_WRITE, 0 };
	} else {
		desc[head] = (struct vring_desc){ (u64)(uintptr_t)in, in_len, DESC_F_WRITE, 0 };
	}
	slot = q->avail_idx % q->num;
	q->avail[2 + slot] = head;
	barrier();
	q->avail_idx++;
	*(volatile u16 *)&q->avail[1] = q->avail_idx;
	barrier();
	mmio_write32(d->base + R_QUEUE_NOTIFY, index);
	/* The device answers on the notifying exit or soon after; bound the wait. */
	for (u64 spin = 0; spin < 100000000; spin++) {
		u16 used_idx = *(volatile u16 *)(q->used + 2);
		if (used_idx != q->used_idx) {
			barrier();
			u32 elem = 4 + 8 * (q->used_idx % q->num);
			u32 id = *(volatile u32 *)(q->used + elem);
			*written = *(volatile u32 *)(q->used + elem + 4);
			q->used_idx++;
			return id == head ? 0 : -1;
		}
		if (virtio_status(d) & S_NEEDS_RESET)
			return -1;
		__asm__ volatile("pause");
	}
	return -1;
}

/* 64-bit fields as two 32-bit reads (as Linux's vm_get does), consistent by config generation. */
u64 virtio_config64(const struct virtio_dev *d, u32 off)
{
	u32 gen, lo, hi;

	do {
		gen = mmio_read32(d->base + R_CONFIG_GEN);
		lo = mmio_read32(d->base + R_CONFIG + off);
		hi = mmio_read32(d->base + R_CONFIG + off + 4);
	} while (gen != mmio_read32(d->base + R_CONFIG_GEN));
	return (u64)hi << 32 | lo;
}

u16 virtio_config16(const struct virtio_dev *d, u32 off)
{
	return mmio_read16(d->base + R_CONFIG + off);
}

u32 virtio_config32(const struct virtio_dev *d, u32 off)
{
	return mmio_read32(d->base + R_CONFIG + off);
}

void virtio_config_write32(const struct virtio_dev *d, u32 off, u32 v)
{
	mmio_write32(d->base + R_CONFIG + off, v);
}
