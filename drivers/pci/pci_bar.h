/* Decoding a BAR from what its sizing reads returned, apart from the
 * config-space accesses so that unit tests and the fuzzer can hand it any
 * values a device might answer. */
#ifndef BALLAST_PCI_BAR_H
#define BALLAST_PCI_BAR_H

#include <stdbool.h>
#include <stdint.h>

/* What one BAR slot (and, for a 64-bit memory BAR, the next) read: the
 * value, and the value read back after writing all ones. */
struct pci_bar_reads {
	uint32_t lo, mask_lo;
	uint32_t hi, mask_hi; /* 64-bit memory BARs only */
};

/* Base and size of a BAR, or why it cannot be used. The size is the lowest
 * address bit the BAR decodes (PCI 3.0 6.2.5.1: the bits above it read
 * back as ones, the bits below as zeros), and those bits must be one run:
 * a hole in the mask, or a base not aligned to the size, is a device
 * answering nonsense. Returns 0
 * with *size 0 for an unimplemented BAR, 0 with base and size for a good
 * one, -1 with *why for a bad one. */
int pci_bar_decode(const struct pci_bar_reads *r, bool is_io, bool is_64, uint64_t *base, uint64_t *size,
                   const char **why);

#endif
