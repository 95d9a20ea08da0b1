/*
 * The resize guest: drives every virtio-mem device and the ACPI memory hotplug controller it
 * finds, the way a kernel would but by polling, and reports each change it carried out.
 *
 * virtio-mem (virtio 1.2, 5.15): it follows requested_size, plugging the lowest unplugged blocks
 * and unplugging the highest plugged ones, so that the plugged blocks are always a prefix of the
 * region. Every page of a newly plugged block is first read (a block given back to the host must
 * come back zeroed) then written with a pattern of its address; every plugged page is checked
 * after each change (data integrity). `cycles=N` first unplugs and replugs the top blocks of
 * what is plugged (half of them, at most 4) N times, checking the others each time.
 *
 * ACPI hotplug: the MHPC register block (found from the DSDT's MHPC device _CRS) is polled; a
 * slot that is enabled and inserting is acknowledged, its memory read (zero) and written.
 *
 * virtio-balloon: it follows num_pages, inflating with spare pages of boot RAM from the top
 * down (each written first, so that the host has it to give back) and deflating the last ones
 * given, which must then read zero; `actual` is written after each change.
 *
 * Lines (guests/README.md, "Resize guest"): resize_guest, virtio_mem, resize, integrity, dimm,
 * error check=..., and `resize_guest idle` each time everything asked is done.
 */
#include "guest.h"

const char guest_banner[] = "memvisor-resize 1";

#define VIRTIO_ID_MEM 24
#define VIRTIO_MEM_F_ACPI_PXM (1ULL << 0)
#define MAX_MEM 8
#define MAX_SLOTS 8

/* Config space (struct virtio_mem_config) */
#define C_BLOCK_SIZE	0x00
#define C_NODE_ID	0x08
#define C_ADDR		0x10
#define C_REGION_SIZE	0x18
#define C_USABLE	0x20
#define C_PLUGGED	0x28
#define C_REQUESTED	0x30

enum { REQ_PLUG, REQ_UNPLUG, REQ_UNPLUG_ALL, REQ_STATE };
enum { RESP_ACK, RESP_NACK, RESP_BUSY, RESP_ERROR };
enum { STATE_PLUGGED, STATE_UNPLUGGED, STATE_MIXED };

struct mem_req { u16 type, pad[3]; u64 addr; u16 nb_blocks, pad2[3]; } __packed;
struct mem_resp { u16 type, pad[3]; u16 state; } __packed;

struct vmem {
	struct virtio_dev v;
	struct acpi_dev acpi;
	u64 block, addr, region, plugged_blocks;
	u16 node;
	bool pxm;
};

static struct vmem mem[MAX_MEM];
static int nmem;
static u8 rings[MAX_MEM][4096] __attribute__((aligned(4096)));
static u64 seq, seed = 0x5eed000000000000ULL;

enum { CHK_VIRTIO_MEM, CHK_ZERO, CHK_INTEGRITY, CHK_DIMM, CHK_BALLOON, CHK_COUNT };
static struct check checks[CHK_COUNT] = {
	[CHK_VIRTIO_MEM] = { .name = "virtio_mem" },
	[CHK_ZERO] = { .name = "plugged_zeroed" },
	[CHK_INTEGRITY] = { .name = "integrity" },
	[CHK_DIMM] = { .name = "acpi_dimm" },
	[CHK_BALLOON] = { .name = "balloon" },
};

static u64 pattern(u64 gpa) { return gpa ^ seed; }

/*
 * Every page of a fresh block gets the pattern; the last word, which held the pattern the last
 * time the block was plugged, must read zero (memory given back comes back empty). The first
 * word is written before anything is read: a read first would map the host's zero page and
 * cost a fault per 4 KiB instead of one per huge page where the host backs us with THP.
 */
