/*
 * ACPI tables for a hardware-reduced x86 VM (ACPI 6.3): RSDP, XSDT, FADT, DSDT, MADT and, with
 * --numa, SRAT and SLIT. Everything is laid out in one buffer the guest sees at buf_gpa:
 *
 *	RSDP | DSDT | FADT | MADT | [SRAT | SLIT] | XSDT
 *
 * The XSDT comes last because it holds the addresses of the others. Field offsets are those of
 * the ACPI 6.3 specification; the tables are little-endian byte arrays rather than packed structs
 * so that no field depends on the compiler's layout.
 */
#include <string.h>

#include "arch/x86/platform.h"
#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "memory/numa.h"
#include "util.h"

#define ACPI_OEM_ID		"MEMVSR"	/* 6 bytes */
#define ACPI_OEM_TABLE_PREFIX	"MVSR"		/* + the signature: 8 bytes */
#define ACPI_CREATOR_ID		"MVSR"
#define ACPI_HEADER_SIZE	36
#define ACPI_RSDP_SIZE		36
#define ACPI_RSDP_V1_SIZE	20		/* what the first checksum covers */

/*
 * KVM's in-kernel IOAPIC (KVM_CREATE_IRQCHIP) resets its ID register to 0, and QEMU describes it
 * with ID 0 as well; x86_64 Linux takes the MADT's value and never renumbers it.
 */
#define IOAPIC_ID		0

#define FADT_SIZE		276		/* revision 6: up to Hypervisor Vendor Identity */
#define FADT_MINOR		3		/* 6.3: Linux honours MADT online-capable from 6.3 */
#define FADT_F_PWR_BUTTON	(1u << 4)	/* no fixed-feature power button */
#define FADT_F_SLP_BUTTON	(1u << 5)	/* no fixed-feature sleep button */
#define FADT_F_RESET_REG_SUP	(1u << 10)
#define FADT_F_HW_REDUCED	(1u << 20)
#define GAS_SYSTEM_IO		1
#define GAS_ACCESS_BYTE		1
#define IAPC_VGA_NOT_PRESENT	(1u << 2)
#define IAPC_CMOS_RTC_ABSENT	(1u << 5)

#define MADT_REVISION		5		/* 6.3: Online Capable flag */
#define MADT_LAPIC		0
#define MADT_IOAPIC		1
#define MADT_X2APIC		9
#define MADT_ENABLED		1u
#define MADT_ONLINE_CAPABLE	2u

#define SRAT_REVISION		3
#define SRAT_LAPIC_AFFINITY	0
#define SRAT_MEM_AFFINITY	1
#define SRAT_X2APIC_AFFINITY	2
#define SRAT_ENABLED		1u
#define SRAT_HOTPLUGGABLE	2u

/* The buffer being filled; any table that does not fit marks it full and the build fails. */
struct acpi_buf {
	uint8_t *p;
	size_t size, used;
	uint64_t gpa;
	bool full;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A Generic Address Structure for one byte-wide I/O port. */
static void put_gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = GAS_SYSTEM_IO;
	g[1] = 8;				/* register bit width */
	g[2] = 0;				/* bit offset */
	g[3] = GAS_ACCESS_BYTE;
	put64(g + 4, port);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/*
 * Reserve len zeroed bytes, 8-byte aligned (the RSDP must be 16-byte aligned and buf_gpa is;
 * the rest only benefits). Returns the table or NULL when the buffer is full.
 */
static uint8_t *acpi_alloc(struct acpi_buf *b, size_t len)
{
	size_t start = ALIGN_UP(b->used, (size_t)8);

	if (b->full || start > b->size || len > b->size - start) {
		b->full = true;
		return NULL;
	}
	memset(b->p + b->used, 0, start - b->used + len);
	b->used = start + len;
	return b->p + start;
}

static uint64_t acpi_gpa(const struct acpi_buf *b, const uint8_t *table)
{
	return b->gpa + (uint64_t)(table - b->p);
}

static void sdt_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_PREFIX, 4);
	memcpy(t + 20, sig, 4);
	put32(t + 24, 1);			/* OEM revision */
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, 1);			/* creator revision */
}

/* Call last, once every byte of the table is final. */
static void sdt_checksum(uint8_t *t)
{
	uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
		       (uint32_t)t[7] << 24;

	t[9] = 0;
	t[9] = checksum(t, len);
}

