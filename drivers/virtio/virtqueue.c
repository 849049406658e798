/* The ring protocol, with the ordering each step needs. The device is
 * another thread (QEMU's I/O thread or a vCPU), so every publication to it
 * is ordered after the data it publishes, and every read of its indices is
 * ordered before the entries they cover. */
#include <string.h>
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

uint64_t vq_ring_bytes(uint32_t size)
{
	return used_offset(size) + sizeof(struct vring_used) + sizeof(struct vring_used_elem) * size + 2u;
}

uint64_t vq_state_bytes(uint32_t size) { return sizeof(struct vq_desc_state) * (uint64_t)size; }

/* The event index fields live just past each ring (2.7.10). */
static volatile uint16_t *used_event(struct virtqueue *vq) { return &vq->avail->ring[vq->size]; }
static volatile uint16_t *avail_event(struct virtqueue *vq) { return (volatile uint16_t *)&vq->used->ring[vq->size]; }

int vq_init(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
            bool event_idx)
{
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)) || !state)
		return -1;
	memset(vq, 0, sizeof(*vq));
	vq->st = memset(state, 0, vq_state_bytes(size));
	vq->index = index;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->desc = mem;
	vq->avail = (void *)((uint8_t *)mem + sizeof(struct vring_desc) * size);
	vq->used = (void *)((uint8_t *)mem + used_offset(size));
	vq->desc_phys = phys;
	vq->avail_phys = phys + sizeof(struct vring_desc) * size;
	vq->used_phys = phys + used_offset(size);
	vq->num_free = (uint16_t)size;
	for (uint32_t i = 0; i < size; i++)
		vq->st[i].next = (uint16_t)(i + 1);
	return 0;
}

int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token)
{
	unsigned n = n_out + n_in;
	if (vq->broken || n == 0 || n > vq->num_free || !token)
		return -1;
	uint16_t head = vq->free_head, i = head;
	uint32_t in_len = 0;
	for (unsigned k = 0; k < n; k++) {
		struct vring_desc *d = &vq->desc[i];
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
	vq->free_head = i;
	vq->num_free -= n;
	vq->st[head].chain_len = (uint16_t)n;
	vq->st[head].in_len = in_len;
	vq->st[head].token = token;
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	vq_wmb(); /* descriptors and ring entry before the index that publishes them */
	vq->avail_idx++;
	vq->avail->idx = vq->avail_idx;
	return 0;
}

/* 2.7.10: notify if the device's event index lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool vq_kick_prepare(struct virtqueue *vq)
{
	vq_mb(); /* our avail->idx store before reading the device's suppression state */
	uint16_t old = vq->kicked_idx;
	vq->kicked_idx = vq->avail_idx;
	if (vq->event_idx)
		return need_event(*avail_event(vq), vq->avail_idx, old);
	return !(vq->used->flags & VRING_USED_F_NO_NOTIFY);
}

static void *mark_broken(struct virtqueue *vq, const char *why, uint64_t id, uint64_t len)
{
	vq->broken = true;
	vq->broken_reason = why;
	vq->bad_id = id;
	vq->bad_len = len;
	return NULL;
}

void *vq_get_used(struct virtqueue *vq, uint32_t *len)
{
	if (vq->broken)
		return NULL;
	uint16_t used_idx = vq->used->idx;
	uint16_t pending = (uint16_t)(used_idx - vq->last_used_idx);
	if (pending == 0)
		return NULL;
	/* buffers in flight, not descriptors: a chain is one used entry */
	if (pending > (uint16_t)(vq->avail_idx - vq->last_used_idx))
		return mark_broken(vq, "used index ran ahead of the buffers in flight", used_idx, pending);
	vq_rmb(); /* the index before the entry it covers */
	struct vring_used_elem e = vq->used->ring[vq->last_used_idx % vq->size];
	if (e.id >= vq->size)
		return mark_broken(vq, "used id out of range", e.id, e.len);
	struct vq_desc_state *h = &vq->st[e.id];
	if (!h->token)
		return mark_broken(vq, "used id is not a buffer in flight", e.id, e.len);
	if (e.len > h->in_len)
		return mark_broken(vq, "used length exceeds the buffer", e.id, e.len);
	void *token = h->token;
	/* return the chain to the free list, following our own next links */
	uint16_t tail = (uint16_t)e.id;
	for (uint16_t k = 1; k < h->chain_len; k++)
		tail = vq->st[tail].next;
	vq->st[tail].next = vq->free_head;
	vq->free_head = (uint16_t)e.id;
	vq->num_free += h->chain_len;
	h->chain_len = 0;
	h->token = NULL;
	vq->last_used_idx++;
	if (vq->event_idx) {
		*used_event(vq) = vq->last_used_idx;
		vq_mb(); /* publish used_event before the caller looks for more work */
	}
	*len = e.len;
	return token;
}
