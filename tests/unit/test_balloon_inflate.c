/* Unit tests of drivers/virtio/balloon_inflate.c, inflate and deflate:
 * device queues smaller than the buffers in flight, QEMU's queue size with
 * buffers completed out of order, and a target beyond memory (the
 * reserve), driven as the kernel drives them (balloon_pages_work from the
 * idle loop) on the machine of balloon_machine.h. Deflate on OOM is in
 * test_balloon_oom.c. */
#include "tests/unit/balloon_machine.h"

/* 1. The device's queues are smaller than BALLOON_BUFS, so the ring fills
 * with idle buffers to spare. A buffer filled then has nowhere to go: the
 * PFNs popped for it used to be lost (deflate_one before the fix). */
static void test_small_queues(void)
{
	const uint16_t sizes[] = { 1, 2, 4 };
	const struct pace paces[] = { ONE, ALL };
	const uint32_t target = 6000; /* five full buffers and one of 880 */
	for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		for (unsigned p = 0; p < 2; p++) {
			uint64_t free0 = machine_up(sizes[s], sizes[s], false);
			char what[128];
			snprintf(what, sizeof what, "queues of %u, device completes %s: inflate to %u", sizes[s],
			         p ? "all per round" : "one per round", target);
			const struct balloon *b = &balloon;
			/* the ring is full, with idle buffers to spare */
			if (!first_run(target, what))
				continue;
			CHECK_EQ_U64(busy_bufs(b->pg.inflate_buf), sizes[s]);
			CHECK_EQ_U64(vq_num_free(b->pg.inflate_vq), 0);
			if (!settle(target, paces[p], what))
				continue;
			CHECK_EQ_U64(b->pg.pages, target);
			CHECK_EQ_U64(b->pg.inflated_total, target);
			CHECK_EQ_U64(host_actual, target);
			CHECK_EQ_U64(pmm.c.offline_pages, target);
			CHECK_EQ_U64(pmm.c.free_pages, free0 - target - ceil_div(target, CHUNK_PFNS));
			/* the ring was full, not the memory: nothing to say */
			CHECK_EQ_U64(unreachable_logs, 0);
			snprintf(what, sizeof what, "queues of %u, device completes %s: deflate to 0", sizes[s],
			         p ? "all per round" : "one per round");
			if (!first_run(0, what))
				continue;
			CHECK_EQ_U64(busy_bufs(b->pg.deflate_buf), sizes[s]);
			CHECK_EQ_U64(b->pg.deflating, sizes[s] * BALLOON_PFNS_PER_BUF);
			CHECK_EQ_U64(vq_num_free(b->pg.deflate_vq), 0);
			if (!settle(0, paces[p], what))
				continue;
			check_all_back();
			CHECK_EQ_U64(b->pg.deflated_total, target);
			CHECK_EQ_U64(inflate_dev.pfns_done, target);
			CHECK_EQ_U64(deflate_dev.pfns_done, target);
		}
	}
}

/* 2. QEMU's queue size: all 8 buffers in flight on each queue, the device
 * completing any number of them in any order, and the target turned
 * around while buffers are in flight. */
