/* Unit tests of kernel/mm/pmm.c, run natively: the balloon's calls mixed
 * into a long random run of allocations and frees, against a model. The
 * balloon takes pages offline and brings them back (pmm_offline,
 * pmm_online) while free page reporting isolates blocks and puts them
 * back reported (pmm_isolate_unreported, pmm_putback_reported), all in
 * between the kernel's own allocations.
 *
 * The model knows what each frame is (free, allocated, offline, isolated)
 * and which free blocks were put back reported. Since the allocator
 * merges buddies eagerly, the free frames alone determine the free blocks
 * (free_shape in pmm_fixture.h), so the model also knows which merges a
 * free or a putback causes, and with them which reported marks are lost.
 * Each step checks the counters exactly (managed + offline stays the
 * memory the layout gave), every isolated block is free, of exactly the
 * order asked for and not reported, and an isolation only fails when the
 * model has no unreported free block of that order; every CHECK_EVERY
 * steps, pmm_check holds and the free lists have the shape the free
 * frames call for. The deterministic cases are in test_pmm_offline.c and
 * test_pmm_report.c. */
#include "tests/unit/pmm_fixture.h"

#define RANDOM_STEPS 150000
#define CHECK_EVERY 512
#define PHASE_STEPS 10000

/* Per phase, the cumulative percentages of the steps that take a held
 * block offline, that let the balloon take a page, bring a page back
 * online, isolate a block, put one back, and allocate; the rest free. */
static const unsigned phase_pct[3][6] = {
	{ 4, 34, 36, 46, 55, 85 },  /* inflate: the balloon grows, memory fills up */
	{ 4, 10, 18, 33, 40, 70 },  /* churn */
	{ 2, 4, 38, 50, 62, 74 },   /* deflate: the balloon gives back, memory drains */
};

enum { F_UNMANAGED, F_FREE, F_ALLOC, F_OFFLINE, F_ISOLATED };
static uint8_t frame[MAX_PFN];
static bool is_free[MAX_PFN];    /* frame[] == F_FREE, for free_shape */
static uint8_t reported[MAX_PFN]; /* on a free block's first frame: its order + 1 if reported */

struct blk {
	uint64_t pa;
	unsigned order;
};
static struct blk held[MAX_PFN], isolated[MAX_PFN];
static uint64_t offline[MAX_PFN];
static uint32_t nheld, nisolated, noffline;
static uint64_t marks_merged, marks_taken; /* reported marks lost, and how */

static void set_frames(uint64_t pa, unsigned order, uint8_t st)
{
	for (uint64_t j = 0; j < 1ull << order; j++) {
		frame[pa / PG + j] = st;
		is_free[pa / PG + j] = st == F_FREE;
	}
}

static bool frames_are(uint64_t pa, unsigned order, uint8_t st)
{
	if (pa % (PG << order) || pa / PG + (1ull << order) > MAX_PFN)
		return false;
	for (uint64_t j = 0; j < 1ull << order; j++)
		if (frame[pa / PG + j] != st)
			return false;
	return true;
}

/* A block becomes free: it merges while its buddy is all free (one free
 * block of the same order, as merging is eager), and each block it
 * absorbs loses its reported mark. Returns the order it ends up as. */
static unsigned model_free(uint64_t pa, unsigned order)
{
	uint64_t pfn = pa / PG;
	set_frames(pa, order, F_FREE);
	reported[pfn] = 0;
	for (; order < PMM_MAX_ORDER; order++) {
		uint64_t buddy = pfn ^ (1ull << order);
		if (!run_free(is_free, buddy, order))
			break;
		marks_merged += reported[buddy] != 0;
		reported[buddy] = 0;
		pfn &= ~(1ull << order);
	}
	return order;
}

/* A block is taken out of the free block holding it: that block's mark
 * goes (the pieces a split leaves free are unreported). */
