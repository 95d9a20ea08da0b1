/* Unit tests of the command-line parser and --help. */
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/config_checks.h"

/* The options as options.def declares them, to check that parser and table agree. */
static const struct { const char *group, *name, *type, *def, *values, *help; } all_opts[] = {
#define OPT(g, n, t, d, v, h) { #g, #n, #t, d, v, h },
#include "memory/options.def"
#undef OPT
};

static bool cpu_in(const struct numa_config *n, int c)
{
	return n->cpus[c / 8] & (1u << (c % 8));
}

/* ---- parser ---- */

static void test_defaults(void **state)
{
	struct vm_config cfg;

	(void)state;
	ok_args(&cfg, ARGV("--kernel", "vmlinux"));
	assert_int_equal(cfg.memory.size, 512 * MiB);
	assert_true(cfg.memory.thp);
	assert_false(cfg.memory.mergeable || cfg.memory.shared || cfg.memory.hugepages ||
		     cfg.memory.prefault);
	assert_int_equal(cfg.memory.hotplug_method, HOTPLUG_ACPI);
	assert_int_equal(cfg.memory.hugepage_size + cfg.memory.hotplug_size +
			 cfg.memory.hotplugged_size, 0);
	assert_int_equal(cfg.nzones, 1);
	assert_string_equal(cfg.zones[0].id, DEFAULT_ZONE_ID);
	assert_int_equal(cfg.zones[0].size, 512 * MiB);
	assert_int_equal(cfg.zones[0].host_numa_node, -1);
	assert_int_equal(cfg.zones[0].guest_node, -1);
	assert_null(cfg.zones[0].file);
	assert_int_equal(cfg.nnuma, 0);
	assert_int_equal(cfg.boot_cpus, 1);
	assert_int_equal(cfg.max_cpus, 1);
	assert_true(cfg.kvm_pv_eoi);
	assert_string_equal(cfg.kernel, "vmlinux");
	assert_null(cfg.cmdline);
	assert_null(cfg.initramfs);
	assert_int_equal(cfg.serial, SERIAL_TTY);
	assert_false(cfg.balloon.enabled);
	assert_false(cfg.print_layout);
	config__free(&cfg);
	config__free(&cfg);	/* idempotent */
}

static void test_memory_all_keys(void **state)
{
	struct vm_config cfg;
	const struct zone_config *z = &cfg.zones[0];

	(void)state;
	OK(&cfg, "--memory", "size=1G,mergeable=on,shared=true,hugepages=ON,hugepage_size=2M,"
	   "hotplug_method=virtio-mem,hotplug_size=256M,hotplugged_size=128M,prefault=True,thp=off");
	assert_int_equal(cfg.memory.size, GiB);
	assert_true(cfg.memory.mergeable && cfg.memory.shared && cfg.memory.hugepages &&
		    cfg.memory.prefault);
	assert_false(cfg.memory.thp);
	assert_int_equal(cfg.memory.hugepage_size, 2 * MiB);
	assert_int_equal(cfg.memory.hotplug_method, HOTPLUG_VIRTIO_MEM);
	assert_int_equal(cfg.memory.hotplug_size, 256 * MiB);
	assert_int_equal(cfg.memory.hotplugged_size, 128 * MiB);
	/* mem0 carries --memory's backing and, with virtio-mem, its region */
	assert_int_equal(cfg.nzones, 1);
	assert_string_equal(z->id, DEFAULT_ZONE_ID);
	assert_int_equal(z->size, GiB);
	assert_true(z->shared && z->hugepages && z->prefault);
	assert_int_equal(z->hugepage_size, 2 * MiB);
	assert_int_equal(z->hotplug_size, 256 * MiB);
	assert_int_equal(z->hotplugged_size, 128 * MiB);
	config__free(&cfg);
}

static void test_memory_acpi_hotplug(void **state)
{
	struct vm_config cfg;

	(void)state;
	OK(&cfg, "--memory", "size=1G,hotplug_size=1G");
	assert_int_equal(cfg.memory.hotplug_method, HOTPLUG_ACPI);
	assert_int_equal(cfg.memory.hotplug_size, GiB);
	assert_int_equal(cfg.zones[0].hotplug_size, 0);	/* the ACPI area is not mem0's */
	config__free(&cfg);
	/* with zones too, and not a multiple of 128M: Cloud Hypervisor checks each DIMM later */
	OK(&cfg, "--memory", "size=0,hotplug_size=100M", "--memory-zone", "id=a,size=1G");
	assert_int_equal(cfg.memory.hotplug_size, 100 * MiB);
	config__free(&cfg);
}

