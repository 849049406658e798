/* drivers/virtio/virtio.c against a fake transport: the status handshake,
 * feature negotiation (what is accepted, what is left out and said so, a
 * device that refuses FEATURES_OK), generation-checked config access
 * with range checks, and interrupt dispatch to the queues and the driver. */
#include <stdlib.h>
#include "tests/unit/check.h"
#include "tests/unit/virtio_fake_transport.h"

#define BIT(n) (1ull << (n))
#define BALLOON_STATS_VQ 1 /* VIRTIO_BALLOON_F_STATS_VQ */

static void test_modern_negotiation(void)
{
	struct fake_transport t = { .modern = true,
	                            .offered = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_PACKED) |
	                                       BIT(VIRTIO_F_INDIRECT_DESC) | BIT(BALLOON_STATS_VQ) | BIT(40),
	                            /* left running by firmware; the reset shows after 3 reads */
	                            .status = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK, .reset_reads = 3 };
	struct virtio_dev vd = fake_dev(&t, 8);
	uint64_t wanted = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_EVENT_IDX) | BIT(BALLOON_STATS_VQ);
	CHECK_EQ_U64(virtio_negotiate(&vd, wanted, BIT(VIRTIO_F_VERSION_1)), 0);
	CHECK(!vd.failed);
	/* only what both sides know: packed rings (the core's, accepted whenever
	 * offered) yes, indirect descriptors and unknown bits no */
	CHECK_EQ_U64(vd.features, BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_RING_PACKED) | BIT(BALLOON_STATS_VQ));
	CHECK_EQ_U64(t.driver_features, vd.features);
	CHECK_EQ_U64(vd.offered, t.offered);
	CHECK_EQ_U64(t.status, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	virtio_driver_ok(&vd);
	CHECK(t.status & VIRTIO_STATUS_DRIVER_OK);
	/* packed=off on the command line: split rings, and said so */
	virtio_set_packed_allowed(false);
	struct fake_transport t2 = t;
	t2.status = 0;
	struct virtio_dev vd2 = fake_dev(&t2, 8);
	CHECK_EQ_U64(virtio_negotiate(&vd2, wanted, BIT(VIRTIO_F_VERSION_1)), 0);
	CHECK_EQ_U64(vd2.features, BIT(VIRTIO_F_VERSION_1) | BIT(BALLOON_STATS_VQ));
	CHECK(strstr(fake_last_log, "packed virtqueues offered; using split virtqueues (packed=off)") != NULL);
	virtio_set_packed_allowed(true);
}

static void test_access_platform_refused_cleanly(void)
{
	/* QEMU's iommu_platform=on: offered, and FEATURES_OK does not stick
	 * unless the driver accepts it, which ballast does not. */
	struct fake_transport t = { .modern = true,
	                            .offered = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ACCESS_PLATFORM) |
	                                       BIT(BALLOON_STATS_VQ),
	                            .must_accept = BIT(VIRTIO_F_ACCESS_PLATFORM) };
	struct virtio_dev vd = fake_dev(&t, 8);
	uint64_t wanted = BIT(VIRTIO_F_VERSION_1) | BIT(BALLOON_STATS_VQ);
	CHECK(virtio_negotiate(&vd, wanted, BIT(VIRTIO_F_VERSION_1)) < 0);
	CHECK(vd.failed);
	CHECK(!(vd.features & BIT(VIRTIO_F_ACCESS_PLATFORM)));
	CHECK(t.status & VIRTIO_STATUS_FAILED);
	CHECK(!(t.status & VIRTIO_STATUS_FEATURES_OK));
	CHECK(strstr(fake_last_log, "FAILED: device refused FEATURES_OK (ACCESS_PLATFORM offered, not accepted)") != NULL);
	virtio_driver_ok(&vd); /* a failed device is never set DRIVER_OK */
	CHECK(!(t.status & VIRTIO_STATUS_DRIVER_OK));

	/* A device that offers it but does not insist works without it. */
	struct fake_transport lax = t;
	lax.must_accept = 0;
	lax.status = 0;
	struct virtio_dev vd2 = fake_dev(&lax, 8);
	CHECK_EQ_U64(virtio_negotiate(&vd2, wanted, BIT(VIRTIO_F_VERSION_1)), 0);
	CHECK(!vd2.failed);
	CHECK_EQ_U64(vd2.features, BIT(VIRTIO_F_VERSION_1) | BIT(BALLOON_STATS_VQ));
}

