#include <stdio.h>
#include <string.h>
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_bar.h"
#include "kernel/arch/acpi.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA    0xcfc
#define PCI_CONFIG_ENABLE  0x80000000u
#define PCI_BUSES          256
#define PCI_SLOTS          32
#define PCI_FUNCTIONS      8
#define ECAM_BUS_SIZE      (1u << 20)
#define PCI_MAX_BRIDGE_DEPTH 8

/* MCFG (PCI Firmware 3.2, 4.1.2) */
struct mcfg_entry {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mcfg_entry) == 16, "MCFG allocation entry");
#define MCFG_ENTRIES_OFFSET 44

static struct pci_dev devices[PCI_MAX_DEVICES];
static unsigned device_count;
static uint64_t ecam_base;
static uint8_t ecam_start_bus, ecam_end_bus;
static bool ecam_bus_mapped[PCI_BUSES];
static bool bus_scanned[PCI_BUSES];

static volatile uint8_t *ecam_at(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	if (!ecam_base || bus < ecam_start_bus || bus > ecam_end_bus || off >= PCI_ECAM_CFG_SIZE)
		return NULL;
	uint64_t bus_base = ecam_base + (uint64_t)(bus - ecam_start_bus) * ECAM_BUS_SIZE;
	/* map a bus's 1 MiB the first time it is touched: buses nobody scans
	 * cost no page tables */
	if (!ecam_bus_mapped[bus]) {
		if (!paging_map_mmio(bus_base, ECAM_BUS_SIZE))
			return NULL;
		ecam_bus_mapped[bus] = true;
	}
	return (volatile uint8_t *)(uintptr_t)(bus_base + ((uint32_t)dev << 15) + ((uint32_t)fn << 12) + off);
}

static uint32_t port_address(const struct pci_dev *d, uint16_t off)
{
	return PCI_CONFIG_ENABLE | ((uint32_t)d->bus << 16) | ((uint32_t)d->dev << 11) | ((uint32_t)d->fn << 8) |
	       (off & 0xfc);
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p)
		return mmio_read32(p);
	if (off >= PCI_CFG_SIZE)
		return 0xffffffffu;
	outl(PCI_CONFIG_ADDRESS, port_address(d, off));
	return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, uint16_t off)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p)
		return mmio_read16(p);
	return (uint16_t)(pci_read32(d, off & ~3) >> ((off & 2) * 8));
}

uint8_t pci_read8(const struct pci_dev *d, uint16_t off)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p)
		return mmio_read8(p);
	return (uint8_t)(pci_read32(d, off & ~3) >> ((off & 3) * 8));
}

void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p) {
		mmio_write32(p, v);
		return;
	}
	outl(PCI_CONFIG_ADDRESS, port_address(d, off));
	outl(PCI_CONFIG_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p) {
		mmio_write16(p, v);
		return;
	}
	outl(PCI_CONFIG_ADDRESS, port_address(d, off));
	outw(PCI_CONFIG_DATA + (off & 2), v);
}

uint8_t pci_cfg_read8(const void *ctx, uint16_t off) { return pci_read8(ctx, off); }

void pci_write8(const struct pci_dev *d, uint16_t off, uint8_t v)
{
	volatile uint8_t *p = ecam_at(d->bus, d->dev, d->fn, off);
	if (p) {
		mmio_write8(p, v);
		return;
	}
	outl(PCI_CONFIG_ADDRESS, port_address(d, off));
	outb(PCI_CONFIG_DATA + (off & 3), v);
}

/* Sizes one BAR with decoding off (writing all-ones to a live BAR would
 * move it); returns how many BAR slots it used (2 for 64-bit). A 64-bit
 * BAR needs its upper half inside the function's BARs (`bars`: 2 on a
 * bridge, whose next dword is the bus numbers). */
static unsigned size_bar(struct pci_dev *d, unsigned i, unsigned bars)
{
	uint16_t off = PCI_BAR0 + 4 * i;
	struct pci_bar *b = &d->bar[i];
	struct pci_bar_reads r = { .lo = pci_read32(d, off) };
	b->is_io = r.lo & PCI_BAR_IO;
	b->is_64 = !b->is_io && (r.lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64 && i + 1 < bars;
	pci_write32(d, off, 0xffffffffu);
	r.mask_lo = pci_read32(d, off);
	pci_write32(d, off, r.lo);
	if (b->is_64) {
		r.hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, 0xffffffffu);
		r.mask_hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, r.hi);
	}
	const char *why = NULL;
	if (pci_bar_decode(&r, b->is_io, b->is_64, &b->base, &b->size, &why) < 0) {
		klog("pci %02x:%02x.%x: bar%u ignored: %s (read 0x%x, mask 0x%x, high 0x%x, mask 0x%x)", d->bus, d->dev,
		     d->fn, i, why, r.lo, r.mask_lo, r.hi, r.mask_hi);
		b->size = 0;
	}
	return b->is_64 ? 2 : 1;
}

