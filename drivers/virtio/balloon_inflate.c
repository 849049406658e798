/* Following the host's target: inflate (pages from the allocator to the
 * host), deflate (back), and deflate on OOM.
 *
 * Everything but the OOM path runs as deferred work in the idle loop: the
 * interrupt only queues it. Pages move between four places, and every page
 * is in exactly one: the allocator, an inflate buffer on the ring, the
 * store (in the balloon), a deflate buffer on the ring. */
#include <string.h>
#include "drivers/virtio/balloon_priv.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"

#define CHUNK_PFNS ((PAGE_SIZE - 16) / sizeof(uint32_t))

struct balloon_pfn_chunk {
	struct balloon_pfn_chunk *next;
	uint64_t count;
	uint32_t pfn[CHUNK_PFNS];
};
_Static_assert(sizeof(struct balloon_pfn_chunk) == PAGE_SIZE, "one chunk a page");

/* Stack of PFNs in chunk pages. Runs with interrupts off (the OOM path pops
 * from inside the allocator). Chunk pages come from the allocator directly:
 * when none is free the push fails and the caller keeps the page. */
static int pfn_push(struct balloon_pfn_chunk **top, uint64_t *count, uint32_t pfn)
{
	if (!*top || (*top)->count == CHUNK_PFNS) {
		uint64_t pa = mm_balloon_take(false);
		if (pa == PMM_NO_PAGE)
			return -1;
		struct balloon_pfn_chunk *c = phys_to_virt(pa);
		c->next = *top;
		c->count = 0;
		*top = c;
	}
	(*top)->pfn[(*top)->count++] = pfn;
	(*count)++;
	return 0;
}

static bool pfn_pop(struct balloon_pfn_chunk **top, uint64_t *count, uint32_t *pfn)
{
	struct balloon_pfn_chunk *c = *top;
	if (!c)
		return false;
	*pfn = c->pfn[--c->count];
	(*count)--;
	if (c->count == 0) {
		*top = c->next;
		page_free(virt_to_phys(c), 0);
	}
	return true;
}

