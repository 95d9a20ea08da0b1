/*
 * The virtio-mmio transport and the split virtqueue walker, driven through the MMIO bus as a
 * guest driver would, with rings in real guest memory (a zone's anonymous backing). The device
 * is an echo device defined here: it copies what the driver gives it back into the driver's
 * writable buffers, so every answer shows what the walker handed it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/virtio_vm.h"

#define ECHO_QMAX	128
#define ECHO_FEATURE	3	/* a device feature bit besides VERSION_1 */

struct echo {
	struct virtio_mmio *t;
	uint8_t config[16];
	unsigned resets, ok, failed, broken;
};

static struct vm test_vm;
static struct echo echo;

static void echo_config_read(void *dev, uint32_t off, uint8_t *data, unsigned size)
{
	memcpy(data, ((struct echo *)dev)->config + off, size);
}

static void echo_config_write(void *dev, uint32_t off, const uint8_t *data, unsigned size)
{
	memcpy(((struct echo *)dev)->config + off, data, size);
}

static void echo_notify(void *dev, struct virtio_mmio *t, unsigned queue)
{
	struct virtq *q = virtio_mmio__queue(t, queue);
	struct echo *e = dev;
	struct virtq_req req;
	uint8_t buf[256];
	char err[256];

	for (;;) {
		switch (virtq__pop(q, &req, err, sizeof(err))) {
		case VIRTQ_EMPTY:
			return;
		case VIRTQ_FAILED:
			e->failed++;
			continue;
		case VIRTQ_BROKEN:
			e->broken++;
			virtio_mmio__needs_reset(t);
			return;
		case VIRTQ_OK:
			break;
		}
		e->ok++;
		if (req.out_len <= sizeof(buf) && virtq__read(&req, 0, buf, req.out_len))
			virtq__write(&req, buf, req.out_len < req.in_len ? req.out_len : req.in_len);
		virtq__push(q, &req);
		virtio_mmio__signal_used(t);
	}
}

static void echo_reset(void *dev)
{
	((struct echo *)dev)->resets++;
}

static const struct virtio_mmio_def echo_def = {
	.name = "echo", .device_id = 42, .features = 1ULL << ECHO_FEATURE,
	.nqueues = 2, .queue_max = { ECHO_QMAX, 4 }, .config_size = sizeof(echo.config),
	.config_read = echo_config_read, .config_write = echo_config_write,
	.notify = echo_notify, .reset = echo_reset,
};

/* A 64 MiB VM with the echo device on its own transport. */
static int setup(void **state)
{
	struct vm_config c;
	char err[256];

	cfg_init(&c, 1, 1);
	add_zone(&c, "mem", 64 * MiB, 0, -1);
	virtio_vm(&test_vm, &c);
	echo = (struct echo){ .config = "0123456789abcdef" };
	echo.t = virtio_mmio__create(&test_vm, &echo_def, &echo, err, sizeof(err));
	if (!echo.t)
		fail_msg("virtio_mmio__create: %s", err);
	*state = echo.t;
	return 0;
}

static int teardown(void **state)
{
	char err[256];

	assert_int_equal(virtio_mmio__destroy(*state, err, sizeof(err)), 0);
	virtio_vm_end(&test_vm);
	return 0;
}

static void test_identity(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;

	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_VERSION_REG), 2);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_ID), 42);
	/* The window and the line came from the allocators, not from constants. */
	assert_true(t->base >= vm->mmio_window.base &&
		    t->base + VIRTIO_MMIO_SIZE <= vm->mmio_window.base + vm->mmio_window.size);
	assert_true(IS_ALIGNED(t->base, VIRTIO_MMIO_SIZE));
	assert_true(t->gsi >= vm->gsi.first_dynamic && (vm->gsi.used >> t->gsi & 1));
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_QUEUE_NUM_MAX), ECHO_QMAX);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_QUEUE_NUM_MAX), 4);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_SEL, 2);	/* absent */
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* Writes to read-only registers change nothing. */
	mmio_wr(vm, t, VIRTIO_MMIO_DEVICE_ID, 5);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_ID), 42);
}

