/* The memory manager's public face: page allocation for the kernel, and
 * the counters every balloon statistic is read from. */
#ifndef BALLAST_MM_H
#define BALLAST_MM_H

#include <stdbool.h>
#include <stdint.h>
#include "boot/boot_info.h"
#include "kernel/mm/cache.h"
#include "kernel/mm/heap.h"
#include "kernel/mm/pmm.h"

/* One consistent snapshot of every counter (taken with interrupts off). */
struct mm_stats {
	struct pmm_counters pmm;
	struct heap_counters heap;
	uint64_t usable_pages;      /* usable + boot-reclaimable pages in the boot map */
	uint64_t page_table_pages;
	struct cache_counters cache; /* cache pages are part of pmm.allocated_pages */
};

void mm_init(const struct boot_info *bi);
/* A 2^order block (physical = virtual address), or PMM_NO_PAGE. */
uint64_t page_alloc(unsigned order);
/* The same without reclaiming the cache or deflating the balloon (the
 * cache itself grows with it). */
uint64_t page_alloc_noreclaim(unsigned order);
/* Frees a block; a bad free is a broken invariant and panics. */
void page_free(uint64_t pa, unsigned order);
void mm_stats(struct mm_stats *out);
/* managed = free + allocated, managed + offline = usable pages of the boot
 * map, and (full) the allocator's lists agree with its state. */
bool mm_invariant_holds(bool full);

/* The balloon's side of the allocator. A page taken with `offline` leaves
 * the managed pool (and so stat-total-memory), as Linux does unless
 * DEFLATE_ON_OOM is negotiated; returns PMM_NO_PAGE if no page is free. */
uint64_t mm_balloon_take(bool offline);
/* Free pages the balloon always leaves to the kernel: 8 MiB, enough for the
 * page tables, heap growth and console work of a guest of any size. */
#define MM_BALLOON_RESERVE_PAGES 2048
#define MM_BALLOON_RECLAIM_BATCH 1024 /* cache pages reclaimed at a time for the balloon */
/* A page for the balloon to give the host, the memory manager's policy
 * applied: the cache is reclaimed for it, the reserve is never given;
 * PMM_NO_PAGE when only the reserve is left. */
uint64_t mm_balloon_inflate_take(bool offline);
/* The memory manager's periodic work (async reclaim of the cache); after
 * the timer can be routed. */
void mm_start(void);
void mm_balloon_give(uint64_t pa, bool offline);
/* Takes a ballooned page back as allocated kernel memory (no free). */
void mm_balloon_keep(uint64_t pa, bool offline);

/* Called when an allocation is about to fail; returns pages it released
 * (the balloon deflating on OOM). One handler. */
typedef uint64_t (*mm_oom_handler_fn)(uint64_t pages_wanted);
void mm_set_oom_handler(mm_oom_handler_fn fn);

/* Page poisoning (the balloon's PAGE_POISON): every page the kernel frees
 * is filled with `value` (deflated pages come back from the host zeroed,
 * which is why the balloon uses 0). */
void mm_set_free_poison(bool on, uint8_t value);
/* Free page reporting: a free block of `order` the host has not been told
 * about, taken off the free lists (and filled with the poison), or
 * PMM_NO_PAGE; then given back, marked reported. */
uint64_t mm_report_isolate(unsigned order);
void mm_report_putback(uint64_t pa, unsigned order);

#endif
