/* virtio-balloon bring-up and the statistics queue.
 *
 * The stats protocol (5.5.6.3): the driver keeps one buffer on the stats
 * queue. The host takes it, and when it wants fresh numbers it hands the
 * buffer back (used ring, interrupt); the driver refills it from a new
 * snapshot and adds it again, and that addition is the answer. All of it
 * runs in the interrupt handler, so an answer never waits for the idle
 * loop. */
#include <string.h>
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/balloon_priv.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

struct balloon balloon;


/* Modern transports let the driver choose a smaller ring; this many entries
 * are more than the balloon ever has in flight. Legacy ones impose theirs
 * (QEMU 10.0's: 1024). */
#define BALLOON_QUEUE_SIZE_PREFERRED 256

static unsigned order_for(uint64_t bytes)
{
	unsigned order = 0;
	while ((PAGE_SIZE << order) < bytes)
		order++;
	return order;
}

int balloon_setup_queue(struct balloon *b, struct virtqueue *vq, unsigned index)
{
	struct virtio_dev *vd = b->vd;
	uint32_t max = vd->ops->queue_max_size(vd, index);
	uint32_t size = max;
	if (!vd->ops->fixed_queue_size && size > BALLOON_QUEUE_SIZE_PREFERRED)
		size = BALLOON_QUEUE_SIZE_PREFERRED;
	if (max == 0 || size > VQ_MAX_SIZE || (size & (size - 1))) {
		klog("%s: queue %u has unusable size %u", vd->name, index, max);
		return -1;
	}
	unsigned ring_order = order_for(vq_ring_bytes(size)), state_order = order_for(vq_state_bytes(size));
	if (ring_order > PMM_MAX_ORDER || state_order > PMM_MAX_ORDER) {
		klog("%s: queue %u of size %u needs more contiguous memory than the allocator gives", vd->name, index, size);
		return -1;
	}
	uint64_t pa = page_alloc(ring_order);
	if (pa == PMM_NO_PAGE)
		return -1;
	uint64_t state = page_alloc(state_order);
	if (state == PMM_NO_PAGE) {
		page_free(pa, ring_order);
		return -1;
	}
	memset(phys_to_virt(pa), 0, PAGE_SIZE << ring_order);
	vq_init(vq, (uint16_t)index, size, phys_to_virt(pa), pa, phys_to_virt(state), virtio_has(vd, VIRTIO_F_EVENT_IDX));
	return vd->ops->queue_activate(vd, vq);
}

/* A used entry the device should not have produced: the device is broken. */
static void check_broken(struct balloon *b, struct virtqueue *vq)
{
	if (!vq->broken)
		return;
	klog("%s: queue %u: %s (id=%" PRIu64 " len=%" PRIu64 ")", b->vd->name, vq->index, vq->broken_reason,
	     vq->bad_id, vq->bad_len);
	virtio_fail(b->vd, "bad used-ring entry");
}

static void kick(struct balloon *b, struct virtqueue *vq)
{
	bool notify = vq_kick_prepare(vq);
	/* the answer is out when the device is told (or, suppressed, when it is
	 * published): what the host does with the notify is the host's time */
	b->kicked_tsc = rdtsc();
	if (notify)
		b->vd->ops->notify(b->vd, vq);
}

/* Builds a buffer from one fresh snapshot as the plan says. */
static size_t stats_fill(struct balloon *b, void *buf, bool first)
{
	struct mm_stats s;
	struct balloon_stat_values vals;
	mm_stats(&s);
	balloon_stats_from_mm(&s, &vals);
	return stats_plan_build(&b->plan, &vals, first, buf, PAGE_SIZE);
}

/* After the kick, never before: the log gets the bytes as they were sent
 * and formats them later, away from the answer path. */
static void stats_log(uint64_t seq, const void *buf, size_t bytes)
{
	struct balloon_stats_logged h = { .seq = seq, .len = (uint32_t)bytes };
	log_defer(balloon_stats_line_piece, &h, sizeof(h), buf, (uint32_t)bytes);
}

