/* Unit tests of boot_mem_carve in boot/boot_info.c: the PVH front end
 * gets a memory map that calls the kernel image RAM, and carves the image
 * out of it as kernel memory before boot_mem_finalize. If the carve went
 * wrong, the allocator would hand out the kernel's own pages (or lose RAM,
 * or see ranges that overlap). The rest of boot_info.c is tested in
 * test_boot_info.c. */
#include "tests/unit/boot_fixture.h"

static struct boot_info saved;

#define CARVE(base, size, type) CHECK_EQ_U64(boot_mem_carve(&bi, (base), (size), (type)), 0)

/* A carve that must change nothing at all. */
static void expect_no_change(uint64_t base, uint64_t size, uint32_t type, int line)
{
	saved = bi;
	if (!(CHECK_EQ_U64(boot_mem_carve(&bi, base, size, type), 0) & CHECK(memcmp(&saved, &bi, sizeof bi) == 0))) {
		fprintf(stderr, "    carve [0x%llx, +0x%llx) changed the map (line %d)\n", (unsigned long long)base,
		        (unsigned long long)size, line);
		dump();
	}
}
#define EXPECT_NO_CHANGE(base, size, type) expect_no_change((base), (size), (type), __LINE__)

static void test_one_range(void)
{
	/* the whole range: retyped in place, nothing appended */
	reset();
	add(0x100000, MB, U);
	CARVE(0x100000, MB, K);
	EXPECT_MAP({ 0x100000, MB, K });
	/* its start: the rest is appended */
	reset();
	add(0x100000, MB, U);
	CARVE(0x100000, 0x3000, K);
	EXPECT_MAP({ 0x100000, 0x3000, K }, { 0x103000, MB - 0x3000, U });
	/* its end */
	reset();
	add(0x100000, MB, U);
	CARVE(0x200000 - 0x3000, 0x3000, K);
	EXPECT_MAP({ 0x200000 - 0x3000, 0x3000, K }, { 0x100000, MB - 0x3000, U });
	/* the middle: one piece either side */
	reset();
	add(0x100000, MB, U);
	CARVE(0x140000, 0x2000, K);
	EXPECT_MAP({ 0x140000, 0x2000, K }, { 0x100000, 0x40000, U }, { 0x142000, MB - 0x42000, U });
	/* more than the range on both sides: only the range is retyped */
	reset();
	add(0x100000, MB, U);
	CARVE(0x80000, 2 * MB, K);
	EXPECT_MAP({ 0x100000, MB, K });
	/* a single page, and a carve not page-aligned (bytes are bytes) */
	reset();
	add(0x5000, PG, U);
	add(0x10000, 0x10000, U);
	CARVE(0x5000, PG, R);
	CARVE(0x10800, 0x100, AN);
	EXPECT_MAP({ 0x5000, PG, R }, { 0x10800, 0x100, AN }, { 0x10000, 0x800, U }, { 0x10900, 0xf700, U });
	/* one byte in common, at either end of the range */
	reset();
	add(0x2000, PG, U);
	CARVE(0x1000, 0x1001, K);
	EXPECT_MAP({ 0x2000, 1, K }, { 0x2001, PG - 1, U });
	reset();
	add(0x1000, PG, U);
	CARVE(0x1fff, 0x10, K);
	EXPECT_MAP({ 0x1fff, 1, K }, { 0x1000, PG - 1, U });
}

static void test_nothing_to_do(void)
{
	reset();
	add(0x100000, MB, U);
	add(0x300000, MB, K);
	add(0x500000, PG, IO);
	/* outside every range: below, between, after, touching an end */
	EXPECT_NO_CHANGE(0, 0x100000, R);
	EXPECT_NO_CHANGE(0x200000, 0x100000, R);
	EXPECT_NO_CHANGE(0x200000 + PG, PG, R);
	EXPECT_NO_CHANGE(0x501000, 100 * MB, R);
	EXPECT_NO_CHANGE(UINT64_MAX - 0xfff, 0x1000, R);
	/* already of that type */
	EXPECT_NO_CHANGE(0x300000, MB, K);
	EXPECT_NO_CHANGE(0x380000, PG, K);
	EXPECT_NO_CHANGE(0x500000, PG, IO);
	/* empty: nowhere, inside a range, at its start, at its end */
	EXPECT_NO_CHANGE(0x150000, 0, K);
	EXPECT_NO_CHANGE(0x100000, 0, K);
	EXPECT_NO_CHANGE(0x200000, 0, K);
	EXPECT_NO_CHANGE(0x500800, 0, R);
	EXPECT_NO_CHANGE(0, 0, R);
	/* an empty map */
	reset();
	EXPECT_NO_CHANGE(0, UINT64_MAX, K);
}

