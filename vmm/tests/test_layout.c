/*
 * layout__build, layout__e820 and layout__print_json: placement of zones around the 32-bit hole,
 * hotplug areas, limits, the E820 map and the JSON that tools parse. Configurations are built by
 * hand so that these tests do not depend on the command-line parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "memory/layout.h"
#include "util.h"

/* ---- helpers ---- */

static void cfg_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->boot_cpus = c->max_cpus = 1;
}

static int add_zone(struct vm_config *c, const char *id, uint64_t size, uint64_t hotplug)
{
	struct zone_config *z = &c->zones[c->nzones];

	snprintf(z->id, sizeof(z->id), "%s", id);
	z->size = size;
	z->hotplug_size = hotplug;
	z->host_numa_node = -1;
	z->guest_node = -1;
	return c->nzones++;
}

static int add_node(struct vm_config *c, uint32_t id)
{
	c->numa[c->nnuma].guest_numa_id = id;
	return c->nnuma++;
}

static void build_ok(struct layout *l, const struct vm_config *c)
{
	char err[256] = "";

	if (layout__build(l, c, err, sizeof(err)) != 0)
		fail_msg("layout__build failed: %s", err);
}

static void build_fails(const struct vm_config *c, const char *expect)
{
	static struct layout l;
	char err[256] = "";

	assert_int_equal(layout__build(&l, c, err, sizeof(err)), -1);
	if (!strstr(err, expect))
		fail_msg("error '%s' does not mention '%s'", err, expect);
	/* one line, "--option: reason", as main prints it */
	assert_true(strncmp(err, "--memory", 8) == 0);
	assert_null(strchr(err, '\n'));
}

static void assert_range(const struct mem_range *r, enum range_kind kind, uint64_t gpa,
			 uint64_t size, int zone, uint64_t zone_offset)
{
	assert_int_equal(r->kind, kind);
	assert_int_equal(r->gpa, gpa);
	assert_int_equal(r->size, size);
	assert_int_equal(r->zone, zone);
	assert_int_equal(r->zone_offset, zone_offset);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Properties every layout has, whatever the configuration. */
static void check_invariants(const struct layout *l, const struct vm_config *c)
{
	uint64_t boot = 0, ram_end = 0, end = 0, zone_seen[MAX_ZONES] = { 0 };
	int last_ram_zone = -1;

	assert_true(l->nranges > 0 && l->nranges <= MAX_RANGES);
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		assert_true(r->size > 0);
		assert_true(IS_ALIGNED(r->gpa, LAYOUT_PAGE_ALIGN));
		assert_true(IS_ALIGNED(r->size, LAYOUT_PAGE_ALIGN));
		assert_false(overlaps(r->gpa, r->size, MMIO32_START, MMIO32_END - MMIO32_START));
		assert_true(r->gpa + r->size <= LAYOUT_MAX_GPA);
		if (i > 0) {
			const struct mem_range *p = &l->ranges[i - 1];

			assert_true(p->gpa + p->size <= r->gpa);	/* sorted, disjoint */
		}
		if (r->kind == RANGE_RAM) {
			assert_true(r->zone >= 0 && r->zone < c->nzones);
			/* zones in command-line order, each one's pieces contiguous in its mapping */
			assert_true(r->zone >= last_ram_zone);
			assert_int_equal(r->zone_offset, zone_seen[r->zone]);
			zone_seen[r->zone] += r->size;
			last_ram_zone = r->zone;
			boot += r->size;
			ram_end = r->gpa + r->size;
		} else {
			assert_true(r->gpa >= l->ram_end);
			assert_true(r->gpa >= RAM_64BIT_START);
			assert_true(IS_ALIGNED(r->gpa, HOTPLUG_ALIGN));
			if (r->kind == RANGE_VIRTIO_MEM) {
				assert_true(r->zone >= 0);
				assert_int_equal(r->zone_offset, c->zones[r->zone].size);
				assert_int_equal(r->size, c->zones[r->zone].hotplug_size);
			} else {
				assert_int_equal(r->zone, -1);
				assert_int_equal(r->size, c->memory.hotplug_size);
			}
		}
		end = r->gpa + r->size;
	}
	for (int z = 0; z < c->nzones; z++)
		assert_int_equal(zone_seen[z], c->zones[z].size);
	assert_int_equal(l->boot_ram, boot);
	assert_int_equal(l->ram_end, ram_end);
	assert_int_equal(l->end, end);
}

