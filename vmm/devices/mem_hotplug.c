/*
 * ACPI memory hotplug (`--memory hotplug_method=acpi,hotplug_size=N`): a controller with 8 DIMM
 * slots (Cloud Hypervisor's HOTPLUG_COUNT), each a PNP0C80 memory device in the DSDT, and the
 * GED's "memory devices changed" event (devices/ged.c) to tell the guest to look at them.
 *
 * Registers: QEMU's 24-byte block (docs/specs/acpi_mem_hotplug.rst), whose offsets are also
 * Cloud Hypervisor's, in MMIO from the devices' window. All about the selected slot:
 *
 *	off   read                                  write
 *	0x00  base address, bits 31:0               slot selector (0-7; larger: no effect)
 *	0x04  base address, bits 63:32              _OST event code (kept, not acted on)
 *	0x08  length, bits 31:0                     _OST status code (kept, not acted on)
 *	0x0c  length, bits 63:32                    -
 *	0x10  proximity domain (SRAT's) of the DIMM -
 *	0x14  status: bit0 enabled, bit1 inserting, control: bit1 clears inserting, bit2 clears
 *	      bit2 removing                               removing, bit3 ejects (refused: see below)
 *
 * Reads of any width at any offset return those bytes (little endian); writes count only at
 * the offsets above, with at most their 4 bytes. A slot not plugged reads all zeros.
 *
 * Growing (mem_hotplug__resize, Cloud Hypervisor's semantics): the VM's RAM goes to desired_ram
 * with one new DIMM of desired_ram - RAM, a multiple of 128 MiB, placed at the next free
 * address of the ACPI hotplug area and backed like --memory (shared, hugepages, thp,
 * mergeable, prefault); it becomes a KVM memory slot, then its slot is enabled + inserting and
 * the GED raises its event. Shrinking is refused: CH applies it only at a reboot, which
 * memvisor does not do. So the guest is never asked to remove a DIMM (removing stays clear),
 * and an eject is ignored (logged once): the memory stays, as it would on a machine whose
 * DIMM is screwed in.
 *
 * A guest with an AML interpreter (Linux) uses the DSDT below: GED interrupt -> _EVT -> ESCN ->
 * MSCN, which Notifies (Device Check) each inserting slot and acknowledges it; Linux then reads
 * the slot's _STA, _CRS and _PXM, adds the memory, and reports through _OST.
 *
 * A guest without one (a freestanding probe) polls:
 *  1. the register block: in the DSDT, Device (MHPC) (ExtOpPrefix 0x5b 0x82, PkgLength, the
 *     NameSeg "MHPC") holds Name (_CRS, ResourceTemplate ()) whose first descriptor is a QWord
 *     Address Space Descriptor (tag 0x8a, resource type 0 = memory): the block's base is the
 *     little-endian u64 at descriptor + 14, its length (0x18) the u64 at descriptor + 38.
 *     MHPC without that _CRS (an empty controller) means the VM has no ACPI hotplug memory;
 *  2. for each slot n in 0..7: write n (u32) at base + 0x00, read the status byte at + 0x14;
 *     when inserting (bit1) is set, read the base (+0x00, +0x04), length (+0x08, +0x0c) and
 *     node (+0x10) of the new DIMM, then write 0x02 (one byte) at + 0x14 to acknowledge it.
 *     Enabled (bit0) stays set: the slot's memory is the guest's from then on.
 *
 * Locking: the guest's accesses (vCPU threads) and a plug (main thread) share the slots' state
 * under the device's lock. The DIMMs' addresses and mappings are written before a plug
 * publishes them by a release store of the number of DIMMs, and never change until the vCPUs
 * have stopped: mem_hotplug__gpa_to_hva reads them without the lock.
 */
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "arch/x86/aml.h"
#include "memory/hotplug.h"
#include "util.h"
#include "vm.h"

#define MHP_SLOTS	8	/* CH's HOTPLUG_COUNT */
#define MHP_LEN		0x18	/* CH's MEMORY_MANAGER_ACPI_SIZE */
#define MHP_ALIGN	16

#define MHP_SELECTOR	0x00
#define MHP_OST_EVENT	0x04
#define MHP_OST_STATUS	0x08
#define MHP_PXM		0x10
#define MHP_STATUS	0x14

#define MHP_ENABLED	(1u << 0)
#define MHP_INSERTING	(1u << 1)
#define MHP_REMOVING	(1u << 2)
#define MHP_EJECT	(1u << 3)

