/*
 * Host memory behind each zone (spec: `shared`, `hugepages`, `file`, `thp`, `mergeable`,
 * `host_numa_node`, `prefault`).
 *
 * A zone is built in this order, so that no page is touched before its policy is set:
 *   fd (none / memfd / hugetlb memfd / file) -> mmap at an aligned address -> THP advice ->
 *   KSM advice -> mbind -> prefault.
 * Any failure undoes every earlier step (unmap, close, unlink, restore the file's size).
 *
 * Where we differ from Cloud Hypervisor, on purpose:
 *  - hugetlb is mapped without MAP_NORESERVE, so the kernel reserves the pages at mmap time and a
 *    short pool is a clean ENOMEM here instead of a SIGBUS when the guest first touches a page;
 *  - thp=off advises MADV_NOHUGEPAGE (CH leaves it unadvised), so that `anonymous` is 4 KiB
 *    pages as backings.def says even when the host's THP mode is `always`;
 *  - THP advice comes before prefault (CH advises after it, so prefaulted pages are 4 KiB);
 *  - a file's boot RAM is allocated in its file system at creation (fallocate): a sparse file on
 *    a file system that fills up (a small tmpfs) would otherwise fail the guest's first touch of
 *    a page, a SIGBUS in memvisor or a write KVM drops, long after the VM started.
 */
#include <errno.h>
#include <fcntl.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "memory/backing.h"
#include "util.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23		/* Linux 5.14 */
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26		/* <linux/memfd.h>, which clashes with glibc's MFD_* */
#endif

/* THP size on x86_64: mappings and prefault chunks are aligned to it so THP/shmem-THP can fill them. */
#define THP_ALIGN (2 * MiB)
/* Below this much per thread, creating a prefault thread costs more than it saves. */
#define PREFAULT_MIN_CHUNK (32 * MiB)

static const char *const backing_names[] = {
#define BACKING(name, opts, pagesz, mapping, desc) [BACKING_##name] = #name,
#include "memory/backings.def"
#undef BACKING
};

static const uint64_t backing_page_sizes[] = {
#define BACKING(name, opts, pagesz, mapping, desc) [BACKING_##name] = pagesz,
#include "memory/backings.def"
#undef BACKING
};

static const char *const backing_mappings[] = {
#define BACKING(name, opts, pagesz, mapping, desc) [BACKING_##name] = mapping,
#include "memory/backings.def"
#undef BACKING
};

const char *backing__name(enum backing_type t)
{
	return (unsigned)t < BACKING_COUNT ? backing_names[t] : "unknown";
}

static bool type_is_file(enum backing_type t)
{
	return t == BACKING_file || t == BACKING_file_shared;
}

static bool type_is_hugetlb(enum backing_type t)
{
	return (unsigned)t < BACKING_COUNT && backing_page_sizes[t] != 0;
}

/*
 * hugepage_size 0 means the host's default, which only backing__create knows; without a host we
 * assume x86_64's 2 MiB. config__validate refuses file= with hugepages=on; should both reach us
 * anyway, the file is used and its file system (hugetlbfs or not) decides the page size.
 */
static enum backing_type zone_type(const struct vm_config *cfg, const struct zone_config *z,
				   uint64_t hugepage_size)
{
	if (z->file)
		return z->shared ? BACKING_file_shared : BACKING_file;
	if (z->hugepages) {
		for (int t = 0; t < BACKING_COUNT; t++)
			if (backing_page_sizes[t] == (hugepage_size ? hugepage_size : 2 * MiB))
				return t;
		return BACKING_COUNT;	/* a size no backing offers */
	}
	if (z->shared)
		return BACKING_shmem;
	return cfg->memory.thp ? BACKING_anonymous_thp : BACKING_anonymous;
}

enum backing_type backing__type(const struct vm_config *cfg, const struct zone_config *z)
{
	return zone_type(cfg, z, z->hugepage_size);
}

