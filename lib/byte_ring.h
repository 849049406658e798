/* A byte ring: one producer and one consumer that never run at the same
 * time on this single CPU (the callers serialise with interrupts off or by
 * running in the same context). Pure logic, unit-tested natively.
 *
 * head and tail run freely and wrap at 2^32; the size is a power of two, so
 * head - tail is the fill level even across the wrap. */
#ifndef BALLAST_BYTE_RING_H
#define BALLAST_BYTE_RING_H

#include <stdbool.h>
#include <stdint.h>

struct byte_ring {
	uint8_t *buf;
	uint32_t size; /* a power of two */
	uint32_t head; /* next byte written */
	uint32_t tail; /* next byte read */
};

/* size must be a power of two; returns false otherwise. */
bool ring_init(struct byte_ring *r, void *buf, uint32_t size);
static inline uint32_t ring_used(const struct byte_ring *r) { return r->head - r->tail; }
static inline uint32_t ring_room(const struct byte_ring *r) { return r->size - ring_used(r); }
/* Copies n bytes in; the caller has checked ring_room() >= n. */
void ring_put(struct byte_ring *r, const void *data, uint32_t n);
/* Copies n bytes starting `off` bytes after the tail, without consuming
 * them; the caller has checked ring_used() >= off + n. */
void ring_peek(const struct byte_ring *r, uint32_t off, void *out, uint32_t n);
/* Consumes n bytes (at most ring_used()). */
void ring_drop(struct byte_ring *r, uint32_t n);

#endif
