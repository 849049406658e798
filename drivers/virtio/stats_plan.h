/* How the statistics buffer is built: which tags in which order, and the
 * ways a guest can get it wrong on purpose (fault injection, personas of
 * other guests' drivers). What a host makes of a buffer is the host's
 * business: the guest logs what it sent (balloon_stats.h), and the test
 * harness knows each host (tests/e2e/hosts.py).
 * Pure logic, unit-tested natively. */
#ifndef BALLAST_STATS_PLAN_H
#define BALLAST_STATS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drivers/virtio/balloon_stats.h"

#define STATS_PLAN_MAX_TAGS 32
#define STATS_UNKNOWN_TAG_FIRST 16 /* "unknown": tags no spec defines */
#define STATS_UNKNOWN_TAGS 4
#define STATS_NO_TAG 0xffff
#define STATS_EMPTY_BYTES 2 /* a tag with no value: no whole entry */

enum stats_fill {
	STATS_FILL_ENTRIES, /* the tags with their values */
	STATS_FILL_EMPTY,   /* zero entries: a buffer too short for one */
	STATS_FILL_ZERO_LENGTH, /* a 0-byte buffer, which QEMU answers by
	                         * marking the whole device broken */
	STATS_FILL_FF,      /* every byte 0xff, as virtio-win sends when it cannot gather */
};

struct stats_plan {
	const char *persona;
	uint16_t tags[STATS_PLAN_MAX_TAGS];
	unsigned ntags;
	enum stats_fill fill;
	bool unknown;              /* tags 16-19 mixed in */
	uint16_t duplicate;        /* this tag sent again, value + 1; STATS_NO_TAG: none */
	unsigned truncate;         /* bytes cut off the end (a partial last entry) */
	unsigned pad;              /* zero bytes after the entries (an over-long buffer) */
	unsigned first_len;        /* priming buffer: this many bytes of first_byte (0: a normal answer) */
	uint8_t first_byte;
	unsigned trailing_ff;      /* all-0xff entries after the tags */
	uint32_t override_mask;    /* tags whose value is forced */
	uint64_t override_val[VIRTIO_BALLOON_S_NR];
};

/* ballast's own: tags 0-15 in order, nothing injected. */
void stats_plan_default(struct stats_plan *p);
/* Sets a guest persona's tag set, order and priming buffer; -1 if the name
 * is unknown. Fault settings are cleared. */
int stats_plan_persona(struct stats_plan *p, const char *name);
/* Names the personas, for help and errors: "ballast linux-6.6 ..." (from
 * the one table of them). */
const char *stats_plan_persona_names(void);
/* A tag from a QMP name ("stat-free-memory" or "free-memory") or a number
 * below 16; -1 otherwise. */
int stats_tag_parse(const char *s);
/* Writes the buffer for vals (first: the priming buffer); returns its
 * length (at most cap). */
size_t stats_plan_build(const struct stats_plan *p, const struct balloon_stat_values *vals, bool first,
                        uint8_t *out, size_t cap);
/* An answer: the buffer the plan makes of one memory manager snapshot. */
size_t stats_answer_build(const struct stats_plan *p, const struct mm_stats *s, bool first, uint8_t *out,
                          size_t cap);
#endif
