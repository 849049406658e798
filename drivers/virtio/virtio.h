/* virtio core: device status handshake, feature negotiation, config access,
 * the queues, interrupt dispatch and the driver registry, independent of the
 * transport (virtio 1.2, sections 2 and 3).
 *
 * A transport (virtio-pci modern or legacy, virtio-mmio) finds a device,
 * fills a struct virtio_dev with its ops and calls virtio_dev_add, which
 * finds the driver and probes it. The driver negotiates, asks for its queues
 * by index with a callback each (virtio_vq_setup, as Linux's find_vqs) and
 * sets DRIVER_OK; from then on it adds, kicks and takes buffers through
 * virtqueue.h and never touches the transport. */
#ifndef BALLAST_VIRTIO_H
#define BALLAST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/virtio/virtqueue.h"

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
#define VIRTIO_F_IN_ORDER        35

/* ISR status bits (4.1.4.5) */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

#define VIRTIO_ID_BALLOON 5
#define VIRTIO_NO_VECTOR  0xffff
#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_NAME_MAX   48

struct virtio_dev;

/* What a transport provides. Config offsets are relative to the device-
 * specific configuration; values are little-endian on every transport. */
struct virtio_ops {
	const char *name;
	bool modern; /* a virtio 1.x transport: VERSION_1 is required, packed rings possible */
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
	uint32_t (*queue_max_size)(struct virtio_dev *vd, unsigned index);
	/* Whether the transport requires the device's own size (legacy does). */
	bool fixed_queue_size;
	/* Tells the device where vq's rings are (vq->desc_phys, driver_phys,
	 * device_phys), routes its interrupt, sets vq->notify and enables it. */
	int (*queue_activate)(struct virtio_dev *vd, struct virtqueue *vq);
	/* Optional: restores transport state a device reset clears (the MSI-X
	 * config vector); returns -1 if the device refuses it. */
	int (*after_reset)(struct virtio_dev *vd);
};

/* A driver: what it drives, and what the core calls. */
struct virtio_driver {
	uint16_t device_id;
	const char *name;                          /* "virtio-balloon" */
	const char *short_name;                    /* "balloon", for interrupt names */
	int (*probe)(struct virtio_dev *vd);
	void (*config_changed)(struct virtio_dev *vd);
};

struct virtio_dev {
	const struct virtio_ops *ops;
	void *transport;
	char name[VIRTIO_NAME_MAX]; /* for the log: "virtio-balloon 00:03.0" */
	uint64_t offered;           /* what the device offered */
	uint64_t features;          /* negotiated */
	unsigned config_size;       /* device config bytes, to range-check access */
	bool failed;
	const char *irq_mode;       /* how interrupts arrive: msix, msix-vq, msix-shared, intx, gsi or polled */
	const struct virtio_driver *driver;
	void *priv;                 /* the driver's */
	struct virtqueue *vqs[VIRTIO_MAX_QUEUES]; /* by queue index */
};

/* ---- for transports ---- */

/* The driver for a device type, or NULL. */
const struct virtio_driver *virtio_driver_for(uint16_t device_id);
/* Names the device ("<driver> <where>"), finds its driver by device id and
 * probes it. Returns whether a driver took it. */
bool virtio_dev_add(struct virtio_dev *vd, uint16_t device_id, const char *where);
/* An interrupt that does not say which queue (INTx, a shared MSI-X vector,
 * virtio-mmio): runs the callbacks of the queues with used buffers, and the
 * driver's config_changed for VIRTIO_ISR_CONFIG. */
void virtio_interrupt(struct virtio_dev *vd, uint8_t isr);
/* A queue's own interrupt (a per-queue MSI-X vector). */
void virtio_vq_interrupt(struct virtqueue *vq);
/* Whether packed rings may be used ("packed=off" on the command line says no). */
void virtio_set_packed_allowed(bool allowed);

/* ---- for drivers ---- */

/* Resets the device and runs ACKNOWLEDGE, DRIVER, feature negotiation and
 * FEATURES_OK (written and read back). `wanted` is what the driver can
 * use; `required` must all be offered. The core adds what it implements
 * itself (VERSION_1, EVENT_IDX, RING_PACKED), and requires VERSION_1 of
 * a modern transport's device. Returns 0 or a negative
 * error, with the device marked FAILED and the reason logged. */
int virtio_negotiate(struct virtio_dev *vd, uint64_t wanted, uint64_t required);
/* Queue `index`: sized, allocated (split or packed, as negotiated),
 * activated; `cb` runs from its interrupt with vq->priv = priv. NULL (and
 * the reason logged) if the device has no such queue or it cannot be set
 * up. A queue the device breaks is logged once and fails the device. */
struct virtqueue *virtio_vq_setup(struct virtio_dev *vd, unsigned index, const char *name, vq_callback_fn cb,
                                  void *priv);
void virtio_driver_ok(struct virtio_dev *vd);
/* Whether the device asks to be reset (virtio 1.x: status bit 0x40). */
bool virtio_needs_reset(struct virtio_dev *vd);
/* Marks the device FAILED and logs why, once. */
void virtio_fail(struct virtio_dev *vd, const char *why);
static inline bool virtio_has(const struct virtio_dev *vd, unsigned bit) { return vd->features >> bit & 1; }
/* the transport's name, for the driver's up line ("pci-modern", "mmio-legacy", ...) */
static inline const char *virtio_transport_name(const struct virtio_dev *vd) { return vd->ops->name; }
/* Reads a 32-bit little-endian config field, retrying until the config
 * generation is stable across the read. Returns 0, or -1 if the offset is
 * out of range or the generation never settles (device then FAILED). */
int virtio_config_read32(struct virtio_dev *vd, unsigned off, uint32_t *out);
int virtio_config_write32(struct virtio_dev *vd, unsigned off, uint32_t v);

#endif
