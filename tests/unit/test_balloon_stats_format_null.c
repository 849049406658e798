/* Regression test for a finding of tests/fuzz/fuzz_stats.c: the length
 * query balloon_stats_format(NULL, 0, ...), which balloon_stats.h promises
 * ("the length snprintf would have written") and test_balloon_stats.c
 * makes, used to compute buf + 0 with buf NULL before every snprintf.
 * Pointer arithmetic on a null pointer is undefined (C11 6.5.6p8): clang's
 * -fsanitize=undefined (the fuzz build) stops on it, "applying zero offset
 * to null pointer"; gcc's, which the meson unit tests use, has no such
 * check, so here the test only proves the contract. To see it fail against
 * the old code:
 *   clang -fsanitize=undefined -fno-sanitize-recover=all -I. \
 *     tests/unit/test_balloon_stats_format_null.c drivers/virtio/balloon_stats.c
 *
 * Also: a real buffer with length 0 must not be written at all, and one of
 * length 1 holds just the terminator. */
#include "drivers/virtio/balloon_stats.h"
#include "tests/unit/check.h"

int main(void)
{
	struct balloon_stat_values v;
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		v.v[t] = 1000 + t;
	char full[512];
	int n = balloon_stats_format(full, sizeof full, 3, &v);
	CHECK(n > 0 && (size_t)n == strlen(full));

	CHECK_EQ_U64(balloon_stats_format(NULL, 0, 3, &v), n);
	CHECK_EQ_U64(balloon_stats_format(NULL, 0, UINT64_MAX, &v), n + 19); /* "3" -> 20 digits */

	char one[2] = { 'x', 'y' };
	CHECK_EQ_U64(balloon_stats_format(one, 0, 3, &v), n);
	CHECK(one[0] == 'x' && one[1] == 'y');
	CHECK_EQ_U64(balloon_stats_format(one, 1, 3, &v), n);
	CHECK(one[0] == '\0' && one[1] == 'y');
	return check_summary("balloon_stats_format_null");
}
