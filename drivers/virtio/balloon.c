/* virtio-balloon (virtio 1.2, 5.5): bring-up, the host's target, the tick.
 * The driver never touches a register: the core and the queue API do. */
#include <string.h>
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/balloon_priv.h"
#include "drivers/virtio/balloon_spec.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

/* A target the reserve stopped is tried again every second, in case memory
 * was freed since. */
#define BALLOON_RETRY_TICKS (1000 / TIMER_TICK_MS)
/* Free page reporting runs every two seconds, as Linux's does. */
#define BALLOON_REPORT_TICKS (2000 / TIMER_TICK_MS)

static struct balloon the_balloon;
static bool probed;

struct balloon *balloon_current(void) { return probed ? &the_balloon : NULL; }

void balloon_config_changed(struct virtio_dev *vd)
{
	struct balloon *b = vd->priv;
	uint32_t target;
	/* a virtio 1.x device that hit an error sets NEEDS_RESET and signals a
	 * config change (QEMU's virtio_error does): stop trusting it */
	if (virtio_needs_reset(vd)) {
		virtio_fail(vd, "device set DEVICE_NEEDS_RESET");
		return;
	}
	if (virtio_config_read32(vd, VIRTIO_BALLOON_CFG_NUM_PAGES, &target) < 0)
		return;
	if (target != b->pg.target) {
		struct mm_stats s;
		mm_stats(&s);
		/* any value is a legal request; one beyond memory is met as far as
		 * the reserve allows, and said so */
		klog("%s: host target num_pages=%u (balloon holds %" PRIu64 ")%s", vd->name, target, b->pg.pages,
		     target > s.usable_pages ? ", more than the guest's memory" : "");
		b->pg.short_logged = false;
	}
	b->pg.target = target;
	work_queue(&b->work);
}

static void balloon_work(void *ctx)
{
	struct balloon *b = ctx;
	balloon_pages_work(b);
	balloon_report_work(b);
}

static void balloon_tick(void *ctx)
{
	struct balloon *b = ctx;
	b->ticks++;
	stats_service(b); /* a delayed answer that has come due */
	if (b->ticks % BALLOON_RETRY_TICKS == 0 && b->pg.pages + b->pg.inflating < b->pg.target)
		work_queue(&b->work);
	if (b->rep.enabled && b->ticks % BALLOON_REPORT_TICKS == 0) {
		b->rep.due = true;
		work_queue(&b->work);
	}
}

/* The inflate and deflate queues' interrupts: the page movement runs as work. */
static void pages_vq_done(struct virtqueue *vq)
{
	struct balloon *b = vq->priv;
	work_queue(&b->work);
}

int balloon_probe(struct virtio_dev *vd)
{
	struct balloon *b = &the_balloon;
	if (probed) {
		klog("%s: a second balloon is not supported; ignored", vd->name);
		return -1;
	}
	*b = (struct balloon){ .vd = vd, .work = { .fn = balloon_work, .ctx = b } };
	vd->priv = b;
	probed = true; /* from here on the console sees it, failed or not */
	uint64_t wanted = 1ull << VIRTIO_BALLOON_F_STATS_VQ | 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
	                  1ull << VIRTIO_BALLOON_F_PAGE_POISON | 1ull << VIRTIO_BALLOON_F_REPORTING;
	if (virtio_negotiate(vd, wanted, 0) < 0)
		return -1;
	if (vd->config_size < sizeof(struct virtio_balloon_config) - 2 * sizeof(uint32_t)) {
		virtio_fail(vd, "device configuration too small");
		return -1;
	}
	b->pg.inflate_vq = virtio_vq_setup(vd, VIRTIO_BALLOON_VQ_INFLATE, "inflate", pages_vq_done, b);
	b->pg.deflate_vq = virtio_vq_setup(vd, VIRTIO_BALLOON_VQ_DEFLATE, "deflate", pages_vq_done, b);
	if (!b->pg.inflate_vq || !b->pg.deflate_vq) {
		virtio_fail(vd, "queue setup failed");
		return -1;
	}
	if (virtio_has(vd, VIRTIO_BALLOON_F_STATS_VQ) && balloon_stats_init(b, VIRTIO_BALLOON_VQ_STATS) < 0) {
		virtio_fail(vd, "statistics queue setup failed");
		return -1;
	}
	if (balloon_pages_init(b) < 0) {
		virtio_fail(vd, "no memory for the PFN buffers");
		return -1;
	}
	if (balloon_report_init(b) < 0) {
		virtio_fail(vd, "free page reporting or page poison setup failed");
		return -1;
	}
	virtio_driver_ok(vd);
	/* the one line a device gets in the default log: everything a user
	 * needs to know about how it was brought up */
	bool packed = virtio_has(vd, VIRTIO_F_RING_PACKED);
	klog("%s: up transport=%s interrupts=%s offered=0x%" PRIx64 " accepted=0x%" PRIx64
	     " rings=%s stats=%s event_idx=%s deflate_on_oom=%s reporting=%s page_poison=%s",
	     vd->name, virtio_transport_name(vd), vd->irq_mode ? vd->irq_mode : "none", vd->offered, vd->features,
	     packed ? "packed" : "split", b->stats.vq ? "on" : "off", virtio_has(vd, VIRTIO_F_EVENT_IDX) ? "on" : "off",
	     b->pg.deflate_on_oom ? "on" : "off", b->rep.enabled ? "on" : "off", b->rep.poison ? "on" : "off");
	if (b->stats.vq)
		stats_prime(b); /* the initial buffer the spec requires */
	balloon_config_changed(vd);
	timer_add_tick_handler(balloon_tick, b);
	return 0;
}
