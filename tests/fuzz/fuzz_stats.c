/* Fuzzes the balloon statistics buffer: drivers/virtio/stats_plan.c (the
 * builder with its fault injection and personas) over
 * drivers/virtio/balloon_stats.c (the encoder, the QMP names, the log line).
 *
 * The builder writes into a page the device then reads, so an overrun is
 * memory corruption and a wrong length is a lie to the host; the log line
 * is what the guest says it sent, which the end-to-end tests compare with
 * QMP through each host's profile. So:
 *  - the output buffer is an exact-size allocation (an overrun is ASan's),
 *    the returned length is at most cap, and the bytes are exactly those a
 *    reference builder written here from stats_plan.h produces;
 *  - the log line of the built buffer, and of arbitrary bytes, written in
 *    pieces of random sizes (each into an exact-size allocation, never
 *    more than the piece size), equals a reference decode: every whole
 *    entry in order, named, len= when the length is not whole entries;
 *  - stats_tag_parse and balloon_stat_name agree on the sixteen QMP names.
 *
 * Plans stay within what balloon_console.c can set: duplicate is a tag
 * below VIRTIO_BALLOON_S_NR (stats_tag_parse's range) or STATS_NO_TAG,
 * at most STATS_PLAN_MAX_TAGS tags. Tags themselves are any 16-bit value:
 * the encoder must give unknown ones the value 0. */
#include "drivers/virtio/stats_plan.h"
#include "kernel/log.h" /* LOG_PIECE_MIN */
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/ref_parse.h"

#define ENTRY ((size_t)sizeof(struct virtio_balloon_stat)) /* 10 bytes on the wire */
#define MAX_CAP 4200 /* past PAGE_SIZE, the size the driver uses */
/* tags, unknown tags, the duplicate, trailing 0xff entries (under 16) */
#define MAX_ENTRIES (STATS_PLAN_MAX_TAGS + STATS_UNKNOWN_TAGS + 1 + 16)

/* One entry as the wire has it: tag, then value, little-endian, packed. */
static void put_entry(uint8_t *at, uint16_t tag, uint64_t val)
{
	at[0] = (uint8_t)tag;
	at[1] = (uint8_t)(tag >> 8);
	for (int i = 0; i < 8; i++)
		at[2 + i] = (uint8_t)(val >> (8 * i));
}

/* The reference builder, from stats_plan.h's description: the tags with
 * their values (forced ones overridden; a tag no spec defines carries 0),
 * an unknown tag (16, 17, ...) after every third, at most four; the
 * duplicate again with value + 1; the all-0xff trailing entries. Whole
 * entries only, as many as fit; then FF fill, truncation, zero padding,
 * each bounded by cap. Returns the length. */
static size_t ref_build(const struct stats_plan *p, const struct balloon_stat_values *vals, bool first,
                        uint8_t *out, size_t cap)
{
	if (first && p->first_len) {
		size_t n = p->first_len < cap ? p->first_len : cap;
		memset(out, p->first_byte, n);
		return n;
	}
	if (p->fill == STATS_FILL_ZERO_LENGTH)
		return 0;
	if (p->fill == STATS_FILL_EMPTY) {
		size_t n = cap < STATS_EMPTY_BYTES ? cap : STATS_EMPTY_BYTES;
		memset(out, 0, n);
		return n;
	}
	static uint8_t all[MAX_ENTRIES * ENTRY];
	size_t n = 0;
	uint64_t v[VIRTIO_BALLOON_S_NR];
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		v[t] = p->override_mask & (1u << t) ? p->override_val[t] : vals->v[t];
	unsigned unknown = 0;
	for (unsigned i = 0; i < p->ntags; i++) {
		uint16_t t = p->tags[i];
		put_entry(all + ENTRY * n++, t, t < VIRTIO_BALLOON_S_NR ? v[t] : 0);
		if (p->unknown && i % 3 == 2 && unknown < STATS_UNKNOWN_TAGS)
			put_entry(all + ENTRY * n++, (uint16_t)(STATS_UNKNOWN_TAG_FIRST + unknown++), 0);
	}
	if (p->duplicate != STATS_NO_TAG)
		put_entry(all + ENTRY * n++, p->duplicate, v[p->duplicate] + 1);
	for (unsigned i = 0; i < p->trailing_ff; i++)
		memset(all + ENTRY * n++, 0xff, ENTRY);
	size_t fit = cap / ENTRY < n ? cap / ENTRY : n;
	size_t len = fit * ENTRY;
	memcpy(out, all, len);
	if (p->fill == STATS_FILL_FF)
		memset(out, 0xff, len);
	len -= p->truncate < len ? p->truncate : len;
	size_t pad = p->pad < cap - len ? p->pad : cap - len;
	memset(out + len, 0, pad);
	return len + pad;
}

