/* Unit tests of kernel/mm/pmm.c, run natively: free page reporting. The
 * balloon isolates a free block the host has not been told about
 * (pmm_isolate_unreported), reports it, and puts it back marked reported
 * (pmm_putback_reported); the mark goes when the block is allocated or
 * merged, so the next pass reports it again. An isolated block counts as
 * allocated memory but is no allocation (the guest's statistics must not
 * see reporting). The fake machine is in pmm_fixture.h; reporting in a
 * random run is in test_pmm_balloon.c. */
#include "tests/unit/pmm_fixture.h"

/* Checks the counters against a snapshot, changed by the pages of one
 * block moving from free to allocated (+1), back (-1), or not at all (0),
 * and the free blocks of that order by `blocks`; nothing else moves. */
static void expect_moved(const struct pmm_counters *before, int dir, unsigned order, int64_t blocks, int line)
{
	struct pmm_counters want = *before;
	int64_t pages = dir * (int64_t)(1ull << order);
	want.allocated_pages += (uint64_t)pages;
	want.free_pages -= (uint64_t)pages;
	want.free_blocks[order] += (uint64_t)blocks;
	const struct pmm_counters *c = &pmm.c;
	bool ok = CHECK_EQ_U64(c->managed_pages, want.managed_pages) & CHECK_EQ_U64(c->free_pages, want.free_pages) &
	          CHECK_EQ_U64(c->allocated_pages, want.allocated_pages) &
	          CHECK_EQ_U64(c->offline_pages, want.offline_pages) & CHECK_EQ_U64(c->allocs, want.allocs) &
	          CHECK_EQ_U64(c->frees, want.frees) & CHECK_EQ_U64(c->alloc_failures, want.alloc_failures) &
	          CHECK_EQ_U64(c->huge_allocs, want.huge_allocs) &
	          CHECK_EQ_U64(c->huge_failures, want.huge_failures) & CHECK(pmm_check(&pmm));
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		ok &= CHECK_EQ_U64(c->free_blocks[o], want.free_blocks[o]);
	if (!ok)
		fprintf(stderr, "    counters (line %d)\n", line);
}

/* Isolates a block of this order, which must be `want` (any block, for
 * PMM_NO_PAGE), and checks the counters moved by exactly that block. */
static uint64_t isolate(unsigned order, uint64_t want, int line)
{
	struct pmm_counters before = pmm.c;
	uint64_t pa = pmm_isolate_unreported(&pmm, order);
	bool ok = CHECK(pa != PMM_NO_PAGE) && CHECK_EQ_U64(pa % (PG << order), 0);
	if (ok && want != PMM_NO_PAGE)
		ok = CHECK_EQ_U64(pa, want);
	if (!ok) {
		fprintf(stderr, "    isolate order %u (line %d)\n", order, line);
		return PMM_NO_PAGE;
	}
	expect_moved(&before, 1, order, -1, line);
	return pa;
}
#define ISOLATE(order, want) isolate((order), (want), __LINE__)

/* Puts a block back; it stays a block of its order (merged_to == order),
 * or merges with free buddies up to a block of order merged_to. */
static void putback(uint64_t pa, unsigned order, unsigned merged_to, int line)
{
	struct pmm_counters before = pmm.c;
	if (!CHECK_EQ_U64(pmm_putback_reported(&pmm, pa, order), 0)) {
		fprintf(stderr, "    putback 0x%llx order %u (line %d)\n", (unsigned long long)pa, order, line);
		return;
	}
	if (merged_to == order) {
		expect_moved(&before, -1, order, 1, line);
	} else {
		/* each buddy on the way up left its list, the result joined one */
		before.free_pages += 1ull << order;
		before.allocated_pages -= 1ull << order;
		for (unsigned o = order; o < merged_to; o++)
			before.free_blocks[o]--;
		expect_moved(&before, 0, merged_to, 1, line);
	}
}
#define PUTBACK(pa, order, merged_to) putback((pa), (order), (merged_to), __LINE__)

/* No unreported block of this order: NO_PAGE, and nothing changes. */
#define EXPECT_NONE(order)                                                                         \
	do {                                                                                       \
		save();                                                                            \
		if (!(CHECK_EQ_U64(pmm_isolate_unreported(&pmm, (order)), PMM_NO_PAGE) &          \
		      CHECK(unchanged())))                                                         \
			fprintf(stderr, "    isolate order %u (line %d)\n", (unsigned)(order), __LINE__); \
	} while (0)

