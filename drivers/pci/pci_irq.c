/* Where a PCI device's INTx pin lands on the IOAPIC. This is the one place
 * that knows, and it depends on the chipset:
 *
 * - i440FX (QEMU "pc"): the firmware routes PIRQA-D to ISA IRQs 5/9/10/11
 *   and writes the result into the Interrupt Line register; that ISA IRQ,
 *   through the MADT's interrupt source overrides (level-triggered), is the
 *   IOAPIC pin. Source: the firmware's Interrupt Line, as Linux uses it.
 * - Q35 (ICH9): the Interrupt Line register holds the PIC-mode IRQ only.
 *   In APIC mode QEMU's ACPI _PRT (hw/i386/acpi-build.c,
 *   build_q35_routing_table) sends slots 0-23 to PIRQ E-H = GSI 20-23 and
 *   slots 24-31 to PIRQ A-D = GSI 16-19, rotating by pin:
 *   GSI = base + ((slot + pin) mod 4), pin A = 0. Measured with a Linux
 *   guest: slot 1 -> 21, slot 3 -> 23, slot 6 -> 22.
 * - Behind bridges the pin is swizzled at each bridge (PCI-to-PCI Bridge
 *   spec 9.1): pin' = (pin + device) mod 4, up to the slot on bus 0. */
#include "drivers/pci/pci_irq.h"
#include "kernel/arch/irq_route.h"
#include "kernel/log.h"

#define PCI_VENDOR_INTEL   0x8086
#define PCI_DEVICE_Q35_MCH 0x29c0
#define PCI_DEVICE_I440FX  0x1237
#define Q35_GSI_SLOTS_0_23  20
#define Q35_GSI_SLOTS_24_31 16
#define Q35_SLOT_SPLIT      24
#define PCI_INTX_PINS       4

static bool host_bridge_is_q35(void)
{
	for (unsigned i = 0; i < pci_device_count(); i++) {
		const struct pci_dev *d = pci_device(i);
		if (d->bus == 0 && d->dev == 0 && d->fn == 0)
			return d->vendor == PCI_VENDOR_INTEL && d->device == PCI_DEVICE_Q35_MCH;
	}
	return false;
}

int pci_route_intx(const struct pci_dev *d, irq_handler_fn fn, void *ctx, const char *name)
{
	if (d->irq_pin < 1 || d->irq_pin > PCI_INTX_PINS)
		return -1;
	if (!host_bridge_is_q35()) {
		if (d->irq_line == 0 || d->irq_line >= 16) {
			klog("pci %02x:%02x.%x: no firmware-assigned interrupt line (%u)", d->bus, d->dev, d->fn,
			     d->irq_line);
			return -1;
		}
		return irq_route_isa(d->irq_line, fn, ctx, name);
	}
	unsigned pin = d->irq_pin - 1u;
	const struct pci_dev *at = d;
	while (at->bridge) {
		pin = (pin + at->dev) % PCI_INTX_PINS;
		at = at->bridge;
	}
	unsigned base = at->dev < Q35_SLOT_SPLIT ? Q35_GSI_SLOTS_0_23 : Q35_GSI_SLOTS_24_31;
	unsigned gsi = base + (at->dev + pin) % PCI_INTX_PINS;
	kdebug("pci %02x:%02x.%x: INT%c -> slot %u on bus 0 -> GSI %u (q35 _PRT)", d->bus, d->dev, d->fn,
	     'A' + d->irq_pin - 1, at->dev, gsi);
	/* level-triggered, active high: what QEMU's ACPI says of the GSIE-GSIH
	 * links (its IOAPIC ignores the polarity bit either way) */
	return irq_route_gsi(gsi, true, false, fn, ctx, name);
}
