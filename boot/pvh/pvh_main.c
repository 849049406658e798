/* PVH front end: fills struct boot_info from hvm_start_info (memory map,
 * command line, RSDP) and calls kmain. Runs on the boot page tables, which
 * identity-map the first 4 GiB; QEMU puts the start info below 1 MiB. */
#include <string.h>
#include "boot/boot_info.h"
#include "boot/pvh/start_info.h"
#include "kernel/arch/cpu.h"

#define COM1_PORT 0x3f8
#define BOOT_INFO_LIMIT 0x100000000ull /* what the boot page tables map */

extern uint64_t pvh_entry_tsc;
extern char __kernel_start[], __kernel_end[];

static struct boot_info boot_info;

void pvh_main(uint32_t start_info_pa);

static _Noreturn void early_fail(const char *why)
{
	for (const char *m = "ballast: pvh: "; *m; m++)
		outb(COM1_PORT, (uint8_t)*m);
	for (; *why; why++)
		outb(COM1_PORT, (uint8_t)*why);
	outb(COM1_PORT, '\r');
	outb(COM1_PORT, '\n');
	cpu_halt_forever();
}

static uint32_t e820_to_boot_type(uint32_t type)
{
	switch (type) {
	case HVM_MEMMAP_RAM:  return BOOT_MEM_USABLE;
	case HVM_MEMMAP_ACPI: return BOOT_MEM_ACPI_RECLAIM;
	case HVM_MEMMAP_NVS:  return BOOT_MEM_ACPI_NVS;
	default:              return BOOT_MEM_RESERVED;
	}
}

static void copy_cmdline(uint64_t pa)
{
	if (!pa || pa >= BOOT_INFO_LIMIT)
		return;
	const char *s = (const char *)(uintptr_t)pa;
	size_t n = 0;
	for (; s[n] && n + 1 < BOOT_CMDLINE_MAX; n++)
		boot_info.cmdline[n] = (s[n] >= 0x20 && s[n] <= 0x7e) ? s[n] : ' ';
	boot_info.cmdline[n] = '\0';
}

void pvh_main(uint32_t start_info_pa)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)start_info_pa;
	boot_info.entry_tsc = pvh_entry_tsc;
	boot_info.front_end = "pvh";
	if (si->magic != HVM_START_MAGIC_VALUE)
		early_fail("bad start info magic");
	if (si->version < 1 || !si->memmap_paddr || si->memmap_paddr >= BOOT_INFO_LIMIT)
		early_fail("no memory map in the start info");
	boot_info.rsdp = si->rsdp_paddr;
	copy_cmdline(si->cmdline_paddr);
	const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries && i < BOOT_MEM_MAX; i++)
		boot_mem_add(&boot_info, e[i].addr, e[i].size, e820_to_boot_type(e[i].type));
	/* The map calls the image's memory RAM; it is the kernel's. Everything
	 * else QEMU gave us (start info, map, command line) has been copied. */
	uint64_t start = (uint64_t)(uintptr_t)__kernel_start & ~0xfffull;
	uint64_t end = ((uint64_t)(uintptr_t)__kernel_end + 0xfff) & ~0xfffull;
	boot_mem_carve(&boot_info, start, end - start, BOOT_MEM_KERNEL);
	boot_mem_finalize(&boot_info);
	kmain(&boot_info);
}
