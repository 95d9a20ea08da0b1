/*
 * memvisor-linux report helper: what Debian's Linux sees of its memory, CPUs, NUMA nodes,
 * hotplug ranges and virtio devices, in guests/README.md's "Report format, version 1".
 *
 * Runs as the initramfs's /bin/report, statically linked (the initramfs has no libc), reading
 * /proc, /sys and the kernel log only. Nothing here may stop the report half-way: a file that
 * cannot be read is an `error` line of the check it belongs to, and the report still ends with
 * its SUMMARY. Exit status: 0 all checks passed or skipped, 1 a check failed, 2 stdout failed.
 *
 * `report hog SIZE` instead makes the guest need memory (/init runs it when the host types
 * `hog SIZE` on the console): SIZE bytes of anonymous memory are written, then read back, then
 * freed. Exit status: 0 all read back intact, 1 not, 2 bad SIZE or no mapping.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERRORS   16         /* error lines per check; the FAIL line has the full count */
#define MAX_NODES    64
#define TEXT_SIZE    16384
#define DEFAULT_MEMTEST (64ULL << 20)

#define SYS_NODE     "/sys/devices/system/node"
#define SYS_MEMORY   "/sys/devices/system/memory"
#define SYS_VIRTIO   "/sys/bus/virtio/devices"
#define MODULE_ORDER "/modules/order"

enum check_id { CHECK_READ, CHECK_MODULES, CHECK_MEMTEST, CHECK_NODES, NCHECKS };

struct check {
	const char *name;
	unsigned errors;
	const char *skip;       /* reason, when the check did not run */
};

struct report {
	struct check checks[NCHECKS];
	char cmdline[4096];
};

struct block {
	unsigned long long index;
	int node;               /* -1: no nodeN link */
	int removable;
	char state[32];
};

