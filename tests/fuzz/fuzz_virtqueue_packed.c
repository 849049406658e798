/* Fuzzes the packed virtqueue's driver side (drivers/virtio/virtqueue_packed.c)
 * against a device the input scripts: it completes chains honestly in any
 * order, writes used descriptors with any id, length and flags into any
 * slot, scribbles over descriptors and both event suppression areas, while
 * the driver adds chains of any shape at any queue size (1 to 300, not only
 * powers of two), collects used buffers and decides on kicks.
 *
 * The harness keeps its own model of the ring (the driver's positions and
 * wrap counters, the chains in flight by buffer id), written from virtio
 * 1.2 section 2.8 without reading the driver's private state. After every
 * step:
 *  - vq_get_used returns a token exactly when the slot at the driver's
 *    used position is marked used for its lap, the id names a chain in
 *    flight and the length fits it; a slot marked used that fails any of
 *    those breaks the queue for good, with a reason, freeing nothing; a
 *    slot not marked used returns nothing;
 *  - num_free is the size less the descriptors in flight;
 *  - every chain vq_add publishes sits in the next slots with the flags of
 *    their laps (a chain may wrap), one id, the head's flags valid;
 *  - vq_kick_prepare follows 2.8.10 (ENABLE, DISABLE, or the descriptor
 *    position and lap the device names);
 *  - the ring is exactly vq_packed_ring_bytes: an access past it is ASan's. */
#include "drivers/virtio/virtqueue.h"
#include "tests/fuzz/fuzz_input.h"

#define PHYS_OFF 0x40000000ull
#define MAX_OPS 1024
#define MAX_CHAIN 6
#define QMAX 300
#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)
#define WRAP (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

struct chain {
	bool live, completed;
	void *token;
	uint16_t n;
	uint32_t in_len;
};

struct h {
	struct virtqueue vq;
	uint8_t *mem;
	uint32_t size;
	bool event_idx;
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *driver, *device;
	/* the model: the driver's positions, as the spec has them */
	uint32_t next_avail, last_used, dev_used;
	bool avail_wrap, used_wrap, dev_wrap;
	uint32_t added_since_kick, descs_in_flight;
	bool broken;
	struct chain chain[QMAX]; /* by buffer id */
	uintptr_t serial;
	struct vq_desc_state state[QMAX];
};

static void step(uint32_t *pos, bool *wrap, uint32_t by, uint32_t size)
{
	*pos += by;
	if (*pos >= size) {
		*pos -= size;
		*wrap = !*wrap;
	}
}

static void check_counts(struct h *h)
{
	FUZZ_ASSERT(h->vq.num_free == h->size - h->descs_in_flight, "num_free %u, %u of %u descriptors in flight",
	            h->vq.num_free, h->descs_in_flight, h->size);
	FUZZ_ASSERT(h->vq.broken == h->broken, "broken %d, model %d", h->vq.broken, h->broken);
}

static void op_add(struct h *h, struct fuzz_in *in)
{
	uint8_t shape = take_u8(in);
	unsigned n_out = shape % 4, n_in = (shape >> 2) % 4, n = n_out + n_in;
	bool null_token = (shape & 0xf0) == 0xf0;
	struct vq_buf bufs[MAX_CHAIN];
	uint64_t in_len = 0;
	for (unsigned k = 0; k < n; k++) {
		bufs[k].addr = take_scaled(in);
		bufs[k].len = (uint32_t)(take_u8(in) & 1 ? UINT32_MAX - take_u16(in) : take_u16(in));
		if (k >= n_out)
			in_len += bufs[k].len;
	}
	void *token = null_token ? NULL : (void *)(0x10000 + 16 * ++h->serial);
	bool ok = !h->broken && n > 0 && n <= h->size - h->descs_in_flight && token;
	static struct virtqueue before;
	before = h->vq;
	int r = vq_add(&h->vq, bufs, n_out, n_in, token);
	FUZZ_ASSERT((r == 0) == ok, "vq_add(%u+%u) = %d with %u free", n_out, n_in, r, h->size - h->descs_in_flight);
	if (!ok) {
		FUZZ_ASSERT(memcmp(&before, &h->vq, sizeof before) == 0, "a refused vq_add changed the queue");
		return;
	}
	/* published where the model says, with one id not in flight */
	uint32_t pos = h->next_avail;
	bool wrap = h->avail_wrap;
	uint16_t id = h->desc[pos].id;
	FUZZ_ASSERT(id < h->size && !h->chain[id].live, "chain published with id %u (in flight or out of range)", id);
	for (unsigned k = 0; k < n; k++) {
		struct vring_packed_desc d = h->desc[pos];
		uint16_t want = (uint16_t)((k >= n_out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0) |
		                           (wrap ? F_AVAIL : F_USED));
		FUZZ_ASSERT(d.flags == want && d.id == id && d.addr == bufs[k].addr && d.len == bufs[k].len,
		            "descriptor %u of the chain at slot %u: flags 0x%x (want 0x%x) id %u (%u)", k, pos, d.flags, want,
		            d.id, id);
		step(&pos, &wrap, 1, h->size);
	}
	h->next_avail = pos;
	h->avail_wrap = wrap;
	h->added_since_kick += n;
	h->chain[id] = (struct chain){ true, false, token, (uint16_t)n, in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)in_len };
	h->descs_in_flight += n;
}

