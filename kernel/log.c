#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/console/parse.h"
#include "kernel/console/serial.h"
#include "kernel/log.h"
#include "kernel/work.h"

#define KPRINTF_MAX 512
/* The queue holds records, each contiguous (a record that would wrap is
 * preceded by padding to the end): a header, then the payload. 8 KiB holds
 * about 40 statistics answers waiting for a UART that has stopped. */
#define LOG_QUEUE_BYTES 8192
#define LOG_ALIGN 16
#define LOG_PIECE_MAX 128
#define DROP_NOTICE_MAX 64

enum log_kind { LOG_TEXT, LOG_DEFERRED, LOG_PAD };

struct log_rec {
	uint32_t len;   /* payload bytes */
	uint32_t kind;
	log_piece_fn fn;
};
_Static_assert(sizeof(struct log_rec) == LOG_ALIGN, "records stay aligned");
_Static_assert(LOG_PIECE_MAX >= LOG_PIECE_MIN, "formatters get what they were promised");

bool log_verbose;
static uint8_t queue[LOG_QUEUE_BYTES] __attribute__((aligned(LOG_ALIGN)));
static uint32_t q_head, q_tail; /* free-running; producers with interrupts off */
static uint32_t cursor;         /* progress through the record at the tail */
static uint32_t reserved;       /* room held for a console answer waiting */
static uint64_t dropped, dropped_unannounced;
static bool async;              /* after log_start: written from the idle loop */
static struct work log_work;
static struct work *room_waiter;

static uint32_t q_used(void) { return q_head - q_tail; }
static uint32_t rec_bytes(uint32_t len) { return (uint32_t)(sizeof(struct log_rec) + len + LOG_ALIGN - 1) & ~(LOG_ALIGN - 1u); }
static struct log_rec *rec_at(uint32_t pos) { return (struct log_rec *)(queue + (pos & (LOG_QUEUE_BYTES - 1))); }

/* Bytes a record of `len` takes at the head, padding to the end included
 * (more than the queue: it cannot fit now). */
static uint32_t space_needed(uint32_t len)
{
	uint32_t at = q_head & (LOG_QUEUE_BYTES - 1), need = rec_bytes(len);
	return LOG_QUEUE_BYTES - at < need ? LOG_QUEUE_BYTES - at + need : need;
}

/* Interrupts off. The caller checked space_needed(). */
static void q_push(enum log_kind kind, log_piece_fn fn, const void *a, uint32_t alen, const void *b, uint32_t blen)
{
	uint32_t len = alen + blen;
	uint32_t at = q_head & (LOG_QUEUE_BYTES - 1);
	if (LOG_QUEUE_BYTES - at < rec_bytes(len)) {
		*rec_at(q_head) = (struct log_rec){ LOG_QUEUE_BYTES - at - (uint32_t)sizeof(struct log_rec), LOG_PAD, NULL };
		q_head += LOG_QUEUE_BYTES - at;
	}
	struct log_rec *r = rec_at(q_head);
	*r = (struct log_rec){ len, kind, fn };
	memcpy(r + 1, a, alen);
	if (blen)
		memcpy((uint8_t *)(r + 1) + alen, b, blen);
	q_head += rec_bytes(len);
}

static void kick(void)
{
	if (async)
		work_queue(&log_work);
}

/* Before log_start, text goes straight to the UART, so the boot log (and
 * "ready") is out as soon as it is said; deferred lines, the statistics
 * answers given at driver start, wait for the idle loop. Waits are polled
 * and bounded (serial_drain_polled). */
static bool boot_write(const void *text, uint32_t len)
{
	if (serial_tx_room() < len)
		serial_drain_polled();
	if (serial_tx_room() < len)
		return false;
	serial_tx_put(text, len);
	serial_drain_polled();
	return true;
}

/* Interrupts off. The "N lines dropped" notice goes in before the next line,
 * if both fit beside what is held for a waiting answer. */
static bool fits_with_notice(uint32_t len, uint32_t hold)
{
	char notice[DROP_NOTICE_MAX];
	uint32_t need = space_needed(len) + hold;
	if (!dropped_unannounced)
		return need <= LOG_QUEUE_BYTES - q_used();
	int n = snprintf(notice, sizeof(notice), "ballast: log: %" PRIu64 " lines dropped\n", dropped_unannounced);
	/* the notice first, so a worst-case padding for the line is counted */
	if (space_needed((uint32_t)n) + hold > LOG_QUEUE_BYTES - q_used())
		return false;
	q_push(LOG_TEXT, NULL, notice, (uint32_t)n, NULL, 0);
	dropped_unannounced = 0;
	return space_needed(len) + hold <= LOG_QUEUE_BYTES - q_used();
}

