/* ACPI table lookup: just enough for the interrupt controllers (MADT) and,
 * for PCI, the ECAM window (MCFG). */
#ifndef BALLAST_ACPI_H
#define BALLAST_ACPI_H

#include <stdint.h>

struct acpi_sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_sdt_header) == 36, "ACPI 6.5, 5.2.6");

/* Remembers the RSDP (physical address, 0 if none); returns 0 if it is valid. */
int acpi_init(uint64_t rsdp_phys);
/* A checksummed table with this signature, or NULL. */
const struct acpi_sdt_header *acpi_find_table(const char sig[4]);

#endif
