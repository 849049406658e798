/* PCI: configuration access (ECAM when ACPI's MCFG describes it, ports
 * 0xcf8/0xcfc otherwise), a scan through bridges, BARs, capabilities. */
#ifndef BALLAST_PCI_H
#define BALLAST_PCI_H

#include <stdbool.h>
#include <stdint.h>

/* Configuration space layout (PCI Local Bus 3.0, 6.1) */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_SUBSYSTEM_ID   0x2e
#define PCI_CAP_PTR        0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_PRIMARY_BUS    0x18 /* type 1 headers */
#define PCI_SECONDARY_BUS  0x19

#define PCI_COMMAND_IO          0x0001
#define PCI_COMMAND_MEMORY      0x0002
#define PCI_COMMAND_BUS_MASTER  0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST     0x0010
#define PCI_HEADER_TYPE_MASK    0x7f
#define PCI_HEADER_MULTIFUNCTION 0x80
#define PCI_HEADER_BRIDGE       0x01
#define PCI_BAR_IO              0x1
#define PCI_BAR_MEM_TYPE_MASK   0x6
#define PCI_BAR_MEM_TYPE_64     0x4
#define PCI_BAR_IO_MASK         0xfffffffcu
#define PCI_BAR_MEM_MASK        0xfffffff0u
#define PCI_BARS                6
#define PCI_CFG_SIZE            256
#define PCI_ECAM_CFG_SIZE       4096

#define PCI_CAP_ID_MSIX   0x11
#define PCI_CAP_ID_VENDOR 0x09

struct pci_bar {
	uint64_t base;  /* physical (memory) or port (I/O) address */
	uint64_t size;
	bool is_io;
	bool is_64;
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class_code, subclass, prog_if, header_type;
	uint8_t irq_line, irq_pin; /* pin 1 = INTA .. 4 = INTD, 0 = none */
	struct pci_bar bar[PCI_BARS];
	struct pci_dev *bridge;    /* the bridge whose secondary bus this is on */
	bool claimed;
};

#define PCI_MAX_DEVICES 64

int pci_init(void);
unsigned pci_device_count(void);
struct pci_dev *pci_device(unsigned index);

uint8_t pci_read8(const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(const struct pci_dev *d, uint16_t off);
uint32_t pci_read32(const struct pci_dev *d, uint16_t off);
/* pci_read8 as the capability parsers' reader (pci_caps.h): ctx is the
 * struct pci_dev. */
uint8_t pci_cfg_read8(const void *ctx, uint16_t off);
void pci_write8(const struct pci_dev *d, uint16_t off, uint8_t v);
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v);
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v);

/* Turns on decoding and bus mastering. */
void pci_enable(const struct pci_dev *d);
/* Maps [offset, offset + length) of a memory BAR uncached, only that: a BAR
 * may be far larger than what a driver uses. NULL for I/O or unassigned
 * BARs and windows outside the BAR. */
volatile void *pci_map_bar(const struct pci_dev *d, unsigned bar, uint64_t offset, uint64_t length);

#endif
