#include <errno.h>
#include <string.h>
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/heap.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/paging.h"

static uint64_t brk = HEAP_BASE;
static uint64_t backed_pages;
static uint64_t minor_faults;

static uint64_t page_up(uint64_t a) { return (a + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

void *heap_sbrk(intptr_t increment)
{
	uint64_t flags = irq_save();
	uint64_t old = brk;
	uint64_t new_brk = old + (uint64_t)increment;
	if ((increment > 0 && new_brk > HEAP_BASE + HEAP_WINDOW) ||
	    (increment < 0 && new_brk < HEAP_BASE) || (increment > 0 && new_brk < old)) {
		irq_restore(flags);
		errno = ENOMEM;
		return (void *)-1;
	}
	/* shrinking gives whole pages above the new break back to the allocator */
	for (uint64_t va = page_up(new_brk); va < page_up(old); va += PAGE_SIZE) {
		uint64_t pa = paging_unmap_page(va);
		if (pa) {
			page_free(pa, 0);
			backed_pages--;
		}
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
	uint64_t pa = page_alloc(0);
	if (pa == PMM_NO_PAGE)
		return -1;
	memset(phys_to_virt(pa), 0, PAGE_SIZE);
	if (paging_map_page(addr & ~(PAGE_SIZE - 1), pa, PTE_FLAGS_RAM) < 0) {
		page_free(pa, 0);
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
		klog("page fault at 0x%" PRIx64 ": heap page could not be backed (out of memory)", addr);
}

void heap_counters(struct heap_counters *out)
{
	uint64_t flags = irq_save();
	*out = (struct heap_counters){ brk - HEAP_BASE, backed_pages, minor_faults };
	irq_restore(flags);
}
