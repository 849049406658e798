/* Fuzzes the split virtqueue's driver side (drivers/virtio/virtqueue.c)
 * against a device the input scripts: it completes buffers honestly,
 * writes used entries with any id and length, jumps the used index,
 * scribbles over the descriptor table and the suppression fields, while
 * the driver adds chains, collects used buffers and decides on kicks.
 *
 * The harness keeps its own model of what is in flight (heads, their
 * descriptors, tokens, writable bytes), never reading the driver's private
 * state to decide what should happen. After every step:
 *  - vq_get_used returns a token only for a used entry whose id is the
 *    head of a chain in flight and whose length fits its writable bytes,
 *    each token at most once, in used-ring order; any other entry breaks
 *    the queue for good, with a reason, and frees nothing;
 *  - num_free is the size less the descriptors in flight, never above it;
 *  - every chain vq_add publishes is well formed on the device's side
 *    (readable then writable, flags, addresses and lengths as given) and
 *    shares no descriptor with a chain in flight, whatever the device
 *    scribbled over the descriptors of earlier chains;
 *  - vq_kick_prepare follows virtio 1.2 2.7.10 (event index) or the
 *    NO_NOTIFY flag;
 *  - the rings sit where the legacy layout puts them (2.7.2) in memory of
 *    exactly vq_ring_bytes: an access past it is ASan's to report. */
#include "drivers/virtio/virtqueue.h"
#include "tests/fuzz/fuzz_input.h"

#define PHYS_OFF 0x40000000ull /* "physical" = host address + this */
#define MAX_OPS 1024
#define MAX_CHAIN 6
#define VQ_FUZZ_MAX 256 /* the largest queue fuzzed (sizes 1 to 256) */

struct chain {
	bool live;
	void *token;
	uint16_t n, n_out;
	uint32_t in_len;
	bool completed; /* an honest device completed it already */
	uint16_t idx[MAX_CHAIN];
};

struct h {
	struct virtqueue vq;
	uint8_t *mem;
	uint16_t size;
	bool event_idx;
	/* the device's view, found from the physical addresses */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t dev_used_idx;
	/* the model */
	bool broken;
	uint16_t added, collected, kicked;
	unsigned inflight, descs_in_flight;
	uint16_t owner[VQ_FUZZ_MAX]; /* head + 1 of the chain holding each descriptor */
	struct chain chain[VQ_FUZZ_MAX]; /* by head */
	struct vq_desc_state state[VQ_FUZZ_MAX]; /* the driver's, apart from the rings */
	uintptr_t serial;
};

static uint16_t *used_event(struct h *h) { return &h->avail->ring[h->size]; }
static uint16_t *avail_event(struct h *h) { return (uint16_t *)&h->used->ring[h->size]; }

static void check_counts(struct h *h)
{
	FUZZ_ASSERT(h->vq.num_free <= h->size, "num_free %u above size %u", h->vq.num_free, h->size);
	FUZZ_ASSERT(h->vq.num_free == h->size - h->descs_in_flight, "num_free %u, %u of %u descriptors in flight",
	            h->vq.num_free, h->descs_in_flight, h->size);
	FUZZ_ASSERT(h->vq.broken == h->broken, "broken %d, model %d", h->vq.broken, h->broken);
}

