/* The memory manager's public face: page allocation for the kernel, and
 * the counters every balloon statistic is read from. */
#ifndef BALLAST_MM_H
#define BALLAST_MM_H

#include <stdbool.h>
#include <stdint.h>
#include "boot/boot_info.h"
#include "kernel/mm/heap.h"
#include "kernel/mm/pmm.h"

/* One consistent snapshot of every counter (taken with interrupts off). */
struct mm_stats {
	struct pmm_counters pmm;
	struct heap_counters heap;
	uint64_t usable_pages;      /* usable + boot-reclaimable pages in the boot map */
	uint64_t page_table_pages;
};

void mm_init(const struct boot_info *bi);
/* A 2^order block (physical = virtual address), or PMM_NO_PAGE. */
uint64_t page_alloc(unsigned order);
/* Frees a block; a bad free is a broken invariant and panics. */
void page_free(uint64_t pa, unsigned order);
void mm_stats(struct mm_stats *out);
/* managed = free + allocated, managed = usable pages of the boot map, and
 * (full) the allocator's lists agree with its state. */
bool mm_invariant_holds(bool full);

#endif