/* ---- placement ---- */

static void test_single_zone(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	c.memory.size = 512 * MiB;
	add_zone(&c, DEFAULT_ZONE_ID, 512 * MiB, 0);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 1);
	assert_range(&l.ranges[0], RANGE_RAM, 0, 512 * MiB, 0, 0);
	assert_int_equal(l.ranges[0].guest_node, -1);
	assert_int_equal(l.boot_ram, 512 * MiB);
	assert_int_equal(l.ram_end, 512 * MiB);
	assert_int_equal(l.end, 512 * MiB);
	check_invariants(&l, &c);
}

static void test_zone_split_across_hole(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	add_zone(&c, "big", 4 * GiB, 0);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 2);
	assert_range(&l.ranges[0], RANGE_RAM, 0, 3 * GiB, 0, 0);
	assert_range(&l.ranges[1], RANGE_RAM, 4 * GiB, 1 * GiB, 0, 3 * GiB);
	assert_int_equal(l.boot_ram, 4 * GiB);
	assert_int_equal(l.ram_end, 5 * GiB);
	check_invariants(&l, &c);
}

/* A zone ending exactly at 3 GiB is not split; the next one starts at 4 GiB. */
static void test_zone_ends_at_hole(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	add_zone(&c, "a", 1 * GiB, 0);
	add_zone(&c, "b", 2 * GiB, 0);
	add_zone(&c, "c", 1 * GiB, 0);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 3);
	assert_range(&l.ranges[0], RANGE_RAM, 0, 1 * GiB, 0, 0);
	assert_range(&l.ranges[1], RANGE_RAM, 1 * GiB, 2 * GiB, 1, 0);
	assert_range(&l.ranges[2], RANGE_RAM, 4 * GiB, 1 * GiB, 2, 0);
	check_invariants(&l, &c);
}

static void test_several_zones_middle_split(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	add_zone(&c, "a", 1 * GiB, 0);
	add_zone(&c, "b", 3 * GiB, 0);
	add_zone(&c, "c", 512 * MiB, 0);
	add_zone(&c, "d", 2 * MiB, 0);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 5);
	assert_range(&l.ranges[0], RANGE_RAM, 0, 1 * GiB, 0, 0);
	assert_range(&l.ranges[1], RANGE_RAM, 1 * GiB, 2 * GiB, 1, 0);
	assert_range(&l.ranges[2], RANGE_RAM, 4 * GiB, 1 * GiB, 1, 2 * GiB);
	assert_range(&l.ranges[3], RANGE_RAM, 5 * GiB, 512 * MiB, 2, 0);
	assert_range(&l.ranges[4], RANGE_RAM, 5 * GiB + 512 * MiB, 2 * MiB, 3, 0);
	assert_int_equal(l.boot_ram, 4 * GiB + 514 * MiB);
	check_invariants(&l, &c);
}

/* Hotplug areas never sit below the hole, even when boot RAM ends far below it. */
static void test_acpi_hotplug_above_4g(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	c.memory.size = 1 * GiB + 2 * MiB;
	c.memory.hotplug_size = 1 * GiB;
	c.memory.hotplug_method = HOTPLUG_ACPI;
	add_zone(&c, DEFAULT_ZONE_ID, 1 * GiB + 2 * MiB, 0);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 2);
	assert_range(&l.ranges[1], RANGE_ACPI_HOTPLUG, 4 * GiB, 1 * GiB, -1, 0);
	assert_int_equal(l.ranges[1].guest_node, -1);
	assert_int_equal(l.ram_end, 1 * GiB + 2 * MiB);
	assert_int_equal(l.end, 5 * GiB);
	check_invariants(&l, &c);
}

