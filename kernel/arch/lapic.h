#ifndef BALLAST_LAPIC_H
#define BALLAST_LAPIC_H

#include <stdint.h>

int lapic_init(uint64_t madt_lapic_phys);
uint32_t lapic_id(void);
/* Ends the interrupt being served (for level-triggered IOAPIC lines this is
 * what lets the line be sampled again). */
void lapic_eoi(void);

#endif
