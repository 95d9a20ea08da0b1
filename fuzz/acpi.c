/*
 * The ACPI tables of random valid VMs: a configuration built from the fuzzer's bytes (vCPUs,
 * zones across the hole, ACPI or virtio-mem hotplug, NUMA nodes with shuffled ids, CPUs,
 * distances, a balloon), kept only when config__validate accepts it, laid out, its devices
 * started (no KVM) and its tables built at their guest address 0xe0000, mapped there.
 *
 * The probe guest's own parser (guests/lib/acpi.c, hosted) must find the DSDT from the RSDP,
 * one processor device per possible vCPU with _UID = its index, a virtio-mmio device per
 * virtio-mem region and balloon, and the hotplug controller's registers; every table must sum
 * to 0 and lie in the buffer; MADT, SRAT and SLIT must say what numa__build says.
 */
#include <sys/mman.h>

#include "arch/x86/acpi.h"
#include "fuzz/fuzz.h"
#include "fuzz/lib/probe_acpi.h"
#include "tests/bytes.h"
#include "tests/config_checks.h"
#include "vm.h"

#define MAP_SIZE	(HIGH_RAM_START - ACPI_TABLES_ADDR)

static uint8_t *tables;		/* ACPI_TABLES_ADDR, mapped at that address */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	tables = mmap((void *)ACPI_TABLES_ADDR, MAP_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	FUZZ_CHECK(tables == (void *)ACPI_TABLES_ADDR, "cannot map the tables at 0x%llx",
		   ACPI_TABLES_ADDR);
	return 0;
}

/* Nodes with shuffled ids, disjoint runs of vCPUs and a few distances each. */
static void make_numa(struct vm_config *c, struct fuzz_in *in)
{
	unsigned cpu = 0;

	c->nnuma = fuzz__u8(in) % 9;
	for (int i = 0; i < c->nnuma; i++)
		c->numa[i].guest_numa_id = (uint32_t)i;
	for (int i = c->nnuma - 1; i > 0; i--) {
		int j = fuzz__u8(in) % (i + 1);
		uint32_t t = c->numa[i].guest_numa_id;

		c->numa[i].guest_numa_id = c->numa[j].guest_numa_id;
		c->numa[j].guest_numa_id = t;
	}
	for (int i = 0; i < c->nnuma; i++) {
		struct numa_config *n = &c->numa[i];
		unsigned len = fuzz__u8(in) % 48;

		cpu += fuzz__u8(in) % 4;
		for (; len && cpu < c->max_cpus; len--, cpu++)
			n->cpus[cpu / 8] |= (uint8_t)(1u << (cpu % 8));
		for (int j = 0; j < c->nnuma; j++) {
			uint8_t d = fuzz__u8(in);

			if ((uint32_t)j != n->guest_numa_id && d & 1)
				n->distances[n->ndistances++] =
					(struct numa_distance){ .dest = (uint32_t)j, .distance = d };
		}
	}
}

static void make_zones(struct vm_config *c, struct fuzz_in *in)
{
	bool virtio = fuzz__u8(in) & 1;

	c->memory.hotplug_method = virtio ? HOTPLUG_VIRTIO_MEM : HOTPLUG_ACPI;
	if (!virtio && fuzz__u8(in) & 1)
		c->memory.hotplug_size = (1 + fuzz__u8(in) % 16) * 128 * MiB;
	c->nzones = 1 + fuzz__u8(in) % 8;
	for (int i = 0; i < c->nzones; i++) {
		struct zone_config *z = &c->zones[i];
		uint8_t node = fuzz__u8(in);

		snprintf(z->id, sizeof(z->id), "z%d", i);
		z->size = (512 + fuzz__u32(in) % (8 * GiB / 4096)) * 4096;
		z->host_numa_node = -1;
		z->guest_node = -1;
		if (virtio && fuzz__u8(in) & 1) {
			z->hotplug_size = (1 + fuzz__u8(in) % 4) * 128 * MiB;
			z->hotplugged_size = fuzz__u8(in) % (z->hotplug_size / (2 * MiB) + 1) * 2 * MiB;
		}
		if (c->nnuma && node % (c->nnuma + 1) < c->nnuma) {
			struct numa_config *n = &c->numa[node % (c->nnuma + 1)];

			snprintf(n->zones[n->nzones++], ZONE_ID_MAX, "%s", z->id);
		}
	}
}

static void make_config(struct vm_config *c, struct fuzz_in *in)
{
	memset(c, 0, sizeof(*c));
	c->boot_cpus = 1 + fuzz__u8(in) % 255;
	c->max_cpus = c->boot_cpus + fuzz__u8(in) % (256 - c->boot_cpus);
	c->serial = SERIAL_OFF;
	c->kernel = strdup("vmlinux");
	FUZZ_CHECK(c->kernel, "strdup");
	make_numa(c, in);
	make_zones(c, in);
	if (fuzz__u8(in) & 1)
		c->balloon = (struct balloon_config){ .enabled = true,
			.size = fuzz__u8(in) * 2 * MiB, .deflate_on_oom = true };
}

