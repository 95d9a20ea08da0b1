/*
 * bench/native: the host's cost of populating guest RAM, for every backing in backings.def,
 * with the VMM's own backing code (linked with every VMM object but main.o), no KVM needed.
 *
 *     build/bench/native --size 1G --repeat 5 --tmpfs /dev/shm [--only a,b] [--no-warmup]
 *
 * Output: one JSON object per line on stdout (the harness in bench/native.py reads them):
 *     {"kind":"host", ...}                          what the measurements ran on
 *     {"kind":"limit","name":"memset_1t",...}        bandwidth limits, "ns": [one per repeat]
 *     {"kind":"populate","backing":"anonymous","mode":"first_touch",...,"limit_ns":[...],"ns":[...]}
 *                                                    limit_ns[i]: memset of the same size just
 *                                                    before sample i (see populate_once)
 *     {"kind":"skip","backing":"hugetlb_1g","mode":"*","reason":"..."}
 * Every sample is the wall time of populating the whole size once; one untimed run of each
 * measurement comes first (on a VM, the first touch of guest-physical memory also pays the outer
 * hypervisor, which is not what we measure).
 *
 * Each backing is configured as memvisor would configure it: its options string from
 * backings.def goes through config__parse, host__probe and config__validate, so the zone gets
 * exactly what `memvisor --memory size=N,<options>` would give it (file=PATH becomes a fresh
 * directory on a tmpfs, which backing__create turns into an unlinked temporary file).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "memory/backing.h"
#include "memory/config.h"
#include "util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

#define TOUCH_STRIDE 4096	/* one write per 4 KiB, as the fault guest does */
#define MAX_THREADS 256
#define MIN(a, b) ((a) < (b) ? (a) : (b))

struct backing_def {
	const char *name, *opts;
	uint64_t page_size;
};

static const struct backing_def backings[] = {
#define BACKING(name, opts, pagesz, mapping, desc) { #name, opts, pagesz },
#include "memory/backings.def"
#undef BACKING
};

struct opts {
	uint64_t size;
	int repeat;
	const char *tmpfs;
	const char *only;
	bool warmup;
	int threads;		/* for the N-thread limit; 0: the CPUs we may run on */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die_perror("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_samples(const uint64_t *ns, int n)
{
	printf(",\"ns\":[");
	for (int i = 0; i < n; i++)
		printf("%s%" PRIu64, i ? "," : "", ns[i]);
	printf("]}\n");
	fflush(stdout);
}

static void print_skip(const char *backing, const char *mode, const char *reason)
{
	printf("{\"kind\":\"skip\",\"backing\":");
	json_str(backing);
	printf(",\"mode\":");
	json_str(mode);
	printf(",\"reason\":");
	json_str(reason);
	printf("}\n");
	fflush(stdout);
}

/* --- limits: what populating memory cannot beat on this machine --------------------------- */

struct fill_job {
	char *start;
	uint64_t len;
	int value;
	pthread_barrier_t *barrier;
	pthread_t thread;
};

static void *fill_thread(void *arg)
{
	struct fill_job *j = arg;

	pthread_barrier_wait(j->barrier);
	memset(j->start, j->value, j->len);
	pthread_barrier_wait(j->barrier);
	return NULL;
}

/* memset of [p, p+len) by n threads over disjoint slices; returns the wall time. */
static uint64_t timed_fill(char *p, uint64_t len, int n, int value)
{
	struct fill_job jobs[MAX_THREADS];
	pthread_barrier_t barrier;
	uint64_t per = len / n / 4096 * 4096, t0, t1;
	int e;

	if ((e = pthread_barrier_init(&barrier, NULL, n)))
		die("pthread_barrier_init: %s", strerror(e));
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct fill_job){ .start = p + i * per, .value = value, .barrier = &barrier,
					     .len = i == n - 1 ? len - i * per : per };
		if (i && (e = pthread_create(&jobs[i].thread, NULL, fill_thread, &jobs[i])))
			die("pthread_create: %s", strerror(e));
	}
	/* Thread 0 is us: the clock starts when every thread is ready and stops when all are done. */
	pthread_barrier_wait(&barrier);
	t0 = now_ns();
	memset(jobs[0].start, value, jobs[0].len);
	pthread_barrier_wait(&barrier);
	t1 = now_ns();
	for (int i = 1; i < n; i++)
		if ((e = pthread_join(jobs[i].thread, NULL)))
			die("pthread_join: %s", strerror(e));
	pthread_barrier_destroy(&barrier);
	/* Read something back, so that no compiler may drop the stores to memory never read. */
	if (*(volatile char *)(p + len - 1) != (char)value)
		die("memset did not write");
	return t1 - t0;
}

