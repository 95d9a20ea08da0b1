/*
 * From lib/entry.S to main(): console, exception handlers, start info, CPU identification,
 * the full identity map. Also the list of regions no guest may write.
 */
#include "guest.h"

extern u64 tsc_entry, start_info_pa;
extern const u64 exc_stubs[32];
extern const char guest_banner[];	/* each guest's versioned first line */

struct boot boot;

/* ---- exceptions: report and exit rather than triple-fault into a silent reset ---- */

struct idt_entry {
	u16 off_lo, sel;
	u8 ist, type;
	u16 off_mid;
	u32 off_hi, zero;
} __packed;

static struct idt_entry idt[32] __attribute__((aligned(16)));

static void idt_init(void)
{
	struct { u16 limit; u64 base; } __packed desc = { sizeof(idt) - 1, (u64)(uintptr_t)idt };

	for (int v = 0; v < 32; v++) {
		u64 a = exc_stubs[v];
		idt[v] = (struct idt_entry){ (u16)a, 0x08, 0, 0x8e, (u16)(a >> 16), (u32)(a >> 32), 0 };
	}
	__asm__ volatile("lidt %0" : : "m"(desc));
}

struct exc_frame { u64 rdi, rsi, rbp, rbx, rdx, rcx, rax, vector, error, rip, cs, rflags, rsp, ss; };

__noreturn void exception_handler(struct exc_frame *f);
__noreturn void exception_handler(struct exc_frame *f)
{
	static bool nested;
	u64 cr2;

	if (nested)
		guest_exit(EXIT_EXCEPTION);
	nested = true;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	console_break();
	printf("exception vector=%lu error=0x%lx rip=0x%lx rsp=0x%lx cr2=0x%lx\n",
	       f->vector, f->error, f->rip, f->rsp, cr2);
	printf("FAIL: exception vector=%lu\nSUMMARY: FAIL 1\n", f->vector);
	guest_exit(EXIT_EXCEPTION);
}

/* ---- regions that must not be written ---- */

void protect_add(u64 start, u64 size, const char *what)
{
	if (!size)
		return;
	if (boot.nprotect == MAX_PROTECT) {
		printf("FAIL: setup too many protected regions (%s)\nSUMMARY: FAIL 1\n", what);
		guest_exit(EXIT_FATAL);
	}
	boot.protect[boot.nprotect++] = (struct region){ start, start + size, what };
}

static bool listed(u64 start, u64 end)
{
	for (int i = 0; i < boot.nprotect; i++)
		if (start < boot.protect[i].end && boot.protect[i].start < end)
			return true;
	return false;
}

bool protect_overlaps(u64 start, u64 size)
{
	u64 end = start + size;

	/* the image, its .bss (stack, boot page tables) and the page tables allocated after it */
	if (start < boot.heap_end && (u64)(uintptr_t)_start < end)
		return true;
	return listed(start, end);
}

u64 e820_top(void)
{
	u64 top = 0;

	for (u32 i = 0; i < boot.e820_entries; i++)
		if (boot.e820[i].addr + boot.e820[i].size > top)
			top = boot.e820[i].addr + boot.e820[i].size;
	return top;
}

/* ---- paging ---- */

extern u64 boot_pml4[512];
#define PTE_P	0x001ULL
#define PTE_RW	0x002ULL
#define PTE_PS	0x080ULL
#define PTE_ADDR 0x000ffffffffff000ULL

static bool usable(u64 start, u64 size)
{
	for (u32 i = 0; i < boot.e820_entries; i++) {
		const struct hvm_memmap_entry *e = &boot.e820[i];
		if (e->type == E820_RAM && e->addr <= start && start + size <= e->addr + e->size)
			return true;
	}
	return false;
}

static u64 *alloc_page(void)
{
	u64 p = boot.heap_end;

	while (listed(p, p + PAGE_SIZE))	/* boot data placed right after the image */
		p += PAGE_SIZE;
	if (!usable(p, PAGE_SIZE) || p + PAGE_SIZE > 4 * GiB) {
		console_break();
		printf("FAIL: paging no usable RAM for page tables at 0x%lx\nSUMMARY: FAIL 1\n", p);
		guest_exit(EXIT_FATAL);
	}
	boot.heap_end = p + PAGE_SIZE;
	return memset((void *)(uintptr_t)p, 0, PAGE_SIZE);
}

