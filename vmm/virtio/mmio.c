/*
 * The virtio-mmio v2 transport (mmio.h). The driver's side of the handshake (virtio 1.2,
 * 3.1.1): reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK (which the device may refuse: the
 * driver reads Status back), queue set-up, DRIVER_OK.
 */
#include <libfdt.h>
#include <stdlib.h>

#include "arch/x86/aml.h"
#include "util.h"
#include "virtio/mmio.h"
#include "vm.h"

static uint64_t offered(const struct virtio_mmio *t)
{
	return t->def.features | 1ULL << VIRTIO_F_VERSION_1;
}

static uint32_t rd32(const uint8_t *d)
{
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void wr32(uint8_t *d, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
}

/* A bounded number of lines per transport: a driver looping on a bad access must not flood. */
static void log_limited(struct virtio_mmio *t, const char *msg)
{
	if (t->logged < VIRTIO_MMIO_LOG_MAX) {
		t->logged++;
		report("%s@0x%llx: %s%s", t->def.name, (unsigned long long)t->base, msg,
		       t->logged == VIRTIO_MMIO_LOG_MAX ? "; further ones are not logged" : "");
	}
}

static void warn_access(struct virtio_mmio *t, const char *what, uint64_t offset, unsigned size)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s at offset 0x%llx (%u bytes) ignored", what,
		 (unsigned long long)offset, size);
	log_limited(t, msg);
}

/* The transport's part of a reset: everything the driver set goes. */
static void reset_transport(struct virtio_mmio *t)
{
	__atomic_store_n(&t->status, 0, __ATOMIC_SEQ_CST);
	t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	for (unsigned q = 0; q < t->def.nqueues; q++)
		virtq__reset(&t->queues[q], t->vm, t->def.queue_max[q], t->qname[q]);
	__atomic_store_n(&t->interrupt_status, 0, __ATOMIC_SEQ_CST);
}

/* Status = 0: the device first, so that it stops using the queues before they go. */
static void reset(struct virtio_mmio *t)
{
	if (t->def.reset)
		t->def.reset(t->dev);
	reset_transport(t);
}

static void irq_pulse(struct virtio_mmio *t)
{
	if (t->vm->vm_fd < 0)
		return;
	kvm__irq_line(t->vm, t->gsi, 1);
	kvm__irq_line(t->vm, t->gsi, 0);
}

void virtio_mmio__signal_used(struct virtio_mmio *t)
{
	__atomic_or_fetch(&t->interrupt_status, VIRTIO_MMIO_INT_VRING, __ATOMIC_SEQ_CST);
	irq_pulse(t);
}

void virtio_mmio__signal_config(struct virtio_mmio *t)
{
	__atomic_add_fetch(&t->config_generation, 1, __ATOMIC_SEQ_CST);
	__atomic_or_fetch(&t->interrupt_status, VIRTIO_MMIO_INT_CONFIG, __ATOMIC_SEQ_CST);
	irq_pulse(t);
}

void virtio_mmio__needs_reset(struct virtio_mmio *t)
{
	uint32_t old = __atomic_fetch_or(&t->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_SEQ_CST);

	/* Only a driver that finished its set-up is listening; once is enough. */
	if ((old & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_NEEDS_RESET))
		virtio_mmio__signal_config(t);
}

struct virtq *virtio_mmio__queue(struct virtio_mmio *t, unsigned queue)
{
	return queue < t->def.nqueues ? &t->queues[queue] : NULL;
}

void virtio_mmio__serve(struct virtio_mmio *t, unsigned queue,
			void (*handle)(void *dev, unsigned queue, struct virtq_req *req))
{
	struct virtq *q = virtio_mmio__queue(t, queue);
	struct virtq_req req;
	bool used = false;
	char err[256];

	for (;;) {
		switch (virtq__pop(q, &req, err, sizeof(err))) {
		case VIRTQ_EMPTY:
			goto out;
		case VIRTQ_BROKEN:
			virtio_mmio__needs_reset(t);
			goto out;
		case VIRTQ_FAILED:
			used = true;
			continue;
		case VIRTQ_OK:
			break;
		}
		handle(t->dev, queue, &req);
		virtq__push(q, &req);
		used = true;
	}
out:
	if (used)
		virtio_mmio__signal_used(t);
}

bool virtio_mmio__has_feature(const struct virtio_mmio *t, unsigned bit)
{
	return bit < 64 && (__atomic_load_n(&t->status, __ATOMIC_SEQ_CST) &
			    VIRTIO_STATUS_FEATURES_OK) && (t->driver_features >> bit & 1);
}

