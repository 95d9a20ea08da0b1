/*
 * The device model: bus registration and lookup, dispatch of every access width, unclaimed
 * accesses (all ones, a bounded log), KVM exits decoded onto the buses (string I/O included), the
 * GSI and MMIO-window allocators, the device table's start and stop order, and the UART, exit
 * port and debug port reached through the bus.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/kvm.h>

#include "arch/x86/platform.h"
#include "bus.h"
#include "device.h"
#include "util.h"
#include "vm.h"

/* What a fake device saw: its last access, and every byte written to it. */
struct fake {
	unsigned reads, writes;
	uint64_t offset;
	unsigned size;
	uint8_t last[8];
	uint8_t wrote[64];
	size_t nwrote;
	bool partial_read;	/* read fills only data[0] */
};

static void fake_read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct fake *f = opaque;

	f->reads++;
	f->offset = offset;
	f->size = size;
	for (unsigned i = 0; i < (f->partial_read ? 1 : size); i++)
		data[i] = (uint8_t)(0x10 + offset + i);
}

static void fake_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct fake *f = opaque;

	f->writes++;
	f->offset = offset;
	f->size = size;
	memcpy(f->last, data, size);
	for (unsigned i = 0; i < size && f->nwrote < sizeof(f->wrote); i++)
		f->wrote[f->nwrote++] = data[i];
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };
static const struct bus_ops none_ops = { 0 };

static struct bus *new_bus(struct bus *b, const char *name, uint64_t last, FILE *log)
{
	char err[256];

	if (bus__init(b, name, last, log, err, sizeof(err)) < 0)
		fail_msg("bus__init: %s", err);
	return b;
}

static int reg(struct bus *b, uint64_t base, uint64_t len, void *opaque, const char *name,
	       char *err, size_t errlen)
{
	return bus__register(b, base, len, &fake_ops, opaque, name, err, errlen);
}

static void assert_one_line(const char *err)
{
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
}

static void test_register_overlap(void **state)
{
	struct bus b;
	struct fake f = { 0 };
	char err[256];

	(void)state;
	new_bus(&b, "pio", PIO_LAST_PORT, NULL);
	/* Out of order on purpose: the array stays sorted. */
	assert_int_equal(reg(&b, 0x110, 0x10, &f, "b", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0x100, 8, &f, "a", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0x108, 8, &f, "c", err, sizeof(err)), 0);	/* both ends touch */
	assert_int_equal(b.nranges, 3);
	for (size_t i = 1; i < b.nranges; i++)
		assert_true(b.ranges[i - 1].base + b.ranges[i - 1].len <= b.ranges[i].base);

	static const struct { uint64_t base, len; } bad[] = {
		{ 0x107, 2 },		/* last byte of a, first of c */
		{ 0x100, 8 },		/* identical */
		{ 0xf0, 0x100 },	/* contains all three */
		{ 0x112, 1 },		/* inside b */
		{ 0x11f, 1 },		/* b's last byte */
		{ 0xff, 2 },		/* a's first byte */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		assert_int_equal(reg(&b, bad[i].base, bad[i].len, &f, "new", err, sizeof(err)), -1);
		assert_one_line(err);
		assert_non_null(strstr(err, "overlaps"));
	}
	assert_int_equal(reg(&b, 0x120, 1, &f, "d", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0xff, 1, &f, "e", err, sizeof(err)), 0);
	assert_int_equal(b.nranges, 5);

	assert_int_equal(reg(&b, 0x200, 0, &f, "empty", err, sizeof(err)), -1);
	assert_one_line(err);
	assert_int_equal(reg(&b, 0xfffe, 4, &f, "past", err, sizeof(err)), -1);
	assert_one_line(err);
	assert_int_equal(reg(&b, 0x10000, 1, &f, "past", err, sizeof(err)), -1);
	assert_int_equal(bus__register(&b, 0x300, 1, NULL, &f, "noops", err, sizeof(err)), -1);
	assert_int_equal(reg(&b, 0xfff0, 0x10, &f, "top", err, sizeof(err)), 0);

	assert_int_equal(bus__unregister(&b, 0x101, err, sizeof(err)), -1);
	assert_one_line(err);
	assert_int_equal(bus__unregister(&b, 0x108, err, sizeof(err)), 0);
	assert_null(bus__find(&b, 0x10c));
	assert_int_equal(reg(&b, 0x10c, 4, &f, "c2", err, sizeof(err)), 0);
	assert_string_equal(bus__find(&b, 0x10f)->name, "c2");
	bus__exit(&b);
}

