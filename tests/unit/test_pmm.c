/* Unit tests of the buddy allocator, kernel/mm/pmm.c, run natively.
 *
 * "Physical memory" is a 64 MiB host buffer, 2 MiB aligned like real RAM
 * blocks are, seen at physical addresses [16 MiB, 80 MiB) through
 * pmm_direct_map_offset. Below 16 MiB there is no backing at all, so a
 * stray access there is ASan's to catch. The per-frame state array is a
 * separate host allocation of exactly max_pfn bytes, so an out-of-range
 * state index is caught too. */
#include <stdlib.h>
#include "kernel/mm/pmm.h"
#include "tests/unit/check.h"

#define KB 1024ull
#define MB (1024ull * KB)
#define PG PAGE_SIZE
#define PHYS_BASE (16 * MB)
#define ARENA_SIZE (64 * MB)
#define MAX_PFN ((PHYS_BASE + ARENA_SIZE) / PG)

static uint8_t *arena, *state;
static struct pmm pmm;

static uint64_t rng_state;
static uint64_t rng(void)
{
	/* xorshift64*: the same sequence on every host, unlike rand() */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

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

static bool managed[MAX_PFN];        /* frames the layout hands to the allocator */
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

/* A fresh allocator over stale junk: pmm.c must not rely on zeroed memory
 * or a zeroed state array. */
static void fresh(void)
{
	memset(arena, 0xa5, ARENA_SIZE);
	memset(state, 0x5a, MAX_PFN);
	pmm_direct_map_offset = (uintptr_t)arena - PHYS_BASE;
	pmm_init(&pmm, state, MAX_PFN);
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

static void test_split_merge(void)
{
	/* One 2 MiB block: an order-0 allocation splits it all the way down. */
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 2 * MB), 512);
	EXPECT_SHAPE([9] = 1);
	uint64_t a = pmm_alloc(&pmm, 0);
	CHECK(pmm_check(&pmm));
	CHECK(a >= 20 * MB && a < 22 * MB);
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	CHECK_EQ_U64(pmm.c.free_pages, 511);
	/* Its buddy is the free order-0 block; taking it empties order 0. */
	uint64_t b = pmm_alloc(&pmm, 0);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(a ^ b, PG);
	EXPECT_SHAPE(0, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	/* Freeing one leaves it unmerged (its buddy is allocated) ... */
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	CHECK(pmm_check(&pmm));
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	/* ... and freeing the other merges all the way back up. */
	CHECK_EQ_U64(pmm_free(&pmm, b, 0), 0);
	CHECK(pmm_check(&pmm));
	EXPECT_SHAPE([9] = 1);
	CHECK_EQ_U64(pmm.c.free_pages, 512);

	/* Each order in turn from the same block, freed in reverse. */
	uint64_t blk[PMM_ORDERS];
	for (unsigned o = 0; o < PMM_MAX_ORDER; o++) {
		blk[o] = pmm_alloc(&pmm, o);
		CHECK(blk[o] != PMM_NO_PAGE && pmm_check(&pmm));
	}
	/* 1 + 2 + ... + 256 = 511 pages used: one order-0 block is left. */
	EXPECT_SHAPE(1);
	for (unsigned o = PMM_MAX_ORDER; o-- > 0;) {
		CHECK_EQ_U64(pmm_free(&pmm, blk[o], o), 0);
		CHECK(pmm_check(&pmm));
	}
	EXPECT_SHAPE([9] = 1);

	/* Two halves of a 2 MiB block added separately merge into one. */
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 21 * MB, 1 * MB), 256);
	EXPECT_SHAPE([8] = 1);
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 1 * MB), 256);
	CHECK(pmm_check(&pmm));
	EXPECT_SHAPE([9] = 1);
	/* Added page by page, in a scattered order, still one block. */
	fresh();
	for (uint64_t i = 0; i < 512; i++) {
		uint64_t pfn = (i * 37) % 512; /* 37 is odd, so this visits all 512 */
		CHECK_EQ_U64(pmm_add_range(&pmm, 40 * MB + pfn * PG, PG), 1);
	}
	CHECK(pmm_check(&pmm));
	EXPECT_SHAPE([9] = 1);
}

