/*
 * probe: report what a guest can learn about its memory and CPUs (E820, ACPI MADT/SRAT/SLIT,
 * the FDT module, virtio-mmio devices), test the usable RAM, cross-check the sources and exit
 * 0 when everything is consistent, 1 when not. The report format is guests/README.md.
 */
#include "guest.h"

const char guest_banner[] = "memvisor-probe 1";

#define DEBUG_MEMTEST_START	0x20
#define DEBUG_MEMTEST_END	0x21

/* ---- checks: each ends as one PASS:/FAIL:/SKIP: line ---- */

enum {
	CHK_E820, CHK_ACPI, CHK_MADT_SRAT, CHK_SRAT_SLIT, CHK_FDT, CHK_SRAT_FDT_MEM,
	CHK_SRAT_FDT_CPU, CHK_SLIT_FDT, CHK_ADDR_WIDTH, CHK_MEMTEST, NCHECKS
};
static struct check checks[NCHECKS] = {
#define CHECK(id, str) [id] = { .name = str }
	CHECK(CHK_E820, "e820_overlap"), CHECK(CHK_ACPI, "acpi_checksum"),
	CHECK(CHK_MADT_SRAT, "madt_srat_cpus"), CHECK(CHK_SRAT_SLIT, "srat_slit"), CHECK(CHK_FDT, "fdt"),
	CHECK(CHK_SRAT_FDT_MEM, "srat_fdt_mem"), CHECK(CHK_SRAT_FDT_CPU, "srat_fdt_cpus"),
	CHECK(CHK_SLIT_FDT, "slit_fdt"), CHECK(CHK_ADDR_WIDTH, "address_width"),
	CHECK(CHK_MEMTEST, "memtest"),
#undef CHECK
};
#define error(chk, ...) check_error(&checks[chk], __VA_ARGS__)
#define skip(chk, why) check_skip(&checks[chk], why)

static u32 le32(const u8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24; }
static u64 le64(const u8 *p) { return le32(p) | (u64)le32(p + 4) << 32; }

/* ---- what was found ---- */

#define MAX_CPUS	512
#define MAX_MEMS	128
#define MAX_NODES	64
#define MAX_TABLES	64
#define MAX_VIRTIO	32

struct cpu { u32 apic, node, flags, uid; u8 type; };
struct mem { u64 base, size; u32 node, flags; bool has_node; };
struct virtio { const char *src, *fdt_name; struct acpi_dev dev; };

static struct {
	const struct acpi_header *tables[MAX_TABLES];
	int ntables;
	const struct acpi_header *madt, *srat, *slit;
	struct cpu madt_cpus[MAX_CPUS];
	int nmadt;
	struct cpu srat_cpus[MAX_CPUS];
	int nsrat_cpus;
	struct mem srat_mems[MAX_MEMS];
	int nsrat_mems, srat_other;
	u64 slit_n;
	const u8 *slit_matrix;
} acpi;

static struct {
	bool present;
	struct fdt f;
	struct mem mems[MAX_MEMS];
	bool hotplug[MAX_MEMS];
	int nmems;
	struct cpu cpus[MAX_CPUS];
	bool cpu_has_node[MAX_CPUS];
	int ncpus;
	bool has_dist;
	u32 dist_n;
	u8 dist[MAX_NODES][MAX_NODES];
} dt;

static struct virtio virtio[MAX_VIRTIO];
static int nvirtio;
static u64 highest;	/* the highest address any source describes */

static void see(u64 end)
{
	if (end > highest)
		highest = end;
}

/* ---- E820 ---- */

static void report_e820(void)
{
	u64 usable = 0;
	u32 nusable = 0, n = boot.e820_entries;

	for (u32 i = 0; i < n; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		printf("e820 addr=0x%lx size=0x%lx end=0x%lx type=%u\n", e->addr, e->size,
		       e->addr + e->size, e->type);
		if (e->type == E820_RAM) {
			usable += e->size;
			nusable++;
		}
		see(e->addr + e->size);
	}
	printf("ram usable=0x%lx usable_ranges=%u entries=%u\n", usable, nusable, n);
	for (u32 i = 0; i < n; i++)
		for (u32 j = i + 1; j < n; j++) {
			const struct hvm_memmap_entry *a = &boot.e820[i], *b = &boot.e820[j];
			if (a->size && b->size && a->addr < b->addr + b->size && b->addr < a->addr + a->size)
				error(CHK_E820, "a=0x%lx-0x%lx b=0x%lx-0x%lx", a->addr, a->addr + a->size,
				      b->addr, b->addr + b->size);
		}
}

/* ---- ACPI ---- */

