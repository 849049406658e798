/* Unit tests of the buddy allocator, kernel/mm/pmm.c, run natively: the
 * deterministic cases. The fake machine is in pmm_fixture.h; the long
 * random run and the checks that free memory is never written are in
 * test_pmm_random.c. */
#include "tests/unit/pmm_fixture.h"

/* pmm_init takes one metadata buffer: 8-byte aligned (the links are
 * 32-bit pairs the kernel reads in one access), at most PMM_MAX_PFN frames
 * (frame numbers are 32-bit, PMM_LIST_END is reserved). */
static void test_init(void)
{
	struct pmm p;
	/* Room for one link and one state byte per frame, without wrapping
	 * even for the largest max_pfn. */
	CHECK(pmm_meta_bytes(MAX_PFN) >= MAX_PFN * (sizeof(struct pmm_link) + 1));
	CHECK(pmm_meta_bytes(PMM_MAX_PFN) >= PMM_MAX_PFN * (sizeof(struct pmm_link) + 1));
	const uint64_t n = 64;
	uint8_t *buf = aligned_alloc(16, pmm_meta_bytes(n) + 16);
	if (!CHECK(buf != NULL))
		return;
	for (unsigned mis = 1; mis < 8; mis++)
		if (!CHECK_EQ_U64(pmm_init(&p, buf + mis, n), (uint64_t)-1))
			fprintf(stderr, "    meta misaligned by %u accepted\n", mis);
	CHECK_EQ_U64(pmm_init(&p, buf + 8, n), 0);
	CHECK(pmm_check(&p));
	/* Too many frames: refused before anything is written (if it were
	 * accepted, initialising 4G state bytes would run off buf: ASan). */
	CHECK_EQ_U64(pmm_init(&p, buf, PMM_MAX_PFN + 1), (uint64_t)-1);
	CHECK_EQ_U64(pmm_init(&p, buf, UINT64_MAX), (uint64_t)-1);
	free(buf);

	/* A max_pfn that is no multiple of the largest block, with metadata of
	 * exactly the size asked for: merging at the top must not look at the
	 * state of a buddy past max_pfn (ASan would catch the read). */
	const uint64_t odd = 1000;
	buf = malloc(pmm_meta_bytes(odd));
	if (!CHECK(buf != NULL))
		return;
	CHECK_EQ_U64(pmm_init(&p, buf, odd), 0);
	CHECK_EQ_U64(pmm_add_range(&p, 0, odd * PG), odd);
	CHECK_EQ_U64(pmm_add_range(&p, odd * PG, PG), (uint64_t)-1);
	CHECK(pmm_check(&p));
	/* 1000 = 512 + 256 + 128 + 64 + 32 + 8 */
	const uint64_t want[PMM_ORDERS] = { [3] = 1, [5] = 1, [6] = 1, [7] = 1, [8] = 1, [9] = 1 };
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		CHECK_EQ_U64(p.c.free_blocks[o], want[o]);
	uint64_t n_alloc = 0;
	while (pmm_alloc(&p, 0) != PMM_NO_PAGE)
		n_alloc++;
	CHECK_EQ_U64(n_alloc, odd);
	for (uint64_t pfn = odd; pfn-- > 0;)
		if (!CHECK_EQ_U64(pmm_free(&p, pfn * PG, 0), 0))
			break;
	CHECK(pmm_check(&p));
	for (unsigned o = 0; o < PMM_ORDERS; o++)
		CHECK_EQ_U64(p.c.free_blocks[o], want[o]);
	free(buf);
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
 * allocator itself must not care. Nothing backs physical 0 here: the
 * allocator must not need it to, since it never touches free memory. */
static void test_phys_zero(void)
{
	fresh();
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

/* The kernel's metadata sits at the start of a usable range: those
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

int main(void)
{
	if (fixture_setup() < 0)
		return 2;
	test_init();
	test_split_merge();
	test_phys_zero();
	test_alignment_and_exhaustion();
	test_counters();
	test_bad_free();
	test_add_range();
	test_add_in_use();
	fixture_teardown();
	return check_summary("pmm");
}