struct mhp_slot {
	/* Set by a plug before it publishes the slot, then constant. */
	uint64_t gpa, size;
	struct backing backing;
	/* Under the lock. */
	uint8_t status;		/* MHP_ENABLED | MHP_INSERTING | MHP_REMOVING */
	uint32_t pxm, ost_event, ost_status;
};

struct mem_hotplug {
	struct vm *vm;
	uint64_t base;			/* the register block */
	uint64_t area_gpa, area_size;	/* the layout's RANGE_ACPI_HOTPLUG */
	uint32_t pxm;			/* the area's guest node's proximity domain */
	uint64_t used;			/* bytes of the area plugged; main thread only */
	_Atomic unsigned nplugged;	/* slots 0..nplugged-1 hold DIMMs, in address order */
	atomic_bool eject_logged, selector_logged, readonly_logged;

	pthread_mutex_t lock;
	uint32_t selector;
	struct mhp_slot slots[MHP_SLOTS];
};

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void mhp__read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct mem_hotplug *h = opaque;
	uint8_t regs[MHP_LEN] = { 0 };
	const struct mhp_slot *s;

	pthread_mutex_lock(&h->lock);
	s = &h->slots[h->selector];
	if (s->status & MHP_ENABLED) {
		put32(regs + 0x00, (uint32_t)s->gpa);
		put32(regs + 0x04, (uint32_t)(s->gpa >> 32));
		put32(regs + 0x08, (uint32_t)s->size);
		put32(regs + 0x0c, (uint32_t)(s->size >> 32));
		put32(regs + MHP_PXM, s->pxm);
	}
	regs[MHP_STATUS] = s->status;
	pthread_mutex_unlock(&h->lock);
	/* The bus keeps offset + size within MHP_LEN. */
	memcpy(data, regs + offset, size);
}

static void mhp__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct mem_hotplug *h = opaque;
	uint32_t v = 0;
	struct mhp_slot *s;

	for (unsigned i = 0; i < size && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	pthread_mutex_lock(&h->lock);
	s = &h->slots[h->selector];
	switch (offset) {
	case MHP_SELECTOR:
		if (v < MHP_SLOTS)
			h->selector = v;
		else if (!atomic_exchange(&h->selector_logged, true))
			report("ACPI memory hotplug: the guest selected slot %u of %d; ignored (further "
			       "ones are not logged)", v, MHP_SLOTS);
		break;
	case MHP_OST_EVENT:
		s->ost_event = v;
		break;
	case MHP_OST_STATUS:
		s->ost_status = v;
		break;
	case MHP_STATUS:
		if (v & MHP_INSERTING)
			s->status &= (uint8_t)~MHP_INSERTING;
		if (v & MHP_REMOVING)
			s->status &= (uint8_t)~MHP_REMOVING;
		if ((v & MHP_EJECT) && !atomic_exchange(&h->eject_logged, true))
			report("ACPI memory hotplug: the guest ejected DIMM slot %u; ignored (memory "
			       "is not removed from a running guest)", h->selector);
		break;
	default:
		if (!atomic_exchange(&h->readonly_logged, true))
			report("ACPI memory hotplug: write to read-only offset 0x%llx ignored (further "
			       "ones are not logged)", (unsigned long long)offset);
		break;
	}
	pthread_mutex_unlock(&h->lock);
}

static const struct bus_ops mhp_ops = {
	.read = mhp__read,
	.write = mhp__write,
};

static const struct mem_range *mhp__area(const struct layout *l)
{
	for (int i = 0; i < l->nranges; i++)
		if (l->ranges[i].kind == RANGE_ACPI_HOTPLUG)
			return &l->ranges[i];
	return NULL;
}

