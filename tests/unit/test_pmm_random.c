/* Unit tests of the buddy allocator, kernel/mm/pmm.c, run natively: a long
 * random run against a model, and the promise of pmm.h that the allocator
 * never writes to free memory (the host may not have backed it, or may
 * have taken it back through the balloon). The fake machine is in
 * pmm_fixture.h; the deterministic cases are in test_pmm.c. */
#include "tests/unit/pmm_fixture.h"

#define PAGE_WORDS (PG / 8)

/* Whether every word of every page in the arena is ARENA_WORD, except
 * (when sampled is given) the sampled words of pages marked in it, which
 * the test itself wrote. Pages are numbered by frame. */
static bool is_sample(uint64_t w) { return w == 0 || w == 1 || w == PAGE_WORDS - 1; }
static bool arena_clean(const bool *sampled, uint64_t *bad_pfn)
{
	for (uint64_t pfn = PHYS_BASE / PG; pfn < MAX_PFN; pfn++) {
		const uint64_t *w = host_words(pfn * PG);
		bool skip = sampled && sampled[pfn];
		for (uint64_t i = 0; i < PAGE_WORDS; i++)
			if (w[i] != ARENA_WORD && !(skip && is_sample(i))) {
				*bad_pfn = pfn;
				return false;
			}
	}
	return true;
}

/* Allocation and freeing without the test writing anything: the arena
 * must come out exactly as it went in. Then with the test writing zeros
 * into every block it is handed: each page must end up either all pattern
 * (never handed out, and the allocator never wrote it) or all zero (handed
 * out, and the allocator did not write it after it came back). */
static bool handed[MAX_PFN];
static uint64_t untouched_pa[4096];
static unsigned untouched_order[4096];

static void test_free_memory_untouched(void)
{
	uint64_t bad = 0;
	fresh_layout();
	if (!CHECK(arena_clean(NULL, &bad)))
		fprintf(stderr, "    pmm_init/pmm_add_range wrote to frame 0x%llx\n", (unsigned long long)bad);

	for (int zero = 0; zero <= 1; zero++) {
		fresh_layout();
		memset(handed, 0, sizeof handed);
		rng_state = 0x7a11 + (uint64_t)zero;
		unsigned n = 0;
		/* Rounds of allocating up to a third of memory, then freeing a
		 * random half; the last round frees everything. Orders 0-9 mixed,
		 * so blocks split, merge and are handed out again. */
		for (int round = 0; round < 6; round++) {
			while (n < 4096 && pmm.c.allocated_pages < layout_pages / 3) {
				unsigned order = (unsigned)(rng() % PMM_ORDERS);
				uint64_t pa = pmm_alloc(&pmm, order);
				if (pa == PMM_NO_PAGE)
					break;
				if (zero)
					memset(host_words(pa), 0, PG << order);
				for (uint64_t j = 0; j < 1ull << order; j++)
					handed[pa / PG + j] = true;
				untouched_pa[n] = pa;
				untouched_order[n++] = order;
			}
			for (unsigned k = 0; k < n;) {
				if (round == 5 || rng() % 2) {
					CHECK_EQ_U64(pmm_free(&pmm, untouched_pa[k], untouched_order[k]), 0);
					untouched_pa[k] = untouched_pa[--n];
					untouched_order[k] = untouched_order[n];
				} else {
					k++;
				}
			}
		}
		CHECK(pmm_check(&pmm));
		expect_shape(layout_shape, __LINE__);
		bool ok = true;
		uint64_t pfn = PHYS_BASE / PG, nhanded = 0;
		for (; ok && pfn < MAX_PFN; pfn++) {
			const uint64_t *w = host_words(pfn * PG);
			uint64_t want = zero && handed[pfn] ? 0 : ARENA_WORD;
			for (uint64_t i = 0; ok && i < PAGE_WORDS; i++)
				ok = w[i] == want;
		}
		if (!CHECK(ok))
			fprintf(stderr, "    frame 0x%llx written by the allocator (test wrote %s)\n",
			        (unsigned long long)(pfn - 1), zero ? "zeros into handed-out blocks" : "nothing");
		/* the sequence must have handed out a good part, and not all, of
		 * memory, or "never handed out" covered little */
		for (uint64_t f = 0; f < MAX_PFN; f++)
			nhanded += handed[f];
		printf("pmm: untouched run %d: %llu of %llu pages handed out\n", zero, (unsigned long long)nhanded,
		       (unsigned long long)layout_pages);
		CHECK(nhanded > layout_pages / 4 && nhanded < layout_pages * 9 / 10);
	}
}

/* A long random sequence against a model: the set of allocated blocks,
 * each filled with a pattern derived from a per-block tag. The pattern
 * covers the first 16 bytes of every page and the last 8 (where a list
 * link would go if the allocator ever threaded one through memory, so a
 * block it wrongly thinks free shows). A freed block gets ARENA_WORD back
 * in those words before it is freed, so that all memory the test does not
 * own must hold ARENA_WORD: a block must still hold it when it is handed
 * out, and the whole arena is scanned now and then. */
#define RANDOM_STEPS 200000
#define CHECK_EVERY 256
#define SCAN_EVERY 25000

struct block {
	uint64_t pa, tag;
	unsigned order;
};
static struct block blocks[MAX_PFN];
static uint32_t nblocks;
static bool taken[MAX_PFN];

static uint64_t pattern(uint64_t tag, uint64_t page) { return tag ^ (page * 0x9e3779b97f4a7c15ull); }

static void fill(const struct block *b, bool clear)
{
	for (uint64_t i = 0; i < 1ull << b->order; i++) {
		uint64_t *w = host_words(b->pa + i * PG);
		w[0] = w[1] = w[PAGE_WORDS - 1] = clear ? ARENA_WORD : pattern(b->tag, i);
	}
}

/* The block's sampled words hold its pattern (or, before it is filled,
 * ARENA_WORD). */
static bool holds(const struct block *b, bool clear)
{
	for (uint64_t i = 0; i < 1ull << b->order; i++) {
		const uint64_t *w = host_words(b->pa + i * PG);
		uint64_t v = clear ? ARENA_WORD : pattern(b->tag, i);
		if (w[0] != v || w[1] != v || w[PAGE_WORDS - 1] != v)
			return false;
	}
	return true;
}
#define intact(b) holds((b), false)

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
					/* free until now: the allocator must not have written it */
					ok &= holds(&blocks[nblocks], true);
					fill(&blocks[nblocks++], false);
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
			fill(&b, true); /* the test's last write: back to the arena pattern */
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
		uint64_t bad = 0;
		if (step % SCAN_EVERY == 0 && !arena_clean(taken, &bad)) {
			fprintf(stderr, "    frame 0x%llx: memory the test does not own was written\n",
			        (unsigned long long)bad);
			ok = false;
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
		if (!CHECK(intact(&blocks[k])))
			return;
		fill(&blocks[k], true);
		if (!CHECK_EQ_U64(pmm_free(&pmm, blocks[k].pa, blocks[k].order), 0))
			return;
		blocks[k] = blocks[--nblocks];
	}
	/* nothing is owned: all of the arena is the pattern again */
	uint64_t bad = 0;
	if (!CHECK(arena_clean(NULL, &bad)))
		fprintf(stderr, "    frame 0x%llx written\n", (unsigned long long)bad);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
	expect_shape(layout_shape, __LINE__);
}

int main(void)
{
	if (fixture_setup() < 0)
		return 2;
	test_free_memory_untouched();
	test_random();
	fixture_teardown();
	return check_summary("pmm_random");
}
