/*
 * ACPI memory hotplug and the GED, as the guest sees them: the DSDT (iasl, and the register
 * addresses found in it the way a guest without an AML interpreter finds them), the registers
 * through the MMIO bus (hostile selectors and offsets included), the checks of a resize, and
 * real plugs into a VM with KVM: memory slot, guest memory, GED event, teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"
#include "tests/bytes.h"
#include "tests/devices_vm.h"
#include "tests/iasl.h"
#include "tests/vmcfg.h"

#define BOOT_RAM	(128 * MiB)
#define DIMM		(128 * MiB)

static struct vm test_vm;
static uint8_t acpi_buf[ACPI_TABLES_MAX];
static char out_dir[512] = "build/tests/mem_hotplug";

/*
 * A VM with 128M of boot RAM in zone mem0 as --memory size=128M makes it, hotplug_method=acpi
 * and hotplug_size as given, two guest NUMA nodes whose indices differ from their ids when
 * numa is set, --memory shared=on (the DIMMs' memfds then show in /proc/self/maps). With kvm:
 * /dev/kvm opened and the boot RAM registered (the test is skipped without /dev/kvm), as main
 * has it before the vCPUs start. RUNNING either way.
 */
static struct vm *hp_vm(uint64_t hotplug, bool numa, bool kvm)
{
	struct vm *vm = &test_vm;
	struct vm_config *c = &vm->cfg;
	char err[512];
	int node = -1;

	vm__init(vm);
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
	if (loop__init(&vm->loop, err, sizeof(err)) < 0)
		fail_msg("loop__init: %s", err);
	cfg_init(c, 1, 1);
	c->serial = SERIAL_OFF;
	if (numa) {
		add_node(c, 1);
		node = add_node(c, 0);	/* the lowest id: the ACPI hotplug area's node */
		node_cpu(c, node, 0);
	}
	c->memory.size = BOOT_RAM;
	c->memory.shared = true;
	c->memory.hotplug_method = HOTPLUG_ACPI;
	c->memory.hotplug_size = hotplug;
	add_zone(c, DEFAULT_ZONE_ID, BOOT_RAM, 0, node);
	c->zones[0].shared = true;
	if (host__probe(&vm->host, err, sizeof(err)) < 0)
		fail_msg("host__probe: %s", err);
	if (layout__build(&vm->layout, c, err, sizeof(err)) < 0)
		fail_msg("layout__build: %s", err);
	if (vm__init_devices(vm, err, sizeof(err)) < 0)
		fail_msg("vm__init_devices: %s", err);
	if (kvm) {
		if (access("/dev/kvm", R_OK | W_OK) < 0) {
			vm__stop(vm, 0);
			vm__teardown(vm);
			skip();
		}
		if (backing__create(&vm->backings[0], c, &c->zones[0], BOOT_RAM, &vm->host, err,
				    sizeof(err)) < 0)
			fail_msg("backing__create: %s", err);
		vm->nbackings = 1;
		if (kvm__init(vm, err, sizeof(err)) < 0 ||
		    kvm__register_memory(vm, err, sizeof(err)) < 0)
			fail_msg("%s", err);
	}
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	return vm;
}

static void end_vm(struct vm *vm)
{
	if (!vm__stopping(vm))
		vm__stop(vm, 0);
	assert_int_equal(vm__teardown(vm), 0);
	assert_null(vm->mem_hotplug);
	assert_null(vm->ged);
}

static const struct mem_range *acpi_area(const struct vm *vm)
{
	for (int i = 0; i < vm->layout.nranges; i++)
		if (vm->layout.ranges[i].kind == RANGE_ACPI_HOTPLUG)
			return &vm->layout.ranges[i];
	fail_msg("no ACPI hotplug area in the layout");
	return NULL;
}

/* ---- the DSDT, read as a guest without an AML interpreter reads it ---- */