/* Without an ACPI hotplug area there is no device: vm->mem_hotplug stays NULL. */
static int mhp__init(struct vm *vm, char *err, size_t errlen)
{
	const struct mem_range *area = mhp__area(&vm->layout);
	struct mem_hotplug *h;
	int e;

	if (!area)
		return 0;
	h = calloc(1, sizeof(*h));
	if (!h)
		return error(err, errlen, "mem-hotplug: out of memory");
	h->vm = vm;
	h->area_gpa = area->gpa;
	h->area_size = area->size;
	h->pxm = area->guest_node >= 0 ? vm->cfg.numa[area->guest_node].guest_numa_id : 0;
	atomic_init(&h->nplugged, 0);
	atomic_init(&h->eject_logged, false);
	atomic_init(&h->selector_logged, false);
	atomic_init(&h->readonly_logged, false);
	for (unsigned i = 0; i < MHP_SLOTS; i++)
		h->slots[i].backing = (struct backing){ .fd = -1, .old_size = -1 };
	e = pthread_mutex_init(&h->lock, NULL);
	if (e) {
		free(h);
		return error(err, errlen, "mem-hotplug: pthread_mutex_init: %s", strerror(e));
	}
	if (mmio_window__alloc(&vm->mmio_window, MHP_LEN, MHP_ALIGN, &h->base, "mem-hotplug", err,
			       errlen) < 0 ||
	    bus__register(&vm->mmio, h->base, MHP_LEN, &mhp_ops, h, "mem-hotplug", err,
			  errlen) < 0) {
		pthread_mutex_destroy(&h->lock);
		free(h);
		return -1;
	}
	vm->mem_hotplug = h;
	return 0;
}

/* With the vCPUs stopped: the DIMMs go (KVM's slots went with the VM's fd). */
static int mhp__exit(struct vm *vm, char *err, size_t errlen)
{
	struct mem_hotplug *h = vm->mem_hotplug;
	int r;

	if (!h)
		return 0;
	r = bus__unregister(&vm->mmio, h->base, err, errlen);
	for (unsigned i = 0; i < MHP_SLOTS; i++)
		backing__destroy(&h->slots[i].backing);
	pthread_mutex_destroy(&h->lock);
	free(h);
	vm->mem_hotplug = NULL;
	return r;
}

void *mem_hotplug__gpa_to_hva(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	const struct mem_hotplug *h = vm->mem_hotplug;
	unsigned n = h ? atomic_load_explicit(&h->nplugged, memory_order_acquire) : 0;

	for (unsigned i = 0; i < n; i++) {
		const struct mhp_slot *s = &h->slots[i];

		if (gpa < s->gpa || gpa - s->gpa > s->size || len > s->size - (gpa - s->gpa))
			continue;
		return (uint8_t *)s->backing.host + (gpa - s->gpa);
	}
	return NULL;
}

uint64_t mem_hotplug__plugged(const struct vm *vm)
{
	return vm->mem_hotplug ? vm->mem_hotplug->used : 0;
}

/* A DIMM is backed as --memory is: its options, no file (--memory has none), no host node. */
static void mhp__dimm_zone(const struct vm *vm, unsigned slot, uint64_t size,
			   struct zone_config *z)
{
	const struct memory_config *m = &vm->cfg.memory;

	*z = (struct zone_config){ .size = size, .shared = m->shared, .hugepages = m->hugepages,
				   .hugepage_size = m->hugepage_size, .prefault = m->prefault,
				   .host_numa_node = -1, .guest_node = -1 };
	/* The memfd's name in /proc/PID/maps: memvisor-acpi-dimmN. */
	snprintf(z->id, sizeof(z->id), "acpi-dimm%u", slot);
}

