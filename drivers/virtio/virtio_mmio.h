/* virtio over MMIO (virtio 1.2, 4.2), version 2 (modern) and version 1
 * (legacy), as QEMU's microvm machine provides them. */
#ifndef BALLAST_VIRTIO_MMIO_H
#define BALLAST_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIRTIO_MMIO_MAGIC_VALUE        0x000
#define VIRTIO_MMIO_VERSION            0x004
#define VIRTIO_MMIO_DEVICE_ID          0x008
#define VIRTIO_MMIO_VENDOR_ID          0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES    0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES    0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_GUEST_PAGE_SIZE    0x028 /* version 1 */
#define VIRTIO_MMIO_QUEUE_SEL          0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX      0x034
#define VIRTIO_MMIO_QUEUE_NUM          0x038
#define VIRTIO_MMIO_QUEUE_ALIGN        0x03c /* version 1 */
#define VIRTIO_MMIO_QUEUE_PFN          0x040 /* version 1 */
#define VIRTIO_MMIO_QUEUE_READY        0x044 /* version 2 */
#define VIRTIO_MMIO_QUEUE_NOTIFY       0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS   0x060
#define VIRTIO_MMIO_INTERRUPT_ACK      0x064
#define VIRTIO_MMIO_STATUS             0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW     0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH    0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW    0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW     0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH    0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION  0x0fc /* version 2 */
#define VIRTIO_MMIO_CONFIG             0x100

#define VIRTIO_MMIO_MAGIC  0x74726976u /* "virt" */
#define VIRTIO_MMIO_LEGACY 1
#define VIRTIO_MMIO_MODERN 2
#define VIRTIO_MMIO_MIN_SIZE 0x200     /* registers plus a small config */
/* What is mapped of a device's window, however large the command line says
 * it is: the registers and 3840 bytes of config, far more than any device
 * type's config needs. */
#define VIRTIO_MMIO_MAP_MAX 0x1000

/* One "virtio_mmio.device=<size>@<base>:<irq>" word (the form QEMU adds to
 * the command line on microvm; size takes K/M/G, base 0x hex). Pure,
 * unit-tested. Returns false for anything malformed or out of range. */
bool virtio_mmio_parse_device(const char *word, uint64_t *size, uint64_t *base, uint32_t *irq);

/* Probes every device the command line names; returns how many had a
 * driver. */
unsigned virtio_mmio_probe_all(const char *cmdline, bool polled);

#endif
