/* The capability-list walk, over any config-space reader so that the same
 * code runs against real devices and, in unit tests, hostile fake config
 * spaces. */
#ifndef BALLAST_PCI_CAPS_H
#define BALLAST_PCI_CAPS_H

#include <stdint.h>

typedef uint8_t (*pci_cfg_read8_fn)(const void *ctx, uint16_t off);

/* A capability list has at most this many entries: each takes at least 4
 * bytes of the 192 bytes after the header, so a longer walk is a loop. */
#define PCI_CAP_MAX_WALK 48
#define PCI_CAP_FIRST_OFFSET 0x40

/* Offset of the next capability with this id after offset `after` (0 to
 * start from the list head), 0 if none, or -1 if the list is malformed
 * (pointer into the header, past config space, or looping). */
int pci_cap_find(pci_cfg_read8_fn read8, const void *ctx, uint8_t id, uint8_t after);

/* A little-endian 32-bit field through the byte reader. */
uint32_t pci_cap_read32(pci_cfg_read8_fn read8, const void *ctx, uint16_t off);

#endif