/* "2 GiB", "2 MiB", "4 KiB" or "1000 bytes": sizes in messages as a user would write them. */
static const char *fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u + 1 < ARRAY_SIZE(units) && v && IS_ALIGNED(v, 1024)) {
		v >>= 10;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
	return buf;
}

/*
 * The option that described the zone, as validate.c names it: "--memory" for the zone --memory
 * size=N made, else "--memory-zone: zone 'id'".
 */
static void zone_option(const struct vm_config *cfg, const struct zone_config *z, char *buf,
			size_t len)
{
	if (cfg->memory.size && !strcmp(z->id, DEFAULT_ZONE_ID))
		snprintf(buf, len, "--memory");
	else
		snprintf(buf, len, "--memory-zone: zone '%s'", z->id);
}

/*
 * Bytes at the start of a zone's mapping that hold memory at boot: the boot RAM and the part of
 * the virtio-mem region plugged at boot (hotplugged_size). The rest is plugged later, so it takes
 * no huge page reservation and is not prefaulted.
 */
static uint64_t plugged_size(const struct zone_config *z, uint64_t size)
{
	uint64_t unplugged;

	if (z->hotplugged_size > z->hotplug_size)	/* validation refuses it: no split */
		return size;
	unplugged = z->hotplug_size - z->hotplugged_size;
	return unplugged <= size ? size - unplugged : size;
}

/*
 * Undo what backing__create made, last step first: unmap, give a user file we grew its size
 * back, close, remove a file we created. Only warnings: there is nothing left to undo it with.
 */
static void undo(void *host, uint64_t size, int fd, const char *created, off_t old_size)
{
	if (host && munmap(host, size) < 0)
		fprintf(stderr, "memvisor: warning: munmap of a zone failed: %s\n", strerror(errno));
	if (old_size >= 0 && ftruncate(fd, old_size) < 0)
		fprintf(stderr, "memvisor: warning: cannot restore the size of the backing file: %s\n",
			strerror(errno));
	if (fd >= 0 && close(fd) < 0)
		fprintf(stderr, "memvisor: warning: close of a zone's file failed: %s\n",
			strerror(errno));
	if (created && unlink(created) < 0)
		fprintf(stderr, "memvisor: warning: cannot remove '%s': %s\n", created,
			strerror(errno));
}

/* What backing__create has made so far, so that a failure can undo exactly that. */
struct build {
	const char *who;		/* "--memory-zone: zone 'mem1'" */
	char *err;
	size_t errlen;
	int fd;
	const char *created;		/* a file we created: unlinked on failure */
	off_t old_size;			/* a user file we extended: its size before, else -1 */
	void *host;
	uint64_t size;
};

static int fail(struct build *bd, const char *fmt, ...) __printf(2, 3);
static int fail(struct build *bd, const char *fmt, ...)
{
	char msg[384];
	va_list ap;
	int errnum = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error(bd->err, bd->errlen, "%s: %s", bd->who, msg);
	undo(bd->host, bd->size, bd->fd, bd->created, bd->old_size);
	errno = errnum;
	return -1;
}

/* An unlinked file in `dir`: O_TMPFILE, or mkstemp + unlink where the filesystem lacks it. */
static int open_tmpfile(struct build *bd, const char *dir)
{
	char path[4096];

	bd->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (bd->fd >= 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EISDIR)
		return fail(bd, "file=%s: cannot create a temporary file: %s", dir, strerror(errno));
	if ((size_t)snprintf(path, sizeof(path), "%s/memvisor-XXXXXX", dir) >= sizeof(path))
		return fail(bd, "file=%s: path too long", dir);
	bd->fd = mkostemp(path, O_CLOEXEC);
	if (bd->fd < 0)
		return fail(bd, "file=%s: cannot create a temporary file: %s", dir, strerror(errno));
	/* Unlinked at once: nothing is left in the directory whatever happens next. */
	if (unlink(path) < 0) {
		bd->created = path;	/* fail() retries the unlink */
		return fail(bd, "file=%s: cannot unlink the temporary file: %s", dir,
			    strerror(errno));
	}
	return 0;
}

