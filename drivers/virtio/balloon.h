/* The virtio-balloon driver: statistics answered from the memory manager.
 * It never touches a register: everything goes through virtio_dev. */
#ifndef BALLAST_BALLOON_H
#define BALLAST_BALLOON_H

#include "drivers/virtio/virtio.h"

int balloon_probe(struct virtio_dev *vd);
/* Registers the balloon's console commands and applies the boot-time
 * stats settings of the command line. */
void balloon_console_init(const char *cmdline);

#endif
