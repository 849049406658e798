/* PVH entry: QEMU jumps here in 32-bit protected mode, paging off, with
 * %ebx = physical address of struct hvm_start_info and no stack. We
 * identity-map the first 4 GiB with 2 MiB pages (enough for the image and
 * the start info; the kernel builds its real tables from the memory map),
 * switch to long mode and call pvh_main(start_info). */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define CR0_PE  0x00000001
#define CR0_PG  0x80000000
#define CR4_PAE 0x00000020
#define CR4_OSFXSR 0x00000200
#define CR4_OSXMMEXCPT 0x00000400
#define CR0_MP  0x00000002
#define CR0_EM  0x00000004
#define MSR_EFER 0xc0000080
#define EFER_LME 0x00000100
#define PTE_P_RW 0x003
#define PTE_P_RW_PS 0x083
#define BOOT_MAP_GIB 4

	.section .note.Xen, "a"
	.balign 4
	.long 4                         /* name size: "Xen\0" */
	.long 4                         /* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start
	.balign 4

	.section .text.boot, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	rdtsc                           /* the kernel's boot time counts from here */
	movl %eax, pvh_entry_tsc
	movl %edx, pvh_entry_tsc + 4
	movl %ebx, pvh_start_info_pa
	movl $pvh_stack_top, %esp

	/* PML4[0] -> PDPT, PDPT[0..3] -> the four page directories */
	movl $pvh_pdpt + PTE_P_RW, pvh_pml4
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $12, %eax
	addl $pvh_pd + PTE_P_RW, %eax
	movl %eax, pvh_pdpt(,%ecx,8)
	incl %ecx
	cmpl $BOOT_MAP_GIB, %ecx
	jb 1b
	/* 2048 2 MiB pages: entry i maps i << 21 */
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $PTE_P_RW_PS, %eax
	movl %eax, pvh_pd(,%ecx,8)
	movl %ecx, %eax
	shrl $11, %eax                  /* bits 32+ of the address: i >> 11 */
	movl %eax, pvh_pd + 4(,%ecx,8)
	incl %ecx
	cmpl $BOOT_MAP_GIB * 512, %ecx
	jb 2b

	movl $pvh_pml4, %eax
	movl %eax, %cr3
	/* PAE for long mode; SSE on before any C code, which gcc and newlib
	 * compile with SSE instructions (UEFI firmware does this for the EFI
	 * front end) */
	movl %cr4, %eax
	orl $CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	andl $~CR0_EM, %eax
	orl $CR0_PG | CR0_PE | CR0_MP, %eax
	movl %eax, %cr0
	lgdt pvh_gdt_ptr
	ljmp $0x08, $pvh_long

	.code64
pvh_long:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq $pvh_stack_top, %rsp
	xorl %ebp, %ebp
	movl pvh_start_info_pa, %edi
	call pvh_main
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.balign 8
pvh_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 64-bit code */
	.quad 0x00cf92000000ffff        /* data */
pvh_gdt_end:
pvh_gdt_ptr:
	.word pvh_gdt_end - pvh_gdt - 1
	.long pvh_gdt

	.section .bss
	.balign 4096
pvh_pml4:
	.skip 4096
pvh_pdpt:
	.skip 4096
pvh_pd:
	.skip 4096 * BOOT_MAP_GIB
	.balign 16
pvh_stack:
	.skip 65536
pvh_stack_top:
	.balign 8
	.globl pvh_entry_tsc
pvh_entry_tsc:
	.skip 8
pvh_start_info_pa:
	.skip 4

	.section .note.GNU-stack, "", @progbits
