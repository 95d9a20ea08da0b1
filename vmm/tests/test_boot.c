/*
 * boot__load_kernel, boot__load_initramfs, boot__check_kernel and boot__setup, no KVM: crafted
 * ELF images written to temporary files (each header field that a sum could wrap), the checks
 * against the layout that run before any memory is mapped, and what boot__setup leaves in guest
 * memory when those checks passed.
 */
#include <elf.h>
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

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578

/* Offsets inside the crafted image. */
#define NOTE_OFF 0x200
#define LOAD_OFF 0x400
#define LOAD_FILESZ 0x100
#define IMAGE_SIZE 0x500
#define ENTRY 0x100040


struct image {
	uint8_t b[IMAGE_SIZE];
	size_t size;
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];	/* PT_NOTE, PT_LOAD */
};

/* A minimal PVH kernel: one Xen PHYS32_ENTRY note, one PT_LOAD at 1 MiB with some bss. */
static void image_init(struct image *im)
{
	memset(im, 0, sizeof(*im));
	im->size = IMAGE_SIZE;
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_ehsize = sizeof(Elf64_Ehdr);
	im->eh.e_phoff = sizeof(Elf64_Ehdr);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 2;
	im->ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_filesz = 20,
				  .p_memsz = 20 };
	im->ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = LOAD_OFF, .p_paddr = HIGH_RAM_START,
				  .p_filesz = LOAD_FILESZ, .p_memsz = 0x2000 };
	for (int i = 0; i < LOAD_FILESZ; i++)
		im->b[LOAD_OFF + i] = (uint8_t)(i * 7 + 1);
}

static void put_note(struct image *im, size_t off, uint32_t namesz, uint32_t descsz,
		     uint32_t type)
{
	Elf64_Nhdr n = { .n_namesz = namesz, .n_descsz = descsz, .n_type = type };
	uint32_t entry = ENTRY;

	memcpy(im->b + off, &n, sizeof(n));
	memcpy(im->b + off + sizeof(n), "Xen", 4);
	memcpy(im->b + off + sizeof(n) + 4, &entry, 4);
}

/* Headers into the buffer (at any offset: memcpy), then the buffer into a file. */
static const char *image_write(struct image *im, const char *name)
{
	if (im->eh.e_phoff <= sizeof(im->b) - sizeof(im->ph))	/* no wrap here either */
		memcpy(im->b + im->eh.e_phoff, im->ph, sizeof(im->ph));
	memcpy(im->b, &im->eh, sizeof(im->eh));
	return tmpdir_write(name, im->b, im->size);
}

static struct boot_image *load_ok(struct image *im)
{
	char err[256] = "";
	struct boot_image *img = boot__load_kernel(image_write(im, "ok.elf"), err, sizeof(err));

	if (!img)
		fail_msg("refused: %s", err);
	return img;
}

static void load_fails(struct image *im, const char *expect)
{
	char err[256] = "";
	struct boot_image *img = boot__load_kernel(image_write(im, "bad.elf"), err, sizeof(err));

	if (img) {
		boot__free(img);
		fail_msg("accepted, expected '%s'", expect);
	}
	if (!strstr(err, expect))
		fail_msg("error '%s' does not mention '%s'", err, expect);
	assert_true(!strncmp(err, "--kernel: ", 10));
}

