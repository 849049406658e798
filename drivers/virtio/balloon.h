/* The virtio-balloon driver: statistics answered from the memory manager.
 * It never touches a register: everything goes through virtio_dev. */
#ifndef BALLAST_BALLOON_H
#define BALLAST_BALLOON_H

#include "drivers/virtio/virtio.h"

int balloon_probe(struct virtio_dev *vd);
/* Registers the balloon's console commands. */
void balloon_console_init(void);

#endif
