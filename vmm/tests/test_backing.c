/*
 * backing__create and backing__prefault on this host, no KVM: each test asserts what the kernel
 * reports about the mapping (/proc/self/smaps, numa_maps, maps, fd, the hugetlb pool, the file).
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "memory/backing.h"
#include "util.h"
#include "tests/hugetlb.h"

static char tmpdir[64];		/* this run's scratch directory, removed by the group teardown */

/* What smaps says about the VMA that contains an address. */
struct vma {
	uintptr_t start, end;
	char perms[8];
	char path[1024];
	char flags[1024];
	uint64_t rss_kb, kernel_page_kb;
};

static bool smaps_find(const void *addr, struct vma *out)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[1024];
	bool in = false, found = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		int n = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s%n", &s, &e, &n) == 2 && n > 0) {
			if (found)
				break;
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
			if (!in)
				continue;
			found = true;
			*out = (struct vma){ .start = s, .end = e };
			sscanf(line, "%*s %7s", out->perms);
			while (line[n] == ' ')
				n++;
			snprintf(out->path, sizeof(out->path), "%s", line + n);
			out->path[strcspn(out->path, "\n")] = 0;
		} else if (in) {
			sscanf(line, "Rss: %" SCNu64, &out->rss_kb);
			sscanf(line, "KernelPageSize: %" SCNu64, &out->kernel_page_kb);
			if (!strncmp(line, "VmFlags:", 8))
				snprintf(out->flags, sizeof(out->flags), "%s", line + 8);
		}
	}
	fclose(f);
	return found;
}

static struct vma vma_of(const void *addr)
{
	struct vma v;

	assert_true(smaps_find(addr, &v));
	return v;
}

static bool has_flag(const struct vma *v, const char *flag)
{
	char buf[sizeof(v->flags)], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", v->flags);
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (!strcmp(tok, flag))
			return true;
	return false;
}

/* Mappings of at least `len` bytes: a leaked zone or address reservation shows up here. */
static int count_big_maps(uint64_t len)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[1024];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && e - s >= len)
			n++;
		if (strstr(line, "memvisor-"))	/* any memfd or file of ours counts as a leak */
			n += 1000;
	}
	fclose(f);
	return n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* What host__probe would report; filled here so that these tests do not depend on host.c. */
static struct host_info host_info(void)
{
	struct host_info h = { .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	uint64_t kb;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %" SCNu64, &kb) == 1)
			h.default_hugepage_size = kb * KiB;
	fclose(f);
	h.node_present[0] = true;
	if (h.default_hugepage_size) {
		h.nhugepage_sizes = 1;
		h.hugepage_sizes[0] = h.default_hugepage_size;
	}
	return h;
}

static struct zone_config zone(const char *id)
{
	struct zone_config z = { .host_numa_node = -1, .guest_node = -1 };

	snprintf(z.id, sizeof(z.id), "%s", id);
	return z;
}

static struct vm_config config(bool thp)
{
	struct vm_config c = { 0 };

	c.memory.thp = thp;
	return c;
}

static void create_ok(struct backing *b, const struct vm_config *c, const struct zone_config *z,
		      uint64_t size)
{
	struct host_info h = host_info();
	char err[512] = "";

	if (backing__create(b, c, z, size, &h, err, sizeof(err)) < 0)
		fail_msg("backing__create: %s", err);
	assert_non_null(b->host);
	assert_int_equal(b->size, size);
}

static void test_names_from_def(void **state)
{
	FILE *f = fopen("vmm/memory/backings.def", "re");
	char line[512], name[64];
	int n = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "BACKING(%63[a-z0-9_],", name) == 1)
			assert_string_equal(backing__name(n++), name);
	fclose(f);
	assert_int_equal(n, BACKING_COUNT);
	assert_string_equal(backing__name(BACKING_COUNT), "unknown");
}

