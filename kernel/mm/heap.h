/* The demand-paged kernel heap: a reserved virtual window that newlib's
 * malloc grows into through sbrk(); pages are backed on first touch by the
 * page-fault handler, each such fault counted as a minor fault. */
#ifndef BALLAST_HEAP_H
#define BALLAST_HEAP_H

#include <stdint.h>

/* Far above any RAM the identity map can cover, inside the canonical lower
 * half. */
#define HEAP_BASE   0x0000400000000000ull
#define HEAP_WINDOW (64ull << 30)
/* The span of the PML4 entry the window lies in: nothing else is mapped
 * there, so every table in it is the heap's. */
#define HEAP_REGION_SPAN (1ull << 39)
#define HEAP_REGION_END (HEAP_BASE + HEAP_REGION_SPAN)
_Static_assert(HEAP_BASE % HEAP_REGION_SPAN == 0, "the heap starts a PML4 entry");
_Static_assert(HEAP_WINDOW <= HEAP_REGION_SPAN, "the heap window fits one PML4 entry");

struct heap_counters {
	uint64_t brk_bytes;      /* sbrk'd size of the heap */
	uint64_t backed_pages;   /* pages currently backing the window */
	uint64_t minor_faults;   /* first touches resolved */
	uint64_t reserved_pages; /* taken at sbrk, not yet touched */
};

/* Moves the break, taking (or giving back) the pages below it; returns
 * the old break, or (void *)-1 with ENOMEM when memory is short. */
void *heap_sbrk(intptr_t increment);
int heap_handle_fault(uint64_t addr);
/* Logs why a fault could not be resolved (outside the window, beyond the
 * break, out of memory). */
void heap_explain_fault(uint64_t addr);
void heap_counters(struct heap_counters *out);

#endif
