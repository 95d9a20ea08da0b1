/*
 * The Linux 64-bit boot protocol (bzimage.c) behind boot.h, no KVM: synthetic bzImages built
 * here (one per header field the loader reads, each bent until it is refused), placement against
 * layouts, what boot__setup leaves in guest memory (the kernel, the zero page with its E820 map,
 * command line and initrd, the identity map, the entry state), and Debian's own kernel when
 * ci/testhost has fetched it (skipped otherwise: every check has a synthetic twin above).
 */
#include <glob.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "util.h"
#include "vm.h"
#include "tests/tmpdir.h"

/* Where ci/testhost unpacks Debian's kernel package; the unit tests run from the top. */
#define DEBIAN_KERNEL_GLOB "build/testhost/linux-image-*/root/boot/vmlinuz-*"

/* The synthetic image: 4 setup sectors + the boot sector, an 8 KiB kernel, a trailing signature. */
#define SETUP_SECTS 4
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define KSIZE 0x2000
#define SIG_SIZE 100
#define IMAGE_MAX (SETUP_SIZE + KSIZE + SIG_SIZE)
#define PREF 0x1000000ULL
#define INIT_SIZE 0x400000ULL
#define ALIGNMENT 0x200000ULL

/* Header and zero-page offsets (boot.rst, zero-page.rst), spelled out again, not shared. */
enum {
	SETUP_SECTS_OFF = 0x1f1, SYSSIZE = 0x1f4, BOOT_FLAG = 0x1fe, JUMP = 0x200, MAGIC = 0x202,
	VERSION = 0x206, TYPE_OF_LOADER = 0x210, LOADFLAGS = 0x211, CODE32_START = 0x214,
	RAMDISK_IMAGE = 0x218, RAMDISK_SIZE = 0x21c, CMD_LINE_PTR = 0x228, INITRD_ADDR_MAX = 0x22c,
	KERNEL_ALIGNMENT = 0x230, RELOCATABLE = 0x234, XLOADFLAGS = 0x236, CMDLINE_SIZE = 0x238,
	PAYLOAD_OFFSET = 0x248, PAYLOAD_LENGTH = 0x24c, SETUP_DATA = 0x250, PREF_ADDRESS = 0x258,
	INIT_SIZE_OFF = 0x260, HANDOVER_OFFSET = 0x264, KERNEL_INFO_OFFSET = 0x268,
	BP_ACPI_RSDP = 0x070, BP_EXT_RAMDISK_IMAGE = 0x0c0, BP_EXT_RAMDISK_SIZE = 0x0c4,
	BP_EXT_CMD_LINE_PTR = 0x0c8, BP_E820_ENTRIES = 0x1e8, BP_SENTINEL = 0x1ef,
	BP_E820_TABLE = 0x2d0,
};


struct bz {
	uint8_t b[IMAGE_MAX];
	size_t size;
};

