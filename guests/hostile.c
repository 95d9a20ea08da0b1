/*
 * The hostile guest: attacks every device it finds the way a broken or malicious driver would,
 * and after each attack checks that the device still answers a valid request (after a reset
 * when it asked for one, as virtio 1.2, 2.1.2 lets it) and that the guest's own RAM is intact.
 *
 * Devices are found as the resize guest finds them: virtio-mmio transports from the DSDT's
 * LNRO0005 objects, the memory hotplug controller (MHPC) and the GED (GEC_) by name. Every
 * attack prints one `attack` line (guests/README.md, "Hostile guest") with what the device
 * did; the host side (conformance/hostile.py) matches each against memvisor's log.
 * Each attack starts from a freshly reset device: memvisor's once-per-reset lines log each one.
 */
#include "guest.h"

const char guest_banner[] = "memvisor-hostile 1";

#define VIRTIO_ID_MEM		24
#define VIRTIO_ID_BALLOON	5
#define BALLOON_F_REPORTING	(1ULL << 5)

#define F_INDIRECT	4		/* never offered: a device must refuse it */

/* One queue the guest drives by hand: descriptors at +0, available ring at +1 KiB, used at +2 KiB. */
#define QNUM		32
#define QAVAIL		1024
#define QUSED		2048
struct rawq { u16 num, avail_idx, used_idx; u8 *mem; };

#define MAX_DEVS	8
#define MAX_Q		3
struct dev {
	const char *kind;	/* "vmem" or "balloon" */
	int idx;
	u64 base;
	u32 id, nq;
	struct virtio_dev v;
	struct rawq q[MAX_Q];
	u64 block, addr, region;	/* virtio-mem */
};

static struct dev devs[MAX_DEVS];
static int ndevs;
static u8 rings[MAX_DEVS][MAX_Q][4096] __attribute__((aligned(4096)));

enum { C_RAM, C_CHAIN, C_SETUP, C_REGS, C_VMEM, C_UNPLUGGED, C_BALLOON, C_MHPC, C_GED, C_FLOOD,
       C_RECOVER, C_COUNT };
static struct check checks[C_COUNT] = {
	[C_RAM] = { .name = "ram_intact" },
	[C_CHAIN] = { .name = "bad_chains" },
	[C_SETUP] = { .name = "bad_queue_setup" },
	[C_REGS] = { .name = "virtio_registers" },
	[C_VMEM] = { .name = "virtio_mem_requests" },
	[C_UNPLUGGED] = { .name = "unplugged_buffers" },
	[C_BALLOON] = { .name = "balloon_pfns" },
	[C_MHPC] = { .name = "mhpc_registers" },
	[C_GED] = { .name = "ged_registers" },
	[C_FLOOD] = { .name = "port_flood" },
	[C_RECOVER] = { .name = "recovery" },
};

/* ---- the guest's own RAM: a pattern checked after every attack ---- */

#define CANARY_WORDS	(4 * 1024)	/* 32 KiB: a read is slow where memory accesses are emulated (PVM) */
static u64 canary[CANARY_WORDS] __attribute__((aligned(4096)));
static u64 seed = 0x6057113e00000000ULL;

static void ram_fill(void)
{
	for (u64 i = 0; i < CANARY_WORDS; i++)
		canary[i] = seed ^ (i * 0x9e3779b97f4a7c15ULL);
}

static void ram_verify(const char *after)
{
	for (u64 i = 0; i < CANARY_WORDS; i++)
		if (((volatile u64 *)canary)[i] != (seed ^ (i * 0x9e3779b97f4a7c15ULL))) {
			check_error(&checks[C_RAM], "after=%s addr=0x%lx value=0x%lx", after,
				    (u64)(uintptr_t)&canary[i], canary[i]);
			ram_fill();
			return;
		}
}

/* A buffer inside the canary: a device that writes into a refused chain's buffer shows there. */
static u64 canary_buf(void) { return (u64)(uintptr_t)&canary[CANARY_WORDS / 2]; }

static u64 rng = 0x2545f4914f6cdd1dULL;
static u64 rand64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Milliseconds since boot: where the time goes when an exit costs much (PVM) */
static u64 ms(void)
{
	return (rdtsc() - boot.tsc_entry) / (boot.tsc_khz ? boot.tsc_khz : 1000000);
}

/* ---- addresses that are not RAM ---- */

static u64 hole_addr, ram_end;

/* A page above every E820 entry below 4 GiB and below the devices' MMIO: nothing is there. */
static void find_holes(void)
{
	u64 top = 0;

	for (u32 i = 0; i < boot.e820_entries; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		if (e->addr + e->size <= 4 * GiB && e->addr + e->size > top)
			top = e->addr + e->size;
		if (e->type == E820_RAM && e->addr + e->size > ram_end)
			ram_end = e->addr + e->size;
	}
	hole_addr = ALIGN_UP(top, PAGE_SIZE) + PAGE_SIZE;
}

/* ---- a virtio device driven by hand ---- */

static u32 status(const struct dev *d) { return mmio_read32(d->base + R_STATUS); }

/* Queue qi with explicit size and ring addresses; true when QueueReady reads back 1. */
static bool q_setup_raw(struct dev *d, u32 qi, u32 num, u64 desc, u64 avail, u64 used)
{
	mmio_write32(d->base + R_QUEUE_SEL, qi);
	mmio_write32(d->base + R_QUEUE_NUM, num);
	mmio_write64_halves(d->base + R_QUEUE_DESC, desc);
	mmio_write64_halves(d->base + R_QUEUE_AVAIL, avail);
	mmio_write64_halves(d->base + R_QUEUE_USED, used);
	mmio_write32(d->base + R_QUEUE_READY, 1);
	return mmio_read32(d->base + R_QUEUE_READY) == 1;
}

