/*
 * The memory devices driven by a hostile guest driver, through the entry points the VMM uses at
 * run time: MMIO accesses on the bus (the virtio-mmio registers of virtio-mem and virtio-balloon,
 * the MHPC register block of ACPI memory hotplug), requests placed in guest RAM and announced by
 * a QueueNotify, and now and then a host-side resize as vm.resize / vm.resize-zone make it. Each
 * input gets a fresh VM (ram_vm__start: real memfd and anonymous backings, as main maps them),
 * so that an input replays alone; KVM is opened only when an input grows the ACPI memory and
 * /dev/kvm is there (a DIMM is a KVM memory slot), else that resize fails as it would.
 *
 * Input: a sequence of moves, each a selector byte and its operands (see the OP_ list); reads
 * past the end give zeros. Invariants (the device files' comments, virtio 1.2 5.15 / 5.5 and
 * shared/spec/linux-guest-and-hotplug.md 4.2-4.3):
 *  - virtio-mem: a request's answer is one the device documents for its type (ACK/NACK/ERROR
 *    for PLUG, ACK/ERROR otherwise); an empty, misaligned or out-of-range one is never ACKed;
 *    an ACKed PLUG had all its blocks unplugged and fits under requested_size, an ACKed UNPLUG
 *    had all plugged, STATE tells the blocks' state, and anything not ACKed changes nothing;
 *  - its configuration as the guest reads it: block_size a power of two, addr and region_size
 *    those of the layout, usable_region_size = region_size, plugged_size and requested_size
 *    multiples of block_size within the usable region, plugged_size = plugged blocks x size;
 *  - unplugged blocks: vm__gpa_to_hva refuses any range touching them, and they hold no host
 *    memory (mincore): the device gave them back and nothing touched them since;
 *  - balloon: num_pages is the host's last accepted target (the guest cannot write it), never
 *    beyond the RAM when set; what the VMM reports as the guest's memory stays within its RAM;
 *    pages given back by an inflate or a report hold no host memory afterwards;
 *  - MHPC: each slot reads exactly as the plugs made it (base, length, node, enabled), a
 *    write only clears inserting/removing, a selector beyond the slots changes nothing, and
 *    a plugged DIMM is guest RAM for vm__gpa_to_hva up to its last byte and no further.
 * And, throughout, no access outside guest RAM (ASan; the backings are real mappings).
 */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "memory/hotplug.h"
#include "tests/ram_vm.h"
#include "virtio/mmio.h"
#include "vm.h"

/*
 * A VM hotplugs through virtio-mem or ACPI, not both: the first input byte picks one. thp=off:
 * a 4 KiB page inflated out of a transparent huge page stays resident until the kernel splits
 * it (found here), so "released means not resident" holds only for 4 KiB mappings.
 */
static char *const virtio_mem_argv[] = {
	"memvisor", "--kernel", "vmlinux", "--memory", "size=0,hotplug_method=virtio-mem,thp=off",
	"--memory-zone", "id=mem0,size=4M,hotplug_size=128M,hotplugged_size=4M",
	"--memory-zone", "id=z1,size=2M,hotplug_size=128M,shared=on",
	"--balloon", "size=1M,free_page_reporting=on", NULL
};
static char *const acpi_argv[] = {
	"memvisor", "--kernel", "vmlinux", "--memory", "size=4M,hotplug_method=acpi,hotplug_size=512M",
	"--balloon", "size=1M,free_page_reporting=on", NULL
};

#define PAGE		4096ULL
#define MAX_BLOCKS	64		/* of a virtio-mem region here */
#define MHP_SLOTS	8		/* devices/mem_hotplug.c's */
#define MHP_LEN		0x18
#define MHP_INSERTING	2u
#define DIMM_STEP	(128 * MiB)	/* HOTPLUG_ALIGN */

enum { MEM_PLUG, MEM_UNPLUG, MEM_UNPLUG_ALL, MEM_STATE };
enum { MEM_ACK, MEM_NACK, MEM_BUSY, MEM_ERROR };
enum { MEM_PLUGGED, MEM_UNPLUGGED, MEM_MIXED };

enum op { OP_READ, OP_WRITE, OP_UP, OP_MEM, OP_PFNS, OP_REPORT, OP_RESIZE, OP_POKE, OP_NOPS };

static struct vm_config cfgs[2];	/* virtio-mem, ACPI */
static struct host_info host;
static bool have_kvm;
static struct vm vm;

/* The devices of this input's VM, found on the bus as a guest finds them. */
static struct virtio_mmio *mem_t[MAX_ZONES], *balloon_t;
static int nmem, mem_zone[MAX_ZONES];
static const struct mem_range *mem_region[MAX_ZONES];
static uint64_t mhp_base;

