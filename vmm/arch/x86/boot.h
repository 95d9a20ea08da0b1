/*
 * Boot protocols: how a kernel file becomes guest memory and the boot vCPU's first state.
 *
 * boot.c reads the files and asks each protocol in turn whether the kernel is its own; the one
 * that claims it (pvh.c, bzimage.c) judges the file, places it against the layout, and later
 * writes it and its boot data into guest memory and says where the boot vCPU starts. Everything
 * that can refuse a --kernel, --initramfs or --cmdline runs before any guest memory exists, so
 * that a bad file is rejected like any other bad option.
 */
#ifndef MEMVISOR_ARCH_X86_BOOT_H
#define MEMVISOR_ARCH_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/layout.h"

struct vm;

/*
 * The boot vCPU's state at the kernel's entry, as its protocol defines it; cpu.c turns it into
 * segments and registers. Both modes get a flat GDT with code at 0x10 and data at 0x18, the
 * selectors PVH and Linux's boot protocol both name.
 */
enum boot_cpu_mode {
	BOOT_CPU_PROT32,	/* 32-bit protected mode, paging off (PVH) */
	BOOT_CPU_LONG64,	/* 64-bit mode, paging on with the page tables at cr3 (Linux) */
};

struct boot_cpu {
	enum boot_cpu_mode mode;
	uint64_t rip, rbx, rsi, cr3;
};

#define PVH_MAX_SEGMENTS 16

struct pvh_segment {
	uint64_t paddr, filesz, memsz, offset;
};

/* A kernel file, read and judged; the protocol's part is filled by its parse and place. */
struct boot_image {
	const struct boot_proto *proto;
	char *path;			/* for messages: quote()d */
	uint8_t *file;
	size_t file_size;
	uint8_t *initramfs;		/* NULL without --initramfs */
	size_t initramfs_size;
	uint64_t initramfs_addr;	/* chosen by the protocol's place */
	union {
		struct {
			uint64_t entry;	/* XEN_ELFNOTE_PHYS32_ENTRY */
			int nsegments;
			struct pvh_segment segments[PVH_MAX_SEGMENTS];
		} pvh;
		struct {
			uint16_t version;	/* boot protocol, 0x020f = 2.15 */
			size_t hdr_end;		/* setup header: file [0x1f1, hdr_end) */
			size_t setup_size;	/* the protected-mode kernel starts here */
			size_t kernel_size;	/* and is this long (syssize * 16) */
			bool relocatable;
			uint64_t alignment, pref_address, init_size, initrd_addr_max;
			uint32_t cmdline_size;
			uint64_t load_addr;	/* chosen by place */
		} bz;
	};
};

/*
 * One boot protocol. Every op but probe may refuse with one line in err that starts with the
 * option to blame; probe, parse, place and check_cmdline run before any guest memory exists.
 */
struct boot_proto {
	const char *name;
	/* Whether the file is this protocol's, by its magic numbers only: parse judges the rest. */
	bool (*probe)(const uint8_t *file, size_t size);
	/* Every field of the file the protocol uses, checked against the file (hostile input). */
	int (*parse)(struct boot_image *img, char *err, size_t errlen);
	/* Kernel and initramfs placed in this layout: each must lie in boot RAM. */
	int (*place)(struct boot_image *img, const struct layout *l, char *err, size_t errlen);
	/* The kernel's own limit on the command line, beyond memvisor's; NULL when none. */
	int (*check_cmdline)(const struct boot_image *img, size_t len, char *err, size_t errlen);
	/* Kernel, initramfs and the protocol's boot data into guest memory (place succeeded). */
	int (*setup)(struct vm *vm, const struct boot_image *img, char *err, size_t errlen);
	/* The boot vCPU's state at the kernel's entry. */
	void (*entry)(const struct boot_image *img, struct boot_cpu *cpu);
};

extern const struct boot_proto pvh_proto, bzimage_proto;

/* Called by main, in this order; the first four before any guest memory exists. */
struct boot_image *boot__load_kernel(const char *path, char *err, size_t errlen);
int boot__load_initramfs(struct boot_image *img, const char *path, char *err, size_t errlen);
int boot__check_kernel(struct boot_image *img, const struct layout *l, char *err, size_t errlen);
/* img NULL (--print-layout without --kernel): the limit every kernel has. */
int boot__check_cmdline(const struct boot_image *img, const char *cmdline, char *err,
			size_t errlen);
/* Write kernel, boot data and tables into guest memory; vm->boot_cpu says where to start. */
int boot__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen);
void boot__free(struct boot_image *img);

/* For the protocols. */
/* The boot RAM range holding all of [gpa, gpa + len), or NULL. */
const struct mem_range *boot__ram_range(const struct layout *l, uint64_t gpa, uint64_t len);
/*
 * The initramfs at the top of the first RAM range (below the 32-bit hole, as Linux wants it),
 * under limit (exclusive), page aligned, at or above lowest. why: what limits it, for the message.
 */
int boot__place_initramfs(struct boot_image *img, const struct layout *l, uint64_t lowest,
			  uint64_t limit, const char *why, char *err, size_t errlen);
/* The E820 map of the layout into out (max entries): its length, or -1 with err. */
int boot__e820(struct vm *vm, struct e820_entry *out, int max, char *err, size_t errlen);
/* --cmdline at BOOT_CMDLINE_ADDR, the initramfs where place put it, the ACPI tables at 0xe0000. */
int boot__write_cmdline(struct vm *vm, char *err, size_t errlen);
int boot__write_initramfs(struct vm *vm, const struct boot_image *img, char *err, size_t errlen);
/* The ACPI tables, then the reset vector's stub (both in the reserved area below 1 MiB). */
int boot__write_acpi(struct vm *vm, char *err, size_t errlen);
int boot__write_reset_vector(struct vm *vm, char *err, size_t errlen);

#endif