static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "1", 1 }, { "4096", 4096 }, { "1K", KiB }, { "1k", KiB },
		{ "2M", 2 * MiB }, { "2m", 2 * MiB }, { "3G", 3 * GiB }, { "3g", 3 * GiB },
		{ "1T", 1024 * GiB }, { "1t", 1024 * GiB },
		{ "18446744073709551615", UINT64_MAX }, { "16777215T", 16777215ULL << 40 },
		{ "007M", 7 * MiB },
	};
	static const char *bad[] = { "", "K", "1KB", "1Ki", "1.5G", "-1", " 1", "1 ", "0x10",
				     "1P", "18446744073709551616", "16777216T", "17179869184G" };
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		v = 12345;
		if (parse_size(good[i].s, &v) || v != good[i].v)
			fail_msg("parse_size(\"%s\")", good[i].s);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (!parse_size(bad[i], &v))
			fail_msg("parse_size(\"%s\") accepted", bad[i]);
}

static void test_zones_repeated_and_multivalue(void **state)
{
	struct vm_config cfg;

	(void)state;
	OK(&cfg, "--memory", "size=0,hotplug_method=virtio-mem",
	   "--memory-zone", "id=a,size=1G", "id=b,size=2G,shared=on,prefault=on",
	   "--cpus", "boot=2",
	   "--memory-zone", "id=c,size=1G,file=/tmp/memvisor-test-c,host_numa_node=1",
	   "id=d,size=1G,hugepages=on,hugepage_size=1G,hotplug_size=2G,hotplugged_size=1G",
	   "--memory-zone", "id=e,size=4M,hugepages=on");
	assert_int_equal(cfg.memory.size, 0);
	assert_int_equal(cfg.nzones, 5);
	assert_string_equal(cfg.zones[0].id, "a");
	assert_int_equal(cfg.zones[0].size, GiB);
	assert_false(cfg.zones[0].shared || cfg.zones[0].hugepages || cfg.zones[0].prefault);
	assert_null(cfg.zones[0].file);
	assert_int_equal(cfg.zones[0].host_numa_node, -1);
	assert_string_equal(cfg.zones[1].id, "b");
	assert_int_equal(cfg.zones[1].size, 2 * GiB);
	assert_true(cfg.zones[1].shared && cfg.zones[1].prefault);
	assert_string_equal(cfg.zones[2].file, "/tmp/memvisor-test-c");
	assert_int_equal(cfg.zones[2].host_numa_node, 1);
	assert_true(cfg.zones[3].hugepages);
	assert_int_equal(cfg.zones[3].hugepage_size, GiB);
	assert_int_equal(cfg.zones[3].hotplug_size, 2 * GiB);
	assert_int_equal(cfg.zones[3].hotplugged_size, GiB);
	assert_int_equal(cfg.zones[4].hugepage_size, 0);	/* the host's default */
	assert_int_equal(cfg.boot_cpus, 2);
	for (int i = 0; i < cfg.nzones; i++)
		assert_int_equal(cfg.zones[i].guest_node, -1);
	config__free(&cfg);
}

static void test_equals_form(void **state)
{
	struct vm_config cfg;

	(void)state;
	ok_args(&cfg, ARGV("--memory=size=0", "--memory-zone=id=a,size=1G", "id=b,size=1G",
			   "--cpus=boot=2,max=3,kvm_pv_eoi=off", "--kernel=/k",
			   "--cmdline=console=ttyS0 x=1",
			   "--serial=off", "--initramfs=/i", "--numa=guest_numa_id=0"));
	assert_int_equal(cfg.nzones, 2);
	assert_string_equal(cfg.zones[1].id, "b");
	assert_int_equal(cfg.boot_cpus, 2);
	assert_int_equal(cfg.max_cpus, 3);
	assert_false(cfg.kvm_pv_eoi);
	assert_string_equal(cfg.kernel, "/k");
	assert_string_equal(cfg.cmdline, "console=ttyS0 x=1");
	assert_string_equal(cfg.initramfs, "/i");
	assert_int_equal(cfg.serial, SERIAL_OFF);
	assert_int_equal(cfg.nnuma, 1);
	config__free(&cfg);
}

