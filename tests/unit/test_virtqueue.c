/* Unit tests of the split virtqueue, drivers/virtio/virtqueue.c, run
 * natively against the fake device of vq_fake_device.h: ring layout, chains
 * of every shape, the free list, completion order, notification
 * suppression with and without EVENT_IDX across 16-bit wraparound. A
 * device that lies is test_virtqueue_hostile.c's. */
#include "tests/unit/vq_fake_device.h"

/* The legacy layout (virtio 1.2, 2.7.2), computed independently. */
static void test_layout(void)
{
	for (unsigned size = 1; size <= VQ_TEST_MAX; size *= 2) {
		uint64_t avail_end = 16 * size + 4 + 2 * size + 2; /* flags, idx, ring, used_event */
		uint64_t used_off = (avail_end + 4095) / 4096 * 4096;
		CHECK_EQ_U64(vq_split_ring_bytes((uint16_t)size), used_off + 4 + 8 * size + 2);
		struct fix f;
		if (!setup(&f, (uint16_t)size, true))
			return;
		CHECK(f.vq.split.desc == (void *)f.mem);
		CHECK((uint8_t *)f.vq.split.avail == f.mem + 16 * size);
		CHECK((uint8_t *)f.vq.split.used == f.mem + used_off);
		CHECK_EQ_U64(f.vq.desc_phys, f.phys);
		CHECK_EQ_U64(f.vq.driver_phys, f.phys + 16 * size);
		CHECK_EQ_U64(f.vq.device_phys, f.phys + used_off);
		CHECK_EQ_U64(f.vq.device_phys % 4096, 0);
		CHECK_EQ_U64(f.vq.num_free, size);
		teardown(&f);
	}
	/* the numbers QEMU's legacy transport derives from a 256-entry queue */
	CHECK_EQ_U64(vq_split_ring_bytes(256), 8192 + 2054);
	CHECK_EQ_U64(vq_split_ring_bytes(128), 4096 + 1030);
	/* sizes that are not powers of two, or too big */
	struct virtqueue vq;
	static uint8_t mem[16384];
	static struct vq_desc_state st[4];
	const uint32_t bad[] = { 0, 3, 6, 255, 257, 0x10000, 0x7fff, 0xffff, 0x20000 };
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!CHECK_EQ_U64(vq_init_split(&vq, 0, bad[i], mem, 0, st, false), (uint64_t)-1))
			fprintf(stderr, "    size %u accepted\n", bad[i]);
	/* no state memory */
	CHECK_EQ_U64(vq_init_split(&vq, 0, 4, mem, 0, NULL, false), (uint64_t)-1);
	/* the spec's largest queue: layout and state sizes, and 32768 free */
	CHECK_EQ_U64(vq_state_bytes(VQ_MAX_SIZE), 16u * 32768);
	CHECK_EQ_U64(vq_split_ring_bytes(1024), 20480 + 8198);
}

/* Adds chains of every length with every split into readable and
 * writable parts; the device must see exactly what was added. */
static void round_trip(struct fix *f, unsigned n, unsigned n_out, uintptr_t t)
{
	struct vq_buf bufs[VQ_TEST_MAX];
	uint32_t in_bytes = 0;
	for (unsigned k = 0; k < n; k++) {
		bufs[k] = (struct vq_buf){ 0x100000000ull * (k + 1) + t * 0x1000, (uint32_t)(1 + k * 3 + t % 7) };
		in_bytes += k >= n_out ? bufs[k].len : 0;
	}
	uint16_t before = f->vq.num_free;
	if (!CHECK_EQ_U64(vq_add(&f->vq, bufs, n_out, n - n_out, tok(t)), 0))
		return;
	CHECK_EQ_U64(f->vq.num_free, before - n);
	struct chain c;
	if (!CHECK(dev_pop(&f->dev, &c)) || !CHECK(!f->dev.bad))
		return;
	bool same = c.n == n && c.n_out == n_out && c.writable == in_bytes;
	for (unsigned k = 0; same && k < n; k++)
		same = c.addr[k] == bufs[k].addr && c.len[k] == bufs[k].len;
	if (!CHECK(same))
		fprintf(stderr, "    chain of %u (%u out) seen as %u (%u out)\n", n, n_out, c.n, c.n_out);
	/* the device writes all it may, or nothing at all */
	uint32_t wrote = t % 2 ? in_bytes : 0;
	dev_complete(&f->dev, c.head, wrote);
	uint32_t len = 0xdead;
	CHECK(vq_get_used(&f->vq, &len) == tok(t));
	CHECK_EQ_U64(len, wrote);
	CHECK(vq_get_used(&f->vq, &len) == NULL);
	CHECK_EQ_U64(f->vq.num_free, before);
	CHECK(!f->vq.broken);
}

