/* Helpers shared by the boot front ends for building struct boot_info. */
#include "boot/boot_info.h"

const char *boot_mem_type_name(uint32_t type)
{
	switch (type) {
	case BOOT_MEM_USABLE:           return "usable";
	case BOOT_MEM_BOOT_RECLAIMABLE: return "boot-reclaimable";
	case BOOT_MEM_KERNEL:           return "kernel";
	case BOOT_MEM_RESERVED:         return "reserved";
	case BOOT_MEM_ACPI_RECLAIM:     return "acpi-reclaim";
	case BOOT_MEM_ACPI_NVS:         return "acpi-nvs";
	case BOOT_MEM_MMIO:             return "mmio";
	default:                        return "unknown";
	}
}

int boot_mem_add(struct boot_info *bi, uint64_t base, uint64_t size, uint32_t type)
{
	if (size == 0)
		return 0;
	if (bi->mem_count >= BOOT_MEM_MAX)
		return -1;
	bi->mem[bi->mem_count++] = (struct boot_mem_range){ base, size, type };
	return 0;
}

int boot_mem_carve(struct boot_info *bi, uint64_t base, uint64_t size, uint32_t type)
{
	if (size == 0)
		return 0; /* else a range around base would be split for nothing */
	/* last bytes, not ends: a range may end at the top of the address space */
	uint64_t last = base + size - 1;
	uint32_t count = bi->mem_count; /* pieces appended below need no look */
	int ret = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct boot_mem_range r = bi->mem[i];
		uint64_t r_last = r.base + r.size - 1;
		if (r.size == 0 || r_last < base || r.base > last || r.type == type)
			continue;
		uint64_t lo = r.base > base ? r.base : base;
		uint64_t hi = r_last < last ? r_last : last;
		/* The overlap takes the slot; what is left either side is appended.
		 * With the table full a piece is dropped (which only loses memory)
		 * and the carve goes on: no part of it may keep its old type. */
		bi->mem[i] = (struct boot_mem_range){ lo, hi - lo + 1, type };
		if (r.base < lo && boot_mem_add(bi, r.base, lo - r.base, r.type) < 0)
			ret = -1;
		if (hi < r_last && boot_mem_add(bi, hi + 1, r_last - hi, r.type) < 0)
			ret = -1;
	}
	return ret;
}

#define PAGE_ZERO_SIZE 4096

/* Merges neighbours of one type; the ranges must be sorted. Two that
 * together cover all 2^64 bytes stay apart: their size does not fit. */
static void merge_ranges(struct boot_info *bi)
{
	uint32_t out = 0;
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		struct boot_mem_range *prev = out ? &bi->mem[out - 1] : 0;
		if (prev && prev->type == bi->mem[i].type && prev->base + prev->size == bi->mem[i].base &&
		    prev->size <= UINT64_MAX - bi->mem[i].size)
			prev->size += bi->mem[i].size;
		else
			bi->mem[out++] = bi->mem[i];
	}
	bi->mem_count = out;
}

void boot_mem_finalize(struct boot_info *bi)
{
	/* insertion sort: firmware maps are short and nearly sorted */
	for (uint32_t i = 1; i < bi->mem_count; i++) {
		struct boot_mem_range r = bi->mem[i];
		uint32_t j = i;
		for (; j > 0 && bi->mem[j - 1].base > r.base; j--)
			bi->mem[j] = bi->mem[j - 1];
		bi->mem[j] = r;
	}
	/* Merged before page 0 is looked at: a byte-granular map may describe
	 * page 0 in pieces of one type (the first piece then being shorter than
	 * a page), and merging frees table slots for the reserved range. */
	merge_ranges(bi);
	struct boot_mem_range *first = &bi->mem[0];
	/* One type over all 2^64 bytes stays two ranges (merge_ranges), and
	 * the first may be shorter than page 0: give it page 0 whole from the
	 * second, so that page 0 goes as below and the rest then merges. */
	if (bi->mem_count > 1 && first->base == 0 && first->size < PAGE_ZERO_SIZE &&
	    bi->mem[1].type == first->type && bi->mem[1].base == first->size) {
		bi->mem[1].size -= PAGE_ZERO_SIZE - first->size;
		bi->mem[1].base = PAGE_ZERO_SIZE;
		first->size = PAGE_ZERO_SIZE;
	}
	if (bi->mem_count > 0 && first->base == 0 && first->type != BOOT_MEM_RESERVED &&
	    first->size >= PAGE_ZERO_SIZE) {
		first->base += PAGE_ZERO_SIZE;
		first->size -= PAGE_ZERO_SIZE;
		if (first->size == 0) {
			for (uint32_t j = 0; j + 1 < bi->mem_count; j++)
				bi->mem[j] = bi->mem[j + 1];
			bi->mem_count--;
		}
		/* With the table full, page 0 is left out of the map instead: to
		 * the kernel that is as good as reserved (neither allocated nor
		 * mapped), only the log does not show it. */
		if (bi->mem_count < BOOT_MEM_MAX) {
			for (uint32_t j = bi->mem_count; j > 0; j--)
				bi->mem[j] = bi->mem[j - 1];
			bi->mem_count++;
			bi->mem[0] = (struct boot_mem_range){ 0, PAGE_ZERO_SIZE, BOOT_MEM_RESERVED };
		}
	}
	/* the new reserved page may border reserved memory */
	merge_ranges(bi);
}