static bool seen[MAX_PFN];

/* The balloon's pass: isolate and put back each 2 MiB block in turn,
 * every one exactly once; after that, all are reported. */
static void test_report_every_huge_block(void)
{
	fresh_layout();
	memset(seen, 0, sizeof seen);
	const uint64_t n9 = layout_shape[PMM_MAX_ORDER];
	for (uint64_t i = 0; i < n9; i++) {
		uint64_t pa = ISOLATE(PMM_MAX_ORDER, PMM_NO_PAGE);
		if (pa == PMM_NO_PAGE)
			return;
		bool ok = !seen[pa / PG];
		for (uint64_t j = 0; j < 512; j++)
			ok &= managed[pa / PG + j];
		if (!CHECK(ok))
			fprintf(stderr, "    block 0x%llx isolated twice or not managed\n", (unsigned long long)pa);
		seen[pa / PG] = true;
		/* isolated: neither free to the allocator nor an allocation */
		CHECK(!pmm_is_allocated(&pmm, pa, PMM_MAX_ORDER));
		EXPECT_REJECT(pmm_free(&pmm, pa, PMM_MAX_ORDER));
		EXPECT_REJECT(pmm_putback_reported(&pmm, pa, PMM_MAX_ORDER - 1));
		EXPECT_REJECT(pmm_putback_reported(&pmm, pa + PG, 0));
		EXPECT_REJECT(pmm_putback_reported(&pmm, pa + 1, PMM_MAX_ORDER));
		PUTBACK(pa, PMM_MAX_ORDER, PMM_MAX_ORDER);
		EXPECT_REJECT(pmm_putback_reported(&pmm, pa, PMM_MAX_ORDER)); /* twice */
	}
	EXPECT_NONE(PMM_MAX_ORDER);
	expect_shape(layout_shape, __LINE__);
	/* The smaller blocks were never reported. */
	for (unsigned o = 0; o < PMM_MAX_ORDER; o++)
		if (layout_shape[o]) {
			uint64_t pa = ISOLATE(o, PMM_NO_PAGE);
			if (pa != PMM_NO_PAGE)
				PUTBACK(pa, o, o);
		}

	/* A reported block allocated and freed is news to the host again:
	 * the next isolation finds exactly that one. Allocating it counts. */
	struct pmm_counters before = pmm.c;
	uint64_t h = pmm_alloc(&pmm, PMM_MAX_ORDER);
	CHECK(h != PMM_NO_PAGE && seen[h / PG]);
	CHECK_EQ_U64(pmm.c.allocs, before.allocs + 1);
	CHECK_EQ_U64(pmm.c.huge_allocs, before.huge_allocs + 1);
	EXPECT_NONE(PMM_MAX_ORDER);
	CHECK_EQ_U64(pmm_free(&pmm, h, PMM_MAX_ORDER), 0);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, h), PMM_MAX_ORDER, PMM_MAX_ORDER);
	EXPECT_NONE(PMM_MAX_ORDER);

	/* All isolated at once, then all put back. */
	fresh_layout();
	static uint64_t held[MAX_PFN / 512];
	for (uint64_t i = 0; i < n9; i++)
		held[i] = ISOLATE(PMM_MAX_ORDER, PMM_NO_PAGE);
	EXPECT_NONE(PMM_MAX_ORDER);
	CHECK_EQ_U64(pmm.c.allocated_pages, n9 * 512);
	CHECK_EQ_U64(pmm.c.allocs, 0);
	CHECK_EQ_U64(pmm.c.huge_allocs, 0);
	CHECK_EQ_U64(pmm.c.alloc_failures, 0);
	for (uint64_t i = 0; i < n9; i++)
		PUTBACK(held[i], PMM_MAX_ORDER, PMM_MAX_ORDER);
	EXPECT_NONE(PMM_MAX_ORDER);
	expect_shape(layout_shape, __LINE__);
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
}

/* One 2 MiB block at 20 MiB: the mark goes with a split, with a merge on
 * free, and with a merge on putback. */
