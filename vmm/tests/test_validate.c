/* Unit tests of the validation rules, the host probe and zone files. */
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "tests/config_checks.h"

/* ---- validation ---- */

static void test_memory_rules(void **state)
{
	struct vm_config cfg;

	(void)state;
	err_args("--kernel: missing (required unless --print-layout)", ARGV("--memory", "size=1G"));
	ERR("--memory: size=0 needs at least one --memory-zone", "--memory", "size=0");
	ERR("--memory-zone: memory zones need --memory size=0", "--memory-zone", "id=a,size=1G");
	ERR("--memory-zone: memory zones need --memory size=0", "--memory", "size=1G",
	    "--memory-zone", "id=a,size=1G");
	ERR("--memory: hotplug_size must not be 0", "--memory", "size=1G,hotplug_size=0");
	ERR("--memory: hotplugged_size must not be 0", "--memory",
	    "size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=0");
	ERR("--memory: hotplugged_size needs hotplug_size", "--memory",
	    "size=1G,hotplug_method=virtio-mem,hotplugged_size=128M");
	ERR("--memory: hotplugged_size needs hotplug_method=virtio-mem", "--memory",
	    "size=1G,hotplug_size=1G,hotplugged_size=128M");
	ERR("--memory: hotplugged_size 512M exceeds hotplug_size 256M", "--memory",
	    "size=1G,hotplug_method=virtio-mem,hotplug_size=256M,hotplugged_size=512M");
	ERR("--memory: hotplug_size with hotplug_method=virtio-mem and memory zones: put "
	    "hotplug_size on a zone", "--memory", "size=0,hotplug_method=virtio-mem,hotplug_size=1G",
	    "--memory-zone", "id=a,size=1G");
	ERR("--memory: hugepage_size needs hugepages=on", "--memory", "size=1G,hugepage_size=2M");
	ERR("--memory: hugepage_size 3M is not a power of two", "--memory",
	    "size=1G,hugepages=on,hugepage_size=3M");
	ERR("--memory: hugepage_size=4M is not offered by the host (it has 2M, 1G)", "--memory",
	    "size=1G,hugepages=on,hugepage_size=4M");
	ERR("--memory: size 1025K is not a multiple of the page size 4K", "--memory", "size=1025K");
	ERR("--memory: size 3M is not a multiple of the page size 2M", "--memory",
	    "size=3M,hugepages=on");
	ERR("--memory: size 3M is not a multiple of the page size 2M", "--memory",
	    "size=3M,hugepages=on,hugepage_size=2M");
	ERR("--memory: hotplug_size 3M is not a multiple of the page size 2M", "--memory",
	    "size=2M,hugepages=on,hotplug_size=3M");
	ERR("--memory: hotplug_size 100M is not a multiple of 128M (virtio-mem region alignment)",
	    "--memory", "size=1G,hotplug_method=virtio-mem,hotplug_size=100M");
	ERR("--memory: hotplug_size 1152M is not a multiple of the page size 1G", "--memory",
	    "size=1G,hugepages=on,hugepage_size=1G,hotplug_method=virtio-mem,hotplug_size=1152M");
	ERR("--memory: hotplugged_size 1M is not a multiple of 2M (virtio-mem block size)",
	    "--memory", "size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=1M");
	ERR("--memory: hotplugged_size 4100K is not a multiple of the page size 2M", "--memory",
	    "size=1G,hugepages=on,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=4100K");
	ERR("--memory: hotplugged_size 512M is not a multiple of the page size 1G", "--memory",
	    "size=1G,hugepages=on,hugepage_size=1G,hotplug_method=virtio-mem,hotplug_size=2G,"
	    "hotplugged_size=512M");
	/* accepted: the spec's examples, shared with mergeable (the spec does not forbid it) */
	OK(&cfg, "--memory", "size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=512M");
	config__free(&cfg);
	OK(&cfg, "--memory", "size=1G,hugepages=on,hugepage_size=2M");
	config__free(&cfg);
	OK(&cfg, "--memory", "size=1G,shared=on,mergeable=on");
	config__free(&cfg);
	OK(&cfg, "--memory", "size=1G,hugepages=on,hugepage_size=1G,hotplug_method=virtio-mem,"
	   "hotplug_size=2G,hotplugged_size=1G");
	config__free(&cfg);
}

