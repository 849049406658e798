/* The statistics service (5.5.6.3): the driver keeps one buffer on the stats
 * queue. The host takes it, and when it wants fresh numbers it hands the
 * buffer back (used ring, interrupt); the driver refills it from a new
 * snapshot and adds it again, and that addition is the answer.
 *
 * All of it runs with interrupts off, from the stats queue's own interrupt
 * (so an answer never waits for the idle loop), the tick (a delayed answer)
 * or a console command. stats_service is the one place that decides when:
 * a held buffer is answered unless the guest is paused, or while its delay
 * runs. Only after the kick does the log get the bytes as they were sent,
 * to format later, away from the answer path. */
#include <string.h>
#include "drivers/virtio/balloon_priv.h"
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

struct stats_knobs stats_knobs;

static int buf_init(struct stats_buf *buf, bool extra)
{
	uint64_t pa = page_alloc(0);
	if (pa == PMM_NO_PAGE)
		return -1;
	*buf = (struct stats_buf){ .mem = phys_to_virt(pa), .phys = pa, .extra = extra };
	return 0;
}

static void stats_vq_done(struct virtqueue *vq);

int balloon_stats_init(struct balloon *b, unsigned index)
{
	struct balloon_stats *st = &b->stats;
	st->vq = virtio_vq_setup(b->vd, index, "stats", stats_vq_done, b);
	if (!st->vq || buf_init(&st->main, false) < 0)
		return -1;
	if (buf_init(&st->extra, true) < 0)
		st->extra.mem = NULL; /* "stats extra" says it cannot */
	return 0;
}

static void stats_log(uint64_t seq, const void *buf, size_t bytes)
{
	struct balloon_stats_logged h = { .seq = seq, .len = (uint32_t)bytes };
	log_defer(balloon_stats_line_piece, &h, sizeof(h), buf, (uint32_t)bytes);
}

/* Builds `buf` from one fresh snapshot, adds it, kicks: the answer. seq
 * counts the buffers really handed over. */
static int stats_add(struct balloon *b, struct stats_buf *buf)
{
	struct balloon_stats *st = &b->stats;
	struct mm_stats s;
	mm_stats(&s);
	size_t bytes = stats_answer_build(&stats_knobs.plan, &s, !st->primed, buf->mem, PAGE_SIZE);
	struct vq_buf vb = { buf->phys, (uint32_t)bytes };
	if (vq_add(st->vq, &vb, 1, 0, buf) < 0)
		return -1;
	buf->in_flight = true;
	st->primed = true;
	st->kicked_tsc = rdtsc(); /* the answer is out when the device is told */
	vq_kick(st->vq);
	st->seq++;
	stats_log(st->seq, buf->mem, bytes);
	return 0;
}

static void answer(struct balloon *b)
{
	struct balloon_stats *st = &b->stats;
	if (stats_add(b, &st->main) < 0) {
		klog("%s: stats buffer could not be added", b->vd->name);
		return;
	}
	st->held = st->delayed = false;
	if (st->timed) {
		st->latency[st->latency_count % BALLOON_LATENCY_SAMPLES] = st->kicked_tsc - st->held_since;
		st->latency_count++;
		st->timed = false;
	}
}

void stats_prime(struct balloon *b)
{
	uint64_t flags = irq_save();
	if (stats_add(b, &b->stats.main) < 0)
		klog("%s: stats buffer could not be added", b->vd->name);
	irq_restore(flags);
}

void stats_service(struct balloon *b)
{
	struct balloon_stats *st = &b->stats;
	if (!st->vq || !st->held || b->vd->failed)
		return;
	if (stats_knobs.paused) {
		st->timed = false; /* a buggy guest: keep the buffer */
		return;
	}
	if (stats_knobs.delay_ms) {
		if (!st->delayed) {
			st->delayed = true;
			st->timed = false;
			st->due_tsc = st->held_since + tsc_khz() * stats_knobs.delay_ms;
		}
		if (rdtsc() < st->due_tsc)
			return; /* the tick comes back */
	}
	answer(b);
}

void stats_resume(struct balloon *b)
{
	struct balloon_stats *st = &b->stats;
	stats_knobs.paused = false;
	if (!st->vq)
		return;
	st->held_since = rdtsc(); /* a delay, if any, runs from now */
	st->delayed = false;
	stats_service(b);
}

int balloon_stats_extra(struct balloon *b)
{
	struct balloon_stats *st = &b->stats;
	if (!st->vq || !st->extra.mem || st->extra.in_flight)
		return -1;
	return stats_add(b, &st->extra);
}

static void stats_vq_done(struct virtqueue *vq)
{
	struct balloon *b = vq->priv;
	struct balloon_stats *st = &b->stats;
	struct stats_buf *buf;
	uint32_t len;
	while ((buf = vq_get_used(vq, &len))) {
		buf->in_flight = false;
		if (buf->extra) {
			/* the one-shot second buffer is retired, not answered: answering
			 * both would make the host swap them back and forth for ever */
			klog("%s: stats: the host handed back the extra buffer", b->vd->name);
			continue;
		}
		st->requests++;
		st->held = st->timed = true;
		st->held_since = irq_entry_tsc(); /* (polled: the timer's interrupt, a tick early at most) */
		st->delayed = false;
		stats_service(b);
	}
}
