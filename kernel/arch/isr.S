/* Interrupt and exception entry: one 16-byte stub per vector, then a common
 * path that saves every general register and the FPU/SSE state.
 *
 * SSE stays enabled in the kernel because newlib cannot be built without it,
 * and gcc may use SSE registers in any C function (memcpy, struct copies).
 * So the entry saves and restores the whole FPU/SSE state with fxsave and
 * fxrstor around every handler, and the interrupted code never sees its XMM
 * registers change. */

	.set ISR_STUB_SIZE, 16

	.text
	.globl isr_stubs
	.balign ISR_STUB_SIZE
isr_stubs:
	vector = 0
	.rept 256
	.balign ISR_STUB_SIZE
	/* the CPU pushes an error code only for these vectors; the others get a
	 * zero so that struct trap_frame has one layout */
	.if !(vector == 8 || vector == 10 || vector == 11 || vector == 12 || vector == 13 || vector == 14 || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	pushq $vector
	jmp isr_common
	vector = vector + 1
	.endr

isr_common:
	cld
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi           /* struct trap_frame * */
	movq %rsp, %rbx           /* callee-saved: the frame, to come back to */
	subq $512, %rsp           /* fxsave area, 16-byte aligned */
	andq $-16, %rsp
	fxsave (%rsp)
	call arch_trap
	fxrstor (%rsp)
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp            /* vector and error code */
	iretq

	.section .note.GNU-stack, "", @progbits