/*
 * file=PATH: an existing file is used as is and only ever grown (a mapping beyond EOF would
 * SIGBUS); a missing one is created; a directory gets an unlinked temporary file.
 * Opened read-write because it may have to be grown, and for MAP_SHARED writes.
 * *page becomes the page size of the file's filesystem (hugetlbfs has its own).
 */
static int open_file(struct build *bd, const char *path, uint64_t size, uint64_t *page)
{
	char s1[32], s2[32];
	struct statfs sfs;
	struct stat st;

	/* O_EXCL tells us whether the file is ours, i.e. whether to remove it on failure. */
	bd->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (bd->fd >= 0) {
		bd->created = path;
	} else if (errno == EEXIST) {
		bd->fd = open(path, O_RDWR | O_CLOEXEC);
		if (bd->fd < 0 && errno == EISDIR && open_tmpfile(bd, path) < 0)
			return -1;
	}
	if (bd->fd < 0)
		return fail(bd, "file=%s: %s", path, strerror(errno));
	if (fstat(bd->fd, &st) < 0)
		return fail(bd, "file=%s: fstat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(bd, "file=%s: not a regular file or a directory", path);
	if (fstatfs(bd->fd, &sfs) < 0)
		return fail(bd, "file=%s: fstatfs: %s", path, strerror(errno));
	if (sfs.f_type == HUGETLBFS_MAGIC)
		*page = sfs.f_bsize;
	if (!IS_ALIGNED(size, *page))
		return fail(bd, "file=%s: size %s is not a multiple of the file system's %s pages",
			    path, fmt_size(size, s1, sizeof(s1)), fmt_size(*page, s2, sizeof(s2)));
	if ((uint64_t)st.st_size < size) {
		if (ftruncate(bd->fd, size) < 0)
			return fail(bd, "file=%s: cannot extend it to %s: %s", path,
				    fmt_size(size, s1, sizeof(s1)), strerror(errno));
		if (!bd->created)
			bd->old_size = st.st_size;
	}
	return 0;
}

static bool on_tmpfs(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
}

bool backing__allocates(const struct backing *b)
{
	/* A private file mapping never writes its file: its holes need no space (and a user's
	 * sparse file is used as is). */
	return b->fd >= 0 && (b->type == BACKING_file_shared || type_is_hugetlb(b->type));
}

int backing__allocate(const struct backing *b, uint64_t offset, uint64_t len)
{
	/* hugetlbfs files reserve at mmap; a file system that cannot allocate only risks ENOSPC. */
	if (!backing__allocates(b) || !len ||
	    fallocate(b->fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) == 0)
		return 0;
	return errno == EOPNOTSUPP && type_is_file(b->type) ? 0 : -1;
}

/* Read one number from a sysfs file of the hugetlb pool; -1 when unreadable. */
static long long hugetlb_pool(uint64_t page, const char *what)
{
	char path[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
		 (unsigned long long)(page / KiB), what);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int open_memfd(struct build *bd, const char *zone_id, enum backing_type type,
		      uint64_t page, uint64_t size)
{
	char name[ZONE_ID_MAX + 16], s1[32], s2[32];
	unsigned flags = MFD_CLOEXEC;

	/* The name shows in /proc/PID/maps as /memfd:memvisor-<id>: how the harness finds a zone. */
	snprintf(name, sizeof(name), "memvisor-%s", zone_id);
	if (type_is_hugetlb(type))
		flags |= MFD_HUGETLB | ((unsigned)__builtin_ctzll(page) << MFD_HUGE_SHIFT);
	bd->fd = memfd_create(name, flags);
	if (bd->fd < 0)
		return fail(bd, "memfd_create(%s%s) failed: %s", name,
			    type_is_hugetlb(type) ? ", MFD_HUGETLB" : "", strerror(errno));
	/* No pages yet: hugetlb reserves at mmap, shmem allocates on fault. */
	if (ftruncate(bd->fd, size) < 0)
		return fail(bd, "ftruncate of the %s memfd to %s failed: %s",
			    fmt_size(page, s2, sizeof(s2)), fmt_size(size, s1, sizeof(s1)),
			    strerror(errno));
	return 0;
}

/*
 * mmap at an `align`-aligned address: reserve size + align of address space, map over the
 * aligned part with MAP_FIXED, give back the rest. Guest-physical 2 MiB pages then sit on host
 * 2 MiB boundaries, which THP and KVM's huge stage-2 mappings both need.
 */
static void *map_aligned(uint64_t size, uint64_t align, int flags, int fd)
{
	uint64_t len = size + align;
	char *resv, *start, *end;
	int e;

	resv = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return MAP_FAILED;
	start = (char *)ALIGN_UP((uintptr_t)resv, align);
	end = start + size;
	if (mmap(start, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0) == MAP_FAILED)
		goto out_unmap;
	if (start > resv && munmap(resv, start - resv) < 0)
		goto out_unmap;
	if (resv + len > end && munmap(end, resv + len - end) < 0)
		goto out_unmap;
	return start;
out_unmap:
	e = errno;
	munmap(resv, len);	/* the whole range, whatever part of it is still mapped */
	errno = e;
	return MAP_FAILED;
}

static int advise(struct build *bd, int advice, const char *what)
{
	if (madvise(bd->host, bd->size, advice) == 0)
		return 0;
	/* thp=on is the default and only a hint: a kernel without THP must not refuse every VM. */
	if ((advice == MADV_HUGEPAGE || advice == MADV_NOHUGEPAGE) && errno == EINVAL &&
	    access("/sys/kernel/mm/transparent_hugepage", F_OK) < 0)
		return 0;
	return fail(bd, "%s: madvise(%s) failed: %s%s", what,
		    advice == MADV_MERGEABLE ? "MADV_MERGEABLE" :
		    advice == MADV_HUGEPAGE ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE",
		    strerror(errno),
		    advice == MADV_MERGEABLE && errno == EINVAL ? " (kernel without KSM?)" : "");
}

static int bind_node(struct build *bd, int node)
{
	unsigned long mask[MAX_HOST_NODES / (8 * sizeof(unsigned long))] = { 0 };
	const unsigned bits = 8 * sizeof(unsigned long);

	if (node < 0 || node >= MAX_HOST_NODES)
		return fail(bd, "host_numa_node=%d: memvisor supports nodes 0-%d", node,
			    MAX_HOST_NODES - 1);
	mask[node / bits] |= 1UL << (node % bits);
	/*
	 * Before any page is touched, so every page is allocated on the node. STRICT|MOVE, as in
	 * CH, still covers pages that exist already (a file's page cache): moved, or an error.
	 * maxnode is one more than the mask's bits: the kernel reads maxnode - 1 of them.
	 */
	if (mbind(bd->host, bd->size, MPOL_BIND, mask, MAX_HOST_NODES + 1,
		  MPOL_MF_STRICT | MPOL_MF_MOVE) < 0)
		return fail(bd, "host_numa_node=%d: mbind(MPOL_BIND) failed: %s", node,
			    strerror(errno));
	return 0;
}

int backing__create(struct backing *b, const struct vm_config *cfg, const struct zone_config *z,
		    uint64_t size, const struct host_info *host, char *err, size_t errlen)
{
	char who[ZONE_ID_MAX + 32], s1[32], s2[32], perr[320];
	struct build bd = { .who = who, .err = err, .errlen = errlen, .fd = -1, .old_size = -1,
			    .size = size };
	uint64_t page = host->page_size, align, plugged, reserved;
	enum backing_type type;
	int flags;

	*b = (struct backing){ .fd = -1, .old_size = -1 };
	zone_option(cfg, z, who, sizeof(who));
	if (z->hugepages && !z->file) {
		page = z->hugepage_size ? z->hugepage_size : host->default_hugepage_size;
		if (!page)
			return fail(&bd, "hugepages=on but the host has no huge page support");
	}
	type = zone_type(cfg, z, z->hugepages ? page : 0);
	if (type == BACKING_COUNT)
		return fail(&bd, "no backing for %s huge pages", fmt_size(page, s1, sizeof(s1)));
	if (!size || size > (UINT64_MAX >> 2) || !IS_ALIGNED(size, page))
		return fail(&bd, "size %s is not a positive multiple of the %s page size",
			    fmt_size(size, s1, sizeof(s1)), fmt_size(page, s2, sizeof(s2)));

	plugged = plugged_size(z, size);
	if (type_is_file(type)) {
		if (open_file(&bd, z->file, size, &page) < 0)
			return -1;
		/*
		 * Before mmap: nothing of the guest's memory may be a hole the file system cannot
		 * fill. A private mapping fills the file's holes only on tmpfs, where faulting a page
		 * in takes the file system's space: prefault faults them all, so allocate first and
		 * a full tmpfs says ENOSPC here rather than EFAULT from the populate.
		 */
		if (page == host->page_size &&
		    (backing__allocate(&(struct backing){ .type = type, .fd = bd.fd }, 0, plugged) < 0 ||
		     (type == BACKING_file && z->prefault && on_tmpfs(bd.fd) &&
		      fallocate(bd.fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)plugged) < 0)))
			return fail(&bd, "file=%s: cannot allocate %s in its file system: %s", z->file,
				    fmt_size(plugged, s1, sizeof(s1)), strerror(errno));
	} else if (type != BACKING_anonymous && type != BACKING_anonymous_thp) {
		if (open_memfd(&bd, z->id, type, page, size) < 0)
			return -1;
	}

	flags = !strcmp(backing_mappings[type], "shared") ? MAP_SHARED : MAP_PRIVATE;
	if (bd.fd < 0)
		flags |= MAP_ANONYMOUS;
	/* NORESERVE keeps a sparse guest out of the overcommit accounting; hugetlb must reserve. */
	if (page == host->page_size)
		flags |= MAP_NORESERVE;
	align = page > THP_ALIGN ? page : THP_ALIGN;
	/*
	 * A virtio-mem region beyond what is plugged at boot must not hold pool pages: map it all
	 * MAP_NORESERVE, then map the boot RAM and the plugged part again without it, which
	 * reserves exactly those pages (and fails cleanly when the pool is short).
	 */
	reserved = page != host->page_size ? plugged : size;
	bd.host = map_aligned(size, align, reserved < size ? flags | MAP_NORESERVE : flags, bd.fd);
	if (bd.host != MAP_FAILED && reserved && reserved < size &&
	    mmap(bd.host, reserved, PROT_READ | PROT_WRITE, flags | MAP_FIXED, bd.fd, 0) == MAP_FAILED) {
		int e = errno;

		if (munmap(bd.host, size) < 0)
			perror("memvisor: munmap");
		bd.host = MAP_FAILED;
		errno = e;
	}
	if (bd.host == MAP_FAILED) {
		bd.host = NULL;
		if (page == host->page_size)
			return fail(&bd, "mmap of %s failed: %s", fmt_size(size, s1, sizeof(s1)),
				    strerror(errno));
		int e = errno;
		long long nfree = hugetlb_pool(page, "free_hugepages");
		long long resv = hugetlb_pool(page, "resv_hugepages");

		errno = e;
		return fail(&bd, "mmap of %s of %s huge pages failed: %s (pool has %lld free, %lld "
			    "of them reserved; %llu needed)", fmt_size(size, s1, sizeof(s1)),
			    fmt_size(page, s2, sizeof(s2)), strerror(e), nfree, resv,
			    (unsigned long long)(reserved / page));
	}

	/* Spec `thp`: private anonymous memory only, never shared, file or hugetlb. */
	if (bd.fd < 0 &&
	    advise(&bd, cfg->memory.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE, "thp") < 0)
		return -1;
	/* The kernel accepts and ignores it on shared mappings, where KSM cannot merge. */
	if (cfg->memory.mergeable && advise(&bd, MADV_MERGEABLE, "mergeable=on") < 0)
		return -1;
	if (z->host_numa_node >= 0 && bind_node(&bd, z->host_numa_node) < 0)
		return -1;
	/* Only what the guest has at boot: prefaulting the unplugged region would fill it. */
	if (z->prefault && plugged &&
	    backing__prefault(bd.host, plugged, page, flags & MAP_SHARED, 0, perr, sizeof(perr)) < 0)
		return fail(&bd, "prefault=on: %s", perr);

	*b = (struct backing){
		.type = type, .host = bd.host, .size = size, .page_size = page, .fd = bd.fd,
		.shared = flags & MAP_SHARED, .created = bd.created, .old_size = bd.old_size,
	};
	return 0;
}

/*
 * Prefault: madvise(MADV_POPULATE_WRITE) per chunk, each chunk on its own thread. Clearing
 * pages is memory-bandwidth bound and the page allocator and page-table locks scale per
 * CPU/VMA range, so threads over disjoint chunks approach the machine's clearing bandwidth.
 */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};

