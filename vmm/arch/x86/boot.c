/*
 * PVH boot: load an ELF kernel carrying XEN_ELFNOTE_PHYS32_ENTRY and hand it hvm_start_info
 * with the E820 map, the command line, the modules (initramfs, FDT) and the RSDP.
 * The kernel and the initramfs are read, and checked against the layout, before any guest memory
 * exists (boot__load_kernel, boot__load_initramfs, boot__check_kernel), so that a bad --kernel or
 * --initramfs is rejected like any other bad option.
 */
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/fdt.h"
#include "util.h"
#include "vm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define MAX_SEGMENTS 16
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

struct boot_segment {
	uint64_t paddr, filesz, memsz, offset;
};

struct boot_image {
	uint8_t *file;
	size_t file_size;
	uint64_t entry;
	int nsegments;
	struct boot_segment segments[MAX_SEGMENTS];
	uint8_t *initramfs;		/* NULL without --initramfs */
	size_t initramfs_size;
	uint64_t initramfs_addr;	/* chosen by boot__check_kernel */
};

/* The whole file in a malloc'ed buffer; on failure *buf is left NULL. */
static int read_file(const char *path, uint8_t **buf, size_t *size, const char *opt, char *err,
		     size_t errlen)
{
	struct stat st;
	ssize_t n;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	if (fd < 0)
		return error(err, errlen, "%s: cannot open '%s': %s", opt, path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return error(err, errlen, "%s: '%s' is not a non-empty regular file", opt, path);
	}
	*size = (size_t)st.st_size;
	*buf = malloc(*size);
	if (!*buf) {
		close(fd);
		return error(err, errlen, "%s: out of memory for '%s'", opt, path);
	}
	while (done < *size) {
		n = read(fd, *buf + done, *size - done);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			if (e == EINTR)
				continue;
			close(fd);
			error(err, errlen, "%s: reading '%s': %s", opt, path, strerror(e));
			goto fail;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0) {
		error(err, errlen, "%s: closing '%s': %s", opt, path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	return -1;
}

/*
 * Scan one PT_NOTE segment for the PVH entry note. The segment comes from the file as is: sizes
 * are checked against what is left before they are added, and headers are copied out because
 * p_offset need not be aligned.
 */
static bool boot__find_pvh_note(const uint8_t *p, size_t len, uint64_t *entry)
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
struct boot_image *boot__load_kernel(const char *path, char *err, size_t errlen)
{
	struct boot_image *img = calloc(1, sizeof(*img));
	bool have_entry = false;
	Elf64_Ehdr eh;
	size_t size;

	if (!img) {
		error(err, errlen, "--kernel: out of memory");
		return NULL;
	}
	if (read_file(path, &img->file, &img->file_size, "--kernel", err, errlen) < 0) {
		free(img);
		return NULL;
	}
	size = img->file_size;
	if (size >= sizeof(eh))
		memcpy(&eh, img->file, sizeof(eh));
	if (size < sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		error(err, errlen, "--kernel: '%s' is not an x86_64 ELF image", path);
		goto fail;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
	    eh.e_phnum > (size - eh.e_phoff) / sizeof(Elf64_Phdr)) {
		error(err, errlen, "--kernel: '%s' has a truncated or malformed program header table",
		      path);
		goto fail;
	}
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		/* Copied out: e_phoff need not be aligned. */
		memcpy(&ph, img->file + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset ||
		    ph.p_filesz > ph.p_memsz) {
			error(err, errlen, "--kernel: '%s': segment %d lies outside the file", path, i);
			goto fail;
		}
		if (ph.p_type == PT_NOTE && !have_entry)
			have_entry = boot__find_pvh_note(img->file + ph.p_offset, ph.p_filesz,
							 &img->entry);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (img->nsegments == MAX_SEGMENTS) {
			error(err, errlen, "--kernel: '%s' has more than %d loadable segments", path,
			      MAX_SEGMENTS);
			goto fail;
		}
		img->segments[img->nsegments++] = (struct boot_segment){
			.paddr = ph.p_paddr, .filesz = ph.p_filesz,
			.memsz = ph.p_memsz, .offset = ph.p_offset,
		};
	}
	if (!have_entry) {
		error(err, errlen, "--kernel: '%s' has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
		      path);
		goto fail;
	}
	return img;
fail:
	boot__free(img);
	return NULL;
}

int boot__load_initramfs(struct boot_image *img, const char *path, char *err, size_t errlen)
{
	return read_file(path, &img->initramfs, &img->initramfs_size, "--initramfs", err, errlen);
}

/* The boot RAM range holding all of [gpa, gpa + len), or NULL. */
static const struct mem_range *boot__ram_range(const struct layout *l, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		if (r->kind == RANGE_RAM && gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

int boot__check_kernel(struct boot_image *img, const struct layout *l, char *err, size_t errlen)
{
	uint64_t top, kernel_end = HIGH_RAM_START, size = img->initramfs_size;

	for (int i = 0; i < img->nsegments; i++) {
		const struct boot_segment *s = &img->segments[i];

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
	/* The top of the first RAM range, below the 32-bit hole as Linux wants, above the kernel. */
	top = l->nranges ? l->ranges[0].gpa + l->ranges[0].size : 0;
	if (top > MMIO32_START)
		top = MMIO32_START;
	if (size > top || ((top - size) & ~0xfffULL) < ALIGN_UP(kernel_end, 0x1000))
		return error(err, errlen, "--initramfs: %zu bytes do not fit in the first RAM range "
			     "above the kernel", img->initramfs_size);
	img->initramfs_addr = (top - size) & ~0xfffULL;
	return 0;
}

void boot__free(struct boot_image *img)
{
	if (!img)
		return;
	free(img->initramfs);
	free(img->file);
	free(img);
}

/* boot__check_kernel has placed everything: these writes stay inside boot RAM. */
static int boot__load_segments(struct vm *vm, const struct boot_image *img, char *err,
			       size_t errlen)
{
	for (int i = 0; i < img->nsegments; i++) {
		const struct boot_segment *s = &img->segments[i];
		uint8_t *dst = vm__gpa_to_hva(vm, s->paddr, s->memsz);

		if (!dst)
			return error(err, errlen, "internal error: kernel segment at 0x%llx is not "
				     "RAM", (unsigned long long)s->paddr);
		memcpy(dst, img->file + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

int boot__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	struct hvm_start_info si = { .magic = HVM_START_MAGIC, .version = 1 };
	struct hvm_modlist_entry mods[MAX_MODULES];
	struct e820_entry e820[128];
	struct hvm_memmap_entry memmap[128];
	int n = layout__e820(&vm->layout, e820, (int)ARRAY_SIZE(e820));
	uint8_t *acpi = vm__gpa_to_hva(vm, ACPI_TABLES_ADDR, ACPI_TABLES_MAX);
	void *fdt = vm__gpa_to_hva(vm, FDT_ADDR, FDT_MAX);
	size_t len;

	if (n < 0)
		return error(err, errlen, "the E820 map has more than %zu entries",
			     ARRAY_SIZE(e820));
	if (!acpi || !fdt)
		return error(err, errlen, "the first memory zone must cover the boot data below "
			     "1 MiB");
	if (boot__load_segments(vm, img, err, errlen) < 0)
		return -1;

	for (int i = 0; i < n; i++)
		memmap[i] = (struct hvm_memmap_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	if (vm__write(vm, PVH_MEMMAP_ADDR, memmap, (uint64_t)n * sizeof(memmap[0]), err,
		      errlen) < 0)
		return -1;
	si.memmap_paddr = PVH_MEMMAP_ADDR;
	si.memmap_entries = (uint32_t)n;

	len = vm->cfg.cmdline ? strlen(vm->cfg.cmdline) : 0;
	if (len >= PVH_CMDLINE_MAX)	/* main refused it; longer would overwrite the FDT */
		return error(err, errlen, "internal error: --cmdline of %zu bytes", len);
	if (vm__write(vm, PVH_CMDLINE_ADDR, vm->cfg.cmdline ? vm->cfg.cmdline : "", len + 1, err,
		      errlen) < 0)
		return -1;
	si.cmdline_paddr = PVH_CMDLINE_ADDR;

	if (!acpi__build(&vm->cfg, &vm->layout, acpi, ACPI_TABLES_ADDR, ACPI_TABLES_MAX, err,
			 errlen))
		return -1;
	si.rsdp_paddr = ACPI_TABLES_ADDR;

	/* Module order: the initramfs first (Linux takes module 0 as its initrd), then the FDT. */
	if (img->initramfs) {
		if (vm__write(vm, img->initramfs_addr, img->initramfs, img->initramfs_size, err,
			      errlen) < 0)
			return -1;
		mods[si.nr_modules++] = (struct hvm_modlist_entry){
			.paddr = img->initramfs_addr, .size = img->initramfs_size,
		};
	}
	len = fdt__build(&vm->cfg, &vm->layout, fdt, FDT_MAX);
	if (!len)
		return error(err, errlen, "the device tree could not be built (more than %llu "
			     "bytes, or guest_numa_ids not 0..N-1)", FDT_MAX);
	mods[si.nr_modules++] = (struct hvm_modlist_entry){ .paddr = FDT_ADDR, .size = len };
	if (vm__write(vm, PVH_MODLIST_ADDR, mods, si.nr_modules * sizeof(mods[0]), err,
		      errlen) < 0)
		return -1;
	si.modlist_paddr = PVH_MODLIST_ADDR;

	if (vm__write(vm, PVH_START_INFO_ADDR, &si, sizeof(si), err, errlen) < 0)
		return -1;
	vm->pvh_entry = img->entry;
	return 0;
}
