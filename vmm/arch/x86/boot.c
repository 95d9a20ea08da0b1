/*
 * PVH boot: load an ELF kernel carrying XEN_ELFNOTE_PHYS32_ENTRY and hand it hvm_start_info
 * with the E820 map, the command line, the modules (initramfs, FDT) and the RSDP.
 * The kernel is read and checked before any guest memory exists (boot__load_kernel), so that a
 * bad --kernel is rejected like any other bad option.
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
};

static int read_file(const char *path, uint8_t **buf, size_t *size, const char *opt, char *err,
		     size_t errlen)
{
	struct stat st;
	ssize_t n;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

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

			free(*buf);
			close(fd);
			return error(err, errlen, "%s: reading '%s': %s", opt, path, strerror(e));
		}
		done += (size_t)n;
	}
	if (close(fd) < 0) {
		free(*buf);
		return error(err, errlen, "%s: closing '%s': %s", opt, path, strerror(errno));
	}
	return 0;
}

/* Scan one PT_NOTE segment for the PVH entry note. */
static bool boot__find_pvh_note(const uint8_t *p, size_t len, uint64_t *entry)
{
	size_t off = 0;

	while (off + sizeof(Elf64_Nhdr) <= len) {
		const Elf64_Nhdr *n = (const Elf64_Nhdr *)(p + off);
		size_t name_off = off + sizeof(*n);
		size_t desc_off = name_off + ALIGN_UP((size_t)n->n_namesz, 4);
		size_t next = desc_off + ALIGN_UP((size_t)n->n_descsz, 4);

		if (next > len || next <= off)
			return false;
		if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY && n->n_namesz == 4 &&
		    !memcmp(p + name_off, "Xen", 4)) {
			if (n->n_descsz == 4) {
				uint32_t v;

				memcpy(&v, p + desc_off, 4);
				*entry = v;
			} else if (n->n_descsz == 8) {
				memcpy(entry, p + desc_off, 8);
			} else {
				return false;
			}
			return true;
		}
		off = next;
	}
	return false;
}

struct boot_image *boot__load_kernel(const char *path, char *err, size_t errlen)
{
	struct boot_image *img = calloc(1, sizeof(*img));
	const Elf64_Ehdr *eh;
	bool have_entry = false;