/* A table the XSDT or FADT points at: inside what was built, of its own signature, summing to 0. */
static const uint8_t *table(size_t used, uint64_t gpa, const char *sig)
{
	const uint8_t *t;
	uint32_t len;

	FUZZ_CHECK(gpa >= ACPI_TABLES_ADDR && gpa + 36 <= ACPI_TABLES_ADDR + used,
		   "%s at 0x%llx", sig, (unsigned long long)gpa);
	t = tables + (gpa - ACPI_TABLES_ADDR);
	len = rd32(t + 4);
	FUZZ_CHECK(!memcmp(t, sig, 4) && len >= 36 && gpa + len <= ACPI_TABLES_ADDR + used,
		   "%.4s of %u bytes at 0x%llx", t, len, (unsigned long long)gpa);
	FUZZ_CHECK(sum(t, len) == 0, "%s checksum", sig);
	return t;
}

/* MADT and SRAT processor entries: one per possible vCPU, in order, with numa.h's node. */
static void check_madt(const uint8_t *t, const struct numa *n)
{
	const uint8_t *e = t + 44, *end = t + rd32(t + 4);
	unsigned cpu = 0;

	for (; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1]) {
		uint32_t flags;

		if (e[0] == 1)		/* the IOAPIC */
			continue;
		FUZZ_CHECK(cpu < n->nvcpus && (e[0] == 0 || e[0] == 9), "MADT entry %u type %u",
			   cpu, e[0]);
		flags = e[0] == 0 ? rd32(e + 4) : rd32(e + 8);
		FUZZ_CHECK((e[0] == 0 ? e[3] : rd32(e + 4)) == n->apic_id[cpu] &&
			   flags == (cpu < n->nboot ? 1u : 2u), "MADT vCPU %u", cpu);
		cpu++;
	}
	FUZZ_CHECK(e == end && cpu == n->nvcpus, "MADT lists %u of %u vCPUs", cpu, n->nvcpus);
}

static void check_srat(const uint8_t *t, const struct numa *n, const struct layout *l)
{
	const uint8_t *e = t + 48, *end = t + rd32(t + 4);
	unsigned cpu = 0;
	int r = 0;

	for (; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1]) {
		uint32_t pxm;

		if (e[0] == 1) {
			const struct mem_range *m = &l->ranges[r];

			FUZZ_CHECK(r < l->nranges && rd32(e + 2) == (uint32_t)n->range_node[r] &&
				   rd64(e + 8) == m->gpa && rd64(e + 16) == m->size &&
				   rd32(e + 28) == (m->kind == RANGE_RAM ? 1u : 3u),
				   "SRAT memory entry %d", r);
			FUZZ_CHECK(rd32(e + 2) < (uint32_t)n->nnodes, "SRAT range %d domain", r);
			r++;
			continue;
		}
		FUZZ_CHECK(cpu < n->nvcpus && (e[0] == 0 || e[0] == 2), "SRAT entry type %u", e[0]);
		pxm = e[0] == 0 ? e[2] | (uint32_t)e[9] << 8 | (uint32_t)e[10] << 16 |
				  (uint32_t)e[11] << 24 : rd32(e + 4);
		FUZZ_CHECK(pxm == (uint32_t)n->vcpu_node[cpu] && pxm < (uint32_t)n->nnodes,
			   "SRAT vCPU %u in domain %u", cpu, pxm);
		cpu++;
	}
	FUZZ_CHECK(e == end && cpu == n->nvcpus && r == l->nranges, "SRAT: %u vCPUs, %d ranges",
		   cpu, r);
}

static void check_slit(const uint8_t *t, const struct numa *n)
{
	uint64_t nn = rd64(t + 36);

	FUZZ_CHECK(nn == (uint64_t)n->nnodes && rd32(t + 4) == 44 + nn * nn, "SLIT of %llu",
		   (unsigned long long)nn);
	for (uint64_t i = 0; i < nn; i++)
		for (uint64_t j = 0; j < nn; j++)
			FUZZ_CHECK(t[44 + i * nn + j] == n->distance[i][j] &&
				   (i != j || t[44 + i * nn + j] == NUMA_LOCAL_DISTANCE) &&
				   t[44 + i * nn + j] >= NUMA_LOCAL_DISTANCE,
				   "SLIT %llu-%llu", (unsigned long long)i, (unsigned long long)j);
}

