/* The cache is a FIFO of pages linked through their first word: a cache
 * page holds "data", so writing into it is what a real cache does anyway.
 * Reclaim takes the oldest first; every page scanned is reclaimable, so
 * scanned and reclaimed move together (no referenced bits to age). */
#include "kernel/arch/cpu.h"
#include "kernel/mm/cache.h"
#include "kernel/mm/mm.h"

/* Async reclaim keeps free memory above 1/64 of the managed pages (at
 * least 256 pages), refilling to twice that. */
#define WATERMARK_DIVISOR 64
#define WATERMARK_MIN     256
#define CACHE_FILL_BYTE   0xca

static uint64_t head = PMM_NO_PAGE, tail = PMM_NO_PAGE;
static struct cache_counters c;

static uint64_t *link_of(uint64_t pa) { return phys_to_virt(pa); }

uint64_t cache_low_watermark(void)
{
	struct mm_stats s;
	mm_stats(&s);
	uint64_t w = s.pmm.managed_pages / WATERMARK_DIVISOR;
	return w < WATERMARK_MIN ? WATERMARK_MIN : w;
}

uint64_t cache_high_watermark(void) { return 2 * cache_low_watermark(); }

uint64_t cache_grow(uint64_t pages)
{
	uint64_t got = 0;
	for (; got < pages; got++) {
		/* a cache grows only into free memory: never by reclaiming itself or
		 * the balloon, and stopping at empty is not a failed allocation */
		struct mm_stats s;
		mm_stats(&s);
		if (s.pmm.free_pages == 0)
			break;
		uint64_t pa = page_alloc_noreclaim(0);
		if (pa == PMM_NO_PAGE)
			break;
		uint8_t *data = phys_to_virt(pa);
		for (uint64_t i = sizeof(uint64_t); i < PAGE_SIZE; i += 512)
			data[i] = CACHE_FILL_BYTE;
		*link_of(pa) = PMM_NO_PAGE;
		uint64_t flags = irq_save();
		if (tail == PMM_NO_PAGE)
			head = pa;
		else
			*link_of(tail) = pa;
		tail = pa;
		c.pages++;
		irq_restore(flags);
	}
	return got;
}

static uint64_t pop(void)
{
	uint64_t flags = irq_save();
	uint64_t pa = head;
	if (pa != PMM_NO_PAGE) {
		head = *link_of(pa);
		if (head == PMM_NO_PAGE)
			tail = PMM_NO_PAGE;
		c.pages--;
	}
	irq_restore(flags);
	return pa;
}

uint64_t cache_reclaim(uint64_t pages, bool direct)
{
	uint64_t got = 0, pa;
	while (got < pages && (pa = pop()) != PMM_NO_PAGE) {
		page_free(pa, 0);
		got++;
	}
	uint64_t flags = irq_save();
	if (direct) {
		c.direct_scan += got;
		c.direct_reclaim += got;
	} else {
		c.async_scan += got;
		c.async_reclaim += got;
	}
	irq_restore(flags);
	return got;
}

uint64_t cache_drop(void)
{
	uint64_t got = 0, pa;
	while ((pa = pop()) != PMM_NO_PAGE) {
		page_free(pa, 0);
		got++;
	}
	return got;
}

void cache_balance(void)
{
	struct mm_stats s;
	mm_stats(&s);
	uint64_t low = cache_low_watermark();
	if (s.pmm.free_pages >= low || c.pages == 0)
		return;
	cache_reclaim(cache_high_watermark() - s.pmm.free_pages, false);
}

void cache_count_stall(void)
{
	uint64_t flags = irq_save();
	c.alloc_stalls++;
	irq_restore(flags);
}

void cache_count_oom_kill(void)
{
	uint64_t flags = irq_save();
	c.oom_kills++;
	irq_restore(flags);
}

void cache_counters(struct cache_counters *out)
{
	uint64_t flags = irq_save();
	*out = c;
	irq_restore(flags);
}
