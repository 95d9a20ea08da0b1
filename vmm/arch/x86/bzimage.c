/*
 * Linux's 64-bit boot protocol (Documentation/x86/boot.rst, "64-bit Boot Protocol"): a bzImage's
 * protected-mode kernel is loaded at its pref_address and entered at load address + 0x200 in
 * 64-bit mode, with rsi = boot_params (the "zero page": a copy of the file's setup header plus the
 * E820 map, command line, initrd and RSDP). The 16-bit setup code never runs, so no BIOS is needed.
 *
 * The file is hostile input: every field that says where something is or how long it is gets
 * compared with the file before it is used. Offsets are those of boot.rst and zero-page.rst; the
 * zero page is a byte array, not a struct, so that no field depends on the compiler's layout.
 */
#include "arch/x86/boot.h"
#include "util.h"
#include "vm.h"

/* The setup header, at the same offsets in the file and in boot_params. */
#define HDR_START		0x1f1	/* setup_sects: the header starts here */
#define HDR_SYSSIZE		0x1f4
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200	/* jmp rel8: the header ends at 0x202 + rel8 */
#define HDR_MAGIC		0x202	/* "HdrS" */
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_KERNEL_ALIGNMENT	0x230
#define HDR_RELOCATABLE		0x234
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PAYLOAD_OFFSET	0x248
#define HDR_PAYLOAD_LENGTH	0x24c
#define HDR_SETUP_DATA		0x250
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define HDR_HANDOVER_OFFSET	0x264
#define HDR_KERNEL_INFO_OFFSET	0x268
#define HDR_END_2_12		0x268	/* the header of protocol 2.12 to 2.14 ends here */
#define HDR_END_2_15		0x26c	/* 2.15 added kernel_info_offset */
#define HDR_END_MAX		0x290	/* boot_params' edd_mbr_sig_buffer follows */

/* The rest of boot_params (zero-page.rst). */
#define BP_ACPI_RSDP_ADDR	0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define BP_E820_TABLE		0x2d0	/* 128 entries of 20 bytes: addr, size, type */
#define BP_E820_MAX		128
#define BP_SIZE			0x1000

#define BOOT_FLAG		0xaa55
#define LOADED_HIGH		0x01	/* loadflags: kernel at 1 MiB or above */
#define XLF_KERNEL_64		0x01	/* xloadflags: entry at load + 0x200 */
#define TYPE_OF_LOADER_UNDEF	0xff	/* a loader without an assigned id */
#define ENTRY_64		0x200
#define VERSION_64		0x020c	/* 2.12: xloadflags, hence XLF_KERNEL_64 */
#define VERSION_RSDP		0x020e	/* 2.14: boot_params.acpi_rsdp_addr */
#define VERSION_KERNEL_INFO	0x020f	/* 2.15 */
#define MAX_ALIGNMENT		GiB	/* any CONFIG_PHYSICAL_ALIGN is <= 16 MiB */

/* Page table entries of the 64-bit entry's identity map. */
#define PTE_PRESENT_RW		0x003ULL
#define PDE_2M			0x083ULL	/* present, writable, 2 MiB page */

