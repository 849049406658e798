/* Unit tests of drivers/pci/pci_bar.c: decoding a BAR from its sizing
 * reads. The values are what a device answers; a bad answer must be
 * refused (the BAR ignored), never turned into a size that makes later
 * range checks pass for anything (a 64-bit BAR whose high mask reads 0
 * once gave 0xffffffff00004000, and every capability offset fit in it).
 *
 * Table cases for the shapes real devices have, then a random run against
 * a reference that walks the mask bit by bit. */
#include <stdlib.h>
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_bar.h"
#include "tests/unit/check.h"

#define RANDOM_RUNS 2000000

struct want {
	int rc;
	uint64_t base, size;
};

#define R32(lo, mask) ((struct pci_bar_reads){ (lo), (mask), 0, 0 })
#define R64(lo, mask, hi, mask_hi) ((struct pci_bar_reads){ (lo), (mask), (hi), (mask_hi) })
#define W(rc, base, size) ((struct want){ (rc), (base), (size) })

static void expect(const char *what, struct pci_bar_reads r, bool io, bool is64, struct want w)
{
	uint64_t base = 0x1234, size = 0x5678;
	const char *why = NULL;
	int rc = pci_bar_decode(&r, io, is64, &base, &size, &why);
	if (!CHECK_EQ_U64(rc, w.rc))
		fprintf(stderr, "    case: %s (why: %s)\n", what, why ? why : "-");
	if (w.rc == 0) {
		CHECK_EQ_U64(size, w.size);
		if (w.size)
			CHECK_EQ_U64(base, w.base);
	} else {
		CHECK(why != NULL);
		CHECK_EQ_U64(size, 0);
	}
}

static void table_cases(void)
{
	/* 32-bit memory, 16 KiB at 0xfebf0000 (a virtio-pci legacy BAR shape) */
	expect("mem32 16K", R32(0xfebf0000, 0xffffc000), false, false, W(0, 0xfebf0000, 0x4000));
	/* prefetchable 64-bit, 16 KiB above 4 GiB (QEMU's modern virtio BAR) */
	expect("mem64 16K", R64(0x0000000c, 0xffffc00c, 0x8, 0xffffffff), false, true,
	       W(0, 0x800000000ull, 0x4000));
	/* a 64-bit BAR that decodes only 32 bits: the high mask reads 0 */
	expect("mem64 high mask 0", R64(0xfe00000c, 0xffffc00c, 0, 0), false, true,
	       W(0, 0xfe000000, 0x4000));
	/* a 1 TiB 64-bit BAR: no low address bit sticks */
	expect("mem64 1T", R64(0x0000000c, 0x0000000c, 0x100, 0xffffff00), false, true,
	       W(0, 0x10000000000ull, 1ull << 40));
	/* I/O, 32 ports at 0xc000; the upper 16 bits read back as 0 */
	expect("io 32", R32(0xc001, 0x0000ffe1), true, false, W(0, 0xc000, 0x20));
	expect("io 32 upper ones", R32(0xc001, 0xffffffe1), true, false, W(0, 0xc000, 0x20));
	/* unimplemented */
	expect("mem32 none", R32(0, 0), false, false, W(0, 0, 0));
	expect("mem64 none", R64(0x4, 0x4, 0, 0), false, true, W(0, 0, 0));
	expect("io none", R32(0x1, 0x1), true, false, W(0, 0, 0));
	/* nonsense: a hole in the mask, a base not aligned to the size (which
	 * is also what would make a range run past 2^64 or the port space) */
	expect("mem32 hole", R32(0xfe000000, 0xff00c000), false, false, W(-1, 0, 0));
	expect("mem64 hole in high", R64(0xc, 0xffffc00c, 0, 0xff00ffff), false, true,
	       W(-1, 0, 0));
	expect("mem32 unaligned", R32(0xfebf2000, 0xffffc000), false, false, W(-1, 0, 0));
	expect("mem64 wraps", R64(0xffffc00c, 0xffffc00c, 0xffffffff, 0xffffffff), false, true,
	       W(0, 0xffffffffffffc000ull, 0x4000)); /* ends exactly at 2^64: fits */
	expect("io unaligned near 64K", R32(0xfff1, 0xffffffe1), true, false, W(-1, 0, 0));
	/* every size from 16 bytes to 2 GiB for 32-bit memory, at base 0 */
	for (unsigned bit = 4; bit < 32; bit++) {
		uint32_t mask = (uint32_t)(0xffffffffu << bit);
		expect("mem32 size sweep", R32(0, mask), false, false, W(0, 0, 1ull << bit));
	}
}

