/* The fake machine the pmm test programs run on (test_pmm.c: the
 * deterministic cases; test_pmm_random.c: the long random run and the
 * "free memory is never written" checks; test_pmm_offline.c and
 * test_pmm_report.c: the balloon's offline pages and free page reporting;
 * test_pmm_balloon.c: those mixed into a random run). Split only to keep
 * each file readable; every helper is static, each program is one
 * translation unit plus kernel/mm/pmm.c.
 *
 * "Physical memory" is a 64 MiB host buffer, 2 MiB aligned like real RAM
 * blocks are, standing for physical addresses [16 MiB, 80 MiB). It is
 * filled with ARENA_FILL and the allocator must never write to it (its
 * links live in the metadata): only the tests themselves write into blocks
 * they were handed. Below 16 MiB there is no backing at all. The metadata
 * is a separate host allocation of exactly pmm_meta_bytes(MAX_PFN) bytes,
 * so an index past the last frame is ASan's to catch. */
#ifndef BALLAST_TEST_PMM_FIXTURE_H
#define BALLAST_TEST_PMM_FIXTURE_H

#include <stdlib.h>
#include "kernel/mm/pmm.h"
#include "tests/unit/check.h"

#define KB 1024ull
#define MB (1024ull * KB)
#define PG PAGE_SIZE
#define PHYS_BASE (16 * MB)
#define ARENA_SIZE (64 * MB)
#define MAX_PFN ((PHYS_BASE + ARENA_SIZE) / PG)
#define ARENA_FILL 0xa5
#define ARENA_WORD 0xa5a5a5a5a5a5a5a5ull

static uint8_t *arena, *meta, *saved_meta;
static uint64_t meta_bytes;
static struct pmm pmm;

/* The host address of a physical address in the arena. The tests do not
 * use pmm.h's phys_to_virt: the allocator no longer needs a direct map. */
static inline uint64_t *host_words(uint64_t pa) { return (uint64_t *)(arena + (pa - PHYS_BASE)); }

#include "tests/unit/xorshift.h"

/* Ranges with holes between them (each gap holds at least one whole page,
 * so no buddy pair can span two ranges), unaligned starts and ends, a
 * range inside a single page (no whole page), and one ending exactly at
 * max_pfn. */
static const struct { uint64_t base, size, pages; } layout[] = {
	{ PHYS_BASE + 0x1800, 0x300234 - 0x1800, 0x1300 - 0x1002 }, /* starts and ends mid-page */
	{ 20 * MB, 2 * MB, 512 },                                    /* exactly one 2 MiB block */
	{ 23 * MB + 0x3000, 0x25010, 0x25 },
	{ 24 * MB + 0x7ff, 0x800, 0 },                               /* no whole page */
	{ 25 * MB + PG, PG, 1 },
	{ 30 * MB, 48 * MB - 0x800, 48 * MB / PG - 1 },
	{ 80 * MB - 2 * PG, 2 * PG, 2 },                             /* ends at max_pfn */
};
#define LAYOUT_N (sizeof layout / sizeof layout[0])

static bool managed[MAX_PFN];             /* frames the layout hands to the allocator */
static uint64_t layout_pages;
static uint64_t layout_shape[PMM_ORDERS]; /* free blocks per order when all is free */

/* The canonical buddy decomposition of the layout, computed independently
 * of pmm.c: the largest aligned block that fits, from the top order down. */
static void compute_layout_model(void)
{
	for (size_t i = 0; i < LAYOUT_N; i++) {
		uint64_t first = (layout[i].base + PG - 1) / PG, end = (layout[i].base + layout[i].size) / PG;
		for (uint64_t pfn = first; pfn < end;) {
			unsigned o = PMM_MAX_ORDER;
			while (pfn % (1ull << o) || pfn + (1ull << o) > end)
				o--;
			layout_shape[o]++;
			for (uint64_t j = 0; j < 1ull << o; j++)
				managed[pfn + j] = true;
			layout_pages += 1ull << o;
			pfn += 1ull << o;
		}
	}
}

