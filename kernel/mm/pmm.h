/* Buddy page allocator over physical memory, orders 0 (4 KiB) to 9 (2 MiB).
 *
 * Pure data structure: no locking, no logging, no kernel dependencies, so
 * the same file builds into the kernel and into the native unit tests.
 * Callers serialise access (kernel/mm/mm.c disables interrupts). */
#ifndef BALLAST_PMM_H
#define BALLAST_PMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE  ((uint64_t)1 << PAGE_SHIFT)
#define PMM_MAX_ORDER 9
#define PMM_ORDERS (PMM_MAX_ORDER + 1)
#define PMM_HUGE_ORDER PMM_MAX_ORDER /* 2 MiB: counted as hugetlb allocations */
#define PMM_NO_PAGE UINT64_MAX

/* Where physical memory is visible: virtual = physical + offset. The kernel
 * identity-maps RAM (offset 0); unit tests point it at a host buffer. */
extern uintptr_t pmm_direct_map_offset;
static inline void *phys_to_virt(uint64_t pa) { return (void *)(uintptr_t)(pa + pmm_direct_map_offset); }
static inline uint64_t virt_to_phys(const void *va) { return (uint64_t)(uintptr_t)va - pmm_direct_map_offset; }

/* Free-list links live in a metadata array indexed by frame number, not in
 * the free memory itself: the allocator never writes to free pages, so
 * memory the host has never backed (or has taken back through the balloon)
 * stays untouched until it is really used. */
struct pmm_link {
	uint32_t next, prev; /* frame numbers; PMM_LIST_END ends a list */
};
#define PMM_LIST_END UINT32_MAX
#define PMM_MAX_PFN  (UINT32_MAX - 1ull) /* 16 TiB of 4 KiB frames */

struct pmm_counters {
	uint64_t managed_pages;   /* pages the allocator owns */
	uint64_t free_pages;
	uint64_t allocated_pages;
	uint64_t free_blocks[PMM_ORDERS];
	uint64_t allocs, frees, alloc_failures;
	uint64_t huge_allocs, huge_failures;
	uint64_t offline_pages;   /* taken out of the pool (ballooned), not managed */
};

struct pmm {
	uint8_t *state;          /* one byte per frame, see pmm.c */
	struct pmm_link *link;   /* one per frame; used for free block heads */
	uint64_t max_pfn;        /* frames [0, max_pfn) are described */
	uint32_t free_head[PMM_ORDERS];
	uint32_t free_tail[PMM_ORDERS]; /* reported blocks wait at the tail */
	struct pmm_counters c;
};

/* Bytes of metadata for frames [0, max_pfn). */
uint64_t pmm_meta_bytes(uint64_t max_pfn);
/* meta holds pmm_meta_bytes(max_pfn) bytes, 8-byte aligned; max_pfn is at
 * most PMM_MAX_PFN. Every frame starts unmanaged. Returns 0 or -1. */
int pmm_init(struct pmm *p, void *meta, uint64_t max_pfn);
/* Hands the whole pages of [base, base + size) to the allocator; frames
 * beyond max_pfn or already managed are refused. Returns pages added, or -1
 * if the range was refused. */
int64_t pmm_add_range(struct pmm *p, uint64_t base, uint64_t size);
/* Counts pages the allocator does not hand out but that are managed memory
 * in use (the allocator's own state array). */
void pmm_add_in_use(struct pmm *p, uint64_t base, uint64_t pages);

/* Returns the physical address of a 2^order page block, or PMM_NO_PAGE. */
uint64_t pmm_alloc(struct pmm *p, unsigned order);
/* The same without counting a failure: for a caller that tries again
 * (after reclaim) and counts the request's failure once, at the end. */
uint64_t pmm_try_alloc(struct pmm *p, unsigned order);
void pmm_count_failure(struct pmm *p, unsigned order);
/* Frees a block returned by pmm_alloc with the same order. Returns 0, or -1
 * for an address that is not an allocated block of that order (double free,
 * wrong order): the state is then left unchanged. */
int pmm_free(struct pmm *p, uint64_t pa, unsigned order);

/* Whether [pa, pa + 4 KiB << order) is an allocated block of that order. */
bool pmm_is_allocated(const struct pmm *p, uint64_t pa, unsigned order);

/* Takes an allocated 4 KiB page out of the managed pool (the balloon gave
 * it to the host): managed and allocated drop by one, offline grows. */
int pmm_offline(struct pmm *p, uint64_t pa);
/* Brings an offline page back as an allocated 4 KiB page. */
int pmm_online(struct pmm *p, uint64_t pa);

/* Free page reporting: takes a free block of this order the host has not
 * been told about (without counting an allocation), and puts it back
 * marked as reported. The mark is lost when the block is allocated or
 * merged. */
uint64_t pmm_isolate_unreported(struct pmm *p, unsigned order);
int pmm_putback_reported(struct pmm *p, uint64_t pa, unsigned order);

/* Whether managed = free + allocated and the free lists agree with the
 * counters and the per-frame state. O(free blocks + max_pfn). */
bool pmm_check(const struct pmm *p);

#endif
