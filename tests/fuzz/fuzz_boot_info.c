/* Fuzzes the memory map every boot front end builds (boot/boot_info.c):
 * boot_mem_add, boot_mem_carve and boot_mem_finalize on random maps.
 * Everything the kernel allocates, maps or leaves alone follows from it:
 * an overlap is a page handed out twice, page 0 usable is a NULL that
 * does not fault, a carve that leaves the kernel image "usable" is the
 * allocator handing out the kernel.
 *
 * Two kinds of map. Disjoint ones (what firmware gives: byte-granular,
 * any order, up to the top of the address space, any number of ranges up
 * to and past the table's size) are checked exactly against a model, byte
 * for byte. Overlapping ones (no front end should produce them, but
 * nothing stops one) are only checked for memory safety and the basic
 * shape (no empty range, count in bounds): see run_overlapping.
 *
 * The model is a partition of [0, 2^64) into segments at every boundary
 * any range, carve or page 0 has; each segment's expected type follows
 * from the input ranges and the carves in order. The output must then be
 * sorted, non-overlapping, merged (no two touching ranges of one type), and
 * each segment either wholly inside one output range of its type or, only
 * where the table filled up, missing; page 0 must not be usable. */
#include "boot/boot_info.h"
#include "tests/fuzz/fuzz_input.h"

#define PAGE 4096ull
#define MAX_RANGES (BOOT_MEM_MAX + 16) /* some past the table: add must refuse them */
#define MAX_CARVES 8
#define MAX_POINTS (2 * (MAX_RANGES + MAX_CARVES) + 2)

/* Inclusive ends throughout: a range may end at the top of the address
 * space, where base + size is 0. */
struct iv {
	uint64_t lo, hi;
	uint32_t type;
};

static struct boot_info bi;

