/*
 * Guest physical layout: where each zone's boot RAM, the ACPI hotplug area and the virtio-mem
 * regions live, the E820 map derived from it, and its JSON form for --print-layout.
 *
 * Everything here is pure computation on the validated configuration: the backings, KVM slots,
 * ACPI tables and FDT all read struct layout, so this file is the one place addresses are chosen.
 * Which NUMA node a range belongs to is numa.h's rule, not this file's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "memory/layout.h"
#include "memory/numa.h"
#include "util.h"

#define LIMIT_MSG "guest memory would end beyond the %llu GiB address limit"

int layout__first_node(const struct vm_config *cfg)
{
	return numa__default_node(cfg);
}

const char *layout__kind_name(enum range_kind kind)
{
	switch (kind) {
	case RANGE_RAM:
		return "ram";
	case RANGE_ACPI_HOTPLUG:
		return "acpi-hotplug";
	case RANGE_VIRTIO_MEM:
		return "virtio-mem";
	}
	return "unknown";
}

static int add_range(struct layout *l, enum range_kind kind, uint64_t gpa, uint64_t size, int zone,
		     uint64_t zone_offset, int guest_node, char *err, size_t errlen)
{
	if (l->nranges >= MAX_RANGES)
		return error(err, errlen, "--memory-zone: too many memory ranges (at most %d)",
			     MAX_RANGES);
	l->ranges[l->nranges++] = (struct mem_range){
		.kind = kind,
		.gpa = gpa,
		.size = size,
		.zone = zone,
		.zone_offset = zone_offset,
		.guest_node = guest_node,
	};
	return 0;
}

/*
 * Whether [gpa, gpa + size) ends beyond LAYOUT_MAX_GPA. Both operands are at most LAYOUT_MAX_GPA
 * when it does not, so later sums cannot overflow 64 bits.
 */
static bool beyond_limit(uint64_t gpa, uint64_t size)
{
	return size > LAYOUT_MAX_GPA || gpa > LAYOUT_MAX_GPA - size;
}

/* Boot RAM of one zone from *cursor on, split around the 32-bit MMIO hole. */
static int place_zone(struct layout *l, const struct vm_config *cfg, int zi, uint64_t *cursor,
		      char *err, size_t errlen)
{
	const struct zone_config *z = &cfg->zones[zi];
	uint64_t gpa = *cursor, off = 0, left = z->size;

	if (!IS_ALIGNED(z->size, LAYOUT_PAGE_ALIGN))
		return config__zone_error(cfg, z, err, errlen, "size=%s: not a multiple of 4 KiB",
				  config__size_str(z->size).s);
	while (left) {
		uint64_t chunk = left;

		if (gpa >= MMIO32_START && gpa < MMIO32_END)
			gpa = RAM_64BIT_START;
		if (gpa < MMIO32_START && chunk > MMIO32_START - gpa)
			chunk = MMIO32_START - gpa;
		if (beyond_limit(gpa, chunk))
			return config__zone_error(cfg, z, err, errlen, "size=%s: " LIMIT_MSG, config__size_str(z->size).s,
					  LAYOUT_MAX_GPA / GiB);
		if (add_range(l, RANGE_RAM, gpa, chunk, zi, off, numa__zone_node(cfg, zi), err, errlen))
			return -1;
		gpa += chunk;
		off += chunk;
		left -= chunk;
	}
	*cursor = gpa;
	return 0;
}

/*
 * Hotplug areas always start at or above 4 GiB, as in Cloud Hypervisor: below the hole they would
 * compete with boot RAM growth and with 32-bit MMIO, and a guest that sees a hotpluggable SRAT
 * range below 4 GiB gains nothing from it.
 */
static uint64_t hotplug_start(uint64_t cursor)
{
	if (cursor < RAM_64BIT_START)
		cursor = RAM_64BIT_START;
	return ALIGN_UP(cursor, HOTPLUG_ALIGN);
}

