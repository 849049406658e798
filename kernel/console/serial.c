/* 16550 UART driver for COM1 (I/O port 0x3f8, ISA IRQ 4). */
#include <stdbool.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/console/serial.h"
#include "kernel/work.h"
#include "lib/byte_ring.h"

#define COM1_PORT  0x3f8
#define COM1_ISA_IRQ 4

/* Register offsets from the base port (DLAB = 0 unless noted). */
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_DLL 0 /* divisor latch low (DLAB = 1) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLM 1 /* divisor latch high (DLAB = 1) */
#define UART_IIR 2 /* interrupt identification (read) */
#define UART_FCR 2 /* FIFO control (write) */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status */

#define UART_IER_RX_AVAILABLE 0x01
#define UART_IER_THR_EMPTY    0x02
#define UART_IIR_NO_INTERRUPT 0x01
#define UART_FCR_ENABLE_CLEAR 0x07 /* enable FIFOs, clear both */
#define UART_LCR_8N1          0x03
#define UART_LCR_DLAB         0x80
#define UART_MCR_DTR_RTS_OUT2 0x0b /* OUT2 gates the IRQ line on PCs */
#define UART_LSR_DATA_READY   0x01
#define UART_LSR_THR_EMPTY    0x20
#define UART_DIVISOR_115200   1
#define UART_FIFO_BYTES       16   /* a 16550A's transmit FIFO, empty when THRE is set */

#define RX_RING_SIZE 1024 /* power of two */
#define TX_RING_SIZE 4096 /* power of two; at least a few lines of the log */
/* Bytes one run of the drain writes before it lets other work run: each
 * byte is an exit to the host (7-16 us under TCG). */
#define TX_DRAIN_BUDGET 256
/* Polled waits for THR empty: line-status reads before the UART is taken
 * as not draining at all (a stalled chardev never comes back by itself). */
#define TX_POLL_SPINS 200000u
#define IIR_LOOP_MAX 16 /* causes handled per interrupt, against a UART that never clears */

static uint8_t rx_ring[RX_RING_SIZE];
static volatile uint32_t rx_head, rx_tail; /* written by the IRQ / the reader */
static struct work *rx_work;
static bool rx_throttled;

static uint8_t tx_buf[TX_RING_SIZE];
static struct byte_ring tx;
static bool tx_cr_sent;        /* the '\r' of a pending "\r\n" is out */
static bool tx_irq_on;         /* the drain runs from work */
static bool tx_has_irq;        /* ... woken by the THR-empty interrupt (else it polls) */
static bool tx_poll_gave_up;   /* polled output found a UART that does not drain */
static struct work tx_work;
static struct work *tx_room_work;
static uint64_t tx_written, tx_waits;
static uint8_t ier;            /* shadow of UART_IER: the receive and transmit sides share it */

static void ier_set(uint8_t bits, bool on)
{
	uint64_t flags = irq_save();
	ier = on ? ier | bits : ier & ~bits;
	outb(COM1_PORT + UART_IER, ier);
	irq_restore(flags);
}

static bool thr_empty(void) { return inb(COM1_PORT + UART_LSR) & UART_LSR_THR_EMPTY; }

/* Writes up to a FIFO's worth of the ring; the UART's THR is empty. A
 * "\n" goes out as "\r\n". Returns the ring bytes consumed. */
static uint32_t tx_fill_fifo(void)
{
	uint32_t consumed = 0;
	for (unsigned slots = UART_FIFO_BYTES; slots && ring_used(&tx); slots--) {
		uint8_t c;
		ring_peek(&tx, 0, &c, 1);
		if (c == '\n' && !tx_cr_sent) {
			outb(COM1_PORT + UART_THR, '\r');
			tx_cr_sent = true;
			continue;
		}
		outb(COM1_PORT + UART_THR, c);
		tx_cr_sent = false;
		ring_drop(&tx, 1);
		consumed++;
	}
	tx_written += consumed;
	return consumed;
}

static void tx_made_room(void)
{
	if (tx_room_work)
		work_queue(tx_room_work);
}

/* The drain, as work: interrupts are on between bytes, so a stats request
 * waits for at most the one port write in progress. */
static void tx_drain(void *ctx)
{
	(void)ctx;
	uint32_t budget = TX_DRAIN_BUDGET, done = 0;
	while (ring_used(&tx) && done < budget) {
		if (!thr_empty()) {
			tx_waits++;
			if (!tx_has_irq)
				break; /* polled: the work queued below looks again */
			/* full: the THR-empty interrupt wakes us. Enabled first, then
			 * checked again, so an emptying in between is not missed. */
			ier_set(UART_IER_THR_EMPTY, true);
			if (!thr_empty())
				break;
			ier_set(UART_IER_THR_EMPTY, false);
		}
		done += tx_fill_fifo();
	}
	if (done)
		tx_made_room();
	if (ring_used(&tx) && !(ier & UART_IER_THR_EMPTY))
		work_queue(&tx_work); /* budget spent: other work first, then more */
}

