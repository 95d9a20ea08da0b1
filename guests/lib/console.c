/*
 * Serial console (16550 at 0x3f8), printf and the exit port.
 * Every port access is a VM exit (~50 us on the nested test host), so output is buffered
 * by line and sent in bursts of 16 bytes (the 16550A FIFO) with one LSR poll per burst.
 */
#include "guest.h"

#define COM1		0x3f8
#define UART_THR	0
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define LSR_THRE	0x20
#define UART_FIFO	16

static char line[256];
static size_t line_len;

void serial_init(void)
{
	outb(COM1 + UART_IER, 0);	/* no interrupts: we poll */
	outb(COM1 + UART_LCR, 0x03);	/* 8N1 */
	outb(COM1 + UART_FCR, 0x07);	/* FIFO on, both cleared */
}

void console_flush(void)
{
	size_t i = 0;

	while (i < line_len) {
		/* Bounded: a UART that never reports THRE must not hang the guest forever */
		for (int spin = 0; spin < 1000000 && !(inb(COM1 + UART_LSR) & LSR_THRE); spin++)
			__asm__ volatile("pause");
		for (int n = 0; n < UART_FIFO && i < line_len; n++)
			outb(COM1 + UART_THR, (u8)line[i++]);
	}
	line_len = 0;
}

static void putc(char c)
{
	line[line_len++] = c;
	if (c == '\n' || line_len == sizeof(line))
		console_flush();
}

/* A tiny vsnprintf: %[0][width][l|ll|z](d|i|u|x|X|c|s|p|%) */
struct out { char *buf; size_t len, pos; };

static void emit(struct out *o, char c)
{
	if (!o->buf)
		putc(c);
	else if (o->pos + 1 < o->len)
		o->buf[o->pos] = c;
	o->pos++;
}

static void emit_num(struct out *o, u64 v, unsigned base, bool neg, int width, char pad, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		width--;
	if (neg && pad == '0')
		emit(o, '-');
	for (int i = n; i < width; i++)
		emit(o, pad);
	if (neg && pad != '0')
		emit(o, '-');
	while (n)
		emit(o, tmp[--n]);
}

static void format(struct out *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(o, *fmt);
			continue;
		}
		char pad = ' ';
		int width = 0, lng = 0;
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': case 'i': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			emit_num(o, v < 0 ? -(u64)v : (u64)v, 10, v < 0, width, pad, false);
			break;
		}
		case 'u': case 'x': case 'X': {
			u64 v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
			emit_num(o, v, *fmt == 'u' ? 10 : 16, false, width, pad, *fmt == 'X');
			break;
		}
		case 'p':
			emit(o, '0');
			emit(o, 'x');
			emit_num(o, (u64)(uintptr_t)va_arg(ap, void *), 16, false, width, pad, false);
			break;
		case 'c':
			emit(o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int n = (int)strlen(s);
			for (int i = n; i < width; i++)
				emit(o, ' ');
			while (*s)
				emit(o, *s++);
			break;
		}
		case '%':
			emit(o, '%');
			break;
		default:
			emit(o, '%');
			if (*fmt)
				emit(o, *fmt);
			else
				fmt--;
		}
	}
}

void vprintf(const char *fmt, va_list ap)
{
	struct out o = { 0 };

	format(&o, fmt, ap);
}

void printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

int snprintf(char *buf, size_t len, const char *fmt, ...)
{
	struct out o = { buf, len, 0 };
	va_list ap;

	va_start(ap, fmt);
	format(&o, fmt, ap);
	va_end(ap);
	if (len)
		buf[o.pos < len ? o.pos : len - 1] = 0;
	return (int)o.pos;
}

void print_quoted(const char *s, size_t max)
{
	putc('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		u8 c = (u8)s[i];
		if (c == '"' || c == '\\' || c < 0x20 || c > 0x7e)
			printf("\\x%02x", c);
		else
			putc((char)c);
	}
	putc('"');
}

__noreturn void guest_exit(u32 code)
{
	console_flush();
	debug_mark(DEBUG_EXIT);
	outl(PORT_EXIT, code);
	/* No exit device (or it ignored us): stop here rather than run off */
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* End a partly written line, so that an exception report starts on its own line. */
void console_break(void)
{
	if (line_len)
		putc('\n');
}
