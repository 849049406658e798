#include <stddef.h>
#include "kernel/arch/cpu.h"
#include "kernel/work.h"

static struct work *head, *tail;

void work_queue(struct work *w)
{
	uint64_t flags = irq_save();
	if (!w->queued) {
		w->queued = true;
		w->next = NULL;
		if (tail)
			tail->next = w;
		else
			head = w;
		tail = w;
	}
	irq_restore(flags);
}

bool work_pending(void) { return head != NULL; }

bool work_run(void)
{
	bool ran = false;
	for (;;) {
		uint64_t flags = irq_save();
		struct work *w = head;
		if (w) {
			head = w->next;
			if (!head)
				tail = NULL;
			w->queued = false; /* may be queued again while it runs */
		}
		irq_restore(flags);
		if (!w)
			return ran;
		w->fn(w->ctx);
		ran = true;
	}
}
