/* Shared by the libFuzzer targets in tests/fuzz/: a reader that turns the
 * fuzzer's bytes into typed values, and an assertion that stops the run.
 *
 * The reader never fails: once the input is used up every value is 0. So
 * a short input is still a valid (small) test case, and the fuzzer's
 * mutations (truncate, splice, insert) keep producing meaningful ones
 * instead of inputs a length check throws away.
 *
 * FUZZ_ASSERT aborts rather than returning: libFuzzer saves the input that
 * reached an abort as a crash, exactly as it does for an ASan report, and
 * run.sh then fails. The message says which invariant broke, which an
 * ASan-less abort would not. */
#ifndef BALLAST_FUZZ_INPUT_H
#define BALLAST_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline struct fuzz_in fuzz_in(const uint8_t *data, size_t size) { return (struct fuzz_in){ data, size }; }

static inline uint8_t take_u8(struct fuzz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

/* Little-endian, so a seed written by hand reads the way it looks in a
 * hex dump. */
static inline uint64_t take_bytes(struct fuzz_in *in, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)take_u8(in) << (8 * i);
	return v;
}
static inline uint16_t take_u16(struct fuzz_in *in) { return (uint16_t)take_bytes(in, 2); }
static inline uint32_t take_u32(struct fuzz_in *in) { return (uint32_t)take_bytes(in, 4); }
static inline uint64_t take_u64(struct fuzz_in *in) { return take_bytes(in, 8); }

/* A 64-bit quantity that is usually small or a power-of-two multiple:
 * uniform 64-bit values almost never land on the edges (page multiples,
 * the top of the address space) where the bugs are. Three bytes: a shift,
 * a 16-bit mantissa; the shift's top bit counts down from UINT64_MAX. */
static inline uint64_t take_scaled(struct fuzz_in *in)
{
	uint8_t sel = take_u8(in);
	uint64_t v = (uint64_t)take_u16(in) << (sel & 63);
	return sel & 0x80 ? UINT64_MAX - v : v;
}

#define FUZZ_ASSERT(cond, ...)                                                                     \
	do {                                                                                           \
		if (!(cond)) {                                                                             \
			fprintf(stderr, "%s:%d: invariant broken: %s\n    ", __FILE__, __LINE__, #cond);    \
			fprintf(stderr, __VA_ARGS__);                                                          \
			fputc('\n', stderr);                                                                   \
			abort();                                                                               \
		}                                                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
