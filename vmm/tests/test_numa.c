/*
 * numa__build and the NUMA rules of DEVELOPERS.md: node ids, the node of every vCPU (listed or
 * not, boot or hotpluggable), the distance defaults, the node of every layout range (hotplug
 * areas included), APIC ids, and the configurations the description refuses. The expected values
 * are written here from DEVELOPERS.md, not computed with the unit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "memory/numa.h"
#include "util.h"
#include "tests/vmcfg.h"

static struct numa n;
static struct layout l;

static void build(const struct vm_config *c, bool with_layout)
{
	char err[256] = "";

	if (with_layout && layout__build(&l, c, err, sizeof(err)))
		fail_msg("layout__build: %s", err);
	if (numa__build(&n, c, with_layout ? &l : NULL, err, sizeof(err)))
		fail_msg("numa__build: %s", err);
}

/* numa__build refuses c with exactly msg, on one line. */
static void build_fails(const struct vm_config *c, const struct layout *lay, const char *msg)
{
	char err[256] = "";

	assert_int_equal(numa__build(&n, c, lay, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	assert_null(strchr(err, '\n'));
}

static void test_no_numa(void **state)
{
	static struct vm_config c;

	(void)state;
	cfg_init(&c, 2, 4);
	c.memory.hotplug_size = 1 * GiB;
	add_zone(&c, "a", 4 * GiB, 0, -1);
	build(&c, true);
	assert_int_equal(n.nnodes, 0);
	assert_int_equal(n.nvcpus, 4);
	assert_int_equal(n.nboot, 2);
	for (unsigned cpu = 0; cpu < 4; cpu++) {
		assert_int_equal(n.apic_id[cpu], cpu);
		assert_int_equal(n.vcpu_node[cpu], -1);
	}
	assert_int_equal(n.nzones, 1);
	assert_int_equal(n.zone_node[0], -1);
	assert_int_equal(n.nranges, 3);		/* split around the hole, then the hotplug area */
	for (int i = 0; i < n.nranges; i++)
		assert_int_equal(n.range_node[i], -1);
	assert_int_equal(numa__default_node(&c), -1);
	assert_int_equal(numa__zone_node(&c, 0), -1);
}

/* Node ids are guest_numa_ids, whatever order --numa gave them in. */
static void test_node_ids(void **state)
{
	static struct vm_config c;

	(void)state;
	cfg_three_nodes(&c);		/* index 0 = id 2, 1 = id 0, 2 = id 1 */
	build(&c, false);
	assert_int_equal(n.nnodes, 3);
	assert_int_equal(n.nodes[0].config, 1);
	assert_int_equal(n.nodes[1].config, 2);
	assert_int_equal(n.nodes[2].config, 0);
	assert_int_equal(numa__default_node(&c), 1);	/* the lowest id, not index 0 */
}

static void test_distance_defaults(void **state)
{
	static struct vm_config c;

	(void)state;
	cfg_init(&c, 1, 1);
	add_node(&c, 0);
	add_node(&c, 1);
	add_zone(&c, "a", 1 * GiB, 0, 0);
	build(&c, false);
	assert_memory_equal(n.distance[0], ((uint8_t[]){ 10, 20 }), 2);
	assert_memory_equal(n.distance[1], ((uint8_t[]){ 20, 10 }), 2);

	node_distance(&c, 1, 0, 40);	/* only 1->0 given: 0->1 takes it */
	build(&c, false);
	assert_memory_equal(n.distance[0], ((uint8_t[]){ 10, 40 }), 2);
	assert_memory_equal(n.distance[1], ((uint8_t[]){ 40, 10 }), 2);

	/* the diagonal is 10 whatever a hand-built configuration says (validation refuses it) */
	node_distance(&c, 0, 0, 33);
	build(&c, false);
	assert_int_equal(n.distance[0][0], 10);
}

static void test_asymmetric_distances(void **state)
{
	static const uint8_t want[3][3] = {
		{ 10, 15, 20 },		/* 0->1 given; 0->2 given by neither side */
		{ 17, 10, 22 },		/* 1->0 given as 17 while 0->1 is 15: both kept */
		{ 20, 22, 10 },		/* 2->1 missing: takes 1->2 */
	};
	static struct vm_config c;

	(void)state;
	cfg_three_nodes(&c);
	build(&c, false);
	for (int i = 0; i < 3; i++)
		assert_memory_equal(n.distance[i], want[i], 3);
	/* acpi__distance takes indices into cfg->numa: index 1 is id 0, index 2 is id 1 */
	assert_int_equal(acpi__distance(&c, 1, 2), n.distance[0][1]);
	assert_int_equal(acpi__distance(&c, 2, 1), n.distance[1][0]);
}

static void test_vcpus_without_node(void **state)
{
	static const int want[8] = { 0, 1, 1, 1, 1, 1, 2, 0 };
	static struct vm_config c;

	(void)state;
	cfg_three_nodes(&c);	/* 6 boot vCPUs of 8; vCPU 7 (hotpluggable) is in no --numa */
	build(&c, false);
	assert_int_equal(n.nvcpus, 8);
	assert_int_equal(n.nboot, 6);
	for (unsigned cpu = 0; cpu < 8; cpu++) {
		assert_int_equal(n.vcpu_node[cpu], want[cpu]);
		assert_int_equal(acpi__cpu_node(&c, cpu), (uint32_t)want[cpu]);
	}
	assert_int_equal(n.nodes[0].nvcpus, 2);
	assert_int_equal(n.nodes[1].nvcpus, 5);
	assert_int_equal(n.nodes[2].nvcpus, 1);

	/* no vCPU listed anywhere: all in the lowest id, which --numa gave second */
	cfg_init(&c, 2, 3);
	add_node(&c, 1);
	add_node(&c, 0);
	build(&c, false);
	for (unsigned cpu = 0; cpu < 3; cpu++)
		assert_int_equal(n.vcpu_node[cpu], 0);
	assert_int_equal(n.nodes[0].nvcpus, 3);
	assert_int_equal(n.nodes[1].nvcpus, 0);

	/* listed twice (validation refuses it): the first --numa on the command line wins */
	node_cpu(&c, 0, 2);
	node_cpu(&c, 1, 2);
	build(&c, false);
	assert_int_equal(n.vcpu_node[2], 1);
}

/* Boot vCPUs, then hotpluggable ones up to max, at most MAX_VCPUS; APIC id n for vCPU n. */
static void test_vcpu_count_and_apic_ids(void **state)
{
	static struct vm_config c;

	(void)state;
	cfg_init(&c, 1, MAX_VCPUS);
	add_node(&c, 0);
	node_cpu(&c, add_node(&c, 1), 255);
	build(&c, false);
	assert_int_equal(n.nvcpus, MAX_VCPUS);
	assert_int_equal(n.nboot, 1);
	for (unsigned cpu = 0; cpu < MAX_VCPUS; cpu++) {
		assert_int_equal(n.apic_id[cpu], cpu);
		assert_int_equal(acpi__apic_id(cpu), cpu);
		assert_int_equal(n.vcpu_node[cpu], cpu == 255 ? 1 : 0);
	}
	assert_int_equal(n.apic_id[255], 0xff);		/* the tables need x2APIC entries for it */

	cfg_init(&c, 12, 4);	/* boot above max (validation refuses it): boot counts */
	build(&c, false);
	assert_int_equal(n.nvcpus, 12);
	assert_int_equal(n.nboot, 12);
	assert_int_equal(numa__vcpu_count(&c), 12);

	cfg_init(&c, MAX_VCPUS + 5, MAX_VCPUS + 9);
	build(&c, false);
	assert_int_equal(n.nvcpus, MAX_VCPUS);
	assert_int_equal(n.nboot, MAX_VCPUS);
}

/*
 * Ranges take their zone's node; the ACPI hotplug area belongs to no zone and takes the lowest
 * id; a zone in no node (or naming one that does not exist) joins the lowest id too.
 */
static void test_range_nodes_acpi_hotplug(void **state)
{
	static const struct { uint64_t gpa; int node; } want[] = {
		{ 0, 0 },			/* z0 */
		{ 1 * GiB, 1 },			/* z1 below the hole */
		{ 4 * GiB, 1 },			/* z1 above it */
		{ 5 * GiB, 2 },			/* z2 */
		{ 5 * GiB + 512 * MiB, 0 },	/* ACPI hotplug area */
		{ 6 * GiB, 2 },			/* z2's virtio-mem region */
	};
	static struct vm_config c;

	(void)state;
	cfg_three_nodes(&c);
	build(&c, true);
	assert_int_equal(n.nranges, (int)ARRAY_SIZE(want));
	for (int i = 0; i < n.nranges; i++) {
		assert_int_equal(l.ranges[i].gpa, want[i].gpa);
		assert_int_equal(n.range_node[i], want[i].node);
	}
	assert_int_equal(n.nodes[0].ram, 1 * GiB);
	assert_int_equal(n.nodes[0].hotplug, 512 * MiB);
	assert_int_equal(n.nodes[1].ram, 3 * GiB);
	assert_int_equal(n.nodes[1].hotplug, 0);
	assert_int_equal(n.nodes[2].ram, 512 * MiB);
	assert_int_equal(n.nodes[2].hotplug, 256 * MiB);
	assert_memory_equal(n.zone_node, ((int[]){ 0, 1, 2 }), 3 * sizeof(int));
}

static void test_range_nodes_virtio_mem(void **state)
{
	static struct vm_config c;
	char err[256];

	(void)state;
	cfg_init(&c, 1, 1);
	c.memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	add_node(&c, 1);
	add_node(&c, 0);
	add_zone(&c, "a", 1 * GiB, 256 * MiB, 0);	/* id 1 */
	add_zone(&c, "b", 1 * GiB, 128 * MiB, -1);	/* no node: id 0 */
	add_zone(&c, "c", 1 * GiB, 128 * MiB, 7);	/* no such node: id 0 */
	build(&c, true);
	assert_int_equal(n.nranges, 6);
	assert_memory_equal(n.zone_node, ((int[]){ 1, 0, 0 }), 3 * sizeof(int));
	assert_int_equal(numa__zone_node(&c, 2), 1);	/* an index into cfg->numa: id 0's */
	for (int i = 0; i < n.nranges; i++) {
		const struct mem_range *r = &l.ranges[i];

		assert_int_equal(n.range_node[i], n.zone_node[r->zone]);
		assert_int_equal(r->guest_node, numa__zone_node(&c, r->zone));
	}
	assert_int_equal(l.ranges[3].kind, RANGE_VIRTIO_MEM);
	assert_int_equal(n.range_node[3], 1);
	assert_int_equal(n.nodes[1].ram, 1 * GiB);
	assert_int_equal(n.nodes[1].hotplug, 256 * MiB);
	assert_int_equal(n.nodes[0].ram, 2 * GiB);
	assert_int_equal(n.nodes[0].hotplug, 256 * MiB);

	/* a range whose node is no node (a layout built by hand) joins the lowest id as well */
	c.numa[7].guest_numa_id = 5;	/* a stale entry past nnuma must not be read */
	l.ranges[0].guest_node = 7;
	assert_int_equal(numa__build(&n, &c, &l, err, sizeof(err)), 0);
	assert_int_equal(n.range_node[0], 0);
	assert_int_equal(n.nodes[0].ram, 3 * GiB);
}

/* What validation does with the command line is what numa__build then describes. */
static void test_from_command_line(void **state)
{
	static char *argv[] = {
		"memvisor", "--kernel", "k", "--memory", "size=0",
		"--memory-zone", "id=mem0,size=64M", "--memory-zone", "id=mem1,size=64M",
		"--memory-zone", "id=mem2,size=64M",
		"--numa", "guest_numa_id=0,memory_zones=[mem0],cpus=[0]",
		"--numa", "guest_numa_id=1,memory_zones=[mem1],cpus=[1],distances=[0@15]",
		"--cpus", "boot=2,max=3", NULL,
	};
	struct host_info h = { .page_size = 4096, .nnodes = 1, .node_present = { true } };
	static struct vm_config c;
	char err[256] = "";

	(void)state;
	if (config__parse(&c, (int)ARRAY_SIZE(argv) - 1, argv, err, sizeof(err)) ||
	    config__validate(&c, &h, err, sizeof(err)))
		fail_msg("%s", err);
	build(&c, true);
	assert_int_equal(n.nnodes, 2);
	assert_memory_equal(n.distance[0], ((uint8_t[]){ 10, 15 }), 2);
	assert_memory_equal(n.distance[1], ((uint8_t[]){ 15, 10 }), 2);
	assert_memory_equal(n.vcpu_node, ((int[]){ 0, 1, 0 }), 3 * sizeof(int));
	assert_memory_equal(n.zone_node, ((int[]){ 0, 1, 0 }), 3 * sizeof(int));
	assert_int_equal(c.zones[2].guest_node, 0);	/* validation wrote numa.h's answer */
	assert_memory_equal(n.range_node, ((int[]){ 0, 1, 0 }), 3 * sizeof(int));
	assert_int_equal(n.nodes[0].ram, 128 * MiB);
	assert_int_equal(n.nodes[1].ram, 64 * MiB);
	config__free(&c);
}

/* Validation's messages, as test_config.c expects them: every duplicate before any range. */
static void test_check_ids(void **state)
{
	static struct vm_config c;
	char err[256] = "";

	(void)state;
	cfg_init(&c, 1, 1);
	add_node(&c, 1);
	add_node(&c, 0);
	assert_int_equal(numa__check_ids(&c, err, sizeof(err)), 0);
	add_node(&c, 9);
	add_node(&c, 1);
	assert_int_equal(numa__check_ids(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "--numa: duplicate guest_numa_id 1");
	c.nnuma = 3;
	assert_int_equal(numa__check_ids(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "--numa: guest_numa_id 9 out of range: with 3 nodes the ids are 0-2");
	c.nnuma = MAX_NUMA_NODES + 1;
	assert_int_equal(numa__check_ids(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "--numa: at most 32 nodes");
}

static void test_errors(void **state)
{
	static struct vm_config c;

	(void)state;
	cfg_init(&c, 1, 1);
	add_node(&c, 0);
	add_node(&c, 0);
	build_fails(&c, NULL, "no guest_numa_id 1: the SLIT needs ids 0..1");

	cfg_init(&c, 1, 1);
	add_node(&c, 3);
	add_node(&c, 0);
	add_node(&c, 1);
	build_fails(&c, NULL, "no guest_numa_id 2: the SLIT needs ids 0..2");

	cfg_init(&c, 1, 1);
	c.nnuma = MAX_NUMA_NODES + 1;
	build_fails(&c, NULL, "33 NUMA nodes, at most 32");

	cfg_init(&c, 1, 1);
	c.nzones = MAX_ZONES + 1;
	build_fails(&c, NULL, "33 memory zones, at most 32");

	cfg_init(&c, 1, 1);
	memset(&l, 0, sizeof(l));
	l.nranges = MAX_RANGES + 1;
	build_fails(&c, &l, "98 memory ranges, at most 97");

	/* a failure leaves no description behind that a table could read */
	cfg_three_nodes(&c);
	c.numa[0].guest_numa_id = 7;
	build_fails(&c, NULL, "no guest_numa_id 2: the SLIT needs ids 0..2");
	assert_int_equal(n.nnodes, 0);
	assert_int_equal(n.nvcpus, 0);
}

/* The rules layout__build uses answer for ids numa__build refuses: the layout needs no SLIT. */
static void test_rules_on_unvalidated_ids(void **state)
{
	static struct vm_config c;
	char err[256];

	(void)state;
	cfg_init(&c, 1, 1);
	add_node(&c, 5);
	add_node(&c, 2);
	add_node(&c, 9);
	add_zone(&c, "a", 1 * GiB, 0, 2);
	add_zone(&c, "b", 1 * GiB, 0, -1);
	assert_int_equal(numa__default_node(&c), 1);
	assert_int_equal(numa__zone_node(&c, 0), 2);
	assert_int_equal(numa__zone_node(&c, 1), 1);
	assert_int_equal(layout__build(&l, &c, err, sizeof(err)), 0);
	assert_int_equal(numa__build(&n, &c, &l, err, sizeof(err)), -1);
	assert_int_equal(acpi__cpu_node(&c, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_numa),
		cmocka_unit_test(test_node_ids),
		cmocka_unit_test(test_distance_defaults),
		cmocka_unit_test(test_asymmetric_distances),
		cmocka_unit_test(test_vcpus_without_node),
		cmocka_unit_test(test_vcpu_count_and_apic_ids),
		cmocka_unit_test(test_range_nodes_acpi_hotplug),
		cmocka_unit_test(test_range_nodes_virtio_mem),
		cmocka_unit_test(test_from_command_line),
		cmocka_unit_test(test_check_ids),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_rules_on_unvalidated_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
