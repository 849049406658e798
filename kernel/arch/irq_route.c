#include <string.h>
#include "kernel/arch/acpi.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/arch/lapic.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"

/* MADT (ACPI 6.5, 5.2.12) */
struct madt {
	struct acpi_sdt_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct madt) == 44, "MADT header");

/* MP spec default configurations (and QEMU): the PIT's IRQ 0 on INTIN2 */
#define IOAPIC_PIN_ISA_IRQ0 2
#define MADT_IOAPIC 1
#define MADT_ISO    2
#define MADT_ISO_POLARITY_MASK 0x3
#define MADT_ISO_POLARITY_LOW  0x3
#define MADT_ISO_TRIGGER_MASK  0xc
#define MADT_ISO_TRIGGER_LEVEL 0xc

struct madt_ioapic {
	uint8_t type, length, id, reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT I/O APIC entry");

struct madt_iso {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_iso) == 10, "MADT interrupt source override");

/* IOAPIC registers (82093AA datasheet) */
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_REDTBL(n) (0x10 + 2 * (n))
#define IOAPIC_RED_ACTIVE_LOW (1u << 13)
#define IOAPIC_RED_LEVEL      (1u << 15)
#define IOAPIC_RED_MASKED     (1u << 16)
#define IOAPIC_MMIO_SIZE 0x20
#define IOAPIC_DEFAULT_ADDRESS 0xfec00000u

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1
#define PIC1_CMD  0x20
#define PIC2_CMD  0xa0
#define PIC_ICW1_INIT_ICW4 0x11
#define PIC_ICW4_8086      0x01

#define MAX_IOAPICS 4
#define ISA_IRQS 16
/* GSI g uses vector VECTOR_GSI_BASE + g: one fixed place per line makes
 * sharing a line share its vector. The PIC is parked on 0x20-0x2f. */
#define VECTOR_PIC_BASE 0x20
#define VECTOR_GSI_BASE 0x30
#define VECTOR_MSI_BASE 0xc0 /* message-signalled vectors, handed out in order */
#define GSI_MAX (VECTOR_MSI_BASE - VECTOR_GSI_BASE)

struct ioapic {
	volatile uint8_t *mmio;
	uint32_t gsi_base, count;
};

static struct ioapic ioapics[MAX_IOAPICS];
static unsigned ioapic_count;
static struct { uint32_t gsi; uint16_t flags; bool overridden; } isa_map[ISA_IRQS];
static uint8_t gsi_routed[GSI_MAX]; /* 0 = free, 1 = edge, 2 = level */
static unsigned next_msi_vector = VECTOR_MSI_BASE;

static uint32_t ioapic_read(struct ioapic *io, uint32_t reg)
{
	mmio_write32(io->mmio + IOAPIC_REGSEL, reg);
	return mmio_read32(io->mmio + IOAPIC_WINDOW);
}

static void ioapic_write(struct ioapic *io, uint32_t reg, uint32_t v)
{
	mmio_write32(io->mmio + IOAPIC_REGSEL, reg);
	mmio_write32(io->mmio + IOAPIC_WINDOW, v);
}

/* Re-initialises the 8259s onto vectors 0x20-0x2f (so a spurious PIC
 * interrupt cannot look like an exception) and masks every line. */
static void pic_disable(void)
{
	outb(PIC1_CMD, PIC_ICW1_INIT_ICW4);
	outb(PIC2_CMD, PIC_ICW1_INIT_ICW4);
	outb(PIC1_DATA, VECTOR_PIC_BASE);
	outb(PIC2_DATA, VECTOR_PIC_BASE + 8);
	outb(PIC1_DATA, 4); /* slave on IRQ2 */
	outb(PIC2_DATA, 2);
	outb(PIC1_DATA, PIC_ICW4_8086);
	outb(PIC2_DATA, PIC_ICW4_8086);
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
}

static void add_ioapic(const struct madt_ioapic *e)
{
	if (ioapic_count >= MAX_IOAPICS)
		return;
	struct ioapic *io = &ioapics[ioapic_count];
	io->mmio = paging_map_mmio(e->address, IOAPIC_MMIO_SIZE);
	if (!io->mmio)
		return;
	io->gsi_base = e->gsi_base;
	io->count = ((ioapic_read(io, IOAPIC_REG_VER) >> 16) & 0xff) + 1;
	for (uint32_t i = 0; i < io->count; i++)
		ioapic_write(io, IOAPIC_REG_REDTBL(i), IOAPIC_RED_MASKED);
	ioapic_count++;
	kdebug("ioapic: id=%u address=0x%x gsi=%u-%u", e->id, (unsigned)e->address,
	     (unsigned)e->gsi_base, (unsigned)(e->gsi_base + io->count - 1));
}

