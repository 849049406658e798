/* A periodic tick from the PIT (channel 0, ISA IRQ 0), for polling and
 * periodic work. It starts with the first handler. */
#ifndef BALLAST_TIMER_H
#define BALLAST_TIMER_H

#include <stdint.h>
#include "kernel/arch/arch.h"

#define TIMER_TICK_MS 10

int timer_add_tick_handler(irq_handler_fn fn, void *ctx);
uint64_t timer_ticks(void);

#endif
