/* Unit tests of the command-line parser, the validation rules and the host probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "memory/config.h"
#include "util.h"

/* The options as options.def declares them, to check that parser and table agree. */
static const struct { const char *group, *name, *type, *def, *values, *help; } all_opts[] = {
#define OPT(g, n, t, d, v, h) { #g, #n, #t, d, v, h },
#include "memory/options.def"
#undef OPT
};

/* 2 host nodes; 2M pages: 512 free on node 0, 256 on node 1; 1G pages: 2 and 1. */
static struct host_info test_host(void)
{
	struct host_info h = {
		.page_size = 4096,
		.default_hugepage_size = 2 * MiB,
		.nhugepage_sizes = 2,
		.hugepage_sizes = { 2 * MiB, GiB },
		.nnodes = 2,
		.node_present = { true, true },
		.free_hugepages = { { 512, 256 }, { 2, 1 } },
		.free_hugepages_total = { 768, 3 },
	};
	return h;
}

#define ARGV(...) ((char *[]){ "memvisor", __VA_ARGS__, NULL })

static int count(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

static void join(char *buf, size_t len, char **argv)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 1; argv[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " %s", argv[i]);
}

/* Parse and validate against h; returns -1 with err on failure; cfg is freed on failure. */
static int run_host(struct vm_config *cfg, char **argv, const struct host_info *h, char *err,
		    size_t len)
{
	if (config__parse(cfg, count(argv), argv, err, len))
		return -1;
	if (config__validate(cfg, h, err, len)) {
		config__free(cfg);
		return -1;
	}
	return 0;
}

static void ok_host(struct vm_config *cfg, char **argv, const struct host_info *h)
{
	char err[512], args[1024];

	if (run_host(cfg, argv, h, err, sizeof(err))) {
		join(args, sizeof(args), argv);
		fail_msg("refused:%s\n  -> %s", args, err);
	}
}

static void err_host(const char *expected, char **argv, const struct host_info *h)
{
	struct vm_config cfg;
	char err[512] = "", args[1024];

	join(args, sizeof(args), argv);
	if (!run_host(&cfg, argv, h, err, sizeof(err))) {
		config__free(&cfg);
		fail_msg("accepted:%s\n  expected: %s", args, expected);
	}
	if (strcmp(err, expected))
		fail_msg("%s\n  expected: %s\n  got:      %s", args, expected, err);
}

static void ok_args(struct vm_config *cfg, char **argv)
{
	struct host_info h = test_host();

	ok_host(cfg, argv, &h);
}

static void err_args(const char *expected, char **argv)
{
	struct host_info h = test_host();

	err_host(expected, argv, &h);
}

/* Every case gets --kernel unless it tests --kernel itself. */
#define OK(cfg, ...) ok_args(cfg, ARGV("--kernel", "vmlinux", __VA_ARGS__))
#define ERR(msg, ...) err_args(msg, ARGV("--kernel", "vmlinux", __VA_ARGS__))

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
			   "--cpus=boot=2,max=3", "--kernel=/k", "--cmdline=console=ttyS0 x=1",
			   "--serial=off", "--initramfs=/i", "--numa=guest_numa_id=0"));
	assert_int_equal(cfg.nzones, 2);
	assert_string_equal(cfg.zones[1].id, "b");
	assert_int_equal(cfg.boot_cpus, 2);
	assert_int_equal(cfg.max_cpus, 3);
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
	ERR("--cpus: unknown key 'topology' (known: boot, max)", "--cpus", "topology=1:1:1:1");
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
	ERR("--numa: memory_zones=[xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]: "
	    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' is longer than 63 "
	    "characters", "--numa",
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
	ERR("--cpus: max=300 is above 255", "--cpus", "boot=300");
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
					       "boot=", "max=", "deflate_on_oom=",
					       "free_page_reporting=", NULL }; *a; a++)
		if (!strstr(text, *a))
			fail_msg("--help lacks %s", *a);
	free(text);
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

/* file=: what backing.c will open or create must be possible, checked before any zone is made. */
static void test_zone_files(void **state)
{
	char dir[64], file[128], bad[256], msg[512];
	struct vm_config cfg;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/memvisor-files-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/f", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);

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
		cmocka_unit_test(test_value_syntax),
		cmocka_unit_test(test_every_option_accepted),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_too_many_values),
		cmocka_unit_test(test_memory_rules),
		cmocka_unit_test(test_no_hugetlb_host),
		cmocka_unit_test(test_zone_rules),
		cmocka_unit_test(test_node_absent_on_host),
		cmocka_unit_test(test_numa_rules),
		cmocka_unit_test(test_cpus_balloon_rules),
		cmocka_unit_test(test_hugepage_pools),
		cmocka_unit_test(test_zone_page_size),
		cmocka_unit_test(test_zone_files),
		cmocka_unit_test(test_validate_hand_built),
		cmocka_unit_test(test_help),
		cmocka_unit_test_teardown(test_host_probe_tree, remove_root),
		cmocka_unit_test(test_host_probe_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