static void block_fill(u64 start, u64 size)
{
	for (u64 a = start; a < start + size; a += PAGE_SIZE) {
		volatile u64 *p = (volatile u64 *)(uintptr_t)a;
		p[0] = pattern(a);
		if (p[PAGE_SIZE / 8 - 1])
			check_error(&checks[CHK_ZERO], "addr=0x%lx value=0x%lx", a,
				    p[PAGE_SIZE / 8 - 1]);
		p[PAGE_SIZE / 8 - 1] = ~pattern(a);
	}
}

static unsigned block_verify(u64 start, u64 size)
{
	unsigned bad = 0;

	for (u64 a = start; a < start + size; a += PAGE_SIZE) {
		volatile u64 *p = (volatile u64 *)(uintptr_t)a;
		if (p[0] != pattern(a) || p[PAGE_SIZE / 8 - 1] != ~pattern(a)) {
			if (!bad)
				check_error(&checks[CHK_INTEGRITY], "addr=0x%lx value=0x%lx want=0x%lx",
					    a, p[0], pattern(a));
			bad++;
		}
	}
	return bad;
}

static int mem_request(struct vmem *m, u16 type, u64 first, u64 nb, u16 *state)
{
	struct mem_req req = { .type = type, .addr = m->addr + first * m->block, .nb_blocks = (u16)nb };
	struct mem_resp resp = { .type = 0xffff };
	u32 written = 0;

	if (virtio_request(&m->v, 0, &req, sizeof(req), &resp, sizeof(resp), &written) < 0) {
		check_error(&checks[CHK_VIRTIO_MEM], "dev=%d request=%u no answer status=0x%x",
			    (int)(m - mem), type, virtio_status(&m->v));
		return -1;
	}
	if (written < sizeof(resp.type))
		check_error(&checks[CHK_VIRTIO_MEM], "dev=%d request=%u answer of %u bytes",
			    (int)(m - mem), type, written);
	if (state)
		*state = resp.state;
	return resp.type;
}

/* Plug or unplug blocks [first, first+nb) in requests of at most 0x8000 blocks. */
static int mem_change(struct vmem *m, bool plug, u64 first, u64 nb)
{
	while (nb) {
		u64 n = nb > 0x8000 ? 0x8000 : nb;
		int r = mem_request(m, plug ? REQ_PLUG : REQ_UNPLUG, plug ? first : first + nb - n, n, 0);
		if (r != RESP_ACK) {
			if (r != RESP_NACK || !plug)
				check_error(&checks[CHK_VIRTIO_MEM], "dev=%d %s blocks=%lu+%lu answer=%d",
					    (int)(m - mem), plug ? "plug" : "unplug", first, n, r);
			return r;
		}
		if (plug) {
			block_fill(m->addr + first * m->block, n * m->block);
			first += n;
		}
		nb -= n;
	}
	return RESP_ACK;
}

/* The device's view must match ours: plugged_size, and STATE of the prefix and the rest. */
static void mem_cross_check(struct vmem *m)
{
	u64 dev_plugged = virtio_config64(&m->v, C_PLUGGED), total = m->region / m->block;
	u16 st;

	if (dev_plugged != m->plugged_blocks * m->block)
		check_error(&checks[CHK_VIRTIO_MEM], "dev=%d plugged_size=0x%lx driver=0x%lx",
			    (int)(m - mem), dev_plugged, m->plugged_blocks * m->block);
	for (int part = 0; part < 2; part++) {
		u64 first = part ? m->plugged_blocks : 0;
		u64 nb = part ? total - m->plugged_blocks : m->plugged_blocks;
		for (u64 done = 0; done < nb; done += 0x8000) {
			u64 n = nb - done > 0x8000 ? 0x8000 : nb - done;
			if (mem_request(m, REQ_STATE, first + done, n, &st) == RESP_ACK &&
			    st != (part ? STATE_UNPLUGGED : STATE_PLUGGED))
				check_error(&checks[CHK_VIRTIO_MEM], "dev=%d state blocks=%lu+%lu is %u",
					    (int)(m - mem), first + done, n, st);
		}
	}
}

static unsigned verify_all(void)
{
	unsigned bad = 0;

	for (int i = 0; i < nmem; i++)
		bad += block_verify(mem[i].addr, mem[i].plugged_blocks * mem[i].block);
	return bad;
}