static void test_hotplug_alignment(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	c.memory.hotplug_size = 256 * MiB;
	c.memory.hotplug_method = HOTPLUG_ACPI;
	add_zone(&c, "a", 3 * GiB + 4 * KiB, 100 * MiB);
	add_zone(&c, "b", 2 * GiB, 0);
	add_zone(&c, "c", 2 * GiB, 1 * GiB);
	build_ok(&l, &c);
	/* RAM: [0,3G) a, [4G,4G+4K) a, [4G+4K, 6G+4K) b, [6G+4K, 8G+4K) c */
	assert_int_equal(l.ram_end, 8 * GiB + 4 * KiB);
	assert_int_equal(l.nranges, 7);
	assert_range(&l.ranges[4], RANGE_ACPI_HOTPLUG, 8 * GiB + 128 * MiB, 256 * MiB, -1, 0);
	/* virtio-mem regions: zone order, each aligned after the previous area */
	assert_range(&l.ranges[5], RANGE_VIRTIO_MEM, 8 * GiB + 384 * MiB, 100 * MiB, 0,
		     3 * GiB + 4 * KiB);
	assert_range(&l.ranges[6], RANGE_VIRTIO_MEM, 8 * GiB + 512 * MiB, 1 * GiB, 2, 2 * GiB);
	assert_int_equal(l.end, 9 * GiB + 512 * MiB);
	check_invariants(&l, &c);
}

/* --memory hotplug_size with virtio-mem is a zone's region, never the ACPI area. */
static void test_virtio_mem_method_has_no_acpi_area(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c);
	c.memory.size = 1 * GiB;
	c.memory.hotplug_size = 1 * GiB;
	c.memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	add_zone(&c, DEFAULT_ZONE_ID, 1 * GiB, 1 * GiB);
	build_ok(&l, &c);
	assert_int_equal(l.nranges, 2);
	assert_range(&l.ranges[1], RANGE_VIRTIO_MEM, 4 * GiB, 1 * GiB, 0, 1 * GiB);
	check_invariants(&l, &c);
}

static void test_numa_nodes_of_ranges(void **state)
{
	static struct vm_config c;
	static struct layout l;
	int n2, n0, n1;

	(void)state;
	cfg_init(&c);
	n2 = add_node(&c, 2);
	n0 = add_node(&c, 0);	/* lowest guest_numa_id, but not index 0 */
	n1 = add_node(&c, 1);
	c.memory.hotplug_size = 128 * MiB;
	c.zones[add_zone(&c, "a", 1 * GiB, 0)].guest_node = n1;
	c.zones[add_zone(&c, "b", 3 * GiB, 128 * MiB)].guest_node = n2;
	add_zone(&c, "c", 1 * GiB, 0);	/* in no node: goes to the first node */
	build_ok(&l, &c);
	assert_int_equal(layout__first_node(&c), n0);
	assert_int_equal(l.nranges, 6);
	assert_int_equal(l.ranges[0].guest_node, n1);
	assert_int_equal(l.ranges[1].guest_node, n2);
	assert_int_equal(l.ranges[2].guest_node, n2);
	assert_int_equal(l.ranges[3].guest_node, n0);
	assert_int_equal(l.ranges[4].kind, RANGE_ACPI_HOTPLUG);
	assert_int_equal(l.ranges[4].guest_node, n0);
	assert_int_equal(l.ranges[5].kind, RANGE_VIRTIO_MEM);
	assert_int_equal(l.ranges[5].guest_node, n2);
	check_invariants(&l, &c);
}

/* ---- errors and limits ---- */

