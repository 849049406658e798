/* Unit tests of boot/boot_info.c: the memory map every front end builds.
 * What the kernel relies on is that after boot_mem_finalize the map is
 * sorted, non-overlapping, merged, and that page 0 is never usable memory
 * (the allocator would hand out physical address 0, and its free list would
 * live in a page that paging leaves unmapped). */
#include "tests/unit/boot_fixture.h"

static void test_type_names(void)
{
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_USABLE), "usable");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_BOOT_RECLAIMABLE), "boot-reclaimable");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_KERNEL), "kernel");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_RESERVED), "reserved");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_ACPI_RECLAIM), "acpi-reclaim");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_ACPI_NVS), "acpi-nvs");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_MMIO), "mmio");
	/* Types from a newer front end or a corrupt map must still print. */
	CHECK_EQ_STR(boot_mem_type_name(0), "unknown");
	CHECK_EQ_STR(boot_mem_type_name(BOOT_MEM_MMIO + 1), "unknown");
	CHECK_EQ_STR(boot_mem_type_name(UINT32_MAX), "unknown");
}

static void test_add(void)
{
	reset();
	/* Empty firmware descriptors are skipped, and are not an error. */
	CHECK_EQ_U64(boot_mem_add(&bi, 0x1000, 0, U), 0);
	CHECK_EQ_U64(bi.mem_count, 0);
	boot_mem_finalize(&bi); /* an empty map stays empty */
	CHECK_EQ_U64(bi.mem_count, 0);

	for (uint32_t i = 0; i < BOOT_MEM_MAX; i++)
		CHECK_EQ_U64(boot_mem_add(&bi, (i + 1) * MB, PG, i % 2 ? U : R), 0);
	CHECK_EQ_U64(bi.mem_count, BOOT_MEM_MAX);
	/* Full: dropped, reported, and nothing past the table written. */
	CHECK_EQ_U64(boot_mem_add(&bi, 1000 * MB, PG, U), (uint64_t)-1);
	CHECK_EQ_U64(bi.mem_count, BOOT_MEM_MAX);
	CHECK_EQ_U64(bi.mem[BOOT_MEM_MAX - 1].base, BOOT_MEM_MAX * MB);
	CHECK_EQ_U64(boot_mem_add(&bi, 1000 * MB, 0, U), 0);
}

static void test_sort_and_merge(void)
{
	/* Reverse order, alternating types: sorted, nothing merged. */
	reset();
	add(0x300000, 0x100000, U);
	add(0x200000, 0x100000, K);
	add(0x100000, 0x100000, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x100000, 0x100000, U }, { 0x200000, 0x100000, K }, { 0x300000, 0x100000, U });

	/* Shuffled pieces of one type merge into one; a gap or another type
	 * ends a run. */
	reset();
	add(0x5000, 0x1000, U);
	add(0x1000, 0x2000, U);
	add(0x9000, 0x1000, U); /* gap at 0x6000..0x9000 */
	add(0x3000, 0x2000, U);
	add(0xa000, 0x1000, AN);
	add(0xb000, 0x1000, AN);
	add(0xc000, 0x1000, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x1000, 0x5000, U }, { 0x9000, 0x1000, U }, { 0xa000, 0x2000, AN }, { 0xc000, 0x1000, U });

	/* Every pair of distinct types stays apart when adjacent. */
	reset();
	uint64_t base = 1 * MB;
	for (uint32_t a = U; a <= IO; a++)
		for (uint32_t b = U; b <= IO; b++)
			if (a != b) {
				add(base, PG, a);
				add(base + PG, PG, b);
				base += 1 * MB;
			}
	uint32_t n = bi.mem_count;
	boot_mem_finalize(&bi);
	CHECK_EQ_U64(bi.mem_count, n);

	/* Large addresses, and a range ending at the top of the address space. */
	reset();
	add(UINT64_MAX - 0xfff, 0x1000, IO);
	add(1ull << 40, 1ull << 30, U);
	add((1ull << 40) + (1ull << 30), 1ull << 30, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 1ull << 40, 2ull << 30, U }, { UINT64_MAX - 0xfff, 0x1000, IO });
}

