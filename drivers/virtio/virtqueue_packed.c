/* The packed ring (virtio 1.2, 2.8): one ring of descriptors that the driver
 * and the device walk in the same direction. The driver writes a chain into
 * the next free slots and publishes it by writing its first descriptor's
 * flags last; the device writes one used descriptor per chain, in the order
 * it completes them, into the slots it has consumed. Whose turn a slot is
 * comes from the AVAIL/USED flag bits against the wrap counters (see struct
 * vq_packed). Buffer ids, not slots, say which chain a used descriptor
 * completes; the driver hands out ids from a free list of its own.
 *
 * Barriers as in the split ring (virtqueue_split.c): x86 keeps stores in
 * order and loads in order; mfence where a store must be seen before a
 * later load. */
#include <stddef.h>
#include "drivers/virtio/virtqueue.h"

#define vq_wmb() __asm__ volatile("" ::: "memory")
#define vq_rmb() __asm__ volatile("" ::: "memory")
#define vq_mb()  __asm__ volatile("mfence" ::: "memory")

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED  (1u << VRING_PACKED_DESC_F_USED)
#define WRAP_BIT (1u << VRING_PACKED_EVENT_F_WRAP_CTR)

static uint64_t driver_offset(uint32_t size) { return sizeof(struct vring_packed_desc) * (uint64_t)size; }

uint64_t vq_packed_ring_bytes(uint32_t size)
{
	return driver_offset(size) + 2 * sizeof(struct vring_packed_desc_event);
}

/* The flag bits that make a slot available in the current lap. */
static uint16_t avail_flags(bool wrap) { return wrap ? F_AVAIL : F_USED; }

/* Where the driver wants its next interrupt: with EVENT_IDX, at the next
 * used descriptor it expects (as the split ring's used_event); else any. */
static void want_interrupt(struct virtqueue *vq)
{
	struct vq_packed *p = &vq->pk;
	if (vq->event_idx) {
		p->driver->off_wrap = (uint16_t)(p->last_used | (p->used_wrap ? WRAP_BIT : 0));
		vq_wmb(); /* the position before the mode that reads it */
		p->driver->flags = VRING_PACKED_EVENT_FLAG_DESC;
	} else {
		p->driver->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
	}
}

int vq_init_packed(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
                   bool event_idx)
{
	if (size == 0 || size > VQ_MAX_SIZE || !state || ((uintptr_t)mem & (VRING_PACKED_DESC_ALIGN - 1)) ||
	    (phys & (VRING_PACKED_DESC_ALIGN - 1)))
		return -1;
	vq_init_common(vq, index, size, state, event_idx);
	vq->packed = true;
	struct vq_packed *p = &vq->pk;
	p->desc = mem;
	p->driver = (void *)((uint8_t *)mem + driver_offset(size));
	p->device = p->driver + 1;
	vq->desc_phys = phys;
	vq->driver_phys = phys + driver_offset(size);
	vq->device_phys = vq->driver_phys + sizeof(struct vring_packed_desc_event);
	/* both counters start at 1 (2.8.1): a zeroed ring reads as all free */
	p->avail_wrap = p->used_wrap = true;
	want_interrupt(vq);
	return 0;
}

int vq_packed_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token)
{
	struct vq_packed *p = &vq->pk;
	unsigned n = n_out + n_in;
	/* ids are never short of slots: every chain in flight holds one id and
	 * at least one descriptor */
	uint16_t id = p->free_id, head = p->next_avail, i = head;
	bool wrap = p->avail_wrap;
	uint16_t head_flags = 0;
	uint32_t in_len = 0;
	for (unsigned k = 0; k < n; k++) {
		volatile struct vring_packed_desc *d = &p->desc[i];
		uint16_t flags = (uint16_t)((k >= n_out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0) |
		                            avail_flags(wrap));
		d->addr = bufs[k].addr;
		d->len = bufs[k].len;
		d->id = id;
		if (k == 0)
			head_flags = flags; /* written last: it publishes the chain */
		else
			d->flags = flags;
		if (k >= n_out)
			in_len = in_len + bufs[k].len < in_len ? UINT32_MAX : in_len + bufs[k].len;
		if (++i == vq->size) { /* a chain may wrap: the rest is in the next lap */
			i = 0;
			wrap = !wrap;
		}
	}
	struct vq_desc_state *h = &vq->st[id];
	p->free_id = h->next;
	*h = (struct vq_desc_state){ token, in_len, (uint16_t)n, 0 };
	p->next_avail = i;
	p->avail_wrap = wrap;
	vq->num_free -= n;
	/* saturates at a ring: past that every position has been passed */
	p->added = (uint16_t)(n > (uint32_t)(vq->size - p->added) ? vq->size : p->added + n);
	vq_wmb(); /* every other descriptor of the chain before the head's flags */
	p->desc[head].flags = head_flags;
	return 0;
}

