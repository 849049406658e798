/* The memory map the boot_info test programs work on (test_boot_info.c,
 * test_boot_carve.c, test_boot_full_span.c): one static table, reset per
 * case, and a comparison of the whole table with an expected list that
 * prints the map when they differ. Every helper is static: each program is
 * one translation unit plus boot/boot_info.c. */
#ifndef BALLAST_TEST_BOOT_FIXTURE_H
#define BALLAST_TEST_BOOT_FIXTURE_H

#include <stdlib.h>
#include "boot/boot_info.h"
#include "tests/unit/check.h"

#define KB 1024ull
#define MB (1024ull * KB)
#define PG 4096ull

enum { U = BOOT_MEM_USABLE, BR = BOOT_MEM_BOOT_RECLAIMABLE, K = BOOT_MEM_KERNEL, R = BOOT_MEM_RESERVED,
       AR = BOOT_MEM_ACPI_RECLAIM, AN = BOOT_MEM_ACPI_NVS, IO = BOOT_MEM_MMIO };

/* struct boot_info is ~6 KiB; one static instance, reset per case. */
static struct boot_info bi;

static inline void reset(void) { memset(&bi, 0, sizeof bi); }
static inline void add(uint64_t base, uint64_t size, uint32_t type)
{
	CHECK_EQ_U64(boot_mem_add(&bi, base, size, type), 0);
}

static inline void dump(void)
{
	for (uint32_t i = 0; i < bi.mem_count; i++)
		fprintf(stderr, "    got [0x%llx, +0x%llx) %s\n", (unsigned long long)bi.mem[i].base,
		        (unsigned long long)bi.mem[i].size, boot_mem_type_name(bi.mem[i].type));
}

/* Compares the whole table, in order, with an expected list of ranges. */
static inline void expect_map(const struct boot_mem_range *want, uint32_t n, int line)
{
	bool ok = CHECK_EQ_U64(bi.mem_count, n);
	for (uint32_t i = 0; ok && i < n; i++)
		ok = CHECK_EQ_U64(bi.mem[i].base, want[i].base) & CHECK_EQ_U64(bi.mem[i].size, want[i].size) &
		     CHECK_EQ_U64(bi.mem[i].type, want[i].type);
	if (!ok) {
		fprintf(stderr, "    map (case at line %d)\n", line);
		dump();
	}
}
#define EXPECT_MAP(...)                                                                        \
	do {                                                                                       \
		const struct boot_mem_range want_[] = { __VA_ARGS__ };                                 \
		expect_map(want_, sizeof want_ / sizeof want_[0], __LINE__);                           \
	} while (0)

#include "tests/unit/xorshift.h"

/* A fresh random page-granular map in bi over [0, pages): runs of 1 to
 * max_run pages of a random type (or a hole), cut into random pieces and
 * added in random order. model[pg] gets each page's type, 0 for a hole. */
static inline void random_map(uint32_t *model, uint32_t pages, uint32_t max_run)
{
	static const uint32_t types[] = { U, R, BR, K, AN, IO, AR };
	struct boot_mem_range in[pages];
	uint32_t n = 0;
	for (uint32_t pg = 0; pg < pages;) {
		uint32_t len = 1 + (uint32_t)(rng() % max_run), type = (uint32_t)(rng() % 4);
		type = type == 0 ? 0 : types[rng() % 7];
		for (uint32_t i = 0; i < len && pg < pages; i++, pg++)
			model[pg] = type;
	}
	for (uint32_t pg = 0; pg < pages;) {
		uint32_t len = 1;
		while (pg + len < pages && model[pg + len] == model[pg] && rng() % 3)
			len++;
		if (model[pg])
			in[n++] = (struct boot_mem_range){ pg * PG, len * PG, model[pg] };
		pg += len;
	}
	for (uint32_t i = n; i > 1; i--) { /* Fisher-Yates */
		uint32_t j = (uint32_t)(rng() % i);
		struct boot_mem_range t = in[i - 1];
		in[i - 1] = in[j];
		in[j] = t;
	}
	reset();
	for (uint32_t i = 0; i < n; i++)
		add(in[i].base, in[i].size, in[i].type);
}

#endif
