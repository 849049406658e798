/* drivers/virtio/virtio.c against a fake transport: the status handshake,
 * feature negotiation (what is accepted, what is left out and said so, a
 * device that refuses FEATURES_OK) and generation-checked config access
 * with range checks. */
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
	/* only what both sides know; packed rings and unknown bits left out */
	CHECK_EQ_U64(vd.features, BIT(VIRTIO_F_VERSION_1) | BIT(BALLOON_STATS_VQ));
	CHECK_EQ_U64(t.driver_features, vd.features);
	CHECK_EQ_U64(vd.offered, t.offered);
	CHECK_EQ_U64(t.status, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	CHECK(strstr(fake_last_log, "packed virtqueues offered; using split virtqueues") != NULL);
	virtio_driver_ok(&vd);
	CHECK(t.status & VIRTIO_STATUS_DRIVER_OK);
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
}

static void test_legacy_has_no_features_ok(void)
{
	struct fake_transport t = { .modern = false, .offered = BIT(BALLOON_STATS_VQ) | BIT(VIRTIO_F_EVENT_IDX) };
	struct virtio_dev vd = fake_dev(&t, 8);
	CHECK_EQ_U64(virtio_negotiate(&vd, BIT(BALLOON_STATS_VQ), 0), 0);
	CHECK_EQ_U64(vd.features, BIT(BALLOON_STATS_VQ));
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

int main(void)
{
	test_renegotiate_after_failure();
	test_modern_negotiation();
	test_access_platform_refused_cleanly();
	test_required_missing();
	test_legacy_has_no_features_ok();
	test_config_access();
	return check_summary("virtio_core");
}
