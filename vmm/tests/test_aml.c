/*
 * The AML builder: each encoding byte for byte as ACPI 6.3 section 20.2 and 6.4 write it (the
 * expected bytes below are written from the spec, not from aml.c), the sticky errors, and a DSDT
 * using every builder that iasl must disassemble and compile back to the same bytes.
 */
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "arch/x86/aml.h"
#include "device.h"
#include "util.h"
#include "tests/iasl.h"

extern const struct device_def serial_device;

static char out_dir[512] = "build/tests/aml";	/* next to the test binary; see main */

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })

static void dump(const char *what, const uint8_t *p, size_t n)
{
	print_message("%s (%zu bytes):", what, n);
	for (size_t i = 0; i < n && i < 64; i++)
		print_message(" %02x", p[i]);
	print_message("\n");
}

/* The builder succeeded and wrote exactly want (else both are shown, 64 bytes); frees it. */
static void expect(struct aml *a, const uint8_t *want, size_t n)
{
	char err[256];

	if (aml__finish(a, err, sizeof(err)))
		fail_msg("aml__finish: %s", err);
	if (a->len != n || memcmp(a->buf, want, n)) {
		dump("got ", a->buf, a->len);
		dump("want", want, n);
		fail_msg("AML differs");
	}
	aml__free(a);
}

/* The builder failed with a message containing what; frees it. */
static void expect_error(struct aml *a, const char *what)
{
	char err[256];

	assert_int_equal(aml__finish(a, err, sizeof(err)), -1);
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
	assert_null(strchr(err, '\n'));
	aml__free(a);
}

static struct aml *fresh(struct aml *a)
{
	aml__init(a, AML_LEN_MAX);
	return a;
}

/* ---- PkgLength ---- */

/* A raw package around body bytes of a pattern: the header, then the body unmoved. */
static void check_package(size_t body, const uint8_t *head, size_t nhead)
{
	static uint8_t want[(1 << 20) + 8];
	static struct aml a;

	assert_true(body + nhead <= sizeof(want));
	fresh(&a);
	aml__pkg_open(&a);
	for (size_t i = 0; i < body; i++)
		aml__byte(&a, (uint8_t)(i * 7 + 1));
	aml__pkg_close(&a);
	memcpy(want, head, nhead);
	for (size_t i = 0; i < body; i++)
		want[nhead + i] = (uint8_t)(i * 7 + 1);
	expect(&a, want, nhead + body);
}

/*
 * A package's PkgLength counts itself: 63 is the largest one-byte value, and a body of 63 bytes
 * needs two (65, never 64); 4095 the largest two-byte value, 2^20 - 1 the largest three-byte one.
 */
static void test_pkglen_packages(void **state)
{
	(void)state;
	check_package(0, BYTES(0x01));
	check_package(62, BYTES(0x3f));
	check_package(63, BYTES(0x41, 0x04));			/* 65 */
	check_package(4093, BYTES(0x4f, 0xff));			/* 4095 */
	check_package(4094, BYTES(0x81, 0x00, 0x01));		/* 4097 */
	check_package((1 << 20) - 4, BYTES(0x8f, 0xff, 0xff));	/* 2^20 - 1 */
	check_package((1 << 20) - 3, BYTES(0xc1, 0x00, 0x00, 0x01));	/* 2^20 + 1 */
}

/* A field unit's width is PkgLength-encoded but does not count itself: 63/64, 4095/4096, ... */
static void test_pkglen_values(void **state)
{
	static const struct { unsigned bits; uint8_t enc[4]; size_t n; } cases[] = {
		{ 1, { 0x01 }, 1 },
		{ 63, { 0x3f }, 1 },
		{ 64, { 0x40, 0x04 }, 2 },
		{ 4095, { 0x4f, 0xff }, 2 },
		{ 4096, { 0x80, 0x00, 0x01 }, 3 },
		{ (1u << 20) - 1, { 0x8f, 0xff, 0xff }, 3 },
		{ 1u << 20, { 0xc0, 0x00, 0x00, 0x01 }, 4 },
		{ (1u << 28) - 1, { 0xcf, 0xff, 0xff, 0xff }, 4 },
	};
	uint8_t want[32] = { 0x5b, 0x81 };
	struct aml a;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		fresh(&a);
		aml__field(&a, "R", AML_ANY_ACC, false, AML_PRESERVE);
		aml__field_unit(&a, "F", cases[i].bits);
		aml__pkg_close(&a);
		want[2] = (uint8_t)(1 + 4 + 1 + 4 + cases[i].n);	/* "R___" flags "F___" */
		memcpy(want + 3, "R___\0F___", 9);
		memcpy(want + 12, cases[i].enc, cases[i].n);
		expect(&a, want, 12 + cases[i].n);
	}
	fresh(&a);
	aml__field(&a, "R", AML_ANY_ACC, false, AML_PRESERVE);
	aml__field_unit(&a, "F", 1u << 28);
	expect_error(&a, "PkgLength");
}