static void error(struct report *r, enum check_id id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void error(struct report *r, enum check_id id, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (++r->checks[id].errors > MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Free text still has to be printable ASCII on one line. */
	for (char *p = text; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	printf("error check=%s %s\n", r->checks[id].name, text);
}

/* The whole of a small file, NUL-terminated; -1 (and an error line) when it cannot be read. */
static ssize_t read_text(struct report *r, enum check_id id, const char *path, char *buf,
			 size_t size)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		error(r, id, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error(r, id, "%s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (close(fd) < 0) {
		error(r, id, "%s: close: %s", path, strerror(errno));
		return -1;
	}
	if (len == size - 1) {
		error(r, id, "%s: longer than %zu bytes", path, size - 1);
		return -1;
	}
	buf[len] = '\0';
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return (ssize_t)len;
}

static int read_number(struct report *r, enum check_id id, const char *path, int base,
		       unsigned long long *out)
{
	char buf[64], *end;

	if (read_text(r, id, path, buf, sizeof(buf)) < 0)
		return -1;
	errno = 0;
	*out = strtoull(buf, &end, base);
	if (errno || end == buf || *end) {
		error(r, id, "%s: '%s' is not a number", path, buf);
		return -1;
	}
	return 0;
}

/* "0-2,5" as 0 1 2 5: a kernel cpulist or nodelist. -1 when malformed or longer than max. */
static int parse_list(const char *s, unsigned *out, int max)
{
	int n = 0;

	while (*s) {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;

		if (end == s)
			return -1;
		if (*end == '-') {
			s = end + 1;
			hi = strtoul(s, &end, 10);
			if (end == s || hi < lo)
				return -1;
		}
		for (unsigned long v = lo; v <= hi; v++) {
			if (n == max)
				return -1;
			out[n++] = (unsigned)v;
		}
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n;
}

static void print_list(const unsigned *v, int n)
{
	for (int i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", v[i]);
}

static int is_word(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:-", *s))
			return 0;
	return 1;
}

static void print_quoted(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A value from the kernel that should be a bare word, quoted should it ever not be one. */
static void print_word(const char *s)
{
	if (is_word(s))
		fputs(s, stdout);
	else
		print_quoted(s);
}

/* "Key:   123 kB" in a meminfo-style text, in bytes; -1 when absent. */
static int meminfo_bytes(const char *text, const char *key, unsigned long long *out)
{
	const char *p = strstr(text, key);
	unsigned long long kb;

	if (!p || sscanf(p + strlen(key), " %llu kB", &kb) != 1)
		return -1;
	*out = kb * 1024;
	return 0;
}

static void report_cmdline(struct report *r)
{
	if (read_text(r, CHECK_READ, "/proc/cmdline", r->cmdline, sizeof(r->cmdline)) < 0)
		r->cmdline[0] = '\0';
	printf("cmdline value=");
	print_quoted(r->cmdline);
	putchar('\n');
}

static int count_list(struct report *r, const char *path)
{
	static unsigned ids[4096];
	char buf[512];
	int n;

	if (read_text(r, CHECK_READ, path, buf, sizeof(buf)) < 0)
		return -1;
	n = parse_list(buf, ids, 4096);
	if (n < 0)
		error(r, CHECK_READ, "%s: '%s' is not a list", path, buf);
	return n;
}

static void report_cpus(struct report *r)
{
	int online = count_list(r, "/sys/devices/system/cpu/online");
	int possible = count_list(r, "/sys/devices/system/cpu/possible");

	printf("cpu");
	if (online >= 0)
		printf(" online=%d", online);
	if (possible >= 0)
		printf(" possible=%d", possible);
	putchar('\n');
}

/* One node line per online node, then its distance row; the nodes check is done here too. */
static void report_nodes(struct report *r)
{
	static char text[TEXT_SIZE];
	unsigned nodes[MAX_NODES], cpus[4096], dist[MAX_NODES + 1];
	char path[256];
	int n, ncpus, ndist;

	if (read_text(r, CHECK_NODES, SYS_NODE "/online", text, sizeof(text)) < 0)
		return;
	n = parse_list(text, nodes, MAX_NODES);
	if (n <= 0) {
		error(r, CHECK_NODES, SYS_NODE "/online: '%s' is not a list of nodes", text);
		return;
	}
	for (int i = 0; i < n; i++) {
		unsigned long long total, avail;

		printf("node id=%u", nodes[i]);
		snprintf(path, sizeof(path), SYS_NODE "/node%u/cpulist", nodes[i]);
		if (read_text(r, CHECK_NODES, path, text, sizeof(text)) >= 0) {
			ncpus = parse_list(text, cpus, 4096);
			if (ncpus < 0)
				error(r, CHECK_NODES, "%s: '%s' is not a list", path, text);
			if (ncpus > 0) {
				printf(" cpus=");
				print_list(cpus, ncpus);
			}
		}
		snprintf(path, sizeof(path), SYS_NODE "/node%u/meminfo", nodes[i]);
		if (read_text(r, CHECK_NODES, path, text, sizeof(text)) >= 0) {
			if (meminfo_bytes(text, "MemTotal:", &total) == 0 &&
			    meminfo_bytes(text, "MemFree:", &avail) == 0)
				printf(" mem_total=0x%llx mem_free=0x%llx", total, avail);
			else
				error(r, CHECK_NODES, "%s: no MemTotal or MemFree", path);
		}
		putchar('\n');
	}
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), SYS_NODE "/node%u/distance", nodes[i]);
		if (read_text(r, CHECK_NODES, path, text, sizeof(text)) < 0)
			continue;
		ndist = 0;
		for (char *tok = strtok(text, " "); tok && ndist <= MAX_NODES; tok = strtok(NULL, " "))
			dist[ndist++] = (unsigned)strtoul(tok, NULL, 10);
		printf("distance from=%u dist=", nodes[i]);
		print_list(dist, ndist);
		putchar('\n');
		/* Linux prints one distance per online node, in node order (node_read_distance). */
		if (ndist != n)
			error(r, CHECK_NODES, "node %u: %d distances for %d online nodes", nodes[i], ndist, n);
		else if (dist[i] != 10)
			error(r, CHECK_NODES, "node %u: distance to itself is %u, not 10", nodes[i], dist[i]);
	}
}

static void report_meminfo(struct report *r)
{
	static char text[TEXT_SIZE];
	unsigned long long total, avail;

	if (read_text(r, CHECK_READ, "/proc/meminfo", text, sizeof(text)) < 0)
		return;
	if (meminfo_bytes(text, "MemTotal:", &total) < 0 || meminfo_bytes(text, "MemFree:", &avail) < 0) {
		error(r, CHECK_READ, "/proc/meminfo: no MemTotal or MemFree");
		return;
	}
	printf("meminfo total=0x%llx free=0x%llx\n", total, avail);
}

/*
 * What the balloon driver holds: /proc/vmstat counts each page it enqueued and dequeued
 * (balloon_page_enqueue/dequeue, CONFIG_MEMORY_BALLOON). With VIRTIO_BALLOON_F_DEFLATE_ON_OOM
 * MemTotal does not show the balloon (virtio_balloon.c skips adjust_managed_page_count), so
 * this is the only view of it. No line when the kernel has no such counters.
 */
static void report_balloon(struct report *r)
{
	static char text[TEXT_SIZE];
	unsigned long long in, out;
	const char *p, *q;

	if (read_text(r, CHECK_READ, "/proc/vmstat", text, sizeof(text)) < 0)
		return;
	p = strstr(text, "\nballoon_inflate ");
	q = strstr(text, "\nballoon_deflate ");
	if (!p || !q)
		return;
	if (sscanf(p, "\nballoon_inflate %llu", &in) != 1 || sscanf(q, "\nballoon_deflate %llu", &out) != 1 ||
	    out > in) {
		error(r, CHECK_READ, "/proc/vmstat: unreadable balloon_inflate or balloon_deflate");
		return;
	}
	printf("balloon held=0x%llx inflated=%llu deflated=%llu\n", (in - out) * 4096ULL, in, out);
}

/* The node a memory block belongs to: sysfs links memoryN/nodeM to it. */
static int block_node(struct report *r, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int node = -1;
	unsigned id;
	char tail;

	if (!d) {
		error(r, CHECK_READ, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)))
		if (sscanf(e->d_name, "node%u%c", &id, &tail) == 1 && (node < 0 || (int)id < node))
			node = (int)id;
	if (closedir(d) < 0)
		error(r, CHECK_READ, "%s: closedir: %s", dir, strerror(errno));
	return node;
}

static int read_block(struct report *r, const char *name, struct block *b)
{
	char dir[256], path[300];
	unsigned long long removable;

	snprintf(dir, sizeof(dir), SYS_MEMORY "/%s", name);
	snprintf(path, sizeof(path), "%s/phys_index", dir);
	if (read_number(r, CHECK_READ, path, 16, &b->index) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state", dir);
	if (read_text(r, CHECK_READ, path, b->state, sizeof(b->state)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/removable", dir);
	if (read_number(r, CHECK_READ, path, 10, &removable) < 0)
		return -1;
	b->removable = removable != 0;
	b->node = block_node(r, dir);
	return 0;
}

static int by_index(const void *a, const void *b)
{
	const struct block *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static void print_range(const struct block *first, int count, unsigned long long block_size)
{
	printf("memory_range start=0x%llx end=0x%llx", first->index * block_size,
	       (first->index + (unsigned long long)count) * block_size);
	if (first->node >= 0)
		printf(" node=%d", first->node);
	printf(" state=");
	print_word(first->state);
	printf(" removable=%d blocks=%d\n", first->removable, count);
}

static int same_run(const struct block *a, const struct block *b)
{
	return b->index == a->index + 1 && a->node == b->node && a->removable == b->removable &&
	       !strcmp(a->state, b->state);
}

static void report_memory_blocks(struct report *r)
{
	unsigned long long block_size;
	char auto_online[32];
	struct block *blocks = NULL;
	int n = 0, cap = 0, online = 0, start = 0;
	DIR *d;
	struct dirent *e;

	if (read_number(r, CHECK_READ, SYS_MEMORY "/block_size_bytes", 16, &block_size) < 0 ||
	    read_text(r, CHECK_READ, SYS_MEMORY "/auto_online_blocks", auto_online,
		      sizeof(auto_online)) < 0)
		return;
	d = opendir(SYS_MEMORY);
	if (!d) {
		error(r, CHECK_READ, SYS_MEMORY ": %s", strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "memory", 6) || !isdigit((unsigned char)e->d_name[6]))
			continue;
		if (n == cap) {
			struct block *grown = realloc(blocks, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(*blocks));
			if (!grown) {
				error(r, CHECK_READ, "out of memory for %d memory blocks", cap);
				break;
			}
			blocks = grown;
		}
		if (read_block(r, e->d_name, &blocks[n]) == 0)
			online += !strcmp(blocks[n++].state, "online");
	}
	if (closedir(d) < 0)
		error(r, CHECK_READ, SYS_MEMORY ": closedir: %s", strerror(errno));
	if (n > 0)
		qsort(blocks, (size_t)n, sizeof(*blocks), by_index);
	printf("memory_blocks block_size=0x%llx count=%d online=%d offline=%d auto_online=",
	       block_size, n, online, n - online);
	print_word(auto_online);
	putchar('\n');
	for (int i = 1; i <= n; i++) {
		if (i == n || !same_run(&blocks[i - 1], &blocks[i])) {
			print_range(&blocks[start], i - start, block_size);
			start = i;
		}
	}
	free(blocks);
}

/* SRAT hotpluggable ranges as Linux logged them (acpi_numa_memory_affinity_init). */
static void report_hotplug(struct report *r)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *log, *line, *save;
	int len;

	if (size <= 0) {
		error(r, CHECK_READ, "klogctl size: %s", size < 0 ? strerror(errno) : "empty log");
		return;
	}
	log = malloc((size_t)size + 1);
	if (!log) {
		error(r, CHECK_READ, "out of memory for a %d-byte kernel log", size);
		return;
	}
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, size);
	if (len < 0) {
		error(r, CHECK_READ, "klogctl read: %s", strerror(errno));
		free(log);
		return;
	}
	log[len] = '\0';
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p = strstr(line, "ACPI: SRAT: Node ");
		unsigned node, pxm;
		unsigned long long start, last;
		int end = 0;

		if (p && sscanf(p, "ACPI: SRAT: Node %u PXM %u [mem %llx-%llx]%n",
				&node, &pxm, &start, &last, &end) == 4 && end &&
		    !strncmp(p + end, " hotplug", 8))
			printf("hotplug_range node=%u start=0x%llx end=0x%llx\n", node, start, last + 1);
	}
	free(log);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

static void report_virtio(struct report *r)
{
	struct dirent **names;
	int n = scandir(SYS_VIRTIO, &names, NULL, by_name);

	/* No bus at all means virtio.ko is not loaded: the modules check says so. */
	if (n < 0) {
		if (errno != ENOENT)
			error(r, CHECK_READ, SYS_VIRTIO ": %s", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *dev = names[i]->d_name;
		char path[300], link[256];
		unsigned long long device, vendor;
		ssize_t len;

		if (dev[0] == '.')
			goto next;
		snprintf(path, sizeof(path), SYS_VIRTIO "/%s/device", dev);
		if (read_number(r, CHECK_READ, path, 16, &device) < 0)
			goto next;
		snprintf(path, sizeof(path), SYS_VIRTIO "/%s/vendor", dev);
		if (read_number(r, CHECK_READ, path, 16, &vendor) < 0)
			goto next;
		snprintf(path, sizeof(path), SYS_VIRTIO "/%s/driver", dev);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0 && errno != ENOENT)
			error(r, CHECK_READ, "%s: %s", path, strerror(errno));
		link[len > 0 ? len : 0] = '\0';
		printf("virtio dev=");
		print_word(dev);
		printf(" device=0x%llx vendor=0x%llx driver=", device, vendor);
		print_word(len > 0 ? (strrchr(link, '/') ? strrchr(link, '/') + 1 : link) : "none");
		putchar('\n');
next:
		free(names[i]);
	}
	free(names);
}

static int module_loaded(const char *modules, const char *name)
{
	size_t len = strlen(name);

	for (const char *line = modules; line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (!strncmp(line, name, len) && line[len] == ' ')
			return 1;
	}
	return 0;
}

static void report_modules(struct report *r)
{
	static char order[4096], modules[TEXT_SIZE];
	char *save;

	if (read_text(r, CHECK_MODULES, MODULE_ORDER, order, sizeof(order)) < 0 ||
	    read_text(r, CHECK_MODULES, "/proc/modules", modules, sizeof(modules)) < 0)
		return;
	for (char *name = strtok_r(order, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
		int loaded = module_loaded(modules, name);

		printf("module name=");
		print_word(name);
		printf(" loaded=%d\n", loaded);
		if (!loaded)
			error(r, CHECK_MODULES, "%s is not in /proc/modules", name);
	}
}

/* The value of `key=` among the command line's words, or NULL. */
static const char *cmdline_word(const char *cmdline, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = cmdline; *p; ) {
		size_t len = strcspn(p, " ");

		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			snprintf(buf, size, "%.*s", (int)(len - klen - 1), p + klen + 1);
			return buf;
		}
		p += len;
		p += strspn(p, " ");
	}
	return NULL;
}

/*
 * NK, NM or NG in bytes; 0 when malformed. The suffix is required: Linux reads memtest= too
 * (CONFIG_MEMTEST, a count of patterns for its own early RAM test, slow under emulation), and
 * only a value it cannot parse as a number leaves that test off.
 */
static unsigned long long parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	int shift;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || end[0] == '\0' || end[1] != '\0')
		return 0;
	switch (toupper((unsigned char)*end)) {
	case 'G': shift = 30; break;
	case 'M': shift = 20; break;
	case 'K': shift = 10; break;
	default: return 0;
	}
	return v > (~0ULL >> shift) ? 0 : v << shift;
}