static void print_sig(const char *sig)
{
	for (int i = 0; i < 4; i++) {
		char c = sig[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
		printf("%c", ok ? c : '?');
	}
}

static const struct acpi_header *acpi_table(u64 addr, const char *via)
{
	if (!addr || addr + sizeof(struct acpi_header) > boot.mapped_limit) {
		error(CHK_ACPI, "table=0x%lx via=%s unmapped", addr, via);
		return NULL;
	}
	const struct acpi_header *h = (const void *)(uintptr_t)addr;
	if (h->length < sizeof(*h) || h->length > 16 * MiB || addr + h->length > boot.mapped_limit) {
		error(CHK_ACPI, "table=0x%lx via=%s length=%u", addr, via, h->length);
		return NULL;
	}
	bool ok = !acpi_sum(h, h->length);
	printf("acpi_table sig=");
	print_sig(h->sig);
	printf(" addr=0x%lx len=%u rev=%u oem=", addr, h->length, h->revision);
	print_quoted(h->oem_id, 6);
	printf(" oem_table=");
	print_quoted(h->oem_table_id, 8);
	printf(" via=%s checksum=%s\n", via, ok ? "ok" : "bad");
	if (!ok) {
		char sig[5] = { 0 };
		memcpy(sig, h->sig, 4);
		error(CHK_ACPI, "sig=%s addr=0x%lx", sig, addr);
	}
	protect_add(addr, h->length, "acpi table");
	if (acpi.ntables < MAX_TABLES)
		acpi.tables[acpi.ntables++] = h;
	return h;
}

static void parse_madt(const struct acpi_header *h)
{
	const u8 *p = (const u8 *)h, *end = p + h->length;
	int enabled = 0, online = 0, other = 0;

	if (h->length < 44)
		return;
	for (const u8 *e = p + 44; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1]) {
		struct cpu c = { .type = e[0] };
		if (e[0] == 0 && e[1] >= 8) {
			c.uid = e[2];
			c.apic = e[3];
			c.flags = le32(e + 4);
		} else if (e[0] == 9 && e[1] >= 16) {
			c.apic = le32(e + 4);
			c.flags = le32(e + 8);
			c.uid = le32(e + 12);
		} else {
			other++;
			continue;
		}
		printf("madt_cpu type=%u uid=%u apic=%u flags=0x%x enabled=%u online_capable=%u\n", c.type,
		       c.uid, c.apic, c.flags, c.flags & 1, (c.flags >> 1) & 1);
		enabled += c.flags & 1;
		online += !(c.flags & 1) && (c.flags & 2);
		if (acpi.nmadt < MAX_CPUS)
			acpi.madt_cpus[acpi.nmadt++] = c;
	}
	printf("madt lapic_addr=0x%x flags=0x%x cpus=%d enabled=%d online_capable=%d other_entries=%d\n",
	       le32(p + 36), le32(p + 40), acpi.nmadt, enabled, online, other);
}

static void parse_srat(const struct acpi_header *h)
{
	const u8 *p = (const u8 *)h, *end = p + h->length;
	int other = 0;

	if (h->length < 48)
		return;
	for (const u8 *e = p + 48; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1]) {
		if ((e[0] == 0 && e[1] >= 16) || (e[0] == 2 && e[1] >= 24)) {
			struct cpu c = { .type = e[0] };
			if (e[0] == 0) {
				c.node = e[2] | (u32)e[9] << 8 | (u32)e[10] << 16 | (u32)e[11] << 24;
				c.apic = e[3];
				c.flags = le32(e + 4);
			} else {
				c.node = le32(e + 4);
				c.apic = le32(e + 8);
				c.flags = le32(e + 12);
			}
			printf("srat_cpu type=%u apic=%u node=%u flags=0x%x enabled=%u\n", c.type, c.apic,
			       c.node, c.flags, c.flags & 1);
			if (acpi.nsrat_cpus < MAX_CPUS)
				acpi.srat_cpus[acpi.nsrat_cpus++] = c;
		} else if (e[0] == 1 && e[1] >= 40) {
			struct mem m = { le64(e + 8), le64(e + 16), le32(e + 2), le32(e + 28), true };
			printf("srat_mem node=%u base=0x%lx size=0x%lx end=0x%lx flags=0x%x enabled=%u "
			       "hotpluggable=%u nonvolatile=%u\n", m.node, m.base, m.size, m.base + m.size,
			       m.flags, m.flags & 1, (m.flags >> 1) & 1, (m.flags >> 2) & 1);
			if (m.flags & 1)
				see(m.base + m.size);
			if (acpi.nsrat_mems < MAX_MEMS)
				acpi.srat_mems[acpi.nsrat_mems++] = m;
		} else {
			other++;
		}
	}
	acpi.srat_other = other;
}