static void test_type_selection(void **state)
{
	struct vm_config on = config(true), off = config(false);
	struct zone_config z = zone("t");

	(void)state;
	assert_int_equal(backing__type(&on, &z), BACKING_anonymous_thp);
	assert_int_equal(backing__type(&off, &z), BACKING_anonymous);
	z.shared = true;
	assert_int_equal(backing__type(&on, &z), BACKING_shmem);
	z.file = "/x";
	assert_int_equal(backing__type(&on, &z), BACKING_file_shared);
	z.shared = false;
	assert_int_equal(backing__type(&on, &z), BACKING_file);
	z.hugepages = true;	/* validation refuses it; here the file decides */
	assert_int_equal(backing__type(&on, &z), BACKING_file);
	z.file = NULL;
	assert_int_equal(backing__type(&on, &z), BACKING_hugetlb_2m);
	z.shared = true;	/* ignored with hugepages */
	z.hugepage_size = GiB;
	assert_int_equal(backing__type(&on, &z), BACKING_hugetlb_1g);
}

static void test_anonymous_thp_on(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("thp");
	struct backing b;
	struct vma v;

	(void)state;
	create_ok(&b, &c, &z, 8 * MiB);
	v = vma_of(b.host);
	assert_true(has_flag(&v, "hg"));
	assert_false(has_flag(&v, "sh"));
	assert_string_equal(v.perms, "rw-p");
	assert_int_equal(b.type, BACKING_anonymous_thp);
	assert_int_equal(b.fd, -1);
	assert_false(b.shared);
	assert_true(IS_ALIGNED((uintptr_t)b.host, 2 * MiB));
	assert_int_equal(v.rss_kb, 0);		/* nothing touched without prefault */
	backing__destroy(&b);
	assert_null(b.host);
	assert_false(smaps_find((char *)v.start + 4096, &v) && has_flag(&v, "hg"));
}

static void test_anonymous_thp_off(void **state)
{
	struct vm_config c = config(false);
	struct zone_config z = zone("nothp");
	struct backing b;
	struct vma v;

	(void)state;
	create_ok(&b, &c, &z, 8 * MiB);
	v = vma_of(b.host);
	assert_false(has_flag(&v, "hg"));
	assert_true(has_flag(&v, "nh"));	/* 4 KiB pages even when the host THP mode is always */
	assert_int_equal(b.type, BACKING_anonymous);
	backing__destroy(&b);
}

static void test_shared_memfd(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("shm1");
	struct backing b;
	struct vma v;

	(void)state;
	z.shared = true;
	create_ok(&b, &c, &z, 4 * MiB);
	v = vma_of(b.host);
	assert_true(has_flag(&v, "sh"));
	assert_false(has_flag(&v, "hg"));	/* thp=on is for private anonymous memory only */
	assert_string_equal(v.perms, "rw-s");
	assert_true(!strncmp(v.path, "/memfd:memvisor-shm1", 20));
	assert_int_equal(b.type, BACKING_shmem);
	assert_true(b.fd >= 0);
	assert_true(b.shared);
	backing__destroy(&b);
	assert_int_equal(b.fd, -1);
}

static void test_file_shared_writes_reach_file(void **state)
{
	char path[128], buf[16] = "";
	struct vm_config c = config(true);
	struct zone_config z = zone("fs");
	struct backing b;
	struct stat st;
	struct vma v;
	int fd;

	(void)state;
	/* A user file larger than the zone, with data at both ends: it must never be truncated. */
	snprintf(path, sizeof(path), "%s/shared.img", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "userdata", 8, 0), 8);
	assert_int_equal(pwrite(fd, "tail", 4, 4 * MiB), 4);
	z.file = path;
	z.shared = true;
	create_ok(&b, &c, &z, 4 * MiB);
	v = vma_of(b.host);
	assert_string_equal(v.path, path);
	assert_true(has_flag(&v, "sh"));
	assert_false(has_flag(&v, "hg"));
	assert_int_equal(b.type, BACKING_file_shared);
	assert_memory_equal(b.host, "userdata", 8);
	memcpy((char *)b.host + 8192, "guest", 5);
	backing__destroy(&b);
	assert_int_equal(pread(fd, buf, 5, 8192), 5);
	assert_memory_equal(buf, "guest", 5);
	assert_int_equal(pread(fd, buf, 4, 4 * MiB), 4);
	assert_memory_equal(buf, "tail", 4);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 4 * MiB + 4);
	close(fd);
	assert_int_equal(unlink(path), 0);
}

