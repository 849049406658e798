/* Console commands of the balloon driver. */
#include <stdlib.h>
#include <string.h>
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/balloon_priv.h"
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include <stdio.h>
#include "kernel/console/console.h"
#include "kernel/mm/mm_console.h"

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats_latency(struct balloon *b)
{
	static uint64_t sorted[BALLOON_LATENCY_SAMPLES];
	uint64_t flags = irq_save();
	unsigned n = b->latency_count < BALLOON_LATENCY_SAMPLES ? (unsigned)b->latency_count : BALLOON_LATENCY_SAMPLES;
	memcpy(sorted, b->latency, n * sizeof(sorted[0]));
	irq_restore(flags);
	if (n == 0) {
		console_err("no stats requests answered yet");
		return;
	}
	qsort(sorted, n, sizeof(sorted[0]), compare_u64);
	uint64_t p50 = sorted[(n - 1) / 2], p99 = sorted[(n - 1) * 99 / 100], max = sorted[n - 1];
	console_ok("samples=%u p50_ns=%" PRIu64 " p99_ns=%" PRIu64 " max_ns=%" PRIu64, n,
	           tsc_to_us(p50 * 1000), tsc_to_us(p99 * 1000), tsc_to_us(max * 1000));
}

static void cmd_stats(int argc, char **argv)
{
	struct balloon *b = &balloon;
	if (argc != 2) {
		console_err("usage: stats pause|resume|show|latency");
		return;
	}
	if (!b->vd || !b->has_stats) {
		console_err("no balloon statistics queue");
		return;
	}
	uint64_t flags;
	if (strcmp(argv[1], "pause") == 0) {
		flags = irq_save();
		b->stats_paused = true;
		irq_restore(flags);
		console_ok("paused=1");
	} else if (strcmp(argv[1], "resume") == 0) {
		flags = irq_save();
		b->stats_paused = false;
		/* a buffer held while paused goes back now, as a late answer */
		bool handed_back = b->stats_held && !b->vd->failed;
		if (handed_back)
			balloon_stats_answer(b);
		irq_restore(flags);
		console_ok("paused=0 answered_held=%d", handed_back);
	} else if (strcmp(argv[1], "show") == 0) {
		flags = irq_save();
		console_ok("seq=%" PRIu64 " requests=%" PRIu64 " paused=%d held=%d failed=%d", b->stats_seq,
		           b->stats_requests, b->stats_paused, b->stats_held, b->vd->failed);
		irq_restore(flags);
	} else if (strcmp(argv[1], "latency") == 0) {
		stats_latency(b);
	} else {
		console_err("usage: stats pause|resume|show|latency");
	}
}

static const struct console_cmd balloon_cmds[] = {
	{ "stats", "pause|resume|show|latency", cmd_stats },
};

/* The balloon's part of "mem show". */
static void balloon_describe(char *buf, size_t len)
{
	struct balloon *b = &balloon;
	if (!b->vd) {
		snprintf(buf, len, " balloon=none");
		return;
	}
	uint64_t flags = irq_save();
	snprintf(buf, len,
	         " balloon_pages=%" PRIu64 " balloon_target=%" PRIu32 " balloon_inflating=%" PRIu64
	         " balloon_deflating=%" PRIu64 " balloon_inflated_total=%" PRIu64 " balloon_deflated_total=%" PRIu64
	         " deflate_on_oom=%d oom_deflates=%" PRIu64 " oom_pages=%" PRIu64 " reporting=%d reported_pages=%" PRIu64
	         " page_poison=%d balloon_failed=%d",
	         b->pages, b->target_pages, b->inflating, b->deflating, b->inflated_total, b->deflated_total,
	         b->deflate_on_oom, b->oom_deflates, b->oom_pages, b->reporting, b->reported_pages, b->poison,
	         b->vd->failed);
	irq_restore(flags);
}

void balloon_console_init(void)
{
	console_register(balloon_cmds, sizeof(balloon_cmds) / sizeof(balloon_cmds[0]));
	mm_console_set_extra(balloon_describe);
}