static struct virtq *selected(struct virtio_mmio *t)
{
	return virtio_mmio__queue(t, t->queue_sel);
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t offset)
{
	struct virtq *q = selected(t);

	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION_REG:
		return VIRTIO_MMIO_VERSION;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->def.device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return t->device_features_sel < 2 ?
		       (uint32_t)(offered(t) >> (32 * t->device_features_sel)) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? q->max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return __atomic_load_n(&t->interrupt_status, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS:
		return __atomic_load_n(&t->status, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return __atomic_load_n(&t->config_generation, __ATOMIC_SEQ_CST);
	}
	return 0;	/* write-only and reserved registers */
}

/* FEATURES_OK only for a subset of what is offered that includes VERSION_1 (3.1.1 step 5). */
static uint32_t features_check(struct virtio_mmio *t, uint32_t status)
{
	uint64_t f = t->driver_features;

	if ((f & ~offered(t)) || !(f >> VIRTIO_F_VERSION_1 & 1))
		status &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	return status;
}

static void status_write(struct virtio_mmio *t, uint32_t v)
{
	uint32_t old = __atomic_load_n(&t->status, __ATOMIC_SEQ_CST);

	if (v == 0) {
		reset(t);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK))
		v = features_check(t, v);
	/* The device's bit stays until a reset; the driver cannot clear it. */
	v = (v & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET);
	__atomic_store_n(&t->status, v, __ATOMIC_SEQ_CST);
}

static void set_half(uint64_t *v, bool high, uint32_t half)
{
	if (high)
		*v = (*v & 0xffffffffULL) | (uint64_t)half << 32;
	else
		*v = (*v & ~0xffffffffULL) | half;
}

static void queue_write(struct virtio_mmio *t, uint64_t offset, uint32_t v)
{
	struct virtq *q = selected(t);
	char err[256];

	/* An absent queue, or one in use: the driver must not change it (4.2.3.2). */
	if (!q || (q->ready && offset != VIRTIO_MMIO_QUEUE_READY)) {
		warn_access(t, q ? "change of a ready queue" : "write to an absent queue", offset, 4);
		return;
	}
	switch (offset) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->num = v > UINT16_MAX ? 0 : (uint16_t)v;	/* enable refuses 0 */
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		if (!v) {
			q->ready = false;
		} else if (!q->ready && virtq__enable(q, err, sizeof(err)) < 0) {
			log_limited(t, err);
			virtio_mmio__needs_reset(t);
		}
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&q->desc_gpa, offset & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_half(&q->avail_gpa, offset & 4, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_half(&q->used_gpa, offset & 4, v);
		break;
	}
}

static void reg_write(struct virtio_mmio *t, uint64_t offset, uint32_t v)
{
	uint32_t status = __atomic_load_n(&t->status, __ATOMIC_SEQ_CST);

	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* Fixed once FEATURES_OK is set: the device acts on them from then on. */
		if (!(status & VIRTIO_STATUS_FEATURES_OK) && t->driver_features_sel < 2)
			set_half(&t->driver_features, t->driver_features_sel, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		if ((status & VIRTIO_STATUS_DRIVER_OK) && v < t->def.nqueues &&
		    t->queues[v].ready && t->def.notify) {
			if (vm__mem_lock(t->vm, t->def.changes_memory)) {
				t->def.notify(t->dev, t, v);
				vm__mem_unlock(t->vm);
			}
		} else
			warn_access(t, v < t->def.nqueues && t->queues[v].ready ?
				  "notify before DRIVER_OK" : "notify of an absent or unready queue",
				  offset, 4);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_and_fetch(&t->interrupt_status, ~v, __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_MMIO_STATUS:
		/* 0 resets the device, which may give its memory back (virtio-mem). */
		if (v == 0 && !vm__mem_lock(t->vm, t->def.changes_memory))
			break;
		status_write(t, v);
		if (v == 0)
			vm__mem_unlock(t->vm);
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		queue_write(t, offset, v);
		break;
	default:
		warn_access(t, "write to a read-only or reserved register", offset, 4);
	}
}

static bool config_access(const struct virtio_mmio *t, uint64_t offset, unsigned size)
{
	uint64_t off = offset - VIRTIO_MMIO_CONFIG;

	return (size == 1 || size == 2 || size == 4 || size == 8) && off < t->def.config_size &&
	       size <= t->def.config_size - off;
}

static void virtio_mmio__read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct virtio_mmio *t = opaque;

	memset(data, 0, size);
	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_access(t, offset, size) && t->def.config_read)
			t->def.config_read(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), data,
					   size);
	} else if (size == 4 && IS_ALIGNED(offset, 4)) {
		wr32(data, reg_read(t, offset));
	} else {
		/* 4.2.2.2: the driver must use aligned 32-bit accesses for the registers. */
		warn_access(t, "register read not 32-bit aligned", offset, size);
	}
	pthread_mutex_unlock(&t->lock);
}

