/* The fake device the virtqueue tests (test_virtqueue.c, the protocol;
 * test_virtqueue_hostile.c, a device that lies) run the driver against. It
 * plays the device side on the same ring memory: it finds the rings through
 * the physical addresses a transport would hand it, reads the avail ring,
 * walks descriptor chains (checking their shape and that no descriptor is
 * in two chains at once), writes used entries and reads and writes the
 * event index fields. All static: each test is one translation unit plus
 * drivers/virtio/virtqueue.c.
 *
 * The ring memory is a host allocation of exactly vq_split_ring_bytes(size)
 * bytes, so a driver access past the last field (avail_event) is ASan's to
 * catch. "Physical" addresses are the host address plus a fixed offset. */
#ifndef BALLAST_TEST_VQ_FAKE_DEVICE_H
#define BALLAST_TEST_VQ_FAKE_DEVICE_H

#include <stdlib.h>
#include "drivers/virtio/virtqueue.h"
#include "tests/unit/check.h"

#define PHYS_OFF 0x40000000ull
/* the largest queue these tests build; the driver allows VQ_MAX_SIZE */
#define VQ_TEST_MAX 256

#define RNG_SEED 0x7669727471ull
#include "tests/unit/xorshift.h"

struct dev {
	uint16_t size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail, used_idx;
	uint16_t owner[VQ_TEST_MAX]; /* head + 1 of the in-flight chain holding each descriptor */
	bool bad;                   /* a chain broke the rules: the test fails */
};

struct fix {
	struct virtqueue vq;
	struct dev dev;
	uint8_t *mem;
	uint64_t phys;
	struct vq_desc_state state[VQ_TEST_MAX]; /* the driver's own, apart from the rings */
};

static inline uint16_t *avail_event(struct dev *d) { return (uint16_t *)&d->used->ring[d->size]; }
static inline uint16_t used_event(struct dev *d) { return d->avail->ring[d->size]; }

/* A queue with zeroed ring memory, the device attached the way a
 * transport attaches it: from the three physical addresses. */
static inline bool setup(struct fix *f, uint16_t size, bool event_idx)
{
	memset(f, 0, sizeof *f);
	uint64_t bytes = vq_split_ring_bytes(size);
	void *m;
	if (posix_memalign(&m, 4096, bytes))
		return false;
	f->mem = memset(m, 0, bytes);
	f->phys = (uint64_t)(uintptr_t)m + PHYS_OFF;
	if (!CHECK_EQ_U64(vq_init_split(&f->vq, 2, size, f->mem, f->phys, f->state, event_idx), 0)) {
		free(m);
		return false;
	}
	struct dev *d = &f->dev;
	d->size = size;
	d->desc = (void *)(uintptr_t)(f->vq.desc_phys - PHYS_OFF);
	d->avail = (void *)(uintptr_t)(f->vq.driver_phys - PHYS_OFF);
	d->used = (void *)(uintptr_t)(f->vq.device_phys - PHYS_OFF);
	return true;
}
static inline void teardown(struct fix *f) { free(f->mem); }

/* One chain as the device saw it. */
struct chain {
	uint16_t head, n, n_out;
	uint16_t idx[VQ_TEST_MAX];
	uint64_t addr[VQ_TEST_MAX];
	uint32_t len[VQ_TEST_MAX];
	uint32_t writable;
};

/* Takes the next available chain, or returns false if there is none. A
 * malformed chain (bad flags, readable after writable, too long, a
 * descriptor already in flight) sets d->bad. */
static inline bool dev_pop(struct dev *d, struct chain *c)
{
	if (d->last_avail == d->avail->idx)
		return false;
	c->head = d->avail->ring[d->last_avail++ % d->size];
	c->n = c->n_out = 0;
	c->writable = 0;
	uint16_t i = c->head;
	for (;;) {
		if (i >= d->size || c->n >= d->size || d->owner[i]) {
			d->bad = true;
			return true;
		}
		const struct vring_desc *e = &d->desc[i];
		bool w = e->flags & VRING_DESC_F_WRITE;
		if (e->flags & ~(VRING_DESC_F_WRITE | VRING_DESC_F_NEXT) || (!w && c->n_out != c->n))
			d->bad = true;
		d->owner[i] = (uint16_t)(c->head + 1);
		c->idx[c->n] = i;
		c->addr[c->n] = e->addr;
		c->len[c->n++] = e->len;
		c->n_out += !w;
		c->writable += w ? e->len : 0;
		if (!(e->flags & VRING_DESC_F_NEXT))
			break;
		i = e->next;
	}
	return true;
}

/* Writes a used entry and publishes it: no checks, so hostile tests use it
 * too. */
static inline void dev_push(struct dev *d, uint32_t id, uint32_t len)
{
	d->used->ring[d->used_idx % d->size] = (struct vring_used_elem){ id, len };
	d->used->idx = ++d->used_idx;
}

/* Completes an in-flight chain: its descriptors are the driver's again. */
static inline void dev_complete(struct dev *d, uint16_t head, uint32_t len)
{
	for (unsigned i = 0; i < d->size; i++)
		if (d->owner[i] == head + 1)
			d->owner[i] = 0;
	dev_push(d, head, len);
}

static inline void *tok(uintptr_t n) { return (void *)(0x1000 + n * 8); }

#endif
