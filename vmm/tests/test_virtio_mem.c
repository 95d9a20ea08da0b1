/*
 * virtio-mem end to end: a VM with a virtio-mem region on a real backing, its device as
 * vm__init_devices starts it, requests sent through the MMIO bus and the device's queue, and
 * the host's side checked where the kernel shows it (mincore for private memory, a file's
 * allocated blocks for shared memory). Also its DSDT object (through iasl) and FDT node.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/fdt.h"
#include "memory/hotplug.h"
#include "tests/iasl.h"
#include "tests/tmpdir.h"
#include "tests/virtio_vm.h"


enum { PLUG, UNPLUG, UNPLUG_ALL, STATE };
enum { ACK, NACK, BUSY, ERROR };
enum { PLUGGED, UNPLUGGED, MIXED };

#define BLOCK	(2 * MiB)
#define QSIZE	8

static struct vm test_vm;

/* The zone's device is there, and its transport is the one virtio-mem range on the bus. */
static struct virtio_mmio *mem_transport(struct vm *vm, int zone)
{
	struct virtio_mmio *t = NULL;

	assert_non_null(vm->virtio_mem[zone]);
	for (size_t i = 0; i < vm->mmio.nranges; i++)
		if (!strcmp(vm->mmio.ranges[i].name, "virtio-mem")) {
			assert_null(t);
			t = vm->mmio.ranges[i].opaque;
		}
	assert_non_null(t);
	return t;
}

static uint64_t cfg64(struct vm *vm, const struct virtio_mmio *t, unsigned off)
{
	/* As Linux reads 64-bit fields: two 32-bit halves. */
	return mmio_rd(vm, t, VIRTIO_MMIO_CONFIG + off) |
	       (uint64_t)mmio_rd(vm, t, VIRTIO_MMIO_CONFIG + off + 4) << 32;
}

#define CFG_BLOCK_SIZE	0x00
#define CFG_NODE_ID	0x08
#define CFG_ADDR	0x10
#define CFG_REGION	0x18
#define CFG_USABLE	0x20
#define CFG_PLUGGED	0x28
#define CFG_REQUESTED	0x30

/* A request in descriptor 0 (24 bytes, in boot RAM), its 10-byte answer at `answer` in 1. */
static void place_request(struct vm *vm, uint16_t type, uint64_t addr, uint16_t nb,
			  uint64_t answer)
{
	uint8_t *req = gpa(vm, RING_BUFS, 24);

	memset(req, 0, 24);
	memcpy(req, &type, 2);
	memcpy(req + 8, &addr, 8);
	memcpy(req + 16, &nb, 2);
	drv_set(vm, 0, RING_BUFS, 24, VIRTQ_DESC_F_NEXT, 1);
	drv_set(vm, 1, answer, 10, VIRTQ_DESC_F_WRITE, 0);
}

/* One request, its answer in boot RAM; the answer's type. */
static uint16_t request(struct vm *vm, const struct virtio_mmio *t, uint16_t type, uint64_t addr,
			uint16_t nb, uint16_t *state)
{
	uint8_t *resp = gpa(vm, RING_BUFS + 0x100, 10);
	uint16_t before = used_idx(vm);
	uint32_t id, len;

	memset(resp, 0xff, 10);
	place_request(vm, type, addr, nb, RING_BUFS + 0x100);
	drv_kick(vm, t, QSIZE, 0);
	assert_int_equal(used_idx(vm), (uint16_t)(before + 1));
	used_elem(vm, QSIZE, before, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 10);
	if (state)
		memcpy(state, resp + 8, 2);
	return (uint16_t)(resp[0] | resp[1] << 8);
}

static struct vm_config one_zone(uint64_t size, uint64_t hotplug, uint64_t hotplugged)
{
	struct vm_config c;

	cfg_init(&c, 1, 1);
	c.memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	add_zone(&c, "mem", size, hotplug, -1);
	c.zones[0].hotplugged_size = hotplugged;
	return c;
}

static struct virtio_mmio *mem_up(struct vm *vm, const struct vm_config *c)
{
	struct virtio_mmio *t;

