#include "drivers/pci/pci.h"
#include "drivers/pci/pci_bar.h"

#define PCI_IO_SPACE_END 0x10000ull

int pci_bar_decode(const struct pci_bar_reads *r, bool is_io, bool is_64, uint64_t *base, uint64_t *size,
                   const char **why)
{
	uint64_t mask, above; /* the address bits read back, and the ones taken as set above the BAR's width */
	*size = 0;
	if (is_io) {
		/* the upper 16 bits of an I/O BAR may read back as zeros (PCI
		 * 3.0 6.2.5.1): only the 64 KiB port space counts */
		mask = r->mask_lo & PCI_BAR_IO_MASK & (PCI_IO_SPACE_END - 1);
		*base = r->lo & PCI_BAR_IO_MASK & (PCI_IO_SPACE_END - 1);
		above = ~(PCI_IO_SPACE_END - 1);
	} else if (is_64) {
		mask = (r->mask_lo & PCI_BAR_MEM_MASK) | (uint64_t)r->mask_hi << 32;
		*base = (r->lo & PCI_BAR_MEM_MASK) | (uint64_t)r->hi << 32;
		above = 0; /* high address bits may be hardwired to 0: the run may stop anywhere */
	} else {
		mask = r->mask_lo & PCI_BAR_MEM_MASK;
		*base = r->lo & PCI_BAR_MEM_MASK;
		above = 0xffffffff00000000ull; /* a 32-bit BAR decodes the whole 4 GiB */
	}
	if (mask == 0)
		return 0; /* not implemented: no address bit sticks */
	uint64_t lowest = mask & (~mask + 1);
	/* the bits from the lowest one up form one run: with the bits below
	 * it filled in, the mask is 2^k - 1 */
	uint64_t run = mask | above | (lowest - 1);
	if ((run & (run + 1)) != 0) {
		*why = "its size mask has a hole";
		return -1;
	}
	/* aligned, it also ends inside its address space (2^16 or 2^64) */
	if (*base & (lowest - 1)) {
		*why = "its base is not aligned to its size";
		return -1;
	}
	*size = lowest;
	return 0;
}
