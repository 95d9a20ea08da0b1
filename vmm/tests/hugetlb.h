/*
 * The host's 2 MiB hugetlb pool for tests that need some of its pages: grown as root to the
 * number a test wants free (the test is skipped when that cannot be done), and put back to its
 * size by the test's teardown (restore_2m_pool). Shared by test_backing and test_virtio_balloon;
 * included after <cmocka.h>.
 */
#ifndef MEMVISOR_TESTS_HUGETLB_H
#define MEMVISOR_TESTS_HUGETLB_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define HUGE_2M_SYSFS "/sys/kernel/mm/hugepages/hugepages-2048kB/"

static long long saved_nr_2m = -1;	/* hugetlb pool size to restore after a test that grew it */

static inline long long read_ll(const char *path)
{
	FILE *f = fopen(path, "re");
	long long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static inline bool write_ll(const char *path, long long v)
{
	FILE *f = fopen(path, "we");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%lld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

/* Make `want` 2 MiB pages free in the pool (as root), remembering its size for the teardown. */
static inline void need_2m_pages(long long want)
{
	long long nr = read_ll(HUGE_2M_SYSFS "nr_hugepages");
	long long nfree = read_ll(HUGE_2M_SYSFS "free_hugepages");
	long long resv = read_ll(HUGE_2M_SYSFS "resv_hugepages");

	if (nr < 0 || nfree < 0) {
		print_message("skipped: no 2 MiB hugetlb pool on this host\n");
		skip();
	}
	saved_nr_2m = nr;
	if (nfree - resv != want &&
	    (geteuid() != 0 || !write_ll(HUGE_2M_SYSFS "nr_hugepages", nr + want - (nfree - resv)) ||
	     read_ll(HUGE_2M_SYSFS "free_hugepages") - resv != want)) {
		print_message("skipped: cannot set the 2 MiB pool to %lld free pages (root: %s)\n",
			      want, geteuid() ? "no" : "yes");
		skip();
	}
}

static inline int restore_2m_pool(void **state)
{
	(void)state;
	if (saved_nr_2m >= 0 && !write_ll(HUGE_2M_SYSFS "nr_hugepages", saved_nr_2m))
		return -1;
	saved_nr_2m = -1;
	return 0;
}

#endif
