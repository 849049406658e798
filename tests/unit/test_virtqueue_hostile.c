/* Unit tests of the split virtqueue, drivers/virtio/virtqueue.c, against
 * a device that lies (used ids, lengths and indices that cannot be true)
 * or scribbles over the descriptor table: the driver must stop trusting it
 * without handing out a token or a descriptor it should not. The fake
 * device is vq_fake_device.h's. */
#include "tests/unit/vq_fake_device.h"

/* A hostile device. Three buffers in flight on a queue of 8: A (one
 * readable descriptor), B (two readable, one writable of 100 bytes), C
 * (one readable, one writable of 50); descriptors 6 and 7 free. After
 * each kind of lie the driver must return nothing, mark the queue broken
 * with a reason, free nothing, and stay that way. */
struct hostile {
	struct fix f;
	struct chain a, b, c;
};

static bool hostile_setup(struct hostile *h)
{
	if (!setup(&h->f, 8, true))
		return false;
	struct vq_buf bufs[3] = { { 0x10000, 32 }, { 0x20000, 32 }, { 0x30000, 100 } };
	struct vq_buf cbufs[2] = { { 0x40000, 8 }, { 0x50000, 50 } };
	bool ok = vq_add(&h->f.vq, bufs, 1, 0, tok(0xa)) == 0 && vq_add(&h->f.vq, bufs, 2, 1, tok(0xb)) == 0 &&
	          vq_add(&h->f.vq, cbufs, 1, 1, tok(0xc)) == 0 && dev_pop(&h->f.dev, &h->a) &&
	          dev_pop(&h->f.dev, &h->b) && dev_pop(&h->f.dev, &h->c);
	ok = CHECK(ok && h->b.writable == 100 && h->c.writable == 50 && h->f.vq.num_free == 2);
	if (!ok)
		teardown(&h->f);
	return ok;
}

static void expect_broken(struct hostile *h, const char *what)
{
	struct virtqueue *vq = &h->f.vq;
	static struct virtqueue before;
	static struct vq_desc_state before_st[VQ_TEST_MAX];
	before = *vq;
	memcpy(before_st, vq->st, vq_state_bytes(vq->size));
	uint16_t ue = used_event(&h->f.dev);
	uint32_t len = 0x5a5a;
	bool ok = CHECK(vq_get_used(vq, &len) == NULL) & CHECK(vq->broken) &
	          CHECK(vq->broken_reason && *vq->broken_reason) & CHECK_EQ_U64(len, 0x5a5a);
	/* nothing freed or forgotten: the shadow state is as it was */
	ok &= CHECK_EQ_U64(vq->num_free, before.num_free) & CHECK_EQ_U64(vq->split.free_head, before.split.free_head) &
	      CHECK_EQ_U64(vq->split.last_used_idx, before.split.last_used_idx) & CHECK_EQ_U64(used_event(&h->f.dev), ue) &
	      CHECK(memcmp(vq->st, before_st, vq_state_bytes(vq->size)) == 0);
	/* and it stays broken, even when the device then repairs what it
	 * said into one true completion of C: the driver must not give the
	 * device a second chance to be believed */
	ok &= CHECK(vq_get_used(vq, &len) == NULL);
	h->f.dev.used->ring[before.split.last_used_idx % 8] = (struct vring_used_elem){ h->c.head, 50 };
	h->f.dev.used->idx = (uint16_t)(before.split.last_used_idx + 1);
	ok &= CHECK(vq_get_used(vq, &len) == NULL) & CHECK(vq->broken);
	struct vq_buf b = { 0x1000, 8 };
	ok &= CHECK_EQ_U64(vq_add(vq, &b, 1, 0, tok(1)), (uint64_t)-1) & CHECK_EQ_U64(vq->num_free, before.num_free);
	if (!ok)
		fprintf(stderr, "    hostile device: %s\n", what);
	else
		printf("virtqueue: %s: broken, \"%s\"\n", what, vq->broken_reason);
	teardown(&h->f);
}