static void test_several_ranges(void)
{
	/* Unsorted ranges with holes: each covered part is retyped, the
	 * uncovered parts are appended, holes stay holes. */
	reset();
	add(0x300000, MB, U);
	add(0x100000, MB, R);
	add(0x500000, MB, AN);
	add(0x700000, MB, U);
	CARVE(0x180000, 0x400000, K);
	EXPECT_MAP({ 0x300000, MB, K }, { 0x180000, 0x80000, K }, { 0x500000, 0x80000, K }, { 0x700000, MB, U },
	           { 0x100000, 0x80000, R }, { 0x580000, 0x80000, AN });
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x100000, 0x80000, R }, { 0x180000, 0x80000, K }, { 0x300000, MB, K }, { 0x500000, 0x80000, K },
	           { 0x580000, 0x80000, AN }, { 0x700000, MB, U });

	/* Across ranges some of which have the type already: those stay as
	 * they are, and finalize merges the result. */
	reset();
	add(0x100000, MB, K);
	add(0x200000, MB, U);
	add(0x300000, MB, K);
	add(0x400000, MB, U);
	CARVE(0x180000, 0x300000, K);
	EXPECT_MAP({ 0x100000, MB, K }, { 0x200000, MB, K }, { 0x300000, MB, K }, { 0x400000, 0x80000, K },
	           { 0x480000, 0x80000, U });
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x100000, 0x380000, K }, { 0x480000, 0x80000, U });

	/* Carves in turn, the second splitting a piece the first appended. */
	reset();
	add(0, 16 * PG, U);
	CARVE(4 * PG, 4 * PG, K);
	CARVE(12 * PG, 2 * PG, R);
	EXPECT_MAP({ 4 * PG, 4 * PG, K }, { 0, 4 * PG, U }, { 12 * PG, 2 * PG, R }, { 8 * PG, 4 * PG, U },
	           { 14 * PG, 2 * PG, U });
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, 3 * PG, U }, { 4 * PG, 4 * PG, K }, { 8 * PG, 4 * PG, U }, { 12 * PG, 2 * PG, R },
	           { 14 * PG, 2 * PG, U });
}

/* What boot/pvh does: QEMU's map calls the image (loaded at 1 MiB) RAM. */
static void test_pvh(void)
{
	reset();
	add(0x100000, 0x10000000 - 0x100000, U);
	CARVE(0x100000, 0x13c000 - 0x100000, K);
	EXPECT_MAP({ 0x100000, 0x3c000, K }, { 0x13c000, 0x10000000 - 0x13c000, U });
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0x100000, 0x3c000, K }, { 0x13c000, 0x10000000 - 0x13c000, U });

	/* The whole e820 map of a 256 MiB pc machine. */
	reset();
	add(0, 0x9fc00, U);
	add(0x9fc00, 0x400, R);
	add(0xf0000, 0x10000, R);
	add(0x100000, 0x10000000 - 0x100000, U);
	add(0xfeffc000, 0x4000, R);
	add(0xfffc0000, 0x40000, R);
	CARVE(0x100000, 0x3c000, K);
	EXPECT_MAP({ 0, 0x9fc00, U }, { 0x9fc00, 0x400, R }, { 0xf0000, 0x10000, R }, { 0x100000, 0x3c000, K },
	           { 0xfeffc000, 0x4000, R }, { 0xfffc0000, 0x40000, R }, { 0x13c000, 0x10000000 - 0x13c000, U });
	boot_mem_finalize(&bi);
	EXPECT_MAP({ 0, PG, R }, { PG, 0x9fc00 - PG, U }, { 0x9fc00, 0x400, R }, { 0xf0000, 0x10000, R },
	           { 0x100000, 0x3c000, K }, { 0x13c000, 0x10000000 - 0x13c000, U }, { 0xfeffc000, 0x4000, R },
	           { 0xfffc0000, 0x40000, R });
}

/* A range may end at the top of the address space (base + size wraps to
 * 0); a carve there must still work. */
static void test_top_of_address_space(void)
{
	reset();
	add(UINT64_MAX - 0x1fff, 0x2000, IO);
	CARVE(UINT64_MAX - 0xfff, 0x1000, R);
	EXPECT_MAP({ UINT64_MAX - 0xfff, 0x1000, R }, { UINT64_MAX - 0x1fff, 0x1000, IO });
	reset();
	add(UINT64_MAX - 0x1fff, 0x2000, IO);
	CARVE(UINT64_MAX - 0x1fff, 0x1000, R);
	EXPECT_MAP({ UINT64_MAX - 0x1fff, 0x1000, R }, { UINT64_MAX - 0xfff, 0x1000, IO });
	reset();
	add(UINT64_MAX - 0x1fff, 0x2000, IO);
	CARVE(UINT64_MAX - 0x2fff, 0x3000, R);
	EXPECT_MAP({ UINT64_MAX - 0x1fff, 0x2000, R });
	reset();
	add(UINT64_MAX - 0x1fff, 0x2000, IO);
	CARVE(0, UINT64_MAX, R); /* all but the last byte */
	EXPECT_MAP({ UINT64_MAX - 0x1fff, 0x1fff, R }, { UINT64_MAX, 1, IO });
}

