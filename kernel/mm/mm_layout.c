#include "kernel/log.h"
#include "kernel/mm/mm_layout.h"

static bool is_usable(uint32_t type) { return type == BOOT_MEM_USABLE || type == BOOT_MEM_BOOT_RECLAIMABLE; }

/* The whole pages of a usable range below limit_pfn: [*first, *end). */
static bool usable_pfns(const struct boot_mem_range *r, uint64_t limit_pfn, uint64_t *first, uint64_t *end)
{
	if (!is_usable(r->type) || r->base + r->size < r->base)
		return false;
	*first = (r->base + PAGE_SIZE - 1) >> PAGE_SHIFT;
	*end = (r->base + r->size) >> PAGE_SHIFT;
	if (*end > limit_pfn)
		*end = limit_pfn;
	return *end > *first;
}

/* Page 0 is never used: it stays unmapped so that NULL faults. */
static uint64_t place_state_array(const struct boot_info *bi, uint64_t limit_pfn, uint64_t pages)
{
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		uint64_t first, end;
		if (bi->mem[i].type == BOOT_MEM_USABLE && usable_pfns(&bi->mem[i], limit_pfn, &first, &end) &&
		    first > 0 && end - first >= pages)
			return first << PAGE_SHIFT;
	}
	return 0;
}

int64_t mm_layout_plan(const struct boot_info *bi, struct pmm *pmm, mm_phys_to_virt_fn to_virt,
                       struct mm_layout *out)
{
	/* 9 bytes a frame up to the highest usable one: each round leaves the
	 * highest range out, so max_pfn falls strictly and the loop ends */
	uint64_t limit_pfn = UINT64_MAX >> PAGE_SHIFT;
	for (;;) {
		uint64_t max_pfn = 0, top_first = 0, first, end;
		for (uint32_t i = 0; i < bi->mem_count; i++)
			if (usable_pfns(&bi->mem[i], limit_pfn, &first, &end) && end > max_pfn) {
				max_pfn = end;
				top_first = first;
			}
		if (max_pfn == 0)
			return -1;
		uint64_t pages = max_pfn > PMM_MAX_PFN ? 0 : (pmm_meta_bytes(max_pfn) + PAGE_SIZE - 1) >> PAGE_SHIFT;
		uint64_t base = pages ? place_state_array(bi, limit_pfn, pages) : 0;
		if (base && pmm_init(pmm, to_virt(base), max_pfn) == 0) {
			*out = (struct mm_layout){ limit_pfn, max_pfn, base, pages };
			pmm_add_in_use(pmm, base, pages);
			return (int64_t)pages;
		}
		klog("mm: no usable range holds the page metadata for memory up to 0x%" PRIx64
		     "; leaving out memory from 0x%" PRIx64, max_pfn << PAGE_SHIFT, top_first << PAGE_SHIFT);
		limit_pfn = top_first;
	}
}

uint64_t mm_layout_add(const struct boot_info *bi, struct pmm *pmm, uint32_t type, const struct mm_layout *l)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_range *r = &bi->mem[i];
		uint64_t first, end;
		if (r->type != type || !usable_pfns(r, l->limit_pfn, &first, &end))
			continue;
		if (first << PAGE_SHIFT == l->state_base)
			first += l->state_pages;
		if (first >= end)
			continue;
		int64_t added = pmm_add_range(pmm, first << PAGE_SHIFT, (end - first) << PAGE_SHIFT);
		if (added < 0)
			klog("mm: usable range 0x%" PRIx64 "+0x%" PRIx64 " overlaps another; left out", r->base, r->size);
		else
			total += (uint64_t)added;
	}
	return total;
}