static bool q_setup(struct dev *d, u32 qi)
{
	struct rawq *q = &d->q[qi];
	u64 m = (u64)(uintptr_t)rings[d - devs][qi];

	memset(rings[d - devs][qi], 0, 4096);
	*q = (struct rawq){ .num = QNUM, .mem = rings[d - devs][qi] };
	return q_setup_raw(d, qi, QNUM, m, m + QAVAIL, m + QUSED);
}

/* Reset and set up every queue: 0, or -1 (a check error in c) when the device will not come up. */
static int dev_init(struct dev *d, struct check *c)
{
	const char *why = "";
	u64 wanted = d->id == VIRTIO_ID_BALLOON ? BALLOON_F_REPORTING : 0;

	memset(&d->v, 0, sizeof(d->v));
	if (virtio_open(&d->v, d->base, d->id, wanted, &why) < 0) {
		check_error(c, "dev=%s%d init: %s", d->kind, d->idx, why);
		return -1;
	}
	d->nq = d->id == VIRTIO_ID_MEM ? 1 : (d->v.features & BALLOON_F_REPORTING) ? 3 : 2;
	for (u32 qi = 0; qi < d->nq; qi++)
		if (!q_setup(d, qi)) {
			check_error(c, "dev=%s%d init: queue %u not ready", d->kind, d->idx, qi);
			return -1;
		}
	virtio_ready(&d->v);
	return 0;
}

enum outcome { USED, NEEDS_RESET, NO_ANSWER, NOT_TRIED };
static const char *const outcome_name[] = { "used", "needs_reset", "no_answer", "not_tried" };

/*
 * Publish nchains heads (heads[i]) with the descriptors already in the table, moving the
 * available index by jump (normally nchains), notify, and wait for nchains used elements.
 */
