/*
 * fault: touch memory page by page and report the cost per page from the TSC.
 * Region A is touched with a 4 KiB stride, then region B (a different one) with a 2 MiB
 * stride; each twice, first touch (the VMM/host must provide the page) and second touch
 * (already mapped) reported separately. Command line: size=<bytes>[K|M|G] per region.
 * Output format: guests/README.md.
 *
 * Reading the TSC is not free, and under some hypervisors (PVM, which emulates a guest that
 * is not PVM-aware) one read costs microseconds, more than the touch it would time. So its cost is
 * measured first, touches are timed in batches with one read per batch, the reads' cost is
 * taken out of every figure, and a per-touch minimum and maximum are given only when a read
 * is cheap next to a touch.
 */
#include "guest.h"

const char guest_banner[] = "memvisor-fault 1";

#define DEFAULT_SIZE	(64 * MiB)
#define REGION_ALIGN	(2 * MiB)
#define DEBUG_PHASE	0x10	/* + 2 * phase at its start, + 1 at its end */
#define TIMER_PAIRS	64	/* back-to-back read pairs measured at start */
#define TIMER_LOOP	64	/* reads in a row, for the cost of one read in a loop */
#define PROBE_DIV	64	/* the probe is 1/64 of a phase, so batches are at most 63 */
#define CHEAP		10	/* a read is cheap next to what it times below 1/CHEAP of it */
#define FLOOR_RUNS	8	/* the cheapest run: a run the vCPU was preempted in is no floor */
#define FLOOR_TOUCHES	512

/* What one timer read adds to an interval between two reads: the median back-to-back delta. */
static u64 timer_cycles;

/* A 2 MiB aligned range of size bytes of usable RAM above the image, clear of [avoid, avoid_end) */
static bool find_region(u64 size, u64 avoid, u64 avoid_end, u64 *base)
{
	for (u32 i = 0; i < boot.e820_entries; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		if (e->type != E820_RAM)
			continue;
		u64 lo = e->addr > boot.heap_end ? e->addr : boot.heap_end;
		for (u64 b = ALIGN_UP(lo, REGION_ALIGN); b + size <= e->addr + e->size && b + size > b;
		     b += REGION_ALIGN) {
			if (!protect_overlaps(b, size) && (b >= avoid_end || b + size <= avoid)) {
				*base = b;
				return true;
			}
		}
	}
	return false;
}