/* Follow requested_size; true when something changed. */
static bool mem_follow(struct vmem *m)
{
	u64 requested = virtio_config64(&m->v, C_REQUESTED), usable = virtio_config64(&m->v, C_USABLE);
	u64 want = (requested < usable ? requested : usable) / m->block, have = m->plugged_blocks;
	int r = RESP_ACK;

	if (want == have)
		return false;
	if (want > have) {
		r = mem_change(m, true, have, want - have);
		/* A NACK means requested_size shrank meanwhile: count what the device took. */
		m->plugged_blocks = virtio_config64(&m->v, C_PLUGGED) / m->block;
	} else {
		r = mem_change(m, false, want, have - want);
		m->plugged_blocks = r == RESP_ACK ? want : virtio_config64(&m->v, C_PLUGGED) / m->block;
	}
	mem_cross_check(m);
	unsigned bad = verify_all();
	printf("resize seq=%lu kind=virtio-mem dev=%d requested=0x%lx plugged=0x%lx answer=%d "
	       "verified_bad_pages=%u\n", ++seq, (int)(m - mem), requested,
	       m->plugged_blocks * m->block, r, bad);
	return true;
}

static void mem_cycles(struct vmem *m, u64 cycles)
{
	/* At most 4 blocks move: each cycle refaults them, and faults are what a cycle costs. */
	u64 moved = m->plugged_blocks - m->plugged_blocks / 2, keep;
	unsigned bad = 0;

	moved = moved < 4 ? moved : 4;
	keep = m->plugged_blocks - moved;

	if (!moved || !keep) {
		check_skip(&checks[CHK_INTEGRITY], "fewer than 2 blocks plugged");
		return;
	}
	for (u64 c = 0; c < cycles; c++) {
		if (mem_change(m, false, keep, moved) != RESP_ACK ||
		    mem_change(m, true, keep, moved) != RESP_ACK)
			break;
		bad += block_verify(m->addr, keep * m->block);
	}
	bad += block_verify(m->addr, m->plugged_blocks * m->block);
	printf("integrity dev=%d cycles=%lu kept=0x%lx moved=0x%lx bad_pages=%u\n", (int)(m - mem),
	       cycles, keep * m->block, moved * m->block, bad);
}

static void mem_open(const struct acpi_dev *a)
{
	struct vmem *m = &mem[nmem];
	const char *why = "";

	m->acpi = *a;
	if (virtio_open(&m->v, a->base, VIRTIO_ID_MEM, VIRTIO_MEM_F_ACPI_PXM, &why) < 0 ||
	    virtio_queue(&m->v, 0, rings[nmem], 8, &why) < 0) {
		if (strcmp(why, "other device id"))
			check_error(&checks[CHK_VIRTIO_MEM], "base=0x%lx %s", a->base, why);
		return;
	}
	m->block = virtio_config64(&m->v, C_BLOCK_SIZE);
	m->addr = virtio_config64(&m->v, C_ADDR);
	m->region = virtio_config64(&m->v, C_REGION_SIZE);
	m->pxm = m->v.features & VIRTIO_MEM_F_ACPI_PXM;
	m->node = virtio_config16(&m->v, C_NODE_ID);
	if (!m->block || (m->block & (m->block - 1)) || m->addr % m->block || m->region % m->block ||
	    !m->region) {
		check_error(&checks[CHK_VIRTIO_MEM], "base=0x%lx block=0x%lx addr=0x%lx region=0x%lx",
			    a->base, m->block, m->addr, m->region);
		return;
	}
	virtio_ready(&m->v);
	paging_map(m->addr + m->region);
	printf("virtio_mem dev=%d base=0x%lx irq=%u block=0x%lx addr=0x%lx region=0x%lx usable=0x%lx "
	       "plugged=0x%lx requested=0x%lx node=%d\n", nmem, a->base, a->irq, m->block, m->addr,
	       m->region, virtio_config64(&m->v, C_USABLE), virtio_config64(&m->v, C_PLUGGED),
	       virtio_config64(&m->v, C_REQUESTED), m->pxm ? m->node : -1);
	nmem++;
	/* As Linux does at probe: start from nothing plugged. */
	if (virtio_config64(&m->v, C_PLUGGED) && mem_request(m, REQ_UNPLUG_ALL, 0, 0, 0) != RESP_ACK)
		check_error(&checks[CHK_VIRTIO_MEM], "dev=%d UNPLUG_ALL refused", nmem - 1);
}