static const uint8_t *build_dsdt(const struct vm *vm)
{
	char err[256];
	const uint8_t *xsdt, *fadt = NULL;

	if (!acpi__build(&vm->cfg, &vm->layout, devices__dsdt, vm, acpi_buf, ACPI_TABLES_ADDR,
			 sizeof(acpi_buf), err, sizeof(err)))
		fail_msg("acpi__build: %s", err);
	xsdt = acpi_buf + (rd64(acpi_buf + 24) - ACPI_TABLES_ADDR);
	for (uint32_t off = 36; off < rd32(xsdt + 4); off += 8) {
		const uint8_t *t = acpi_buf + (rd64(xsdt + off) - ACPI_TABLES_ADDR);

		if (!memcmp(t, "FACP", 4))
			fadt = t;
	}
	assert_non_null(fadt);
	return acpi_buf + (rd64(fadt + 140) - ACPI_TABLES_ADDR);
}

/* A PkgLength's value; *n its size in bytes. */
static uint32_t pkglen(const uint8_t *p, unsigned *n)
{
	uint32_t len = p[0] & 0x3f;

	*n = 1 + (p[0] >> 6);
	if (*n > 1)
		len = p[0] & 0x0f;
	for (unsigned k = 1; k < *n; k++)
		len |= (uint32_t)p[k] << (4 + 8 * (k - 1));
	return len;
}

/*
 * The first resource descriptor of Name (_CRS, ResourceTemplate ()) in Device (name): Device
 * is 0x5b 0x82 PkgLength NameSeg, the Name 0x08 "_CRS" then Buffer 0x11 PkgLength size.
 * NULL when the device has no such _CRS.
 */
static const uint8_t *device_crs(const uint8_t *dsdt, const char *name)
{
	const uint8_t *end = dsdt + rd32(dsdt + 4);

	for (const uint8_t *p = dsdt + 36; p + 8 < end; p++) {
		const uint8_t *body, *dend;
		unsigned n;
		uint32_t len;

		if (p[0] != 0x5b || p[1] != 0x82)
			continue;
		len = pkglen(p + 2, &n);
		body = p + 2 + n;
		dend = p + 2 + len;
		if (dend > end || memcmp(body, name, 4))
			continue;
		for (const uint8_t *q = body + 4; q + 8 < dend; q++) {
			if (memcmp(q, "\x08_CRS\x11", 6))
				continue;
			pkglen(q + 6, &n);
			q += 6 + n;
			return q + (q[0] == 0x0a ? 2 : 3);	/* BufferSize: Byte or Word */
		}
		return NULL;
	}
	fail_msg("no Device (%s) in the DSDT", name);
	return NULL;
}

/* The device registered at base on the MMIO bus, with its length. */
static void check_mmio(struct vm *vm, uint64_t base, uint64_t len, const char *name)
{
	const struct bus_range *r = bus__find(&vm->mmio, base);

	assert_non_null(r);
	assert_string_equal(r->name, name);
	assert_int_equal(r->base, base);
	assert_int_equal(r->len, len);
}

struct regs {
	uint64_t mhpc, ged;
	uint32_t gsi;
};

/* The addresses and the GSI the guest learns from the DSDT, checked against the buses. */
static struct regs find_regs(struct vm *vm)
{
	const uint8_t *dsdt = build_dsdt(vm), *d;
	struct regs r;

	d = device_crs(dsdt, "MHPC");
	assert_non_null(d);
	assert_int_equal(d[0], 0x8a);			/* QWord Address Space Descriptor */
	assert_int_equal(d[3], 0);			/* memory */
	r.mhpc = rd64(d + 14);
	assert_int_equal(rd64(d + 38), 0x18);
	assert_int_equal(rd64(d + 22), r.mhpc + 0x17);
	check_mmio(vm, r.mhpc, 0x18, "mem-hotplug");

	d = device_crs(dsdt, "GEC_");
	assert_int_equal(d[0], 0x86);			/* Memory32Fixed */
	r.ged = rd32(d + 4);
	assert_int_equal(rd32(d + 8), 1);
	check_mmio(vm, r.ged, 1, "ged");