/* The DSDT lists as many processors as the MADT, SRAT and FDT do. */
static unsigned vcpu_count(const struct vm_config *cfg)
{
	return numa__vcpu_count(cfg);
}

/* One question to numa.h, for callers holding only the configuration (the tables' tests). */
uint32_t acpi__cpu_node(const struct vm_config *cfg, unsigned cpu)
{
	struct numa n;
	char err[128];

	if (numa__build(&n, cfg, NULL, err, sizeof(err)) || cpu >= n.nvcpus || n.vcpu_node[cpu] < 0)
		return 0;
	return (uint32_t)n.vcpu_node[cpu];
}

uint8_t acpi__distance(const struct vm_config *cfg, int i, int j)
{
	struct numa n;
	char err[128];

	if (i == j)
		return NUMA_LOCAL_DISTANCE;
	if (i < 0 || j < 0 || i >= cfg->nnuma || j >= cfg->nnuma ||
	    numa__build(&n, cfg, NULL, err, sizeof(err)))
		return NUMA_DEFAULT_DISTANCE;
	return n.distance[cfg->numa[i].guest_numa_id][cfg->numa[j].guest_numa_id];
}

/* ---- DSDT ---- */

/*
 * One ACPI0007 processor device per possible vCPU, matched to its MADT entry by _UID = vCPU
 * index. _STA agrees with the MADT: 0xF (present, enabled) for boot vCPUs, 0 for the ones MADT
 * marks online-capable only, which CPU hotplug will turn on later.
 */
static void dsdt_cpu(struct aml *a, unsigned cpu, bool present)
{
	char name[8];

	snprintf(name, sizeof(name), "C%03X", cpu & 0xfff);
	aml__device(a, name);
	aml__name(a, "_HID");
	aml__string(a, "ACPI0007");
	aml__name(a, "_UID");
	aml__int(a, cpu);
	aml__method(a, "_STA", 0, false);
	aml__op(a, AML_RETURN);
	aml__int(a, present ? 0xf : 0);
	aml__pkg_close(a);
	aml__pkg_close(a);
}

static uint8_t *build_dsdt(struct acpi_buf *b, const struct vm_config *cfg,
			   acpi_aml_fn devices_aml, const void *ctx, char *err, size_t errlen)
{
	uint8_t *t = NULL;
	struct aml a;
	char why[128];

	/* No AML larger than the whole buffer could fit in it: no need to build it further. */
	aml__init(&a, b->size);
	if (devices_aml)
		devices_aml(ctx, &a);
	aml__scope(&a, "\\_SB_");
	for (unsigned cpu = 0; cpu < vcpu_count(cfg); cpu++)
		dsdt_cpu(&a, cpu, cpu < cfg->boot_cpus);
	aml__pkg_close(&a);
	/* The builder's own message says what failed: the limit, an allocation, a bad name. */
	if (aml__finish(&a, why, sizeof(why)) < 0) {
		error(err, errlen, "ACPI: DSDT: %s", why);
		aml__free(&a);
		return NULL;
	}
	t = acpi_alloc(b, ACPI_HEADER_SIZE + a.len);
	if (t) {
		memcpy(t + ACPI_HEADER_SIZE, a.buf, a.len);
		sdt_header(t, "DSDT", (uint32_t)(ACPI_HEADER_SIZE + a.len), 2);
		sdt_checksum(t);
	}
	aml__free(&a);
	return t;
}

/* ---- fixed tables ---- */

static uint8_t *build_fadt(struct acpi_buf *b, uint64_t dsdt_gpa)
{
	uint8_t *t = acpi_alloc(b, FADT_SIZE);

	if (!t)
		return NULL;
	sdt_header(t, "FACP", FADT_SIZE, 6);
	/*
	 * Hardware-reduced: no PM1/GPE blocks, no SCI, no FACS, and Linux installs its null
	 * legacy PIC and skips the PIT/HPET. IAPC_BOOT_ARCH's 8042 bit stays clear so that the
	 * guest does not probe a keyboard controller we do not emulate; there is no RTC either.
	 */
	put16(t + 109, IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_ABSENT);
	put32(t + 112, FADT_F_HW_REDUCED | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
			       FADT_F_RESET_REG_SUP);
	/*
	 * Power off and reset go through devices/acpi_power.c's byte registers: Linux needs both
	 * sleep registers (and \_S5) before it offers ACPI power-off on hardware-reduced ACPI.
	 */
	put_gas_io8(t + 116, ACPI_RESET_PORT);		/* RESET_REG */
	t[128] = ACPI_RESET_VALUE;
	t[131] = FADT_MINOR;
	put64(t + 140, dsdt_gpa);		/* X_DSDT; the 32-bit DSDT field stays 0 */
	put_gas_io8(t + 244, ACPI_SLEEP_CONTROL_PORT);
	put_gas_io8(t + 256, ACPI_SLEEP_STATUS_PORT);
	memcpy(t + 268, "MEMVISOR", 8);		/* Hypervisor Vendor Identity */
	sdt_checksum(t);
	return t;
}

