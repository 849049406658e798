/* The whole contract between a boot front end (boot/efi, boot/pvh) and the
 * kernel: nothing above boot/ knows which front end ran. */
#ifndef BALLAST_BOOT_INFO_H
#define BALLAST_BOOT_INFO_H

#include <stdint.h>

enum boot_mem_type {
	BOOT_MEM_USABLE = 1,       /* free RAM, the allocator's from the start */
	BOOT_MEM_BOOT_RECLAIMABLE, /* firmware boot-time RAM: free once the kernel
	                            * runs on its own stack and page tables */
	BOOT_MEM_KERNEL,           /* the kernel image and the loader's data */
	BOOT_MEM_RESERVED,
	BOOT_MEM_ACPI_RECLAIM,
	BOOT_MEM_ACPI_NVS,
	BOOT_MEM_MMIO,
};

struct boot_mem_range {
	uint64_t base;
	uint64_t size;
	uint32_t type; /* enum boot_mem_type */
};

#define BOOT_MEM_MAX     256
#define BOOT_CMDLINE_MAX 512

struct boot_info {
	const char *front_end;    /* "efi" or "pvh", for the log */
	uint64_t entry_tsc;       /* TSC at the front end's first instruction */
	uint64_t rsdp;            /* physical address of the ACPI RSDP, 0 if none */
	uint32_t mem_count;
	struct boot_mem_range mem[BOOT_MEM_MAX]; /* sorted, non-overlapping */
	char cmdline[BOOT_CMDLINE_MAX];          /* NUL-terminated ASCII */
};

const char *boot_mem_type_name(uint32_t type);

/* Appends a range as the firmware describes it. Returns 0, or -1 when the
 * table is full (the range is then dropped, which only loses memory). */
int boot_mem_add(struct boot_info *bi, uint64_t base, uint64_t size, uint32_t type);
/* Gives [base, base + size) the type `type` wherever the ranges added so
 * far cover it (the PVH map calls the kernel image RAM). Returns 0, or -1
 * when the table is full. Call before boot_mem_finalize. */
int boot_mem_carve(struct boot_info *bi, uint64_t base, uint64_t size, uint32_t type);
/* Sorts the ranges, merges neighbours of one type, and reserves physical
 * page 0 (it stays unmapped so that NULL dereferences fault). */
void boot_mem_finalize(struct boot_info *bi);

/* The kernel proper. Never returns. */
_Noreturn void kmain(const struct boot_info *bi);

#endif
