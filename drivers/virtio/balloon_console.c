/* Console commands of the balloon driver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/balloon_priv.h"
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/console/console.h"
#include "kernel/console/parse.h"
#include "kernel/log.h"
#include "kernel/mm/mm_console.h"
#include "lib/util.h"

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void stats_latency(struct balloon *b)
{
	static uint64_t sorted[BALLOON_LATENCY_SAMPLES];
	struct balloon_stats *st = &b->stats;
	uint64_t flags = irq_save();
	unsigned n = st->latency_count < BALLOON_LATENCY_SAMPLES ? (unsigned)st->latency_count : BALLOON_LATENCY_SAMPLES;
	memcpy(sorted, st->latency, n * sizeof(sorted[0]));
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

static void answer_mode(void)
{
	const struct stats_plan *p = &stats_knobs.plan;
	console_ok("persona=%s paused=%d delay_ms=%" PRIu32 " fill=%s unknown=%d duplicate=%d truncate=%u pad=%u "
	           "overrides=0x%" PRIx32 " tags=%u",
	           p->persona, stats_knobs.paused, stats_knobs.delay_ms,
	           p->fill == STATS_FILL_EMPTY ? "empty" : p->fill == STATS_FILL_FF ? "ff" : p->fill == STATS_FILL_ZERO_LENGTH ? "zerolen" : "entries", p->unknown,
	           p->duplicate == STATS_NO_TAG ? -1 : (int)p->duplicate, p->truncate, p->pad, p->override_mask,
	           p->ntags);
}

static void reverse_tags(struct stats_plan *p)
{
	for (unsigned i = 0; i < p->ntags / 2; i++) {
		uint16_t t = p->tags[i];
		p->tags[i] = p->tags[p->ntags - 1 - i];
		p->tags[p->ntags - 1 - i] = t;
	}
}

/* Back to plain answers: no delay, not paused, and a buffer held meanwhile
 * answered at once (interrupts off). */
static void stats_unfault(void)
{
	stats_knobs.delay_ms = 0;
	struct balloon *b = balloon_current();
	if (b)
		stats_resume(b);
	else
		stats_knobs.paused = false;
}

/* Bytes cut from the last entry by "stats truncate": the total is then
 * not a multiple of 10. */
#define STATS_TRUNCATE_BYTES 3
/* "stats overlong": the buffer runs this far past its entries, zero-filled. */
#define STATS_OVERLONG_PAD 256
#define STATS_DELAY_MAX_MS 600000

/* How stats_fault went: applied, not one of its words, or one of its words
 * with a bad argument (then *why says what is wrong). */
enum fault_result { FAULT_APPLIED, FAULT_NOT_A_FAULT, FAULT_BAD_ARGUMENT };

#define STATS_TAG_HINT "a tag is 0 to 15 or a name such as free-memory"

/* Changes to how answers look; all apply from the next answer on. */
static enum fault_result stats_fault(int argc, char **argv, char *why, size_t why_len)
{
	struct stats_plan *p = &stats_knobs.plan;
	const char *what = argv[1];
	uint64_t v;
	int tag;
	if (argc == 2 && strcmp(what, "empty") == 0)
		p->fill = STATS_FILL_EMPTY;
	else if (argc == 2 && strcmp(what, "zerolen") == 0)
		p->fill = STATS_FILL_ZERO_LENGTH;
	else if (argc == 2 && strcmp(what, "ff") == 0)
		p->fill = STATS_FILL_FF;
	else if (argc == 2 && strcmp(what, "unknown") == 0)
		p->unknown = true;
	else if (argc == 2 && strcmp(what, "truncate") == 0)
		p->truncate = STATS_TRUNCATE_BYTES;
	else if (argc == 2 && strcmp(what, "overlong") == 0)
		p->pad = STATS_OVERLONG_PAD;
	else if (argc == 2 && strcmp(what, "normal") == 0) {
		stats_plan_persona(p, p->persona);
		stats_unfault();
	} else if (argc == 3 && strcmp(what, "duplicate") == 0) {
		if ((tag = stats_tag_parse(argv[2])) < 0) {
			snprintf(why, why_len, "bad tag '%s' (" STATS_TAG_HINT ")", argv[2]);
			return FAULT_BAD_ARGUMENT;
		}
		p->duplicate = (uint16_t)tag;
	} else if (argc == 3 && strcmp(what, "order") == 0) {
		if (strcmp(argv[2], "reverse") != 0) {
			snprintf(why, why_len, "bad order '%s' (reverse is the one other order)", argv[2]);
			return FAULT_BAD_ARGUMENT;
		}
		reverse_tags(p);
	} else if (argc == 3 && strcmp(what, "delay") == 0) {
		if (!parse_u64(argv[2], &v) || v > STATS_DELAY_MAX_MS) {
			snprintf(why, why_len, "bad delay '%s' (0 to %d ms)", argv[2], STATS_DELAY_MAX_MS);
			return FAULT_BAD_ARGUMENT;
		}
		stats_knobs.delay_ms = (uint32_t)v;
	} else if (argc == 4 && strcmp(what, "set") == 0) {
		if ((tag = stats_tag_parse(argv[2])) < 0) {
			snprintf(why, why_len, "bad tag '%s' (" STATS_TAG_HINT ")", argv[2]);
			return FAULT_BAD_ARGUMENT;
		}
		if (!parse_u64(argv[3], &v)) {
			snprintf(why, why_len, "bad value '%s' (0 to 18446744073709551615)", argv[3]);
			return FAULT_BAD_ARGUMENT;
		}
		p->override_mask |= 1u << tag;
		p->override_val[tag] = v;
	} else
		return FAULT_NOT_A_FAULT;
	return FAULT_APPLIED;
}

