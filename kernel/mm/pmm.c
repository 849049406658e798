/* Buddy allocator. A free block of order k is 2^k frames aligned to 2^k
 * frames; its buddy differs in bit k of the frame number. Free blocks are
 * kept on one doubly-linked list per order, linked through a per-frame
 * array (never through the free memory: see pmm.h), and one state byte per
 * frame says what the frame is, so that freeing can find out in O(1)
 * whether the buddy is a free block of the same order. */
#include <string.h>
#include "kernel/mm/pmm.h"

/* Per-frame state byte. */
#define STATE_UNMANAGED 0xff /* not RAM the allocator owns */
#define STATE_INSIDE    0x00 /* managed, not the first frame of a block */
#define STATE_FREE      0x80 /* | order: first frame of a free block */
#define STATE_ALLOC     0x40 /* | order: first frame of an allocated block */
#define STATE_OFFLINE   0x20 /* taken out of the managed pool (given to the host) */
#define STATE_REPORTED  0x10 /* on a free head: reported to the host as free */
#define STATE_ISOLATED  (STATE_ALLOC | STATE_REPORTED) /* | order: first frame of a
                                                        * block isolated for reporting */
#define STATE_ORDER_MASK 0x0f

uintptr_t pmm_direct_map_offset;

static void list_push(struct pmm *p, uint64_t pfn, unsigned order)
{
	uint32_t first = p->free_head[order];
	p->link[pfn] = (struct pmm_link){ first, PMM_LIST_END };
	if (first != PMM_LIST_END)
		p->link[first].prev = (uint32_t)pfn;
	else
		p->free_tail[order] = (uint32_t)pfn;
	p->free_head[order] = (uint32_t)pfn;
	p->state[pfn] = STATE_FREE | order;
	p->c.free_blocks[order]++;
	p->c.free_pages += 1ull << order;
}

static void list_remove(struct pmm *p, uint64_t pfn, unsigned order)
{
	struct pmm_link l = p->link[pfn];
	if (l.prev != PMM_LIST_END)
		p->link[l.prev].next = l.next;
	else
		p->free_head[order] = l.next;
	if (l.next != PMM_LIST_END)
		p->link[l.next].prev = l.prev;
	else
		p->free_tail[order] = l.prev;
	p->state[pfn] = STATE_INSIDE;
	p->c.free_blocks[order]--;
	p->c.free_pages -= 1ull << order;
}

uint64_t pmm_meta_bytes(uint64_t max_pfn)
{
	/* links first, for their alignment */
	return max_pfn * (sizeof(struct pmm_link) + 1);
}

int pmm_init(struct pmm *p, void *meta, uint64_t max_pfn)
{
	if (max_pfn > PMM_MAX_PFN || ((uintptr_t)meta & 7))
		return -1;
	*p = (struct pmm){ .link = meta, .state = (uint8_t *)meta + max_pfn * sizeof(struct pmm_link),
	                   .max_pfn = max_pfn };
	memset(p->state, STATE_UNMANAGED, max_pfn);
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		p->free_head[o] = p->free_tail[o] = PMM_LIST_END;
	return 0;
}

static bool is_free_head(uint8_t state, unsigned order) { return (state & ~STATE_REPORTED) == (STATE_FREE | order); }

/* Puts a block on the free lists, merging it with free buddies (a merged
 * block is no longer known to the host as reported). Returns the order it
 * ended up as. */
static unsigned free_block(struct pmm *p, uint64_t pfn, unsigned order)
{
	while (order < PMM_MAX_ORDER) {
		uint64_t buddy = pfn ^ (1ull << order);
		if (buddy >= p->max_pfn || !is_free_head(p->state[buddy], order))
			break;
		list_remove(p, buddy, order);
		pfn &= ~(1ull << order);
		order++;
	}
	list_push(p, pfn, order);
	return order;
}

static unsigned largest_order_at(uint64_t pfn, uint64_t pages_left)
{
	unsigned order = 0;
	while (order < PMM_MAX_ORDER && !(pfn & (1ull << order)) && (2ull << order) <= pages_left)
		order++;
	return order;
}

int64_t pmm_add_range(struct pmm *p, uint64_t base, uint64_t size)
{
	uint64_t first = (base + PAGE_SIZE - 1) >> PAGE_SHIFT;
	uint64_t end = (base + size) >> PAGE_SHIFT;
	if (base + size < base || end > p->max_pfn)
		return -1;
	for (uint64_t pfn = first; pfn < end; pfn++)
		if (p->state[pfn] != STATE_UNMANAGED)
			return -1;
	if (end > first)
		memset(p->state + first, STATE_INSIDE, end - first);
	for (uint64_t pfn = first; pfn < end;) {
		unsigned order = largest_order_at(pfn, end - pfn);
		p->c.managed_pages += 1ull << order;
		free_block(p, pfn, order);
		pfn += 1ull << order;
	}
	return end > first ? (int64_t)(end - first) : 0;
}

void pmm_add_in_use(struct pmm *p, uint64_t base, uint64_t pages)
{
	for (uint64_t i = 0; i < pages; i++)
		p->state[(base >> PAGE_SHIFT) + i] = STATE_INSIDE;
	p->c.managed_pages += pages;
	p->c.allocated_pages += pages;
}

void pmm_count_failure(struct pmm *p, unsigned order)
{
	p->c.alloc_failures++;
	if (order == PMM_HUGE_ORDER)
		p->c.huge_failures++;
}

uint64_t pmm_alloc(struct pmm *p, unsigned order)
{
	uint64_t pa = pmm_try_alloc(p, order);
	if (pa == PMM_NO_PAGE)
		pmm_count_failure(p, order);
	return pa;
}

