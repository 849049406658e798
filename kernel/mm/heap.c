#include <errno.h>
#include <string.h>
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/heap.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/paging.h"

/* Pages are taken from the allocator when sbrk grows the heap, not when
 * they are touched: a touch can then never find memory gone (a fault has no
 * way to report failure; sbrk has, and malloc returns NULL). Each page is
 * still mapped and zeroed on first touch, which is the minor fault counted.
 * The reserved pages wait on a list linked through their own first word. */
static uint64_t brk = HEAP_BASE;
static uint64_t backed_pages;
static uint64_t minor_faults;
static uint64_t reserve_head = PMM_NO_PAGE;
static uint64_t reserved_pages;

static uint64_t page_up(uint64_t a) { return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

static void reserve_push(uint64_t pa)
{
	*(uint64_t *)phys_to_virt(pa) = reserve_head;
	reserve_head = pa;
	reserved_pages++;
}

static uint64_t reserve_pop(void)
{
	uint64_t pa = reserve_head;
	if (pa != PMM_NO_PAGE) {
		reserve_head = *(uint64_t *)phys_to_virt(pa);
		reserved_pages--;
	}
	return pa;
}

/* Takes `pages` pages and the page tables the range needs; all or none.
 * The pages come first: a growth that cannot have them (the usual failure)
 * then never builds tables, and tables built for a growth that fails after
 * all are freed again, or a failed `malloc(1G)` would keep 2 MiB of them. */
static int reserve(uint64_t va_start, uint64_t va_end)
{
	uint64_t pages = (va_end - va_start) / PAGE_SIZE, got = 0;
	for (; got < pages; got++) {
		uint64_t pa = page_alloc(0);
		if (pa == PMM_NO_PAGE)
			break;
		reserve_push(pa);
	}
	if (got == pages) {
		if (paging_prepare_tables(va_start, va_end) == 0)
			return 0;
		paging_release_tables(va_start, HEAP_REGION_END);
	}
	while (got--)
		page_free(reserve_pop(), 0);
	return -1;
}

void *heap_sbrk(intptr_t increment)
{
	uint64_t flags = irq_save();
	uint64_t old = brk;
	uint64_t new_brk = old + (uint64_t)increment;
	if ((increment > 0 && (new_brk > HEAP_BASE + HEAP_WINDOW || new_brk < old ||
	                       reserve(page_up(old), page_up(new_brk)) < 0)) ||
	    (increment < 0 && new_brk < HEAP_BASE)) {
		irq_restore(flags);
		errno = ENOMEM;
		return (void *)-1;
	}
	/* shrinking gives the whole pages above the new break back: the backed
	 * ones from the page tables, the untouched ones from the reserve */
	for (uint64_t va = page_up(new_brk); va < page_up(old); va += PAGE_SIZE) {
		uint64_t pa = paging_unmap_page(va);
		if (pa) {
			backed_pages--;
		} else {
			pa = reserve_pop();
			if (pa == PMM_NO_PAGE)
				panic("heap reserve empty while shrinking");
		}
		page_free(pa, 0);
	}
	brk = new_brk;
	irq_restore(flags);
	return (void *)(uintptr_t)old;
}

/* Runs in the #PF handler, interrupts off. */
int heap_handle_fault(uint64_t addr)
{
	if (addr < HEAP_BASE || addr >= brk)
		return -1;
	uint64_t pa = reserve_pop();
	if (pa == PMM_NO_PAGE)
		return -1; /* cannot happen: sbrk reserved a page for every page below the break */
	memset(phys_to_virt(pa), 0, PAGE_SIZE);
	if (paging_map_page(addr & ~(PAGE_SIZE - 1), pa, PTE_FLAGS_RAM) < 0) {
		reserve_push(pa);
		return -1;
	}
	backed_pages++;
	minor_faults++;
	return 0;
}

void heap_explain_fault(uint64_t addr)
{
	if (addr < HEAP_BASE || addr >= HEAP_BASE + HEAP_WINDOW)
		klog("page fault at 0x%" PRIx64 ": outside the heap window [0x%lx, 0x%lx)", addr,
		     (unsigned long)HEAP_BASE, (unsigned long)(HEAP_BASE + HEAP_WINDOW));
	else if (addr >= brk)
		klog("page fault at 0x%" PRIx64 ": in the heap window but beyond the break 0x%" PRIx64, addr, brk);
	else
		klog("page fault at 0x%" PRIx64 ": heap page could not be mapped", addr);
}

void heap_counters(struct heap_counters *out)
{
	uint64_t flags = irq_save();
	*out = (struct heap_counters){ brk - HEAP_BASE, backed_pages, minor_faults, reserved_pages };
	irq_restore(flags);
}
