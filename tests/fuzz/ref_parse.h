/* Reference parsers for the fuzz targets that check kernel/console/parse.c
 * and its users (virtio_mmio_cmdline.c): written from parse.h's contract,
 * not from parse.c, so that the two cannot share a mistake. */
#ifndef BALLAST_FUZZ_REF_PARSE_H
#define BALLAST_FUZZ_REF_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* The reference number parser: "0x"/"0X" then hex digits, or decimal
 * digits; at least one digit; stops at the first non-digit. Overflow is
 * detected with the compiler's checked arithmetic, not parse.c's division
 * test. Returns the end, or NULL. */
static inline const char *ref_digits(const char *s, uint64_t *out)
{
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	uint64_t v = 0;
	const char *start = s;
	for (;; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
			return NULL;
	}
	if (s == start)
		return NULL;
	*out = v;
	return s;
}

/* "The whole string" is a number: parse_u64's contract. */
static inline bool ref_u64(const char *s, uint64_t *out)
{
	const char *end = ref_digits(s, out);
	return end && *end == '\0';
}

/* A number, at most one K/M/G (either case), then the end; scaled by a
 * power of 1024, overflow refused: parse_size's contract. */
static inline bool ref_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *end = ref_digits(s, &v);
	if (!end)
		return false;
	unsigned mult_log = 0;
	switch (*end) {
	case 'k': case 'K': mult_log = 1; end++; break;
	case 'm': case 'M': mult_log = 2; end++; break;
	case 'g': case 'G': mult_log = 3; end++; break;
	default: break;
	}
	if (*end != '\0')
		return false;
	for (unsigned i = 0; i < mult_log; i++)
		if (__builtin_mul_overflow(v, 1024u, &v))
			return false;
	*out = v;
	return true;
}

#endif