int irq_init(void)
{
	for (unsigned i = 0; i < ISA_IRQS; i++)
		isa_map[i].gsi = i;
	pic_disable();
	const struct madt *madt = (const void *)acpi_find_table("APIC");
	if (!madt) {
		/* no ACPI (microvm with acpi=off): the PC's one IOAPIC sits at its
		 * architectural default address, GSIs from 0 (MP spec 3.6.8) */
		kdebug("irq: no MADT; assuming the standard IOAPIC at 0x%x, ISA IRQ 0 on pin 2", IOAPIC_DEFAULT_ADDRESS);
		struct madt_ioapic dflt = { .type = MADT_IOAPIC, .length = sizeof(dflt), .address = IOAPIC_DEFAULT_ADDRESS };
		add_ioapic(&dflt);
		/* The PIT's IRQ 0 reaches IOAPIC pin 2 on PCs (pin 0 takes the
		 * 8259's output; an MADT says so with an override), and QEMU's
		 * IOAPIC wires it there on every machine, microvm included. With
		 * pin 0 the timer never ticked on microvm: no retries, no delays. */
		isa_map[0].gsi = IOAPIC_PIN_ISA_IRQ0;
		if (lapic_init(0) < 0 || ioapic_count == 0)
			return -1;
		return 0;
	}
	const uint8_t *p = (const uint8_t *)(madt + 1);
	const uint8_t *end = (const uint8_t *)madt + madt->h.length;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		if (p[0] == MADT_IOAPIC && p[1] >= sizeof(struct madt_ioapic))
			add_ioapic((const void *)p);
		else if (p[0] == MADT_ISO && p[1] >= sizeof(struct madt_iso)) {
			const struct madt_iso *iso = (const void *)p;
			if (iso->source < ISA_IRQS) {
				isa_map[iso->source].gsi = iso->gsi;
				isa_map[iso->source].flags = iso->flags;
				isa_map[iso->source].overridden = true;
			}
		}
		p += p[1];
	}
	if (lapic_init(madt->lapic_address) < 0 || ioapic_count == 0) {
		klog("irq: no usable local APIC or IOAPIC; polling only");
		return -1;
	}
	return 0;
}

int irq_route_gsi(unsigned gsi, bool level, bool active_low, irq_handler_fn fn, void *ctx, const char *name)
{
	if (gsi >= GSI_MAX)
		return -1;
	struct ioapic *io = NULL;
	for (unsigned i = 0; i < ioapic_count; i++)
		if (gsi >= ioapics[i].gsi_base && gsi < ioapics[i].gsi_base + ioapics[i].count)
			io = &ioapics[i];
	if (!io)
		return -1;
	unsigned vector = VECTOR_GSI_BASE + gsi;
	uint8_t mode = level ? 2 : 1;
	if (gsi_routed[gsi] && gsi_routed[gsi] != mode) {
		klog("irq: gsi %u is already routed with another trigger mode", gsi);
		return -1;
	}
	if (irq_register(vector, fn, ctx, name) < 0)
		return -1;
	if (!gsi_routed[gsi]) {
		uint32_t pin = gsi - io->gsi_base;
		uint32_t low = vector | (level ? IOAPIC_RED_LEVEL : 0) | (active_low ? IOAPIC_RED_ACTIVE_LOW : 0);
		ioapic_write(io, IOAPIC_REG_REDTBL(pin) + 1, lapic_id() << 24);
		ioapic_write(io, IOAPIC_REG_REDTBL(pin), low);
		gsi_routed[gsi] = mode;
	}
	return (int)vector;
}

int irq_route_isa(unsigned isa_irq, irq_handler_fn fn, void *ctx, const char *name)
{
	if (isa_irq >= ISA_IRQS)
		return -1;
	/* ISA defaults: edge-triggered, active high, unless overridden */
	uint16_t flags = isa_map[isa_irq].flags;
	bool level = (flags & MADT_ISO_TRIGGER_MASK) == MADT_ISO_TRIGGER_LEVEL;
	bool low = (flags & MADT_ISO_POLARITY_MASK) == MADT_ISO_POLARITY_LOW;
	return irq_route_gsi(isa_map[isa_irq].gsi, level, low, fn, ctx, name);
}

int irq_alloc_msi(irq_handler_fn fn, void *ctx, const char *name)
{
	if (next_msi_vector >= VECTOR_SPURIOUS || irq_register(next_msi_vector, fn, ctx, name) < 0)
		return -1;
	return (int)next_msi_vector++;
}
