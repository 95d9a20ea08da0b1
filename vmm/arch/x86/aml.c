/*
 * The AML builder: encodings from ACPI 6.3 section 20.2 (AML grammar) and 6.4 (resource data
 * types), and, where the spec leaves a choice, the one iasl makes, so that iasl compiles the
 * disassembly of our AML back to the same bytes.
 */
#include <stdarg.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "util.h"

#define OP_ZERO			0x00
#define OP_ONE			0x01
#define OP_NAME			0x08
#define OP_BYTE			0x0a
#define OP_WORD			0x0b
#define OP_DWORD		0x0c
#define OP_STRING		0x0d
#define OP_QWORD		0x0e
#define OP_SCOPE		0x10
#define OP_BUFFER		0x11
#define OP_PACKAGE		0x12
#define OP_METHOD		0x14
#define OP_DUAL_NAME		0x2e
#define OP_MULTI_NAME		0x2f
#define OP_EXT			0x5b
#define OP_LOCAL0		0x60
#define OP_ARG0			0x68
#define OP_IF			0xa0
#define OP_ELSE			0xa1
#define OP_WHILE		0xa2
#define OP_ONES			0xff
/* after OP_EXT */
#define OP_MUTEX		0x01
#define OP_ACQUIRE		0x23
#define OP_RELEASE		0x27
#define OP_REGION		0x80
#define OP_FIELD		0x81
#define OP_DEVICE		0x82

/* Resource descriptors: small items are tag | length, large ones a tag and a 16-bit length. */
#define RD_IRQ_NOFLAGS		0x22
#define RD_IO			0x47
#define RD_END_TAG		0x79
#define RD_MEMORY32_FIXED	0x86
#define RD_EXT_INTERRUPT	0x89
#define RD_QWORD_SPACE		0x8a
#define RD_QWORD_LEN		43	/* type, 2 flag bytes, 5 QWords */
#define RD_CONSUMER		0x01
#define RD_MIN_FIXED		0x04
#define RD_MAX_FIXED		0x08

#define PKGLEN_MAX_BYTES	4
#define NAME_SEGS_MAX		255	/* MultiNamePrefix's SegCount is one byte */

enum { OPEN_PKG, OPEN_IF, OPEN_FIELD, OPEN_BUFFER, OPEN_TEMPLATE };

static bool failed(const struct aml *a) { return a->err[0] != '\0'; }

static void __printf(2, 3) fail(struct aml *a, const char *fmt, ...)
{
	va_list ap;

	if (failed(a))
		return;
	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
}

void aml__init(struct aml *a, size_t limit)
{
	memset(a, 0, sizeof(*a));
	a->limit = limit < AML_LEN_MAX ? limit : AML_LEN_MAX;
}

int aml__finish(const struct aml *a, char *err, size_t errlen)
{
	if (failed(a))
		return error(err, errlen, "%s", a->err);
	if (a->depth)
		return error(err, errlen, "AML: %d package%s left open", a->depth,
			     a->depth > 1 ? "s" : "");
	return 0;
}

void aml__free(struct aml *a)
{
	free(a->buf);
	a->buf = NULL;
	a->len = a->cap = 0;
}