/* ---- ACPI memory hotplug controller (QEMU's register layout, see devices/mem_hotplug.c) ---- */

static u64 mhpc;
static bool slot_seen[MAX_SLOTS];

static bool dimm_poll(void)
{
	bool changed = false;

	for (u32 s = 0; mhpc && s < MAX_SLOTS; s++) {
		mmio_write32(mhpc + 0x0, s);
		u8 st = mmio_read8(mhpc + 0x14);
		if (!(st & 1) || !(st & 2) || slot_seen[s])
			continue;
		u64 base = mmio_read32(mhpc) | (u64)mmio_read32(mhpc + 4) << 32;
		u64 size = mmio_read32(mhpc + 8) | (u64)mmio_read32(mhpc + 0xc) << 32;
		u32 pxm = mmio_read32(mhpc + 0x10);
		mmio_write8(mhpc + 0x14, 2);	/* clear "inserting", as the AML's MSCN does */
		slot_seen[s] = true;
		if (!size || base % (128 * MiB) || size % (128 * MiB)) {
			check_error(&checks[CHK_DIMM], "slot=%u base=0x%lx size=0x%lx", s, base, size);
			continue;
		}
		paging_map(base + size);
		block_fill(base, size);
		unsigned bad = block_verify(base, size);
		printf("dimm seq=%lu slot=%u base=0x%lx size=0x%lx pxm=%u bad_pages=%u\n", ++seq, s,
		       base, size, pxm, bad);
		changed = true;
	}
	return changed;
}

/* ---- virtio-balloon (virtio 1.2, 5.5): inflate to num_pages, deflate below it ---- */

#define VIRTIO_ID_BALLOON 5
#define BALLOON_F_REPORTING (1ULL << 5)
#define BALLOON_REPORT_RUN (4 * MiB)	/* Linux reports free pages in runs of this order */
#define BALLOON_BATCH 256		/* PFNs per request, as Linux's VIRTIO_BALLOON_ARRAY_PFNS_MAX */
#define BALLOON_MAX (1u << 18)		/* pages the guest can give: 1 GiB */

static struct virtio_dev bal;
static bool bal_present;
static u8 bal_rings[3][4096] __attribute__((aligned(4096)));
static u32 bal_pfns[BALLOON_MAX], bal_n;
static u32 bal_batch[BALLOON_BATCH];
static u32 e820_cursor;			/* E820 entry the next page comes from (from the top) */
static u64 page_cursor;			/* next page to try, going down; 0: start of the entry */

/* The next page of boot RAM the guest can spare: from the top down, never a protected one. */
static bool spare_page(u64 *out)
{
	while (e820_cursor < boot.e820_entries) {
		const struct hvm_memmap_entry *e = &boot.e820[boot.e820_entries - 1 - e820_cursor];
		u64 lo = ALIGN_UP(e->addr, PAGE_SIZE), hi = ALIGN_DOWN(e->addr + e->size, PAGE_SIZE);
		if (e->type == E820_RAM && lo < hi) {
			if (!page_cursor || page_cursor > hi - PAGE_SIZE)
				page_cursor = hi - PAGE_SIZE;
			for (; page_cursor >= lo && page_cursor >= 1 * MiB; page_cursor -= PAGE_SIZE)
				if (!protect_overlaps(page_cursor, PAGE_SIZE)) {
					*out = page_cursor;
					page_cursor -= PAGE_SIZE;
					return true;
				}
		}
		e820_cursor++;
		page_cursor = 0;
	}
	return false;
}

