/* From the boot map to the page allocator: which whole pages are memory,
 * where the allocator's metadata goes, and handing the ranges over. Apart
 * from mm.c so that unit tests run it natively on hostile maps: the map
 * comes from firmware or a hypervisor's PVH start info, and may hold
 * byte-granular, overlapping, wrapping or absurdly high ranges. */
#ifndef BALLAST_MM_LAYOUT_H
#define BALLAST_MM_LAYOUT_H

#include <stdint.h>
#include "boot/boot_info.h"
#include "kernel/mm/pmm.h"

struct mm_layout {
	uint64_t limit_pfn;   /* memory at or above this frame is left out */
	uint64_t max_pfn;     /* frames the metadata covers */
	uint64_t state_base;  /* physical address of the metadata */
	uint64_t state_pages;
};

/* Where the kernel can write physical memory (the direct map). */
typedef void *(*mm_phys_to_virt_fn)(uint64_t pa);

/* Places the metadata at the start of the first usable range that holds
 * it, initializes `pmm` over it and takes its pages as in use. If no range
 * holds the metadata for everything up to the highest usable frame (memory
 * terabytes up), the highest range is left out (logged) until one does.
 * Returns the pages in use, or -1 if the map has no usable memory. */
int64_t mm_layout_plan(const struct boot_info *bi, struct pmm *pmm, mm_phys_to_virt_fn to_virt,
                       struct mm_layout *out);

/* Gives the allocator the whole pages of the ranges of one type (usable or
 * boot-reclaimable) below the limit, past the metadata; a range the map
 * shows twice is left out (logged). Returns the pages added. */
uint64_t mm_layout_add(const struct boot_info *bi, struct pmm *pmm, uint32_t type, const struct mm_layout *l);

#endif