static enum outcome q_kick(struct dev *d, u32 qi, const u16 *heads, u16 nchains, u16 jump,
			   u32 *written)
{
	struct rawq *q = &d->q[qi];
	u16 *avail = (u16 *)(q->mem + QAVAIL);
	volatile u16 *used = (volatile u16 *)(q->mem + QUSED);
	u16 want = q->used_idx + nchains;

	for (u16 i = 0; i < nchains; i++)
		avail[2 + (q->avail_idx + i) % q->num] = heads[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->avail_idx += jump;
	*(volatile u16 *)&avail[1] = q->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write32(d->base + R_QUEUE_NOTIFY, qi);
	/* memvisor answers on the notifying exit: the wait is short, and a status read is an exit */
	for (u32 spin = 0; spin < 100000; spin++) {
		if ((u16)(used[1] - want) < 0x8000) {
			/* the last element's length */
			u32 slot = (u16)(want - 1) % q->num;
			*written = *(volatile u32 *)(q->mem + QUSED + 4 + 8 * slot + 4);
			q->used_idx = want;
			return USED;
		}
		if (!(spin % 1024) && (status(d) & S_NEEDS_RESET))
			return NEEDS_RESET;
		__asm__ volatile("pause");
	}
	return status(d) & S_NEEDS_RESET ? NEEDS_RESET : NO_ANSWER;
}

static void put_desc(struct dev *d, u32 qi, u16 i, u64 addr, u32 len, u16 flags, u16 next)
{
	((struct vring_desc *)d->q[qi].mem)[i] = (struct vring_desc){ addr, len, flags, next };
}

/* ---- virtio-mem requests (virtio 1.2, 5.15.6) ---- */

enum { REQ_PLUG, REQ_UNPLUG, REQ_UNPLUG_ALL, REQ_STATE };
enum { RESP_ACK, RESP_NACK, RESP_BUSY, RESP_ERROR };
struct mem_req { u16 type, pad[3]; u64 addr; u16 nb_blocks, pad2[3]; } __packed;
struct mem_resp { u16 type, pad[3]; u16 state; } __packed;
static struct mem_req reqs[8];
static struct mem_resp resps[8];

/* One request with its own buffers; the answer's type, or -1 with no answer. */
static int mem_req(struct dev *d, u16 type, u64 addr, u16 nb, u16 *state)
{
	u32 written = 0;
	u16 head = 0;

	reqs[0] = (struct mem_req){ .type = type, .addr = addr, .nb_blocks = nb };
	resps[0] = (struct mem_resp){ .type = 0xffff };
	put_desc(d, 0, 0, (u64)(uintptr_t)&reqs[0], sizeof(reqs[0]), DESC_F_NEXT, 1);
	put_desc(d, 0, 1, (u64)(uintptr_t)&resps[0], sizeof(resps[0]), DESC_F_WRITE, 0);
	if (q_kick(d, 0, &head, 1, 1, &written) != USED || written < 2)
		return -1;
	if (state)
		*state = resps[0].state;
	return resps[0].type;
}

/* A valid request must be answered: STATE of the first block, or a balloon deflate of nothing. */
static bool dev_works(struct dev *d)
{
	u32 written;
	u16 head = 0;

	if (d->id == VIRTIO_ID_MEM)
		return mem_req(d, REQ_STATE, d->addr, 1, 0) == RESP_ACK;
	put_desc(d, 1, 0, (u64)(uintptr_t)&reqs[0], 0, 0, 0);
	return q_kick(d, 1, &head, 1, 1, &written) == USED;
}

/*
 * After an attack: the device either still works, or says NEEDS_RESET; either way a reset and
 * a new set-up must bring it back. needs_reset: whether the attack must have set the bit.
 */
enum reset_rule { MUST_NOT, MUST, MAY };

static void recover(struct dev *d, const char *attack, enum outcome got, enum reset_rule needs_reset,
		    struct check *c)
{
	u32 st = status(d);
	bool works = !(st & S_NEEDS_RESET) && got != NO_ANSWER && got != NOT_TRIED && dev_works(d);

	if (needs_reset == MUST && !(st & S_NEEDS_RESET))
		check_error(c, "dev=%s%d attack=%s status=0x%x: no DEVICE_NEEDS_RESET", d->kind,
			    d->idx, attack, st);
	if (needs_reset == MUST_NOT && (st & S_NEEDS_RESET))
		check_error(c, "dev=%s%d attack=%s status=0x%x: DEVICE_NEEDS_RESET for one bad "
			    "request", d->kind, d->idx, attack, st);
	if (dev_init(d, &checks[C_RECOVER]) == 0 && !dev_works(d))
		check_error(&checks[C_RECOVER], "dev=%s%d attack=%s: no answer after a reset",
			    d->kind, d->idx, attack);
	printf("attack dev=%s%d name=%s result=%s status=0x%x still_worked=%d t_ms=%lu\n", d->kind,
	       d->idx, attack, outcome_name[got], st, works, ms());
	ram_verify(attack);
}

/* ---- bad descriptor chains, on queue 0 of every device ---- */

enum expect { FAILED, RESET };

static void chain(struct dev *d, const char *name, u16 head, u16 jump, enum expect e,
		  struct check *c)
{
	u32 written = 0xdead;
	enum outcome got = q_kick(d, 0, &head, 1, jump, &written);

	if (e == FAILED && (got != USED || written))
		check_error(c, "dev=%s%d attack=%s: %s written=%u, want used with 0 bytes", d->kind,
			    d->idx, name, outcome_name[got], got == USED ? written : 0);
	if (e == RESET && got != NEEDS_RESET)
		check_error(c, "dev=%s%d attack=%s: %s, want DEVICE_NEEDS_RESET", d->kind, d->idx,
			    name, outcome_name[got]);
	recover(d, name, got, e == RESET ? MUST : MUST_NOT, c);
}

static u32 pfns[300];

/* A chain of a readable buffer at addr+len and a writable one in the canary. */
static void bad_buffer(struct dev *d, const char *name, u64 addr, u32 len, bool writable,
		       struct check *c)
{
	u64 ok = d->id == VIRTIO_ID_MEM ? (u64)(uintptr_t)&reqs[0] : (u64)(uintptr_t)pfns;

	if (dev_init(d, c) < 0)
		return;
	/* a balloon that took the request would inflate these: PFNs beyond any RAM */
	for (u32 i = 0; i < 8; i++)
		pfns[i] = 0xfffff000u;
	if (writable) {
		put_desc(d, 0, 0, ok, sizeof(reqs[0]), DESC_F_NEXT, 1);
		put_desc(d, 0, 1, addr, len, DESC_F_WRITE, 0);
	} else {
		put_desc(d, 0, 0, addr, len, DESC_F_NEXT, 1);
		put_desc(d, 0, 1, canary_buf(), 16, DESC_F_WRITE, 0);
	}
	/* virtio-mem's request must look valid so that only the address is wrong */
	reqs[0] = (struct mem_req){ .type = REQ_STATE, .addr = d->addr, .nb_blocks = 1 };
	chain(d, name, 0, 1, FAILED, c);
}

static void chain_attacks(struct dev *d, u64 mmio)
{
	u64 ok = (u64)(uintptr_t)&reqs[0];

	bad_buffer(d, "desc_beyond_phys", 1ULL << 46, 24, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_beyond_ram", ALIGN_UP(e820_top(), 1 * GiB) + 64 * GiB, 24, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_in_hole", hole_addr, 24, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_in_mmio", mmio, 24, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_straddles_ram_end", ram_end - 8, 24, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_huge_len", ok, 0xffffffffu, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_wraps", 0xfffffffffffff000ULL, 0x2000, false, &checks[C_CHAIN]);
	bad_buffer(d, "desc_writable_in_mmio", mmio, 16, true, &checks[C_CHAIN]);
	bad_buffer(d, "desc_writable_wraps", ~0ULL - 7, 16, true, &checks[C_CHAIN]);

	/* two descriptors linking to each other */
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, ok, 24, DESC_F_NEXT, 1);
		put_desc(d, 0, 1, ok, 24, DESC_F_NEXT, 0);
		chain(d, "chain_loop", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	/* the whole table chained, the last linking back to the first: longer than the queue */
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		for (u16 i = 0; i < QNUM; i++)
			put_desc(d, 0, i, ok, 4, DESC_F_NEXT, (u16)((i + 1) % QNUM));
		chain(d, "chain_longer_than_queue", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	/* 17 distinct buffers: more than any request may have */
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		for (u16 i = 0; i < 17; i++)
			put_desc(d, 0, i, ok, 4, i < 16 ? DESC_F_NEXT : 0, (u16)(i + 1));
		chain(d, "chain_too_many_buffers", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, ok, 24, DESC_F_NEXT, QNUM + 5);
		chain(d, "next_beyond_queue", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, canary_buf(), 16, DESC_F_WRITE | DESC_F_NEXT, 1);
		put_desc(d, 0, 1, ok, 24, 0, 0);
		chain(d, "readable_after_writable", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, ok, 16, F_INDIRECT, 0);
		chain(d, "indirect", 0, 1, FAILED, &checks[C_CHAIN]);
	}
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, ok, 24, 0, 0);
		chain(d, "head_beyond_queue", QNUM + 3, 1, RESET, &checks[C_CHAIN]);
	}
	if (dev_init(d, &checks[C_CHAIN]) == 0) {
		put_desc(d, 0, 0, ok, 24, 0, 0);
		chain(d, "avail_idx_jump", 0, 1000, RESET, &checks[C_CHAIN]);
	}
}