static void test_boundary_lookup(void **state)
{
	struct bus b;
	struct fake f = { 0 };
	char err[256];

	(void)state;
	new_bus(&b, "mmio", UINT64_MAX, NULL);
	assert_null(bus__find(&b, 0));
	assert_int_equal(reg(&b, 0x1000, 0x100, &f, "a", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0x2000, 0x10, &f, "b", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, UINT64_MAX - 0xfff, 0x1000, &f, "top", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0, 1, &f, "zero", err, sizeof(err)), 0);

	assert_string_equal(bus__find(&b, 0)->name, "zero");
	assert_null(bus__find(&b, 1));
	assert_null(bus__find(&b, 0xfff));
	assert_string_equal(bus__find(&b, 0x1000)->name, "a");
	assert_string_equal(bus__find(&b, 0x10ff)->name, "a");
	assert_null(bus__find(&b, 0x1100));
	assert_null(bus__find(&b, 0x1fff));
	assert_string_equal(bus__find(&b, 0x2000)->name, "b");
	assert_string_equal(bus__find(&b, 0x200f)->name, "b");
	assert_null(bus__find(&b, 0x2010));
	assert_null(bus__find(&b, UINT64_MAX - 0x1000));
	assert_string_equal(bus__find(&b, UINT64_MAX - 0xfff)->name, "top");
	assert_string_equal(bus__find(&b, UINT64_MAX)->name, "top");
	bus__exit(&b);
}

static void test_dispatch_sizes(void **state)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	struct bus b;
	struct fake f = { 0 };
	char err[256];

	(void)state;
	new_bus(&b, "mmio", UINT64_MAX, NULL);
	assert_int_equal(reg(&b, 0xd0000000, 0x100, &f, "dev", err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned size = sizes[i];
		uint64_t off = 0x100 - size;	/* the access ends on the range's last byte */
		uint8_t data[8], want[8];

		for (unsigned k = 0; k < size; k++)
			data[k] = want[k] = (uint8_t)(0xa0 + k + i);
		memset(&f, 0, sizeof(f));
		bus__write(&b, 0xd0000000 + off, data, size);
		assert_int_equal(f.writes, 1);
		assert_int_equal(f.reads, 0);
		assert_int_equal(f.offset, off);
		assert_int_equal(f.size, size);
		assert_memory_equal(f.last, want, size);

		memset(data, 0, sizeof(data));
		bus__read(&b, 0xd0000000 + off, data, size);
		for (unsigned k = size; k < sizeof(data); k++)
			assert_int_equal(data[k], 0);	/* nothing past the access */
		assert_int_equal(f.reads, 1);
		assert_int_equal(f.offset, off);
		assert_int_equal(f.size, size);
		for (unsigned k = 0; k < size; k++)
			assert_int_equal(data[k], (uint8_t)(0x10 + off + k));
	}
	bus__exit(&b);
}