static void op_add(struct h *h, struct fuzz_in *in)
{
	uint8_t shape = take_u8(in);
	unsigned n_out = shape % 4, n_in = (shape >> 2) % 4, n = n_out + n_in;
	bool null_token = (shape & 0xf0) == 0xf0; /* a caller bug the driver must refuse */
	struct vq_buf bufs[MAX_CHAIN];
	for (unsigned k = 0; k < n; k++) {
		bufs[k].addr = take_scaled(in);
		/* writable lengths near 4 GiB: their sum saturates at UINT32_MAX */
		bufs[k].len = (uint32_t)(take_u8(in) & 1 ? UINT32_MAX - take_u16(in) : take_u16(in));
	}
	void *token = null_token ? NULL : (void *)(0x10000 + 16 * ++h->serial);
	bool ok = !h->broken && n > 0 && n <= h->size - h->descs_in_flight && token;

	static struct virtqueue before;
	static struct vq_desc_state before_st[VQ_FUZZ_MAX];
	before = h->vq;
	memcpy(before_st, h->vq.st, vq_state_bytes(h->size));
	int r = vq_add(&h->vq, bufs, n_out, n_in, token);
	FUZZ_ASSERT((r == 0) == ok, "vq_add(%u+%u) = %d with %u free, broken %d", n_out, n_in, r,
	            h->size - h->descs_in_flight, h->broken);
	if (!ok) {
		FUZZ_ASSERT(memcmp(&before, &h->vq, sizeof before) == 0 &&
		            memcmp(before_st, h->vq.st, vq_state_bytes(h->size)) == 0, "a refused vq_add changed the queue");
		return;
	}
	/* published: the head in the next avail slot, then the index */
	FUZZ_ASSERT(h->avail->idx == (uint16_t)(h->added + 1), "avail idx %u after %u adds", h->avail->idx,
	            h->added + 1);
	uint16_t head = h->avail->ring[h->added % h->size];
	h->added++;
	FUZZ_ASSERT(head < h->size && !h->chain[head].live, "head %u published twice", head);
	/* the chain as the device walks it */
	struct chain *c = &h->chain[head];
	uint64_t in_len = 0;
	uint16_t i = head;
	for (unsigned k = 0; k < n; k++) {
		FUZZ_ASSERT(i < h->size && !h->owner[i], "chain %u: descriptor %u in flight already (owner %u)", head, i,
		            i < h->size ? h->owner[i] : 0);
		const struct vring_desc *d = &h->desc[i];
		uint16_t want = (uint16_t)((k >= n_out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		FUZZ_ASSERT(d->flags == want && d->addr == bufs[k].addr && d->len == bufs[k].len,
		            "chain %u, part %u: flags 0x%x addr 0x%llx len %u", head, k, d->flags,
		            (unsigned long long)d->addr, d->len);
		h->owner[i] = (uint16_t)(head + 1);
		c->idx[k] = i;
		if (k >= n_out)
			in_len += bufs[k].len;
		i = d->next;
	}
	c->live = true;
	c->completed = false;
	c->token = token;
	c->n = (uint16_t)n;
	c->n_out = (uint16_t)n_out;
	c->in_len = in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len;
	h->inflight++;
	h->descs_in_flight += n;
}

static void publish(struct h *h, uint32_t id, uint32_t len)
{
	h->used->ring[h->dev_used_idx % h->size] = (struct vring_used_elem){ id, len };
	h->used->idx = ++h->dev_used_idx;
}

/* An honest completion of the k-th chain in flight that is not done yet. */
static void op_complete(struct h *h, struct fuzz_in *in)
{
	unsigned k = take_u8(in), live = 0;
	uint32_t frac = take_u8(in);
	for (unsigned hd = 0; hd < h->size; hd++)
		live += h->chain[hd].live && !h->chain[hd].completed;
	if (!live)
		return;
	k %= live;
	for (unsigned hd = 0; hd < h->size; hd++) {
		struct chain *c = &h->chain[hd];
		if (!c->live || c->completed || k--)
			continue;
		c->completed = true;
		/* all, none or part of the writable bytes */
		uint32_t len = frac == 0xff ? c->in_len : (uint32_t)((uint64_t)c->in_len * frac / 255);
		publish(h, hd, len);
		return;
	}
}

/* A used entry that may be a lie: any id, any length, published or not,
 * in the next slot or any slot. */
static void op_lie(struct h *h, struct fuzz_in *in)
{
	uint8_t how = take_u8(in);
	uint32_t id = how & 1 ? (uint32_t)take_scaled(in) : take_u8(in) % h->size;
	uint32_t len = how & 2 ? take_u32(in) : take_u8(in);
	if (how & 4)
		h->used->ring[take_u8(in) % h->size] = (struct vring_used_elem){ id, len };
	else
		publish(h, id, len);
}

static void op_jump(struct h *h, struct fuzz_in *in)
{
	h->dev_used_idx = take_u8(in) & 1 ? take_u16(in) : (uint16_t)(h->dev_used_idx + take_u8(in) % 4);
	h->used->idx = h->dev_used_idx;
}

/* Device-writable or not, a buggy device may write it: descriptors,
 * avail entries, the suppression flag and event index. */
static void op_scribble(struct h *h, struct fuzz_in *in)
{
	uint8_t what = take_u8(in);
	uint16_t at = take_u8(in) % h->size;
	switch (what % 4) {
	case 0: h->desc[at] = (struct vring_desc){ take_u64(in), take_u32(in), take_u16(in), take_u16(in) }; break;
	case 1: h->avail->ring[at] = take_u16(in); break;
	case 2: h->used->flags = take_u16(in); break;
	default: *avail_event(h) = take_u16(in); break;
	}
}

static void op_get(struct h *h)
{
	/* what must happen, from the model and the ring alone */
	const char *lie = NULL;
	uint16_t pending = (uint16_t)(h->used->idx - h->collected);
	struct vring_used_elem e = h->used->ring[h->collected % h->size];
	if (!h->broken && pending) {
		if (pending > h->inflight)
			lie = "index ahead";
		else if (e.id >= h->size || !h->chain[e.id].live)
			lie = "id not in flight";
		else if (e.len > h->chain[e.id].in_len)
			lie = "length";
	}
	static struct virtqueue before;
	static struct vq_desc_state before_st[VQ_FUZZ_MAX];
	before = h->vq;
	memcpy(before_st, h->vq.st, vq_state_bytes(h->size));
	uint32_t len = 0xa5a5a5a5;
	void *tok = vq_get_used(&h->vq, &len);
	if (h->broken || !pending || lie) {
		FUZZ_ASSERT(!tok, "token %p returned (%s, broken %d, pending %u)", tok, lie ? lie : "nothing used",
		            h->broken, pending);
		FUZZ_ASSERT(len == 0xa5a5a5a5, "len written without a token");
		if (lie && !h->broken)
			FUZZ_ASSERT(h->vq.broken && h->vq.broken_reason && *h->vq.broken_reason, "%s not caught", lie);
		h->broken |= lie != NULL;
		/* nothing freed or forgotten */
		FUZZ_ASSERT(h->vq.num_free == before.num_free && h->vq.split.free_head == before.split.free_head &&
		            h->vq.split.last_used_idx == before.split.last_used_idx &&
		            memcmp(h->vq.st, before_st, vq_state_bytes(h->size)) == 0,
		            "no token, yet the driver's state changed");
		return;
	}
	struct chain *c = &h->chain[e.id];
	FUZZ_ASSERT(tok == c->token && len == e.len, "got %p len %u, want %p (head %u) len %u", tok, len, c->token, e.id,
	            e.len);
	for (unsigned k = 0; k < c->n; k++)
		h->owner[c->idx[k]] = 0;
	c->live = false;
	h->inflight--;
	h->descs_in_flight -= c->n;
	h->collected++;
	if (h->event_idx)
		FUZZ_ASSERT(*used_event(h) == h->collected, "used_event %u after %u collected", *used_event(h), h->collected);
}

static void op_kick(struct h *h)
{
	uint16_t old = h->kicked, now = h->added;
	/* 2.7.10: notify once the driver has made available the entry the
	 * device named, i.e. it lies in [old, now) */
	bool want = h->event_idx ? (uint16_t)(*avail_event(h) - old) < (uint16_t)(now - old)
	                         : !(h->used->flags & VRING_USED_F_NO_NOTIFY);
	bool got = vq_kick_prepare(&h->vq);
	FUZZ_ASSERT(got == want, "kick %d, want %d (old %u, new %u, event %u, flags 0x%x)", got, want, old, now,
	            *avail_event(h), h->used->flags);
	h->kicked = now;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	static struct h h;
	memset(&h, 0, sizeof h);
	uint8_t cfg = take_u8(&in);
	h.size = (uint16_t)(1u << (cfg % 9));
	h.event_idx = cfg & 0x10;
	uint64_t bytes = vq_split_ring_bytes(h.size);
	void *m;
	if (posix_memalign(&m, 4096, bytes))
		abort();
	h.mem = memset(m, 0, bytes);
	uint64_t phys = (uint64_t)(uintptr_t)m + PHYS_OFF;

	/* sizes the queue must refuse: 0, not a power of two, past the max */
	if (cfg & 0x20) {
		uint32_t bad = take_u16(&in) | (uint32_t)(take_u8(&in) & 1) << 16;
		bool valid = bad && bad <= VQ_MAX_SIZE && !(bad & (bad - 1));
		if (!valid)
			FUZZ_ASSERT(vq_init_split(&h.vq, 0, bad, h.mem, phys, h.state, false) == -1, "size %u accepted", bad);
	}
	FUZZ_ASSERT(vq_init_split(&h.vq, 1, h.size, h.mem, phys, h.state, h.event_idx) == 0, "size %u refused", h.size);
	/* 2.7.2 legacy layout: descriptors, avail (+ used_event), then used
	 * (+ avail_event) at the next 4096 boundary, all inside the memory */
	uint64_t used_off = (16ull * h.size + 6 + 2ull * h.size + 4095) & ~4095ull;
	FUZZ_ASSERT(h.vq.desc_phys == phys && h.vq.driver_phys == phys + 16ull * h.size &&
	            h.vq.device_phys == phys + used_off && bytes == used_off + 6 + 8ull * h.size,
	            "ring layout for size %u", h.size);
	h.desc = (void *)(uintptr_t)(h.vq.desc_phys - PHYS_OFF);
	h.avail = (void *)(uintptr_t)(h.vq.driver_phys - PHYS_OFF);
	h.used = (void *)(uintptr_t)(h.vq.device_phys - PHYS_OFF);
	check_counts(&h);

	for (unsigned ops = 0; in.left && ops < MAX_OPS; ops++) {
		switch (take_u8(&in) % 8) {
		case 0: case 1: op_add(&h, &in); break;
		case 2: op_complete(&h, &in); break;
		case 3: op_lie(&h, &in); break;
		case 4: op_jump(&h, &in); break;
		case 5: op_scribble(&h, &in); break;
		case 6: op_get(&h); break;
		default: op_kick(&h); break;
		}
		check_counts(&h);
	}
	/* drain: whatever the device said last is judged too */
	for (unsigned i = 0; i <= h.size; i++)
		op_get(&h);
	free(h.mem);
	return 0;
}
