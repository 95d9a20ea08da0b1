/*
 * fdt__build: the blob is valid, and reading it back with libfdt gives the layout of
 * DEVELOPERS.md: memory nodes (boot RAM and hotplug areas), cpus, numa-node-id and the distance
 * map, agreeing with the layout and with what the ACPI tables say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libfdt.h>

#include "arch/x86/acpi.h"
#include "arch/x86/fdt.h"
#include "util.h"
#include "tests/devices_vm.h"
#include "tests/vmcfg.h"

static uint8_t blob[FDT_MAX];


static void build(struct layout *l, const struct vm_config *c)
{
	char err[256];
	size_t size;

	if (layout__build(l, c, err, sizeof(err)))
		fail_msg("layout__build: %s", err);
	memset(blob, 0xa5, sizeof(blob));
	size = fdt__build(c, l, NULL, NULL, blob, sizeof(blob));
	assert_true(size > 0 && size <= FDT_MAX);
	assert_int_equal(fdt_check_header(blob), 0);
	assert_int_equal(fdt_magic(blob), 0xd00dfeed);
	assert_int_equal(fdt_totalsize(blob), size);
}

static uint32_t prop_u32(int node, const char *name)
{
	int len;
	const fdt32_t *v = fdt_getprop(blob, node, name, &len);

	if (!v)
		fail_msg("no property %s", name);
	assert_int_equal(len, 4);
	return fdt32_to_cpu(*v);
}

static const char *prop_str(int node, const char *name)
{
	int len;
	const char *v = fdt_getprop(blob, node, name, &len);

	if (!v)
		fail_msg("no property %s", name);
	assert_true(len > 0 && v[len - 1] == '\0' && strlen(v) == (size_t)len - 1);
	return v;
}

static bool has_prop(int node, const char *name)
{
	return fdt_getprop(blob, node, name, NULL) != NULL;
}

static void check_root(void)
{
	int root = fdt_path_offset(blob, "/");

	assert_true(root >= 0);
	assert_int_equal(prop_u32(root, "#address-cells"), 2);
	assert_int_equal(prop_u32(root, "#size-cells"), 2);
	assert_string_equal(prop_str(root, "compatible"), "memvisor,vm");
}

/* Every /memory@ node matches one layout range, in order, and nothing is left over. */
static void check_memory(const struct layout *l, const struct vm_config *c)
{
	int node, i = 0;

	fdt_for_each_subnode(node, blob, 0) {
		const char *name = fdt_get_name(blob, node, NULL);
		const struct mem_range *r;
		const fdt32_t *reg;	/* properties are only 4-byte aligned */
		char want[32];
		int len;

		if (strncmp(name, "memory@", 7))
			continue;
		assert_true(i < l->nranges);
		r = &l->ranges[i++];
		snprintf(want, sizeof(want), "memory@%llx", (unsigned long long)r->gpa);
		assert_string_equal(name, want);
		assert_string_equal(prop_str(node, "device_type"), "memory");
		reg = fdt_getprop(blob, node, "reg", &len);
		assert_non_null(reg);
		assert_int_equal(len, 16);
		assert_int_equal((uint64_t)fdt32_to_cpu(reg[0]) << 32 | fdt32_to_cpu(reg[1]), r->gpa);
		assert_int_equal((uint64_t)fdt32_to_cpu(reg[2]) << 32 | fdt32_to_cpu(reg[3]), r->size);
		if (c->nnuma)
			assert_int_equal(prop_u32(node, "numa-node-id"),
					 c->numa[r->guest_node].guest_numa_id);
		else
			assert_false(has_prop(node, "numa-node-id"));
		if (r->kind == RANGE_RAM) {
			assert_false(has_prop(node, "hotpluggable"));
			assert_false(has_prop(node, "memvisor,kind"));
		} else {
			assert_non_null(fdt_getprop(blob, node, "hotpluggable", &len));
			assert_int_equal(len, 0);
			assert_string_equal(prop_str(node, "memvisor,kind"),
					    r->kind == RANGE_ACPI_HOTPLUG ? "acpi-hotplug" :
									    "virtio-mem");
		}
	}
	assert_int_equal(i, l->nranges);
}