static void test_numa_syntaxes(void **state)
{
	/* the current syntax, the older one (':' and id=), and single values without [ ] */
	static char *forms[][2] = {
		{ "guest_numa_id=0,cpus=[0-1,3],distances=[1@20],memory_zones=[a,b]",
		  "guest_numa_id=1,cpus=[2],distances=[0@20],memory_zones=[c]" },
		{ "id=0,cpus=0-1:3,distances=1@20,memory_zones=a:b",
		  "id=1,cpus=2,distances=0@20,memory_zones=c" },
		{ "guest_numa_id=0,cpus=[0-1:3],distances=[1@20],memory_zones=[a:b]",
		  "guest_numa_id=1,cpus=2,distances=0@20,memory_zones=c" },
	};
	struct vm_config cfg;

	(void)state;
	for (size_t f = 0; f < ARRAY_SIZE(forms); f++) {
		OK(&cfg, "--cpus", "boot=4", "--memory", "size=0",
		   "--memory-zone", "id=a,size=1G", "id=b,size=1G", "id=c,size=1G",
		   "--numa", forms[f][0], forms[f][1]);
		assert_int_equal(cfg.nnuma, 2);
		assert_int_equal(cfg.numa[0].guest_numa_id, 0);
		assert_true(cpu_in(&cfg.numa[0], 0) && cpu_in(&cfg.numa[0], 1) &&
			    cpu_in(&cfg.numa[0], 3));
		assert_false(cpu_in(&cfg.numa[0], 2) || cpu_in(&cfg.numa[0], 4));
		assert_true(cpu_in(&cfg.numa[1], 2));
		assert_int_equal(cfg.numa[0].ndistances, 1);
		assert_int_equal(cfg.numa[0].distances[0].dest, 1);
		assert_int_equal(cfg.numa[0].distances[0].distance, 20);
		assert_int_equal(cfg.numa[0].nzones, 2);
		assert_string_equal(cfg.numa[0].zones[0], "a");
		assert_string_equal(cfg.numa[0].zones[1], "b");
		assert_int_equal(cfg.numa[1].nzones, 1);
		assert_string_equal(cfg.numa[1].zones[0], "c");
		assert_int_equal(cfg.zones[0].guest_node, 0);
		assert_int_equal(cfg.zones[1].guest_node, 0);
		assert_int_equal(cfg.zones[2].guest_node, 1);
		config__free(&cfg);
	}
	/* a range without brackets, repeated --numa, self distance 10, 255 */
	OK(&cfg, "--cpus", "boot=5,max=8", "--numa", "guest_numa_id=0,cpus=0-4,distances=[0@10,1@255]",
	   "--numa", "guest_numa_id=1,cpus=[5-7],memory_zones=mem0");
	for (int c = 0; c < 5; c++)
		assert_true(cpu_in(&cfg.numa[0], c));
	assert_int_equal(cfg.numa[0].distances[1].distance, 255);
	assert_int_equal(cfg.zones[0].guest_node, 1);
	config__free(&cfg);
}

static void test_guest_node(void **state)
{
	struct vm_config cfg;

	(void)state;
	/* 'c' is in no node: it joins guest_numa_id 0, the second --numa entry */
	OK(&cfg, "--memory", "size=0", "--memory-zone", "id=a,size=1G", "id=b,size=1G",
	   "id=c,size=1G", "--numa", "guest_numa_id=1,memory_zones=a",
	   "guest_numa_id=0,memory_zones=b");
	assert_int_equal(cfg.zones[0].guest_node, 0);
	assert_int_equal(cfg.zones[1].guest_node, 1);
	assert_int_equal(cfg.zones[2].guest_node, 1);
	config__free(&cfg);
}

static void test_other_options(void **state)
{
	struct vm_config cfg;

	(void)state;
	OK(&cfg, "--cpus", "boot=2,max=4", "--serial", "file=/tmp/serial.log",
	   "--balloon", "size=128M,deflate_on_oom=on,free_page_reporting=true",
	   "--initramfs", "/boot/initrd", "--cmdline", "console=ttyS0 quiet", "--print-layout");
	assert_int_equal(cfg.boot_cpus, 2);
	assert_int_equal(cfg.max_cpus, 4);
	assert_int_equal(cfg.serial, SERIAL_FILE);
	assert_string_equal(cfg.serial_file, "/tmp/serial.log");
	assert_true(cfg.balloon.enabled && cfg.balloon.deflate_on_oom &&
		    cfg.balloon.free_page_reporting);
	assert_int_equal(cfg.balloon.size, 128 * MiB);
	assert_string_equal(cfg.initramfs, "/boot/initrd");
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	assert_true(cfg.print_layout);
	config__free(&cfg);
	OK(&cfg, "--serial", "tty", "--balloon", "size=0");
	assert_int_equal(cfg.serial, SERIAL_TTY);
	assert_true(cfg.balloon.enabled);
	assert_false(cfg.balloon.deflate_on_oom || cfg.balloon.free_page_reporting);
	config__free(&cfg);
	/* --print-layout makes --kernel optional */
	ok_args(&cfg, ARGV("--print-layout"));
	assert_null(cfg.kernel);
	config__free(&cfg);
}

