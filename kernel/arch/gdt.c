/* The kernel's own GDT and TSS: the firmware's live in boot-services memory,
 * which the page allocator takes over. The TSS exists only for its IST
 * stack, so a double fault (for instance a kernel stack overflow) still runs
 * on a good stack and prints its report. */
#include <stdint.h>
#include "kernel/arch/arch.h"

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "TSS is 104 bytes (SDM vol. 3, 8.7)");

struct gdt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define GDT_ACCESS_PRESENT 0x80
#define GDT_ACCESS_CODE    0x9a /* present, ring 0, code, readable */
#define GDT_ACCESS_DATA    0x92 /* present, ring 0, data, writable */
#define GDT_ACCESS_TSS     0x89 /* present, 64-bit TSS (available) */
#define GDT_FLAG_LONG      0x20 /* L bit: 64-bit code segment */
#define GDT_FLAG_GRAN4K    0x80

static uint64_t gdt[5];
static struct tss tss;
static uint8_t double_fault_stack[8192] __attribute__((aligned(16)));

static uint64_t gdt_segment(uint8_t access, uint8_t flags)
{
	return ((uint64_t)access << 40) | ((uint64_t)(flags | 0x0f) << 48) | 0xffff;
}

void gdt_init(void)
{
	uint64_t tss_base = (uint64_t)(uintptr_t)&tss;
	uint64_t tss_limit = sizeof(tss) - 1;

	gdt[0] = 0;
	gdt[GDT_KERNEL_CODE / 8] = gdt_segment(GDT_ACCESS_CODE, GDT_FLAG_LONG | GDT_FLAG_GRAN4K);
	gdt[GDT_KERNEL_DATA / 8] = gdt_segment(GDT_ACCESS_DATA, GDT_FLAG_GRAN4K);
	gdt[GDT_TSS / 8] = (tss_limit & 0xffff) | ((tss_base & 0xffffff) << 16) |
	                   ((uint64_t)GDT_ACCESS_TSS << 40) | (((tss_base >> 24) & 0xff) << 56);
	gdt[GDT_TSS / 8 + 1] = tss_base >> 32;

	tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)(uintptr_t)(double_fault_stack + sizeof(double_fault_stack));
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */

	struct gdt_ptr ptr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
	__asm__ volatile(
		"lgdt %0\n\t"
		"mov %1, %%ds\n\t"
		"mov %1, %%es\n\t"
		"mov %1, %%ss\n\t"
		"xor %%eax, %%eax\n\t"
		"mov %%ax, %%fs\n\t"
		"mov %%ax, %%gs\n\t"
		/* a far return is the only way to reload CS in long mode */
		"pushq %2\n\t"
		"lea 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"ltr %w3"
		:
		: "m"(ptr), "r"((uint64_t)GDT_KERNEL_DATA), "i"(GDT_KERNEL_CODE), "r"(GDT_TSS)
		: "rax", "memory");
}