/* A Buffer's size is inserted with its PkgLength: both are known only at the end. */
static void test_pkglen_buffer(void **state)
{
	static uint8_t body[64], want[70];
	struct aml a;

	(void)state;
	memset(body, 0xcc, sizeof(body));
	aml__buffer(fresh(&a));
	aml__bytes(&a, "\x01\x02\x03\x04", 4);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x11, 0x07, 0x0a, 0x04, 1, 2, 3, 4));

	/* 60 bytes: PkgLength 1 + size 2 + 60 = 63 fits one byte; 61 needs two: 2 + 2 + 61 */
	aml__buffer(fresh(&a));
	aml__bytes(&a, body, 60);
	aml__pkg_close(&a);
	memcpy(want, (uint8_t[]){ 0x11, 0x3f, 0x0a, 60 }, 4);
	memcpy(want + 4, body, 60);
	expect(&a, want, 64);

	aml__buffer(fresh(&a));
	aml__bytes(&a, body, 61);
	aml__pkg_close(&a);
	memcpy(want, (uint8_t[]){ 0x11, 0x41, 0x04, 0x0a, 61 }, 5);
	memcpy(want + 5, body, 61);
	expect(&a, want, 66);
}

/* An inner package growing its header must not disturb the outer one's start. */
static void test_pkglen_nested(void **state)
{
	static uint8_t want[128];
	struct aml a;

	(void)state;
	aml__scope(fresh(&a), "S");
	aml__device(&a, "D");
	for (int i = 0; i < 60; i++)
		aml__byte(&a, 0xa3);			/* Noop */
	aml__pkg_close(&a);
	aml__pkg_close(&a);
	/* Device's PkgLength: 2 + 4 + 60 = 66; Scope's: 2 + 4 + (2 + 66) = 74 */
	memcpy(want, (uint8_t[]){ 0x10, 0x4a, 0x04, 'S', '_', '_', '_',
				  0x5b, 0x82, 0x42, 0x04, 'D', '_', '_', '_' }, 15);
	memset(want + 15, 0xa3, 60);
	expect(&a, want, 15 + 60);
}

/* ---- names, integers, strings ---- */

static void test_name_paths(void **state)
{
	static const struct { const char *path; uint8_t enc[20]; size_t n; } good[] = {
		{ "_HID", { '_', 'H', 'I', 'D' }, 4 },
		{ "A", { 'A', '_', '_', '_' }, 4 },
		{ "\\", { 0x5c, 0x00 }, 2 },
		{ "\\_SB", { 0x5c, '_', 'S', 'B', '_' }, 5 },
		{ "^PCI0", { 0x5e, 'P', 'C', 'I', '0' }, 5 },
		{ "^^A.B9", { 0x5e, 0x5e, 0x2e, 'A', '_', '_', '_', 'B', '9', '_', '_' }, 11 },
		{ "\\_SB_.PCI0.S08", { 0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
				       'S', '0', '8', '_' }, 15 },
	};
	static const char *const bad[] = {
		"", "ABCDE", "1ABC", "A..B", "A.", ".A", "\\^A", "A^B", "_sb_", "A B", "\\\\A",
		"^.A", "\\.",
	};
	static char path[2 * 256];
	struct aml a;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		aml__path(fresh(&a), good[i].path);
		expect(&a, good[i].enc, good[i].n);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		aml__path(fresh(&a), bad[i]);
		assert_int_equal(a.len, 0);		/* nothing half-written */
		expect_error(&a, "bad name");
	}
	/* MultiNamePrefix counts segments in one byte: 255 is the most */
	strcpy(path, "X");
	for (int i = 1; i < 255; i++)
		strcat(path, ".X");
	aml__path(fresh(&a), path);
	assert_int_equal(a.len, 2 + 4 * 255);
	assert_memory_equal(a.buf, ((uint8_t[]){ 0x2f, 0xff, 'X', '_', '_', '_' }), 6);
	expect(&a, a.buf, a.len);
	strcat(path, ".X");
	aml__path(fresh(&a), path);
	expect_error(&a, "255");
}