/* Bytes a device does not fill read as all ones; a range with no handlers reads all ones. */
static void test_read_defaults(void **state)
{
	struct bus b;
	struct fake f = { .partial_read = true };
	char err[256];
	uint8_t data[4] = { 0 };

	(void)state;
	new_bus(&b, "pio", PIO_LAST_PORT, NULL);
	assert_int_equal(reg(&b, 0x60, 4, &f, "partial", err, sizeof(err)), 0);
	assert_int_equal(bus__register(&b, 0x70, 4, &none_ops, NULL, "none", err, sizeof(err)), 0);
	bus__read(&b, 0x60, data, 4);
	assert_int_equal(data[0], 0x10);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(data[3], 0xff);
	memset(data, 0, sizeof(data));
	bus__read(&b, 0x70, data, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(data[i], 0xff);
	bus__write(&b, 0x70, data, 4);
	bus__exit(&b);
}

/* An access running off a range's end reaches the device byte by byte, the rest unclaimed. */
static void test_straddling_access(void **state)
{
	struct bus b;
	struct fake f = { 0 }, g = { 0 };
	char err[256];
	uint8_t data[4] = { 0 }, out[4] = { 1, 2, 3, 4 };

	(void)state;
	new_bus(&b, "pio", PIO_LAST_PORT, NULL);
	assert_int_equal(reg(&b, 0x100, 8, &f, "f", err, sizeof(err)), 0);
	assert_int_equal(reg(&b, 0x109, 1, &g, "g", err, sizeof(err)), 0);
	bus__read(&b, 0x106, data, 4);
	assert_int_equal(f.reads, 2);
	assert_int_equal(f.size, 1);
	assert_int_equal(f.offset, 7);
	assert_int_equal(data[0], 0x16);
	assert_int_equal(data[1], 0x17);
	assert_int_equal(data[2], 0xff);
	assert_int_equal(data[3], 0x10);	/* g's offset 0 */
	bus__write(&b, 0x106, out, 4);
	assert_int_equal(f.writes, 2);
	assert_int_equal(f.nwrote, 2);
	assert_int_equal(f.wrote[0], 1);
	assert_int_equal(f.wrote[1], 2);
	assert_int_equal(g.nwrote, 1);
	assert_int_equal(g.wrote[0], 4);

	/* Off the end of the port space: the last port answers, the rest floats high. */
	memset(&f, 0, sizeof(f));
	assert_int_equal(reg(&b, 0xffff, 1, &f, "last", err, sizeof(err)), 0);
	bus__read(&b, 0xffff, data, 4);
	assert_int_equal(f.reads, 1);
	assert_int_equal(data[0], 0x10);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(data[3], 0xff);
	bus__exit(&b);
}

static void test_unclaimed_all_ones(void **state)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	struct bus b;
	struct fake f = { 0 };
	char err[256];

	(void)state;
	new_bus(&b, "mmio", UINT64_MAX, NULL);
	assert_int_equal(reg(&b, 0x1000, 0x10, &f, "dev", err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint8_t data[8] = { 0 };

		bus__read(&b, 0x2000, data, sizes[i]);
		for (unsigned k = 0; k < sizes[i]; k++)
			assert_int_equal(data[k], 0xff);
		for (unsigned k = sizes[i]; k < 8; k++)
			assert_int_equal(data[k], 0);	/* nothing past the access */
		bus__write(&b, 0x2000, data, sizes[i]);
		/* Ends right before the device: still nothing reaches it. */
		bus__read(&b, 0x1000 - sizes[i], data, sizes[i]);
		assert_int_equal(data[0], 0xff);
	}
	/* Wraps past 2^64: no byte reaches the device at 0. */
	assert_int_equal(reg(&b, 0, 4, &f, "zero", err, sizeof(err)), 0);
	uint8_t data[8] = { 0 };
	bus__read(&b, UINT64_MAX - 1, data, 8);
	for (int k = 0; k < 8; k++)
		assert_int_equal(data[k], 0xff);
	assert_int_equal(f.reads, 0);
	assert_int_equal(f.writes, 0);
	/* With a device at the top, the bytes up to 2^64 reach it, one at a time. */
	assert_int_equal(reg(&b, UINT64_MAX - 0xf, 0x10, &f, "top", err, sizeof(err)), 0);
	bus__read(&b, UINT64_MAX - 1, data, 8);
	assert_int_equal(f.reads, 2);
	assert_int_equal(f.size, 1);
	assert_int_equal(f.offset, 0xf);
	assert_memory_equal(data, "\x1e\x1f\xff\xff\xff\xff\xff\xff", 8);
	bus__exit(&b);
}

static int count_lines(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_unclaimed_log_bounded(void **state)
{
	struct bus b, quiet;
	char *buf = NULL;
	size_t len = 0;
	FILE *log = open_memstream(&buf, &len);
	uint8_t data[4];

	(void)state;
	assert_non_null(log);
	new_bus(&b, "pio", PIO_LAST_PORT, log);
	bus__read(&b, 0x1234, data, 2);
	bus__read(&b, 0x1234, data, 2);
	bus__read(&b, 0x1234, data, 1);
	bus__write(&b, 0x1234, data, 1);
	assert_int_equal(fflush(log), 0);
	assert_string_equal(buf, "memvisor: unclaimed pio read 0x1234 size 2\n"
				 "memvisor: unclaimed pio write 0x1234 size 1\n");

	/* A sweep of the port space, twice: the log stops at BUS_LOG_MAX addresses. */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t port = 0; port <= PIO_LAST_PORT; port++)
			bus__read(&b, port, data, 1);
	assert_int_equal(fflush(log), 0);
	assert_int_equal(count_lines(buf, "\n"), BUS_LOG_MAX + 1);
	assert_int_equal(count_lines(buf, "unclaimed pio read"), BUS_LOG_MAX - 1);
	assert_int_equal(count_lines(buf, "no more logged"), 1);
	assert_int_equal(b.nlogged, BUS_LOG_MAX);
	bus__write(&b, 0x4321, data, 1);
	assert_int_equal(fflush(log), 0);
	assert_int_equal(count_lines(buf, "\n"), BUS_LOG_MAX + 1);
	for (size_t i = 0; i < len; i++)
		assert_true(buf[i] != '\0');
	bus__exit(&b);
	assert_int_equal(fclose(log), 0);
	free(buf);

	/* Without -v nothing is kept at all. */
	new_bus(&quiet, "mmio", UINT64_MAX, NULL);
	bus__read(&quiet, 0xfed00000, data, 4);
	assert_int_equal(quiet.nlogged, 0);
	assert_false(quiet.log_full);
	bus__exit(&quiet);
}

static void test_gsi_alloc(void **state)
{
	struct gsi_alloc a;
	char err[256];
	uint32_t g;

	(void)state;
	assert_int_equal(gsi__init(&a, 17, 16, err, sizeof(err)), -1);
	assert_int_equal(gsi__init(&a, 16, GSI_MAX + 1, err, sizeof(err)), -1);
	assert_int_equal(gsi__init(&a, ISA_NR_IRQS, IOAPIC_NR_PINS, err, sizeof(err)), 0);
	assert_int_equal(gsi__reserve(&a, 4, "com1", err, sizeof(err)), 0);
	assert_int_equal(gsi__reserve(&a, 4, "other", err, sizeof(err)), -1);
	assert_one_line(err);
	assert_non_null(strstr(err, "other"));
	assert_int_equal(gsi__reserve(&a, IOAPIC_NR_PINS, "x", err, sizeof(err)), -1);
	/* Dynamic lines start above the ISA ones, lowest first, until none is left. */
	for (uint32_t want = ISA_NR_IRQS; want < IOAPIC_NR_PINS; want++) {
		assert_int_equal(gsi__alloc(&a, &g, "dev", err, sizeof(err)), 0);
		assert_int_equal(g, want);
	}
	err[0] = '\0';
	assert_int_equal(gsi__alloc(&a, &g, "dev", err, sizeof(err)), -1);
	assert_one_line(err);
	assert_non_null(strstr(err, "no free GSI"));
	gsi__release(&a, 18);
	assert_int_equal(gsi__alloc(&a, &g, "dev", err, sizeof(err)), 0);
	assert_int_equal(g, 18);
	assert_int_equal(gsi__reserve(&a, 20, "x", err, sizeof(err)), -1);	/* allocated */
	gsi__release(&a, 4);
	assert_int_equal(gsi__reserve(&a, 4, "com1", err, sizeof(err)), 0);
	gsi__release(&a, 1000);	/* out of range: ignored */
}

static void test_mmio_window(void **state)
{
	struct mmio_window w;
	char err[256];
	uint64_t gpa = 0;

	(void)state;
	assert_int_equal(mmio_window__init(&w, 0x1000, 0, err, sizeof(err)), -1);
	assert_int_equal(mmio_window__init(&w, UINT64_MAX, 2, err, sizeof(err)), -1);
	assert_int_equal(mmio_window__init(&w, 0xc0000800, 0x4800, err, sizeof(err)), 0);
	/* The base itself is not aligned: the first page-aligned block starts at the next page. */
	assert_int_equal(mmio_window__alloc(&w, 0x1000, 0x1000, &gpa, "a", err, sizeof(err)), 0);
	assert_int_equal(gpa, 0xc0001000);
	assert_int_equal(mmio_window__alloc(&w, 0x10, 0x10, &gpa, "b", err, sizeof(err)), 0);
	assert_int_equal(gpa, 0xc0002000);
	assert_int_equal(mmio_window__alloc(&w, 0x1000, 0x1000, &gpa, "c", err, sizeof(err)), 0);
	assert_int_equal(gpa, 0xc0003000);
	assert_int_equal(mmio_window__alloc(&w, 0x1, 1, &gpa, "d", err, sizeof(err)), 0);
	assert_int_equal(gpa, 0xc0004000);
	/* 0xfff bytes left: one more byte than that is refused, exactly that fits. */
	err[0] = '\0';
	assert_int_equal(mmio_window__alloc(&w, 0x1000, 1, &gpa, "e", err, sizeof(err)), -1);
	assert_one_line(err);
	assert_non_null(strstr(err, "e: MMIO window"));
	assert_int_equal(mmio_window__alloc(&w, 0x800, 0x1000, &gpa, "f", err, sizeof(err)), -1);
	assert_int_equal(mmio_window__alloc(&w, UINT64_MAX, 1, &gpa, "g", err, sizeof(err)), -1);
	assert_int_equal(mmio_window__alloc(&w, 0xfff, 1, &gpa, "h", err, sizeof(err)), 0);
	assert_int_equal(gpa, 0xc0004001);
	assert_int_equal(mmio_window__alloc(&w, 1, 1, &gpa, "i", err, sizeof(err)), -1);
	assert_int_equal(mmio_window__alloc(&w, 0, 1, &gpa, "j", err, sizeof(err)), -1);

	assert_int_equal(mmio_window__init(&w, 0, 0x10000, err, sizeof(err)), 0);
	assert_int_equal(mmio_window__alloc(&w, 0x100, 3, &gpa, "k", err, sizeof(err)), -1);
	assert_int_equal(mmio_window__alloc(&w, 0x100, 0, &gpa, "l", err, sizeof(err)), -1);
	/* An alignment larger than the window: padding alone exhausts it, no wrap. */
	assert_int_equal(mmio_window__alloc(&w, 1, 1, &gpa, "m", err, sizeof(err)), 0);
	assert_int_equal(mmio_window__alloc(&w, 1, 1ULL << 63, &gpa, "n", err, sizeof(err)), -1);

	/* At the very top of the address space. */
	assert_int_equal(mmio_window__init(&w, UINT64_MAX - 0xfff, 0x1000, err, sizeof(err)), 0);
	assert_int_equal(mmio_window__alloc(&w, 0x1000, 0x1000, &gpa, "o", err, sizeof(err)), 0);
	assert_int_equal(gpa, UINT64_MAX - 0xfff);
	assert_int_equal(mmio_window__alloc(&w, 1, 1, &gpa, "p", err, sizeof(err)), -1);

	/* memvisor's window: inside the 32-bit hole, below the IOAPIC. */
	assert_true(MMIO32_WINDOW_BASE >= MMIO32_START);
	assert_true(MMIO32_WINDOW_BASE + MMIO32_WINDOW_SIZE <= 0xfec00000ULL);
}

/* The fake devices of the table tests record what happened, in order. */
static char events[256];

static void event(const char *what, const char *name)
{
	size_t n = strlen(events);

	snprintf(events + n, sizeof(events) - n, "%s%s %s", n ? ", " : "", what, name);
}

#define FAKE_DEVICE(id, fails)                                                                \
	static int id##_init(struct vm *vm, char *err, size_t errlen)                         \
	{                                                                                     \
		(void)vm;                                                                     \
		event("init", #id);                                                           \
		return (fails) ? error(err, errlen, "--" #id ": refused") : 0;                \
	}                                                                                     \
	static int id##_exit(struct vm *vm, char *err, size_t errlen)                         \
	{                                                                                     \
		(void)vm;                                                                     \
		event("exit", #id);                                                           \
		return (fails) ? error(err, errlen, "--" #id ": exit failed") : 0;            \
	}                                                                                     \
	static const struct device_def id##_dev = { .name = #id, .init = id##_init,          \
						    .exit = id##_exit }

FAKE_DEVICE(a, false);
FAKE_DEVICE(b, false);
FAKE_DEVICE(c, true);
FAKE_DEVICE(d, false);

static int noexit_init(struct vm *vm, char *err, size_t errlen)
{
	(void)vm;
	(void)err;
	(void)errlen;
	event("init", "noexit");
	return 0;
}

static const struct device_def noexit_dev = { .name = "noexit", .init = noexit_init };

static struct vm test_vm;

static void test_table_order(void **state)
{
	const struct device_def *const good[] = { &a_dev, &noexit_dev, &b_dev, &d_dev };
	const struct device_def *const failing[] = { &a_dev, &b_dev, &c_dev, &d_dev };
	struct vm *vm = &test_vm;
	char err[256] = "";

	(void)state;
	events[0] = '\0';
	assert_int_equal(devices__init(vm, good, ARRAY_SIZE(good), err, sizeof(err)), 0);
	assert_int_equal(vm->devices.started, 4);
	assert_int_equal(devices__exit(vm, err, sizeof(err)), 0);
	assert_string_equal(events, "init a, init noexit, init b, init d, exit d, exit b, exit a");
	assert_int_equal(vm->devices.started, 0);
	assert_int_equal(devices__exit(vm, err, sizeof(err)), 0);	/* nothing left: no event */
	assert_string_equal(events, "init a, init noexit, init b, init d, exit d, exit b, exit a");

	/* c refuses: b and a stop, in that order; c (half-made by itself) and d never run. */
	events[0] = '\0';
	assert_int_equal(devices__init(vm, failing, ARRAY_SIZE(failing), err, sizeof(err)), -1);
	assert_string_equal(events, "init a, init b, init c, exit b, exit a");
	assert_string_equal(err, "--c: refused");	/* the device's line, unchanged */
	assert_int_equal(vm->devices.started, 0);
	assert_int_equal(devices__exit(vm, err, sizeof(err)), 0);
	assert_string_equal(events, "init a, init b, init c, exit b, exit a");

	/* The first one failing leaves nothing to undo. */
	events[0] = '\0';
	assert_int_equal(devices__init(vm, &failing[2], 2, err, sizeof(err)), -1);
	assert_string_equal(events, "init c");
}

/* A test VM holding the real devices: no KVM, serial output off. */
static void real_vm(struct vm *vm)
{
	vm__init(vm);
	vm->cfg.serial = SERIAL_OFF;
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
}

static uint8_t inb(struct vm *vm, uint16_t port)
{
	uint8_t v;

	bus__read(&vm->pio, port, &v, 1);
	return v;
}

static void test_real_devices(void **state)
{
	struct vm *vm = &test_vm;
	char err[256];
	uint8_t d[4], code[4] = { 0x42, 0x56, 0x34, 0x12 };

	(void)state;
	real_vm(vm);
	assert_int_equal(vm__init_devices(vm, err, sizeof(err)), 0);
	assert_int_equal(vm->devices.started, device_table_len);
	assert_string_equal(bus__find(&vm->pio, ISA_COM1_PORT)->name, "serial");
	assert_string_equal(bus__find(&vm->pio, ISA_COM1_PORT + ISA_COM1_LEN - 1)->name, "serial");
	assert_null(bus__find(&vm->pio, ISA_COM1_PORT + ISA_COM1_LEN));
	assert_string_equal(bus__find(&vm->pio, ISA_DEBUG_PORT)->name, "debug-port");
	assert_string_equal(bus__find(&vm->pio, ISA_EXIT_PORT + 3)->name, "exit-port");
	/* No ACPI hotplug area in this layout: the GED's byte is the one MMIO range. */
	assert_int_equal(vm->mmio.nranges, 1);
	assert_string_equal(bus__find(&vm->mmio, MMIO32_WINDOW_BASE)->name, "ged");
	/* COM1's line is taken, and the GED's: the first line the allocator hands out. */
	assert_int_equal(gsi__reserve(&vm->gsi, ISA_COM1_IRQ, "x", err, sizeof(err)), -1);
	assert_int_equal(vm->gsi.used, 1ULL << ISA_COM1_IRQ | 1ULL << ISA_NR_IRQS);
	assert_int_equal(vm->mmio_window.base, MMIO32_WINDOW_BASE);

	/* The UART through the bus: scratch register, LSR, a 16-bit read of MSR and SCR. */
	bus__write(&vm->pio, ISA_COM1_PORT + 7, (const uint8_t[]){ 0x5a }, 1);
	assert_int_equal(inb(vm, ISA_COM1_PORT + 7), 0x5a);
	assert_int_equal(inb(vm, ISA_COM1_PORT + 5), 0x60);
	bus__read(&vm->pio, ISA_COM1_PORT + 6, d, 2);
	assert_int_equal(d[0], 0xb0);
	assert_int_equal(d[1], 0x5a);
	bus__write(&vm->pio, ISA_COM1_PORT + 3, (const uint8_t[]){ 0x80 }, 1);	/* DLAB */
	bus__write(&vm->pio, ISA_COM1_PORT, (const uint8_t[]){ 0x0c }, 1);
	assert_int_equal(inb(vm, ISA_COM1_PORT), 0x0c);
	assert_int_equal(inb(vm, ISA_COM1_PORT - 1), 0xff);	/* unclaimed */
	assert_int_equal(inb(vm, ISA_EXIT_PORT), 0xff);	/* write-only */
	assert_int_equal(inb(vm, ISA_DEBUG_PORT), 0xff);

	/* The exit port: a 32-bit write at its first port, status = the low byte. */
	bus__write(&vm->pio, ISA_EXIT_PORT + 1, code, 1);
	assert_false(vm__stopping(vm));
	bus__write(&vm->pio, ISA_EXIT_PORT, code, 4);
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_int_equal(vm__exit_status(vm), 0x42);

	assert_int_equal(vm__exit_devices(vm, err, sizeof(err)), 0);
	assert_int_equal(vm->devices.started, 0);
	assert_null(vm->serial);
	assert_int_equal(vm->gsi.used, 0);
}

/* A later device failing undoes the earlier ones: bus ranges, GSI, open file. */
static void test_real_devices_failing(void **state)
{
	struct vm *vm = &test_vm;
	struct fake f = { 0 };
	char err[256];

	(void)state;
	real_vm(vm);
	vm->cfg.serial = SERIAL_FILE;
	vm->cfg.serial_file = "/nonexistent-dir/serial.out";
	assert_int_equal(vm__init_devices(vm, err, sizeof(err)), -1);
	assert_ptr_equal(strstr(err, "--serial: cannot open '/nonexistent-dir/serial.out': "), err);
	assert_one_line(err);

	vm->cfg.serial = SERIAL_OFF;
	new_bus(&vm->pio, "pio", PIO_LAST_PORT, NULL);
	assert_int_equal(gsi__init(&vm->gsi, ISA_NR_IRQS, IOAPIC_NR_PINS, err, sizeof(err)), 0);
	assert_int_equal(reg(&vm->pio, ISA_EXIT_PORT + 2, 1, &f, "squatter", err, sizeof(err)), 0);
	assert_int_equal(devices__init(vm, device_table, device_table_len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exit-port"));
	assert_non_null(strstr(err, "squatter"));
	assert_int_equal(vm->pio.nranges, 1);
	assert_string_equal(vm->pio.ranges[0].name, "squatter");
	assert_int_equal(vm->gsi.used, 0);
	assert_null(vm->serial);
	bus__exit(&vm->pio);
}

/* KVM's exits decoded onto the buses: rep outsb/insw, MMIO both ways, malformed exits. */
static void test_emulate_exits(void **state)
{
	static uint8_t page[4096] __attribute__((aligned(4096)));
	struct kvm_run *run = (struct kvm_run *)page;
	struct vm *vm = &test_vm;
	struct fake f = { 0 }, m = { 0 };
	char err[256];
	uint8_t *data = page + 2048;

	(void)state;
	memset(vm, 0, sizeof(*vm));
	new_bus(&vm->pio, "pio", PIO_LAST_PORT, NULL);
	new_bus(&vm->mmio, "mmio", UINT64_MAX, NULL);
	assert_int_equal(reg(&vm->pio, 0x500, 2, &f, "pio-dev", err, sizeof(err)), 0);
	assert_int_equal(reg(&vm->mmio, 0xd0000000, 0x1000, &m, "mmio-dev", err, sizeof(err)), 0);

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 1;
	run->io.port = 0x500;
	run->io.count = 5;
	run->io.data_offset = 2048;
	memcpy(data, "hello", 5);
	assert_true(cpu__emulate_io(vm, run, sizeof(page)));
	assert_int_equal(f.writes, 5);
	assert_int_equal(f.nwrote, 5);
	assert_memory_equal(f.wrote, "hello", 5);

	run->io.direction = KVM_EXIT_IO_IN;
	run->io.size = 2;
	run->io.count = 3;
	memset(data, 0, 8);
	assert_true(cpu__emulate_io(vm, run, sizeof(page)));
	assert_int_equal(f.reads, 3);
	assert_memory_equal(data, ((const uint8_t[]){ 0x10, 0x11, 0x10, 0x11, 0x10, 0x11, 0, 0 }), 8);

	run->io.port = 0x600;	/* nothing there */
	assert_true(cpu__emulate_io(vm, run, sizeof(page)));
	for (int i = 0; i < 6; i++)
		assert_int_equal(data[i], 0xff);
	assert_int_equal(data[6], 0);

	/* The data would run past kvm_run's page: refused, nothing touched. */
	run->io.count = 1025;
	assert_false(cpu__emulate_io(vm, run, sizeof(page)));
	run->io.count = 1;
	run->io.data_offset = sizeof(page);
	assert_false(cpu__emulate_io(vm, run, sizeof(page)));
	assert_int_equal(f.reads, 3);

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = 0xd0000ff8;
	run->mmio.is_write = 1;
	run->mmio.len = 8;
	memcpy(run->mmio.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_true(cpu__emulate_mmio(vm, run));
	assert_int_equal(m.writes, 1);
	assert_int_equal(m.offset, 0xff8);
	assert_int_equal(m.size, 8);
	assert_memory_equal(m.last, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	run->mmio.is_write = 0;
	run->mmio.len = 4;
	run->mmio.phys_addr = 0xd0000010;
	assert_true(cpu__emulate_mmio(vm, run));
	assert_memory_equal(run->mmio.data, "\x20\x21\x22\x23", 4);
	run->mmio.phys_addr = 0xfed00000;	/* unclaimed */
	assert_true(cpu__emulate_mmio(vm, run));
	assert_memory_equal(run->mmio.data, "\xff\xff\xff\xff\x05\x06\x07\x08", 8);
	run->mmio.len = 9;
	assert_false(cpu__emulate_mmio(vm, run));
	assert_int_equal(m.reads, 1);

	bus__exit(&vm->mmio);
	bus__exit(&vm->pio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_overlap),
		cmocka_unit_test(test_boundary_lookup),
		cmocka_unit_test(test_dispatch_sizes),
		cmocka_unit_test(test_read_defaults),
		cmocka_unit_test(test_straddling_access),
		cmocka_unit_test(test_unclaimed_all_ones),
		cmocka_unit_test(test_unclaimed_log_bounded),
		cmocka_unit_test(test_gsi_alloc),
		cmocka_unit_test(test_mmio_window),
		cmocka_unit_test(test_table_order),
		cmocka_unit_test(test_real_devices),
		cmocka_unit_test(test_real_devices_failing),
		cmocka_unit_test(test_emulate_exits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
