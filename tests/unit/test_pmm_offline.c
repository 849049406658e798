/* Unit tests of kernel/mm/pmm.c, run natively: offline pages. The balloon
 * takes an allocated 4 KiB page and, with the host holding it, takes it
 * out of the managed pool (pmm_offline); when the host gives it back it
 * comes back as an allocated page (pmm_online) that the balloon frees.
 * The kernel checks managed + offline = usable after every step, so the
 * counters must move exactly; an offline page must never be handed out,
 * freed, or merged with its buddy. The fake machine is in pmm_fixture.h;
 * offline pages in a random run are in test_pmm_balloon.c. */
#include "tests/unit/pmm_fixture.h"

static void expect_counts(uint64_t managed_pages, uint64_t free_pages, uint64_t allocated_pages,
                          uint64_t offline_pages, int line)
{
	bool ok = CHECK_EQ_U64(pmm.c.managed_pages, managed_pages) & CHECK_EQ_U64(pmm.c.free_pages, free_pages) &
	          CHECK_EQ_U64(pmm.c.allocated_pages, allocated_pages) &
	          CHECK_EQ_U64(pmm.c.offline_pages, offline_pages) & CHECK(pmm_check(&pmm));
	if (!ok)
		fprintf(stderr, "    counters (line %d)\n", line);
}
#define EXPECT_COUNTS(m, f, a, o) expect_counts((m), (f), (a), (o), __LINE__)

static uint64_t got[MAX_PFN];

/* One 2 MiB block: a page taken offline splits it for good, its free
 * buddy stays an order-0 block until the page comes back and is freed. */
static void test_offline_online(void)
{
	fresh();
	CHECK_EQ_U64(pmm_add_range(&pmm, 20 * MB, 2 * MB), 512);
	uint64_t a = pmm_alloc(&pmm, 0), buddy = a ^ PG;
	CHECK(a >= 20 * MB && a < 22 * MB);
	EXPECT_COUNTS(512, 511, 1, 0);
	CHECK_EQ_U64(pmm_offline(&pmm, a), 0);
	EXPECT_COUNTS(511, 511, 0, 1);
	CHECK(!pmm_is_allocated(&pmm, a, 0));
	/* not an allocation or a free: only the pool shrank */
	CHECK_EQ_U64(pmm.c.allocs, 1);
	CHECK_EQ_U64(pmm.c.frees, 0);
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	/* Offline twice, free it, online it at a wrong address: refused. */
	EXPECT_REJECT(pmm_offline(&pmm, a));
	EXPECT_REJECT(pmm_free(&pmm, a, 0));
	EXPECT_REJECT(pmm_online(&pmm, a + 1));
	EXPECT_REJECT(pmm_online(&pmm, a + PG / 2));
	EXPECT_REJECT(pmm_online(&pmm, buddy));
	EXPECT_REJECT(pmm_offline(&pmm, buddy)); /* a free order-0 page */

	/* Everything else can be allocated, a never; freed again, the buddy
	 * is an order-0 block of its own (it did not merge with a). */
	uint64_t n = 0;
	bool ok = true;
	for (uint64_t pa; (pa = pmm_alloc(&pmm, 0)) != PMM_NO_PAGE; n++) {
		ok &= pa != a && pa >= 20 * MB && pa < 22 * MB;
		got[n] = pa;
	}
	CHECK(ok);
	CHECK_EQ_U64(n, 511);
	EXPECT_COUNTS(511, 0, 511, 1);
	CHECK_EQ_U64(pmm_alloc(&pmm, PMM_MAX_ORDER), PMM_NO_PAGE);
	CHECK_EQ_U64(pmm_free(&pmm, buddy, 0), 0);
	EXPECT_SHAPE(1);
	EXPECT_COUNTS(511, 1, 510, 1);
	for (uint64_t i = 0; i < n; i++)
		if (got[i] != buddy)
			CHECK_EQ_U64(pmm_free(&pmm, got[i], 0), 0);
	EXPECT_COUNTS(511, 511, 0, 1);
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);

	/* Back online: an allocated order-0 page again, still not merged ... */
	CHECK_EQ_U64(pmm_online(&pmm, a), 0);
	EXPECT_COUNTS(512, 511, 1, 0);
	CHECK(pmm_is_allocated(&pmm, a, 0));
	EXPECT_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1, 0);
	CHECK_EQ_U64(pmm.c.allocs, 1 + 511);
	EXPECT_REJECT(pmm_online(&pmm, a));
	/* ... until it is freed, and the block is whole. */
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	EXPECT_COUNTS(512, 512, 0, 0);
	EXPECT_SHAPE([9] = 1);

	/* Offline and online again at once, and the page is as before. */
	a = pmm_alloc(&pmm, 0);
	CHECK_EQ_U64(pmm_offline(&pmm, a), 0);
	CHECK_EQ_U64(pmm_online(&pmm, a), 0);
	EXPECT_COUNTS(512, 511, 1, 0);
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	EXPECT_SHAPE([9] = 1);
}

