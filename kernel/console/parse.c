#include <string.h>
#include "kernel/console/parse.h"

static bool is_space(char c) { return c == ' ' || c == '\t'; }

int parse_words(char *line, char *argv[PARSE_MAX_ARGS])
{
	int argc = 0;
	char *p = line;
	for (;;) {
		while (is_space(*p))
			p++;
		if (!*p)
			return argc;
		if (argc == PARSE_MAX_ARGS)
			return -1;
		argv[argc++] = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

static int digit_value(char c, unsigned base)
{
	int v;
	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	else
		return -1;
	return (unsigned)v < base ? v : -1;
}

/* Parses digits up to end (or the NUL); returns the end pointer or NULL. */
static const char *parse_digits(const char *s, uint64_t *out)
{
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	uint64_t v = 0;
	const char *start = s;
	int d;
	while ((d = digit_value(*s, base)) >= 0) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return NULL;
		v = v * base + (uint64_t)d;
		s++;
	}
	if (s == start)
		return NULL;
	*out = v;
	return s;
}

bool parse_u64(const char *s, uint64_t *out)
{
	const char *end = parse_digits(s, out);
	return end && *end == '\0';
}

bool parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *end = parse_digits(s, &v);
	if (!end)
		return false;
	unsigned shift = 0;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return false;
	}
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

bool cmdline_find(const char *cmdline, const char *key, char *out, size_t out_len)
{
	size_t key_len = strlen(key);
	const char *p = cmdline;
	while (*p) {
		while (is_space(*p))
			p++;
		const char *word = p;
		while (*p && !is_space(*p))
			p++;
		size_t word_len = (size_t)(p - word);
		if (word_len < key_len || strncmp(word, key, key_len) != 0)
			continue;
		if (word_len == key_len || word[key_len] == '=') {
			if (out && out_len) {
				size_t n = word_len > key_len ? word_len - key_len - 1 : 0;
				if (n > out_len - 1)
					n = out_len - 1;
				memcpy(out, word + key_len + (word_len > key_len), n);
				out[n] = '\0';
			}
			return true;
		}
	}
	return false;
}