int balloon_pages_init(struct balloon *b)
{
	b->pg.deflate_on_oom = virtio_has(b->vd, VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	/* as Linux: with DEFLATE_ON_OOM the pages stay in total memory */
	b->pg.offline = !b->pg.deflate_on_oom;
	for (unsigned i = 0; i < BALLOON_BUFS; i++) {
		struct balloon_pfn_buf *bufs[2] = { &b->pg.inflate_buf[i], &b->pg.deflate_buf[i] };
		for (unsigned k = 0; k < 2; k++) {
			uint64_t pa = page_alloc(0);
			if (pa == PMM_NO_PAGE)
				return -1;
			*bufs[k] = (struct balloon_pfn_buf){ .pfn = phys_to_virt(pa), .phys = pa };
		}
	}
	if (b->pg.deflate_on_oom)
		mm_set_oom_handler(balloon_oom_deflate);
	return 0;
}

/* A buffer that can go on the ring now: idle, and a descriptor free for
 * it. The queue size is the device's (any power of two up to 32768, down to
 * 1), so the ring can be full with buffers to spare; a buffer filled then
 * would have nowhere to go. Call with interrupts off for the deflate queue
 * (the OOM path adds to it). */
static struct balloon_pfn_buf *sendable_buf(struct balloon_pfn_buf *bufs, const struct virtqueue *vq)
{
	if (vq_is_broken(vq) || vq_num_free(vq) == 0)
		return NULL;
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		if (!bufs[i].busy)
			return &bufs[i];
	return NULL;
}

static bool submit(struct virtqueue *vq, struct balloon_pfn_buf *buf)
{
	struct vq_buf vb = { buf->phys, buf->count * (uint32_t)sizeof(uint32_t) };
	if (vq_add(vq, &vb, 1, 0, buf) < 0)
		return false;
	buf->busy = true;
	return true;
}

/* Fills one inflate buffer, as far as the target and the reserve allow. */
static bool inflate_one(struct balloon *b, uint64_t want)
{
	struct balloon_pfn_buf *buf = sendable_buf(b->pg.inflate_buf, b->pg.inflate_vq);
	if (!buf)
		return false;
	buf->count = 0;
	buf->already_back = false;
	while (buf->count < BALLOON_PFNS_PER_BUF && b->pg.pages + b->pg.inflating + buf->count < want) {
		/* the reserve and the cache are the memory manager's policy */
		uint64_t pa = mm_balloon_inflate_take(b->pg.offline);
		if (pa == PMM_NO_PAGE)
			break;
		buf->pfn[buf->count++] = (uint32_t)(pa >> VIRTIO_BALLOON_PFN_SHIFT);
	}
	if (buf->count == 0)
		return false;
	uint64_t flags = irq_save();
	bool ok = submit(b->pg.inflate_vq, buf);
	if (ok)
		b->pg.inflating += buf->count;
	irq_restore(flags);
	if (!ok) {
		for (uint32_t i = 0; i < buf->count; i++)
			mm_balloon_give((uint64_t)buf->pfn[i] << VIRTIO_BALLOON_PFN_SHIFT, b->pg.offline);
		return false;
	}
	return true;
}

/* Fills one deflate buffer from the store (or with PFNs already returned
 * on OOM, which the host still has to hear about). The PFNs leave their
 * list only once the buffer is sure to go on the ring: put back, they
 * could need a chunk page there may be no memory for. */
static bool deflate_one(struct balloon *b, uint64_t want)
{
	uint64_t flags = irq_save();
	struct balloon_pfn_buf *buf = sendable_buf(b->pg.deflate_buf, b->pg.deflate_vq);
	if (!buf) {
		irq_restore(flags);
		return false;
	}
	buf->count = 0;
	buf->already_back = b->pg.oom_tell_count > 0;
	uint32_t pfn;
	if (buf->already_back) {
		while (buf->count < BALLOON_PFNS_PER_BUF && pfn_pop(&b->pg.oom_tell, &b->pg.oom_tell_count, &pfn))
			buf->pfn[buf->count++] = pfn;
	} else {
		while (buf->count < BALLOON_PFNS_PER_BUF && b->pg.pages - b->pg.deflating - buf->count > want &&
		       pfn_pop(&b->pg.store, &b->pg.stored, &pfn))
			buf->pfn[buf->count++] = pfn;
	}
	/* one descriptor, and one is free: this cannot fail */
	bool ok = buf->count > 0 && submit(b->pg.deflate_vq, buf);
	if (!ok && buf->count > 0)
		panic("balloon: a deflate buffer did not fit a ring with room for it");
	if (ok && !buf->already_back)
		b->pg.deflating += buf->count;
	irq_restore(flags);
	return ok;
}

/* A PFN the guest takes back before the host has heard (allowed without
 * MUST_TELL_HOST, 5.5.6.1): onto the list of PFNs to tell on the deflate
 * queue, whose pages are the PFNs' own pages when it needs one (there may
 * be no other memory). Returns whether the page went back to the
 * allocator; if not, it is a page of the list now. Interrupts off. */
static bool take_back_untold(struct balloon *b, uint32_t pfn)
{
	uint64_t pa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;
	if (!b->pg.oom_tell || b->pg.oom_tell->count == CHUNK_PFNS) {
		mm_balloon_keep(pa, b->pg.offline);
		struct balloon_pfn_chunk *c = phys_to_virt(pa);
		c->next = b->pg.oom_tell;
		c->count = 0;
		b->pg.oom_tell = c;
	}
	b->pg.oom_tell->pfn[b->pg.oom_tell->count++] = pfn;
	b->pg.oom_tell_count++;
	if (pa == virt_to_phys(b->pg.oom_tell))
		return false;
	mm_balloon_give(pa, b->pg.offline);
	return true;
}

static void inflate_done(struct balloon *b, struct balloon_pfn_buf *buf)
{
	uint32_t untracked = 0;
	uint64_t flags = irq_save();
	for (uint32_t i = 0; i < buf->count; i++) {
		b->pg.inflating--;
		if (pfn_push(&b->pg.store, &b->pg.stored, buf->pfn[i]) < 0) {
			/* no page to remember it in: the guest takes it back and the
			 * host hears of it as a deflate, as after an OOM */
			take_back_untold(b, buf->pfn[i]);
			untracked++;
			continue;
		}
		b->pg.pages++;
		b->pg.inflated_total++;
	}
	buf->busy = false;
	irq_restore(flags);
	if (untracked)
		klog("balloon: no memory to track %" PRIu32 " ballooned pages; took them back (the host is told by "
		     "deflate)", untracked);
}

static void deflate_done(struct balloon *b, struct balloon_pfn_buf *buf)
{
	uint64_t flags = irq_save();
	if (!buf->already_back) {
		for (uint32_t i = 0; i < buf->count; i++)
			mm_balloon_give((uint64_t)buf->pfn[i] << VIRTIO_BALLOON_PFN_SHIFT, b->pg.offline);
		b->pg.pages -= buf->count;
		b->pg.deflating -= buf->count;
		b->pg.deflated_total += buf->count;
	}
	buf->busy = false;
	irq_restore(flags);
}

/* (A bad used entry breaks the queue and fails the device: the core says
 * so, once.) */
static void reap(struct balloon *b, struct virtqueue *vq, void (*done)(struct balloon *, struct balloon_pfn_buf *))
{
	uint32_t len;
	struct balloon_pfn_buf *buf;
	for (;;) {
		uint64_t flags = irq_save();
		buf = vq_get_used(vq, &len);
		irq_restore(flags);
		if (!buf)
			break;
		done(b, buf);
	}
}

static void write_actual(struct balloon *b)
{
	uint32_t actual = (uint32_t)b->pg.pages;
	if (actual == b->pg.actual_written)
		return;
	virtio_config_write32(b->vd, VIRTIO_BALLOON_CFG_ACTUAL, actual);
	b->pg.actual_written = actual;
#ifdef BALLAST_DEBUG
	if (!mm_invariant_holds(false))
		panic("page accounting broken after a balloon step");
#endif
}

/* PFNs given back on OOM that the host has not finished hearing about. */
static bool telling(const struct balloon *b)
{
	if (b->pg.oom_tell_count)
		return true;
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		if (b->pg.deflate_buf[i].busy && b->pg.deflate_buf[i].already_back)
			return true;
	return false;
}

void balloon_pages_work(struct balloon *b)
{
	if (b->vd->failed)
		return;
	reap(b, b->pg.inflate_vq, inflate_done);
	reap(b, b->pg.deflate_vq, deflate_done);
	if (b->vd->failed)
		return;
	uint64_t want = b->pg.target;
	bool sent = false;
	while (b->pg.oom_tell_count && deflate_one(b, want))
		sent = true;
	/* Pages handed back on OOM may be free again by now; inflated before
	 * the host has heard of their deflate, they would reach it as inflated
	 * twice and then deflated (the queues are not ordered against each
	 * other). So no inflation until every such PFN is told and done: the
	 * deflate queue's interrupt brings the work back. */
	bool tell_pending = telling(b);
	if (b->pg.pages + b->pg.inflating < want) {
		while (!tell_pending && b->pg.pages + b->pg.inflating < want && inflate_one(b, want))
			sent = true;
		/* short with a buffer to spare: the reserve (or no memory) stopped it */
		if (!tell_pending && b->pg.pages + b->pg.inflating < want && sendable_buf(b->pg.inflate_buf, b->pg.inflate_vq) &&
		    !b->pg.short_logged) {
			klog("balloon: target %" PRIu64 " pages not reachable: keeping %u free pages for the kernel; "
			     "holding at %" PRIu64, want, MM_BALLOON_RESERVE_PAGES, b->pg.pages + b->pg.inflating);
			b->pg.short_logged = true;
		}
	} else {
		while (b->pg.pages - b->pg.deflating > want && deflate_one(b, want))
			sent = true;
	}
	if (sent) {
		vq_kick(b->pg.inflate_vq);
		vq_kick(b->pg.deflate_vq);
	}
	write_actual(b);
}

/* Linux deflates this many pages per OOM notification; fewer would call
 * back for every page of a large allocation. */
#define BALLOON_OOM_BATCH 256

/* The allocator is about to fail: give pages back at once (the device does
 * not need to be told first without MUST_TELL_HOST, 5.5.6.1) and tell the
 * host from the work later. Runs with interrupts off and no free memory,
 * so the list of PFNs to tell lives in pages taken from the balloon itself.
 * Returns the pages made free. */
uint64_t balloon_oom_deflate(uint64_t pages_wanted)
{
	struct balloon *b = balloon_current(); /* the allocator's handler: no context of its own */
	if (!b)
		return 0;
	uint64_t freed = 0, deflated = 0;
	uint32_t pfn;
	if (pages_wanted < BALLOON_OOM_BATCH)
		pages_wanted = BALLOON_OOM_BATCH;
	/* As Linux, a batch is so many PFNs deflated. What it frees differs a
	 * little (the list of PFNs to tell takes some of them as its pages, a
	 * store page it empties comes free), and that is what the allocator
	 * hears. */
	while (deflated < pages_wanted && b->pg.store) {
		freed += b->pg.store->count == 1;
		pfn_pop(&b->pg.store, &b->pg.stored, &pfn);
		deflated++;
		freed += take_back_untold(b, pfn);
	}
	if (deflated) {
		b->pg.pages -= deflated;
		b->pg.oom_deflates++;
		b->pg.oom_pages += deflated;
		work_queue(&b->work);
	}
	return freed;
}
