/* The virtio core's device side: status handshake, negotiation, config
 * access, failure, and interrupt dispatch to the driver's queues. Pure
 * (no allocation): unit-tested natively against a fake transport. */
#include "drivers/virtio/virtio.h"
#include "kernel/log.h"

#define CONFIG_READ_RETRIES 100

static bool packed_allowed = true;

void virtio_set_packed_allowed(bool allowed) { packed_allowed = allowed; }

bool virtio_needs_reset(struct virtio_dev *vd)
{
	return vd->ops->modern && (vd->ops->get_status(vd) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

void virtio_fail(struct virtio_dev *vd, const char *why)
{
	if (vd->failed)
		return;
	vd->failed = true;
	klog("%s: FAILED: %s", vd->name, why);
	vd->ops->set_status(vd, vd->ops->get_status(vd) | VIRTIO_STATUS_FAILED);
}

int virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	const struct virtio_ops *ops = vd->ops;
	/* the reset starts the device over: whatever failed before is gone */
	vd->failed = false;
	ops->set_status(vd, 0);
	/* a reset completes when status reads back 0 (4.1.4.3.2) */
	for (unsigned i = 0; ops->get_status(vd) != 0; i++)
		if (i > 1000000) {
			virtio_fail(vd, "device did not reset");
			return -1;
		}
	/* what the core implements itself, on top of what the driver can use;
	 * a modern transport's device without VERSION_1 is not one (4.1.2.3) */
	wanted |= 1ull << VIRTIO_F_EVENT_IDX;
	if (ops->modern) {
		wanted |= 1ull << VIRTIO_F_VERSION_1;
		required |= 1ull << VIRTIO_F_VERSION_1;
		if (packed_allowed)
			wanted |= 1ull << VIRTIO_F_RING_PACKED;
	}
	if (ops->after_reset && ops->after_reset(vd) < 0) {
		virtio_fail(vd, "device refused the transport's interrupt setup");
		return -1;
	}
	ops->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE);
	ops->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t offered = ops->get_features(vd);
	vd->offered = offered;
	if ((offered & required) != required) {
		klog("%s: offered features 0x%" PRIx64 " lack required 0x%" PRIx64, vd->name, offered, required);
		virtio_fail(vd, "required features not offered");
		return -1;
	}
	vd->features = offered & wanted;
	ops->set_features(vd, vd->features);
	kdebug("%s: features offered=0x%" PRIx64 " accepted=0x%" PRIx64, vd->name, offered, vd->features);
	/* Offered and left out on purpose: say so, since a host testing these
	 * options should not have to decode the masks above. */
	if ((offered & (1ull << VIRTIO_F_RING_PACKED)) && !virtio_has(vd, VIRTIO_F_RING_PACKED))
		kdebug("%s: packed virtqueues offered; using split virtqueues (%s)", vd->name,
		       ops->modern ? "packed=off" : "a legacy transport");
	bool access_platform = offered & (1ull << VIRTIO_F_ACCESS_PLATFORM);
	if (access_platform)
		klog("%s: VIRTIO_F_ACCESS_PLATFORM offered (device DMA through an IOMMU or a restricted "
		     "address space); ballast gives devices guest-physical addresses and does not accept it",
		     vd->name);
	if (!virtio_has(vd, VIRTIO_F_VERSION_1))
		return 0; /* legacy devices have no FEATURES_OK step */
	ops->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(ops->get_status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
		/* a device may insist on ACCESS_PLATFORM (virtio 1.2, 6.2); QEMU's does */
		virtio_fail(vd, access_platform ? "device refused FEATURES_OK (ACCESS_PLATFORM offered, not accepted)"
		                                : "device refused FEATURES_OK");
		return -1;
	}
	return 0;
}

void virtio_driver_ok(struct virtio_dev *vd)
{
	if (!vd->failed)
		vd->ops->set_status(vd, vd->ops->get_status(vd) | VIRTIO_STATUS_DRIVER_OK);
}

static bool config_in_range(const struct virtio_dev *vd, unsigned off, unsigned width)
{
	return !(off % width) && off <= vd->config_size && width <= vd->config_size - off;
}

int virtio_config_read32(struct virtio_dev *vd, unsigned off, uint32_t *out)
{
	if (!config_in_range(vd, off, 4))
		return -1;
	for (unsigned tries = 0; tries < CONFIG_READ_RETRIES; tries++) {
		uint32_t gen = vd->ops->config_generation(vd);
		*out = vd->ops->config_read(vd, off, 4);
		if (vd->ops->config_generation(vd) == gen)
			return 0;
	}
	virtio_fail(vd, "config generation never settled");
	return -1;
}

int virtio_config_write32(struct virtio_dev *vd, unsigned off, uint32_t v)
{
	if (!config_in_range(vd, off, 4))
		return -1;
	vd->ops->config_write(vd, off, 4, v);
	return 0;
}

void virtio_vq_interrupt(struct virtqueue *vq)
{
	struct virtio_dev *vd = vq->dev;
	if (!vd->failed && vq->callback)
		vq->callback(vq);
}

void virtio_interrupt(struct virtio_dev *vd, uint8_t isr)
{
	if (vd->failed)
		return;
	if (isr & VIRTIO_ISR_QUEUE)
		for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
			struct virtqueue *vq = vd->vqs[i];
			if (vq && vq->callback && vq_has_used(vq))
				vq->callback(vq);
		}
	if ((isr & VIRTIO_ISR_CONFIG) && !vd->failed && vd->driver && vd->driver->config_changed)
		vd->driver->config_changed(vd);
}