static void test_no_hugetlb_host(void **state)
{
	struct host_info h = test_host();

	(void)state;
	h.nhugepage_sizes = 0;
	h.default_hugepage_size = 0;
	err_host("--memory: hugepages=on but the host has no hugetlb pages",
		 ARGV("--kernel", "k", "--memory", "size=1G,hugepages=on"), &h);
	err_host("--memory-zone: zone 'a': hugepages=on but the host has no hugetlb pages",
		 ARGV("--kernel", "k", "--memory", "size=0", "--memory-zone",
		      "id=a,size=1G,hugepages=on"), &h);
}

static void test_zone_rules(void **state)
{
	struct vm_config cfg;

	(void)state;
	ERR("--memory-zone: duplicate id 'a'", "--memory", "size=0", "--memory-zone",
	    "id=a,size=1G", "id=a,size=1G");
	ERR("--memory-zone: duplicate id 'mem0'", "--memory", "size=0", "--memory-zone",
	    "id=mem0,size=1G", "--memory-zone", "id=mem0,size=2G");
	ERR("--memory-zone: zone 'a': size must not be 0", "--memory", "size=0", "--memory-zone",
	    "id=a,size=0");
	ERR("--memory-zone: zone 'a': hotplug_size must not be 0", "--memory",
	    "size=0,hotplug_method=virtio-mem", "--memory-zone", "id=a,size=1G,hotplug_size=0");
	ERR("--memory-zone: zone 'a': hotplugged_size must not be 0", "--memory",
	    "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hotplug_size=1G,hotplugged_size=0");
	ERR("--memory-zone: zone 'a': hotplug_size needs --memory hotplug_method=virtio-mem",
	    "--memory", "size=0", "--memory-zone", "id=a,size=1G,hotplug_size=1G");
	ERR("--memory-zone: zone 'a': hotplugged_size needs hotplug_size", "--memory",
	    "size=0,hotplug_method=virtio-mem", "--memory-zone", "id=a,size=1G,hotplugged_size=128M");
	ERR("--memory-zone: zone 'a': hotplugged_size 512M exceeds hotplug_size 256M", "--memory",
	    "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hotplug_size=256M,hotplugged_size=512M");
	ERR("--memory-zone: zone 'a': hotplug_size 192M is not a multiple of 128M (virtio-mem "
	    "region alignment)", "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hotplug_size=192M");
	ERR("--memory-zone: zone 'a': hotplugged_size 3M is not a multiple of 2M (virtio-mem "
	    "block size)", "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hotplug_size=128M,hotplugged_size=3M");
	ERR("--memory-zone: zone 'a': hugepage_size needs hugepages=on", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G,hugepage_size=1G");
	ERR("--memory-zone: zone 'a': hugepage_size 12K is not a power of two", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G,hugepages=on,hugepage_size=12K");
	ERR("--memory-zone: zone 'b': hugepage_size=16M is not offered by the host (it has 2M, 1G)", "--memory",
	    "size=0", "--memory-zone", "id=a,size=1G", "id=b,size=1G,hugepages=on,hugepage_size=16M");
	ERR("--memory-zone: zone 'a': size 1536M is not a multiple of the page size 1G", "--memory",
	    "size=0", "--memory-zone", "id=a,size=1536M,hugepages=on,hugepage_size=1G");
	ERR("--memory-zone: zone 'a': size 1M is not a multiple of the page size 2M", "--memory",
	    "size=0", "--memory-zone", "id=a,size=1M,hugepages=on");
	ERR("--memory-zone: zone 'a': size 6K is not a multiple of the page size 4K", "--memory",
	    "size=0", "--memory-zone", "id=a,size=6K");
	ERR("--memory-zone: zone 'a': hotplug_size 1152M is not a multiple of the page size 1G",
	    "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hugepages=on,hugepage_size=1G,hotplug_size=1152M");
	ERR("--memory-zone: zone 'a': hotplugged_size 512M is not a multiple of the page size 1G",
	    "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=1G,hugepages=on,hugepage_size=1G,hotplug_size=2G,hotplugged_size=512M");
	ERR("--memory-zone: zone 'a': file= and hugepages=on exclude each other (for huge pages, "
	    "put the file on hugetlbfs)", "--memory", "size=0", "--memory-zone",
	    "id=a,size=1G,file=/dev/hugepages/a,hugepages=on");
	ERR("--memory-zone: zone 'a': host_numa_node 2 is not present on the host", "--memory",
	    "size=0", "--memory-zone", "id=a,size=1G,host_numa_node=2");
	ERR("--memory-zone: zone 'a': host_numa_node cannot bind a shared file mapping (shared=on "
	    "with file=)", "--memory", "size=0", "--memory-zone",
	    "id=a,size=1G,file=/tmp/a,shared=on,host_numa_node=0");
	/* accepted: the spec's examples */
	OK(&cfg, "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	   "id=mem0,size=1G,hotplug_size=1G,hotplugged_size=512M", "id=mem1,size=1G,host_numa_node=1",
	   "id=mem2,size=1G,hugepages=on,hugepage_size=2M,prefault=on,shared=on",
	   "id=mem3,size=1G,file=/tmp/memvisor-test-bar");	/* the spec's /foo/bar must exist */
	assert_int_equal(cfg.nzones, 4);
	config__free(&cfg);
}

static void test_node_absent_on_host(void **state)
{
	struct host_info h = test_host();

	(void)state;
	h.nnodes = 4;
	h.node_present[1] = false;
	h.node_present[3] = true;
	err_host("--memory-zone: zone 'a': host_numa_node 1 is not present on the host",
		 ARGV("--kernel", "k", "--memory", "size=0", "--memory-zone",
		      "id=a,size=1G,host_numa_node=1"), &h);
	err_host("--memory-zone: zone 'a': host_numa_node 4 is not present on the host",
		 ARGV("--kernel", "k", "--memory", "size=0", "--memory-zone",
		      "id=a,size=1G,host_numa_node=4"), &h);
	h.nnodes = 0;	/* a kernel without NUMA */
	err_host("--memory-zone: zone 'a': host_numa_node 0 is not present on the host",
		 ARGV("--kernel", "k", "--memory", "size=0", "--memory-zone",
		      "id=a,size=1G,host_numa_node=0"), &h);
}

static void test_numa_rules(void **state)
{
	(void)state;
	ERR("--numa: memory zone 'a' belongs to guest NUMA nodes 0 and 1", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G", "--numa", "guest_numa_id=0,memory_zones=a",
	    "guest_numa_id=1,memory_zones=a");
	ERR("--numa: guest_numa_id=0: memory zone 'a' listed twice", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G", "--numa", "guest_numa_id=0,memory_zones=[a,a]");
	ERR("--numa: guest_numa_id=0: unknown memory zone 'b'", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G", "--numa", "guest_numa_id=0,memory_zones=[a,b]");
	ERR("--numa: guest_numa_id=0: unknown memory zone 'mem0'", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G", "--numa", "guest_numa_id=0,memory_zones=mem0");
	ERR("--numa: guest_numa_id=0: distance to unknown node 1", "--numa",
	    "guest_numa_id=0,distances=[1@20]");
	ERR("--numa: duplicate guest_numa_id 0", "--numa", "guest_numa_id=0", "guest_numa_id=0");
	ERR("--numa: duplicate guest_numa_id 1", "--numa", "id=1", "--numa", "guest_numa_id=1");
	ERR("--numa: guest_numa_id 2 out of range: with 2 nodes the ids are 0-1", "--numa",
	    "guest_numa_id=0", "guest_numa_id=2");
	ERR("--numa: guest_numa_id 1 out of range: with 1 nodes the ids are 0-0", "--numa",
	    "guest_numa_id=1");
	ERR("--numa: guest_numa_id=0: distance to itself must be 10, not 20", "--numa",
	    "guest_numa_id=0,distances=[0@20]");
	ERR("--numa: guest_numa_id=1: distance to node 0 must be 11-255, not 10", "--numa",
	    "guest_numa_id=0", "guest_numa_id=1,distances=[0@10]");
	ERR("--numa: guest_numa_id=0: distance to node 1 must be 11-255, not 0", "--numa",
	    "guest_numa_id=0,distances=[1@0]", "guest_numa_id=1");
	ERR("--numa: guest_numa_id=0: distance to node 1 given twice", "--numa",
	    "guest_numa_id=0,distances=[1@20,1@30]", "guest_numa_id=1");
	ERR("--numa: vCPU 1 belongs to guest NUMA nodes 0 and 1", "--cpus", "boot=2", "--numa",
	    "guest_numa_id=0,cpus=[0-1]", "guest_numa_id=1,cpus=1");
	ERR("--numa: vCPU 2 belongs to guest NUMA nodes 1 and 0", "--cpus", "boot=4", "--numa",
	    "guest_numa_id=1,cpus=[2]", "guest_numa_id=0,cpus=[0-3]");
	ERR("--numa: guest_numa_id=0: vCPU 4 does not exist (--cpus max=4)", "--cpus",
	    "boot=2,max=4", "--numa", "guest_numa_id=0,cpus=4");
	ERR("--numa: guest_numa_id=0: vCPU 1 does not exist (--cpus max=1)", "--numa",
	    "guest_numa_id=0,cpus=[0-1]");
}

static void test_cpus_balloon_rules(void **state)
{
	struct vm_config cfg;

	(void)state;
	ERR("--cpus: boot must be at least 1", "--cpus", "boot=0");
	ERR("--cpus: boot=4 is above max=2", "--cpus", "boot=4,max=2");
	ERR("--cpus: max=256 is above 255", "--cpus", "boot=1,max=256");
	/* max defaults to boot: the message names what was written */
	ERR("--cpus: boot=300 is above the maximum of 255", "--cpus", "boot=300");
	ERR("--cpus: boot=256 is above the maximum of 255", "--cpus", "boot=256,max=256");
	OK(&cfg, "--cpus", "boot=255", "--numa", "guest_numa_id=0,cpus=[0-254]");
	config__free(&cfg);
	ERR("--balloon: size 1G is not smaller than the guest RAM 1G", "--memory", "size=1G",
	    "--balloon", "size=1G");
	ERR("--balloon: size 2G is not smaller than the guest RAM 1536M", "--memory", "size=0",
	    "--memory-zone", "id=a,size=1G", "id=b,size=512M", "--balloon", "size=2G");
	/* virtio-mem memory plugged at boot counts, as Cloud Hypervisor's total_size() */
	ERR("--balloon: size 1536M is not smaller than the guest RAM 1536M", "--memory",
	    "size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=512M",
	    "--balloon", "size=1536M");
	OK(&cfg, "--memory", "size=1G,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=512M",
	   "--balloon", "size=1G");
	config__free(&cfg);
	/* 8 IOAPIC pins above the ISA IRQs: the GED and at most 7 virtio-mmio devices */
#define VMEM_ZONES "--memory-zone", "id=a,size=128M,hotplug_size=128M", \
	"id=b,size=128M,hotplug_size=128M", "id=c,size=128M,hotplug_size=128M", \
	"id=d,size=128M,hotplug_size=128M", "id=e,size=128M,hotplug_size=128M", \
	"id=f,size=128M,hotplug_size=128M", "id=g,size=128M,hotplug_size=128M"
	OK(&cfg, "--memory", "size=0,hotplug_method=virtio-mem", VMEM_ZONES);
	config__free(&cfg);
	ERR("--balloon: 7 virtio-mem regions and the balloon need 8 interrupt lines, and memvisor "
	    "has 7 (IOAPIC pins 16-23, one taken by the GED)", "--memory",
	    "size=0,hotplug_method=virtio-mem", VMEM_ZONES, "--balloon", "size=64M");
	ERR("--memory-zone: 8 virtio-mem regions need 8 interrupt lines, and memvisor has 7 "
	    "(IOAPIC pins 16-23, one taken by the GED)", "--memory", "size=0,hotplug_method=virtio-mem",
	    VMEM_ZONES, "id=h,size=128M,hotplug_size=128M");
#undef VMEM_ZONES
}

static void test_hugepage_pools(void **state)
{
	struct vm_config cfg;

	(void)state;
	ERR("--memory: needs 1024 free 2M huge pages, the host has 768", "--memory",
	    "size=2G,hugepages=on");
	OK(&cfg, "--memory", "size=1536M,hugepages=on");	/* exactly the pool */
	config__free(&cfg);
	ERR("--memory-zone: zone 'a': needs 512 free 2M huge pages on host node 1, the host has 256",
	    "--memory", "size=0", "--memory-zone", "id=a,size=1G,hugepages=on,host_numa_node=1");
	ERR("--memory-zone: zone 'b': needs 512 free 2M huge pages (1024 with the zones before it), "
	    "the host has 768", "--memory", "size=0", "--memory-zone", "id=a,size=1G,hugepages=on",
	    "id=b,size=1G,hugepages=on,hugepage_size=2M");
	ERR("--memory-zone: zone 'b': needs 256 free 2M huge pages on host node 0 (768 with the "
	    "zones before it), the host has 512", "--memory", "size=0", "--memory-zone",
	    "id=a,size=1G,hugepages=on,host_numa_node=0", "id=b,size=512M,hugepages=on,host_numa_node=0");
	/* node 0 can, but with the unbound zone the total cannot */
	ERR("--memory-zone: zone 'b': needs 512 free 2M huge pages (1024 with the zones before it), "
	    "the host has 768", "--memory", "size=0", "--memory-zone", "id=a,size=1G,hugepages=on",
	    "id=b,size=1G,hugepages=on,host_numa_node=0");
	ERR("--memory-zone: zone 'a': needs 4 free 1G huge pages, the host has 3", "--memory",
	    "size=0", "--memory-zone", "id=a,size=4G,hugepages=on,hugepage_size=1G");
	ERR("--memory-zone: zone 'b': needs 2 free 1G huge pages on host node 1, the host has 1",
	    "--memory", "size=0", "--memory-zone", "id=a,size=1G,hugepages=on",
	    "id=b,size=2G,hugepages=on,hugepage_size=1G,host_numa_node=1");
	/* separate pools per size: 1G of 2M pages and 3G of 1G pages fit */
	OK(&cfg, "--memory", "size=0", "--memory-zone", "id=a,size=1G,hugepages=on",
	   "id=b,size=3G,hugepages=on,hugepage_size=1G", "id=c,size=4G");
	config__free(&cfg);
	/*
	 * Pool pages are reserved for boot RAM and hotplugged_size only: the rest of a virtio-mem
	 * region is MAP_NORESERVE until plugged; the ACPI area is not mapped at boot.
	 */
	OK(&cfg, "--memory", "size=640M,hugepages=on,hotplug_method=virtio-mem,hotplug_size=1G");
	config__free(&cfg);
	ERR("--memory: needs 1024 free 2M huge pages, the host has 768", "--memory",
	    "size=1G,hugepages=on,hotplug_method=virtio-mem,hotplug_size=1G,hotplugged_size=1G");
	OK(&cfg, "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	   "id=a,size=128M,hugepages=on,host_numa_node=1,hotplug_size=1G,hotplugged_size=2M");
	config__free(&cfg);
	ERR("--memory-zone: zone 'a': needs 320 free 2M huge pages on host node 1, the host has 256",
	    "--memory", "size=0,hotplug_method=virtio-mem", "--memory-zone",
	    "id=a,size=128M,hugepages=on,host_numa_node=1,hotplug_size=1G,hotplugged_size=512M");
	OK(&cfg, "--memory", "size=1G,hugepages=on,hotplug_size=64G");
	config__free(&cfg);
}

static void test_zone_page_size(void **state)
{
	struct host_info h = test_host();
	struct zone_config z = { .host_numa_node = -1 };
	struct vm_config cfg = { 0 };

	(void)state;
	assert_int_equal(config__zone_page_size(&cfg, &z, &h), 4096);
	z.hugepages = true;
	assert_int_equal(config__zone_page_size(&cfg, &z, &h), 2 * MiB);
	z.hugepage_size = GiB;
	assert_int_equal(config__zone_page_size(&cfg, &z, &h), GiB);
	z.hugepages = false;
	z.hugepage_size = 0;
	z.file = "/tmp";	/* not hugetlbfs */
	assert_int_equal(config__zone_page_size(&cfg, &z, &h), 4096);
}

static void test_validate_hand_built(void **state)
{
	struct host_info h = test_host();
	struct vm_config cfg = { .memory = { .size = 0 }, .nzones = 1, .boot_cpus = 1,
				 .max_cpus = 1, .print_layout = true };
	char err[256];

	(void)state;
	cfg.zones[0] = (struct zone_config){ .id = "", .size = GiB, .host_numa_node = -1 };
	assert_int_equal(config__validate(&cfg, &h, err, sizeof(err)), -1);
	assert_string_equal(err, "--memory-zone: missing id");
	strcpy(cfg.zones[0].id, "a");
	assert_int_equal(config__validate(&cfg, &h, err, sizeof(err)), 0);
	assert_int_equal(cfg.zones[0].guest_node, -1);
	cfg.memory.size = GiB;	/* zones with --memory size=1G */
	assert_int_equal(config__validate(&cfg, &h, err, sizeof(err)), -1);
	assert_string_equal(err, "--memory-zone: memory zones need --memory size=0");
}

/* ---- host probe ---- */

static char root[64];

static void put(const char *rel, const char *content)
{
	char path[256], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*slash = '/';
	}
	if (!content)
		return;
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void new_root(void)
{
	if (root[0])
		assert_int_equal(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	snprintf(root, sizeof(root), "/tmp/memvisor-host-XXXXXX");
	assert_non_null(mkdtemp(root));
}

static void test_host_probe_tree(void **state)
{
	struct host_info h;
	char err[256];

	(void)state;
	new_root();
	put("proc/meminfo", "MemTotal:  1000 kB\nHugepagesize:       2048 kB\n");
	put("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "100\n");
	put("sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages", "10\n");
	put("sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "3\n");
	put("sys/kernel/mm/hugepages/hugepages-1048576kB/resv_hugepages", "0\n");
	put("sys/devices/system/node/online", "0-1,3\n");
	put("sys/devices/system/node/has_memory", "0,3\n");
	put("sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "60\n");
	put("sys/devices/system/node/node3/hugepages/hugepages-2048kB/free_hugepages", "40\n");
	put("sys/devices/system/node/node0/hugepages/hugepages-1048576kB/free_hugepages", "2\n");
	put("sys/devices/system/node/node3/hugepages/hugepages-1048576kB/free_hugepages", "1\n");
	assert_int_equal(host__probe_at(&h, root, err, sizeof(err)), 0);
	assert_int_equal(h.page_size, (uint64_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(h.default_hugepage_size, 2 * MiB);
	assert_int_equal(h.nhugepage_sizes, 2);
	assert_int_equal(h.hugepage_sizes[0], 2 * MiB);
	assert_int_equal(h.hugepage_sizes[1], GiB);
	assert_int_equal(h.free_hugepages_total[0], 90);	/* free minus reserved */
	assert_int_equal(h.free_hugepages_total[1], 3);
	assert_int_equal(h.nnodes, 4);
	assert_true(h.node_present[0] && h.node_present[3]);
	assert_false(h.node_present[1] || h.node_present[2]);	/* 1 has no memory */
	assert_int_equal(h.free_hugepages[0][0], 60);
	assert_int_equal(h.free_hugepages[0][3], 40);
	assert_int_equal(h.free_hugepages[1][0], 2);
	assert_int_equal(h.free_hugepages[1][3], 1);

	/* nothing at all: no hugetlb, no NUMA */
	new_root();
	assert_int_equal(host__probe_at(&h, root, err, sizeof(err)), 0);
	assert_int_equal(h.nhugepage_sizes, 0);
	assert_int_equal(h.default_hugepage_size, 0);
	assert_int_equal(h.nnodes, 0);

	/* no online file: the node directories; a malformed counter is an error */
	new_root();
	put("proc/meminfo", "Hugepagesize:       1048576 kB\n");
	put("sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "5\n");
	put("sys/devices/system/node/node0/", NULL);
	put("sys/devices/system/node/node1/", NULL);
	put("sys/devices/system/node/nodefoo/", NULL);
	assert_int_equal(host__probe_at(&h, root, err, sizeof(err)), 0);
	assert_int_equal(h.default_hugepage_size, GiB);
	assert_int_equal(h.free_hugepages_total[0], 5);
	assert_int_equal(h.nnodes, 2);
	assert_true(h.node_present[0] && h.node_present[1]);
	put("sys/kernel/mm/hugepages/hugepages-1048576kB/resv_hugepages", "x\n");
	assert_int_equal(host__probe_at(&h, root, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "resv_hugepages: not a number"));
	assert_int_equal(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	root[0] = '\0';
}

/* A failed assertion leaves the tree of test_host_probe_tree behind: remove it here. */
static int remove_root(void **state)
{
	(void)state;
	if (root[0] && nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS))
		return -1;
	root[0] = '\0';
	return 0;
}

static void test_host_probe_real(void **state)
{
	struct host_info h;
	char err[256];

	(void)state;
	assert_int_equal(host__probe(&h, err, sizeof(err)), 0);
	assert_int_equal(h.page_size, (uint64_t)sysconf(_SC_PAGESIZE));
	assert_true(h.nhugepage_sizes >= 0 && h.nhugepage_sizes <= MAX_HUGEPAGE_SIZES);
	for (int i = 0; i < h.nhugepage_sizes; i++) {
		assert_true(h.hugepage_sizes[i] > h.page_size);
		assert_int_equal(h.hugepage_sizes[i] & (h.hugepage_sizes[i] - 1), 0);
		if (i)
			assert_true(h.hugepage_sizes[i] > h.hugepage_sizes[i - 1]);
	}
	if (h.default_hugepage_size) {
		bool found = false;

		for (int i = 0; i < h.nhugepage_sizes; i++)
			found |= h.hugepage_sizes[i] == h.default_hugepage_size;
		assert_true(found);
	}
	assert_true(h.nnodes >= 0 && h.nnodes <= MAX_HOST_NODES);
}

/* A new directory in /tmp (the caller removes it) and an empty file "f" in it. */
static void scratch_file(char dir[64], char file[128])
{
	FILE *f;

	snprintf(dir, 64, "/tmp/memvisor-files-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(file, 128, "%s/f", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
}

/* file=: what backing.c will open or create must be possible, checked before any zone is made. */
static void test_zone_files(void **state)
{
	char dir[64], file[128], bad[256], msg[512];
	struct vm_config cfg;

	(void)state;
	scratch_file(dir, file);

	/* an existing file, a directory, a missing file in an existing directory */
	snprintf(bad, sizeof(bad), "id=b,size=1G,file=%s/new", dir);
	snprintf(msg, sizeof(msg), "id=c,size=1G,file=%s", dir);
	OK(&cfg, "--memory", "size=0", "--memory-zone", "id=a,size=1G,file=/tmp/memvisor-a", bad,
	   msg);
	config__free(&cfg);
	snprintf(bad, sizeof(bad), "id=a,size=1G,file=%s", file);
	OK(&cfg, "--memory", "size=0", "--memory-zone", bad);
	config__free(&cfg);

	/* a later zone's bad file= is refused by validation, before zone 'a' is ever mapped */
	snprintf(bad, sizeof(bad), "id=b,size=1G,file=%s/nodir/x", dir);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'b': file '%s/nodir/x': directory "
		 "'%s/nodir' does not exist", dir, dir);
	ERR(msg, "--memory", "size=0", "--memory-zone", "id=a,size=1G,prefault=on", bad);
	snprintf(bad, sizeof(bad), "id=b,size=1G,file=%s/x", file);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'b': file '%s/x': Not a directory", file);
	ERR(msg, "--memory", "size=0", "--memory-zone", "id=a,size=1G", bad);
	ERR("--memory-zone: zone 'a': file '/dev/null': not a regular file or a directory",
	    "--memory", "size=0", "--memory-zone", "id=a,size=1G,file=/dev/null");
	/* root passes access(2) whatever the mode */
	if (geteuid() != 0) {
		assert_int_equal(chmod(file, 0400), 0);
		snprintf(bad, sizeof(bad), "id=a,size=1G,file=%s", file);
		snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%s': Permission denied",
			 file);
		ERR(msg, "--memory", "size=0", "--memory-zone", bad);
		assert_int_equal(chmod(dir, 0500), 0);
		snprintf(bad, sizeof(bad), "id=a,size=1G,file=%s/new", dir);
		snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%s/new': cannot create it "
			 "in '%s': Permission denied", dir, dir);
		ERR(msg, "--memory", "size=0", "--memory-zone", bad);
		assert_int_equal(chmod(dir, 0700), 0);
	}
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* One file behind two zones, however named, would be the same host pages twice in the guest. */
static void test_zone_files_shared(void **state)
{
	char dir[64], file[128], hard[128], sym[128], a[512], b[512], msg[512];
	struct vm_config cfg;

	(void)state;
	scratch_file(dir, file);
	snprintf(hard, sizeof(hard), "%s/hard", dir);
	snprintf(sym, sizeof(sym), "%s/sym", dir);
	assert_int_equal(link(file, hard), 0);
	assert_int_equal(symlink("f", sym), 0);

	snprintf(a, sizeof(a), "id=a,size=128M,shared=on,file=%s", file);
	for (const char *other = file; other; other = other == file ? hard : other == hard ? sym : NULL) {
		snprintf(b, sizeof(b), "id=b,size=128M,shared=on,file=%s", other);
		snprintf(msg, sizeof(msg), "--memory-zone: zone 'b': file '%s' is the file of zone 'a' "
			 "too (two zones cannot share a backing file)", other);
		ERR(msg, "--memory", "size=0", "--memory-zone", a, b);
	}
	/* not there yet: the same name through another spelling of its directory */
	snprintf(a, sizeof(a), "id=a,size=128M,file=%s/new", dir);
	snprintf(b, sizeof(b), "id=b,size=128M,file=%s/../%s/./new", dir, dir + 5);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'b': file '%s/../%s/./new' is the file of "
		 "zone 'a' too (two zones cannot share a backing file)", dir, dir + 5);
	ERR(msg, "--memory", "size=0", "--memory-zone", a, b);
	/* a directory gives each zone a temporary file of its own */
	snprintf(a, sizeof(a), "id=a,size=128M,shared=on,file=%s", dir);
	snprintf(b, sizeof(b), "id=b,size=128M,shared=on,file=%s/", dir);
	OK(&cfg, "--memory", "size=0", "--memory-zone", a, b);
	config__free(&cfg);
	/* a link to nothing: backing.c could neither create nor open it */
	assert_int_equal(unlink(sym), 0);
	assert_int_equal(symlink("missing", sym), 0);
	snprintf(a, sizeof(a), "id=a,size=128M,file=%s", sym);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%s': a symbolic link to a missing "
		 "file", sym);
	ERR(msg, "--memory", "size=0", "--memory-zone", a);
	assert_int_equal(unlink(sym), 0);
	assert_int_equal(unlink(hard), 0);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * Only storage backs a zone: not a device, a fifo, a socket, nor a kernel interface that stats
 * as a regular file (procfs, sysfs). Each is refused by validation, before any zone is made.
 */
static void test_zone_files_not_storage(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[64], path[512], arg[640], msg[640], big[301];
	int sock;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/memvisor-files-XXXXXX");
	assert_non_null(mkdtemp(dir));
	ERR("--memory-zone: zone 'b': file '/proc/self/mem': on procfs, a kernel interface, not "
	    "storage for guest memory", "--memory", "size=0", "--memory-zone",
	    "id=a,size=128M,prefault=on", "id=b,size=128M,file=/proc/self/mem");
	ERR("--memory-zone: zone 'a': file '/proc/memvisor-new': on procfs, a kernel interface, not "
	    "storage for guest memory", "--memory", "size=0", "--memory-zone",
	    "id=a,size=128M,file=/proc/memvisor-new");
	ERR("--memory-zone: zone 'a': file '/proc': on procfs, a kernel interface, not storage for "
	    "guest memory", "--memory", "size=0", "--memory-zone", "id=a,size=128M,file=/proc");
	ERR("--memory-zone: zone 'a': file '/sys/kernel/mm/transparent_hugepage/enabled': on "
	    "sysfs, a kernel interface, not storage for guest memory", "--memory", "size=0",
	    "--memory-zone", "id=a,size=128M,file=/sys/kernel/mm/transparent_hugepage/enabled");
	ERR("--memory-zone: zone 'a': file '/dev/zero': not a regular file or a directory",
	    "--memory", "size=0", "--memory-zone", "id=a,size=128M,file=/dev/zero");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(arg, sizeof(arg), "id=a,size=128M,file=%s", path);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%s': not a regular file or a "
		 "directory", path);
	ERR(msg, "--memory", "size=0", "--memory-zone", arg);
	assert_int_equal(unlink(path), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/sock", dir);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(sock >= 0);
	assert_int_equal(bind(sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
	snprintf(arg, sizeof(arg), "id=a,size=128M,file=%s", sun.sun_path);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%s': not a regular file or a "
		 "directory", sun.sun_path);
	ERR(msg, "--memory", "size=0", "--memory-zone", arg);
	assert_int_equal(close(sock), 0);
	assert_int_equal(unlink(sun.sun_path), 0);
	/* a name the file system refuses: the reason survives a long path, cut to its start */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(arg, sizeof(arg), "id=a,size=128M,file=%s/%s", dir, big);
	snprintf(path, sizeof(path), "%s/%s", dir, big);
	snprintf(msg, sizeof(msg), "--memory-zone: zone 'a': file '%.64s...(%zu bytes)': File name "
		 "too long", path, strlen(dir) + 1 + strlen(big));
	ERR(msg, "--memory", "size=0", "--memory-zone", arg);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_rules),
		cmocka_unit_test(test_no_hugetlb_host),
		cmocka_unit_test(test_zone_rules),
		cmocka_unit_test(test_node_absent_on_host),
		cmocka_unit_test(test_numa_rules),
		cmocka_unit_test(test_cpus_balloon_rules),
		cmocka_unit_test(test_hugepage_pools),
		cmocka_unit_test(test_zone_page_size),
		cmocka_unit_test(test_zone_files),
		cmocka_unit_test(test_zone_files_shared),
		cmocka_unit_test(test_zone_files_not_storage),
		cmocka_unit_test(test_validate_hand_built),
		cmocka_unit_test_teardown(test_host_probe_tree, remove_root),
		cmocka_unit_test(test_host_probe_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