/* Room for n more bytes, or false with the error set. */
static bool reserve(struct aml *a, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (failed(a))
		return false;
	if (n > a->limit - a->len) {
		fail(a, "AML: more than the %zu bytes allowed", a->limit);
		return false;
	}
	a->after_if = false;
	if (n <= a->cap - a->len)
		return true;
	/* Doubling keeps appends amortised O(1); limit <= 2^28 keeps it from overflowing. */
	for (cap = a->cap ? a->cap : 256; cap < a->len + n; cap *= 2)
		;
	if (cap > a->limit)
		cap = a->limit;
	p = realloc(a->buf, cap);
	if (!p) {
		fail(a, "AML: out of memory for %zu bytes", cap);
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

void aml__bytes(struct aml *a, const void *p, size_t n)
{
	if (n && reserve(a, n)) {
		memcpy(a->buf + a->len, p, n);
		a->len += n;
	}
}

void aml__byte(struct aml *a, uint8_t v) { aml__bytes(a, &v, 1); }

static void ext_op(struct aml *a, uint8_t op)
{
	const uint8_t b[2] = { OP_EXT, op };

	aml__bytes(a, b, sizeof(b));
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static void bytes_le(struct aml *a, uint64_t v, size_t n)
{
	uint8_t le[8];

	put_le(le, v, n);
	aml__bytes(a, le, n);
}

/* ---- PkgLength ---- */

/*
 * Bytes the PkgLength encoding of v takes, 0 when none fits: one byte holds 6 bits; beyond that
 * the lead byte's top two bits count the bytes that follow and its low nibble holds bits 0-3.
 */
static size_t pkglen_size(uint64_t v)
{
	return v < 0x40 ? 1 : v < (1u << 12) ? 2 : v < (1u << 20) ? 3 : v < (1u << 28) ? 4 : 0;
}

static void pkglen_put(uint8_t *p, uint64_t v, size_t n)
{
	if (n == 1) {
		p[0] = (uint8_t)v;
		return;
	}
	p[0] = (uint8_t)((n - 1) << 6 | (v & 0xf));
	for (size_t k = 1; k < n; k++)
		p[k] = (uint8_t)(v >> (4 + 8 * (k - 1)));
}

/* A field unit's width is a PkgLength-encoded value that, unlike a package's, excludes itself. */
static void pkglen_value(struct aml *a, uint64_t v)
{
	uint8_t p[PKGLEN_MAX_BYTES];
	size_t n = pkglen_size(v);

	if (!n) {
		fail(a, "AML: %llu does not fit a PkgLength", (unsigned long long)v);
		return;
	}
	pkglen_put(p, v, n);
	aml__bytes(a, p, n);
}

static void push(struct aml *a, uint8_t kind)
{
	if (failed(a))
		return;
	if (a->depth == AML_DEPTH_MAX) {
		fail(a, "AML: packages nested deeper than %d", AML_DEPTH_MAX);
		return;
	}
	a->open[a->depth++] = (struct aml_open){ .start = a->len, .kind = kind };
	a->after_if = false;
}

void aml__pkg_open(struct aml *a) { push(a, OPEN_PKG); }

/* An integer in the fewest bytes, as iasl writes it; returns how many. */
static size_t int_encode(uint8_t *p, uint64_t v)
{
	size_t n;

	if (v == 0 || v == 1 || v == UINT64_MAX) {
		p[0] = v == 0 ? OP_ZERO : v == 1 ? OP_ONE : OP_ONES;
		return 1;
	}
	n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
	p[0] = n == 1 ? OP_BYTE : n == 2 ? OP_WORD : n == 4 ? OP_DWORD : OP_QWORD;
	put_le(p + 1, v, n);
	return n + 1;
}

/*
 * The body is written before its length is known, and a PkgLength counts its own bytes, so the
 * header (PkgLength and, for a Buffer, its size) is inserted in front of the body at the end:
 * one memmove per package, against a fixed reservation that would have to be undone anyway.
 */
void aml__pkg_close(struct aml *a)
{
	uint8_t bufsize[9];
	const uint8_t end_tag[2] = { RD_END_TAG, 0 };	/* checksum 0: "none", as iasl writes */
	struct aml_open o;
	size_t body, n, extra = 0;

	if (failed(a))
		return;
	if (!a->depth) {
		fail(a, "AML: package closed but none is open");
		return;
	}
	o = a->open[--a->depth];
	if (o.kind == OPEN_TEMPLATE)
		aml__bytes(a, end_tag, sizeof(end_tag));
	body = a->len - o.start;
	if (o.kind == OPEN_BUFFER || o.kind == OPEN_TEMPLATE)
		extra = int_encode(bufsize, body);
	for (n = 1; n <= PKGLEN_MAX_BYTES; n++)
		if (pkglen_size(body + extra + n) == n)
			break;
	if (n > PKGLEN_MAX_BYTES) {
		fail(a, "AML: a package of %zu bytes exceeds the PkgLength limit", body);
		return;
	}
	if (!reserve(a, n + extra))
		return;
	memmove(a->buf + o.start + n + extra, a->buf + o.start, body);
	pkglen_put(a->buf + o.start, body + extra + n, n);
	memcpy(a->buf + o.start + n, bufsize, extra);
	a->len += n + extra;
	a->after_if = o.kind == OPEN_IF;
}

/* ---- data ---- */

void aml__int(struct aml *a, uint64_t v)
{
	uint8_t p[9];

	aml__bytes(a, p, int_encode(p, v));
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s > 0x7f)
			return false;
	return true;
}

void aml__string(struct aml *a, const char *s)
{
	if (!is_ascii(s)) {
		fail(a, "AML: string \"%.40s\" is not ASCII", s);
		return;
	}
	aml__byte(a, OP_STRING);
	aml__bytes(a, s, strlen(s) + 1);
}

static bool lead_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return lead_char(c) || (c >= '0' && c <= '9'); }

/* Why s[0..n) is not a NameSeg, or NULL when it is. */
static const char *seg_problem(const char *s, size_t n)
{
	if (n == 0)
		return "empty segment";
	if (n > 4)
		return "segment longer than 4 characters";
	if (!lead_char(s[0]))
		return "segment must start with A-Z or _";
	for (size_t k = 1; k < n; k++)
		if (!name_char(s[k]))
			return "character other than A-Z, 0-9, _";
	return NULL;
}

/* A NameSeg is always four characters: a shorter ASL name is padded with '_'. */
static void seg_put(struct aml *a, const char *s, size_t n)
{
	char seg[4] = { '_', '_', '_', '_' };

	memcpy(seg, s, n);
	aml__bytes(a, seg, sizeof(seg));
}

void aml__path(struct aml *a, const char *path)
{
	const char *segs, *s, *why = NULL;
	size_t prefix, nsegs = 0, n;

	if (failed(a))
		return;
	segs = path + (path[0] == '\\' ? 1 : strspn(path, "^"));
	prefix = (size_t)(segs - path);
	for (s = segs; *segs; s += n + 1) {
		n = strcspn(s, ".");
		nsegs++;
		if ((why = seg_problem(s, n)) || !s[n])
			break;
	}
	if (!why && !*segs && !prefix)
		why = "empty";
	if (!why && nsegs > NAME_SEGS_MAX)
		why = "more than 255 segments";
	if (why) {
		fail(a, "AML: bad name \"%.40s\": %s", path, why);
		return;
	}
	/* RootChar and ParentPrefixChar are the ASCII '\' and '^' themselves. */
	aml__bytes(a, path, prefix);
	if (nsegs == 0) {
		aml__byte(a, OP_ZERO);		/* NullName: "\" alone is the root */
	} else if (nsegs == 2) {
		aml__byte(a, OP_DUAL_NAME);
	} else if (nsegs > 2) {
		aml__byte(a, OP_MULTI_NAME);
		aml__byte(a, (uint8_t)nsegs);
	}
	for (s = segs; nsegs--; s += n + 1) {
		n = strcspn(s, ".");
		seg_put(a, s, n);
	}
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Three letters of 5 bits (A = 1) and four hex digits make a 32-bit id whose bytes are stored
 * most significant first; the AML integer is that byte sequence read little-endian.
 */
void aml__eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;
	int d;

	if (strlen(id) != 7) {
		fail(a, "AML: EisaId \"%.40s\" is not 3 letters and 4 hex digits", id);
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			fail(a, "AML: EisaId \"%s\": letters must be A-Z", id);
			return;
		}
		v |= (uint32_t)(id[i] - 'A' + 1) << (26 - 5 * i);
	}
	for (int i = 3; i < 7; i++) {
		if ((d = hex_digit(id[i])) < 0) {
			fail(a, "AML: EisaId \"%s\": digits must be 0-9, A-F", id);
			return;
		}
		v |= (uint32_t)d << (4 * (6 - i));
	}
	aml__int(a, (v >> 24) | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | (v << 24));
}