/* Per proximity domain: enabled CPUs, enabled memory split by the hotpluggable flag. */
static void report_srat_nodes(void)
{
	u32 seen[MAX_NODES], n = 0;

	for (int i = 0; i < acpi.nsrat_cpus + acpi.nsrat_mems; i++) {
		bool cpu = i < acpi.nsrat_cpus;
		u32 node = cpu ? acpi.srat_cpus[i].node : acpi.srat_mems[i - acpi.nsrat_cpus].node;
		u32 flags = cpu ? acpi.srat_cpus[i].flags : acpi.srat_mems[i - acpi.nsrat_cpus].flags;
		u32 k = 0;
		if (!(flags & 1))
			continue;
		while (k < n && seen[k] != node)
			k++;
		if (k == n && n < MAX_NODES)
			seen[n++] = node;
	}
	for (u32 k = 0; k < n; k++) {	/* ascending node order */
		u32 min = k;
		for (u32 j = k + 1; j < n; j++)
			if (seen[j] < seen[min])
				min = j;
		u32 t = seen[k];
		seen[k] = seen[min];
		seen[min] = t;
	}
	for (u32 k = 0; k < n; k++) {
		u64 mem = 0, hp = 0;
		int cpus = 0;
		for (int i = 0; i < acpi.nsrat_cpus; i++)
			cpus += acpi.srat_cpus[i].node == seen[k] && (acpi.srat_cpus[i].flags & 1);
		for (int i = 0; i < acpi.nsrat_mems; i++) {
			const struct mem *m = &acpi.srat_mems[i];
			if (m->node == seen[k] && (m->flags & 1)) {
				if (m->flags & 2)
					hp += m->size;
				else
					mem += m->size;
			}
		}
		printf("srat_node node=%u cpus=%d mem=0x%lx hotplug_mem=0x%lx\n", seen[k], cpus, mem, hp);
	}
	printf("srat nodes=%u cpus=%d mems=%d other_entries=%d\n", n, acpi.nsrat_cpus, acpi.nsrat_mems,
	       acpi.srat_other);
}

static void parse_slit(const struct acpi_header *h)
{
	const u8 *p = (const u8 *)h;

	if (h->length < 44)
		return;
	u64 n = le64(p + 36);
	if (n > 256 || 44 + n * n > h->length) {
		error(CHK_SRAT_SLIT, "slit localities=%lu do not fit in %u bytes", n, h->length);
		return;
	}
	acpi.slit_n = n;
	acpi.slit_matrix = p + 44;
	bool linux_valid = true;	/* Linux ignores a SLIT failing drivers/acpi/numa: slit_valid() */
	for (u64 i = 0; i < n; i++)
		for (u64 j = 0; j < n; j++) {
			u8 d = acpi.slit_matrix[i * n + j];
			if ((i == j && d != 10) || (i != j && d <= 10))
				linux_valid = false;
		}
	printf("slit localities=%lu linux_valid=%d\n", n, linux_valid);
	for (u64 i = 0; i < n; i++) {
		printf("slit_row from=%lu dist=", i);
		for (u64 j = 0; j < n; j++)
			printf(j ? ",%u" : "%u", acpi.slit_matrix[i * n + j]);
		printf("\n");
	}
}

/* virtio-mmio transports declared in the DSDT/SSDTs */
static void scan_aml(const struct acpi_header *h)
{
	struct acpi_dev devs[MAX_VIRTIO];
	int n = acpi_find_hid(h, "LNRO0005", devs, MAX_VIRTIO - nvirtio);

	for (int i = 0; i < n; i++)
		virtio[nvirtio++] = (struct virtio){ .src = "acpi", .dev = devs[i] };
}

static void report_acpi(void)
{
	const char *source;
	const struct acpi_rsdp *r = acpi_find_rsdp(boot.si->rsdp_paddr, &source);

	if (!r) {
		skip(CHK_ACPI, "no RSDP");
		return;
	}
	u64 rsdp_len = r->revision >= 2 && r->length >= 36 && r->length <= 4096 ? r->length : 20;
	bool ok = !acpi_sum(r, 20) && (rsdp_len == 20 || !acpi_sum(r, rsdp_len));
	printf("acpi_rsdp addr=0x%lx revision=%u oem=", (u64)(uintptr_t)r, r->revision);
	print_quoted(r->oem_id, 6);
	printf(" rsdt=0x%x", r->rsdt);
	if (r->revision >= 2)
		printf(" xsdt=0x%lx", r->xsdt);
	printf(" source=%s checksum=%s\n", source, ok ? "ok" : "bad");
	if (!ok)
		error(CHK_ACPI, "sig=RSDP addr=0x%lx", (u64)(uintptr_t)r);
	protect_add((u64)(uintptr_t)r, rsdp_len, "rsdp");

	bool x = r->revision >= 2 && r->xsdt;
	const struct acpi_header *root = acpi_table(x ? r->xsdt : r->rsdt, "rsdp");
	if (!root)
		return;
	unsigned esz = x ? 8 : 4;
	const u8 *ents = (const u8 *)root + 36;
	for (u32 i = 0; i < (root->length - 36) / esz; i++) {
		const struct acpi_header *h = acpi_table(x ? le64(ents + 8 * i) : le32(ents + 4 * i),
							 x ? "xsdt" : "rsdt");
		if (!h)
			continue;
		if (!memcmp(h->sig, "FACP", 4)) {
			const u8 *f = (const u8 *)h;
			u64 dsdt = h->length >= 148 && le64(f + 140) ? le64(f + 140) :
				   h->length >= 44 ? le32(f + 40) : 0;
			if (dsdt)
				acpi_table(dsdt, "fadt");
		} else if (!memcmp(h->sig, "APIC", 4) && !acpi.madt) {
			acpi.madt = h;
		} else if (!memcmp(h->sig, "SRAT", 4) && !acpi.srat) {
			acpi.srat = h;
		} else if (!memcmp(h->sig, "SLIT", 4) && !acpi.slit) {
			acpi.slit = h;
		}
	}
	if (acpi.madt)
		parse_madt(acpi.madt);
	if (acpi.srat) {
		parse_srat(acpi.srat);
		report_srat_nodes();
	}
	if (acpi.slit)
		parse_slit(acpi.slit);
	for (int i = 0; i < acpi.ntables; i++)
		if (!memcmp(acpi.tables[i]->sig, "DSDT", 4) || !memcmp(acpi.tables[i]->sig, "SSDT", 4))
			scan_aml(acpi.tables[i]);
}

