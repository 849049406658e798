/* Unit tests of the PCI capability walk (drivers/pci/pci_caps.c), the
 * virtio-pci vendor capability parser (drivers/virtio/virtio_pci_caps.c)
 * and MSI-X (drivers/pci/msix.c), run natively against fake 256-byte
 * config spaces. A device (or a hypervisor) can put anything in config
 * space, so the malformed cases matter more than the good one.
 *
 * The fake reader counts reads at or past offset 256: on real hardware
 * those wrap around to the header (port I/O) or reach extended space
 * (ECAM), never this capability. It also has a read budget far above what any list
 * needs; past it every read returns 0, which ends any walk, so a walk
 * that would never end shows up as a failed check instead of a hang. */
#include <stdlib.h>
#include "drivers/pci/msix.h"
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_caps.h"
#include "drivers/virtio/virtio_pci.h"
#include "tests/unit/check.h"

#define READ_BUDGET 100000

struct cfg {
	uint8_t b[PCI_CFG_SIZE];
};
static unsigned long oob_reads, reads;

static uint8_t rd(const void *ctx, uint16_t off)
{
	const struct cfg *c = ctx;
	if (++reads > READ_BUDGET)
		return 0;
	if (off >= PCI_CFG_SIZE) {
		oob_reads++;
		return 0xff; /* what a missing function reads as */
	}
	return c->b[off];
}

/* Resets the counters; returns a config space with (or without) the
 * capability list bit and the list head at `head`. */
static void cfg_init(struct cfg *c, bool cap_list, uint8_t head)
{
	memset(c, 0, sizeof *c);
	c->b[PCI_VENDOR_ID] = 0xf4;
	c->b[PCI_VENDOR_ID + 1] = 0x1a;
	c->b[PCI_STATUS] = cap_list ? PCI_STATUS_CAP_LIST : 0;
	c->b[PCI_STATUS + 1] = 0x02; /* other status bits must not matter */
	c->b[PCI_CAP_PTR] = head;
	oob_reads = reads = 0;
}

/* Bytes past config space are left out: a real device cannot have them. */
static void put8(struct cfg *c, unsigned off, uint8_t v)
{
	if (off < PCI_CFG_SIZE)
		c->b[off] = v;
}

static void put32(struct cfg *c, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		put8(c, off + i, (uint8_t)(v >> 8 * i));
}

static void put_cap(struct cfg *c, uint8_t off, uint8_t id, uint8_t next)
{
	c->b[off] = id;
	c->b[off + 1] = next;
}

/* A virtio_pci_cap: 16 bytes, or with cap_len 20 the notify multiplier. */
static void put_vcap(struct cfg *c, uint8_t off, uint8_t next, uint8_t cap_len, uint8_t type, uint8_t bar,
                     uint32_t offset, uint32_t length, uint32_t mult)
{
	put_cap(c, off, PCI_CAP_ID_VENDOR, next);
	put8(c, off + 2u, cap_len);
	put8(c, off + 3u, type);
	put8(c, off + 4u, bar);
	put32(c, off + 8u, offset);
	put32(c, off + 12u, length);
	if (cap_len >= 20)
		put32(c, off + 16u, mult);
}

static void put_msix(struct cfg *c, uint8_t off, uint8_t next, uint16_t ctrl, uint32_t table, uint32_t pba)
{
	put_cap(c, off, PCI_CAP_ID_MSIX, next);
	put8(c, off + 2u, (uint8_t)ctrl);
	put8(c, off + 3u, (uint8_t)(ctrl >> 8));
	put32(c, off + 4u, table);
	put32(c, off + 8u, pba);
}

/* BAR1 a 4 KiB memory BAR (the MSI-X table), BAR4 a 16 KiB memory BAR
 * (the virtio structures), BAR0 an I/O BAR, BAR2 unassigned. */
static const struct virtio_pci_bar_info bars[PCI_BARS] = {
	[0] = { 0x40, true }, [1] = { 0x1000, false }, [2] = { 0, false }, [4] = { 0x4000, false },
};
static const uint64_t bar_size[PCI_BARS] = { 0x40, 0x1000, 0, 0, 0x4000, 0 };
static const bool bar_io[PCI_BARS] = { true };

