#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "drivers/virtio/balloon_stats.h"

static const char *const qmp_names[VIRTIO_BALLOON_S_NR] = {
	"stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
	"stat-free-memory", "stat-total-memory", "stat-available-memory", "stat-disk-caches",
	"stat-htlb-pgalloc", "stat-htlb-pgfail", "stat-oom-kills", "stat-alloc-stalls",
	"stat-async-scans", "stat-direct-scans", "stat-async-reclaims", "stat-direct-reclaims",
};

const char *balloon_stat_name(uint16_t tag) { return tag < VIRTIO_BALLOON_S_NR ? qmp_names[tag] : NULL; }

void balloon_stats_from_mm(const struct mm_stats *s, struct balloon_stat_values *out)
{
	memset(out, 0, sizeof(*out));
	/* no backing store: nothing is ever swapped or read back from disk, and
	 * saying 0 is the truth, not a placeholder */
	out->v[VIRTIO_BALLOON_S_SWAP_IN] = 0;
	out->v[VIRTIO_BALLOON_S_SWAP_OUT] = 0;
	out->v[VIRTIO_BALLOON_S_MAJFLT] = 0;
	out->v[VIRTIO_BALLOON_S_MINFLT] = s->heap.minor_faults;
	out->v[VIRTIO_BALLOON_S_MEMFREE] = s->pmm.free_pages * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_MEMTOT] = s->pmm.managed_pages * PAGE_SIZE;
	/* available = free + what reclaim can give back: the cache */
	out->v[VIRTIO_BALLOON_S_AVAIL] = (s->pmm.free_pages + s->cache.pages) * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_CACHES] = s->cache.pages * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_HTLB_PGALLOC] = s->pmm.huge_allocs;
	out->v[VIRTIO_BALLOON_S_HTLB_PGFAIL] = s->pmm.huge_failures;
	out->v[VIRTIO_BALLOON_S_OOM_KILL] = s->cache.oom_kills;
	out->v[VIRTIO_BALLOON_S_ALLOC_STALL] = s->cache.alloc_stalls;
	/* scanned and reclaimed memory is in bytes (virtio 1.3, 5.5.6.3) */
	out->v[VIRTIO_BALLOON_S_ASYNC_SCAN] = s->cache.async_scan * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_DIRECT_SCAN] = s->cache.direct_scan * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_ASYNC_RECLAIM] = s->cache.async_reclaim * PAGE_SIZE;
	out->v[VIRTIO_BALLOON_S_DIRECT_RECLAIM] = s->cache.direct_reclaim * PAGE_SIZE;
}

size_t balloon_stats_encode(const uint16_t *tags, unsigned n, const struct balloon_stat_values *vals,
                            void *out, size_t out_len)
{
	if (n > out_len / sizeof(struct virtio_balloon_stat))
		return 0;
	struct virtio_balloon_stat *st = out;
	for (unsigned i = 0; i < n; i++) {
		/* little-endian on every transport, as x86 is */
		struct virtio_balloon_stat e = { tags[i], tags[i] < VIRTIO_BALLOON_S_NR ? vals->v[tags[i]] : 0 };
		memcpy(&st[i], &e, sizeof(e));
	}
	return n * sizeof(struct virtio_balloon_stat);
}

/* Cursor: 0 the head, 1 + i entry i, then the newline, then done. */
#define LINE_DONE UINT32_MAX

size_t balloon_stats_line_piece(const void *payload, uint32_t len, uint32_t *cursor, char *out, size_t cap)
{
	struct balloon_stats_logged h;
	if (*cursor == LINE_DONE || len < sizeof(h) || cap == 0)
		return 0;
	memcpy(&h, payload, sizeof(h));
	const uint8_t *bytes = (const uint8_t *)payload + sizeof(h);
	uint32_t have = len - (uint32_t)sizeof(h); /* what the log kept: all of it */
	uint32_t entries = (have < h.len ? have : h.len) / sizeof(struct virtio_balloon_stat);
	int n;
	if (*cursor == 0) {
		n = h.len % sizeof(struct virtio_balloon_stat)
			? snprintf(out, cap, "ballast: stats seq=%" PRIu64 " len=%" PRIu32, h.seq, h.len)
			: snprintf(out, cap, "ballast: stats seq=%" PRIu64, h.seq);
	} else if (*cursor - 1 < entries) {
		struct virtio_balloon_stat e;
		memcpy(&e, bytes + (size_t)(*cursor - 1) * sizeof(e), sizeof(e));
		const char *name = balloon_stat_name(e.tag);
		n = name ? snprintf(out, cap, " %s=%" PRIu64, name, e.val)
		         : snprintf(out, cap, " tag%u=%" PRIu64, (unsigned)e.tag, e.val);
	} else {
		*cursor = LINE_DONE;
		out[0] = '\n';
		return 1;
	}
	(*cursor)++;
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
