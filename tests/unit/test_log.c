/* Unit tests of the kernel log's queue, kernel/log.c, natively: a fake UART
 * (transmit ring of a chosen size that drains only when the test says, or
 * never) and a fake idle loop that runs queued work.
 *
 * What must hold whatever the UART does: lines come out whole and in order;
 * a line that does not fit is dropped whole and counted, and a
 * "ballast: log: N lines dropped" notice says so once there is room, with N
 * the lines missing since the last notice; a console answer is never
 * dropped (no room: it is refused, the waiter is woken when there is room,
 * and lines arriving meanwhile leave the answer its room); a deferred line
 * is formatted from its payload later, in pieces no larger than promised;
 * records of every size wrap around the queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/console/serial.h"
#include "kernel/log.h"
#include "kernel/work.h"
#include "tests/unit/check.h"

#define RNG_SEED 0x6c6f67717565ull
#include "tests/unit/xorshift.h"

/* ---- the fake CPU: the interrupt flag ---- */
static bool irq_on = true;
uint64_t irq_save(void)
{
	uint64_t f = irq_on ? FAKE_RFLAGS_IF : 0;
	irq_on = false;
	return f;
}
void irq_restore(uint64_t flags) { irq_on = flags & FAKE_RFLAGS_IF; }
void irq_disable(void) { irq_on = false; }
void irq_enable(void) { irq_on = true; }
static jmp_buf exited;
_Noreturn void arch_exit(int status)
{
	(void)status;
	longjmp(exited, 1);
}

/* ---- the fake idle loop ---- */
#define MAX_WORK 8
static struct work *queued[MAX_WORK];
static unsigned nqueued;
void work_queue(struct work *w)
{
	for (unsigned i = 0; i < nqueued; i++)
		if (queued[i] == w)
			return;
	if (nqueued < MAX_WORK)
		queued[nqueued++] = w;
}
static void run_work(void)
{
	while (nqueued) {
		struct work *w = queued[0];
		memmove(queued, queued + 1, --nqueued * sizeof(queued[0]));
		CHECK(irq_on); /* work runs with interrupts on */
		w->fn(w->ctx);
	}
}

/* ---- the fake UART: a transmit ring the test drains ---- */
#define TX_MAX 4096
static char tx[TX_MAX];
static uint32_t tx_size = 1024, tx_used;
static struct work *tx_room;
static char out[8 << 20]; /* what reached the wire */
static size_t out_len;
static bool uart_stalled;
static char polled[4096];
static size_t polled_len;

uint32_t serial_tx_room(void) { return tx_size - tx_used; }
uint32_t serial_tx_pending(void) { return tx_used; }
void serial_tx_put(const void *buf, uint32_t len)
{
	if (!CHECK(len <= tx_size - tx_used))
		return;
	memcpy(tx + tx_used, buf, len);
	tx_used += len;
}
void serial_set_tx_room_work(struct work *w) { tx_room = w; }
void serial_start_irq(void) {}
static void uart_drain(uint32_t n)
{
	if (n > tx_used)
		n = tx_used;
	if (out_len + n < sizeof(out)) {
		memcpy(out + out_len, tx, n);
		out_len += n;
	}
	memmove(tx, tx + n, tx_used - n);
	tx_used -= n;
	if (n && tx_room)
		work_queue(tx_room);
}
bool serial_drain_polled(void)
{
	if (!uart_stalled)
		uart_drain(tx_used);
	return tx_used == 0;
}
void serial_write_polled(const char *buf, size_t len)
{
	if (polled_len + len < sizeof(polled)) {
		memcpy(polled + polled_len, buf, len);
		polled_len += len;
	}
}

/* ---- helpers ---- */
static void wake(void *ctx) { *(bool *)ctx = true; }

static void reset_out(void) { out_len = 0; }

/* Lines on the wire, in order; every one whole (ends in \n). */
static unsigned wire_lines(char lines[][600], unsigned max)
{
	unsigned n = 0;
	size_t start = 0;
	for (size_t i = 0; i < out_len; i++)
		if (out[i] == '\n') {
			if (n < max) {
				size_t len = i - start < 599 ? i - start : 599;
				memcpy(lines[n], out + start, len);
				lines[n][len] = '\0';
			}
			n++;
			start = i + 1;
		}
	CHECK_EQ_U64(start, out_len); /* nothing half-written at the end */
	return n;
}

/* A deferred line: "ballast: deferred <n>" from a payload of n bytes of 'd',
 * written one byte-group at a time to exercise pieces. */