static void virtio_mmio__write(void *opaque, uint64_t offset, const uint8_t *data,
			       unsigned size)
{
	struct virtio_mmio *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		if (config_access(t, offset, size) && t->def.config_write)
			t->def.config_write(t->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG), data,
					    size);
	} else if (size == 4 && IS_ALIGNED(offset, 4)) {
		reg_write(t, offset, rd32(data));
	} else {
		warn_access(t, "register write not 32-bit aligned", offset, size);
	}
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_ops virtio_mmio_ops = {
	.read = virtio_mmio__read,
	.write = virtio_mmio__write,
};

struct virtio_mmio *virtio_mmio__create(struct vm *vm, const struct virtio_mmio_def *def,
					void *dev, char *err, size_t errlen)
{
	struct virtio_mmio *t;
	int r;

	if (def->nqueues < 1 || def->nqueues > VIRTIO_MMIO_MAX_QUEUES ||
	    def->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG) {
		error(err, errlen, "%s: internal error: %u queues, %u bytes of configuration",
		      def->name, def->nqueues, def->config_size);
		return NULL;
	}
	for (unsigned q = 0; q < def->nqueues; q++) {
		uint16_t m = def->queue_max[q];

		if (!m || m > VIRTQ_MAX_SIZE || (m & (m - 1))) {
			error(err, errlen, "%s: internal error: queue %u of %u entries", def->name,
			      q, m);
			return NULL;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		error(err, errlen, "%s: out of memory", def->name);
		return NULL;
	}
	*t = (struct virtio_mmio){ .vm = vm, .def = *def, .dev = dev,
				   .index = vm->nvirtio_mmio };
	for (unsigned q = 0; q < def->nqueues; q++)
		snprintf(t->qname[q], sizeof(t->qname[q]), "%s queue %u", def->name, q);
	if ((r = pthread_mutex_init(&t->lock, NULL)) != 0) {
		error(err, errlen, "%s: pthread_mutex_init: %s", def->name, strerror(r));
		free(t);
		return NULL;
	}
	reset_transport(t);
	if (mmio_window__alloc(&vm->mmio_window, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_SIZE, &t->base,
			       def->name, err, errlen) < 0)
		goto fail;
	if (gsi__alloc(&vm->gsi, &t->gsi, def->name, err, errlen) < 0)
		goto fail;
	if (bus__register(&vm->mmio, t->base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, t, def->name,
			  err, errlen) < 0) {
		gsi__release(&vm->gsi, t->gsi);
		goto fail;
	}
	vm->nvirtio_mmio++;
	return t;
fail:
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

int virtio_mmio__destroy(struct virtio_mmio *t, char *err, size_t errlen)
{
	int r;

	if (!t)
		return 0;
	r = bus__unregister(&t->vm->mmio, t->base, err, errlen);
	gsi__release(&t->vm->gsi, t->gsi);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return r;
}

void virtio_mmio__dsdt(const struct virtio_mmio *t, struct aml *a)
{
	char name[8];

	/* A Scope around a one-segment Device name: what simple AML readers (the probe) parse. */
	snprintf(name, sizeof(name), "V%03u", t->index % 1000);
	aml__scope(a, "\\_SB_");
	aml__device(a, name);
	aml__name(a, "_HID");
	aml__string(a, "LNRO0005");
	aml__name(a, "_UID");
	aml__int(a, t->index);
	/* Cache-coherent DMA: the "device" is the VMM reading guest RAM through the CPU's caches. */
	aml__name(a, "_CCA");
	aml__int(a, 1);
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_memory32_fixed(a, true, (uint32_t)t->base, VIRTIO_MMIO_SIZE);
	aml__rt_interrupt(a, AML_IRQ_EDGE, &t->gsi, 1);
	aml__pkg_close(a);	/* ResourceTemplate */
	aml__pkg_close(a);	/* Device */
	aml__pkg_close(a);	/* Scope */
}

int virtio_mmio__fdt(const struct virtio_mmio *t, void *fdt)
{
	fdt64_t reg[2] = { cpu_to_fdt64(t->base), cpu_to_fdt64(VIRTIO_MMIO_SIZE) };
	char name[32];

	snprintf(name, sizeof(name), "virtio_mmio@%llx", (unsigned long long)t->base);
	if (fdt_begin_node(fdt, name) < 0 ||
	    fdt_property_string(fdt, "compatible", "virtio,mmio") < 0 ||
	    fdt_property(fdt, "reg", reg, sizeof(reg)) < 0 ||
	    fdt_property_u32(fdt, "interrupts", t->gsi) < 0 ||
	    fdt_property(fdt, "dma-coherent", NULL, 0) < 0 ||
	    fdt_end_node(fdt) < 0)
		return -1;
	return 0;
}
