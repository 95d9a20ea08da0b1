/* What test_config.c and test_validate.c share: a test host and parse-and-validate checks. */
#ifndef MEMVISOR_TESTS_CONFIG_CHECKS_H
#define MEMVISOR_TESTS_CONFIG_CHECKS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "memory/config.h"
#include "util.h"

/* 2 host nodes; 2M pages: 512 free on node 0, 256 on node 1; 1G pages: 2 and 1. */
static inline struct host_info test_host(void)
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

static inline int count(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

static inline void join(char *buf, size_t len, char **argv)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 1; argv[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " %s", argv[i]);
}

/* Parse and validate against h; returns -1 with err on failure; cfg is freed on failure. */
static inline int run_host(struct vm_config *cfg, char **argv, const struct host_info *h, char *err,
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

static inline void ok_host(struct vm_config *cfg, char **argv, const struct host_info *h)
{
	char err[512], args[1024];

	if (run_host(cfg, argv, h, err, sizeof(err))) {
		join(args, sizeof(args), argv);
		fail_msg("refused:%s\n  -> %s", args, err);
	}
}

static inline void err_host(const char *expected, char **argv, const struct host_info *h)
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

static inline void ok_args(struct vm_config *cfg, char **argv)
{
	struct host_info h = test_host();

	ok_host(cfg, argv, &h);
}

static inline void err_args(const char *expected, char **argv)
{
	struct host_info h = test_host();

	err_host(expected, argv, &h);
}

/* Every case gets --kernel unless it tests --kernel itself. */
#define OK(cfg, ...) ok_args(cfg, ARGV("--kernel", "vmlinux", __VA_ARGS__))
#define ERR(msg, ...) err_args(msg, ARGV("--kernel", "vmlinux", __VA_ARGS__))

#endif
