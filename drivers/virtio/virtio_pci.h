/* virtio over PCI (virtio 1.2, 4.1): the modern transport (vendor
 * capabilities into memory BARs) and the legacy one (I/O BAR 0). */
#ifndef BALLAST_VIRTIO_PCI_H
#define BALLAST_VIRTIO_PCI_H

#include <stdint.h>
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_caps.h"
#include "drivers/virtio/virtio.h"

#define VIRTIO_PCI_VENDOR            0x1af4
#define VIRTIO_PCI_DEVICE_FIRST      0x1000
#define VIRTIO_PCI_DEVICE_TRANS_LAST 0x103f /* transitional: type in subsystem id */
#define VIRTIO_PCI_DEVICE_MODERN     0x1040 /* + device type */
#define VIRTIO_PCI_DEVICE_LAST       0x107f

/* virtio_pci_cap.cfg_type (4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

struct virtio_pci_cap {
	uint8_t cap_vndr, cap_next, cap_len, cfg_type;
	uint8_t bar, id, padding[2];
	uint32_t offset;
	uint32_t length;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_pci_cap) == 16, "4.1.4");
_Static_assert(__builtin_offsetof(struct virtio_pci_cap, offset) == 8, "4.1.4");

struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;
	uint32_t notify_off_multiplier;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "4.1.4.4");

struct virtio_pci_common_cfg {
	uint32_t device_feature_select;
	uint32_t device_feature;
	uint32_t driver_feature_select;
	uint32_t driver_feature;
	uint16_t msix_config;
	uint16_t num_queues;
	uint8_t device_status;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t queue_size;
	uint16_t queue_msix_vector;
	uint16_t queue_enable;
	uint16_t queue_notify_off;
	uint64_t queue_desc;
	uint64_t queue_driver;
	uint64_t queue_device;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_pci_common_cfg) == 56, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, msix_config) == 0x10, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, device_status) == 0x14, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, config_generation) == 0x15, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_select) == 0x16, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_size) == 0x18, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_msix_vector) == 0x1a, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_enable) == 0x1c, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_notify_off) == 0x1e, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_desc) == 0x20, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_driver) == 0x28, "4.1.4.3");
_Static_assert(__builtin_offsetof(struct virtio_pci_common_cfg, queue_device) == 0x30, "4.1.4.3");

/* Legacy I/O BAR 0 registers (4.1.4.8) */
#define VIRTIO_LEGACY_HOST_FEATURES  0x00
#define VIRTIO_LEGACY_GUEST_FEATURES 0x04
#define VIRTIO_LEGACY_QUEUE_PFN      0x08
#define VIRTIO_LEGACY_QUEUE_SIZE     0x0c
#define VIRTIO_LEGACY_QUEUE_SELECT   0x0e
#define VIRTIO_LEGACY_QUEUE_NOTIFY   0x10
#define VIRTIO_LEGACY_STATUS         0x12
#define VIRTIO_LEGACY_ISR            0x13
#define VIRTIO_LEGACY_CONFIG         0x14 /* without MSI-X */
#define VIRTIO_LEGACY_QUEUE_PFN_SHIFT 12
#define VIRTIO_LEGACY_IO_SIZE_MIN    VIRTIO_LEGACY_CONFIG

/* A located capability, validated against its BAR. */
struct virtio_pci_region {
	volatile uint8_t *base;
	uint32_t length;
};

/* How a modern device's MSI-X table is used: entry 0 always takes config
 * changes; the queues get an entry each when the table has room for all of
 * them, else one entry together, else (a one-entry table) entry 0 too. */
enum virtio_pci_msix {
	VIRTIO_PCI_MSIX_OFF,
	VIRTIO_PCI_MSIX_PER_QUEUE, /* irq mode msix-vq */
	VIRTIO_PCI_MSIX_QUEUES,    /* msix */
	VIRTIO_PCI_MSIX_ONE,       /* msix-shared */
};
#define VIRTIO_PCI_MSIX_CONFIG_ENTRY 0
#define VIRTIO_PCI_MSIX_QUEUE_ENTRY  1
#define VIRTIO_PCI_IRQ_NAME_MAX 24

struct virtio_pci {
	struct virtio_dev vd;
	struct pci_dev *pci;
	bool modern;
	struct virtio_pci_region common, notify, isr, device;
	uint32_t notify_off_multiplier;
	uint16_t io_base;      /* legacy */
	uint32_t io_size;
	enum virtio_pci_msix msix;
	volatile uint8_t *msix_table;
	uint16_t msix_entries, msix_next; /* table size, next free entry (per-queue) */
	const char *short_name;           /* the driver's, for interrupt names */
	char irq_names[VIRTIO_MAX_QUEUES + 2][VIRTIO_PCI_IRQ_NAME_MAX];
};

/* The MSI-X entry queue `vq` is to use (programming its own entry and
 * vector when it gets one), or VIRTIO_NO_VECTOR without MSI-X; -1 if no
 * vector can be had. */
int virtio_pci_queue_vector(struct virtio_pci *vp, struct virtqueue *vq);

/* Parses the virtio vendor capabilities of a device into vp's regions.
 * Returns 0, or a negative error with the reason in *why. Exposed for the
 * unit tests, which feed it hostile config spaces. */
struct virtio_pci_bar_info {
	uint64_t size;
	bool is_io;
};
int virtio_pci_parse_caps(pci_cfg_read8_fn read8, const void *ctx, const struct virtio_pci_bar_info bars[PCI_BARS],
                          struct virtio_pci_cap found[VIRTIO_PCI_CAP_PCI_CFG + 1], uint32_t *notify_mult,
                          const char **why);

extern const struct virtio_ops virtio_pci_modern_ops;
extern const struct virtio_ops virtio_pci_legacy_ops;
int virtio_pci_modern_init(struct virtio_pci *vp);
int virtio_pci_legacy_init(struct virtio_pci *vp);

/* Finds virtio devices on PCI and hands each to its driver; returns how
 * many had a driver and a usable transport. */
unsigned virtio_pci_probe_all(bool polled);

#endif