static void model_take(uint64_t pa, unsigned order, uint8_t st)
{
	for (unsigned o = order; o < PMM_ORDERS; o++) {
		uint64_t head = (pa / PG) & ~((1ull << o) - 1);
		if (reported[head] == o + 1) {
			reported[head] = 0;
			marks_taken++;
		}
	}
	set_frames(pa, order, st);
}

/* Free blocks of this order the host has not been told about. */
static uint64_t unreported_blocks(unsigned order)
{
	uint64_t n = 0;
	for (uint64_t pfn = 0; pfn < MAX_PFN; pfn += 1ull << order)
		n += is_free_block(is_free, pfn, order) && reported[pfn] != order + 1;
	return n;
}

/* Every mark sits on a free block of its order. */
static bool marks_valid(void)
{
	for (uint64_t pfn = 0; pfn < MAX_PFN; pfn++)
		if (reported[pfn] && !is_free_block(is_free, pfn, reported[pfn] - 1u))
			return false;
	return true;
}

static unsigned random_order(void)
{
	unsigned r = (unsigned)(rng() % 100);
	if (r < 55) return 0;
	if (r < 70) return 1;
	if (r < 80) return 2 + (unsigned)(rng() % 3);
	if (r < 90) return 5 + (unsigned)(rng() % 4);
	return PMM_MAX_ORDER;
}

/* Refused calls the balloon code could make by mistake. */
static bool wrong_call(void)
{
	save();
	int r = 0;
	switch (rng() % 8) {
	case 0: { /* putback of a block its owner still holds */
		if (!nheld)
			return true;
		struct blk b = held[rng() % nheld];
		r = pmm_putback_reported(&pmm, b.pa, b.order);
		break;
	}
	case 1: { /* freeing an isolated block */
		if (!nisolated)
			return true;
		struct blk b = isolated[rng() % nisolated];
		r = pmm_free(&pmm, b.pa, b.order);
		break;
	}
	case 2: { /* putback at a wrong order */
		if (!nisolated)
			return true;
		struct blk b = isolated[rng() % nisolated];
		r = pmm_putback_reported(&pmm, b.pa, b.order ? b.order - 1 : 1);
		break;
	}
	case 3: /* freeing an offline page */
		if (!noffline)
			return true;
		r = pmm_free(&pmm, offline[rng() % noffline], 0);
		break;
	case 4: /* offline twice */
		if (!noffline)
			return true;
		r = pmm_offline(&pmm, offline[rng() % noffline]);
		break;
	case 5: /* online what is not offline */
		if (!nheld)
			return true;
		r = pmm_online(&pmm, held[rng() % nheld].pa);
		break;
	case 6: { /* offline, online or putback of a free page */
		uint64_t pfn = rng() % MAX_PFN;
		if (frame[pfn] != F_FREE)
			return true;
		r = rng() % 3 == 0   ? pmm_offline(&pmm, pfn * PG)
		    : rng() % 2 == 0 ? pmm_online(&pmm, pfn * PG)
		                     : pmm_putback_reported(&pmm, pfn * PG, 0);
		break;
	}
	default: /* offline of an isolated block */
		if (!nisolated)
			return true;
		r = pmm_offline(&pmm, isolated[rng() % nisolated].pa);
		break;
	}
	return r == -1 && unchanged();
}

