/*
 * What the host offers for guest memory, read from procfs and sysfs before anything is mapped:
 * base page size, huge page sizes and their free pools (in total and per node), NUMA nodes.
 * A missing file means the feature is absent (no hugetlb, no NUMA), not an error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include "memory/config.h"
#include "util.h"

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"
#define NODE_DIR "/sys/devices/system/node"

/* Reads a small file into buf (NUL-terminated). 1: read; 0: absent; -1: error in err. */
static int read_small(const char *path, char *buf, size_t size, char *err, size_t errlen)
{
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return error(err, errlen, "host: %s: %s", path, strerror(errno));
	}
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return error(err, errlen, "host: %s: %s", path, strerror(e));
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (close(fd))
		return error(err, errlen, "host: %s: %s", path, strerror(errno));
	return 1;
}

/* A decimal counter file; absent reads as 0. */
static int read_u64(const char *path, uint64_t *out, char *err, size_t errlen)
{
	char buf[64], *end;
	int r = read_small(path, buf, sizeof(buf), err, errlen);

	*out = 0;
	if (r <= 0)
		return r;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n'))
		return error(err, errlen, "host: %s: not a number: '%s'", path, buf);
	return 1;
}

/* "0-1,3\n" -> present[0], present[1], present[3]; ids beyond MAX_HOST_NODES are ignored. */
static int parse_node_list(const char *s, bool *present)
{
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -1;
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || b < a)
				return -1;
		}
		for (unsigned long n = a; n <= b && n < MAX_HOST_NODES; n++)
			present[n] = true;
		s = end;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -1;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int probe_hugepages(struct host_info *host, const char *root, char *err, size_t errlen)
{
	char path[PATH_MAX], buf[4096], *p;
	uint64_t sizes[16];
	int n = 0, r;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	r = read_small(path, buf, sizeof(buf), err, errlen);
	if (r < 0)
		return -1;
	p = r ? strstr(buf, "Hugepagesize:") : NULL;
	if (p && (p == buf || p[-1] == '\n'))
		host->default_hugepage_size = strtoull(p + strlen("Hugepagesize:"), NULL, 10) * KiB;

	snprintf(path, sizeof(path), "%s" HUGEPAGES_DIR, root);
	d = opendir(path);
	if (!d) {
		if (errno != ENOENT)
			return error(err, errlen, "host: %s: %s", path, strerror(errno));
		host->default_hugepage_size = 0;	/* no hugetlb in this kernel */
		return 0;
	}
	errno = 0;
	while ((de = readdir(d))) {
		uint64_t kb;
		char tail[4];

		if (sscanf(de->d_name, "hugepages-%" SCNu64 "%3s", &kb, tail) == 2 &&
		    !strcmp(tail, "kB") && kb && n < (int)ARRAY_SIZE(sizes))
			sizes[n++] = kb * KiB;
		errno = 0;
	}
	r = errno;
	if (closedir(d) || r)
		return error(err, errlen, "host: %s: %s", path, strerror(r ? r : errno));
	qsort(sizes, (size_t)n, sizeof(sizes[0]), cmp_u64);
	host->nhugepage_sizes = n < MAX_HUGEPAGE_SIZES ? n : MAX_HUGEPAGE_SIZES;
	for (int i = 0; i < host->nhugepage_sizes; i++) {
		uint64_t kb = sizes[i] / KiB, free_pages, resv;

		host->hugepage_sizes[i] = sizes[i];
		/* free_hugepages counts pages promised to existing mappings; they are not ours */
		snprintf(path, sizeof(path), "%s" HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB/free_hugepages",
			 root, kb);
		if (read_u64(path, &free_pages, err, errlen) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s" HUGEPAGES_DIR "/hugepages-%" PRIu64 "kB/resv_hugepages",
			 root, kb);
		if (read_u64(path, &resv, err, errlen) < 0)
			return -1;
		host->free_hugepages_total[i] = free_pages > resv ? free_pages - resv : 0;
	}
	for (r = 0; r < host->nhugepage_sizes; r++)
		if (host->hugepage_sizes[r] == host->default_hugepage_size)
			break;
	if (r == host->nhugepage_sizes)
		host->default_hugepage_size = host->nhugepage_sizes ? host->hugepage_sizes[0] : 0;
	return 0;
}

static int probe_nodes(struct host_info *host, const char *root, char *err, size_t errlen)
{
	char path[PATH_MAX], buf[4096];
	bool with_memory[MAX_HOST_NODES] = { false };
	int r;

	snprintf(path, sizeof(path), "%s" NODE_DIR "/online", root);
	r = read_small(path, buf, sizeof(buf), err, errlen);
	if (r < 0)
		return -1;
	if (r && parse_node_list(buf, host->node_present))
		return error(err, errlen, "host: %s: unexpected '%s'", path, buf);
	if (!r) {	/* older kernels: the node directories */
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s" NODE_DIR, root);
		d = opendir(path);
		if (!d && errno != ENOENT)
			return error(err, errlen, "host: %s: %s", path, strerror(errno));
		while (d && (de = readdir(d))) {
			unsigned n;
			char c;

			if (sscanf(de->d_name, "node%u%c", &n, &c) == 1 && n < MAX_HOST_NODES)
				host->node_present[n] = true;
		}
		if (d && closedir(d))
			return error(err, errlen, "host: %s: %s", path, strerror(errno));
	}
	/* mbind(MPOL_BIND) to a node without memory fails: such a node cannot back a zone */
	snprintf(path, sizeof(path), "%s" NODE_DIR "/has_memory", root);
	r = read_small(path, buf, sizeof(buf), err, errlen);
	if (r < 0)
		return -1;
	if (r && parse_node_list(buf, with_memory))
		return error(err, errlen, "host: %s: unexpected '%s'", path, buf);
	for (int n = 0; n < MAX_HOST_NODES; n++) {
		if (r)
			host->node_present[n] &= with_memory[n];
		if (host->node_present[n])
			host->nnodes = n + 1;
	}
	for (int n = 0; n < host->nnodes; n++) {
		for (int i = 0; host->node_present[n] && i < host->nhugepage_sizes; i++) {
			snprintf(path, sizeof(path), "%s" NODE_DIR "/node%d/hugepages/hugepages-%" PRIu64
				 "kB/free_hugepages", root, n, (uint64_t)(host->hugepage_sizes[i] / KiB));
			if (read_u64(path, &host->free_hugepages[i][n], err, errlen) < 0)
				return -1;
		}
	}
	return 0;
}

int host__probe_at(struct host_info *host, const char *root, char *err, size_t errlen)
{
	long ps = sysconf(_SC_PAGESIZE);

	memset(host, 0, sizeof(*host));
	if (ps <= 0)
		return error(err, errlen, "host: sysconf(_SC_PAGESIZE): %s", strerror(errno));
	host->page_size = (uint64_t)ps;
	if (probe_hugepages(host, root, err, errlen) || probe_nodes(host, root, err, errlen))
		return -1;
	return 0;
}

int host__probe(struct host_info *host, char *err, size_t errlen)
{
	return host__probe_at(host, "", err, errlen);
}