static void test_rejects(void)
{
	fresh_layout();
	uint64_t a = pmm_alloc(&pmm, 0), c = pmm_alloc(&pmm, 1), h = pmm_alloc(&pmm, PMM_MAX_ORDER);
	uint64_t d = pmm_alloc(&pmm, 0);
	CHECK(a != PMM_NO_PAGE && c != PMM_NO_PAGE && h != PMM_NO_PAGE && d != PMM_NO_PAGE);
	CHECK_EQ_U64(pmm_offline(&pmm, d), 0);
	EXPECT_COUNTS(layout_pages - 1, layout_pages - 516, 515, 1);
	/* a free 2 MiB block none of them came from */
	uint64_t f = 32 * MB;
	while ((a >= f && a < f + 2 * MB) || (c >= f && c < f + 2 * MB) || (h >= f && h < f + 2 * MB) ||
	       (d >= f && d < f + 2 * MB))
		f += 2 * MB;

	/* Offline takes allocated order-0 pages only: not free memory, not
	 * a bigger block or a page inside one, not an unaligned address,
	 * nothing unmanaged or past max_pfn, not an offline page. */
	EXPECT_REJECT(pmm_offline(&pmm, f));
	EXPECT_REJECT(pmm_offline(&pmm, f + PG));
	EXPECT_REJECT(pmm_offline(&pmm, a ^ PG)); /* a's buddy, maybe free */
	EXPECT_REJECT(pmm_offline(&pmm, c));
	EXPECT_REJECT(pmm_offline(&pmm, c + PG));
	EXPECT_REJECT(pmm_offline(&pmm, h));
	EXPECT_REJECT(pmm_offline(&pmm, h + PG));
	EXPECT_REJECT(pmm_offline(&pmm, h + 256 * PG));
	EXPECT_REJECT(pmm_offline(&pmm, a + 1));
	EXPECT_REJECT(pmm_offline(&pmm, a + PG / 2));
	EXPECT_REJECT(pmm_offline(&pmm, a + PG - 1));
	EXPECT_REJECT(pmm_offline(&pmm, 0));
	EXPECT_REJECT(pmm_offline(&pmm, PHYS_BASE));       /* the hole before the first range */
	EXPECT_REJECT(pmm_offline(&pmm, 24 * MB));         /* a range without a whole page */
	EXPECT_REJECT(pmm_offline(&pmm, 29 * MB));         /* a hole between ranges */
	EXPECT_REJECT(pmm_offline(&pmm, MAX_PFN * PG));
	EXPECT_REJECT(pmm_offline(&pmm, (MAX_PFN + 1) * PG));
	EXPECT_REJECT(pmm_offline(&pmm, 1ull << 44));
	EXPECT_REJECT(pmm_offline(&pmm, UINT64_MAX & ~(PG - 1)));
	EXPECT_REJECT(pmm_offline(&pmm, UINT64_MAX));
	EXPECT_REJECT(pmm_offline(&pmm, d));

	/* Online takes offline pages only, at their exact address. */
	EXPECT_REJECT(pmm_online(&pmm, a));
	EXPECT_REJECT(pmm_online(&pmm, c));
	EXPECT_REJECT(pmm_online(&pmm, c + PG));
	EXPECT_REJECT(pmm_online(&pmm, h));
	EXPECT_REJECT(pmm_online(&pmm, f));
	EXPECT_REJECT(pmm_online(&pmm, f + PG));
	EXPECT_REJECT(pmm_online(&pmm, d + 1));
	EXPECT_REJECT(pmm_online(&pmm, d + PG - 1));
	EXPECT_REJECT(pmm_online(&pmm, d ^ PG));
	EXPECT_REJECT(pmm_online(&pmm, 0));
	EXPECT_REJECT(pmm_online(&pmm, PHYS_BASE));
	EXPECT_REJECT(pmm_online(&pmm, 29 * MB));
	EXPECT_REJECT(pmm_online(&pmm, MAX_PFN * PG));
	EXPECT_REJECT(pmm_online(&pmm, UINT64_MAX & ~(PG - 1)));
	EXPECT_REJECT(pmm_online(&pmm, UINT64_MAX));
	/* An offline page is no allocated block to free, at any order. */
	EXPECT_REJECT(pmm_free(&pmm, d, 0));
	EXPECT_REJECT(pmm_free(&pmm, d & ~(2 * PG - 1), 1));
	EXPECT_REJECT(pmm_free(&pmm, d & ~(2 * MB - 1), PMM_MAX_ORDER));

	/* And everything accepted comes back as it was. */
	CHECK_EQ_U64(pmm_online(&pmm, d), 0);
	CHECK_EQ_U64(pmm_free(&pmm, d, 0), 0);
	CHECK_EQ_U64(pmm_free(&pmm, a, 0), 0);
	CHECK_EQ_U64(pmm_free(&pmm, c, 1), 0);
	CHECK_EQ_U64(pmm_free(&pmm, h, PMM_MAX_ORDER), 0);
	EXPECT_COUNTS(layout_pages, layout_pages, 0, 0);
	expect_shape(layout_shape, __LINE__);
}