static void test_required_missing(void)
{
	struct fake_transport t = { .modern = true, .offered = BIT(BALLOON_STATS_VQ) };
	struct virtio_dev vd = fake_dev(&t, 8);
	CHECK(virtio_negotiate(&vd, BIT(VIRTIO_F_VERSION_1), BIT(VIRTIO_F_VERSION_1)) < 0);
	CHECK(vd.failed);
	CHECK(strstr(fake_last_log, "FAILED: required features not offered") != NULL);
	CHECK_EQ_U64(t.driver_features, 0); /* nothing written after the refusal */
	/* the core requires VERSION_1 of a modern device itself: the driver
	 * need not ask */
	struct fake_transport t2 = { .modern = true, .offered = BIT(BALLOON_STATS_VQ) };
	struct virtio_dev vd2 = fake_dev(&t2, 8);
	CHECK(virtio_negotiate(&vd2, BIT(BALLOON_STATS_VQ), 0) < 0);
	CHECK(vd2.failed);
	CHECK(strstr(fake_last_log, "FAILED: required features not offered") != NULL);
}

static void test_legacy_has_no_features_ok(void)
{
	struct fake_transport t = { .modern = false, .offered = BIT(BALLOON_STATS_VQ) | BIT(VIRTIO_F_EVENT_IDX) };
	struct virtio_dev vd = fake_dev(&t, 8);
	CHECK_EQ_U64(virtio_negotiate(&vd, BIT(BALLOON_STATS_VQ), 0), 0);
	/* EVENT_IDX is the core's to take (its rings implement it) */
	CHECK_EQ_U64(vd.features, BIT(BALLOON_STATS_VQ) | BIT(VIRTIO_F_EVENT_IDX));
	CHECK(!(t.status & VIRTIO_STATUS_FEATURES_OK));
}

static void test_config_access(void)
{
	struct fake_transport t = { .modern = true };
	struct virtio_dev vd = fake_dev(&t, 8);
	uint32_t v = 0xdead;
	memcpy(t.config + 4, &(uint32_t){ 0x12345678 }, 4);
	CHECK_EQ_U64(virtio_config_read32(&vd, 4, &v), 0);
	CHECK_EQ_U64(v, 0x12345678);
	/* out of range or misaligned: refused without touching the device */
	unsigned reads = t.config_reads;
	CHECK(virtio_config_read32(&vd, 8, &v) < 0);
	CHECK(virtio_config_read32(&vd, 2, &v) < 0);
	CHECK(virtio_config_read32(&vd, 0xfffffffc, &v) < 0);
	CHECK(virtio_config_write32(&vd, 8, 1) < 0);
	CHECK_EQ_U64(t.config_reads, reads);
	CHECK(!vd.failed);

	/* a generation that moves a few times: read again until it holds */
	t.generation_moves = 5;
	CHECK_EQ_U64(virtio_config_read32(&vd, 4, &v), 0);
	CHECK_EQ_U64(v, 0x12345678);
	CHECK(!vd.failed);
	/* ... and one that never settles: FAILED, not an endless loop */
	t.generation_moves = ~0u;
	CHECK(virtio_config_read32(&vd, 4, &v) < 0);
	CHECK(vd.failed);
	CHECK(strstr(fake_last_log, "config generation never settled") != NULL);

	CHECK_EQ_U64(virtio_config_write32(&vd, 0, 0xabcd), 0);
	uint32_t w;
	memcpy(&w, t.config, 4);
	CHECK_EQ_U64(w, 0xabcd);
}

/* Found by fuzz_virtio_core: a device FAILED by a config read, then
 * negotiated again, was accepted with FEATURES_OK but still marked failed,
 * so the driver never set DRIVER_OK. The reset that starts a negotiation
 * starts the device over, failure included. */