/* ---- FDT ---- */

static bool prop_str_has(const char *p, int len, const char *want)
{
	for (int i = 0; i < len; i += (int)strnlen(p + i, len - i) + 1)
		if (!strncmp(p + i, want, len - i))
			return true;
	return false;
}

static void fdt_print_string_prop(const char *key, const char *p, int len)
{
	printf(" %s=", key);
	print_quoted(p, len > 0 ? (size_t)len : 0);
}

static void report_fdt_node(int off, int depth, const char *parent, int acells, int scells)
{
	const struct fdt *f = &dt.f;
	const char *name = fdt_node_name(f, off);
	int len, rlen;
	const u8 *reg = fdt_getprop(f, off, "reg", &rlen);
	const char *type = fdt_getprop(f, off, "device_type", &len);
	bool is_type = type && len > 0;
	const u8 *nid = fdt_getprop(f, off, "numa-node-id", &len);
	bool has_node = nid && len == 4;
	u32 node = has_node ? be32(nid) : 0;

	if (is_type && !strcmp(type, "memory")) {
		const char *kind = fdt_getprop(f, off, "memvisor,kind", &len);
		bool hp = fdt_getprop(f, off, "hotpluggable", &len) != NULL;
		int tuple = 4 * (acells + scells);
		if (!reg || rlen % tuple || !rlen)
			error(CHK_FDT, "node=%s bad reg", name);
		for (int i = 0; reg && rlen % tuple == 0 && i < rlen / tuple; i++) {
			struct mem m = { fdt_cells(reg + i * tuple, acells),
					 fdt_cells(reg + i * tuple + 4 * acells, scells), node, 0, has_node };
			printf("fdt_mem addr=0x%lx size=0x%lx end=0x%lx", m.base, m.size, m.base + m.size);
			if (has_node)
				printf(" node=%u", node);
			printf(" hotpluggable=%d", hp);
			if (kind)
				fdt_print_string_prop("kind", kind, len);
			printf(" name=");
			print_quoted(name, 64);
			printf("\n");
			see(m.base + m.size);
			if (dt.nmems < MAX_MEMS) {
				dt.hotplug[dt.nmems] = hp;
				dt.mems[dt.nmems++] = m;
			}
		}
	} else if (depth == 2 && !strcmp(parent, "cpus") && is_type && !strcmp(type, "cpu")) {
		const char *status = fdt_getprop(f, off, "status", &len);
		struct cpu c = { .node = node };
		if (!reg || rlen < 4 * acells || !acells)
			error(CHK_FDT, "node=%s bad reg", name);
		else
			c.apic = (u32)fdt_cells(reg, acells);
		printf("fdt_cpu apic=%u", c.apic);
		if (has_node)
			printf(" node=%u", node);
		fdt_print_string_prop("status", status ? status : "okay", status ? len : 4);
		printf("\n");
		if (dt.ncpus < MAX_CPUS) {
			dt.cpu_has_node[dt.ncpus] = has_node;
			dt.cpus[dt.ncpus++] = c;
		}
	} else if (depth == 1 && !strcmp(name, "distance-map")) {
		const u8 *m = fdt_getprop(f, off, "distance-matrix", &len);
		if (!m || len % 12) {
			error(CHK_FDT, "distance-map without a distance-matrix of triplets");
			return;
		}
		dt.has_dist = true;
		for (int i = 0; i < len / 12; i++) {
			u32 a = be32(m + 12 * i), b = be32(m + 12 * i + 4), d = be32(m + 12 * i + 8);
			if (a >= MAX_NODES || b >= MAX_NODES || d > 255) {
				error(CHK_FDT, "distance-matrix entry %u %u %u out of range", a, b, d);
				continue;
			}
			dt.dist[a][b] = (u8)d;
			if (a + 1 > dt.dist_n)
				dt.dist_n = a + 1;
			if (b + 1 > dt.dist_n)
				dt.dist_n = b + 1;
		}
		printf("fdt_distance_map entries=%d nodes=%u\n", len / 12, dt.dist_n);
		for (u32 i = 0; i < dt.dist_n; i++) {
			printf("fdt_dist_row from=%u dist=", i);
			for (u32 j = 0; j < dt.dist_n; j++)
				printf(j ? ",%u" : "%u", dt.dist[i][j]);
			printf("\n");
		}
	}
	const char *compat = fdt_getprop(f, off, "compatible", &len);
	if (compat && prop_str_has(compat, len, "virtio,mmio") && nvirtio < MAX_VIRTIO) {
		struct virtio *v = &virtio[nvirtio++];
		*v = (struct virtio){ .src = "fdt", .fdt_name = name };
		if (reg && rlen >= 4 * (acells + scells)) {
			v->dev.base = fdt_cells(reg, acells);
			v->dev.size = fdt_cells(reg + 4 * acells, scells);
			v->dev.has_base = true;
		}
		const u8 *irq = fdt_getprop(f, off, "interrupts", &len);
		if (irq && len >= 4)
			v->dev.irq = be32(irq), v->dev.has_irq = true;
	}
}