static void test_mark_lost(void)
{
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 2 * MB), 512);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, 20 * MB), PMM_MAX_ORDER, PMM_MAX_ORDER);
	EXPECT_NONE(PMM_MAX_ORDER);

	/* Split by an allocation: the halves left free are unreported, and
	 * each is reported on its own (its buddy holds the page: no merge). */
	uint64_t a = pmm_alloc(&pmm, 0);
	CHECK_EQ_U64(a, 20 * MB); /* the only block, lower half each time */
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	for (unsigned o = 0; o < PMM_MAX_ORDER; o++) {
		PUTBACK(ISOLATE(o, 20 * MB + (PG << o)), o, o);
		EXPECT_NONE(o);
	}
	/* Freeing the page merges them all: one block, unreported. */
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	EXPECT_SHAPE([9] = 1);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, 20 * MB), PMM_MAX_ORDER, PMM_MAX_ORDER);

	/* A reported half merges with its buddy when that is freed. */
	uint64_t lo = pmm_alloc(&pmm, 8), hi = pmm_alloc(&pmm, 8);
	CHECK_EQ_U64(lo, 20 * MB);
	CHECK_EQ_U64(hi, 21 * MB);
	CHECK_EQ_U64(pmm_free(&pmm, hi, 8), 0);
	PUTBACK(ISOLATE(8, hi), 8, 8);
	EXPECT_NONE(8);
	CHECK_EQ_U64(pmm_free(&pmm, lo, 8), 0);
	EXPECT_SHAPE([9] = 1);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, 20 * MB), PMM_MAX_ORDER, PMM_MAX_ORDER);

	/* An isolated half put back next to its free buddy merges, and the
	 * merged block is unreported. */
	lo = pmm_alloc(&pmm, 8);
	hi = pmm_alloc(&pmm, 8);
	CHECK_EQ_U64(pmm_free(&pmm, hi, 8), 0);
	CHECK_EQ_U64(ISOLATE(8, hi), hi);
	CHECK_EQ_U64(pmm_free(&pmm, lo, 8), 0); /* its buddy is isolated: no merge */
	EXPECT_SHAPE([8] = 1);
	PUTBACK(hi, 8, PMM_MAX_ORDER);
	EXPECT_NONE(8);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, 20 * MB), PMM_MAX_ORDER, PMM_MAX_ORDER);
	/* ... also a merge across several orders. */
	a = pmm_alloc(&pmm, 0);
	CHECK_EQ_U64(ISOLATE(0, a ^ PG), a ^ PG);
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	PUTBACK(a ^ PG, 0, PMM_MAX_ORDER);
	PUTBACK(ISOLATE(PMM_MAX_ORDER, 20 * MB), PMM_MAX_ORDER, PMM_MAX_ORDER);
	CHECK_EQ_U64(pmm.c.managed_pages, 512);
	CHECK_EQ_U64(pmm.c.free_pages, 512);
}

/* Isolation walks past reported blocks on the list to the unreported
 * ones: 256 free single pages (every other one of 2 MiB) are each
 * reported once. */
static uint64_t pages[512];

static void test_scan_past_reported(void)
{
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 2 * MB), 512);
	for (unsigned i = 0; i < 512; i++)
		pages[i] = pmm_alloc(&pmm, 0);
	CHECK_EQ_U64(pmm.c.free_pages, 0);
	memset(seen, 0, sizeof seen);
	bool ok = true;
	for (unsigned i = 0; i < 512; i++)
		if (pages[i] / PG % 2 == 0)
			ok &= pmm_free(&pmm, pages[i], 0) == 0;
	CHECK(ok);
	EXPECT_SHAPE(256);
	for (unsigned i = 0; i < 256; i++) {
		uint64_t pa = ISOLATE(0, PMM_NO_PAGE);
		if (pa == PMM_NO_PAGE)
			return;
		if (!CHECK(!seen[pa / PG] && pa / PG % 2 == 0))
			fprintf(stderr, "    page 0x%llx isolated twice or not free\n", (unsigned long long)pa);
		seen[pa / PG] = true;
		PUTBACK(pa, 0, 0);
	}
	EXPECT_NONE(0);
	/* Freeing page 1 merges it with reported page 0: an unreported
	 * order-1 block; page 3 is still allocated, so it stays order 1. */
	CHECK_EQ_U64(pmm_free(&pmm, 20 * MB + PG, 0), 0);
	EXPECT_SHAPE(255, 1);
	PUTBACK(ISOLATE(1, 20 * MB), 1, 1);
	EXPECT_NONE(1);
	EXPECT_NONE(0);
	/* Allocating a reported page takes the mark with it. */
	uint64_t p = pmm_alloc(&pmm, 0);
	CHECK(p != PMM_NO_PAGE && seen[p / PG]);
	EXPECT_NONE(0);
	CHECK_EQ_U64(pmm_free(&pmm, p, 0), 0);
	PUTBACK(ISOLATE(0, p), 0, 0);
}