struct prefault_job {
	char *start;
	uint64_t len, page;
	bool shared, started;
	struct gate *gate;
	pthread_t thread;
	int err;		/* errno of the failure, 0 when populated */
};

static void populate(struct prefault_job *j)
{
	if (madvise(j->start, j->len, MADV_POPULATE_WRITE) == 0)
		return;
	if (errno != EINVAL) {
		j->err = errno;
		return;
	}
	/*
	 * Kernels before 5.14: write-fault each page, keeping its content (file data). On a shared
	 * mapping another process may write concurrently, so use a locked add of 0, which
	 * writes without ever storing a stale value.
	 */
	for (uint64_t off = 0; off < j->len; off += j->page) {
		if (j->shared) {
			__atomic_fetch_add((char *)j->start + off, 0, __ATOMIC_RELAXED);
		} else {
			volatile char *c = j->start + off;
			*c = *c;
		}
	}
}

static void *prefault_thread(void *arg)
{
	struct prefault_job *j = arg;

	/*
	 * Wait until every thread exists: creating a thread maps its stack under the mm's lock,
	 * which would otherwise contend with the faults of the threads already running.
	 */
	pthread_mutex_lock(&j->gate->lock);
	while (!j->gate->open)
		pthread_cond_wait(&j->gate->cond, &j->gate->lock);
	pthread_mutex_unlock(&j->gate->lock);
	populate(j);
	return NULL;
}