static void check_cpus(const struct vm_config *c, unsigned ncpus)
{
	int cpus = fdt_path_offset(blob, "/cpus"), node;
	unsigned n = 0;

	assert_true(cpus >= 0);
	assert_int_equal(prop_u32(cpus, "#address-cells"), 1);
	assert_int_equal(prop_u32(cpus, "#size-cells"), 0);
	fdt_for_each_subnode(node, blob, cpus) {
		char want[24];

		snprintf(want, sizeof(want), "cpu@%x", acpi__apic_id(n));
		assert_string_equal(fdt_get_name(blob, node, NULL), want);
		assert_string_equal(prop_str(node, "device_type"), "cpu");
		assert_int_equal(prop_u32(node, "reg"), acpi__apic_id(n));
		assert_string_equal(prop_str(node, "status"), n < c->boot_cpus ? "okay" : "disabled");
		if (c->nnuma)
			assert_int_equal(prop_u32(node, "numa-node-id"), acpi__cpu_node(c, n));
		else
			assert_false(has_prop(node, "numa-node-id"));
		n++;
	}
	assert_int_equal(n, ncpus);
}

static void test_no_numa(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c, 2, 4);
	c.memory.size = 4 * GiB;
	c.memory.hotplug_size = 1 * GiB;
	add_zone(&c, DEFAULT_ZONE_ID, 4 * GiB, 0, -1);
	build(&l, &c);
	check_root();
	assert_int_equal(l.nranges, 3);		/* split zone: two memory nodes, plus hotplug */
	check_memory(&l, &c);
	assert_true(fdt_path_offset(blob, "/memory@0") >= 0);
	assert_true(fdt_path_offset(blob, "/memory@100000000") >= 0);
	check_cpus(&c, 4);
	assert_true(fdt_path_offset(blob, "/distance-map") < 0);
}

static void test_three_nodes(void **state)
{
	static const uint32_t want_cpu_node[8] = { 0, 1, 1, 1, 1, 1, 2, 0 };
	static const uint32_t want_dist[3][3] = { { 10, 15, 20 }, { 17, 10, 22 }, { 20, 22, 10 } };
	static struct vm_config c;
	static struct layout l;
	const fdt32_t *m;
	int dm, len, cpu;
	unsigned n = 0;

	(void)state;
	cfg_three_nodes(&c);
	build(&l, &c);
	check_root();
	check_memory(&l, &c);
	check_cpus(&c, 8);
	fdt_for_each_subnode(cpu, blob, fdt_path_offset(blob, "/cpus"))
		assert_int_equal(prop_u32(cpu, "numa-node-id"), want_cpu_node[n++]);
	/* the ACPI hotplug area belongs to the node with the lowest id */
	assert_int_equal(prop_u32(fdt_path_offset(blob, "/memory@160000000"), "numa-node-id"), 0);

	dm = fdt_path_offset(blob, "/distance-map");
	assert_true(dm >= 0);
	assert_string_equal(prop_str(dm, "compatible"), "numa-distance-map-v1");
	m = fdt_getprop(blob, dm, "distance-matrix", &len);
	assert_non_null(m);
	assert_int_equal(len, 9 * 3 * 4);
	for (int i = 0; i < 9; i++) {
		uint32_t from = fdt32_to_cpu(m[3 * i]), to = fdt32_to_cpu(m[3 * i + 1]);

		assert_int_equal(from, (uint32_t)i / 3);
		assert_int_equal(to, (uint32_t)i % 3);
		assert_int_equal(fdt32_to_cpu(m[3 * i + 2]), want_dist[from][to]);
	}
}