static uint64_t pattern(uintptr_t addr)
{
	uint64_t x = addr ^ (addr >> 29);

	return x * 0x9e3779b97f4a7c15ULL;
}

static long long elapsed_ms(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000LL + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * All of the area is written before any of it is read back, so two addresses that end up on
 * one host page show up as errors. volatile: the compiler must not prove the reads equal.
 */
static void memtest(struct report *r)
{
	char value[64];
	unsigned long long size = DEFAULT_MEMTEST, errors = 0, words;
	volatile uint64_t *area;
	struct timespec t0, t1;
	long long ms;

	if (cmdline_word(r->cmdline, "memtest", value, sizeof(value))) {
		if (!strcmp(value, "off")) {
			r->checks[CHECK_MEMTEST].skip = "memtest=off";
			return;
		}
		size = parse_size(value);
		if (!size) {
			error(r, CHECK_MEMTEST, "memtest=%s: not off or a size NK, NM or NG", value);
			return;
		}
	}
	words = size / 8;
	area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		error(r, CHECK_MEMTEST, "mmap of 0x%llx bytes: %s", size, strerror(errno));
		return;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &t0) < 0)
		error(r, CHECK_MEMTEST, "clock_gettime: %s", strerror(errno));
	for (unsigned long long i = 0; i < words; i++)
		area[i] = pattern((uintptr_t)&area[i]);
	for (unsigned long long i = 0; i < words; i++) {
		uint64_t want = pattern((uintptr_t)&area[i]), got = area[i];

		if (got != want) {
			errors++;
			error(r, CHECK_MEMTEST, "addr=%p expected=0x%llx got=0x%llx", (void *)&area[i],
			      (unsigned long long)want, (unsigned long long)got);
		}
	}
	if (clock_gettime(CLOCK_MONOTONIC, &t1) < 0)
		error(r, CHECK_MEMTEST, "clock_gettime: %s", strerror(errno));
	if (munmap((void *)area, size) < 0)
		error(r, CHECK_MEMTEST, "munmap: %s", strerror(errno));
	ms = elapsed_ms(&t0, &t1);
	printf("memtest size=0x%llx result=%s errors=%llu ms=%lld\n", size, errors ? "bad" : "ok",
	       errors, ms > 0 ? ms : 0);
}