static void test_file_private_writes_stay(void **state)
{
	char path[128], buf[8] = "x";
	struct vm_config c = config(true);
	struct zone_config z = zone("fp");
	struct backing b;
	struct stat st;
	struct vma v;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/private.img", tmpdir);	/* does not exist yet */
	z.file = path;
	create_ok(&b, &c, &z, 2 * MiB);
	v = vma_of(b.host);
	assert_string_equal(v.path, path);
	assert_string_equal(v.perms, "rw-p");
	assert_false(has_flag(&v, "hg"));
	assert_int_equal(b.type, BACKING_file);
	memcpy((char *)b.host + 4096, "guest", 5);
	backing__destroy(&b);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 2 * MiB);	/* created and grown to the zone's size */
	assert_int_equal(pread(fd, buf, 5, 4096), 5);
	assert_memory_equal(buf, "\0\0\0\0\0", 5);
	close(fd);
	assert_int_equal(unlink(path), 0);
}

/*
 * A file's boot RAM is allocated in its file system at creation, the unplugged virtio-mem
 * region is not: a sparse file on a full tmpfs let the guest's writes vanish (KVM took them
 * for MMIO) or SIGBUS memvisor.
 */
static void test_file_allocated_at_creation(void **state)
{
	char path[128];
	struct vm_config c = config(true);
	struct zone_config z = zone("fa");
	struct backing b;
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/allocated.img", tmpdir);
	z.file = path;
	z.shared = true;
	z.hotplug_size = 8 * MiB;
	z.hotplugged_size = 2 * MiB;
	create_ok(&b, &c, &z, 12 * MiB);
	assert_int_equal(fstat(b.fd, &st), 0);
	if (fallocate(b.fd, FALLOC_FL_KEEP_SIZE, 0, 4096) < 0 && errno == EOPNOTSUPP)
		skip();		/* this file system cannot allocate: nothing to assert */
	assert_int_equal(st.st_size, 12 * MiB);
	assert_true((uint64_t)st.st_blocks * 512 >= 6 * MiB);	/* boot RAM + hotplugged */
	assert_true((uint64_t)st.st_blocks * 512 < 7 * MiB);	/* the rest: a hole */
	assert_true(backing__allocates(&b));
	backing__abort(&b);
	assert_int_equal(stat(path, &st), -1);

	/* A private file mapping never writes the file: it stays sparse, nothing to allocate. */
	z.shared = false;
	create_ok(&b, &c, &z, 12 * MiB);
	assert_int_equal(fstat(b.fd, &st), 0);
	assert_int_equal((uint64_t)st.st_blocks, 0);
	assert_false(backing__allocates(&b));
	backing__abort(&b);
}