void paging_map(u64 limit)
{
	u64 cap = 1ULL << (boot.phys_bits < 47 ? boot.phys_bits : 47);

	limit = ALIGN_UP(limit, GiB);
	if (limit > cap)	/* entries beyond MAXPHYADDR would have reserved bits set */
		limit = cap;
	for (u64 gb = boot.mapped_limit >> 30; gb < limit >> 30; gb++) {
		u64 *pml4e = &boot_pml4[gb >> 9];
		if (!(*pml4e & PTE_P))
			*pml4e = (u64)(uintptr_t)alloc_page() | PTE_P | PTE_RW;
		u64 *pdpt = (u64 *)(uintptr_t)(*pml4e & PTE_ADDR);
		if (boot.gbpages) {
			pdpt[gb & 511] = (gb << 30) | PTE_P | PTE_RW | PTE_PS;
		} else {
			u64 *pd = alloc_page();
			for (u64 i = 0; i < 512; i++)
				pd[i] = ((gb << 30) + (i << 21)) | PTE_P | PTE_RW | PTE_PS;
			pdpt[gb & 511] = (u64)(uintptr_t)pd | PTE_P | PTE_RW;
		}
	}
	if (limit > boot.mapped_limit) {
		boot.mapped_limit = limit;
		u64 cr3;
		__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	}
}

void paging_init(void)
{
	boot.heap_start = boot.heap_end = ALIGN_UP((u64)(uintptr_t)_end, PAGE_SIZE);
	boot.mapped_limit = 4 * GiB;	/* lib/entry.S */
	/* With 1 GiB pages the first 512 GiB cost no page at all: take them all */
	u64 want = boot.gbpages ? 512 * GiB : 4 * GiB;
	paging_map(e820_top() > want ? e820_top() : want);
}

/* ---- CPU ---- */

static void cpu_probe(void)
{
	u32 r[4];

	cpuid(0, 0, r);
	boot.max_leaf = r[0];
	memcpy(boot.vendor, &r[1], 4);
	memcpy(boot.vendor + 4, &r[3], 4);
	memcpy(boot.vendor + 8, &r[2], 4);
	cpuid(1, 0, r);
	boot.stepping = r[0] & 0xf;
	boot.family = (r[0] >> 8) & 0xf;
	boot.model = (r[0] >> 4) & 0xf;
	if (boot.family == 0xf)
		boot.family += (r[0] >> 20) & 0xff;
	if (boot.family >= 6)
		boot.model |= ((r[0] >> 16) & 0xf) << 4;
	boot.bsp_apic = r[1] >> 24;
	boot.x2apic = r[2] & (1u << 21);
	bool hv = r[2] & (1u << 31);
	if (boot.x2apic && boot.max_leaf >= 0xb) {
		cpuid(0xb, 0, r);
		boot.bsp_apic = r[3];
	}
	cpuid(0x80000000, 0, r);
	boot.max_ext_leaf = r[0];
	boot.phys_bits = 36;
	boot.virt_bits = 48;
	if (boot.max_ext_leaf >= 0x80000001) {
		cpuid(0x80000001, 0, r);
		boot.gbpages = r[3] & (1u << 26);
	}
	if (boot.max_ext_leaf >= 0x80000008) {
		cpuid(0x80000008, 0, r);
		boot.phys_bits = r[0] & 0xff;
		boot.virt_bits = (r[0] >> 8) & 0xff;
	}
	if (hv) {
		cpuid(0x40000000, 0, r);
		boot.max_hv_leaf = r[0];
		memcpy(boot.hypervisor, &r[1], 4);
		memcpy(boot.hypervisor + 4, &r[2], 4);
		memcpy(boot.hypervisor + 8, &r[3], 4);
		if (boot.max_hv_leaf >= 0x40000001 && boot.max_hv_leaf < 0x40010000) {
			cpuid(0x40000001, 0, r);
			boot.hv_features = r[0];
		}
	}

	/* TSC frequency: the hypervisor timing leaf, else the crystal ratio, else base MHz */
	boot.tsc_source = "none";
	if (boot.max_hv_leaf >= 0x40000010 && boot.max_hv_leaf < 0x40010000) {
		cpuid(0x40000010, 0, r);
		if (r[0]) {
			boot.tsc_khz = r[0];
			boot.tsc_source = "cpuid-0x40000010";
		}
	}
	if (!boot.tsc_khz && boot.max_leaf >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2]) {
			boot.tsc_khz = (u64)r[2] * r[1] / r[0] / 1000;
			boot.tsc_source = "cpuid-0x15";
		}
	}
	if (!boot.tsc_khz && boot.max_leaf >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0] & 0xffff) {
			boot.tsc_khz = (u64)(r[0] & 0xffff) * 1000;
			boot.tsc_source = "cpuid-0x16";
		}
	}
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