static size_t deferred_piece(const void *payload, uint32_t len, uint32_t *cursor, char *o, size_t cap)
{
	CHECK(cap >= LOG_PIECE_MIN);
	const char *p = payload;
	for (uint32_t i = 0; i < len; i++)
		CHECK(p[i] == 'd');
	if (*cursor == 0) {
		(*cursor)++;
		return (size_t)snprintf(o, cap, "ballast: deferred %u", len);
	}
	if (*cursor == 1) {
		(*cursor)++;
		o[0] = '\n';
		return 1;
	}
	return 0;
}

static void test_boot_sync(void)
{
	reset_out();
	log_init("quiet verbose");
	CHECK(log_verbose);
	klog("one %d", 1);
	kdebug("two");
	/* before log_start every line is out before the call returns */
	CHECK_EQ_U64(out_len, strlen("ballast: one 1\nballast: two\n"));
	CHECK(memcmp(out, "ballast: one 1\nballast: two\n", out_len) == 0);
	log_init("");
	CHECK(!log_verbose);
	kdebug("hidden");
	CHECK_EQ_U64(out_len, strlen("ballast: one 1\nballast: two\n"));
	/* a UART that does not drain at boot: the line stays queued, no hang */
	uart_stalled = true;
	klog("stuck");
	CHECK_EQ_U64(out_len, strlen("ballast: one 1\nballast: two\n"));
	uart_stalled = false;
	log_start();
	run_work();
	uart_drain(tx_used);
	run_work();
	CHECK(out_len >= 15 && memcmp(out + out_len - 15, "ballast: stuck\n", 15) == 0);
	CHECK_EQ_U64(log_queued(), 0);
}

/* Random lines, deferred lines and answers against a UART that drains a
 * random amount each round, stalls for long stretches, or not at all. */
static void test_random(void)
{
	enum { LINES = 20000 };
	static char lines[LINES][600];
	static char sent[LINES][600];
	unsigned nsent = 0, answers = 0;
	uint64_t dropped0 = log_dropped();
	static struct work console_work;
	static bool console_woken;
	console_work = (struct work){ .fn = wake, .ctx = &console_woken };
	reset_out();
	char pending_answer[600];
	bool answer_waiting = false;
	for (unsigned i = 0; i < LINES; i++) {
		int kind = (int)(rng() % 8);
		if (answer_waiting) {
			/* the console retries only when woken, as console.c does */
			if (console_woken) {
				console_woken = false;
				if (log_answer(pending_answer, (uint32_t)strlen(pending_answer), &console_work)) {
					snprintf(sent[nsent], sizeof(sent[0]), "%.*s", (int)strlen(pending_answer) - 1, pending_answer);
					nsent++;
					answers++;
					answer_waiting = false;
				}
			}
		} else if (kind == 0) {
			unsigned len = 1 + (unsigned)(rng() % 500);
			int n = snprintf(pending_answer, sizeof(pending_answer), "ok answer %u ", i);
			memset(pending_answer + n, 'a', len);
			pending_answer[n + len] = '\n';
			pending_answer[n + len + 1] = '\0';
			if (log_answer(pending_answer, (uint32_t)strlen(pending_answer), &console_work)) {
				snprintf(sent[nsent], sizeof(sent[0]), "%.*s", (int)strlen(pending_answer) - 1, pending_answer);
				nsent++;
				answers++;
			} else {
				answer_waiting = true;
			}
		} else if (kind == 1) {
			static char payload[4200];
			uint32_t len = (uint32_t)(rng() % (rng() % 16 ? 200 : sizeof(payload)));
			memset(payload, 'd', len);
			if (log_defer(deferred_piece, payload, len / 2, payload + len / 2, len - len / 2))
				snprintf(sent[nsent++], sizeof(sent[0]), "ballast: deferred %u", len);
		} else {
			unsigned len = (unsigned)(rng() % 300);
			char word[400];
			memset(word, 'x', len);
			word[len] = '\0';
			uint64_t before = log_dropped();
			klog("line %u %s", i, word);
			if (log_dropped() == before)
				snprintf(sent[nsent++], sizeof(sent[0]), "ballast: line %u %s", i, word);
		}
		/* the UART: mostly drains some, sometimes stalls for a while */
		static unsigned stall;
		if (stall)
			stall--;
		else if (rng() % 200 == 0)
			stall = (unsigned)(rng() % 400);
		else
			uart_drain((uint32_t)(rng() % 600));
		if (rng() % 2)
			run_work();
	}
	/* let it all out */
	for (unsigned k = 0; k < 10000 && (log_queued() || tx_used || answer_waiting); k++) {
		uart_drain(tx_size);
		run_work();
		if (answer_waiting && log_answer(pending_answer, (uint32_t)strlen(pending_answer), &console_work)) {
			snprintf(sent[nsent], sizeof(sent[0]), "%.*s", (int)strlen(pending_answer) - 1, pending_answer);
			nsent++;
			answers++;
			answer_waiting = false;
		}
	}
	CHECK(!answer_waiting);
	CHECK_EQ_U64(log_queued(), 0);
	klog("the end"); /* a notice still owed goes out before this */
	for (unsigned k = 0; k < 100 && (log_queued() || tx_used); k++) {
		uart_drain(tx_size);
		run_work();
	}
	snprintf(sent[nsent++], sizeof(sent[0]), "ballast: the end");
	/* every line on the wire is one that was accepted, in order, or a
	 * notice; the notices add up to what was dropped */
	unsigned n = wire_lines(lines, LINES);
	unsigned k = 0;
	uint64_t noticed = 0;
	bool ok = true;
	for (unsigned i = 0; i < n && i < LINES; i++) {
		unsigned long long d;
		if (sscanf(lines[i], "ballast: log: %llu lines dropped", &d) == 1) {
			noticed += d;
			continue;
		}
		if (k >= nsent || strcmp(lines[i], sent[k]) != 0) {
			if (ok)
				fprintf(stderr, "    wire line %u: \"%.60s\", want \"%.60s\"\n", i, lines[i], k < nsent ? sent[k] : "");
			ok = false;
		}
		k++;
	}
	CHECK(ok);
	CHECK_EQ_U64(k, nsent);
	CHECK_EQ_U64(noticed, log_dropped() - dropped0);
	CHECK(log_dropped() - dropped0 > 0); /* the stalls did cost lines */
	CHECK(answers > 100);
	printf("log: %u lines out, %" PRIu64 " dropped, %u answers (none dropped)\n", k, log_dropped() - dropped0,
	       answers);
}

