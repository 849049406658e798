/* Unit tests of kernel/console/parse.c: the console and the command line
 * feed it whatever a user (or a fuzzing harness) types, so the edges matter
 * more than the happy path. */
#include <stdlib.h>
#include "kernel/console/parse.h"
#include "tests/unit/check.h"

/* Splits a copy of s (parse_words writes NULs into its input) and checks
 * the result against the expected words; n is -1 for "too many words". */
static void expect_words(const char *s, int n, const char *const *want)
{
	char buf[256];
	char *argv[PARSE_MAX_ARGS + 1];
	/* A sentinel past the last slot: parse_words must never write there. */
	argv[PARSE_MAX_ARGS] = (char *)"sentinel";
	snprintf(buf, sizeof buf, "%s", s);
	int got = parse_words(buf, argv);
	if (!CHECK_EQ_U64(got, n))
		fprintf(stderr, "    input \"%s\"\n", s);
	CHECK_EQ_STR(argv[PARSE_MAX_ARGS], "sentinel");
	/* The words are only worth comparing if the count was right. */
	for (int i = 0; got == n && i < n; i++)
		CHECK_EQ_STR(argv[i], want[i]);
}

static void test_parse_words(void)
{
	expect_words("", 0, NULL);
	expect_words("   \t  ", 0, NULL);
	expect_words("help", 1, (const char *const[]){ "help" });
	expect_words("  alloc   3\t\t0x10  ", 3, (const char *const[]){ "alloc", "3", "0x10" });
	expect_words("a\tb", 2, (const char *const[]){ "a", "b" });
	expect_words("1 2 3 4 5 6 7 8", 8, (const char *const[]){ "1", "2", "3", "4", "5", "6", "7", "8" });
	/* trailing blanks after the eighth word are not a ninth word */
	expect_words("1 2 3 4 5 6 7 8 \t ", 8, (const char *const[]){ "1", "2", "3", "4", "5", "6", "7", "8" });
	expect_words("1 2 3 4 5 6 7 8 9", -1, NULL);
	expect_words("1 2 3 4 5 6 7 8 9 10 11 12", -1, NULL);

	/* In place: argv points into the caller's buffer, words NUL-terminated. */
	char line[] = "ab cd";
	char *argv[PARSE_MAX_ARGS];
	CHECK_EQ_U64(parse_words(line, argv), 2);
	CHECK(argv[0] == line && argv[1] == line + 3 && line[2] == '\0');
}

/* The value is only compared on success: parse.h promises nothing about
 * *out on failure (parse_u64 does write it for "12a": the digits parse
 * before the trailing junk is seen). The poison makes a success that never
 * wrote *out visible. */
#define POISON 0x5a5a5a5a5a5a5a5aull

static void expect_u64(const char *s, bool ok, uint64_t want)
{
	uint64_t v = POISON;
	bool got = parse_u64(s, &v);
	if (!CHECK_EQ_U64(got, ok))
		fprintf(stderr, "    parse_u64(\"%s\")\n", s);
	if (ok && got && !CHECK_EQ_U64(v, want))
		fprintf(stderr, "    parse_u64(\"%s\")\n", s);
}

static void test_parse_u64(void)
{
	expect_u64("0", true, 0);
	expect_u64("42", true, 42);
	expect_u64("007", true, 7);
	expect_u64("0x0", true, 0);
	expect_u64("0x10", true, 16);
	expect_u64("0XdeadBEEF", true, 0xdeadbeef);
	expect_u64("18446744073709551615", true, UINT64_MAX);
	expect_u64("0xffffffffffffffff", true, UINT64_MAX);
	expect_u64("0x0000000000000000ffffffffffffffff", true, UINT64_MAX); /* zeros don't overflow */
	expect_u64("18446744073709551610", true, UINT64_MAX - 5);
	/* one past UINT64_MAX, and far past: each must be caught, not wrap */
	expect_u64("18446744073709551616", false, 0);
	expect_u64("18446744073709551620", false, 0);
	expect_u64("99999999999999999999", false, 0);
	expect_u64("0x10000000000000000", false, 0);
	expect_u64("", false, 0);
	expect_u64("0x", false, 0);
	expect_u64("0X", false, 0);
	expect_u64("x10", false, 0);
	expect_u64("12a", false, 0);
	expect_u64("0x12g", false, 0);
	expect_u64("-1", false, 0);
	expect_u64("+1", false, 0);
	expect_u64(" 1", false, 0);
	expect_u64("1 ", false, 0);
	expect_u64("1\t", false, 0);
	expect_u64("0x0x1", false, 0);
	expect_u64("1K", false, 0); /* suffixes are parse_size's, not parse_u64's */
	expect_u64("abc", false, 0); /* hex digits without 0x are not decimal */
}

static void expect_size(const char *s, bool ok, uint64_t want)
{
	uint64_t v = POISON;
	bool got = parse_size(s, &v);
	if (!CHECK_EQ_U64(got, ok))
		fprintf(stderr, "    parse_size(\"%s\")\n", s);
	if (ok && got && !CHECK_EQ_U64(v, want))
		fprintf(stderr, "    parse_size(\"%s\")\n", s);
}