int mem_hotplug__resize(struct vm *vm, uint64_t desired_ram, char *err, size_t errlen)
{
	struct mem_hotplug *h = vm->mem_hotplug;
	uint64_t ram, grow, page;
	struct kvm_userspace_memory_region region;
	struct zone_config z;
	struct mhp_slot *s;
	unsigned slot;
	char why[384];

	if (!h)
		return error(err, errlen, "vm.resize: the VM has no ACPI hotplug memory "
			     "(--memory hotplug_method=acpi,hotplug_size)"), HOTPLUG_REFUSED;
	ram = vm->layout.boot_ram + h->used;
	if (desired_ram == ram)
		return 0;
	if (desired_ram < ram)
		return error(err, errlen, "vm.resize: ACPI memory cannot be removed from a running "
			     "guest (desired_ram %s, RAM %s)", config__size_str(desired_ram).s,
			     config__size_str(ram).s), HOTPLUG_REFUSED;
	grow = desired_ram - ram;
	if (grow % HOTPLUG_ALIGN)
		return error(err, errlen, "vm.resize: growing by %s: ACPI memory grows in multiples "
			     "of %s", config__size_str(grow).s,
			     config__size_str(HOTPLUG_ALIGN).s), HOTPLUG_REFUSED;
	if (grow > h->area_size - h->used)
		return error(err, errlen, "vm.resize: growing by %s: only %s of hotplug_size %s is "
			     "left", config__size_str(grow).s,
			     config__size_str(h->area_size - h->used).s,
			     config__size_str(h->area_size).s), HOTPLUG_REFUSED;
	slot = atomic_load_explicit(&h->nplugged, memory_order_relaxed);
	if (slot >= MHP_SLOTS)
		return error(err, errlen, "vm.resize: all %d ACPI DIMM slots are in use",
			     MHP_SLOTS), HOTPLUG_REFUSED;
	mhp__dimm_zone(vm, slot, grow, &z);
	page = config__zone_page_size(&vm->cfg, &z, &vm->host);
	if (page && grow % page)
		return error(err, errlen, "vm.resize: growing by %s: not a multiple of --memory's "
			     "%s pages", config__size_str(grow).s, config__size_str(page).s),
		       HOTPLUG_REFUSED;

	s = &h->slots[slot];
	if (backing__create(&s->backing, &vm->cfg, &z, grow, &vm->host, why, sizeof(why)) < 0)
		return error(err, errlen, "vm.resize: DIMM %u: %s", slot, why), HOTPLUG_FAILED;
	region = (struct kvm_userspace_memory_region){
		.slot = (uint32_t)vm->nslots,
		.guest_phys_addr = h->area_gpa + h->used,
		.memory_size = grow,
		.userspace_addr = (uint64_t)(uintptr_t)s->backing.host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		int e = errno;

		backing__abort(&s->backing);
		return error(err, errlen, "vm.resize: DIMM %u: KVM_SET_USER_MEMORY_REGION slot %d "
			     "at 0x%" PRIx64 " (%s): %s", slot, vm->nslots, (uint64_t)region.guest_phys_addr,
			     config__size_str(grow).s, strerror(e)), HOTPLUG_FAILED;
	}
	vm->nslots++;

	pthread_mutex_lock(&h->lock);
	s->gpa = region.guest_phys_addr;
	s->size = grow;
	s->pxm = h->pxm;
	s->ost_event = s->ost_status = 0;
	s->status = MHP_ENABLED | MHP_INSERTING;
	pthread_mutex_unlock(&h->lock);
	h->used += grow;
	atomic_store_explicit(&h->nplugged, slot + 1, memory_order_release);
	if (vm->verbose)
		fprintf(stderr, "memvisor: ACPI DIMM %u: 0x%" PRIx64 " + %s, backing=%s host=%p\n",
			slot, s->gpa, config__size_str(grow).s, backing__name(s->backing.type),
			s->backing.host);
	ged__event(vm, GED_MEMORY_CHANGED);
	return 0;
}

/* ---- DSDT ---- */

/* Acquire (MLCK, 0xFFFF); MSEL = Arg0: the start of every per-slot method. */
static void mhp__select(struct aml *a)
{
	aml__acquire(a, "MLCK", 0xffff);
	aml__op(a, AML_STORE);
	aml__arg(a, 0);
	aml__path(a, "MSEL");
}

/* Method (name, nargs, Serialized) { Acquire; MSEL = Arg0; Local0 = field; Release; Return } */
static void mhp__read_method(struct aml *a, const char *name, const char *field)
{
	aml__method(a, name, 1, true);
	mhp__select(a);
	aml__op(a, AML_STORE);
	aml__path(a, field);
	aml__local(a, 0);
	aml__release(a, "MLCK");
	aml__op(a, AML_RETURN);
	aml__local(a, 0);
	aml__pkg_close(a);
}

/* If (field == One) { MTFY (Local0, event); field = One }: writing 1 clears the flag. */
static void mhp__scan_flag(struct aml *a, const char *field, unsigned event)
{
	aml__if(a);
	aml__op(a, AML_LEQUAL);
	aml__path(a, field);
	aml__int(a, 1);
	aml__path(a, "MTFY");
	aml__local(a, 0);
	aml__int(a, event);
	aml__op(a, AML_STORE);
	aml__int(a, 1);
	aml__path(a, field);
	aml__pkg_close(a);
}

#define AML_CREATE_QWORD_FIELD	0x8f	/* CreateQWordField (buffer, byte index, name) */

/* Or (ShiftLeft (hi, 32), lo, dst): a 64-bit value from its two register halves. */
static void mhp__join(struct aml *a, const char *hi, const char *lo, const char *dst)
{
	aml__op(a, AML_STORE);
	aml__op(a, AML_OR);
	aml__op(a, AML_SHIFT_LEFT);
	aml__path(a, hi);
	aml__int(a, 32);
	aml__no_target(a);
	aml__path(a, lo);
	aml__no_target(a);
	aml__path(a, dst);
}

