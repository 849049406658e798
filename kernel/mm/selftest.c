/* Built-in checks of the memory manager, run with "selftest" on the
 * command line; the result leaves QEMU through isa-debug-exit. */
#include <stdlib.h>
#include <string.h>
#include "kernel/arch/arch.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/selftest.h"

static unsigned failures;

static void check(bool ok, const char *what)
{
	klog("selftest: %s %s", ok ? "ok  " : "FAIL", what);
	failures += !ok;
}

/* One block of every order: counters move by exactly what was asked. */
static void test_orders(void)
{
	struct mm_stats before, during, after;
	uint64_t blocks[PMM_ORDERS];
	uint64_t pages = 0;
	mm_stats(&before);
	bool all = true;
	for (unsigned o = 0; o < PMM_ORDERS; o++) {
		blocks[o] = page_alloc(o);
		all &= blocks[o] != PMM_NO_PAGE && !(blocks[o] & ((PAGE_SIZE << o) - 1));
		pages += 1ull << o;
		if (blocks[o] != PMM_NO_PAGE)
			memset(phys_to_virt(blocks[o]), (int)o, PAGE_SIZE << o);
	}
	check(all, "one aligned block of each order 0-9");
	mm_stats(&during);
	check(during.pmm.allocated_pages == before.pmm.allocated_pages + pages, "allocated grows by the pages taken");
	check(during.pmm.free_pages == before.pmm.free_pages - pages, "free shrinks by the pages taken");
	check(during.pmm.allocs == before.pmm.allocs + PMM_ORDERS, "allocation counter");
	check(during.pmm.huge_allocs == before.pmm.huge_allocs + 1, "2 MiB allocation counter");
	bool intact = true;
	for (unsigned o = 0; o < PMM_ORDERS; o++) {
		if (blocks[o] == PMM_NO_PAGE)
			continue;
		const uint8_t *b = phys_to_virt(blocks[o]);
		intact &= b[0] == o && b[(PAGE_SIZE << o) - 1] == o;
		page_free(blocks[o], o);
	}
	check(intact, "block contents survive the other allocations");
	mm_stats(&after);
	check(after.pmm.free_pages == before.pmm.free_pages, "free pages restored after freeing");
	check(after.pmm.frees == before.pmm.frees + PMM_ORDERS, "free counter");
	check(mm_invariant_holds(true), "invariant after orders test");
}

/* Takes every page, chaining them through their own first word, then gives
 * them back: the allocator must fail exactly at exhaustion and merge back
 * to the same free-block shape. */
static void test_exhaustion(void)
{
	struct mm_stats before, empty, after;
	mm_stats(&before);
	uint64_t head = PMM_NO_PAGE, count = 0, pa;
	while ((pa = page_alloc(0)) != PMM_NO_PAGE) {
		*(uint64_t *)phys_to_virt(pa) = head;
		head = pa;
		count++;
	}
	mm_stats(&empty);
	check(count == before.pmm.free_pages, "exhaustion hands out every free page");
	check(empty.pmm.free_pages == 0, "free is zero when exhausted");
	check(empty.pmm.alloc_failures == before.pmm.alloc_failures + 1, "failed allocation counted");
	while (head != PMM_NO_PAGE) {
		uint64_t next = *(uint64_t *)phys_to_virt(head);
		page_free(head, 0);
		head = next;
	}
	mm_stats(&after);
	check(after.pmm.free_pages == before.pmm.free_pages, "every page comes back");
	check(memcmp(after.pmm.free_blocks, before.pmm.free_blocks, sizeof(before.pmm.free_blocks)) == 0,
	      "buddies merge back to the same free blocks");
	check(mm_invariant_holds(true), "invariant after exhaustion");
}

/* malloc grows the heap through sbrk; touching it takes one minor fault per
 * new page, each backed by one allocated page. */
static void test_heap(void)
{
	const size_t size = 1 << 20;
	struct mm_stats before, after;
	mm_stats(&before);
	uint8_t *p = malloc(size);
	check(p != NULL, "malloc of 1 MiB");
	if (!p)
		return;
	for (size_t i = 0; i < size; i += PAGE_SIZE)
		p[i] = 1;
	mm_stats(&after);
	uint64_t faults = after.heap.minor_faults - before.heap.minor_faults;
	uint64_t backed = after.heap.backed_pages - before.heap.backed_pages;
	uint64_t tables = after.page_table_pages - before.page_table_pages;
	int64_t reserved = (int64_t)after.heap.reserved_pages - (int64_t)before.heap.reserved_pages;
	check(faults >= size / PAGE_SIZE && faults <= size / PAGE_SIZE + 2, "one minor fault per new heap page");
	check(backed == faults, "each fault backs one page");
	check((int64_t)(after.pmm.allocated_pages - before.pmm.allocated_pages) == (int64_t)(backed + tables) + reserved,
	      "allocated grows by heap pages (backed or reserved) plus page tables");
	check(after.heap.reserved_pages + after.heap.backed_pages ==
	      (((after.heap.brk_bytes + PAGE_SIZE - 1) / PAGE_SIZE)),
	      "every page below the break is backed or reserved");
	bool zeroed = true;
	for (size_t i = 1; i < size; i += 997)
		zeroed &= (i % PAGE_SIZE == 0) || p[i] == 0;
	check(zeroed, "demand-faulted pages are zeroed");
	free(p);
	check(mm_invariant_holds(true), "invariant after heap test");
}

_Noreturn void mm_selftest(void)
{
	klog("selftest: start");
	check(mm_invariant_holds(true), "invariant at start");
	test_orders();
	test_exhaustion();
	test_heap();
	klog("selftest: %s (%u failed)", failures ? "FAIL" : "PASS", failures);
	arch_exit(failures ? EXIT_STATUS_FAIL : EXIT_STATUS_PASS);
}
