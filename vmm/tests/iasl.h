/*
 * iasl as a checker, shared by the unit tests of the ACPI tables (test_acpi) and of the AML builder
 * (test_aml): a table is disassembled (iasl -d), the disassembly compiled again, and the result
 * compared with the original.
 */
#ifndef MEMVISOR_TESTS_IASL_H
#define MEMVISOR_TESTS_IASL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "memory/layout.h"
#include "util.h"

static int run(const char *cmd, char *out, size_t outlen)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, r;
	int status;

	assert_non_null(p);
	while (n + 1 < outlen && (r = fread(out + n, 1, outlen - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	while (fgetc(p) != EOF)	/* drain what did not fit */
		;
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(data, 1, len, f) == len;

	return (f && fclose(f) == 0) && ok;
}

static size_t read_file(const char *path, char *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, max - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static const char *bad_word(const char *text)
{
	static const char *const words[] = { "warning", "error", "incorrect", "invalid", "****" };

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasestr(text, words[i]))
			return words[i];
	return NULL;
}

static char iasl_out[1 << 16], dsl[1 << 20];
static uint8_t iasl_aml[ACPI_TABLES_MAX];

/*
 * Disassemble one table with iasl, then compile the disassembly again. Returns false with a
 * reason on the first problem. `compare`: the compiled table must equal ours except for the
 * checksum and the compiler id/revision, which iasl replaces with its own.
 */
static bool iasl_table_ok(const char *dir, const uint8_t *table, bool compare, char *why,
			  size_t whylen)
{
	uint32_t len = (uint32_t)table[4] | (uint32_t)table[5] << 8 | (uint32_t)table[6] << 16 |
		       (uint32_t)table[7] << 24;
	char sig[5], cmd[2048], path[1024];
	const char *w;
	size_t n;

	snprintf(sig, sizeof(sig), "%.4s", (const char *)table);
	snprintf(path, sizeof(path), "%s/%s.dat", dir, sig);
	if (!write_file(path, table, len))
		return error(why, whylen, "cannot write %s", path), false;
	snprintf(cmd, sizeof(cmd), "iasl -p %s/%s -d %s 2>&1", dir, sig, path);
	if (run(cmd, iasl_out, sizeof(iasl_out)) != 0)
		return error(why, whylen, "%s failed:\n%s", cmd, iasl_out), false;
	if ((w = bad_word(iasl_out)))
		return error(why, whylen, "%s said '%s':\n%s", cmd, w, iasl_out), false;
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, sig);
	if (!read_file(path, dsl, sizeof(dsl)))
		return error(why, whylen, "no %s", path), false;
	if ((w = bad_word(dsl)))
		return error(why, whylen, "%s contains '%s'", path, w), false;

	snprintf(cmd, sizeof(cmd), "iasl -p %s/%s-rt %s 2>&1", dir, sig, path);
	if (run(cmd, iasl_out, sizeof(iasl_out)) != 0 ||
	    !strstr(iasl_out, "0 Errors, 0 Warnings, 0 Remarks"))
		return error(why, whylen, "%s:\n%s", cmd, iasl_out), false;
	if (!compare)
		return true;
	snprintf(path, sizeof(path), "%s/%s-rt.aml", dir, sig);
	n = read_file(path, (char *)iasl_aml, sizeof(iasl_aml));
	if (n != len)
		return error(why, whylen, "%s: %zu bytes, ours %u", path, n, len), false;
	for (uint32_t i = 0; i < len; i++)
		if (iasl_aml[i] != table[i] && i != 9 && !(i >= 28 && i < 36))
			return error(why, whylen, "%s differs at byte %u", path, i), false;
	return true;
}

#endif
