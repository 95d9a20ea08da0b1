/*
 * PVH boot: an ELF kernel carrying XEN_ELFNOTE_PHYS32_ENTRY, entered in 32-bit protected mode
 * with ebx = hvm_start_info, which gives the E820 map, the command line, the modules (initramfs,
 * FDT) and the RSDP.
 */
#include <elf.h>

#include "arch/x86/boot.h"
#include "arch/x86/fdt.h"
#include "util.h"
#include "vm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define MAX_MODULES 2

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* Any ELF is ours: parse says what is wrong with one that is not a PVH kernel. */
static bool pvh__probe(const uint8_t *file, size_t size)
{
	return size >= SELFMAG && !memcmp(file, ELFMAG, SELFMAG);
}

/*
 * Scan one PT_NOTE segment for the PVH entry note. The segment comes from the file as is: sizes
 * are checked against what is left before they are added, and headers are copied out because
 * p_offset need not be aligned.
 */
static bool pvh__find_note(const uint8_t *p, size_t len, uint64_t *entry)
{
	size_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		size_t rest = len - off - sizeof(Elf64_Nhdr), namesz, descsz;
		const uint8_t *name, *desc;
		Elf64_Nhdr n;

		memcpy(&n, p + off, sizeof(n));
		/* 32-bit fields in a size_t: the rounding cannot wrap. */
		namesz = ALIGN_UP((size_t)n.n_namesz, 4);
		descsz = ALIGN_UP((size_t)n.n_descsz, 4);
		if (namesz > rest || descsz > rest - namesz)
			return false;
		name = p + off + sizeof(n);
		desc = name + namesz;
		if (n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.n_namesz == 4 &&
		    !memcmp(name, "Xen", 4)) {
			if (n.n_descsz == 4) {
				uint32_t v;

				memcpy(&v, desc, 4);
				*entry = v;
			} else if (n.n_descsz == 8) {
				memcpy(entry, desc, 8);
			} else {
				return false;
			}
			return true;
		}
		off += sizeof(n) + namesz + descsz;
	}
	return false;
}

/*
 * Every offset and size below comes from the file: each is compared with what is left of the
 * file before anything is added to it, so that a crafted header cannot wrap a sum past 2^64.
 */
static int pvh__parse(struct boot_image *img, char *err, size_t errlen)
{
	const char *path = img->path;
	size_t size = img->file_size;
	bool have_entry = false;
	Elf64_Ehdr eh;

	if (size >= sizeof(eh))
		memcpy(&eh, img->file, sizeof(eh));
	if (size < sizeof(eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return error(err, errlen, "--kernel: '%s' is not an x86_64 ELF image", path);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
	    eh.e_phnum > (size - eh.e_phoff) / sizeof(Elf64_Phdr))
		return error(err, errlen, "--kernel: '%s' has a truncated or malformed program "
			     "header table", path);
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		/* Copied out: e_phoff need not be aligned. */
		memcpy(&ph, img->file + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset ||
		    ph.p_filesz > ph.p_memsz)
			return error(err, errlen, "--kernel: '%s': segment %d lies outside the file",
				     path, i);
		if (ph.p_type == PT_NOTE && !have_entry)
			have_entry = pvh__find_note(img->file + ph.p_offset, ph.p_filesz,
						    &img->pvh.entry);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (img->pvh.nsegments == PVH_MAX_SEGMENTS)
			return error(err, errlen, "--kernel: '%s' has more than %d loadable segments",
				     path, PVH_MAX_SEGMENTS);
		img->pvh.segments[img->pvh.nsegments++] = (struct pvh_segment){
			.paddr = ph.p_paddr, .filesz = ph.p_filesz,
			.memsz = ph.p_memsz, .offset = ph.p_offset,
		};
	}
	if (!have_entry)
		return error(err, errlen, "--kernel: '%s' has no PVH entry note "
			     "(XEN_ELFNOTE_PHYS32_ENTRY)", path);
	return 0;
}

