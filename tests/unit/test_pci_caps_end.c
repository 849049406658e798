/* Regression test for a finding of tests/fuzz/fuzz_pci_caps.c: a
 * capability pointer of 0x01, 0x02 or 0x03. Its two low bits are reserved
 * and software must mask them off (PCI Local Bus 3.0, 6.7), which makes it
 * 0x00: the end of the list (or, as the list head, no list). pci_cap_find
 * masked them only after deciding whether the list went on, so it took
 * such a pointer for one into the header and the whole list for malformed:
 * virtio-pci refused the device, msix_parse called MSI-X malformed.
 *
 * The config space reader is test_pci_caps.c's in small: 256 bytes, and
 * reads past them counted (there must be none). */
#include "drivers/pci/msix.h"
#include "drivers/pci/pci.h"
#include "drivers/pci/pci_caps.h"
#include "drivers/virtio/virtio_pci.h"
#include "tests/unit/check.h"

static uint8_t cfg[PCI_CFG_SIZE];
static unsigned long oob_reads;

static uint8_t rd(const void *ctx, uint16_t off)
{
	(void)ctx;
	if (off >= PCI_CFG_SIZE) {
		oob_reads++;
		return 0xff;
	}
	return cfg[off];
}

static void reset(uint8_t head)
{
	memset(cfg, 0, sizeof cfg);
	cfg[PCI_STATUS] = PCI_STATUS_CAP_LIST;
	cfg[PCI_CAP_PTR] = head;
}

static void put32(unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		cfg[off + i] = (uint8_t)(v >> 8 * i);
}

/* A virtio vendor capability in BAR 4, 20 bytes (room for the notify
 * multiplier, which the other types ignore). */
static void put_vcap(uint8_t off, uint8_t next, uint8_t type, uint32_t offset)
{
	cfg[off] = PCI_CAP_ID_VENDOR;
	cfg[off + 1] = next;
	cfg[off + 2] = 20;
	cfg[off + 3] = type;
	cfg[off + 4] = 4;
	put32(off + 8u, offset);
	put32(off + 12u, 0x1000);
	put32(off + 16u, 4);
}

int main(void)
{
	for (uint8_t end = 1; end <= 3; end++) {
		/* two capabilities, the second's next pointer 0x0<end> */
		reset(0x40);
		cfg[0x40] = 0x01; /* power management */
		cfg[0x41] = 0x50;
		cfg[0x50] = PCI_CAP_ID_VENDOR;
		cfg[0x51] = end;
		CHECK_EQ_U64(pci_cap_find(rd, NULL, PCI_CAP_ID_VENDOR, 0), 0x50);
		/* & and not &&: both checks run and count either way */
		if (!(CHECK_EQ_U64(pci_cap_find(rd, NULL, PCI_CAP_ID_VENDOR, 0x50), 0) &
		      CHECK_EQ_U64(pci_cap_find(rd, NULL, PCI_CAP_ID_MSIX, 0), 0)))
			fprintf(stderr, "    last next pointer 0x%02x\n", end);

		/* as the list head: no capabilities at all */
		reset(end);
		if (!CHECK_EQ_U64(pci_cap_find(rd, NULL, PCI_CAP_ID_VENDOR, 0), 0))
			fprintf(stderr, "    head pointer 0x%02x\n", end);

		/* QEMU's virtio-pci list with such an end: usable, and no MSI-X
		 * is absent MSI-X, not a malformed one */
		reset(0x40);
		put_vcap(0x40, 0x58, VIRTIO_PCI_CAP_COMMON_CFG, 0);
		put_vcap(0x58, 0x70, VIRTIO_PCI_CAP_ISR_CFG, 0x1000);
		put_vcap(0x70, 0x88, VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000);
		put_vcap(0x88, end, VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000);
		struct virtio_pci_bar_info bars[PCI_BARS] = { [4] = { 0x4000, false } };
		struct virtio_pci_cap found[VIRTIO_PCI_CAP_PCI_CFG + 1];
		uint32_t mult = 0;
		const char *why = "";
		if (!CHECK_EQ_U64(virtio_pci_parse_caps(rd, NULL, bars, found, &mult, &why), 0))
			fprintf(stderr, "    virtio-pci, last next pointer 0x%02x: %s\n", end, why);
		CHECK_EQ_U64(mult, 4);
		uint64_t sizes[PCI_BARS] = { 0, 0, 0, 0, 0x4000, 0 };
		bool io[PCI_BARS] = { false };
		struct msix_info m;
		CHECK_EQ_U64(msix_parse(rd, NULL, sizes, io, &m), 0);
	}
	CHECK_EQ_U64(oob_reads, 0);
	return check_summary("pci_caps_end");
}