static void set16(struct bz *z, size_t off, uint16_t v) { memcpy(z->b + off, &v, 2); }
static void set32(struct bz *z, size_t off, uint32_t v) { memcpy(z->b + off, &v, 4); }
static void set64(struct bz *z, size_t off, uint64_t v) { memcpy(z->b + off, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* What Debian's 6.1 kernel has, scaled down: protocol 2.15, relocatable, 64-bit entry. */
static void bz_init(struct bz *z)
{
	memset(z, 0, sizeof(*z));
	z->size = IMAGE_MAX;
	z->b[SETUP_SECTS_OFF] = SETUP_SECTS;
	set32(z, SYSSIZE, KSIZE / 16);
	set16(z, BOOT_FLAG, 0xaa55);
	z->b[JUMP] = 0xeb;
	z->b[JUMP + 1] = 0x6a;		/* header ends at 0x26c */
	memcpy(z->b + MAGIC, "HdrS", 4);
	set16(z, VERSION, 0x020f);
	z->b[LOADFLAGS] = 0x01;		/* LOADED_HIGH */
	set32(z, CODE32_START, 0x100000);
	set32(z, INITRD_ADDR_MAX, 0x7fffffff);
	set32(z, KERNEL_ALIGNMENT, ALIGNMENT);
	z->b[RELOCATABLE] = 1;
	set16(z, XLOADFLAGS, 0x7f);
	set32(z, CMDLINE_SIZE, 255);
	set32(z, PAYLOAD_OFFSET, 0x300);
	set32(z, PAYLOAD_LENGTH, 0x1000);
	set64(z, SETUP_DATA, 0x12345678);	/* the loader's field: must come out 0 */
	set64(z, PREF_ADDRESS, PREF);
	set32(z, INIT_SIZE_OFF, INIT_SIZE);
	set32(z, HANDOVER_OFFSET, 0x190);
	set32(z, KERNEL_INFO_OFFSET, 0x1400);
	memcpy(z->b + SETUP_SIZE + 0x1400, "LToP", 4);
	for (size_t i = 0; i < KSIZE; i++)
		if (i < 0x1400 || i >= 0x1410)
			z->b[SETUP_SIZE + i] = (uint8_t)(i * 13 + 5);
	memset(z->b + SETUP_SIZE + KSIZE, 0xee, SIG_SIZE);
}

static struct boot_image *load_ok(const struct bz *z)
{
	char err[256] = "";
	struct boot_image *img = boot__load_kernel(tmpdir_write("bz", z->b, z->size), err,
						   sizeof(err));

	if (!img)
		fail_msg("refused: %s", err);
	assert_ptr_equal(img->proto, &bzimage_proto);
	return img;
}

static void load_fails(const void *buf, size_t size, const char *expect)
{
	char err[256] = "";
	struct boot_image *img = boot__load_kernel(tmpdir_write("bad", buf, size), err, sizeof(err));

	if (img) {
		boot__free(img);
		fail_msg("accepted, expected '%s'", expect);
	}
	if (!strstr(err, expect))
		fail_msg("error '%s' does not mention '%s'", err, expect);
	assert_true(!strncmp(err, "--kernel: '", 11));
	assert_null(strchr(err, '\n'));
}

static void bz_fails(const struct bz *z, const char *expect)
{
	load_fails(z->b, z->size, expect);
}

static void test_parse(void **state)
{
	struct boot_image *img;
	struct bz z;

	(void)state;
	bz_init(&z);
	img = load_ok(&z);
	assert_int_equal(img->bz.version, 0x020f);
	assert_int_equal(img->bz.setup_size, SETUP_SIZE);
	assert_int_equal(img->bz.kernel_size, KSIZE);	/* the signature after it is not loaded */
	assert_int_equal(img->bz.hdr_end, 0x26c);
	assert_int_equal(img->bz.init_size, INIT_SIZE);
	assert_int_equal(img->bz.pref_address, PREF);
	assert_int_equal(img->bz.alignment, ALIGNMENT);
	assert_true(img->bz.relocatable);
	assert_int_equal(img->bz.cmdline_size, 255);
	assert_int_equal(img->bz.initrd_addr_max, 0x7fffffff);
	boot__free(img);

	/* setup_sects 0 means 4 */
	z.b[SETUP_SECTS_OFF] = 0;
	img = load_ok(&z);
	assert_int_equal(img->bz.setup_size, SETUP_SIZE);
	boot__free(img);

	/* 2.12 to 2.14 have no kernel_info_offset: whatever is there is not read */
	bz_init(&z);
	set16(&z, VERSION, 0x020c);
	z.b[JUMP + 1] = 0x66;		/* header ends at 0x268 */
	set32(&z, KERNEL_INFO_OFFSET, 0xffffffff);
	boot__free(load_ok(&z));

	/* A header longer than boot_params holds (a later protocol): copied up to 0x290 */
	bz_init(&z);
	z.b[JUMP + 1] = 0xff;
	img = load_ok(&z);
	assert_int_equal(img->bz.hdr_end, 0x290);
	boot__free(img);

	/* kernel_alignment is not looked at when the kernel is not relocatable */
	bz_init(&z);
	z.b[RELOCATABLE] = 0;
	set32(&z, KERNEL_ALIGNMENT, 3);
	boot__free(load_ok(&z));

	/* Payload, handover and kernel_info right up to the end of the kernel */
	bz_init(&z);
	set32(&z, PAYLOAD_OFFSET, 0);
	set32(&z, PAYLOAD_LENGTH, KSIZE);
	set32(&z, HANDOVER_OFFSET, KSIZE - 0x201);
	set32(&z, KERNEL_INFO_OFFSET, KSIZE - 16);
	set32(&z, INIT_SIZE_OFF, KSIZE);
	boot__free(load_ok(&z));
	/* and syssize covering everything after the setup code, the signature included */
	set32(&z, SYSSIZE, (KSIZE + SIG_SIZE) / 16);
	set32(&z, INIT_SIZE_OFF, KSIZE + SIG_SIZE);
	boot__free(load_ok(&z));
}

static void test_version_and_flags(void **state)
{
	struct bz z;

	(void)state;
	bz_init(&z);
	set16(&z, VERSION, 0x020b);
	bz_fails(&z, "is a bzImage of boot protocol 2.11: the 64-bit entry needs 2.12 or later");
	set16(&z, VERSION, 0x0200);
	bz_fails(&z, "is a bzImage of boot protocol 2.00: the 64-bit entry needs 2.12 or later");
	bz_init(&z);
	set16(&z, XLOADFLAGS, 0x7e);
	bz_fails(&z, "is a bzImage without a 64-bit entry (no XLF_KERNEL_64 in xloadflags)");
	bz_init(&z);
	z.b[LOADFLAGS] = 0;
	bz_fails(&z, "is a zImage (loadflags without LOADED_HIGH)");
	bz_init(&z);
	set16(&z, BOOT_FLAG, 0);
	bz_fails(&z, "boot_flag 0x0000, not 0xaa55");
	bz_init(&z);
	set32(&z, KERNEL_ALIGNMENT, 0x300000);
	bz_fails(&z, "kernel_alignment 0x300000 is not a power of two from 4 KiB to 1 GiB");
	set32(&z, KERNEL_ALIGNMENT, 0);
	bz_fails(&z, "kernel_alignment 0x0 is not a power of two");
	set32(&z, KERNEL_ALIGNMENT, 0x80000000);
	bz_fails(&z, "kernel_alignment 0x80000000 is not a power of two from 4 KiB to 1 GiB");
}

static void test_header_bounds(void **state)
{
	struct bz z;

	(void)state;
	/* The header's own length (the jump at 0x200) against the protocol and the file */
	bz_init(&z);
	z.b[JUMP + 1] = 0x60;
	bz_fails(&z, "the setup header ends at 0x262, protocol 2.15 needs 0x26c");
	z.b[JUMP + 1] = 0x66;		/* 0x268: enough for 2.12-2.14, not for 2.15 */
	bz_fails(&z, "the setup header ends at 0x268, protocol 2.15 needs 0x26c");
	bz_init(&z);
	z.size = 0x240;			/* "HdrS" and the version, the rest cut off */
	bz_fails(&z, "the setup header ends at 0x26c, protocol 2.15 needs 0x26c in a 576-byte file");
	z.size = 0x207;
	bz_fails(&z, "the bzImage setup header is cut short at 519 bytes");

	/* setup_sects: where the kernel starts */
	bz_init(&z);
	z.b[SETUP_SECTS_OFF] = 200;
	bz_fails(&z, "setup_sects 200 puts the kernel at byte 102912 of a 10852-byte file");
	bz_init(&z);
	z.size = SETUP_SIZE - 1;
	bz_fails(&z, "setup_sects 4 puts the kernel at byte 2560 of a 2559-byte file");

	/* syssize: how long the kernel is; 32 bits times 16 must not wrap */
	bz_init(&z);
	set32(&z, SYSSIZE, (KSIZE + SIG_SIZE) / 16 + 1);
	bz_fails(&z, "syssize 0x207 (8304 bytes) runs past the 8292 bytes of the file after the "
		 "setup code");
	set32(&z, SYSSIZE, 0xffffffff);
	bz_fails(&z, "syssize 0xffffffff (68719476720 bytes) runs past");
	set32(&z, SYSSIZE, 0x20);
	bz_fails(&z, "syssize 0x20: a kernel of 512 bytes has no 64-bit entry at 0x200");
	set32(&z, SYSSIZE, 0);
	bz_fails(&z, "syssize 0x0: a kernel of 0 bytes has no 64-bit entry at 0x200");

	/* Fields pointing into the kernel */
	bz_init(&z);
	set32(&z, PAYLOAD_OFFSET, 0xffffffff);
	bz_fails(&z, "payload_offset 0xffffffff + payload_length 0x1000 lies outside the 8192-byte "
		 "kernel");
	set32(&z, PAYLOAD_OFFSET, 1);
	set32(&z, PAYLOAD_LENGTH, KSIZE);
	bz_fails(&z, "payload_offset 0x1 + payload_length 0x2000 lies outside");
	set32(&z, PAYLOAD_OFFSET, 0);
	set32(&z, PAYLOAD_LENGTH, 0xffffffff);
	bz_fails(&z, "payload_length 0xffffffff lies outside");
	bz_init(&z);
	set32(&z, HANDOVER_OFFSET, KSIZE - 0x200);
	bz_fails(&z, "handover_offset 0x1e00 lies outside the 8192-byte kernel");
	set32(&z, HANDOVER_OFFSET, 0xffffffff);
	bz_fails(&z, "handover_offset 0xffffffff lies outside");
	bz_init(&z);
	set32(&z, KERNEL_INFO_OFFSET, KSIZE - 15);
	bz_fails(&z, "kernel_info_offset 0x1ff1 lies outside the 8192-byte kernel");
	set32(&z, KERNEL_INFO_OFFSET, 0xfffffff8);
	bz_fails(&z, "kernel_info_offset 0xfffffff8 lies outside");

	/* init_size: the loaded kernel must fit in what the placement checks */
	bz_init(&z);
	set32(&z, INIT_SIZE_OFF, KSIZE - 1);
	bz_fails(&z, "init_size 0x1fff is smaller than the 8192-byte kernel");
}

static void test_neither(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not a kernel\n";
	uint8_t pe[0x400] = { 'M', 'Z' }, elf[64] = { 0x7f, 'E', 'L', 'F' };

	(void)state;
	load_fails(text, sizeof(text) - 1, "is neither an ELF image with a PVH note nor a Linux "
		   "bzImage");
	load_fails(pe, sizeof(pe), "is neither an ELF image with a PVH note nor a Linux bzImage");
	load_fails("HdrS", 4, "is neither");
	/* An ELF goes to PVH, which says what is wrong with it */
	load_fails(elf, sizeof(elf), "is not an x86_64 ELF image");
}

/* ---- placement, against layouts ---- */

static void one_zone(struct vm_config *c, uint64_t size)
{
	memset(c, 0, sizeof(*c));
	c->boot_cpus = c->max_cpus = 1;
	c->memory.thp = true;
	c->memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	c->nzones = 1;
	c->zones[0] = (struct zone_config){ .id = "z", .size = size, .host_numa_node = -1,
					    .guest_node = -1 };
}

static void build(struct layout *l, uint64_t size)
{
	static struct vm_config c;
	char err[256] = "";

	one_zone(&c, size);
	if (layout__build(l, &c, err, sizeof(err)))
		fail_msg("layout__build: %s", err);
}

static const char *initramfs_file(size_t size)
{
	const char *path = tmpdir_path("initramfs");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	if (size >= 9) {
		assert_int_equal(pwrite(fd, "070701", 6, 0), 6);
		assert_int_equal(pwrite(fd, "END", 3, (off_t)size - 3), 3);
	}
	assert_int_equal(close(fd), 0);
	return path;
}

/* -1 when refused (err checked against expect), else the load address. */
static int64_t place(const struct bz *z, const struct layout *l, size_t initrd, const char *expect,
		     uint64_t *initrd_addr)
{
	char err[256] = "";
	struct boot_image *img = load_ok(z);
	int64_t r;

	if (initrd)
		assert_int_equal(boot__load_initramfs(img, initramfs_file(initrd), err,
						      sizeof(err)), 0);
	r = boot__check_kernel(img, l, err, sizeof(err)) ? -1 : (int64_t)img->bz.load_addr;
	if (initrd_addr)
		*initrd_addr = img->initramfs_addr;
	boot__free(img);
	if (expect && r >= 0)
		fail_msg("accepted, expected '%s'", expect);
	if (!expect && r < 0)
		fail_msg("refused: %s", err);
	if (expect && !strstr(err, expect))
		fail_msg("error '%s' does not mention '%s'", err, expect);
	return r;
}

static void test_place_kernel(void **state)
{
	static struct layout l;
	struct bz z;

	(void)state;
	build(&l, 512 * MiB);
	bz_init(&z);
	assert_int_equal(place(&z, &l, 0, NULL, NULL), PREF);
	/* A relocatable kernel aligns itself up: we load it where it will decompress */
	set64(&z, PREF_ADDRESS, PREF + 0x100000);
	assert_int_equal(place(&z, &l, 0, NULL, NULL), PREF + ALIGNMENT);
	/* One that is not runs where it is linked */
	z.b[RELOCATABLE] = 0;
	assert_int_equal(place(&z, &l, 0, NULL, NULL), PREF + 0x100000);

	bz_init(&z);
	set64(&z, PREF_ADDRESS, 0x80000);
	place(&z, &l, 0, "--kernel: '", NULL);
	place(&z, &l, 0, "pref_address 0x80000 is below 1 MiB, where the boot data is", NULL);

	/* [pref_address, + init_size) in the first RAM range: to the byte */
	bz_init(&z);
	build(&l, PREF + INIT_SIZE);
	assert_int_equal(place(&z, &l, 0, NULL, NULL), PREF);
	build(&l, PREF + INIT_SIZE - 0x1000);
	place(&z, &l, 0, "needs 0x400000 bytes (init_size) of RAM at 0x1000000 (pref_address); "
	      "the first RAM range ends at 0x13ff000", NULL);
	set32(&z, INIT_SIZE_OFF, 0xffffffff);
	place(&z, &l, 0, "needs 0xffffffff bytes (init_size) of RAM at 0x1000000", NULL);

	/* Never above the 32-bit hole, though RAM is there */
	build(&l, 4 * GiB + 512 * MiB);
	bz_init(&z);
	set64(&z, PREF_ADDRESS, RAM_64BIT_START);
	place(&z, &l, 0, "of RAM at 0x100000000 (pref_address); the first RAM range ends at "
	      "0xc0000000", NULL);
	set64(&z, PREF_ADDRESS, MMIO32_START - INIT_SIZE / 2);
	place(&z, &l, 0, "the first RAM range ends at 0xc0000000", NULL);
	/* An address that would wrap when aligned up or when init_size is added */
	set64(&z, PREF_ADDRESS, UINT64_MAX - 0xfff);
	place(&z, &l, 0, "(pref_address); the first RAM range ends", NULL);
	z.b[RELOCATABLE] = 0;
	place(&z, &l, 0, "(pref_address); the first RAM range ends", NULL);
}

static void test_place_initramfs(void **state)
{
	static struct layout l;
	uint64_t addr;
	struct bz z;

	(void)state;
	bz_init(&z);
	/* High in the first RAM range, page aligned */
	build(&l, 512 * MiB);
	place(&z, &l, 100 * KiB + 1, NULL, &addr);
	assert_int_equal(addr, (512 * MiB - (100 * KiB + 1)) & ~0xfffULL);
	/* The first RAM range ends at the hole: never above it */
	build(&l, 4 * GiB);
	set32(&z, INITRD_ADDR_MAX, 0xffffffff);
	place(&z, &l, 4096, NULL, &addr);
	assert_int_equal(addr, MMIO32_START - 4096);
	/* Below initrd_addr_max: its last byte may be initrd_addr_max */
	set32(&z, INITRD_ADDR_MAX, 0x7fffffff);
	place(&z, &l, 4096, NULL, &addr);
	assert_int_equal(addr, 0x80000000 - 4096);
	set32(&z, INITRD_ADDR_MAX, 0x7ffffffe);
	place(&z, &l, 4096, NULL, &addr);
	assert_int_equal(addr, 0x80000000 - 2 * 4096);

	/* Above the kernel's init_size: 4 MiB fit above 16 + 4 MiB in 24 MiB, one byte more not */
	bz_init(&z);
	build(&l, 24 * MiB);
	place(&z, &l, 4 * MiB, NULL, &addr);
	assert_int_equal(addr, PREF + INIT_SIZE);
	place(&z, &l, 4 * MiB + 1, "--initramfs: 4194305 bytes do not fit in the first RAM range "
	      "above the kernel and below initrd_addr_max 0x7fffffff", NULL);
	/* initrd_addr_max below the end of the kernel's area: nothing fits */
	build(&l, 512 * MiB);
	set32(&z, INITRD_ADDR_MAX, PREF + INIT_SIZE - 1);
	place(&z, &l, 1, "--initramfs: 1 bytes do not fit in the first RAM range above the kernel "
	      "and below initrd_addr_max 0x13fffff", NULL);
	set32(&z, INITRD_ADDR_MAX, 0);
	place(&z, &l, 1, "below initrd_addr_max 0x0", NULL);
}

static void test_cmdline(void **state)
{
	static const char *const refused = "--cmdline: 256 bytes, this kernel takes at most 255 "
					   "(its cmdline_size)";
	char err[256] = "", line[BOOT_CMDLINE_MAX + 1];
	struct boot_image *img;
	struct bz z;

	(void)state;
	bz_init(&z);
	img = load_ok(&z);
	memset(line, 'x', sizeof(line));
	line[255] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), 0);
	assert_int_equal(boot__check_cmdline(img, NULL, err, sizeof(err)), 0);
	line[255] = 'x';
	line[256] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), -1);
	assert_string_equal(err, refused);
	boot__free(img);

	/* cmdline_size 0: only the empty line */
	set32(&z, CMDLINE_SIZE, 0);
	img = load_ok(&z);
	assert_int_equal(boot__check_cmdline(img, "", err, sizeof(err)), 0);
	assert_int_equal(boot__check_cmdline(img, "a", err, sizeof(err)), -1);
	assert_string_equal(err, "--cmdline: 1 bytes, this kernel takes at most 0 (its "
			    "cmdline_size)");
	boot__free(img);

	/* A kernel that takes anything still gets no more than memvisor has room for */
	set32(&z, CMDLINE_SIZE, 0xffffffff);
	img = load_ok(&z);
	memset(line, 'x', sizeof(line));
	line[BOOT_CMDLINE_MAX - 1] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), 0);
	line[BOOT_CMDLINE_MAX - 1] = 'x';
	line[BOOT_CMDLINE_MAX] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), -1);
	assert_string_equal(err, "--cmdline: 65536 bytes, at most 65535");
	boot__free(img);
}

