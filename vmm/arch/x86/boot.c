/*
 * Boot protocols behind one interface (boot.h): read the kernel and the initramfs, find the
 * protocol that claims the kernel, and run its steps; plus what every protocol hands the guest the
 * same way (the E820 map of the layout, the command line, the initramfs, the ACPI tables).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "util.h"
#include "vm.h"

/* Tried in order: each probe looks at magic numbers only, and no file has both. */
static const struct boot_proto *const boot_protos[] = { &pvh_proto, &bzimage_proto };

/* The whole file in a malloc'ed buffer; on failure *buf is left NULL. */
static int read_file(const char *path, uint8_t **buf, size_t *size, const char *opt, char *err,
		     size_t errlen)
{
	const struct quoted name = quote(path);
	struct stat st;
	ssize_t n;
	size_t done = 0;
	/* O_NONBLOCK: a fifo would block the open, with the stop signals blocked (main.c) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	*buf = NULL;
	if (fd < 0)
		return error(err, errlen, "%s: cannot open '%s': %s", opt, name.s, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return error(err, errlen, "%s: '%s' is not a non-empty regular file", opt, name.s);
	}
	*size = (size_t)st.st_size;
	*buf = malloc(*size);
	if (!*buf) {
		close(fd);
		return error(err, errlen, "%s: out of memory for '%s'", opt, name.s);
	}
	while (done < *size) {
		n = read(fd, *buf + done, *size - done);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			if (e == EINTR)
				continue;
			close(fd);
			error(err, errlen, "%s: reading '%s': %s", opt, name.s, strerror(e));
			goto fail;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0) {
		error(err, errlen, "%s: closing '%s': %s", opt, name.s, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	return -1;
}

struct boot_image *boot__load_kernel(const char *path, char *err, size_t errlen)
{
	struct boot_image *img = calloc(1, sizeof(*img));

	if (!img || !(img->path = strdup(quote(path).s))) {
		free(img);
		error(err, errlen, "--kernel: out of memory");
		return NULL;
	}
	if (read_file(path, &img->file, &img->file_size, "--kernel", err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_SIZE(boot_protos) && !img->proto; i++)
		if (boot_protos[i]->probe(img->file, img->file_size))
			img->proto = boot_protos[i];
	if (!img->proto) {
		error(err, errlen, "--kernel: '%s' is neither an ELF image with a PVH note nor a "
		      "Linux bzImage", path);
		goto fail;
	}
	if (img->proto->parse(img, err, errlen) < 0)
		goto fail;
	return img;
fail:
	boot__free(img);
	return NULL;
}

int boot__load_initramfs(struct boot_image *img, const char *path, char *err, size_t errlen)
{
	return read_file(path, &img->initramfs, &img->initramfs_size, "--initramfs", err, errlen);
}

int boot__check_kernel(struct boot_image *img, const struct layout *l, char *err, size_t errlen)
{
	return img->proto->place(img, l, err, errlen);
}

int boot__check_cmdline(const struct boot_image *img, const char *cmdline, char *err,
			size_t errlen)
{
	size_t len = cmdline ? strlen(cmdline) : 0;

	/* Longer would run into the FDT at BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX. */
	if (len >= BOOT_CMDLINE_MAX)
		return error(err, errlen, "--cmdline: %zu bytes, at most %llu", len,
			     BOOT_CMDLINE_MAX - 1);
	return img && img->proto->check_cmdline ? img->proto->check_cmdline(img, len, err, errlen) : 0;
}

int boot__setup(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	if (img->proto->setup(vm, img, err, errlen) < 0)
		return -1;
	img->proto->entry(img, &vm->boot_cpu);
	return 0;
}

void boot__free(struct boot_image *img)
{
	if (!img)
		return;
	free(img->initramfs);
	free(img->file);
	free(img->path);
	free(img);
}

const struct mem_range *boot__ram_range(const struct layout *l, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		if (r->kind == RANGE_RAM && gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

int boot__place_initramfs(struct boot_image *img, const struct layout *l, uint64_t lowest,
			  uint64_t limit, const char *why, char *err, size_t errlen)
{
	uint64_t top = l->nranges ? l->ranges[0].gpa + l->ranges[0].size : 0;
	uint64_t size = img->initramfs_size;

	if (top > MMIO32_START)
		top = MMIO32_START;
	if (top > limit)
		top = limit;
	if (size > top || ((top - size) & ~0xfffULL) < ALIGN_UP(lowest, 0x1000))
		return error(err, errlen, "--initramfs: %zu bytes do not fit in the first RAM range "
			     "above the kernel%s", img->initramfs_size, why);
	img->initramfs_addr = (top - size) & ~0xfffULL;
	return 0;
}

int boot__e820(struct vm *vm, struct e820_entry *out, int max, char *err, size_t errlen)
{
	int n = layout__e820(&vm->layout, out, max);

	if (n < 0)
		return error(err, errlen, "the E820 map has more than %d entries", max);
	return n;
}

int boot__write_cmdline(struct vm *vm, char *err, size_t errlen)
{
	size_t len = vm->cfg.cmdline ? strlen(vm->cfg.cmdline) : 0;

	if (len >= BOOT_CMDLINE_MAX)	/* boot__check_cmdline refused it */
		return error(err, errlen, "internal error: --cmdline of %zu bytes", len);
	return vm__write(vm, BOOT_CMDLINE_ADDR, vm->cfg.cmdline ? vm->cfg.cmdline : "", len + 1,
			 err, errlen);
}

int boot__write_initramfs(struct vm *vm, const struct boot_image *img, char *err, size_t errlen)
{
	if (!img->initramfs)
		return 0;
	return vm__write(vm, img->initramfs_addr, img->initramfs, img->initramfs_size, err, errlen);
}

int boot__write_acpi(struct vm *vm, char *err, size_t errlen)
{
	uint8_t *acpi = vm__gpa_to_hva(vm, ACPI_TABLES_ADDR, ACPI_TABLES_MAX);

	if (!acpi)
		return error(err, errlen, "the first memory zone must cover the boot data below "
			     "1 MiB");
	if (!acpi__build(&vm->cfg, &vm->layout, devices__dsdt, vm, acpi, ACPI_TABLES_ADDR,
			 ACPI_TABLES_MAX, err, errlen))
		return -1;
	return boot__write_reset_vector(vm, err, errlen);
}

int boot__write_reset_vector(struct vm *vm, char *err, size_t errlen)
{
	/* 16-bit code: mov dx, ACPI_RESET_PORT; mov al, ACPI_RESET_VALUE; out dx, al; cli; hlt; jmp $-3 */
	static const uint8_t stub[16] = {
		0xba, ACPI_RESET_PORT & 0xff, ACPI_RESET_PORT >> 8,
		0xb0, ACPI_RESET_VALUE,
		0xee, 0xfa, 0xf4, 0xeb, 0xfd,
	};

	return vm__write(vm, RESET_VECTOR_ADDR, stub, sizeof(stub), err, errlen);
}