	d = device_crs(dsdt, "GED_");
	assert_int_equal(d[0], 0x89);			/* Extended Interrupt */
	assert_int_equal(d[3], 0x03);			/* consumer, edge, active high, exclusive */
	assert_int_equal(d[4], 1);
	r.gsi = rd32(d + 5);
	assert_true(r.gsi >= ISA_NR_IRQS && r.gsi < IOAPIC_NR_PINS);
	return r;
}

/* ---- register access as a guest does it ---- */

static uint32_t mmio_rd(struct vm *vm, uint64_t addr, unsigned size)
{
	uint8_t d[8];
	uint32_t v = 0;

	bus__read(&vm->mmio, addr, d, size);
	for (unsigned i = 0; i < size && i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void mmio_wr(struct vm *vm, uint64_t addr, uint32_t v, unsigned size)
{
	uint8_t d[8] = { 0 };

	for (unsigned i = 0; i < size && i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	bus__write(&vm->mmio, addr, d, size);
}

struct slot {
	uint64_t base, len;
	uint32_t pxm;
	uint8_t status;
};

static struct slot read_slot(struct vm *vm, const struct regs *r, uint32_t sel)
{
	struct slot s;

	mmio_wr(vm, r->mhpc, sel, 4);
	s.base = mmio_rd(vm, r->mhpc, 4) | (uint64_t)mmio_rd(vm, r->mhpc + 4, 4) << 32;
	s.len = mmio_rd(vm, r->mhpc + 8, 4) | (uint64_t)mmio_rd(vm, r->mhpc + 0xc, 4) << 32;
	s.pxm = mmio_rd(vm, r->mhpc + 0x10, 4);
	s.status = (uint8_t)mmio_rd(vm, r->mhpc + 0x14, 1);
	return s;
}

static bool maps_contain(const char *what)
{
	static char maps[1 << 20];

	assert_true(read_file("/proc/self/maps", maps, sizeof(maps)) > 0);
	return strstr(maps, what) != NULL;
}

/* ---- tests ---- */

/* With and without hotplug memory the DSDT disassembles and compiles clean. */
static void test_dsdt_iasl(void **state)
{
	static const char *const want[] = {
		"Device (MHPC)", "Method (MSCN, 0, Serialized)", "Device (M007)",
		"EisaId (\"PNP0C80\")", "Return (MPXM (0x07))", "MOST (0x07, Arg0, Arg1)",
		"Method (_EJ0, 1, NotSerialized)", "Name (_HID, \"ACPI0013\"",
		"Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive",
		"Method (_EVT, 1, Serialized)", "EisaId (\"PNP0C0C\")",
		"Notify (\\_SB.PWRB, 0x80)", "\\_SB.MHPC.MSCN ()",
		"OperationRegion (MHPR, SystemMemory",
	};
	char dir[600], why[4096], out[256];
	struct vm *vm;

	(void)state;
	if (run("command -v iasl", out, sizeof(out)) != 0)
		fail_msg("iasl not found: install acpica-tools (ci/deps.sh)");
	if (mkdir(out_dir, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", out_dir, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/hotplug", out_dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", dir, strerror(errno));

	vm = hp_vm(1 * GiB, false, false);
	/* The DSDT comes back with "\_SB_" optimised to "_SB_" at the root: no compare. */
	if (!iasl_table_ok(dir, build_dsdt(vm), false, why, sizeof(why)))
		fail_msg("%s", why);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (!strstr(dsl, want[i]))
			fail_msg("the disassembled DSDT lacks '%s':\n%s", want[i], dsl);
	end_vm(vm);

	/* No hotplug area: no controller registers, MHPC holds only MSCN. */
	snprintf(dir, sizeof(dir), "%s/none", out_dir);
	if (mkdir(dir, 0755) && errno != EEXIST)
		fail_msg("mkdir %s: %s", dir, strerror(errno));
	vm = hp_vm(0, false, false);
	assert_null(vm->mem_hotplug);
	assert_null(device_crs(build_dsdt(vm), "MHPC"));
	if (!iasl_table_ok(dir, build_dsdt(vm), false, why, sizeof(why)))
		fail_msg("%s", why);
	assert_non_null(strstr(dsl, "Method (MSCN, 0, Serialized)"));
	assert_null(strstr(dsl, "PNP0C80"));
	assert_non_null(strstr(dsl, "ACPI0013"));
	end_vm(vm);
}

/* Before any plug: every slot empty, whatever the guest writes where. */
static void test_registers_empty(void **state)
{
	struct vm *vm = hp_vm(1 * GiB, false, false);
	struct regs r = find_regs(vm);
	struct slot s;

	(void)state;
	for (uint32_t sel = 0; sel < 8; sel++) {
		s = read_slot(vm, &r, sel);
		assert_int_equal(s.base | s.len | s.pxm | s.status, 0);
	}
	/* Control bits on an empty slot, odd offsets and sizes, a qword over the block's end. */
	mmio_wr(vm, r.mhpc + 0x14, 0xff, 1);
	mmio_wr(vm, r.mhpc + 0x3, 0xffffffff, 4);
	mmio_wr(vm, r.mhpc + 0x15, 0xffffffff, 2);
	mmio_wr(vm, r.mhpc + 0x14, 0xffffffff, 8);
	assert_int_equal(mmio_rd(vm, r.mhpc + 0x14, 4), 0);
	assert_int_equal(mmio_rd(vm, r.mhpc + 0x16, 4), 0xffff0000);	/* 2 bytes past the end */
	assert_int_equal(mmio_rd(vm, r.ged, 1), 0);
	assert_int_equal(mmio_rd(vm, r.ged, 4), 0xffffff00);		/* the GED is one byte */
	assert_int_equal(mem_hotplug__plugged(vm), 0);
	assert_false(vm__stopping(vm));
	end_vm(vm);
}

/* What a resize refuses, with its reason, changing nothing; the current size is a no-op. */
static void test_resize_refused(void **state)
{
	struct vm *vm = hp_vm(1 * GiB, false, false);
	char err[256];

	(void)state;
	assert_int_equal(hotplug__resize(vm, BOOT_RAM, err, sizeof(err)), 0);
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 64 * MiB, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_string_equal(err, "vm.resize: growing by 64M: ACPI memory grows in multiples of "
			    "128M");
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 1 * GiB + DIMM, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_string_equal(err, "vm.resize: growing by 1152M: only 1G of hotplug_size 1G is left");
	assert_int_equal(hotplug__resize(vm, BOOT_RAM - DIMM + 4 * MiB, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_string_equal(err, "vm.resize: ACPI memory cannot be removed from a running guest "
			    "(desired_ram 4M, RAM 128M)");
	assert_int_equal(mem_hotplug__plugged(vm), 0);
	assert_int_equal(hotplug__ram_size(vm), BOOT_RAM);
	end_vm(vm);

	vm = hp_vm(0, false, false);
	assert_int_equal(mem_hotplug__resize(vm, BOOT_RAM + DIMM, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_string_equal(err, "vm.resize: the VM has no ACPI hotplug memory "
			    "(--memory hotplug_method=acpi,hotplug_size)");
	end_vm(vm);
}

/* A plug whose memory slot KVM refuses (no VM fd here) leaves no mapping and no slot behind. */
static void test_resize_undone(void **state)
{
	struct vm *vm = hp_vm(1 * GiB, false, false);
	struct regs r = find_regs(vm);
	char err[256];

	(void)state;
	assert_false(maps_contain("memvisor-acpi-dimm"));
	assert_int_equal(mem_hotplug__resize(vm, BOOT_RAM + DIMM, err, sizeof(err)),
			 HOTPLUG_FAILED);
	assert_non_null(strstr(err, "vm.resize: DIMM 0: KVM_SET_USER_MEMORY_REGION slot 0 at "));
	assert_false(maps_contain("memvisor-acpi-dimm"));
	assert_int_equal(mem_hotplug__plugged(vm), 0);
	assert_int_equal(read_slot(vm, &r, 0).status, 0);
	assert_null(vm__gpa_to_hva(vm, acpi_area(vm)->gpa, 1));
	assert_int_equal(vm->nslots, 0);
	end_vm(vm);
}

/* A guest-physical range is in a KVM slot when another slot may not overlap it. */
static bool kvm_slot_at(struct vm *vm, uint64_t gpa, void *hva)
{
	struct kvm_userspace_memory_region probe = {
		.slot = (uint32_t)vm->nslots, .guest_phys_addr = gpa, .memory_size = 2 * MiB,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &probe) < 0) {
		assert_int_equal(errno, EEXIST);
		return true;
	}
	probe.memory_size = 0;		/* delete the probe */
	assert_int_equal(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &probe), 0);
	return false;
}

/*
 * Two plugs into a VM with KVM: each a memory slot at the next address of the area, guest
 * memory there, the slot enabled + inserting until the guest acknowledges it, the GED's event
 * bit read once; hostile selectors do not move the selection; the DIMMs go at teardown.
 */
static void test_plug(void **state)
{
	struct vm *vm = hp_vm(2 * GiB, true, true);
	const struct mem_range *area = acpi_area(vm);
	struct regs r = find_regs(vm);
	uint8_t *hva, *hva2;
	struct slot s;
	char err[256];

	(void)state;
	assert_int_equal(vm->nslots, 1);
	assert_false(kvm_slot_at(vm, area->gpa, vm->backings[0].host));
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 2 * DIMM, err, sizeof(err)), 0);
	assert_int_equal(vm->nslots, 2);
	assert_int_equal(mem_hotplug__plugged(vm), 2 * DIMM);
	assert_int_equal(hotplug__ram_size(vm), BOOT_RAM + 2 * DIMM);
	assert_true(maps_contain("memvisor-acpi-dimm0"));

	assert_int_equal(mmio_rd(vm, r.ged, 1), GED_MEMORY_CHANGED);
	assert_int_equal(mmio_rd(vm, r.ged, 1), 0);		/* read clears */

	s = read_slot(vm, &r, 0);
	assert_int_equal(s.base, area->gpa);
	assert_int_equal(s.len, 2 * DIMM);
	assert_int_equal(s.status, 0x3);			/* enabled, inserting */
	assert_int_equal(s.pxm, vm->cfg.numa[area->guest_node].guest_numa_id);
	assert_int_equal(area->guest_node, 1);			/* id 0 at index 1 */
	assert_int_equal(read_slot(vm, &r, 1).status, 0);

	/* Selectors beyond the slots leave slot 0 selected. */
	mmio_wr(vm, r.mhpc, 0, 4);
	mmio_wr(vm, r.mhpc, 8, 4);
	mmio_wr(vm, r.mhpc, 0xffffffff, 4);
	mmio_wr(vm, r.mhpc, 0x100, 2);
	assert_int_equal(mmio_rd(vm, r.mhpc + 8, 4), 2 * DIMM);
	assert_int_equal(mmio_rd(vm, r.mhpc + 0x14, 1), 0x3);
	/* _OST is kept, eject is refused, acknowledging clears inserting only. */
	mmio_wr(vm, r.mhpc + 4, 1, 4);
	mmio_wr(vm, r.mhpc + 8, 0, 4);
	mmio_wr(vm, r.mhpc + 0x14, 0x08, 1);
	assert_int_equal(mmio_rd(vm, r.mhpc + 0x14, 1), 0x3);
	mmio_wr(vm, r.mhpc + 0x14, 0x02, 1);
	assert_int_equal(mmio_rd(vm, r.mhpc + 0x14, 1), 0x1);
	assert_int_equal(mmio_rd(vm, r.mhpc, 4), (uint32_t)area->gpa);	/* reads unchanged */
	assert_int_equal(mmio_rd(vm, r.mhpc + 4, 4), (uint32_t)(area->gpa >> 32));

	/* Guest memory at the DIMM: reachable, bounded by it, and KVM maps it. */
	hva = vm__gpa_to_hva(vm, area->gpa, 2 * DIMM);
	assert_non_null(hva);
	hva[0] = 0x5a;
	hva[2 * DIMM - 1] = 0xa5;
	assert_ptr_equal(vm__gpa_to_hva(vm, area->gpa + 2 * DIMM - 1, 1), hva + 2 * DIMM - 1);
	assert_null(vm__gpa_to_hva(vm, area->gpa + 2 * DIMM - 1, 2));
	assert_null(vm__gpa_to_hva(vm, area->gpa + 2 * DIMM, 1));
	assert_null(vm__gpa_to_hva(vm, area->gpa - 1, 2));
	assert_true(kvm_slot_at(vm, area->gpa, hva));
	assert_true(kvm_slot_at(vm, area->gpa + 2 * DIMM - 2 * MiB, hva));
	assert_false(kvm_slot_at(vm, area->gpa + 2 * DIMM, hva));

	/* A second DIMM goes right after the first, in slot 1. */
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 3 * DIMM, err, sizeof(err)), 0);
	assert_int_equal(mmio_rd(vm, r.ged, 1), GED_MEMORY_CHANGED);
	s = read_slot(vm, &r, 1);
	assert_int_equal(s.base, area->gpa + 2 * DIMM);
	assert_int_equal(s.len, DIMM);
	assert_int_equal(s.status, 0x3);
	assert_int_equal(read_slot(vm, &r, 0).status, 0x1);
	hva2 = vm__gpa_to_hva(vm, area->gpa + 2 * DIMM, DIMM);
	assert_non_null(hva2);
	assert_ptr_not_equal(hva2, hva + 2 * DIMM);		/* a mapping of its own */
	assert_null(vm__gpa_to_hva(vm, area->gpa + 2 * DIMM - 1, 2));	/* spans two DIMMs */
	assert_true(kvm_slot_at(vm, area->gpa + 2 * DIMM, hva2));
	assert_int_equal(hva[0], 0x5a);
	assert_int_equal(hva[2 * DIMM - 1], 0xa5);
	/* Shrinking back is refused; the same size again is nothing. */
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 2 * DIMM, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 3 * DIMM, err, sizeof(err)), 0);
	assert_int_equal(mmio_rd(vm, r.ged, 1), 0);

	/* The power button is the GED's other event. */
	assert_int_equal(ged__power_button(vm, err, sizeof(err)), 0);
	assert_int_equal(mmio_rd(vm, r.ged, 1), GED_POWER_BUTTON);
	assert_false(vm__stopping(vm));
	end_vm(vm);
	assert_false(maps_contain("memvisor-acpi-dimm"));
}

/* Eight DIMMs fill the slots: the ninth is refused though the area has room. */
static void test_slots_full(void **state)
{
	struct vm *vm = hp_vm(2 * GiB, false, true);
	struct regs r = find_regs(vm);
	char err[256];

	(void)state;
	for (unsigned i = 1; i <= 8; i++)
		assert_int_equal(hotplug__resize(vm, BOOT_RAM + i * DIMM, err, sizeof(err)), 0);
	assert_int_equal(hotplug__resize(vm, BOOT_RAM + 9 * DIMM, err, sizeof(err)),
			 HOTPLUG_REFUSED);
	assert_string_equal(err, "vm.resize: all 8 ACPI DIMM slots are in use");
	assert_int_equal(mem_hotplug__plugged(vm), 8 * DIMM);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(read_slot(vm, &r, i).base, acpi_area(vm)->gpa + i * DIMM);
	assert_int_equal(vm->nslots, 9);
	end_vm(vm);
	assert_int_equal(ged__power_button(vm, err, sizeof(err)), -1);
	assert_string_equal(err, "vm.power-button: the VM has no ACPI power button");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsdt_iasl),
		cmocka_unit_test(test_registers_empty),
		cmocka_unit_test(test_resize_refused),
		cmocka_unit_test(test_resize_undone),
		cmocka_unit_test(test_plug),
		cmocka_unit_test(test_slots_full),
	};

	/* build/tests/mem_hotplug next to build/tests/test_mem_hotplug (build/asan/... too) */
	if (argc > 0) {
		char *slash = strrchr(argv[0], '/');

		if (slash)
			snprintf(out_dir, sizeof(out_dir), "%.*s/mem_hotplug",
				 (int)(slash - argv[0]), argv[0]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