	if (!img) {
		error(err, errlen, "--kernel: out of memory");
		return NULL;
	}
	if (read_file(path, &img->file, &img->file_size, "--kernel", err, errlen) < 0) {
		free(img);
		return NULL;
	}
	eh = (const Elf64_Ehdr *)img->file;
	if (img->file_size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64) {
		error(err, errlen, "--kernel: '%s' is not an x86_64 ELF image", path);
		goto fail;
	}
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > img->file_size) {
		error(err, errlen, "--kernel: '%s' has a truncated program header table", path);
		goto fail;
	}
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(img->file + eh->e_phoff) + i;

		if (ph->p_offset + ph->p_filesz > img->file_size || ph->p_filesz > ph->p_memsz) {
			error(err, errlen, "--kernel: '%s': segment %d lies outside the file", path, i);
			goto fail;
		}
		if (ph->p_type == PT_NOTE && !have_entry)
			have_entry = boot__find_pvh_note(img->file + ph->p_offset, ph->p_filesz,
							 &img->entry);
		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		if (img->nsegments == MAX_SEGMENTS) {
			error(err, errlen, "--kernel: '%s' has more than %d loadable segments", path,
			      MAX_SEGMENTS);
			goto fail;
		}
		img->segments[img->nsegments++] = (struct boot_segment){
			.paddr = ph->p_paddr, .filesz = ph->p_filesz,
			.memsz = ph->p_memsz, .offset = ph->p_offset,
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

void boot__free(struct boot_image *img)
{
	if (!img)
		return;
	free(img->file);
	free(img);
}

static void boot__load_segments(struct vm *vm, const struct boot_image *img)
{
	for (int i = 0; i < img->nsegments; i++) {
		const struct boot_segment *s = &img->segments[i];
		uint8_t *dst = vm__gpa_to_hva(vm, s->paddr, s->memsz);

		/* Below 1 MiB lies our boot data; the kernel must not overwrite it. */
		if (!dst || s->paddr < HIGH_RAM_START)
			die("--kernel: segment at 0x%llx (%llu bytes) is not in guest RAM above 1 MiB",
			    (unsigned long long)s->paddr, (unsigned long long)s->memsz);
		memcpy(dst, img->file + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
}

/* The initramfs goes at the top of the first RAM range, below the 32-bit hole as Linux wants. */
static uint64_t boot__place_initramfs(struct vm *vm, const uint8_t *data, size_t size,
				      const struct boot_image *img)
{
	const struct mem_range *r = &vm->layout.ranges[0];
	uint64_t top = r->gpa + r->size, addr, kernel_end = 0;

	for (int i = 0; i < img->nsegments; i++)
		if (img->segments[i].paddr + img->segments[i].memsz > kernel_end)
			kernel_end = img->segments[i].paddr + img->segments[i].memsz;
	if (top > MMIO32_START)
		top = MMIO32_START;
	addr = (top - size) & ~0xfffULL;
	if (size > top || addr < ALIGN_UP(kernel_end, 0x1000))
		die("--initramfs: %zu bytes do not fit in the first RAM range above the kernel", size);
	vm__write(vm, addr, data, size);
	return addr;
}

void boot__setup(struct vm *vm, struct boot_image *img)
{
	struct hvm_start_info si = { .magic = HVM_START_MAGIC, .version = 1 };
	struct hvm_modlist_entry mods[MAX_MODULES];
	struct e820_entry e820[128];
	struct hvm_memmap_entry memmap[128];
	int n = layout__e820(&vm->layout, e820, (int)ARRAY_SIZE(e820));
	uint8_t *acpi = vm__gpa_to_hva(vm, ACPI_TABLES_ADDR, ACPI_TABLES_MAX);
	void *fdt = vm__gpa_to_hva(vm, FDT_ADDR, FDT_MAX);
	char err[256];
	size_t len;

	if (n < 0)
		die("E820 map does not fit");
	if (!acpi || !fdt)
		die("the first memory zone must cover the boot data below 1 MiB");
	boot__load_segments(vm, img);

	for (int i = 0; i < n; i++)
		memmap[i] = (struct hvm_memmap_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	vm__write(vm, PVH_MEMMAP_ADDR, memmap, (uint64_t)n * sizeof(memmap[0]));
	si.memmap_paddr = PVH_MEMMAP_ADDR;
	si.memmap_entries = (uint32_t)n;

	len = vm->cfg.cmdline ? strlen(vm->cfg.cmdline) : 0;
	if (len >= PVH_CMDLINE_MAX)
		die("--cmdline: %zu bytes, at most %llu", len, PVH_CMDLINE_MAX - 1);
	vm__write(vm, PVH_CMDLINE_ADDR, vm->cfg.cmdline ? vm->cfg.cmdline : "", len + 1);
	si.cmdline_paddr = PVH_CMDLINE_ADDR;

	len = acpi__build(&vm->cfg, &vm->layout, acpi, ACPI_TABLES_ADDR, ACPI_TABLES_MAX);
	if (!len)
		die("ACPI tables do not fit in %llu bytes", ACPI_TABLES_MAX);
	si.rsdp_paddr = ACPI_TABLES_ADDR;

	/* Module order: the initramfs first (Linux takes module 0 as its initrd), then the FDT. */
	if (vm->cfg.initramfs) {
		uint8_t *data;
		size_t size;

		if (read_file(vm->cfg.initramfs, &data, &size, "--initramfs", err, sizeof(err)) < 0)
			die("%s", err);
		mods[si.nr_modules++] = (struct hvm_modlist_entry){
			.paddr = boot__place_initramfs(vm, data, size, img), .size = size,
		};
		free(data);
	}
	len = fdt__build(&vm->cfg, &vm->layout, fdt, FDT_MAX);
	if (!len)
		die("the device tree does not fit in %llu bytes", FDT_MAX);
	mods[si.nr_modules++] = (struct hvm_modlist_entry){ .paddr = FDT_ADDR, .size = len };
	vm__write(vm, PVH_MODLIST_ADDR, mods, si.nr_modules * sizeof(mods[0]));
	si.modlist_paddr = PVH_MODLIST_ADDR;

	vm__write(vm, PVH_START_INFO_ADDR, &si, sizeof(si));
	vm->pvh_entry = img->entry;
}