/* Physical address 0 is a valid block: it must not be confused with
 * PMM_NO_PAGE or "no node". The kernel never adds page 0, but the
 * allocator itself must not care. */
static void test_phys_zero(void)
{
	fresh();
	pmm_direct_map_offset = (uintptr_t)arena; /* physical 0 = arena start */
	CHECK_EQ_U64(pmm_add_range(&pmm, 0, 2 * MB), 512);
	CHECK_EQ_U64(pmm_alloc(&pmm, PMM_MAX_ORDER), 0);
	CHECK(pmm_is_allocated(&pmm, 0, PMM_MAX_ORDER));
	CHECK_EQ_U64(pmm_free(&pmm, 0, PMM_MAX_ORDER), 0);
	CHECK(pmm_check(&pmm));
	EXPECT_SHAPE([9] = 1);
}

/* Every order, to exhaustion: alignment, placement inside managed memory,
 * and every managed page handed out exactly once (at order 0). */
static uint8_t owner_seen[MAX_PFN];
static uint64_t got_blocks[MAX_PFN];

static void test_alignment_and_exhaustion(void)
{
	for (unsigned order = 0; order <= PMM_MAX_ORDER; order++) {
		fresh_layout();
		memset(owner_seen, 0, sizeof owner_seen);
		uint64_t n = 0, pages = 0;
		bool ok = true;
		for (uint64_t pa; (pa = pmm_alloc(&pmm, order)) != PMM_NO_PAGE;) {
			uint64_t pfn = pa / PG;
			ok &= pa % (PG << order) == 0 && pfn + (1ull << order) <= MAX_PFN;
			for (uint64_t j = 0; ok && j < 1ull << order; j++)
				ok &= managed[pfn + j] && owner_seen[pfn + j]++ == 0;
			/* Checking after every allocation is O(max_pfn) each: fine
			 * here, at ~14k allocations at most. */
			ok &= pmm_check(&pmm);
			if (!ok)
				break;
			got_blocks[n++] = pa;
			pages += 1ull << order;
		}
		if (!CHECK(ok)) {
			fprintf(stderr, "    order %u: block %llu misplaced or handed out twice\n", order,
			        (unsigned long long)n);
			return;
		}
		/* Every block of at least this order, in the initial shape. */
		uint64_t want = 0;
		for (unsigned o = order; o < PMM_ORDERS; o++)
			want += layout_shape[o] << (o - order);
		CHECK_EQ_U64(n, want);
		CHECK_EQ_U64(pmm.c.allocs, n);
		CHECK_EQ_U64(pmm.c.allocated_pages, pages);
		CHECK_EQ_U64(pmm.c.alloc_failures, 1);
		CHECK_EQ_U64(pmm.c.huge_failures, order == PMM_HUGE_ORDER);
		CHECK_EQ_U64(pmm.c.huge_allocs, order == PMM_HUGE_ORDER ? n : 0);
		for (unsigned o = order; o < PMM_ORDERS; o++)
			CHECK_EQ_U64(pmm.c.free_blocks[o], 0);
		if (order == 0) {
			/* All of it, and nothing else. */
			CHECK_EQ_U64(pages, layout_pages);
			CHECK_EQ_U64(pmm.c.free_pages, 0);
			uint64_t missing = 0;
			for (uint64_t pfn = 0; pfn < MAX_PFN; pfn++)
				missing += managed[pfn] && !owner_seen[pfn];
			CHECK_EQ_U64(missing, 0);
		}
		/* Still empty on the next attempts; a huge failure counts twice. */
		CHECK_EQ_U64(pmm_alloc(&pmm, order), PMM_NO_PAGE);
		CHECK_EQ_U64(pmm.c.alloc_failures, 2);
		if (order == 0) {
			CHECK_EQ_U64(pmm_alloc(&pmm, PMM_MAX_ORDER), PMM_NO_PAGE);
			CHECK_EQ_U64(pmm.c.alloc_failures, 3);
			CHECK_EQ_U64(pmm.c.huge_failures, 1);
		}
		/* Free in a random order (Fisher-Yates), then all must merge back. */
		rng_state = 0x5eed + order;
		for (uint64_t i = n; i > 1; i--) {
			uint64_t j = rng() % i, t = got_blocks[i - 1];
			got_blocks[i - 1] = got_blocks[j];
			got_blocks[j] = t;
		}
		for (uint64_t i = 0; i < n; i++)
			if (!CHECK_EQ_U64(pmm_free(&pmm, got_blocks[i], order), 0))
				return;
		CHECK(pmm_check(&pmm));
		CHECK_EQ_U64(pmm.c.frees, n);
		CHECK_EQ_U64(pmm.c.allocated_pages, 0);
		CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
		expect_shape(layout_shape, __LINE__);
	}
}

