/* Unit tests of the packed virtqueue (drivers/virtio/virtqueue_packed.c)
 * against a fake device written here from virtio 1.2 section 2.8: it finds
 * available descriptors by their flags against its own wrap counter, walks
 * chains, completes them in any order by writing used descriptors at its
 * own used position (skipping each chain's length, 2.8.7) and keeps the
 * event suppression areas. Every queue size from 1 to 1024 (the packed ring
 * takes any size, QEMU any up to 1024), many laps so every wrap is
 * crossed, chains that wrap in the middle, completion in and out of order,
 * the notification decision against a reference model, and a device that
 * lies (each lie breaks the queue for good and changes nothing). */
#include <stdlib.h>
#include "drivers/virtio/virtqueue.h"
#include "tests/unit/check.h"

#define RNG_SEED 0x7061636b6564ull
#include "tests/unit/xorshift.h"

#define PHYS_OFF 0x40000000ull
#define MAXQ 1024 /* QEMU's VIRTQUEUE_MAX_SIZE */
#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)
#define WRAP (1u << VRING_PACKED_EVENT_F_WRAP_CTR)
static void *tok(uintptr_t n) { return (void *)(0x1000 + 16 * n); }

struct chain {
	uint16_t id, n;
	uint32_t writable;
	void *token;
	uint64_t addr[8];
	uint32_t len[8];
};

struct dev {
	uint32_t size;
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *driver, *device;
	uint16_t avail_pos, used_pos; /* the device's next slot to read, to write used */
	bool avail_wrap, used_wrap;
	unsigned n_fetched;
	struct chain fetched[MAXQ];  /* taken, not completed */
	bool bad;
};

struct fix {
	struct virtqueue vq;
	struct dev dev;
	uint8_t *mem;
	struct vq_desc_state state[MAXQ];
};

static bool setup(struct fix *f, uint32_t size, bool event_idx)
{
	memset(f, 0, sizeof *f);
	uint64_t bytes = vq_packed_ring_bytes(size);
	void *m;
	if (posix_memalign(&m, 16, bytes))
		return false;
	f->mem = memset(m, 0, bytes);
	uint64_t phys = (uint64_t)(uintptr_t)m + PHYS_OFF;
	if (!CHECK_EQ_U64(vq_init_packed(&f->vq, 1, size, f->mem, phys, f->state, event_idx), 0)) {
		free(m);
		return false;
	}
	struct dev *d = &f->dev;
	d->size = size;
	/* the device finds everything from the three addresses, as a transport tells it */
	d->desc = (void *)(uintptr_t)(f->vq.desc_phys - PHYS_OFF);
	d->driver = (void *)(uintptr_t)(f->vq.driver_phys - PHYS_OFF);
	d->device = (void *)(uintptr_t)(f->vq.device_phys - PHYS_OFF);
	d->avail_wrap = d->used_wrap = true;
	return true;
}

static void teardown(struct fix *f) { free(f->mem); }

static bool avail_here(const struct dev *d, uint16_t flags)
{
	return !!(flags & F_AVAIL) == d->avail_wrap && !!(flags & F_USED) != d->avail_wrap;
}

/* Takes the next available chain; false if none. */
static bool dev_fetch(struct dev *d)
{
	if (!avail_here(d, d->desc[d->avail_pos].flags))
		return false;
	struct chain c = { .id = d->desc[d->avail_pos].id };
	for (;;) {
		struct vring_packed_desc e = d->desc[d->avail_pos];
		if (!avail_here(d, e.flags) || e.id != c.id || c.n == 8) {
			d->bad = true; /* a chain the driver published half of, or a mixed one */
			return false;
		}
		c.addr[c.n] = e.addr;
		c.len[c.n] = e.len;
		if (e.flags & VRING_DESC_F_WRITE)
			c.writable += e.len;
		c.n++;
		if (++d->avail_pos == d->size) {
			d->avail_pos = 0;
			d->avail_wrap = !d->avail_wrap;
		}
		if (!(e.flags & VRING_DESC_F_NEXT))
			break;
	}
	d->fetched[d->n_fetched++] = c;
	return true;
}