static void test_api_socket(void **state)
{
	struct vm_config cfg;
	char long_path[120], msg[200];

	(void)state;
	OK(&cfg, "--api-socket", "path=/run/mv.sock");
	assert_string_equal(cfg.api_socket, "/run/mv.sock");
	config__free(&cfg);
	assert_null(cfg.api_socket);
	/* Cloud Hypervisor also takes the bare path, and --option=value as everywhere */
	OK(&cfg, "--api-socket=/tmp/a,b=c.sock");
	assert_string_equal(cfg.api_socket, "/tmp/a,b=c.sock");
	config__free(&cfg);
	OK(&cfg, "--api-socket=path=rel.sock");
	assert_string_equal(cfg.api_socket, "rel.sock");
	config__free(&cfg);
	ok_args(&cfg, ARGV("--kernel", "vmlinux"));
	assert_null(cfg.api_socket);
	config__free(&cfg);

	ERR("--api-socket: missing value", "--api-socket");
	ERR("--api-socket: '': expected path=PATH or PATH", "--api-socket=");
	ERR("--api-socket: 'path=': expected path=PATH or PATH", "--api-socket", "path=");
	ERR("--api-socket: 'fd=3': fd= is not supported, give path=PATH", "--api-socket", "fd=3");
	ERR("--api-socket: given more than once", "--api-socket", "a", "--api-socket", "b");
	memset(long_path, 'x', 108);
	long_path[108] = '\0';
	snprintf(msg, sizeof(msg), "--api-socket: '%.64s...(108 bytes)' is longer than a unix "
		 "socket's 107 bytes", long_path);
	ERR(msg, "--api-socket", long_path);
	long_path[107] = '\0';
	OK(&cfg, "--api-socket", long_path);
	assert_int_equal(strlen(cfg.api_socket), 107);
	config__free(&cfg);
}

static void test_value_syntax(void **state)
{
	struct vm_config cfg;

	(void)state;
	/* quotes protect commas; the last of a repeated key wins; "key=" is not given */
	OK(&cfg, "--memory", "size=0", "--memory-zone",
	   "id=a,size=1G,file=\"/tmp/a,b\",size=2G,hugepage_size=");
	assert_string_equal(cfg.zones[0].file, "/tmp/a,b");
	assert_int_equal(cfg.zones[0].size, 2 * GiB);
	assert_int_equal(cfg.zones[0].hugepage_size, 0);
	config__free(&cfg);
	/* Spec: size "is mandatory when using the --memory parameter"; without --memory, 512M. */
	ERR("--memory: size is mandatory", "--memory", "");
	ERR("--memory: size is mandatory", "--memory", "size=");
	ERR("--memory: size is mandatory", "--memory", "shared=on,prefault=on");
	OK(&cfg, "--memory", "size=1G,thp=", "--cpus", "boot=2,max=");
	assert_true(cfg.memory.thp);
	assert_int_equal(cfg.max_cpus, 2);
	config__free(&cfg);
}

