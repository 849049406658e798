/* Unit tests of drivers/virtio/balloon_inflate.c, pages the guest takes
 * back before the host has heard: deflate on OOM (balloon_oom_deflate from
 * inside the allocator, the host told later by the work), memory freed
 * again before the host was told, and PFNs the guest has no page to record
 * in; on the machine of balloon_machine.h. */
#include "tests/unit/balloon_machine.h"

/* A workload that allocates page by page until the OOM handler has run
 * `events` times; returns how many pages it holds (in hog). */
static uint64_t hog_until_oom_calls(uint64_t events, uint64_t *hog)
{
	uint64_t hogged = 0;
	while (oom_calls < events) {
		uint64_t pa = page_alloc(0);
		if (!CHECK(pa != PMM_NO_PAGE))
			break;
		hog[hogged++] = pa;
	}
	return hogged;
}

/* 3. DEFLATE_ON_OOM: a workload runs the allocator dry five times; each
 * time balloon_oom_deflate hands back a batch at once, and the work tells
 * the host later, in deflate buffers marked already_back (with a deflate
 * queue of 1 too, where the 1282 PFNs to tell need two turns). */
static void test_deflate_on_oom(void)
{
	static uint64_t hog[ARENA_PAGES];
	const uint16_t deflate_sizes[] = { 128, 1 };
	/* every call deflates a batch of PFNs; the first and the fourth start
	 * a page of the list to tell with one of them (CHUNK_PFNS each), and
	 * the store's top page (5000 - 4 * 1020 = 920 PFNs) runs out in the
	 * fourth and comes free: that is what the calls free in all */
	const uint64_t events = 5, told = events * OOM_BATCH, list_pages = ceil_div(told, CHUNK_PFNS), emptied = 1;
	const uint64_t pfns_freed = told - list_pages, freed = pfns_freed + emptied;
	const uint64_t left = 5000 - told;
	for (unsigned s = 0; s < 2; s++) {
		machine_up(128, deflate_sizes[s], true);
		const struct balloon *b = &balloon;
		char what[128];
		snprintf(what, sizeof what, "deflate on OOM, deflate queue of %u: inflate to 5000", deflate_sizes[s]);
		if (!settle(5000, ALL, what))
			continue;
		CHECK_EQ_U64(pmm.c.offline_pages, 0); /* DEFLATE_ON_OOM: ballooned pages stay managed */
		uint64_t free_before = pmm.c.free_pages, hogged = hog_until_oom_calls(events, hog);
		CHECK(irq_on);
		CHECK_EQ_U64(b->pg.oom_deflates, events);
		CHECK_EQ_U64(b->pg.oom_pages, told);
		CHECK_EQ_U64(b->pg.pages, left);
		CHECK_EQ_U64(b->pg.oom_tell_count, told);
		CHECK_EQ_U64(works_queued, events);
		CHECK_EQ_U64(oom_freed, freed);
		/* the last batch, less the page that called for it (the store page
		 * emptied on the way is in oom_freed: the handler counts it) */
		CHECK_EQ_U64(pmm.c.free_pages, OOM_BATCH - 1);
		CHECK_EQ_U64(hogged, free_before + oom_freed - (OOM_BATCH - 1));
		CHECK_EQ_U64(host_actual, 5000); /* the host hears only from the work */

		snprintf(what, sizeof what, "deflate on OOM, deflate queue of %u: telling the host", deflate_sizes[s]);
		if (!settle(5000, ALL, what))
			continue;
		CHECK_EQ_U64(deflate_dev.pfns_done, told);
		CHECK_EQ_U64(b->pg.deflated_total, 0); /* they came back on OOM, not by deflating */
		CHECK_EQ_U64(b->pg.pages, left);
		CHECK_EQ_U64(host_pages, left);
		CHECK_EQ_U64(pmm.c.free_pages, OOM_BATCH - 1 + told - pfns_freed); /* the list's own pages */
		/* the workload still has the memory: the reserve holds the balloon */
		char line[256];
		snprintf(line, sizeof line, "ballast: balloon: target 5000 pages not reachable: keeping %u free pages "
		         "for the kernel; holding at %" PRIu64 "\n", MM_BALLOON_RESERVE_PAGES, left);
		CHECK_EQ_U64(unreachable_logs, 1);
		CHECK_EQ_STR(unreachable_line, line);

		while (hogged)
			page_free(hog[--hogged], 0);
		snprintf(what, sizeof what, "deflate on OOM, deflate queue of %u: inflate again", deflate_sizes[s]);
		if (!settle(5000, ALL, what))
			continue;
		CHECK_EQ_U64(b->pg.pages, 5000);
		CHECK_EQ_U64(b->pg.inflated_total, 5000 + told);
		snprintf(what, sizeof what, "deflate on OOM, deflate queue of %u: deflate to 0", deflate_sizes[s]);
		if (!settle(0, ALL, what))
			continue;
		check_all_back();
		CHECK_EQ_U64(b->pg.deflated_total, 5000);
		CHECK_EQ_U64(deflate_dev.pfns_done, 5000 + told);
		CHECK_EQ_U64(b->pg.oom_deflates, events);
	}
}