/* ---- bad queue set-up: the queue must stay not ready, and the device come back ---- */

static void setup_attack(struct dev *d, const char *name, u32 qi, u32 num, u64 desc, u64 avail,
			 u64 used)
{
	const char *why = "";
	bool ready;

	memset(&d->v, 0, sizeof(d->v));
	if (virtio_open(&d->v, d->base, d->id, 0, &why) < 0) {
		check_error(&checks[C_SETUP], "dev=%s%d %s: %s", d->kind, d->idx, name, why);
		return;
	}
	ready = q_setup_raw(d, qi, num, desc, avail, used);
	if (ready)
		check_error(&checks[C_SETUP], "dev=%s%d attack=%s: queue %u ready", d->kind, d->idx,
			    name, qi);
	virtio_ready(&d->v);
	/* a notify of the refused queue: nothing must happen */
	mmio_write32(d->base + R_QUEUE_NOTIFY, qi);
	/* a device may refuse a queue quietly or ask for a reset (virtio 1.2, 2.1.2) */
	recover(d, name, NOT_TRIED, MAY, &checks[C_SETUP]);
}

static void setup_attacks(struct dev *d, u64 mmio)
{
	u64 m = (u64)(uintptr_t)rings[d - devs][0];

	setup_attack(d, "queue_size_0", 0, 0, m, m + QAVAIL, m + QUSED);
	setup_attack(d, "queue_size_3", 0, 3, m, m + QAVAIL, m + QUSED);
	setup_attack(d, "queue_size_too_large", 0, 4096, m, m + QAVAIL, m + QUSED);
	setup_attack(d, "queue_size_beyond_u16", 0, 0x10010, m, m + QAVAIL, m + QUSED);
	setup_attack(d, "desc_table_beyond_ram", 0, 8, 1ULL << 45, m + QAVAIL, m + QUSED);
	setup_attack(d, "desc_table_unaligned", 0, 8, m + 8, m + QAVAIL, m + QUSED);
	setup_attack(d, "avail_ring_odd", 0, 8, m, m + QAVAIL + 1, m + QUSED);
	setup_attack(d, "used_ring_unaligned", 0, 8, m, m + QAVAIL, m + QUSED + 2);
	setup_attack(d, "used_ring_in_mmio", 0, 8, m, m + QAVAIL, mmio);
	setup_attack(d, "used_ring_straddles_ram_end", 0, 8, m, m + QAVAIL, ram_end - 16);
	setup_attack(d, "ring_in_hole", 0, 8, hole_addr, m + QAVAIL, m + QUSED);
	/* queues the device does not have */
	setup_attack(d, "absent_queue", 5, 8, m, m + QAVAIL, m + QUSED);
	setup_attack(d, "queue_sel_huge", 0xffffffffu, 8, m, m + QAVAIL, m + QUSED);
	/* notifies of queues that are not set up, before and after DRIVER_OK */
	if (dev_init(d, &checks[C_SETUP]) == 0) {
		static const u32 qs[] = { 2, 5, 7, 0xffff, 0xffffffffu };
		for (u32 i = 0; i < ARRAY_SIZE(qs); i++)
			mmio_write32(d->base + R_QUEUE_NOTIFY, qs[i]);
		recover(d, "notify_unset_queues", USED, MUST_NOT, &checks[C_SETUP]);
	}
	/* a ready queue moved under the device */
	if (dev_init(d, &checks[C_SETUP]) == 0) {
		mmio_write32(d->base + R_QUEUE_SEL, 0);
		mmio_write64_halves(d->base + R_QUEUE_DESC, 1ULL << 45);
		mmio_write32(d->base + R_QUEUE_NUM, 3);
		recover(d, "ready_queue_changed", USED, MUST_NOT, &checks[C_SETUP]);
	}
}

/* ---- the register window: every offset read at every width, random writes ---- */

/* Every offset of [base, base + len) read at 1, 2, 4 and 8 bytes, naturally aligned. */
static u64 read_all(u64 base, u64 len)
{
	u64 sum = 0;

	for (u64 off = 0; off < len; off++)
		sum += mmio_read8(base + off) + (off & 1 ? 0 : mmio_read16(base + off)) +
		       (off & 3 ? 0 : mmio_read32(base + off)) +
		       (off & 7 ? 0 : *(volatile u64 *)(uintptr_t)(base + off));
	return sum;
}

static void register_attacks(struct dev *d)
{
	if (dev_init(d, &checks[C_REGS]) < 0)
		return;
	u64 sum = read_all(d->base, 0x1000);
	/* misaligned and narrow register accesses */
	mmio_write8(d->base + R_STATUS, 0xff);
	*(volatile u16 *)(uintptr_t)(d->base + R_QUEUE_SEL + 2) = 0xffff;
	*(volatile u64 *)(uintptr_t)(d->base + R_QUEUE_DESC) = ~0ULL;
	/* random values at random offsets, the configuration space included */
	for (u32 i = 0; i < 2000; i++) {
		u64 r = rand64();
		u64 off = (r >> 32) & 0xffc;
		if (off == R_STATUS && !(r & 0xff))
			continue;	/* a reset now and then is allowed, not every time */
		mmio_write32(d->base + off, (u32)r);
	}
	printf("registers dev=%s%d read_sum=0x%lx t_ms=%lu\n", d->kind, d->idx, sum, ms());
	recover(d, "register_garbage", USED, MAY, &checks[C_REGS]);
}

/* ---- virtio-mem: requests that are well formed but ask for the impossible ---- */

static const char *const resp_name[] = { "ack", "nack", "busy", "error" };

