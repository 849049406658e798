#include <string.h>
#include "lib/byte_ring.h"

bool ring_init(struct byte_ring *r, void *buf, uint32_t size)
{
	if (size == 0 || (size & (size - 1)))
		return false;
	*r = (struct byte_ring){ .buf = buf, .size = size };
	return true;
}

void ring_put(struct byte_ring *r, const void *data, uint32_t n)
{
	uint32_t at = r->head & (r->size - 1);
	uint32_t first = n < r->size - at ? n : r->size - at;
	memcpy(r->buf + at, data, first);
	memcpy(r->buf, (const uint8_t *)data + first, n - first);
	r->head += n;
}

void ring_peek(const struct byte_ring *r, uint32_t off, void *out, uint32_t n)
{
	uint32_t at = (r->tail + off) & (r->size - 1);
	uint32_t first = n < r->size - at ? n : r->size - at;
	memcpy(out, r->buf + at, first);
	memcpy((uint8_t *)out + first, r->buf, n - first);
}

void ring_drop(struct byte_ring *r, uint32_t n) { r->tail += n; }