/* Adds one stats buffer and kicks; the answer is given once it is added. */
static int stats_add(struct balloon *b, void *buf, uint64_t phys, bool first, void *token)
{
	size_t bytes = stats_fill(b, buf, first);
	struct vq_buf vb = { phys, (uint32_t)bytes };
	if (vq_add(&b->stats_vq, &vb, 1, 0, token) < 0)
		return -1;
	kick(b, &b->stats_vq);
	b->stats_seq++;
	stats_log(b->stats_seq, buf, bytes);
	return 0;
}

void balloon_stats_answer(struct balloon *b)
{
	b->answer_due = false;
	if (stats_add(b, b->stats_buf, b->stats_buf_phys, !b->stats_primed, b) < 0) {
		klog("%s: stats buffer could not be added", b->vd->name);
		return;
	}
	b->stats_primed = true;
	b->stats_held = false;
}

int balloon_stats_extra(struct balloon *b)
{
	if (b->extra_in_flight || !b->extra_buf)
		return -1;
	if (stats_add(b, b->extra_buf, b->extra_phys, false, &b->extra_buf) < 0)
		return -1;
	b->extra_in_flight = true;
	return 0;
}

static void record_latency(struct balloon *b, uint64_t ticks)
{
	b->latency[b->latency_count % BALLOON_LATENCY_SAMPLES] = ticks;
	b->latency_count++;
}

static void stats_used(struct balloon *b)
{
	uint32_t len;
	uint64_t t0 = irq_entry_tsc(); /* (polled: the timer's interrupt, a tick early at most) */
	void *token;
	while ((token = vq_get_used(&b->stats_vq, &len))) {
		if (token == &b->extra_buf) {
			/* the one-shot second buffer is retired, not answered: answering
			 * both would make the host swap them back and forth for ever */
			b->extra_in_flight = false;
			klog("%s: stats: the host handed back the extra buffer", b->vd->name);
			continue;
		}
		b->stats_requests++;
		b->stats_held = true;
		if (b->stats_paused)
			continue; /* a buggy guest: keep the buffer */
		if (b->delay_ms) {
			b->answer_due = true;
			b->due_tsc = t0 + tsc_khz() * b->delay_ms;
			continue;
		}
		balloon_stats_answer(b);
		record_latency(b, b->kicked_tsc - t0); /* the interrupt to the kick */
	}
	check_broken(b, &b->stats_vq);
}

static void balloon_interrupt(struct virtio_dev *vd, uint8_t isr)
{
	struct balloon *b = vd->driver;
	if (vd->failed)
		return;
	if (isr & VIRTIO_ISR_QUEUE) {
		if (b->has_stats)
			stats_used(b);
		work_queue(&b->work); /* inflate and deflate buffers the host is done with */
	}
	if (isr & VIRTIO_ISR_CONFIG)
		balloon_config_changed(b);
}

void balloon_config_changed(struct balloon *b)
{
	uint32_t target;
	/* a virtio 1.x device that hit an error sets NEEDS_RESET and signals a
	 * config change (QEMU's virtio_error does): stop trusting it */
	if (virtio_needs_reset(b->vd)) {
		virtio_fail(b->vd, "device set DEVICE_NEEDS_RESET");
		return;
	}
	if (virtio_config_read32(b->vd, VIRTIO_BALLOON_CFG_NUM_PAGES, &target) < 0)
		return;
	if (target != b->target_pages) {
		struct mm_stats s;
		mm_stats(&s);
		/* any value is a legal request; one beyond memory is met as far as
		 * the reserve allows, and said so */
		klog("%s: host target num_pages=%u (balloon holds %" PRIu64 ")%s", b->vd->name, target, b->pages,
		     target > s.usable_pages ? ", more than the guest's memory" : "");
		b->short_logged = false;
	}
	b->target_pages = target;
	work_queue(&b->work);
}

/* A target the reserve stopped is tried again every second, in case memory
 * was freed since. */
#define BALLOON_RETRY_TICKS (1000 / TIMER_TICK_MS)

