/* The physical limit for a PVH boot: QEMU's -kernel finds the Xen PVH note
 * (XEN_ELFNOTE_PHYS32_ENTRY), jumps to exit_start in 32-bit protected mode,
 * and the first instruction writes to isa-debug-exit at 0xf4, which ends
 * QEMU with status (0 << 1) | 1 = 1. Same note layout as boot/pvh/entry.S. */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a"
	.balign 4
	.long 4                         /* name size: "Xen\0" */
	.long 4                         /* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long exit_start
	.balign 4

	.section .text, "ax"
	.code32
	.globl exit_start
exit_start:
	movw $0xf4, %dx
	xorl %eax, %eax
	outl %eax, %dx
1:	hlt                             /* not reached: QEMU has exited */
	jmp 1b

	.section .note.GNU-stack, "", @progbits
