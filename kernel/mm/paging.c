#include <inttypes.h>
#include <string.h>
#include "kernel/arch/cpu.h"
#include "kernel/log.h"
#include "kernel/mm/heap.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/paging.h"

#define LARGE_PAGE_SIZE (1ull << 21)
#define ENTRIES 512
/* 4-level paging: virtual addresses below 2^47 are the lower canonical half. */
#define CANONICAL_LOW_BITS 47
#define CPUID_EXT_MAX_LEAF 0x80000000u
#define CPUID_EXT_ADDRESS_SIZES 0x80000008u /* EAX[7:0]: physical address bits */
#define CPUID_DEFAULT_PHYS_BITS 36          /* without that leaf (Intel SDM 4.1.4) */

static uint64_t *pml4;
static uint64_t pml4_phys;
static uint64_t table_pages;

static unsigned index_at(uint64_t va, unsigned level) /* level 4 = PML4 .. 1 = PT */
{
	return (va >> (PAGE_SHIFT + 9 * (level - 1))) & (ENTRIES - 1);
}

static uint64_t *new_table(uint64_t *pa_out)
{
	uint64_t pa = page_alloc(0);
	if (pa == PMM_NO_PAGE)
		return NULL;
	table_pages++;
	uint64_t *t = phys_to_virt(pa);
	memset(t, 0, PAGE_SIZE);
	*pa_out = pa;
	return t;
}

/* Replaces a 2 MiB mapping with a page table mapping the same 512 pages,
 * so that part of it can get other attributes. */
static int split_large(uint64_t *pde)
{
	uint64_t pt_pa;
	uint64_t *pt = new_table(&pt_pa);
	if (!pt)
		return -1;
	uint64_t base = *pde & PTE_ADDR_MASK;
	uint64_t flags = *pde & ~PTE_ADDR_MASK & ~PTE_LARGE;
	for (unsigned i = 0; i < ENTRIES; i++)
		pt[i] = (base + i * PAGE_SIZE) | flags;
	*pde = pt_pa | PTE_PRESENT | PTE_WRITABLE;
	write_cr3(read_cr3()); /* the old 2 MiB translation may be cached */
	return 0;
}

/* The entry for va at the given level, creating tables on the way down.
 * Returns NULL if a table could not be allocated (or, without create, if
 * none is there). */
static uint64_t *walk(uint64_t va, unsigned level, bool create)
{
	uint64_t *table = pml4;
	for (unsigned l = 4; l > level; l--) {
		uint64_t *e = &table[index_at(va, l)];
		if ((*e & PTE_PRESENT) && (*e & PTE_LARGE)) {
			if (!create || split_large(e) < 0)
				return NULL;
		}
		if (!(*e & PTE_PRESENT)) {
			uint64_t pa;
			if (!create || !new_table(&pa))
				return NULL;
			*e = pa | PTE_PRESENT | PTE_WRITABLE;
		}
		table = phys_to_virt(*e & PTE_ADDR_MASK);
	}
	return &table[index_at(va, level)];
}

int paging_map_page(uint64_t va, uint64_t pa, uint64_t flags)
{
	uint64_t *pte = walk(va, 1, true);
	if (!pte)
		return -1;
	*pte = (pa & PTE_ADDR_MASK) | flags;
	invlpg(va);
	return 0;
}

static int map_range(uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
	uint64_t end = va + size;
	while (va < end) {
		if (!(va & (LARGE_PAGE_SIZE - 1)) && !(pa & (LARGE_PAGE_SIZE - 1)) && end - va >= LARGE_PAGE_SIZE) {
			uint64_t *pde = walk(va, 2, true);
			if (!pde)
				return -1;
			/* keep an existing page table: it may map pages with other attributes */
			if (!(*pde & PTE_PRESENT) || (*pde & PTE_LARGE)) {
				*pde = pa | flags | PTE_LARGE;
				invlpg(va);
				va += LARGE_PAGE_SIZE;
				pa += LARGE_PAGE_SIZE;
				continue;
			}
		}
		if (paging_map_page(va, pa, flags) < 0)
			return -1;
		va += PAGE_SIZE;
		pa += PAGE_SIZE;
	}
	return 0;
}

static bool is_direct_mapped_type(uint32_t type)
{
	/* RESERVED is left out: on q35 it covers the PCIe ECAM window, which
	 * must never be mapped cacheable. */
	return type == BOOT_MEM_USABLE || type == BOOT_MEM_BOOT_RECLAIMABLE || type == BOOT_MEM_KERNEL ||
	       type == BOOT_MEM_ACPI_RECLAIM || type == BOOT_MEM_ACPI_NVS;
}

int paging_init(const struct boot_info *bi)
{
	pml4 = new_table(&pml4_phys);
	if (!pml4)
		return -1;
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_range *r = &bi->mem[i];
		if (!is_direct_mapped_type(r->type))
			continue;
		uint64_t base = r->base < PAGE_SIZE ? PAGE_SIZE : r->base; /* page 0 stays unmapped */
		uint64_t end = r->base + r->size;
		if (end > base && map_range(base, base, end - base, PTE_FLAGS_RAM) < 0)
			return -1;
	}
	write_cr3(pml4_phys);
	return 0;
}

