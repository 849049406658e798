/* Finding virtio devices on PCI, choosing the transport, and delivering
 * their interrupts (INTx through the IOAPIC, or polling from the timer). */
#include <stdio.h>
#include "drivers/pci/msix.h"
#include "drivers/pci/pci_irq.h"
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/virtio_pci.h"
#include "kernel/arch/irq_route.h"
#include "kernel/arch/lapic.h"
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

/* With MSI-X the vector says what happened; the ISR is not read (4.1.4.5). */
static void msix_config_handler(void *ctx)
{
	struct virtio_pci *vp = ctx;
	if (vp->vd.interrupt)
		vp->vd.interrupt(&vp->vd, VIRTIO_ISR_CONFIG);
}

static void msix_queue_handler(void *ctx)
{
	struct virtio_pci *vp = ctx;
	if (vp->vd.interrupt)
		vp->vd.interrupt(&vp->vd, VIRTIO_ISR_QUEUE);
}

/* One entry for everything: either may have happened, so the driver looks
 * at both (its queues' used rings, and the config for a change). */
static void msix_shared_handler(void *ctx)
{
	struct virtio_pci *vp = ctx;
	if (vp->vd.interrupt)
		vp->vd.interrupt(&vp->vd, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
}

/* MSI-X for modern devices that offer it (QEMU 10.0's balloon has two
 * entries by default, 7.2's has none): entry 0 for config changes and
 * entry 1 for the queues, or with a one-entry table both on entry 0.
 * Returns 0 if it is on. */
static int setup_msix(struct virtio_pci *vp)
{
	const struct pci_dev *d = vp->pci;
	uint64_t sizes[PCI_BARS];
	bool io[PCI_BARS];
	for (unsigned i = 0; i < PCI_BARS; i++) {
		sizes[i] = d->bar[i].size;
		io[i] = d->bar[i].is_io;
	}
	struct msix_info mi;
	int found = msix_parse(pci_cfg_read8, d, sizes, io, &mi);
	if (found <= 0 || !vp->modern) {
		if (found < 0)
			klog("%s: malformed MSI-X capability; not using it", vp->vd.name);
		return -1;
	}
	volatile uint8_t *table = pci_map_bar(d, mi.table_bar, mi.table_offset,
	                                      (uint64_t)mi.table_size * MSIX_ENTRY_SIZE);
	if (!table)
		return -1;
	bool shared = mi.table_size == 1;
	int vconfig = irq_alloc_msi(shared ? msix_shared_handler : msix_config_handler, vp,
	                            shared ? "balloon" : "balloon-config");
	int vqueue = shared ? vconfig : irq_alloc_msi(msix_queue_handler, vp, "balloon-queues");
	if (vconfig < 0 || vqueue < 0)
		return -1;
	vp->queue_entry = shared ? VIRTIO_PCI_MSIX_CONFIG_ENTRY : VIRTIO_PCI_MSIX_QUEUE_ENTRY;
	uint32_t addr, data;
	msix_message(lapic_id(), (uint8_t)vconfig, &addr, &data);
	msix_program_entry(table, mi.table_size, VIRTIO_PCI_MSIX_CONFIG_ENTRY, addr, data);
	if (!shared) {
		msix_message(lapic_id(), (uint8_t)vqueue, &addr, &data);
		msix_program_entry(table, mi.table_size, VIRTIO_PCI_MSIX_QUEUE_ENTRY, addr, data);
	}
	uint16_t ctrl = pci_read16(d, mi.cap + PCI_MSIX_CTRL);
	pci_write16(d, mi.cap + PCI_MSIX_CTRL, (ctrl | PCI_MSIX_CTRL_ENABLE) & ~PCI_MSIX_CTRL_MASKALL);
	pci_write16(d, PCI_COMMAND, pci_read16(d, PCI_COMMAND) | PCI_COMMAND_INTX_DISABLE);
	vp->msix = true;
	vp->vd.irq_mode = shared ? "msix-shared" : "msix";
	kdebug("%s: interrupts: MSI-X, %u table entries, vectors 0x%x (config) 0x%x (queues)", vp->vd.name,
	       mi.table_size, vconfig, vqueue);
	return 0;
}

static uint16_t virtio_type(const struct pci_dev *d)
{
	if (d->device >= VIRTIO_PCI_DEVICE_MODERN)
		return (uint16_t)(d->device - VIRTIO_PCI_DEVICE_MODERN);
	return pci_read16(d, PCI_SUBSYSTEM_ID);
}

static void setup_delivery(struct virtio_pci *vp, bool polled)
{
	if (!polled && setup_msix(vp) == 0)
		return;
	if (!polled) {
		int vector = pci_route_intx(vp->pci, intx_handler, vp, "balloon-intx");
		if (vector >= 0) {
			vp->vd.irq_mode = "intx";
			kdebug("%s: interrupts: INTx, vector 0x%x", vp->vd.name, vector);
			return;
		}
		klog("%s: no INTx route; falling back to polling", vp->vd.name);
	}
	timer_add_tick_handler(poll_handler, vp);
	vp->vd.irq_mode = "polled";
	kdebug("%s: interrupts: polled every %u ms", vp->vd.name, TIMER_TICK_MS);
}

/* Returns whether the device could be driven (a usable transport): one
 * that cannot is logged here and does not count as found. */
static bool probe_one(struct pci_dev *d, const struct virtio_driver *drv, bool polled)
{
	if (device_count >= VIRTIO_PCI_MAX_DEVICES) {
		klog("virtio-pci: more than %d devices; ignoring %02x:%02x.%x", VIRTIO_PCI_MAX_DEVICES, d->bus, d->dev,
		     d->fn);
		return false;
	}
	struct virtio_pci *vp = &devices[device_count];
	char *name = names[device_count];
	snprintf(name, VIRTIO_NAME_MAX, "%s %02x:%02x.%x", drv->name, d->bus, d->dev, d->fn);
	*vp = (struct virtio_pci){ .pci = d, .vd = { .name = name } };
	vp->vd.transport = vp;
	pci_enable(d);
	/* modern whenever the device offers it; legacy for disable-modern=on */
	if (virtio_pci_modern_init(vp) < 0 && virtio_pci_legacy_init(vp) < 0) {
		klog("%s: neither modern nor legacy transport usable", name);
		return false;
	}
	device_count++;
	d->claimed = true;
	kdebug("%s: transport %s", name, vp->vd.ops->name);
	setup_delivery(vp, polled);
	if (drv->probe(&vp->vd) < 0)
		klog("%s: driver probe failed", name);
	return true;
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
				found += probe_one(d, &drivers[k], polled);
			}
	}
	return found;
}
