/* The modern virtio-pci transport: common configuration, notify, ISR and
 * device configuration structures found through vendor capabilities. */
#include <stddef.h>
#include "drivers/virtio/virtio_pci.h"
#include "drivers/virtio/virtqueue.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"

#define COMMON(vp, field) ((vp)->common.base + offsetof(struct virtio_pci_common_cfg, field))

static struct virtio_pci *to_vp(struct virtio_dev *vd) { return vd->transport; }

static uint8_t modern_get_status(struct virtio_dev *vd) { return mmio_read8(COMMON(to_vp(vd), device_status)); }
static void modern_set_status(struct virtio_dev *vd, uint8_t s) { mmio_write8(COMMON(to_vp(vd), device_status), s); }

static uint64_t modern_get_features(struct virtio_dev *vd)
{
	struct virtio_pci *vp = to_vp(vd);
	mmio_write32(COMMON(vp, device_feature_select), 0);
	uint64_t lo = mmio_read32(COMMON(vp, device_feature));
	mmio_write32(COMMON(vp, device_feature_select), 1);
	uint64_t hi = mmio_read32(COMMON(vp, device_feature));
	return hi << 32 | lo;
}

static void modern_set_features(struct virtio_dev *vd, uint64_t f)
{
	struct virtio_pci *vp = to_vp(vd);
	mmio_write32(COMMON(vp, driver_feature_select), 0);
	mmio_write32(COMMON(vp, driver_feature), (uint32_t)f);
	mmio_write32(COMMON(vp, driver_feature_select), 1);
	mmio_write32(COMMON(vp, driver_feature), (uint32_t)(f >> 32));
}

static uint32_t modern_generation(struct virtio_dev *vd) { return mmio_read8(COMMON(to_vp(vd), config_generation)); }

static uint32_t modern_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	return mmio_read_width(to_vp(vd)->device.base + off, width);
}

static void modern_config_write(struct virtio_dev *vd, unsigned off, unsigned width, uint32_t v)
{
	mmio_write_width(to_vp(vd)->device.base + off, width, v);
}

static uint32_t modern_queue_max_size(struct virtio_dev *vd, unsigned index)
{
	struct virtio_pci *vp = to_vp(vd);
	if (index >= mmio_read16(COMMON(vp, num_queues)))
		return 0;
	mmio_write16(COMMON(vp, queue_select), (uint16_t)index);
	return mmio_read16(COMMON(vp, queue_size));
}

static void modern_notify(struct virtqueue *vq) { mmio_write16(vq->notify_addr, vq->index); }

static int modern_queue_activate(struct virtio_dev *vd, struct virtqueue *vq)
{
	struct virtio_pci *vp = to_vp(vd);
	mmio_write16(COMMON(vp, queue_select), vq->index);
	mmio_write16(COMMON(vp, queue_size), (uint16_t)vq->size);
	int vector = virtio_pci_queue_vector(vp, vq);
	if (vector < 0) {
		klog("%s: no MSI-X vector for queue %u", vd->name, vq->index);
		return -1;
	}
	mmio_write16(COMMON(vp, queue_msix_vector), (uint16_t)vector);
	if (mmio_read16(COMMON(vp, queue_msix_vector)) != vector) {
		klog("%s: queue %u refused MSI-X entry %u", vd->name, vq->index, vector);
		return -1;
	}
	/* split: descriptors, avail, used; packed: descriptors, driver and
	 * device event areas (4.1.4.3) */
	mmio_write64(COMMON(vp, queue_desc), vq->desc_phys);
	mmio_write64(COMMON(vp, queue_driver), vq->driver_phys);
	mmio_write64(COMMON(vp, queue_device), vq->device_phys);
	uint64_t off = (uint64_t)mmio_read16(COMMON(vp, queue_notify_off)) * vp->notify_off_multiplier;
	if (off + sizeof(uint16_t) > vp->notify.length) {
		klog("%s: queue %u notify offset 0x%" PRIx64 " outside the %u-byte notify region", vd->name,
		     vq->index, off, vp->notify.length);
		return -1;
	}
	vq->notify_addr = vp->notify.base + off;
	vq->notify = modern_notify;
	mmio_write16(COMMON(vp, queue_enable), 1);
	return 0;
}

/* A reset clears msix_config; the device answers NO_VECTOR if it cannot
 * use the entry (4.1.5.1.2). */
static int modern_after_reset(struct virtio_dev *vd)
{
	struct virtio_pci *vp = to_vp(vd);
	if (vp->msix == VIRTIO_PCI_MSIX_OFF)
		return 0;
	mmio_write16(COMMON(vp, msix_config), VIRTIO_PCI_MSIX_CONFIG_ENTRY);
	return mmio_read16(COMMON(vp, msix_config)) == VIRTIO_PCI_MSIX_CONFIG_ENTRY ? 0 : -1;
}

const struct virtio_ops virtio_pci_modern_ops = {
	.name = "pci-modern",
	.modern = true,
	.get_status = modern_get_status,
	.set_status = modern_set_status,
	.get_features = modern_get_features,
	.set_features = modern_set_features,
	.config_generation = modern_generation,
	.config_read = modern_config_read,
	.config_write = modern_config_write,
	.queue_max_size = modern_queue_max_size,
	.fixed_queue_size = false,
	.queue_activate = modern_queue_activate,
	.after_reset = modern_after_reset,
};

static int map_region(struct virtio_pci *vp, const struct virtio_pci_cap *c, struct virtio_pci_region *r)
{
	volatile uint8_t *base = pci_map_bar(vp->pci, c->bar, c->offset, c->length);
	if (!base)
		return -1;
	r->base = base;
	r->length = c->length;
	return 0;
}

/* Locates and maps the capabilities; the device is modern-capable if this
 * succeeds. */
int virtio_pci_modern_init(struct virtio_pci *vp)
{
	struct virtio_pci_bar_info bars[PCI_BARS];
	for (unsigned i = 0; i < PCI_BARS; i++)
		bars[i] = (struct virtio_pci_bar_info){ vp->pci->bar[i].size, vp->pci->bar[i].is_io };
	struct virtio_pci_cap caps[VIRTIO_PCI_CAP_PCI_CFG + 1];
	const char *why = NULL;
	if (virtio_pci_parse_caps(pci_cfg_read8, vp->pci, bars, caps, &vp->notify_off_multiplier, &why) < 0) {
		klog("%s: not usable as modern: %s", vp->vd.name, why);
		return -1;
	}
	if (map_region(vp, &caps[VIRTIO_PCI_CAP_COMMON_CFG], &vp->common) < 0 ||
	    map_region(vp, &caps[VIRTIO_PCI_CAP_NOTIFY_CFG], &vp->notify) < 0 ||
	    map_region(vp, &caps[VIRTIO_PCI_CAP_ISR_CFG], &vp->isr) < 0)
		return -1;
	if (caps[VIRTIO_PCI_CAP_DEVICE_CFG].cfg_type && map_region(vp, &caps[VIRTIO_PCI_CAP_DEVICE_CFG], &vp->device) < 0)
		return -1;
	vp->vd.config_size = vp->device.length;
	vp->modern = true;
	vp->vd.ops = &virtio_pci_modern_ops;
	return 0;
}
