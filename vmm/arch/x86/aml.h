/*
 * An AML builder (ACPI 6.3, chapter 20) for the bodies of definition blocks of revision 2, whose
 * integers are 64 bits wide.
 *
 * AML is prefix notation, and the builder writes it as a stream in that order: an operator's
 * function writes its opcode and whatever the grammar fixes (names being declared, flags, sizes);
 * the caller then writes the operands with further calls, in the order the ASL signature beside
 * each function gives. Store (Arg0, Local1) is
 *
 *	aml__op(a, AML_STORE); aml__arg(a, 0); aml__local(a, 1);
 *
 * Everything with a PkgLength (Scope, Device, Method, If, Else, While, Package, Buffer,
 * ResourceTemplate, Field) is opened by its function and ended by aml__pkg_close(), which
 * encodes the length once the body is known.
 *
 * Errors are sticky: the first bad name or argument, misplaced call, overflow or allocation
 * failure is recorded with a one-line message, every later call does nothing, and aml__finish()
 * returns it. Callers check once, at the end: an AML body is worthless once any part of it
 * failed, and a check after each of hundreds of calls would hide the shape of the table.
 */
#ifndef MEMVISOR_ARCH_X86_AML_H
#define MEMVISOR_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_DEPTH_MAX	32
/* The largest PkgLength is 2^28 - 1: no package, hence no useful body, can be larger. */
#define AML_LEN_MAX	((size_t)1 << 28)

struct aml_open {
	size_t start;		/* offset of the body, where the PkgLength will go */
	uint64_t bits;		/* Field: bit position of the next field unit */
	uint8_t kind;
};

/* Read buf and len after a successful aml__finish(); the rest is the builder's. */
struct aml {
	uint8_t *buf;
	size_t len, cap, limit;
	struct aml_open open[AML_DEPTH_MAX];
	int depth;
	bool after_if;		/* the last thing written is an If's end: Else may follow */
	char err[128];		/* the first error, "" while there is none */
};

/* At most limit bytes (capped at AML_LEN_MAX); the buffer grows on demand up to that. */
void aml__init(struct aml *a, size_t limit);
/* 0, or -1 with the first error, or with the number of packages still open. */
int aml__finish(const struct aml *a, char *err, size_t errlen);
void aml__free(struct aml *a);

/* ---- raw bytes and packages ---- */
void aml__byte(struct aml *a, uint8_t v);
void aml__bytes(struct aml *a, const void *p, size_t n);
/* A PkgLength starts here; for constructs the functions below do not cover. */
void aml__pkg_open(struct aml *a);
/* Ends the innermost open construct, whichever function opened it. */
void aml__pkg_close(struct aml *a);

/* ---- data and names ---- */
/* Zero, One, Ones (UINT64_MAX), else the shortest of Byte/Word/DWord/QWordPrefix. */
void aml__int(struct aml *a, uint64_t v);
/* ASCII 0x01-0x7f, NUL-terminated in the AML. */
void aml__string(struct aml *a, const char *s);
/*
 * A NameString: optional '\' or '^'..., then segments of 1-4 characters ([A-Z_][A-Z0-9_]*)
 * separated by '.', each padded with '_' to four: "\\_SB.PCI0", "^^CPUS", "_HID". "\\" alone is
 * the root.
 */
void aml__path(struct aml *a, const char *path);
/* EisaId ("PNP0A03"): the compressed 32-bit id, as the shortest integer, as iasl writes it. */
void aml__eisaid(struct aml *a, const char *id);
void aml__local(struct aml *a, unsigned n);	/* Local0-7 */
void aml__arg(struct aml *a, unsigned n);	/* Arg0-6 */
/* NullName as a Target: the result is only returned, not stored. */
void aml__no_target(struct aml *a);

