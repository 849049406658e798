/* 16550 UART on COM1: the transmit side of the kernel log and the command
 * console's input.
 *
 * Output goes through a transmit ring that only the drain empties into the
 * UART's data register: the drain runs as work from the idle loop (with
 * interrupts on, a FIFO's worth of bytes per check of the line status) and
 * is woken by the THR-empty interrupt when the UART was full. Nothing else
 * waits for the UART, so a UART that stops draining (QEMU's serial socket
 * with a client that does not read) fills the ring and costs log lines,
 * never the kernel's liveness. */
#ifndef BALLAST_SERIAL_H
#define BALLAST_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct work;

void serial_init(void);
/* Routes the UART's interrupt (receive and THR empty) through the IOAPIC;
 * from then on the drain runs from the idle loop. */
void serial_start_irq(void);

/* Room in the transmit ring, and adding to it (the caller checked room). */
uint32_t serial_tx_room(void);
void serial_tx_put(const void *buf, uint32_t len);
/* Bytes still in the transmit ring. */
uint32_t serial_tx_pending(void);
/* Work queued whenever the drain has made room. */
void serial_set_tx_room_work(struct work *w);
/* Before serial_start_irq, and in a panic: drains with polled waits for
 * THR empty, each bounded; a UART that never drains is given up on (and the
 * bytes stay in the ring). Returns whether the ring is empty. */
bool serial_drain_polled(void);
/* Last resort (a broken invariant, an exception): writes directly, with a
 * bounded wait per byte, bypassing the ring. */
void serial_write_polled(const char *buf, size_t len);
/* Bytes the drain has written to the UART, and THR-empty waits it has had. */
uint64_t serial_tx_written(void);
uint64_t serial_tx_waits(void);

/* Work queued (from the interrupt) whenever input arrives. */
void serial_set_rx_work(struct work *w);
/* Next received byte, or -1 when none is buffered. */
int serial_getc(void);

#endif
