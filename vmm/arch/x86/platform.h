/*
 * Fixed facts of the PC platform memvisor presents, in one place: the fixed parts of the guest
 * physical memory map (the legacy window, the 32-bit MMIO hole, where boot data goes), the
 * legacy ISA ports and IRQs that guests find without being told (no firmware table is needed to
 * locate COM1), the in-kernel IOAPIC's pins, and the fixed areas at the top of the 32-bit MMIO
 * hole. Device files take their ports and lines from here, or from the GSI and MMIO-window
 * allocators (device.h), never from literals of their own.
 */
#ifndef MEMVISOR_ARCH_X86_PLATFORM_H
#define MEMVISOR_ARCH_X86_PLATFORM_H

/*
 * Guest physical memory of the PC: RAM from 0, except the legacy VGA/BIOS window [640 KiB,
 * 1 MiB), which E820 reports as reserved, and the 32-bit MMIO hole [3 GiB, 4 GiB), which is never
 * RAM; RAM continues at 4 GiB. memory/layout.c places the zones around these.
 */
#define LOW_RAM_END		0x000a0000ULL	/* legacy VGA/BIOS area starts here */
#define HIGH_RAM_START		0x00100000ULL
#define MMIO32_START		0xc0000000ULL	/* 32-bit MMIO hole: never RAM */
#define MMIO32_END		0x100000000ULL
#define RAM_64BIT_START		0x100000000ULL

/*
 * Boot data lives in [640 KiB, 1 MiB), which the E820 map reports as reserved: the guest never
 * mistakes it for free RAM, and the probe's memory test never has to step around it.
 */
#define BOOT_GDT_ADDR		0x000a0000ULL
#define PVH_START_INFO_ADDR	0x000a1000ULL
#define PVH_MODLIST_ADDR	0x000a1800ULL
#define PVH_MEMMAP_ADDR		0x000a2000ULL	/* up to 128 E820 entries */
#define LINUX_BOOT_PARAMS_ADDR	0x000a3000ULL	/* Linux's zero page: 4 KiB */
#define LINUX_PAGE_TABLES_ADDR	0x000a4000ULL	/* [0, 4 GiB) identity map for the 64-bit entry */
#define LINUX_PAGE_TABLES_SIZE	0x00006000ULL	/* PML4, PDPT, 4 page directories of 2 MiB pages */
#define BOOT_CMDLINE_ADDR	0x000b0000ULL	/* either protocol's command line */
#define BOOT_CMDLINE_MAX	0x00010000ULL
#define FDT_ADDR		0x000c0000ULL
#define FDT_MAX			0x00010000ULL
#define ACPI_TABLES_ADDR	0x000e0000ULL	/* RSDP first, then the tables: 0xe0000-0xfffef */
#define ACPI_TABLES_MAX		0x0001fff0ULL
/*
 * The x86 reset vector, F000:FFF0 in real mode. Linux 6.1 on a hardware-reduced FADT reboots
 * through EFI (which it does not have here) and then by jumping to this address in real mode
 * ("BIOS" reboot), never trying the FADT's reset register first. A 16-byte stub here writes the
 * reset value to that register, so a reboot ends memvisor like any other reset (boot.c).
 */
#define RESET_VECTOR_ADDR	0x000ffff0ULL

/* COM1, as every PC since the 5150 places it. */
#define ISA_COM1_PORT		0x3f8
#define ISA_COM1_LEN		8
#define ISA_COM1_IRQ		4

/* The POST code port: firmware and Linux write boot progress codes here. */
#define ISA_DEBUG_PORT		0x80
#define ISA_DEBUG_PORT_LEN	1

/*
 * The test exit port, where QEMU's isa-debug-exit conventionally sits (the harness runs the same
 * guests under QEMU with iobase=0xf4,iosize=0x04).
 */
#define ISA_EXIT_PORT		0xf4
#define ISA_EXIT_PORT_LEN	4

/*
 * The i8042 keyboard controller's ports: only its reset line is emulated (devices/i8042.c), the
 * way Linux's `reboot=k` and old firmware restart a PC. The FADT does not announce a controller.
 */
#define ISA_I8042_DATA_PORT	0x60
#define ISA_I8042_CMD_PORT	0x64
#define I8042_CMD_RESET		0xfe	/* pulse the CPU reset line */

/*
 * The hardware-reduced ACPI power registers (devices/acpi_power.c), which the FADT points at:
 * sleep control, sleep status and reset, one byte each, at Cloud Hypervisor's port 0x600. The
 * guest enters S5 (power off) by writing SLP_TYP (from the DSDT's \_S5) and SLP_EN to sleep
 * control, and resets by writing ACPI_RESET_VALUE to the reset register (Linux with reboot=acpi;
 * by default it gets there through the reset vector's stub, RESET_VECTOR_ADDR).
 */
#define ACPI_PM_PORT		0x600
#define ACPI_PM_LEN		3
#define ACPI_SLEEP_CONTROL_PORT	(ACPI_PM_PORT + 0)
#define ACPI_SLEEP_STATUS_PORT	(ACPI_PM_PORT + 1)
#define ACPI_RESET_PORT		(ACPI_PM_PORT + 2)
#define ACPI_RESET_VALUE	0x01
#define ACPI_S5_SLP_TYP		5	/* \_S5's SLP_TYPa: any value 0-7 the DSDT and device agree on */

/* ISA IRQ n is GSI n (the MADT has no overrides): lines below 16 are only ever reserved. */
#define ISA_NR_IRQS		16
/* KVM's in-kernel IOAPIC (KVM_CREATE_IRQCHIP) has 24 pins: GSIs 0..23. */
#define IOAPIC_NR_PINS		24

/* The port I/O space: 64 KiB. */
#define PIO_LAST_PORT		0xffffULL

/*
 * The 32-bit MMIO hole [MMIO32_START, MMIO32_END) holds, from here up, the IOAPIC (0xfec00000),
 * the LAPIC (0xfee00000) and KVM's identity map and TSS (0xfeffc000, kvm.c). Below it, the hole is
 * free for devices: that is the window the MMIO allocator hands out. The layout has no field for
 * it yet, so vm.c passes these bounds to the allocator.
 */
#define MMIO32_FIXED_START	0xfec00000ULL
#define IOAPIC_ADDR		0xfec00000u	/* KVM's in-kernel IOAPIC */
#define LAPIC_ADDR		0xfee00000u	/* every vCPU's local APIC, at its reset base */
#define MMIO32_WINDOW_BASE	MMIO32_START
#define MMIO32_WINDOW_SIZE	(MMIO32_FIXED_START - MMIO32_START)

/*
 * KVM_SET_IDENTITY_MAP_ADDR's page and KVM_SET_TSS_ADDR's three: inside the hole, above the
 * window, where no RAM or device lives (as kvmtool and QEMU place them).
 */
#define KVM_IDENTITY_MAP_ADDR	0xfeffc000ULL
#define KVM_TSS_ADDR		0xfeffd000ULL

#endif