static void mhp__create_qword(struct aml *a, unsigned index, const char *name)
{
	aml__byte(a, AML_CREATE_QWORD_FIELD);
	aml__local(a, 1);
	aml__int(a, index);
	aml__path(a, name);
}

/* MCRS (slot): the slot's range as a QWordMemory, the offsets being the descriptor's fields. */
static void mhp__mcrs(struct aml *a)
{
	aml__method(a, "MCRS", 1, true);
	mhp__select(a);
	aml__op(a, AML_STORE);			/* a local copy: no named object per call */
	aml__resource_template(a);
	aml__rt_qword_memory(a, true, AML_CACHEABLE, true, 0, 1);	/* a placeholder */
	aml__pkg_close(a);
	aml__local(a, 1);
	mhp__create_qword(a, 14, "MINL");	/* _MIN */
	mhp__create_qword(a, 22, "MAXL");	/* _MAX */
	mhp__create_qword(a, 38, "LENL");	/* _LEN */
	mhp__join(a, "MHBH", "MHBL", "MINL");
	mhp__join(a, "MHLH", "MHLL", "LENL");
	aml__op(a, AML_SUBTRACT);		/* MAXL = MINL + LENL - 1 */
	aml__op(a, AML_ADD);
	aml__path(a, "MINL");
	aml__path(a, "LENL");
	aml__no_target(a);
	aml__int(a, 1);
	aml__path(a, "MAXL");
	aml__release(a, "MLCK");
	aml__op(a, AML_RETURN);
	aml__local(a, 1);
	aml__pkg_close(a);
}

static void mhp__fields(struct aml *a, uint64_t base)
{
	static const char *const dwords[] = { "MHBL", "MHBH", "MHLL", "MHLH", "MHPX" };

	aml__operation_region(a, "MHPR", AML_SYSTEM_MEMORY, base, MHP_LEN);
	aml__field(a, "MHPR", AML_DWORD_ACC, false, AML_PRESERVE);
	for (size_t i = 0; i < ARRAY_SIZE(dwords); i++)
		aml__field_unit(a, dwords[i], 32);
	aml__pkg_close(a);
	aml__field(a, "MHPR", AML_BYTE_ACC, false, AML_WRITE_AS_ZEROS);
	aml__field_offset(a, MHP_STATUS);
	aml__field_unit(a, "MEN_", 1);
	aml__field_unit(a, "MINS", 1);
	aml__field_unit(a, "MRMV", 1);
	aml__field_unit(a, "MEJ0", 1);
	aml__pkg_close(a);
	aml__field(a, "MHPR", AML_DWORD_ACC, false, AML_PRESERVE);
	aml__field_unit(a, "MSEL", 32);
	aml__field_unit(a, "MOEV", 32);
	aml__field_unit(a, "MOSC", 32);
	aml__pkg_close(a);
}

/* The methods the slots call, each taking the slot number first. */
static void mhp__slot_methods(struct aml *a)
{
	/* MSTA (slot): 0xF when enabled, else 0 (not present) */
	aml__method(a, "MSTA", 1, true);
	mhp__select(a);
	aml__op(a, AML_STORE);
	aml__int(a, 0);
	aml__local(a, 0);
	aml__if(a);
	aml__op(a, AML_LEQUAL);
	aml__path(a, "MEN_");
	aml__int(a, 1);
	aml__op(a, AML_STORE);
	aml__int(a, 0xf);
	aml__local(a, 0);
	aml__pkg_close(a);
	aml__release(a, "MLCK");
	aml__op(a, AML_RETURN);
	aml__local(a, 0);
	aml__pkg_close(a);

	mhp__mcrs(a);
	mhp__read_method(a, "MPXM", "MHPX");

	/* MOST (slot, event, status): _OST, whose third argument (a buffer) is not kept */
	aml__method(a, "MOST", 3, true);
	mhp__select(a);
	aml__op(a, AML_STORE);
	aml__arg(a, 1);
	aml__path(a, "MOEV");
	aml__op(a, AML_STORE);
	aml__arg(a, 2);
	aml__path(a, "MOSC");
	aml__release(a, "MLCK");
	aml__pkg_close(a);

	/* MEJC (slot): _EJ0 */
	aml__method(a, "MEJC", 1, true);
	mhp__select(a);
	aml__op(a, AML_STORE);
	aml__int(a, 1);
	aml__path(a, "MEJ0");
	aml__release(a, "MLCK");
	aml__pkg_close(a);
}