/* Each option of options.def, with a valid value of its type, gets through the parser. */
static void test_every_option_accepted(void **state)
{
	static const struct { const char *type, *samples[4]; } samples[] = {
		{ "SIZE", { "2M", "4096", "1g" } },
		{ "BOOL", { "on", "off", "true", "false" } },
		{ "U32", { "0", "1" } },
		{ "STRING", { "x" } },
		{ "U8_LIST", { "[0-1,3]", "0", "0:2" } },
		{ "DIST_LIST", { "[1@20]", "1@20:2@30" } },
		{ "STRING_LIST", { "[a,b]", "a", "a:b" } },
	};
	int checked = 0;

	(void)state;
	for (size_t o = 0; o < ARRAY_SIZE(all_opts); o++) {
		const char *vals[8] = { 0 };
		char enumbuf[128], *tok, *save;
		int nvals = 0;

		if (!strcmp(all_opts[o].type, "ENUM")) {
			snprintf(enumbuf, sizeof(enumbuf), "%s", all_opts[o].values);
			for (tok = strtok_r(enumbuf, "|", &save); tok && nvals < 8;
			     tok = strtok_r(NULL, "|", &save))
				vals[nvals++] = tok;
		}
		for (size_t s = 0; s < ARRAY_SIZE(samples); s++)
			if (!strcmp(all_opts[o].type, samples[s].type))
				for (int i = 0; i < 4 && samples[s].samples[i]; i++)
					vals[nvals++] = samples[s].samples[i];
		if (!nvals)
			fail_msg("options.def: %s has type %s, which this test does not know",
				 all_opts[o].name, all_opts[o].type);
		for (int i = 0; i < nvals; i++) {
			struct vm_config cfg;
			char kv[128], zone[160], err[512];
			int r = -1;

			snprintf(kv, sizeof(kv), "%s=%s", all_opts[o].name, vals[i]);
			if (!strcmp(all_opts[o].group, "MEMORY")) {
				/* size is mandatory; given twice, the last one wins */
				snprintf(zone, sizeof(zone), "size=1G,%s", kv);
				r = config__parse(&cfg, 3, ARGV("--memory", zone), err, sizeof(err));
			} else if (!strcmp(all_opts[o].group, "ZONE")) {
				snprintf(zone, sizeof(zone), "id=z,size=1G,%s", kv);
				r = config__parse(&cfg, 5, ARGV("--memory", "size=0", "--memory-zone",
								zone), err, sizeof(err));
			} else if (!strcmp(all_opts[o].group, "NUMA")) {
				snprintf(zone, sizeof(zone), "guest_numa_id=0,%s", kv);
				r = config__parse(&cfg, 3, ARGV("--numa", zone), err, sizeof(err));
			} else {
				fail_msg("options.def: unknown group %s", all_opts[o].group);
			}
			if (r)
				fail_msg("%s %s refused: %s", all_opts[o].group, kv, err);
			config__free(&cfg);
			checked++;
		}
	}
	assert_true(checked > (int)ARRAY_SIZE(all_opts));
}

/* "size, mergeable, ..." for a group, from options.def, as the unknown-key message lists them */
static const char *known(const char *group)
{
	static char buf[512];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t o = 0; o < ARRAY_SIZE(all_opts); o++)
		if (!strcmp(all_opts[o].group, group))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "",
					      all_opts[o].name);
	return buf;
}

