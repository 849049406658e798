/* The balloon driver's state, by owner, for its files:
 *
 *   balloon.c         bring-up, config changes (the target), the tick
 *   balloon_answer.c  the statistics service: when and how the host is answered
 *   balloon_inflate.c page movement: inflate, deflate, deflate on OOM
 *   balloon_report.c  free page reporting and page poison
 *   balloon_console.c the console commands and the boot-time knobs
 *
 * Each file's state is its own struct inside struct balloon, which every
 * function reaches through the pointer it is given (a queue's priv, the
 * work's ctx); only the console, which has no device to start from, asks
 * for the one there is (balloon_current). */
#ifndef BALLAST_BALLOON_PRIV_H
#define BALLAST_BALLOON_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/virtio/balloon_stats.h"
#include "drivers/virtio/stats_plan.h"
#include "drivers/virtio/virtio.h"
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

/* What the console and the command line set: how answers look and when
 * they are given. Outlives any device (it is set before one exists). */
struct stats_knobs {
	struct stats_plan plan;
	bool paused;        /* "stats pause": hold the buffer */
	uint32_t delay_ms;  /* "stats delay": answer this late */
};
extern struct stats_knobs stats_knobs;

/* A statistics buffer (the token on the stats queue). */
struct stats_buf {
	void *mem;
	uint64_t phys;
	bool extra;         /* "stats extra"'s second buffer, retired when handed back */
	bool in_flight;
};

struct balloon_stats {
	struct virtqueue *vq;
	struct stats_buf main, extra;
	uint64_t seq;       /* buffers handed to the host (logged as seq=) */
	uint64_t requests;  /* buffers the host handed back */
	bool primed;        /* the priming buffer has been sent */
	bool held;          /* the guest has the buffer, the host has none */
	uint64_t held_since;/* TSC: the request's interrupt, or the resume */
	bool timed;         /* the held request is answered from its own interrupt */
	bool delayed;       /* the delay of the held request is running */
	uint64_t due_tsc;
	uint64_t kicked_tsc;
	uint64_t latency[BALLOON_LATENCY_SAMPLES]; /* TSC ticks, request interrupt to kick */
	uint64_t latency_count;
};

struct balloon_pfn_buf {        /* the token on the inflate and deflate queues */
	uint32_t *pfn;              /* a page of PFNs, physical = virtual */
	uint64_t phys;
	uint32_t count;
	bool busy;                  /* on the ring */
	bool already_back;          /* deflate after an OOM: the pages are in use already */
};

/* Ballooned PFNs, in pages chained by physical address: the ballooned pages
 * themselves belong to the host and are never written. */
struct balloon_pfn_chunk;

struct balloon_pages {
	struct virtqueue *inflate_vq, *deflate_vq;
	uint32_t target;            /* num_pages, as last read */
	uint32_t actual_written;    /* last value written to actual */
	bool offline;               /* ballooned pages leave the managed pool (no DEFLATE_ON_OOM) */
	bool deflate_on_oom;
	uint64_t pages;             /* in the balloon, as the host knows it ("actual") */
	uint64_t inflating, deflating; /* pages in buffers on the rings */
	struct balloon_pfn_buf inflate_buf[BALLOON_BUFS], deflate_buf[BALLOON_BUFS];
	struct balloon_pfn_chunk *store;    /* top chunk of ballooned PFNs not being deflated */
	uint64_t stored;                    /* PFNs in the store */
	struct balloon_pfn_chunk *oom_tell; /* PFNs returned on OOM, the host not yet told */
	uint64_t oom_tell_count;
	bool short_logged;          /* "target not reachable" said once per target */
	uint64_t inflated_total, deflated_total, oom_deflates, oom_pages;
};

struct balloon_report {         /* also the token on the reporting queue */
	struct virtqueue *vq;
	bool enabled, poison;
	bool busy, due;
	unsigned count;
	uint64_t block[BALLOON_REPORT_BLOCKS];
	uint64_t reported_pages;
};

struct balloon {
	struct virtio_dev *vd;
	struct balloon_stats stats;
	struct balloon_pages pg;
	struct balloon_report rep;
	struct work work;           /* page movement and reporting, from the idle loop */
	uint64_t ticks;
};

/* The balloon there is (ballast drives one), or NULL. */
struct balloon *balloon_current(void);

/* balloon_answer.c */
int balloon_stats_init(struct balloon *b, unsigned index);
/* The buffer the driver hands over at start (5.5.6.3), whatever the knobs. */
void stats_prime(struct balloon *b);
/* The one place that decides whether to answer now: a held buffer is
 * answered unless paused, or while its delay runs. Interrupts off. */
void stats_service(struct balloon *b);
/* "stats resume": the delay, if any, runs from now. Interrupts off. */
void stats_resume(struct balloon *b);
/* Adds the one-shot second buffer; -1 if one is already out. Interrupts off. */
int balloon_stats_extra(struct balloon *b);
/* balloon_report.c */
int balloon_report_init(struct balloon *b);
void balloon_report_work(struct balloon *b);
/* balloon_inflate.c */
int balloon_pages_init(struct balloon *b);
void balloon_pages_work(struct balloon *b);
uint64_t balloon_oom_deflate(uint64_t pages_wanted);

#endif
