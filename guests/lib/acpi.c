/* Finding the RSDP and summing ACPI tables. */
#include "guest.h"

u8 acpi_sum(const void *p, u64 len)
{
	const u8 *b = p;
	u8 s = 0;

	while (len--)
		s += *b++;
	return s;
}

static const struct acpi_rsdp *scan(u64 start, u64 end)
{
	for (u64 a = ALIGN_UP(start, 16); a + 20 <= end; a += 16) {
		const struct acpi_rsdp *r = (const void *)(uintptr_t)a;
		if (!memcmp(r->sig, "RSD PTR ", 8) && !acpi_sum(r, 20))
			return r;
	}
	return NULL;
}

const struct acpi_rsdp *acpi_find_rsdp(u64 hint, const char **source)
{
	const struct acpi_rsdp *r;

	/* Trust the boot protocol's pointer even with a bad checksum: the caller reports it */
	if (hint && hint < 4 * GiB && !memcmp((const void *)(uintptr_t)hint, "RSD PTR ", 8)) {
		*source = "start_info";
		return (const void *)(uintptr_t)hint;
	}
	*source = "scan";
	u64 ebda = (u64)*(volatile u16 *)0x40e << 4;
	if (ebda >= 0x400 && ebda < 0xa0000 && (r = scan(ebda, ebda + 1024)))
		return r;
	return scan(0xe0000, 0x100000);
}

static u16 le16(const u8 *p) { return p[0] | p[1] << 8; }
static u32 le32(const u8 *p) { return le16(p) | (u32)le16(p + 2) << 16; }
static u64 le64(const u8 *p) { return le32(p) | (u64)le32(p + 4) << 32; }

/* AML PkgLength (ACPI 6.5, 20.2.4): the length counts its own bytes; 0 when malformed */
static u32 aml_pkglen(const u8 *p, const u8 *end, int *nbytes)
{
	if (p >= end)
		return 0;
	int n = p[0] >> 6;
	u32 len = n ? p[0] & 0x0f : p[0] & 0x3f;
	if (p + 1 + n > end)
		return 0;
	for (int i = 0; i < n; i++)
		len |= (u32)p[1 + i] << (4 + 8 * i);
	*nbytes = 1 + n;
	return len;
}

static bool aml_integer(const u8 *p, const u8 *end, u32 *v)
{
	static const u8 size[] = { [0x0a] = 1, [0x0b] = 2, [0x0c] = 4 };

	if (p >= end)
		return false;
	if (p[0] == 0x00 || p[0] == 0x01) {	/* ZeroOp, OneOp */
		*v = p[0];
		return true;
	}
	if (p[0] < 0x0a || p[0] > 0x0c || p + 1 + size[p[0]] > end)
		return false;
	*v = size[p[0]] == 1 ? p[1] : size[p[0]] == 2 ? le16(p + 1) : le32(p + 1);
	return true;
}

/* The object after Name(NAME, ...) inside [p, end) */
static const u8 *aml_find_name(const u8 *p, const u8 *end, const char *name)
{
	for (; p + 5 <= end; p++)
		if (p[0] == 0x08 && !memcmp(p + 1, name, 4))	/* NameOp NameSeg */
			return p + 5;
	return NULL;
}

/* A _CRS Buffer's resource template (ACPI 6.5, 6.4): first memory window, first interrupt */
static void aml_crs(const u8 *p, const u8 *end, struct acpi_dev *d)
{
	int nb;

	if (p >= end || p[0] != 0x11)	/* BufferOp */
		return;
	u32 len = aml_pkglen(p + 1, end, &nb);
	const u8 *bend = p + 1 + len, *q = p + 1 + nb;
	u32 bufsize;
	if (!len || bend > end || !aml_integer(q, bend, &bufsize))
		return;
	q += q[0] <= 0x01 ? 1 : q[0] == 0x0a ? 2 : q[0] == 0x0b ? 3 : 5;
	while (q < bend) {
		if (!(q[0] & 0x80)) {	/* small item; type 0xf is the end tag */
			if (((q[0] >> 3) & 0xf) == 0xf)
				return;
			q += 1 + (q[0] & 7);
			continue;
		}
		if (q + 3 > bend || q + 3 + le16(q + 1) > bend)
			return;
		u16 l = le16(q + 1);
		if (!d->has_base && q[0] == 0x86 && l >= 9) {			/* Memory32Fixed */
			d->base = le32(q + 4), d->size = le32(q + 8), d->has_base = true;
		} else if (!d->has_base && q[0] == 0x87 && l >= 23 && q[3] == 0) {	/* DWord memory */
			d->base = le32(q + 10), d->size = le32(q + 22), d->has_base = true;
		} else if (!d->has_base && q[0] == 0x8a && l >= 43 && q[3] == 0) {	/* QWord memory */
			d->base = le64(q + 14), d->size = le64(q + 38), d->has_base = true;
		} else if (!d->has_irq && q[0] == 0x89 && l >= 6 && q[4] >= 1) {	/* Extended IRQ */
			d->irq = le32(q + 5), d->has_irq = true;
		}
		q += 3 + l;
	}
}

