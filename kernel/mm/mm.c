/* Bring-up of the memory manager from the boot map, and the locked entry
 * points the rest of the kernel uses. */
#include <inttypes.h>
#include <string.h>
#include "kernel/arch/cpu.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"
#include "kernel/mm/cache.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/mm_layout.h"
#include "kernel/mm/paging.h"
#include "kernel/work.h"

/* Freed pages are filled with this in debug builds, to make use after free
 * visible (as xv6's kfree does). */
#define PAGE_JUNK 0x6b

static struct pmm pmm;
static uint64_t usable_pages;
static mm_oom_handler_fn oom_handler;
static bool all_ranges_added; /* until then managed < usable, by design */
static bool poison_on_free;    /* PAGE_POISON negotiated: freed pages hold poison_byte */
static uint8_t poison_byte;

static void *direct_map(uint64_t pa) { return phys_to_virt(pa); }

void mm_init(const struct boot_info *bi)
{
	struct mm_layout layout;
	int64_t state_pages = mm_layout_plan(bi, &pmm, direct_map, &layout);
	if (state_pages < 0)
		panic("no usable memory in the boot map");
	usable_pages = (uint64_t)state_pages + mm_layout_add(bi, &pmm, BOOT_MEM_USABLE, &layout);
	if (paging_init(bi) < 0)
		panic("out of memory building page tables");
	/* Only now, on our own page tables and stack, is the firmware's
	 * boot-time memory free to reuse. */
	usable_pages += mm_layout_add(bi, &pmm, BOOT_MEM_BOOT_RECLAIMABLE, &layout);
	all_ranges_added = true;
	if (!mm_invariant_holds(true))
		panic("memory manager inconsistent after init");
}

#ifdef BALLAST_DEBUG
static void check_counters(void)
{
	if (pmm.c.managed_pages != pmm.c.free_pages + pmm.c.allocated_pages ||
	    (all_ranges_added && pmm.c.managed_pages + pmm.c.offline_pages != usable_pages))
		panic("managed %" PRIu64 " != free %" PRIu64 " + allocated %" PRIu64 " or + offline %" PRIu64
		      " != usable %" PRIu64, pmm.c.managed_pages, pmm.c.free_pages, pmm.c.allocated_pages,
		      pmm.c.offline_pages, usable_pages);
}
#else
static void check_counters(void) {}
#endif

static void free_block(uint64_t pa, unsigned order, bool junk)
{
	uint64_t flags = irq_save();
	if (!pmm_is_allocated(&pmm, pa, order))
		panic("bad free of 0x%" PRIx64 " order %u", pa, order);
	if (junk && poison_on_free)
		memset(phys_to_virt(pa), poison_byte, PAGE_SIZE << order);
#ifdef BALLAST_DEBUG
	else if (junk)
		memset(phys_to_virt(pa), PAGE_JUNK, PAGE_SIZE << order);
#endif
	pmm_free(&pmm, pa, order);
	check_counters();
	irq_restore(flags);
}

void page_free(uint64_t pa, unsigned order) { free_block(pa, order, true); }

void mm_set_oom_handler(mm_oom_handler_fn fn) { oom_handler = fn; }

void mm_set_free_poison(bool on, uint8_t value)
{
	poison_on_free = on;
	poison_byte = value;
}

uint64_t mm_report_isolate(unsigned order)
{
	uint64_t flags = irq_save();
	uint64_t pa = pmm_isolate_unreported(&pmm, order);
	check_counters();
	irq_restore(flags);
	if (pa != PMM_NO_PAGE && poison_on_free)
		memset(phys_to_virt(pa), poison_byte, PAGE_SIZE << order);
	return pa;
}

void mm_report_putback(uint64_t pa, unsigned order)
{
	uint64_t flags = irq_save();
	if (pmm_putback_reported(&pmm, pa, order) < 0)
		panic("reported block 0x%" PRIx64 " order %u was not isolated", pa, order);
	check_counters();
	irq_restore(flags);
}

uint64_t page_alloc_noreclaim(unsigned order)
{
	uint64_t flags = irq_save();
	uint64_t pa = pmm_alloc(&pmm, order);
	check_counters();
	irq_restore(flags);
	return pa;
}