/* A third of all memory offline, scattered: the rest is exactly what can
 * be allocated, at order 0 and at order 9, in the shape the free frames
 * call for; then all of it back. */
static bool is_offline[MAX_PFN], is_free[MAX_PFN];
static uint64_t offline_pa[MAX_PFN];

static void test_many_offline(void)
{
	fresh_layout();
	rng_state = 0x0ff11e;
	uint64_t n = 0, noff = 0;
	for (uint64_t pa; (pa = pmm_alloc(&pmm, 0)) != PMM_NO_PAGE;)
		got[n++] = pa;
	CHECK_EQ_U64(n, layout_pages);
	memset(is_offline, 0, sizeof is_offline);
	bool ok = true;
	for (uint64_t i = 0; i < n; i++) {
		if (rng() % 3 == 0) {
			ok &= pmm_offline(&pmm, got[i]) == 0;
			is_offline[got[i] / PG] = true;
			offline_pa[noff++] = got[i];
		} else {
			ok &= pmm_free(&pmm, got[i], 0) == 0;
		}
		ok &= pmm.c.managed_pages + pmm.c.offline_pages == layout_pages;
	}
	CHECK(ok);
	printf("pmm_offline: %llu of %llu pages offline\n", (unsigned long long)noff, (unsigned long long)n);
	EXPECT_COUNTS(layout_pages - noff, layout_pages - noff, 0, noff);
	uint64_t want[PMM_ORDERS];
	for (uint64_t pfn = 0; pfn < MAX_PFN; pfn++)
		is_free[pfn] = managed[pfn] && !is_offline[pfn];
	free_shape(is_free, want);
	expect_shape(want, __LINE__);

	for (unsigned order = 0; order <= PMM_MAX_ORDER; order += PMM_MAX_ORDER) {
		uint64_t k = 0;
		ok = true;
		for (uint64_t pa; (pa = pmm_alloc(&pmm, order)) != PMM_NO_PAGE; k++) {
			for (uint64_t j = 0; j < 1ull << order; j++)
				ok &= is_free[pa / PG + j];
			got[k] = pa;
		}
		if (!CHECK(ok))
			fprintf(stderr, "    order %u: an offline page was handed out\n", order);
		/* order 0: every free frame; order 9: every whole free 2 MiB run */
		CHECK_EQ_U64(k, order == 0 ? layout_pages - noff : want[PMM_MAX_ORDER]);
		CHECK(pmm_check(&pmm));
		for (uint64_t i = 0; i < k; i++)
			CHECK_EQ_U64(pmm_free(&pmm, got[i], order), 0);
		expect_shape(want, __LINE__);
	}

	/* Back in a random order; each page merges as soon as it is freed. */
	for (uint64_t i = noff; i > 1; i--) {
		uint64_t j = rng() % i, t = offline_pa[i - 1];
		offline_pa[i - 1] = offline_pa[j];
		offline_pa[j] = t;
	}
	ok = true;
	for (uint64_t i = 0; i < noff; i++) {
		ok &= pmm_online(&pmm, offline_pa[i]) == 0 && pmm.c.offline_pages == noff - i - 1;
		ok &= pmm.c.managed_pages + pmm.c.offline_pages == layout_pages;
		ok &= pmm_free(&pmm, offline_pa[i], 0) == 0;
		if (i % 512 == 0)
			ok &= pmm_check(&pmm);
	}
	CHECK(ok);
	EXPECT_COUNTS(layout_pages, layout_pages, 0, 0);
	expect_shape(layout_shape, __LINE__);
}

int main(void)
{
	if (fixture_setup() < 0)
		return 2;
	test_offline_online();
	test_rejects();
	test_many_offline();
	fixture_teardown();
	return check_summary("pmm_offline");
}
