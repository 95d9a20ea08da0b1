/*
 * A read-only flattened device tree walker (devicetree specification, chapter 5), written
 * here because Debian's libfdt.a is built for hosted use (stack protector, TLS canary).
 * Every offset is checked against the structure block, so a corrupt blob gives -1/NULL.
 */
#include "guest.h"

#define FDT_BEGIN_NODE	1
#define FDT_END_NODE	2
#define FDT_PROP	3
#define FDT_NOP		4
#define FDT_END		9

int fdt_open(struct fdt *f, const void *addr, u64 max, const char **why)
{
	const u8 *h = addr;
	u32 total;

	*why = NULL;
	if (max < 40)
		*why = "smaller than a header";
	else if (be32(h) != FDT_MAGIC)
		*why = "bad magic";
	else if ((total = be32(h + 4)) > max || total < 40)
		*why = "totalsize larger than the module";
	else if ((f->version = be32(h + 20)) < 16)
		*why = "version older than 16";
	if (*why)
		return -1;
	f->blob = h;
	f->size = total;
	f->off_struct = be32(h + 8);
	f->off_strings = be32(h + 12);
	f->size_strings = be32(h + 32);
	f->size_struct = f->version >= 17 ? be32(h + 36) : total - f->off_struct;
	if (f->off_struct % 4 || f->off_struct > total || f->size_struct > total - f->off_struct ||
	    f->off_strings > total || f->size_strings > total - f->off_strings) {
		*why = "blocks outside the blob";
		return -1;
	}
	return 0;
}

static u32 token(const struct fdt *f, int off)
{
	if (off < 0 || (u64)off + 4 > f->size_struct)
		return FDT_END;
	return be32(f->blob + f->off_struct + off);
}

/* Offset just after a BEGIN_NODE's name, or -1 */
static int after_name(const struct fdt *f, int off)
{
	if (token(f, off) != FDT_BEGIN_NODE)
		return -1;
	const char *name = (const char *)f->blob + f->off_struct + off + 4;
	size_t room = f->size_struct - off - 4;
	size_t n = strnlen(name, room);
	if (n == room)
		return -1;
	return off + 4 + (int)ALIGN_UP(n + 1, 4);
}

/* Offset after the property at off, or -1 */
static int after_prop(const struct fdt *f, int off)
{
	if ((u64)off + 12 > f->size_struct)
		return -1;
	u32 len = be32(f->blob + f->off_struct + off + 4);
	if (len > f->size_struct - off - 12)
		return -1;
	return off + 12 + (int)ALIGN_UP(len, 4);
}

int fdt_next_node(const struct fdt *f, int off, int *depth)
{
	int pos;

	if (off < 0) {
		for (pos = 0; token(f, pos) == FDT_NOP; pos += 4)
			;
		*depth = 0;
		return token(f, pos) == FDT_BEGIN_NODE ? pos : -1;
	}
	pos = after_name(f, off);
	while (pos >= 0) {
		switch (token(f, pos)) {
		case FDT_PROP:
			pos = after_prop(f, pos);
			break;
		case FDT_NOP:
			pos += 4;
			break;
		case FDT_BEGIN_NODE:
			++*depth;
			return pos;
		case FDT_END_NODE:
			if (--*depth < 0)
				return -1;
			pos += 4;
			break;
		default:
			return -1;
		}
	}
	return -1;
}

const char *fdt_node_name(const struct fdt *f, int off)
{
	return after_name(f, off) < 0 ? "" : (const char *)f->blob + f->off_struct + off + 4;
}

const void *fdt_getprop(const struct fdt *f, int off, const char *name, int *len)
{
	int pos = after_name(f, off);

	while (pos >= 0) {
		u32 t = token(f, pos);
		if (t == FDT_NOP) {
			pos += 4;
			continue;
		}
		if (t != FDT_PROP)
			return NULL;
		int next = after_prop(f, pos);
		if (next < 0)
			return NULL;
		const u8 *p = f->blob + f->off_struct + pos;
		u32 nameoff = be32(p + 8);
		if (nameoff < f->size_strings) {
			const char *pname = (const char *)f->blob + f->off_strings + nameoff;
			size_t room = f->size_strings - nameoff;
			if (strnlen(pname, room) < room && !strcmp(pname, name)) {
				*len = (int)be32(p + 4);
				return p + 12;
			}
		}
		pos = next;
	}
	return NULL;
}

u64 fdt_cells(const void *p, int cells)
{
	const u8 *b = p;
	u64 v = 0;

	for (int i = 0; i < cells; i++)
		v = (v << 32) | be32(b + 4 * i);
	return v;
}