static void test_counters(void)
{
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 2 * MB), 512);
	uint64_t h = pmm_alloc(&pmm, PMM_MAX_ORDER);
	CHECK_EQ_U64(h, 20 * MB);
	CHECK_EQ_U64(pmm.c.allocs, 1);
	CHECK_EQ_U64(pmm.c.huge_allocs, 1);
	CHECK_EQ_U64(pmm.c.allocated_pages, 512);
	CHECK_EQ_U64(pmm.c.free_pages, 0);
	EXPECT_SHAPE(0);
	/* Failures: small, huge, and an order that does not exist (which is a
	 * failure but not a huge one). */
	CHECK_EQ_U64(pmm_alloc(&pmm, 0), PMM_NO_PAGE);
	CHECK_EQ_U64(pmm.c.alloc_failures, 1);
	CHECK_EQ_U64(pmm.c.huge_failures, 0);
	CHECK_EQ_U64(pmm_alloc(&pmm, PMM_MAX_ORDER), PMM_NO_PAGE);
	CHECK_EQ_U64(pmm.c.alloc_failures, 2);
	CHECK_EQ_U64(pmm.c.huge_failures, 1);
	CHECK_EQ_U64(pmm_alloc(&pmm, PMM_MAX_ORDER + 1), PMM_NO_PAGE);
	CHECK_EQ_U64(pmm_alloc(&pmm, ~0u), PMM_NO_PAGE);
	CHECK_EQ_U64(pmm.c.alloc_failures, 4);
	CHECK_EQ_U64(pmm.c.huge_failures, 1);
	CHECK_EQ_U64(pmm.c.allocs, 1);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm_free(&pmm, h, PMM_MAX_ORDER), 0);
	CHECK_EQ_U64(pmm.c.frees, 1);
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
	CHECK_EQ_U64(pmm.c.free_pages, 512);
	/* An order-3 allocation: 8 pages, and nothing huge. */
	uint64_t s = pmm_alloc(&pmm, 3);
	CHECK_EQ_U64(pmm.c.allocs, 2);
	CHECK_EQ_U64(pmm.c.huge_allocs, 1);
	CHECK_EQ_U64(pmm.c.allocated_pages, 8);
	CHECK_EQ_U64(pmm.c.free_pages, 504);
	CHECK_EQ_U64(pmm.c.managed_pages, 512);
	EXPECT_SHAPE(0, 0, 0, 1, 1, 1, 1, 1, 1, 0);
	CHECK(pmm_is_allocated(&pmm, s, 3));
	CHECK(!pmm_is_allocated(&pmm, s, 2));
	CHECK(!pmm_is_allocated(&pmm, s + PG, 0));
	CHECK(pmm_check(&pmm));
}