/* The line from balloon_stats.h's description, in one go. */
static size_t ref_line(uint64_t seq, const uint8_t *b, size_t len, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "ballast: stats seq=%llu", (unsigned long long)seq);
	if (len % ENTRY)
		n += (size_t)snprintf(out + n, cap - n, " len=%zu", len);
	for (size_t at = 0; len - at >= ENTRY; at += ENTRY) {
		uint16_t tag = (uint16_t)(b[at] | b[at + 1] << 8);
		uint64_t val = 0;
		for (int i = 7; i >= 0; i--)
			val = val << 8 | b[at + 2 + i];
		const char *name = balloon_stat_name(tag);
		n += name ? (size_t)snprintf(out + n, cap - n, " %s=%llu", name, (unsigned long long)val)
		          : (size_t)snprintf(out + n, cap - n, " tag%u=%llu", tag, (unsigned long long)val);
	}
	return n + (size_t)snprintf(out + n, cap - n, "\n");
}

#define LINE_MAX_BYTES (64 + (MAX_CAP / ENTRY + 1) * 48)

static void check_line(struct fuzz_in *in, const uint8_t *b, size_t len, const char *what)
{
	static char want[LINE_MAX_BYTES], got[LINE_MAX_BYTES];
	uint64_t seq = take_u64(in);
	size_t want_len = ref_line(seq, b, len, want, sizeof want);
	/* the payload as the log keeps it: header, then the bytes, exact size */
	struct balloon_stats_logged h = { .seq = seq, .len = (uint32_t)len };
	uint8_t *payload = malloc(sizeof h + len);
	if (!payload)
		abort();
	memcpy(payload, &h, sizeof h);
	memcpy(payload + sizeof h, b, len);
	uint32_t cursor = 0;
	size_t at = 0, n;
	unsigned pieces = 0;
	do {
		size_t cap = LOG_PIECE_MIN + take_u8(in) % 64;
		char *piece = malloc(cap); /* exact: a write past cap is ASan's */
		if (!piece)
			abort();
		n = balloon_stats_line_piece(payload, (uint32_t)(sizeof h + len), &cursor, piece, cap);
		FUZZ_ASSERT(n <= cap && at + n <= sizeof got, "%s: piece of %zu bytes into %zu", what, n, cap);
		memcpy(got + at, piece, n);
		at += n;
		free(piece);
		FUZZ_ASSERT(++pieces <= len / ENTRY + 3, "%s: %u pieces for %zu bytes", what, pieces, len);
	} while (n);
	FUZZ_ASSERT(at == want_len && memcmp(got, want, at) == 0, "%s: line \"%.*s\", reference \"%.*s\"", what,
	            (int)at, got, (int)want_len, want);
	/* done means done: another call writes nothing */
	char one[LOG_PIECE_MIN];
	FUZZ_ASSERT(balloon_stats_line_piece(payload, (uint32_t)(sizeof h + len), &cursor, one, sizeof one) == 0,
	            "%s: a piece after the end", what);
	free(payload);
}

/* A persona by index among the advertised names, or (past them) a name
 * no persona has, which must be refused without touching the plan. */
static void pick_persona(struct stats_plan *p, unsigned idx)
{
	char names[128];
	snprintf(names, sizeof names, "%s", stats_plan_persona_names());
	unsigned i = 0;
	for (char *n = strtok(names, " "); n; n = strtok(NULL, " "), i++) {
		if (i != idx)
			continue;
		FUZZ_ASSERT(stats_plan_persona(p, n) == 0 && strcmp(p->persona, n) == 0, "persona %s refused", n);
		FUZZ_ASSERT(p->ntags <= STATS_PLAN_MAX_TAGS && p->duplicate == STATS_NO_TAG, "persona %s: bad plan", n);
		return;
	}
	struct stats_plan before = *p;
	FUZZ_ASSERT(stats_plan_persona(p, "no-such-guest") == -1, "an unknown persona accepted");
	FUZZ_ASSERT(memcmp(&before, p, sizeof before) == 0, "an unknown persona changed the plan");
}