/* QEMU's modern virtio-balloon-pci, as lspci shows it: MSI-X at 0x98, then
 * the vendor capabilities in reverse order of creation, PCI_CFG (type 5,
 * BAR 0, 20 bytes) first. */
static void qemu_balloon(struct cfg *c)
{
	cfg_init(c, true, 0x98);
	put_msix(c, 0x98, 0x84, 0x0001, 0x00000001, 0x00000801); /* 2 entries, BAR1 0x0, PBA BAR1 0x800 */
	put_vcap(c, 0x84, 0x70, 20, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 0);
	put_vcap(c, 0x70, 0x60, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 4);
	put_vcap(c, 0x60, 0x50, 16, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2000, 0x1000, 0);
	put_vcap(c, 0x50, 0x40, 16, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1000, 0x1000, 0);
	put_vcap(c, 0x40, 0x00, 16, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0x0000, 0x1000, 0);
}

/* Runs the parser; checks it stayed inside config space and ended. */
static int parse(const struct cfg *c, struct virtio_pci_cap found[6], uint32_t *mult, const char **why, int line)
{
	*why = NULL;
	int r = virtio_pci_parse_caps(rd, c, bars, found, mult, why);
	if (!(CHECK_EQ_U64(oob_reads, 0) & CHECK(reads <= READ_BUDGET)))
		fprintf(stderr, "    parse at line %d: %lu reads past config space, %lu reads\n", line, oob_reads,
		        reads);
	return r;
}

static bool cap_is(const struct virtio_pci_cap *c, uint8_t type, uint8_t bar, uint32_t offset, uint32_t length)
{
	return c->cfg_type == type && c->bar == bar && c->offset == offset && c->length == length;
}

static void test_cap_find(void)
{
	struct cfg c;
	qemu_balloon(&c);
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), 0x98);
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_VENDOR, 0), 0x84);
	/* `after` continues the walk, through every vendor capability */
	const uint8_t vendor[] = { 0x84, 0x70, 0x60, 0x50, 0x40, 0 };
	for (unsigned i = 0; i + 1 < sizeof vendor; i++)
		CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_VENDOR, vendor[i]), vendor[i + 1]);
	CHECK_EQ_U64(pci_cap_find(rd, &c, 0x05 /* MSI */, 0), 0);
	CHECK_EQ_U64(oob_reads, 0);

	/* The status bit says whether there is a list at all. */
	c.b[PCI_STATUS] = 0;
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), 0);
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_VENDOR, 0), 0);
	cfg_init(&c, true, 0);
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), 0);

	/* Loops: a -> b -> a, a -> a, and a -> b -> c -> b, none holding the
	 * id looked for; (offset, next) pairs. */
	const uint8_t loops[][3][2] = {
		{ { 0x40, 0x80 }, { 0x80, 0x40 } },
		{ { 0x40, 0x40 } },
		{ { 0x40, 0xfc }, { 0xfc, 0x80 }, { 0x80, 0xfc } },
	};
	for (unsigned l = 0; l < 3; l++) {
		cfg_init(&c, true, 0x40);
		for (unsigned i = 0; i < 3 && loops[l][i][0]; i++)
			put_cap(&c, loops[l][i][0], 0x01, loops[l][i][1]);
		if (!CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), (uint64_t)-1))
			fprintf(stderr, "    loop %u\n", l);
		CHECK(reads <= READ_BUDGET);
	}
	/* pointers into the header, at the head or on the way */
	const uint8_t low[] = { 0x3c, 0x10, 0x04 };
	for (unsigned i = 0; i < 3; i++) {
		cfg_init(&c, true, low[i]);
		CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), (uint64_t)-1);
		cfg_init(&c, true, 0x40);
		put_cap(&c, 0x40, 0x01, low[i]);
		CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), (uint64_t)-1);
	}
	/* the two low bits of a pointer are reserved: ignored, head and next */
	cfg_init(&c, true, 0x43);
	put_cap(&c, 0x40, 0x01, 0x52);
	put_cap(&c, 0x50, PCI_CAP_ID_MSIX, 0x01);
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), 0x50);
	/* The longest list there can be: 48 capabilities of 4 bytes, the last
	 * at 0xfc. It must be walked to the end, reading nothing past it. */
	cfg_init(&c, true, 0x40);
	for (unsigned off = 0x40; off <= 0xfc; off += 4)
		put_cap(&c, (uint8_t)off, off == 0xfc ? PCI_CAP_ID_MSIX : 0x01, off == 0xfc ? 0 : (uint8_t)(off + 4));
	CHECK_EQ_U64(pci_cap_find(rd, &c, PCI_CAP_ID_MSIX, 0), 0xfc);
	CHECK_EQ_U64(pci_cap_find(rd, &c, 0x02, 0), 0);
	CHECK_EQ_U64(oob_reads, 0);
	/* the shared field reader: little-endian, four bytes from off */
	put32(&c, 0x80, 0x12345678);
	CHECK_EQ_U64(pci_cap_read32(rd, &c, 0x80), 0x12345678);
	CHECK_EQ_U64(pci_cap_read32(rd, &c, 0x81), 0x01123456);
}