static void test_qemu_queue_out_of_order(void)
{
	machine_up(128, 128, false);
	const struct balloon *b = &balloon;
	if (!first_run(12000, "queues of 128: the first inflate run"))
		return;
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		CHECK(b->pg.inflate_buf[i].busy && b->pg.inflate_buf[i].count == BALLOON_PFNS_PER_BUF);
	CHECK_EQ_U64(b->pg.inflating, BALLOON_BUFS * BALLOON_PFNS_PER_BUF);
	CHECK_EQ_U64(vq_num_free(b->pg.inflate_vq), 128 - BALLOON_BUFS);
	if (!settle(12000, SHUFFLED, "queues of 128, out of order: inflate to 12000"))
		return;
	CHECK_EQ_U64(b->pg.pages, 12000);
	CHECK_EQ_U64(b->pg.inflated_total, 12000);

	if (!first_run(0, "queues of 128: the first deflate run"))
		return;
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		CHECK(b->pg.deflate_buf[i].busy && !b->pg.deflate_buf[i].already_back);
	CHECK_EQ_U64(b->pg.deflating, BALLOON_BUFS * BALLOON_PFNS_PER_BUF);
	CHECK_EQ_U64(vq_num_free(b->pg.deflate_vq), 128 - BALLOON_BUFS);
	if (!settle(0, SHUFFLED, "queues of 128, out of order: deflate to 0"))
		return;
	check_all_back();
	CHECK_EQ_U64(b->pg.deflated_total, 12000);

	/* up again, and down to 2500 while all 8 inflate buffers are out */
	if (!first_run(9000, "queues of 128, out of order: inflate to 9000"))
		return;
	CHECK_EQ_U64(b->pg.inflating, BALLOON_BUFS * BALLOON_PFNS_PER_BUF);
	dev_round(&inflate_dev, SHUFFLED);
	if (!settle(2500, SHUFFLED, "queues of 128, out of order: turned around to 2500"))
		return;
	CHECK_EQ_U64(b->pg.pages, 2500);
	CHECK_EQ_U64(host_pages, 2500);
	if (!settle(0, SHUFFLED, "queues of 128, out of order: from 2500 to 0"))
		return;
	check_all_back();
	CHECK(inflate_dev.out_of_order > 0 && deflate_dev.out_of_order > 0);
	CHECK_EQ_U64(b->pg.inflated_total, b->pg.deflated_total);
	CHECK_EQ_U64(inflate_dev.pfns_done, b->pg.inflated_total);
	CHECK_EQ_U64(deflate_dev.pfns_done, b->pg.deflated_total);
}

/* 4. A target beyond memory: the balloon takes the page cache (which gives
 * way to it) and then free memory down to MM_BALLOON_RESERVE_PAGES, says so
 * once, and holds there, however often the work runs again. */
static void test_reserve(void)
{
	uint64_t free0 = machine_up(128, 128, false);
	const struct balloon *b = &balloon;
	for (; cache_pages < 500; cache_pages++)
		cache_page[cache_pages] = page_alloc(0);
	if (!settle(20000, ALL, "a target beyond memory"))
		return;
	/* run 1: 8 full buffers; run 2: their store pages, then the rest down
	 * to the reserve, the cache reclaimed once on the way; run 3: the
	 * store pages for those, below the reserve (they are not ballooned) */
	uint64_t first = BALLOON_BUFS * BALLOON_PFNS_PER_BUF, store_pages_then = ceil_div(first, CHUNK_PFNS);
	uint64_t held = free0 - MM_BALLOON_RESERVE_PAGES - store_pages_then;
	CHECK_EQ_U64(b->pg.pages, held);
	CHECK_EQ_U64(host_actual, held);
	CHECK_EQ_U64(cache_pages, 0);
	CHECK_EQ_U64(cache_reclaims, 1);
	CHECK_EQ_U64(pmm.c.free_pages, MM_BALLOON_RESERVE_PAGES - (ceil_div(held, CHUNK_PFNS) - store_pages_then));
	char line[256];
	snprintf(line, sizeof line, "ballast: balloon: target 20000 pages not reachable: keeping %u free pages for "
	         "the kernel; holding at %" PRIu64 "\n", MM_BALLOON_RESERVE_PAGES, held);
	CHECK_EQ_U64(unreachable_logs, 1);
	CHECK_EQ_STR(unreachable_line, line);
	for (unsigned run = 1; run <= 3; run++) { /* the retry tick */
		balloon_pages_work(&balloon);
		CHECK(check_state(run) && !busy());
	}
	CHECK_EQ_U64(b->pg.pages, held);
	CHECK_EQ_U64(unreachable_logs, 1);
	if (!settle(0, ALL, "a target beyond memory: deflate to 0"))
		return;
	check_all_back();
}

int main(void)
{
	static void (*const cases[])(void) = { test_small_queues, test_qemu_queue_out_of_order, test_reserve };
	return run_cases("balloon_inflate", cases, sizeof cases / sizeof cases[0]);
}