static void write_used(struct dev *d, uint16_t id, uint32_t len, uint16_t skip)
{
	struct vring_packed_desc *u = &d->desc[d->used_pos];
	u->id = id;
	u->len = len;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	u->flags = d->used_wrap ? (F_AVAIL | F_USED) : 0;
	uint32_t next = d->used_pos + skip;
	if (next >= d->size) {
		next -= d->size;
		d->used_wrap = !d->used_wrap;
	}
	d->used_pos = (uint16_t)next;
}

/* Completes the k-th fetched chain with `len` bytes written. */
static struct chain dev_complete(struct dev *d, unsigned k, uint32_t len)
{
	struct chain c = d->fetched[k];
	write_used(d, c.id, len, c.n);
	memmove(&d->fetched[k], &d->fetched[k + 1], (--d->n_fetched - k) * sizeof(c));
	return c;
}

/* Adds, the device fetches and completes in random order over many laps:
 * every token comes back once with its length, nothing is lost. */
static void test_round_trips(uint32_t size, bool event_idx, bool shuffled)
{
	struct fix f;
	if (!setup(&f, size, event_idx))
		return;
	uintptr_t next_tok = 1;
	bool ok = true;
	/* about twenty laps for the small sizes, five or more past 256 (every
	 * wrap transition crossed both ways, twice), so all 1024 sizes run in
	 * seconds */
	unsigned steps = size <= 256 ? 40 * size + 400 : 4 * size + 400;
	bool *live = calloc(steps + 2, sizeof(bool)); /* by token number: handed over, not yet back */
	unsigned in_flight_descs = 0;
	if (!live)
		abort();
	for (unsigned step = 0; step < steps && ok; step++) {
		unsigned what = (unsigned)(rng() % 4);
		if (what < 2 && f.vq.num_free) {
			unsigned n = 1 + (unsigned)(rng() % (f.vq.num_free < 4 ? f.vq.num_free : 4));
			unsigned n_out = (unsigned)(rng() % (n + 1));
			struct vq_buf b[4];
			for (unsigned k = 0; k < n; k++)
				b[k] = (struct vq_buf){ 0x100000 * next_tok + k, 64 + (uint32_t)k };
			ok &= CHECK_EQ_U64(vq_add(&f.vq, b, n_out, n - n_out, tok(next_tok)), 0);
			live[next_tok++] = true;
			in_flight_descs += n;
			ok &= CHECK(!f.dev.bad);
			while (dev_fetch(&f.dev))
				;
		} else if (what == 2 && f.dev.n_fetched) {
			unsigned k = shuffled ? (unsigned)(rng() % f.dev.n_fetched) : 0;
			struct chain c = f.dev.fetched[k];
			uint32_t len = c.writable ? (uint32_t)(rng() % (c.writable + 1)) : 0;
			dev_complete(&f.dev, k, len);
			/* the driver finds it, and only it: the token of the chain whose
			 * buffers the device had (their addresses say which) */
			uint32_t got_len = 0xdead;
			void *t = vq_get_used(&f.vq, &got_len);
			uintptr_t number = (uintptr_t)c.addr[0] / 0x100000;
			ok &= CHECK(t == tok(number)) && CHECK(live[number]);
			ok &= CHECK_EQ_U64(got_len, len);
			live[number] = false;
			in_flight_descs -= c.n;
			ok &= CHECK(vq_get_used(&f.vq, &got_len) == NULL);
			if (event_idx) /* where the next interrupt is wanted: the device's next used slot */
				ok &= CHECK_EQ_U64(f.dev.driver->flags, VRING_PACKED_EVENT_FLAG_DESC) &
				      CHECK_EQ_U64(f.dev.driver->off_wrap, f.dev.used_pos | (f.dev.used_wrap ? WRAP : 0));
		} else {
			ok &= CHECK(vq_get_used(&f.vq, &(uint32_t){ 0 }) == NULL);
		}
		ok &= CHECK_EQ_U64(f.vq.num_free, size - in_flight_descs);
		ok &= CHECK(!f.vq.broken);
	}
	if (!ok)
		fprintf(stderr, "    size %u event_idx %d shuffled %d\n", size, event_idx, shuffled);
	free(live);
	teardown(&f);
}

/* The notification decision against a reference: the device wants one
 * when the slot it names (position and lap) is among those made available
 * since the last kick; or always (ENABLE) or never (DISABLE). */