/* Bandwidth of memset over memory whose pages all exist: no fault, only stores. */
static void limit_memset(const struct opts *o, int threads, const char *name)
{
	uint64_t ns[o->repeat];
	char *p = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die_perror("mmap of %" PRIu64 " bytes for %s", o->size, name);
	if (o->warmup)
		timed_fill(p, o->size, threads, 0x5a);
	for (int i = 0; i < o->repeat; i++)
		ns[i] = timed_fill(p, o->size, threads, i & 0xff);
	if (munmap(p, o->size) < 0)
		die_perror("munmap");
	printf("{\"kind\":\"limit\",\"name\":\"%s\",\"bytes\":%" PRIu64 ",\"threads\":%d", name,
	       o->size, threads);
	print_samples(ns, o->repeat);
}

/*
 * The kernel's zeroing rate for huge pages: populating a bare hugetlb mapping is clearing its
 * pages and little else (one fault per 2 MiB). Measured on a raw mapping, not a backing: it is
 * the reference the hugetlb backings are compared with.
 */
static void limit_kzero(const struct opts *o)
{
	const uint64_t page = 2 * MiB;
	uint64_t len = ALIGN_UP(o->size, page), ns[o->repeat];
	char reason[256];

	for (int i = -(int)o->warmup; i < o->repeat; i++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT),
			       -1, 0);
		uint64_t t0;

		if (p == MAP_FAILED) {
			snprintf(reason, sizeof(reason), "mmap of %" PRIu64 " MiB of 2 MiB hugetlb "
				 "pages failed: %s (no pool?)", (uint64_t)(len / MiB), strerror(errno));
			print_skip("limit", "kzero_2m", reason);
			return;
		}
		t0 = now_ns();
		if (madvise(p, len, MADV_POPULATE_WRITE) < 0)
			die_perror("madvise(MADV_POPULATE_WRITE) of a hugetlb mapping");
		if (i >= 0)
			ns[i] = now_ns() - t0;
		if (munmap(p, len) < 0)
			die_perror("munmap");
	}
	printf("{\"kind\":\"limit\",\"name\":\"kzero_2m\",\"bytes\":%" PRIu64 ",\"threads\":1", len);
	print_samples(ns, o->repeat);
}

/* --- backings --------------------------------------------------------------------------- */

/* Whether --memory (group "MEMORY") or --memory-zone ("ZONE") takes a key, from options.def. */
static bool group_has_key(const char *group, const char *key, size_t len)
{
	static const char *const keys[] = {
#define OPT(group, name, type, def, values, help) #group ":" #name,
#include "memory/options.def"
#undef OPT
	};
	char want[64];

	snprintf(want, sizeof(want), "%s:%.*s", group, (int)len, key);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(keys[i], want))
			return true;
	return false;
}

static bool needs_zone(const char *opts)
{
	for (const char *p = opts; *p; p += strcspn(p, ","), p += *p == ',')
		if (!group_has_key("MEMORY", p, strcspn(p, "=,")))
			return true;
	return false;
}

/*
 * The memvisor command line for a backing: `--memory size=N,<opts>` when --memory takes every
 * option, else `--memory size=0,<memory-only options> --memory-zone id=mem0,size=N,<the rest>`
 * (file= is a zone option). "PATH" becomes `dir`.
 */
static void backing_args(const struct backing_def *b, uint64_t size, const char *dir,
			 char *mem, char *zone, size_t len)
{
	char opts[256], *save = NULL, *tok;
	bool zone_form = needs_zone(b->opts);
	size_t m, z;

	snprintf(opts, sizeof(opts), "%s", b->opts);
	m = (size_t)snprintf(mem, len, "size=%" PRIu64, zone_form ? 0 : size);
	z = (size_t)snprintf(zone, len, "id=%s,size=%" PRIu64, DEFAULT_ZONE_ID, size);
	if (!zone_form)
		zone[0] = 0;	/* no --memory-zone at all */
	for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t klen = strcspn(tok, "=");
		const char *val = tok + klen + (tok[klen] == '=');

		if (!strcmp(val, "PATH"))
			val = dir;
		if (zone_form && group_has_key("ZONE", tok, klen))
			z += (size_t)snprintf(zone + z, len - MIN(z, len), ",%.*s=%s", (int)klen, tok, val);
		else
			m += (size_t)snprintf(mem + m, len - MIN(m, len), ",%.*s=%s", (int)klen, tok, val);
	}
}

