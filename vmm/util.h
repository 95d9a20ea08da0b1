/* Fatal errors and checked syscalls: one die() path, for main before the VM exists. */
#ifndef MEMVISOR_UTIL_H
#define MEMVISOR_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define __noreturn __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))

/* Print "memvisor: <msg>" and exit(1). */
void die(const char *fmt, ...) __noreturn __printf(1, 2);
/* Same, with ": strerror(errno)" appended. */
void die_perror(const char *fmt, ...) __noreturn __printf(1, 2);
/* Print "memvisor: <msg>" and go on: once the VM exists, a failure is cleaned up, not died of. */
void report(const char *fmt, ...) __printf(1, 2);

/* Like the KVM selftests' TEST_ASSERT: expression, file, line, errno, message. */
#define VMM_ASSERT(e, fmt, ...)                                                              \
	do {                                                                                 \
		if (!(e))                                                                    \
			die("%s:%d: assertion '%s' failed (errno %d, %s): " fmt, __FILE__,   \
			    __LINE__, #e, errno, strerror(errno), ##__VA_ARGS__);            \
	} while (0)

/*
 * snprintf into an error buffer, returning -1, for the "return error(...)" idiom. Like die() and
 * report(), it escapes control characters (\n, \x1b) of whatever the message quotes: every
 * message stays one harmless line.
 */
int error(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);

/*
 * A value the user gave, as a message echoes it: escaped, and when that is longer than QUOTE_MAX
 * characters its beginning and "...(N bytes)", so that the reason after it always fits the line.
 * error(err, errlen, "--x: '%s': reason", quote(val).s). Leaves errno as it was.
 */
#define QUOTE_MAX 64
struct quoted { char s[QUOTE_MAX + 32]; };
struct quoted quote(const char *s);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((a) - 1)) == 0)
#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

#endif
