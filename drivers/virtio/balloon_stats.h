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
/* The QMP name of a tag ("stat-free-memory"), or NULL for tags QEMU 7.2
 * does not name. */
const char *balloon_stat_name(uint16_t tag);
/* "stats seq=<n> stat-swap-in=<v> ... stat-htlb-pgfail=<v>": the ten QMP
 * stats as the host will report them after this buffer. Returns the length
 * snprintf would have written. */
int balloon_stats_format(char *buf, size_t len, uint64_t seq, const struct balloon_stat_values *vals);

#endif
