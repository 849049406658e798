/* Unit tests of kernel/mm/mm_layout.c: from a boot memory map to the page
 * allocator, on maps a firmware or a hypervisor's PVH start info could hand
 * over. Whatever the map, the kernel must come up with exactly the whole
 * pages of its usable ranges managed, and `managed + offline == usable`
 * must hold (mm.c panics at boot otherwise): a byte-granular range once
 * made usable count a page the allocator never got, and a RAM range
 * terabytes up asked for more page metadata than any range holds.
 *
 * The allocator keeps its links in the metadata and never writes the
 * memory it manages, so the "physical memory" here needs no backing: only
 * the metadata is a host buffer (to_virt). */
#include <stdlib.h>
#include <stdarg.h>
#include "kernel/mm/mm_layout.h"
#include "tests/unit/check.h"

#define MB (1ull << 20)
#define GB (1ull << 30)
#define PG PAGE_SIZE

static struct boot_info bi;
static struct pmm pmm;
static void *meta;
static uint64_t meta_pa;
static char log_text[4096];

/* kernel/log.h's klog, for the code under test: the lines are kept so a
 * test can require that a bad range was reported. */
/* kdebug lines are logged too: tests see them all */
bool log_verbose = true;

void kprintf(const char *fmt, ...)
{
	size_t n = strlen(log_text);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(log_text + n, sizeof(log_text) - n, fmt, ap);
	va_end(ap);
}

static void *to_virt(uint64_t pa)
{
	free(meta);
	meta_pa = pa;
	meta = calloc(1, 64 * MB); /* more than any metadata below needs */
	return meta;
}

static void map(const struct boot_mem_range *ranges, unsigned n)
{
	bi = (struct boot_info){ 0 };
	for (unsigned i = 0; i < n; i++)
		bi.mem[i] = ranges[i];
	bi.mem_count = n;
	log_text[0] = '\0';
}

/* Brings the map up as mm_init does and checks the counters: `want_pages`
 * managed in all (metadata included), all of it free but the metadata. */
static void expect_layout(const char *what, uint64_t want_pages, const char *want_log)
{
	struct mm_layout l;
	int64_t state = mm_layout_plan(&bi, &pmm, to_virt, &l);
	if (!CHECK(state > 0)) {
		fprintf(stderr, "    case: %s: no layout\n", what);
		return;
	}
	uint64_t usable = (uint64_t)state + mm_layout_add(&bi, &pmm, BOOT_MEM_USABLE, &l) +
	                  mm_layout_add(&bi, &pmm, BOOT_MEM_BOOT_RECLAIMABLE, &l);
	bool ok = CHECK_EQ_U64(usable, want_pages) && CHECK_EQ_U64(pmm.c.managed_pages + pmm.c.offline_pages, usable) &&
	          CHECK_EQ_U64(pmm.c.allocated_pages, (uint64_t)state) &&
	          CHECK_EQ_U64(pmm.c.free_pages, usable - (uint64_t)state) && CHECK(pmm_check(&pmm)) &&
	          CHECK(meta_pa % PG == 0 && meta_pa >= PG);
	if (want_log)
		ok = CHECK(strstr(log_text, want_log) != NULL) && ok;
	else
		ok = CHECK_EQ_STR(log_text, "") && ok;
	if (!ok)
		fprintf(stderr, "    case: %s\n    log: %s\n", what, log_text);
	/* every page handed out is inside a usable range, whole */
	for (uint64_t n = 0; n < pmm.c.free_pages; n++) {
		uint64_t pa = pmm_alloc(&pmm, 0);
		bool inside = false;
		for (uint32_t i = 0; i < bi.mem_count; i++) {
			const struct boot_mem_range *r = &bi.mem[i];
			if ((r->type == BOOT_MEM_USABLE || r->type == BOOT_MEM_BOOT_RECLAIMABLE) && pa >= r->base &&
			    pa + PG <= r->base + r->size && r->base + r->size > r->base)
				inside = true;
		}
		if (!CHECK(pa != PMM_NO_PAGE && inside)) {
			fprintf(stderr, "    case: %s: page 0x%" PRIx64 " handed out\n", what, pa);
			return;
		}
	}
}