static void test_parse_errors(void **state)
{
	char msg[768];

	(void)state;
	snprintf(msg, sizeof(msg), "--memory: unknown key 'foo' (known: %s)", known("MEMORY"));
	ERR(msg, "--memory", "size=1G,foo=1");
	snprintf(msg, sizeof(msg), "--memory-zone: unknown key 'mergeable' (known: %s)",
		 known("ZONE"));
	ERR(msg, "--memory", "size=0", "--memory-zone", "id=a,size=1G,mergeable=on");
	snprintf(msg, sizeof(msg), "--numa: unknown key 'sgx_epc_sections' (known: %s)",
		 known("NUMA"));
	ERR(msg, "--numa", "guest_numa_id=0,sgx_epc_sections=[epc0]");
	ERR("--cpus: unknown key 'topology' (known: boot, max, kvm_pv_eoi)", "--cpus", "topology=1:1:1:1");
	ERR("--foo: unknown option (see --help)", "--foo");
	ERR("--foo: unknown option (see --help)", "--foo=1");
	ERR("'stray': unexpected argument (options start with --)", "stray");
	ERR("'-m': unexpected argument (options start with --)", "-m", "1G");
	ERR("--memory: missing value", "--memory");
	ERR("--memory: missing value", "--memory", "--cpus", "boot=1");
	ERR("--memory-zone: missing value", "--memory-zone", "--numa", "guest_numa_id=0");
	ERR("--memory: given more than once", "--memory", "size=1G", "--memory", "size=2G");
	ERR("--cpus: given more than once", "--cpus", "boot=1", "--cpus", "boot=2");
	ERR("--print-layout: given more than once", "--print-layout", "--print-layout");
	ERR("--print-layout: takes no value", "--print-layout=yes");
	ERR("'x': unexpected argument (options start with --)", "--print-layout", "x");
	ERR("'extra': unexpected argument (options start with --)", "--memory", "size=1G", "extra");
	ERR("--memory: size=12X: not a size (a number with an optional K, M, G or T suffix, "
	    "below 16E)", "--memory", "size=12X");
	ERR("--memory-zone: hotplug_size=1P: not a size (a number with an optional K, M, G or T "
	    "suffix, below 16E)", "--memory", "size=0", "--memory-zone", "id=a,size=1G,hotplug_size=1P");
	ERR("--memory: mergeable=yes: expected on, off, true or false", "--memory",
	    "size=1G,mergeable=yes");
	ERR("--memory: hotplug_method=dimm: expected acpi|virtio-mem", "--memory",
	    "size=1G,hotplug_method=dimm");
	ERR("--numa: guest_numa_id=-1: not a number of 0-4294967295", "--numa", "guest_numa_id=-1");
	ERR("--numa: guest_numa_id=4294967296: not a number of 0-4294967295", "--numa",
	    "guest_numa_id=4294967296");
	ERR("--cpus: boot=two: not a number of 0-4294967295", "--cpus", "boot=two");
	ERR("--numa: unbalanced brackets or quotes in 'guest_numa_id=0,cpus=[0'", "--numa",
	    "guest_numa_id=0,cpus=[0");
	ERR("--numa: unbalanced brackets or quotes in 'guest_numa_id=0,cpus=0]'", "--numa",
	    "guest_numa_id=0,cpus=0]");
	ERR("--memory-zone: unbalanced brackets or quotes in 'id=a,size=1G,file=\"/x'", "--memory",
	    "size=0", "--memory-zone", "id=a,size=1G,file=\"/x");
	ERR("--memory: 'size' is not key=value", "--memory", "size");
	ERR("--memory: '' is not key=value", "--memory", "size=1G,");
	ERR("--numa: '1' is not key=value", "--cpus", "boot=2", "--numa", "guest_numa_id=0,cpus=0,1");
	ERR("--numa: cpus=[]: empty list", "--numa", "guest_numa_id=0,cpus=[]");
	ERR("--numa: cpus=[0,,1]: empty list element", "--numa", "guest_numa_id=0,cpus=[0,,1]");
	ERR("--numa: cpus=[3-1]: range 3-1 must go upwards", "--numa", "guest_numa_id=0,cpus=[3-1]");
	ERR("--numa: cpus=[2-2]: range 2-2 must go upwards", "--numa", "guest_numa_id=0,cpus=[2-2]");
	ERR("--numa: cpus=[0-256]: vCPU 256 is above 255", "--numa", "guest_numa_id=0,cpus=[0-256]");
	ERR("--numa: cpus=[x]: 'x' is not a number or a range a-b", "--numa",
	    "guest_numa_id=0,cpus=[x]");
	ERR("--numa: cpus=[1-2-3]: '1' is not a number or a range a-b", "--numa",
	    "guest_numa_id=0,cpus=[1-2-3]");
	ERR("--numa: cpus=[[0]]: a list is [a,b,...] or a single element", "--numa",
	    "guest_numa_id=0,cpus=[[0]]");
	ERR("--numa: memory_zones=[a]b: a list is [a,b,...] or a single element", "--numa",
	    "guest_numa_id=0,memory_zones=[a]b");
	ERR("--numa: distances=[1-20]: expected node@distance with a distance of 0-255", "--numa",
	    "guest_numa_id=0,distances=[1-20]");
	ERR("--numa: distances=[1@256]: expected node@distance with a distance of 0-255", "--numa",
	    "guest_numa_id=0,distances=[1@256]");
	ERR("--numa: distances=[@20]: expected node@distance with a distance of 0-255", "--numa",
	    "guest_numa_id=0,distances=[@20]");
	ERR("--numa: missing guest_numa_id in 'cpus=0'", "--numa", "cpus=0");
	ERR("--memory-zone: missing id in 'size=1G'", "--memory", "size=0", "--memory-zone",
	    "size=1G");
	ERR("--memory-zone: missing id in 'id=,size=1G'", "--memory", "size=0", "--memory-zone",
	    "id=,size=1G");
	ERR("--memory-zone: zone 'a': missing size", "--memory", "size=0", "--memory-zone", "id=a");
	ERR("--memory-zone: id 'a:b': use letters, digits, '_', '.' and '-', not starting with '__'",
	    "--memory", "size=0", "--memory-zone", "id=a:b,size=1G");
	ERR("--memory-zone: id '__a': use letters, digits, '_', '.' and '-', not starting with '__'",
	    "--memory", "size=0", "--memory-zone", "id=__a,size=1G");
	ERR("--memory-zone: id 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "
	    "is longer than 63 characters", "--memory", "size=0", "--memory-zone",
	    "id=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,size=1G");
	ERR("--numa: memory_zones=[xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "...(66 bytes): 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "
	    "is longer than 63 characters", "--numa",
	    "guest_numa_id=0,memory_zones=[xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]");
	ERR("--memory-zone: zone 'a': host_numa_node 4294967295 is not present on the host",
	    "--memory", "size=0", "--memory-zone", "id=a,size=1G,host_numa_node=4294967295");
	ERR("--serial: 'pty': expected tty, off or file=PATH", "--serial", "pty");
	ERR("--serial: 'file=': expected tty, off or file=PATH", "--serial", "file=");
	ERR("--balloon: deflate_on_oom=maybe: expected on, off, true or false", "--balloon",
	    "size=1M,deflate_on_oom=maybe");
	ERR("--kernel: given more than once", "--kernel", "other");
	err_args("--kernel: empty value", ARGV("--kernel", ""));
	ERR("--cmdline: empty value", "--cmdline=");
}

