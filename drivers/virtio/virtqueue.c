/* The queue API over both ring layouts (virtqueue_split.c,
 * virtqueue_packed.c): a driver never asks which one it has. */
#include <stddef.h>
#include <string.h>
#include "drivers/virtio/virtqueue.h"

uint64_t vq_state_bytes(uint32_t size) { return sizeof(struct vq_desc_state) * (uint64_t)size; }

void vq_init_common(struct virtqueue *vq, uint16_t index, uint32_t size, void *state, bool event_idx)
{
	memset(vq, 0, sizeof(*vq));
	vq->st = memset(state, 0, vq_state_bytes(size));
	vq->index = index;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->num_free = (uint16_t)size; /* 16 bits hold VQ_MAX_SIZE */
	for (uint32_t i = 0; i < size; i++)
		vq->st[i].next = (uint16_t)(i + 1);
}

int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token)
{
	if (vq->broken || n_out + n_in == 0 || n_out + n_in > vq->num_free || !token)
		return -1;
	return vq->packed ? vq_packed_add(vq, bufs, n_out, n_in, token) : vq_split_add(vq, bufs, n_out, n_in, token);
}

bool vq_kick_prepare(struct virtqueue *vq)
{
	return vq->packed ? vq_packed_kick_prepare(vq) : vq_split_kick_prepare(vq);
}

void vq_kick(struct virtqueue *vq)
{
	if (vq_kick_prepare(vq) && vq->notify)
		vq->notify(vq);
}

void *vq_get_used(struct virtqueue *vq, uint32_t *len)
{
	if (vq->broken)
		return NULL;
	return vq->packed ? vq_packed_get_used(vq, len) : vq_split_get_used(vq, len);
}

bool vq_has_used(const struct virtqueue *vq)
{
	if (vq->broken)
		return false;
	return vq->packed ? vq_packed_has_used(vq) : vq_split_has_used(vq);
}

void *vq_mark_broken(struct virtqueue *vq, const char *why, uint64_t id, uint64_t len)
{
	if (vq->broken)
		return NULL;
	vq->broken = true;
	vq->broken_reason = why;
	vq->bad_id = id;
	vq->bad_len = len;
	if (vq->on_broken)
		vq->on_broken(vq);
	return NULL;
}