uint32_t serial_tx_room(void) { return ring_room(&tx); }
uint32_t serial_tx_pending(void) { return ring_used(&tx); }
uint64_t serial_tx_written(void) { return tx_written; }
uint64_t serial_tx_waits(void) { return tx_waits; }
void serial_set_tx_room_work(struct work *w) { tx_room_work = w; }

void serial_tx_put(const void *buf, uint32_t len)
{
	ring_put(&tx, buf, len);
	if (tx_irq_on && !(ier & UART_IER_THR_EMPTY))
		work_queue(&tx_work);
}

bool serial_drain_polled(void)
{
	while (ring_used(&tx)) {
		unsigned spins = 0;
		while (!thr_empty()) {
			if (tx_poll_gave_up || ++spins > TX_POLL_SPINS) {
				tx_poll_gave_up = true;
				return false;
			}
		}
		tx_poll_gave_up = false;
		tx_fill_fifo();
	}
	return true;
}

void serial_write_polled(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		for (int k = buf[i] == '\n' ? 0 : 1; k < 2; k++) {
			unsigned spins = 0;
			while (!thr_empty())
				if (tx_poll_gave_up || ++spins > TX_POLL_SPINS) {
					tx_poll_gave_up = true;
					return;
				}
			outb(COM1_PORT + UART_THR, k == 0 ? '\r' : (uint8_t)buf[i]);
		}
	}
}

void serial_init(void)
{
	ring_init(&tx, tx_buf, sizeof(tx_buf));
	tx_work = (struct work){ .fn = tx_drain };
	outb(COM1_PORT + UART_IER, 0);
	outb(COM1_PORT + UART_LCR, UART_LCR_DLAB);
	outb(COM1_PORT + UART_DLL, UART_DIVISOR_115200);
	outb(COM1_PORT + UART_DLM, 0);
	outb(COM1_PORT + UART_LCR, UART_LCR_8N1);
	outb(COM1_PORT + UART_FCR, UART_FCR_ENABLE_CLEAR);
	outb(COM1_PORT + UART_MCR, UART_MCR_DTR_RTS_OUT2);
}

static void rx_take(void)
{
	bool got = false;
	while (inb(COM1_PORT + UART_LSR) & UART_LSR_DATA_READY) {
		if (rx_head - rx_tail >= RX_RING_SIZE) {
			/* Ring full: leave the bytes in the UART and stop its receive
			 * interrupt until the reader catches up. The UART then holds
			 * the sender back (QEMU stops feeding a full FIFO), so nothing
			 * is lost. */
			ier_set(UART_IER_RX_AVAILABLE, false);
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

/* Edge-triggered ISA line: every pending cause is cleared before returning,
 * or the line would stay high and never raise another edge. */
static void serial_irq(void *ctx)
{
	(void)ctx;
	for (unsigned i = 0; i < IIR_LOOP_MAX && !(inb(COM1_PORT + UART_IIR) & UART_IIR_NO_INTERRUPT); i++) {
		rx_take();
		if ((ier & UART_IER_THR_EMPTY) && thr_empty()) {
			ier_set(UART_IER_THR_EMPTY, false);
			work_queue(&tx_work);
		}
	}
}

void serial_set_rx_work(struct work *w) { rx_work = w; }

void serial_start_irq(void)
{
	if (irq_route_isa(COM1_ISA_IRQ, serial_irq, NULL, "com1") < 0) {
		/* no interrupt: the idle loop's drain still runs, polling */
		tx_irq_on = true;
		work_queue(&tx_work);
		return;
	}
	ier_set(UART_IER_RX_AVAILABLE, true);
	tx_has_irq = true;
	tx_irq_on = true;
	rx_take(); /* bytes that arrived before the interrupt was on */
	work_queue(&tx_work);
}

int serial_getc(void)
{
	if (rx_tail == rx_head) {
		if (rx_throttled) {
			/* drained: take interrupts again; QEMU raises one at once if
			 * bytes are waiting */
			rx_throttled = false;
			ier_set(UART_IER_RX_AVAILABLE, true);
		}
		return -1;
	}
	barrier(); /* read head before the byte it publishes */
	int c = rx_ring[rx_tail % RX_RING_SIZE];
	rx_tail++;
	return c;
}
