/* A reclaimable page cache standing in for a disk cache: pages a workload
 * fills (cache grow) that the allocator takes back under pressure, either
 * synchronously when an allocation would fail (direct reclaim, counted as
 * an allocation stall) or from a periodic check below a watermark (async
 * reclaim). Its counters are the balloon's disk-caches, available-memory
 * and reclaim statistics. */
#ifndef BALLAST_CACHE_H
#define BALLAST_CACHE_H

#include <stdbool.h>
#include <stdint.h>

struct cache_counters {
	uint64_t pages;            /* in the cache now */
	uint64_t direct_scan, direct_reclaim;
	uint64_t async_scan, async_reclaim;
	uint64_t alloc_stalls;     /* allocations that waited for direct reclaim */
	uint64_t oom_kills;        /* workloads whose allocation failed even so */
};

/* Adds up to `pages` pages; returns how many it got. */
uint64_t cache_grow(uint64_t pages);
/* Frees every cache page (not counted as reclaim); returns how many. */
uint64_t cache_drop(void);
/* Reclaims up to `pages` pages, oldest first. Interrupts may be off. */
uint64_t cache_reclaim(uint64_t pages, bool direct);
/* The periodic check: reclaims asynchronously while free memory is below
 * the low watermark, up to the high one. */
void cache_balance(void);
void cache_count_stall(void);
void cache_count_oom_kill(void);
void cache_counters(struct cache_counters *out);
/* Low and high watermarks, in free pages. */
uint64_t cache_low_watermark(void);
uint64_t cache_high_watermark(void);

#endif
