/* Finding virtio devices on PCI, choosing the transport, and delivering
 * their interrupts: MSI-X (a vector for config changes and one for the
 * queues, or one per queue, or one for everything), INTx through the
 * IOAPIC, or polling from the timer. */
#include <stdio.h>
#include <stddef.h>
#include "drivers/pci/msix.h"
#include "drivers/pci/pci_irq.h"
#include "drivers/virtio/virtio_pci.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/arch/lapic.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"

#define VIRTIO_PCI_MAX_DEVICES 4
#define WHERE_MAX 16

static struct virtio_pci devices[VIRTIO_PCI_MAX_DEVICES];
static unsigned device_count;

static uint8_t read_isr(struct virtio_pci *vp)
{
	return vp->modern ? mmio_read8(vp->isr.base) : inb((uint16_t)(vp->io_base + VIRTIO_LEGACY_ISR));
}

/* A line (INTx, shared and level-triggered, or the timer's poll): every
 * device on it is asked; reading its ISR both says whether it interrupted
 * and lowers its line. */
static void line_handler(void *ctx)
{
	struct virtio_pci *vp = ctx;
	uint8_t isr = read_isr(vp);
	if (isr)
		virtio_interrupt(&vp->vd, isr);
}

/* With MSI-X the vector says what happened; the ISR is not read (4.1.4.5). */
static void msix_config_handler(void *ctx) { virtio_interrupt(ctx, VIRTIO_ISR_CONFIG); }
static void msix_queues_handler(void *ctx) { virtio_interrupt(ctx, VIRTIO_ISR_QUEUE); }
static void msix_one_handler(void *ctx) { virtio_interrupt(ctx, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG); }
static void msix_vq_handler(void *ctx) { virtio_vq_interrupt(ctx); }

static const char *vp_irq_name(struct virtio_pci *vp, unsigned slot, const char *what)
{
	snprintf(vp->irq_names[slot], VIRTIO_PCI_IRQ_NAME_MAX, "%s%s%s", vp->short_name, *what ? "-" : "", what);
	return vp->irq_names[slot];
}

/* Programs MSI-X entry `entry` with a fresh vector running fn(ctx). */
static int msix_entry(struct virtio_pci *vp, uint16_t entry, irq_handler_fn fn, void *ctx, const char *name)
{
	int vector = irq_alloc_msi(fn, ctx, name);
	if (vector < 0)
		return -1;
	uint32_t addr, data;
	msix_message(lapic_id(), (uint8_t)vector, &addr, &data);
	return msix_program_entry(vp->msix_table, vp->msix_entries, entry, addr, data) < 0 ? -1 : vector;
}

/* MSI-X for modern devices that offer it (QEMU 10.0's balloon has two
 * entries by default, 7.2's none). Entry 0 takes config changes; what the
 * queues get depends on the table's size against the device's queue count.
 * Returns 0 if MSI-X is on. */
static int setup_msix(struct virtio_pci *vp, unsigned queues)
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
	vp->msix_table = pci_map_bar(d, mi.table_bar, mi.table_offset, (uint64_t)mi.table_size * MSIX_ENTRY_SIZE);
	if (!vp->msix_table)
		return -1;
	vp->msix_entries = mi.table_size;
	enum virtio_pci_msix mode = mi.table_size == 1 ? VIRTIO_PCI_MSIX_ONE
	                            : mi.table_size > queues ? VIRTIO_PCI_MSIX_PER_QUEUE : VIRTIO_PCI_MSIX_QUEUES;
	int config = msix_entry(vp, VIRTIO_PCI_MSIX_CONFIG_ENTRY,
	                        mode == VIRTIO_PCI_MSIX_ONE ? msix_one_handler : msix_config_handler, &vp->vd,
	                        vp_irq_name(vp, 0, mode == VIRTIO_PCI_MSIX_ONE ? "" : "config"));
	int shared = mode == VIRTIO_PCI_MSIX_QUEUES
	                 ? msix_entry(vp, VIRTIO_PCI_MSIX_QUEUE_ENTRY, msix_queues_handler, &vp->vd, vp_irq_name(vp, 1, "queues"))
	                 : 0;
	if (config < 0 || shared < 0)
		return -1;
	vp->msix_next = VIRTIO_PCI_MSIX_QUEUE_ENTRY;
	uint16_t ctrl = pci_read16(d, mi.cap + PCI_MSIX_CTRL);
	pci_write16(d, mi.cap + PCI_MSIX_CTRL, (ctrl | PCI_MSIX_CTRL_ENABLE) & ~PCI_MSIX_CTRL_MASKALL);
	pci_write16(d, PCI_COMMAND, pci_read16(d, PCI_COMMAND) | PCI_COMMAND_INTX_DISABLE);
	vp->msix = mode;
	vp->vd.irq_mode = mode == VIRTIO_PCI_MSIX_ONE ? "msix-shared" : mode == VIRTIO_PCI_MSIX_QUEUES ? "msix" : "msix-vq";
	kdebug("%s: interrupts: MSI-X, %u table entries for %u queues, vectors 0x%x (config) %s", vp->vd.name,
	       mi.table_size, queues, config,
	       mode == VIRTIO_PCI_MSIX_ONE ? "(queues too)" : mode == VIRTIO_PCI_MSIX_QUEUES ? "and one for the queues"
	                                                                                : "and one per queue");
	return 0;
}

