/* The kernel's own 4-level page tables: RAM identity-mapped (the direct
 * map, physical page 0 left out so NULL faults), MMIO mapped uncached on
 * request, and the demand-paged heap window. */
#ifndef BALLAST_PAGING_H
#define BALLAST_PAGING_H

#include <stdbool.h>
#include <stdint.h>
#include "boot/boot_info.h"

#define PTE_PRESENT  (1ull << 0)
#define PTE_WRITABLE (1ull << 1)
#define PTE_PWT      (1ull << 3)
#define PTE_PCD      (1ull << 4)
#define PTE_LARGE    (1ull << 7) /* 2 MiB page in a page directory */
#define PTE_ADDR_MASK 0x000ffffffffff000ull
#define PTE_FLAGS_RAM  (PTE_PRESENT | PTE_WRITABLE)
#define PTE_FLAGS_MMIO (PTE_PRESENT | PTE_WRITABLE | PTE_PCD | PTE_PWT) /* UC with the default PAT */

/* Builds the tables from the boot memory map and switches CR3 to them. */
int paging_init(const struct boot_info *bi);
/* Identity-maps [pa, pa + size) uncached; returns the virtual address
 * (equal to pa) or NULL if page tables could not be allocated. */
void *paging_map_mmio(uint64_t pa, uint64_t size);
/* Makes firmware tables readable at their physical address: nothing to do
 * for RAM in the direct map, an uncached mapping otherwise. */
int paging_map_firmware(uint64_t pa, uint64_t size);
int paging_map_page(uint64_t va, uint64_t pa, uint64_t flags);
/* Creates the page tables that 4 KiB mappings in [start, end) will need,
 * so that mapping there later needs no memory. */
int paging_prepare_tables(uint64_t start, uint64_t end);
/* Frees the page tables whose whole span lies in [start, end) and that map
 * nothing: what paging_prepare_tables made for a growth that then failed. */
void paging_release_tables(uint64_t start, uint64_t end);
/* Unmaps a 4 KiB page; returns its physical address or 0 if none. */
uint64_t paging_unmap_page(uint64_t va);
bool paging_is_mapped(uint64_t va);
/* Page-table pages allocated so far. */
uint64_t paging_table_pages(void);
/* The #PF hook: returns 0 if the fault was resolved (heap demand paging). */
int paging_handle_fault(uint64_t addr, uint64_t error);

#endif