	virtio_vm(vm, c);
	t = mem_transport(vm, 0);
	driver_up(vm, t, 0, QSIZE);
	return t;
}

static void test_config(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 256 * MiB, 32 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t;
	int node;

	(void)state;
	virtio_vm(vm, &c);
	t = mem_transport(vm, 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_VERSION_REG), 2);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_ID), 24);
	assert_int_equal(cfg64(vm, t, CFG_BLOCK_SIZE), BLOCK);
	assert_int_equal(cfg64(vm, t, CFG_ADDR), vm->layout.ranges[1].gpa);
	assert_int_equal(vm->layout.ranges[1].kind, RANGE_VIRTIO_MEM);
	assert_true(IS_ALIGNED(cfg64(vm, t, CFG_ADDR), HOTPLUG_ALIGN));
	assert_int_equal(cfg64(vm, t, CFG_REGION), 256 * MiB);
	assert_int_equal(cfg64(vm, t, CFG_USABLE), 256 * MiB);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 0);
	assert_int_equal(cfg64(vm, t, CFG_REQUESTED), 32 * MiB);
	mmio_wr(vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_FEATURES), 0);	/* no ACPI_PXM */
	virtio_vm_end(vm);
	assert_null(vm->virtio_mem[0]);

	/* A zone on guest node id 3 (index 1): node_id 3 with ACPI_PXM; the other has none. */
	cfg_init(&c, 2, 2);
	c.memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	node = add_node(&c, 1);
	node_cpu(&c, node, 0);
	node = add_node(&c, 3);
	node_cpu(&c, node, 1);
	add_zone(&c, "a", 64 * MiB, 0, 0);
	add_zone(&c, "b", 64 * MiB, 128 * MiB, node);
	virtio_vm(vm, &c);
	assert_null(vm->virtio_mem[0]);
	t = mem_transport(vm, 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_DEVICE_FEATURES), 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_CONFIG + CFG_NODE_ID) & 0xffff, 3);
	assert_int_equal(cfg64(vm, t, CFG_REQUESTED), 0);
	virtio_vm_end(vm);
}

/* State changes as Cloud Hypervisor answers them. */
static void test_requests(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t = mem_up(vm, &c);
	uint64_t base = cfg64(vm, t, CFG_ADDR), end = base + 128 * MiB;
	uint16_t st;

	(void)state;
	assert_int_equal(request(vm, t, PLUG, base, 2, NULL), ACK);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 4 * MiB);
	assert_int_equal(virtio_mem__plugged(vm, 0), 4 * MiB);
	assert_int_equal(hotplug__ram_size(vm), 68 * MiB);
	assert_int_equal(request(vm, t, PLUG, base, 1, NULL), ERROR);		/* plugged already */
	assert_int_equal(request(vm, t, PLUG, base + 2 * BLOCK, 3, NULL), NACK);	/* past 8M */
	assert_int_equal(request(vm, t, PLUG, base + BLOCK / 2, 1, NULL), ERROR);	/* unaligned */
	assert_int_equal(request(vm, t, PLUG, base - BLOCK, 1, NULL), ERROR);	/* below */
	assert_int_equal(request(vm, t, PLUG, end - BLOCK, 2, NULL), ERROR);		/* past end */
	assert_int_equal(request(vm, t, PLUG, end, 1, NULL), ERROR);
	assert_int_equal(request(vm, t, PLUG, base + 2 * BLOCK, 0, NULL), ERROR);	/* empty */
	assert_int_equal(request(vm, t, PLUG, UINT64_MAX & ~(BLOCK - 1), 1, NULL), ERROR);
	assert_int_equal(request(vm, t, 9, base, 1, NULL), ERROR);			/* unknown */
	assert_int_equal(request(vm, t, PLUG, end - BLOCK, 1, NULL), ACK);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 6 * MiB);

	assert_int_equal(request(vm, t, STATE, base, 2, &st), ACK);
	assert_int_equal(st, PLUGGED);
	assert_int_equal(request(vm, t, STATE, base + BLOCK, 2, &st), ACK);
	assert_int_equal(st, MIXED);
	assert_int_equal(request(vm, t, STATE, base + 2 * BLOCK, 5, &st), ACK);
	assert_int_equal(st, UNPLUGGED);
	assert_int_equal(request(vm, t, STATE, end, 1, NULL), ERROR);

	assert_int_equal(request(vm, t, UNPLUG, base, 3, NULL), ERROR);	/* not all plugged */
	assert_int_equal(request(vm, t, UNPLUG, base + BLOCK, 1, NULL), ACK);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 4 * MiB);
	assert_int_equal(request(vm, t, UNPLUG, base + BLOCK, 1, NULL), ERROR);
	assert_int_equal(request(vm, t, UNPLUG_ALL, 0, 0, NULL), ACK);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 0);
	assert_int_equal(request(vm, t, STATE, base, 64, &st), ACK);
	assert_int_equal(st, UNPLUGGED);
	virtio_vm_end(vm);
}