static void write_used(struct h *h, uint32_t slot, uint16_t id, uint32_t len, uint16_t flags)
{
	h->desc[slot].id = id;
	h->desc[slot].len = len;
	h->desc[slot].flags = flags;
}

/* An honest completion of the k-th chain not yet completed. */
static void op_complete(struct h *h, struct fuzz_in *in)
{
	unsigned k = take_u8(in), live = 0;
	uint32_t frac = take_u8(in);
	for (uint32_t id = 0; id < h->size; id++)
		live += h->chain[id].live && !h->chain[id].completed;
	if (!live)
		return;
	k %= live;
	for (uint32_t id = 0; id < h->size; id++) {
		struct chain *c = &h->chain[id];
		if (!c->live || c->completed || k--)
			continue;
		c->completed = true;
		uint32_t len = frac == 0xff ? c->in_len : (uint32_t)((uint64_t)c->in_len * frac / 255);
		write_used(h, h->dev_used, (uint16_t)id, len, h->dev_wrap ? (F_AVAIL | F_USED) : 0);
		step(&h->dev_used, &h->dev_wrap, c->n, h->size);
		return;
	}
}

/* A used descriptor that may be a lie, anywhere; or scribbles. */
static void op_lie(struct h *h, struct fuzz_in *in)
{
	uint8_t how = take_u8(in);
	uint32_t slot = how & 1 ? h->last_used : take_u16(in) % h->size;
	uint16_t id = how & 2 ? take_u16(in) : (uint16_t)(take_u8(in) % h->size);
	uint32_t len = how & 4 ? take_u32(in) : take_u8(in);
	uint16_t flags = how & 8 ? take_u16(in) : (h->used_wrap ? (F_AVAIL | F_USED) : 0);
	switch (how >> 4 & 3) {
	case 0: write_used(h, slot, id, len, flags); break;
	case 1: h->desc[slot].addr = take_u64(in); break;
	case 2: h->device->flags = take_u16(in) % 4; h->device->off_wrap = take_u16(in); break;
	default: h->driver->flags = take_u16(in); h->driver->off_wrap = take_u16(in); break;
	}
}

static void op_get(struct h *h)
{
	struct vring_packed_desc d = h->desc[h->last_used];
	bool avail = d.flags & F_AVAIL, used = d.flags & F_USED;
	bool marked = avail == used && used == h->used_wrap;
	const char *lie = NULL;
	if (!h->broken && marked) {
		if (h->descs_in_flight == 0)
			lie = "nothing in flight";
		else if (d.id >= h->size)
			lie = "id out of range";
		else if (!h->chain[d.id].live)
			lie = "id not in flight";
		else if (d.len > h->chain[d.id].in_len)
			lie = "length";
	}
	static struct virtqueue before;
	static struct vq_desc_state before_st[QMAX];
	before = h->vq;
	memcpy(before_st, h->vq.st, vq_state_bytes(h->size));
	uint32_t len = 0xa5a5a5a5;
	void *tok = vq_get_used(&h->vq, &len);
	if (h->broken || !marked || lie) {
		FUZZ_ASSERT(!tok, "token %p returned (%s, broken %d, marked %d)", tok, lie ? lie : "nothing used", h->broken,
		            marked);
		FUZZ_ASSERT(len == 0xa5a5a5a5, "len written without a token");
		if (lie && !h->broken)
			FUZZ_ASSERT(h->vq.broken && h->vq.broken_reason && *h->vq.broken_reason, "%s not caught", lie);
		h->broken |= lie != NULL;
		FUZZ_ASSERT(h->vq.num_free == before.num_free && h->vq.pk.last_used == before.pk.last_used &&
		            h->vq.pk.used_wrap == before.pk.used_wrap &&
		            memcmp(h->vq.st, before_st, vq_state_bytes(h->size)) == 0,
		            "no token, yet the driver's state changed");
		return;
	}
	struct chain *c = &h->chain[d.id];
	FUZZ_ASSERT(tok == c->token && len == d.len, "got %p len %u, want %p (id %u) len %u", tok, len, c->token, d.id,
	            d.len);
	c->live = false;
	h->descs_in_flight -= c->n;
	step(&h->last_used, &h->used_wrap, c->n, h->size);
	if (h->event_idx)
		FUZZ_ASSERT(h->driver->flags == VRING_PACKED_EVENT_FLAG_DESC &&
		                h->driver->off_wrap == (h->last_used | (h->used_wrap ? WRAP : 0)),
		            "driver event %x/%x after a get", h->driver->flags, h->driver->off_wrap);
}

