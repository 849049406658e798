/* RSDP -> XSDT (or RSDT) -> tables. Every table is checksummed and its
 * length bounded before use: the firmware's tables are input like any
 * other. */
#include <string.h>
#include "kernel/arch/acpi.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;        /* revision >= 2 from here on */
	uint64_t xsdt_address;
	uint8_t extended_checksum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "ACPI 6.5, 5.2.5.3");
_Static_assert(__builtin_offsetof(struct acpi_rsdp, xsdt_address) == 24, "XSDT address offset");

#define ACPI_RSDP_V1_LENGTH 20
#define ACPI_TABLE_MAX_LENGTH (1u << 20) /* sanity bound for firmware tables */

static const struct acpi_sdt_header *root;
static unsigned root_entry_size; /* 8 for the XSDT, 4 for the RSDT */

static uint8_t checksum(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum += b[i];
	return sum;
}

static const struct acpi_sdt_header *map_table(uint64_t phys)
{
	if (phys == 0 || paging_map_firmware(phys, sizeof(struct acpi_sdt_header)) < 0)
		return NULL;
	const struct acpi_sdt_header *h = (const void *)(uintptr_t)phys;
	if (h->length < sizeof(*h) || h->length > ACPI_TABLE_MAX_LENGTH)
		return NULL;
	if (paging_map_firmware(phys, h->length) < 0 || checksum(h, h->length) != 0)
		return NULL;
	return h;
}

int acpi_init(uint64_t rsdp_phys)
{
	if (rsdp_phys == 0 || paging_map_firmware(rsdp_phys, sizeof(struct acpi_rsdp)) < 0) {
		kdebug("acpi: no RSDP");
		return -1;
	}
	const struct acpi_rsdp *rsdp = (const void *)(uintptr_t)rsdp_phys;
	if (memcmp(rsdp->signature, "RSD PTR ", 8) != 0 || checksum(rsdp, ACPI_RSDP_V1_LENGTH) != 0) {
		klog("acpi: bad RSDP at 0x%" PRIx64, rsdp_phys);
		return -1;
	}
	if (rsdp->revision >= 2 && rsdp->xsdt_address &&
	    checksum(rsdp, sizeof(*rsdp)) == 0 && (root = map_table(rsdp->xsdt_address)))
		root_entry_size = 8;
	else if ((root = map_table(rsdp->rsdt_address)))
		root_entry_size = 4;
	if (!root) {
		klog("acpi: no valid XSDT or RSDT");
		return -1;
	}
	return 0;
}

const struct acpi_sdt_header *acpi_find_table(const char sig[4])
{
	if (!root)
		return NULL;
	const uint8_t *entries = (const uint8_t *)(root + 1);
	uint32_t count = (root->length - sizeof(*root)) / root_entry_size;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t phys = 0;
		memcpy(&phys, entries + i * root_entry_size, root_entry_size);
		const struct acpi_sdt_header *h = map_table(phys);
		if (h && memcmp(h->signature, sig, 4) == 0)
			return h;
	}
	return NULL;
}