static void test_round_trips(void)
{
	const uint16_t sizes[] = { 1, 4, 16, 256 };
	for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		struct fix f;
		if (!setup(&f, sizes[s], s % 2))
			return;
		/* every chain length up to 17, then a few up to the whole ring;
		 * readable parts of 0, 1, 2, half, and all but 2, 1, 0 */
		uintptr_t t = 1;
		const unsigned lens[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 100, 255, 256 };
		for (unsigned l = 0; l < sizeof lens / sizeof lens[0] && lens[l] <= sizes[s]; l++) {
			unsigned n = lens[l], outs[] = { 0, 1, 2, n / 2, n - 2, n - 1, n };
			for (unsigned o = 0; o < 7; o++)
				if (outs[o] <= n && (o == 0 || outs[o] > outs[o - 1]))
					round_trip(&f, n, outs[o], t++);
		}
		/* nothing, too much, and no token */
		struct vq_buf b = { 0x1000, 8 };
		CHECK_EQ_U64(vq_add(&f.vq, &b, 0, 0, tok(1)), (uint64_t)-1);
		CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, NULL), (uint64_t)-1);
		struct vq_buf many[VQ_TEST_MAX + 1] = { 0 };
		CHECK_EQ_U64(vq_add(&f.vq, many, sizes[s], 1, tok(1)), (uint64_t)-1);
		CHECK_EQ_U64(f.vq.num_free, sizes[s]);
		CHECK_EQ_U64(f.dev.avail->idx, t - 1); /* refused adds publish nothing */
		teardown(&f);
	}
}

/* Filling the ring completely, then the free list must hand back exactly
 * the descriptors of each completed chain. */
static void test_full_ring(void)
{
	struct fix f;
	if (!setup(&f, 8, false))
		return;
	struct vq_buf b[3] = { { 0x1000, 16 }, { 0x2000, 16 }, { 0x3000, 16 } };
	struct chain c[8];
	for (unsigned i = 0; i < 8; i++) {
		CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, tok(i)), 0);
		CHECK(dev_pop(&f.dev, &c[i]));
	}
	CHECK(!f.dev.bad); /* eight chains, eight different descriptors */
	CHECK_EQ_U64(f.vq.num_free, 0);
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, tok(99)), (uint64_t)-1);
	CHECK_EQ_U64(vq_add(&f.vq, b, 0, 1, tok(99)), (uint64_t)-1);
	uint32_t len;
	dev_complete(&f.dev, c[5].head, 0);
	CHECK(vq_get_used(&f.vq, &len) == tok(5));
	CHECK_EQ_U64(vq_add(&f.vq, b, 2, 0, tok(99)), (uint64_t)-1); /* one free, two wanted */
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, tok(8)), 0);
	struct chain again;
	CHECK(dev_pop(&f.dev, &again));
	CHECK_EQ_U64(again.head, c[5].head);
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, tok(99)), (uint64_t)-1);
	/* two chains of one back: a chain of two takes exactly those two */
	dev_complete(&f.dev, c[1].head, 0);
	dev_complete(&f.dev, c[6].head, 0);
	CHECK(vq_get_used(&f.vq, &len) == tok(1));
	CHECK(vq_get_used(&f.vq, &len) == tok(6));
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 2, tok(99)), (uint64_t)-1);
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 1, tok(9)), 0);
	CHECK(dev_pop(&f.dev, &again) && again.n == 2);
	CHECK((again.idx[0] == c[1].head && again.idx[1] == c[6].head) ||
	      (again.idx[0] == c[6].head && again.idx[1] == c[1].head));
	CHECK(!f.dev.bad);
	CHECK_EQ_U64(f.vq.num_free, 0);
	teardown(&f);
}

