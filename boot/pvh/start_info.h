/* The PVH boot protocol's start info (Xen public/arch-x86/hvm/start_info.h,
 * which QEMU implements for -kernel with a PVH ELF note). */
#ifndef BALLAST_PVH_START_INFO_H
#define BALLAST_PVH_START_INFO_H

#include <stdint.h>

#define HVM_START_MAGIC_VALUE 0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;       /* 1 and up have the memory map */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr; /* NUL-terminated ASCII, 0 if none */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "start_info.h");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_paddr) == 40, "start_info.h");

/* E820 types */
#define HVM_MEMMAP_RAM      1
#define HVM_MEMMAP_RESERVED 2
#define HVM_MEMMAP_ACPI     3
#define HVM_MEMMAP_NVS      4
#define HVM_MEMMAP_UNUSABLE 5

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "start_info.h");

#endif
