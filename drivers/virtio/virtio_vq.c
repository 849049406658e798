/* The virtio core's queue bring-up: the size (the device's, or at most
 * VQ_SIZE_PREFERRED where the transport lets the driver choose), the ring
 * layout (packed when negotiated), the memory, the transport's activation,
 * and the one place a broken queue is reported. */
#include <string.h>
#include "drivers/virtio/virtio.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

/* Modern transports let the driver choose a smaller ring; this many entries
 * are more than a driver here has in flight. Legacy ones impose theirs
 * (QEMU 10.0's balloon: 1024). */
#define VQ_SIZE_PREFERRED 256
/* Queues there can be: the drivers' structs come from here, not the heap
 * (a heap page taken at boot would show in every test's counters). */
#define VQ_POOL 16

static struct virtqueue pool[VQ_POOL];
static unsigned pool_used;

static unsigned order_for(uint64_t bytes)
{
	unsigned order = 0;
	while ((PAGE_SIZE << order) < bytes)
		order++;
	return order;
}

static void report_broken(struct virtqueue *vq)
{
	struct virtio_dev *vd = vq->dev;
	klog("%s: queue %u (%s): %s (id=%" PRIu64 " len=%" PRIu64 ")", vd->name, vq->index, vq->name,
	     vq->broken_reason, vq->bad_id, vq->bad_len);
	virtio_fail(vd, "bad used-ring entry");
}

struct virtqueue *virtio_vq_setup(struct virtio_dev *vd, unsigned index, const char *name, vq_callback_fn cb,
                                  void *priv)
{
	if (index >= VIRTIO_MAX_QUEUES || vd->vqs[index]) {
		klog("%s: queue %u (%s) cannot be set up twice or beyond %u", vd->name, index, name, VIRTIO_MAX_QUEUES);
		return NULL;
	}
	bool packed = virtio_has(vd, VIRTIO_F_RING_PACKED);
	uint32_t max = vd->ops->queue_max_size(vd, index);
	uint32_t size = max;
	if (!vd->ops->fixed_queue_size && size > VQ_SIZE_PREFERRED)
		size = VQ_SIZE_PREFERRED;
	if (max == 0 || size > VQ_MAX_SIZE || (!packed && (size & (size - 1)))) {
		klog("%s: queue %u (%s) has unusable size %u", vd->name, index, name, max);
		return NULL;
	}
	uint64_t ring_bytes = packed ? vq_packed_ring_bytes(size) : vq_split_ring_bytes(size);
	unsigned ring_order = order_for(ring_bytes), state_order = order_for(vq_state_bytes(size));
	if (ring_order > PMM_MAX_ORDER || state_order > PMM_MAX_ORDER) {
		klog("%s: queue %u (%s) of size %u needs more contiguous memory than the allocator gives", vd->name, index,
		     name, size);
		return NULL;
	}
	struct virtqueue *vq = pool_used < VQ_POOL ? &pool[pool_used] : NULL;
	uint64_t ring = vq ? page_alloc(ring_order) : PMM_NO_PAGE;
	uint64_t state = ring != PMM_NO_PAGE ? page_alloc(state_order) : PMM_NO_PAGE;
	if (!vq || ring == PMM_NO_PAGE || state == PMM_NO_PAGE) {
		klog("%s: no memory for queue %u (%s)", vd->name, index, name);
		goto fail;
	}
	memset(phys_to_virt(ring), 0, PAGE_SIZE << ring_order);
	bool event_idx = virtio_has(vd, VIRTIO_F_EVENT_IDX);
	int r = packed ? vq_init_packed(vq, (uint16_t)index, size, phys_to_virt(ring), ring, phys_to_virt(state), event_idx)
	               : vq_init_split(vq, (uint16_t)index, size, phys_to_virt(ring), ring, phys_to_virt(state), event_idx);
	if (r < 0)
		goto fail;
	vq->name = name;
	vq->dev = vd;
	vq->callback = cb;
	vq->priv = priv;
	vq->on_broken = report_broken;
	if (vd->ops->queue_activate(vd, vq) < 0)
		goto fail;
	vd->vqs[index] = vq;
	pool_used++;
	kdebug("%s: queue %u (%s): %s, %u entries", vd->name, index, name, packed ? "packed" : "split", size);
	return vq;
fail:
	if (state != PMM_NO_PAGE)
		page_free(state, state_order);
	if (ring != PMM_NO_PAGE)
		page_free(ring, ring_order);
	return NULL;
}
