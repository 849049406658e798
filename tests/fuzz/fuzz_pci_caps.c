/* Fuzzes PCI capability parsing: the list walk (drivers/pci/pci_caps.c),
 * the virtio-pci vendor capabilities (drivers/virtio/virtio_pci_caps.c)
 * and MSI-X (drivers/pci/msix.c), over a random 256-byte config space and
 * random BAR sizes. A device (or a hypervisor) can put anything there, and
 * what these parsers accept decides which BAR ranges the kernel maps.
 *
 * Checked beyond "no crash":
 *  - no read at or past offset 256 (through ports that wraps to the
 *    header, through ECAM it is extended space: either way not the
 *    capability), and a bounded number of reads per call (no endless walk);
 *  - pci_cap_find equals a reference walk that detects loops with a
 *    visited set instead of a step count;
 *  - virtio_pci_parse_caps equals a reference written from virtio 1.2
 *    4.1.4 (the first usable capability of each type, in list order) and,
 *    independently of it, only returns regions inside a memory BAR;
 *  - msix_parse only accepts a table inside a memory BAR, and the table
 *    code never writes outside the table it was given.
 *
 * BARs come sized, or as sizing reads decoded by drivers/pci/pci_bar.c (an
 * accepted BAR is a power of two, aligned, inside its address space).
 *
 * Input: 256 bytes of config space (short input: zeros), then per BAR a
 * flags byte and a size. */
#include "drivers/pci/msix.h"
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_bar.h"
#include "drivers/pci/pci_caps.h"
#include "drivers/virtio/virtio_pci.h"
#include "tests/fuzz/fuzz_input.h"

/* A list has at most 48 entries; a walk reads a few bytes of each, and
 * the vendor parser walks it once more per vendor capability. This is far
 * above any finite walk and far below an endless one. */
#define READ_BUDGET 20000

struct cfg {
	uint8_t b[PCI_CFG_SIZE];
	unsigned long reads, oob;
};

static uint8_t rd(const void *ctx, uint16_t off)
{
	struct cfg *c = (struct cfg *)(uintptr_t)ctx;
	if (++c->reads > READ_BUDGET)
		return 0; /* ends any walk, so a runaway one shows as a failed check */
	if (off >= PCI_CFG_SIZE) {
		c->oob++;
		return 0xff;
	}
	return c->b[off];
}

static void expect_clean(struct cfg *c, const char *what)
{
	FUZZ_ASSERT(c->oob == 0, "%s: %lu reads past config space", what, c->oob);
	FUZZ_ASSERT(c->reads <= READ_BUDGET, "%s: %lu reads, an endless walk", what, c->reads);
	c->reads = c->oob = 0;
}

/* The reference walk from `after` (0: the list head): a visited set, not
 * a step count, finds loops. -1 malformed, 0 absent, else the offset. */
