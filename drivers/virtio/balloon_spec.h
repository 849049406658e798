/* virtio-balloon device (virtio 1.2, 5.5). */
#ifndef BALLAST_BALLOON_SPEC_H
#define BALLAST_BALLOON_SPEC_H

#include <stdint.h>

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_REPORTING      5

#define VIRTIO_BALLOON_VQ_INFLATE 0
#define VIRTIO_BALLOON_VQ_DEFLATE 1
#define VIRTIO_BALLOON_VQ_STATS   2

#define VIRTIO_BALLOON_PFN_SHIFT 12 /* PFNs are always of 4 KiB pages */

/* Statistics tags (5.5.6.3); Linux 6.6 sends none of 10-15, 6.12 all of them. */
#define VIRTIO_BALLOON_S_SWAP_IN        0
#define VIRTIO_BALLOON_S_SWAP_OUT       1
#define VIRTIO_BALLOON_S_MAJFLT         2
#define VIRTIO_BALLOON_S_MINFLT         3
#define VIRTIO_BALLOON_S_MEMFREE        4
#define VIRTIO_BALLOON_S_MEMTOT         5
#define VIRTIO_BALLOON_S_AVAIL          6
#define VIRTIO_BALLOON_S_CACHES         7
#define VIRTIO_BALLOON_S_HTLB_PGALLOC   8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL    9
#define VIRTIO_BALLOON_S_OOM_KILL       10
#define VIRTIO_BALLOON_S_ALLOC_STALL    11
#define VIRTIO_BALLOON_S_ASYNC_SCAN     12
#define VIRTIO_BALLOON_S_DIRECT_SCAN    13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM  14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM 15
#define VIRTIO_BALLOON_S_NR             16

struct virtio_balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_balloon_stat) == 10, "5.5.6.3");
_Static_assert(__builtin_offsetof(struct virtio_balloon_stat, val) == 2, "5.5.6.3");

struct virtio_balloon_config {
	uint32_t num_pages;
	uint32_t actual;
	uint32_t free_page_hint_cmd_id;
	uint32_t poison_val;
};
_Static_assert(sizeof(struct virtio_balloon_config) == 16, "5.5.4");
#define VIRTIO_BALLOON_CFG_NUM_PAGES  0
#define VIRTIO_BALLOON_CFG_ACTUAL     4
#define VIRTIO_BALLOON_CFG_POISON_VAL 12

#endif
