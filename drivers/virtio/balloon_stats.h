/* The statistics a balloon answer carries: read from the memory manager's
 * counters, encoded as (tag, value) pairs, and logged in the exact form the
 * host will report them. Pure logic, unit-tested natively. */
#ifndef BALLAST_BALLOON_STATS_H
#define BALLAST_BALLOON_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drivers/virtio/balloon_spec.h"
#include "kernel/mm/mm.h"

struct balloon_stat_values {
	uint64_t v[VIRTIO_BALLOON_S_NR];
};

/* Maps one mm snapshot to statistics values (sizes in bytes). */
void balloon_stats_from_mm(const struct mm_stats *s, struct balloon_stat_values *out);
/* Writes the given tags with their values; returns the bytes written, or 0
 * if they do not fit in out_len. */
size_t balloon_stats_encode(const uint16_t *tags, unsigned n, const struct balloon_stat_values *vals,
                            void *out, size_t out_len);
/* The QMP name of a tag ("stat-free-memory"), as QEMU names tags 0-15 (QEMU
 * 7.2 shows 0-9, 9.2 and later all sixteen); NULL for any other tag. */
const char *balloon_stat_name(uint16_t tag);

/* What the log keeps of one buffer handed to the host: its seq, then the
 * len bytes exactly as they were sent. */
struct balloon_stats_logged {
	uint64_t seq;
	uint32_t len;
	uint32_t reserved;
};
_Static_assert(sizeof(struct balloon_stats_logged) == 16, "payload header");
/* A log_piece_fn (kernel/log.h) for such a payload: the line
 * "ballast: stats seq=<n>[ len=<bytes>] <name>=<value>...", every whole
 * entry in order, duplicates and all, tags named as QEMU names them or
 * "tag<N>"; len= only when the buffer is not a whole number of entries. */
size_t balloon_stats_line_piece(const void *payload, uint32_t len, uint32_t *cursor, char *out, size_t cap);

#endif