/* CPUs we may run on (cpusets and taskset included), else the online ones. */
static int usable_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int backing__prefault(void *host, uint64_t size, uint64_t page_size, bool shared, int threads,
		      char *err, size_t errlen)
{
	struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
	struct prefault_job *jobs;
	uint64_t unit, nunits, per, extra, off = 0;
	char s1[32], s2[32];
	int n, ret = 0;

	if (!page_size || !size || !IS_ALIGNED(size, page_size) ||
	    !IS_ALIGNED((uintptr_t)host, page_size))
		return error(err, errlen, "prefault of %s: not aligned to the %s page size",
			     fmt_size(size, s1, sizeof(s1)), fmt_size(page_size, s2, sizeof(s2)));
	n = threads > 0 ? threads : usable_cpus();
	if (threads <= 0 && (uint64_t)n > size / PREFAULT_MIN_CHUNK)
		n = size / PREFAULT_MIN_CHUNK ? (int)(size / PREFAULT_MIN_CHUNK) : 1;
	/* Chunks of whole THP-sized units, so no huge page is split between two threads. */
	unit = page_size < THP_ALIGN && size >= (uint64_t)n * THP_ALIGN ? THP_ALIGN : page_size;
	nunits = size / unit;
	if ((uint64_t)n > nunits)
		n = (int)nunits;
	per = nunits / n;
	extra = nunits % n;

	jobs = calloc(n, sizeof(*jobs));
	if (!jobs)
		return error(err, errlen, "prefault: out of memory for %d threads", n);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct prefault_job){ .start = (char *)host + off, .page = page_size,
						 .shared = shared, .gate = &gate };
		jobs[i].len = (per + ((uint64_t)i < extra)) * unit;
		if (i == n - 1)
			jobs[i].len = size - off;	/* the tail that is not a whole unit */
		off += jobs[i].len;
	}
	/* Job 0 runs on this thread; a thread we cannot create leaves its job to us as well. */
	for (int i = 1; i < n; i++)
		jobs[i].started = !pthread_create(&jobs[i].thread, NULL, prefault_thread, &jobs[i]);
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	for (int i = 0; i < n; i++)
		if (!jobs[i].started)
			populate(&jobs[i]);
	/*
	 * pthread_join of a joinable thread of ours fails only with EINVAL, ESRCH or EDEADLK,
	 * none of which leaves one of our threads running on the mapping: report, do not die.
	 */
	for (int i = 1; i < n; i++) {
		int e = jobs[i].started ? pthread_join(jobs[i].thread, NULL) : 0;

		if (e && !ret)
			ret = error(err, errlen, "prefault: pthread_join: %s", strerror(e));
	}
	for (int i = 0; i < n && !ret; i++) {
		if (!jobs[i].err)
			continue;
		errno = jobs[i].err;
		ret = error(err, errlen, "populating %s at offset 0x%llx failed: %s%s",
			    fmt_size(jobs[i].len, s1, sizeof(s1)),
			    (unsigned long long)(jobs[i].start - (char *)host), strerror(errno),
			    errno == EFAULT ? " (no page could be allocated: huge page pool "
			    "or file system full?)" : "");
	}
	free(jobs);
	return ret;
}