static void test_virtio_qemu(void)
{
	struct cfg c;
	struct virtio_pci_cap found[6];
	uint32_t mult = 0;
	const char *why;
	qemu_balloon(&c);
	memset(found, 0xee, sizeof found);
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(why == NULL);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_COMMON_CFG], 1, 4, 0x0000, 0x1000));
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_NOTIFY_CFG], 2, 4, 0x3000, 0x1000));
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_ISR_CFG], 3, 4, 0x1000, 0x1000));
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_DEVICE_CFG], 4, 4, 0x2000, 0x1000));
	CHECK_EQ_U64(found[VIRTIO_PCI_CAP_NOTIFY_CFG].cap_len, 20);
	CHECK_EQ_U64(found[VIRTIO_PCI_CAP_COMMON_CFG].cap_len, 16);
	CHECK_EQ_U64(mult, 4);
	/* PCI_CFG access is not used: its slot, and slot 0, stay cleared */
	CHECK_EQ_U64(found[0].cfg_type, 0);
	CHECK_EQ_U64(found[VIRTIO_PCI_CAP_PCI_CFG].cfg_type, 0);

	/* without the status bit there is no list, so no common config */
	c.b[PCI_STATUS] = 0;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), (uint64_t)-1);
	CHECK(why && strstr(why, "common"));
}

/* One unusable common capability, then a good one at 0x80 whose values
 * tell them apart: the parser must skip the first and take the second.
 * The rest of the device is as QEMU's. */
static void expect_skipped(uint8_t cap_len, uint8_t bar, uint32_t offset, uint32_t length, const char *what)
{
	struct cfg c;
	struct virtio_pci_cap found[6];
	uint32_t mult;
	const char *why;
	qemu_balloon(&c);
	c.b[0x41] = 0xc0; /* common at 0x40 now leads to 0xc0 ... */
	put_vcap(&c, 0xc0, 0x80, cap_len, VIRTIO_PCI_CAP_COMMON_CFG, bar, offset, length, 0);
	put_vcap(&c, 0x80, 0x00, 16, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0x3800, 56, 0);
	c.b[0x40] = 0x01; /* ... and is no vendor capability any more */
	int r = parse(&c, found, &mult, &why, __LINE__);
	if (!(CHECK_EQ_U64(r, 0) & CHECK(cap_is(&found[VIRTIO_PCI_CAP_COMMON_CFG], 1, 4, 0x3800, 56))))
		fprintf(stderr, "    common capability not skipped: %s\n", what);
}

