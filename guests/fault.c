/*
 * fault: touch memory page by page and report the cost per page from the TSC.
 * Region A is touched with a 4 KiB stride, then region B (a different one) with a 2 MiB
 * stride; each twice, first touch (the VMM/host must provide the page) and second touch
 * (already mapped) reported separately. Command line: size=<bytes>[K|M|G] per region.
 * Output format: guests/README.md.
 */
#include "guest.h"

const char guest_banner[] = "memvisor-fault 1";

#define DEFAULT_SIZE	(64 * MiB)
#define REGION_ALIGN	(2 * MiB)
#define DEBUG_PHASE	0x10	/* + 2 * phase at its start, + 1 at its end */

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

static void phase(int n, u64 base, u64 size, u64 stride, int touch)
{
	u64 count = size / stride, min = ~0UL, max = 0;

	debug_mark(DEBUG_PHASE + 2 * n);
	u64 start = rdtsc(), prev = start;
	for (u64 i = 0; i < count; i++) {
		u64 a = base + i * stride;
		*(volatile u64 *)(uintptr_t)a = a + touch;
		u64 now = rdtsc(), d = now - prev;
		prev = now;
		if (d < min)
			min = d;
		if (d > max)
			max = d;
	}
	debug_mark(DEBUG_PHASE + 2 * n + 1);
	u64 cycles = prev - start, avg = count ? cycles / count : 0;
	printf("fault stride=0x%lx touch=%d base=0x%lx size=0x%lx pages=%lu cycles=%lu min=%lu avg=%lu max=%lu",
	       stride, touch, base, size, count, cycles, count ? min : 0, avg, max);
	if (boot.tsc_khz && count) {
		u64 ns_milli = cycles * 1000000 / boot.tsc_khz * 1000 / count;	/* ns * 1000 per page */
		printf(" ns_avg=%lu.%03lu\n", ns_milli / 1000, ns_milli % 1000);
	} else {
		printf(" ns_avg=unknown\n");
	}
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
	phase(0, a, size, PAGE_SIZE, 1);
	phase(1, a, size, PAGE_SIZE, 2);
	phase(2, b, size, 2 * MiB, 1);
	phase(3, b, size, 2 * MiB, 2);
	printf("SUMMARY: ok\n");
	return EXIT_OK;
}