static void test_integers(void **state)
{
	static const struct { uint64_t v; uint8_t enc[9]; size_t n; } cases[] = {
		{ 0, { 0x00 }, 1 },					/* Zero */
		{ 1, { 0x01 }, 1 },					/* One */
		{ 2, { 0x0a, 0x02 }, 2 },
		{ 0xff, { 0x0a, 0xff }, 2 },
		{ 0x100, { 0x0b, 0x00, 0x01 }, 3 },
		{ 0xffff, { 0x0b, 0xff, 0xff }, 3 },
		{ 0x10000, { 0x0c, 0x00, 0x00, 0x01, 0x00 }, 5 },
		{ 0xffffffff, { 0x0c, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ 0x100000000, { 0x0e, 0, 0, 0, 0, 1, 0, 0, 0 }, 9 },
		{ 0xfffffffffffffffe, { 0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9 },
		{ UINT64_MAX, { 0xff }, 1 },				/* Ones */
	};
	struct aml a;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		aml__int(fresh(&a), cases[i].v);
		expect(&a, cases[i].enc, cases[i].n);
	}
}

static void test_strings_ids_args(void **state)
{
	struct aml a;

	(void)state;
	aml__string(fresh(&a), "");
	expect(&a, BYTES(0x0d, 0x00));
	aml__string(fresh(&a), "ACPI0007");
	expect(&a, BYTES(0x0d, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00));
	aml__string(fresh(&a), "caf\xc3\xa9");
	expect_error(&a, "ASCII");

	/* EisaId: "PNP" = 10000 01110 10000 (5 bits each), then the digits, stored big-endian */
	aml__eisaid(fresh(&a), "PNP0501");
	expect(&a, BYTES(0x0c, 0x41, 0xd0, 0x05, 0x01));
	aml__eisaid(fresh(&a), "PNP0A03");
	expect(&a, BYTES(0x0c, 0x41, 0xd0, 0x0a, 0x03));
	aml__eisaid(fresh(&a), "QEM0002");
	expect(&a, BYTES(0x0c, 0x44, 0xad, 0x00, 0x02));
	aml__eisaid(fresh(&a), "PNP0000");		/* 0xd041 fits a Word, which iasl uses */
	expect(&a, BYTES(0x0b, 0x41, 0xd0));
	aml__eisaid(fresh(&a), "PNP050");
	expect_error(&a, "EisaId");
	aml__eisaid(fresh(&a), "pnp0501");
	expect_error(&a, "EisaId");
	aml__eisaid(fresh(&a), "PNP05g1");
	expect_error(&a, "EisaId");

	fresh(&a);
	for (unsigned n = 0; n < 8; n++)
		aml__local(&a, n);
	for (unsigned n = 0; n < 7; n++)
		aml__arg(&a, n);
	aml__no_target(&a);
	expect(&a, BYTES(0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
			 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x00));
	aml__local(fresh(&a), 8);
	expect_error(&a, "Local8");
	aml__arg(fresh(&a), 7);
	expect_error(&a, "Arg7");
}

/* ---- named objects ---- */

static void test_named_objects(void **state)
{
	struct aml a;

	(void)state;
	aml__name(fresh(&a), "_UID");
	aml__int(&a, 0);
	expect(&a, BYTES(0x08, '_', 'U', 'I', 'D', 0x00));

	aml__scope(fresh(&a), "\\_SB_");
	aml__device(&a, "COM1");
	aml__pkg_close(&a);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x10, 0x0d, 0x5c, '_', 'S', 'B', '_',
			 0x5b, 0x82, 0x05, 'C', 'O', 'M', '1'));

	aml__method(fresh(&a), "_STA", 0, false);
	aml__op(&a, AML_RETURN);
	aml__int(&a, 0xf);
	aml__pkg_close(&a);
	aml__method(&a, "M1", 3, true);			/* flags: 3 args | Serialized */
	aml__pkg_close(&a);
	expect(&a, BYTES(0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f,
			 0x14, 0x06, 'M', '1', '_', '_', 0x0b));
	aml__method(fresh(&a), "M8", 8, false);
	expect_error(&a, "at most 7");

	aml__mutex(fresh(&a), "MUTX", 0);
	aml__acquire(&a, "MUTX", 0xffff);
	aml__release(&a, "^MUTX");
	expect(&a, BYTES(0x5b, 0x01, 'M', 'U', 'T', 'X', 0x00,
			 0x5b, 0x23, 'M', 'U', 'T', 'X', 0xff, 0xff,
			 0x5b, 0x27, 0x5e, 'M', 'U', 'T', 'X'));
	aml__mutex(fresh(&a), "MUTX", 16);
	expect_error(&a, "sync level");

	aml__operation_region(fresh(&a), "OPR1", AML_SYSTEM_IO, 0x510, 0x0c);
	aml__operation_region(&a, "MREG", AML_SYSTEM_MEMORY, 0xfedc0000, 0x1000);
	expect(&a, BYTES(0x5b, 0x80, 'O', 'P', 'R', '1', 0x01, 0x0b, 0x10, 0x05, 0x0a, 0x0c,
			 0x5b, 0x80, 'M', 'R', 'E', 'G', 0x00, 0x0c, 0x00, 0x00, 0xdc, 0xfe,
			 0x0b, 0x00, 0x10));
	aml__operation_region(fresh(&a), "OPR1", (enum aml_region_space)0x40, 0, 1);
	expect_error(&a, "space");
}

