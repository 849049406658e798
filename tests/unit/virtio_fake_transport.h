/* A scriptable virtio transport for native tests of drivers/virtio/virtio.c:
 * status, features and a device config space with a generation counter,
 * behaving as a device may (virtio 1.2, 2.1-2.5 and 4.1.4.3), including
 * the ways a real one is allowed to refuse: FEATURES_OK not kept (QEMU
 * with iommu_platform=on and ACCESS_PLATFORM not accepted), a reset that
 * takes a while, a config generation that keeps moving.
 *
 * Also provides kprintf, keeping the last log line, so a test can check
 * what the kernel said. Header-only: each test program includes it once. */
#ifndef BALLAST_TEST_VIRTIO_FAKE_TRANSPORT_H
#define BALLAST_TEST_VIRTIO_FAKE_TRANSPORT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "drivers/virtio/virtio.h"

#define FAKE_CONFIG_SIZE 64

struct fake_transport {
	/* behaviour */
	bool modern;
	uint64_t offered;
	uint64_t must_accept;       /* FEATURES_OK is refused unless all of these are accepted */
	unsigned reset_reads;       /* status reads that still show the old value after a reset */
	unsigned generation_moves;  /* config reads during which the generation changes */
	/* state */
	uint8_t status;
	uint64_t driver_features;
	uint32_t generation;
	uint8_t config[FAKE_CONFIG_SIZE];
	unsigned config_reads;
	uint8_t pending_status_after_reset;
};

static char fake_last_log[512];

/* kdebug lines are logged too: tests see them all */
bool log_verbose = true;

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fake_last_log, sizeof(fake_last_log), fmt, ap);
	va_end(ap);
}

static struct fake_transport *fake_of(struct virtio_dev *vd) { return vd->transport; }

static uint8_t fake_get_status(struct virtio_dev *vd)
{
	struct fake_transport *t = fake_of(vd);
	if (t->reset_reads) {
		t->reset_reads--;
		return t->pending_status_after_reset;
	}
	return t->status;
}

static void fake_set_status(struct virtio_dev *vd, uint8_t status)
{
	struct fake_transport *t = fake_of(vd);
	if (status == 0) {
		t->pending_status_after_reset = t->status; /* still reads as before for a while */
		t->status = 0;
		t->driver_features = 0;
		return;
	}
	t->reset_reads = 0; /* the driver saw the reset through */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    (t->driver_features & t->must_accept) != t->must_accept)
		status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	t->status = status;
}

static uint64_t fake_get_features(struct virtio_dev *vd) { return fake_of(vd)->offered; }

static void fake_set_features(struct virtio_dev *vd, uint64_t features)
{
	fake_of(vd)->driver_features = features;
}

static uint32_t fake_generation(struct virtio_dev *vd) { return fake_of(vd)->generation; }

static uint32_t fake_config_read(struct virtio_dev *vd, unsigned off, unsigned width)
{
	struct fake_transport *t = fake_of(vd);
	t->config_reads++;
	if (t->generation_moves) {
		t->generation_moves--;
		t->generation++;
	}
	uint32_t v = 0;
	if (off < FAKE_CONFIG_SIZE && width <= FAKE_CONFIG_SIZE - off)
		memcpy(&v, t->config + off, width);
	return v;
}

static void fake_config_write(struct virtio_dev *vd, unsigned off, unsigned width, uint32_t v)
{
	struct fake_transport *t = fake_of(vd);
	if (off < FAKE_CONFIG_SIZE && width <= FAKE_CONFIG_SIZE - off)
		memcpy(t->config + off, &v, width);
}

static const struct virtio_ops fake_modern_ops = {
	.name = "fake-modern", .modern = true,
	.get_status = fake_get_status, .set_status = fake_set_status,
	.get_features = fake_get_features, .set_features = fake_set_features,
	.config_generation = fake_generation, .config_read = fake_config_read, .config_write = fake_config_write,
};

static const struct virtio_ops fake_legacy_ops = {
	.name = "fake-legacy", .modern = false,
	.get_status = fake_get_status, .set_status = fake_set_status,
	.get_features = fake_get_features, .set_features = fake_set_features,
	.config_generation = fake_generation, .config_read = fake_config_read, .config_write = fake_config_write,
};

static struct virtio_dev fake_dev(struct fake_transport *t, unsigned config_size)
{
	return (struct virtio_dev){ .ops = t->modern ? &fake_modern_ops : &fake_legacy_ops, .transport = t,
	                            .name = "fake", .config_size = config_size };
}

#endif
