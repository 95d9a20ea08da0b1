/*
 * PVH entry (Xen HVM direct boot ABI, as used by QEMU -kernel and memvisor): we start in
 * 32-bit protected mode with paging off, flat segments and ebx = &hvm_start_info.
 * Build a 4 GiB identity map with 2 MiB pages (enough to reach everything the boot
 * protocol hands us), switch to long mode and call guest_setup() in lib/setup.c, which
 * extends the map to all RAM and hotplug areas.
 */

#define PTE_P	0x001
#define PTE_RW	0x002
#define PTE_PS	0x080
#define CR0_PE	0x00000001
#define CR0_PG	0x80000000
#define CR4_PAE	0x00000020
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100

/* XEN_ELFNOTE_PHYS32_ENTRY (18): QEMU reads the descriptor as a pointer-sized value */
	.section .note.Xen, "a"
	.balign 4
	.long 4, 8, 18
	.asciz "Xen"
	.balign 4
	.quad pvh_start32

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movb $0x01, %al			/* DEBUG_ENTRY */
	outb %al, $0x80
	rdtsc
	movl %eax, tsc_entry
	movl %edx, tsc_entry + 4
	movl %ebx, start_info_pa

	/* .bss holds the page tables and the stack; do not trust the loader to zero it */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl

	movl $boot_pdpt + (PTE_P | PTE_RW), boot_pml4
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $12, %eax
	addl $boot_pd + (PTE_P | PTE_RW), %eax
	movl %eax, boot_pdpt(, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jb 1b

	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_RW | PTE_PS), %eax
	movl %eax, boot_pd(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	lgdt gdt64_desc
	ljmp $0x08, $start64

	.code64
start64:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movq $stack_top, %rsp
	xorl %ebp, %ebp
	call guest_setup
3:	cli
	hlt
	jmp 3b

/* Exception stubs: push a dummy error code where the CPU pushes none, then the vector */
.macro EXC vec, err
exc\vec:
	.if \err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exc_common
.endm
	EXC 0,0;  EXC 1,0;  EXC 2,0;  EXC 3,0;  EXC 4,0;  EXC 5,0;  EXC 6,0;  EXC 7,0
	EXC 8,1;  EXC 9,0;  EXC 10,1; EXC 11,1; EXC 12,1; EXC 13,1; EXC 14,1; EXC 15,0
	EXC 16,0; EXC 17,1; EXC 18,0; EXC 19,0; EXC 20,0; EXC 21,1; EXC 22,0; EXC 23,0
	EXC 24,0; EXC 25,0; EXC 26,0; EXC 27,0; EXC 28,0; EXC 29,1; EXC 30,1; EXC 31,0

exc_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	movq %rsp, %rdi
	andq $-16, %rsp
	call exception_handler		/* does not return */
4:	cli
	hlt
	jmp 4b

	.section .rodata
	.balign 8
	.globl exc_stubs
exc_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc\v
	.endr

gdt64:
	.quad 0
	.quad 0x00af9a000000ffff		/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff		/* 0x10: data */
gdt64_end:
gdt64_desc:
	.word gdt64_end - gdt64 - 1
	.quad gdt64

	.data
	.balign 8
	.globl tsc_entry, start_info_pa
tsc_entry:	.quad 0
start_info_pa:	.quad 0

	.bss
	.balign 4096
	.globl boot_pml4, boot_pdpt
boot_pml4:	.space 4096
boot_pdpt:	.space 4096
boot_pd:	.space 4 * 4096
stack:		.space 16384
stack_top:

	.section .note.GNU-stack, "", @progbits