/* Parse and validate as memvisor's main does; -1 with the reason when memvisor would refuse. */
static int backing_config(const struct backing_def *b, const struct opts *o, const char *dir,
			  const struct host_info *host, struct vm_config *cfg, char *err,
			  size_t errlen)
{
	char mem[512], zone[512];
	/* --kernel is required by validation; it is never loaded here. */
	char *argv[] = { "memvisor", "--memory", mem, "--kernel", "unused.elf",
			 "--memory-zone", zone, NULL };
	int argc = 5;
	enum backing_type t;

	backing_args(b, o->size, dir, mem, zone, sizeof(mem));
	if (zone[0])
		argc = 7;
	if (config__parse(cfg, argc, argv, err, errlen) < 0)
		return -1;
	if (config__validate(cfg, host, err, errlen) < 0) {
		config__free(cfg);
		return -1;
	}
	t = backing__type(cfg, &cfg->zones[0]);
	if (strcmp(backing__name(t), b->name)) {
		error(err, errlen, "options '%s' select backing %s", b->opts, backing__name(t));
		config__free(cfg);
		return -1;
	}
	return 0;
}

static void touch_pages(char *p, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += TOUCH_STRIDE)
		*(volatile uint64_t *)(p + off) = off;
}

enum mode { FIRST_TOUCH, PREFAULT_SERIAL, PREFAULT_PARALLEL, NMODES };
static const char *const mode_names[] = { "first_touch", "prefault_serial", "prefault_parallel" };

/*
 * One create-populate-destroy cycle; only the populate step is timed. Right before it, the
 * limit is measured again on `limit` (populated memory of the same size, memset with as many
 * threads as the populate uses): the machine's speed drifts by 2x over a run, so each sample
 * is compared with a limit measured seconds, not minutes, away.
 */
static int populate_once(struct vm_config *cfg, const struct host_info *host, enum mode m,
			 char *limit, int threads, uint64_t *ns, uint64_t *limit_ns, char *err,
			 size_t errlen)
{
	struct backing b;
	uint64_t t0;
	int ret = 0;

	/*
	 * Twice, timing the second: on a VM the first pass after a backing's page-table churn also
	 * refills the outer hypervisor's mappings of `limit` (seen as up to 4x slower).
	 */
	threads = m == PREFAULT_PARALLEL ? threads : 1;
	timed_fill(limit, cfg->zones[0].size, threads, 0x3c);
	*limit_ns = timed_fill(limit, cfg->zones[0].size, threads, 0xc3);
	if (backing__create(&b, cfg, &cfg->zones[0], cfg->zones[0].size, host, err, errlen) < 0)
		return -1;
	t0 = now_ns();
	if (m == FIRST_TOUCH)
		touch_pages(b.host, b.size);
	else
		ret = backing__prefault(b.host, b.size, b.page_size, b.shared,
					m == PREFAULT_SERIAL ? 1 : 0, err, errlen);
	*ns = now_ns() - t0;
	backing__destroy(&b);
	return ret;
}

static void bench_backing(const struct backing_def *bd, const struct opts *o, const char *dir,
			  const struct host_info *host, char *limit)
{
	struct vm_config cfg;
	char err[512];

	if (backing_config(bd, o, dir, host, &cfg, err, sizeof(err)) < 0) {
		print_skip(bd->name, "*", err);
		return;
	}
	for (int m = 0; m < NMODES; m++) {
		uint64_t ns[o->repeat], limit_ns[o->repeat], discard, discard_limit;
		bool ok = !o->warmup || populate_once(&cfg, host, m, limit, o->threads, &discard,
						      &discard_limit, err, sizeof(err)) == 0;

		for (int i = 0; ok && i < o->repeat; i++)
			ok = populate_once(&cfg, host, m, limit, o->threads, &ns[i], &limit_ns[i],
					   err, sizeof(err)) == 0;
		if (!ok) {
			print_skip(bd->name, mode_names[m], err);
			continue;
		}
		printf("{\"kind\":\"populate\",\"backing\":\"%s\",\"mode\":\"%s\",\"bytes\":%" PRIu64
		       ",\"page_size\":%" PRIu64 ",\"threads\":%d", bd->name, mode_names[m],
		       cfg.zones[0].size, config__zone_page_size(&cfg, &cfg.zones[0], host),
		       m == PREFAULT_PARALLEL ? 0 : 1);
		printf(",\"limit_threads\":%d,\"limit_ns\":[", m == PREFAULT_PARALLEL ? o->threads : 1);
		for (int i = 0; i < o->repeat; i++)
			printf("%s%" PRIu64, i ? "," : "", limit_ns[i]);
		printf("]");
		print_samples(ns, o->repeat);
	}
	config__free(&cfg);
}