/* What the probe guest finds in the DSDT, with its own parser. */
static void check_probe(const struct vm *vm, const struct numa *n)
{
	static struct probe_dev dev[MAX_VCPUS];
	const void *dsdt = probe_acpi__dsdt(ACPI_TABLES_ADDR, HIGH_RAM_START);
	int nvirtio = vm->balloon != NULL, found;

	FUZZ_CHECK(dsdt, "the probe finds no DSDT");
	found = probe_acpi__find_hid(dsdt, "ACPI0007", dev, MAX_VCPUS);
	FUZZ_CHECK(found == (int)n->nvcpus, "%d processor devices of %u", found, n->nvcpus);
	for (int i = 0; i < found; i++)
		FUZZ_CHECK(dev[i].has_uid && dev[i].uid == (uint32_t)i, "processor %d: _UID", i);
	for (int i = 0; i < vm->layout.nranges; i++)
		nvirtio += vm->layout.ranges[i].kind == RANGE_VIRTIO_MEM;
	found = probe_acpi__find_hid(dsdt, "LNRO0005", dev, MAX_VCPUS);
	FUZZ_CHECK(found == nvirtio, "%d virtio-mmio devices of %d", found, nvirtio);
	for (int i = 0; i < found; i++) {
		FUZZ_CHECK(dev[i].has_base && dev[i].has_irq && dev[i].size == 0x1000 &&
			   dev[i].base >= MMIO32_WINDOW_BASE &&
			   dev[i].base + dev[i].size <= MMIO32_FIXED_START &&
			   dev[i].irq >= ISA_NR_IRQS && dev[i].irq < IOAPIC_NR_PINS,
			   "virtio-mmio device %d", i);
		for (int j = 0; j < i; j++)
			FUZZ_CHECK(dev[j].base != dev[i].base && dev[j].irq != dev[i].irq,
				   "virtio-mmio devices %d and %d share a window or GSI", j, i);
	}
	if (vm->mem_hotplug)
		FUZZ_CHECK(probe_acpi__find_device(dsdt, "MHPC", &dev[0]) && dev[0].has_base &&
			   dev[0].size >= 0x18, "the probe finds no hotplug registers");
}

static void check_tables(const struct vm *vm, size_t used)
{
	static struct numa n;
	const uint8_t *xsdt, *fadt = NULL, *madt = NULL, *srat = NULL, *slit = NULL;
	char err[256];

	FUZZ_CHECK(!numa__build(&n, &vm->cfg, &vm->layout, err, sizeof(err)), "%s", err);
	FUZZ_CHECK(!memcmp(tables, "RSD PTR ", 8) && !sum(tables, 20) && !sum(tables, 36) &&
		   tables[15] == 2, "RSDP");
	xsdt = table(used, rd64(tables + 24), "XSDT");
	for (uint32_t i = 0; i < (rd32(xsdt + 4) - 36) / 8; i++) {
		uint64_t gpa = rd64(xsdt + 36 + 8 * i);
		const uint8_t *t = table(used, gpa, (const char *)tables + (gpa - ACPI_TABLES_ADDR));
		const uint8_t **slot = !memcmp(t, "FACP", 4) ? &fadt : !memcmp(t, "APIC", 4) ? &madt :
				       !memcmp(t, "SRAT", 4) ? &srat : !memcmp(t, "SLIT", 4) ? &slit :
				       NULL;

		FUZZ_CHECK(slot && !*slot, "XSDT entry %u: %.4s", i, t);
		*slot = t;
	}
	FUZZ_CHECK(fadt && madt && !srat == !n.nnodes && !slit == !n.nnodes, "tables missing");
	table(used, rd64(fadt + 140), "DSDT");
	check_madt(madt, &n);
	if (n.nnodes) {
		check_srat(srat, &n, &vm->layout);
		check_slit(slit, &n);
	}
	check_probe(vm, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;
	struct fuzz_in in = { data, size };
	struct host_info host = test_host();
	char err[512];
	size_t used;

	vm__init(&vm);
	make_config(&vm.cfg, &in);
	if (config__validate(&vm.cfg, &host, err, sizeof(err)) < 0 ||
	    layout__build(&vm.layout, &vm.cfg, err, sizeof(err)) < 0 ||
	    vm__init_devices(&vm, err, sizeof(err)) < 0) {
		if (getenv("FUZZ_DEBUG"))	/* why a seed is no VM (fuzz/README.md) */
			fprintf(stderr, "%s\n", err);
		config__free(&vm.cfg);
		return -1;	/* not a valid VM: keep it out of the corpus */
	}
	memset(tables, 0xa5, MAP_SIZE);	/* so that unset bytes show */
	used = acpi__build(&vm.cfg, &vm.layout, devices__dsdt, &vm, tables, ACPI_TABLES_ADDR,
			   ACPI_TABLES_MAX, err, sizeof(err));
	FUZZ_CHECK(used && used <= ACPI_TABLES_MAX, "acpi__build: %s", err);
	check_tables(&vm, used);
	FUZZ_CHECK(!vm__exit_devices(&vm, err, sizeof(err)), "vm__exit_devices: %s", err);
	config__free(&vm.cfg);
	return 0;
}
