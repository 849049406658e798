/* Fuzzes drivers/virtio/virtio.c against tests/unit's fake transport with
 * whatever a device may show: any offered feature set, a FEATURES_OK it
 * does not keep, a slow reset, a config generation that moves on any read,
 * any config size, and config accesses at any offset.
 *
 * Checked after each step: negotiation succeeds exactly when it should
 * (every required feature offered, and FEATURES_OK kept where VERSION_1 is
 * accepted), with exactly offered & wanted accepted and FEATURES_OK read
 * back, or fails with the device FAILED; a config access succeeds only in range and
 * aligned, returns the bytes the device holds, and an out-of-range one
 * never reaches the device. */
#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/virtio_fake_transport.h"

#define MAX_STEPS 32

static void check_negotiation(struct fuzz_in *in, struct fake_transport *t, struct virtio_dev *vd)
{
	uint64_t wanted = take_u64(in), required = take_u64(in) & wanted;
	bool packed_allowed = take_u8(in) & 1;
	virtio_set_packed_allowed(packed_allowed);
	int rc = virtio_negotiate(vd, wanted, required);
	/* what the core implements itself it always wants: event index, and on
	 * a modern device VERSION_1 and (unless turned off) packed rings */
	wanted |= 1ull << VIRTIO_F_EVENT_IDX;
	if (t->modern) {
		wanted |= 1ull << VIRTIO_F_VERSION_1 | (uint64_t)packed_allowed << VIRTIO_F_RING_PACKED;
		required |= 1ull << VIRTIO_F_VERSION_1;
	}
	/* The fake decides the outcome: every reset completes (reset_reads < 8),
	 * and only a device missing a required feature, or a modern one that
	 * refuses FEATURES_OK, makes negotiation fail. */
	uint64_t accepted = t->offered & wanted;
	bool version_1 = accepted >> VIRTIO_F_VERSION_1 & 1;
	bool ok = (t->offered & required) == required && (!version_1 || (accepted & t->must_accept) == t->must_accept);
	FUZZ_ASSERT((rc == 0) == ok, "negotiation rc=%d, want %s (offered 0x%llx wanted 0x%llx required 0x%llx "
	            "must_accept 0x%llx)", rc, ok ? "success" : "failure", (unsigned long long)t->offered,
	            (unsigned long long)wanted, (unsigned long long)required, (unsigned long long)t->must_accept);
	if (rc == 0) {
		FUZZ_ASSERT(!vd->failed, "negotiation succeeded on a FAILED device");
		FUZZ_ASSERT(vd->features == (t->offered & wanted), "accepted 0x%llx, offered 0x%llx wanted 0x%llx",
		            (unsigned long long)vd->features, (unsigned long long)t->offered, (unsigned long long)wanted);
		FUZZ_ASSERT((vd->features & required) == required, "a required feature was not accepted");
		FUZZ_ASSERT(t->driver_features == vd->features, "the device was told other features");
		if (virtio_has(vd, VIRTIO_F_VERSION_1))
			FUZZ_ASSERT(t->status & VIRTIO_STATUS_FEATURES_OK, "success without FEATURES_OK");
	} else {
		FUZZ_ASSERT(vd->failed && (t->status & VIRTIO_STATUS_FAILED), "a failed negotiation left status 0x%x",
		            t->status);
	}
}

static void check_config(struct fuzz_in *in, struct fake_transport *t, struct virtio_dev *vd)
{
	unsigned off = take_u8(in) & 1 ? take_u32(in) : take_u8(in) % (FAKE_CONFIG_SIZE + 8);
	t->generation_moves = take_u8(in) & 1 ? take_u8(in) : 0;
	bool in_range = off % 4 == 0 && off <= vd->config_size && vd->config_size - off >= 4;
	unsigned reads = t->config_reads;
	bool was_failed = vd->failed;
	if (take_u8(in) & 1) {
		uint32_t v = take_u32(in);
		int rc = virtio_config_write32(vd, off, v);
		FUZZ_ASSERT((rc == 0) == in_range, "write at %u of %u: rc=%d", off, vd->config_size, rc);
		uint32_t now = 0;
		if (rc == 0)
			memcpy(&now, t->config + off, 4);
		FUZZ_ASSERT(rc != 0 || now == v, "write at %u did not land", off);
		return;
	}
	uint32_t got = 0xa5a5a5a5;
	int rc = virtio_config_read32(vd, off, &got);
	if (!in_range) {
		FUZZ_ASSERT(rc < 0 && t->config_reads == reads, "read at %u of %u reached the device", off, vd->config_size);
		return;
	}
	if (rc == 0) {
		uint32_t want;
		memcpy(&want, t->config + off, 4);
		FUZZ_ASSERT(got == want, "read at %u: 0x%x, device holds 0x%x", off, got, want);
	} else {
		/* only a generation that never settled may fail an in-range read */
		FUZZ_ASSERT(vd->failed && (was_failed || t->config_reads - reads >= 100),
		            "in-range read at %u failed after %u reads", off, t->config_reads - reads);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = fuzz_in(data, size);
	struct fake_transport t = { 0 };
	uint8_t shape = take_u8(&in);
	t.modern = shape & 1;
	t.offered = take_u64(&in);
	t.must_accept = shape & 2 ? take_u64(&in) : 0;
	t.reset_reads = take_u8(&in) % 8;
	t.status = take_u8(&in);
	for (unsigned i = 0; i < FAKE_CONFIG_SIZE; i++)
		t.config[i] = (uint8_t)(i * 37 + shape);
	struct virtio_dev vd = fake_dev(&t, take_u8(&in) % (FAKE_CONFIG_SIZE + 1));
	for (unsigned step = 0; step < MAX_STEPS && in.left; step++) {
		if (take_u8(&in) % 4 == 0)
			check_negotiation(&in, &t, &vd);
		else
			check_config(&in, &t, &vd);
	}
	return 0;
}