/* Field flags: access type in bits 0-3, Lock in bit 4, update rule in bits 5-6. */
static void test_field(void **state)
{
	struct aml a;

	(void)state;
	aml__field(fresh(&a), "OPR1", AML_DWORD_ACC, true, AML_WRITE_AS_ZEROS);
	aml__field_unit(&a, "F1", 1);
	aml__field_reserved(&a, 7);
	aml__field_unit(&a, "F2", 8);
	aml__field_offset(&a, 4);			/* 16 bits so far: 16 reserved */
	aml__field_unit(&a, "F3", 32);
	aml__field_offset(&a, 8);			/* already there: nothing */
	aml__pkg_close(&a);
	expect(&a, BYTES(0x5b, 0x81, 0x19, 'O', 'P', 'R', '1', 0x53,
			 'F', '1', '_', '_', 0x01, 0x00, 0x07, 'F', '2', '_', '_', 0x08,
			 0x00, 0x10, 'F', '3', '_', '_', 0x20));

	aml__field(fresh(&a), "R", AML_BYTE_ACC, false, AML_WRITE_AS_ONES);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x5b, 0x81, 0x06, 'R', '_', '_', '_', 0x21));

	aml__field(fresh(&a), "R", AML_BYTE_ACC, false, AML_PRESERVE);
	aml__field_unit(&a, "F1", 16);
	aml__field_offset(&a, 1);
	expect_error(&a, "behind");
	aml__field_unit(fresh(&a), "F1", 8);
	expect_error(&a, "outside a Field");
	aml__field(fresh(&a), "R", AML_BYTE_ACC, false, AML_PRESERVE);
	aml__field_unit(&a, "F1.X", 8);
	expect_error(&a, "field unit name");
	aml__field(fresh(&a), "R", AML_BYTE_ACC, false, AML_PRESERVE);
	aml__field_unit(&a, "F1", 0);
	expect_error(&a, "no bits");
}

/* ---- control flow and operators ---- */

static void test_control_flow(void **state)
{
	struct aml a;

	(void)state;
	fresh(&a);
	aml__op(&a, AML_STORE);			/* Store (Arg0, Local0) */
	aml__arg(&a, 0);
	aml__local(&a, 0);
	aml__while(&a);				/* While (LLess (Local0, Arg1)) { Increment } */
	aml__op(&a, AML_LLESS);
	aml__local(&a, 0);
	aml__arg(&a, 1);
	aml__op(&a, AML_INCREMENT);
	aml__local(&a, 0);
	aml__pkg_close(&a);
	aml__if(&a);				/* If (LEqual (Local0, 0x10)) { Notify } */
	aml__op(&a, AML_LEQUAL);
	aml__local(&a, 0);
	aml__int(&a, 0x10);
	aml__op(&a, AML_NOTIFY);
	aml__path(&a, "\\_SB_.COM1");
	aml__int(&a, 0x80);
	aml__pkg_close(&a);
	aml__else(&a);				/* Else { Decrement (Local0) } */
	aml__op(&a, AML_DECREMENT);
	aml__local(&a, 0);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x70, 0x68, 0x60,
			 0xa2, 0x06, 0x95, 0x60, 0x69, 0x75, 0x60,
			 0xa0, 0x12, 0x93, 0x60, 0x0a, 0x10,
			 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1', 0x0a, 0x80,
			 0xa1, 0x03, 0x76, 0x60));

	fresh(&a);
	aml__op(&a, AML_ADD);			/* Add (Local0, One, Local1) */
	aml__local(&a, 0);
	aml__int(&a, 1);
	aml__local(&a, 1);
	aml__op(&a, AML_SUBTRACT);		/* Subtract (Local1, 2) */
	aml__local(&a, 1);
	aml__int(&a, 2);
	aml__no_target(&a);
	aml__op(&a, AML_SHIFT_LEFT);		/* ShiftLeft (Arg0, 4, Local2) */
	aml__arg(&a, 0);
	aml__int(&a, 4);
	aml__local(&a, 2);
	aml__op(&a, AML_SHIFT_RIGHT);		/* ShiftRight (Arg1, 1, Local3) */
	aml__arg(&a, 1);
	aml__int(&a, 1);
	aml__local(&a, 3);
	aml__op(&a, AML_AND);			/* And (Local2, Local3, Local4) */
	aml__local(&a, 2);
	aml__local(&a, 3);
	aml__local(&a, 4);
	aml__op(&a, AML_OR);			/* Or (Local2, Local3, Local5) */
	aml__local(&a, 2);
	aml__local(&a, 3);
	aml__local(&a, 5);
	/* Return (LOr (LAnd (LGreater (Local4, 0), LNot (Local0)), Local5)) */
	aml__op(&a, AML_RETURN);
	aml__op(&a, AML_LOR);
	aml__op(&a, AML_LAND);
	aml__op(&a, AML_LGREATER);
	aml__local(&a, 4);
	aml__int(&a, 0);
	aml__op(&a, AML_LNOT);
	aml__local(&a, 0);
	aml__local(&a, 5);
	expect(&a, BYTES(0x72, 0x60, 0x01, 0x61,
			 0x74, 0x61, 0x0a, 0x02, 0x00,
			 0x79, 0x68, 0x0a, 0x04, 0x62,
			 0x7a, 0x69, 0x01, 0x63,
			 0x7b, 0x62, 0x63, 0x64,
			 0x7d, 0x62, 0x63, 0x65,
			 0xa4, 0x91, 0x90, 0x94, 0x64, 0x00, 0x92, 0x60, 0x65));

	aml__else(fresh(&a));
	expect_error(&a, "Else");
	aml__if(fresh(&a));
	aml__int(&a, 1);
	aml__pkg_close(&a);
	aml__op(&a, AML_RETURN);		/* anything between If and Else */
	aml__else(&a);
	expect_error(&a, "Else");
	aml__op(fresh(&a), (enum aml_op)0x99);
	expect_error(&a, "unknown operator");
}

