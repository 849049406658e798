/* Finding virtio devices on PCI, choosing the transport, and delivering
 * their interrupts (INTx through the IOAPIC, or polling from the timer). */
#include <stdio.h>
#include "drivers/pci/pci_irq.h"
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/virtio_pci.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"

#define VIRTIO_PCI_MAX_DEVICES 4
#define VIRTIO_NAME_MAX 40

struct virtio_driver {
	uint16_t type;
	const char *name;
	int (*probe)(struct virtio_dev *vd);
};

static const struct virtio_driver drivers[] = {
	{ VIRTIO_ID_BALLOON, "virtio-balloon", balloon_probe },
};

static struct virtio_pci devices[VIRTIO_PCI_MAX_DEVICES];
static char names[VIRTIO_PCI_MAX_DEVICES][VIRTIO_NAME_MAX];
static unsigned device_count;

static void deliver(struct virtio_pci *vp)
{
	uint8_t isr = vp->vd.ops->read_isr(&vp->vd);
	if (isr && vp->vd.interrupt)
		vp->vd.interrupt(&vp->vd, isr);
}

/* Shared level-triggered line: every device on it is asked, and reading
 * its ISR both says whether it interrupted and lowers its line. */
static void intx_handler(void *ctx) { deliver(ctx); }
static void poll_handler(void *ctx) { deliver(ctx); }

static uint16_t virtio_type(const struct pci_dev *d)
{
	if (d->device >= VIRTIO_PCI_DEVICE_MODERN)
		return (uint16_t)(d->device - VIRTIO_PCI_DEVICE_MODERN);
	return pci_read16(d, PCI_SUBSYSTEM_ID);
}

static void setup_delivery(struct virtio_pci *vp, bool polled)
{
	if (!polled) {
		int vector = pci_route_intx(vp->pci, intx_handler, vp);
		if (vector >= 0) {
			klog("%s: interrupts: INTx, vector 0x%x", vp->vd.name, vector);
			return;
		}
		klog("%s: no INTx route; falling back to polling", vp->vd.name);
	}
	timer_add_tick_handler(poll_handler, vp);
	klog("%s: interrupts: polled every %u ms", vp->vd.name, TIMER_TICK_MS);
}

static void probe_one(struct pci_dev *d, const struct virtio_driver *drv, bool polled)
{
	if (device_count >= VIRTIO_PCI_MAX_DEVICES)
		return;
	struct virtio_pci *vp = &devices[device_count];
	char *name = names[device_count];
	snprintf(name, VIRTIO_NAME_MAX, "%s %02x:%02x.%x", drv->name, d->bus, d->dev, d->fn);
	*vp = (struct virtio_pci){ .pci = d, .vd = { .name = name } };
	vp->vd.transport = vp;
	pci_enable(d);
	/* modern whenever the device offers it; legacy for disable-modern=on */
	if (virtio_pci_modern_init(vp) < 0 && virtio_pci_legacy_init(vp) < 0) {
		klog("%s: neither modern nor legacy transport usable", name);
		return;
	}
	device_count++;
	d->claimed = true;
	klog("%s: transport %s", name, vp->vd.ops->name);
	setup_delivery(vp, polled);
	if (drv->probe(&vp->vd) < 0)
		klog("%s: driver probe failed", name);
}

unsigned virtio_pci_probe_all(bool polled)
{
	unsigned found = 0;
	for (unsigned i = 0; i < pci_device_count(); i++) {
		struct pci_dev *d = pci_device(i);
		if (d->vendor != VIRTIO_PCI_VENDOR || d->device < VIRTIO_PCI_DEVICE_FIRST ||
		    d->device > VIRTIO_PCI_DEVICE_LAST)
			continue;
		uint16_t type = virtio_type(d);
		for (unsigned k = 0; k < sizeof(drivers) / sizeof(drivers[0]); k++)
			if (drivers[k].type == type) {
				probe_one(d, &drivers[k], polled);
				found++;
			}
	}
	return found;
}