static void test_rejects(void)
{
	fresh_layout();
	uint64_t a = pmm_alloc(&pmm, 0), c = pmm_alloc(&pmm, 3), h = pmm_alloc(&pmm, PMM_MAX_ORDER);
	uint64_t off = pmm_alloc(&pmm, 0);
	CHECK_EQ_U64(pmm_offline(&pmm, off), 0);
	uint64_t i9 = ISOLATE(PMM_MAX_ORDER, PMM_NO_PAGE), i0 = ISOLATE(0, PMM_NO_PAGE);
	if (!CHECK(a != PMM_NO_PAGE && c != PMM_NO_PAGE && h != PMM_NO_PAGE && i9 != PMM_NO_PAGE &&
	           i0 != PMM_NO_PAGE))
		return;
	/* No such order. */
	EXPECT_NONE(PMM_ORDERS);
	EXPECT_NONE(~0u);
	/* Put back only what was isolated, at its order: not blocks the
	 * allocator handed out (their owner still uses them), not free or
	 * offline pages, not a wrong order, a page inside, an unaligned or an
	 * unmanaged address. */
	EXPECT_REJECT(pmm_putback_reported(&pmm, a, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, c, 3));
	EXPECT_REJECT(pmm_putback_reported(&pmm, h, PMM_MAX_ORDER));
	EXPECT_REJECT(pmm_putback_reported(&pmm, off, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9, PMM_MAX_ORDER - 1));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9, PMM_ORDERS));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9, ~0u));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9 + PG, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9 + 256 * PG, 8));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i9 + 1, PMM_MAX_ORDER));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i0, 1));
	EXPECT_REJECT(pmm_putback_reported(&pmm, i0 + PG / 2, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, 0, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, 29 * MB, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, MAX_PFN * PG, 0));
	EXPECT_REJECT(pmm_putback_reported(&pmm, UINT64_MAX & ~(PG - 1), 0));
	/* free memory, reported or not */
	uint64_t f = ISOLATE(PMM_MAX_ORDER, PMM_NO_PAGE);
	PUTBACK(f, PMM_MAX_ORDER, PMM_MAX_ORDER);
	EXPECT_REJECT(pmm_putback_reported(&pmm, f, PMM_MAX_ORDER));
	EXPECT_REJECT(pmm_putback_reported(&pmm, f + PG, 0));
	/* An isolated block is nobody's to free or take offline. */
	EXPECT_REJECT(pmm_free(&pmm, i9, PMM_MAX_ORDER));
	EXPECT_REJECT(pmm_free(&pmm, i0, 0));
	EXPECT_REJECT(pmm_offline(&pmm, i0));
	EXPECT_REJECT(pmm_online(&pmm, i0));

	PUTBACK(i0, 0, 0);
	PUTBACK(i9, PMM_MAX_ORDER, PMM_MAX_ORDER);
	CHECK_EQ_U64(pmm_online(&pmm, off), 0);
	CHECK_EQ_U64(pmm_free(&pmm, off, 0), 0);
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	CHECK_EQ_U64(pmm_free(&pmm, c, 3), 0);
	CHECK_EQ_U64(pmm_free(&pmm, h, PMM_MAX_ORDER), 0);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
	expect_shape(layout_shape, __LINE__);
}

int main(void)
{
	if (fixture_setup() < 0)
		return 2;
	test_report_every_huge_block();
	test_mark_lost();
	test_scan_past_reported();
	test_rejects();
	fixture_teardown();
	return check_summary("pmm_report");
}
