/* virtio core: device status handshake, feature negotiation and config
 * access, independent of the transport (virtio 1.2, sections 2 and 3). */
#ifndef BALLAST_VIRTIO_H
#define BALLAST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* Device status (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* Reserved feature bits (6) */
#define VIRTIO_F_INDIRECT_DESC   28
#define VIRTIO_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1       32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED     34

/* ISR status bits (4.1.4.5) */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_NO_VECTOR  0xffff

struct virtio_dev;
struct virtqueue;

/* What a transport provides. Config offsets are relative to the device-
 * specific configuration; values are little-endian on every transport. */
struct virtio_ops {
	const char *name;
	bool modern; /* a virtio 1.x transport: VERSION_1 is required */
	uint8_t (*get_status)(struct virtio_dev *vd);
	void (*set_status)(struct virtio_dev *vd, uint8_t status);
	uint64_t (*get_features)(struct virtio_dev *vd);
	void (*set_features)(struct virtio_dev *vd, uint64_t features);
	uint32_t (*config_generation)(struct virtio_dev *vd); /* constant 0 if the transport has none */
	/* width 1, 2 or 4, naturally aligned (4.1.3.1: fields are accessed
	 * with their own width, 64-bit ones as two 32-bit halves) */
	uint32_t (*config_read)(struct virtio_dev *vd, unsigned off, unsigned width);
	void (*config_write)(struct virtio_dev *vd, unsigned off, unsigned width, uint32_t v);
	/* Largest size the device allows for queue `index`, 0 if it has none. */
	uint16_t (*queue_max_size)(struct virtio_dev *vd, unsigned index);
	/* Whether the transport requires the device's own size (legacy does). */
	bool fixed_queue_size;
	/* Tells the device where the rings of vq are and enables the queue. */
	int (*queue_activate)(struct virtio_dev *vd, struct virtqueue *vq);
	void (*notify)(struct virtio_dev *vd, struct virtqueue *vq);
	/* Reads and so acknowledges (and for INTx deasserts) the interrupt. */
	uint8_t (*read_isr)(struct virtio_dev *vd);
	/* Optional: restores transport state a device reset clears (the MSI-X
	 * config vector); returns -1 if the device refuses it. */
	int (*after_reset)(struct virtio_dev *vd);
};

struct virtio_dev {
	const struct virtio_ops *ops;
	void *transport;
	const char *name;      /* for the log: "virtio-balloon 00:03.0" */
	uint64_t offered;      /* what the device offered */
	uint64_t features;     /* negotiated */
	unsigned config_size;  /* device config bytes, to range-check access */
	bool failed;
	const char *irq_mode;  /* how interrupts arrive: msix, msix-shared, intx, gsi or polled */
	/* Set by the driver: called from the interrupt (or poll) with the ISR
	 * bits that were pending. */
	void (*interrupt)(struct virtio_dev *vd, uint8_t isr);
	void *driver;
};

/* Resets the device and runs ACKNOWLEDGE, DRIVER, feature negotiation and
 * FEATURES_OK (written and read back). `wanted` is what the driver can
 * use; `required` must all be offered. Returns 0 or a negative error, with
 * the device marked FAILED and the reason logged. */
int virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required);
void virtio_driver_ok(struct virtio_dev *vd);
/* Whether the device asks to be reset (virtio 1.x: status bit 0x40). */
bool virtio_needs_reset(struct virtio_dev *vd);
/* Marks the device FAILED and logs why, once. */
void virtio_fail(struct virtio_dev *vd, const char *why);
static inline bool virtio_has(const struct virtio_dev *vd, unsigned bit) { return vd->features >> bit & 1; }
/* Reads a 32-bit little-endian config field, retrying until the config
 * generation is stable across the read. Returns 0, or -1 if the offset is
 * out of range or the generation never settles (device then FAILED). */
int virtio_config_read32(struct virtio_dev *vd, unsigned off, uint32_t *out);
int virtio_config_write32(struct virtio_dev *vd, unsigned off, uint32_t v);

#endif