static void bal_send(u32 queue, u32 n)
{
	u32 written;

	if (virtio_request(&bal, queue, bal_batch, n * 4, 0, 0, &written) < 0)
		check_error(&checks[CHK_BALLOON], "%s of %u pages: no answer status=0x%x",
			    queue ? "deflate" : "inflate", n, virtio_status(&bal));
}

static bool bal_follow(void)
{
	static u32 short_of;	/* a target the guest could not reach: said once */
	u32 target = bal_present ? virtio_config32(&bal, 0) : 0, start = bal_n, zero_bad = 0;

	if (!bal_present || target == bal_n || (short_of && target == short_of))
		return false;
	while (target > bal_n) {
		u32 n = 0;
		u64 page;
		while (n < BALLOON_BATCH && bal_n + n < target && bal_n + n < BALLOON_MAX &&
		       spare_page(&page)) {
			/* The page is in use before it goes: the host must see it freed. */
			*(volatile u64 *)(uintptr_t)page = pattern(page);
			bal_batch[n++] = (u32)(page >> 12);
		}
		if (!n)
			break;
		bal_send(0, n);
		memcpy(&bal_pfns[bal_n], bal_batch, n * 4);
		bal_n += n;
	}
	while (target < bal_n) {
		u32 n = bal_n - target < BALLOON_BATCH ? bal_n - target : BALLOON_BATCH;
		memcpy(bal_batch, &bal_pfns[bal_n - n], n * 4);
		bal_send(1, n);
		bal_n -= n;
		/* Given back to the host and refaulted: it reads zero. */
		for (u32 i = 0; i < n; i++)
			if (*(volatile u64 *)((uintptr_t)bal_batch[i] << 12))
				zero_bad++;
	}
	if (bal_n < start) {
		/* Pages go in top-down order, so the balloon holds the first bal_n spare pages:
		 * start again from the top past them, and the deflated ones are spare again. */
		u64 page;
		e820_cursor = 0;
		page_cursor = 0;
		for (u32 i = 0; i < bal_n; i++)
			spare_page(&page);
	}
	if (zero_bad)
		check_error(&checks[CHK_ZERO], "%u deflated pages did not read zero", zero_bad);
	short_of = bal_n < target ? target : 0;
	virtio_config_write32(&bal, 4, bal_n);
	printf("balloon seq=%lu target=0x%lx actual=0x%lx was=0x%lx deflated_not_zero=%u\n", ++seq,
	       (u64)target << 12, (u64)bal_n << 12, (u64)start << 12, zero_bad);
	return true;
}

static void bal_open(const struct acpi_dev *a)
{
	const char *why = "";

	if (virtio_open(&bal, a->base, VIRTIO_ID_BALLOON, BALLOON_F_REPORTING, &why) < 0 ||
	    virtio_queue(&bal, 0, bal_rings[0], 8, &why) < 0 ||
	    virtio_queue(&bal, 1, bal_rings[1], 8, &why) < 0 ||
	    ((bal.features & BALLOON_F_REPORTING) && virtio_queue(&bal, 2, bal_rings[2], 8, &why) < 0)) {
		if (strcmp(why, "other device id"))
			check_error(&checks[CHK_BALLOON], "base=0x%lx %s", a->base, why);
		return;
	}
	virtio_ready(&bal);
	bal_present = true;
	printf("balloon_dev base=0x%lx irq=%u features=0x%lx num_pages=%u\n", a->base, a->irq,
	       bal.offered, virtio_config32(&bal, 0));
}

/*
 * report_free=SIZE (with VIRTIO_BALLOON_F_REPORTING): hand SIZE bytes of spare boot RAM to the
 * host as free, in runs from the bottom of RAM up (the balloon takes from the top), as Linux's
 * free page reporting does; the host must give them back.
 */