static void cmd_stats(int argc, char **argv)
{
	struct balloon *b = balloon_current();
	if (argc < 2) {
		console_usage();
		return;
	}
	if (!b || !b->stats.vq) {
		console_err("no balloon statistics queue");
		return;
	}
	struct balloon_stats *st = &b->stats;
	uint64_t flags = irq_save();
	if (argc == 2 && strcmp(argv[1], "pause") == 0) {
		stats_knobs.paused = true;
		irq_restore(flags);
		console_ok("paused=1");
	} else if (argc == 2 && strcmp(argv[1], "resume") == 0) {
		bool was_held = st->held;
		stats_resume(b); /* a held buffer goes back now, or when its delay (from now) is over */
		bool handed_back = was_held && !st->held;
		irq_restore(flags);
		console_ok("paused=0 answered_held=%d", handed_back);
	} else if (argc == 2 && strcmp(argv[1], "show") == 0) {
		irq_restore(flags);
		console_ok("seq=%" PRIu64 " requests=%" PRIu64 " paused=%d held=%d failed=%d persona=%s log_dropped=%" PRIu64,
		           st->seq, st->requests, stats_knobs.paused, st->held, b->vd->failed, stats_knobs.plan.persona,
		           log_dropped());
	} else if (argc == 2 && strcmp(argv[1], "latency") == 0) {
		irq_restore(flags);
		stats_latency(b);
	} else if (argc == 2 && strcmp(argv[1], "extra") == 0) {
		int r = balloon_stats_extra(b);
		uint64_t seq = st->seq; /* the extra buffer's, before any interrupt answers */
		irq_restore(flags);
		if (r < 0)
			console_err("the extra buffer is already with the host");
		else
			console_ok("extra=1 seq=%" PRIu64, seq);
	} else {
		char why[96];
		enum fault_result r = stats_fault(argc, argv, why, sizeof(why));
		irq_restore(flags);
		if (r == FAULT_APPLIED)
			answer_mode();
		else if (r == FAULT_BAD_ARGUMENT)
			console_err("%s", why);
		else
			console_usage();
	}
}

static void cmd_persona(int argc, char **argv)
{
	if (argc != 2) {
		console_err("usage: persona %s", stats_plan_persona_names());
		return;
	}
	uint64_t flags = irq_save();
	int r = stats_plan_persona(&stats_knobs.plan, argv[1]);
	if (r == 0)
		stats_unfault(); /* a persona is a plain guest: fault settings cleared */
	irq_restore(flags);
	if (r < 0)
		console_err("unknown persona (%s)", stats_plan_persona_names());
	else
		answer_mode();
}

static const struct console_cmd balloon_cmds[] = {
	{ "stats", "pause|resume|show|latency|extra|empty|zerolen|ff|unknown|truncate|overlong|normal"
	           " | delay <ms> | duplicate <tag> | order reverse | set <tag> <value>", cmd_stats },
	/* (its usage names the personas, from their table: cmd_persona says it) */
	{ "persona", "", cmd_persona },
};

/* The balloon's part of "mem show". */
static void balloon_describe(char *buf, size_t len)
{
	struct balloon *b = balloon_current();
	if (!b) {
		snprintf(buf, len, " balloon=none");
		return;
	}
	uint64_t flags = irq_save();
	snprintf(buf, len,
	         " balloon_pages=%" PRIu64 " balloon_target=%" PRIu32 " balloon_inflating=%" PRIu64
	         " balloon_deflating=%" PRIu64 " balloon_inflated_total=%" PRIu64 " balloon_deflated_total=%" PRIu64
	         " deflate_on_oom=%d oom_deflates=%" PRIu64 " oom_pages=%" PRIu64 " reporting=%d reported_pages=%" PRIu64
	         " reporting_inflight=%" PRIu64
	         " page_poison=%d balloon_failed=%d",
	         b->pg.pages, b->pg.target, b->pg.inflating, b->pg.deflating, b->pg.inflated_total,
	         b->pg.deflated_total, b->pg.deflate_on_oom, b->pg.oom_deflates, b->pg.oom_pages, b->rep.enabled,
	         b->rep.reported_pages, b->rep.busy ? (uint64_t)b->rep.count << PMM_MAX_ORDER : 0, b->rep.poison,
	         b->vd->failed);
	irq_restore(flags);
}

/* Boot-time settings, the same words as the console's: persona=<name>,
 * stats_delay=<ms>, stats_paused, stats_fault=empty|ff|unknown|truncate|overlong. */
static void configure_from_cmdline(const char *cmdline)
{
	char value[32];
	char *argv[3] = { "stats", value, NULL };
	stats_plan_default(&stats_knobs.plan);
	if (cmdline_find(cmdline, "persona", value, sizeof(value)) && stats_plan_persona(&stats_knobs.plan, value) < 0)
		klog("balloon: unknown persona '%s' on the command line; using ballast", value);
	char why[96];
	if (cmdline_find(cmdline, "stats_fault", value, sizeof(value)) &&
	    stats_fault(2, argv, why, sizeof(why)) != FAULT_APPLIED)
		klog("balloon: unknown stats_fault '%s' on the command line", value);
	if (cmdline_find(cmdline, "stats_delay", value, sizeof(value))) {
		char *dargv[3] = { "stats", "delay", value };
		if (stats_fault(3, dargv, why, sizeof(why)) != FAULT_APPLIED)
			klog("balloon: stats_delay on the command line: %s", why);
	}
	stats_knobs.paused = cmdline_find(cmdline, "stats_paused", NULL, 0);
}

void balloon_console_init(const char *cmdline)
{
	configure_from_cmdline(cmdline);
	console_register(balloon_cmds, ARRAY_SIZE(balloon_cmds));
	mm_console_set_extra(balloon_describe);
}