static uint8_t *build_madt(struct acpi_buf *b, const struct numa *numa)
{
	size_t len = 44 + 12;
	uint8_t *t, *e;

	for (unsigned cpu = 0; cpu < numa->nvcpus; cpu++)
		len += numa->apic_id[cpu] < 0xff ? 8 : 16;
	t = acpi_alloc(b, len);
	if (!t)
		return NULL;
	sdt_header(t, "APIC", (uint32_t)len, MADT_REVISION);
	put32(t + 36, LAPIC_ADDR);
	/* flags 0: no PCAT_COMPAT; with a hardware-reduced FADT Linux never drives the 8259s */
	e = t + 44;
	for (unsigned cpu = 0; cpu < numa->nvcpus; cpu++) {
		uint32_t apic = numa->apic_id[cpu];
		uint32_t flags = cpu < numa->nboot ? MADT_ENABLED : MADT_ONLINE_CAPABLE;

		/* 0xff is the xAPIC broadcast id: from there on only x2APIC entries work. */
		if (apic < 0xff) {
			e[0] = MADT_LAPIC;
			e[1] = 8;
			e[2] = (uint8_t)cpu;	/* ACPI processor UID = _UID in the DSDT */
			e[3] = (uint8_t)apic;
			put32(e + 4, flags);
			e += 8;
		} else {
			e[0] = MADT_X2APIC;
			e[1] = 16;
			put32(e + 4, apic);
			put32(e + 8, flags);
			put32(e + 12, cpu);
			e += 16;
		}
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = IOAPIC_ID;
	put32(e + 4, IOAPIC_ADDR);
	put32(e + 8, 0);			/* GSI base: ISA IRQ n is GSI n, the UART's 4 included */
	sdt_checksum(t);
	return t;
}

/* Memory affinity entries follow the layout's ranges, in order, hotplug areas included. */
static uint8_t *build_srat(struct acpi_buf *b, const struct numa *numa, const struct layout *l)
{
	size_t len = 48;
	uint8_t *t, *e;

	for (unsigned cpu = 0; cpu < numa->nvcpus; cpu++)
		len += numa->apic_id[cpu] < 0xff ? 16 : 24;
	len += 40 * (size_t)l->nranges;
	t = acpi_alloc(b, len);
	if (!t)
		return NULL;
	sdt_header(t, "SRAT", (uint32_t)len, SRAT_REVISION);
	put32(t + 36, 1);			/* "reserved, must be 1" for backward compatibility */
	e = t + 48;
	/*
	 * Every possible vCPU is listed as enabled, present or not: the guest sizes its per-node
	 * CPU maps at boot, and a vCPU hotplugged later must already have a node.
	 */
	for (unsigned cpu = 0; cpu < numa->nvcpus; cpu++) {
		uint32_t apic = numa->apic_id[cpu], pxm = (uint32_t)numa->vcpu_node[cpu];

		if (apic < 0xff) {
			e[0] = SRAT_LAPIC_AFFINITY;
			e[1] = 16;
			e[2] = (uint8_t)pxm;
			e[3] = (uint8_t)apic;
			put32(e + 4, SRAT_ENABLED);
			e[9] = (uint8_t)(pxm >> 8);
			e[10] = (uint8_t)(pxm >> 16);
			e[11] = (uint8_t)(pxm >> 24);
			e += 16;
		} else {
			e[0] = SRAT_X2APIC_AFFINITY;
			e[1] = 24;
			put32(e + 4, pxm);
			put32(e + 8, apic);
			put32(e + 12, SRAT_ENABLED);
			e += 24;
		}
	}
	for (int i = 0; i < l->nranges; i++) {
		const struct mem_range *r = &l->ranges[i];

		e[0] = SRAT_MEM_AFFINITY;
		e[1] = 40;
		put32(e + 2, (uint32_t)numa->range_node[i]);
		put64(e + 8, r->gpa);
		put64(e + 16, r->size);
		put32(e + 28, r->kind == RANGE_RAM ? SRAT_ENABLED :
						     SRAT_ENABLED | SRAT_HOTPLUGGABLE);
		e += 40;
	}
	sdt_checksum(t);
	return t;
}

/* Localities are the node ids 0..N-1, as numa.distance is indexed. */
static uint8_t *build_slit(struct acpi_buf *b, const struct numa *numa)
{
	size_t n = (size_t)numa->nnodes, len = 44 + n * n;
	uint8_t *t = acpi_alloc(b, len);

	if (!t)
		return NULL;
	sdt_header(t, "SLIT", (uint32_t)len, 1);
	put64(t + 36, n);
	for (size_t from = 0; from < n; from++)
		for (size_t to = 0; to < n; to++)
			t[44 + from * n + to] = numa->distance[from][to];
	sdt_checksum(t);
	return t;
}

static uint8_t *build_xsdt(struct acpi_buf *b, const uint64_t *tables, int n)
{
	size_t len = ACPI_HEADER_SIZE + 8 * (size_t)n;
	uint8_t *t = acpi_alloc(b, len);

	if (!t)
		return NULL;
	sdt_header(t, "XSDT", (uint32_t)len, 1);
	for (int i = 0; i < n; i++)
		put64(t + ACPI_HEADER_SIZE + 8 * i, tables[i]);
	sdt_checksum(t);
	return t;
}

/* Revision 2 with an XSDT only: every guest we boot is 64-bit and ACPI 2.0+. */
static void fill_rsdp(uint8_t *r, uint64_t xsdt_gpa)
{
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, ACPI_OEM_ID, 6);
	r[15] = 2;
	put32(r + 20, ACPI_RSDP_SIZE);
	put64(r + 24, xsdt_gpa);
	r[8] = checksum(r, ACPI_RSDP_V1_SIZE);
	r[32] = checksum(r, ACPI_RSDP_SIZE);
}

