/* Fuzzes kernel/console/parse.c: every console line and the whole kernel
 * command line go through it, so its input is whatever a user (or QEMU's
 * -append) types.
 *
 * Each function is checked against an independent reference written here
 * from parse.h's contract, not from parse.c: a parser that is consistent
 * with itself but wrong (an off-by-one in the overflow check, say) passes
 * a "does not crash" fuzzer but not this one. Strings are handed over in
 * exact-size heap copies so that a read past the NUL is ASan's to report.
 *
 * Input: one byte picks the function (or the edge-number generator), the
 * rest is its argument(s). */
#include "kernel/console/parse.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/ref_parse.h"

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* An exact-size, NUL-terminated heap copy of n bytes (which may themselves
 * hold a NUL: the string then ends early, as a C string would). */
static char *dup_n(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void check_numbers(const char *s)
{
	uint64_t ref = 0, got = 0;
	bool ref_ok = ref_u64(s, &ref);
	bool ok = parse_u64(s, &got);
	FUZZ_ASSERT(ok == ref_ok, "parse_u64(\"%s\") = %d, reference %d", s, ok, ref_ok);
	FUZZ_ASSERT(!ok || got == ref, "parse_u64(\"%s\") = %llu, reference %llu", s, (unsigned long long)got,
	            (unsigned long long)ref);

	ref_ok = ref_size(s, &ref);
	got = 0;
	ok = parse_size(s, &got);
	FUZZ_ASSERT(ok == ref_ok, "parse_size(\"%s\") = %d, reference %d", s, ok, ref_ok);
	FUZZ_ASSERT(!ok || got == ref, "parse_size(\"%s\") = %llu, reference %llu", s, (unsigned long long)got,
	            (unsigned long long)ref);
}

/* Numbers at the edges. Mutated bytes almost never spell a 20-digit
 * decimal within a few units of 2^64, or a number within a few units of
 * 2^64 / 1024^k with the suffix that then overflows: the only places an
 * overflow check can be off by one. So: such an edge plus or minus a
 * small delta, in decimal or hex, maybe with leading zeros and a suffix. */
static void check_edges(struct fuzz_in *in)
{
	uint8_t sel = take_u8(in);
	unsigned __int128 v = ((unsigned __int128)1 << 64) >> (10 * (sel % 4));
	v += (__int128)(int8_t)take_u8(in);
	unsigned base = sel & 4 ? 16 : 10;
	char digits[48], s[64];
	int nd = 0;
	do {
		digits[nd++] = "0123456789abcdef"[(unsigned)(v % base)];
		v /= base;
	} while (v);
	int len = snprintf(s, sizeof s, "%s%.*s", base == 16 ? "0x" : "", (sel >> 3) & 3, "000");
	while (nd)
		s[len++] = digits[--nd];
	snprintf(s + len, sizeof s - (size_t)len, "%s", (const char *[]){ "", "K", "m", "G" }[(sel >> 5) & 3]);
	check_numbers(s);
}

static void check_words(char *line)
{
	size_t n = strlen(line);
	char *orig = dup_n((const uint8_t *)line, n);
	/* one slot past PARSE_MAX_ARGS: it must never be written */
	char *argv[PARSE_MAX_ARGS + 1];
	char sentinel;
	argv[PARSE_MAX_ARGS] = &sentinel;
	int argc = parse_words(line, argv);
	FUZZ_ASSERT(argv[PARSE_MAX_ARGS] == &sentinel, "parse_words wrote argv[%d]", PARSE_MAX_ARGS);

	/* The reference words: maximal runs of non-blank characters. */
	const char *w[PARSE_MAX_ARGS + 1];
	size_t wl[PARSE_MAX_ARGS + 1];
	int nw = 0;
	for (const char *p = orig; *p && nw <= PARSE_MAX_ARGS;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		w[nw] = p;
		while (*p && !is_blank(*p))
			p++;
		wl[nw] = (size_t)(p - w[nw]);
		nw++;
	}
	if (nw > PARSE_MAX_ARGS) {
		FUZZ_ASSERT(argc == -1, "\"%s\": %d words, more than %d, yet argc %d", orig, nw, PARSE_MAX_ARGS, argc);
	} else {
		FUZZ_ASSERT(argc == nw, "\"%s\": argc %d, reference %d", orig, argc, nw);
		for (int i = 0; i < argc; i++) {
			/* in place: each word where it was in the line, cut to its length */
			FUZZ_ASSERT(argv[i] == line + (w[i] - orig), "\"%s\": word %d not in place", orig, i);
			FUZZ_ASSERT(strlen(argv[i]) == wl[i] && memcmp(argv[i], w[i], wl[i]) == 0,
			            "\"%s\": word %d is \"%s\"", orig, i, argv[i]);
		}
	}
	free(orig);
}

/* The reference lookup: the first word that is the key or starts with
 * "key=". The key is non-empty and blank-free, as every caller's literal is. */
static bool ref_find(const char *cmdline, const char *key, const char **val, size_t *val_len)
{
	size_t kl = strlen(key);
	for (const char *p = cmdline; *p;) {
		while (is_blank(*p))
			p++;
		const char *word = p;
		while (*p && !is_blank(*p))
			p++;
		size_t wl = (size_t)(p - word);
		if (wl == kl && memcmp(word, key, kl) == 0) {
			*val = word + wl;
			*val_len = 0;
			return true;
		}
		if (wl > kl && memcmp(word, key, kl) == 0 && word[kl] == '=') {
			*val = word + kl + 1;
			*val_len = wl - kl - 1;
			return true;
		}
	}
	return false;
}

static void check_cmdline(struct fuzz_in *in)
{
	size_t out_len = take_u8(in) % 80;
	bool null_out = take_u8(in) & 1;
	/* the key runs up to the first NUL byte, the command line after it */
	const uint8_t *sep = memchr(in->p, 0, in->left);
	size_t kn = sep ? (size_t)(sep - in->p) : in->left;
	char *key = dup_n(in->p, kn);
	char *cmdline = sep ? dup_n(sep + 1, in->left - kn - 1) : dup_n(in->p, 0);
	/* exact size, so a write past out_len is an ASan report */
	char *out = null_out ? NULL : malloc(out_len ? out_len : 1);
	if (out)
		memset(out, '#', out_len ? out_len : 1);

	bool found = cmdline_find(cmdline, key, out, out_len);
	bool key_ok = *key && !strpbrk(key, " \t");
	const char *val = NULL;
	size_t val_len = 0;
	if (key_ok) {
		bool ref = ref_find(cmdline, key, &val, &val_len);
		FUZZ_ASSERT(found == ref, "cmdline_find(\"%s\", \"%s\") = %d, reference %d", cmdline, key, found, ref);
	}
	if (out && out_len == 0)
		FUZZ_ASSERT(out[0] == '#', "out_len 0, yet out written");
	if (out && out_len && !found)
		FUZZ_ASSERT(out[0] == '#', "a miss wrote out");
	if (out && out_len && found && key_ok) {
		size_t want = val_len < out_len - 1 ? val_len : out_len - 1;
		FUZZ_ASSERT(memchr(out, '\0', out_len) != NULL, "value not NUL-terminated within out_len");
		FUZZ_ASSERT(strlen(out) == want && memcmp(out, val, want) == 0,
		            "cmdline_find(\"%s\", \"%s\", %zu) gave \"%s\"", cmdline, key, out_len, out);
	}
	free(out);
	free(cmdline);
	free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	uint8_t mode = take_u8(&in);
	char *s;
	switch (mode % 4) {
	case 0:
		s = dup_n(in.p, in.left);
		check_words(s);
		free(s);
		break;
	case 1:
		s = dup_n(in.p, in.left);
		check_numbers(s);
		free(s);
		break;
	case 2:
		check_cmdline(&in);
		break;
	default:
		check_edges(&in);
		break;
	}
	return 0;
}