static void test_virtio_skips(void)
{
	expect_skipped(16, 6, 0, 0x100, "BAR 6");
	expect_skipped(16, 0xff, 0, 0x100, "BAR 255");
	expect_skipped(16, 0, 0, 0x38, "I/O BAR");
	expect_skipped(16, 2, 0, 0x38, "unassigned (zero-size) BAR");
	expect_skipped(16, 4, 0xfffff000, 0x2000, "offset + length past 2^32");
	expect_skipped(16, 4, 0x1000, 0xfffff000, "length past 2^32 from the offset");
	expect_skipped(16, 4, 0x3fc9, 56, "one byte past the BAR");
	expect_skipped(16, 4, 0x4000, 56, "offset at the BAR end");
	expect_skipped(16, 4, 0, 55, "shorter than struct virtio_pci_common_cfg");
	expect_skipped(15, 4, 0, 0x1000, "cap_len 15");
	expect_skipped(0, 4, 0, 0x1000, "cap_len 0");
	/* the edges that are fine: a structure that ends exactly at the BAR
	 * end is taken (first usable wins, over the one at 0x80) */
	struct cfg c;
	struct virtio_pci_cap found[6];
	uint32_t mult;
	const char *why;
	qemu_balloon(&c);
	put_vcap(&c, 0x40, 0x80, 16, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0x4000 - 56, 56, 0);
	put_vcap(&c, 0x80, 0x00, 16, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0x3800, 56, 0);
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_COMMON_CFG], 1, 4, 0x4000 - 56, 56));

	/* Notify: one without the multiplier (cap_len 16), one too short for a
	 * 16-bit queue index, then the one to take, with multiplier 2. The
	 * bytes after the first (read as a multiplier, wrongly) say 8. */
	qemu_balloon(&c);
	c.b[0x71] = 0xa0;
	put_vcap(&c, 0xa0, 0xb8, 16, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 0);
	put32(&c, 0xb0, 8);
	put_vcap(&c, 0xb8, 0xd0, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 1, 8);
	put_vcap(&c, 0xd0, 0x60, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3400, 0x800, 2);
	c.b[0x70] = 0x01;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_NOTIFY_CFG], 2, 4, 0x3400, 0x800));
	CHECK_EQ_U64(mult, 2);
	/* ISR of length 0 skipped, types 0, 6 and 0xff ignored */
	qemu_balloon(&c);
	c.b[0x51] = 0xa0;
	put_vcap(&c, 0xa0, 0xb0, 16, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1000, 0, 0);
	put_vcap(&c, 0xb0, 0xc0, 16, 0, 4, 0x1000, 0x10, 0);
	put_vcap(&c, 0xc0, 0xd0, 16, 6, 4, 0x1000, 0x10, 0);
	put_vcap(&c, 0xd0, 0xe0, 16, 0xff, 4, 0x1000, 0x10, 0);
	put_vcap(&c, 0xe0, 0x40, 16, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1800, 1, 0);
	c.b[0x50] = 0x01;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_ISR_CFG], 3, 4, 0x1800, 1));
}

static void test_virtio_errors(void)
{
	struct cfg c;
	struct virtio_pci_cap found[6];
	uint32_t mult;
	const char *why;
	/* each of the three required structures missing in turn (its
	 * capability id changed, so the list is otherwise the same) */
	const struct { uint8_t at; const char *word; } need[] = { { 0x40, "common" }, { 0x70, "notify" }, { 0x50, "ISR" } };
	for (unsigned i = 0; i < 3; i++) {
		qemu_balloon(&c);
		c.b[need[i].at] = 0x01;
		CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), (uint64_t)-1);
		if (!CHECK(why && strstr(why, need[i].word)))
			fprintf(stderr, "    why = \"%s\", wanted it to name %s\n", why ? why : "(null)", need[i].word);
	}
	/* the device configuration is optional */
	qemu_balloon(&c);
	c.b[0x60] = 0x01;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK_EQ_U64(found[VIRTIO_PCI_CAP_DEVICE_CFG].cfg_type, 0);

	/* Loops through vendor capabilities: the parser continues the walk
	 * from each one it finds, so it must notice the loop itself. */
	const uint8_t loop_at[] = { 0x40 /* self */, 0x50 /* common -> ISR -> common */, 0x98 /* all, via MSI-X */ };
	for (unsigned i = 0; i < 3; i++) {
		qemu_balloon(&c);
		c.b[0x41] = loop_at[i];
		int r = parse(&c, found, &mult, &why, __LINE__);
		if (!(CHECK_EQ_U64(r, (uint64_t)-1) & CHECK(why && strstr(why, "malformed"))))
			fprintf(stderr, "    loop back to 0x%x\n", loop_at[i]);
	}
	/* a pointer into the header after the good capabilities */
	qemu_balloon(&c);
	c.b[0x41] = 0x20;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), (uint64_t)-1);
}

/* Capabilities at the very end of config space: whatever their cap_len
 * claims, nothing past 0xff may be read (parse() counts it). Each is put
 * between PCI_CFG (0x84) and notify (0x70) in QEMU's list. */
