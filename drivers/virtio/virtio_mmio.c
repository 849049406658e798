/* The virtio-mmio transport, both register layouts, behind the same ops
 * table as virtio-pci: the ring, handshake and balloon code are shared. */
#include <stdio.h>
#include <string.h>
#include "drivers/virtio/virtio.h"
#include "drivers/virtio/virtio_mmio.h"
#include "drivers/virtio/virtqueue.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"
#include "kernel/mm/pmm.h"

#define VIRTIO_MMIO_MAX_DEVICES 8
#define VIRTIO_MMIO_CMDLINE_KEY "virtio_mmio.device="
#define MMIO_WORD_MAX 64
#define WHERE_MAX 24
#define IRQ_NAME_MAX 24

struct virtio_mmio {
	struct virtio_dev vd;
	volatile uint8_t *regs;
	uint32_t version;
	char irq_name[IRQ_NAME_MAX];
};

static struct virtio_mmio devices[VIRTIO_MMIO_MAX_DEVICES];
static unsigned device_count;

static struct virtio_mmio *to_vm(struct virtio_dev *vd) { return vd->transport; }
static uint32_t rd(struct virtio_dev *vd, unsigned reg) { return mmio_read32(to_vm(vd)->regs + reg); }
static void wr(struct virtio_dev *vd, unsigned reg, uint32_t v) { mmio_write32(to_vm(vd)->regs + reg, v); }

static uint8_t mmio_get_status(struct virtio_dev *vd) { return (uint8_t)rd(vd, VIRTIO_MMIO_STATUS); }
static void mmio_set_status(struct virtio_dev *vd, uint8_t s) { wr(vd, VIRTIO_MMIO_STATUS, s); }

static uint64_t mmio_get_features(struct virtio_dev *vd)
{
	wr(vd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = rd(vd, VIRTIO_MMIO_DEVICE_FEATURES);
	if (to_vm(vd)->version == VIRTIO_MMIO_LEGACY)
		return lo; /* legacy: the low 32 bits are the whole story */
	wr(vd, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return (uint64_t)rd(vd, VIRTIO_MMIO_DEVICE_FEATURES) << 32 | lo;
}

static void mmio_set_features(struct virtio_dev *vd, uint64_t f)
{
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(vd, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

static uint32_t mmio_generation(struct virtio_dev *vd)
{
	return to_vm(vd)->version == VIRTIO_MMIO_MODERN ? rd(vd, VIRTIO_MMIO_CONFIG_GENERATION) : 0;
}

static uint32_t mmio_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	return mmio_read_width(to_vm(vd)->regs + VIRTIO_MMIO_CONFIG + off, width);
}

static void mmio_config_write(struct virtio_dev *vd, unsigned off, unsigned width, uint32_t v)
{
	mmio_write_width(to_vm(vd)->regs + VIRTIO_MMIO_CONFIG + off, width, v);
}

static uint32_t mmio_queue_max_size(struct virtio_dev *vd, unsigned index)
{
	wr(vd, VIRTIO_MMIO_QUEUE_SEL, index);
	return rd(vd, VIRTIO_MMIO_QUEUE_NUM_MAX);
}

static void mmio_notify(struct virtqueue *vq) { mmio_write32(vq->notify_addr, vq->index); }

static int mmio_queue_activate(struct virtio_dev *vd, struct virtqueue *vq)
{
	wr(vd, VIRTIO_MMIO_QUEUE_SEL, vq->index);
	wr(vd, VIRTIO_MMIO_QUEUE_NUM, vq->size);
	vq->notify_addr = to_vm(vd)->regs + VIRTIO_MMIO_QUEUE_NOTIFY;
	vq->notify = mmio_notify;
	if (to_vm(vd)->version == VIRTIO_MMIO_LEGACY) {
		if (vq->packed)
			return -1; /* packed rings need VERSION_1: negotiation never gives them here */
		/* the legacy layout, with the used ring on the next page */
		if (vq->desc_phys & (PAGE_SIZE - 1) || (vq->desc_phys >> PAGE_SHIFT) > UINT32_MAX)
			return -1;
		wr(vd, VIRTIO_MMIO_GUEST_PAGE_SIZE, PAGE_SIZE);
		wr(vd, VIRTIO_MMIO_QUEUE_ALIGN, VRING_USED_ALIGN);
		wr(vd, VIRTIO_MMIO_QUEUE_PFN, (uint32_t)(vq->desc_phys >> PAGE_SHIFT));
		return 0;
	}
	/* the driver area is the split ring's avail ring or the packed ring's
	 * driver event area, the device area its used ring or device event area */
	wr(vd, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq->desc_phys);
	wr(vd, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq->desc_phys >> 32));
	wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)vq->driver_phys);
	wr(vd, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(vq->driver_phys >> 32));
	wr(vd, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)vq->device_phys);
	wr(vd, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(vq->device_phys >> 32));
	wr(vd, VIRTIO_MMIO_QUEUE_READY, 1);
	return 0;
}