static void vmem_expect(struct dev *d, const char *name, u16 type, u64 addr, u16 nb, int want)
{
	int got = mem_req(d, type, addr, nb, 0);

	printf("attack dev=%s%d name=%s answer=%s\n", d->kind, d->idx, name,
	       got >= 0 && got < 4 ? resp_name[got] : "none");
	if (got != want)
		check_error(&checks[C_VMEM], "dev=%s%d attack=%s answer=%d want=%d", d->kind, d->idx,
			    name, got, want);
}

static u64 vmem_plugged(struct dev *d) { return virtio_config64(&d->v, 0x28); }

static void vmem_attacks(struct dev *d)
{
	u64 b = d->block, a = d->addr, nblocks = d->region / d->block;
	u64 requested = virtio_config64(&d->v, 0x30);
	u16 st = 0xffff;

	if (dev_init(d, &checks[C_VMEM]) < 0)
		return;
	vmem_expect(d, "plug_beyond_region", REQ_PLUG, a + d->region, 1, RESP_ERROR);
	vmem_expect(d, "plug_below_region", REQ_PLUG, a - b, 1, RESP_ERROR);
	vmem_expect(d, "plug_at_zero", REQ_PLUG, 0, 1, RESP_ERROR);
	vmem_expect(d, "plug_unaligned", REQ_PLUG, a + PAGE_SIZE, 1, RESP_ERROR);
	vmem_expect(d, "plug_zero_blocks", REQ_PLUG, a, 0, RESP_ERROR);
	vmem_expect(d, "plug_past_end", REQ_PLUG, a + d->region - b, 2, RESP_ERROR);
	vmem_expect(d, "plug_wrapping", REQ_PLUG, ~0ULL - b + 1, 2, RESP_ERROR);
	vmem_expect(d, "plug_all_blocks", REQ_PLUG, a, nblocks > 0xffff ? 0xffff : (u16)nblocks,
		    requested >= d->region ? RESP_ACK : RESP_NACK);
	mem_req(d, REQ_UNPLUG_ALL, 0, 0, 0);
	vmem_expect(d, "unplug_unplugged", REQ_UNPLUG, a, 1, RESP_ERROR);
	vmem_expect(d, "state_beyond_region", REQ_STATE, a + d->region, 1, RESP_ERROR);
	vmem_expect(d, "unknown_type", 7, a, 1, RESP_ERROR);
	/* three blocks: a plug of two over a plugged one passes the requested_size check first */
	if (requested >= 3 * b && nblocks >= 2) {
		vmem_expect(d, "plug_block0", REQ_PLUG, a, 1, RESP_ACK);
		vmem_expect(d, "plug_overlapping", REQ_PLUG, a, 2, RESP_ERROR);
		vmem_expect(d, "plug_twice", REQ_PLUG, a, 1, RESP_ERROR);
		vmem_expect(d, "unplug_mixed", REQ_UNPLUG, a, 2, RESP_ERROR);
		if (mem_req(d, REQ_STATE, a, 2, &st) != RESP_ACK || st != 2)
			check_error(&checks[C_VMEM], "dev=%s%d state of blocks 0-1 is %u, want mixed",
				    d->kind, d->idx, st);
		mem_req(d, REQ_UNPLUG_ALL, 0, 0, 0);
	} else {
		check_skip(&checks[C_VMEM], "requested_size under 3 blocks: no overlap attacks");
	}
	/* UNPLUG_ALL in the middle of plugs, all published at once */
	if (requested >= b) {
		static const u16 types[] = { REQ_PLUG, REQ_UNPLUG_ALL, REQ_PLUG, REQ_UNPLUG_ALL,
					     REQ_UNPLUG_ALL, REQ_UNPLUG };
		u16 heads[ARRAY_SIZE(types)];
		u32 written;

		for (u16 i = 0; i < ARRAY_SIZE(types); i++) {
			reqs[i] = (struct mem_req){ .type = types[i], .addr = a, .nb_blocks = 1 };
			resps[i] = (struct mem_resp){ .type = 0xffff };
			put_desc(d, 0, 2 * i, (u64)(uintptr_t)&reqs[i], sizeof(reqs[i]), DESC_F_NEXT, 2 * i + 1);
			put_desc(d, 0, 2 * i + 1, (u64)(uintptr_t)&resps[i], sizeof(resps[i]), DESC_F_WRITE, 0);
			heads[i] = 2 * i;
		}
		if (q_kick(d, 0, heads, ARRAY_SIZE(types), ARRAY_SIZE(types), &written) != USED)
			check_error(&checks[C_VMEM], "dev=%s%d unplug_all_race: no answer", d->kind,
				    d->idx);
		static const u16 want[] = { RESP_ACK, RESP_ACK, RESP_ACK, RESP_ACK, RESP_ACK,
					    RESP_ERROR };
		for (u16 i = 0; i < ARRAY_SIZE(types); i++)
			if (resps[i].type != want[i])
				check_error(&checks[C_VMEM], "dev=%s%d unplug_all_race request %u "
					    "answer=%u want=%u", d->kind, d->idx, i, resps[i].type,
					    want[i]);
		printf("attack dev=%s%d name=unplug_all_race answer=%u,%u,%u,%u,%u,%u\n", d->kind,
		       d->idx, resps[0].type, resps[1].type, resps[2].type, resps[3].type,
		       resps[4].type, resps[5].type);
	}
	if (vmem_plugged(d))
		check_error(&checks[C_VMEM], "dev=%s%d plugged_size=0x%lx after the attacks, want 0",
			    d->kind, d->idx, vmem_plugged(d));
	recover(d, "vmem_requests", USED, MUST_NOT, &checks[C_VMEM]);
}