static void fuzz_plan(struct fuzz_in *in, struct stats_plan *p, struct balloon_stat_values *vals, bool *first,
                      size_t *cap)
{
	stats_plan_default(p);
	pick_persona(p, take_u8(in) % 6);
	uint8_t f = take_u8(in);
	*first = f & 1;
	p->unknown = f & 2;
	if (f & 4) { /* "stats order reverse", as the console does it */
		for (unsigned i = 0; i < p->ntags / 2; i++) {
			uint16_t t = p->tags[i];
			p->tags[i] = p->tags[p->ntags - 1 - i];
			p->tags[p->ntags - 1 - i] = t;
		}
	}
	if (f & 8) { /* a tag list of its own: mostly small tags, some any */
		p->ntags = take_u8(in) % (STATS_PLAN_MAX_TAGS + 1);
		for (unsigned i = 0; i < p->ntags; i++) {
			uint8_t b = take_u8(in);
			p->tags[i] = b < 0xf0 ? b % 24 : take_u16(in);
		}
	}
	p->fill = (enum stats_fill)(f >> 4 & 3);
	uint8_t d = take_u8(in);
	p->duplicate = d < 0x80 ? d % VIRTIO_BALLOON_S_NR : STATS_NO_TAG;
	if (f & 0x40) {
		p->truncate = take_u16(in);
		p->pad = take_u16(in);
		p->trailing_ff = take_u8(in) % 16;
		p->first_len = take_u16(in) % 8192;
		p->first_byte = take_u8(in);
	}
	p->override_mask = f & 0x80 ? take_u32(in) : 0;
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++) {
		vals->v[t] = take_scaled(in);
		if (p->override_mask & (1u << t))
			p->override_val[t] = take_scaled(in);
	}
	*cap = take_u16(in) % (MAX_CAP + 1);
}

/* Builds from a fuzzed plan and checks it; the values go on to the log
 * line check. */
static void check_build(struct fuzz_in *in, struct balloon_stat_values *vals)
{
	struct stats_plan p;
	bool first;
	size_t cap;
	fuzz_plan(in, &p, vals, &first, &cap);
	static uint8_t want[MAX_CAP];
	uint8_t *out = malloc(cap ? cap : 1); /* exact: an overrun is ASan's */
	if (!out)
		abort();
	struct stats_plan before = p;
	size_t len = stats_plan_build(&p, vals, first, out, cap);
	size_t want_len = ref_build(&p, vals, first, want, cap);
	FUZZ_ASSERT(memcmp(&before, &p, sizeof p) == 0, "build changed the plan");
	FUZZ_ASSERT(len <= cap, "built %zu bytes into %zu", len, cap);
	FUZZ_ASSERT(len == want_len, "built %zu bytes, reference %zu (cap %zu)", len, want_len, cap);
	for (size_t i = 0; i < len; i++)
		FUZZ_ASSERT(out[i] == want[i], "byte %zu of %zu: 0x%02x, reference 0x%02x", i, len, out[i], want[i]);
	check_line(in, out, len, "built buffer");
	free(out);
}

static void check_names(const char *s)
{
	int tag = stats_tag_parse(s);
	FUZZ_ASSERT(tag >= -1 && tag < VIRTIO_BALLOON_S_NR, "tag %d for \"%s\"", tag, s);
	if (tag < 0)
		return;
	/* a number below 16, or one of the sixteen names with or without "stat-" */
	uint64_t v;
	if (ref_u64(s, &v)) {
		FUZZ_ASSERT(v == (unsigned)tag, "\"%s\" is tag %d", s, tag);
	} else {
		const char *name = balloon_stat_name((uint16_t)tag);
		FUZZ_ASSERT(name && (strcmp(s, name) == 0 || strcmp(s, name + 5) == 0), "\"%s\" is tag %d", s, tag);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	struct balloon_stat_values vals;
	check_build(&in, &vals);

	for (uint16_t t = 0; t < 64; t++)
		FUZZ_ASSERT(!balloon_stat_name(t) == (t >= VIRTIO_BALLOON_S_NR), "name of tag %u", t);

	/* whatever is left: a buffer as a hostile guest might send it, and a
	 * word for the console's tag parser */
	uint8_t *raw = malloc(in.left ? in.left : 1);
	char *word = malloc(in.left + 1);
	if (!raw || !word)
		abort();
	memcpy(raw, in.p, in.left);
	memcpy(word, in.p, in.left);
	word[in.left] = '\0';
	check_line(&in, raw, in.left > MAX_CAP ? MAX_CAP : in.left, "arbitrary bytes");
	check_names(word);
	free(word);
	free(raw);
	return 0;
}