/* MTFY (slot, event): Notify (Mxxx, event), one If per slot (Notify takes no computed name). */
static void mhp__mtfy(struct aml *a)
{
	char name[8];

	aml__method(a, "MTFY", 2, true);
	for (unsigned i = 0; i < MHP_SLOTS; i++) {
		snprintf(name, sizeof(name), "M%03X", i);
		aml__if(a);
		aml__op(a, AML_LEQUAL);
		aml__arg(a, 0);
		aml__int(a, i);
		aml__op(a, AML_NOTIFY);
		aml__path(a, name);
		aml__arg(a, 1);
		aml__pkg_close(a);
	}
	aml__pkg_close(a);
}

/* MSCN: the GED's memory event. Device Check for inserting slots, Eject Request for removing. */
static void mhp__mscn(struct aml *a)
{
	aml__method(a, "MSCN", 0, true);
	aml__acquire(a, "MLCK", 0xffff);
	aml__op(a, AML_STORE);
	aml__int(a, 0);
	aml__local(a, 0);
	aml__while(a);
	aml__op(a, AML_LLESS);
	aml__local(a, 0);
	aml__int(a, MHP_SLOTS);
	aml__op(a, AML_STORE);
	aml__local(a, 0);
	aml__path(a, "MSEL");
	mhp__scan_flag(a, "MINS", 1);
	mhp__scan_flag(a, "MRMV", 3);
	aml__op(a, AML_INCREMENT);
	aml__local(a, 0);
	aml__pkg_close(a);
	aml__release(a, "MLCK");
	aml__pkg_close(a);
}

/* Device (Mxxx): a PNP0C80 memory device whose methods ask the controller about slot i. */
static void mhp__slot_device(struct aml *a, unsigned i)
{
	/* nargs: the ACPI method's; npass: how many of them go to the controller's method. */
	static const struct {
		const char *name, *method;
		unsigned nargs, npass;
		bool ret;
	} m[] = {
		{ "_STA", "MSTA", 0, 0, true },
		{ "_CRS", "MCRS", 0, 0, true },
		{ "_PXM", "MPXM", 0, 0, true },
		{ "_OST", "MOST", 3, 2, false },	/* source event, status code */
		{ "_EJ0", "MEJC", 1, 0, false },
	};
	char name[8];

	snprintf(name, sizeof(name), "M%03X", i);
	aml__device(a, name);
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0C80");
	aml__name(a, "_UID");
	aml__int(a, i);
	for (size_t k = 0; k < ARRAY_SIZE(m); k++) {
		aml__method(a, m[k].name, m[k].nargs, false);
		if (m[k].ret)
			aml__op(a, AML_RETURN);
		aml__path(a, m[k].method);
		aml__int(a, i);
		for (unsigned j = 0; j < m[k].npass; j++)
			aml__arg(a, j);
		aml__pkg_close(a);
	}
	aml__pkg_close(a);
}

/*
 * \_SB.MHPC, Cloud Hypervisor's controller (vmm/src/memory_manager.rs), with QEMU's _PXM, _OST
 * and _EJ0 per slot. Without hotplug memory it holds only an empty MSCN, which the GED's ESCN
 * calls (as CH does): no _CRS, no slots.
 */
static void mhp__dsdt(const struct vm *vm, struct aml *a)
{
	const struct mem_hotplug *h = vm->mem_hotplug;

	aml__scope(a, "\\_SB_");
	aml__device(a, "MHPC");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0A06");
	aml__name(a, "_UID");
	aml__string(a, "Memory Hotplug Controller");
	if (!h) {
		aml__method(a, "MSCN", 0, true);
		aml__pkg_close(a);
		aml__pkg_close(a);
		aml__pkg_close(a);
		return;
	}
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_qword_memory(a, true, AML_NON_CACHEABLE, true, h->base, MHP_LEN);
	aml__pkg_close(a);
	aml__mutex(a, "MLCK", 0);
	mhp__fields(a, h->base);
	mhp__slot_methods(a);
	mhp__mtfy(a);
	mhp__mscn(a);
	for (unsigned i = 0; i < MHP_SLOTS; i++)
		mhp__slot_device(a, i);
	aml__pkg_close(a);	/* MHPC */
	aml__pkg_close(a);	/* \_SB_ */
}

const struct device_def mem_hotplug_device = {
	.name = "mem-hotplug",
	.init = mhp__init,
	.exit = mhp__exit,
	.dsdt = mhp__dsdt,
};