void aml__local(struct aml *a, unsigned n)
{
	if (n > 7) {
		fail(a, "AML: Local%u does not exist (Local0-7)", n);
		return;
	}
	aml__byte(a, (uint8_t)(OP_LOCAL0 + n));
}

void aml__arg(struct aml *a, unsigned n)
{
	if (n > 6) {
		fail(a, "AML: Arg%u does not exist (Arg0-6)", n);
		return;
	}
	aml__byte(a, (uint8_t)(OP_ARG0 + n));
}

void aml__no_target(struct aml *a) { aml__byte(a, OP_ZERO); }

/* ---- named objects ---- */

void aml__name(struct aml *a, const char *name)
{
	aml__byte(a, OP_NAME);
	aml__path(a, name);
}

void aml__scope(struct aml *a, const char *name)
{
	aml__byte(a, OP_SCOPE);
	push(a, OPEN_PKG);
	aml__path(a, name);
}

void aml__device(struct aml *a, const char *name)
{
	ext_op(a, OP_DEVICE);
	push(a, OPEN_PKG);
	aml__path(a, name);
}

void aml__method(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		fail(a, "AML: method %.40s: %u arguments, at most 7", name, nargs);
		return;
	}
	aml__byte(a, OP_METHOD);
	push(a, OPEN_PKG);
	aml__path(a, name);
	aml__byte(a, (uint8_t)(nargs | (serialized ? 1u << 3 : 0)));	/* sync level 0 */
}