static void test_errors(void **state)
{
	static struct vm_config c;
	static struct layout l;
	char err[256];

	(void)state;
	cfg_init(&c);
	build_fails(&c, "2 MiB");	/* no zone at all */

	c.memory.size = 1 * MiB;
	add_zone(&c, DEFAULT_ZONE_ID, 1 * MiB, 0);
	build_fails(&c, "--memory: size=1M: the first memory zone needs at least 2 MiB");

	/* enough in total, but the boot data would straddle two zones' mappings */
	cfg_init(&c);
	add_zone(&c, "small", 1 * MiB, 0);
	add_zone(&c, "big", 1 * GiB, 0);
	build_fails(&c, "--memory-zone: zone 'small': size=1M: the first memory zone needs at least "
		    "2 MiB");

	/* an empty first zone (hotplug only) leaves GPA 0 to the next one */
	cfg_init(&c);
	add_zone(&c, "empty", 0, 128 * MiB);
	add_zone(&c, "big", 2 * MiB, 0);
	assert_int_equal(layout__build(&l, &c, err, sizeof(err)), 0);
	assert_int_equal(l.ranges[0].zone, 1);

	cfg_init(&c);
	add_zone(&c, "odd", 64 * MiB + 512, 0);
	build_fails(&c, "--memory-zone: zone 'odd': size=67109376: not a multiple of 4 KiB");

	cfg_init(&c);
	add_zone(&c, "a", 64 * MiB, 64 * MiB + 100);
	build_fails(&c, "--memory-zone: zone 'a': hotplug_size=67108964: not a multiple of 4 KiB");

	cfg_init(&c);
	add_zone(&c, "huge", UINT64_MAX & ~0xfffULL, 0);
	build_fails(&c, "--memory-zone: zone 'huge': size=18014398509481980K: guest memory would "
		    "end beyond the 1024 GiB address limit");

	cfg_init(&c);
	c.memory.size = 1 * GiB;
	c.memory.hotplug_size = 1024 * GiB;
	add_zone(&c, DEFAULT_ZONE_ID, 1 * GiB, 0);
	build_fails(&c, "--memory: hotplug_size=1T: guest memory would end beyond the 1024 GiB "
		    "address limit");

	/* a zone's virtio-mem region beyond the limit names that zone and key */
	cfg_init(&c);
	add_zone(&c, "a", 1 * GiB, 0);
	add_zone(&c, "b", 1 * GiB, 1024 * GiB);
	build_fails(&c, "--memory-zone: zone 'b': hotplug_size=1T: guest memory would end beyond "
		    "the 1024 GiB address limit");
}

/* The limit is inclusive: a layout ending exactly at LAYOUT_MAX_GPA is accepted. */
static void test_limit_boundary(void **state)
{
	static struct vm_config c;
	static struct layout l;
	uint64_t size = LAYOUT_MAX_GPA - (MMIO32_END - MMIO32_START);

	(void)state;
	cfg_init(&c);
	add_zone(&c, "a", size, 0);
	build_ok(&l, &c);
	assert_int_equal(l.end, LAYOUT_MAX_GPA);
	check_invariants(&l, &c);

	c.zones[0].size = size + 4 * KiB;
	build_fails(&c, "limit");

	c.zones[0].size = size - 128 * MiB;
	c.memory.hotplug_size = 128 * MiB;
	build_ok(&l, &c);
	assert_int_equal(l.end, LAYOUT_MAX_GPA);
	c.memory.hotplug_size = 256 * MiB;
	build_fails(&c, "limit");
}

/* Random configurations (fixed seed): every accepted layout satisfies the invariants. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_random_invariants(void **state)
{
	static struct vm_config c;
	static struct layout l;
	char err[256];
	int built = 0;

	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		int nz = 1 + (int)(rng() % 6);

		cfg_init(&c);
		for (int n = 0; n < (int)(rng() % 4); n++)
			add_node(&c, (uint32_t)n);
		if (rng() % 2) {
			c.memory.hotplug_size = (1 + rng() % 64) * 64 * MiB;
			c.memory.hotplug_method = rng() % 2 ? HOTPLUG_ACPI : HOTPLUG_VIRTIO_MEM;
		}
		for (int z = 0; z < nz; z++) {
			char id[16];
			uint64_t size = (rng() % 2048) * 2 * MiB + (rng() % 3 ? 0 : 4 * KiB);
			uint64_t hp = rng() % 3 ? 0 : (1 + rng() % 32) * 32 * MiB;

			snprintf(id, sizeof(id), "z%d", z);
			add_zone(&c, id, size, hp);
			if (c.nnuma)
				c.zones[z].guest_node = (int)(rng() % (uint64_t)(c.nnuma + 1)) - 1;
		}
		if (layout__build(&l, &c, err, sizeof(err)) != 0) {
			/* only a too small RAM range at 0 can fail with these sizes */
			int z = 0;

			while (z < nz - 1 && c.zones[z].size == 0)
				z++;
			assert_true(c.zones[z].size < LAYOUT_MIN_BOOT_RAM);
			assert_non_null(strstr(err, "first memory zone"));
			continue;
		}
		built++;
		check_invariants(&l, &c);
		for (int i = 0; i < l.nranges; i++) {
			if (c.nnuma)
				assert_true(l.ranges[i].guest_node >= 0 &&
					    l.ranges[i].guest_node < c.nnuma);
			else
				assert_int_equal(l.ranges[i].guest_node, -1);
		}
	}
	assert_true(built > 2900);
}