/* A rejected call must leave everything as it was: counters, lists and
 * the state array. */
static struct pmm saved_pmm;
static uint8_t saved_state[MAX_PFN];
static void save(void)
{
	saved_pmm = pmm;
	memcpy(saved_state, state, MAX_PFN);
}
static bool unchanged(void)
{
	return memcmp(&saved_pmm, &pmm, sizeof pmm) == 0 && memcmp(saved_state, state, MAX_PFN) == 0 &&
	       pmm_check(&pmm);
}

static void expect_bad_free(uint64_t pa, unsigned order, int line)
{
	save();
	int r = pmm_free(&pmm, pa, order);
	if (!(CHECK_EQ_U64(r, (uint64_t)-1) & CHECK(unchanged())))
		fprintf(stderr, "    pmm_free(0x%llx, %u) (line %d)\n", (unsigned long long)pa, order, line);
}
#define EXPECT_BAD_FREE(pa, order) expect_bad_free((pa), (order), __LINE__)

static void test_bad_free(void)
{
	fresh_layout();
	uint64_t a = pmm_alloc(&pmm, 3), b = pmm_alloc(&pmm, 0), h = pmm_alloc(&pmm, PMM_MAX_ORDER);
	CHECK(a != PMM_NO_PAGE && b != PMM_NO_PAGE && h != PMM_NO_PAGE);
	/* wrong order, both ways, and orders that do not exist */
	EXPECT_BAD_FREE(a, 2);
	EXPECT_BAD_FREE(a, 4);
	EXPECT_BAD_FREE(a, 0);
	EXPECT_BAD_FREE(b, 1);
	EXPECT_BAD_FREE(h, PMM_MAX_ORDER - 1);
	EXPECT_BAD_FREE(a, PMM_MAX_ORDER + 1);
	EXPECT_BAD_FREE(a, ~0u);
	/* not the start of the block: unaligned, or a later page of it */
	EXPECT_BAD_FREE(a + 1, 3);
	EXPECT_BAD_FREE(a + PG / 2, 3);
	EXPECT_BAD_FREE(a + PG, 3);
	EXPECT_BAD_FREE(a + PG, 0);
	EXPECT_BAD_FREE(a + 4 * PG, 2);
	EXPECT_BAD_FREE(h + 256 * PG, 8);
	/* out of range, unmanaged, and free memory */
	EXPECT_BAD_FREE(MAX_PFN * PG, 0);
	EXPECT_BAD_FREE((MAX_PFN + 512) * PG, PMM_MAX_ORDER);
	EXPECT_BAD_FREE(UINT64_MAX & ~(PG - 1), 0);
	EXPECT_BAD_FREE(UINT64_MAX, 0);
	EXPECT_BAD_FREE(0, 0);
	EXPECT_BAD_FREE(PHYS_BASE, 0);   /* the hole before the first range */
	EXPECT_BAD_FREE(29 * MB, 0);     /* a hole between ranges */
	/* free memory: a 2 MiB-aligned block in the big range that none of
	 * a, b and h came from */
	uint64_t f = 32 * MB;
	while ((a >= f && a < f + 2 * MB) || (b >= f && b < f + 2 * MB) || (h >= f && h < f + 2 * MB))
		f += 2 * MB;
	EXPECT_BAD_FREE(f, PMM_MAX_ORDER);
	EXPECT_BAD_FREE(f, 0);
	/* double free: the first succeeds, the second changes nothing, also
	 * after the block has merged with its buddy */
	CHECK_EQ_U64(pmm_free(&pmm, b, 0), 0);
	EXPECT_BAD_FREE(b, 0);
	CHECK_EQ_U64(pmm_free(&pmm, a, 3), 0);
	EXPECT_BAD_FREE(a, 3);
	CHECK_EQ_U64(pmm_free(&pmm, h, PMM_MAX_ORDER), 0);
	EXPECT_BAD_FREE(h, PMM_MAX_ORDER);
	CHECK(!pmm_is_allocated(&pmm, h, PMM_MAX_ORDER));
	CHECK_EQ_U64(pmm.c.frees, 3);
	expect_shape(layout_shape, __LINE__);
}