static void test_parse_size(void)
{
	expect_size("0", true, 0);
	expect_size("4096", true, 4096);
	expect_size("0x1000", true, 4096);
	expect_size("1K", true, 1024);
	expect_size("1k", true, 1024);
	expect_size("3M", true, 3ull << 20);
	expect_size("3m", true, 3ull << 20);
	expect_size("2G", true, 2ull << 30);
	expect_size("2g", true, 2ull << 30);
	expect_size("0x10M", true, 16ull << 20);
	expect_size("0K", true, 0);
	expect_size("18446744073709551615", true, UINT64_MAX);
	/* the largest values each suffix can scale without overflow ... */
	expect_size("18014398509481983K", true, 18014398509481983ull << 10);
	expect_size("17592186044415M", true, 17592186044415ull << 20);
	expect_size("17179869183G", true, 17179869183ull << 30);
	/* ... and one more, which would wrap to 0 if the shift went unchecked */
	expect_size("18014398509481984K", false, 0);
	expect_size("17592186044416M", false, 0);
	expect_size("17179869184G", false, 0);
	expect_size("18446744073709551615K", false, 0);
	expect_size("18446744073709551616", false, 0);
	expect_size("", false, 0);
	expect_size("K", false, 0);
	expect_size("0x", false, 0);
	expect_size("0xK", false, 0);
	expect_size("1T", false, 0);
	expect_size("1KB", false, 0);
	expect_size("1KK", false, 0);
	expect_size("1 K", false, 0);
	expect_size(" 1K", false, 0);
	expect_size("1K ", false, 0);
	expect_size("-1K", false, 0);
	expect_size("1.5G", false, 0);
}

/* Calls cmdline_find with a canary after the buffer's out_len bytes: the
 * value must be truncated within out_len, never past it. */
static bool find(const char *cmdline, const char *key, char *out, size_t out_len)
{
	char buf[64];
	memset(buf, '#', sizeof buf);
	bool r = cmdline_find(cmdline, key, buf, out_len);
	CHECK(buf[out_len] == '#');
	if (out_len)
		memcpy(out, buf, out_len);
	return r;
}

static void test_cmdline_find(void)
{
	const char *cl = "quiet crashes=1 mem=64M  log=debug\tcrash seed=0x1234";
	char v[32];

	CHECK(find(cl, "quiet", v, sizeof v));
	CHECK_EQ_STR(v, "");
	CHECK(find(cl, "mem", v, sizeof v));
	CHECK_EQ_STR(v, "64M");
	CHECK(find(cl, "log", v, sizeof v));
	CHECK_EQ_STR(v, "debug");
	CHECK(find(cl, "seed", v, sizeof v));
	CHECK_EQ_STR(v, "0x1234");
	/* "crash" is a prefix of "crashes=1", which comes first: it must find
	 * the bare word "crash" later on, not the value of "crashes" */
	CHECK(find(cl, "crash", v, sizeof v));
	CHECK_EQ_STR(v, "");
	CHECK(find(cl, "crashes", v, sizeof v));
	CHECK_EQ_STR(v, "1");
	/* nor may a word match a longer key, or a key a word it is a suffix of */
	CHECK(!find(cl, "quieter", v, sizeof v));
	CHECK(!find(cl, "uiet", v, sizeof v));
	CHECK(!find(cl, "me", v, sizeof v));
	CHECK(!find(cl, "debug", v, sizeof v)); /* values are not keys */
	CHECK(!find(cl, "nosuch", v, sizeof v));

	/* First occurrence wins; "key=" is present with an empty value. */
	CHECK(find("a=1 a=2", "a", v, sizeof v));
	CHECK_EQ_STR(v, "1");
	CHECK(find("x= y", "x", v, sizeof v));
	CHECK_EQ_STR(v, "");
	CHECK(find("k=a=b", "k", v, sizeof v));
	CHECK_EQ_STR(v, "a=b");

	/* Truncation to out_len - 1 characters, always NUL-terminated. */
	CHECK(find("name=abcdefgh", "name", v, 4));
	CHECK_EQ_STR(v, "abc");
	CHECK(find("name=abcdefgh", "name", v, 9));
	CHECK_EQ_STR(v, "abcdefgh");
	CHECK(find("name=abcdefgh", "name", v, 8));
	CHECK_EQ_STR(v, "abcdefg");
	CHECK(find("name=abcdefgh", "name", v, 1));
	CHECK_EQ_STR(v, "");
	/* out_len 0: nothing may be written at all (find checks buf[0]) */
	CHECK(find("name=abcdefgh", "name", v, 0));

	/* Empty and blank command lines, NULL out. */
	CHECK(!find("", "quiet", v, sizeof v));
	CHECK(!find("   \t ", "quiet", v, sizeof v));
	CHECK(cmdline_find(cl, "mem", NULL, 0));
	CHECK(cmdline_find(cl, "mem", NULL, 16));
	CHECK(!cmdline_find(cl, "nosuch", NULL, 16));
	CHECK(cmdline_find("  quiet", "quiet", NULL, 0));
	CHECK(cmdline_find("quiet  ", "quiet", NULL, 0));
	/* A miss leaves out untouched. */
	strcpy(v, "unchanged");
	CHECK(!cmdline_find(cl, "nosuch", v, sizeof v));
	CHECK_EQ_STR(v, "unchanged");
}

int main(void)
{
	test_parse_words();
	test_parse_u64();
	test_parse_size();
	test_cmdline_find();
	return check_summary("parse");
}