static bool plug_block0(struct dev *d)
{
	if (mem_req(d, REQ_PLUG, d->addr, 1, 0) != RESP_ACK) {
		check_error(&checks[C_UNPLUGGED], "dev=%s%d plug of block 0 refused", d->kind, d->idx);
		return false;
	}
	paging_map(d->addr + d->block);
	return true;
}

/*
 * Buffers in unplugged virtio-mem memory: the device must refuse them, not touch them (a
 * hugetlb region has no pages there, and touching one may find the pool empty). Then a
 * response buffer inside the very block an UNPLUG gives back.
 */
static void unplugged_attacks(struct dev *d, struct dev *target)
{
	u64 last = target->addr + target->region - target->block;
	u64 b = target->block, requested;

	bad_buffer(d, "readable_in_unplugged", last, 24, false, &checks[C_UNPLUGGED]);
	bad_buffer(d, "writable_in_unplugged", last, 16, true, &checks[C_UNPLUGGED]);
	if (d != target || dev_init(d, &checks[C_UNPLUGGED]) < 0)
		return;
	requested = virtio_config64(&d->v, 0x30);
	if (requested < b) {
		check_skip(&checks[C_UNPLUGGED], "requested_size under 1 block: no self-unplug");
		return;
	}
	if (!plug_block0(d))
		return;
	/* the request and its answer inside the block it unplugs */
	struct mem_req *req = (struct mem_req *)(uintptr_t)(d->addr + 64);
	struct mem_resp *resp = (struct mem_resp *)(uintptr_t)(d->addr + 128);
	u32 written = 0;
	u16 head = 0;

	*req = (struct mem_req){ .type = REQ_UNPLUG, .addr = d->addr, .nb_blocks = 1 };
	resp->type = 0xffff;
	put_desc(d, 0, 0, (u64)(uintptr_t)req, sizeof(*req), DESC_F_NEXT, 1);
	put_desc(d, 0, 1, (u64)(uintptr_t)resp, sizeof(*resp), DESC_F_WRITE, 0);
	enum outcome got = q_kick(d, 0, &head, 1, 1, &written);
	u64 plugged = vmem_plugged(d);
	printf("attack dev=%s%d name=unplug_own_buffers result=%s written=%u plugged=0x%lx\n",
	       d->kind, d->idx, outcome_name[got], written, plugged);
	/* Either refused (block still plugged, ERROR written) or done (nothing written after). */
	if (got == USED && written && plugged != b)
		check_error(&checks[C_UNPLUGGED], "dev=%s%d unplug_own_buffers: answer written "
			    "into a block given back (plugged=0x%lx)", d->kind, d->idx, plugged);
	recover(d, "unplug_own_buffers", got, MUST_NOT, &checks[C_UNPLUGGED]);
}

/*
 * Rings in plugged virtio-mem memory that is then unplugged. Virtio-mem's own: an UNPLUG of
 * the block holding them must be refused. Another device's (the balloon's deflate queue): the
 * unplug is allowed, and that device must then stop the queue (DEVICE_NEEDS_RESET) rather than
 * read rings the host gave back. Nothing here touches the block once it is unplugged.
 */
static void rings_attacks(struct dev *vm, struct dev *bal)
{
	u64 b = vm->block, ring = vm->addr;
	u8 *mem = (u8 *)(uintptr_t)ring;
	struct rawq *q = &vm->q[0];
	u32 written;
	u16 head = 0;
	const char *why = "";

	if (dev_init(vm, &checks[C_UNPLUGGED]) < 0)
		return;
	if (virtio_config64(&vm->v, 0x30) < b) {
		check_skip(&checks[C_UNPLUGGED], "requested_size under 1 block: no rings attacks");
		return;
	}
	if (!plug_block0(vm))
		return;
	/* virtio-mem's queue moved into block 0 (not ready first, as the spec allows) */
	mmio_write32(vm->base + R_QUEUE_SEL, 0);
	mmio_write32(vm->base + R_QUEUE_READY, 0);
	memset(mem, 0, 4096);
	*q = (struct rawq){ .num = QNUM, .mem = mem };
	if (!q_setup_raw(vm, 0, QNUM, ring, ring + QAVAIL, ring + QUSED))
		check_error(&checks[C_UNPLUGGED], "dev=%s%d queue in plugged block 0 refused",
			    vm->kind, vm->idx);
	int r = mem_req(vm, REQ_UNPLUG, vm->addr, 1, 0);
	u64 plugged = vmem_plugged(vm);
	printf("attack dev=%s%d name=unplug_own_rings answer=%s plugged=0x%lx\n", vm->kind, vm->idx,
	       r >= 0 && r < 4 ? resp_name[r] : "none", plugged);
	if (r != RESP_ERROR || plugged != b)
		check_error(&checks[C_UNPLUGGED], "dev=%s%d unplug of the block holding its rings: "
			    "answer %d plugged=0x%lx", vm->kind, vm->idx, r, plugged);
	recover(vm, "unplug_own_rings", USED, MUST_NOT, &checks[C_UNPLUGGED]);
	if (!bal)
		return;

	/* the balloon's deflate queue in block 0, then block 0 unplugged under it */
	if (!plug_block0(vm))
		return;
	memset(&bal->v, 0, sizeof(bal->v));
	if (virtio_open(&bal->v, bal->base, bal->id, 0, &why) < 0 || !q_setup(bal, 0)) {
		check_error(&checks[C_UNPLUGGED], "dev=%s%d %s", bal->kind, bal->idx, why);
		return;
	}
	memset(mem, 0, 4096);
	bal->q[1] = (struct rawq){ .num = QNUM, .mem = mem };
	if (!q_setup_raw(bal, 1, QNUM, ring, ring + QAVAIL, ring + QUSED))
		check_error(&checks[C_UNPLUGGED], "dev=%s%d queue in plugged memory refused", bal->kind,
			    bal->idx);
	virtio_ready(&bal->v);
	put_desc(bal, 1, 0, (u64)(uintptr_t)pfns, 0, 0, 0);
	if (q_kick(bal, 1, &head, 1, 1, &written) != USED)
		check_error(&checks[C_UNPLUGGED], "dev=%s%d no answer on rings in plugged memory",
			    bal->kind, bal->idx);
	if (mem_req(vm, REQ_UNPLUG, vm->addr, 1, 0) != RESP_ACK)
		check_error(&checks[C_UNPLUGGED], "dev=%s%d unplug of another device's rings refused",
			    vm->kind, vm->idx);
	mmio_write32(bal->base + R_QUEUE_NOTIFY, 1);
	recover(bal, "rings_unplugged_under_queue", (status(bal) & S_NEEDS_RESET) ? NEEDS_RESET : USED,
		MUST, &checks[C_UNPLUGGED]);
	recover(vm, "rings_unplugged_cleanup", USED, MUST_NOT, &checks[C_UNPLUGGED]);
}