/* Where an identity mapping of device or firmware memory may go: below
 * the CPU's physical address width (a PTE with a higher address has
 * reserved bits set, and the access faults) and inside the lower canonical
 * half (the virtual address is the physical one). Addresses come from ACPI
 * tables, BARs and the command line: anything can be there. */
static bool identity_mappable(uint64_t pa, uint64_t size)
{
	static uint64_t limit;
	if (!limit) {
		uint32_t r[4];
		cpuid(CPUID_EXT_MAX_LEAF, 0, r);
		unsigned bits = CPUID_DEFAULT_PHYS_BITS;
		if (r[0] >= CPUID_EXT_ADDRESS_SIZES) {
			cpuid(CPUID_EXT_ADDRESS_SIZES, 0, r);
			bits = r[0] & 0xff;
		}
		limit = 1ull << (bits < CANONICAL_LOW_BITS ? bits : CANONICAL_LOW_BITS);
	}
	return size != 0 && pa < limit && size <= limit - pa;
}

void *paging_map_mmio(uint64_t pa, uint64_t size)
{
	if (!identity_mappable(pa, size)) {
		klog("paging: not mapping 0x%" PRIx64 "+0x%" PRIx64 ": beyond the physical address space", pa, size);
		return NULL;
	}
	uint64_t start = pa & ~(PAGE_SIZE - 1);
	uint64_t end = (pa + size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	for (uint64_t a = start; a < end; a += PAGE_SIZE)
		if (paging_map_page(a, a, PTE_FLAGS_MMIO) < 0)
			return NULL;
	return (void *)(uintptr_t)pa;
}

bool paging_is_mapped(uint64_t va)
{
	uint64_t *table = pml4;
	for (unsigned l = 4; l >= 1; l--) {
		uint64_t e = table[index_at(va, l)];
		if (!(e & PTE_PRESENT))
			return false;
		if (l == 1 || (e & PTE_LARGE))
			return true;
		table = phys_to_virt(e & PTE_ADDR_MASK);
	}
	return false;
}

int paging_map_firmware(uint64_t pa, uint64_t size)
{
	if (!identity_mappable(pa, size)) {
		klog("paging: firmware table at 0x%" PRIx64 "+0x%" PRIx64 " is beyond the physical address space", pa,
		     size);
		return -1;
	}
	if (!pml4)
		return 0; /* still on the firmware's identity map */
	for (uint64_t a = pa & ~(PAGE_SIZE - 1); a < pa + size; a += PAGE_SIZE)
		if (!paging_is_mapped(a) && paging_map_page(a, a, PTE_FLAGS_MMIO) < 0)
			return -1;
	return 0;
}

int paging_prepare_tables(uint64_t start, uint64_t end)
{
	/* one page table covers 2 MiB: one walk per 2 MiB step, and the last */
	for (uint64_t va = start; va < end; va = (va | (LARGE_PAGE_SIZE - 1)) + 1)
		if (!walk(va, 1, true))
			return -1;
	return 0;
}

/* Frees the tables under `table` (at `level`, its first entry mapping
 * `base`) whose whole span lies in [start, end) and that map nothing;
 * returns whether `table` itself maps nothing any more. */
static bool release_empty(uint64_t *table, unsigned level, uint64_t base, uint64_t start, uint64_t end)
{
	uint64_t span = 1ull << (PAGE_SHIFT + 9 * (level - 1));
	bool empty = true;
	for (unsigned i = 0; i < ENTRIES; i++) {
		uint64_t va = base + i * span, e = table[i];
		if (!(e & PTE_PRESENT))
			continue;
		if (level > 1 && !(e & PTE_LARGE) && va < end && va + span > start &&
		    release_empty(phys_to_virt(e & PTE_ADDR_MASK), level - 1, va, start, end) &&
		    va >= start && va + span <= end) {
			table[i] = 0;
			page_free(e & PTE_ADDR_MASK, 0);
			table_pages--;
			continue;
		}
		empty = false;
	}
	return empty;
}

void paging_release_tables(uint64_t start, uint64_t end)
{
	uint64_t before = table_pages;
	release_empty(pml4, 4, 0, start, end);
	if (table_pages != before)
		write_cr3(read_cr3()); /* the paging-structure caches may hold a freed table */
}

uint64_t paging_unmap_page(uint64_t va)
{
	uint64_t *pte = walk(va, 1, false);
	if (!pte || !(*pte & PTE_PRESENT))
		return 0;
	uint64_t pa = *pte & PTE_ADDR_MASK;
	*pte = 0;
	invlpg(va);
	return pa;
}

uint64_t paging_table_pages(void) { return table_pages; }

#define PF_ERROR_PRESENT 0x1

int paging_handle_fault(uint64_t addr, uint64_t error)
{
	if (!(error & PF_ERROR_PRESENT) && heap_handle_fault(addr) == 0)
		return 0;
	heap_explain_fault(addr);
	return -1;
}
