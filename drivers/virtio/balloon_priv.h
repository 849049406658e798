/* State shared by the balloon driver's files. */
#ifndef BALLAST_BALLOON_PRIV_H
#define BALLAST_BALLOON_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/virtio/balloon_stats.h"
#include "drivers/virtio/stats_plan.h"
#include "drivers/virtio/virtio.h"
#include "drivers/virtio/virtqueue.h"

#include "kernel/work.h"

#define BALLOON_LATENCY_SAMPLES 1024
/* One 4 KiB page of little-endian 32-bit PFNs per buffer, and several
 * buffers in flight per queue: QEMU discards each PFN as it reads it, so
 * bigger and more buffers mean fewer notifications and interrupts per page
 * (Linux sends one buffer of 256 PFNs at a time). */
#define BALLOON_PFNS_PER_BUF 1024
#define BALLOON_BUFS         8
/* 2 MiB blocks per report (Linux: 32). */
#define BALLOON_REPORT_BLOCKS 16
/* Free pages the balloon always leaves to the kernel: 8 MiB, enough for the
 * page tables, heap growth and console work of a guest of any size. */
#define BALLOON_RESERVE_PAGES 2048

struct balloon_pfn_buf {
	uint32_t *pfn;       /* a page of PFNs, physical = virtual */
	uint64_t phys;
	uint32_t count;
	bool busy;           /* on the ring */
	bool already_back;   /* deflate after an OOM: the pages are in use already */
};

/* Ballooned PFNs, in pages chained by physical address: the ballooned pages
 * themselves belong to the host and are never written. */
struct balloon_pfn_chunk;

struct balloon {
	struct virtio_dev *vd;
	struct virtqueue inflate_vq, deflate_vq, stats_vq;
	bool has_stats;
	void *stats_buf;
	uint64_t stats_buf_phys;
	uint64_t stats_seq;       /* answers given (logged as seq=) */
	uint64_t stats_requests;  /* buffers the host handed back */
	bool stats_paused;        /* "stats pause": hold the buffer */
	bool stats_held;          /* the guest has the buffer, the host has none */
	uint32_t target_pages;    /* num_pages, as last read */
	uint32_t actual_written;  /* last value written to actual */
	bool offline;             /* ballooned pages leave the managed pool (no DEFLATE_ON_OOM) */
	bool deflate_on_oom;
	uint64_t pages;           /* in the balloon, as the host knows it ("actual") */
	uint64_t inflating, deflating; /* pages in buffers on the rings */
	struct balloon_pfn_buf inflate_buf[BALLOON_BUFS], deflate_buf[BALLOON_BUFS];
	struct balloon_pfn_chunk *store;  /* top chunk of ballooned PFNs not being deflated */
	uint64_t stored;                  /* PFNs in the store */
	struct balloon_pfn_chunk *oom_tell; /* PFNs returned on OOM, the host not yet told */
	uint64_t oom_tell_count;
	bool short_logged;        /* "target not reachable" said once per target */
	uint64_t inflated_total, deflated_total, oom_deflates, oom_pages;
	struct work work;         /* inflate/deflate and reporting steps, from the idle loop */
	/* free page reporting and poisoning */
	struct virtqueue report_vq;
	bool reporting, poison;
	bool report_busy, report_due;
	unsigned report_count;
	uint64_t report_block[BALLOON_REPORT_BLOCKS];
	uint64_t reported_pages;
	uint64_t ticks;
	struct stats_plan plan;   /* what the next answers look like */
	bool stats_primed;        /* the priming buffer has been sent */
	uint32_t delay_ms;        /* "stats delay": answer this late */
	bool answer_due;          /* a delayed answer is waiting for due_tsc */
	uint64_t due_tsc;
	void *extra_buf;          /* "stats extra": a second buffer, one shot */
	uint64_t extra_phys;
	bool extra_in_flight;
	uint64_t kicked_tsc;      /* when the last stats buffer was kicked */
	uint64_t latency[BALLOON_LATENCY_SAMPLES]; /* TSC ticks, request interrupt to kick */
	uint64_t latency_count;
};

extern struct balloon balloon;

void balloon_stats_answer(struct balloon *b);
/* Adds the one-shot second buffer; -1 if one is already out. */
int balloon_stats_extra(struct balloon *b);
void balloon_config_changed(struct balloon *b);
int balloon_setup_queue(struct balloon *b, struct virtqueue *vq, unsigned index);
/* balloon_report.c */
int balloon_report_init(struct balloon *b);
void balloon_report_work(struct balloon *b);
/* balloon_inflate.c */
int balloon_pages_init(struct balloon *b);
void balloon_pages_work(void *ctx);
uint64_t balloon_oom_deflate(uint64_t pages_wanted);

#endif