static void test_valid_image(void **state)
{
	struct image im;

	(void)state;
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	boot__free(load_ok(&im));

	/* Headers and notes at odd offsets: read with memcpy, UBSan has nothing to say. */
	im.eh.e_phoff = sizeof(Elf64_Ehdr) + 1;
	im.ph[0].p_offset = NOTE_OFF + 1;
	put_note(&im, NOTE_OFF + 1, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	boot__free(load_ok(&im));

	/* Another note before the PVH one is skipped. */
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, 1);
	put_note(&im, NOTE_OFF + 20, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	im.ph[0].p_filesz = im.ph[0].p_memsz = 40;
	boot__free(load_ok(&im));
}

static void test_program_headers(void **state)
{
	struct image im;

	(void)state;
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	/* e_phoff + e_phnum * 56 wraps past 2^64 to a small number */
	im.eh.e_phoff = UINT64_MAX - 55;
	load_fails(&im, "truncated or malformed program header table");
	im.eh.e_phoff = IMAGE_SIZE + 1;
	load_fails(&im, "truncated or malformed program header table");
	im.eh.e_phoff = IMAGE_SIZE - sizeof(Elf64_Phdr) + 1;	/* the last one cut short */
	im.eh.e_phnum = 1;
	load_fails(&im, "truncated or malformed program header table");
	im.eh.e_phoff = sizeof(Elf64_Ehdr);
	im.eh.e_phnum = 0xffff;
	load_fails(&im, "truncated or malformed program header table");
	im.eh.e_phnum = 2;
	im.eh.e_phentsize = 32;		/* headers would be read at the wrong stride */
	load_fails(&im, "truncated or malformed program header table");
	im.eh.e_phentsize = sizeof(Elf64_Phdr) + 8;
	load_fails(&im, "truncated or malformed program header table");

	image_init(&im);
	im.eh.e_machine = EM_386;
	load_fails(&im, "is not an x86_64 ELF image");
	image_init(&im);
	im.size = sizeof(Elf64_Ehdr) - 1;
	load_fails(&im, "is not an x86_64 ELF image");
}

static void test_segments(void **state)
{
	struct image im;

	(void)state;
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	/* p_offset + p_filesz wraps to 0 */
	im.ph[1].p_filesz = im.ph[1].p_memsz = UINT64_MAX - LOAD_OFF + 1;
	load_fails(&im, "segment 1 lies outside the file");
	im.ph[1].p_offset = UINT64_MAX;
	im.ph[1].p_filesz = 2;
	load_fails(&im, "segment 1 lies outside the file");
	im.ph[1].p_offset = IMAGE_SIZE - 1;	/* one byte too many */
	load_fails(&im, "segment 1 lies outside the file");
	im.ph[1].p_offset = IMAGE_SIZE - 2;
	boot__free(load_ok(&im));
	im.ph[1].p_memsz = 1;			/* filesz > memsz */
	load_fails(&im, "segment 1 lies outside the file");

	/* The note segment is checked before it is parsed. */
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	im.ph[0].p_filesz = UINT64_MAX - NOTE_OFF + 1;
	im.ph[0].p_memsz = UINT64_MAX;
	load_fails(&im, "segment 0 lies outside the file");
}

static void test_notes(void **state)
{
	static const struct { uint32_t namesz, descsz; size_t filesz; } bad[] = {
		{ 0xffffffff, 4, 20 },		/* name size wraps a 32-bit sum */
		{ 4, 0xfffffffd, 20 },		/* so does the descriptor's */
		{ 0xfffffff0, 0xfffffff0, 20 },
		{ 4, 4, 19 },			/* descriptor cut short */
		{ 4, 4, 11 },			/* the note header itself cut short */
		{ 4, 2, 20 },			/* an entry of neither 4 nor 8 bytes */
	};
	struct image im;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		image_init(&im);
		put_note(&im, NOTE_OFF, bad[i].namesz, bad[i].descsz, XEN_ELFNOTE_PHYS32_ENTRY);
		im.ph[0].p_filesz = im.ph[0].p_memsz = bad[i].filesz;
		load_fails(&im, "has no PVH entry note");
	}
	/* The note at the very end of the file: bounds are the segment's, not beyond. */
	image_init(&im);
	put_note(&im, IMAGE_SIZE - 20, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	im.ph[0].p_offset = IMAGE_SIZE - 20;
	im.ph[1].p_filesz = 0x10;
	boot__free(load_ok(&im));
	im.ph[0].p_filesz = 21;
	load_fails(&im, "segment 0 lies outside the file");
}

static void test_not_regular(void **state)
{
	char err[256] = "", path[128];

	(void)state;
	assert_null(boot__load_kernel(tmpdir, err, sizeof(err)));
	assert_non_null(strstr(err, "is not a non-empty regular file"));
	snprintf(path, sizeof(path), "%s", tmpdir_write("empty", "", 0));
	assert_null(boot__load_kernel(path, err, sizeof(err)));
	assert_non_null(strstr(err, "is not a non-empty regular file"));
	assert_null(boot__load_kernel("/nonexistent/vmlinux", err, sizeof(err)));
	assert_string_equal(err, "--kernel: cannot open '/nonexistent/vmlinux': No such file or "
			    "directory");
}

/* ---- checks against the layout ---- */

static void one_zone(struct vm_config *c, uint64_t size, uint64_t hotplug)
{
	memset(c, 0, sizeof(*c));
	c->boot_cpus = c->max_cpus = 1;
	c->memory.thp = true;
	c->memory.hotplug_method = HOTPLUG_VIRTIO_MEM;
	c->nzones = 1;
	c->zones[0] = (struct zone_config){ .id = "z", .size = size, .hotplug_size = hotplug,
					    .host_numa_node = -1, .guest_node = -1 };
}

static void build(struct layout *l, const struct vm_config *c)
{
	char err[256] = "";

	if (layout__build(l, c, err, sizeof(err)))
		fail_msg("layout__build: %s", err);
}

static void check_segment(const struct layout *l, uint64_t paddr, uint64_t memsz, bool ok)
{
	char err[256] = "";
	struct boot_image *img;
	struct image im;
	int r;

	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	im.ph[1].p_paddr = paddr;
	im.ph[1].p_memsz = memsz;
	img = load_ok(&im);
	r = boot__check_kernel(img, l, err, sizeof(err));
	boot__free(img);
	if (ok && r)
		fail_msg("0x%llx+0x%llx refused: %s", (unsigned long long)paddr,
			 (unsigned long long)memsz, err);
	if (!ok && !r)
		fail_msg("0x%llx+0x%llx accepted", (unsigned long long)paddr,
			 (unsigned long long)memsz);
	if (!ok)
		assert_non_null(strstr(err, "--kernel: segment at 0x"));
}

static void test_check_kernel(void **state)
{
	static struct vm_config c;
	static struct layout l;

	(void)state;
	one_zone(&c, 64 * MiB, 128 * MiB);
	build(&l, &c);
	check_segment(&l, HIGH_RAM_START, 0x2000, true);
	check_segment(&l, 64 * MiB - 0x2000, 0x2000, true);	/* ends at the end of RAM */
	check_segment(&l, 0x80000, 0x2000, false);		/* boot data below 1 MiB */
	check_segment(&l, HIGH_RAM_START - 0x1000, 0x2000, false);
	check_segment(&l, 64 * MiB - 0x1000, 0x2000, false);	/* beyond boot RAM */
	check_segment(&l, 0x100000000ULL, 0x2000, false);	/* the virtio-mem region */
	check_segment(&l, UINT64_MAX - 0xfff, 0x2000, false);	/* paddr + memsz wraps */
	check_segment(&l, HIGH_RAM_START, UINT64_MAX, false);

	/* RAM split by the 32-bit hole: a segment may not straddle it */
	one_zone(&c, 4 * GiB, 0);
	build(&l, &c);
	check_segment(&l, MMIO32_START - 0x1000, 0x2000, false);
	check_segment(&l, MMIO32_START - 0x2000, 0x2000, true);
}

static const char *initramfs_file(size_t size)
{
	const char *path = tmpdir_path("initramfs");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, "INITRD", 6, 0), 6);
	assert_int_equal(close(fd), 0);
	return path;
}