/* A resize: requested_size, a new generation, a configuration interrupt; then plugs follow. */
static void test_resize(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 0);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t = mem_up(vm, &c);
	uint64_t base = cfg64(vm, t, CFG_ADDR);
	uint32_t gen = mmio_rd(vm, t, VIRTIO_MMIO_CONFIG_GENERATION);
	char err[256];

	(void)state;
	assert_int_equal(request(vm, t, PLUG, base, 1, NULL), NACK);
	mmio_wr(vm, t, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	assert_int_equal(hotplug__resize_zone(vm, "mem", 64 * MiB + 4 * MiB, err, sizeof(err)), 0);
	assert_int_equal(cfg64(vm, t, CFG_REQUESTED), 4 * MiB);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_int_equal(mmio_rd(vm, t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(request(vm, t, PLUG, base, 2, NULL), ACK);
	assert_int_equal(hotplug__actual_size(vm), 68 * MiB);
	/* Beyond the region, or not in blocks: refused before the device sees it. */
	assert_int_equal(hotplug__resize_zone(vm, "mem", 64 * MiB + 256 * MiB, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_int_equal(hotplug__resize_zone(vm, "mem", 64 * MiB + 1 * MiB, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_int_equal(cfg64(vm, t, CFG_REQUESTED), 4 * MiB);
	/* Shrinking: the driver unplugs in its own time; nothing changes until it does. */
	assert_int_equal(hotplug__resize_zone(vm, "mem", 64 * MiB, err, sizeof(err)), 0);
	assert_int_equal(cfg64(vm, t, CFG_REQUESTED), 0);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 4 * MiB);
	/* A device reset unplugs everything. */
	mmio_wr(vm, t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 0);
	assert_int_equal(virtio_mem__plugged(vm, 0), 0);
	virtio_vm_end(vm);
}

/* Resident pages of [p, p + len) as mincore sees them. */
static size_t resident(void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = len / page, r = 0;
	unsigned char *vec = malloc(n);

	assert_non_null(vec);
	assert_int_equal(mincore(p, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
}

/* Descriptors 0 (the request in boot RAM) and 1 (the answer at `answer`): used length, answer. */
static uint32_t request_answer_at(struct vm *vm, const struct virtio_mmio *t, uint16_t type,
				  uint64_t addr, uint64_t answer, uint16_t *resp_type)
{
	uint16_t before = used_idx(vm);
	uint32_t id, len;

	place_request(vm, type, addr, 1, answer);
	drv_kick(vm, t, QSIZE, 0);
	assert_int_equal(used_idx(vm), (uint16_t)(before + 1));
	used_elem(vm, QSIZE, before, &id, &len);
	assert_int_equal(id, 0);
	if (len)
		*resp_type = *(uint16_t *)gpa(vm, answer, 2);
	return len;
}

/*
 * Buffers in unplugged blocks are not guest RAM: the chain is failed, nothing is touched (on
 * hugetlb with an empty pool the write took SIGBUS in memvisor). An unplug of the block that
 * holds the request's own answer is refused: the answer would land in memory given back.
 */
static void test_unplugged_buffers(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t = mem_up(vm, &c);
	uint64_t base = cfg64(vm, t, CFG_ADDR);
	uint8_t *host = vm->backings[0].host;
	uint16_t type = 0xffff;

	(void)state;
	assert_null(vm__gpa_to_hva(vm, base, 10));
	assert_int_equal(request_answer_at(vm, t, STATE, base, base + 64, &type), 0);
	assert_int_equal(resident(host + 64 * MiB, BLOCK), 0);
	assert_int_equal(request(vm, t, PLUG, base, 1, NULL), ACK);
	assert_non_null(vm__gpa_to_hva(vm, base, BLOCK));
	assert_null(vm__gpa_to_hva(vm, base + BLOCK - 8, 16));	/* straddles into block 1 */
	assert_int_equal(request_answer_at(vm, t, STATE, base, base + 64, &type), 10);
	assert_int_equal(type, ACK);
	type = 0xffff;
	assert_int_equal(request_answer_at(vm, t, UNPLUG, base, base + 64, &type), 10);
	assert_int_equal(type, ERROR);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), BLOCK);
	assert_int_equal(request_answer_at(vm, t, UNPLUG_ALL, 0, base + 64, &type), 10);
	assert_int_equal(type, ERROR);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), BLOCK);
	assert_int_equal(request(vm, t, UNPLUG, base, 1, NULL), ACK);
	assert_null(vm__gpa_to_hva(vm, base, 10));
	virtio_vm_end(vm);
}

static struct virtio_mmio *named_transport(struct vm *vm, const char *name)
{
	for (size_t i = 0; i < vm->mmio.nranges; i++)
		if (!strcmp(vm->mmio.ranges[i].name, name))
			return vm->mmio.ranges[i].opaque;
	fail_msg("no %s on the bus", name);
	return NULL;
}

/*
 * Rings in plugged blocks. virtio-mem's own: an UNPLUG of their block is refused. The
 * balloon's: the unplug goes through, and the balloon's next notify finds its rings gone and
 * asks for a reset instead of reading memory given back to the host.
 */
static void test_rings_unplugged(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t, *bt;
	uint64_t base, ring;
	uint32_t s;
	uint16_t type = UNPLUG, nb = 1, head = 0, one = 1;
	struct drv_desc d[2];

	(void)state;
	c.balloon = (struct balloon_config){ .enabled = true, .size = 0 };
	t = mem_up(vm, &c);
	bt = named_transport(vm, "virtio-balloon");
	base = cfg64(vm, t, CFG_ADDR);
	ring = base + BLOCK;
	assert_int_equal(request(vm, t, PLUG, base, 2, NULL), ACK);

	/* virtio-mem's queue moved into block 0, then asked to unplug block 0 */
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(queue_at(vm, t, 0, QSIZE, base, base + 0x1000, base + 0x2000), 1);
	memcpy(gpa(vm, RING_BUFS, 24), &type, 2);
	memcpy(gpa(vm, RING_BUFS + 8, 8), &base, 8);
	memcpy(gpa(vm, RING_BUFS + 16, 2), &nb, 2);
	d[0] = (struct drv_desc){ RING_BUFS, 24, VIRTQ_DESC_F_NEXT, 1 };
	d[1] = (struct drv_desc){ RING_BUFS + 0x100, 10, VIRTQ_DESC_F_WRITE, 0 };
	memcpy(gpa(vm, base, sizeof(d)), d, sizeof(d));
	memcpy(gpa(vm, base + 0x1000 + 4, 2), &head, 2);
	memcpy(gpa(vm, base + 0x1000 + 2, 2), &one, 2);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(*(uint16_t *)gpa(vm, base + 0x2000 + 2, 2), 1);
	assert_int_equal(*(uint16_t *)gpa(vm, RING_BUFS + 0x100, 2), ERROR);
	assert_int_equal(cfg64(vm, t, CFG_PLUGGED), 2 * BLOCK);
	mmio_wr(vm, t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(queue_at(vm, t, 0, QSIZE, RING_DESC, RING_AVAIL, RING_USED), 1);
	*avail_idx(vm) = 0;	/* a queue enabled again starts both indices at 0 */
	*(uint16_t *)gpa(vm, RING_USED + 2, 2) = 0;

	/* the balloon's deflate queue in block 1, then block 1 unplugged under it */
	s = driver_features(vm, bt, 1ULL << VIRTIO_F_VERSION_1);
	assert_true(s & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(queue_at(vm, bt, 1, 8, ring, ring + 0x1000, ring + 0x2000), 1);
	mmio_wr(vm, bt, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(request(vm, t, UNPLUG, ring, 1, NULL), ACK);
	assert_false(mmio_rd(vm, bt, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	mmio_wr(vm, bt, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_true(mmio_rd(vm, bt, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	virtio_vm_end(vm);
}

/* Private anonymous memory: an unplugged block's pages leave the process (MADV_DONTNEED). */
static void test_release_private(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t = mem_up(vm, &c);
	uint64_t base = cfg64(vm, t, CFG_ADDR);
	uint8_t *blk;

	(void)state;
	assert_int_equal(request(vm, t, PLUG, base, 2, NULL), ACK);
	blk = gpa(vm, base, 2 * BLOCK);
	memset(blk, 0x5a, 2 * BLOCK);		/* the guest uses its memory */
	assert_int_equal(resident(blk, 2 * BLOCK), 2 * BLOCK / (size_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(request(vm, t, UNPLUG, base + BLOCK, 1, NULL), ACK);
	assert_int_equal(resident(blk + BLOCK, BLOCK), 0);
	assert_int_equal(resident(blk, BLOCK), BLOCK / (size_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(blk[BLOCK - 1], 0x5a);		/* the plugged block kept its data */
	assert_int_equal(request(vm, t, UNPLUG_ALL, 0, 0, NULL), ACK);
	assert_int_equal(resident(blk, 2 * BLOCK), 0);
	virtio_vm_end(vm);
}

static uint64_t file_bytes(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* A shared file: a plugged block is allocated in it, an unplugged one leaves it (a hole). */
static void test_release_shared_file(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t;
	uint64_t base, before;
	uint8_t *blk;
	int fd;

	(void)state;
	c.zones[0].file = (char *)tmpdir_path("zone");
	c.zones[0].shared = true;
	t = mem_up(vm, &c);
	fd = vm->backings[0].fd;
	assert_true(fd >= 0 && vm->backings[0].shared);
	base = cfg64(vm, t, CFG_ADDR);
	before = file_bytes(fd);
	assert_int_equal(request(vm, t, PLUG, base, 3, NULL), ACK);
	/* Allocated by the plug, before the guest touches it: a full file system NACKs instead. */
	assert_true(file_bytes(fd) >= before + 3 * BLOCK);
	blk = gpa(vm, base, 3 * BLOCK);
	memset(blk, 0xa5, 3 * BLOCK);
	before = file_bytes(fd);
	assert_int_equal(request(vm, t, UNPLUG, base + BLOCK, 2, NULL), ACK);
	assert_int_equal(file_bytes(fd), before - 2 * BLOCK);
	assert_int_equal(blk[0], 0xa5);
	assert_int_equal(blk[BLOCK], 0);		/* a hole reads as zeros */
	virtio_vm_end(vm);
}

/* The DSDT object passes iasl's round trip, the FDT node says what the transport is. */
static void test_dsdt_fdt(void **state)
{
	static uint8_t acpi[ACPI_TABLES_MAX], blob[8192];
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 0);
	struct vm *vm = &test_vm;
	const uint8_t *dsdt;
	struct virtio_mmio *t;
	const fdt64_t *reg;
	char err[512], name[32];
	int off, len;

	(void)state;
	virtio_vm(vm, &c);
	t = mem_transport(vm, 0);
	assert_true(acpi__build(&vm->cfg, &vm->layout, devices__dsdt, vm, acpi, ACPI_TABLES_ADDR,
				sizeof(acpi), err, sizeof(err)) > 0);
	dsdt = memmem(acpi, sizeof(acpi), "DSDT", 4);
	if (!dsdt)
		fail_msg("no DSDT");
	len = dsdt[4] | dsdt[5] << 8 | dsdt[6] << 16;
	assert_non_null(memmem(dsdt, (size_t)len, "LNRO0005", 8));
	assert_non_null(memmem(dsdt, (size_t)len, "V000", 4));
	if (!iasl_table_ok(tmpdir_path(""), dsdt, false, err, sizeof(err)))
		fail_msg("%s", err);

	assert_true(fdt__build(&vm->cfg, &vm->layout, devices__fdt, vm, blob, sizeof(blob)) > 0);
	snprintf(name, sizeof(name), "/virtio_mmio@%llx", (unsigned long long)t->base);
	off = fdt_path_offset(blob, name);
	assert_true(off >= 0);
	assert_int_equal(fdt_node_check_compatible(blob, off, "virtio,mmio"), 0);
	reg = fdt_getprop(blob, off, "reg", &len);
	assert_int_equal(len, 16);
	assert_int_equal(fdt64_to_cpu(reg[0]), t->base);
	assert_int_equal(fdt64_to_cpu(reg[1]), VIRTIO_MMIO_SIZE);
	assert_int_equal(fdt32_to_cpu(*(const fdt32_t *)fdt_getprop(blob, off, "interrupts", &len)),
			 t->gsi);
	virtio_vm_end(vm);
}

struct kicker {
	struct vm *vm;
	const struct virtio_mmio *t;
	bool done;			/* atomic: the notify returned */
};

/* A second vCPU: the kick alone (no cmocka assertion may fail off the main thread). */
static void *kick(void *arg)
{
	struct kicker *k = arg;

	mmio_wr(k->vm, k->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	__atomic_store_n(&k->done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * Issue 13: a device on one vCPU uses guest memory (shared guest-memory lock held, as the
 * transport holds it around any device's queue processing) while virtio-mem on another vCPU
 * is asked to unplug that block. The unplug waits: the block stays plugged and its host pages
 * stay until the user is done, then the unplug goes through.
 */
static void test_unplug_waits_for_memory_users(void **state)
{
	struct vm_config c = one_zone(64 * MiB, 128 * MiB, 8 * MiB);
	struct vm *vm = &test_vm;
	struct virtio_mmio *t = mem_up(vm, &c);
	uint64_t base = cfg64(vm, t, CFG_ADDR);
	uint8_t *host = vm->backings[0].host + 64 * MiB, *resp = gpa(vm, RING_BUFS + 0x100, 10);
	struct kicker k = { vm, t, false };
	uint16_t before;
	pthread_t th;

	(void)state;
	assert_int_equal(request(vm, t, PLUG, base, 1, NULL), ACK);
	before = used_idx(vm);
	memset(host, 0x5a, BLOCK);
	assert_int_equal(resident(host, BLOCK), BLOCK / (size_t)sysconf(_SC_PAGESIZE));

	assert_true(vm__mem_lock(vm, false));		/* a device mid-copy */
	memset(resp, 0xff, 10);
	place_request(vm, UNPLUG, base, 1, RING_BUFS + 0x100);
	drv_offer(vm, QSIZE, 0);
	assert_int_equal(pthread_create(&th, NULL, kick, &k), 0);
	usleep(200 * 1000);
	assert_false(__atomic_load_n(&k.done, __ATOMIC_SEQ_CST));
	assert_int_equal(used_idx(vm), before);
	assert_non_null(vm__gpa_to_hva(vm, base, BLOCK));
	assert_int_equal(resident(host, BLOCK), BLOCK / (size_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(host[BLOCK - 1], 0x5a);
	vm__mem_unlock(vm);

	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(k.done);
	assert_int_equal(used_idx(vm), (uint16_t)(before + 1));
	assert_int_equal(resp[0] | resp[1] << 8, ACK);
	assert_null(vm__gpa_to_hva(vm, base, BLOCK));
	assert_int_equal(resident(host, BLOCK), 0);
	virtio_vm_end(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_release_private),
		cmocka_unit_test(test_release_shared_file),
		cmocka_unit_test(test_unplugged_buffers),
		cmocka_unit_test(test_rings_unplugged),
		cmocka_unit_test(test_unplug_waits_for_memory_users),
		cmocka_unit_test(test_dsdt_fdt),
	};

	(void)tmpdir_write;
	return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