static void op_kick(struct h *h, struct fuzz_in *in)
{
	if (take_u8(in) & 1) { /* the device names a position, often one just filled */
		h->device->flags = VRING_PACKED_EVENT_FLAG_DESC;
		uint32_t back = h->added_since_kick ? take_u8(in) % (h->added_since_kick + 2) : take_u8(in) % 4;
		uint32_t pos = h->next_avail;
		bool wrap = h->avail_wrap;
		/* step back `back` slots across the wrap */
		for (uint32_t i = 0; i < back; i++) {
			if (pos == 0) {
				pos = h->size;
				wrap = !wrap;
			}
			pos--;
		}
		h->device->off_wrap = (uint16_t)(pos | (wrap ? WRAP : 0));
	}
	uint16_t flags = h->device->flags, ow = h->device->off_wrap;
	bool want;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC) {
		want = flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	} else {
		/* the slots made available since the last kick, with their laps */
		uint32_t pos = h->next_avail;
		bool wrap = h->avail_wrap;
		want = false;
		for (uint32_t i = 0; i < h->added_since_kick && i < h->size; i++) {
			if (pos == 0) {
				pos = h->size;
				wrap = !wrap;
			}
			pos--;
			want |= pos == (ow & (uint16_t)~WRAP) && wrap == !!(ow & WRAP);
		}
	}
	bool got = vq_kick_prepare(&h->vq);
	/* a whole ring or more added since the last kick (added, collected,
	 * added again): every position was passed, so a notification is due */
	want |= flags == VRING_PACKED_EVENT_FLAG_DESC && h->added_since_kick >= h->size;
	/* and so is one for a position past the ring (the device's error) */
	want |= flags == VRING_PACKED_EVENT_FLAG_DESC && (ow & (uint16_t)~WRAP) >= h->size;
	FUZZ_ASSERT(got == want, "kick %d, want %d (flags %u off_wrap 0x%x, next %u lap %d, %u added)", got, want, flags,
	            ow, h->next_avail, h->avail_wrap, h->added_since_kick);
	h->added_since_kick = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	static struct h h;
	memset(&h, 0, sizeof h);
	uint8_t cfg = take_u8(&in);
	h.size = 1 + (take_u16(&in) % QMAX);
	h.event_idx = cfg & 1;
	uint64_t bytes = vq_packed_ring_bytes(h.size);
	void *m = aligned_alloc(16, (bytes + 15) & ~15ull);
	if (!m)
		abort();
	h.mem = memset(m, 0, bytes);
	uint64_t phys = (uint64_t)(uintptr_t)m + PHYS_OFF;
	FUZZ_ASSERT(vq_init_packed(&h.vq, 3, 0, h.mem, phys, h.state, false) == -1, "size 0 accepted");
	FUZZ_ASSERT(vq_init_packed(&h.vq, 3, h.size, h.mem, phys, h.state, h.event_idx) == 0, "size %u refused", h.size);
	FUZZ_ASSERT(h.vq.desc_phys == phys && h.vq.driver_phys == phys + 16ull * h.size &&
	            h.vq.device_phys == phys + 16ull * h.size + 4 && bytes == 16ull * h.size + 8,
	            "ring layout for size %u", h.size);
	h.desc = (void *)(uintptr_t)(h.vq.desc_phys - PHYS_OFF);
	h.driver = (void *)(uintptr_t)(h.vq.driver_phys - PHYS_OFF);
	h.device = (void *)(uintptr_t)(h.vq.device_phys - PHYS_OFF);
	h.avail_wrap = h.used_wrap = h.dev_wrap = true;
	check_counts(&h);
	for (unsigned ops = 0; in.left && ops < MAX_OPS; ops++) {
		switch (take_u8(&in) % 7) {
		case 0: case 1: op_add(&h, &in); break;
		case 2: case 3: op_complete(&h, &in); break;
		case 4: op_lie(&h, &in); break;
		case 5: op_get(&h); break;
		default: op_kick(&h, &in); break;
		}
		check_counts(&h);
	}
	for (unsigned i = 0; i <= h.size; i++)
		op_get(&h);
	free(m);
	return 0;
}
