/* The virtio-balloon driver: statistics answered from the memory manager,
 * the host's target followed, free pages reported. It never touches a
 * register: everything goes through the virtio core and the queue API. */
#ifndef BALLAST_BALLOON_H
#define BALLAST_BALLOON_H

#include "drivers/virtio/virtio.h"

/* The core's driver entry points (drivers/virtio/virtio_drivers.c). */
int balloon_probe(struct virtio_dev *vd);
void balloon_config_changed(struct virtio_dev *vd);
/* Registers the balloon's console commands and applies the boot-time
 * stats settings of the command line. */
void balloon_console_init(const char *cmdline);

#endif