/* ---- packages, buffers, resource templates ---- */

static void test_package(void **state)
{
	struct aml a;

	(void)state;
	aml__package(fresh(&a), 3);
	aml__int(&a, 1);
	aml__int(&a, 0x1234);
	aml__string(&a, "abc");
	aml__pkg_close(&a);
	expect(&a, BYTES(0x12, 0x0b, 0x03, 0x01, 0x0b, 0x34, 0x12, 0x0d, 'a', 'b', 'c', 0x00));
	aml__package(fresh(&a), 256);
	expect_error(&a, "255");
}

static void test_resource_template(void **state)
{
	static const uint32_t gsi[] = { 9, 10 };
	struct aml a;

	(void)state;
	/* IO: tag 0x47, decode, min, max, alignment, length; IRQNoFlags: 0x22 and the mask */
	aml__resource_template(fresh(&a));
	aml__rt_io(&a, AML_DECODE16, 0x3f8, 0x3f8, 1, 8);
	aml__rt_irq_noflags(&a, 1u << 4);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x11, 0x10, 0x0a, 0x0d,
			 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
			 0x22, 0x10, 0x00, 0x79, 0x00));

	aml__resource_template(fresh(&a));
	aml__pkg_close(&a);
	expect(&a, BYTES(0x11, 0x05, 0x0a, 0x02, 0x79, 0x00));

	/* Memory32Fixed: 0x86, length 9, read/write bit, base, length */
	aml__resource_template(fresh(&a));
	aml__rt_memory32_fixed(&a, true, 0xfec00000, 0x1000);
	aml__rt_memory32_fixed(&a, false, 0xfed00000, 0x400);
	aml__rt_io(&a, AML_DECODE10, 0x60, 0x60, 0, 1);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x11, 0x25, 0x0a, 0x22,
			 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00,
			 0x86, 0x09, 0x00, 0x00, 0x00, 0x00, 0xd0, 0xfe, 0x00, 0x04, 0x00, 0x00,
			 0x47, 0x00, 0x60, 0x00, 0x60, 0x00, 0x00, 0x01,
			 0x79, 0x00));

	/*
	 * QWord address space: 0x8a, length 43, type 0 (memory), general flags (consumer bit 0,
	 * MinFixed bit 2, MaxFixed bit 3), type flags (read/write bit 0, cache type bits 1-2),
	 * then granularity, minimum, maximum, translation, length.
	 * Extended Interrupt: 0x89, length, flags (consumer bit 0, edge bit 1, active low bit 2,
	 * shared bit 3), count, the GSIs.
	 */
	aml__resource_template(fresh(&a));
	aml__rt_qword_memory(&a, true, AML_CACHEABLE, true, 0x100000000, 0x100000000);
	aml__rt_qword_memory(&a, false, AML_NON_CACHEABLE, false, 0x100000000, 0x100000000);
	aml__rt_interrupt(&a, AML_IRQ_LEVEL, (const uint32_t[]){ 5 }, 1);
	aml__rt_interrupt(&a, AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, gsi, 2);
	aml__pkg_close(&a);
	expect(&a, BYTES(0x11, 0x48, 0x07, 0x0a, 0x74,
			 0x8a, 0x2b, 0x00, 0x00, 0x0d, 0x03,
			 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,	/* 0, min */
			 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* max, 0 */
			 0, 0, 0, 0, 1, 0, 0, 0,				/* length */
			 0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x00,
			 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
			 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			 0, 0, 0, 0, 1, 0, 0, 0,
			 0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00, 0x00, 0x00,
			 0x89, 0x0a, 0x00, 0x0f, 0x02, 9, 0, 0, 0, 10, 0, 0, 0,
			 0x79, 0x00));

	aml__rt_io(fresh(&a), AML_DECODE16, 0x3f8, 0x3f8, 1, 8);
	expect_error(&a, "outside a ResourceTemplate");
	aml__buffer(fresh(&a));
	aml__rt_irq_noflags(&a, 1);
	expect_error(&a, "outside a ResourceTemplate");
	aml__resource_template(fresh(&a));
	aml__rt_io(&a, AML_DECODE16, 0x3f8, 0x3f7, 1, 8);
	expect_error(&a, "above maximum");
	aml__resource_template(fresh(&a));
	aml__rt_qword_memory(&a, true, AML_CACHEABLE, true, 0x1000, 0);
	expect_error(&a, "empty");
	aml__resource_template(fresh(&a));
	aml__rt_qword_memory(&a, true, AML_CACHEABLE, true, UINT64_MAX, 2);
	expect_error(&a, "wraps");
	aml__resource_template(fresh(&a));
	aml__rt_interrupt(&a, AML_IRQ_EDGE, gsi, 0);
	expect_error(&a, "Interrupt");
	aml__resource_template(fresh(&a));
	aml__rt_interrupt(&a, 1u << 5, gsi, 1);
	expect_error(&a, "Interrupt");
}