/* ---- named objects ---- */
void aml__name(struct aml *a, const char *name);	/* Name (name, <data object>) */
void aml__scope(struct aml *a, const char *name);	/* Scope (name) { ... } */
void aml__device(struct aml *a, const char *name);	/* Device (name) { ... } */
/* Method (name, nargs, Serialized | NotSerialized) { ... }, sync level 0 */
void aml__method(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml__mutex(struct aml *a, const char *name, unsigned sync_level);	/* Mutex (name, 0-15) */
void aml__acquire(struct aml *a, const char *mutex, uint16_t timeout);	/* Acquire (mutex, ms) */
void aml__release(struct aml *a, const char *mutex);			/* Release (mutex) */

enum aml_region_space {
	AML_SYSTEM_MEMORY	= 0x00,
	AML_SYSTEM_IO		= 0x01,
	AML_PCI_CONFIG		= 0x02,
};
/* OperationRegion (name, space, offset, len) */
void aml__operation_region(struct aml *a, const char *name, enum aml_region_space space,
			   uint64_t offset, uint64_t len);

enum aml_access {
	AML_ANY_ACC, AML_BYTE_ACC, AML_WORD_ACC, AML_DWORD_ACC, AML_QWORD_ACC, AML_BUFFER_ACC,
};
enum aml_update { AML_PRESERVE, AML_WRITE_AS_ONES, AML_WRITE_AS_ZEROS };
/* Field (region, access, Lock | NoLock, update) { units }: units by the three calls after it */
void aml__field(struct aml *a, const char *region, enum aml_access access, bool lock,
		enum aml_update update);
void aml__field_unit(struct aml *a, const char *name, unsigned bits);	/* name, bits */
void aml__field_reserved(struct aml *a, unsigned bits);			/* , bits */
void aml__field_offset(struct aml *a, unsigned byte_offset);		/* Offset (n) */

/* ---- control flow and operators ---- */
void aml__if(struct aml *a);	/* If (<predicate>) { ... } */
void aml__else(struct aml *a);	/* Else { ... }: right after an If's aml__pkg_close() */
void aml__while(struct aml *a);	/* While (<predicate>) { ... } */

/* Opcodes whose operands the caller writes next, in the order shown. */
enum aml_op {
	AML_STORE	= 0x70,	/* Store (TermArg, SuperName) */
	AML_ADD		= 0x72,	/* Add (TermArg, TermArg, Target) */
	AML_SUBTRACT	= 0x74,	/* Subtract (TermArg, TermArg, Target) */
	AML_INCREMENT	= 0x75,	/* Increment (SuperName) */
	AML_DECREMENT	= 0x76,	/* Decrement (SuperName) */
	AML_SHIFT_LEFT	= 0x79,	/* ShiftLeft (TermArg, TermArg count, Target) */
	AML_SHIFT_RIGHT	= 0x7a,	/* ShiftRight (TermArg, TermArg count, Target) */
	AML_AND		= 0x7b,	/* And (TermArg, TermArg, Target) */
	AML_OR		= 0x7d,	/* Or (TermArg, TermArg, Target) */
	AML_NOTIFY	= 0x86,	/* Notify (SuperName object, TermArg value) */
	AML_LAND	= 0x90,	/* LAnd (TermArg, TermArg) */
	AML_LOR		= 0x91,	/* LOr (TermArg, TermArg) */
	AML_LNOT	= 0x92,	/* LNot (TermArg) */
	AML_LEQUAL	= 0x93,	/* LEqual (TermArg, TermArg) */
	AML_LGREATER	= 0x94,	/* LGreater (TermArg, TermArg) */
	AML_LLESS	= 0x95,	/* LLess (TermArg, TermArg) */
	AML_RETURN	= 0xa4,	/* Return (TermArg) */
};
void aml__op(struct aml *a, enum aml_op op);

/* ---- packages, buffers, resource templates ---- */
/* Package (n) { n data objects or names } */
void aml__package(struct aml *a, unsigned nelems);
/* Buffer () { bytes by aml__bytes() }: the size is written at aml__pkg_close() */
void aml__buffer(struct aml *a);
/* ResourceTemplate () { descriptors }: aml__pkg_close() adds the EndTag, checksum 0 like iasl */
void aml__resource_template(struct aml *a);

enum aml_decode { AML_DECODE10, AML_DECODE16 };
/* IO (decode, min, max, alignment, length) */
void aml__rt_io(struct aml *a, enum aml_decode decode, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len);
/* IRQNoFlags () { the ISA IRQs set in mask }: edge-triggered, active high */
void aml__rt_irq_noflags(struct aml *a, uint16_t mask);
/* Memory32Fixed (ReadWrite | ReadOnly, base, length) */
void aml__rt_memory32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t len);

enum aml_cache { AML_NON_CACHEABLE, AML_CACHEABLE, AML_WRITE_COMBINING, AML_PREFETCHABLE };
/*
 * QWordMemory (ResourceConsumer | ResourceProducer, PosDecode, MinFixed, MaxFixed, cache,
 * ReadWrite | ReadOnly, 0, base, base + len - 1, 0, len): a fixed range, the only kind a VMM
 * describes.
 */
void aml__rt_qword_memory(struct aml *a, bool consumer, enum aml_cache cache, bool rw,
			  uint64_t base, uint64_t len);

/* The flags byte of the extended Interrupt descriptor; ResourceConsumer is always set. */
enum {
	AML_IRQ_LEVEL		= 0,
	AML_IRQ_EDGE		= 1u << 1,
	AML_IRQ_ACTIVE_LOW	= 1u << 2,
	AML_IRQ_SHARED		= 1u << 3,
	AML_IRQ_WAKE		= 1u << 4,
};
/* Interrupt (ResourceConsumer, mode, polarity, sharing) { n GSIs, 1-255 } */
void aml__rt_interrupt(struct aml *a, unsigned flags, const uint32_t *gsi, unsigned n);

#endif
