/*
 * A scratch directory for one test program: cmocka group setup and teardown (every file in it
 * removed, then the directory), and files written in it by name.
 */
#ifndef MEMVISOR_TESTS_TMPDIR_H
#define MEMVISOR_TESTS_TMPDIR_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static int tmpdir_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/memvisor-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmpdir_teardown(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[sizeof(tmpdir) + 256];

	(void)state;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		if (unlink(path) < 0 && errno != ENOENT) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return rmdir(tmpdir);
}

/* tmpdir/name, in a buffer the next call reuses. */
static const char *tmpdir_path(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* tmpdir/name with exactly these bytes; its path as tmpdir_path gives it. */
static const char *tmpdir_write(const char *name, const void *buf, size_t size)
{
	const char *path = tmpdir_path(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	assert_int_equal(close(fd), 0);
	return path;
}

#endif