/* The device completes in any order it likes; the driver hands back
 * tokens in the order of the used ring, each with its own length. */
static void test_out_of_order(void)
{
	struct fix f;
	if (!setup(&f, 16, true))
		return;
	for (int round = 0; round < 50; round++) {
		struct chain c[8];
		unsigned perm[8];
		for (unsigned i = 0; i < 8; i++) {
			struct vq_buf b[2] = { { 0x1000 * i, 4 }, { 0x1000 * i + 0x800, 100 + i } };
			CHECK_EQ_U64(vq_add(&f.vq, b, 1, 1, tok(i)), 0);
			CHECK(dev_pop(&f.dev, &c[i]));
			perm[i] = i;
		}
		for (unsigned i = 8; i > 1; i--) {
			unsigned j = (unsigned)(rng() % i), x = perm[i - 1];
			perm[i - 1] = perm[j];
			perm[j] = x;
		}
		for (unsigned i = 0; i < 8; i++)
			dev_complete(&f.dev, c[perm[i]].head, 100 + perm[i]);
		for (unsigned i = 0; i < 8; i++) {
			uint32_t len = 0;
			CHECK(vq_get_used(&f.vq, &len) == tok(perm[i]));
			CHECK_EQ_U64(len, 100 + perm[i]);
		}
		CHECK_EQ_U64(f.vq.num_free, 16);
	}
	CHECK(!f.dev.bad && !f.vq.broken);
	teardown(&f);
}

/* Without EVENT_IDX the device's only say is VRING_USED_F_NO_NOTIFY. */
static void test_kick_flags(void)
{
	struct fix f;
	if (!setup(&f, 4, false))
		return;
	struct vq_buf b = { 0x1000, 8 };
	CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(1)), 0);
	CHECK(vq_kick_prepare(&f.vq));
	f.dev.used->flags = VRING_USED_F_NO_NOTIFY;
	CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(2)), 0);
	CHECK(!vq_kick_prepare(&f.vq));
	f.dev.used->flags = 0;
	CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(3)), 0);
	CHECK(vq_kick_prepare(&f.vq));
	/* avail_event means nothing without the feature */
	*avail_event(&f.dev) = 100;
	CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(4)), 0);
	CHECK(vq_kick_prepare(&f.vq));
	teardown(&f);
}

/* Whether the device asked to be told when avail idx moved past `event`,
 * for a move from old to new: event in [old, new) modulo 2^16. Written
 * independently of virtqueue.c's vring_need_event form. */
static bool model_notify(uint16_t event, uint16_t old, uint16_t new_idx)
{
	return (uint16_t)(event - old) < (uint16_t)(new_idx - old);
}

/* One buffer in and out, to move the indices along. */
static void cycle(struct fix *f)
{
	struct vq_buf b = { 0x1000, 8 };
	struct chain c;
	uint32_t len;
	vq_add(&f->vq, &b, 0, 1, tok(1));
	dev_pop(&f->dev, &c);
	dev_complete(&f->dev, c.head, 8);
	vq_get_used(&f->vq, &len);
}