static void test_hostile(void)
{
	struct hostile h;
	uint32_t len;
	/* walked backwards, so 0xffffffff sets the reason the rest must give;
	 * 0x10000 + A's head, truncated to 16 bits, would be A */
	const uint32_t bad_ids[] = { 8, 0xffff, 0x10000, 0xffffffff };
	const char *range_reason = NULL;
	for (unsigned i = sizeof bad_ids / sizeof bad_ids[0]; i-- > 0;) {
		if (!hostile_setup(&h))
			return;
		dev_push(&h.f.dev, bad_ids[i] + (bad_ids[i] == 0x10000 ? h.a.head : 0), 0);
		/* every id past the ring is the same lie: the one just past it
		 * must not be mistaken for a descriptor (nor read as one) */
		const char *reason = (vq_get_used(&h.f.vq, &len), h.f.vq.broken_reason);
		if (!range_reason)
			range_reason = reason;
		if (!CHECK(reason && range_reason && strcmp(reason, range_reason) == 0))
			fprintf(stderr, "    id 0x%x: \"%s\", id 0xffffffff: \"%s\"\n", bad_ids[i], reason, range_reason);
		teardown(&h.f);
		if (hostile_setup(&h)) {
			dev_push(&h.f.dev, bad_ids[i] + (bad_ids[i] == 0x10000 ? h.a.head : 0), 0);
			expect_broken(&h, "used id out of range");
		}
	}
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, h.b.idx[1], 0);
		expect_broken(&h, "id of an in-flight descriptor that is no chain head");
	}
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, 6, 0);
		expect_broken(&h, "id of a free descriptor");
	}
	if (hostile_setup(&h)) {
		dev_complete(&h.f.dev, h.a.head, 0);
		CHECK(vq_get_used(&h.f.vq, &len) == tok(0xa));
		dev_push(&h.f.dev, h.a.head, 0);
		expect_broken(&h, "double completion");
	}
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, h.b.head, 100);
		dev_push(&h.f.dev, h.b.head, 100);
		CHECK(vq_get_used(&h.f.vq, &len) == tok(0xb));
		expect_broken(&h, "double completion in one batch");
	}
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, h.b.head, 101);
		expect_broken(&h, "length past the writable bytes");
	}
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, h.a.head, 1);
		expect_broken(&h, "length for a buffer with nothing writable");
	}
	/* Three buffers but six descriptors in flight: four used entries,
	 * three of them good, are still one more than there can be. */
	if (hostile_setup(&h)) {
		dev_push(&h.f.dev, h.a.head, 0);
		dev_push(&h.f.dev, h.b.head, 100);
		dev_push(&h.f.dev, h.c.head, 50);
		dev_push(&h.f.dev, h.a.head, 0);
		expect_broken(&h, "used idx 4 ahead with 3 buffers in flight");
	}
	if (hostile_setup(&h)) {
		h.f.dev.used_idx = 65535;
		h.f.dev.used->idx = 65535;
		expect_broken(&h, "used idx 65535 ahead");
	}
	/* The control: the same queue, told the truth at the limits. */
	if (hostile_setup(&h)) {
		dev_complete(&h.f.dev, h.c.head, 50);
		dev_complete(&h.f.dev, h.a.head, 0);
		dev_complete(&h.f.dev, h.b.head, 100);
		CHECK(vq_get_used(&h.f.vq, &len) == tok(0xc) && len == 50);
		CHECK(vq_get_used(&h.f.vq, &len) == tok(0xa) && len == 0);
		CHECK(vq_get_used(&h.f.vq, &len) == tok(0xb) && len == 100);
		CHECK(!h.f.vq.broken && h.f.vq.num_free == 8);
		teardown(&h.f);
	}
}

/* The descriptor table is device-readable memory a buggy device may write
 * anyway: next, len, flags and addr scribbled over between add and
 * completion must not change which descriptors the driver recycles. */
static void test_scribbled_descriptors(void)
{
	struct fix f;
	if (!setup(&f, 16, false))
		return;
	unsigned long bad = 0;
	for (int round = 0; round < 2000; round++) {
		struct chain c[16];
		unsigned n = 0;
		for (;;) {
			struct vq_buf b[4] = { { 1, 1 }, { 2, 2 }, { 3, 3 }, { 4, 4 } };
			unsigned k = 1 + (unsigned)(rng() % 4);
			if (vq_add(&f.vq, b, k / 2, k - k / 2, tok(n + 1)) < 0)
				break;
			bad += !dev_pop(&f.dev, &c[n++]);
		}
		bad += f.vq.num_free >= 4; /* refused only for want of descriptors */
		for (unsigned i = 0; i < 16; i++)
			f.dev.desc[i] = (struct vring_desc){ rng(), (uint32_t)rng(), (uint16_t)rng(), (uint16_t)rng() };
		for (unsigned i = 0; i < n; i++)
			dev_complete(&f.dev, c[i].head, c[i].writable);
		for (unsigned i = 0; i < n; i++) {
			uint32_t len;
			bad += vq_get_used(&f.vq, &len) != tok(i + 1) || len != c[i].writable;
		}
		bad += f.vq.num_free != 16;
	}
	CHECK_EQ_U64(bad, 0);
	CHECK(!f.dev.bad && !f.vq.broken); /* every new chain well formed, no descriptor in two */
	teardown(&f);
}

/* Writable parts adding up to more than 4 GiB: the device may report up to
 * UINT32_MAX bytes, and that is no lie. */
static void test_huge_writable(void)
{
	struct fix f;
	if (!setup(&f, 4, false))
		return;
	struct vq_buf b[3] = { { 0x1000, 16 }, { 0x100000000ull, 0xffffffffu }, { 0x300000000ull, 0x10 } };
	CHECK_EQ_U64(vq_add(&f.vq, b, 1, 2, tok(1)), 0);
	struct chain c;
	CHECK(dev_pop(&f.dev, &c));
	dev_complete(&f.dev, c.head, 0xffffffffu);
	uint32_t len = 0;
	CHECK(vq_get_used(&f.vq, &len) == tok(1));
	CHECK_EQ_U64(len, 0xffffffffu);
	CHECK(!f.vq.broken);
	teardown(&f);
}

int main(void)
{
	test_hostile();
	test_scribbled_descriptors();
	test_huge_writable();
	return check_summary("virtqueue_hostile");
}
