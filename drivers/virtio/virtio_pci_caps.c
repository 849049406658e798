/* Parsing and validation of the virtio-pci vendor capabilities. Pure
 * logic over a config-space reader, so that unit tests can feed it hostile
 * config spaces: every BAR index, offset and length is checked against the
 * BAR before anything is mapped. */
#include <string.h>
#include "drivers/virtio/virtio_pci.h"

static uint32_t min_length(uint8_t cfg_type)
{
	switch (cfg_type) {
	case VIRTIO_PCI_CAP_COMMON_CFG: return sizeof(struct virtio_pci_common_cfg);
	case VIRTIO_PCI_CAP_NOTIFY_CFG: return 2; /* one 16-bit queue index */
	case VIRTIO_PCI_CAP_ISR_CFG:    return 1;
	default:                        return 0;
	}
}

int virtio_pci_parse_caps(pci_cfg_read8_fn read8, const void *ctx, const struct virtio_pci_bar_info bars[PCI_BARS],
                          struct virtio_pci_cap found[VIRTIO_PCI_CAP_PCI_CFG + 1], uint32_t *notify_mult,
                          const char **why)
{
	memset(found, 0, sizeof(*found) * (VIRTIO_PCI_CAP_PCI_CFG + 1));
	*notify_mult = 0;
	int off = 0;
	unsigned seen = 0;
	while ((off = pci_cap_find(read8, ctx, PCI_CAP_ID_VENDOR, (uint8_t)off)) > 0) {
		/* each pci_cap_find call walks on from the last hit with a fresh
		 * step count, so a list looping through a vendor capability is
		 * only caught here: no list holds more than this many */
		if (++seen > PCI_CAP_MAX_WALK) {
			off = -1;
			break;
		}
		/* nothing of a capability running past config space is read:
		 * through ports those offsets wrap around to the header, through
		 * ECAM they are extended space, neither of them this capability */
		if (off + sizeof(struct virtio_pci_cap) > PCI_CFG_SIZE)
			continue;
		struct virtio_pci_cap c;
		c.cap_len = read8(ctx, off + 2);
		c.cfg_type = read8(ctx, off + 3);
		c.bar = read8(ctx, off + 4);
		c.offset = pci_cap_read32(read8, ctx, off + 8);
		c.length = pci_cap_read32(read8, ctx, off + 12);
		/* the spec lets a driver skip capabilities it cannot use and take
		 * the first usable one of each type (4.1.4) */
		if (c.cap_len < sizeof(struct virtio_pci_cap))
			continue;
		if (c.cfg_type < VIRTIO_PCI_CAP_COMMON_CFG || c.cfg_type > VIRTIO_PCI_CAP_DEVICE_CFG ||
		    found[c.cfg_type].cfg_type)
			continue;
		if (c.bar >= PCI_BARS || bars[c.bar].is_io || bars[c.bar].size == 0)
			continue;
		if ((uint64_t)c.offset + c.length > bars[c.bar].size || c.length < min_length(c.cfg_type))
			continue;
		if (c.cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			if (c.cap_len < sizeof(struct virtio_pci_notify_cap) ||
			    off + sizeof(struct virtio_pci_notify_cap) > PCI_CFG_SIZE)
				continue;
			*notify_mult = pci_cap_read32(read8, ctx, off + 16);
		}
		found[c.cfg_type] = c;
	}
	if (off < 0) {
		*why = "malformed PCI capability list";
		return -1;
	}
	if (!found[VIRTIO_PCI_CAP_COMMON_CFG].cfg_type) {
		*why = "no usable common configuration capability";
		return -1;
	}
	if (!found[VIRTIO_PCI_CAP_NOTIFY_CFG].cfg_type) {
		*why = "no usable notify capability";
		return -1;
	}
	if (!found[VIRTIO_PCI_CAP_ISR_CFG].cfg_type) {
		*why = "no usable ISR capability";
		return -1;
	}
	return 0;
}