/* Free page reporting runs every two seconds, as Linux's does. */
#define BALLOON_REPORT_TICKS (2000 / TIMER_TICK_MS)

static void balloon_tick(void *ctx)
{
	struct balloon *b = ctx;
	b->ticks++;
	if (b->answer_due && !b->stats_paused && rdtsc() >= b->due_tsc && !b->vd->failed)
		balloon_stats_answer(b);
	if (b->ticks % BALLOON_RETRY_TICKS == 0 && b->pages + b->inflating < b->target_pages)
		work_queue(&b->work);
	if (b->reporting && b->ticks % BALLOON_REPORT_TICKS == 0) {
		b->report_due = true;
		work_queue(&b->work);
	}
}

int balloon_probe(struct virtio_dev *vd)
{
	struct balloon *b = &balloon;
	if (b->vd) {
		klog("%s: a second balloon is not supported; ignored", vd->name);
		return -1;
	}
	/* the boot-time stats settings (balloon_configure) survive the reset */
	struct stats_plan plan = b->plan;
	uint32_t delay_ms = b->delay_ms;
	bool paused = b->stats_paused;
	*b = (struct balloon){ .vd = vd, .plan = plan, .delay_ms = delay_ms, .stats_paused = paused };
	vd->driver = b;
	uint64_t wanted = 1ull << VIRTIO_BALLOON_F_STATS_VQ | 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM |
	                  1ull << VIRTIO_BALLOON_F_PAGE_POISON | 1ull << VIRTIO_BALLOON_F_REPORTING |
	                  1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX;
	uint64_t required = vd->ops->modern ? 1ull << VIRTIO_F_VERSION_1 : 0;
	if (virtio_negotiate(vd, wanted, required) < 0)
		return -1;
	b->has_stats = virtio_has(vd, VIRTIO_BALLOON_F_STATS_VQ);
	if (vd->config_size < sizeof(struct virtio_balloon_config) - 2 * sizeof(uint32_t)) {
		virtio_fail(vd, "device configuration too small");
		return -1;
	}
	if (balloon_setup_queue(b, &b->inflate_vq, VIRTIO_BALLOON_VQ_INFLATE) < 0 ||
	    balloon_setup_queue(b, &b->deflate_vq, VIRTIO_BALLOON_VQ_DEFLATE) < 0 ||
	    (b->has_stats && balloon_setup_queue(b, &b->stats_vq, VIRTIO_BALLOON_VQ_STATS) < 0)) {
		virtio_fail(vd, "queue setup failed");
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
	if (b->has_stats) {
		b->stats_buf_phys = page_alloc(0);
		if (b->stats_buf_phys == PMM_NO_PAGE) {
			virtio_fail(vd, "no memory for the stats buffer");
			return -1;
		}
		b->stats_buf = phys_to_virt(b->stats_buf_phys);
		b->extra_phys = page_alloc(0);
		if (b->extra_phys != PMM_NO_PAGE)
			b->extra_buf = phys_to_virt(b->extra_phys);
	}
	vd->interrupt = balloon_interrupt;
	virtio_driver_ok(vd);
	/* the one line a device gets in the default log: everything a user
	 * needs to know about how it was brought up */
	klog("%s: up transport=%s interrupts=%s offered=0x%" PRIx64 " accepted=0x%" PRIx64
	     " stats=%s event_idx=%s deflate_on_oom=%s reporting=%s page_poison=%s",
	     vd->name, vd->ops->name, vd->irq_mode ? vd->irq_mode : "none", vd->offered, vd->features,
	     b->has_stats ? "on" : "off", virtio_has(vd, VIRTIO_F_EVENT_IDX) ? "on" : "off",
	     b->deflate_on_oom ? "on" : "off", b->reporting ? "on" : "off", b->poison ? "on" : "off");
	if (b->has_stats) {
		uint64_t flags = irq_save();
		balloon_stats_answer(b); /* the initial buffer the spec requires */
		irq_restore(flags);
	}
	balloon_config_changed(b);
	timer_add_tick_handler(balloon_tick, b);
	return 0;
}