static void test_kick(uint32_t size)
{
	struct fix f;
	if (!setup(&f, size, true))
		return;
	bool ok = true;
	/* the driver's view of positions: slot and lap of every slot it fills */
	uint16_t pos = 0;
	bool lap = true;
	uintptr_t t = 1;
	for (unsigned round = 0; round < 20 * size + 50 && ok; round++) {
		unsigned n = (unsigned)(rng() % (size < 3 ? size : 3)) + 1;
		uint16_t filled_pos[8];
		bool filled_lap[8];
		unsigned filled = 0;
		/* keep the ring from filling: complete everything first */
		for (unsigned b = 0; b < n && f.vq.num_free; b++) {
			struct vq_buf vb = { 0x1000, 8 };
			ok &= CHECK_EQ_U64(vq_add(&f.vq, &vb, 1, 0, tok(t++)), 0);
			filled_pos[filled] = pos;
			filled_lap[filled++] = lap;
			if (++pos == size) {
				pos = 0;
				lap = !lap;
			}
		}
		unsigned mode = (unsigned)(rng() % 4);
		uint16_t ev_pos = (uint16_t)(rng() % size);
		bool ev_lap = rng() % 2;
		f.dev.device->flags = mode == 0 ? VRING_PACKED_EVENT_FLAG_ENABLE
		                      : mode == 1 ? VRING_PACKED_EVENT_FLAG_DISABLE : VRING_PACKED_EVENT_FLAG_DESC;
		if (mode >= 2 && filled && rng() % 2) { /* often name one of the slots just filled */
			unsigned k = (unsigned)(rng() % filled);
			ev_pos = filled_pos[k];
			ev_lap = filled_lap[k];
		}
		f.dev.device->off_wrap = (uint16_t)(ev_pos | (ev_lap ? WRAP : 0));
		bool want = mode == 0 ? true : mode == 1 ? false : false;
		if (mode >= 2)
			for (unsigned k = 0; k < filled; k++)
				want |= filled_pos[k] == ev_pos && filled_lap[k] == ev_lap;
		/* a whole ring since the last kick: every position was passed */
		want |= mode >= 2 && filled >= size;
		bool got = vq_kick_prepare(&f.vq);
		if (!CHECK(got == want))
			fprintf(stderr, "    size %u mode %u event %u lap %d: kick %d want %d (%u filled)\n", size, mode, ev_pos,
			        ev_lap, got, want, filled);
		ok &= got == want;
		while (dev_fetch(&f.dev))
			;
		while (f.dev.n_fetched) {
			dev_complete(&f.dev, 0, 0);
			uint32_t len;
			ok &= CHECK(vq_get_used(&f.vq, &len) != NULL);
		}
	}
	teardown(&f);
}

/* Each lie breaks the queue, returns nothing, frees nothing, and the queue
 * stays broken when the device then tells the truth. */
static void expect_broken(struct fix *f, const char *what)
{
	static struct virtqueue before;
	static struct vq_desc_state before_st[MAXQ];
	before = f->vq;
	memcpy(before_st, f->vq.st, vq_state_bytes(f->vq.size));
	uint32_t len = 0x5a5a;
	bool ok = CHECK(vq_get_used(&f->vq, &len) == NULL) & CHECK(f->vq.broken) &
	          CHECK(f->vq.broken_reason && *f->vq.broken_reason) & CHECK_EQ_U64(len, 0x5a5a);
	ok &= CHECK_EQ_U64(f->vq.num_free, before.num_free) & CHECK_EQ_U64(f->vq.pk.last_used, before.pk.last_used) &
	      CHECK_EQ_U64(f->vq.pk.free_id, before.pk.free_id) & CHECK(f->vq.pk.used_wrap == before.pk.used_wrap) &
	      CHECK(memcmp(f->vq.st, before_st, vq_state_bytes(f->vq.size)) == 0);
	struct vq_buf b = { 0x1000, 8 };
	ok &= CHECK_EQ_U64(vq_add(&f->vq, &b, 1, 0, tok(99)), (uint64_t)-1) & CHECK(!vq_has_used(&f->vq));
	if (!ok)
		fprintf(stderr, "    hostile device: %s\n", what);
	else
		printf("virtqueue_packed: %s: broken, \"%s\"\n", what, f->vq.broken_reason);
}

static unsigned broken_calls;
static void on_broken(struct virtqueue *vq) { (void)vq; broken_calls++; }