/* ---- E820 ---- */

static void assert_e820(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

static void test_e820_small(void **state)
{
	static struct vm_config c;
	static struct layout l;
	struct e820_entry e[16];

	(void)state;
	cfg_init(&c);
	add_zone(&c, DEFAULT_ZONE_ID, 512 * MiB, 0);
	build_ok(&l, &c);
	assert_int_equal(layout__e820(&l, e, 16), 3);
	assert_e820(&e[0], 0, LOW_RAM_END, E820_RAM);
	assert_e820(&e[1], LOW_RAM_END, HIGH_RAM_START - LOW_RAM_END, E820_RESERVED);
	assert_e820(&e[2], HIGH_RAM_START, 512 * MiB - HIGH_RAM_START, E820_RAM);
	/* the boot data the VMM writes: the ACPI tables must not be usable RAM */
	assert_true(ACPI_TABLES_ADDR >= LOW_RAM_END &&
		    ACPI_TABLES_ADDR + ACPI_TABLES_MAX <= HIGH_RAM_START);
}

/* Zones merge into one usable entry per side of the hole; hotplug areas are not in E820. */
static void test_e820_split_and_hotplug(void **state)
{
	static struct vm_config c;
	static struct layout l;
	struct e820_entry e[16];

	(void)state;
	cfg_init(&c);
	c.memory.hotplug_size = 1 * GiB;
	add_zone(&c, "a", 2 * MiB, 0);
	add_zone(&c, "b", 3 * GiB, 0);
	add_zone(&c, "c", 1 * GiB, 512 * MiB);
	build_ok(&l, &c);
	assert_int_equal(layout__e820(&l, e, 16), 4);
	assert_e820(&e[0], 0, LOW_RAM_END, E820_RAM);
	assert_e820(&e[1], LOW_RAM_END, HIGH_RAM_START - LOW_RAM_END, E820_RESERVED);
	assert_e820(&e[2], HIGH_RAM_START, 3 * GiB - HIGH_RAM_START, E820_RAM);
	assert_e820(&e[3], 4 * GiB, 1 * GiB + 2 * MiB, E820_RAM);
	for (int i = 0; i < 4; i++)
		for (int r = 0; r < l.nranges; r++)
			if (l.ranges[r].kind != RANGE_RAM)
				assert_false(overlaps(e[i].addr, e[i].size, l.ranges[r].gpa,
						      l.ranges[r].size));

	/* too small an output array is reported, not overrun */
	assert_int_equal(layout__e820(&l, e, 3), -1);
	assert_int_equal(layout__e820(&l, e, 4), 4);
}

/* ---- JSON ---- */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("JSON has no \"%s\"", key);
	return v;
}

static void assert_json_int(json_object *o, const char *key, uint64_t want)
{
	json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal((uint64_t)json_object_get_int64(v), want);
}

static json_object *print_and_parse(const struct layout *l, const struct vm_config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	json_tokener *tok = json_tokener_new();
	json_object *root;

	assert_non_null(f);
	layout__print_json(l, c, f);
	assert_int_equal(fclose(f), 0);
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success)
		fail_msg("not JSON: %s", text);
	/* one object, one line: nothing after it but the newline */
	assert_true(len > 0 && text[len - 1] == '\n');
	assert_null(memchr(text, '\n', len - 1));
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		assert_true(text[i] == '\n');
	json_tokener_free(tok);
	free(text);
	return root;
}