static uint32_t take_type(struct fuzz_in *in)
{
	/* the seven types, sometimes one no front end knows (the map must not care) */
	uint8_t t = take_u8(in);
	return t < 0xf8 ? BOOT_MEM_USABLE + t % 7u : 100u + t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_iv(const void *a, const void *b)
{
	return cmp_u64(&((const struct iv *)a)->lo, &((const struct iv *)b)->lo);
}

/* The output range holding the last base <= addr, or NULL. */
static const struct boot_mem_range *range_at_or_before(uint64_t addr)
{
	const struct boot_mem_range *r = NULL;
	uint32_t lo = 0, hi = bi.mem_count;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (bi.mem[mid].base <= addr) {
			r = &bi.mem[mid];
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return r;
}

static void dump(void)
{
	for (uint32_t i = 0; i < bi.mem_count; i++)
		fprintf(stderr, "  [0x%llx, +0x%llx) %s\n", (unsigned long long)bi.mem[i].base,
		        (unsigned long long)bi.mem[i].size, boot_mem_type_name(bi.mem[i].type));
}

/* Non-empty and within the table; for disjoint input also sorted,
 * non-overlapping and merged. Not sorted for overlapping input: two
 * ranges at 0, and splitting page 0 off the first moves it behind the
 * second (see run_overlapping). */
static void check_shape(bool disjoint)
{
	FUZZ_ASSERT(bi.mem_count <= BOOT_MEM_MAX, "%u ranges", bi.mem_count);
	for (uint32_t i = 0; i < bi.mem_count; i++) {
		const struct boot_mem_range *r = &bi.mem[i], *q = i ? &bi.mem[i - 1] : NULL;
		FUZZ_ASSERT(r->size > 0, "range %u empty", i);
		if (!q || !disjoint)
			continue;
		FUZZ_ASSERT(q->base <= r->base, "range %u not sorted", i);
		uint64_t q_last = q->base + q->size - 1;
		FUZZ_ASSERT(q_last < r->base, "ranges %u and %u overlap", i - 1, i);
		/* touching and of one type is unmerged, unless together they
		 * are all 2^64 bytes: no size can say that */
		bool full_span = q->base == 0 && r->base + (r->size - 1) == UINT64_MAX;
		if (q_last + 1 == r->base && q->type == r->type && !full_span) {
			dump();
			FUZZ_ASSERT(false, "ranges %u and %u touch and are both %s", i - 1, i, boot_mem_type_name(r->type));
		}
	}
}

/* Overlapping maps break the contract the front ends rely on (UEFI
 * forbids overlapping descriptors, QEMU's e820 has none), and finalize
 * does not promise to repair them: it neither removes overlaps nor, with
 * two ranges at 0, keeps the order or reserves page 0 from the second.
 * So only what holds for any input is checked: no memory error, no
 * undefined behaviour, no empty range, the count within the table. */
static void run_overlapping(struct fuzz_in *in)
{
	unsigned n = take_u16(in) % (MAX_RANGES + 1); /* up to past a full table */
	for (unsigned i = 0; i < n; i++) {
		uint64_t base = take_scaled(in), size = take_scaled(in);
		if (base + size < base && base + size != 0)
			size = 0 - base; /* to the top, no further: a wrapping range is no range */
		boot_mem_add(&bi, base, size, take_type(in));
	}
	unsigned nc = take_u8(in) % MAX_CARVES;
	for (unsigned i = 0; i < nc; i++) {
		uint64_t base = take_scaled(in), size = take_scaled(in);
		if (base + size < base && base + size != 0)
			size = 0 - base;
		boot_mem_carve(&bi, base, size, take_type(in));
	}
	boot_mem_finalize(&bi);
	check_shape(false);
}

static void run_disjoint(struct fuzz_in *in)
{
	static struct iv ranges[MAX_RANGES], carves[MAX_CARVES], segs[MAX_POINTS];
	static uint64_t pts[MAX_POINTS];
	unsigned n = 0, np = 0;
	uint64_t cursor = take_scaled(in);
	bool at_top = false;
	/* back to back, each after a gap (often none): disjoint by construction */
	unsigned want = take_u16(in) % (MAX_RANGES + 1);
	while (n < want && !at_top) {
		uint64_t gap = take_u8(in) & 1 ? take_scaled(in) : 0, size = take_scaled(in);
		if (!size)
			size = 1;
		if (cursor + gap < cursor || cursor + gap + (size - 1) < cursor + gap) {
			/* past the top: end this map exactly there */
			if (cursor + gap < cursor)
				break;
			size = 0 - (cursor + gap);
			if (!size)
				break;
		}
		struct iv r = { cursor + gap, cursor + gap + size - 1, take_type(in) };
		ranges[n++] = r;
		at_top = r.hi == UINT64_MAX;
		cursor = r.hi + 1;
	}
	/* handed to the map in a shuffled order, as firmware maps come */
	for (unsigned i = n; i > 1; i--) {
		unsigned j = take_u8(in) % i;
		struct iv t = ranges[i - 1];
		ranges[i - 1] = ranges[j];
		ranges[j] = t;
	}
	unsigned kept = 0;
	for (unsigned i = 0; i < n; i++) {
		bool full = bi.mem_count == BOOT_MEM_MAX;
		int r = boot_mem_add(&bi, ranges[i].lo, ranges[i].hi - ranges[i].lo + 1, ranges[i].type);
		FUZZ_ASSERT(r == (full ? -1 : 0), "add with %u ranges: %d", bi.mem_count, r);
		if (!full)
			ranges[kept++] = ranges[i]; /* the model holds what the map took */
	}
	n = kept;

	unsigned nc = take_u8(in) % (MAX_CARVES + 1);
	bool lost = false;
	for (unsigned i = 0; i < nc; i++) {
		uint64_t base = take_scaled(in), size = take_scaled(in);
		if (base + size < base && base + size != 0)
			size = 0 - base;
		carves[i] = (struct iv){ base, base + size - 1, take_type(in) };
		int r = boot_mem_carve(&bi, base, size, carves[i].type);
		FUZZ_ASSERT(r == 0 || r == -1, "carve: %d", r);
		lost |= r < 0;
		if (!size)
			carves[i].type = 0; /* an empty carve changes nothing */
	}
	boot_mem_finalize(&bi);
	check_shape(true);

	/* the segments: every range and carve boundary, and page 0's end */
	pts[np++] = 0;
	pts[np++] = PAGE;
	for (unsigned i = 0; i < n; i++) {
		pts[np++] = ranges[i].lo;
		if (ranges[i].hi != UINT64_MAX)
			pts[np++] = ranges[i].hi + 1;
	}
	for (unsigned i = 0; i < nc; i++) {
		if (!carves[i].type)
			continue;
		pts[np++] = carves[i].lo;
		if (carves[i].hi != UINT64_MAX)
			pts[np++] = carves[i].hi + 1;
	}
	qsort(pts, np, sizeof pts[0], cmp_u64);
	qsort(ranges, n, sizeof ranges[0], cmp_iv);
	unsigned ns = 0, j = 0;
	for (unsigned s = 0; s < np; s++) {
		if (s && pts[s] == pts[s - 1])
			continue;
		struct iv *g = &segs[ns++];
		g->lo = pts[s];
		g->hi = UINT64_MAX; /* unless a later boundary ends it */
		for (unsigned t = s + 1; t < np; t++)
			if (pts[t] != g->lo) {
				g->hi = pts[t] - 1;
				break;
			}
		/* the input range holding it, if any (segments never straddle one) */
		while (j < n && ranges[j].hi < g->lo)
			j++;
		g->type = j < n && ranges[j].lo <= g->lo ? ranges[j].type : 0;
		/* then the carves in order; a carve retypes only what the map has */
		for (unsigned i = 0; i < nc; i++)
			if (g->type && carves[i].type && carves[i].lo <= g->lo && g->hi <= carves[i].hi)
				g->type = carves[i].type;
	}

	/* Page 0 (the segments below PAGE) goes reserved when one type other
	 * than reserved covers all of it: its pieces merge into one range
	 * first. Else it stays as it is. With the table full there is no slot
	 * for the reserved range and it is left out instead. */
	uint32_t page0 = segs[0].type;
	for (unsigned s = 0; s < ns && segs[s].hi < PAGE; s++)
		if (segs[s].type != page0)
			page0 = 0;
	bool reserve0 = page0 && page0 != BOOT_MEM_RESERVED;
	bool table_full = bi.mem_count == BOOT_MEM_MAX;

	for (unsigned s = 0; s < ns; s++) {
		uint64_t lo = segs[s].lo, hi = segs[s].hi;
		uint32_t type = segs[s].type;
		bool in_page0 = hi < PAGE;
		if (in_page0 && reserve0)
			type = BOOT_MEM_RESERVED;
		const struct boot_mem_range *r = range_at_or_before(hi);
		bool covered = r && r->base + (r->size - 1) >= lo;
		if (covered) {
			FUZZ_ASSERT(r->base <= lo && hi <= r->base + (r->size - 1),
			            "segment [0x%llx, 0x%llx] split in the output", (unsigned long long)lo,
			            (unsigned long long)hi);
			/* a lost piece can break page 0's run: then it may stay as it was */
			bool ok = r->type == type || (in_page0 && lost && r->type == segs[s].type);
			if (!ok)
				dump();
			FUZZ_ASSERT(ok, "segment [0x%llx, 0x%llx] is %s, want %s", (unsigned long long)lo,
			            (unsigned long long)hi, boot_mem_type_name(r->type), type ? boot_mem_type_name(type) : "none");
		} else {
			/* missing: only a piece a full table dropped, or page 0 left out */
			bool may_go = lost || (in_page0 && reserve0 && table_full);
			if (type && !may_go)
				dump();
			FUZZ_ASSERT(!type || may_go, "segment [0x%llx, 0x%llx] (%s) lost", (unsigned long long)lo,
			            (unsigned long long)hi, boot_mem_type_name(type));
		}
	}
	/* whatever else happened: no usable page at address 0 */
	if (bi.mem_count && bi.mem[0].base == 0 && bi.mem[0].size >= PAGE)
		FUZZ_ASSERT(bi.mem[0].type == BOOT_MEM_RESERVED, "page 0 is %s", boot_mem_type_name(bi.mem[0].type));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	memset(&bi, 0, sizeof bi);
	if (take_u8(&in) & 1)
		run_overlapping(&in);
	else
		run_disjoint(&in);
	return 0;
}