/* What the host asked for: the devices must show exactly this. */
static struct {
	uint64_t requested[MAX_ZONES];	/* virtio-mem requested_size per device */
	uint32_t num_pages;		/* balloon target */
	unsigned dimms;			/* ACPI DIMMs plugged */
	uint64_t dimm_gpa[MHP_SLOTS], dimm_size[MHP_SLOTS];
	uint8_t status[MHP_SLOTS];
	uint32_t selector;
	bool kvm;
} host_side;

/* virtio-mem configuration as Linux reads it: 8/16/32-bit accesses, 64-bit fields in halves. */
struct mem_cfg {
	uint64_t block_size, addr, region_size, usable, plugged, requested;
};

static uint64_t cfg64(struct virtio_mmio *t, unsigned off)
{
	return mmio_rd(&vm, t, VIRTIO_MMIO_CONFIG + off) |
	       (uint64_t)mmio_rd(&vm, t, VIRTIO_MMIO_CONFIG + off + 4) << 32;
}

static struct mem_cfg mem_cfg(struct virtio_mmio *t)
{
	return (struct mem_cfg){ cfg64(t, 0x00), cfg64(t, 0x10), cfg64(t, 0x18), cfg64(t, 0x20),
				 cfg64(t, 0x28), cfg64(t, 0x30) };
}

/* Plugged blocks of device d, as the device tells vm__gpa_to_hva (a bitmap, bit b = block b). */
static uint64_t plugged_map(int d, uint64_t block)
{
	uint64_t map = 0;

	for (uint64_t b = 0; b < mem_region[d]->size / block; b++)
		if (virtio_mem__range_plugged(&vm, mem_zone[d], b * block, block))
			map |= 1ULL << b;
	return map;
}

/* Pages of [p, p + len) in host memory; per page in vec. */
static unsigned char vec[MAX_BLOCKS * 2 * MiB / PAGE];

static size_t resident(const uint8_t *p, uint64_t len)
{
	size_t n = 0;

	FUZZ_CHECK(len / PAGE <= sizeof(vec) && mincore((void *)p, len, vec) == 0, "mincore");
	for (uint64_t i = 0; i < len / PAGE; i++)
		n += vec[i] & 1;
	return n;
}

static uint8_t *region_host(int d)
{
	return (uint8_t *)vm.backings[mem_zone[d]].host + mem_region[d]->zone_offset;
}

/* Everything about a virtio-mem device a guest (and the VMM) can observe, checked. */
static void check_mem(int d)
{
	struct mem_cfg c = mem_cfg(mem_t[d]);
	const struct mem_range *r = mem_region[d];
	uint64_t map, nblocks;

	FUZZ_CHECK(c.block_size && !(c.block_size & (c.block_size - 1)) &&
		   c.block_size == hotplug__block_size(&vm.cfg, mem_zone[d], &vm.host),
		   "block_size 0x%llx", (unsigned long long)c.block_size);
	FUZZ_CHECK(c.addr == r->gpa && c.region_size == r->size && c.usable == c.region_size &&
		   IS_ALIGNED(c.addr, c.block_size) && IS_ALIGNED(c.region_size, c.block_size),
		   "addr/region/usable 0x%llx+0x%llx/0x%llx", (unsigned long long)c.addr,
		   (unsigned long long)c.region_size, (unsigned long long)c.usable);
	FUZZ_CHECK(c.requested == host_side.requested[d] && c.requested <= c.usable &&
		   IS_ALIGNED(c.requested, c.block_size), "requested_size 0x%llx, host asked 0x%llx",
		   (unsigned long long)c.requested, (unsigned long long)host_side.requested[d]);
	nblocks = c.region_size / c.block_size;
	FUZZ_CHECK(nblocks <= MAX_BLOCKS, "region of %llu blocks", (unsigned long long)nblocks);
	map = plugged_map(d, c.block_size);
	resident(region_host(d), c.region_size);
	FUZZ_CHECK(c.plugged <= c.usable && IS_ALIGNED(c.plugged, c.block_size) &&
		   c.plugged == (uint64_t)__builtin_popcountll(map) * c.block_size &&
		   c.plugged == virtio_mem__plugged(&vm, mem_zone[d]),
		   "plugged_size 0x%llx, %d blocks plugged", (unsigned long long)c.plugged,
		   __builtin_popcountll(map));
	for (uint64_t b = 0; b < nblocks; b++) {
		bool p = map >> b & 1, next = b + 1 < nblocks && (map >> (b + 1) & 1);
		uint64_t gpa = c.addr + b * c.block_size;

		FUZZ_CHECK(!vm__gpa_to_hva(&vm, gpa, c.block_size) == !p,
			   "vm__gpa_to_hva of block %llu, %s", (unsigned long long)b,
			   p ? "plugged" : "unplugged");
		FUZZ_CHECK(!vm__gpa_to_hva(&vm, gpa + c.block_size - 1, 2) == !(p && next),
			   "vm__gpa_to_hva across blocks %llu-%llu", (unsigned long long)b,
			   (unsigned long long)b + 1);
		for (uint64_t i = 0; !p && i < c.block_size / PAGE; i++)
			FUZZ_CHECK(!(vec[b * c.block_size / PAGE + i] & 1),
				   "page %llu of unplugged block %llu holds host memory",
				   (unsigned long long)i, (unsigned long long)b);
	}
}

