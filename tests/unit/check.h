/* Minimal assertions for the native unit tests: no framework, so a test is
 * one self-contained program that meson runs and judges by its exit status.
 *
 * A failed check reports and counts but does not abort, so one run shows
 * every broken property, not just the first. Checks that need later checks
 * to make sense (a NULL pointer about to be used, say) should return early
 * themselves. */
#ifndef BALLAST_TEST_CHECK_H
#define BALLAST_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* static in a header: every test program is one translation unit, plus the
 * code under test, which never includes this file. */
static unsigned long check_count, check_failed;

static inline int check_report(int ok, const char *file, int line, const char *expr)
{
	check_count++;
	if (!ok) {
		check_failed++;
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
	}
	return ok;
}

static inline int check_eq_u64(uint64_t a, uint64_t b, const char *file, int line, const char *ea, const char *eb)
{
	check_count++;
	if (a != b) {
		check_failed++;
		fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n    left  = %" PRIu64 " (0x%" PRIx64
		        ")\n    right = %" PRIu64 " (0x%" PRIx64 ")\n",
		        file, line, ea, eb, a, a, b, b);
	}
	return a == b;
}

static inline int check_eq_str(const char *a, const char *b, const char *file, int line, const char *ea,
                               const char *eb)
{
	int ok = a && b && strcmp(a, b) == 0;
	check_count++;
	if (!ok) {
		check_failed++;
		fprintf(stderr, "%s:%d: CHECK_EQ_STR failed: %s == %s\n    left  = \"%s\"\n    right = \"%s\"\n", file,
		        line, ea, eb, a ? a : "(null)", b ? b : "(null)");
	}
	return ok;
}

/* Each evaluates to whether the check passed, for callers that stop early. */
#define CHECK(cond)          check_report(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ_U64(a, b)   check_eq_u64((uint64_t)(a), (uint64_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_STR(a, b)   check_eq_str((a), (b), __FILE__, __LINE__, #a, #b)

/* The last line of a test's output, and its exit status. */
static inline int check_summary(const char *name)
{
	printf("%s: %lu checks, %lu failed\n", name, check_count, check_failed);
	return check_failed ? 1 : 0;
}

#endif
