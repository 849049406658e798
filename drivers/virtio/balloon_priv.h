/* State shared by the balloon driver's files. */
#ifndef BALLAST_BALLOON_PRIV_H
#define BALLAST_BALLOON_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/virtio/balloon_stats.h"
#include "drivers/virtio/virtio.h"
#include "drivers/virtio/virtqueue.h"

#define BALLOON_LATENCY_SAMPLES 1024

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
	uint64_t latency[BALLOON_LATENCY_SAMPLES]; /* TSC ticks, request to re-add */
	uint64_t latency_count;
};

extern struct balloon balloon;

void balloon_stats_answer(struct balloon *b);
void balloon_config_changed(struct balloon *b);

#endif
