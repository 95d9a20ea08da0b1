/* Check results in the manner of kvm-unit-tests' report(): see guests/README.md. */
#include "guest.h"

#define MAX_ERROR_LINES 16

void check_error(struct check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->errors++ >= MAX_ERROR_LINES)
		return;
	printf("error check=%s ", c->name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

void check_skip(struct check *c, const char *why)
{
	if (!c->skip)
		c->skip = why;
}

int checks_report(struct check *c, int n)
{
	unsigned failed = 0, passed = 0, skipped = 0;

	for (int i = 0; i < n; i++) {
		if (c[i].errors) {
			printf("FAIL: %s errors=%u\n", c[i].name, c[i].errors);
			failed++;
		} else if (c[i].skip) {
			printf("SKIP: %s %s\n", c[i].name, c[i].skip);
			skipped++;
		} else {
			printf("PASS: %s\n", c[i].name);
			passed++;
		}
	}
	if (failed)
		printf("SUMMARY: FAIL %u pass=%u skip=%u\n", failed, passed, skipped);
	else
		printf("SUMMARY: ok pass=%u skip=%u\n", passed, skipped);
	return failed ? EXIT_FAIL : EXIT_OK;
}
