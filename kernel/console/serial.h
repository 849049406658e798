/* 16550 UART on COM1: the kernel log and the command console. */
#ifndef BALLAST_SERIAL_H
#define BALLAST_SERIAL_H

#include <stddef.h>
#include <stdint.h>

void serial_init(void);
/* Polled output; "\n" goes out as "\r\n". Safe in any context. */
void serial_write(const char *buf, size_t len);
/* Enables the receive interrupt through the IOAPIC; input then arrives in
 * a ring buffer read with serial_getc. */
void serial_enable_rx_irq(void);
struct work;
/* Work queued (from the interrupt) whenever input arrives. */
void serial_set_rx_work(struct work *w);
/* Next received byte, or -1 when none is buffered. */
int serial_getc(void);

#endif
