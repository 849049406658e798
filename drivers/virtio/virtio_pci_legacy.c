/* The legacy virtio-pci transport: everything in I/O BAR 0. Device config
 * follows at 0x14 while MSI-X is off (ballast never enables it on legacy
 * devices, and turns it off if it finds it on). Legacy devices are
 * native-endian, which on x86 is little. */
#include "drivers/pci/msix.h"
#include "drivers/virtio/virtio_pci.h"
#include "drivers/virtio/virtqueue.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"

static struct virtio_pci *to_vp(struct virtio_dev *vd) { return vd->transport; }
static uint16_t port(struct virtio_dev *vd, unsigned reg) { return (uint16_t)(to_vp(vd)->io_base + reg); }

static uint8_t legacy_get_status(struct virtio_dev *vd) { return inb(port(vd, VIRTIO_LEGACY_STATUS)); }
static void legacy_set_status(struct virtio_dev *vd, uint8_t s) { outb(port(vd, VIRTIO_LEGACY_STATUS), s); }
/* legacy devices offer only the low 32 feature bits */
static uint64_t legacy_get_features(struct virtio_dev *vd) { return inl(port(vd, VIRTIO_LEGACY_HOST_FEATURES)); }
static void legacy_set_features(struct virtio_dev *vd, uint64_t f) { outl(port(vd, VIRTIO_LEGACY_GUEST_FEATURES), (uint32_t)f); }
static uint32_t legacy_generation(struct virtio_dev *vd) { (void)vd; return 0; }

static uint32_t legacy_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	uint16_t p = port(vd, VIRTIO_LEGACY_CONFIG + off);
	return width == 1 ? inb(p) : width == 2 ? inw(p) : inl(p);
}

static void legacy_config_write(struct virtio_dev *vd, unsigned off, unsigned width, uint32_t v)
{
	uint16_t p = port(vd, VIRTIO_LEGACY_CONFIG + off);
	if (width == 1)
		outb(p, (uint8_t)v);
	else if (width == 2)
		outw(p, (uint16_t)v);
	else
		outl(p, v);
}

/* The port is kept as the notify address: one place to find it at the kick. */
static void legacy_notify(struct virtqueue *vq) { outw((uint16_t)(uintptr_t)vq->notify_addr, vq->index); }

static uint32_t legacy_queue_max_size(struct virtio_dev *vd, unsigned index)
{
	outw(port(vd, VIRTIO_LEGACY_QUEUE_SELECT), (uint16_t)index);
	return inw(port(vd, VIRTIO_LEGACY_QUEUE_SIZE));
}

static int legacy_queue_activate(struct virtio_dev *vd, struct virtqueue *vq)
{
	if (vq->desc_phys & ((1u << VIRTIO_LEGACY_QUEUE_PFN_SHIFT) - 1) ||
	    (vq->desc_phys >> VIRTIO_LEGACY_QUEUE_PFN_SHIFT) > UINT32_MAX) {
		klog("%s: ring at 0x%" PRIx64 " not expressible as a legacy PFN", vd->name, vq->desc_phys);
		return -1;
	}
	if (vq->packed)
		return -1; /* packed rings need VERSION_1: negotiation never gives them here */
	outw(port(vd, VIRTIO_LEGACY_QUEUE_SELECT), vq->index);
	outl(port(vd, VIRTIO_LEGACY_QUEUE_PFN), (uint32_t)(vq->desc_phys >> VIRTIO_LEGACY_QUEUE_PFN_SHIFT));
	vq->notify_addr = (volatile void *)(uintptr_t)port(vd, VIRTIO_LEGACY_QUEUE_NOTIFY);
	vq->notify = legacy_notify;
	return 0;
}

const struct virtio_ops virtio_pci_legacy_ops = {
	.name = "pci-legacy",
	.modern = false,
	.get_status = legacy_get_status,
	.set_status = legacy_set_status,
	.get_features = legacy_get_features,
	.set_features = legacy_set_features,
	.config_generation = legacy_generation,
	.config_read = legacy_config_read,
	.config_write = legacy_config_write,
	.queue_max_size = legacy_queue_max_size,
	.fixed_queue_size = true,
	.queue_activate = legacy_queue_activate,
};

/* With MSI-X enabled, two vector registers come first and the device
 * config moves to 0x18 (virtio 1.2, "Legacy Interface: A Note on PCI
 * Device Layout"). A device reset does not touch the enable bit, so a
 * previous owner (firmware, an earlier kernel) may have left it on, and
 * the config would be read 4 bytes off. */
static void msix_off(struct virtio_pci *vp)
{
	int cap = pci_cap_find(pci_cfg_read8, vp->pci, PCI_CAP_ID_MSIX, 0);
	if (cap <= 0)
		return;
	uint16_t ctrl = pci_read16(vp->pci, (uint16_t)cap + PCI_MSIX_CTRL);
	if (!(ctrl & PCI_MSIX_CTRL_ENABLE))
		return;
	pci_write16(vp->pci, (uint16_t)cap + PCI_MSIX_CTRL, ctrl & ~PCI_MSIX_CTRL_ENABLE);
	klog("%s: MSI-X was left enabled; turned it off (legacy config at 0x%x)", vp->vd.name, VIRTIO_LEGACY_CONFIG);
}

int virtio_pci_legacy_init(struct virtio_pci *vp)
{
	const struct pci_bar *bar = &vp->pci->bar[0];
	if (!bar->is_io || bar->size < VIRTIO_LEGACY_IO_SIZE_MIN || bar->base == 0 ||
	    bar->base + bar->size > 0x10000) {
		klog("%s: BAR0 is not a usable legacy I/O window", vp->vd.name);
		return -1;
	}
	msix_off(vp);
	vp->io_base = (uint16_t)bar->base;
	vp->io_size = (uint32_t)bar->size;
	vp->vd.config_size = vp->io_size - VIRTIO_LEGACY_CONFIG;
	vp->vd.ops = &virtio_pci_legacy_ops;
	return 0;
}