/* A UART that never drains: the kernel keeps going, lines are counted as
 * dropped, an answer is refused (never lost), and a line as big as the
 * queue fits once the queue is empty again. */
static void test_stalled(void)
{
	reset_out();
	uint64_t d0 = log_dropped();
	unsigned accepted = 0;
	for (unsigned i = 0; i < 1000; i++) {
		uint64_t before = log_dropped();
		klog("stalled %u", i);
		accepted += log_dropped() == before;
		run_work();
	}
	CHECK(accepted > 0 && accepted < 1000);
	CHECK_EQ_U64(log_dropped() - d0, 1000 - accepted);
	static struct work w;
	static bool woken;
	w = (struct work){ .fn = wake, .ctx = &woken };
	CHECK(!log_answer("ok late\n", 8, &w));
	/* the UART comes back */
	for (unsigned k = 0; k < 1000 && log_queued(); k++) {
		uart_drain(tx_size);
		run_work();
	}
	CHECK(woken);
	CHECK(log_answer("ok late\n", 8, &w));
	for (unsigned k = 0; k < 100 && (log_queued() || tx_used); k++) {
		uart_drain(tx_size);
		run_work();
	}
	char lines[1100][600];
	unsigned n = wire_lines(lines, 1100);
	CHECK_EQ_U64(n, accepted + 2); /* the accepted lines, the notice, the answer */
	char want[64];
	snprintf(want, sizeof want, "ballast: log: %" PRIu64 " lines dropped", log_dropped() - d0);
	CHECK_EQ_STR(lines[accepted], want);
	CHECK_EQ_STR(lines[accepted + 1], "ok late");
	/* the biggest record the queue can hold, once it is empty */
	static char big[8192];
	memset(big, 'd', sizeof big);
	CHECK(!log_defer(deferred_piece, big, sizeof big, NULL, 0)); /* bigger than the queue: dropped */
	CHECK(log_defer(deferred_piece, big, 8192 - 64, NULL, 0));
	for (unsigned k = 0; k < 100 && (log_queued() || tx_used); k++) {
		uart_drain(tx_size);
		run_work();
	}
}

static void test_panic(void)
{
	reset_out();
	klog("before the panic");
	polled_len = 0;
	if (setjmp(exited) == 0)
		panic("the %s", "reason");
	/* what was queued went out first, then the panic line, interrupts off */
	CHECK(!irq_on);
	CHECK(strstr(out, "ballast: before the panic\n") != NULL);
	polled[polled_len] = '\0';
	CHECK(strstr(polled, "ballast: PANIC at ") != NULL && strstr(polled, ": the reason\n") != NULL);
}

int main(void)
{
	test_boot_sync();
	test_random();
	test_stalled();
	test_panic();
	return check_summary("log");
}