/* ---- errors ---- */

/* The first error sticks, nothing is written after it, and aml__finish reports it. */
static void test_sticky_errors(void **state)
{
	struct aml a;

	(void)state;
	aml__scope(fresh(&a), "\\_SB_");
	aml__device(&a, "TOOLONG");
	aml__local(&a, 9);
	aml__int(&a, 1234);
	aml__pkg_close(&a);
	aml__pkg_close(&a);
	assert_int_equal(a.len, 1 + 5 + 2);	/* Scope, \_SB_, Device's 2 opcode bytes */
	expect_error(&a, "bad name \"TOOLONG\"");

	aml__scope(fresh(&a), "\\");
	expect_error(&a, "1 package left open");
	aml__pkg_close(fresh(&a));
	expect_error(&a, "none is open");

	/* the limit: reached exactly is fine, one byte more is not, PkgLengths included */
	aml__init(&a, 4);
	aml__bytes(&a, "abcd", 4);
	expect(&a, (const uint8_t *)"abcd", 4);
	aml__init(&a, 4);
	aml__bytes(&a, "abcde", 5);
	expect_error(&a, "more than the 4 bytes");
	aml__init(&a, 4);
	aml__pkg_open(&a);
	aml__bytes(&a, "abcd", 4);
	aml__pkg_close(&a);
	expect_error(&a, "more than the 4 bytes");

	fresh(&a);
	for (int i = 0; i < AML_DEPTH_MAX; i++)
		aml__pkg_open(&a);
	for (int i = 0; i < AML_DEPTH_MAX; i++)
		aml__pkg_close(&a);
	assert_int_equal(aml__finish(&a, NULL, 0), 0);
	assert_int_equal(a.len, AML_DEPTH_MAX);
	aml__free(&a);
	fresh(&a);
	for (int i = 0; i <= AML_DEPTH_MAX; i++)
		aml__pkg_open(&a);
	expect_error(&a, "nested deeper");
}

/* ---- iasl ---- */

#define HEADER_SIZE 36

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Wrap the AML in a DSDT header with a valid checksum; returns the table's length. */
static size_t dsdt_table(uint8_t *t, size_t size, const struct aml *a)
{
	size_t len = HEADER_SIZE + a->len;
	uint8_t sum = 0;
	char err[256];

	if (aml__finish(a, err, sizeof(err)))
		fail_msg("aml__finish: %s", err);
	assert_true(len <= size);
	memset(t, 0, HEADER_SIZE);
	memcpy(t, "DSDT", 4);
	put32(t + 4, (uint32_t)len);
	t[8] = 2;					/* 64-bit integers */
	memcpy(t + 10, "MEMVSRMVSRTEST", 14);
	put32(t + 24, 1);
	memcpy(t + 28, "MVSR", 4);
	put32(t + 32, 1);
	memcpy(t + HEADER_SIZE, a->buf, a->len);
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	t[9] = (uint8_t)-sum;
	return len;
}

/*
 * A DSDT using every builder. iasl's disassembly compiled again must give back these bytes, and
 * iasl shortens a root path whenever a NameSeg search or '^' prefixes reach the same object in
 * fewer bytes: so \_SB_ is declared at the root without its '\', and the one root path kept,
 * \_GPE.BASE from \_SB_.CPUS.CSCN, is one that neither can shorten.
 */
