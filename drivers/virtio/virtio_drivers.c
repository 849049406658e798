/* The drivers ballast has, and the one bring-up path every transport's
 * devices take to them. */
#include <stdio.h>
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/virtio.h"
#include "kernel/log.h"
#include "lib/util.h"

static const struct virtio_driver drivers[] = {
	{ VIRTIO_ID_BALLOON, "virtio-balloon", "balloon", balloon_probe, balloon_config_changed },
};

const struct virtio_driver *virtio_driver_for(uint16_t device_id)
{
	for (unsigned i = 0; i < ARRAY_SIZE(drivers); i++)
		if (drivers[i].device_id == device_id)
			return &drivers[i];
	return NULL;
}

bool virtio_dev_add(struct virtio_dev *vd, uint16_t device_id, const char *where)
{
	const struct virtio_driver *drv = virtio_driver_for(device_id);
	if (!drv)
		return false;
	vd->driver = drv;
	snprintf(vd->name, sizeof(vd->name), "%s %s", drv->name, where);
	if (drv->probe(vd) < 0)
		klog("%s: driver probe failed", vd->name);
	return true;
}