/* The table filling up. Whatever is lost then, no part of the carve may
 * keep its old type (that would leave kernel pages usable): the carved
 * pages have the new type, every other page its old type or none. */
static struct boot_info before;

static void fill_to(uint32_t n)
{
	for (uint32_t i = bi.mem_count; i < n; i++)
		add((1000 + i) * MB, PG, i % 2 ? R : U);
}

/* The type of the range holding addr, 0 if none, UINT32_MAX if several. */
static uint32_t type_at(const struct boot_info *b, uint64_t addr)
{
	uint32_t type = 0;
	for (uint32_t i = 0; i < b->mem_count; i++)
		if (addr >= b->mem[i].base && addr - b->mem[i].base < b->mem[i].size)
			type = type ? UINT32_MAX : b->mem[i].type;
	return type;
}

static void expect_lost_only(uint64_t base, uint64_t size, uint32_t type, int line)
{
	bool ok = CHECK(bi.mem_count <= BOOT_MEM_MAX);
	/* nothing new: each range lies inside one the map had */
	for (uint32_t i = 0; i < bi.mem_count; i++) {
		const struct boot_mem_range *r = &bi.mem[i];
		ok &= CHECK(r->size > 0 && type_at(&before, r->base) && type_at(&before, r->base + r->size - 1));
	}
	for (uint32_t i = 0; i < before.mem_count; i++)
		for (uint64_t a = before.mem[i].base; a < before.mem[i].base + before.mem[i].size; a += PG) {
			uint32_t t = type_at(&bi, a);
			if (a >= base && a - base < size)
				ok &= CHECK_EQ_U64(t, type);
			else
				ok &= CHECK(t == 0 || t == before.mem[i].type);
			if (!ok) {
				fprintf(stderr, "    page 0x%llx (case at line %d)\n", (unsigned long long)a, line);
				dump();
				return;
			}
		}
}
#define EXPECT_LOST_ONLY(base, size, type) expect_lost_only((base), (size), (type), __LINE__)

static void test_full_table(void)
{
	/* room for exactly the two pieces */
	reset();
	add(0x100000, 4 * PG, U);
	fill_to(BOOT_MEM_MAX - 2);
	CARVE(0x101000, PG, K);
	CHECK_EQ_U64(bi.mem_count, BOOT_MEM_MAX);
	CHECK_EQ_U64(type_at(&bi, 0x100000), U);
	CHECK_EQ_U64(type_at(&bi, 0x101000), K);
	CHECK_EQ_U64(type_at(&bi, 0x102000), U);
	CHECK_EQ_U64(type_at(&bi, 0x103000), U);
	/* one slot short */
	reset();
	add(0x100000, 4 * PG, U);
	fill_to(BOOT_MEM_MAX - 1);
	before = bi;
	CHECK_EQ_U64(boot_mem_carve(&bi, 0x101000, PG, K), (uint64_t)-1);
	EXPECT_LOST_ONLY(0x101000, PG, K);
	/* full, the carve across two ranges that both need a piece */
	reset();
	add(0x100000, 2 * PG, U);
	add(0x102000, 2 * PG, U);
	fill_to(BOOT_MEM_MAX);
	before = bi;
	CHECK_EQ_U64(boot_mem_carve(&bi, 0x101000, 2 * PG, K), (uint64_t)-1);
	EXPECT_LOST_ONLY(0x101000, 2 * PG, K);
	/* the same the other way round in the table */
	reset();
	add(0x102000, 2 * PG, U);
	add(0x100000, 2 * PG, U);
	fill_to(BOOT_MEM_MAX);
	before = bi;
	CHECK_EQ_U64(boot_mem_carve(&bi, 0x101000, 2 * PG, K), (uint64_t)-1);
	EXPECT_LOST_ONLY(0x101000, 2 * PG, K);
	/* full, but no piece needed: fine */
	reset();
	add(0x100000, 2 * PG, U);
	add(0x102000, 2 * PG, U);
	fill_to(BOOT_MEM_MAX);
	CARVE(0x100000, 4 * PG, K);
	CHECK_EQ_U64(bi.mem[0].type, K);
	CHECK_EQ_U64(bi.mem[1].type, K);
	CHECK_EQ_U64(bi.mem_count, BOOT_MEM_MAX);
}