static void check_balloon(void)
{
	uint32_t num = mmio_rd(&vm, balloon_t, VIRTIO_MMIO_CONFIG);

	FUZZ_CHECK(num == host_side.num_pages, "num_pages %u, host asked %u", num,
		   host_side.num_pages);
	FUZZ_CHECK(hotplug__actual_size(&vm) <= hotplug__ram_size(&vm), "actual size beyond RAM");
}

/* The MHPC registers of the selected slot, as the plugs and the guest's writes left them. */
static void mhp_expected(uint8_t regs[MHP_LEN])
{
	unsigned s = host_side.selector;

	memset(regs, 0, MHP_LEN);
	if (s < host_side.dimms) {
		for (unsigned i = 0; i < 8; i++) {
			regs[i] = (uint8_t)(host_side.dimm_gpa[s] >> (8 * i));
			regs[8 + i] = (uint8_t)(host_side.dimm_size[s] >> (8 * i));
		}
		/* the area's node: no NUMA here, proximity domain 0 */
	}
	regs[0x14] = host_side.status[s];
}

static void check_mhp(void)
{
	uint8_t want[MHP_LEN], got[MHP_LEN];

	if (!vm.mem_hotplug)
		return;
	mhp_expected(want);
	for (unsigned off = 0; off < MHP_LEN; off += 4)
		bus__read(&vm.mmio, mhp_base + off, got + off, 4);
	FUZZ_CHECK(!memcmp(want, got, MHP_LEN), "slot %u registers differ", host_side.selector);
	for (unsigned i = 0; i < host_side.dimms; i++) {
		uint64_t end = host_side.dimm_gpa[i] + host_side.dimm_size[i];

		/* One DIMM, one mapping: a range running into the next is not one host range. */
		FUZZ_CHECK(vm__gpa_to_hva(&vm, host_side.dimm_gpa[i], host_side.dimm_size[i]) &&
			   !vm__gpa_to_hva(&vm, end - 1, 2), "DIMM %u not guest RAM", i);
	}
}

static void check_all(void)
{
	for (int d = 0; d < nmem; d++)
		check_mem(d);
	if (balloon_t)
		check_balloon();
	check_mhp();
}

/* ---- guest addresses and memory, as the driver sees them ---- */

/* Mostly inside a range of the layout (RAM, virtio-mem region, ACPI area), 16-aligned often. */
static uint64_t pick_gpa(struct fuzz_in *in)
{
	uint8_t sel = fuzz__u8(in);
	const struct mem_range *r;
	uint64_t off;

	if (sel % 16 == 15)
		return fuzz__u64(in);
	r = &vm.layout.ranges[sel % vm.layout.nranges];
	off = fuzz__u32(in) % (r->size + PAGE);
	return r->gpa + (sel & 0x80 ? off : off & ~15ULL);
}

/* What a guest can write: plugged memory only (an unplugged block is not accessed here). */
struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/*
 * A chain of n segments in descriptors 0..n-1 of queue q, offered in the next available slot:
 * false (nothing offered) when the queue has fewer descriptors or requests are pending.
 */
