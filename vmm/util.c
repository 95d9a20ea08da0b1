#include <stdarg.h>
#include "util.h"

/* Length of the UTF-8 character at s when it is valid and printable, else 0 (escape its byte). */
static size_t utf8_printable(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	/* U+0080..U+009F are the C1 controls: 0x9b is CSI to many terminals */
	if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * src into dst with each control character as a C escape (\n, \t, \r, \xHH), always terminated
 * and cut before a whole character or escape; returns how many bytes of src it took.
 * Idempotent: what it writes has nothing to escape.
 */
static size_t escape(char *dst, size_t dstlen, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (!dstlen)
		return 0;
	while (*s) {
		size_t n = *s >= 0x20 && *s < 0x7f ? 1 : *s >= 0x80 ? utf8_printable(s) : 0;
		char esc[5];

		if (n) {
			if (o + n >= dstlen)
				break;
			memcpy(dst + o, s, n);
			o += n;
			s += n;
			continue;
		}
		if (*s == '\n' || *s == '\t' || *s == '\r')
			snprintf(esc, sizeof(esc), "\\%c", *s == '\n' ? 'n' : *s == '\t' ? 't' : 'r');
		else
			snprintf(esc, sizeof(esc), "\\x%02x", *s);
		if (o + strlen(esc) >= dstlen)
			break;
		memcpy(dst + o, esc, strlen(esc));
		o += strlen(esc);
		s++;
	}
	dst[o] = '\0';
	return (size_t)((const char *)s - src);
}

static void vreport(const char *fmt, va_list ap, int errnum)
{
	char raw[2048], line[4096];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	escape(line, sizeof(line), raw);
	if (errnum)
		fprintf(stderr, "memvisor: %s: %s\n", line, strerror(errnum));
	else
		fprintf(stderr, "memvisor: %s\n", line);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap, 0);
	va_end(ap);
	exit(1);
}

void die_perror(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap, errnum);
	va_end(ap);
	exit(1);
}

void report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap, 0);
	va_end(ap);
}

int error(char *err, size_t errlen, const char *fmt, ...)
{
	char raw[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	escape(err, errlen, raw);
	return -1;
}

struct quoted quote(const char *s)
{
	int errnum = errno;	/* callers pass strerror(errno) in the same argument list */
	struct quoted q;
	size_t n = escape(q.s, QUOTE_MAX + 1, s);

	if (s[n])
		snprintf(q.s + strlen(q.s), sizeof(q.s) - strlen(q.s), "...(%zu bytes)", strlen(s));
	errno = errnum;
	return q;
}