static void sort_u64(u64 *v, int n)
{
	for (int i = 1; i < n; i++) {
		u64 x = v[i];
		int j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* cycles in thousandths of a ns, split so that a long phase cannot overflow 64 bits */
static u64 ns_milli(u64 cycles)
{
	return cycles / boot.tsc_khz * 1000000000UL + cycles % boot.tsc_khz * 1000000000UL / boot.tsc_khz;
}

static void print_ns(const char *name, u64 milli)
{
	printf(" %s=%lu.%03lu", name, milli / 1000, milli % 1000);
}

/* Subtracting measured timer costs can undershoot by the timer's jitter: never below 0. */
static u64 net(u64 cycles, u64 reads)
{
	u64 t = reads * timer_cycles;
	return cycles > t ? cycles - t : 0;
}

static void timer_calibrate(void)
{
	u64 d[TIMER_PAIRS];

	rdtsc();	/* the first read may take a slow path (cold code, first exit) */
	for (int i = 0; i < TIMER_PAIRS; i++) {
		u64 a = rdtsc();
		d[i] = rdtsc() - a;
	}
	sort_u64(d, TIMER_PAIRS);
	timer_cycles = d[TIMER_PAIRS / 2];
	u64 t0 = rdtsc(), t = t0;
	for (int i = 0; i < TIMER_LOOP; i++)
		t = rdtsc();
	printf("timer source=rdtsc pairs=%d cycles=%lu min=%lu max=%lu loop=%d loop_avg=%lu",
	       TIMER_PAIRS, timer_cycles, d[0], d[TIMER_PAIRS - 1], TIMER_LOOP, (t - t0) / TIMER_LOOP);
	if (boot.tsc_khz)
		print_ns("ns", ns_milli(timer_cycles));
	else
		printf(" ns=unknown");
	printf("\n");
}

static inline void touch_page(u64 a, int touch)
{
	*(volatile u64 *)(uintptr_t)a = a + touch;
}

/* Not inlined: the floor and every batch then run the very same instructions. */
static __attribute__((noinline)) void touch_run(u64 base, u64 stride, u64 n, int touch)
{
	for (u64 i = 0; i < n; i++)
		touch_page(base + i * stride, touch);
}

/*
 * The touch loop on one word of our own stack, mapped and cached: the cheapest a touch can
 * be on this machine. Natively a cycle or two; when the hypervisor emulates the guest's
 * instructions (PVM with a guest that is not PVM-aware) it is the emulation's cost, and no
 * page figure can be read as a memory cost below it.
 */
static void touch_floor(void)
{
	u64 word = 0, work = ~0UL;

	touch_run((uintptr_t)&word, 0, 1, 0);
	for (int i = 0; i < FLOOR_RUNS; i++) {
		u64 t0 = rdtsc();
		touch_run((uintptr_t)&word, 0, FLOOR_TOUCHES, 0);
		u64 w = net(rdtsc() - t0, 1);
		if (w < work)
			work = w;
	}
	printf("touch_floor runs=%d touches=%d avg=%lu", FLOOR_RUNS, FLOOR_TOUCHES, work / FLOOR_TOUCHES);
	if (boot.tsc_khz)
		print_ns("ns_avg", ns_milli(work) / FLOOR_TOUCHES);
	else
		printf(" ns_avg=unknown");
	printf("\n");
}

/*
 * One pass over the region. The first ceil(pages/64) touches (the probe) are timed as one
 * batch, which tells how costly a touch is next to a timer read; that decides how the rest is
 * timed: with a read after every touch when a read costs under a tenth of a touch, else in
 * batches big enough for a read to be under a tenth of a batch (at least the probe's size).
 */
static void phase(int n, u64 base, u64 size, u64 stride, int touch)
{
	u64 count = size / stride, probe = (count + PROBE_DIV - 1) / PROBE_DIV;
	u64 avgs[PROBE_DIV], tmin = ~0UL, tmax = 0, reads = 1, batch;
	int nb = 0;

	debug_mark(DEBUG_PHASE + 2 * n);
	u64 start = rdtsc();
	touch_run(base, stride, probe, touch);
	u64 t = rdtsc();
	reads++;
	u64 probe_avg = net(t - start, 1) / probe;
	bool per_touch = probe_avg > CHEAP * timer_cycles;
	if (per_touch) {
		batch = probe;
	} else {
		/* A probe lost in the timer's jitter tells no size: the rest is one batch. */
		batch = probe_avg ? (CHEAP * timer_cycles + probe_avg - 1) / probe_avg : count;
		if (batch < probe)
			batch = probe;
	}
	for (u64 i = probe; i < count; i += batch) {
		u64 m = count - i < batch ? count - i : batch, t0 = t;
		if (per_touch) {
			for (u64 j = 0; j < m; j++) {
				touch_page(base + (i + j) * stride, touch);
				u64 now = rdtsc(), d = net(now - t, 1);
				t = now;
				if (d < tmin)
					tmin = d;
				if (d > tmax)
					tmax = d;
			}
			reads += m;
			avgs[nb++] = net(t - t0, m) / m;
		} else {
			touch_run(base + i * stride, stride, m, touch);
			t = rdtsc();
			reads++;
			avgs[nb++] = net(t - t0, 1) / m;
		}
	}
	debug_mark(DEBUG_PHASE + 2 * n + 1);

	u64 cycles = t - start, work = net(cycles, reads - 1), avg = work / count;
	/* Judged on the whole phase: the probe alone may have been unlucky. */
	bool per_touch_ok = per_touch && avg > CHEAP * timer_cycles;
	printf("fault stride=0x%lx touch=%d base=0x%lx size=0x%lx pages=%lu cycles=%lu",
	       stride, touch, base, size, count, cycles);
	if (per_touch_ok)
		printf(" min=%lu", tmin);
	printf(" avg=%lu", avg);
	if (per_touch_ok)
		printf(" max=%lu", tmax);
	if (boot.tsc_khz)
		print_ns("ns_avg", ns_milli(work) / count);
	else
		printf(" ns_avg=unknown");
	printf(" reads=%lu timer_pct=%lu per_touch=%s probe=%lu probe_avg=%lu",
	       reads, cycles ? (cycles - work) * 100 / cycles : 0, per_touch_ok ? "ok" : "unreliable",
	       probe, probe_avg);
	if (nb) {
		sort_u64(avgs, nb);
		printf(" batch=%lu batches=%d batch_min=%lu batch_med=%lu batch_max=%lu",
		       batch, nb, avgs[0], avgs[nb / 2], avgs[nb - 1]);
	}
	printf("\n");
}

int main(void)
{
	char arg[32];
	u64 size = DEFAULT_SIZE, a, b;

	print_boot_info();
	if (cmdline_get(boot.cmdline, "size", arg, sizeof(arg)) &&
	    (!parse_size(arg, &size) || !size || size % REGION_ALIGN)) {
		printf("FAIL: cmdline size=%s is not a non-zero multiple of 2M\nSUMMARY: FAIL 1\n", arg);
		return EXIT_FATAL;
	}
	if (!find_region(size, 0, 0, &a) || !find_region(size, a, a + size, &b)) {
		printf("FAIL: memory two regions of size=0x%lx do not fit in usable RAM\nSUMMARY: FAIL 1\n", size);
		return EXIT_FATAL;
	}
	paging_map(b + size > a + size ? b + size : a + size);
	printf("fault_region name=a stride=0x%lx base=0x%lx size=0x%lx\n", PAGE_SIZE, a, size);
	printf("fault_region name=b stride=0x%lx base=0x%lx size=0x%lx\n", 2 * MiB, b, size);
	timer_calibrate();
	touch_floor();
	phase(0, a, size, PAGE_SIZE, 1);
	phase(1, a, size, PAGE_SIZE, 2);
	phase(2, b, size, 2 * MiB, 1);
	phase(3, b, size, 2 * MiB, 2);
	printf("SUMMARY: ok\n");
	return EXIT_OK;
}