static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static bool offer(struct virtio_mmio *t, unsigned q, const struct seg *s, unsigned n)
{
	const struct virtq *vq = &t->queues[q];
	uint16_t num = vq->num ? vq->num : 1, idx = 0, head = 0;

	/* Entries offered before and not taken (rings overwritten) would be served first. */
	if (n > num || !fuzz__peek(&vm, vq->avail_gpa + 2, &idx, 2) || idx != vq->last_avail)
		return false;
	/* An avail ring over the descriptor table would rewrite them after us (a found input). */
	if (overlap(vq->avail_gpa, 6 + 2ULL * num, vq->desc_gpa, 16ULL * n))
		return false;
	for (unsigned i = 0; i < n; i++) {
		uint8_t d[16];
		uint16_t flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		uint16_t next = (uint16_t)((i + 1) % num);

		memcpy(d, &s[i].gpa, 8);
		memcpy(d + 8, &s[i].len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		fuzz__poke(&vm, vq->desc_gpa + 16 * (i % num), d, 16);
	}
	fuzz__peek(&vm, vq->avail_gpa + 2, &idx, 2);
	fuzz__poke(&vm, vq->avail_gpa + 4 + 2 * (idx % num), &head, 2);
	idx++;
	fuzz__poke(&vm, vq->avail_gpa + 2, &idx, 2);
	return true;
}

/* QueueNotify q: true when the device returned exactly one request, head 0, of *len bytes. */
static bool kick(struct virtio_mmio *t, unsigned q, uint32_t *len)
{
	const struct virtq *vq = &t->queues[q];
	uint16_t num = vq->num ? vq->num : 1, before = 0, after = 0;
	uint32_t elem[2];
	bool ready = vq->ready;

	fuzz__peek(&vm, vq->used_gpa + 2, &before, 2);
	mmio_wr(&vm, t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (!ready || vq->broken || !fuzz__peek(&vm, vq->used_gpa + 2, &after, 2) || after != (uint16_t)(before + 1) ||
	    !fuzz__peek(&vm, vq->used_gpa + 4 + 8 * (before % num), elem, 8) || elem[0] != 0)
		return false;
	*len = elem[1];
	return true;
}

/* The device's own writes after the answer (the used ring) may hide it. */
static bool rings_hit(const struct virtq *vq, uint64_t gpa, uint64_t len)
{
	return overlap(vq->used_gpa, 6 + 8ULL * vq->num, gpa, len);
}

/* ---- virtio-mem requests ---- */

static bool valid_range(const struct mem_cfg *c, uint64_t addr, uint64_t n)
{
	uint64_t off = addr - c->addr;

	return n && addr >= c->addr && off < c->usable && IS_ALIGNED(off, c->block_size) &&
	       n <= (c->usable - off) / c->block_size;
}

/* What the answer tells about the blocks and the sizes before (b, map_b) and after. */
static void check_answer(int d, const uint8_t *req, const uint8_t *resp, const struct mem_cfg *b,
			 uint64_t map_b)
{
	struct mem_cfg a = mem_cfg(mem_t[d]);
	uint64_t map_a = plugged_map(d, b->block_size), range = 0, addr, size;
	uint16_t type, n, rt, state;
	bool valid;

	memcpy(&type, req, 2);
	memcpy(&addr, req + 8, 8);
	memcpy(&n, req + 16, 2);
	memcpy(&rt, resp, 2);
	memcpy(&state, resp + 8, 2);
	size = n * b->block_size;
	valid = valid_range(b, addr, n);
	if (valid)
		range = (n >= 64 ? ~0ULL : (1ULL << n) - 1) << (addr - b->addr) / b->block_size;
	FUZZ_CHECK(rt == MEM_ACK || rt == MEM_ERROR || (rt == MEM_NACK && type == MEM_PLUG),
		   "request %u answered %u", type, rt);
	FUZZ_CHECK(rt != MEM_ACK || valid || type == MEM_UNPLUG_ALL,
		   "request %u at 0x%llx for %u blocks (not in the usable region) ACKed", type,
		   (unsigned long long)addr, n);
	FUZZ_CHECK(rt != MEM_NACK || valid, "PLUG of a bad range NACKed, not ERROR");
	if (rt != MEM_ACK) {
		FUZZ_CHECK(map_a == map_b && a.plugged == b->plugged, "refused %u changed blocks",
			   type);
		return;
	}
	switch (type) {
	case MEM_PLUG:
		FUZZ_CHECK(!(map_b & range) && b->plugged + size <= b->requested,
			   "PLUG ACKed: blocks 0x%llx of 0x%llx, 0x%llx + 0x%llx > requested 0x%llx",
			   (unsigned long long)range, (unsigned long long)map_b,
			   (unsigned long long)b->plugged, (unsigned long long)size,
			   (unsigned long long)b->requested);
		FUZZ_CHECK(map_a == (map_b | range) && a.plugged == b->plugged + size &&
			   a.plugged <= a.requested && a.plugged <= a.region_size, "after PLUG");
		break;
	case MEM_UNPLUG:
		FUZZ_CHECK((map_b & range) == range, "UNPLUG of unplugged blocks ACKed");
		FUZZ_CHECK(map_a == (map_b & ~range) && a.plugged == b->plugged - size,
			   "after UNPLUG");
		break;
	case MEM_UNPLUG_ALL:
		FUZZ_CHECK(!map_a && !a.plugged, "after UNPLUG_ALL");
		break;
	case MEM_STATE:
		FUZZ_CHECK(state == ((map_b & range) == range ? MEM_PLUGGED :
				     !(map_b & range) ? MEM_UNPLUGGED : MEM_MIXED),
			   "STATE %u of blocks 0x%llx in 0x%llx", state,
			   (unsigned long long)range, (unsigned long long)map_b);
		FUZZ_CHECK(map_a == map_b, "STATE changed blocks");
		break;
	default:
		FUZZ_CHECK(false, "unknown request %u ACKed", type);
	}
}

/*
 * type, addr (a block of the region, off by some bytes, or anything), nb_blocks, where the
 * request and its answer lie; the answer checked when the device returned just this request.
 */
static void mem_request(struct fuzz_in *in)
{
	int d = fuzz__u8(in) % (nmem ? nmem : 1);
	struct mem_cfg b;
	uint8_t sel = fuzz__u8(in), req[24] = { 0 }, resp[10];
	uint16_t type = sel % 8 < 4 ? sel % 8 : fuzz__u16(in), n;
	uint64_t addr, map_b;
	struct seg s[2];
	uint32_t len;

	if (!nmem)
		return;
	b = mem_cfg(mem_t[d]);
	addr = b.addr + b.block_size * (fuzz__u8(in) % (b.region_size / b.block_size + 2));
	if (sel & 0x10)
		addr += fuzz__u16(in) - 0x8000ULL;
	if (sel & 0x20)
		addr = fuzz__u64(in);
	n = sel & 0x40 ? fuzz__u16(in) : fuzz__u8(in) % 8;
	s[0] = (struct seg){ pick_gpa(in), 24, false };
	s[1] = (struct seg){ sel & 0x80 ? pick_gpa(in) : s[0].gpa + 24, 10, true };
	memcpy(req, &type, 2);
	memcpy(req + 8, &addr, 8);
	memcpy(req + 16, &n, 2);
	fuzz__poke(&vm, s[0].gpa, req, 24);
	memset(resp, 0xff, sizeof(resp));
	fuzz__poke(&vm, s[1].gpa, resp, 10);
	if (!offer(mem_t[d], 0, s, 2))
		return;
	map_b = plugged_map(d, b.block_size);
	/* The request as the device reads it: its answer buffer or the rings may overlap it. */
	if (!fuzz__peek(&vm, s[0].gpa, req, 24) || !kick(mem_t[d], 0, &len) ||
	    rings_hit(&mem_t[d]->queues[0], s[1].gpa, 10))
		return;
	/* A buffer outside RAM fails the chain in the walker: returned with nothing written. */
	if (!vm__gpa_to_hva(&vm, s[0].gpa, 24) || !fuzz__peek(&vm, s[1].gpa, resp, 10))
		return;
	FUZZ_CHECK(len == 10, "answer of %u bytes", len);
	check_answer(d, req, resp, &b, map_b);
}

/* ---- the balloon ---- */

/* No page of [gpa, gpa + len) holds host memory, unless the device wrote it (rings). */
static void check_released(const struct virtq *vq, uint64_t gpa, uint64_t len)
{
	for (uint64_t p = gpa & ~(PAGE - 1); p < gpa + len; p += PAGE) {
		const uint8_t *hva = vm__gpa_to_hva(&vm, p, PAGE);
		int z = -1;

		for (int i = 0; hva && i < vm.nbackings; i++)
			if (hva >= (uint8_t *)vm.backings[i].host &&
			    hva < (uint8_t *)vm.backings[i].host + vm.backings[i].size)
				z = i;
		if (z < 0 || vm.backings[z].page_size > PAGE || rings_hit(vq, p, PAGE))
			continue;
		FUZZ_CHECK(!resident(hva, PAGE), "page 0x%llx given back but resident",
			   (unsigned long long)p);
	}
}

/* An inflate or deflate array of PFNs: in RAM mostly, anything sometimes; too many at times. */
static void balloon_pfns(struct fuzz_in *in)
{
	static uint32_t pfn[300];
	uint8_t sel = fuzz__u8(in);
	unsigned q = sel & 1, n = sel & 0x80 ? 257 + sel % 8 : fuzz__u8(in) % 64;
	struct seg s = { pick_gpa(in), 4 * n, false };
	const struct virtq *vq;
	uint32_t len;
	bool sent;

	if (!balloon_t)
		return;
	vq = &balloon_t->queues[q];
	for (unsigned i = 0; i < n; i++)
		pfn[i] = fuzz__u8(in) % 16 == 15 ? fuzz__u32(in) : (uint32_t)(pick_gpa(in) / PAGE);
	fuzz__poke(&vm, s.gpa, pfn, s.len);
	if (!offer(balloon_t, q, &s, 1) || !fuzz__peek(&vm, s.gpa, pfn, s.len))
		return;
	sent = kick(balloon_t, q, &len);
	FUZZ_CHECK(!sent || len == 0, "balloon request returned with %u bytes", len);
	if (!sent || q != 0 || n > 256)
		return;
	/*
	 * Every PFN posted, the array's own page and those listed after it included: the device
	 * copies the array before it releases a page (a found input: read as it went, the array
	 * read as zeros once its page was released). The rings are left out: the transport reads
	 * the avail ring (and, after it, descriptors) again once the request is used.
	 */
	for (unsigned i = 0; i < n; i++)
		if (!overlap((uint64_t)pfn[i] * PAGE, PAGE, vq->desc_gpa, 16ULL * vq->num) &&
		    !overlap((uint64_t)pfn[i] * PAGE, PAGE, vq->avail_gpa, 6 + 2ULL * vq->num))
			check_released(vq, (uint64_t)pfn[i] * PAGE, PAGE);
}

/* A free-page report: a chain of up to 4 ranges, device-writable as Linux sends them. */
static void balloon_report(struct fuzz_in *in)
{
	struct seg s[4];
	unsigned n = 1 + fuzz__u8(in) % 4;
	const struct virtq *vq;
	uint32_t len;

	if (!balloon_t)
		return;
	vq = &balloon_t->queues[2];
	for (unsigned i = 0; i < n; i++)
		s[i] = (struct seg){ pick_gpa(in) & ~(PAGE - 1), (fuzz__u8(in) % 16 + 1) * (uint32_t)PAGE,
				     true };
	if (!offer(balloon_t, 2, s, n) || !kick(balloon_t, 2, &len))
		return;
	FUZZ_CHECK(len == 0, "report returned with %u bytes", len);
	/* A chain with a buffer outside RAM is returned unread (the walker's): nothing released. */
	for (unsigned i = 0; i < n; i++)
		if (!vm__gpa_to_hva(&vm, s[i].gpa, s[i].len))
			return;
	for (unsigned i = 0; i < n; i++)
		if (!overlap(s[i].gpa, s[i].len, vq->desc_gpa, 16ULL * vq->num) &&
		    !overlap(s[i].gpa, s[i].len, vq->avail_gpa, 6 + 2ULL * vq->num))
			check_released(vq, s[i].gpa, s[i].len);
}

static uint64_t acpi_area_gpa(void)
{
	for (int i = 0; i < vm.layout.nranges; i++)
		if (vm.layout.ranges[i].kind == RANGE_ACPI_HOTPLUG)
			return vm.layout.ranges[i].gpa;
	FUZZ_CHECK(false, "no ACPI hotplug area");
	return 0;
}

/* ---- the host's side: vm.resize, vm.resize-zone, the balloon target ---- */

/* KVM for the DIMM's memory slot, opened at the first ACPI growth when /dev/kvm is there. */
static void kvm_up(void)
{
	char err[256];

	if (host_side.kvm || !have_kvm)
		return;
	FUZZ_CHECK(kvm__init(&vm, err, sizeof(err)) == 0 &&
		   kvm__register_memory(&vm, err, sizeof(err)) == 0, "%s", err);
	host_side.kvm = true;
}

static void resize(struct fuzz_in *in)
{
	uint8_t sel = fuzz__u8(in);
	uint64_t v = sel & 0x80 ? fuzz__u64(in) : fuzz__u8(in) * 2 * MiB, ram = hotplug__ram_size(&vm);
	char err[512];
	int d, r;

	switch (sel % 3) {
	case 0:		/* vm.resize-zone of a zone (or none): its size + virtio-mem bytes */
		d = fuzz__u8(in) % (nmem + 1);
		r = hotplug__resize_zone(&vm, d < nmem ? vm.cfg.zones[mem_zone[d]].id : "nozone",
					 d < nmem ? vm.cfg.zones[mem_zone[d]].size + v : v, err,
					 sizeof(err));
		FUZZ_CHECK((r == 0) == (d < nmem && v <= vm.cfg.zones[mem_zone[d]].hotplug_size &&
					v % hotplug__block_size(&vm.cfg, mem_zone[d], &vm.host) == 0) &&
			   (r == 0 || r == HOTPLUG_REFUSED), "resize-zone to 0x%llx: %d %s",
			   (unsigned long long)v, r, err);
		if (r == 0)
			host_side.requested[d] = v;
		break;
	case 1:		/* vm.resize: the ACPI area grows by DIMMs */
		v = ram + (sel & 0x40 ? fuzz__u8(in) % 4 * DIMM_STEP : v);
		if (v > ram)
			kvm_up();
		r = hotplug__resize(&vm, v, err, sizeof(err));
		FUZZ_CHECK(r == 0 || r == HOTPLUG_REFUSED || (r == HOTPLUG_FAILED && !host_side.kvm),
			   "resize to 0x%llx: %s", (unsigned long long)v, err);
		FUZZ_CHECK(r != 0 || v == ram || (v > ram && host_side.dimms < MHP_SLOTS),
			   "resize to 0x%llx from 0x%llx accepted", (unsigned long long)v,
			   (unsigned long long)ram);
		if (r == 0 && v > ram) {
			unsigned i = host_side.dimms++;

			host_side.dimm_gpa[i] = i ? host_side.dimm_gpa[i - 1] + host_side.dimm_size[i - 1] :
				acpi_area_gpa();
			host_side.dimm_size[i] = v - ram;
			host_side.status[i] = 1 | MHP_INSERTING;
		}
		FUZZ_CHECK(hotplug__ram_size(&vm) == (r == 0 ? v : ram), "RAM after a resize");
		break;
	default:	/* vm.resize's desired_balloon */
		v = sel & 0x40 ? v : fuzz__u16(in) * PAGE;
		r = hotplug__resize_balloon(&vm, v, err, sizeof(err));
		FUZZ_CHECK(r == 0 || r == HOTPLUG_REFUSED, "balloon: %s", err);
		if (r == 0) {
			FUZZ_CHECK(v <= ram, "balloon of 0x%llx over RAM 0x%llx accepted",
				   (unsigned long long)v, (unsigned long long)ram);
			host_side.num_pages = (uint32_t)(v / PAGE);
		}
		break;
	}
}

/* ---- register accesses ---- */

/* The MHPC write semantics of devices/mem_hotplug.c's table, for an access inside the block. */
static void mhp_wrote(uint64_t off, const uint8_t *data, unsigned size)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < size && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	if (off == 0x00 && v < MHP_SLOTS)
		host_side.selector = v;
	else if (off == 0x14)
		host_side.status[host_side.selector] &= (uint8_t)~(v & (MHP_INSERTING | 4));
}

/* The register offsets a driver uses, or any offset in (or just past) the window. */
static uint64_t pick_offset(struct fuzz_in *in, bool mhp)
{
	static const uint16_t regs[] = {
		VIRTIO_MMIO_STATUS, VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MMIO_QUEUE_NUM,
		VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_INTERRUPT_ACK,
		VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_MMIO_DRIVER_FEATURES_SEL,
		VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_MMIO_QUEUE_USED_LOW,
		VIRTIO_MMIO_CONFIG, VIRTIO_MMIO_CONFIG + 4, VIRTIO_MMIO_CONFIG + 0x28,
	};
	uint8_t sel = fuzz__u8(in);

	if (mhp)
		return sel % (MHP_LEN + 8);
	return sel & 0x80 ? fuzz__u16(in) % (VIRTIO_MMIO_SIZE + 8) : regs[sel % ARRAY_SIZE(regs)];
}

static void reg_access(struct fuzz_in *in, bool write)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned nt = (unsigned)nmem + (balloon_t != NULL), k = fuzz__u8(in) % (nt + 1);
	bool mhp = k == nt;
	uint64_t base = mhp ? mhp_base : k < (unsigned)nmem ? mem_t[k]->base : balloon_t->base;
	uint64_t off = pick_offset(in, mhp), v = fuzz__u64(in);
	unsigned size = sizes[fuzz__u8(in) % 4];
	uint8_t data[8], want[MHP_LEN];

	if (mhp && !vm.mem_hotplug)
		return;
	memcpy(data, &v, sizeof(data));
	if (!write) {
		bus__read(&vm.mmio, base + off, data, size);
		if (mhp && off + size <= MHP_LEN) {
			mhp_expected(want);
			FUZZ_CHECK(!memcmp(data, want + off, size), "MHPC read of %u at 0x%llx", size,
				   (unsigned long long)off);
		}
		return;
	}
	if (mhp && off + size > MHP_LEN)
		size = 1;	/* a split access is byte writes: kept inside the block */
	bus__write(&vm.mmio, base + off, data, size);
	if (mhp && off < MHP_LEN)
		mhp_wrote(off, data, size);
}

