/* Virtqueues, driver side: one API over two ring layouts, the split ring
 * (virtio 1.2, 2.7) and the packed ring (2.8). A driver adds buffers, kicks
 * and takes used buffers back without knowing which layout it got; the
 * virtio core (virtio.h) picks the layout, allocates the memory, and has the
 * transport activate the queue and provide its notify.
 *
 * Pure logic: no kernel dependencies, so that the unit tests and fuzzers run
 * it natively against fake (and hostile) devices. Everything read from
 * device-writable memory is checked before use; the driver's own record of
 * what is in flight (struct vq_desc_state) lives apart from the rings. */
#ifndef BALLAST_VIRTQUEUE_H
#define BALLAST_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

/* ---- split ring (2.7) ---- */
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

/* ---- packed ring (2.8) ---- */
#define VRING_PACKED_DESC_F_AVAIL 7  /* bit numbers in the flags */
#define VRING_PACKED_DESC_F_USED  15
#define VRING_PACKED_EVENT_FLAG_ENABLE  0x0
#define VRING_PACKED_EVENT_FLAG_DISABLE 0x1
#define VRING_PACKED_EVENT_FLAG_DESC    0x2 /* VIRTIO_F_EVENT_IDX: at the off_wrap position */
#define VRING_PACKED_EVENT_F_WRAP_CTR   15
#define VRING_PACKED_DESC_ALIGN  16
#define VRING_PACKED_EVENT_ALIGN 4

struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
_Static_assert(sizeof(struct vring_packed_desc) == 16, "2.8.13");
_Static_assert(__builtin_offsetof(struct vring_packed_desc, len) == 8, "2.8.13");
_Static_assert(__builtin_offsetof(struct vring_packed_desc, id) == 12, "2.8.13");
_Static_assert(__builtin_offsetof(struct vring_packed_desc, flags) == 14, "2.8.13");

struct vring_packed_desc_event {
	uint16_t off_wrap; /* descriptor offset, and the wrap counter in bit 15 */
	uint16_t flags;
};
_Static_assert(sizeof(struct vring_packed_desc_event) == 4, "2.8.14");
_Static_assert(__builtin_offsetof(struct vring_packed_desc_event, flags) == 2, "2.8.14");

/* ---- the queue ---- */
#define VQ_MAX_SIZE 32768 /* Queue Size is at most 32768 (2.7: a power of two; 2.8: any) */

/* The driver's own record, by index: a split ring's descriptor (free list,
 * chain links, and at a chain's head what is in flight), a packed ring's
 * buffer id (what is in flight under that id, and the free id list). Never
 * in memory the device is told about. */
struct vq_desc_state {
	void *token;        /* the caller's token, NULL if not in flight */
	uint32_t in_len;    /* device-writable bytes of the chain */
	uint16_t chain_len; /* descriptors in the chain, 0 if not in flight */
	uint16_t next;      /* free list link (and split: the chain link the driver wrote) */
};
_Static_assert(sizeof(struct vq_desc_state) == 16, "four of them a cache line");

struct vq_buf {
	uint64_t addr; /* device (physical) address */
	uint32_t len;
};

struct vq_split {
	struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint16_t free_head, avail_idx, last_used_idx, kicked_idx;
};

/* The packed ring's wrap counters: the ring has no indices, so whether a
 * descriptor is available or used is said by two flag bits compared with a
 * counter that flips each time the ring wraps. The driver makes a
 * descriptor available by setting AVAIL to its avail_wrap and USED to the
 * opposite; the device marks it used by setting both to its own wrap
 * counter. So the driver sees a used descriptor where AVAIL == USED ==
 * used_wrap, and a slot it has made available, not yet used, never matches. */
struct vq_packed {
	volatile struct vring_packed_desc *desc;
	volatile struct vring_packed_desc_event *driver; /* the driver's suppression: when to interrupt */
	volatile struct vring_packed_desc_event *device; /* the device's: when to notify */
	uint16_t next_avail, last_used;
	uint16_t free_id;        /* head of the free buffer ids */
	uint16_t added;          /* descriptors made available since the last kick */
	bool avail_wrap, used_wrap;
};