static void test_page_zero(void)
{
	/* The usual PC low memory: page 0 split off as reserved. */
	reset();
	add(0x100000, 0x700000, U);
	add(0, 0xa0000, BR); /* given last: the sort must happen first */
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, 0xa0000 - PG, BR }, { 0x100000, 0x700000, U });

	/* Page 0 alone: the remainder disappears instead of staying empty. */
	reset();
	add(0, PG, U);
	add(PG, PG, K);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, PG, K });

	/* ... and the new reserved page merges with reserved memory after it. */
	reset();
	add(0, PG, U);
	add(PG, 0x10000, R);
	add(0x100000, MB, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, 0x11000, R }, { 0x100000, MB, U });

	/* Already reserved at 0, or nothing at 0: nothing to do. */
	reset();
	add(0, 0x2000, R);
	add(0x2000, 0x2000, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, 0x2000, R }, { 0x2000, 0x2000, U });
	reset();
	add(0x1000, 0x2000, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x1000, 0x2000, U });

	/* Any type at 0 loses page 0, not just usable memory. */
	reset();
	add(0, 2 * PG, AN);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, PG, AN });

	/* A byte-granular map (e820 style) that describes page 0 in pieces of
	 * one type: once merged, page 0 is still usable memory, so it must be
	 * reserved just the same. */
	reset();
	add(0x800, 0x9f800, U);
	add(0, 0x800, U);
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, 0xa0000 - PG, U });

	/* A full table has no slot for the reserved range; page 0 must still
	 * not end up usable (left out of the map is as good as reserved). */
	reset();
	add(0, 0xa0000, U);
	for (uint32_t i = 1; i < BOOT_MEM_MAX; i++)
		add(i * MB, PG, i % 2 ? K : U);
	boot_mem_finalize(&bi);
	CHECK_EQ_U64(bi.mem_count, BOOT_MEM_MAX);
	for (uint32_t i = 0; i < bi.mem_count; i++)
		if (!CHECK(bi.mem[i].base >= PG || bi.mem[i].type == R))
			fprintf(stderr, "    full table: range %u [0x%llx, +0x%llx) %s\n", i,
			        (unsigned long long)bi.mem[i].base, (unsigned long long)bi.mem[i].size,
			        boot_mem_type_name(bi.mem[i].type));
	CHECK_EQ_U64(bi.mem[0].base + bi.mem[0].size, 0xa0000); /* only page 0 lost */
	CHECK_EQ_U64(bi.mem[bi.mem_count - 1].base, (BOOT_MEM_MAX - 1) * MB);
}

/* Random page-granular maps checked against a per-page model: whatever the
 * order and splitting of the input, the output must be the canonical form
 * of the same page types, with page 0 reserved if anything covered it. */
#define MODEL_PAGES 96

static void test_random_maps(void)
{
	const uint64_t seed = 0xba11a57;
	const int rounds = 5000;
	rng_state = seed;
	printf("boot_info: random maps, seed 0x%llx, %d rounds\n", (unsigned long long)seed, rounds);
	for (int round = 0; round < rounds; round++) {
		uint32_t model[MODEL_PAGES]; /* 0: not in the map */
		random_map(model, MODEL_PAGES, 6);
		boot_mem_finalize(&bi);
		if (model[0])
			model[0] = R;

		/* Canonical: sorted, non-empty, and neighbours either apart or of
		 * different types. Then every page has its model type. */
		uint32_t got[MODEL_PAGES] = { 0 };
		bool ok = true;
		for (uint32_t i = 0; i < bi.mem_count; i++) {
			const struct boot_mem_range *r = &bi.mem[i];
			ok &= r->size > 0 && r->base % PG == 0 && r->size % PG == 0 && r->base + r->size <= MODEL_PAGES * PG;
			if (i > 0) {
				const struct boot_mem_range *q = &bi.mem[i - 1];
				ok &= q->base + q->size <= r->base;
				ok &= q->base + q->size < r->base || q->type != r->type;
			}
			for (uint64_t a = r->base; ok && a < r->base + r->size; a += PG)
				got[a / PG] = r->type;
		}
		ok &= memcmp(got, model, sizeof model) == 0;
		if (!CHECK(ok)) {
			fprintf(stderr, "    round %d: map wrong\n", round);
			return;
		}
	}
}

int main(void)
{
	test_type_names();
	test_add();
	test_sort_and_merge();
	test_page_zero();
	test_random_maps();
	return check_summary("boot_info");
}
