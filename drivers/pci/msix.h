/* MSI-X (PCI Local Bus 3.0, 6.8.2): capability parsing and table
 * programming. The table-entry code works on any memory, so unit tests run
 * it against a fake BAR. */
#ifndef BALLAST_MSIX_H
#define BALLAST_MSIX_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/pci/pci_caps.h"

#define PCI_MSIX_CTRL           2    /* message control, from the capability */
#define PCI_MSIX_TABLE          4    /* table offset | BIR */
#define PCI_MSIX_PBA            8
#define PCI_MSIX_CTRL_SIZE_MASK 0x07ff
#define PCI_MSIX_CTRL_MASKALL   0x4000
#define PCI_MSIX_CTRL_ENABLE    0x8000
#define PCI_MSIX_BIR_MASK       0x7

#define MSIX_ENTRY_SIZE       16
#define MSIX_ENTRY_ADDR_LO    0
#define MSIX_ENTRY_ADDR_HI    4
#define MSIX_ENTRY_DATA       8
#define MSIX_ENTRY_VECTOR_CTRL 12
#define MSIX_ENTRY_CTRL_MASKED 0x1

/* x86 MSI message (SDM vol. 3, 11.11): fixed delivery, edge, physical
 * destination. */
#define MSI_ADDRESS_BASE   0xfee00000u
#define MSI_ADDRESS_DEST_SHIFT 12

struct msix_info {
	uint8_t cap;           /* config offset of the capability */
	uint16_t table_size;   /* entries */
	uint8_t table_bar;
	uint32_t table_offset;
};

/* Finds and validates the MSI-X capability: table inside the given BAR
 * size. Returns 1 if found and valid, 0 if absent, -1 if malformed. */
int msix_parse(pci_cfg_read8_fn read8, const void *ctx, const uint64_t bar_size[6], const bool bar_is_io[6],
               struct msix_info *out);
void msix_message(uint32_t apic_id, uint8_t vector, uint32_t *addr, uint32_t *data);
/* Programs entry `index` of a mapped table with a message and unmasks it;
 * returns -1 if index is outside the table. */
int msix_program_entry(volatile uint8_t *table, uint16_t table_size, uint16_t index, uint32_t addr, uint32_t data);
void msix_mask_entry(volatile uint8_t *table, uint16_t index);

#endif