void aml__mutex(struct aml *a, const char *name, unsigned sync_level)
{
	if (sync_level > 15) {
		fail(a, "AML: mutex %.40s: sync level %u, at most 15", name, sync_level);
		return;
	}
	ext_op(a, OP_MUTEX);
	aml__path(a, name);
	aml__byte(a, (uint8_t)sync_level);
}

void aml__acquire(struct aml *a, const char *mutex, uint16_t timeout)
{
	ext_op(a, OP_ACQUIRE);
	aml__path(a, mutex);
	bytes_le(a, timeout, 2);
}

void aml__release(struct aml *a, const char *mutex)
{
	ext_op(a, OP_RELEASE);
	aml__path(a, mutex);
}

void aml__operation_region(struct aml *a, const char *name, enum aml_region_space space,
			   uint64_t offset, uint64_t len)
{
	if (space != AML_SYSTEM_MEMORY && space != AML_SYSTEM_IO && space != AML_PCI_CONFIG) {
		fail(a, "AML: region %.40s: unknown space %d", name, (int)space);
		return;
	}
	ext_op(a, OP_REGION);
	aml__path(a, name);
	aml__byte(a, (uint8_t)space);
	aml__int(a, offset);
	aml__int(a, len);
}

void aml__field(struct aml *a, const char *region, enum aml_access access, bool lock,
		enum aml_update update)
{
	if ((unsigned)access > AML_BUFFER_ACC || (unsigned)update > AML_WRITE_AS_ZEROS) {
		fail(a, "AML: field of %.40s: bad access type or update rule", region);
		return;
	}
	ext_op(a, OP_FIELD);
	push(a, OPEN_FIELD);
	aml__path(a, region);
	aml__byte(a, (uint8_t)(access | (lock ? 1u << 4 : 0) | (unsigned)update << 5));
}

/* The Field being filled, or NULL with the error set. */
static struct aml_open *open_field(struct aml *a, const char *what)
{
	if (failed(a))
		return NULL;
	if (!a->depth || a->open[a->depth - 1].kind != OPEN_FIELD) {
		fail(a, "AML: %s outside a Field", what);
		return NULL;
	}
	return &a->open[a->depth - 1];
}

void aml__field_unit(struct aml *a, const char *name, unsigned bits)
{
	struct aml_open *f = open_field(a, "field unit");
	const char *why = seg_problem(name, strlen(name));

	if (!f)
		return;
	if (why) {
		fail(a, "AML: bad field unit name \"%.40s\": %s", name, why);
		return;
	}
	if (!bits) {
		fail(a, "AML: field unit %s has no bits", name);
		return;
	}
	seg_put(a, name, strlen(name));
	pkglen_value(a, bits);
	f->bits += bits;
}

void aml__field_reserved(struct aml *a, unsigned bits)
{
	struct aml_open *f = open_field(a, "reserved field");

	if (!f)
		return;
	if (!bits) {
		fail(a, "AML: reserved field of no bits");
		return;
	}
	aml__byte(a, 0x00);			/* ReservedField */
	pkglen_value(a, bits);
	f->bits += bits;
}

/* ASL's Offset () is no AML object: iasl writes the reserved field that reaches it. */
void aml__field_offset(struct aml *a, unsigned byte_offset)
{
	struct aml_open *f = open_field(a, "Offset");
	uint64_t to = (uint64_t)byte_offset * 8;

	if (!f)
		return;
	if (to < f->bits) {
		fail(a, "AML: Offset (%u) is behind the field's bit %llu", byte_offset,
			    (unsigned long long)f->bits);
		return;
	}
	if (to > f->bits)
		aml__field_reserved(a, (unsigned)(to - f->bits));
}

/* ---- control flow and operators ---- */

void aml__if(struct aml *a)
{
	aml__byte(a, OP_IF);
	push(a, OPEN_IF);
}

void aml__else(struct aml *a)
{
	if (!failed(a) && !a->after_if) {
		fail(a, "AML: Else that does not follow an If");
		return;
	}
	aml__byte(a, OP_ELSE);
	push(a, OPEN_PKG);
}

void aml__while(struct aml *a)
{
	aml__byte(a, OP_WHILE);
	push(a, OPEN_PKG);
}

void aml__op(struct aml *a, enum aml_op op)
{
	switch (op) {
	case AML_STORE: case AML_ADD: case AML_SUBTRACT: case AML_INCREMENT:
	case AML_DECREMENT: case AML_SHIFT_LEFT: case AML_SHIFT_RIGHT: case AML_AND:
	case AML_OR: case AML_NOTIFY: case AML_LAND: case AML_LOR: case AML_LNOT:
	case AML_LEQUAL: case AML_LGREATER: case AML_LLESS: case AML_RETURN:
		aml__byte(a, (uint8_t)op);
		return;
	}
	fail(a, "AML: unknown operator 0x%x", (unsigned)op);
}