/* When the free lists cannot serve a request: reclaim the cache first
 * (direct reclaim: the allocation stalls), then ask the balloon to deflate
 * (DEFLATE_ON_OOM), as Linux calls its OOM notifiers only after reclaim.
 * A request counts once: as a success, or as one failure at the end. */
uint64_t page_alloc(unsigned order)
{
	uint64_t flags = irq_save();
	uint64_t pa = pmm_try_alloc(&pmm, order);
	uint64_t wanted = 1ull << order;
	if (pa == PMM_NO_PAGE) {
		struct cache_counters cc;
		cache_counters(&cc);
		if (cc.pages) {
			cache_count_stall();
			if (cache_reclaim(2 * wanted, true) > 0)
				pa = pmm_try_alloc(&pmm, order);
		}
	}
	if (pa == PMM_NO_PAGE && oom_handler && oom_handler(wanted) > 0)
		pa = pmm_try_alloc(&pmm, order);
	if (pa == PMM_NO_PAGE)
		pmm_count_failure(&pmm, order);
	check_counters();
	irq_restore(flags);
	return pa;
}

uint64_t mm_balloon_inflate_take(bool offline)
{
	uint64_t flags = irq_save();
	uint64_t pa = PMM_NO_PAGE;
	struct cache_counters cc;
	cache_counters(&cc);
	/* at the reserve, the cache gives way to the balloon (as Linux
	 * reclaims for it); the reserve itself does not */
	if (pmm.c.free_pages > MM_BALLOON_RESERVE_PAGES ||
	    (cc.pages && cache_reclaim(MM_BALLOON_RECLAIM_BATCH, true) > 0))
		pa = mm_balloon_take(offline);
	irq_restore(flags);
	return pa;
}

uint64_t mm_balloon_take(bool offline)
{
	uint64_t flags = irq_save();
	uint64_t pa = pmm_alloc(&pmm, 0);
	if (pa != PMM_NO_PAGE && offline)
		pmm_offline(&pmm, pa);
	check_counters();
	irq_restore(flags);
	return pa;
}

void mm_balloon_keep(uint64_t pa, bool offline)
{
	uint64_t flags = irq_save();
	if (offline && pmm_online(&pmm, pa) < 0)
		panic("balloon kept 0x%" PRIx64 ", which is not an offline page", pa);
	check_counters();
	irq_restore(flags);
}

void mm_balloon_give(uint64_t pa, bool offline)
{
	uint64_t flags = irq_save();
	if (offline && pmm_online(&pmm, pa) < 0)
		panic("balloon gave back 0x%" PRIx64 ", which is not an offline page", pa);
	irq_restore(flags);
	/* no junk: nothing in the kernel pointed into a ballooned page, and
	 * writing it would make the host back it again for nothing */
	free_block(pa, 0, false);
}



/* Async reclaim: a look every 100 ms, from the idle loop. */
#define CACHE_BALANCE_TICKS (100 / TIMER_TICK_MS)
static struct work balance_work;

static void balance(void *ctx)
{
	(void)ctx;
	cache_balance();
}

static void balance_tick(void *ctx)
{
	static uint64_t ticks;
	(void)ctx;
	if (++ticks % CACHE_BALANCE_TICKS == 0)
		work_queue(&balance_work);
}

void mm_start(void)
{
	balance_work = (struct work){ .fn = balance };
	timer_add_tick_handler(balance_tick, NULL);
}

void mm_stats(struct mm_stats *out)
{
	uint64_t flags = irq_save();
	out->pmm = pmm.c;
	heap_counters(&out->heap);
	out->usable_pages = usable_pages;
	out->page_table_pages = paging_table_pages();
	cache_counters(&out->cache);
	irq_restore(flags);
}

bool mm_invariant_holds(bool full)
{
	uint64_t flags = irq_save();
	bool ok = pmm.c.managed_pages == pmm.c.free_pages + pmm.c.allocated_pages &&
	          pmm.c.managed_pages + pmm.c.offline_pages == usable_pages && (!full || pmm_check(&pmm));
	irq_restore(flags);
	return ok;
}