uint64_t pmm_try_alloc(struct pmm *p, unsigned order)
{
	if (order > PMM_MAX_ORDER)
		return PMM_NO_PAGE;
	unsigned o = order;
	while (o < PMM_ORDERS && p->free_head[o] == PMM_LIST_END)
		o++;
	if (o == PMM_ORDERS)
		return PMM_NO_PAGE;
	uint64_t pfn = p->free_head[o];
	list_remove(p, pfn, o);
	/* split: the upper half of each larger block goes back on a list */
	while (o > order) {
		o--;
		list_push(p, pfn + (1ull << o), o);
	}
	p->state[pfn] = STATE_ALLOC | order;
	p->c.allocated_pages += 1ull << order;
	p->c.allocs++;
	if (order == PMM_HUGE_ORDER)
		p->c.huge_allocs++;
	return pfn << PAGE_SHIFT;
}

bool pmm_is_allocated(const struct pmm *p, uint64_t pa, unsigned order)
{
	uint64_t pfn = pa >> PAGE_SHIFT;
	return !(pa & (PAGE_SIZE - 1)) && order <= PMM_MAX_ORDER && pfn < p->max_pfn &&
	       p->state[pfn] == (STATE_ALLOC | order);
}

int pmm_free(struct pmm *p, uint64_t pa, unsigned order)
{
	uint64_t pfn = pa >> PAGE_SHIFT;
	if (!pmm_is_allocated(p, pa, order))
		return -1;
	p->state[pfn] = STATE_INSIDE;
	p->c.allocated_pages -= 1ull << order;
	p->c.frees++;
	free_block(p, pfn, order);
	return 0;
}

int pmm_offline(struct pmm *p, uint64_t pa)
{
	if (!pmm_is_allocated(p, pa, 0))
		return -1;
	p->state[pa >> PAGE_SHIFT] = STATE_OFFLINE;
	p->c.allocated_pages--;
	p->c.managed_pages--;
	p->c.offline_pages++;
	return 0;
}

int pmm_online(struct pmm *p, uint64_t pa)
{
	uint64_t pfn = pa >> PAGE_SHIFT;
	if ((pa & (PAGE_SIZE - 1)) || pfn >= p->max_pfn || p->state[pfn] != STATE_OFFLINE)
		return -1;
	p->state[pfn] = STATE_ALLOC;
	p->c.offline_pages--;
	p->c.managed_pages++;
	p->c.allocated_pages++;
	return 0;
}

uint64_t pmm_isolate_unreported(struct pmm *p, unsigned order)
{
	if (order > PMM_MAX_ORDER)
		return PMM_NO_PAGE;
	for (uint32_t pfn = p->free_head[order]; pfn != PMM_LIST_END; pfn = p->link[pfn].next) {
		if (p->state[pfn] & STATE_REPORTED)
			continue;
		list_remove(p, pfn, order);
		/* not STATE_ALLOC: pmm_free must refuse it, pmm_putback_reported
		 * must refuse a block someone allocated */
		p->state[pfn] = STATE_ISOLATED | order;
		p->c.allocated_pages += 1ull << order;
		return (uint64_t)pfn << PAGE_SHIFT;
	}
	return PMM_NO_PAGE;
}

int pmm_putback_reported(struct pmm *p, uint64_t pa, unsigned order)
{
	uint64_t pfn = pa >> PAGE_SHIFT;
	if ((pa & (PAGE_SIZE - 1)) || order > PMM_MAX_ORDER || pfn >= p->max_pfn ||
	    p->state[pfn] != (STATE_ISOLATED | order))
		return -1;
	p->state[pfn] = STATE_INSIDE;
	p->c.allocated_pages -= 1ull << order;
	if (free_block(p, pfn, order) == order) {
		/* to the tail: allocation takes from the head, so memory the host
		 * still backs goes first, and the next isolate finds unreported
		 * blocks without walking past reported ones */
		list_remove(p, pfn, order);
		uint32_t last = p->free_tail[order];
		p->link[pfn] = (struct pmm_link){ PMM_LIST_END, last };
		if (last != PMM_LIST_END)
			p->link[last].next = (uint32_t)pfn;
		else
			p->free_head[order] = (uint32_t)pfn;
		p->free_tail[order] = (uint32_t)pfn;
		p->state[pfn] = STATE_FREE | STATE_REPORTED | order;
		p->c.free_blocks[order]++;
		p->c.free_pages += 1ull << order;
	}
	return 0;
}

bool pmm_check(const struct pmm *p)
{
	const struct pmm_counters *c = &p->c;
	if (c->managed_pages != c->free_pages + c->allocated_pages)
		return false;
	uint64_t free_pages = 0;
	for (unsigned o = 0; o < PMM_ORDERS; o++) {
		uint64_t blocks = 0;
		uint32_t prev = PMM_LIST_END;
		for (uint32_t pfn = p->free_head[o]; pfn != PMM_LIST_END; prev = pfn, pfn = p->link[pfn].next) {
			if (pfn >= p->max_pfn || !is_free_head(p->state[pfn], o) || (pfn & ((1ull << o) - 1)) ||
			    p->link[pfn].prev != prev)
				return false;
			if (++blocks > c->free_blocks[o])
				return false; /* also stops a corrupted, cyclic list */
		}
		if (blocks != c->free_blocks[o] || p->free_tail[o] != prev)
			return false;
		free_pages += blocks << o;
	}
	if (free_pages != c->free_pages)
		return false;
	uint64_t managed = 0, offline = 0;
	for (uint64_t pfn = 0; pfn < p->max_pfn; pfn++) {
		offline += p->state[pfn] == STATE_OFFLINE;
		managed += p->state[pfn] != STATE_UNMANAGED && p->state[pfn] != STATE_OFFLINE;
	}
	return managed == c->managed_pages && offline == c->offline_pages;
}