struct virtqueue;
typedef void (*vq_callback_fn)(struct virtqueue *vq);

struct virtqueue {
	uint16_t index;
	uint32_t size;
	bool packed;
	bool event_idx;
	uint16_t num_free;       /* descriptors (16 bits hold 32768) */
	struct vq_desc_state *st;
	union {
		struct vq_split split;
		struct vq_packed pk;
	};
	/* what the transport tells the device: split: descriptors, avail and used
	 * rings; packed: the descriptor ring and the driver and device areas */
	uint64_t desc_phys, driver_phys, device_phys;
	/* a used entry the device should not have produced: then the queue is
	 * broken for good (no second chance to be believed), and on_broken runs
	 * once (the core logs it and marks the device FAILED) */
	bool broken;
	const char *broken_reason;
	uint64_t bad_id, bad_len;
	void (*on_broken)(struct virtqueue *vq);
	/* set by the transport at activation */
	void (*notify)(struct virtqueue *vq);
	volatile void *notify_addr;
	/* set by the core for the driver */
	vq_callback_fn callback;
	void *priv;               /* the driver's */
	void *dev;                /* the struct virtio_dev it belongs to */
	const char *name;
};

/* Ring memory for `size` entries: the split ring's legacy layout, or the
 * packed ring with its two event areas; and the driver's state. */
uint64_t vq_split_ring_bytes(uint32_t size);
uint64_t vq_packed_ring_bytes(uint32_t size);
uint64_t vq_state_bytes(uint32_t size);
/* mem (virtual) and phys name the same zeroed ring bytes; state is
 * vq_state_bytes(size) bytes the device is never told about. The split
 * ring's size is a power of two up to VQ_MAX_SIZE, the packed ring's any
 * size from 1. Return 0 or -1. */
int vq_init_split(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
                  bool event_idx);
int vq_init_packed(struct virtqueue *vq, uint16_t index, uint32_t size, void *mem, uint64_t phys, void *state,
                   bool event_idx);

/* Adds a chain of n_out device-readable then n_in device-writable buffers.
 * Returns 0, or -1 if there are not enough free descriptors (or the queue
 * is broken); a refused add changes nothing. */
int vq_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token);
/* Whether the device wants a notification for what was added since the
 * last call (its suppression state, EVENT_IDX's included). */
bool vq_kick_prepare(struct virtqueue *vq);
/* vq_kick_prepare, then the transport's notify if wanted. */
void vq_kick(struct virtqueue *vq);
/* The next used buffer's token and the bytes the device wrote, or NULL if
 * none. An entry that is out of range, not in flight, claims more bytes
 * than the buffer holds or cannot be where it is marks the queue broken
 * and returns NULL without touching any buffer. */
void *vq_get_used(struct virtqueue *vq, uint32_t *len);
/* Whether a used buffer is waiting (a shared interrupt asks each queue). */
bool vq_has_used(const struct virtqueue *vq);
static inline unsigned vq_num_free(const struct virtqueue *vq) { return vq->num_free; }
static inline bool vq_is_broken(const struct virtqueue *vq) { return vq->broken; }

/* For the ring files: the driver's state zeroed and every entry free, on
 * the free list (split: descriptors; packed: buffer ids). */
void vq_init_common(struct virtqueue *vq, uint16_t index, uint32_t size, void *state, bool event_idx);
/* For the ring files: marks the queue broken (once) and returns NULL. */
void *vq_mark_broken(struct virtqueue *vq, const char *why, uint64_t id, uint64_t len);
/* 2.7.10 and 2.8.10: notify if the event index lies in (old, new]. */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* The ring files' halves of the API (virtqueue.c dispatches). */
int vq_split_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token);
bool vq_split_kick_prepare(struct virtqueue *vq);
void *vq_split_get_used(struct virtqueue *vq, uint32_t *len);
bool vq_split_has_used(const struct virtqueue *vq);
int vq_packed_add(struct virtqueue *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token);
bool vq_packed_kick_prepare(struct virtqueue *vq);
void *vq_packed_get_used(struct virtqueue *vq, uint32_t *len);
bool vq_packed_has_used(const struct virtqueue *vq);

#endif