/* ---- virtio-balloon: PFNs that are not the guest's RAM ---- */

static void balloon_inflate(struct dev *d, const char *name, u32 n, u32 bytes)
{
	u32 written;
	u16 head = 0;

	if (dev_init(d, &checks[C_BALLOON]) < 0)
		return;
	put_desc(d, 0, 0, (u64)(uintptr_t)pfns, bytes ? bytes : n * 4, 0, 0);
	enum outcome got = q_kick(d, 0, &head, 1, 1, &written);
	if (got != USED)
		check_error(&checks[C_BALLOON], "dev=%s%d attack=%s: %s", d->kind, d->idx, name,
			    outcome_name[got]);
	recover(d, name, got, MUST_NOT, &checks[C_BALLOON]);
}

static void balloon_attacks(struct dev *d, u64 mmio, const struct dev *vmem)
{
	pfns[0] = 0xfffff000u;
	balloon_inflate(d, "pfn_beyond_ram", 1, 0);
	pfns[0] = (u32)(hole_addr >> 12);
	balloon_inflate(d, "pfn_in_hole", 1, 0);
	pfns[0] = (u32)(mmio >> 12);
	balloon_inflate(d, "pfn_in_mmio", 1, 0);
	pfns[0] = 0xffffffffu;
	pfns[1] = (u32)(ram_end >> 12);
	balloon_inflate(d, "pfn_max", 2, 0);
	if (vmem) {
		pfns[0] = (u32)((vmem->addr + vmem->region - vmem->block) >> 12);
		balloon_inflate(d, "pfn_in_unplugged", 1, 0);
	}
	for (u32 i = 0; i < ARRAY_SIZE(pfns); i++)
		pfns[i] = 0xfffff000u + i;
	balloon_inflate(d, "too_many_pfns", 300, 0);
	balloon_inflate(d, "pfns_odd_length", 0, 6);
	/* a free page report of memory that is not RAM */
	if (d->nq == 3 && dev_init(d, &checks[C_BALLOON]) == 0) {
		u32 written;
		u16 head = 0;
		put_desc(d, 2, 0, hole_addr, 4 * MiB, DESC_F_WRITE, 0);
		enum outcome got = q_kick(d, 2, &head, 1, 1, &written);
		if (got != USED)
			check_error(&checks[C_BALLOON], "report_in_hole: %s", outcome_name[got]);
		recover(d, "report_in_hole", got, MUST_NOT, &checks[C_BALLOON]);
	}
	/* num_pages is the host's: a write must be ignored */
	if (dev_init(d, &checks[C_BALLOON]) == 0) {
		u32 before = virtio_config32(&d->v, 0);
		virtio_config_write32(&d->v, 0, before + 12345);
		if (virtio_config32(&d->v, 0) != before)
			check_error(&checks[C_BALLOON], "num_pages written by the guest");
		recover(d, "num_pages_write", USED, MUST_NOT, &checks[C_BALLOON]);
	}
}

/* ---- the memory hotplug controller and the GED ---- */

static void mhpc_attacks(u64 base)
{
	mmio_write32(base, 0);
	u8 st0 = mmio_read8(base + 0x14);
	u64 sum = read_all(base, 0x20);
	/* selectors beyond the 8 slots must not move it */
	static const u32 sel[] = { 8, 9, 0xff, 0x80000000u, 0xffffffffu };
	for (u32 i = 0; i < ARRAY_SIZE(sel); i++) {
		mmio_write32(base, sel[i]);
		u8 st = mmio_read8(base + 0x14);
		if (st != st0)
			check_error(&checks[C_MHPC], "selector 0x%x: status 0x%x, slot 0's is 0x%x",
				    sel[i], st, st0);
	}
	printf("attack dev=mhpc name=selector_beyond_slots status=0x%x\n", st0);
	/* eject every slot, boot memory being in none of them */
	for (u32 s = 0; s < 8; s++) {
		mmio_write32(base, s);
		mmio_write8(base + 0x14, 0x8 | 0x4 | 0x2);
	}
	printf("attack dev=mhpc name=eject_all\n");
	for (u32 i = 0; i < 500; i++) {
		u64 r = rand64();
		u64 off = (r >> 40) % 0x18;
		if (r & 1)
			mmio_write8(base + off, (u8)r);
		else if (!(off & 3))
			mmio_write32(base + off, (u32)(r >> 8));
	}
	printf("attack dev=mhpc name=register_garbage read_sum=0x%lx\n", sum);
	mmio_write32(base, 0);
	if (mmio_read8(base + 0x14) != (st0 & 1))
		check_error(&checks[C_MHPC], "slot 0 status 0x%x after the attacks, was 0x%x",
			    mmio_read8(base + 0x14), st0);
	ram_verify("mhpc");
}

