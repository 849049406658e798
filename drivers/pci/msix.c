#include "drivers/pci/msix.h"
#include "drivers/pci/pci.h"

int msix_parse(pci_cfg_read8_fn read8, const void *ctx, const uint64_t bar_size[6], const bool bar_is_io[6],
               struct msix_info *out)
{
	int cap = pci_cap_find(read8, ctx, PCI_CAP_ID_MSIX, 0);
	if (cap <= 0)
		return cap;
	if (cap + 12 > PCI_CFG_SIZE)
		return -1;
	uint16_t ctrl = (uint16_t)(read8(ctx, cap + PCI_MSIX_CTRL) | read8(ctx, cap + PCI_MSIX_CTRL + 1) << 8);
	uint32_t table = pci_cap_read32(read8, ctx, cap + PCI_MSIX_TABLE);
	out->cap = (uint8_t)cap;
	out->table_size = (ctrl & PCI_MSIX_CTRL_SIZE_MASK) + 1;
	out->table_bar = table & PCI_MSIX_BIR_MASK;
	out->table_offset = table & ~(uint32_t)PCI_MSIX_BIR_MASK;
	if (out->table_bar >= PCI_BARS || bar_is_io[out->table_bar] ||
	    (uint64_t)out->table_offset + (uint64_t)out->table_size * MSIX_ENTRY_SIZE > bar_size[out->table_bar])
		return -1;
	return 1;
}

void msix_message(uint32_t apic_id, uint8_t vector, uint32_t *addr, uint32_t *data)
{
	*addr = MSI_ADDRESS_BASE | (apic_id & 0xff) << MSI_ADDRESS_DEST_SHIFT;
	*data = vector; /* fixed delivery, edge-triggered */
}

int msix_program_entry(volatile uint8_t *table, uint16_t table_size, uint16_t index, uint32_t addr, uint32_t data)
{
	if (index >= table_size)
		return -1;
	volatile uint8_t *e = table + (uint32_t)index * MSIX_ENTRY_SIZE;
	/* mask while the message changes, so no half-written message fires */
	*(volatile uint32_t *)(e + MSIX_ENTRY_VECTOR_CTRL) = MSIX_ENTRY_CTRL_MASKED;
	*(volatile uint32_t *)(e + MSIX_ENTRY_ADDR_LO) = addr;
	*(volatile uint32_t *)(e + MSIX_ENTRY_ADDR_HI) = 0;
	*(volatile uint32_t *)(e + MSIX_ENTRY_DATA) = data;
	*(volatile uint32_t *)(e + MSIX_ENTRY_VECTOR_CTRL) = 0;
	return 0;
}

void msix_mask_entry(volatile uint8_t *table, uint16_t index)
{
	*(volatile uint32_t *)(table + (uint32_t)index * MSIX_ENTRY_SIZE + MSIX_ENTRY_VECTOR_CTRL) =
		MSIX_ENTRY_CTRL_MASKED;
}