/* Reading the status and acknowledging it lowers the interrupt line. */
static uint8_t mmio_read_isr(struct virtio_dev *vd)
{
	uint32_t status = rd(vd, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (status)
		wr(vd, VIRTIO_MMIO_INTERRUPT_ACK, status);
	return (uint8_t)status;
}

static const struct virtio_ops mmio_modern_ops = {
	.name = "mmio-modern", .modern = true,
	.get_status = mmio_get_status, .set_status = mmio_set_status,
	.get_features = mmio_get_features, .set_features = mmio_set_features,
	.config_generation = mmio_generation, .config_read = mmio_config_read, .config_write = mmio_config_write,
	.queue_max_size = mmio_queue_max_size, .queue_activate = mmio_queue_activate,
};

static const struct virtio_ops mmio_legacy_ops = {
	.name = "mmio-legacy", .modern = false,
	.get_status = mmio_get_status, .set_status = mmio_set_status,
	.get_features = mmio_get_features, .set_features = mmio_set_features,
	.config_generation = mmio_generation, .config_read = mmio_config_read, .config_write = mmio_config_write,
	.queue_max_size = mmio_queue_max_size, .queue_activate = mmio_queue_activate,
};

static void mmio_deliver(void *ctx)
{
	struct virtio_mmio *vm = ctx;
	uint8_t isr = mmio_read_isr(&vm->vd);
	if (isr)
		virtio_interrupt(&vm->vd, isr);
}

static unsigned probe_one(uint64_t size, uint64_t base, uint32_t irq, bool polled)
{
	if (size > VIRTIO_MMIO_MAP_MAX)
		size = VIRTIO_MMIO_MAP_MAX;
	volatile uint8_t *regs = paging_map_mmio(base, size);
	if (!regs || device_count >= VIRTIO_MMIO_MAX_DEVICES)
		return 0;
	uint32_t magic = mmio_read32(regs + VIRTIO_MMIO_MAGIC_VALUE);
	uint32_t version = mmio_read32(regs + VIRTIO_MMIO_VERSION);
	uint32_t id = mmio_read32(regs + VIRTIO_MMIO_DEVICE_ID);
	if (magic != VIRTIO_MMIO_MAGIC || (version != VIRTIO_MMIO_LEGACY && version != VIRTIO_MMIO_MODERN)) {
		klog("virtio-mmio at 0x%" PRIx64 ": bad magic 0x%x or version %u", base, magic, version);
		return 0;
	}
	const struct virtio_driver *drv = virtio_driver_for((uint16_t)id);
	if (!drv)
		return 0; /* 0 is an empty slot; other devices have no driver here */
	struct virtio_mmio *vm = &devices[device_count++];
	char where[WHERE_MAX];
	snprintf(where, sizeof(where), "mmio@0x%" PRIx64, base);
	*vm = (struct virtio_mmio){ .regs = regs, .version = version,
	                            .vd = { .config_size = (unsigned)(size - VIRTIO_MMIO_CONFIG) } };
	snprintf(vm->vd.name, sizeof(vm->vd.name), "%s %s", drv->name, where);
	snprintf(vm->irq_name, sizeof(vm->irq_name), "%s-gsi", drv->short_name);
	vm->vd.transport = vm;
	vm->vd.ops = version == VIRTIO_MMIO_MODERN ? &mmio_modern_ops : &mmio_legacy_ops;
	kdebug("%s: transport %s, irq %u", vm->vd.name, vm->vd.ops->name, irq);
	if (polled || irq_route_gsi(irq, true, false, mmio_deliver, vm, vm->irq_name) < 0) {
		timer_add_tick_handler(mmio_deliver, vm);
		vm->vd.irq_mode = "polled";
		kdebug("%s: interrupts: polled every %u ms", vm->vd.name, TIMER_TICK_MS);
	} else {
		vm->vd.irq_mode = "gsi";
		kdebug("%s: interrupts: GSI %u, level-triggered", vm->vd.name, irq);
	}
	return virtio_dev_add(&vm->vd, (uint16_t)id, where);
}

unsigned virtio_mmio_probe_all(const char *cmdline, bool polled)
{
	unsigned found = 0;
	size_t key_len = strlen(VIRTIO_MMIO_CMDLINE_KEY);
	for (const char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		size_t len = (size_t)(p - word);
		if (len <= key_len || len - key_len >= MMIO_WORD_MAX || strncmp(word, VIRTIO_MMIO_CMDLINE_KEY, key_len))
			continue;
		char value[MMIO_WORD_MAX];
		memcpy(value, word + key_len, len - key_len);
		value[len - key_len] = '\0';
		uint64_t size, base;
		uint32_t irq;
		if (!virtio_mmio_parse_device(value, &size, &base, &irq)) {
			klog("virtio-mmio: ignoring malformed '%s'", value);
			continue;
		}
		found += probe_one(size, base, irq, polled);
	}
	return found;
}