static uint32_t get16(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* "HdrS" where the setup header has it: boot protocol 2.00 and later. */
static bool bzimage__probe(const uint8_t *file, size_t size)
{
	return size >= HDR_MAGIC + 4 && !memcmp(file + HDR_MAGIC, "HdrS", 4);
}

/* The fields that say where the setup code, the kernel and its parts are, against the file. */
static int bzimage__parse_sizes(struct boot_image *img, char *err, size_t errlen)
{
	const uint8_t *f = img->file;
	const char *path = img->path;
	size_t setup_sects = f[HDR_START], rest;
	uint64_t syssize = get32(f + HDR_SYSSIZE), off, len;

	/* boot.rst: "If this field is 0, the real value is 4." */
	if (!setup_sects)
		setup_sects = 4;
	img->bz.setup_size = (setup_sects + 1) * 512;
	if (img->bz.setup_size > img->file_size)
		return error(err, errlen, "--kernel: '%s': setup_sects %zu puts the kernel at byte "
			     "%zu of a %zu-byte file", path, setup_sects, img->bz.setup_size,
			     img->file_size);
	rest = img->file_size - img->bz.setup_size;
	/*
	 * syssize (16-byte units) is the kernel and its CRC; what follows it in the file (a
	 * signature) is not loaded.
	 */
	if (syssize * 16 > rest)
		return error(err, errlen, "--kernel: '%s': syssize 0x%llx (%llu bytes) runs past "
			     "the %zu bytes of the file after the setup code", path,
			     (unsigned long long)syssize, (unsigned long long)syssize * 16, rest);
	img->bz.kernel_size = (size_t)syssize * 16;
	if (img->bz.kernel_size <= ENTRY_64)
		return error(err, errlen, "--kernel: '%s': syssize 0x%llx: a kernel of %zu bytes has "
			     "no 64-bit entry at 0x%x", path, (unsigned long long)syssize,
			     img->bz.kernel_size, ENTRY_64);
	off = get32(f + HDR_PAYLOAD_OFFSET);
	len = get32(f + HDR_PAYLOAD_LENGTH);
	if (off + len > img->bz.kernel_size)
		return error(err, errlen, "--kernel: '%s': payload_offset 0x%llx + payload_length "
			     "0x%llx lies outside the %zu-byte kernel", path, (unsigned long long)off,
			     (unsigned long long)len, img->bz.kernel_size);
	off = get32(f + HDR_HANDOVER_OFFSET);
	if (off && off + ENTRY_64 >= img->bz.kernel_size)
		return error(err, errlen, "--kernel: '%s': handover_offset 0x%llx lies outside the "
			     "%zu-byte kernel", path, (unsigned long long)off, img->bz.kernel_size);
	off = img->bz.version >= VERSION_KERNEL_INFO ? get32(f + HDR_KERNEL_INFO_OFFSET) : 0;
	if (off && off + 16 > img->bz.kernel_size)	/* 16: kernel_info's fixed header */
		return error(err, errlen, "--kernel: '%s': kernel_info_offset 0x%llx lies outside "
			     "the %zu-byte kernel", path, (unsigned long long)off, img->bz.kernel_size);
	img->bz.init_size = get32(f + HDR_INIT_SIZE);
	if (img->bz.init_size < img->bz.kernel_size)
		return error(err, errlen, "--kernel: '%s': init_size 0x%llx is smaller than the "
			     "%zu-byte kernel", path, (unsigned long long)img->bz.init_size,
			     img->bz.kernel_size);
	return 0;
}

static int bzimage__parse(struct boot_image *img, char *err, size_t errlen)
{
	const uint8_t *f = img->file;
	const char *path = img->path;
	size_t need;

	if (img->file_size < HDR_VERSION + 2)
		return error(err, errlen, "--kernel: '%s': the bzImage setup header is cut short "
			     "at %zu bytes", path, img->file_size);
	img->bz.version = (uint16_t)get16(f + HDR_VERSION);
	if (img->bz.version < VERSION_64)
		return error(err, errlen, "--kernel: '%s' is a bzImage of boot protocol %u.%02u: "
			     "the 64-bit entry needs 2.12 or later", path, img->bz.version >> 8,
			     img->bz.version & 0xff);
	need = img->bz.version >= VERSION_KERNEL_INFO ? HDR_END_2_15 : HDR_END_2_12;
	img->bz.hdr_end = (size_t)HDR_JUMP + 2 + f[HDR_JUMP + 1];
	if (img->bz.hdr_end < need || img->bz.hdr_end > img->file_size)
		return error(err, errlen, "--kernel: '%s': the setup header ends at 0x%zx, protocol "
			     "%u.%02u needs 0x%zx in a %zu-byte file", path, img->bz.hdr_end,
			     img->bz.version >> 8, img->bz.version & 0xff, need, img->file_size);
	/* Longer headers are a later protocol's: boot_params has room for what we know. */
	if (img->bz.hdr_end > HDR_END_MAX)
		img->bz.hdr_end = HDR_END_MAX;
	if (get16(f + HDR_BOOT_FLAG) != BOOT_FLAG)
		return error(err, errlen, "--kernel: '%s': boot_flag 0x%04x, not 0x%04x", path,
			     get16(f + HDR_BOOT_FLAG), BOOT_FLAG);
	if (!(get16(f + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return error(err, errlen, "--kernel: '%s' is a bzImage without a 64-bit entry "
			     "(no XLF_KERNEL_64 in xloadflags)", path);
	if (!(f[HDR_LOADFLAGS] & LOADED_HIGH))
		return error(err, errlen, "--kernel: '%s' is a zImage (loadflags without "
			     "LOADED_HIGH)", path);
	if (bzimage__parse_sizes(img, err, errlen) < 0)
		return -1;
	img->bz.relocatable = f[HDR_RELOCATABLE] != 0;
	img->bz.alignment = get32(f + HDR_KERNEL_ALIGNMENT);
	if (img->bz.relocatable && (img->bz.alignment < 0x1000 ||
				    img->bz.alignment > MAX_ALIGNMENT ||
				    (img->bz.alignment & (img->bz.alignment - 1))))
		return error(err, errlen, "--kernel: '%s': kernel_alignment 0x%llx is not a power "
			     "of two from 4 KiB to 1 GiB", path,
			     (unsigned long long)img->bz.alignment);
	img->bz.pref_address = get64(f + HDR_PREF_ADDRESS);
	img->bz.initrd_addr_max = get32(f + HDR_INITRD_ADDR_MAX);
	img->bz.cmdline_size = get32(f + HDR_CMDLINE_SIZE);
	return 0;
}

/*
 * At pref_address: a relocatable kernel aligns its load address up to kernel_alignment and
 * decompresses in [that, + init_size), which must therefore be where we checked; it never goes
 * below pref_address (LOAD_PHYSICAL_ADDR), so loading it lower would gain nothing.
 */
static int bzimage__place(struct boot_image *img, const struct layout *l, char *err,
			  size_t errlen)
{
	uint64_t load = img->bz.pref_address, limit = img->bz.initrd_addr_max + 1ULL;
	const struct mem_range *r;
	char why[64];

	if (load < HIGH_RAM_START)
		return error(err, errlen, "--kernel: '%s': pref_address 0x%llx is below 1 MiB, "
			     "where the boot data is", img->path, (unsigned long long)load);
	if (img->bz.relocatable && load <= LAYOUT_MAX_GPA)
		load = ALIGN_UP(load, img->bz.alignment);
	r = boot__ram_range(l, load, img->bz.init_size);
	/* Below the hole: the identity map covers [0, 4 GiB) and code32_start has 32 bits. */
	if (!r || r != &l->ranges[0])
		return error(err, errlen, "--kernel: '%s' needs 0x%llx bytes (init_size) of RAM at "
			     "0x%llx (pref_address); the first RAM range ends at 0x%llx",
			     img->path, (unsigned long long)img->bz.init_size,
			     (unsigned long long)load, (unsigned long long)(l->nranges ?
			     l->ranges[0].gpa + l->ranges[0].size : 0));
	img->bz.load_addr = load;
	if (!img->initramfs)
		return 0;
	snprintf(why, sizeof(why), " and below initrd_addr_max 0x%llx",
		 (unsigned long long)img->bz.initrd_addr_max);
	return boot__place_initramfs(img, l, load + img->bz.init_size, limit, why, err, errlen);
}

static int bzimage__check_cmdline(const struct boot_image *img, size_t len, char *err,
				  size_t errlen)
{
	if (len > img->bz.cmdline_size)
		return error(err, errlen, "--cmdline: %zu bytes, this kernel takes at most %u "
			     "(its cmdline_size)", len, img->bz.cmdline_size);
	return 0;
}

/* [0, 4 GiB) identity-mapped with 2 MiB pages: the kernel, the zero page and the command line. */
static int bzimage__page_tables(struct vm *vm, char *err, size_t errlen)
{
	uint8_t *pt = vm__gpa_to_hva(vm, LINUX_PAGE_TABLES_ADDR, LINUX_PAGE_TABLES_SIZE);
	uint64_t pdpt = LINUX_PAGE_TABLES_ADDR + 0x1000, pd = pdpt + 0x1000;

	if (!pt)
		return error(err, errlen, "the first memory zone must cover the boot data below "
			     "1 MiB");
	memset(pt, 0, LINUX_PAGE_TABLES_SIZE);
	put64(pt, pdpt | PTE_PRESENT_RW);
	for (uint64_t i = 0; i < 4; i++) {
		put64(pt + 0x1000 + 8 * i, (pd + 0x1000 * i) | PTE_PRESENT_RW);
		for (uint64_t j = 0; j < 512; j++)
			put64(pt + 0x2000 + 0x1000 * i + 8 * j, (i * GiB + j * 2 * MiB) | PDE_2M);
	}
	return 0;
}

static int bzimage__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	struct e820_entry e820[BP_E820_MAX];
	uint8_t bp[BP_SIZE] = { 0 };
	int n = boot__e820(vm, e820, BP_E820_MAX, err, errlen);

	if (n < 0 ||
	    vm__write(vm, img->bz.load_addr, img->file + img->bz.setup_size, img->bz.kernel_size,
		      err, errlen) < 0 ||
	    bzimage__page_tables(vm, err, errlen) < 0 ||
	    boot__write_cmdline(vm, err, errlen) < 0 ||
	    boot__write_acpi(vm, err, errlen) < 0 ||
	    boot__write_initramfs(vm, img, err, errlen) < 0)
		return -1;

	/* boot.rst: the header as the file has it, then what the loader fills in. */
	memcpy(bp + HDR_START, img->file + HDR_START, img->bz.hdr_end - HDR_START);
	bp[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_UNDEF;
	put32(bp + HDR_CODE32_START, (uint32_t)img->bz.load_addr);
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_ADDR);
	put32(bp + BP_EXT_CMD_LINE_PTR, 0);
	/* bzimage__place put the initramfs below the 32-bit hole: the ext_ halves stay 0. */
	put32(bp + HDR_RAMDISK_IMAGE, img->initramfs ? (uint32_t)img->initramfs_addr : 0);
	put32(bp + HDR_RAMDISK_SIZE, img->initramfs ? (uint32_t)img->initramfs_size : 0);
	put32(bp + BP_EXT_RAMDISK_IMAGE, 0);
	put32(bp + BP_EXT_RAMDISK_SIZE, 0);
	/* A list the loader owns: the file's value would send the kernel to a random address. */
	put64(bp + HDR_SETUP_DATA, 0);
	/* Older kernels find the RSDP by scanning 0xe0000-0xfffff, where it is anyway. */
	if (img->bz.version >= VERSION_RSDP)
		put64(bp + BP_ACPI_RSDP_ADDR, ACPI_TABLES_ADDR);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		put64(e, e820[i].addr);
		put64(e + 8, e820[i].size);
		put32(e + 16, e820[i].type);
	}
	return vm__write(vm, LINUX_BOOT_PARAMS_ADDR, bp, sizeof(bp), err, errlen);
}

static void bzimage__entry(const struct boot_image *img, struct boot_cpu *cpu)
{
	*cpu = (struct boot_cpu){
		.mode = BOOT_CPU_LONG64,
		.rip = img->bz.load_addr + ENTRY_64,
		.rsi = LINUX_BOOT_PARAMS_ADDR,
		.cr3 = LINUX_PAGE_TABLES_ADDR,
	};
}

const struct boot_proto bzimage_proto = {
	.name = "bzimage",
	.probe = bzimage__probe,
	.parse = bzimage__parse,
	.place = bzimage__place,
	.check_cmdline = bzimage__check_cmdline,
	.setup = bzimage__setup,
	.entry = bzimage__entry,
};
