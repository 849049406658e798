/* The split ring (virtio 1.2, 2.7): descriptors, the driver's avail ring
 * and the device's used ring, each with a free-running 16-bit index. The
 * device is another thread (QEMU's I/O thread or a vCPU), so every
 * publication to it is ordered after the data it publishes, and every read
 * of its indices is ordered before the entries they cover. */
#include <stddef.h>
#include "drivers/virtio/virtqueue.h"

/* x86 orders stores with stores and loads with loads, so publishing needs
 * only a compiler barrier; a store that must be visible before a later
 * load (event index checks) needs mfence. The unit tests build this for the
 * host, which is also x86-64. */
#define vq_wmb() __asm__ volatile("" ::: "memory")
#define vq_rmb() __asm__ volatile("" ::: "memory")
#define vq_mb()  __asm__ volatile("mfence" ::: "memory")

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static uint64_t used_offset(uint32_t size)
{
	return align_up(sizeof(struct vring_desc) * size + sizeof(struct vring_avail) + 2u * size + 2u,
	                VRING_USED_ALIGN);
}

uint64_t vq_split_ring_bytes(uint32_t size)
{
	return used_offset(size) + sizeof(struct vring_used) + sizeof(struct vring_used_elem) * size + 2u;
}

/* The event index fields live just past each ring (2.7.10). */
static volatile uint16_t *used_event(struct virtqueue *vq) { return &vq->split.avail->ring[vq->size]; }
static volatile uint16_t *avail_event(struct virtqueue *vq)
{
	return (volatile uint16_t *)&vq->split.used->ring[vq->size];
}

int vq_init_split(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
                  bool event_idx)
{
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)) || !state)
		return -1;
	vq_init_common(vq, index, size, state, event_idx);
	struct vq_split *s = &vq->split;
	s->desc = mem;
	s->avail = (void *)((uint8_t *)mem + sizeof(struct vring_desc) * size);
	s->used = (void *)((uint8_t *)mem + used_offset(size));
	vq->desc_phys = phys;
	vq->driver_phys = phys + sizeof(struct vring_desc) * size;
	vq->device_phys = phys + used_offset(size);
	return 0;
}

int vq_split_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token)
{
	struct vq_split *s = &vq->split;
	unsigned n = n_out + n_in;
	uint16_t head = s->free_head, i = head;
	uint32_t in_len = 0;
	for (unsigned k = 0; k < n; k++) {
		struct vring_desc *d = &s->desc[i];
		d->addr = bufs[k].addr;
		d->len = bufs[k].len;
		d->flags = (k >= n_out ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0);
		d->next = vq->st[i].next;
		/* saturate: writable parts past 4 GiB in all still allow a
		 * device to report UINT32_MAX bytes */
		if (k >= n_out)
			in_len = in_len + bufs[k].len < in_len ? UINT32_MAX : in_len + bufs[k].len;
		i = vq->st[i].next;
	}
	s->free_head = i;
	vq->num_free -= n;
	vq->st[head].chain_len = (uint16_t)n;
	vq->st[head].in_len = in_len;
	vq->st[head].token = token;
	s->avail->ring[s->avail_idx % vq->size] = head;
	vq_wmb(); /* descriptors and ring entry before the index that publishes them */
	s->avail_idx++;
	s->avail->idx = s->avail_idx;
	return 0;
}

bool vq_split_kick_prepare(struct virtqueue *vq)
{
	struct vq_split *s = &vq->split;
	vq_mb(); /* our avail->idx store before reading the device's suppression state */
	uint16_t old = s->kicked_idx;
	s->kicked_idx = s->avail_idx;
	if (vq->event_idx)
		return vq_need_event(*avail_event(vq), s->avail_idx, old);
	return !(s->used->flags & VRING_USED_F_NO_NOTIFY);
}

bool vq_split_has_used(const struct virtqueue *vq) { return vq->split.used->idx != vq->split.last_used_idx; }

void *vq_split_get_used(struct virtqueue *vq, uint32_t *len)
{
	struct vq_split *s = &vq->split;
	uint16_t used_idx = s->used->idx;
	uint16_t pending = (uint16_t)(used_idx - s->last_used_idx);
	if (pending == 0)
		return NULL;
	/* buffers in flight, not descriptors: a chain is one used entry */
	if (pending > (uint16_t)(s->avail_idx - s->last_used_idx))
		return vq_mark_broken(vq, "used index ran ahead of the buffers in flight", used_idx, pending);
	vq_rmb(); /* the index before the entry it covers */
	struct vring_used_elem e = s->used->ring[s->last_used_idx % vq->size];
	if (e.id >= vq->size)
		return vq_mark_broken(vq, "used id out of range", e.id, e.len);
	struct vq_desc_state *h = &vq->st[e.id];
	if (!h->token)
		return vq_mark_broken(vq, "used id is not a buffer in flight", e.id, e.len);
	if (e.len > h->in_len)
		return vq_mark_broken(vq, "used length exceeds the buffer", e.id, e.len);
	void *token = h->token;
	/* return the chain to the free list, following our own next links */
	uint16_t tail = (uint16_t)e.id;
	for (uint16_t k = 1; k < h->chain_len; k++)
		tail = vq->st[tail].next;
	vq->st[tail].next = s->free_head;
	s->free_head = (uint16_t)e.id;
	vq->num_free += h->chain_len;
	h->chain_len = 0;
	h->token = NULL;
	s->last_used_idx++;
	if (vq->event_idx) {
		*used_event(vq) = s->last_used_idx;
		vq_mb(); /* publish used_event before the caller looks for more work */
	}
	*len = e.len;
	return token;
}