static void test_aligned(void)
{
	const struct boot_mem_range m[] = {
		{ 0, PG, BOOT_MEM_RESERVED },
		{ PG, 636 * 1024 - PG, BOOT_MEM_USABLE },
		{ 1 * MB, 255 * MB, BOOT_MEM_USABLE },
		{ 256 * MB, 4 * MB, BOOT_MEM_BOOT_RECLAIMABLE },
	};
	map(m, 4);
	expect_layout("a QEMU-like map", (636 * 1024 - PG) / PG + 255 * MB / PG + 4 * MB / PG, NULL);
}

static void test_byte_granular(void)
{
	/* PVH's e820 may describe RAM in bytes: only whole pages count, and the
	 * metadata must start on a page boundary inside its range */
	const struct boot_mem_range m[] = {
		{ 0x100800, 0x3ffff000, BOOT_MEM_USABLE },          /* first whole page 0x101000, end 0x400ff800 */
		{ 0x50000010, 0x2000, BOOT_MEM_BOOT_RECLAIMABLE },  /* one whole page */
		{ 0x60000001, 0xffe, BOOT_MEM_USABLE },             /* no whole page */
	};
	map(m, 3);
	expect_layout("byte-granular ranges", (0x400ff000 - 0x101000) / PG + 1, NULL);
}

static void test_overlapping(void)
{
	/* boot_mem_finalize does not merge overlaps of one type; the second is
	 * left out, reported, and the rest comes up */
	const struct boot_mem_range m[] = {
		{ 1 * MB, 63 * MB, BOOT_MEM_USABLE },
		{ 32 * MB, 64 * MB, BOOT_MEM_USABLE },
		{ 128 * MB, 16 * MB, BOOT_MEM_BOOT_RECLAIMABLE },
	};
	map(m, 3);
	expect_layout("overlapping usable ranges", 63 * MB / PG + 16 * MB / PG, "overlaps another; left out");
}

static void test_wrapping(void)
{
	const struct boot_mem_range m[] = {
		{ 1 * MB, 31 * MB, BOOT_MEM_USABLE },
		{ 0xfffffffffffff000ull, 0x2000, BOOT_MEM_USABLE }, /* runs past 2^64 */
	};
	map(m, 2);
	expect_layout("a range past 2^64", 31 * MB / PG, NULL);
}

static void test_memory_far_up(void)
{
	/* 32 MiB low and 64 MiB at 1 TiB: the metadata up to there (2.4 GB)
	 * fits nowhere, so the high range is left out; then again with the high
	 * range within reach (the metadata for 4 GiB + 64 MiB fits in 32 MiB) */
	const struct boot_mem_range far[] = {
		{ 1 * MB, 32 * MB, BOOT_MEM_USABLE },
		{ 1024 * GB, 64 * MB, BOOT_MEM_USABLE },
	};
	map(far, 2);
	expect_layout("RAM at 1 TiB", 32 * MB / PG, "leaving out memory from 0x10000000000");
	const struct boot_mem_range near[] = {
		{ 1 * MB, 32 * MB, BOOT_MEM_USABLE },
		{ 4 * GB, 64 * MB, BOOT_MEM_USABLE },
	};
	map(near, 2);
	expect_layout("RAM at 4 GiB", 32 * MB / PG + 64 * MB / PG, NULL);
	/* past what the allocator can index at all (PMM_MAX_PFN) */
	const struct boot_mem_range huge[] = {
		{ 1 * MB, 32 * MB, BOOT_MEM_USABLE },
		{ 1ull << 60, 1ull << 40, BOOT_MEM_USABLE },
	};
	map(huge, 2);
	expect_layout("RAM at 2^60", 32 * MB / PG, "leaving out memory from 0x1000000000000000");
}

static void test_nothing_usable(void)
{
	const struct boot_mem_range m[] = {
		{ 0, PG, BOOT_MEM_USABLE },                /* page 0 only: never memory for the metadata */
		{ 1 * MB, 0x800, BOOT_MEM_USABLE },        /* no whole page */
		{ 2 * MB, 2 * MB, BOOT_MEM_RESERVED },
	};
	map(m, 3);
	struct mm_layout l;
	CHECK_EQ_U64(mm_layout_plan(&bi, &pmm, to_virt, &l), (uint64_t)-1);
	CHECK(strstr(log_text, "leaving out memory from 0x0") != NULL);
}

int main(void)
{
	test_aligned();
	test_byte_granular();
	test_overlapping();
	test_wrapping();
	test_memory_far_up();
	test_nothing_usable();
	free(meta);
	printf("%lu checks, %lu failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}