static void test_random(void)
{
	const uint64_t seed = 0xba11002ull;
	rng_state = seed;
	printf("pmm_balloon: random sequence, seed 0x%llx, %d steps\n", (unsigned long long)seed, RANDOM_STEPS);
	fresh_layout();
	for (uint64_t pfn = 0; pfn < MAX_PFN; pfn++) {
		frame[pfn] = managed[pfn] ? F_FREE : F_UNMANAGED;
		is_free[pfn] = managed[pfn];
		reported[pfn] = 0;
	}
	nheld = nisolated = noffline = 0;
	marks_merged = marks_taken = 0;
	/* What the counters must say. */
	uint64_t pages = 0, allocs = 0, frees = 0, failures = 0, huge = 0, huge_failures = 0;
	/* What the run did, to show it did it. */
	uint64_t n_off = 0, n_on = 0, n_iso = 0, n_iso_none = 0, n_put_reported = 0, n_put_merged = 0, n_wrong = 0;
	uint64_t max_off = 0;
	for (int step = 0; step < RANDOM_STEPS; step++) {
		/* Phases in turn, so the run spans a large balloon, exhausted
		 * and fragmented memory, and memory drained. */
		const unsigned *pct = phase_pct[(step / PHASE_STEPS) % 3];
		unsigned r = (unsigned)(rng() % 100);
		bool ok = true;
		if (rng() % 30 == 0) {
			ok &= wrong_call();
			n_wrong++;
		} else if (r < pct[0] && nheld) {
			/* offline a held block: only order 0 can go */
			uint32_t k = (uint32_t)(rng() % nheld);
			struct blk b = held[k];
			if (b.order) {
				save();
				ok &= pmm_offline(&pmm, b.pa) == -1 && unchanged();
			} else {
				ok &= pmm_offline(&pmm, b.pa) == 0 && !pmm_is_allocated(&pmm, b.pa, 0);
				set_frames(b.pa, 0, F_OFFLINE);
				offline[noffline++] = b.pa;
				held[k] = held[--nheld];
				pages--;
				n_off++;
			}
		} else if (r >= pct[1] && r < pct[2] && noffline) {
			/* online: the balloon keeps the page, or frees it at once */
			uint32_t k = (uint32_t)(rng() % noffline);
			uint64_t pa = offline[k];
			ok &= pmm_online(&pmm, pa) == 0 && pmm_is_allocated(&pmm, pa, 0);
			offline[k] = offline[--noffline];
			n_on++;
			if (rng() % 2) {
				ok &= pmm_free(&pmm, pa, 0) == 0;
				model_free(pa, 0);
				frees++;
			} else {
				set_frames(pa, 0, F_ALLOC);
				held[nheld++] = (struct blk){ pa, 0 };
				pages++;
			}
		} else if (r >= pct[2] && r < pct[3]) {
			unsigned order = rng() % 4 == 0 ? PMM_MAX_ORDER : (unsigned)(rng() % PMM_MAX_ORDER);
			uint64_t pa = pmm_isolate_unreported(&pmm, order);
			if (pa == PMM_NO_PAGE) {
				ok &= unreported_blocks(order) == 0;
				n_iso_none++;
			} else {
				ok &= frames_are(pa, order, F_FREE) && is_free_block(is_free, pa / PG, order) &&
				      reported[pa / PG] != order + 1 && !pmm_is_allocated(&pmm, pa, order);
				model_take(pa, order, F_ISOLATED);
				isolated[nisolated++] = (struct blk){ pa, order };
				pages += 1ull << order;
				n_iso++;
			}
		} else if (r >= pct[3] && r < pct[4] && nisolated) {
			uint32_t k = (uint32_t)(rng() % nisolated);
			struct blk b = isolated[k];
			ok &= pmm_putback_reported(&pmm, b.pa, b.order) == 0;
			unsigned to = model_free(b.pa, b.order);
			if (to == b.order) {
				reported[b.pa / PG] = (uint8_t)(b.order + 1);
				n_put_reported++;
			} else {
				n_put_merged++;
			}
			isolated[k] = isolated[--nisolated];
			pages -= 1ull << b.order;
		} else if (nheld == 0 || r < pct[1] || r < pct[5]) {
			/* an allocation, or the balloon taking a page (allocated,
			 * then offline, as the balloon does it) */
			bool take = r < pct[1];
			unsigned order = take ? 0 : random_order();
			uint64_t pa = pmm_alloc(&pmm, order);
			if (pa == PMM_NO_PAGE) {
				failures++;
				huge_failures += order == PMM_HUGE_ORDER;
				for (unsigned o = order; o < PMM_ORDERS; o++)
					ok &= pmm.c.free_blocks[o] == 0;
			} else {
				/* never an offline or isolated frame, nor one handed out */
				ok &= frames_are(pa, order, F_FREE) && pmm_is_allocated(&pmm, pa, order);
				allocs++;
				huge += order == PMM_HUGE_ORDER;
				if (take) {
					ok &= pmm_offline(&pmm, pa) == 0;
					model_take(pa, 0, F_OFFLINE);
					offline[noffline++] = pa;
					n_off++;
				} else {
					model_take(pa, order, F_ALLOC);
					held[nheld++] = (struct blk){ pa, order };
					pages += 1ull << order;
				}
			}
		} else {
			uint32_t k = (uint32_t)(rng() % nheld);
			struct blk b = held[k];
			ok &= pmm_free(&pmm, b.pa, b.order) == 0;
			model_free(b.pa, b.order);
			held[k] = held[--nheld];
			pages -= 1ull << b.order;
			frees++;
		}
		if (noffline > max_off)
			max_off = noffline;
		const struct pmm_counters *c = &pmm.c;
		ok &= c->managed_pages + c->offline_pages == layout_pages && c->offline_pages == noffline &&
		      c->allocated_pages == pages && c->free_pages == layout_pages - noffline - pages &&
		      c->allocs == allocs && c->frees == frees && c->alloc_failures == failures &&
		      c->huge_allocs == huge && c->huge_failures == huge_failures;
		if (step % CHECK_EVERY == 0) {
			uint64_t shape[PMM_ORDERS];
			free_shape(is_free, shape);
			ok &= pmm_check(&pmm) && memcmp(shape, c->free_blocks, sizeof shape) == 0 && marks_valid();
		}
		if (!CHECK(ok)) {
			fprintf(stderr, "    step %d: model and allocator disagree (%u held, %u isolated, %u offline)\n",
			        step, nheld, nisolated, noffline);
			return;
		}
	}
	printf("pmm_balloon: %llu allocs (%llu failed), %llu frees, %llu offline (at most %llu at once), "
	       "%llu online, %llu isolated (%llu found none), put back %llu reported + %llu merged, "
	       "marks lost to %llu merges + %llu allocations, %llu wrong calls\n",
	       (unsigned long long)allocs, (unsigned long long)failures, (unsigned long long)frees,
	       (unsigned long long)n_off, (unsigned long long)max_off, (unsigned long long)n_on,
	       (unsigned long long)n_iso, (unsigned long long)n_iso_none, (unsigned long long)n_put_reported,
	       (unsigned long long)n_put_merged, (unsigned long long)marks_merged, (unsigned long long)marks_taken,
	       (unsigned long long)n_wrong);
	/* The run must have done each thing, and run out of memory. */
	CHECK(failures > 0 && huge > 0 && huge_failures > 0);
	CHECK(n_off > 0 && n_on > 0 && n_iso > 0 && n_iso_none > 0 && n_put_reported > 0 && n_put_merged > 0);
	CHECK(marks_merged > 0 && marks_taken > 0);
	CHECK(max_off > layout_pages / 8);

	/* Everything back, and the layout's shape again. */
	bool ok = true;
	while (noffline) {
		uint64_t pa = offline[--noffline];
		ok &= pmm_online(&pmm, pa) == 0 && pmm_free(&pmm, pa, 0) == 0;
	}
	while (nisolated) {
		struct blk b = isolated[--nisolated];
		ok &= pmm_putback_reported(&pmm, b.pa, b.order) == 0;
	}
	while (nheld) {
		struct blk b = held[--nheld];
		ok &= pmm_free(&pmm, b.pa, b.order) == 0;
	}
	CHECK(ok);
	CHECK(pmm_check(&pmm));
	CHECK_EQ_U64(pmm.c.managed_pages, layout_pages);
	CHECK_EQ_U64(pmm.c.offline_pages, 0);
	CHECK_EQ_U64(pmm.c.free_pages, layout_pages);
	CHECK_EQ_U64(pmm.c.allocated_pages, 0);
	expect_shape(layout_shape, __LINE__);
}

int main(void)
{
	if (fixture_setup() < 0)
		return 2;
	test_random();
	fixture_teardown();
	return check_summary("pmm_balloon");
}