/* A droppable line: the payload is a then b (text has no b). */
static bool put_line(enum log_kind kind, log_piece_fn fn, const void *a, uint32_t alen, const void *b, uint32_t blen)
{
	uint64_t flags = irq_save();
	bool ok = !async && kind == LOG_TEXT ? boot_write(a, alen) : fits_with_notice(alen + blen, reserved);
	if (ok && (async || kind != LOG_TEXT))
		q_push(kind, fn, a, alen, b, blen);
	else if (!ok) {
		dropped++;
		dropped_unannounced++;
	}
	irq_restore(flags);
	kick();
	return ok;
}

bool log_defer(log_piece_fn fn, const void *head, uint32_t head_len, const void *body, uint32_t body_len)
{
	return put_line(LOG_DEFERRED, fn, head, head_len, body, body_len);
}

bool log_answer(const char *text, uint32_t len, struct work *room)
{
	uint64_t flags = irq_save();
	bool ok = fits_with_notice(len, 0);
	if (ok) {
		q_push(LOG_TEXT, NULL, text, len, NULL, 0);
		reserved = 0;
	} else {
		/* lines that come meanwhile leave this much for the answer */
		reserved = space_needed(len);
		room_waiter = room;
	}
	irq_restore(flags);
	kick();
	return ok;
}

void kprintf(const char *fmt, ...)
{
	char buf[KPRINTF_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		n = sizeof(buf) - 1; /* truncated: still a whole line */
		buf[n - 1] = '\n';
	}
	put_line(LOG_TEXT, NULL, buf, (uint32_t)n, NULL, 0);
}

/* The next piece of the record at the tail into out; 0 when it is done. */
static size_t next_piece(const struct log_rec *r, char *out, size_t cap)
{
	if (r->kind == LOG_DEFERRED)
		return r->fn(r + 1, r->len, &cursor, out, cap);
	if (r->kind != LOG_TEXT || cursor >= r->len)
		return 0;
	size_t n = r->len - cursor < cap ? r->len - cursor : cap;
	memcpy(out, (const uint8_t *)(r + 1) + cursor, n);
	cursor += (uint32_t)n;
	return n;
}

/* Moves records to the UART's ring while it has room for a piece. Runs in
 * one context at a time (the log work, or the boot code before log_start),
 * so the record at the tail stays put while it is formatted. */
static void format_queued(void)
{
	char piece[LOG_PIECE_MAX];
	while (q_used() && serial_tx_room() >= sizeof(piece)) {
		const struct log_rec *r = rec_at(q_tail);
		size_t n = next_piece(r, piece, sizeof(piece));
		if (n) {
			serial_tx_put(piece, (uint32_t)n);
			continue;
		}
		uint64_t flags = irq_save();
		q_tail += rec_bytes(r->len);
		cursor = 0;
		if (q_used() == 0)
			q_head = q_tail = 0; /* empty: a record as big as the queue fits again */
		struct work *waiter = room_waiter;
		room_waiter = NULL;
		if (dropped_unannounced)
			fits_with_notice(0, reserved); /* the notice, as soon as there is room */
		irq_restore(flags);
		if (waiter)
			work_queue(waiter);
	}
}

/* Everything queued, with polled waits (a panic). */
static void pump(void)
{
	do
		format_queued();
	while (serial_tx_pending() && serial_drain_polled());
}

static void log_work_fn(void *ctx)
{
	(void)ctx;
	format_queued();
}

void log_init(const char *cmdline)
{
	log_work = (struct work){ .fn = log_work_fn };
	serial_set_tx_room_work(&log_work);
	log_verbose = cmdline_find(cmdline, "verbose", NULL, 0);
}

void log_start(void)
{
	async = true;
	serial_start_irq();
	work_queue(&log_work);
}

uint64_t log_dropped(void) { return dropped; }
uint32_t log_queued(void) { return q_used(); }

/* Everything queued, in order, with bounded polled waits, then the caller's
 * own lines the same way. Interrupts are off from here on. */
static void emergency_flush(void)
{
	irq_disable();
	async = false;
	pump();
}

void kprintf_emergency(const char *fmt, ...)
{
	char buf[KPRINTF_MAX];
	va_list ap;
	emergency_flush();
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		serial_write_polled(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

_Noreturn void panic_at(const char *file, int line, const char *fmt, ...)
{
	char buf[KPRINTF_MAX];
	va_list ap;
	emergency_flush();
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf_emergency("ballast: PANIC at %s:%d: %s\n", file, line, buf);
	arch_exit(EXIT_STATUS_FAULT);
}