static void test_virtio_end_of_space(void)
{
	struct cfg c;
	struct virtio_pci_cap found[6];
	uint32_t mult;
	const char *why;
	const uint8_t at[] = { 0xfc, 0xf8, 0xf4 };
	for (unsigned i = 0; i < 3; i++) {
		qemu_balloon(&c);
		c.b[0x85] = at[i];
		put_vcap(&c, at[i], 0x70, 16, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2800, 0x100, 0);
		c.b[0x60] = 0x01; /* QEMU's own device capability out of the way */
		if (!CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0))
			fprintf(stderr, "    capability at 0x%x\n", at[i]);
		CHECK_EQ_U64(found[VIRTIO_PCI_CAP_DEVICE_CFG].cfg_type, 0);
	}
	/* 0xf0 + 16 ends exactly at 256: a usable device capability there */
	qemu_balloon(&c);
	c.b[0x85] = 0xf0;
	put_vcap(&c, 0xf0, 0x70, 16, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2800, 0x100, 0);
	c.b[0x60] = 0x01;
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_DEVICE_CFG], 4, 4, 0x2800, 0x100));
	/* ... but a notify capability there has no room for its multiplier:
	 * skipped, and QEMU's notify at 0x70 taken */
	qemu_balloon(&c);
	c.b[0x85] = 0xf0;
	put_vcap(&c, 0xf0, 0x70, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3400, 0x100, 0);
	CHECK_EQ_U64(parse(&c, found, &mult, &why, __LINE__), 0);
	CHECK(cap_is(&found[VIRTIO_PCI_CAP_NOTIFY_CFG], 2, 4, 0x3000, 0x1000));
	CHECK_EQ_U64(mult, 4);
}

static void test_msix_parse(void)
{
	struct cfg c;
	struct msix_info mi;
	qemu_balloon(&c);
	memset(&mi, 0, sizeof mi);
	CHECK_EQ_U64(msix_parse(rd, &c, bar_size, bar_io, &mi), 1);
	CHECK_EQ_U64(mi.cap, 0x98);
	CHECK_EQ_U64(mi.table_size, 2);
	CHECK_EQ_U64(mi.table_bar, 1);
	CHECK_EQ_U64(mi.table_offset, 0);
	/* absent, no list, malformed list */
	c.b[0x98] = 0x01;
	CHECK_EQ_U64(msix_parse(rd, &c, bar_size, bar_io, &mi), 0);
	cfg_init(&c, false, 0x40);
	put_msix(&c, 0x40, 0, 0, 1, 0x801);
	CHECK_EQ_U64(msix_parse(rd, &c, bar_size, bar_io, &mi), 0);
	cfg_init(&c, true, 0x40);
	put_cap(&c, 0x40, 0x01, 0x40);
	CHECK_EQ_U64(msix_parse(rd, &c, bar_size, bar_io, &mi), (uint64_t)-1);

	/* The table against its BAR (BAR1 is 4 KiB: 256 entries at most).
	 * The enable and mask-all bits are no part of the size. */
	const struct { uint16_t ctrl; uint32_t table; int want; const char *what; } t[] = {
		{ 0x00ff, 0x00000001, 1, "256 entries filling BAR1" },
		{ 0xc0ff, 0x00000001, 1, "the same, enabled and masked" },
		{ 0x00fe, 0x00000011, 1, "255 entries ending at BAR1's end" },
		{ 0x00ff, 0x00000011, -1, "256 entries one entry past BAR1's end" },
		{ 0x0000, 0x00001001, -1, "one entry at BAR1's end" },
		{ 0x07ff, 0x00000001, -1, "2048 entries in 4 KiB" },
		{ 0x0000, 0xfffffff9, -1, "offset near 2^32" },
		{ 0x0000, 0x00000007, -1, "BIR 7" },
		{ 0x0000, 0x00000006, -1, "BIR 6" },
		{ 0x0000, 0x00000000, -1, "I/O BAR 0" },
		{ 0x0000, 0x00000002, -1, "zero-size BAR 2" },
		{ 0x0000, 0x00003ff4, 1, "one entry at the end of BAR4" },
	};
	for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
		cfg_init(&c, true, 0x40);
		put_msix(&c, 0x40, 0, t[i].ctrl, t[i].table, 0);
		int r = msix_parse(rd, &c, bar_size, bar_io, &mi);
		if (!CHECK_EQ_U64(r, (uint64_t)(int64_t)t[i].want))
			fprintf(stderr, "    %s\n", t[i].what);
		if (r == 1)
			CHECK_EQ_U64(mi.table_size, (t[i].ctrl & 0x7ff) + 1u);
	}
	/* The capability is 12 bytes: one at 0xf8 (its PBA field cut off,
	 * its table field fine) or 0xfc (both cut off) is malformed, and
	 * nothing past config space is read. */
	for (unsigned at = 0xf8; at <= 0xfc; at += 4) {
		cfg_init(&c, true, (uint8_t)at);
		put_msix(&c, (uint8_t)at, 0, 0, 1, 0x801);
		CHECK_EQ_U64(msix_parse(rd, &c, bar_size, bar_io, &mi), (uint64_t)-1);
		CHECK_EQ_U64(oob_reads, 0);
	}
}