/* Random page-granular maps (unsorted, in pieces, with holes) and random
 * carves, against a per-page model. After each carve the table is
 * checked exactly: the ranges the carve does not touch stay in their
 * slots, a touched one keeps its slot for the part carved, the parts left
 * either side are appended in order. And independently: the ranges are
 * non-empty, do not overlap, and give every page its model type. After
 * finalize, the map is the canonical form of the model. */
#define MODEL_PAGES 64
#define CARVE_PAGES (MODEL_PAGES + 8) /* carves may reach past the map */

static const uint32_t all_types[] = { U, R, BR, K, AN, IO, AR };

static bool table_matches(const uint32_t *model, bool canonical)
{
	uint32_t got[CARVE_PAGES] = { 0 };
	bool ok = true;
	for (uint32_t i = 0; i < bi.mem_count; i++) {
		const struct boot_mem_range *r = &bi.mem[i];
		ok &= r->size > 0 && r->base % PG == 0 && r->size % PG == 0 && r->base + r->size <= MODEL_PAGES * PG;
		if (canonical && i > 0) {
			const struct boot_mem_range *q = &bi.mem[i - 1];
			ok &= q->base + q->size < r->base || (q->base + q->size == r->base && q->type != r->type);
		}
		for (uint64_t a = r->base; ok && a < r->base + r->size; a += PG) {
			ok &= got[a / PG] == 0; /* no overlap */
			got[a / PG] = r->type;
		}
	}
	return ok && memcmp(got, model, sizeof got) == 0;
}

static void test_random_carves(void)
{
	const uint64_t seed = 0xca27e;
	const int rounds = 20000;
	rng_state = seed;
	printf("boot_carve: random maps and carves, seed 0x%llx, %d rounds\n", (unsigned long long)seed, rounds);
	uint64_t carves = 0, pieces = 0, empty = 0;
	for (int round = 0; round < rounds; round++) {
		uint32_t model[CARVE_PAGES] = { 0 }; /* 0: not in the map */
		random_map(model, MODEL_PAGES, 8);

		for (unsigned c = 1 + (unsigned)(rng() % 4); c > 0; c--) {
			uint64_t b = rng() % CARVE_PAGES, s = rng() % 5 == 0 ? 0 : rng() % (CARVE_PAGES - b + 1);
			uint32_t type = all_types[rng() % 7];
			uint64_t base = b * PG, end = (b + s) * PG;
			/* the table as it must come out */
			struct boot_info want = bi;
			for (uint32_t i = 0; i < bi.mem_count; i++) {
				struct boot_mem_range r = bi.mem[i];
				uint64_t lo = r.base > base ? r.base : base, r_end = r.base + r.size;
				uint64_t hi = r_end < end ? r_end : end;
				if (lo >= hi || r.type == type)
					continue;
				want.mem[i] = (struct boot_mem_range){ lo, hi - lo, type };
				if (r.base < lo)
					want.mem[want.mem_count++] = (struct boot_mem_range){ r.base, lo - r.base, r.type };
				if (hi < r_end)
					want.mem[want.mem_count++] = (struct boot_mem_range){ hi, r_end - hi, r.type };
			}
			pieces += want.mem_count - bi.mem_count;
			for (uint64_t pg = b; pg < b + s; pg++)
				if (model[pg])
					model[pg] = type;
			bool ok = boot_mem_carve(&bi, base, s * PG, type) == 0;
			ok &= bi.mem_count == want.mem_count &&
			      memcmp(bi.mem, want.mem, want.mem_count * sizeof want.mem[0]) == 0;
			ok &= table_matches(model, false);
			if (!CHECK(ok)) {
				fprintf(stderr, "    round %d: carve [0x%llx, +0x%llx) %s wrong\n", round,
				        (unsigned long long)base, (unsigned long long)(s * PG), boot_mem_type_name(type));
				dump();
				return;
			}
			carves++;
			empty += s == 0;
		}
		boot_mem_finalize(&bi);
		if (model[0])
			model[0] = R;
		if (!CHECK(table_matches(model, true))) {
			fprintf(stderr, "    round %d: map wrong after finalize\n", round);
			dump();
			return;
		}
	}
	printf("boot_carve: %llu carves (%llu empty), %llu pieces appended\n", (unsigned long long)carves,
	       (unsigned long long)empty, (unsigned long long)pieces);
}

int main(void)
{
	test_one_range();
	test_nothing_to_do();
	test_several_ranges();
	test_pvh();
	test_top_of_address_space();
	test_full_table();
	test_random_carves();
	return check_summary("boot_carve");
}
