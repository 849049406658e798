/* What native unit tests get instead of kernel/arch/cpu.h: its interrupt
 * flag instructions (cli/sti) fault in user mode. meson puts this folder
 * ahead of the source root for the tests that need it, so
 * #include "kernel/arch/cpu.h" finds this file. The test defines the
 * functions, and models the interrupt flag with them. */
#ifndef BALLAST_ARCH_CPU_H
#define BALLAST_ARCH_CPU_H

#include <stdbool.h>
#include <stdint.h>

#define FAKE_RFLAGS_IF (1u << 9) /* RFLAGS.IF, where the real irq_save returns it */

uint64_t irq_save(void);
void irq_restore(uint64_t flags);
void irq_disable(void);
void irq_enable(void);

#define barrier() __asm__ volatile("" ::: "memory")
#define rmb()     barrier()
#define wmb()     barrier()
#define mb()      __atomic_thread_fence(__ATOMIC_SEQ_CST)

#endif