static void test_initramfs_checks(void **state)
{
	static struct vm_config c;
	static struct layout l;
	char err[256] = "", path[128];
	struct boot_image *img;
	struct image im;

	(void)state;
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	img = load_ok(&im);
	assert_int_equal(boot__load_initramfs(img, tmpdir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--initramfs: "));
	assert_non_null(strstr(err, "is not a non-empty regular file"));
	snprintf(path, sizeof(path), "%s", tmpdir_write("empty-initrd", "", 0));
	assert_int_equal(boot__load_initramfs(img, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a non-empty regular file"));

	/* 2 MiB of RAM, a kernel ending at 1 MiB + 8 KiB: 1 MiB - 8 KiB fits above it, no more. */
	one_zone(&c, 2 * MiB, 0);
	build(&l, &c);
	assert_int_equal(boot__load_initramfs(img, initramfs_file(MiB - 8 * KiB), err, sizeof(err)),
			 0);
	if (boot__check_kernel(img, &l, err, sizeof(err)))
		fail_msg("refused: %s", err);
	boot__free(img);

	img = load_ok(&im);
	assert_int_equal(boot__load_initramfs(img, initramfs_file(MiB - 8 * KiB + 1), err,
					      sizeof(err)), 0);
	assert_int_equal(boot__check_kernel(img, &l, err, sizeof(err)), -1);
	assert_string_equal(err, "--initramfs: 1040385 bytes do not fit in the first RAM range "
			    "above the kernel");
	boot__free(img);
}

/* Everything checked before mapping; boot__setup then writes it all where it was placed. */
static void test_setup_writes_guest_memory(void **state)
{
	static struct vm vm;
	struct hvm_start { uint32_t magic, version, flags, nr_modules;
			   uint64_t modlist, cmdline, rsdp, memmap; uint32_t nmemmap, r; } si;
	struct hvm_mod { uint64_t paddr, size, cmdline, r; } mods[2];
	struct host_info h = { .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	char err[256] = "", cmdline[] = "console=ttyS0 memtest=off";
	struct boot_image *img;
	struct image im;
	uint8_t *ram;
	uint64_t fdt_magic;

	(void)state;
	memset(&vm, 0, sizeof(vm));
	one_zone(&vm.cfg, 32 * MiB, 0);
	vm.cfg.cmdline = cmdline;
	build(&vm.layout, &vm.cfg);
	image_init(&im);
	put_note(&im, NOTE_OFF, 4, 4, XEN_ELFNOTE_PHYS32_ENTRY);
	img = load_ok(&im);
	assert_int_equal(boot__load_initramfs(img, initramfs_file(100 * KiB + 1), err,
					      sizeof(err)), 0);
	assert_int_equal(boot__check_kernel(img, &vm.layout, err, sizeof(err)), 0);

	if (backing__create(&vm.backings[0], &vm.cfg, &vm.cfg.zones[0], 32 * MiB, &h, err,
			    sizeof(err)))
		fail_msg("backing__create: %s", err);
	vm.nbackings = 1;
	ram = vm.backings[0].host;
	memset(ram + HIGH_RAM_START, 0xcc, 0x2000);	/* the bss must come out zeroed */
	if (boot__setup(&vm, img, err, sizeof(err)) < 0)
		fail_msg("boot__setup: %s", err);
	boot__free(img);

	assert_int_equal(vm.boot_cpu.rip, ENTRY);
	assert_memory_equal(ram + HIGH_RAM_START, im.b + LOAD_OFF, LOAD_FILESZ);
	for (uint64_t i = LOAD_FILESZ; i < 0x2000; i++)
		assert_int_equal(ram[HIGH_RAM_START + i], 0);
	memcpy(&si, ram + PVH_START_INFO_ADDR, sizeof(si));
	assert_int_equal(si.magic, HVM_START_MAGIC);
	assert_int_equal(si.nr_modules, 2);
	assert_string_equal((char *)ram + si.cmdline, cmdline);
	memcpy(mods, ram + si.modlist, sizeof(mods));
	/* the initramfs at the top of RAM, page aligned; the FDT second */
	assert_int_equal(mods[0].paddr, (32 * MiB - (100 * KiB + 1)) & ~0xfffULL);
	assert_int_equal(mods[0].size, 100 * KiB + 1);
	assert_memory_equal(ram + mods[0].paddr, "INITRD", 6);
	assert_int_equal(mods[1].paddr, FDT_ADDR);
	memcpy(&fdt_magic, ram + FDT_ADDR, 4);
	assert_int_equal((uint32_t)fdt_magic, 0xedfe0dd0);	/* 0xd00dfeed, big-endian */
	/* Reset vector: mov dx, 0x602; mov al, 1; out dx, al; cli; hlt; jmp back to the hlt */
	assert_memory_equal(ram + RESET_VECTOR_ADDR, ((const uint8_t[]){ 0xba, 0x02, 0x06, 0xb0,
			    0x01, 0xee, 0xfa, 0xf4, 0xeb, 0xfd }), 10);
	assert_int_equal(ACPI_RESET_PORT, 0x602);
	assert_true(ACPI_TABLES_ADDR + ACPI_TABLES_MAX <= RESET_VECTOR_ADDR);
	backing__destroy(&vm.backings[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_image),
		cmocka_unit_test(test_program_headers),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_check_kernel),
		cmocka_unit_test(test_initramfs_checks),
		cmocka_unit_test(test_setup_writes_guest_memory),
	};

	return cmocka_run_group_tests_name("boot", tests, tmpdir_setup, tmpdir_teardown);
}