/* Linux's probe: features (all offered, or any), its queues, DRIVER_OK (or any status). */
static void driver_up(struct fuzz_in *in)
{
	unsigned nt = (unsigned)nmem + (balloon_t != NULL), k = fuzz__u8(in) % (nt ? nt : 1);
	struct virtio_mmio *t = k < (unsigned)nmem ? mem_t[k] : balloon_t;
	uint8_t sel = fuzz__u8(in);
	uint64_t f;
	uint32_t s;

	if (!t)
		return;
	mmio_wr(&vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = mmio_rd(&vm, t, VIRTIO_MMIO_DEVICE_FEATURES);
	mmio_wr(&vm, t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f |= (uint64_t)mmio_rd(&vm, t, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	if (sel & 0x80)
		f = fuzz__u64(in);
	s = driver_features(&vm, t, f);
	for (unsigned q = 0; q < t->def.nqueues + (sel & 0x40 ? 1 : 0); q++) {
		uint64_t desc = pick_gpa(in), avail = pick_gpa(in), used = pick_gpa(in);

		queue_at(&vm, t, q, 1u << fuzz__u8(in) % 9, desc, avail, used);
	}
	mmio_wr(&vm, t, VIRTIO_MMIO_STATUS, sel & 0x20 ? fuzz__u8(in) : s | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- one VM per input ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc, (void)argv;
	FUZZ_CHECK(host__probe(&host, err, sizeof(err)) == 0, "%s", err);
	for (int i = 0; i < 2; i++) {
		char *const *argv = i ? acpi_argv : virtio_mem_argv;
		int n = 0;

		while (argv[n])
			n++;
		FUZZ_CHECK(config__parse(&cfgs[i], n, (char **)argv, err, sizeof(err)) == 0 &&
			   config__validate(&cfgs[i], &host, err, sizeof(err)) == 0, "%s", err);
		cfgs[i].serial = SERIAL_OFF;
	}
	have_kvm = access("/dev/kvm", R_OK | W_OK) == 0;
	return 0;
}

static void start(bool acpi)
{
	char err[512];

	FUZZ_CHECK(ram_vm__start(&vm, &cfgs[acpi], &host, err, sizeof(err)) == 0, "%s", err);
	memset(&host_side, 0, sizeof(host_side));
	nmem = 0;
	balloon_t = NULL;
	mhp_base = 0;
	for (size_t i = 0; i < vm.mmio.nranges; i++) {
		const struct bus_range *r = &vm.mmio.ranges[i];

		if (!strcmp(r->name, "virtio-balloon"))
			balloon_t = r->opaque;
		else if (!strcmp(r->name, "mem-hotplug"))
			mhp_base = r->base;
	}
	for (int z = 0; z < MAX_ZONES; z++)
		for (size_t i = 0; vm.virtio_mem[z] && i < vm.mmio.nranges; i++) {
			struct virtio_mmio *t = vm.mmio.ranges[i].opaque;

			if (strcmp(vm.mmio.ranges[i].name, "virtio-mem") || t->dev != vm.virtio_mem[z])
				continue;
			mem_t[nmem] = t;
			mem_zone[nmem] = z;
			host_side.requested[nmem] = vm.cfg.zones[z].hotplugged_size;
			for (int j = 0; j < vm.layout.nranges; j++)
				if (vm.layout.ranges[j].kind == RANGE_VIRTIO_MEM &&
				    vm.layout.ranges[j].zone == z)
					mem_region[nmem] = &vm.layout.ranges[j];
			nmem++;
		}
	FUZZ_CHECK(nmem == (acpi ? 0 : 2) && balloon_t && !mhp_base == !acpi, "devices: %d virtio-mem",
		   nmem);
	host_side.num_pages = (uint32_t)(vm.cfg.balloon.size / PAGE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t d[16];
	uint64_t gpa;

	start(fuzz__u8(&in) & 1);
	check_all();
	for (unsigned steps = 0; in.left && steps < 64; steps++) {
		switch (fuzz__u8(&in) % OP_NOPS) {
		case OP_READ:
			reg_access(&in, false);
			break;
		case OP_WRITE:
			reg_access(&in, true);
			break;
		case OP_UP:
			driver_up(&in);
			break;
		case OP_MEM:
			mem_request(&in);
			break;
		case OP_PFNS:
			balloon_pfns(&in);
			break;
		case OP_REPORT:
			balloon_report(&in);
			break;
		case OP_RESIZE:
			resize(&in);
			break;
		case OP_POKE:	/* anything, anywhere the driver can write: rings included */
			gpa = pick_gpa(&in);
			for (unsigned i = 0; i < sizeof(d); i++)
				d[i] = fuzz__u8(&in);
			fuzz__poke(&vm, gpa, d, 1 + fuzz__u8(&in) % sizeof(d));
			break;
		}
		check_all();
	}
	vm__stop(&vm, 0);
	FUZZ_CHECK(vm__teardown(&vm) == 0, "teardown");
	return 0;
}