/* ---- packages, buffers, resource templates ---- */

void aml__package(struct aml *a, unsigned nelems)
{
	if (nelems > 0xff) {
		fail(a, "AML: Package of %u elements, at most 255", nelems);
		return;
	}
	aml__byte(a, OP_PACKAGE);
	push(a, OPEN_PKG);
	aml__byte(a, (uint8_t)nelems);
}

void aml__buffer(struct aml *a)
{
	aml__byte(a, OP_BUFFER);
	push(a, OPEN_BUFFER);
}

void aml__resource_template(struct aml *a)
{
	aml__byte(a, OP_BUFFER);
	push(a, OPEN_TEMPLATE);
}

/* Whether a descriptor may be written here; false with the error set. */
static bool in_template(struct aml *a, const char *what)
{
	if (failed(a))
		return false;
	if (!a->depth || a->open[a->depth - 1].kind != OPEN_TEMPLATE) {
		fail(a, "AML: %s descriptor outside a ResourceTemplate", what);
		return false;
	}
	return true;
}

void aml__rt_io(struct aml *a, enum aml_decode decode, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len)
{
	uint8_t d[8] = { RD_IO, decode == AML_DECODE16 ? 1 : 0 };

	if (!in_template(a, "IO"))
		return;
	if (min > max) {
		fail(a, "AML: IO descriptor with minimum 0x%x above maximum 0x%x", min, max);
		return;
	}
	put_le(d + 2, min, 2);
	put_le(d + 4, max, 2);
	d[6] = align;
	d[7] = len;
	aml__bytes(a, d, sizeof(d));
}

void aml__rt_irq_noflags(struct aml *a, uint16_t mask)
{
	if (!in_template(a, "IRQNoFlags"))
		return;
	aml__byte(a, RD_IRQ_NOFLAGS);
	bytes_le(a, mask, 2);
}

void aml__rt_memory32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t len)
{
	uint8_t d[12] = { RD_MEMORY32_FIXED, 9, 0, rw ? 1 : 0 };

	if (!in_template(a, "Memory32Fixed"))
		return;
	put_le(d + 4, base, 4);
	put_le(d + 8, len, 4);
	aml__bytes(a, d, sizeof(d));
}

void aml__rt_qword_memory(struct aml *a, bool consumer, enum aml_cache cache, bool rw,
			  uint64_t base, uint64_t len)
{
	uint8_t d[3 + RD_QWORD_LEN] = { RD_QWORD_SPACE, RD_QWORD_LEN, 0 };

	if (!in_template(a, "QWordMemory"))
		return;
	if (!len || base + (len - 1) < base) {
		fail(a, "AML: QWordMemory range [0x%llx, +0x%llx) is empty or wraps",
			    (unsigned long long)base, (unsigned long long)len);
		return;
	}
	if ((unsigned)cache > AML_PREFETCHABLE) {
		fail(a, "AML: QWordMemory: bad cache type %d", (int)cache);
		return;
	}
	d[3] = 0;					/* resource type: memory range */
	d[4] = (consumer ? RD_CONSUMER : 0) | RD_MIN_FIXED | RD_MAX_FIXED;	/* PosDecode */
	d[5] = (uint8_t)((rw ? 1 : 0) | (unsigned)cache << 1);	/* AddressRangeMemory, static */
	/* granularity 0 at d + 6 */
	put_le(d + 14, base, 8);
	put_le(d + 22, base + (len - 1), 8);
	/* translation offset 0 at d + 30 */
	put_le(d + 38, len, 8);
	aml__bytes(a, d, sizeof(d));
}

void aml__rt_interrupt(struct aml *a, unsigned flags, const uint32_t *gsi, unsigned n)
{
	const unsigned known = AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED | AML_IRQ_WAKE;

	if (!in_template(a, "Interrupt"))
		return;
	if (n < 1 || n > 255 || (flags & ~known)) {
		fail(a, "AML: Interrupt descriptor with %u interrupts, flags 0x%x", n, flags);
		return;
	}
	aml__byte(a, RD_EXT_INTERRUPT);
	bytes_le(a, 2 + 4 * n, 2);
	aml__byte(a, (uint8_t)(flags | RD_CONSUMER));
	aml__byte(a, (uint8_t)n);
	for (unsigned i = 0; i < n; i++)
		bytes_le(a, gsi[i], 4);
}