/* FDT and ACPI are two views of one topology: node ids and distances must agree. */
static void test_agrees_with_acpi(void **state)
{
	static struct vm_config c;
	static struct layout l;
	static uint8_t acpi[ACPI_TABLES_MAX];
	const uint8_t *slit = NULL;
	const fdt32_t *m;
	uint64_t xsdt;
	uint32_t xsdt_len;
	size_t used;
	char err[256];
	int len;

	(void)state;
	cfg_three_nodes(&c);
	build(&l, &c);
	used = acpi__build(&c, &l, devices__dsdt, devices_vm(), acpi, ACPI_TABLES_ADDR, sizeof(acpi), err, sizeof(err));
	assert_true(used > 0);
	memcpy(&xsdt, acpi + 24, 8);
	xsdt -= ACPI_TABLES_ADDR;
	memcpy(&xsdt_len, acpi + xsdt + 4, 4);
	for (uint32_t off = 36; off < xsdt_len; off += 8) {
		uint64_t t;

		memcpy(&t, acpi + xsdt + off, 8);
		if (!memcmp(acpi + t - ACPI_TABLES_ADDR, "SLIT", 4))
			slit = acpi + t - ACPI_TABLES_ADDR;
	}
	assert_non_null(slit);
	m = fdt_getprop(blob, fdt_path_offset(blob, "/distance-map"), "distance-matrix", &len);
	assert_non_null(m);
	for (int i = 0; i < len / 12; i++)
		assert_int_equal(fdt32_to_cpu(m[3 * i + 2]),
				 slit[44 + fdt32_to_cpu(m[3 * i]) * 3 + fdt32_to_cpu(m[3 * i + 1])]);
}

static void test_cpu_unit_addresses_hex(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	cfg_init(&c, 12, 20);
	add_zone(&c, "a", 1 * GiB, 0, -1);
	build(&l, &c);
	check_cpus(&c, 20);
	assert_true(fdt_path_offset(blob, "/cpus/cpu@a") >= 0);
	assert_true(fdt_path_offset(blob, "/cpus/cpu@13") >= 0);
	assert_string_equal(prop_str(fdt_path_offset(blob, "/cpus/cpu@b"), "status"), "okay");
	assert_string_equal(prop_str(fdt_path_offset(blob, "/cpus/cpu@c"), "status"), "disabled");
}

static void test_too_small_and_largest(void **state)
{
	static struct vm_config c;
	static struct layout l;
	char err[256];
	size_t size;

	(void)state;
	cfg_init(&c, MAX_VCPUS, MAX_VCPUS);
	c.memory.hotplug_size = 1 * GiB;
	for (int n = 0; n < MAX_NUMA_NODES; n++)
		add_node(&c, (uint32_t)n);
	for (int z = 0; z < MAX_ZONES; z++) {
		char id[8];

		snprintf(id, sizeof(id), "z%d", z);
		add_zone(&c, id, 256 * MiB, 128 * MiB, z % MAX_NUMA_NODES);
	}
	build(&l, &c);		/* the largest configuration fits FDT_MAX */
	check_memory(&l, &c);
	check_cpus(&c, MAX_VCPUS);

	assert_int_equal(layout__build(&l, &c, err, sizeof(err)), 0);
	size = fdt__build(&c, &l, NULL, NULL, blob, sizeof(blob));
	assert_int_equal(fdt__build(&c, &l, NULL, NULL, blob, size), size);
	assert_int_equal(fdt__build(&c, &l, NULL, NULL, blob, size - 1), 0);
	assert_int_equal(fdt__build(&c, &l, NULL, NULL, blob, 64), 0);
}

/* Ids other than 0..N-1 have no distance matrix to describe. */
static void test_bad_numa_ids(void **state)
{
	static struct vm_config c;
	static struct layout l;
	char err[256];

	(void)state;
	cfg_init(&c, 1, 1);
	add_node(&c, 0);
	add_node(&c, 3);
	add_zone(&c, "a", 1 * GiB, 0, 0);
	assert_int_equal(layout__build(&l, &c, err, sizeof(err)), 0);
	assert_int_equal(fdt__build(&c, &l, NULL, NULL, blob, sizeof(blob)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_numa),
		cmocka_unit_test(test_three_nodes),
		cmocka_unit_test(test_agrees_with_acpi),
		cmocka_unit_test(test_cpu_unit_addresses_hex),
		cmocka_unit_test(test_too_small_and_largest),
		cmocka_unit_test(test_bad_numa_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