static bool wanted(const char *only, const char *name)
{
	size_t n = strlen(name);

	if (!only)
		return true;
	for (const char *p = only; (p = strstr(p, name)); p += n)
		if ((p == only || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static int usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		die_perror("sched_getaffinity");
	return CPU_COUNT(&set);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: native [--size SIZE] [--repeat N] [--tmpfs DIR] [--only B,B,...] "
		"[--threads N] [--no-warmup]\n"
		"Times populating SIZE of every backing in backings.def; JSON lines on stdout.\n");
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "size", required_argument, NULL, 's' }, { "repeat", required_argument, NULL, 'r' },
		{ "tmpfs", required_argument, NULL, 't' }, { "only", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 'j' }, { "no-warmup", no_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	int c;

	*o = (struct opts){ .size = GiB, .repeat = 5, .tmpfs = "/dev/shm", .warmup = true };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &o->size) < 0 || !o->size || !IS_ALIGNED(o->size, 2 * MiB))
				die("--size: '%s' is not a positive multiple of 2 MiB", optarg);
			break;
		case 'r':
			o->repeat = atoi(optarg);
			if (o->repeat < 1 || o->repeat > 1000)
				die("--repeat: '%s' is not in 1..1000", optarg);
			break;
		case 't': o->tmpfs = optarg; break;
		case 'o': o->only = optarg; break;
		case 'j':
			o->threads = atoi(optarg);
			if (o->threads < 1 || o->threads > MAX_THREADS)
				die("--threads: '%s' is not in 1..%d", optarg, MAX_THREADS);
			break;
		case 'W': o->warmup = false; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(1);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!o->threads)
		o->threads = MIN(usable_cpus(), MAX_THREADS);
}

int main(int argc, char **argv)
{
	struct host_info host;
	struct utsname u;
	struct statfs sfs;
	struct opts o;
	char dir[4096], err[512], *limit;

	parse_opts(&o, argc, argv);
	if (host__probe(&host, err, sizeof(err)) < 0)
		die("%s", err);
	if (uname(&u) < 0)
		die_perror("uname");
	if (statfs(o.tmpfs, &sfs) < 0)
		die_perror("--tmpfs: %s", o.tmpfs);
	if (sfs.f_type != TMPFS_MAGIC)
		die("--tmpfs: %s is not a tmpfs", o.tmpfs);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/memvisor-bench.XXXXXX", o.tmpfs) >= sizeof(dir))
		die("--tmpfs: path too long");
	if (!mkdtemp(dir))
		die_perror("mkdtemp in %s", o.tmpfs);

	printf("{\"kind\":\"host\",\"kernel\":");
	json_str(u.release);
	printf(",\"cpus\":%d,\"page_size\":%" PRIu64 ",\"size\":%" PRIu64 ",\"repeat\":%d,"
	       "\"threads\":%d,\"tmpfs\":", usable_cpus(), host.page_size, o.size, o.repeat,
	       o.threads);
	json_str(o.tmpfs);
	printf(",\"hugepage_sizes\":[");
	for (int i = 0; i < host.nhugepage_sizes; i++)
		printf("%s%" PRIu64, i ? "," : "", host.hugepage_sizes[i]);
	printf("]}\n");
	fflush(stdout);

	/* The limits first: they also warm up memory the backings will reuse. */
	limit_memset(&o, 1, "memset_1t");
	limit_memset(&o, o.threads, "memset_nt");
	limit_kzero(&o);
	limit = mmap(NULL, o.size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (limit == MAP_FAILED)
		die_perror("mmap of %" PRIu64 " bytes for the paired limit", o.size);
	for (size_t i = 0; i < ARRAY_SIZE(backings); i++)
		if (wanted(o.only, backings[i].name))
			bench_backing(&backings[i], &o, dir, &host, limit);
	if (munmap(limit, o.size) < 0)
		die_perror("munmap");
	if (rmdir(dir) < 0)
		die_perror("rmdir %s", dir);
	return 0;
}
