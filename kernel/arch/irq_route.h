/* Interrupt routing: the MADT's IOAPICs and interrupt source overrides, the
 * legacy PIC switched off, and GSIs handed out as vectors. */
#ifndef BALLAST_IRQ_ROUTE_H
#define BALLAST_IRQ_ROUTE_H

#include <stdbool.h>
#include "kernel/arch/arch.h"

int irq_init(void);
/* Routes a GSI to a vector and adds the handler; a GSI routed twice (a
 * shared level-triggered line) keeps one vector and calls every handler.
 * Returns the vector or a negative error. */
int irq_route_gsi(unsigned gsi, bool level, bool active_low, irq_handler_fn fn, void *ctx, const char *name);
/* A fresh vector for a message-signalled interrupt, with its handler. */
int irq_alloc_msi(irq_handler_fn fn, void *ctx, const char *name);
/* Routes an ISA IRQ, following the MADT's interrupt source overrides. */
int irq_route_isa(unsigned isa_irq, irq_handler_fn fn, void *ctx, const char *name);

#endif