static void expect_bad_add(uint64_t base, uint64_t size, int line)
{
	save();
	int64_t r = pmm_add_range(&pmm, base, size);
	if (!(CHECK_EQ_U64(r, (uint64_t)-1) & CHECK(unchanged())))
		fprintf(stderr, "    pmm_add_range(0x%llx, 0x%llx) (line %d)\n", (unsigned long long)base,
		        (unsigned long long)size, line);
}
#define EXPECT_BAD_ADD(base, size) expect_bad_add((base), (size), __LINE__)

static void test_add_range(void)
{
	fresh_layout();
	/* duplicates and every kind of overlap, also with one page in common;
	 * a refused range must not be half-added */
	EXPECT_BAD_ADD(20 * MB, 2 * MB);
	EXPECT_BAD_ADD(19 * MB, 2 * MB);
	EXPECT_BAD_ADD(21 * MB, 2 * MB);
	EXPECT_BAD_ADD(19 * MB, 4 * MB);
	EXPECT_BAD_ADD(20 * MB + 5 * PG, PG);
	EXPECT_BAD_ADD(20 * MB - 4 * PG, 5 * PG);      /* last page overlaps */
	EXPECT_BAD_ADD(22 * MB - PG, 4 * PG);          /* first page overlaps */
	EXPECT_BAD_ADD(25 * MB, 0x2800);               /* ends mid-page, but its 2nd whole page is taken */
	/* past max_pfn, and wrapping around */
	EXPECT_BAD_ADD(MAX_PFN * PG, PG);
	EXPECT_BAD_ADD(MAX_PFN * PG - 4 * PG, 5 * PG); /* holes at the start, past the end */
	EXPECT_BAD_ADD(1ull << 40, 2 * MB);
	EXPECT_BAD_ADD(UINT64_MAX - PG + 1, 2 * PG);
	EXPECT_BAD_ADD(16 * MB, UINT64_MAX);
	/* Only whole pages count: sharing a partial page is no overlap. Range
	 * 1 ends at 0x1300234, a partial page no one owns yet. */
	save();
	CHECK_EQ_U64(pmm_add_range(&pmm, PHYS_BASE + 0x300234, 0x1000), 0);
	CHECK(unchanged());
	CHECK_EQ_U64(pmm_add_range(&pmm, PHYS_BASE + 0x300234, 0x2000), 1);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.managed_pages, layout_pages + 1);
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages + 1);
	/* and the hole in a zero-size range is fine too */
	CHECK_EQ_U64(pmm_add_range(&pmm, 29 * MB, 0), 0);
	CHECK(pmm_check(&pmm));
}

/* The kernel's state array sits at the start of a usable range: those
 * pages are managed and allocated from the outset, never handed out. */
static void test_add_in_use(void)
{
	fresh();
	const uint64_t base = 30 * MB, in_use = 5;
	pmm_add_in_use(&pmm, base, in_use);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.managed_pages, in_use);
	CHECK_EQ_U64(pmm.c.allocated_pages, in_use);
	CHECK_EQ_U64(pmm.c.free_pages, 0);
	CHECK_EQ_U64(pmm_alloc(&pmm, 0), PMM_NO_PAGE);
	/* the same range, whole: refused, the in-use pages are taken */
	EXPECT_BAD_ADD(base, 2 * MB);
	CHECK_EQ_U64(pmm_add_range(&pmm, base + in_use * PG, 2 * MB - in_use * PG), 512 - in_use);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.managed_pages, 512);
	CHECK_EQ_U64(pmm.c.free_pages, 512 - in_use);
	EXPECT_SHAPE(1, 1, 0, 1, 1, 1, 1, 1, 1, 0); /* pfn 5, 6-7, 8-15, ..., 256-511 */
	EXPECT_BAD_FREE(base, 0);
	EXPECT_BAD_FREE(base + PG, 0);
	uint64_t n = 0;
	bool ok = true;
	for (uint64_t pa; (pa = pmm_alloc(&pmm, 0)) != PMM_NO_PAGE; n++)
		ok &= pa >= base + in_use * PG && pa < base + 2 * MB;
	CHECK(ok);
	CHECK_EQ_U64(n, 512 - in_use);
	CHECK_EQ_U64(pmm.c.allocated_pages, 512);
	CHECK(pmm_check(&pmm));
}