static int ref_find(const struct cfg *c, uint8_t id, uint8_t after)
{
	if (!(c->b[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return 0;
	bool seen[PCI_CFG_SIZE] = { false };
	/* the low two bits are reserved: masked off before anything else, so
	 * 0x01-0x03 end the list */
	unsigned off = (after ? c->b[after + 1] : c->b[PCI_CAP_PTR]) & ~3u;
	while (off) {
		if (off < 0x40 || seen[off])
			return -1;
		seen[off] = true;
		if (c->b[off] == id)
			return (int)off;
		off = c->b[off + 1] & ~3u;
	}
	return 0;
}

/* Whether the whole list is well formed (the vendor parser walks all of
 * it): it ends in a 0 pointer, never loops, never points into the header. */
static bool ref_list_ok(const struct cfg *c)
{
	if (!(c->b[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return true;
	bool seen[PCI_CFG_SIZE] = { false };
	for (unsigned off = c->b[PCI_CAP_PTR] & ~3u; off; off = c->b[off + 1] & ~3u) {
		if (off < 0x40 || seen[off])
			return false;
		seen[off] = true;
	}
	return true;
}

static uint64_t u32_at(const struct cfg *c, unsigned off)
{
	return (uint64_t)c->b[off] | (uint64_t)c->b[off + 1] << 8 | (uint64_t)c->b[off + 2] << 16 |
	       (uint64_t)c->b[off + 3] << 24;
}

static void check_find(struct cfg *c, uint8_t id)
{
	int off = 0;
	for (unsigned n = 0; n < 50; n++) {
		int got = pci_cap_find(rd, c, id, (uint8_t)off);
		expect_clean(c, "pci_cap_find");
		int want = ref_find(c, id, (uint8_t)off);
		FUZZ_ASSERT(got == want, "id 0x%02x after 0x%02x: %d, reference %d", id, off, got, want);
		if (got <= 0)
			return;
		FUZZ_ASSERT(got >= 0x40 && got <= 0xfc && got % 4 == 0 && c->b[got] == id, "bad offset %d", got);
		off = got;
	}
}

static uint32_t min_len(unsigned type)
{
	return type == VIRTIO_PCI_CAP_COMMON_CFG ? sizeof(struct virtio_pci_common_cfg)
	       : type == VIRTIO_PCI_CAP_NOTIFY_CFG ? 2
	       : type == VIRTIO_PCI_CAP_ISR_CFG    ? 1
	                                           : 0;
}

static void check_virtio(struct cfg *c, const struct virtio_pci_bar_info bars[PCI_BARS])
{
	struct virtio_pci_cap found[VIRTIO_PCI_CAP_PCI_CFG + 1];
	uint32_t mult = 0xdeadbeef;
	const char *why = NULL;
	int r = virtio_pci_parse_caps(rd, c, bars, found, &mult, &why);
	expect_clean(c, "virtio_pci_parse_caps");
	FUZZ_ASSERT(r == 0 || (r < 0 && why && *why), "returned %d, why %s", r, why ? why : "(none)");

	/* What the kernel maps, whatever the reference says. */
	for (unsigned t = 0; r == 0 && t <= VIRTIO_PCI_CAP_PCI_CFG; t++) {
		const struct virtio_pci_cap *f = &found[t];
		if (!f->cfg_type)
			continue;
		FUZZ_ASSERT(f->cfg_type == t && t >= VIRTIO_PCI_CAP_COMMON_CFG && t <= VIRTIO_PCI_CAP_DEVICE_CFG,
		            "type %u in slot %u", f->cfg_type, t);
		FUZZ_ASSERT(f->bar < PCI_BARS && !bars[f->bar].is_io && (uint64_t)f->offset + f->length <= bars[f->bar].size &&
		            f->length >= min_len(t), "type %u: bar %u [0x%x, +0x%x) outside", t, f->bar, f->offset, f->length);
	}

	/* The reference: a malformed list fails; else each vendor capability
	 * in list order, the first usable one of each type taken. */
	struct virtio_pci_cap want[VIRTIO_PCI_CAP_PCI_CFG + 1];
	memset(want, 0, sizeof want);
	uint32_t want_mult = 0;
	int off = 0;
	if (!ref_list_ok(c)) {
		FUZZ_ASSERT(r < 0 && strstr(why, "malformed"), "a malformed list accepted (%s)", r ? why : "ok");
		return;
	}
	while ((off = ref_find(c, PCI_CAP_ID_VENDOR, (uint8_t)off)) > 0) {
		if (off + 16 > PCI_CFG_SIZE)
			continue; /* the capability would run past config space */
		struct virtio_pci_cap v = { .cap_vndr = c->b[off], .cap_next = c->b[off + 1], .cap_len = c->b[off + 2],
			                        .cfg_type = c->b[off + 3], .bar = c->b[off + 4] };
		v.offset = (uint32_t)u32_at(c, (unsigned)off + 8);
		v.length = (uint32_t)u32_at(c, (unsigned)off + 12);
		unsigned t = v.cfg_type;
		bool notify = t == VIRTIO_PCI_CAP_NOTIFY_CFG;
		if (t < 1 || t > 4 || want[t].cfg_type || v.cap_len < (notify ? 20 : 16) || (notify && off + 20 > 256))
			continue;
		if (v.bar >= PCI_BARS || bars[v.bar].is_io || v.offset + (uint64_t)v.length > bars[v.bar].size ||
		    v.length < min_len(t))
			continue;
		if (notify)
			want_mult = (uint32_t)u32_at(c, (unsigned)off + 16);
		want[t] = v;
	}
	bool usable = want[1].cfg_type && want[2].cfg_type && want[3].cfg_type;
	FUZZ_ASSERT((r == 0) == usable, "parse %d (%s), reference %s", r, r ? why : "ok", usable ? "usable" : "not");
	if (r)
		return;
	for (unsigned t = 1; t <= 4; t++) {
		const struct virtio_pci_cap *g = &found[t], *w = &want[t];
		FUZZ_ASSERT(g->cfg_type == w->cfg_type && g->bar == w->bar && g->offset == w->offset &&
		            g->length == w->length && g->cap_len == w->cap_len,
		            "type %u: bar %u [0x%x, +0x%x), reference bar %u [0x%x, +0x%x)", t, g->bar, g->offset, g->length,
		            w->bar, w->offset, w->length);
	}
	FUZZ_ASSERT(found[VIRTIO_PCI_CAP_PCI_CFG].cfg_type == 0, "a PCI_CFG capability taken");
	FUZZ_ASSERT(mult == want_mult, "notify multiplier 0x%x, reference 0x%x", mult, want_mult);
}

static void check_msix(struct cfg *c, const struct virtio_pci_bar_info bars[PCI_BARS], uint16_t index)
{
	uint64_t size[PCI_BARS];
	bool io[PCI_BARS];
	for (unsigned i = 0; i < PCI_BARS; i++) {
		size[i] = bars[i].size;
		io[i] = bars[i].is_io;
	}
	struct msix_info m;
	memset(&m, 0, sizeof m);
	int r = msix_parse(rd, c, size, io, &m);
	expect_clean(c, "msix_parse");
	int cap = ref_find(c, PCI_CAP_ID_MSIX, 0);
	if (cap <= 0) {
		FUZZ_ASSERT(r == cap, "msix_parse %d, list walk %d", r, cap);
		return;
	}
	FUZZ_ASSERT(r == 1 || r == -1, "msix_parse %d", r);
	if (r < 0)
		return;
	uint32_t table = (uint32_t)u32_at(c, (unsigned)cap + 4);
	unsigned entries = ((c->b[cap + 2] | c->b[cap + 3] << 8) & 0x7ff) + 1u;
	FUZZ_ASSERT(m.cap == cap && m.table_size == entries && m.table_bar == (table & 7) &&
	            m.table_offset == (table & ~7u), "msix_info does not match capability 0x%x", cap);
	FUZZ_ASSERT(m.table_bar < PCI_BARS && !io[m.table_bar] &&
	            m.table_offset + (uint64_t)m.table_size * MSIX_ENTRY_SIZE <= size[m.table_bar],
	            "table bar %u [0x%x, %u entries) outside", m.table_bar, m.table_offset, m.table_size);

	/* the table as the kernel would program it: exactly its size */
	uint8_t *t = malloc((size_t)m.table_size * MSIX_ENTRY_SIZE);
	if (!t)
		abort();
	uint32_t addr, data;
	msix_message(index, (uint8_t)index, &addr, &data);
	FUZZ_ASSERT((addr & 0xfff00fffu) == MSI_ADDRESS_BASE && data == (uint8_t)index, "message 0x%x 0x%x", addr, data);
	int pr = msix_program_entry(t, m.table_size, index, addr, data);
	FUZZ_ASSERT(pr == (index < m.table_size ? 0 : -1), "program entry %u of %u: %d", index, m.table_size, pr);
	if (pr == 0) {
		uint32_t ctrl;
		memcpy(&ctrl, t + (size_t)index * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL, 4);
		FUZZ_ASSERT(ctrl == 0, "entry left masked");
		msix_mask_entry(t, index);
		memcpy(&ctrl, t + (size_t)index * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL, 4);
		FUZZ_ASSERT(ctrl == MSIX_ENTRY_CTRL_MASKED, "entry not masked");
	}
	free(t);
}

/* A BAR from what its sizing reads returned (drivers/pci/pci_bar.c); an
 * accepted one is a power of two, aligned, and inside its address space,
 * whatever the device answered: that size bounds every range check after. */
static uint64_t decoded_bar(struct fuzz_in *in, bool io, bool is64)
{
	struct pci_bar_reads r = { take_u32(in), take_u32(in), take_u32(in), take_u32(in) };
	uint64_t base = 0, size = 0;
	const char *why = NULL;
	int rc = pci_bar_decode(&r, io, is64, &base, &size, &why);
	FUZZ_ASSERT(rc == 0 || (rc == -1 && why && size == 0), "rc=%d why=%s size=0x%llx", rc, why ? why : "-",
	            (unsigned long long)size);
	if (rc == 0 && size) {
		FUZZ_ASSERT((size & (size - 1)) == 0 && (base & (size - 1)) == 0 && base + (size - 1) >= base &&
		            (!io || base + size <= 0x10000) && (is64 || io || base + size <= 0x100000000ull),
		            "accepted BAR 0x%llx+0x%llx (io=%d is64=%d lo=0x%x mask=0x%x hi=0x%x mask=0x%x)",
		            (unsigned long long)base, (unsigned long long)size, io, is64, r.lo, r.mask_lo, r.hi, r.mask_hi);
	}
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	static struct cfg c;
	memset(&c, 0, sizeof c);
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		c.b[i] = take_u8(&in);
	/* with no list bit, nothing past it is reached: leave that to a flag */
	uint8_t flags = take_u8(&in);
	if (!(flags & 1))
		c.b[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	struct virtio_pci_bar_info bars[PCI_BARS];
	for (unsigned i = 0; i < PCI_BARS; i++) {
		uint8_t f = take_u8(&in);
		bars[i].is_io = f & 0x80;
		if ((f & 0x60) == 0x60)  /* as the kernel gets it: decoded from sizing reads */
			bars[i].size = decoded_bar(&in, bars[i].is_io, !bars[i].is_io && (f & 0x10));
		else  /* mostly a power of two as BARs are; sometimes any 64-bit size */
			bars[i].size = f & 0x40 ? take_u64(&in) : f & 0x20 ? 0 : 1ull << (f & 63);
	}
	uint16_t index = take_u16(&in) % 2100;

	check_find(&c, PCI_CAP_ID_VENDOR);
	check_find(&c, PCI_CAP_ID_MSIX);
	check_find(&c, (uint8_t)(flags >> 1 | 0x80));
	check_virtio(&c, bars);
	check_msix(&c, bars, index);
	return 0;
}