int layout__build(struct layout *l, const struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t cursor = 0;

	memset(l, 0, sizeof(*l));
	if (cfg->nzones < 0 || cfg->nzones > MAX_ZONES)
		return error(err, errlen, "--memory-zone: at most %d zones", MAX_ZONES);

	for (int i = 0; i < cfg->nzones; i++) {
		if (place_zone(l, cfg, i, &cursor, err, errlen))
			return -1;
		l->boot_ram += cfg->zones[i].size;
	}
	/*
	 * The boot data below 1 MiB and the start of the kernel are written through one host
	 * mapping, so the RAM range at 0 alone must cover them. It belongs to the first zone with
	 * boot RAM, whose size is what the user has to change.
	 */
	if (l->nranges == 0 || l->ranges[0].size < LAYOUT_MIN_BOOT_RAM) {
		const struct zone_config *z = &cfg->zones[l->nranges ? l->ranges[0].zone : 0];

		if (!cfg->nzones)
			return error(err, errlen, "--memory: size=0: the first memory zone needs "
				     "at least %llu MiB", LAYOUT_MIN_BOOT_RAM / MiB);
		return config__zone_error(cfg, z, err, errlen, "size=%s: the first memory zone needs at "
				  "least %llu MiB", config__size_str(z->size).s, LAYOUT_MIN_BOOT_RAM / MiB);
	}
	l->ram_end = cursor;

	if (cfg->memory.hotplug_size && cfg->memory.hotplug_method == HOTPLUG_ACPI) {
		uint64_t size = cfg->memory.hotplug_size;

		cursor = hotplug_start(cursor);
		if (!IS_ALIGNED(size, LAYOUT_PAGE_ALIGN))
			return error(err, errlen, "--memory: hotplug_size=%s: not a multiple of 4 KiB",
				     config__size_str(size).s);
		if (beyond_limit(cursor, size))
			return error(err, errlen, "--memory: hotplug_size=%s: " LIMIT_MSG, config__size_str(size).s,
				     LAYOUT_MAX_GPA / GiB);
		if (add_range(l, RANGE_ACPI_HOTPLUG, cursor, size, -1, 0, numa__default_node(cfg),
			      err, errlen))
			return -1;
		cursor += size;
	}
	for (int i = 0; i < cfg->nzones; i++) {
		const struct zone_config *z = &cfg->zones[i];

		if (!z->hotplug_size)
			continue;
		cursor = hotplug_start(cursor);
		if (!IS_ALIGNED(z->hotplug_size, LAYOUT_PAGE_ALIGN))
			return config__zone_error(cfg, z, err, errlen, "hotplug_size=%s: not a multiple of "
					  "4 KiB", config__size_str(z->hotplug_size).s);
		if (beyond_limit(cursor, z->hotplug_size))
			return config__zone_error(cfg, z, err, errlen, "hotplug_size=%s: " LIMIT_MSG,
					  config__size_str(z->hotplug_size).s, LAYOUT_MAX_GPA / GiB);
		/* The zone's mapping is [boot RAM][virtio-mem region]: offset = boot size. */
		if (add_range(l, RANGE_VIRTIO_MEM, cursor, z->hotplug_size, i, z->size,
			      numa__zone_node(cfg, i), err, errlen))
			return -1;
		cursor += z->hotplug_size;
	}
	l->end = cursor;
	return 0;
}

/* Append an entry, merging it with the previous one when they touch and have the same type. */
static int e820_add(struct e820_entry *out, int n, int max, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end <= addr)
		return n;
	if (n > 0 && out[n - 1].type == type && out[n - 1].addr + out[n - 1].size == addr) {
		out[n - 1].size += end - addr;
		return n;
	}
	if (n >= max)
		return -1;
	out[n] = (struct e820_entry){ .addr = addr, .size = end - addr, .type = type };
	return n + 1;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/*
 * Only boot RAM is usable: hotplug areas are described by SRAT and FDT instead, as firmware does
 * for hotpluggable memory, so that the guest does not use them before they are plugged. The
 * legacy VGA/BIOS window is reported as reserved rather than left out so that the ACPI tables
 * at 0xe0000 lie in a range the guest keeps its hands off.
 */
int layout__e820(const struct layout *l, struct e820_entry *out, int max)
{
	int n = 0;

	for (int i = 0; i < l->nranges && n >= 0; i++) {
		const struct mem_range *r = &l->ranges[i];
		uint64_t a = r->gpa, b = r->gpa + r->size;

		if (r->kind != RANGE_RAM)
			continue;
		if (a < LOW_RAM_END)
			n = e820_add(out, n, max, a, min_u64(b, LOW_RAM_END), E820_RAM);
		if (n >= 0 && a < HIGH_RAM_START && b > LOW_RAM_END)
			n = e820_add(out, n, max, max_u64(a, LOW_RAM_END),
				     min_u64(b, HIGH_RAM_START), E820_RESERVED);
		if (n >= 0 && b > HIGH_RAM_START)
			n = e820_add(out, n, max, max_u64(a, HIGH_RAM_START), b, E820_RAM);
	}
	return n;
}

/* Zone ids come from the command line: escape them rather than trust validation. */
static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void layout__print_json(const struct layout *l, const struct vm_config *cfg, FILE *out)
{
	struct e820_entry e820[MAX_RANGES * 3];
	int ne = layout__e820(l, e820, (int)ARRAY_SIZE(e820));

	fprintf(out, "{\"boot_ram\":%" PRIu64 ",\"ram_end\":%" PRIu64 ",\"end\":%" PRIu64 ",",
		l->boot_ram, l->ram_end, l->end);
	fputs("\"ranges\":[", out);
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		fprintf(out, "%s{\"kind\":\"%s\",\"gpa\":%" PRIu64 ",\"size\":%" PRIu64 ",\"zone\":",
			i ? "," : "", layout__kind_name(r->kind), r->gpa, r->size);
		if (r->zone >= 0 && r->zone < cfg->nzones)
			json_string(out, cfg->zones[r->zone].id);
		else
			fputs("null", out);
		fprintf(out, ",\"zone_offset\":%" PRIu64 ",\"guest_numa_id\":", r->zone_offset);
		if (r->guest_node >= 0 && r->guest_node < cfg->nnuma)
			fprintf(out, "%" PRIu32, cfg->numa[r->guest_node].guest_numa_id);
		else
			fputs("null", out);
		fputc('}', out);
	}
	fputs("],\"e820\":[", out);
	for (int i = 0; i < ne; i++)
		fprintf(out, "%s{\"addr\":%" PRIu64 ",\"size\":%" PRIu64 ",\"type\":%" PRIu32 "}",
			i ? "," : "", e820[i].addr, e820[i].size, e820[i].type);
	fprintf(out, "],\"mmio32\":{\"start\":%llu,\"end\":%llu}}\n", MMIO32_START, MMIO32_END);
}