int virtio_pci_queue_vector(struct virtio_pci *vp, struct virtqueue *vq)
{
	switch (vp->msix) {
	case VIRTIO_PCI_MSIX_OFF:
		return VIRTIO_NO_VECTOR;
	case VIRTIO_PCI_MSIX_ONE:
		return VIRTIO_PCI_MSIX_CONFIG_ENTRY;
	case VIRTIO_PCI_MSIX_QUEUES:
		return VIRTIO_PCI_MSIX_QUEUE_ENTRY;
	case VIRTIO_PCI_MSIX_PER_QUEUE:
		break;
	}
	uint16_t entry = vp->msix_next;
	if (entry >= vp->msix_entries)
		return -1;
	if (msix_entry(vp, entry, msix_vq_handler, vq, vp_irq_name(vp, 2 + vq->index, vq->name)) < 0)
		return -1;
	vp->msix_next++;
	return entry;
}

static uint16_t virtio_type(const struct pci_dev *d)
{
	if (d->device >= VIRTIO_PCI_DEVICE_MODERN)
		return (uint16_t)(d->device - VIRTIO_PCI_DEVICE_MODERN);
	return pci_read16(d, PCI_SUBSYSTEM_ID);
}

static void setup_delivery(struct virtio_pci *vp, bool polled)
{
	unsigned queues = vp->modern ? mmio_read16(vp->common.base + offsetof(struct virtio_pci_common_cfg, num_queues)) : 0;
	if (!polled && setup_msix(vp, queues) == 0)
		return;
	if (!polled) {
		int vector = pci_route_intx(vp->pci, line_handler, vp, vp_irq_name(vp, 0, "intx"));
		if (vector >= 0) {
			vp->vd.irq_mode = "intx";
			kdebug("%s: interrupts: INTx, vector 0x%x", vp->vd.name, vector);
			return;
		}
		klog("%s: no INTx route; falling back to polling", vp->vd.name);
	}
	timer_add_tick_handler(line_handler, vp);
	vp->vd.irq_mode = "polled";
	kdebug("%s: interrupts: polled every %u ms", vp->vd.name, TIMER_TICK_MS);
}

/* Returns whether the device could be driven (a usable transport): one
 * that cannot is logged here and does not count as found. */
static bool probe_one(struct pci_dev *d, const struct virtio_driver *drv, uint16_t type, bool polled)
{
	char where[WHERE_MAX];
	snprintf(where, sizeof(where), "%02x:%02x.%x", d->bus, d->dev, d->fn);
	if (device_count >= VIRTIO_PCI_MAX_DEVICES) {
		klog("virtio-pci: more than %d devices; ignoring %s", VIRTIO_PCI_MAX_DEVICES, where);
		return false;
	}
	struct virtio_pci *vp = &devices[device_count];
	*vp = (struct virtio_pci){ .pci = d, .short_name = drv->short_name };
	snprintf(vp->vd.name, sizeof(vp->vd.name), "%s %s", drv->name, where); /* for the transport's own lines */
	vp->vd.transport = vp;
	pci_enable(d);
	/* modern whenever the device offers it; legacy for disable-modern=on */
	if (virtio_pci_modern_init(vp) < 0 && virtio_pci_legacy_init(vp) < 0) {
		klog("%s: neither modern nor legacy transport usable", vp->vd.name);
		return false;
	}
	device_count++;
	d->claimed = true;
	kdebug("%s: transport %s", vp->vd.name, vp->vd.ops->name);
	setup_delivery(vp, polled);
	return virtio_dev_add(&vp->vd, type, where);
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
		const struct virtio_driver *drv = virtio_driver_for(type);
		if (drv)
			found += probe_one(d, drv, type, polled);
	}
	return found;
}
