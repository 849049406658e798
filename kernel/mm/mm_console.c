/* Console commands of the memory manager: the counters, and workloads that
 * change them on demand (mem alloc / free / touch / huge). */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernel/console/console.h"
#include "kernel/console/parse.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/mm_console.h"
#include "lib/util.h"
#include "kernel/arch/timer.h"
#include "kernel/work.h"

#define MEM_ALLOCS_MAX 64
#define MEM_SHOW_EXTRA_MAX 512

struct mem_block {
	uint64_t pa;
	uint8_t order;
};

/* Blocks are recorded in heap chunks of about a page, added as needed: an
 * allocation pays for its bookkeeping as it goes, not for a worst case up
 * front (sbrk takes the heap's pages when it grows), and no realloc is
 * needed (newlib 3.3's nano realloc copies the new size out of the old
 * block, reading past its end). */
#define MEM_CHUNK_BLOCKS 255

struct mem_chunk {
	struct mem_chunk *next;
	uint32_t n;
	struct mem_block b[MEM_CHUNK_BLOCKS];
};

struct mem_alloc {
	uint32_t id;            /* 0 = slot unused */
	uint64_t bytes;
	uint32_t nblocks;
	struct mem_chunk *chunks; /* page blocks */
	void *heap;               /* mem touch: malloc'ed and touched */
};

static int add_block(struct mem_alloc *a, uint64_t pa, unsigned order)
{
	if (!a->chunks || a->chunks->n == MEM_CHUNK_BLOCKS) {
		struct mem_chunk *c = malloc(sizeof(*c));
		if (!c)
			return -1;
		c->next = a->chunks;
		c->n = 0;
		a->chunks = c;
	}
	a->chunks->b[a->chunks->n++] = (struct mem_block){ pa, (uint8_t)order };
	a->nblocks++;
	a->bytes += PAGE_SIZE << order;
	return 0;
}

static struct mem_alloc allocs[MEM_ALLOCS_MAX];
static uint32_t next_id = 1;
static mm_console_extra_fn show_extra;

void mm_console_set_extra(mm_console_extra_fn fn) { show_extra = fn; }

static void mem_show(void)
{
	struct mm_stats s;
	mm_stats(&s);
	char blocks[PMM_ORDERS * 21];
	char extra[MEM_SHOW_EXTRA_MAX] = "";
	size_t n = 0;
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		n += (size_t)snprintf(blocks + n, sizeof(blocks) - n, "%s%" PRIu64, o ? "," : "", s.pmm.free_blocks[o]);
	if (show_extra)
		show_extra(extra, sizeof(extra));
	/* newlib's nano malloc walks its free list for this: bytes in live
	 * chunks, headers included. The break only keeps a high-water mark;
	 * this is what lets a test see a leak of a few bytes. */
	struct mallinfo heap = mallinfo();
	console_ok("usable=%" PRIu64 " managed=%" PRIu64 " free=%" PRIu64 " allocated=%" PRIu64 " cached=%" PRIu64
	           " offline=%" PRIu64
	           " allocs=%" PRIu64 " frees=%" PRIu64 " alloc_failures=%" PRIu64
	           " huge_allocs=%" PRIu64 " huge_failures=%" PRIu64 " minor_faults=%" PRIu64
	           " heap_bytes=%" PRIu64 " heap_pages=%" PRIu64 " heap_reserved=%" PRIu64 " heap_in_use=%" PRIu64
	           " page_tables=%" PRIu64 " free_blocks=%s"
	           " direct_scan=%" PRIu64 " direct_reclaim=%" PRIu64 " async_scan=%" PRIu64 " async_reclaim=%" PRIu64
	           " alloc_stalls=%" PRIu64 " oom_kills=%" PRIu64 "%s",
	           s.usable_pages, s.pmm.managed_pages, s.pmm.free_pages, s.pmm.allocated_pages, s.cache.pages,
	           s.pmm.offline_pages,
	           s.pmm.allocs, s.pmm.frees, s.pmm.alloc_failures, s.pmm.huge_allocs, s.pmm.huge_failures,
	           s.heap.minor_faults, s.heap.brk_bytes, s.heap.backed_pages, s.heap.reserved_pages, (uint64_t)heap.uordblks,
	           s.page_table_pages, blocks,
	           s.cache.direct_scan, s.cache.direct_reclaim, s.cache.async_scan, s.cache.async_reclaim,
	           s.cache.alloc_stalls, s.cache.oom_kills, extra);
}

