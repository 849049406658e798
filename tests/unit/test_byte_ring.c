/* Unit tests of lib/byte_ring.c: puts and reads across the wrap of the
 * buffer and of the 32-bit indices, against a reference FIFO. */
#include <stdlib.h>
#include "lib/byte_ring.h"
#include "tests/unit/check.h"

#define RNG_SEED 0x72696e67ull
#include "tests/unit/xorshift.h"

int main(void)
{
	struct byte_ring r;
	static uint8_t buf[64];
	CHECK(!ring_init(&r, buf, 48)); /* not a power of two */
	CHECK(!ring_init(&r, buf, 0));
	CHECK(ring_init(&r, buf, sizeof buf));
	CHECK_EQ_U64(ring_room(&r), 64);
	/* indices near the top of 32 bits: the fill level survives their wrap */
	r.head = r.tail = UINT32_MAX - 100;
	static uint8_t ref[1 << 20];
	size_t ref_head = 0, ref_tail = 0;
	uint8_t next = 0;
	bool ok = true;
	for (unsigned i = 0; i < 200000 && ok; i++) {
		uint8_t tmp[64];
		if (rng() % 2) {
			uint32_t n = (uint32_t)(rng() % (ring_room(&r) + 1));
			for (uint32_t k = 0; k < n; k++)
				tmp[k] = ref[ref_head++ % sizeof ref] = next++;
			ring_put(&r, tmp, n);
		} else {
			uint32_t n = (uint32_t)(rng() % (ring_used(&r) + 1));
			uint32_t off = n ? (uint32_t)(rng() % n) : 0;
			ring_peek(&r, off, tmp, n - off);
			for (uint32_t k = off; k < n; k++)
				ok &= tmp[k - off] == ref[(ref_tail + k) % sizeof ref];
			ring_drop(&r, n);
			ref_tail += n;
		}
		ok &= ring_used(&r) == ref_head - ref_tail && ring_used(&r) <= 64;
	}
	CHECK(ok);
	return check_summary("byte_ring");
}
