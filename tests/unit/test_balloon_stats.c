/* Unit tests of drivers/virtio/balloon_stats.c: what the guest tells the
 * host about its memory. The host (QEMU's balloon, then QMP's
 * guest-stats) takes the bytes as they are, so the mapping from the mm
 * counters, the wire encoding and the log line the end-to-end tests match
 * against the host's report are checked exactly. */
#include <stdlib.h>
#include "drivers/virtio/balloon_stats.h"
#include "kernel/log.h" /* LOG_PIECE_MIN: what the formatter is promised */
#define LOG_PIECE_MIN_TEST LOG_PIECE_MIN
#include "tests/unit/check.h"

/* Every counter a different value, none a multiple of another, so a
 * field read from the wrong place shows. */
static struct mm_stats sample(void)
{
	struct mm_stats s;
	memset(&s, 0x77, sizeof s); /* fields that must not matter: junk */
	s.pmm.managed_pages = 262144 - 1234;
	s.pmm.free_pages = 200001;
	s.pmm.allocated_pages = 262144 - 1234 - 200001;
	s.pmm.huge_allocs = 17;
	s.pmm.huge_failures = 3;
	s.pmm.allocs = 99999;
	s.pmm.alloc_failures = 55;
	s.heap.minor_faults = 4321;
	s.heap.backed_pages = 4000;
	s.heap.brk_bytes = 0x123456;
	s.usable_pages = 262144;
	s.page_table_pages = 9;
	s.cache.pages = 3003;
	s.cache.oom_kills = 2;
	s.cache.alloc_stalls = 41;
	s.cache.async_scan = 505;
	s.cache.direct_scan = 606;
	s.cache.async_reclaim = 404;
	s.cache.direct_reclaim = 303;
	return s;
}

static void test_from_mm(void)
{
	struct mm_stats s = sample();
	struct balloon_stat_values v;
	memset(&v, 0xcc, sizeof v);
	balloon_stats_from_mm(&s, &v);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_SWAP_IN], 0);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_SWAP_OUT], 0);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MAJFLT], 0);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MINFLT], 4321);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MEMFREE], 200001ull * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MEMTOT], (262144ull - 1234) * 4096);
	/* available = free + the reclaimable cache; caches in bytes */
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_AVAIL], (200001ull + 3003) * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_CACHES], 3003ull * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_HTLB_PGALLOC], 17);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_HTLB_PGFAIL], 3);
	/* tags 10-15: counts for OOM kills and stalls, bytes for scan and reclaim */
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_OOM_KILL], 2);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_ALLOC_STALL], 41);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_ASYNC_SCAN], 505ull * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_DIRECT_SCAN], 606ull * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_ASYNC_RECLAIM], 404ull * 4096);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_DIRECT_RECLAIM], 303ull * 4096);
	/* sizes are bytes in 64 bits: 16 TiB of pages does not wrap */
	s.pmm.managed_pages = s.pmm.free_pages = 1ull << 32;
	balloon_stats_from_mm(&s, &v);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MEMTOT], 1ull << 44);
	CHECK_EQ_U64(v.v[VIRTIO_BALLOON_S_MEMFREE], 1ull << 44);
}

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* the ten tags every QEMU names */
#define QEMU72_TAGS 10