static void report_free(u64 want)
{
	u64 done = 0, ranges = 0;
	u32 written;

	if (!(bal.features & BALLOON_F_REPORTING)) {
		check_error(&checks[CHK_BALLOON], "report_free: VIRTIO_BALLOON_F_REPORTING not offered");
		return;
	}
	for (u32 i = 0; i < boot.e820_entries && done < want; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		u64 a = ALIGN_UP(e->addr > 16 * MiB ? e->addr : 16 * MiB, BALLOON_REPORT_RUN);
		for (; e->type == E820_RAM && done < want && a + BALLOON_REPORT_RUN <= e->addr + e->size;
		     a += BALLOON_REPORT_RUN) {
			if (protect_overlaps(a, BALLOON_REPORT_RUN))
				continue;
			if (virtio_request(&bal, 2, 0, 0, (void *)(uintptr_t)a, BALLOON_REPORT_RUN,
					   &written) < 0) {
				check_error(&checks[CHK_BALLOON], "report of 0x%lx: no answer", a);
				return;
			}
			done += BALLOON_REPORT_RUN;
			ranges++;
		}
	}
	printf("free_report bytes=0x%lx ranges=%lu\n", done, ranges);
}

/* fill=1: write every spare page of boot RAM first, so the host holds it all (balloon cases). */
static void fill_ram(void)
{
	u64 page, n = 0;

	while (spare_page(&page)) {
		*(volatile u64 *)(uintptr_t)page = pattern(page);
		n++;
	}
	e820_cursor = 0;
	page_cursor = 0;
	printf("fill pages=%lu\n", n);
}

static void pause_ms(u64 ms)
{
	u64 end = rdtsc() + ms * (boot.tsc_khz ? boot.tsc_khz : 1000000);

	while (rdtsc() < end)
		__asm__ volatile("pause");
}

int main(void)
{
	const struct acpi_header *dsdt = acpi_find_dsdt();
	struct acpi_dev devs[MAX_MEM], ctl;
	char arg[24];
	u64 cycles = 0;

	print_boot_info();
	if (!dsdt) {
		printf("FAIL: no DSDT\n");
		return EXIT_FATAL;
	}
	int n = acpi_find_hid(dsdt, "LNRO0005", devs, MAX_MEM);
	for (int i = 0; i < n; i++) {
		if (!devs[i].has_base || devs[i].size < 0x200)
			continue;
		if (mmio_read32(devs[i].base + 8) == VIRTIO_ID_BALLOON && !bal_present)
			bal_open(&devs[i]);
		else
			mem_open(&devs[i]);
	}
	if (acpi_find_device(dsdt, "MHPC", &ctl) && ctl.has_base && ctl.size >= 0x18) {
		mhpc = ctl.base;
		paging_map(mhpc + 0x18);
	}
	if (cmdline_get(boot.cmdline, "cycles", arg, sizeof(arg)) && !parse_size(arg, &cycles)) {
		printf("FAIL: cycles=%s\n", arg);
		return EXIT_FATAL;
	}
	if (cmdline_flag(boot.cmdline, "fill"))
		fill_ram();
	if (cmdline_get(boot.cmdline, "report_free", arg, sizeof(arg))) {
		u64 size;
		if (!parse_size(arg, &size) || !bal_present) {
			printf("FAIL: report_free=%s needs a size and a balloon\n", arg);
			return EXIT_FATAL;
		}
		report_free(size);
	}
	printf("resize_guest devices=%d mhpc=0x%lx balloon=%d cycles=%lu\n", nmem, mhpc, bal_present,
	       cycles);
	for (int i = 0; i < nmem; i++)
		mem_follow(&mem[i]);
	bal_follow();
	if (cycles && nmem)
		mem_cycles(&mem[0], cycles);
	checks_report(checks, CHK_COUNT);
	/* From here on: follow the host's requests until it stops the VM. */
	for (;;) {
		bool changed = dimm_poll() | bal_follow();
		for (int i = 0; i < nmem; i++)
			changed |= mem_follow(&mem[i]);
		if (changed)
			checks_report(checks, CHK_COUNT);
		pause_ms(2);
	}
}