static size_t acpi__full(char *err, size_t errlen, size_t bufsize)
{
	error(err, errlen, "ACPI tables do not fit in %zu bytes", bufsize);
	return 0;
}

size_t acpi__build(const struct vm_config *cfg, const struct layout *l, acpi_aml_fn devices_aml,
		   const void *ctx, uint8_t *buf, uint64_t buf_gpa, size_t bufsize, char *err,
		   size_t errlen)
{
	struct acpi_buf b = { .p = buf, .size = bufsize, .gpa = buf_gpa };
	uint64_t tables[4];
	int ntables = 0;
	uint8_t *rsdp, *dsdt, *t;
	struct numa numa;
	char why[128];

	/* The SLIT is indexed by guest_numa_id: numa__build refuses anything but 0..N-1. */
	if (numa__build(&numa, cfg, l, why, sizeof(why))) {
		error(err, errlen, "ACPI: %s", why);
		return 0;
	}
	rsdp = acpi_alloc(&b, ACPI_RSDP_SIZE);
	if (!rsdp)
		return acpi__full(err, errlen, bufsize);
	dsdt = build_dsdt(&b, cfg, devices_aml, ctx, err, errlen);
	if (!dsdt)
		return b.full ? acpi__full(err, errlen, bufsize) : 0;
	if ((t = build_fadt(&b, acpi_gpa(&b, dsdt))))
		tables[ntables++] = acpi_gpa(&b, t);
	if ((t = build_madt(&b, &numa)))
		tables[ntables++] = acpi_gpa(&b, t);
	if (numa.nnodes > 0) {
		if ((t = build_srat(&b, &numa, l)))
			tables[ntables++] = acpi_gpa(&b, t);
		if ((t = build_slit(&b, &numa)))
			tables[ntables++] = acpi_gpa(&b, t);
	}
	t = build_xsdt(&b, tables, ntables);
	if (b.full || !t)
		return acpi__full(err, errlen, bufsize);
	fill_rsdp(rsdp, acpi_gpa(&b, t));
	return b.used;
}
