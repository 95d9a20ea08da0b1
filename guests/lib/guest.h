/*
 * The guests' tiny library: PVH boot (lib/entry.S), console, exit and debug ports,
 * page tables, CPUID/TSC helpers, a small FDT reader and ACPI table helpers.
 * Freestanding: only the compiler's own headers.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define KiB (1UL << 10)
#define MiB (1UL << 20)
#define GiB (1UL << 30)
#define PAGE_SIZE 4096UL
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((u64)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((u64)(a) - 1))
#define __packed __attribute__((packed))
#define __noreturn __attribute__((noreturn))

/* Ports: see guests/README.md for the codes written to the debug port. */
#define PORT_EXIT	0xf4
#define PORT_DEBUG	0x80
#define DEBUG_ENTRY	0x01	/* first instruction (lib/entry.S) */
#define DEBUG_LONG_MODE	0x02	/* C code running in long mode */
#define DEBUG_HOLD	0xfd	/* report complete, halting for good (cmdline "hold") */
#define DEBUG_EXIT	0xfe	/* about to write the exit port */

/* Exit codes common to all guests */
#define EXIT_OK		0
#define EXIT_FAIL	1	/* the guest found an inconsistency */
#define EXIT_FATAL	2	/* cannot run: bad start info, bad command line, no memory */
#define EXIT_EXCEPTION	3	/* unexpected CPU exception */

/* xen/include/public/arch-x86/hvm/start_info.h */
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
	u32 magic, version, flags, nr_modules;
	u64 modlist_paddr, cmdline_paddr, rsdp_paddr;
	u64 memmap_paddr;	/* version >= 1 */
	u32 memmap_entries, reserved;
};
struct hvm_modlist_entry { u64 paddr, size, cmdline_paddr, reserved; };
struct hvm_memmap_entry { u64 addr, size; u32 type, reserved; };
#define E820_RAM 1