static uint32_t entry_word(const uint8_t *table, unsigned index, unsigned field)
{
	uint32_t v;
	memcpy(&v, table + index * MSIX_ENTRY_SIZE + field, 4);
	return v;
}

static void test_msix_table(void)
{
	uint32_t addr = 1, data = 1;
	msix_message(0, 0x41, &addr, &data);
	CHECK_EQ_U64(addr, 0xfee00000);
	CHECK_EQ_U64(data, 0x41);
	msix_message(3, 0x41, &addr, &data);
	CHECK_EQ_U64(addr, 0xfee03000);
	CHECK_EQ_U64(data, 0x41);
	msix_message(0xff, 0xfe, &addr, &data);
	CHECK_EQ_U64(addr, 0xfeeff000);
	CHECK_EQ_U64(data, 0xfe);

	/* A table of 4 entries, exactly 64 bytes (ASan guards both ends),
	 * every entry masked as after reset, the rest junk. */
	uint8_t *table = malloc(4 * MSIX_ENTRY_SIZE), ref[4 * MSIX_ENTRY_SIZE];
	if (!CHECK(table != NULL))
		return;
	memset(table, 0xa5, 4 * MSIX_ENTRY_SIZE);
	for (unsigned i = 0; i < 4; i++)
		memcpy(table + i * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL, &(uint32_t){ 1 }, 4);
	memcpy(ref, table, sizeof ref);
	msix_message(3, 0x41, &addr, &data);
	CHECK_EQ_U64(msix_program_entry(table, 4, 2, addr, data), 0);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_ADDR_LO), 0xfee03000);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_ADDR_HI), 0);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_DATA), 0x41);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_VECTOR_CTRL), 0); /* unmasked */
	/* the other entries untouched */
	CHECK(memcmp(table, ref, 2 * MSIX_ENTRY_SIZE) == 0);
	CHECK(memcmp(table + 3 * MSIX_ENTRY_SIZE, ref + 3 * MSIX_ENTRY_SIZE, MSIX_ENTRY_SIZE) == 0);
	/* the last entry, then indices past the table: refused, nothing written */
	CHECK_EQ_U64(msix_program_entry(table, 4, 3, 0xfee00000, 0x42), 0);
	CHECK_EQ_U64(entry_word(table, 3, MSIX_ENTRY_DATA), 0x42);
	memcpy(ref, table, sizeof ref);
	CHECK_EQ_U64(msix_program_entry(table, 4, 4, addr, data), (uint64_t)-1);
	CHECK_EQ_U64(msix_program_entry(table, 4, 0xffff, addr, data), (uint64_t)-1);
	CHECK_EQ_U64(msix_program_entry(table, 0, 0, addr, data), (uint64_t)-1);
	CHECK(memcmp(table, ref, sizeof ref) == 0);
	/* masking sets bit 0 of that entry's vector control, nothing else */
	msix_mask_entry(table, 2);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_VECTOR_CTRL) & MSIX_ENTRY_CTRL_MASKED, 1);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_DATA), 0x41);
	CHECK_EQ_U64(entry_word(table, 2, MSIX_ENTRY_ADDR_LO), 0xfee03000);
	CHECK(memcmp(table, ref, 2 * MSIX_ENTRY_SIZE) == 0);
	CHECK(memcmp(table + 3 * MSIX_ENTRY_SIZE, ref + 3 * MSIX_ENTRY_SIZE, MSIX_ENTRY_SIZE) == 0);
	free(table);
}

int main(void)
{
	test_cap_find();
	test_virtio_qemu();
	test_virtio_skips();
	test_virtio_errors();
	test_virtio_end_of_space();
	test_msix_parse();
	test_msix_table();
	return check_summary("pci_caps");
}