static void test_kick_event_idx(void)
{
	struct fix f;
	struct vq_buf b = { 0x1000, 8 };
	/* From a fresh queue, 3 buffers: idx 0 -> 3. avail_event says "notify
	 * me once idx moves past this": 0, 1, 2 yes, 3 and beyond not yet. The
	 * used ring's flags are the wrong channel with EVENT_IDX (2.7.7) and
	 * must not suppress anything. */
	for (uint16_t ev = 0; ev < 6; ev++) {
		if (!setup(&f, 8, true))
			return;
		f.dev.used->flags = VRING_USED_F_NO_NOTIFY;
		for (unsigned i = 0; i < 3; i++)
			CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(i + 1)), 0);
		*avail_event(&f.dev) = ev;
		if (!CHECK_EQ_U64(vq_kick_prepare(&f.vq), ev < 3))
			fprintf(stderr, "    avail_event %u, idx 0 -> 3\n", ev);
		/* the next window starts at 3 */
		CHECK_EQ_U64(vq_add(&f.vq, &b, 1, 0, tok(4)), 0);
		*avail_event(&f.dev) = 3;
		CHECK(vq_kick_prepare(&f.vq));
		teardown(&f);
	}

	/* Thresholds around 16-bit wraparound: idx goes 65534 -> 1 in one kick
	 * window, so avail_event 65534, 65535 and 0 are in (old, new], 1 and
	 * 65533 are not. */
	const uint16_t events[] = { 65533, 65534, 65535, 0, 1, 2, 0x8000 };
	for (unsigned e = 0; e < sizeof events / sizeof events[0]; e++) {
		if (!setup(&f, 8, true))
			return;
		for (unsigned i = 0; i < 65534; i++)
			cycle(&f);
		CHECK_EQ_U64(f.dev.avail->idx, 65534);
		vq_kick_prepare(&f.vq); /* old = 65534 */
		for (unsigned i = 0; i < 3; i++)
			CHECK_EQ_U64(vq_add(&f.vq, &b, 0, 1, tok(i + 1)), 0);
		CHECK_EQ_U64(f.dev.avail->idx, 1);
		*avail_event(&f.dev) = events[e];
		bool want = events[e] >= 65534 || events[e] == 0;
		CHECK_EQ_U64(model_notify(events[e], 65534, 1), want);
		if (!CHECK_EQ_U64(vq_kick_prepare(&f.vq), want))
			fprintf(stderr, "    avail_event %u, idx 65534 -> 1\n", events[e]);
		/* nothing added since: no notification whatever avail_event says */
		CHECK(!vq_kick_prepare(&f.vq));
		teardown(&f);
	}
}

/* More than 65536 add/get cycles in batches, kicks skipped now and then
 * (so one kick covers several batches), the device moving avail_event
 * around its own position as a real one does. Every kick decision is
 * checked against the model, and used_event must always say how many
 * buffers the driver has taken back (mod 2^16). */
static void test_wraparound(void)
{
	struct fix f;
	if (!setup(&f, 8, true))
		return;
	uint16_t model_avail = 0, model_kicked = 0, model_used = 0;
	unsigned long notifies = 0, quiet = 0, cycles = 0, wrong = 0;
	bool wrapped_kick = false;
	while (cycles < 70000 || !wrapped_kick) {
		unsigned batch = 1 + (unsigned)(rng() % 4);
		for (unsigned i = 0; i < batch; i++) {
			struct vq_buf b[2] = { { 0x1000, 4 }, { 0x2000, 64 } };
			if (vq_add(&f.vq, b, 1, 1, tok(i + 1)) != 0)
				wrong++;
			model_avail++;
		}
		if (rng() % 4) {
			uint16_t ev = (uint16_t)(f.dev.last_avail + (int)(rng() % 10) - 3);
			*avail_event(&f.dev) = ev;
			bool want = model_notify(ev, model_kicked, model_avail);
			wrapped_kick |= model_avail < model_kicked && want;
			if (vq_kick_prepare(&f.vq) != want && wrong++ < 5)
				fprintf(stderr, "    event %u, old %u, new %u: kick %s\n", ev, model_kicked, model_avail,
				        want ? "missing" : "spurious");
			notifies += want;
			quiet += !want;
			model_kicked = model_avail;
		}
		struct chain c[4];
		unsigned n = 0;
		while (dev_pop(&f.dev, &c[n]))
			n++;
		wrong += n != batch || f.dev.avail->idx != model_avail;
		for (unsigned i = n; i-- > 0;)
			dev_complete(&f.dev, c[i].head, 64);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len;
			wrong += vq_get_used(&f.vq, &len) != tok(n - i) || len != 64;
			model_used++;
			wrong += used_event(&f.dev) != model_used;
		}
		cycles += batch;
	}
	printf("virtqueue: %lu cycles, %lu notifications, %lu suppressed\n", cycles, notifies, quiet);
	CHECK_EQ_U64(wrong, 0);
	CHECK(!f.dev.bad && !f.vq.broken);
	CHECK(notifies > 1000 && quiet > 1000); /* both answers, many times */
	CHECK_EQ_U64(f.vq.num_free, 8);
	teardown(&f);
}

int main(void)
{
	test_layout();
	test_round_trips();
	test_full_ring();
	test_out_of_order();
	test_kick_flags();
	test_kick_event_idx();
	test_wraparound();
	return check_summary("virtqueue");
}
