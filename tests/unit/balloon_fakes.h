/* The fake machine test_balloon_inflate.c runs drivers/virtio/balloon_inflate.c
 * on. balloon_inflate.c is built with tests/unit/fakes/ first on the include
 * path, so its kernel/arch/cpu.h is the fake one: irq_save and irq_restore
 * are link-level fakes the test defines (it models the interrupt flag with
 * them, to check every section the driver opens is closed again).
 *
 * Here: the memory and the device, for the test itself. "Physical memory" is
 *    64 MiB mmap'd at its own physical address: the driver needs
 *    physical = virtual (it frees a chunk page by its pointer), PFNs must
 *    fit 32 bits, and ASan's application range starts at 0, so 256 MiB is
 *    a good place. The device plays both balloon queues on the real rings:
 *    it fetches buffers only when notified (a missing kick stalls the
 *    test), reads their PFNs at once, completes them when the test says
 *    (some per round, all, or any number in random order), checks the
 *    driver changed neither a buffer it had nor a page the host held, and
 *    keeps the set of PFNs the host has. */
#ifndef BALLAST_TEST_BALLOON_FAKES_H
#define BALLAST_TEST_BALLOON_FAKES_H

#include <stdint.h>
#include <stdlib.h>
#include "kernel/arch/cpu.h" /* the fake: tests/unit/fakes/ */
#include "drivers/virtio/balloon_priv.h"
#include "tests/unit/check.h"

#define ARENA_PHYS  0x10000000ull /* 256 MiB */
#define ARENA_PAGES 16384u        /* 64 MiB */
#define FIRST_PFN   (ARENA_PHYS >> PAGE_SHIFT)
#define MAX_PFN     (FIRST_PFN + ARENA_PAGES)
/* what the host leaves in a page it holds: the guest must not write there */
#define HOST_FILL   0xb5

static inline void *at(uint64_t pa) { return (void *)(uintptr_t)pa; } /* identity-mapped */
static inline uint64_t idx_of(uint64_t pfn) { return pfn - FIRST_PFN; } /* huge if below the arena */

#define RNG_SEED 0x62616c6c6f6f6eull
#include "tests/unit/xorshift.h"

struct flight {
	uint16_t head;
	uint32_t n;
	uint64_t addr;
	uint32_t pfn[BALLOON_PFNS_PER_BUF];
};

struct fake_dev {
	struct virtqueue *vq;
	bool inflate, notified, bad;
	uint16_t last_avail, used_idx;
	unsigned n_flights;
	struct flight flight[BALLOON_BUFS]; /* fetched, not completed, in fetch order */
	uint64_t pfns_done, out_of_order; /* completions of a buffer fetched after another still out */
};
static struct fake_dev inflate_dev, deflate_dev;
static struct balloon balloon; /* the driver's state, as balloon.c would hold it */
static bool host_has[ARENA_PAGES];
static uint64_t host_pages;

static inline void dev_bad(struct fake_dev *d, const char *why, uint64_t what, int line)
{
	d->bad = true;
	check_report(0, __FILE__, line, why);
	fprintf(stderr, "    %s queue: %" PRIu64 " (0x%" PRIx64 ")\n", d->inflate ? "inflate" : "deflate", what, what);
}
#define DEV_BAD(d, why, what) dev_bad(d, why, what, __LINE__)

/* Takes what the driver made available, if it was told to look. */
static inline void dev_fetch(struct fake_dev *d)
{
	if (!d->notified)
		return;
	d->notified = false;
	const struct virtqueue *vq = d->vq;
	struct vring_avail *avail = at(vq->driver_phys);
	const struct vring_desc *desc = at(vq->desc_phys);
	while (d->last_avail != avail->idx) {
		uint16_t head = avail->ring[d->last_avail++ % vq->size];
		if (head >= vq->size || d->n_flights == BALLOON_BUFS) {
			DEV_BAD(d, "a bad head, or more buffers than the driver has", head);
			return;
		}
		struct vring_desc e = desc[head];
		if (e.flags || e.len == 0 || e.len % 4 || e.len > PAGE_SIZE) {
			DEV_BAD(d, "a PFN buffer of a bad shape", (uint64_t)e.flags << 32 | e.len);
			return;
		}
		struct flight *f = &d->flight[d->n_flights++];
		f->head = head;
		f->n = e.len / 4;
		f->addr = e.addr;
		memcpy(f->pfn, at(e.addr), e.len);
	}
	/* EVENT_IDX: notify me of anything past what I have read */
	uint16_t *avail_event = (void *)&((struct vring_used *)at(vq->device_phys))->ring[vq->size];
	*avail_event = d->last_avail;
}

static inline bool all_host_fill(const uint8_t *page)
{
	for (unsigned i = 0; i < PAGE_SIZE; i++)
		if (page[i] != HOST_FILL)
			return false;
	return true;
}

/* The guest may have used pages it deflated on OOM before telling; the
 * device cannot know a buffer tells such pages, the test can. */
static inline bool telling_buffer(uint64_t addr)
{
	for (unsigned i = 0; i < BALLOON_BUFS; i++)
		if (balloon.pg.deflate_buf[i].phys == addr)
			return balloon.pg.deflate_buf[i].already_back;
	return false;
}

static inline void dev_complete(struct fake_dev *d, unsigned k)
{
	struct flight *f = &d->flight[k];
	d->out_of_order += k != 0;
	if (memcmp(at(f->addr), f->pfn, f->n * sizeof(uint32_t)))
		DEV_BAD(d, "the driver changed a buffer the device had", f->head);
	bool may_be_written = telling_buffer(f->addr);
	for (uint32_t i = 0; i < f->n; i++) {
		uint64_t ix = idx_of(f->pfn[i]);
		uint8_t *page = at((uint64_t)f->pfn[i] << PAGE_SHIFT);
		if (ix >= ARENA_PAGES) {
			DEV_BAD(d, "a PFN outside memory", f->pfn[i]);
		} else if (d->inflate) {
			if (host_has[ix])
				DEV_BAD(d, "a PFN inflated twice", f->pfn[i]);
			host_pages += !host_has[ix];
			host_has[ix] = true;
			memset(page, HOST_FILL, PAGE_SIZE);
		} else if (!host_has[ix]) {
			DEV_BAD(d, "a PFN deflated that the host did not have", f->pfn[i]);
		} else {
			if (!may_be_written && !all_host_fill(page))
				DEV_BAD(d, "the guest wrote to a page the host had", f->pfn[i]);
			host_has[ix] = false;
			host_pages--;
		}
	}
	d->pfns_done += f->n;
	struct vring_used *used = at(d->vq->device_phys);
	used->ring[d->used_idx % d->vq->size] = (struct vring_used_elem){ f->head, 0 };
	used->idx = ++d->used_idx;
	d->n_flights--;
	memmove(f, f + 1, (d->n_flights - k) * sizeof *f);
}

/* How the device answers: per_round buffers (0: all) oldest first, or, if
 * shuffled, any number of them in any order. */
struct pace {
	unsigned per_round;
	bool shuffled;
};
static const struct pace ALL = { 0, false }, ONE = { 1, false }, SHUFFLED = { 0, true };

static inline void dev_round(struct fake_dev *d, struct pace p)
{
	dev_fetch(d);
	unsigned n = p.shuffled ? (unsigned)(rng() % (d->n_flights + 1))
	             : p.per_round && p.per_round < d->n_flights ? p.per_round : d->n_flights;
	for (unsigned i = 0; i < n; i++)
		dev_complete(d, p.shuffled ? (unsigned)(rng() % d->n_flights) : 0);
}

#endif