static struct mem_alloc *new_alloc(void)
{
	for (unsigned i = 0; i < MEM_ALLOCS_MAX; i++)
		if (!allocs[i].id) {
			allocs[i] = (struct mem_alloc){ .id = next_id++ };
			return &allocs[i];
		}
	return NULL;
}

static uint64_t release(struct mem_alloc *a)
{
	for (struct mem_chunk *c = a->chunks, *next; c; c = next) {
		for (uint32_t i = 0; i < c->n; i++)
			page_free(c->b[i].pa, c->b[i].order);
		next = c->next;
		free(c);
	}
	free(a->heap);
	uint64_t bytes = a->bytes;
	*a = (struct mem_alloc){ 0 };
	return bytes;
}

/* The largest order that fits what is left and that the allocator can give
 * without failing: trying orders blindly would count failed (and failed
 * 2 MiB) allocations that no one asked for. */
static unsigned pick_order(uint64_t pages_left, const struct mm_stats *s)
{
	unsigned order = 0;
	while (order < PMM_MAX_ORDER && (2ull << order) <= pages_left)
		order++;
	for (; order > 0; order--)
		for (unsigned o = order; o < PMM_ORDERS; o++)
			if (s->pmm.free_blocks[o])
				return order;
	return 0;
}

static void mem_alloc(const char *size_arg)
{
	uint64_t bytes;
	if (!parse_size(size_arg, &bytes) || bytes == 0) {
		console_err("bad size '%s' (bytes, or with K, M, G)", size_arg);
		return;
	}
	uint64_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
	struct mm_stats s;
	mm_stats(&s);
	if (pages > s.usable_pages) {
		console_err("size exceeds the guest's memory (%" PRIu64 " pages)", s.usable_pages);
		return;
	}
	struct mem_alloc *a = new_alloc();
	if (!a) {
		console_err("too many allocations (at most %d); free some", MEM_ALLOCS_MAX);
		return;
	}
	uint64_t left = pages;
	while (left) {
		mm_stats(&s);
		unsigned order = pick_order(left, &s);
		uint64_t pa = page_alloc(order);
		if (pa == PMM_NO_PAGE)
			break;
		if (add_block(a, pa, order) < 0) {
			page_free(pa, order);
			break;
		}
		left -= left < (1ull << order) ? left : (1ull << order);
	}
	if (left) {
		uint64_t got = a->bytes;
		release(a);
		cache_count_oom_kill(); /* the workload dies, as Linux's OOM killer would end it */
		console_err("out of memory after %" PRIu64 " of %" PRIu64 " bytes; nothing kept", got, pages * PAGE_SIZE);
		return;
	}
	/* use the memory, as a workload would: one write a page makes the host
	 * back every page (visible in its RSS) */
	for (struct mem_chunk *c = a->chunks; c; c = c->next)
		for (uint32_t i = 0; i < c->n; i++)
			for (uint64_t off = 0; off < (PAGE_SIZE << c->b[i].order); off += PAGE_SIZE)
				*(volatile uint8_t *)phys_to_virt(c->b[i].pa + off) = 1;
	console_ok("id=%" PRIu32 " bytes=%" PRIu64 " blocks=%" PRIu32, a->id, a->bytes, a->nblocks);
}

static void mem_touch(const char *size_arg)
{
	uint64_t bytes;
	if (!parse_size(size_arg, &bytes) || bytes == 0 || bytes > HEAP_WINDOW) {
		console_err("bad size '%s'", size_arg);
		return;
	}
	struct mem_alloc *a = new_alloc();
	if (!a) {
		console_err("too many allocations (at most %d); free some", MEM_ALLOCS_MAX);
		return;
	}
	struct mm_stats before, after;
	mm_stats(&before);
	uint8_t *p = malloc(bytes);
	if (!p) {
		*a = (struct mem_alloc){ 0 };
		console_err("heap cannot grow by %" PRIu64 " bytes", bytes);
		return;
	}
	/* one write a page: each first touch of a new heap page is a demand fault */
	for (uint64_t off = 0; off < bytes; off += PAGE_SIZE)
		((volatile uint8_t *)p)[off] = 1;
	mm_stats(&after);
	a->heap = p;
	a->bytes = bytes;
	console_ok("id=%" PRIu32 " bytes=%" PRIu64 " minor_faults=%" PRIu64, a->id, bytes,
	           after.heap.minor_faults - before.heap.minor_faults);
}