static void report_fdt(void)
{
	for (u32 i = 0; i < boot.nr_mods; i++) {
		const struct hvm_modlist_entry *m = &boot.mods[i];
		bool is_fdt = m->size >= 4 && m->paddr + m->size <= boot.mapped_limit &&
			      be32((const void *)(uintptr_t)m->paddr) == FDT_MAGIC;
		printf("module index=%u source=start_info addr=0x%lx size=0x%lx kind=%s", i, m->paddr, m->size,
		       is_fdt ? "fdt" : "other");
		if (m->cmdline_paddr && m->cmdline_paddr < 4 * GiB) {
			printf(" cmdline=");
			print_quoted((const char *)(uintptr_t)m->cmdline_paddr, 256);
		}
		printf("\n");
		if (!is_fdt || dt.present)
			continue;
		const char *why;
		if (fdt_open(&dt.f, (const void *)(uintptr_t)m->paddr, m->size, &why)) {
			error(CHK_FDT, "module=%u %s", i, why);
			continue;
		}
		dt.present = true;
	}
	char arg[24];
	u64 addr;
	if (!dt.present && cmdline_get(boot.cmdline, "fdt", arg, sizeof(arg))) {
		/* A blob put in RAM by other means (QEMU -device loader): lets QEMU test the parser */
		const char *why = "bad address";
		if (parse_size(arg, &addr) && addr && addr + 40 <= boot.mapped_limit &&
		    !fdt_open(&dt.f, (const void *)(uintptr_t)addr, boot.mapped_limit - addr, &why)) {
			dt.present = true;
			protect_add(addr, dt.f.size, "fdt");
			printf("module source=cmdline addr=0x%lx size=0x%x kind=fdt\n", addr, dt.f.size);
		} else {
			error(CHK_FDT, "fdt=%s %s", arg, why);
		}
	}
	if (!dt.present) {
		skip(CHK_FDT, "no FDT module");
		return;
	}

	/* #address-cells/#size-cells in force for the children of each depth */
	int acells[16] = { 2 }, scells[16] = { 1 }, depth = 0, len, nodes = 0;
	char parent[16][32] = { "" };
	const char *compat = NULL;
	int clen = 0;
	for (int off = fdt_next_node(&dt.f, -1, &depth); off >= 0; off = fdt_next_node(&dt.f, off, &depth)) {
		nodes++;
		if (depth >= 15) {
			error(CHK_FDT, "tree deeper than 15");
			break;
		}
		if (depth == 0)
			compat = fdt_getprop(&dt.f, off, "compatible", &clen);
		const u8 *ac = fdt_getprop(&dt.f, off, "#address-cells", &len);
		acells[depth + 1] = ac && len == 4 ? (int)be32(ac) : 2;
		const u8 *sc = fdt_getprop(&dt.f, off, "#size-cells", &len);
		scells[depth + 1] = sc && len == 4 ? (int)be32(sc) : 1;
		if (acells[depth + 1] > 2 || scells[depth + 1] > 2) {
			error(CHK_FDT, "node=%s cells larger than 2", fdt_node_name(&dt.f, off));
			acells[depth + 1] = scells[depth + 1] = 2;
		}
		const char *name = fdt_node_name(&dt.f, off);
		size_t n = strnlen(name, sizeof(parent[0]) - 1);
		memcpy(parent[depth + 1], name, n);
		parent[depth + 1][n] = 0;
		report_fdt_node(off, depth, depth ? parent[depth] : "", acells[depth], scells[depth]);
	}
	printf("fdt addr=0x%lx size=0x%x version=%u nodes=%d", (u64)(uintptr_t)dt.f.blob, dt.f.size,
	       dt.f.version, nodes);
	if (compat)
		fdt_print_string_prop("compatible", compat, clen);
	printf(" mems=%d cpus=%d\n", dt.nmems, dt.ncpus);
}

/* ---- cross-checks ---- */

struct range { u64 start, end; u32 node; bool hp; };