/*
 * The Device() at p (ExtOpPrefix DeviceOp PkgLength NameString) if it encloses [s, s+1):
 * its last NameSeg, _UID and _CRS into d. False when p is not such a Device.
 */
static bool aml_device(const u8 *p, const u8 *s, const u8 *t, const u8 *end, struct acpi_dev *d)
{
	int nb;
	u32 len;

	if (p + 2 >= end || p[0] != 0x5b || p[1] != 0x82 || !(len = aml_pkglen(p + 2, end, &nb)) ||
	    p + 2 + len <= s || p + 2 + len > end || p < t)
		return false;
	const u8 *dev = p + 2 + nb, *dend = p + 2 + len;
	/* NameString: optional \ or ^ prefixes, then one NameSeg, DualNamePrefix or MultiNamePrefix */
	while (dev < dend && (*dev == '\\' || *dev == '^'))
		dev++;
	if (dev + 2 <= dend && dev[0] == 0x2e)
		dev += 1 + 4;
	else if (dev + 2 <= dend && dev[0] == 0x2f && dev[1] >= 1)
		dev += 2 + 4 * (dev[1] - 1);
	*d = (struct acpi_dev){ .name = "" };
	for (int i = 0; i < 4 && dev + 4 <= dend; i++)
		d->name[i] = dev[i] >= 0x20 && dev[i] < 0x7f ? (char)dev[i] : '?';
	const u8 *uid = aml_find_name(dev, dend, "_UID");
	d->has_uid = uid && aml_integer(uid, dend, &d->uid);
	const u8 *crs = aml_find_name(dev, dend, "_CRS");
	if (crs)
		aml_crs(crs, dend, d);
	return true;
}

int acpi_find_hid(const struct acpi_header *h, const char *hid, struct acpi_dev *out, int max)
{
	const u8 *t = (const u8 *)h, *end = t + h->length;
	size_t hlen = strlen(hid);
	int n = 0;

	for (const u8 *s = t + 36; s + hlen + 2 <= end && n < max; s++) {
		if (s[0] != 0x0d || memcmp(s + 1, hid, hlen) || s[1 + hlen])	/* StringPrefix */
			continue;
		out[n] = (struct acpi_dev){ .name = "" };
		/* The innermost Device enclosing the string */
		for (const u8 *p = s - 2; p >= t + 36 && p + 65536 > s; p--)
			if (aml_device(p, s, t + 36, end, &out[n]))
				break;
		n++;
		s += hlen;
	}
	return n;
}

bool acpi_find_device(const struct acpi_header *h, const char *name, struct acpi_dev *out)
{
	const u8 *t = (const u8 *)h, *end = t + h->length;

	for (const u8 *p = t + 36; p + 2 < end; p++)
		if (aml_device(p, p, t + 36, end, out) && !memcmp(out->name, name, 4))
			return true;
	return false;
}

const struct acpi_header *acpi_find_dsdt(void)
{
	const char *source;
	const struct acpi_rsdp *r = acpi_find_rsdp(boot.si->rsdp_paddr, &source);

	if (!r)
		return NULL;
	bool x = r->revision >= 2 && r->xsdt;
	const struct acpi_header *root = (const void *)(uintptr_t)(x ? r->xsdt : r->rsdt);
	if (!root || (u64)(uintptr_t)root >= boot.mapped_limit || root->length < 36)
		return NULL;
	unsigned esz = x ? 8 : 4;
	const u8 *ents = (const u8 *)root + 36;
	for (u32 i = 0; i < (root->length - 36) / esz; i++) {
		const struct acpi_header *f = (const void *)(uintptr_t)(x ? le64(ents + 8 * i) :
									  le32(ents + 4 * i));
		if (!f || (u64)(uintptr_t)f >= boot.mapped_limit || memcmp(f->sig, "FACP", 4))
			continue;
		const u8 *b = (const u8 *)f;
		u64 dsdt = f->length >= 148 && le64(b + 140) ? le64(b + 140) :
			   f->length >= 44 ? le32(b + 40) : 0;
		const struct acpi_header *d = (const void *)(uintptr_t)dsdt;
		if (dsdt && dsdt < boot.mapped_limit && !memcmp(d->sig, "DSDT", 4) && !acpi_sum(d, d->length))
			return d;
	}
	return NULL;
}