static int fixture_setup(void)
{
	meta_bytes = pmm_meta_bytes(MAX_PFN);
	arena = aligned_alloc(2 * MB, ARENA_SIZE);
	meta = malloc(meta_bytes); /* malloc's alignment is 16, enough for pmm_init's 8 */
	if (!arena || !meta) {
		fprintf(stderr, "pmm: out of host memory\n");
		return -1;
	}
	compute_layout_model();
	return 0;
}

static void fixture_teardown(void)
{
	free(saved_meta);
	free(meta);
	free(arena);
}

/* A fresh allocator over stale junk: pmm.c must not rely on zeroed
 * metadata. The arena is refilled so the "never written" checks start from
 * a known pattern. */
static void fresh(void)
{
	memset(arena, ARENA_FILL, ARENA_SIZE);
	memset(meta, 0x5a, meta_bytes);
	CHECK_EQ_U64(pmm_init(&pmm, meta, MAX_PFN), 0);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.managed_pages, 0);
}

/* Checks free_blocks[0..PMM_MAX_ORDER] against a list of counts. */
static void expect_shape(const uint64_t want[PMM_ORDERS], int line)
{
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		if (!CHECK_EQ_U64(pmm.c.free_blocks[o], want[o]))
			fprintf(stderr, "    order %u (line %d)\n", o, line);
}
#define EXPECT_SHAPE(...) expect_shape((const uint64_t[PMM_ORDERS]){ __VA_ARGS__ }, __LINE__)

static void fresh_layout(void)
{
	fresh();
	for (size_t i = 0; i < LAYOUT_N; i++) {
		CHECK_EQ_U64(pmm_add_range(&pmm, layout[i].base, layout[i].size), layout[i].pages);
		CHECK(pmm_check(&pmm));
	}
	CHECK_EQ_U64(pmm.c.managed_pages, layout_pages);
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
	expect_shape(layout_shape, __LINE__);
}

/* A rejected call must leave everything as it was: counters, list heads
 * and the whole metadata (links as well as state bytes). */
static struct pmm saved_pmm;
static void save(void)
{
	if (!saved_meta && !(saved_meta = malloc(meta_bytes)))
		abort();
	saved_pmm = pmm;
	memcpy(saved_meta, meta, meta_bytes);
}
static bool unchanged(void)
{
	return memcmp(&saved_pmm, &pmm, sizeof pmm) == 0 && memcmp(saved_meta, meta, meta_bytes) == 0 &&
	       pmm_check(&pmm);
}

/* A call that must be refused: it returns -1 and changes nothing. */
#define EXPECT_REJECT(call)                                                                        \
	do {                                                                                       \
		save();                                                                            \
		int r_ = (call);                                                                   \
		if (!(CHECK_EQ_U64(r_, (uint64_t)-1) & CHECK(unchanged())))                        \
			fprintf(stderr, "    %s (line %d)\n", #call, __LINE__);                        \
	} while (0)

/* The free-block shape an allocator that always merges must have for a
 * set of free frames, computed independently of pmm.c: an aligned run of
 * 2^k free frames is one block of order k when k is the top order or its
 * buddy run is not all free (else the two would have merged). */
static inline bool run_free(const bool *is_free, uint64_t pfn, unsigned order)
{
	for (uint64_t j = 0; j < 1ull << order; j++)
		if (pfn + j >= MAX_PFN || !is_free[pfn + j])
			return false;
	return true;
}
static inline bool is_free_block(const bool *is_free, uint64_t pfn, unsigned order)
{
	return pfn % (1ull << order) == 0 && run_free(is_free, pfn, order) &&
	       (order == PMM_MAX_ORDER || !run_free(is_free, pfn ^ (1ull << order), order));
}
static inline void free_shape(const bool *is_free, uint64_t shape[PMM_ORDERS])
{
	for (unsigned o = 0; o < PMM_ORDERS; o++) {
		shape[o] = 0;
		for (uint64_t pfn = 0; pfn < MAX_PFN; pfn += 1ull << o)
			shape[o] += is_free_block(is_free, pfn, o);
	}
}

#endif