static void build_everything(struct aml *a)
{
	static const uint64_t ints[] = { 0, 1, 2, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff,
					 0x100000000, UINT64_MAX };
	static const uint32_t gsi[] = { 5, 9 };

	aml__scope(fresh(a), "\\");
	aml__scope(a, "_GPE");
	aml__name(a, "BASE");
	aml__int(a, 0x10000);
	aml__name(a, "INTS");
	aml__package(a, ARRAY_SIZE(ints) + 1);
	for (size_t i = 0; i < ARRAY_SIZE(ints); i++)
		aml__int(a, ints[i]);
	aml__string(a, "memvisor");
	aml__pkg_close(a);
	aml__name(a, "BUF0");
	aml__buffer(a);
	aml__bytes(a, "\x01\x02\x03\x04", 4);
	aml__pkg_close(a);
	aml__pkg_close(a);
	aml__pkg_close(a);

	aml__scope(a, "_SB_");
	aml__mutex(a, "MUTX", 0);
	aml__operation_region(a, "MREG", AML_SYSTEM_MEMORY, 0xfedc0000, 0x1000);
	aml__field(a, "MREG", AML_DWORD_ACC, false, AML_PRESERVE);
	aml__field_unit(a, "STAT", 32);
	aml__field_unit(a, "CTRL", 8);
	aml__field_reserved(a, 8);
	aml__field_offset(a, 8);
	aml__field_unit(a, "ADDR", 64);
	aml__pkg_close(a);
	aml__operation_region(a, "IREG", AML_SYSTEM_IO, 0x510, 0x210);
	aml__field(a, "IREG", AML_BYTE_ACC, true, AML_WRITE_AS_ZEROS);
	aml__field_unit(a, "SEL", 8);
	aml__field_unit(a, "DAT", 4096);
	aml__pkg_close(a);

	/* A device's own contribution, as the DSDT gets it: Scope (\_SB_) { Device (COM1) } */
	serial_device.dsdt(NULL, a);

	aml__device(a, "MEM0");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0C80");
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_qword_memory(a, true, AML_CACHEABLE, true, 0x180000000, 0x40000000);
	aml__rt_memory32_fixed(a, true, 0xfec00000, 0x1000);
	aml__rt_io(a, AML_DECODE10, 0x60, 0x60, 0, 1);
	aml__rt_interrupt(a, AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, gsi, 2);
	aml__rt_interrupt(a, AML_IRQ_LEVEL, gsi, 1);
	aml__pkg_close(a);
	aml__method(a, "_STA", 0, false);
	aml__if(a);				/* If (LAnd (STAT, LNot (LEqual (CTRL, 0x10)))) */
	aml__op(a, AML_LAND);
	aml__path(a, "STAT");
	aml__op(a, AML_LNOT);
	aml__op(a, AML_LEQUAL);
	aml__path(a, "CTRL");
	aml__int(a, 0x10);
	aml__op(a, AML_RETURN);
	aml__int(a, 0xf);
	aml__pkg_close(a);
	aml__else(a);
	aml__op(a, AML_RETURN);
	aml__int(a, 0);
	aml__pkg_close(a);
	aml__pkg_close(a);
	aml__pkg_close(a);

	aml__device(a, "CPUS");
	aml__name(a, "_HID");
	aml__string(a, "ACPI0010");
	aml__device(a, "C000");
	aml__name(a, "_HID");
	aml__string(a, "ACPI0007");
	aml__name(a, "_UID");
	aml__int(a, 0);
	aml__pkg_close(a);
	aml__method(a, "CSCN", 2, true);
	aml__acquire(a, "MUTX", 0xffff);
	/* Or (ShiftLeft (Arg0, 2), ShiftRight (Arg1, 1), Local0) */
	aml__op(a, AML_OR);
	aml__op(a, AML_SHIFT_LEFT);
	aml__arg(a, 0);
	aml__int(a, 2);
	aml__no_target(a);
	aml__op(a, AML_SHIFT_RIGHT);
	aml__arg(a, 1);
	aml__int(a, 1);
	aml__no_target(a);
	aml__local(a, 0);
	aml__op(a, AML_ADD);			/* Add (Local0, \_GPE.BASE, Local0) */
	aml__local(a, 0);
	aml__path(a, "\\_GPE.BASE");
	aml__local(a, 0);
	aml__op(a, AML_ADD);			/* Add (Local0, ^^MEM0._HID, Local0) */
	aml__local(a, 0);
	aml__path(a, "^^MEM0._HID");
	aml__local(a, 0);
	aml__op(a, AML_STORE);
	aml__int(a, 0);
	aml__local(a, 1);
	aml__while(a);				/* While (LOr (LLess (Local1, 8), ...)) */
	aml__op(a, AML_LOR);
	aml__op(a, AML_LLESS);
	aml__local(a, 1);
	aml__int(a, 8);
	aml__op(a, AML_LGREATER);
	aml__local(a, 0);
	aml__int(a, 0x100000000);
	aml__if(a);
	aml__op(a, AML_LEQUAL);
	aml__op(a, AML_AND);
	aml__local(a, 0);
	aml__int(a, 1);
	aml__no_target(a);
	aml__int(a, 1);
	aml__op(a, AML_NOTIFY);
	aml__path(a, "C000");
	aml__int(a, 0x80);
	aml__pkg_close(a);
	aml__op(a, AML_ADD);
	aml__local(a, 1);
	aml__int(a, 1);
	aml__local(a, 1);
	aml__op(a, AML_SUBTRACT);
	aml__local(a, 0);
	aml__int(a, 1);
	aml__local(a, 0);
	aml__op(a, AML_INCREMENT);
	aml__local(a, 1);
	aml__op(a, AML_DECREMENT);
	aml__local(a, 1);
	aml__pkg_close(a);
	aml__release(a, "MUTX");
	aml__op(a, AML_RETURN);
	aml__local(a, 0);
	aml__pkg_close(a);
	aml__pkg_close(a);
	aml__pkg_close(a);
}

