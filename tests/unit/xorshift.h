/* The unit tests' random numbers: xorshift64*, the same sequence on every
 * host (unlike rand()). A fixture may define RNG_SEED before including
 * this; a test that wants its own sequence sets rng_state (never to 0,
 * which xorshift never leaves). */
#ifndef BALLAST_TEST_XORSHIFT_H
#define BALLAST_TEST_XORSHIFT_H

#include <stdint.h>

#ifndef RNG_SEED
#define RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t rng_state = RNG_SEED;

static inline uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

#endif
