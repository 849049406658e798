/* Pure parsing for the console and the kernel command line: no kernel
 * dependencies, unit-tested natively with hostile input. */
#ifndef BALLAST_PARSE_H
#define BALLAST_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARSE_MAX_ARGS 8

/* Splits line (modified in place) at spaces and tabs into at most
 * PARSE_MAX_ARGS words. Returns the count, or -1 if there are more words. */
int parse_words(char *line, char *argv[PARSE_MAX_ARGS]);
/* Decimal or 0x-hex unsigned 64-bit number, the whole string; false on
 * anything else, including overflow. */
bool parse_u64(const char *s, uint64_t *out);
/* A byte count: a number with an optional K, M or G suffix (binary
 * multiples); false on overflow. */
bool parse_size(const char *s, uint64_t *out);
/* In a command line of space-separated "key" and "key=value" words:
 * whether key is present, and its value (empty for a bare key) copied into
 * out, truncated to out_len - 1 characters. */
bool cmdline_find(const char *cmdline, const char *key, char *out, size_t out_len);

#endif