static void test_features(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	uint64_t v1 = 1ULL << VIRTIO_F_VERSION_1;

	mmio_wr(vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_FEATURES), 1u << ECHO_FEATURE);
	mmio_wr(vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_FEATURES), 1);	/* bit 32 */
	mmio_wr(vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	/* Without VERSION_1, or with a bit not offered: no FEATURES_OK. */
	assert_false(driver_features(vm, t, 1ULL << ECHO_FEATURE) & VIRTIO_STATUS_FEATURES_OK);
	assert_false(driver_features(vm, t, v1 | 1ULL << 5) & VIRTIO_STATUS_FEATURES_OK);
	assert_false(driver_features(vm, t, v1 | 1ULL << 40) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(driver_features(vm, t, v1) & VIRTIO_STATUS_FEATURES_OK);
	assert_false(virtio_mmio__has_feature(t, ECHO_FEATURE));
	assert_true(driver_features(vm, t, v1 | 1ULL << ECHO_FEATURE) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(virtio_mmio__has_feature(t, ECHO_FEATURE));
	assert_true(virtio_mmio__has_feature(t, VIRTIO_F_VERSION_1));
	/* Accepted features are fixed from FEATURES_OK on. */
	mmio_wr(vm, t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_wr(vm, t, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(virtio_mmio__has_feature(t, ECHO_FEATURE));
}

static void test_reset(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	unsigned resets;

	driver_up(vm, t, 0, 8);
	resets = echo.resets;
	virtio_mmio__signal_used(t);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	assert_true(t->queues[0].ready);
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(echo.resets, resets + 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(t->queues[0].desc_gpa, 0);
	assert_int_equal(t->queues[0].num, ECHO_QMAX);
	assert_int_equal(t->driver_features, 0);
	assert_false(virtio_mmio__has_feature(t, VIRTIO_F_VERSION_1));
}

/* Registers take aligned 32-bit accesses only; the configuration takes 1, 2, 4 and 8 bytes. */
static void test_widths(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	uint8_t d[8];
	uint64_t v;

	bus__read(&vm->mmio, t->base + VIRTIO_MMIO_MAGIC_VALUE, d, 2);
	assert_int_equal(d[0] | d[1] << 8, 0);
	bus__read(&vm->mmio, t->base + VIRTIO_MMIO_MAGIC_VALUE + 1, d, 4);
	assert_int_equal(d[0], 0);
	bus__read(&vm->mmio, t->base + VIRTIO_MMIO_MAGIC_VALUE, d, 8);
	assert_int_equal(d[0], 0);
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	d[0] = 0;
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_STATUS, d, 1);	/* not a reset */
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);

	for (unsigned size = 1; size <= 8; size *= 2) {
		memset(d, 0xee, sizeof(d));
		bus__read(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 8, d, size);
		assert_memory_equal(d, "89abcdef", size);
	}
	memcpy(&v, "ABCDEFGH", 8);
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 8, (uint8_t *)&v, 8);
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 0, (const uint8_t *)"xy", 2);
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 2, (const uint8_t *)"z", 1);
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 4, (const uint8_t *)"WXYZ", 4);
	assert_memory_equal(echo.config, "xyz3WXYZABCDEFGH", 16);
	/* Past the end of the configuration: zeros, writes dropped. */
	bus__read(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 12, d, 8);
	assert_memory_equal(d, "\0\0\0\0\0\0\0\0", 8);
	bus__write(&vm->mmio, t->base + VIRTIO_MMIO_CONFIG + 12, (uint8_t *)&v, 8);
	assert_memory_equal(echo.config, "xyz3WXYZABCDEFGH", 16);
}