/* io.h-style primitives */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	/* lfence keeps rdtsc from running ahead of the loads and stores it is meant to time */
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
}
static inline void cpuid(u32 leaf, u32 sub, u32 r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline u16 mmio_read16(u64 addr) { return *(volatile u16 *)addr; }
static inline u8 mmio_read8(u64 addr) { return *(volatile u8 *)addr; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline void mmio_write8(u64 addr, u8 v) { *(volatile u8 *)addr = v; }
/* A 64-bit register as two 32-bit writes, low half first (virtio-mmio's queue addresses) */
static inline void mmio_write64_halves(u64 addr, u64 v)
{
	mmio_write32(addr, (u32)v);
	mmio_write32(addr + 4, (u32)(v >> 32));
}
static inline void debug_mark(u8 code) { outb(PORT_DEBUG, code); }

/* string.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* The value of key=VALUE in a space-separated command line, copied into buf; false if absent. */
bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t len);
/* A bare "key" or key=1|on|yes in the command line */
bool cmdline_flag(const char *cmdline, const char *key);
/* "64M", "2G", "4096", "0x1000" with optional K/M/G/T suffix; false on a malformed number. */
bool parse_size(const char *s, u64 *out);

/* console.c: 16550 at 0x3f8, printf, exit */
void serial_init(void);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A double-quoted string value with ", \ and non-printable bytes escaped as \xNN (README). */
void print_quoted(const char *s, size_t max);
void console_flush(void);
void console_break(void);	/* end a partly written line */
__noreturn void guest_exit(u32 code);

/* setup.c: what the boot code learnt, filled before main() runs */
#define MAX_PROTECT 96
struct region { u64 start, end; const char *what; };
struct boot {
	const struct hvm_start_info *si;
	u64 si_paddr;
	const char *cmdline;			/* "" when none */
	const struct hvm_memmap_entry *e820;
	u32 e820_entries;
	const struct hvm_modlist_entry *mods;
	u32 nr_mods;
	u64 tsc_entry;				/* TSC at the first instruction */
	/* CPU */
	char vendor[13], hypervisor[13];
	u32 max_leaf, max_ext_leaf, max_hv_leaf;
	u32 hv_features;	/* leaf 0x40000001 eax: KVM_FEATURE_* bits */
	u32 family, model, stepping, bsp_apic;
	unsigned phys_bits, virt_bits;
	bool gbpages, x2apic;
	u64 tsc_khz;				/* 0: unknown */
	const char *tsc_source;
	/* page tables */
	u64 mapped_limit;			/* [0, mapped_limit) is identity-mapped */
	u64 heap_start, heap_end;		/* page-table pages taken after _end */
	/* Regions the memory test and the fault guest must not write */
	int nprotect;
	struct region protect[MAX_PROTECT];
};
extern struct boot boot;
extern char _start[], _end[];
int main(void);				/* each guest's; its return value is the exit code */
void protect_add(u64 start, u64 size, const char *what);
bool protect_overlaps(u64 start, u64 size);
u64 e820_top(void);			/* end of the highest E820 entry, any type */
/* The lines every guest prints about its boot and CPU (README: "Common lines"). */
void print_boot_info(void);

/* check.c: kvm-unit-tests style results, one PASS:/FAIL:/SKIP: line per check */
struct check { const char *name, *skip; unsigned errors; };
/* One "error check=NAME ..." line (at most 16 per check; the FAIL line has the count) */
void check_error(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check_skip(struct check *c, const char *why);	/* the first reason wins */
/* The PASS/FAIL/SKIP lines and the SUMMARY line; returns EXIT_OK or EXIT_FAIL */
int checks_report(struct check *c, int n);

/* paging (setup.c) */
/* Extend the identity map to cover [0, limit) (rounded up to 1 GiB, capped at MAXPHYADDR). */
void paging_map(u64 limit);
void paging_init(void);

/* fdt.c: read-only flattened device tree walker, bounds-checked */
#define FDT_MAGIC 0xd00dfeed
struct fdt { const u8 *blob; u32 size, off_struct, size_struct, off_strings, size_strings, version; };
/* Validate the header of the blob at addr (at most max bytes); 0 or -1 with *why set. */
int fdt_open(struct fdt *f, const void *addr, u64 max, const char **why);
/* Offset of the next node after off (-1: the root), depth updated; -1 at the end or on error. */
int fdt_next_node(const struct fdt *f, int off, int *depth);
const char *fdt_node_name(const struct fdt *f, int off);
const void *fdt_getprop(const struct fdt *f, int off, const char *name, int *len);
static inline u32 be32(const void *p)
{
	const u8 *b = p;
	return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3];
}
/* Read cells (1 or 2) big-endian 32-bit cells at p as one number. */
u64 fdt_cells(const void *p, int cells);

/* acpi.c */
struct acpi_header {
	char sig[4];
	u32 length;
	u8 revision, checksum;
	char oem_id[6], oem_table_id[8];
	u32 oem_revision, creator_id, creator_revision;
} __packed;
struct acpi_rsdp {
	char sig[8];
	u8 checksum;
	char oem_id[6];
	u8 revision;
	u32 rsdt;
	u32 length;		/* revision >= 2 */
	u64 xsdt;
	u8 ext_checksum, reserved[3];
} __packed;
u8 acpi_sum(const void *p, u64 len);
/* The RSDP at hint if valid-looking, else by the ACPI spec's search (EBDA, 0xe0000-0xfffff). */
const struct acpi_rsdp *acpi_find_rsdp(u64 hint, const char **source);

/*
 * Devices whose _HID is the string hid in a DSDT/SSDT, found by scanning the AML bytes for
 * the string and taking the innermost Device() whose PkgLength encloses it; its _UID and _CRS
 * (first memory window, first interrupt) are read when they are plain Name() objects.
 * Returns how many were stored in out.
 */
struct acpi_dev {
	char name[5];
	u32 uid, irq;
	u64 base, size;
	bool has_uid, has_base, has_irq;
};
int acpi_find_hid(const struct acpi_header *h, const char *hid, struct acpi_dev *out, int max);
/* The first Device whose own name (the last NameSeg of its path) is name, e.g. "MHPC". */
bool acpi_find_device(const struct acpi_header *h, const char *name, struct acpi_dev *out);
/* The DSDT the FADT points at, checksum verified; NULL when there is none. */
const struct acpi_header *acpi_find_dsdt(void);

/* virtio-mmio v2 registers (virtio 1.2, 4.2.2), status bits and split-ring descriptors (2.7.5) */
#define R_MAGIC		0x000
#define R_VERSION	0x004
#define R_DEVICE_ID	0x008
#define R_DEV_FEAT	0x010
#define R_DEV_FEAT_SEL	0x014
#define R_DRV_FEAT	0x020
#define R_DRV_FEAT_SEL	0x024
#define R_QUEUE_SEL	0x030
#define R_QUEUE_NUM_MAX	0x034
#define R_QUEUE_NUM	0x038
#define R_QUEUE_READY	0x044
#define R_QUEUE_NOTIFY	0x050
#define R_STATUS	0x070
#define R_QUEUE_DESC	0x080
#define R_QUEUE_AVAIL	0x090
#define R_QUEUE_USED	0x0a0
#define R_CONFIG_GEN	0x0fc
#define R_CONFIG	0x100

#define S_ACK		1
#define S_DRIVER	2
#define S_DRIVER_OK	4
#define S_FEATURES_OK	8
#define S_NEEDS_RESET	0x40

#define DESC_F_NEXT	1
#define DESC_F_WRITE	2

struct vring_desc { u64 addr; u32 len; u16 flags, next; } __packed;

/* virtio.c: a polling virtio-mmio v2 driver with one queue and one request in flight */
#define VIRTIO_F_VERSION_1 (1ULL << 32)
#define VIRTIO_QUEUE_MAX 16			/* descriptors the driver uses at most */
#define VIRTIO_QUEUE_BYTES 1024			/* desc table, avail at +256, used at +512 */
#define VIRTIO_MAX_QUEUES 3
struct virtio_vq {
	u16 num, avail_idx, used_idx;		/* num 0: not set up */
	void *desc;
	u16 *avail;
	volatile u8 *used;
};
struct virtio_dev {
	u64 base;
	u64 offered, features;
	struct virtio_vq q[VIRTIO_MAX_QUEUES];
};
/* Reset, check magic/version/device id, negotiate wanted & offered (+VERSION_1); 0 or -1, why. */
int virtio_open(struct virtio_dev *d, u64 base, u32 device_id, u64 wanted, const char **why);
/* Queue index on VIRTIO_QUEUE_BYTES at mem (16-byte aligned, 4 KiB is safest), num descriptors. */
int virtio_queue(struct virtio_dev *d, u32 index, void *mem, u16 num, const char **why);
void virtio_ready(struct virtio_dev *d);	/* DRIVER_OK */
u32 virtio_status(const struct virtio_dev *d);
/*
 * On queue index: out (device-readable; NULL: none) then in (device-writable; NULL: none);
 * waits for the answer. 0, or -1 on no answer.
 */
int virtio_request(struct virtio_dev *d, u32 index, const void *out, u32 out_len, void *in,
		   u32 in_len, u32 *written);
u64 virtio_config64(const struct virtio_dev *d, u32 off);
u32 virtio_config32(const struct virtio_dev *d, u32 off);
u16 virtio_config16(const struct virtio_dev *d, u32 off);
void virtio_config_write32(const struct virtio_dev *d, u32 off, u32 v);

#endif