static void test_hostile(void)
{
	struct fix f;
	/* nothing in flight, a used descriptor anyway */
	if (setup(&f, 8, false)) {
		write_used(&f.dev, 0, 0, 1);
		expect_broken(&f, "used with nothing in flight");
		teardown(&f);
	}
	for (unsigned lie = 0; lie < 3; lie++) {
		if (!setup(&f, 8, lie == 1))
			return;
		f.vq.on_broken = on_broken;
		broken_calls = 0;
		struct vq_buf b[2] = { { 0x1000, 16 }, { 0x2000, 100 } };
		CHECK_EQ_U64(vq_add(&f.vq, b, 1, 1, tok(1)), 0);
		CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, tok(2)), 0);
		while (dev_fetch(&f.dev))
			;
		struct chain c = f.dev.fetched[0];
		if (lie == 0)
			write_used(&f.dev, (uint16_t)(8 + rng() % 100), 0, c.n); /* id out of range */
		else if (lie == 1)
			write_used(&f.dev, 5, 0, c.n);                           /* an id not in flight */
		else
			write_used(&f.dev, c.id, 101, c.n);                      /* more than it can hold */
		expect_broken(&f, lie == 0 ? "id out of range" : lie == 1 ? "id not in flight" : "length beyond the buffer");
		CHECK_EQ_U64(broken_calls, 1);
		/* it stays broken */
		write_used(&f.dev, c.id, 0, c.n);
		uint32_t len;
		CHECK(vq_get_used(&f.vq, &len) == NULL);
		CHECK_EQ_U64(broken_calls, 1);
		teardown(&f);
	}
	/* refusals change nothing */
	if (setup(&f, 4, false)) {
		struct vq_buf b[5] = { 0 };
		static struct virtqueue before;
		before = f.vq;
		CHECK_EQ_U64(vq_add(&f.vq, b, 5, 0, tok(1)), (uint64_t)-1); /* more than the ring */
		CHECK_EQ_U64(vq_add(&f.vq, b, 0, 0, tok(1)), (uint64_t)-1);
		CHECK_EQ_U64(vq_add(&f.vq, b, 1, 0, NULL), (uint64_t)-1);
		CHECK(memcmp(&before, &f.vq, sizeof before) == 0);
		CHECK(!avail_here(&f.dev, f.dev.desc[0].flags)); /* nothing published */
		teardown(&f);
	}
}

static void test_layout(void)
{
	struct fix f;
	for (uint32_t size = 1; size <= MAXQ; size += size < 8 ? 1 : 37) {
		CHECK_EQ_U64(vq_packed_ring_bytes(size), 16ull * size + 8);
		if (!setup(&f, size, false))
			return;
		CHECK_EQ_U64(f.vq.driver_phys, f.vq.desc_phys + 16ull * size);
		CHECK_EQ_U64(f.vq.device_phys, f.vq.driver_phys + 4);
		CHECK(f.vq.packed && f.vq.pk.avail_wrap && f.vq.pk.used_wrap);
		CHECK_EQ_U64(f.dev.driver->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
		teardown(&f);
	}
	static struct virtqueue vq;
	static struct vq_desc_state st[4];
	static uint8_t mem[256] __attribute__((aligned(16)));
	CHECK_EQ_U64(vq_init_packed(&vq, 0, 0, mem, 0x1000, st, false), (uint64_t)-1);
	CHECK_EQ_U64(vq_init_packed(&vq, 0, VQ_MAX_SIZE + 1, mem, 0x1000, st, false), (uint64_t)-1);
	CHECK_EQ_U64(vq_init_packed(&vq, 0, 4, mem + 8, 0x1008, st, false), (uint64_t)-1); /* misaligned */
	CHECK_EQ_U64(vq_init_packed(&vq, 0, 4, mem, 0x1000, NULL, false), (uint64_t)-1);
}

int main(void)
{
	test_layout();
	for (uint32_t size = 1; size <= MAXQ; size++)
		test_round_trips(size, size % 2, size % 3 != 0);
	test_round_trips(MAXQ, true, false);
	for (uint32_t size = 1; size <= 64; size += size < 8 ? 1 : 13)
		test_kick(size);
	test_hostile();
	return check_summary("virtqueue_packed");
}