static void test_renegotiate_after_failure(void)
{
	struct fake_transport t = { .modern = true, .offered = BIT(VIRTIO_F_VERSION_1), .generation_moves = ~0u };
	struct virtio_dev vd = fake_dev(&t, 8);
	uint32_t v;
	CHECK(virtio_config_read32(&vd, 0, &v) < 0);
	CHECK(vd.failed);
	t.generation_moves = 0;
	CHECK_EQ_U64(virtio_negotiate(&vd, BIT(VIRTIO_F_VERSION_1), BIT(VIRTIO_F_VERSION_1)), 0);
	CHECK(!vd.failed);
	CHECK(t.status & VIRTIO_STATUS_FEATURES_OK);
	CHECK_EQ_U64(virtio_config_read32(&vd, 0, &v), 0);
	virtio_driver_ok(&vd); /* refused while the old failure stuck */
	CHECK(t.status & VIRTIO_STATUS_DRIVER_OK);
}

/* ---- interrupt dispatch ---- */

static unsigned vq_calls[3], config_calls;
static void count_vq(struct virtqueue *vq) { vq_calls[vq->index]++; }
static void count_config(struct virtio_dev *vd)
{
	(void)vd;
	config_calls++;
}

/* Three split queues of 4 entries on one device; queue i "used" when its
 * used ring's idx moved past what the driver has taken. */
static void test_interrupt_dispatch(void)
{
	struct fake_transport t = { .modern = true, .offered = BIT(VIRTIO_F_VERSION_1) };
	struct virtio_dev vd = fake_dev(&t, 8);
	static const struct virtio_driver drv = { .device_id = 5, .name = "test", .short_name = "t",
		                                      .config_changed = count_config };
	vd.driver = &drv;
	struct virtqueue vqs[3];
	struct vq_desc_state state[3][4];
	void *rings[3];
	for (unsigned i = 0; i < 3; i++) {
		rings[i] = aligned_alloc(4096, 2 * 4096);
		memset(rings[i], 0, 2 * 4096);
		CHECK_EQ_U64(vq_init_split(&vqs[i], (uint16_t)i, 4, rings[i], 0x100000 * (i + 1), state[i], false), 0);
		vqs[i].callback = count_vq;
		vqs[i].dev = &vd;
		vd.vqs[i] = &vqs[i];
	}
	vqs[1].split.used->idx = 1; /* only queue 1 has something */
	virtio_interrupt(&vd, VIRTIO_ISR_QUEUE);
	CHECK_EQ_U64(vq_calls[0], 0);
	CHECK_EQ_U64(vq_calls[1], 1);
	CHECK_EQ_U64(vq_calls[2], 0);
	CHECK_EQ_U64(config_calls, 0);
	virtio_interrupt(&vd, VIRTIO_ISR_CONFIG); /* a config change alone: no queue runs */
	CHECK_EQ_U64(vq_calls[1], 1);
	CHECK_EQ_U64(config_calls, 1);
	vqs[2].split.used->idx = 1;
	virtio_interrupt(&vd, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	CHECK_EQ_U64(vq_calls[1], 2);
	CHECK_EQ_U64(vq_calls[2], 1);
	CHECK_EQ_U64(config_calls, 2);
	/* a queue's own vector runs its callback whether or not it has used */
	virtio_vq_interrupt(&vqs[0]);
	CHECK_EQ_U64(vq_calls[0], 1);
	/* a broken queue has nothing to take; a FAILED device runs nothing */
	vqs[1].broken = true;
	virtio_interrupt(&vd, VIRTIO_ISR_QUEUE);
	CHECK_EQ_U64(vq_calls[1], 2);
	CHECK_EQ_U64(vq_calls[2], 2);
	virtio_fail(&vd, "test");
	virtio_interrupt(&vd, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	virtio_vq_interrupt(&vqs[2]);
	CHECK_EQ_U64(vq_calls[2], 2);
	CHECK_EQ_U64(config_calls, 2);
	for (unsigned i = 0; i < 3; i++)
		free(rings[i]);
}

int main(void)
{
	test_interrupt_dispatch();
	test_renegotiate_after_failure();
	test_modern_negotiation();
	test_access_platform_refused_cleanly();
	test_required_missing();
	test_legacy_has_no_features_ok();
	test_config_access();
	return check_summary("virtio_core");
}