/*
 * What a hostile command line puts in a message comes out as one harmless line: control
 * characters escaped, a long value cut to its first 64 bytes and its length, the reason kept.
 */
static void test_hostile_values(void **state)
{
	char big[10001], arg[10100], msg[512];

	(void)state;
	ERR("--memory-zone: id 'a\\nb\\x1b[2J]\\x7f\\t': use letters, digits, '_', '.' and '-', not "
	    "starting with '__'", "--memory", "size=0", "--memory-zone",
	    "id=a\nb\x1b[2J]\x7f\t,size=1G");
	ERR("--\\x1b]0;owned\\x07: unknown option (see --help)", "--\x1b]0;owned\x07");
	ERR("'\\r\\x1b[1A': unexpected argument (options start with --)", "\r\x1b[1A");
	/* a C1 control (CSI as U+009B) is escaped, other UTF-8 is kept */
	ERR("--serial: 'caf\xc3\xa9\\xc2\\x9b': expected tty, off or file=PATH", "--serial",
	    "caf\xc3\xa9\xc2\x9b");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(arg, sizeof(arg), "id=%s,size=1G", big);
	snprintf(msg, sizeof(msg), "--memory-zone: id '%.64s...(10000 bytes)' is longer than 63 "
		 "characters", big);
	ERR(msg, "--memory", "size=0", "--memory-zone", arg);
	snprintf(msg, sizeof(msg), "--memory: size=%.64s...(10000 bytes): not a size (a number with "
		 "an optional K, M, G or T suffix, below 16E)", big);
	snprintf(arg, sizeof(arg), "size=%s", big);
	ERR(msg, "--memory", arg);
	snprintf(msg, sizeof(msg), "--memory: unknown key '%.64s...(10000 bytes)' (known: %s)", big,
		 known("MEMORY"));
	snprintf(arg, sizeof(arg), "%s=1", big);
	ERR(msg, "--memory", arg);
}

/* -h, -v, --help, --version and --verbose are flags where an option may start, never a value. */
static void test_main_flags(void **state)
{
	struct vm_config cfg;
	char err[512];

	(void)state;
	OK(&cfg, "--cmdline", "-v", "--initramfs", "-h");
	assert_string_equal(cfg.cmdline, "-v");
	assert_string_equal(cfg.initramfs, "-h");
	assert_false(cfg.help || cfg.verbose || cfg.version);
	config__free(&cfg);
	ok_args(&cfg, ARGV("--kernel", "-h"));
	assert_string_equal(cfg.kernel, "-h");
	assert_false(cfg.help);
	config__free(&cfg);
	/* after a zone's values: -v cannot be one (not key=value), so it is the flag */
	OK(&cfg, "--memory", "size=0", "--memory-zone", "id=a,size=1G", "-v", "--cmdline=--help");
	assert_int_equal(cfg.nzones, 1);
	assert_true(cfg.verbose);
	assert_false(cfg.help);
	assert_string_equal(cfg.cmdline, "--help");
	config__free(&cfg);
	OK(&cfg, "--verbose");
	assert_true(cfg.verbose);
	config__free(&cfg);
	/* --help answers without the rest being parsed, as before any option is checked */
	assert_int_equal(config__parse(&cfg, 4, ARGV("--memory", "size=bogus", "-h"), err,
				       sizeof(err)), 0);
	assert_true(cfg.help);
	config__free(&cfg);
	assert_int_equal(config__parse(&cfg, 2, ARGV("--version"), err, sizeof(err)), 0);
	assert_true(cfg.version);
	config__free(&cfg);
	/* a bad argument after --help does not stop the answer; one before it is reported */
	assert_int_equal(config__parse(&cfg, 3, ARGV("--help", "--bogus"), err, sizeof(err)), 0);
	assert_true(cfg.help);
	config__free(&cfg);
	ERR("'-x': unexpected argument (options start with --)", "-x", "--help");
	ERR("--cmdline: missing value", "--cmdline", "--help");
	ERR("'-x': unexpected argument (options start with --)", "-x");
}