static void test_file_directory_leaves_nothing(void **state)
{
	char dir[128];
	struct vm_config c = config(true);
	struct zone_config z = zone("fd");
	struct backing b;
	struct vma v;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/dir", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	z.file = dir;
	z.shared = true;
	create_ok(&b, &c, &z, 4 * MiB);
	assert_int_equal(count_dir(dir), 0);
	v = vma_of(b.host);
	assert_non_null(strstr(v.path, "(deleted)"));
	assert_true(!strncmp(v.path, dir, strlen(dir)));
	assert_true(has_flag(&v, "sh"));
	memset(b.host, 0xa5, 4 * MiB);
	backing__destroy(&b);
	assert_int_equal(count_dir(dir), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_mergeable(void **state)
{
	struct vm_config c = config(false);
	struct zone_config z = zone("ksm");
	struct backing b;
	struct vma v;

	(void)state;
	c.memory.mergeable = true;
	create_ok(&b, &c, &z, 4 * MiB);
	v = vma_of(b.host);
	assert_true(has_flag(&v, "mg"));
	backing__destroy(&b);
	/* Without mergeable=on, no mg. */
	c.memory.mergeable = false;
	create_ok(&b, &c, &z, 4 * MiB);
	v = vma_of(b.host);
	assert_false(has_flag(&v, "mg"));
	backing__destroy(&b);
}

static void test_prefault_create(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("pf");
	struct backing b;
	struct vma v;

	(void)state;
	z.prefault = true;
	create_ok(&b, &c, &z, 64 * MiB);
	v = vma_of(b.host);
	assert_int_equal(v.end - v.start, 64 * MiB);
	assert_int_equal(v.rss_kb, 64 * MiB / KiB);
	backing__destroy(&b);
	z.shared = true;
	create_ok(&b, &c, &z, 32 * MiB + 12 * KiB);	/* not a whole number of 2 MiB units */
	v = vma_of(b.host);
	assert_int_equal(v.rss_kb, (32 * MiB + 12 * KiB) / KiB);
	backing__destroy(&b);
}

/* A virtio-mem region is prefaulted only as far as hotplugged_size plugs it at boot. */
static void test_prefault_plugged_only(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("vmem");
	struct backing b;
	struct vma v;

	(void)state;
	z.shared = true;
	z.prefault = true;
	z.hotplug_size = 16 * MiB;
	z.hotplugged_size = 4 * MiB;
	create_ok(&b, &c, &z, 8 * MiB + 16 * MiB);
	v = vma_of(b.host);
	assert_int_equal(v.end - v.start, 24 * MiB);
	assert_int_equal(v.rss_kb, (8 + 4) * MiB / KiB);
	backing__destroy(&b);
}

/* backing__prefault as the benchmarks use it, on a fresh anonymous mapping. */
static void prefault_threads(int threads, uint64_t size)
{
	char err[256] = "";
	struct vma v;
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	/* A flag of its own keeps the VMA from merging with a neighbour and sharing its Rss. */
	assert_int_equal(madvise(p, size, MADV_NOHUGEPAGE), 0);
	assert_int_equal(vma_of(p).rss_kb, 0);
	if (backing__prefault(p, size, 4096, false, threads, err, sizeof(err)) < 0)
		fail_msg("backing__prefault(threads=%d): %s", threads, err);
	v = vma_of(p);
	assert_int_equal(v.end - v.start, size);
	assert_int_equal(v.rss_kb, size / KiB);
	assert_int_equal(munmap(p, size), 0);
}

static void test_prefault_serial_and_parallel(void **state)
{
	(void)state;
	prefault_threads(1, 48 * MiB);
	prefault_threads(2, 48 * MiB + 4 * KiB);
	prefault_threads(0, 96 * MiB);
	prefault_threads(7, 3 * 4 * KiB);	/* more threads than pages */
}

static void test_prefault_errors(void **state)
{
	char path[128], err[256] = "";
	void *p;
	int fd;

	(void)state;
	assert_int_equal(backing__prefault((void *)0x1000, 4097, 4096, false, 1, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not aligned"));
	/* Pages past the end of a file would SIGBUS when touched: prefault must report it. */
	snprintf(path, sizeof(path), "%s/short.img", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	p = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(backing__prefault(p, 64 * KiB, 4096, true, 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Bad address"));
	assert_int_equal(munmap(p, 64 * KiB), 0);
	close(fd);
	assert_int_equal(unlink(path), 0);
}

static void test_numa_bind(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("numa");
	char line[1024], want[32];
	struct backing b;
	bool found = false;
	FILE *f;

	(void)state;
	z.host_numa_node = 0;
	z.prefault = true;	/* pages exist, and on node 0 */
	create_ok(&b, &c, &z, 4 * MiB);
	snprintf(want, sizeof(want), "%lx ", (unsigned long)(uintptr_t)b.host);
	f = fopen("/proc/self/numa_maps", "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want))) {
			found = true;
			assert_non_null(strstr(line, " bind:0 "));
			assert_non_null(strstr(line, " N0="));
		}
	fclose(f);
	assert_true(found);
	backing__destroy(&b);
}

/* A failure after the file was created and mapped: nothing of it may remain. */
static void test_failure_leaves_nothing(void **state)
{
	char path[128], err[512] = "", buf[8] = "";
	struct vm_config c = config(true);
	struct zone_config z = zone("bad");
	struct host_info h = host_info();
	struct backing b;
	struct stat st;
	int maps, fds, fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/new.img", tmpdir);
	z.file = path;
	z.shared = true;
	z.host_numa_node = MAX_HOST_NODES - 1;	/* no such node here: mbind fails after mmap */
	maps = count_big_maps(16 * MiB);
	fds = count_fds();
	assert_int_equal(backing__create(&b, &c, &z, 16 * MiB, &h, err, sizeof(err)), -1);
	assert_true(!strncmp(err, "--memory-zone: zone 'bad': host_numa_node=63: mbind", 51));
	assert_null(strchr(err, '\n'));
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(count_big_maps(16 * MiB), maps);
	assert_int_equal(count_fds(), fds);
	assert_null(b.host);
	backing__destroy(&b);	/* harmless on a failed zone */

	/* A user's file we had to grow goes back to its size, data intact. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "keep", 4, 0), 4);
	assert_int_equal(backing__create(&b, &c, &z, 16 * MiB, &h, err, sizeof(err)), -1);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(pread(fd, buf, 4, 0), 4);
	assert_memory_equal(buf, "keep", 4);
	close(fd);
	assert_int_equal(unlink(path), 0);

	/* The --memory zone is named as the user wrote it. */
	c.memory.size = 16 * MiB;
	z = zone(DEFAULT_ZONE_ID);
	assert_int_equal(backing__create(&b, &c, &z, 16 * MiB + 1, &h, err, sizeof(err)), -1);
	assert_true(!strncmp(err, "--memory: size ", 15));
}

/*
 * backing__abort (setup failed after the zone was made) undoes the file system changes;
 * backing__destroy (the VM ended) keeps them: the file holds the guest's data.
 */
static void test_abort_and_destroy_files(void **state)
{
	char path[128], buf[8] = "";
	struct vm_config c = config(true);
	struct zone_config z = zone("ab");
	struct backing b;
	struct stat st;
	int fds = count_fds(), fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/abort.img", tmpdir);
	z.file = path;
	z.shared = true;
	create_ok(&b, &c, &z, 4 * MiB);		/* created by us */
	assert_int_equal(stat(path, &st), 0);
	backing__abort(&b);
	assert_null(b.host);
	assert_int_equal(b.fd, -1);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_fds(), fds);
	backing__abort(&b);	/* twice is harmless */

	/* A user's file we grew goes back to its size, its data intact. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "keep", 4, 0), 4);
	create_ok(&b, &c, &z, 4 * MiB);
	memcpy((char *)b.host + 4096, "guest", 5);
	backing__abort(&b);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(pread(fd, buf, 4, 0), 4);
	assert_memory_equal(buf, "keep", 4);

	/* After a normal end the grown file keeps its size and the guest's data. */
	create_ok(&b, &c, &z, 4 * MiB);
	memcpy((char *)b.host + 4096, "guest", 5);
	backing__destroy(&b);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 4 * MiB);
	assert_int_equal(pread(fd, buf, 5, 4096), 5);
	assert_memory_equal(buf, "guest", 5);
	close(fd);
	assert_int_equal(unlink(path), 0);
}

static void test_hugetlb_2m(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("huge");
	char err[256] = "";
	long long free0, resv0;
	struct backing b;
	struct vma v;

	(void)state;
	need_2m_pages(8);
	free0 = read_ll(HUGE_2M_SYSFS "free_hugepages");
	resv0 = read_ll(HUGE_2M_SYSFS "resv_hugepages");
	z.hugepages = true;
	z.hugepage_size = 2 * MiB;
	create_ok(&b, &c, &z, 16 * MiB);
	v = vma_of(b.host);
	assert_int_equal(v.kernel_page_kb, 2048);
	assert_true(has_flag(&v, "ht"));
	assert_false(has_flag(&v, "hg"));
	assert_string_equal(v.perms, "rw-s");	/* always MAP_SHARED */
	assert_true(!strncmp(v.path, "/memfd:memvisor-huge", 20));
	assert_int_equal(b.type, BACKING_hugetlb_2m);
	assert_int_equal(b.page_size, 2 * MiB);
	/* Reserved at mmap (no MAP_NORESERVE): the guest can never fault on an empty pool. */
	assert_int_equal(read_ll(HUGE_2M_SYSFS "resv_hugepages"), resv0 + 8);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0);
	if (backing__prefault(b.host, b.size, b.page_size, true, 2, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 8);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "resv_hugepages"), resv0);
	backing__destroy(&b);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0);

	/* No hugepage_size: the host's default, with shared=off ignored. */
	if (host_info().default_hugepage_size == 2 * MiB) {
		z.hugepage_size = 0;
		z.prefault = true;
		create_ok(&b, &c, &z, 16 * MiB);
		assert_int_equal(b.type, BACKING_hugetlb_2m);
		assert_true(b.shared);
		assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 8);
		backing__destroy(&b);
	}
}

/* Boot RAM 8M + plugged 4M of a 16M region: 6 pool pages reserved, and 6 taken by prefault. */
static void test_hugetlb_plugged_only(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("hvmem");
	long long free0, resv0;
	struct backing b;

	(void)state;
	need_2m_pages(12);	/* enough for the whole mapping: only our split keeps it at 6 */
	free0 = read_ll(HUGE_2M_SYSFS "free_hugepages");
	resv0 = read_ll(HUGE_2M_SYSFS "resv_hugepages");
	z.hugepages = true;
	z.hugepage_size = 2 * MiB;
	z.hotplug_size = 16 * MiB;
	z.hotplugged_size = 4 * MiB;
	create_ok(&b, &c, &z, 24 * MiB);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "resv_hugepages"), resv0 + 6);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0);
	backing__destroy(&b);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "resv_hugepages"), resv0);

	z.prefault = true;
	create_ok(&b, &c, &z, 24 * MiB);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 6);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "resv_hugepages"), resv0);
	backing__destroy(&b);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0);
}