bool vq_packed_kick_prepare(struct virtqueue *vq)
{
	struct vq_packed *p = &vq->pk;
	vq_mb(); /* our descriptor flags before reading the device's suppression state */
	uint16_t added = p->added, new_idx = p->next_avail, old_idx = (uint16_t)(new_idx - added);
	p->added = 0;
	uint16_t flags = p->device->flags, off_wrap = p->device->off_wrap;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC)
		return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	/* A whole ring or more since the last kick (added, collected, added
	 * again): the (position, lap) the device names cannot be placed in a
	 * window wider than a ring, and it was passed at least once. */
	if (added >= vq->size)
		return true;
	/* a position past the ring is the device's error; notifying costs
	 * an exit, not notifying may stall it */
	uint16_t event = off_wrap & (uint16_t)~WRAP_BIT;
	if (event >= vq->size)
		return true;
	/* The device wants a notification once the slot off_wrap names is
	 * made available. Slots count modulo the size, not 2^16: a position of
	 * the other lap than ours is one size back, which keeps the 16-bit
	 * window test of the split ring right across the wrap. */
	if (!!(off_wrap & WRAP_BIT) != p->avail_wrap)
		event = (uint16_t)(event - vq->size);
	return vq_need_event(event, new_idx, old_idx);
}

static bool slot_used(const struct vq_packed *p, uint16_t flags)
{
	bool avail = flags & F_AVAIL, used = flags & F_USED;
	return avail == used && used == p->used_wrap;
}

bool vq_packed_has_used(const struct virtqueue *vq) { return slot_used(&vq->pk, vq->pk.desc[vq->pk.last_used].flags); }

void *vq_packed_get_used(struct virtqueue *vq, uint32_t *len)
{
	struct vq_packed *p = &vq->pk;
	uint16_t flags = p->desc[p->last_used].flags;
	if (!slot_used(p, flags))
		return NULL;
	vq_rmb(); /* the flags before the id and length they cover */
	uint16_t id = p->desc[p->last_used].id;
	uint32_t used_len = p->desc[p->last_used].len;
	if (vq->num_free == vq->size)
		return vq_mark_broken(vq, "used descriptor with nothing in flight", id, used_len);
	if (id >= vq->size)
		return vq_mark_broken(vq, "used id out of range", id, used_len);
	struct vq_desc_state *h = &vq->st[id];
	if (!h->token)
		return vq_mark_broken(vq, "used id is not a buffer in flight", id, used_len);
	if (used_len > h->in_len)
		return vq_mark_broken(vq, "used length exceeds the buffer", id, used_len);
	void *token = h->token;
	/* the device skips the slots of the whole chain (2.8.7) */
	uint32_t next = (uint32_t)p->last_used + h->chain_len;
	if (next >= vq->size) {
		next -= vq->size;
		p->used_wrap = !p->used_wrap;
	}
	p->last_used = (uint16_t)next;
	vq->num_free += h->chain_len;
	*h = (struct vq_desc_state){ NULL, 0, 0, p->free_id };
	p->free_id = id;
	if (vq->event_idx) {
		want_interrupt(vq);
		vq_mb(); /* publish the next event position before the caller looks for more */
	}
	*len = used_len;
	return token;
}
