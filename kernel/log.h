/* Kernel log: lines on the serial console, each starting with "ballast: "
 * so tests and users can tell them from console answers.
 *
 * Every line goes through one queue. A producer, in any context (interrupt
 * handlers included), copies its line, or the raw material of one, into the
 * queue and returns: it never formats for long and never waits for the
 * UART. The log's work item takes the queue in order, formats what was
 * deferred, and hands the text to the UART's transmit ring (serial.h).
 * When the queue is full a line is dropped whole, never in part, counted,
 * and announced ("ballast: log: N lines dropped") as soon as there is room.
 * Console answers are never dropped: they wait for room instead. */
#ifndef BALLAST_LOG_H
#define BALLAST_LOG_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct work;

/* Formats a "ballast: " line into a bounded stack buffer and queues it. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define klog(fmt, ...) kprintf("ballast: " fmt "\n", ##__VA_ARGS__)

/* Boot detail (memory map, PCI functions, routing): only with "verbose" on
 * the kernel command line. */
extern bool log_verbose;
#define kdebug(fmt, ...)                       \
	do {                                   \
		if (log_verbose)               \
			klog(fmt, ##__VA_ARGS__); \
	} while (0)

/* A deferred line: the log calls fn later, from work, to write the line
 * piece by piece. Each call writes the next piece (at most cap bytes, cap
 * is at least LOG_PIECE_MIN) into out and returns its length, or 0 when
 * the line, newline included, is complete. *cursor starts at 0 and is the
 * formatter's own. */
#define LOG_PIECE_MIN 96
typedef size_t (*log_piece_fn)(const void *payload, uint32_t len, uint32_t *cursor, char *out, size_t cap);
/* Queues the payload head then body (both copied) for fn; false if the
 * line was dropped. */
bool log_defer(log_piece_fn fn, const void *head, uint32_t head_len, const void *body, uint32_t body_len);

/* Queues a console answer; never drops it. False: no room now, nothing was
 * queued, and `room` (if given) is queued as work once there is room; the
 * caller tries again then. */
bool log_answer(const char *text, uint32_t len, struct work *room);

/* Lines dropped since boot. */
uint64_t log_dropped(void);
/* Bytes queued (lines not yet handed to the UART). */
uint32_t log_queued(void);

/* Reads "verbose" and starts the queue. */
void log_init(const char *cmdline);
/* The end of boot: from now on the idle loop writes the log (until now
 * every line went out before the next step, with bounded polled waits). */
void log_start(void);

/* A broken invariant: prints where and why, then exits QEMU with the fault
 * status. */
_Noreturn void panic_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define panic(...) panic_at(__FILE__, __LINE__, __VA_ARGS__)
/* For the exception report: what is queued goes out first, then these
 * lines directly, each wait for the UART bounded. */
void kprintf_emergency(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