/*
 * The guest needing memory: every page of SIZE written (pattern() of its first word) before
 * any is read back, then all of it freed. `hog touched` comes out as soon as all of it is
 * resident: what the host holds then is the hog's peak. A guest that cannot find the memory
 * has the kernel's OOM handling decide (the balloon deflating, or this process killed).
 */
static void hog_error(const char *what, const char *why)
{
	printf("hog error=");
	print_quoted(what);
	printf(" reason=");
	print_quoted(why);
	putchar('\n');
}

static int hog(const char *arg)
{
	unsigned long long size = parse_size(arg), page = (unsigned long long)sysconf(_SC_PAGESIZE);
	unsigned long long bad = 0;
	struct timespec t0, t1;
	volatile uint64_t *area;
	char *base;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!size) {
		hog_error(arg, "not a size NK, NM or NG");
		return 2;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || clock_gettime(CLOCK_MONOTONIC, &t0) < 0) {
		hog_error(base == MAP_FAILED ? "mmap" : "clock_gettime", strerror(errno));
		return 2;
	}
	for (unsigned long long off = 0; off < size; off += page) {
		area = (volatile uint64_t *)(base + off);
		*area = pattern((uintptr_t)area);
	}
	if (clock_gettime(CLOCK_MONOTONIC, &t1) < 0)
		t1 = t0;
	printf("hog touched=0x%llx ms=%lld\n", size, elapsed_ms(&t0, &t1));
	for (unsigned long long off = 0; off < size; off += page) {
		area = (volatile uint64_t *)(base + off);
		bad += *area != pattern((uintptr_t)area);
	}
	if (munmap(base, size) < 0) {
		hog_error("munmap", strerror(errno));
		return 2;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &t1) < 0)
		t1 = t0;
	printf("hog size=0x%llx bad_pages=%llu ms=%lld\n", size, bad, elapsed_ms(&t0, &t1));
	return bad ? 1 : 0;
}