/* 3b. The same, but the workload frees its memory before the host has
 * been told: the pages handed back on OOM are free again when the work
 * runs, and must not be inflated until the host has heard of their deflate
 * (it would see them inflated twice, then deflated while the guest keeps
 * them in its store). */
static void test_oom_freed_before_told(void)
{
	static uint64_t hog[ARENA_PAGES];
	const uint64_t events = 2, told = events * OOM_BATCH;
	const uint16_t deflate_sizes[] = { 128, 1 };
	for (unsigned s = 0; s < 2; s++) {
		machine_up(128, deflate_sizes[s], true);
		const struct balloon *b = &balloon;
		char what[128];
		snprintf(what, sizeof what, "OOM, freed before told, deflate queue of %u: inflate", deflate_sizes[s]);
		if (!settle(5000, ALL, what))
			continue;
		uint64_t hogged = hog_until_oom_calls(events, hog);
		CHECK_EQ_U64(b->pg.oom_tell_count, told);
		while (hogged)
			page_free(hog[--hogged], 0);
		snprintf(what, sizeof what, "OOM, freed before told, deflate queue of %u: tell, inflate", deflate_sizes[s]);
		if (!settle(5000, ALL, what))
			continue;
		CHECK_EQ_U64(b->pg.pages, 5000);
		CHECK_EQ_U64(b->pg.inflated_total, 5000 + told);
		CHECK_EQ_U64(deflate_dev.pfns_done, told);
		CHECK_EQ_U64(host_pages, 5000);
		CHECK_EQ_U64(unreachable_logs, 0);
		snprintf(what, sizeof what, "OOM, freed before told, deflate queue of %u: deflate to 0", deflate_sizes[s]);
		if (!settle(0, ALL, what))
			continue;
		check_all_back();
	}
}

/* 3c. The host accepts an inflate, and there is no page to record the PFNs
 * in: the guest takes them back (logged once) and tells the host on the
 * deflate queue, as after an OOM; once memory is back, the balloon
 * inflates to its target. */
static void test_no_store_page(void)
{
	const uint64_t target = 3000;
	machine_up(128, 128, false);
	const struct balloon *b = &balloon;
	if (!first_run(target, "no store page: inflate"))
		return;
	CHECK_EQ_U64(b->pg.inflating, target);
	store_takes_fail = true;
	dev_round(&inflate_dev, ALL);
	balloon_pages_work(&balloon); /* the buffers come back; every push fails */
	if (!check_state(2))
		return;
	CHECK_EQ_U64(store_take_failures, target); /* one failed take a PFN: the store never got a page */
	CHECK_EQ_U64(b->pg.pages, 0);
	CHECK_EQ_U64(b->pg.inflated_total, 0);
	CHECK_EQ_U64(untracked_logs, BALLOON_BUFS < 3 ? BALLOON_BUFS : 3); /* a line a buffer */
	CHECK(strstr(untracked_line, "ballast: balloon: no memory to track 952 ballooned pages; took them back") ==
	      untracked_line);
	CHECK_EQ_U64(host_actual, 0);
	store_takes_fail = false;
	if (!settle(target, ALL, "no store page: tell, then inflate"))
		return;
	CHECK_EQ_U64(b->pg.pages, target);
	CHECK_EQ_U64(b->pg.inflated_total, target);
	CHECK_EQ_U64(deflate_dev.pfns_done, target); /* every PFN taken back was told */
	CHECK_EQ_U64(b->pg.deflated_total, 0);
	CHECK_EQ_U64(host_pages, target);
	CHECK_EQ_U64(unreachable_logs, 0);
	if (!settle(0, ALL, "no store page: deflate to 0"))
		return;
	check_all_back();
	CHECK_EQ_U64(deflate_dev.pfns_done, 2 * target);
}

int main(void)
{
	static void (*const cases[])(void) = { test_deflate_on_oom, test_oom_freed_before_told, test_no_store_page };
	return run_cases("balloon_oom", cases, sizeof cases / sizeof cases[0]);
}