static void ged_attacks(u64 base)
{
	u64 sum = 0;

	for (u32 i = 0; i < 200; i++) {
		mmio_write8(base, (u8)rand64());
		sum += mmio_read8(base);
	}
	for (u64 off = 0; off < 4; off++)
		sum += mmio_read32(base + off);
	mmio_write32(base, 0xffffffffu);
	printf("attack dev=ged name=register_garbage read_sum=0x%lx\n", sum);
	ram_verify("ged");
}

/* ---- ports ---- */

static void flood(u32 n)
{
	for (u32 i = 0; i < n; i++)
		outb(PORT_DEBUG, (u8)(0x10 + (i & 0x3f)));
	/* the UART's registers other than THR; restored after, the console needs them */
	for (u16 p = 0x3f9; p <= 0x3ff; p++)
		for (u32 i = 0; i < 64; i++)
			outb(p, (u8)rand64());
	outb(0x3fb, 0x80);
	outb(0x3f8, 1);		/* divisor 1: 115200 */
	outb(0x3f9, 0);
	outb(0x3fb, 0x03);	/* 8N1 */
	outb(0x3f9, 0);		/* no interrupts */
	outb(0x3fc, 0x03);
	/* ports nothing claims */
	for (u32 i = 0; i < 4096; i++)
		outb((u16)(0x1000 + (i & 0x3ff)), (u8)i);
	console_break();
	printf("attack dev=ports name=flood debug_writes=%u\n", n);
	/* the console still works: a long line through the UART */
	for (u32 i = 0; i < 16; i++)
		printf("flood line=%u text=%s\n", i,
		       "The quick brown fox jumps over the lazy dog, again and again and again.");
	ram_verify("flood");
}

int main(void)
{
	const struct acpi_header *dsdt = acpi_find_dsdt();
	struct acpi_dev found[MAX_DEVS], ctl, ged;
	struct dev *vmem = 0, *bal = 0;
	u64 mmio = 0, mhpc = 0, gedb = 0, nflood = 20000;
	char arg[24];
	int nvm = 0, nbal = 0;

	print_boot_info();
	ram_fill();
	find_holes();
	if (!dsdt) {
		printf("FAIL: no DSDT\n");
		return EXIT_FATAL;
	}
	if (cmdline_get(boot.cmdline, "flood", arg, sizeof(arg)) && !parse_size(arg, &nflood)) {
		printf("FAIL: flood=%s\n", arg);
		return EXIT_FATAL;
	}
	int n = acpi_find_hid(dsdt, "LNRO0005", found, MAX_DEVS);
	for (int i = 0; i < n; i++) {
		if (!found[i].has_base || found[i].size < 0x200)
			continue;
		paging_map(found[i].base + 0x1000);
		struct dev *d = &devs[ndevs];
		*d = (struct dev){ .base = found[i].base, .id = mmio_read32(found[i].base + 8) };
		if (d->id == VIRTIO_ID_MEM) {
			d->kind = "vmem";
			d->idx = nvm++;
		} else if (d->id == VIRTIO_ID_BALLOON) {
			d->kind = "balloon";
			d->idx = nbal++;
		} else {
			continue;
		}
		if (dev_init(d, &checks[C_RECOVER]) < 0)
			continue;
		if (d->id == VIRTIO_ID_MEM) {
			d->block = virtio_config64(&d->v, 0);
			d->addr = virtio_config64(&d->v, 0x10);
			d->region = virtio_config64(&d->v, 0x18);
			if (!vmem)
				vmem = d;
		} else if (!bal) {
			bal = d;
		}
		if (!mmio)
			mmio = d->base;
		printf("hostile_dev dev=%s%d base=0x%lx block=0x%lx addr=0x%lx region=0x%lx\n",
		       d->kind, d->idx, d->base, d->block, d->addr, d->region);
		ndevs++;
	}
	if (acpi_find_device(dsdt, "MHPC", &ctl) && ctl.has_base && ctl.size >= 0x18)
		paging_map((mhpc = ctl.base) + 0x20);
	if (acpi_find_device(dsdt, "GEC_", &ged) && ged.has_base)
		paging_map((gedb = ged.base) + 0x10);
	printf("hostile_guest devices=%d mhpc=0x%lx ged=0x%lx hole=0x%lx ram_end=0x%lx\n", ndevs,
	       mhpc, gedb, hole_addr, ram_end);

	for (int i = 0; i < ndevs; i++) {
		struct dev *d = &devs[i];
		chain_attacks(d, mmio);
		setup_attacks(d, mmio);
		register_attacks(d);
		if (vmem)
			unplugged_attacks(d, vmem);
		if (d->id == VIRTIO_ID_MEM)
			vmem_attacks(d);
		else
			balloon_attacks(d, mmio, vmem);
	}
	if (vmem)
		rings_attacks(vmem, bal);
	for (int c = C_CHAIN; c <= C_REGS && !ndevs; c++)
		check_skip(&checks[c], "no virtio device");
	check_skip(&checks[C_VMEM], vmem ? 0 : "no virtio-mem device");
	check_skip(&checks[C_UNPLUGGED], vmem ? 0 : "no virtio-mem device");
	check_skip(&checks[C_BALLOON], bal ? 0 : "no virtio-balloon device");
	check_skip(&checks[C_MHPC], mhpc ? 0 : "no memory hotplug controller");
	check_skip(&checks[C_GED], gedb ? 0 : "no GED");
	if (mhpc)
		mhpc_attacks(mhpc);
	if (gedb)
		ged_attacks(gedb);
	flood((u32)nflood);
	ram_verify("end");
	return checks_report(checks, C_COUNT);
}
