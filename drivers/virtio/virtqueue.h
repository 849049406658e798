/* Split virtqueue (virtio 1.2, 2.7), driver side. Knows nothing of the
 * transport: the caller allocates the ring memory, activates the queue
 * through its transport and notifies when vq_kick_prepare says so.
 *
 * Pure logic: no kernel dependencies, so that the unit tests run it
 * natively against a fake (and hostile) device. */
#ifndef BALLAST_VIRTQUEUE_H
#define BALLAST_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1
#define VRING_USED_ALIGN 4096 /* legacy layout; also fine for modern */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "2.7.5");
_Static_assert(__builtin_offsetof(struct vring_desc, len) == 8, "2.7.5");
_Static_assert(__builtin_offsetof(struct vring_desc, flags) == 12, "2.7.5");
_Static_assert(__builtin_offsetof(struct vring_desc, next) == 14, "2.7.5");

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event, with VIRTIO_F_EVENT_IDX */
};
_Static_assert(sizeof(struct vring_avail) == 4, "2.7.6");

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct vring_used_elem) == 8, "2.7.8");

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* then avail_event */
};
_Static_assert(sizeof(struct vring_used) == 4, "2.7.8");

#define VQ_MAX_SIZE 32768 /* 2.7: Queue Size is a power of two, at most 32768 */

/* The driver's own record of descriptor i: never in memory the device is
 * told about, so nothing the device writes can change it. */
struct vq_desc_state {
	void *token;        /* by head: the caller's token, NULL if not in flight */
	uint32_t in_len;    /* by head: device-writable bytes of the chain */
	uint16_t chain_len; /* by head: descriptors in the chain, 0 if not in flight */
	uint16_t next;      /* the free list, and the chain links as the driver wrote them */
};
_Static_assert(sizeof(struct vq_desc_state) == 16, "four of them a cache line");

struct vq_buf {
	uint64_t addr; /* device (physical) address */
	uint32_t len;
};

struct virtqueue {
	uint16_t index;
	uint32_t size;
	struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint64_t desc_phys, avail_phys, used_phys;
	bool event_idx;
	/* driver-private state: never read back from device-writable memory */
	uint16_t free_head, num_free; /* 16 bits hold 32768 */
	uint16_t avail_idx, last_used_idx, kicked_idx;
	struct vq_desc_state *st; /* size entries */
	bool broken;
	const char *broken_reason;
	uint64_t bad_id, bad_len;        /* what a broken entry said */
	/* transport data */
	uint64_t notify_addr;
	uint16_t notify_off;
};

/* Bytes of ring memory for `size` entries in the legacy layout, and of the
 * driver's state for them. */
uint64_t vq_ring_bytes(uint32_t size);
uint64_t vq_state_bytes(uint32_t size);
/* mem (virtual) and phys name the same zeroed vq_ring_bytes(size) bytes;
 * state is vq_state_bytes(size) bytes the device is never told about; size
 * must be a power of two, at most VQ_MAX_SIZE. */
int vq_init(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
            bool event_idx);
/* Adds a chain of n_out device-readable then n_in device-writable buffers.
 * Returns 0, or -1 if there are not enough free descriptors (or the queue
 * is broken). */
int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token);
/* Whether the device wants a notification for what was added since the
 * last call. */
bool vq_kick_prepare(struct virtqueue *vq);
/* The next used buffer's token and the bytes the device wrote, or NULL if
 * none. A used entry that is out of range, not in flight, or claims more
 * bytes than the buffer holds marks the queue broken (broken_reason says
 * why) and returns NULL without touching any buffer. */
void *vq_get_used(struct virtqueue *vq, uint32_t *len);

#endif
