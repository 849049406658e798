#include <stdio.h>
#include <string.h>
#include "drivers/virtio/stats_plan.h"
#include "kernel/console/parse.h"
#include "lib/util.h"

#define UNKNOWN_EVERY 3            /* an unknown tag after every third real one */

struct persona {
	const char *name;
	const uint16_t *tags;
	unsigned ntags;
	unsigned first_len;   /* priming buffer length, 0: a normal answer */
	uint8_t first_byte;   /* and what it is filled with */
	unsigned trailing_ff; /* all-0xff entries after the tags (unused slots) */
};

#define WINDOWS_STATS_SLOTS 7 /* virtio-win's buffer: 7 entries, 70 bytes */

/* Tag orders as each driver writes them (sources in docs/personas.md). */
static const uint16_t tags_ballast[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint16_t tags_linux_6_6[] = { 0, 1, 2, 3, 8, 9, 4, 5, 6, 7 };
static const uint16_t tags_linux_6_12[] = { 0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 8, 9, 4, 5, 6, 7 };

static const uint16_t tags_windows[] = { 0, 1, 2, 3, 4, 5 };
static const uint16_t tags_nanos[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };


static const struct persona personas[] = {
	{ "ballast", tags_ballast, ARRAY_SIZE(tags_ballast), 0, 0, 0 },
	{ "linux-6.6", tags_linux_6_6, ARRAY_SIZE(tags_linux_6_6), 0, 0, 0 },
	{ "linux-6.12", tags_linux_6_12, ARRAY_SIZE(tags_linux_6_12), 0, 0, 0 },
	/* virtio-win's kernel-side stats: six tags and an unused all-0xff slot;
	 * it primes with the whole 70-byte buffer set to 0xff */
	{ "windows", tags_windows, ARRAY_SIZE(tags_windows), WINDOWS_STATS_SLOTS * sizeof(struct virtio_balloon_stat), 0xff,
	  WINDOWS_STATS_SLOTS - ARRAY_SIZE(tags_windows) },
	/* Nanos primes with 8 bytes, less than one entry */
	{ "nanos", tags_nanos, ARRAY_SIZE(tags_nanos), 8, 0, 0 },
};

void stats_plan_default(struct stats_plan *p) { stats_plan_persona(p, "ballast"); }

#define PERSONA_NAMES_MAX 96

const char *stats_plan_persona_names(void)
{
	static char names[PERSONA_NAMES_MAX];
	if (!names[0]) {
		size_t n = 0;
		for (unsigned i = 0; i < ARRAY_SIZE(personas) && n < sizeof(names); i++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? " " : "", personas[i].name);
	}
	return names;
}

int stats_plan_persona(struct stats_plan *p, const char *name)
{
	for (unsigned i = 0; i < ARRAY_SIZE(personas); i++) {
		const struct persona *ps = &personas[i];
		if (strcmp(ps->name, name) != 0)
			continue;
		memset(p, 0, sizeof(*p));
		p->persona = ps->name;
		memcpy(p->tags, ps->tags, ps->ntags * sizeof(ps->tags[0]));
		p->ntags = ps->ntags;
		p->first_len = ps->first_len;
		p->first_byte = ps->first_byte;
		p->trailing_ff = ps->trailing_ff;
		p->duplicate = STATS_NO_TAG;
		return 0;
	}
	return -1;
}

int stats_tag_parse(const char *s)
{
	uint64_t n;
	if (parse_u64(s, &n))
		return n < VIRTIO_BALLOON_S_NR ? (int)n : -1;
	for (uint16_t t = 0; t < VIRTIO_BALLOON_S_NR; t++) {
		const char *name = balloon_stat_name(t);
		if (strcmp(s, name) == 0 || strcmp(s, name + strlen("stat-")) == 0)
			return t;
	}
	return -1;
}

/* One entry through the one encoder (balloon_stats_encode); a tag outside
 * the spec's carries 0. */
static size_t put(uint8_t *out, size_t cap, size_t at, uint16_t tag, const struct balloon_stat_values *vals)
{
	return at + balloon_stats_encode(&tag, 1, vals, out + at, cap - at);
}

size_t stats_plan_build(const struct stats_plan *p, const struct balloon_stat_values *vals, bool first,
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
		/* no whole entry in the smallest buffer QEMU accepts (it refuses
		 * zero-length buffers outright: STATS_FILL_ZERO_LENGTH) */
		size_t n = STATS_EMPTY_BYTES < cap ? STATS_EMPTY_BYTES : cap;
		memset(out, 0, n);
		return n;
	}
	struct balloon_stat_values eff = *vals;
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		if (p->override_mask >> t & 1)
			eff.v[t] = p->override_val[t];
	size_t at = 0;
	unsigned unknown = 0;
	for (unsigned i = 0; i < p->ntags; i++) {
		at = put(out, cap, at, p->tags[i], &eff);
		if (p->unknown && (i + 1) % UNKNOWN_EVERY == 0 && unknown < STATS_UNKNOWN_TAGS)
			at = put(out, cap, at, (uint16_t)(STATS_UNKNOWN_TAG_FIRST + unknown++), &eff);
	}
	if (p->duplicate != STATS_NO_TAG) {
		struct balloon_stat_values dup = eff;
		dup.v[p->duplicate]++;
		at = put(out, cap, at, p->duplicate, &dup);
	}
	for (unsigned i = 0; i < p->trailing_ff && at + sizeof(struct virtio_balloon_stat) <= cap; i++) {
		memset(out + at, 0xff, sizeof(struct virtio_balloon_stat));
		at += sizeof(struct virtio_balloon_stat);
	}
	if (p->fill == STATS_FILL_FF)
		memset(out, 0xff, at);
	at = p->truncate < at ? at - p->truncate : 0;
	size_t pad = p->pad < cap - at ? p->pad : cap - at;
	memset(out + at, 0, pad);
	return at + pad;
}

size_t stats_answer_build(const struct stats_plan *p, const struct mm_stats *s, bool first, uint8_t *out,
                          size_t cap)
{
	struct balloon_stat_values vals;
	balloon_stats_from_mm(s, &vals);
	return stats_plan_build(p, &vals, first, out, cap);
}
