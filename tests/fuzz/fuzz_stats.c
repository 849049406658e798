/* Fuzzes the balloon statistics buffer: drivers/virtio/stats_plan.c (the
 * builder with its fault injection and personas, and QEMU 7.2's reading
 * of a buffer) over drivers/virtio/balloon_stats.c (the encoder, the QMP
 * names, the log line).
 *
 * The builder writes into a page the device then reads, so an overrun is
 * memory corruption and a wrong length is a lie to the host; the host
 * view is what the guest logs as "what the host will report", which the
 * end-to-end tests compare with QMP. So:
 *  - the output buffer is an exact-size allocation (an overrun is ASan's),
 *    the returned length is at most cap, and the bytes are exactly those a
 *    reference builder written here from stats_plan.h produces;
 *  - stats_host_view of the built buffer, and of arbitrary bytes in an
 *    exact-size copy, equals a reference decode and reads nothing past len;
 *  - balloon_stats_format behaves like snprintf (length, truncation, NUL),
 *    including the snprintf(NULL, 0) length query;
 *  - stats_tag_parse and balloon_stat_name agree on the ten QMP names.
 *
 * Plans stay within what balloon_console.c can set: duplicate is a tag
 * below VIRTIO_BALLOON_S_NR (stats_tag_parse's range) or STATS_NO_TAG,
 * at most STATS_PLAN_MAX_TAGS tags. Tags themselves are any 16-bit value:
 * the encoder must give unknown ones the value 0. */
#include "drivers/virtio/stats_plan.h"
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

/* QEMU 7.2's reading, from stats_plan.h: all unset, then every whole
 * entry in order, tags from 10 up ignored, the last of a tag winning. */
static void ref_view(const uint8_t *b, size_t len, uint64_t out[VIRTIO_BALLOON_S_NR])
{
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		out[t] = UINT64_MAX;
	for (size_t at = 0; at < len && len - at >= ENTRY; at += ENTRY) {
		uint16_t tag = (uint16_t)(b[at] | b[at + 1] << 8);
		uint64_t val = 0;
		for (int i = 7; i >= 0; i--)
			val = val << 8 | b[at + 2 + i];
		if (tag < VIRTIO_BALLOON_S_NR_QEMU72)
			out[tag] = val;
	}
}

static void check_view(const uint8_t *b, size_t len, const char *what)
{
	struct balloon_stat_values got;
	uint64_t want[VIRTIO_BALLOON_S_NR];
	stats_host_view(b, len, &got);
	ref_view(b, len, want);
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		FUZZ_ASSERT(got.v[t] == want[t], "%s: host view of %zu bytes, tag %u: 0x%llx, reference 0x%llx", what,
		            len, t, (unsigned long long)got.v[t], (unsigned long long)want[t]);
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
	check_view(out, len, "built buffer");
	free(out);
}

static void check_format(struct fuzz_in *in, const struct balloon_stat_values *vals)
{
	uint64_t seq = take_u64(in);
	size_t len = take_u16(in) % 320;
	char full[1024];
	int n = balloon_stats_format(full, sizeof full, seq, vals);
	FUZZ_ASSERT(n > 0 && (size_t)n < sizeof full && strlen(full) == (size_t)n, "format: %d", n);
	/* the ten names in order, each with its value */
	char want[1024];
	int w = snprintf(want, sizeof want, "stats seq=%llu", (unsigned long long)seq);
	for (uint16_t t = 0; t < VIRTIO_BALLOON_S_NR_QEMU72; t++)
		w += snprintf(want + w, sizeof want - (size_t)w, " %s=%llu", balloon_stat_name(t),
		              (unsigned long long)vals->v[t]);
	FUZZ_ASSERT(strcmp(full, want) == 0, "format: \"%s\"", full);
	/* as snprintf: the full length whatever len is, the prefix that fits,
	 * NUL-terminated; len 0 writes nothing, and buf may then be NULL */
	char *buf = len ? malloc(len) : NULL;
	int m = balloon_stats_format(buf, len, seq, vals);
	FUZZ_ASSERT(m == n, "format into %zu bytes: %d, full %d", len, m, n);
	if (len) {
		size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;
		FUZZ_ASSERT(buf[k] == '\0' && memcmp(buf, full, k) == 0, "format into %zu bytes: wrong prefix", len);
	}
	free(buf);
}

static void check_names(const char *s)
{
	int tag = stats_tag_parse(s);
	FUZZ_ASSERT(tag >= -1 && tag < VIRTIO_BALLOON_S_NR, "tag %d for \"%s\"", tag, s);
	if (tag < 0)
		return;
	/* a number below 16, or one of the ten names with or without "stat-" */
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
	check_format(&in, &vals);

	for (uint16_t t = 0; t < 64; t++)
		FUZZ_ASSERT(!balloon_stat_name(t) == (t >= VIRTIO_BALLOON_S_NR_QEMU72), "name of tag %u", t);

	/* whatever is left: a buffer as a hostile guest might send it, and a
	 * word for the console's tag parser */
	uint8_t *raw = malloc(in.left ? in.left : 1);
	char *word = malloc(in.left + 1);
	if (!raw || !word)
		abort();
	memcpy(raw, in.p, in.left);
	memcpy(word, in.p, in.left);
	word[in.left] = '\0';
	check_view(raw, in.left, "arbitrary bytes");
	check_names(word);
	free(word);
	free(raw);
	return 0;
}