void print_boot_info(void)
{
	const struct hvm_start_info *si = boot.si;

	printf("start_info addr=0x%lx version=%u flags=0x%x modules=%u memmap_entries=%u rsdp=0x%lx\n",
	       boot.si_paddr, si->version, si->flags, si->nr_modules, boot.e820_entries,
	       si->rsdp_paddr);
	printf("cmdline value=");
	print_quoted(boot.cmdline, 4096);
	printf("\n");
	printf("cpu vendor=");
	print_quoted(boot.vendor, 12);
	printf(" family=%u model=%u stepping=%u max_leaf=0x%x max_ext_leaf=0x%x", boot.family,
	       boot.model, boot.stepping, boot.max_leaf, boot.max_ext_leaf);
	if (boot.max_hv_leaf) {
		printf(" hypervisor=");
		print_quoted(printable(boot.hypervisor) ? boot.hypervisor : "?", 12);
		printf(" max_hv_leaf=0x%x hv_features=0x%x", boot.max_hv_leaf, boot.hv_features);
	}
	printf(" phys_bits=%u virt_bits=%u pdpe1gb=%d x2apic=%d bsp_apic=%u\n", boot.phys_bits,
	       boot.virt_bits, boot.gbpages, boot.x2apic, boot.bsp_apic);
	if (boot.tsc_khz)
		printf("tsc khz=%lu source=%s entry=%lu\n", boot.tsc_khz, boot.tsc_source, boot.tsc_entry);
	else
		printf("tsc khz=unknown source=none entry=%lu\n", boot.tsc_entry);
}

__noreturn void guest_setup(void);
__noreturn void guest_setup(void)
{
	debug_mark(DEBUG_LONG_MODE);
	serial_init();
	idt_init();
	printf("%s\n", guest_banner);
	boot.tsc_entry = tsc_entry;
	boot.si_paddr = start_info_pa;
	cpu_probe();

	const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_pa;
	if (!start_info_pa || start_info_pa + sizeof(*si) > 4 * GiB || si->magic != HVM_START_MAGIC ||
	    si->version < 1 || !si->memmap_entries || si->memmap_paddr + 24ULL * si->memmap_entries > 4 * GiB) {
		printf("FAIL: start_info addr=0x%lx is not a version 1 hvm_start_info with a memory map\n",
		       start_info_pa);
		printf("SUMMARY: FAIL 1\n");
		guest_exit(EXIT_FATAL);
	}
	boot.si = si;
	boot.e820 = (const void *)(uintptr_t)si->memmap_paddr;
	boot.e820_entries = si->memmap_entries;
	boot.cmdline = si->cmdline_paddr && si->cmdline_paddr < 4 * GiB ?
		       (const char *)(uintptr_t)si->cmdline_paddr : "";
	protect_add(start_info_pa, sizeof(*si), "start_info");
	protect_add(si->memmap_paddr, sizeof(*boot.e820) * si->memmap_entries, "memmap");
	protect_add(si->cmdline_paddr, strlen(boot.cmdline) + 1, "cmdline");
	if (si->nr_modules && si->modlist_paddr && si->modlist_paddr < 4 * GiB) {
		boot.mods = (const void *)(uintptr_t)si->modlist_paddr;
		boot.nr_mods = si->nr_modules;
		protect_add(si->modlist_paddr, sizeof(*boot.mods) * si->nr_modules, "modlist");
		for (u32 i = 0; i < boot.nr_mods; i++) {
			protect_add(boot.mods[i].paddr, boot.mods[i].size, "module");
			if (boot.mods[i].cmdline_paddr && boot.mods[i].cmdline_paddr < 4 * GiB)
				protect_add(boot.mods[i].cmdline_paddr,
					    strlen((const char *)(uintptr_t)boot.mods[i].cmdline_paddr) + 1,
					    "module cmdline");
		}
	}
	paging_init();
	u32 code = (u32)main();
	if (cmdline_flag(boot.cmdline, "hold")) {
		/* The host samples its view of our memory now, then kills the VMM */
		console_flush();
		debug_mark(DEBUG_HOLD);
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	guest_exit(code);
}