/* Sort, drop the legacy hole [0xa0000, 0x100000) (sources may or may not cut it), merge */
#define HOLE_START 0xa0000ULL
#define HOLE_END 0x100000ULL
static int normalise(struct range *r, int n, int max)
{
	for (int i = 0, n0 = n; i < n0; i++) {
		u64 s = r[i].start, e = r[i].end;
		if (s >= HOLE_END || e <= HOLE_START)
			continue;
		bool left = s < HOLE_START, right = e > HOLE_END;
		r[i].start = left ? s : HOLE_END;
		r[i].end = left ? HOLE_START : right ? e : HOLE_END;
		if (left && right && n < max)
			r[n++] = (struct range){ HOLE_END, e, r[i].node, r[i].hp };
	}
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && r[j].start < r[j - 1].start; j--) {
			struct range t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	int out = 0;
	for (int i = 0; i < n; i++) {
		if (r[i].end <= r[i].start)
			continue;
		if (out && r[out - 1].end >= r[i].start && r[out - 1].node == r[i].node && r[out - 1].hp == r[i].hp) {
			if (r[i].end > r[out - 1].end)
				r[out - 1].end = r[i].end;
		} else {
			r[out++] = r[i];
		}
	}
	return out;
}

static void compare_ranges(const struct range *a, int na, const char *an, const struct range *b, int nb)
{
	for (int i = 0; i < na; i++) {
		int j = 0;
		while (j < nb && !(a[i].start == b[j].start && a[i].end == b[j].end &&
				   a[i].node == b[j].node && a[i].hp == b[j].hp))
			j++;
		if (j == nb)
			error(CHK_SRAT_FDT_MEM, "only_in=%s start=0x%lx end=0x%lx node=%d hotpluggable=%d", an,
			      a[i].start, a[i].end, (int)a[i].node, a[i].hp);
	}
}

static void check_srat_fdt(void)
{
	static struct range s[2 * MAX_MEMS], f[2 * MAX_MEMS];
	bool fdt_numa = false;
	int ns = 0, nf = 0;

	for (int i = 0; i < dt.nmems; i++)
		fdt_numa |= dt.mems[i].has_node;
	for (int i = 0; i < dt.ncpus; i++)
		fdt_numa |= dt.cpu_has_node[i];
	if (!dt.present || (!acpi.srat && !fdt_numa)) {
		skip(CHK_SRAT_FDT_MEM, dt.present ? "no NUMA in SRAT or FDT" : "no FDT");
		skip(CHK_SRAT_FDT_CPU, dt.present ? "no NUMA in SRAT or FDT" : "no FDT");
		return;
	}
	if (!acpi.srat) {
		error(CHK_SRAT_FDT_MEM, "FDT has numa-node-id but there is no SRAT");
		skip(CHK_SRAT_FDT_CPU, "no SRAT");
		return;
	}
	for (int i = 0; i < acpi.nsrat_mems; i++) {
		const struct mem *m = &acpi.srat_mems[i];
		if ((m->flags & 1) && m->size)
			s[ns++] = (struct range){ m->base, m->base + m->size, m->node, (m->flags & 2) != 0 };
	}
	for (int i = 0; i < dt.nmems; i++) {
		const struct mem *m = &dt.mems[i];
		if (!m->has_node)
			error(CHK_SRAT_FDT_MEM, "fdt memory 0x%lx-0x%lx has no numa-node-id", m->base,
			      m->base + m->size);
		f[nf++] = (struct range){ m->base, m->base + m->size, m->has_node ? m->node : ~0u, dt.hotplug[i] };
	}
	ns = normalise(s, ns, ARRAY_SIZE(s));
	nf = normalise(f, nf, ARRAY_SIZE(f));
	compare_ranges(s, ns, "srat", f, nf);
	compare_ranges(f, nf, "fdt", s, ns);

	/* CPUs: every FDT cpu (okay or disabled) vs every enabled SRAT CPU entry, by APIC id */
	int nsrat = 0;
	for (int i = 0; i < acpi.nsrat_cpus; i++) {
		const struct cpu *c = &acpi.srat_cpus[i];
		if (!(c->flags & 1))
			continue;
		nsrat++;
		int j = 0;
		while (j < dt.ncpus && dt.cpus[j].apic != c->apic)
			j++;
		if (j == dt.ncpus)
			error(CHK_SRAT_FDT_CPU, "apic=%u only_in=srat", c->apic);
		else if (!dt.cpu_has_node[j] || dt.cpus[j].node != c->node)
			error(CHK_SRAT_FDT_CPU, "apic=%u srat_node=%u fdt_node=%d", c->apic, c->node,
			      dt.cpu_has_node[j] ? (int)dt.cpus[j].node : -1);
	}
	for (int j = 0; j < dt.ncpus; j++) {
		int i = 0;
		while (i < acpi.nsrat_cpus && !(acpi.srat_cpus[i].apic == dt.cpus[j].apic &&
						 (acpi.srat_cpus[i].flags & 1)))
			i++;
		if (i == acpi.nsrat_cpus)
			error(CHK_SRAT_FDT_CPU, "apic=%u only_in=fdt", dt.cpus[j].apic);
	}
}