static void mem_huge(const char *count_arg)
{
	uint64_t n;
	if (!parse_u64(count_arg, &n) || n == 0 || n > 4096) {
		console_err("bad count '%s' (1 to 4096)", count_arg);
		return;
	}
	struct mem_alloc *a = new_alloc();
	if (!a) {
		console_err("too many allocations (at most %d); free some", MEM_ALLOCS_MAX);
		return;
	}
	uint64_t failed = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pa = page_alloc(PMM_HUGE_ORDER);
		if (pa == PMM_NO_PAGE) {
			failed++;
			continue;
		}
		if (add_block(a, pa, PMM_HUGE_ORDER) < 0) {
			page_free(pa, PMM_HUGE_ORDER);
			failed++;
		}
	}
	console_ok("id=%" PRIu32 " allocated=%" PRIu32 " failed=%" PRIu64, a->id, a->nblocks, failed);
}

static void mem_free(const char *what)
{
	uint64_t id, bytes = 0;
	unsigned count = 0;
	bool all = strcmp(what, "all") == 0;
	if (!all && (!parse_u64(what, &id) || id == 0)) {
		console_err("bad id '%s' (a number or all)", what);
		return;
	}
	for (unsigned i = 0; i < MEM_ALLOCS_MAX; i++)
		if (allocs[i].id && (all || allocs[i].id == id)) {
			bytes += release(&allocs[i]);
			count++;
		}
	if (!all && count == 0) {
		console_err("no allocation with id %" PRIu64, id);
		return;
	}
	console_ok("freed=%" PRIu64 " allocations=%u", bytes, count);
}

static void cmd_cache(int argc, char **argv)
{
	uint64_t bytes;
	struct cache_counters c;
	if (argc == 3 && strcmp(argv[1], "grow") == 0) {
		if (!parse_size(argv[2], &bytes) || bytes == 0) {
			console_err("bad size '%s'", argv[2]);
			return;
		}
		uint64_t want = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
		uint64_t got = cache_grow(want);
		cache_counters(&c);
		console_ok("grown=%" PRIu64 " wanted=%" PRIu64 " cached=%" PRIu64, got, want, c.pages);
	} else if (argc == 2 && strcmp(argv[1], "drop") == 0) {
		uint64_t dropped = cache_drop();
		console_ok("dropped=%" PRIu64, dropped);
	} else if (argc == 2 && strcmp(argv[1], "show") == 0) {
		cache_counters(&c);
		console_ok("cached=%" PRIu64 " low_watermark=%" PRIu64 " high_watermark=%" PRIu64
		           " direct_scan=%" PRIu64 " direct_reclaim=%" PRIu64 " async_scan=%" PRIu64
		           " async_reclaim=%" PRIu64 " alloc_stalls=%" PRIu64 " oom_kills=%" PRIu64,
		           c.pages, cache_low_watermark(), cache_high_watermark(), c.direct_scan, c.direct_reclaim,
		           c.async_scan, c.async_reclaim, c.alloc_stalls, c.oom_kills);
	} else {
		console_usage();
	}
}

static void cmd_mem(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "show") == 0)
		mem_show();
	else if (argc == 3 && strcmp(argv[1], "alloc") == 0)
		mem_alloc(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "free") == 0)
		mem_free(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "touch") == 0)
		mem_touch(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "huge") == 0)
		mem_huge(argv[2]);
	else
		console_usage();
}

static const struct console_cmd mm_cmds[] = {
	{ "mem", "show | alloc <size> | free <id|all> | touch <size> | huge <n>", cmd_mem },
	{ "cache", "grow <size> | drop | show", cmd_cache },
};

void mm_console_init(void)
{
	console_register(mm_cmds, ARRAY_SIZE(mm_cmds));
}