/* ---- what boot__setup writes ---- */

/* Follow the identity map from cr3 for one address: the physical address it maps to. */
static uint64_t walk(const uint8_t *ram, uint64_t cr3, uint64_t va)
{
	uint64_t e = get64(ram + cr3 + 8 * ((va >> 39) & 511));

	assert_int_equal(e & 3, 3);
	e = get64(ram + (e & ~0xfffULL) + 8 * ((va >> 30) & 511));
	assert_int_equal(e & 3, 3);
	e = get64(ram + (e & ~0xfffULL) + 8 * ((va >> 21) & 511));
	assert_int_equal(e & 0x83, 0x83);		/* a 2 MiB page */
	return (e & ~0x1fffffULL) | (va & 0x1fffff);
}

static struct vm setup_vm;

/* A VM with one zone of size bytes of anonymous memory; ram is its host mapping. */
static uint8_t *vm_with_ram(uint64_t size, char *cmdline)
{
	struct host_info h = { .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	char err[256] = "";

	memset(&setup_vm, 0, sizeof(setup_vm));
	one_zone(&setup_vm.cfg, size);
	setup_vm.cfg.cmdline = cmdline;
	if (layout__build(&setup_vm.layout, &setup_vm.cfg, err, sizeof(err)))
		fail_msg("layout__build: %s", err);
	if (backing__create(&setup_vm.backings[0], &setup_vm.cfg, &setup_vm.cfg.zones[0], size, &h,
			    err, sizeof(err)))
		fail_msg("backing__create: %s", err);
	setup_vm.nbackings = 1;
	return setup_vm.backings[0].host;
}

static void check_e820(const uint8_t *bp, const struct layout *l)
{
	struct e820_entry want[128];	/* what the zero page holds */
	int n = layout__e820(l, want, (int)ARRAY_SIZE(want));

	assert_true(n >= 3);
	assert_int_equal(bp[BP_E820_ENTRIES], n);
	for (int i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + 20 * i;

		assert_int_equal(get64(e), want[i].addr);
		assert_int_equal(get64(e + 8), want[i].size);
		assert_int_equal(get32(e + 16), want[i].type);
	}
}

static void test_setup(void **state)
{
	char err[256] = "", cmdline[] = "console=ttyS0 earlyprintk=serial,ttyS0,115200";
	const size_t initrd = 300 * KiB + 7;
	struct boot_image *img;
	uint8_t *ram, *bp;
	struct bz z;

	(void)state;
	bz_init(&z);
	ram = vm_with_ram(64 * MiB, cmdline);
	img = load_ok(&z);
	assert_int_equal(boot__load_initramfs(img, initramfs_file(initrd), err, sizeof(err)), 0);
	assert_int_equal(boot__check_kernel(img, &setup_vm.layout, err, sizeof(err)), 0);
	assert_int_equal(boot__check_cmdline(img, cmdline, err, sizeof(err)), 0);
	if (boot__setup(&setup_vm, img, err, sizeof(err)) < 0)
		fail_msg("boot__setup: %s", err);
	boot__free(img);

	/* The protected-mode kernel at pref_address; its signature stays behind */
	assert_memory_equal(ram + PREF, z.b + SETUP_SIZE, KSIZE);
	assert_int_equal(ram[PREF + KSIZE], 0);

	/* The 64-bit entry: load address + 0x200, rsi = zero page, paging on our identity map */
	assert_int_equal(setup_vm.boot_cpu.mode, BOOT_CPU_LONG64);
	assert_int_equal(setup_vm.boot_cpu.rip, PREF + 0x200);
	assert_int_equal(setup_vm.boot_cpu.rsi, LINUX_BOOT_PARAMS_ADDR);
	assert_int_equal(setup_vm.boot_cpu.cr3, LINUX_PAGE_TABLES_ADDR);
	for (uint64_t va = 0; va < 4 * GiB; va += 0x1fff000 + 0x123)
		assert_int_equal(walk(ram, setup_vm.boot_cpu.cr3, va), va);
	assert_int_equal(walk(ram, setup_vm.boot_cpu.cr3, 4 * GiB - 1), 4 * GiB - 1);

	bp = ram + LINUX_BOOT_PARAMS_ADDR;
	/* The header as in the file (what head_64.S reads: kernel_alignment, init_size) */
	assert_memory_equal(bp + MAGIC, "HdrS", 4);
	assert_int_equal(get16(bp + VERSION), 0x020f);
	assert_int_equal(get32(bp + KERNEL_ALIGNMENT), ALIGNMENT);
	assert_int_equal(get32(bp + INIT_SIZE_OFF), INIT_SIZE);
	assert_int_equal(get64(bp + PREF_ADDRESS), PREF);
	assert_memory_equal(bp + KERNEL_INFO_OFFSET, z.b + KERNEL_INFO_OFFSET, 4);
	assert_int_equal(bp[0x26c], 0);			/* nothing past the header's end */
	assert_int_equal(bp[BP_SENTINEL], 0);
	/* What the loader fills in */
	assert_int_equal(bp[TYPE_OF_LOADER], 0xff);
	assert_int_equal(get32(bp + CODE32_START), PREF);
	assert_int_equal(get64(bp + SETUP_DATA), 0);
	assert_int_equal(get32(bp + CMD_LINE_PTR), BOOT_CMDLINE_ADDR);
	assert_int_equal(get32(bp + BP_EXT_CMD_LINE_PTR), 0);
	assert_string_equal((char *)ram + BOOT_CMDLINE_ADDR, cmdline);
	assert_int_equal(get32(bp + RAMDISK_IMAGE), (64 * MiB - initrd) & ~0xfffULL);
	assert_int_equal(get32(bp + RAMDISK_SIZE), initrd);
	assert_int_equal(get32(bp + BP_EXT_RAMDISK_IMAGE), 0);
	assert_int_equal(get32(bp + BP_EXT_RAMDISK_SIZE), 0);
	assert_memory_equal(ram + get32(bp + RAMDISK_IMAGE), "070701", 6);
	assert_memory_equal(ram + get32(bp + RAMDISK_IMAGE) + initrd - 3, "END", 3);
	/* The RSDP where acpi_rsdp_addr says, which is also where a scan of 0xe0000 finds it */
	assert_int_equal(get64(bp + BP_ACPI_RSDP), ACPI_TABLES_ADDR);
	assert_int_equal(ACPI_TABLES_ADDR, 0xe0000);
	assert_memory_equal(ram + ACPI_TABLES_ADDR, "RSD PTR ", 8);
	/* The same E820 map as the PVH path: [0, 640K) RAM, [640K, 1M) reserved, then RAM */
	check_e820(bp, &setup_vm.layout);
	assert_int_equal(get64(bp + BP_E820_TABLE + 20), 0xa0000);
	assert_int_equal(get32(bp + BP_E820_TABLE + 20 + 16), E820_RESERVED);
	assert_int_equal(get64(bp + BP_E820_TABLE + 40), HIGH_RAM_START);
	assert_int_equal(get64(bp + BP_E820_TABLE + 48), 63 * MiB);
	backing__destroy(&setup_vm.backings[0]);
}

static void test_setup_older(void **state)
{
	char err[256] = "";
	struct boot_image *img;
	uint8_t *ram, *bp;
	struct bz z;

	(void)state;
	/* 2.13: no acpi_rsdp_addr; the RSDP is found by the scan of 0xe0000-0xfffff */
	bz_init(&z);
	set16(&z, VERSION, 0x020d);
	z.b[JUMP + 1] = 0x66;
	ram = vm_with_ram(32 * MiB, NULL);
	img = load_ok(&z);
	assert_int_equal(boot__check_kernel(img, &setup_vm.layout, err, sizeof(err)), 0);
	if (boot__setup(&setup_vm, img, err, sizeof(err)) < 0)
		fail_msg("boot__setup: %s", err);
	boot__free(img);
	bp = ram + LINUX_BOOT_PARAMS_ADDR;
	assert_int_equal(get64(bp + BP_ACPI_RSDP), 0);
	assert_memory_equal(ram + 0xe0000, "RSD PTR ", 8);
	/* Header copied up to 0x268 only; no initramfs, an empty command line */
	assert_int_equal(get32(bp + KERNEL_INFO_OFFSET), 0);
	assert_int_equal(get32(bp + RAMDISK_IMAGE), 0);
	assert_int_equal(get32(bp + RAMDISK_SIZE), 0);
	assert_string_equal((char *)ram + get32(bp + CMD_LINE_PTR), "");
	check_e820(bp, &setup_vm.layout);
	backing__destroy(&setup_vm.backings[0]);
}

/* ---- Debian's kernel, when ci/testhost has fetched it ---- */

static char *debian_kernel(void)
{
	glob_t g;
	char *path = NULL;

	if (glob(DEBIAN_KERNEL_GLOB, 0, NULL, &g) == 0 && g.gl_pathc > 0)
		path = strdup(g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return path;
}

static void test_debian_kernel(void **state)
{
	char err[256] = "", line[2049];
	static struct layout l;
	struct boot_image *img;
	uint8_t *ram, *bp;
	char *path = debian_kernel();

	(void)state;
	if (!path) {
		print_message("no %s: ci/testhost fetches it; the synthetic images above cover "
			      "every check\n", DEBIAN_KERNEL_GLOB);
		skip();
	}
	img = boot__load_kernel(path, err, sizeof(err));
	if (!img)
		fail_msg("%s refused: %s", path, err);
	assert_ptr_equal(img->proto, &bzimage_proto);
	assert_true(img->bz.version >= 0x020c);
	assert_true(img->bz.relocatable);
	assert_true(img->bz.pref_address >= 16 * MiB);
	assert_true(img->bz.init_size > img->bz.kernel_size);
	assert_true(img->bz.setup_size + img->bz.kernel_size <= img->file_size);
	/* Debian's 6.1 is XZ-compressed (CONFIG_KERNEL_XZ): the payload is where the header says */
	assert_memory_equal(img->file + img->bz.setup_size + get32(img->file + PAYLOAD_OFFSET),
			    "\xfd" "7zXZ", 6);
	/* cmdline_size 2047 (0x7ff) */
	memset(line, 'x', sizeof(line));
	line[img->bz.cmdline_size] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), 0);
	line[img->bz.cmdline_size] = 'x';
	line[img->bz.cmdline_size + 1] = 0;
	assert_int_equal(boot__check_cmdline(img, line, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "(its cmdline_size)"));

	/* 64 MiB cannot hold pref_address + init_size; 512 MiB can */
	build(&l, 64 * MiB);
	assert_int_equal(boot__check_kernel(img, &l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bytes (init_size) of RAM at 0x1000000 (pref_address)"));
	boot__free(img);

	ram = vm_with_ram(512 * MiB, "console=ttyS0 panic=-1");
	img = boot__load_kernel(path, err, sizeof(err));
	assert_non_null(img);
	assert_int_equal(boot__load_initramfs(img, initramfs_file(3 * MiB), err, sizeof(err)), 0);
	assert_int_equal(boot__check_kernel(img, &setup_vm.layout, err, sizeof(err)), 0);
	assert_int_equal(img->bz.load_addr, img->bz.pref_address);
	assert_int_equal(img->initramfs_addr, 509 * MiB);
	if (boot__setup(&setup_vm, img, err, sizeof(err)) < 0)
		fail_msg("boot__setup: %s", err);
	assert_memory_equal(ram + img->bz.load_addr, img->file + img->bz.setup_size,
			    img->bz.kernel_size);
	assert_int_equal(setup_vm.boot_cpu.rip, img->bz.pref_address + 0x200);
	bp = ram + LINUX_BOOT_PARAMS_ADDR;
	/* The header byte for byte but the loader's fields */
	assert_memory_equal(bp + 0x1f1, img->file + 0x1f1, TYPE_OF_LOADER - 0x1f1);
	assert_memory_equal(bp + CMDLINE_SIZE, img->file + CMDLINE_SIZE, SETUP_DATA - CMDLINE_SIZE);
	assert_memory_equal(bp + PREF_ADDRESS, img->file + PREF_ADDRESS, img->bz.hdr_end -
			    PREF_ADDRESS);
	assert_int_equal(get32(bp + RAMDISK_IMAGE), 509 * MiB);
	assert_int_equal(get32(bp + RAMDISK_SIZE), 3 * MiB);
	assert_string_equal((char *)ram + get32(bp + CMD_LINE_PTR), "console=ttyS0 panic=-1");
	assert_int_equal(get64(bp + BP_ACPI_RSDP), ACPI_TABLES_ADDR);
	check_e820(bp, &setup_vm.layout);
	boot__free(img);
	backing__destroy(&setup_vm.backings[0]);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_version_and_flags),
		cmocka_unit_test(test_header_bounds),
		cmocka_unit_test(test_neither),
		cmocka_unit_test(test_place_kernel),
		cmocka_unit_test(test_place_initramfs),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_setup),
		cmocka_unit_test(test_setup_older),
		cmocka_unit_test(test_debian_kernel),
	};

	return cmocka_run_group_tests_name("bzimage", tests, tmpdir_setup, tmpdir_teardown);
}
