/* Free page reporting (VIRTIO_BALLOON_F_REPORTING) and page poisoning
 * (VIRTIO_BALLOON_F_PAGE_POISON).
 *
 * Every couple of seconds the driver takes free 2 MiB blocks the host has
 * not heard about off the free lists, hands them to the host as
 * device-writable buffers on the reporting queue (QEMU discards them), and
 * when the host is done puts them back marked reported, so they are not
 * reported again until they have been allocated. Allocation goes on
 * meanwhile from everything else. */
#include "drivers/virtio/balloon_priv.h"
#include "drivers/virtio/balloon_spec.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

#define REPORT_ORDER PMM_MAX_ORDER /* 2 MiB, as Linux reports pageblocks */
/* The poison ballast declares: deflated and reported pages come back from
 * the host zeroed, so zero is the one value they keep. QEMU also discards
 * reported pages only when poison_val is 0. */
#define BALLOON_POISON_VALUE 0u

/* The host is done with a report: the work puts the blocks back. */
static void report_vq_done(struct virtqueue *vq)
{
	struct balloon *b = vq->priv;
	work_queue(&b->work);
}

int balloon_report_init(struct balloon *b)
{
	struct virtio_dev *vd = b->vd;
	if (virtio_has(vd, VIRTIO_BALLOON_F_PAGE_POISON)) {
		if (virtio_config_write32(vd, VIRTIO_BALLOON_CFG_POISON_VAL, BALLOON_POISON_VALUE) < 0) {
			klog("%s: no poison_val in the device configuration", vd->name);
			return -1;
		}
		mm_set_free_poison(true, (uint8_t)BALLOON_POISON_VALUE);
		b->rep.poison = true;
	}
	if (!virtio_has(vd, VIRTIO_BALLOON_F_REPORTING))
		return 0;
	/* QEMU numbers its queues by what it offers: inflate, deflate, stats,
	 * then free page hinting, then reporting. */
	unsigned index = VIRTIO_BALLOON_VQ_STATS;
	if (vd->offered >> VIRTIO_BALLOON_F_STATS_VQ & 1)
		index++;
	if (vd->offered >> VIRTIO_BALLOON_F_FREE_PAGE_HINT & 1)
		index++;
	b->rep.vq = virtio_vq_setup(vd, index, "reporting", report_vq_done, b);
	if (!b->rep.vq)
		return -1;
	b->rep.enabled = true;
	return 0;
}

/* Called from the balloon's work: collects the previous report, starts the
 * next one. (A bad used entry breaks the queue and fails the device: the
 * core says so, once.) */
void balloon_report_work(struct balloon *b)
{
	struct balloon_report *r = &b->rep;
	if (!r->enabled || b->vd->failed)
		return;
	uint32_t len;
	uint64_t flags = irq_save();
	void *done = vq_get_used(r->vq, &len);
	irq_restore(flags);
	if (done) {
		for (unsigned i = 0; i < r->count; i++)
			mm_report_putback(r->block[i], REPORT_ORDER);
		r->reported_pages += (uint64_t)r->count << REPORT_ORDER;
		r->count = 0;
		r->busy = false;
	}
	if (vq_is_broken(r->vq) || r->busy || !r->due)
		return;
	r->due = false;
	/* one buffer a block, all in one chain: a queue smaller than the batch
	 * (its size is the device's) takes smaller batches, or no batch
	 * would ever fit */
	unsigned batch = vq_num_free(r->vq) < BALLOON_REPORT_BLOCKS ? vq_num_free(r->vq) : BALLOON_REPORT_BLOCKS;
	struct vq_buf bufs[BALLOON_REPORT_BLOCKS];
	while (r->count < batch) {
		uint64_t pa = mm_report_isolate(REPORT_ORDER);
		if (pa == PMM_NO_PAGE)
			break;
		r->block[r->count] = pa;
		bufs[r->count] = (struct vq_buf){ pa, (uint32_t)(PAGE_SIZE << REPORT_ORDER) };
		r->count++;
	}
	if (r->count == 0)
		return;
	flags = irq_save();
	bool ok = vq_add(r->vq, bufs, 0, r->count, r) == 0;
	irq_restore(flags);
	if (!ok) {
		for (unsigned i = 0; i < r->count; i++)
			mm_report_putback(r->block[i], REPORT_ORDER);
		r->count = 0;
		return;
	}
	r->busy = true;
	/* a full batch suggests more is waiting: report again as soon as done */
	r->due = r->count == batch;
	vq_kick(r->vq);
}