static void check_slit_fdt(void)
{
	if (!dt.present || (!acpi.slit_matrix && !dt.has_dist)) {
		skip(CHK_SLIT_FDT, dt.present ? "no SLIT and no distance-map" : "no FDT");
		return;
	}
	if (!acpi.slit_matrix || !dt.has_dist) {
		error(CHK_SLIT_FDT, "only_in=%s", acpi.slit_matrix ? "slit" : "fdt");
		return;
	}
	if (acpi.slit_n != dt.dist_n)
		error(CHK_SLIT_FDT, "slit_localities=%lu fdt_nodes=%u", acpi.slit_n, dt.dist_n);
	for (u32 i = 0; i < dt.dist_n && i < acpi.slit_n; i++)
		for (u32 j = 0; j < dt.dist_n && j < acpi.slit_n; j++)
			if (acpi.slit_matrix[i * acpi.slit_n + j] != dt.dist[i][j])
				error(CHK_SLIT_FDT, "from=%u to=%u slit=%u fdt=%u", i, j,
				      acpi.slit_matrix[i * acpi.slit_n + j], dt.dist[i][j]);
}

static void check_acpi_cpus(void)
{
	if (!acpi.srat) {
		skip(CHK_MADT_SRAT, "no SRAT");
		skip(CHK_SRAT_SLIT, "no SRAT");
		return;
	}
	/* Every MADT processor (enabled or not) has an enabled SRAT entry and vice versa */
	int nsrat = 0;
	for (int i = 0; i < acpi.nsrat_cpus; i++)
		nsrat += acpi.srat_cpus[i].flags & 1;
	if (nsrat != acpi.nmadt)
		error(CHK_MADT_SRAT, "madt_cpus=%d srat_cpus=%d", acpi.nmadt, nsrat);
	for (int i = 0; i < acpi.nmadt; i++) {
		int j = 0;
		while (j < acpi.nsrat_cpus && !(acpi.srat_cpus[j].apic == acpi.madt_cpus[i].apic &&
						 (acpi.srat_cpus[j].flags & 1)))
			j++;
		if (j == acpi.nsrat_cpus)
			error(CHK_MADT_SRAT, "apic=%u only_in=madt", acpi.madt_cpus[i].apic);
	}
	if (!acpi.slit_matrix) {
		skip(CHK_SRAT_SLIT, "no SLIT");
		return;
	}
	for (int i = 0; i < acpi.nsrat_cpus + acpi.nsrat_mems; i++) {
		bool cpu = i < acpi.nsrat_cpus;
		u32 node = cpu ? acpi.srat_cpus[i].node : acpi.srat_mems[i - acpi.nsrat_cpus].node;
		u32 flags = cpu ? acpi.srat_cpus[i].flags : acpi.srat_mems[i - acpi.nsrat_cpus].flags;
		if ((flags & 1) && node >= acpi.slit_n)
			error(CHK_SRAT_SLIT, "node=%u localities=%lu", node, acpi.slit_n);
	}
}

/* ---- virtio-mmio ---- */

static void report_virtio(void)
{
	for (int i = 0; i < nvirtio; i++) {
		const struct acpi_dev *d = &virtio[i].dev;
		printf("virtio_mmio src=%s name=", virtio[i].src);
		print_quoted(virtio[i].fdt_name ? virtio[i].fdt_name : d->name, 64);
		if (d->has_uid)
			printf(" uid=%u", d->uid);
		if (d->has_base)
			printf(" base=0x%lx size=0x%lx", d->base, d->size);
		if (d->has_irq)
			printf(" irq=%u", d->irq);
		/* The transport's own registers (virtio 1.2, 4.2.2): magic, version, device id */
		if (d->has_base && d->size >= 0x100 && d->base % 4 == 0 && d->base + 0x100 <= boot.mapped_limit)
			printf(" magic=0x%x version=%u device_id=%u vendor=0x%x", mmio_read32(d->base),
			       mmio_read32(d->base + 4), mmio_read32(d->base + 8), mmio_read32(d->base + 12));
		printf("\n");
	}
}

/* ---- raw dumps (dump=SIG,SIG,...|all): lets the harness parse the same bytes itself ---- */

static bool dump_wanted(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!strcmp(list, "all"))
		return true;
	for (const char *p = list; *p;) {
		const char *c = p;
		while (*c && *c != ',')
			c++;
		if ((size_t)(c - p) == n && !strncmp(p, name, n))
			return true;
		p = *c ? c + 1 : c;
	}
	return false;
}

static void dump(const char *name, const u8 *p, u64 len)
{
	printf("dump name=%s addr=0x%lx len=%lu\n", name, (u64)(uintptr_t)p, len);
	for (u64 off = 0; off < len; off += 64) {
		printf("dump_data name=%s off=0x%lx hex=", name, off);
		for (u64 i = off; i < len && i < off + 64; i++)
			printf("%02x", p[i]);
		printf("\n");
	}
}