static void test_encode(void)
{
	struct balloon_stat_values v;
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		v.v[t] = 0x0102030405060708ull * (t + 1);
	v.v[VIRTIO_BALLOON_S_MEMFREE] = UINT64_MAX;
	uint16_t tags[VIRTIO_BALLOON_S_NR];
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		tags[t] = (uint16_t)t;

	/* Exactly room for the ten defaults, in a heap buffer of that size
	 * (ASan guards its end). Each entry: tag (LE16), value (LE64), packed. */
	size_t room = QEMU72_TAGS * 10;
	uint8_t *out = malloc(room);
	if (!CHECK(out != NULL))
		return;
	memset(out, 0xee, room);
	CHECK_EQ_U64(balloon_stats_encode(tags, QEMU72_TAGS, &v, out, room), 100);
	for (unsigned i = 0; i < QEMU72_TAGS; i++) {
		const uint8_t *e = out + 10 * i;
		CHECK_EQ_U64(e[0] | e[1] << 8, i);
		if (!CHECK_EQ_U64(le64_at(e + 2), v.v[i]))
			fprintf(stderr, "    entry %u\n", i);
	}
	/* the raw bytes of one entry, spelled out */
	const uint8_t entry1[10] = { 0x01, 0x00, 0x10, 0x0e, 0x0c, 0x0a, 0x08, 0x06, 0x04, 0x02 };
	CHECK(memcmp(out + 10, entry1, 10) == 0);
	const uint8_t entry4[10] = { 0x04, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	CHECK(memcmp(out + 40, entry4, 10) == 0);

	/* one byte short: nothing written, 0 returned */
	memset(out, 0xee, room);
	CHECK_EQ_U64(balloon_stats_encode(tags, QEMU72_TAGS, &v, out, room - 1), 0);
	CHECK_EQ_U64(balloon_stats_encode(tags, 1, &v, out, 9), 0);
	CHECK_EQ_U64(balloon_stats_encode(tags, 1, &v, out, 0), 0);
	bool untouched = true;
	for (size_t i = 0; i < room; i++)
		untouched &= out[i] == 0xee;
	CHECK(untouched);
	free(out);

	/* Tags in any order, repeated, and unknown ones: 10..15 carry their
	 * values (Linux 6.12 sends them), 16 and beyond encode 0. */
	const uint16_t odd[] = { 9, 3, 3, 15, 16, 0xffff };
	uint8_t buf[60];
	CHECK_EQ_U64(balloon_stats_encode(odd, 6, &v, buf, sizeof buf), 60);
	for (unsigned i = 0; i < 6; i++) {
		CHECK_EQ_U64(buf[10 * i] | buf[10 * i + 1] << 8, odd[i]);
		CHECK_EQ_U64(le64_at(buf + 10 * i + 2), odd[i] < VIRTIO_BALLOON_S_NR ? v.v[odd[i]] : 0);
	}
}

static void test_names(void)
{
	const char *const want[VIRTIO_BALLOON_S_NR] = {
		"stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults", "stat-free-memory",
		"stat-total-memory", "stat-available-memory", "stat-disk-caches", "stat-htlb-pgalloc", "stat-htlb-pgfail",
		"stat-oom-kills", "stat-alloc-stalls", "stat-async-scans", "stat-direct-scans", "stat-async-reclaims",
		"stat-direct-reclaims",
	};
	for (uint16_t t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		CHECK_EQ_STR(balloon_stat_name(t), want[t]);
	const uint16_t none[] = { 16, 17, 0x100, 0xffff };
	for (unsigned i = 0; i < sizeof none / sizeof none[0]; i++)
		CHECK(balloon_stat_name(none[i]) == NULL);
}

/* The whole line the log would write for a buffer, pieces of at most `cap`
 * bytes each (the formatter may not write past cap: a heap buffer of that
 * size each time, for ASan). */
static char *line_for(uint64_t seq, const uint8_t *bytes, uint32_t len, size_t cap)
{
	static uint8_t payload[sizeof(struct balloon_stats_logged) + 4096];
	static char line[65536];
	struct balloon_stats_logged h = { .seq = seq, .len = len };
	memcpy(payload, &h, sizeof(h));
	memcpy(payload + sizeof(h), bytes, len);
	uint32_t cursor = 0;
	size_t at = 0, n;
	do {
		char *piece = malloc(cap);
		n = balloon_stats_line_piece(payload, (uint32_t)sizeof(h) + len, &cursor, piece, cap);
		CHECK(n <= cap);
		if (at + n < sizeof(line)) {
			memcpy(line + at, piece, n);
			at += n;
		}
		free(piece);
	} while (n);
	line[at] = '\0';
	return line;
}

static size_t put_entry(uint8_t *out, uint16_t tag, uint64_t val)
{
	struct virtio_balloon_stat e = { tag, val };
	memcpy(out, &e, sizeof(e));
	return sizeof(e);
}

static void test_line(void)
{
	/* ballast's plain buffer: all sixteen tags in order, named */
	struct balloon_stat_values v;
	uint16_t tags[VIRTIO_BALLOON_S_NR];
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++) {
		tags[t] = (uint16_t)t;
		v.v[t] = 1000 + t;
	}
	v.v[VIRTIO_BALLOON_S_MEMFREE] = UINT64_MAX;
	uint8_t buf[4096];
	size_t n = balloon_stats_encode(tags, VIRTIO_BALLOON_S_NR, &v, buf, sizeof buf);
	const char *want = "ballast: stats seq=7 stat-swap-in=1000 stat-swap-out=1001 stat-major-faults=1002 "
	                   "stat-minor-faults=1003 stat-free-memory=18446744073709551615 stat-total-memory=1005 "
	                   "stat-available-memory=1006 stat-disk-caches=1007 stat-htlb-pgalloc=1008 "
	                   "stat-htlb-pgfail=1009 stat-oom-kills=1010 stat-alloc-stalls=1011 stat-async-scans=1012 "
	                   "stat-direct-scans=1013 stat-async-reclaims=1014 stat-direct-reclaims=1015\n";
	CHECK_EQ_STR(line_for(7, buf, (uint32_t)n, LOG_PIECE_MIN_TEST), want);
	CHECK_EQ_STR(line_for(7, buf, (uint32_t)n, 4096), want);

	/* every entry in order, duplicates and all, unknown tags as tag<N>, and
	 * the length of a buffer that is not whole entries */
	size_t at = 0;
	at += put_entry(buf + at, 4, 5);
	at += put_entry(buf + at, 16, 1);
	at += put_entry(buf + at, 4, 6);
	at += put_entry(buf + at, 0xffff, UINT64_MAX);
	buf[at++] = 0x07; /* three bytes of a partial entry */
	buf[at++] = 0x00;
	buf[at++] = 0x01;
	CHECK_EQ_STR(line_for(UINT64_MAX, buf, (uint32_t)at, LOG_PIECE_MIN_TEST),
	             "ballast: stats seq=18446744073709551615 len=43 stat-free-memory=5 tag16=1 stat-free-memory=6 "
	             "tag65535=18446744073709551615\n");
	/* no whole entry, and nothing at all */
	CHECK_EQ_STR(line_for(3, buf, 8, LOG_PIECE_MIN_TEST), "ballast: stats seq=3 len=8\n");
	CHECK_EQ_STR(line_for(4, buf, 0, LOG_PIECE_MIN_TEST), "ballast: stats seq=4\n");
	/* a payload too short for its header gives nothing */
	uint32_t cursor = 0;
	char out[128];
	CHECK_EQ_U64(balloon_stats_line_piece(buf, 15, &cursor, out, sizeof out), 0);
}

int main(void)
{
	test_from_mm();
	test_encode();
	test_names();
	test_line();
	return check_summary("balloon_stats");
}
