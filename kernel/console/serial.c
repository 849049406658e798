/* 16550 UART driver for COM1 (I/O port 0x3f8, ISA IRQ 4). */
#include <stdbool.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/console/serial.h"
#include "kernel/work.h"

#define COM1_PORT  0x3f8
#define COM1_ISA_IRQ 4

/* Register offsets from the base port (DLAB = 0 unless noted). */
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_DLL 0 /* divisor latch low (DLAB = 1) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLM 1 /* divisor latch high (DLAB = 1) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define UART_IER_RX_AVAILABLE 0x01
#define UART_FCR_ENABLE_CLEAR 0x07 /* enable FIFOs, clear both */
#define UART_LCR_8N1          0x03
#define UART_LCR_DLAB         0x80
#define UART_MCR_DTR_RTS_OUT2 0x0b /* OUT2 gates the IRQ line on PCs */
#define UART_LSR_DATA_READY   0x01
#define UART_LSR_THR_EMPTY    0x20
#define UART_DIVISOR_115200   1

#define RX_RING_SIZE 1024 /* power of two */

static uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head, rx_tail; /* written by the IRQ / the reader */
static struct work *rx_work;

void serial_init(void)
{
	outb(COM1_PORT + UART_IER, 0);
	outb(COM1_PORT + UART_LCR, UART_LCR_DLAB);
	outb(COM1_PORT + UART_DLL, UART_DIVISOR_115200);
	outb(COM1_PORT + UART_DLM, 0);
	outb(COM1_PORT + UART_LCR, UART_LCR_8N1);
	outb(COM1_PORT + UART_FCR, UART_FCR_ENABLE_CLEAR);
	outb(COM1_PORT + UART_MCR, UART_MCR_DTR_RTS_OUT2);
}

static void serial_putc(char c)
{
	while (!(inb(COM1_PORT + UART_LSR) & UART_LSR_THR_EMPTY))
		;
	outb(COM1_PORT + UART_THR, (uint8_t)c);
}

/* With interrupts off: a line logged from an interrupt handler (a stats
 * answer) must never land inside a console answer being written. */
void serial_write(const char *buf, size_t len)
{
	uint64_t flags = irq_save();
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n')
			serial_putc('\r');
		serial_putc(buf[i]);
	}
	irq_restore(flags);
}

static bool rx_throttled;

static void serial_irq(void *ctx)
{
	(void)ctx;
	bool got = false;
	while (inb(COM1_PORT + UART_LSR) & UART_LSR_DATA_READY) {
		if (rx_head - rx_tail >= RX_RING_SIZE) {
			/* Ring full: leave the bytes in the UART and stop its interrupt
			 * until the reader catches up. The UART then holds the sender
			 * back (QEMU stops feeding a full FIFO), so nothing is lost. */
			outb(COM1_PORT + UART_IER, 0);
			rx_throttled = true;
			break;
		}
		uint8_t c = inb(COM1_PORT + UART_RBR);
		rx_ring[rx_head % RX_RING_SIZE] = c;
		barrier(); /* the byte is in the ring before the reader sees head move */
		rx_head++;
		got = true;
	}
	if (got && rx_work)
		work_queue(rx_work);
}

void serial_set_rx_work(struct work *w) { rx_work = w; }

void serial_enable_rx_irq(void)
{
	int vector = irq_route_isa(COM1_ISA_IRQ, serial_irq, NULL);
	if (vector < 0)
		return;
	outb(COM1_PORT + UART_IER, UART_IER_RX_AVAILABLE);
	serial_irq(NULL); /* bytes that arrived before the interrupt was on */
}

int serial_getc(void)
{
	if (rx_tail == rx_head) {
		if (rx_throttled) {
			/* drained: take interrupts again; QEMU raises one at once if
			 * bytes are waiting */
			uint64_t flags = irq_save();
			rx_throttled = false;
			outb(COM1_PORT + UART_IER, UART_IER_RX_AVAILABLE);
			irq_restore(flags);
		}
		return -1;
	}
	barrier(); /* read head before the byte it publishes */
	int c = rx_ring[rx_tail % RX_RING_SIZE];
	rx_tail++;
	return c;
}