int backing__discard(const struct backing *b, uint64_t offset, uint64_t len)
{
	uint64_t page = b->page_size, start, end;

	if (!b->host || !page || offset > b->size || len > b->size - offset) {
		errno = EINVAL;
		return -1;
	}
	/* madvise wants page-aligned ranges; hugetlbfs would round a hole the same way. */
	start = ALIGN_UP(offset, page);
	end = (offset + len) & ~(page - 1);
	if (end <= start)
		return 0;
	/*
	 * MADV_DONTNEED on a shared mapping would only drop this process's page table entries:
	 * the pages stay in the memfd or the file, so the host gets nothing back.
	 */
	if (b->fd >= 0 && b->shared)
		return fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
				 (off_t)(end - start));
	return madvise((uint8_t *)b->host + start, end - start, MADV_DONTNEED);
}

void backing__destroy(struct backing *b)
{
	if (!b->host)		/* never made, or destroyed already */
		return;
	/* A shared file is where the guest's writes must survive us: flush it before unmapping. */
	if (type_is_file(b->type) && b->shared && msync(b->host, b->size, MS_SYNC) < 0)
		fprintf(stderr, "memvisor: warning: msync of the %s backing failed: %s\n",
			backing__name(b->type), strerror(errno));
	if (munmap(b->host, b->size) < 0)
		fprintf(stderr, "memvisor: warning: munmap of the %s backing failed: %s\n",
			backing__name(b->type), strerror(errno));
	/* close() is where a network file system reports write-back errors. */
	if (b->fd >= 0 && close(b->fd) < 0)
		fprintf(stderr, "memvisor: warning: close of the %s backing failed: %s\n",
			backing__name(b->type), strerror(errno));
	b->host = NULL;
	b->fd = -1;
}

void backing__abort(struct backing *b)
{
	if (!b->host)		/* never made, or destroyed already */
		return;
	undo(b->host, b->size, b->fd, b->created, b->old_size);
	*b = (struct backing){ .fd = -1, .old_size = -1 };
}

char *backing__describe(const struct backing *b, char *buf, size_t len)
{
	char s1[32], s2[32];

	snprintf(buf, len, "%s: %s at %p, %s pages, %s, fd %d", backing__name(b->type),
		 fmt_size(b->size, s1, sizeof(s1)), b->host, fmt_size(b->page_size, s2, sizeof(s2)),
		 b->shared ? "MAP_SHARED" : "MAP_PRIVATE", b->fd);
	return buf;
}