static void dumps(void)
{
	char list[128];

	if (!cmdline_get(boot.cmdline, "dump", list, sizeof(list)))
		return;
	for (int i = 0; i < acpi.ntables; i++) {
		char sig[5] = { 0 };
		memcpy(sig, acpi.tables[i]->sig, 4);
		if (dump_wanted(list, sig))
			dump(sig, (const u8 *)acpi.tables[i], acpi.tables[i]->length);
	}
	if (dt.present && dump_wanted(list, "FDT"))
		dump("FDT", dt.f.blob, dt.f.size);
}

/* ---- memory test ---- */

#define MEMTEST_FULL_MAX	GiB	/* above this much usable RAM the default is to sample */
#define MEMTEST_SAMPLE_STRIDE	512	/* pages: one page in every 2 MiB */

static inline u64 pattern(u64 addr)
{
	return (addr * 0x9e3779b97f4a7c15ULL) ^ 0x6d656d7669736f72ULL;
}

static u64 memtest_pass(u64 stride, bool write, u64 *skipped)
{
	u64 tested = 0;

	for (u32 i = 0; i < boot.e820_entries; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		if (e->type != E820_RAM)
			continue;
		u64 end = ALIGN_DOWN(e->addr + e->size, PAGE_SIZE);
		if (end > boot.mapped_limit)
			end = boot.mapped_limit;
		for (u64 p = ALIGN_UP(e->addr, stride * PAGE_SIZE); p < end; p += stride * PAGE_SIZE) {
			if (protect_overlaps(p, PAGE_SIZE)) {
				++*skipped;
				continue;
			}
			volatile u64 *first = (volatile u64 *)(uintptr_t)p;
			volatile u64 *last = (volatile u64 *)(uintptr_t)(p + PAGE_SIZE - 8);
			tested++;
			if (write) {
				*first = pattern(p);
				*last = ~pattern(p + PAGE_SIZE - 8);
				continue;
			}
			u64 a = *first, b = *last;
			if (a != pattern(p))
				error(CHK_MEMTEST, "addr=0x%lx expected=0x%lx got=0x%lx", p, pattern(p), a);
			if (b != ~pattern(p + PAGE_SIZE - 8))
				error(CHK_MEMTEST, "addr=0x%lx expected=0x%lx got=0x%lx", p + PAGE_SIZE - 8,
				      ~pattern(p + PAGE_SIZE - 8), b);
		}
	}
	return tested;
}

static void memtest(void)
{
	char mode[16] = "auto";
	u64 usable = 0, stride, skipped = 0, unused = 0;

	cmdline_get(boot.cmdline, "memtest", mode, sizeof(mode));
	for (u32 i = 0; i < boot.e820_entries; i++)
		if (boot.e820[i].type == E820_RAM)
			usable += boot.e820[i].size;
	if (!strcmp(mode, "off")) {
		printf("memtest mode=off\n");
		skip(CHK_MEMTEST, "memtest=off");
		return;
	}
	if (strcmp(mode, "full") && strcmp(mode, "sample")) {
		if (strcmp(mode, "auto"))
			error(CHK_MEMTEST, "unknown memtest=%s (full|sample|off)", mode);
		memcpy(mode, usable > MEMTEST_FULL_MAX ? "sample" : "full", 7);
	}
	stride = !strcmp(mode, "full") ? 1 : MEMTEST_SAMPLE_STRIDE;
	debug_mark(DEBUG_MEMTEST_START);
	u64 t0 = rdtsc();
	u64 tested = memtest_pass(stride, true, &skipped);
	memtest_pass(stride, false, &unused);
	u64 t1 = rdtsc();
	debug_mark(DEBUG_MEMTEST_END);
	printf("memtest mode=%s stride=%lu pages=%lu skipped=%lu bytes=0x%lx errors=%u cycles=%lu\n", mode,
	       stride, tested, skipped, tested * PAGE_SIZE, checks[CHK_MEMTEST].errors, t1 - t0);
	if (!tested)
		error(CHK_MEMTEST, "no page tested");
}

int main(void)
{
	print_boot_info();
	report_e820();
	report_acpi();
	report_fdt();
	check_acpi_cpus();
	check_srat_fdt();
	check_slit_fdt();
	for (int i = 0; i < nvirtio; i++)
		if (virtio[i].dev.has_base)
			see(virtio[i].dev.base + virtio[i].dev.size);
	paging_map(highest);
	printf("paging page_size=0x%lx limit=0x%lx highest=0x%lx table_pages=%lu\n",
	       boot.gbpages ? GiB : 2 * MiB, boot.mapped_limit, highest,
	       (boot.heap_end - boot.heap_start) / PAGE_SIZE);
	if (highest > 1ULL << boot.phys_bits)
		error(CHK_ADDR_WIDTH, "highest=0x%lx phys_bits=%u", highest, boot.phys_bits);
	report_virtio();
	dumps();
	memtest();

	return checks_report(checks, NCHECKS);
}