static void test_json_roundtrip(void **state)
{
	static struct vm_config c;
	static struct layout l;
	struct e820_entry e[16];
	json_object *root, *ranges, *e820, *mmio;
	int ne;

	(void)state;
	cfg_init(&c);
	add_node(&c, 1);
	add_node(&c, 0);
	c.memory.hotplug_size = 256 * MiB;
	c.zones[add_zone(&c, "fast", 2 * GiB, 0)].guest_node = 0;
	c.zones[add_zone(&c, "we\"ird\\id", 2 * GiB, 128 * MiB)].guest_node = 1;
	build_ok(&l, &c);
	ne = layout__e820(&l, e, 16);
	root = print_and_parse(&l, &c);

	assert_json_int(root, "boot_ram", l.boot_ram);
	assert_json_int(root, "ram_end", l.ram_end);
	assert_json_int(root, "end", l.end);
	mmio = get(root, "mmio32");
	assert_json_int(mmio, "start", MMIO32_START);
	assert_json_int(mmio, "end", MMIO32_END);

	ranges = get(root, "ranges");
	assert_int_equal(json_object_array_length(ranges), l.nranges);
	for (int i = 0; i < l.nranges; i++) {
		const struct mem_range *r = &l.ranges[i];
		json_object *o = json_object_array_get_idx(ranges, (size_t)i), *zone, *node;

		assert_string_equal(json_object_get_string(get(o, "kind")),
				    layout__kind_name(r->kind));
		assert_json_int(o, "gpa", r->gpa);
		assert_json_int(o, "size", r->size);
		assert_json_int(o, "zone_offset", r->zone_offset);
		zone = get(o, "zone");
		if (r->zone < 0)
			assert_true(json_object_is_type(zone, json_type_null));
		else
			assert_string_equal(json_object_get_string(zone), c.zones[r->zone].id);
		node = get(o, "guest_numa_id");
		assert_int_equal(json_object_get_int(node), c.numa[r->guest_node].guest_numa_id);
	}
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(ranges, 3),
							"kind")), "acpi-hotplug");
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(ranges, 3),
						 "guest_numa_id")), 0);
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(ranges, 4),
							"kind")), "virtio-mem");

	e820 = get(root, "e820");
	assert_int_equal(json_object_array_length(e820), ne);
	for (int i = 0; i < ne; i++) {
		json_object *o = json_object_array_get_idx(e820, (size_t)i);

		assert_json_int(o, "addr", e[i].addr);
		assert_json_int(o, "size", e[i].size);
		assert_json_int(o, "type", e[i].type);
	}
	json_object_put(root);
}

static void test_json_without_numa(void **state)
{
	static struct vm_config c;
	static struct layout l;
	json_object *root, *r0;

	(void)state;
	cfg_init(&c);
	c.memory.size = 256 * MiB;
	c.memory.hotplug_size = 128 * MiB;
	add_zone(&c, DEFAULT_ZONE_ID, 256 * MiB, 0);
	build_ok(&l, &c);
	root = print_and_parse(&l, &c);
	r0 = json_object_array_get_idx(get(root, "ranges"), 0);
	assert_true(json_object_is_type(get(r0, "guest_numa_id"), json_type_null));
	assert_string_equal(json_object_get_string(get(r0, "zone")), DEFAULT_ZONE_ID);
	json_object_put(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_zone),
		cmocka_unit_test(test_zone_split_across_hole),
		cmocka_unit_test(test_zone_ends_at_hole),
		cmocka_unit_test(test_several_zones_middle_split),
		cmocka_unit_test(test_acpi_hotplug_above_4g),
		cmocka_unit_test(test_hotplug_alignment),
		cmocka_unit_test(test_virtio_mem_method_has_no_acpi_area),
		cmocka_unit_test(test_numa_nodes_of_ranges),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limit_boundary),
		cmocka_unit_test(test_random_invariants),
		cmocka_unit_test(test_e820_small),
		cmocka_unit_test(test_e820_split_and_hotplug),
		cmocka_unit_test(test_json_roundtrip),
		cmocka_unit_test(test_json_without_numa),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