/* QueueReady = 1 checks size and rings; a refused queue stays off and asks for a reset. */
static void test_queue_enable(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	static const struct { uint32_t num; uint64_t desc, avail, used; } bad[] = {
		{ 6, RING_DESC, RING_AVAIL, RING_USED },		/* not a power of two */
		{ 2 * ECHO_QMAX, RING_DESC, RING_AVAIL, RING_USED },	/* above the max */
		{ 0, RING_DESC, RING_AVAIL, RING_USED },
		{ 8, RING_DESC + 8, RING_AVAIL, RING_USED },		/* misaligned */
		{ 8, RING_DESC, RING_AVAIL + 1, RING_USED },
		{ 8, RING_DESC, RING_AVAIL, RING_USED + 2 },
		{ 8, 64 * MiB - 64, RING_AVAIL, RING_USED },		/* runs off RAM */
		{ 8, RING_DESC, 0xc0000000ULL, RING_USED },		/* the MMIO hole */
		{ 8, RING_DESC, RING_AVAIL, UINT64_MAX - 15 },		/* wraps */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t s = driver_features(vm, t, 1ULL << VIRTIO_F_VERSION_1);

		assert_false(s & VIRTIO_STATUS_NEEDS_RESET);
		assert_int_equal(queue_at(vm, t, 0, bad[i].num, bad[i].desc, bad[i].avail,
					  bad[i].used), 0);
		assert_true(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	}
	driver_features(vm, t, 1ULL << VIRTIO_F_VERSION_1);
	assert_int_equal(queue_at(vm, t, 0, 8, RING_DESC, RING_AVAIL, RING_USED), 1);
	/* A ready queue keeps its addresses. */
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	assert_int_equal(t->queues[0].desc_gpa, RING_DESC);
}

/* A well-formed request: readable buffers then writable ones, echoed back. */
static void test_echo(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	unsigned ok = echo.ok;
	uint32_t id, len;

	/* Before DRIVER_OK a notification does nothing. */
	driver_features(vm, t, 1ULL << VIRTIO_F_VERSION_1);
	queue_at(vm, t, 0, 8, RING_DESC, RING_AVAIL, RING_USED);
	drv_set(vm, 0, RING_BUFS, 5, 0, 0);
	drv_kick(vm, t, 8, 0);
	assert_int_equal(used_idx(vm), 0);

	memset(gpa(vm, RING_AVAIL, 4), 0, 4);	/* a driver starts with clean rings */
	driver_up(vm, t, 0, 8);
	memcpy(gpa(vm, RING_BUFS, 5), "hello", 5);
	memcpy(gpa(vm, RING_BUFS + 0x1000, 3), " vm", 3);
	drv_set(vm, 3, RING_BUFS, 5, VIRTQ_DESC_F_NEXT, 5);
	drv_set(vm, 5, RING_BUFS + 0x1000, 3, VIRTQ_DESC_F_NEXT, 1);
	drv_set(vm, 1, RING_BUFS + 0x2000, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	drv_set(vm, 2, RING_BUFS + 0x3000, 16, VIRTQ_DESC_F_WRITE, 0);
	drv_kick(vm, t, 8, 3);
	assert_int_equal(echo.ok, ok + 1);
	assert_int_equal(used_idx(vm), 1);
	used_elem(vm, 8, 0, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 8);
	assert_memory_equal(gpa(vm, RING_BUFS + 0x2000, 4), "hell", 4);
	assert_memory_equal(gpa(vm, RING_BUFS + 0x3000, 4), "o vm", 4);
	assert_true(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	mmio_wr(vm, t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* The ring wraps: 20 more requests through 8 slots. */
	for (int i = 0; i < 20; i++)
		drv_kick(vm, t, 8, 3);
	assert_int_equal(used_idx(vm), 21);
	assert_int_equal(echo.ok, ok + 21);
}

/*
 * Hostile chains: each fails alone (returned as used with 0 bytes), and the queue goes on.
 * Descriptor 7 is a good one-buffer request that must still work after each.
 */
static void test_hostile_chains(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	const uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE;
	unsigned failed = echo.failed;
	uint16_t used = 0;
	uint32_t id, len;

	driver_up(vm, t, 0, ECHO_QMAX);
	for (int bad = 0; bad < 8; bad++) {
		for (unsigned i = 0; i < ECHO_QMAX; i++)
			drv_set(vm, i, RING_BUFS, 8, N, (uint16_t)(i + 1));
		switch (bad) {
		case 0:	/* a loop: 0 -> 1 -> 2 -> 0 */
			drv_set(vm, 2, RING_BUFS, 8, N, 0);
			break;
		case 1:	/* a loop on itself */
			drv_set(vm, 0, RING_BUFS, 8, N, 0);
			break;
		case 2:	/* a link beyond the queue */
			drv_set(vm, 1, RING_BUFS, 8, N, ECHO_QMAX);
			break;
		case 3:	/* outside guest RAM */
			drv_set(vm, 0, 64 * MiB - 4, 8, 0, 0);
			break;
		case 4:	/* address + length wraps */
			drv_set(vm, 0, UINT64_MAX - 3, 8, 0, 0);
			break;
		case 5:	/* indirect */
			drv_set(vm, 0, RING_BUFS, 16, VIRTQ_DESC_F_INDIRECT, 0);
			break;
		case 6:	/* readable after writable */
			drv_set(vm, 0, RING_BUFS, 8, W | N, 1);
			drv_set(vm, 1, RING_BUFS, 8, 0, 0);
			break;
		case 7:	/* the MMIO hole */
			drv_set(vm, 0, 0xc0000000ULL, 4, 0, 0);
			break;
		}
		drv_kick(vm, t, ECHO_QMAX, 0);
		assert_int_equal(echo.failed, failed + bad + 1);
		assert_int_equal(used_idx(vm), ++used);
		used_elem(vm, ECHO_QMAX, used - 1, &id, &len);
		assert_int_equal(id, 0);
		assert_int_equal(len, 0);

		drv_set(vm, 7, RING_BUFS, 8, 0, 0);
		drv_kick(vm, t, ECHO_QMAX, 7);
		assert_int_equal(used_idx(vm), ++used);
		used_elem(vm, ECHO_QMAX, used - 1, &id, &len);
		assert_int_equal(id, 7);
	}
	assert_false(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* More than VIRTQ_MAX_SEGS buffers, in a queue large enough to hold them. */
static void test_chain_too_long(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	unsigned failed = echo.failed, ok = echo.ok;
	uint32_t id, len;

	assert_true(ECHO_QMAX > VIRTQ_MAX_SEGS);
	driver_up(vm, t, 0, ECHO_QMAX);
	for (unsigned i = 0; i < ECHO_QMAX; i++)
		drv_set(vm, i, RING_BUFS, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	drv_set(vm, VIRTQ_MAX_SEGS - 1, RING_BUFS, 1, 0, 0);	/* the most allowed */
	drv_kick(vm, t, ECHO_QMAX, 0);
	assert_int_equal(echo.ok, ok + 1);
	drv_set(vm, VIRTQ_MAX_SEGS - 1, RING_BUFS, 1, VIRTQ_DESC_F_NEXT, VIRTQ_MAX_SEGS);
	drv_set(vm, VIRTQ_MAX_SEGS, RING_BUFS, 1, 0, 0);	/* one too many */
	drv_kick(vm, t, ECHO_QMAX, 0);
	assert_int_equal(echo.failed, failed + 1);
	assert_int_equal(used_idx(vm), 2);
	used_elem(vm, ECHO_QMAX, 1, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
}

/* An available index that jumps past the queue size: the queue stops, NEEDS_RESET, config IRQ. */
static void test_bad_avail_idx(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	unsigned broken = echo.broken, ok = echo.ok;
	uint32_t gen = mmio_rd(vm, t, VIRTIO_MMIO_CONFIG_GENERATION);

	driver_up(vm, t, 0, 8);
	drv_set(vm, 0, RING_BUFS, 8, 0, 0);
	__atomic_store_n(avail_idx(vm), 9, __ATOMIC_RELEASE);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(echo.broken, broken + 1);
	assert_int_equal(used_idx(vm), 0);
	assert_true(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	/* The driver cannot clear the bit; the queue stays stopped even for a sane index. */
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, mmio_rd(vm, t, VIRTIO_MMIO_STATUS) &
		~(uint32_t)VIRTIO_STATUS_NEEDS_RESET);
	assert_true(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	__atomic_store_n(avail_idx(vm), 1, __ATOMIC_RELEASE);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(echo.ok, ok);
	/* A reset brings it back. */
	memset(gpa(vm, RING_AVAIL, 4), 0, 4);
	memset(gpa(vm, RING_USED, 4), 0, 4);
	driver_up(vm, t, 0, 8);
	assert_false(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	drv_kick(vm, t, 8, 0);
	assert_int_equal(echo.ok, ok + 1);
	assert_int_equal(used_idx(vm), 1);
}

/* A head index beyond the queue cannot be answered: the driver is broken. */
static void test_bad_head(void **state)
{
	struct virtio_mmio *t = *state;
	struct vm *vm = &test_vm;
	unsigned broken = echo.broken;

	memset(gpa(vm, RING_AVAIL, 4), 0, 4);
	memset(gpa(vm, RING_USED, 4), 0, 4);
	driver_up(vm, t, 0, 8);
	drv_kick(vm, t, 8, 8);
	assert_int_equal(echo.broken, broken + 1);
	assert_int_equal(used_idx(vm), 0);
	assert_true(mmio_rd(vm, t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* virtq__read and virtq__write across buffer boundaries, and their limits. */
static void test_req_copy(void **state)
{
	struct virtq_req req = { .nout = 2, .nin = 2, .out_len = 6, .in_len = 6 };
	uint8_t a[3] = "abc", b[3] = "def", x[4], y[2], got[6];

	(void)state;
	req.out[0] = (struct virtq_seg){ a, 3 };
	req.out[1] = (struct virtq_seg){ b, 3 };
	req.in[0] = (struct virtq_seg){ x, 4 };
	req.in[1] = (struct virtq_seg){ y, 2 };
	assert_true(virtq__read(&req, 2, got, 3));
	assert_memory_equal(got, "cde", 3);
	assert_false(virtq__read(&req, 4, got, 3));
	assert_false(virtq__read(&req, UINT64_MAX, got, 2));
	assert_true(virtq__write(&req, "12345", 5));
	assert_false(virtq__write(&req, "67", 2));
	assert_true(virtq__write(&req, "6", 1));
	assert_memory_equal(x, "1234", 4);
	assert_memory_equal(y, "56", 2);
	assert_int_equal(req.written, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_widths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_avail_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_head, setup, teardown),
		cmocka_unit_test(test_req_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
