#include "drivers/pci/pci.h"
#include "drivers/pci/pci_caps.h"

int pci_cap_find(pci_cfg_read8_fn read8, const void *ctx, uint8_t id, uint8_t after)
{
	if (!((read8(ctx, PCI_STATUS) | (read8(ctx, PCI_STATUS + 1) << 8)) & PCI_STATUS_CAP_LIST))
		return 0;
	/* the low two bits are reserved and must be ignored, before anything
	 * else: a pointer of 0x01-0x03 ends the list as 0x00 does */
	uint8_t off = (after ? read8(ctx, after + 1) : read8(ctx, PCI_CAP_PTR)) & 0xfc;
	for (unsigned steps = 0; off; steps++) {
		if (off < PCI_CAP_FIRST_OFFSET || steps >= PCI_CAP_MAX_WALK)
			return -1;
		if (read8(ctx, off) == id)
			return off;
		off = read8(ctx, off + 1) & 0xfc;
	}
	return 0;
}

uint32_t pci_cap_read32(pci_cfg_read8_fn read8, const void *ctx, uint16_t off)
{
	return (uint32_t)read8(ctx, off) | (uint32_t)read8(ctx, off + 1) << 8 | (uint32_t)read8(ctx, off + 2) << 16 |
	       (uint32_t)read8(ctx, off + 3) << 24;
}