static int pvh__place(struct boot_image *img, const struct layout *l, char *err, size_t errlen)
{
	uint64_t kernel_end = HIGH_RAM_START;

	for (int i = 0; i < img->pvh.nsegments; i++) {
		const struct pvh_segment *s = &img->pvh.segments[i];

		/* Below 1 MiB lies our boot data; the kernel must not overwrite it. */
		if (s->paddr < HIGH_RAM_START || !boot__ram_range(l, s->paddr, s->memsz))
			return error(err, errlen, "--kernel: segment at 0x%llx (%llu bytes) is not in "
				     "boot RAM above 1 MiB", (unsigned long long)s->paddr,
				     (unsigned long long)s->memsz);
		/* No wrap: the segment lies inside a range of the layout. */
		if (s->paddr + s->memsz > kernel_end)
			kernel_end = s->paddr + s->memsz;
	}
	if (!img->initramfs)
		return 0;
	return boot__place_initramfs(img, l, kernel_end, MMIO32_START, "", err, errlen);
}

/* pvh__place has placed everything: these writes stay inside boot RAM. */
static int pvh__load_segments(struct vm *vm, const struct boot_image *img, char *err,
			      size_t errlen)
{
	for (int i = 0; i < img->pvh.nsegments; i++) {
		const struct pvh_segment *s = &img->pvh.segments[i];
		uint8_t *dst = vm__gpa_to_hva(vm, s->paddr, s->memsz);

		if (!dst)
			return error(err, errlen, "internal error: kernel segment at 0x%llx is not "
				     "RAM", (unsigned long long)s->paddr);
		memcpy(dst, img->file + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

static int pvh__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	struct hvm_start_info si = { .magic = HVM_START_MAGIC, .version = 1 };
	struct hvm_modlist_entry mods[MAX_MODULES];
	struct e820_entry e820[128];
	struct hvm_memmap_entry memmap[128];
	void *fdt = vm__gpa_to_hva(vm, FDT_ADDR, FDT_MAX);
	int n = boot__e820(vm, e820, (int)ARRAY_SIZE(e820), err, errlen);
	size_t len;

	if (n < 0)
		return -1;
	if (!fdt)
		return error(err, errlen, "the first memory zone must cover the boot data below "
			     "1 MiB");
	if (pvh__load_segments(vm, img, err, errlen) < 0)
		return -1;

	for (int i = 0; i < n; i++)
		memmap[i] = (struct hvm_memmap_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	if (vm__write(vm, PVH_MEMMAP_ADDR, memmap, (uint64_t)n * sizeof(memmap[0]), err,
		      errlen) < 0)
		return -1;
	si.memmap_paddr = PVH_MEMMAP_ADDR;
	si.memmap_entries = (uint32_t)n;

	if (boot__write_cmdline(vm, err, errlen) < 0)
		return -1;
	si.cmdline_paddr = BOOT_CMDLINE_ADDR;

	if (boot__write_acpi(vm, err, errlen) < 0)
		return -1;
	si.rsdp_paddr = ACPI_TABLES_ADDR;

	/* Module order: the initramfs first (Linux takes module 0 as its initrd), then the FDT. */
	if (img->initramfs) {
		if (boot__write_initramfs(vm, img, err, errlen) < 0)
			return -1;
		mods[si.nr_modules++] = (struct hvm_modlist_entry){
			.paddr = img->initramfs_addr, .size = img->initramfs_size,
		};
	}
	len = fdt__build(&vm->cfg, &vm->layout, devices__fdt, vm, fdt, FDT_MAX);
	if (!len)
		return error(err, errlen, "the device tree could not be built (more than %llu "
			     "bytes, or guest_numa_ids not 0..N-1)", FDT_MAX);
	mods[si.nr_modules++] = (struct hvm_modlist_entry){ .paddr = FDT_ADDR, .size = len };
	if (vm__write(vm, PVH_MODLIST_ADDR, mods, si.nr_modules * sizeof(mods[0]), err,
		      errlen) < 0)
		return -1;
	si.modlist_paddr = PVH_MODLIST_ADDR;

	return vm__write(vm, PVH_START_INFO_ADDR, &si, sizeof(si), err, errlen);
}

static void pvh__entry(const struct boot_image *img, struct boot_cpu *cpu)
{
	*cpu = (struct boot_cpu){
		.mode = BOOT_CPU_PROT32,
		.rip = img->pvh.entry,
		.rbx = PVH_START_INFO_ADDR,
	};
}

const struct boot_proto pvh_proto = {
	.name = "pvh",
	.probe = pvh__probe,
	.parse = pvh__parse,
	.place = pvh__place,
	.setup = pvh__setup,
	.entry = pvh__entry,
};