static int summarize(const struct report *r)
{
	int pass = 0, skip = 0, failed = 0;

	for (int i = 0; i < NCHECKS; i++) {
		const struct check *c = &r->checks[i];

		if (c->errors) {
			printf("FAIL: %s errors=%u\n", c->name, c->errors);
			failed++;
		} else if (c->skip) {
			printf("SKIP: %s %s\n", c->name, c->skip);
			skip++;
		} else {
			printf("PASS: %s\n", c->name);
			pass++;
		}
	}
	if (failed)
		printf("SUMMARY: FAIL %d pass=%d skip=%d\n", failed, pass, skip);
	else
		printf("SUMMARY: ok pass=%d skip=%d\n", pass, skip);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct report r = {
		.checks = { [CHECK_READ] = { .name = "read" }, [CHECK_MODULES] = { .name = "modules" },
			    [CHECK_MEMTEST] = { .name = "memtest" }, [CHECK_NODES] = { .name = "nodes" } },
	};
	int status;

	if (argc == 3 && !strcmp(argv[1], "hog"))
		return hog(argv[2]);
	/* Whole lines only: should this process die, /init's closing lines start on a line of their own. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("memvisor-linux 1\n");
	report_cmdline(&r);
	report_cpus(&r);
	report_nodes(&r);
	report_meminfo(&r);
	report_balloon(&r);
	report_memory_blocks(&r);
	report_hotplug(&r);
	report_virtio(&r);
	report_modules(&r);
	memtest(&r);
	status = summarize(&r);
	if (fflush(stdout) == EOF || ferror(stdout))
		return 2;
	return status;
}
