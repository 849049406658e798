/* CPU and platform layer: descriptor tables, traps, interrupt routing,
 * timekeeping and the exit path. */
#ifndef BALLAST_ARCH_H
#define BALLAST_ARCH_H

#include <stdint.h>

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_TSS         0x18
#define IST_DOUBLE_FAULT 1

/* Interrupt vectors above the 32 exceptions. */
#define VECTOR_IRQ_BASE  0x20
#define VECTOR_COUNT     256
#define VECTOR_SPURIOUS  0xff

/* The registers pushed by isr.S, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "isr.S pushes 15 registers + vector + error");

typedef void (*irq_handler_fn)(void *ctx);

void gdt_init(void);
void idt_init(void);
void cpu_init_features(void);

/* Registers a handler for an interrupt vector (>= VECTOR_IRQ_BASE). Up to a
 * few handlers may share a vector, for shared level-triggered lines. `name`
 * (a string that lives for ever) is for the irq console command. */
int irq_register(unsigned vector, irq_handler_fn fn, void *ctx, const char *name);
/* The TSC when the interrupt (or exception) being handled was taken: the
 * start of the C entry, after the stub saved the registers. */
uint64_t irq_entry_tsc(void);
/* Interrupts taken on a vector since boot, and its handlers' names. */
uint64_t irq_count(unsigned vector);
const char *irq_name(unsigned vector, unsigned handler);

/* Time. tsc_calibrate measures the TSC against the PIT. */
void tsc_calibrate(void);
uint64_t tsc_khz(void);
uint64_t tsc_to_us(uint64_t ticks);

/* QEMU's isa-debug-exit device (iobase 0xf4): QEMU exits with (status<<1)|1.
 * A guest that exits without the device just halts, which tests treat as a
 * failure, as kvm-unit-tests does. */
#define EXIT_STATUS_PASS  0 /* QEMU exit code 1 */
#define EXIT_STATUS_FAIL  1 /* QEMU exit code 3 */
#define EXIT_STATUS_FAULT 2 /* QEMU exit code 5: exception or panic */
_Noreturn void arch_exit(int status);

#endif