static void log_device(const struct pci_dev *d)
{
	char bars[6 * 48] = "";
	size_t n = 0;
	for (unsigned i = 0; i < PCI_BARS; i++) {
		const struct pci_bar *b = &d->bar[i];
		if (b->size)
			n += (size_t)snprintf(bars + n, sizeof(bars) - n, " bar%u=%s:0x%" PRIx64 "+0x%" PRIx64, i,
			                      b->is_io ? "io" : b->is_64 ? "mem64" : "mem32", b->base, b->size);
	}
	kdebug("pci %02x:%02x.%x %04x:%04x class=%02x%02x%02x irq_pin=%u irq_line=%u%s", d->bus, d->dev, d->fn,
	     d->vendor, d->device, d->class_code, d->subclass, d->prog_if, d->irq_pin, d->irq_line, bars);
}

static void scan_bus(uint8_t bus, struct pci_dev *bridge, unsigned depth);

static void probe_function(uint8_t bus, uint8_t dev, uint8_t fn, struct pci_dev *bridge, unsigned depth)
{
	if (device_count >= PCI_MAX_DEVICES) {
		klog("pci: more than %d functions; ignoring %02x:%02x.%x", PCI_MAX_DEVICES, bus, dev, fn);
		return;
	}
	struct pci_dev *d = &devices[device_count];
	*d = (struct pci_dev){ .bus = bus, .dev = dev, .fn = fn, .bridge = bridge };
	d->vendor = pci_read16(d, PCI_VENDOR_ID);
	if (d->vendor == 0xffff)
		return;
	device_count++;
	d->device = pci_read16(d, PCI_DEVICE_ID);
	uint32_t cr = pci_read32(d, PCI_CLASS_REVISION);
	d->class_code = cr >> 24;
	d->subclass = cr >> 16;
	d->prog_if = cr >> 8;
	d->header_type = pci_read8(d, PCI_HEADER_TYPE);
	d->irq_line = pci_read8(d, PCI_INTERRUPT_LINE);
	d->irq_pin = pci_read8(d, PCI_INTERRUPT_PIN);
	unsigned bars = (d->header_type & PCI_HEADER_TYPE_MASK) == PCI_HEADER_BRIDGE ? 2 : PCI_BARS;
	if ((d->header_type & PCI_HEADER_TYPE_MASK) <= PCI_HEADER_BRIDGE) {
		uint16_t cmd = pci_read16(d, PCI_COMMAND);
		pci_write16(d, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
		for (unsigned i = 0; i < bars;)
			i += size_bar(d, i, bars);
		pci_write16(d, PCI_COMMAND, cmd);
	}
	log_device(d);
	if ((d->header_type & PCI_HEADER_TYPE_MASK) == PCI_HEADER_BRIDGE) {
		uint8_t secondary = pci_read8(d, PCI_SECONDARY_BUS);
		if (secondary > bus && depth < PCI_MAX_BRIDGE_DEPTH)
			scan_bus(secondary, d, depth + 1);
		else
			klog("pci: bridge %02x:%02x.%x has bad secondary bus %u", bus, dev, fn, secondary);
	}
}

static void scan_bus(uint8_t bus, struct pci_dev *bridge, unsigned depth)
{
	if (bus_scanned[bus])
		return;
	bus_scanned[bus] = true;
	for (uint8_t dev = 0; dev < PCI_SLOTS; dev++) {
		struct pci_dev probe = { .bus = bus, .dev = dev };
		if (pci_read16(&probe, PCI_VENDOR_ID) == 0xffff)
			continue;
		bool multi = pci_read8(&probe, PCI_HEADER_TYPE) & PCI_HEADER_MULTIFUNCTION;
		for (uint8_t fn = 0; fn < (multi ? PCI_FUNCTIONS : 1); fn++)
			probe_function(bus, dev, fn, bridge, depth);
	}
}

static void find_ecam(void)
{
	const struct acpi_sdt_header *mcfg = acpi_find_table("MCFG");
	if (!mcfg || mcfg->length < MCFG_ENTRIES_OFFSET + sizeof(struct mcfg_entry))
		return;
	struct mcfg_entry e;
	memcpy(&e, (const uint8_t *)mcfg + MCFG_ENTRIES_OFFSET, sizeof(e));
	if (e.segment != 0 || e.start_bus > e.end_bus || !e.base)
		return;
	ecam_base = e.base;
	ecam_start_bus = e.start_bus;
	ecam_end_bus = e.end_bus;
	kdebug("pci: ECAM at 0x%" PRIx64 " buses %u-%u", e.base, e.start_bus, e.end_bus);
}

int pci_init(void)
{
	find_ecam();
	scan_bus(0, NULL, 0);
	kdebug("pci: %u functions", device_count);
	return 0;
}

unsigned pci_device_count(void) { return device_count; }
struct pci_dev *pci_device(unsigned index) { return index < device_count ? &devices[index] : NULL; }

void pci_enable(const struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
}

volatile void *pci_map_bar(const struct pci_dev *d, unsigned bar, uint64_t offset, uint64_t length)
{
	if (bar >= PCI_BARS || d->bar[bar].is_io || !d->bar[bar].size || !d->bar[bar].base || length == 0 ||
	    offset > d->bar[bar].size || length > d->bar[bar].size - offset)
		return NULL;
	return paging_map_mmio(d->bar[bar].base + offset, length);
}
