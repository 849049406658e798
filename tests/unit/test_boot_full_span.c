/* Regression test for a finding of tests/fuzz/fuzz_boot_info.c: adjacent
 * ranges of one type that together cover the whole 64-bit address space.
 * Their sizes add up to 2^64, which a struct boot_mem_range cannot hold:
 * boot_mem_finalize used to merge them anyway, into one range of size 0
 * at address 0. The map then held an empty range, described none of the
 * memory it was given, and page 0 was not reserved (its check wants a
 * first range of at least a page).
 *
 * What must happen instead: such a pair stays two ranges (the only way
 * to describe it), and page 0 is split off as for any other map, even
 * when the first of the two is shorter than a page; after that the rest
 * does fit in one range and merges. */
#include "tests/unit/boot_fixture.h"

#define HALF (1ull << 63)

static void expect(uint32_t i, uint64_t base, uint64_t size, uint32_t type)
{
	if (!CHECK(i < bi.mem_count))
		return;
	if (!(CHECK_EQ_U64(bi.mem[i].base, base) & CHECK_EQ_U64(bi.mem[i].size, size) &
	      CHECK_EQ_U64(bi.mem[i].type, type)))
		fprintf(stderr, "    range %u\n", i);
}

int main(void)
{
	/* two halves, reserved: nothing to split off, nothing to merge */
	reset();
	CHECK_EQ_U64(boot_mem_add(&bi, HALF, HALF, BOOT_MEM_RESERVED), 0);
	CHECK_EQ_U64(boot_mem_add(&bi, 0, HALF, BOOT_MEM_RESERVED), 0);
	boot_mem_finalize(&bi);
	CHECK_EQ_U64(bi.mem_count, 2);
	expect(0, 0, HALF, BOOT_MEM_RESERVED);
	expect(1, HALF, HALF, BOOT_MEM_RESERVED);

	/* all but the last byte, then the last byte (what the fuzzer found):
	 * page 0 reserved, the rest merged once it fits */
	reset();
	CHECK_EQ_U64(boot_mem_add(&bi, 0, UINT64_MAX, BOOT_MEM_USABLE), 0);
	CHECK_EQ_U64(boot_mem_add(&bi, UINT64_MAX, 1, BOOT_MEM_USABLE), 0);
	boot_mem_finalize(&bi);
	CHECK_EQ_U64(bi.mem_count, 2);
	expect(0, 0, PG, BOOT_MEM_RESERVED);
	expect(1, PG, 0 - PG, BOOT_MEM_USABLE);

	/* the first piece shorter than page 0: the pair still covers page 0
	 * with one type, so page 0 must go all the same */
	reset();
	CHECK_EQ_U64(boot_mem_add(&bi, 1, UINT64_MAX, BOOT_MEM_USABLE), 0);
	CHECK_EQ_U64(boot_mem_add(&bi, 0, 1, BOOT_MEM_USABLE), 0);
	boot_mem_finalize(&bi);
	CHECK_EQ_U64(bi.mem_count, 2);
	expect(0, 0, PG, BOOT_MEM_RESERVED);
	expect(1, PG, 0 - PG, BOOT_MEM_USABLE);

	/* three pieces: the first two merge, the third cannot join them until
	 * page 0 is split off */
	reset();
	CHECK_EQ_U64(boot_mem_add(&bi, 0, HALF, BOOT_MEM_MMIO), 0);
	CHECK_EQ_U64(boot_mem_add(&bi, HALF + HALF / 2, HALF / 2, BOOT_MEM_MMIO), 0);
	CHECK_EQ_U64(boot_mem_add(&bi, HALF, HALF / 2, BOOT_MEM_MMIO), 0);
	boot_mem_finalize(&bi);
	for (uint32_t i = 0; i < bi.mem_count; i++)
		CHECK(bi.mem[i].size > 0);
	CHECK_EQ_U64(bi.mem_count, 2);
	expect(0, 0, PG, BOOT_MEM_RESERVED);
	expect(1, PG, 0 - PG, BOOT_MEM_MMIO);
	return check_summary("boot_full_span");
}
