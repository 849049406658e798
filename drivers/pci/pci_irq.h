#ifndef BALLAST_PCI_IRQ_H
#define BALLAST_PCI_IRQ_H

#include "drivers/pci/pci.h"
#include "kernel/arch/arch.h"

/* Routes the device's INTx line through the IOAPIC to handler (shared
 * safely with other devices on the same line). Returns the vector, or a
 * negative error if the device has no pin or the line cannot be found. */
int pci_route_intx(const struct pci_dev *d, irq_handler_fn fn, void *ctx, const char *name);

#endif
