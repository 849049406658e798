/* Deferred work: interrupt handlers queue it, the idle loop runs it with
 * interrupts enabled, before the CPU halts again. */
#ifndef BALLAST_WORK_H
#define BALLAST_WORK_H

#include <stdbool.h>

struct work {
	void (*fn)(void *ctx);
	void *ctx;
	bool queued;
	struct work *next;
};

/* Safe from interrupt context; queuing an already queued item does nothing. */
void work_queue(struct work *w);
/* Runs everything queued; returns whether anything ran. */
bool work_run(void);
/* Whether anything is queued (call with interrupts disabled to decide to
 * halt). */
bool work_pending(void);

#endif