/* A long random sequence against a model: the set of allocated blocks,
 * each filled with a pattern derived from a per-block tag. The pattern
 * covers the first 16 bytes of every page (where the allocator threads its
 * free list, so a block it wrongly thinks free gets overwritten there) and
 * the last 8. */
#define RANDOM_STEPS 200000
#define CHECK_EVERY 256

struct block {
	uint64_t pa, tag;
	unsigned order;
};
static struct block blocks[MAX_PFN];
static uint32_t nblocks;
static bool taken[MAX_PFN];

static uint64_t *page_words(uint64_t pa) { return phys_to_virt(pa); }
static uint64_t pattern(uint64_t tag, uint64_t page) { return tag ^ (page * 0x9e3779b97f4a7c15ull); }

static void fill(const struct block *b)
{
	for (uint64_t i = 0; i < 1ull << b->order; i++) {
		uint64_t *w = page_words(b->pa + i * PG);
		w[0] = w[1] = w[PG / 8 - 1] = pattern(b->tag, i);
	}
}

static bool intact(const struct block *b)
{
	for (uint64_t i = 0; i < 1ull << b->order; i++) {
		const uint64_t *w = page_words(b->pa + i * PG);
		uint64_t v = pattern(b->tag, i);
		if (w[0] != v || w[1] != v || w[PG / 8 - 1] != v)
			return false;
	}
	return true;
}

/* Mostly small orders, as the kernel's users ask for, with enough 2 MiB
 * requests to exhaust and fragment memory now and then. */
static unsigned random_order(void)
{
	unsigned r = (unsigned)(rng() % 100);
	if (r < 50) return 0;
	if (r < 70) return 1;
	if (r < 80) return 2;
	if (r < 85) return 3;
	if (r < 92) return 4 + (unsigned)(rng() % 5);
	return PMM_MAX_ORDER;
}