static void test_hugetlb_pool_too_small(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("short");
	struct host_info h = host_info();
	char err[512] = "", want[160];
	long long free0;
	struct backing b;
	int maps, fds;

	(void)state;
	need_2m_pages(2);
	free0 = read_ll(HUGE_2M_SYSFS "free_hugepages");
	snprintf(want, sizeof(want), "--memory-zone: zone 'short': mmap of 16 MiB of 2 MiB huge pages "
		 "failed: Cannot allocate memory (pool has %lld free", free0);
	z.hugepages = true;
	z.hugepage_size = 2 * MiB;
	z.prefault = true;
	maps = count_big_maps(16 * MiB);
	fds = count_fds();
	assert_int_equal(backing__create(&b, &c, &z, 16 * MiB, &h, err, sizeof(err)), -1);
	print_message("expected error: %s\n", err);
	assert_non_null(strstr(err, want));
	assert_int_equal(count_big_maps(16 * MiB), maps);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0);
}

/* backing__discard: private pages leave the process, shared ones the memfd, huge pages whole. */
static void test_discard(void **state)
{
	struct vm_config c = config(false);
	struct zone_config z = zone("disc");
	long long free0;
	struct backing b;
	struct stat st;

	(void)state;
	create_ok(&b, &c, &z, 4 * MiB);
	memset(b.host, 0x5a, 4 * MiB);
	assert_int_equal(vma_of(b.host).rss_kb, 4096);
	assert_int_equal(backing__discard(&b, 8 * KiB, 4 * KiB + 1), 0);	/* one whole page */
	assert_int_equal(backing__discard(&b, 1 * MiB + 1, 4 * KiB), 0);	/* none: a no-op */
	assert_int_equal(vma_of(b.host).rss_kb, 4092);
	assert_int_equal(((uint8_t *)b.host)[8 * KiB], 0);
	assert_int_equal(((uint8_t *)b.host)[12 * KiB], 0x5a);
	assert_int_equal(((uint8_t *)b.host)[1 * MiB], 0x5a);
	errno = 0;
	assert_int_equal(backing__discard(&b, 4 * MiB - 4 * KiB, 8 * KiB), -1);	/* past the end */
	assert_int_equal(errno, EINVAL);
	assert_int_equal(backing__discard(&b, UINT64_MAX - 4 * KiB, 8 * KiB), -1);
	backing__destroy(&b);

	z.shared = true;
	create_ok(&b, &c, &z, 4 * MiB);
	memset(b.host, 0xa5, 4 * MiB);
	assert_int_equal(backing__discard(&b, 1 * MiB, 1 * MiB), 0);
	assert_int_equal(fstat(b.fd, &st), 0);
	assert_int_equal((uint64_t)st.st_blocks * 512, 3 * MiB);	/* a hole in the memfd */
	assert_int_equal(((uint8_t *)b.host)[1 * MiB], 0);
	assert_int_equal(((uint8_t *)b.host)[2 * MiB], 0xa5);
	backing__destroy(&b);

	need_2m_pages(2);
	free0 = read_ll(HUGE_2M_SYSFS "free_hugepages");
	z.hugepages = true;
	z.hugepage_size = 2 * MiB;
	create_ok(&b, &c, &z, 4 * MiB);
	memset(b.host, 1, 4 * MiB);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 2);
	assert_int_equal(backing__discard(&b, 2 * MiB + 4 * KiB, 4 * KiB), 0);	/* inside one */
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 2);
	assert_int_equal(backing__discard(&b, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(read_ll(HUGE_2M_SYSFS "free_hugepages"), free0 - 1);	/* back in the pool */
	backing__destroy(&b);
}

static void test_describe(void **state)
{
	struct vm_config c = config(true);
	struct zone_config z = zone("d");
	char buf[256];
	struct backing b;

	(void)state;
	z.shared = true;
	create_ok(&b, &c, &z, 6 * MiB);
	backing__describe(&b, buf, sizeof(buf));
	assert_true(!strncmp(buf, "shmem: 6 MiB at 0x", 18));
	assert_non_null(strstr(buf, "4 KiB pages, MAP_SHARED"));
	backing__destroy(&b);
	backing__destroy(&b);	/* twice is harmless */
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/memvisor-test-backing-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int remove_tmpdir(void **state)
{
	(void)state;
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_from_def),
		cmocka_unit_test(test_type_selection),
		cmocka_unit_test(test_anonymous_thp_on),
		cmocka_unit_test(test_anonymous_thp_off),
		cmocka_unit_test(test_shared_memfd),
		cmocka_unit_test(test_file_shared_writes_reach_file),
		cmocka_unit_test(test_file_private_writes_stay),
		cmocka_unit_test(test_file_allocated_at_creation),
		cmocka_unit_test(test_file_directory_leaves_nothing),
		cmocka_unit_test(test_mergeable),
		cmocka_unit_test(test_prefault_create),
		cmocka_unit_test(test_prefault_plugged_only),
		cmocka_unit_test(test_prefault_serial_and_parallel),
		cmocka_unit_test(test_prefault_errors),
		cmocka_unit_test(test_numa_bind),
		cmocka_unit_test(test_failure_leaves_nothing),
		cmocka_unit_test(test_abort_and_destroy_files),
		cmocka_unit_test_teardown(test_hugetlb_2m, restore_2m_pool),
		cmocka_unit_test_teardown(test_hugetlb_plugged_only, restore_2m_pool),
		cmocka_unit_test_teardown(test_hugetlb_pool_too_small, restore_2m_pool),
		cmocka_unit_test_teardown(test_discard, restore_2m_pool),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests_name("backing", tests, make_tmpdir, remove_tmpdir);
}