static void make_dirs(const char *dir)
{
	if ((mkdir(out_dir, 0755) && errno != EEXIST) || (mkdir(dir, 0755) && errno != EEXIST))
		fail_msg("mkdir %s: %s", dir, strerror(errno));
}

static uint8_t table[1 << 16];

static void test_iasl_round_trip(void **state)
{
	char dir[600], why[4096], out[256];
	struct aml a;

	(void)state;
	if (run("command -v iasl", out, sizeof(out)) != 0)
		fail_msg("iasl not found: install acpica-tools (ci/deps.sh)");
	snprintf(dir, sizeof(dir), "%s/everything", out_dir);
	make_dirs(dir);
	build_everything(&a);
	dsdt_table(table, sizeof(table), &a);
	aml__free(&a);
	if (!iasl_table_ok(dir, table, true, why, sizeof(why)))
		fail_msg("%s", why);
}

/* MEM0's Method (_STA): MethodOp, a one-byte PkgLength, the name. */
static uint8_t *sta_method(uint8_t *t, size_t len)
{
	for (uint8_t *m = t + HEADER_SIZE; m + 6 <= t + len; m++)
		if (m[0] == 0x14 && !memcmp(m + 2, "_STA", 4))
			return m;
	fail_msg("no Method (_STA)");
	return NULL;
}

/*
 * The round trip must catch bad AML, or it proves nothing (the checksum is fixed up each time):
 * a Method's PkgLength one too short cuts its last operand off, and Return (0x01) written with
 * BytePrefix instead of One is valid AML that iasl compiles differently.
 */
static void test_iasl_catches_bad_aml(void **state)
{
	char dir[600], why[4096];
	struct aml a;
	size_t len;
	uint8_t *m, *ret;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/bad", out_dir);
	make_dirs(dir);
	build_everything(&a);
	len = dsdt_table(table, sizeof(table), &a);
	aml__free(&a);
	m = sta_method(table, len);
	m[1]--, table[9]++;
	assert_false(iasl_table_ok(dir, table, true, why, sizeof(why)));
	m[1]++, table[9]--;

	ret = memmem(m, (size_t)(table + len - m), "\xa4\x0a\x0f", 3);	/* Return (0x0F) */
	assert_non_null(ret);
	ret[2] = 0x01;
	table[9] = (uint8_t)(table[9] + 0x0e);
	assert_false(iasl_table_ok(dir, table, true, why, sizeof(why)));
	assert_non_null(strstr(why, "bytes, ours"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglen_packages),
		cmocka_unit_test(test_pkglen_values),
		cmocka_unit_test(test_pkglen_buffer),
		cmocka_unit_test(test_pkglen_nested),
		cmocka_unit_test(test_name_paths),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_strings_ids_args),
		cmocka_unit_test(test_named_objects),
		cmocka_unit_test(test_field),
		cmocka_unit_test(test_control_flow),
		cmocka_unit_test(test_package),
		cmocka_unit_test(test_resource_template),
		cmocka_unit_test(test_sticky_errors),
		cmocka_unit_test(test_iasl_round_trip),
		cmocka_unit_test(test_iasl_catches_bad_aml),
	};

	/* build/tests/aml for build/tests/test_aml, build/asan/tests/aml under SANITIZE=1 */
	if (argc > 0) {
		char self[sizeof(out_dir) - 8];

		snprintf(self, sizeof(self), "%s", argv[0]);
		snprintf(out_dir, sizeof(out_dir), "%s/aml", dirname(self));
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