static void test_random(void)
{
	const uint64_t seed = 0x62616c6c617374ull; /* "ballast" */
	rng_state = seed;
	printf("pmm: random sequence, seed 0x%llx, %d steps\n", (unsigned long long)seed, RANDOM_STEPS);
	fresh_layout();
	memset(taken, 0, sizeof taken);
	nblocks = 0;
	/* What the counters must say, kept by the model. */
	uint64_t pages = 0, allocs = 0, frees = 0, failures = 0, huge = 0, huge_failures = 0;
	for (int step = 0; step < RANDOM_STEPS; step++) {
		/* Phases that mostly allocate, then mostly free, so the run spans
		 * empty, fragmented and exhausted memory. */
		unsigned alloc_pct = (step / 10000) % 2 ? 35 : 70;
		bool ok = true;
		if (nblocks == 0 || rng() % 100 < alloc_pct) {
			unsigned order = random_order();
			uint64_t pa = pmm_alloc(&pmm, order);
			if (pa == PMM_NO_PAGE) {
				failures++;
				huge_failures += order == PMM_HUGE_ORDER;
				/* a failure is only right if no block is big enough */
				for (unsigned o = order; o < PMM_ORDERS; o++)
					ok &= pmm.c.free_blocks[o] == 0;
			} else {
				uint64_t pfn = pa / PG;
				ok &= pa % (PG << order) == 0 && pfn + (1ull << order) <= MAX_PFN;
				for (uint64_t j = 0; ok && j < 1ull << order; j++) {
					ok &= managed[pfn + j] && !taken[pfn + j];
					taken[pfn + j] = true;
				}
				ok &= pmm_is_allocated(&pmm, pa, order);
				if (ok) {
					blocks[nblocks] = (struct block){ pa, rng(), order };
					fill(&blocks[nblocks++]);
				}
				pages += 1ull << order;
				allocs++;
				huge += order == PMM_HUGE_ORDER;
			}
		} else {
			uint32_t k = (uint32_t)(rng() % nblocks);
			struct block b = blocks[k];
			ok &= intact(&b);
			/* Now and then, a wrong free first: it must change nothing. */
			if (rng() % 50 == 0) {
				save();
				unsigned wrong = b.order == 0 ? 1 : b.order - 1;
				/* a later page of the block, or for one page, a misaligned address */
				uint64_t inside = b.pa + (b.order ? PG : 8);
				ok &= pmm_free(&pmm, b.pa, wrong) == -1 && pmm_free(&pmm, inside, 0) == -1 && unchanged();
			}
			ok &= pmm_free(&pmm, b.pa, b.order) == 0 && !pmm_is_allocated(&pmm, b.pa, b.order);
			ok &= pmm_free(&pmm, b.pa, b.order) == -1; /* and a double free is refused */
			for (uint64_t j = 0; j < 1ull << b.order; j++)
				taken[b.pa / PG + j] = false;
			blocks[k] = blocks[--nblocks];
			pages -= 1ull << b.order;
			frees++;
		}
		const struct pmm_counters *c = &pmm.c;
		ok &= c->allocated_pages == pages && c->free_pages == layout_pages - pages &&
		      c->managed_pages == layout_pages && c->allocs == allocs && c->frees == frees &&
		      c->alloc_failures == failures && c->huge_allocs == huge && c->huge_failures == huge_failures;
		if (step % CHECK_EVERY == 0) {
			ok &= pmm_check(&pmm);
			for (uint32_t i = 0; i < nblocks; i++)
				ok &= intact(&blocks[i]);
		}
		if (!CHECK(ok)) {
			fprintf(stderr, "    step %d: model and allocator disagree (%u blocks, %llu pages)\n", step,
			        nblocks, (unsigned long long)pages);
			return;
		}
	}
	printf("pmm: random sequence: %llu allocs, %llu failed (%llu huge), %llu frees\n",
	       (unsigned long long)allocs, (unsigned long long)failures, (unsigned long long)huge_failures,
	       (unsigned long long)frees);
	/* The run must have reached exhaustion, or it tested less than it
	 * claims to. */
	CHECK(failures > 0 && huge > 0);
	CHECK(pmm_check(&pmm));
	/* Everything freed (contents checked a last time) merges back into
	 * the shape it started in. */
	while (nblocks) {
		uint32_t k = (uint32_t)(rng() % nblocks);
		if (!CHECK(intact(&blocks[k])) || !CHECK_EQ_U64(pmm_free(&pmm, blocks[k].pa, blocks[k].order), 0))
			return;
		blocks[k] = blocks[--nblocks];
	}
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
	expect_shape(layout_shape, __LINE__);
}

int main(void)
{
	arena = aligned_alloc(2 * MB, ARENA_SIZE);
	state = malloc(MAX_PFN);
	if (!arena || !state) {
		fprintf(stderr, "pmm: out of host memory\n");
		return 2;
	}
	compute_layout_model();
	test_split_merge();
	test_phys_zero();
	test_alignment_and_exhaustion();
	test_counters();
	test_bad_free();
	test_add_range();
	test_add_in_use();
	test_random();
	free(state);
	free(arena);
	return check_summary("pmm");
}