/* Bit by bit: the lowest address bit the mask holds is the size; from it
 * up, every bit must be set to the top of the BAR's width (16 bits for
 * I/O, 32 for a 32-bit BAR), or, in a 64-bit BAR whose high address bits
 * may be hardwired to 0, to the highest set bit. */
static int reference(const struct pci_bar_reads *r, bool io, bool is64, uint64_t *base, uint64_t *size)
{
	unsigned width = io ? 16 : is64 ? 64 : 32, low = io ? 2 : 4;
	uint64_t mask = r->mask_lo | (is64 ? (uint64_t)r->mask_hi << 32 : 0);
	uint64_t b = r->lo | (is64 ? (uint64_t)r->hi << 32 : 0);
	*size = 0;
	int lowest = -1, top = -1;
	for (unsigned i = low; i < width; i++)
		if (mask >> i & 1) {
			if (lowest < 0)
				lowest = (int)i;
			top = (int)i;
		}
	if (lowest < 0)
		return 0;
	int must_top = is64 ? top : (int)width - 1;
	for (int i = lowest; i <= must_top; i++)
		if (!(mask >> i & 1))
			return -1;
	uint64_t addr = 0;
	for (unsigned i = low; i < width; i++)
		addr |= b & (1ull << i);
	uint64_t sz = 1ull << lowest;
	if (addr & (sz - 1))
		return -1;
	*base = addr;
	*size = sz;
	return 0;
}

static uint32_t random_mask(void)
{
	/* mostly well-formed masks (a run of ones from some bit up, maybe cut
	 * off at the top), some with a flipped bit, some random */
	unsigned shape = (unsigned)rand() % 4, bit = (unsigned)rand() % 33;
	uint32_t m = bit == 32 ? 0 : (uint32_t)(0xffffffffu << bit);
	if (shape == 1)
		m &= (uint32_t)(0xffffffffu >> ((unsigned)rand() % 32));
	else if (shape == 2)
		m ^= 1u << ((unsigned)rand() % 32);
	else if (shape == 3)
		m = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
	return m;
}

static void random_cases(void)
{
	srand(0xba12);
	unsigned long bad = 0, good = 0;
	for (unsigned long n = 0; n < RANDOM_RUNS; n++) {
		bool io = rand() % 4 == 0, is64 = !io && rand() % 2;
		struct pci_bar_reads r = { (uint32_t)rand() & random_mask(), random_mask(), is64 ? random_mask() & (uint32_t)rand() : 0,
		                           is64 ? random_mask() : 0 };
		r.lo = (r.lo & ~0xfu) | (io ? 1 : is64 ? 4 : 0);
		r.mask_lo = (r.mask_lo & ~0xfu) | (r.lo & 0xf);
		uint64_t base = 0, size = 0, rbase = 0, rsize = 0;
		const char *why = NULL;
		int rc = pci_bar_decode(&r, io, is64, &base, &size, &why);
		int want = reference(&r, io, is64, &rbase, &rsize);
		bool ok = CHECK_EQ_U64(rc, want) && CHECK_EQ_U64(size, rsize) && (size == 0 || CHECK_EQ_U64(base, rbase));
		if (!ok) {
			fprintf(stderr, "    io=%d is64=%d lo=0x%x mask_lo=0x%x hi=0x%x mask_hi=0x%x why=%s\n", io, is64, r.lo,
			        r.mask_lo, r.hi, r.mask_hi, why ? why : "-");
			return;
		}
		/* independent of the reference: an accepted BAR is a power of two,
		 * aligned, and inside its address space */
		if (rc == 0 && size) {
			CHECK((size & (size - 1)) == 0 && (base & (size - 1)) == 0 && base + size - 1 >= base);
			good++;
		} else if (rc < 0) {
			bad++;
		}
	}
	printf("random: %lu accepted with a size, %lu refused\n", good, bad);
	CHECK(good > RANDOM_RUNS / 10 && bad > RANDOM_RUNS / 10); /* both paths exercised */
}

int main(void)
{
	table_cases();
	random_cases();
	printf("%lu checks, %lu failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}