static void test_too_many_values(void **state)
{
	char *argv[80], ids[40][32], *nodes[40];
	char err[512];
	struct vm_config cfg;
	int n = 0;

	(void)state;
	argv[n++] = "memvisor";
	argv[n++] = "--memory-zone";
	for (int i = 0; i <= MAX_ZONES; i++) {
		snprintf(ids[i], sizeof(ids[i]), "id=z%d,size=1G", i);
		argv[n++] = ids[i];
	}
	argv[n] = NULL;
	assert_int_equal(config__parse(&cfg, n, argv, err, sizeof(err)), -1);
	assert_string_equal(err, "--memory-zone: more than 32 values");
	n = 1;
	for (int i = 0; i <= MAX_NUMA_NODES; i++) {
		nodes[i] = "guest_numa_id=0";
		argv[n++] = "--numa";
		argv[n++] = nodes[i];
	}
	argv[n] = NULL;
	assert_int_equal(config__parse(&cfg, n, argv, err, sizeof(err)), -1);
	assert_string_equal(err, "--numa: more than 32 values");
}

/* ---- help ---- */

static void test_help(void **state)
{
	static const struct { const char *group, *arg; } sections[] = {
		{ "MEMORY", "\n  --memory " }, { "ZONE", "\n  --memory-zone " },
		{ "NUMA", "\n  --numa " },
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	config__print_help(f);
	assert_int_equal(fclose(f), 0);
	for (size_t o = 0; o < ARRAY_SIZE(all_opts); o++) {
		const char *sec = NULL, *end, *line, *eol;
		char key[80], def[80];

		for (size_t s = 0; s < ARRAY_SIZE(sections); s++)
			if (!strcmp(sections[s].group, all_opts[o].group))
				sec = strstr(text, sections[s].arg);
		assert_non_null(sec);
		end = strstr(sec + 1, "\n  --");
		snprintf(key, sizeof(key), "\n        %s=", all_opts[o].name);
		line = strstr(sec, key);
		if (!line || (end && line > end))
			fail_msg("--help: no %s in its section", all_opts[o].name);
		eol = strchr(line + 1, '\n');
		snprintf(def, sizeof(def), "[default: %s]", all_opts[o].def);
		if (!memmem(line, (size_t)(eol - line), all_opts[o].help, strlen(all_opts[o].help)))
			fail_msg("--help: %s lacks its help text", all_opts[o].name);
		if (*all_opts[o].def && !memmem(line, (size_t)(eol - line), def, strlen(def)))
			fail_msg("--help: %s lacks %s", all_opts[o].name, def);
	}
	for (const char **a = (const char *[]){ "--cpus ", "--balloon ", "--kernel ", "--cmdline ",
					       "--initramfs ", "--serial ", "--print-layout",
					       "--api-socket path=PATH|PATH",
					       "boot=", "max=", "deflate_on_oom=",
					       "free_page_reporting=", NULL }; *a; a++)
		if (!strstr(text, *a))
			fail_msg("--help lacks %s", *a);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_memory_all_keys),
		cmocka_unit_test(test_memory_acpi_hotplug),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_zones_repeated_and_multivalue),
		cmocka_unit_test(test_equals_form),
		cmocka_unit_test(test_numa_syntaxes),
		cmocka_unit_test(test_guest_node),
		cmocka_unit_test(test_other_options),
		cmocka_unit_test(test_api_socket),
		cmocka_unit_test(test_value_syntax),
		cmocka_unit_test(test_every_option_accepted),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_main_flags),
		cmocka_unit_test(test_too_many_values),
		cmocka_unit_test(test_help),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
