/* The IDT, the C side of trap entry, and the exception report. */
#include <stdio.h>
#include <stdint.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/lapic.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"

#define ISR_STUB_SIZE 16
#define IDT_GATE_INTERRUPT 0x8e /* present, ring 0, 64-bit interrupt gate */
#define VECTOR_PAGE_FAULT   14
#define VECTOR_DOUBLE_FAULT 8
#define EXCEPTION_COUNT     32
#define IRQ_HANDLERS_PER_VECTOR 4

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gates are 16 bytes");

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

struct irq_slot {
	irq_handler_fn fn;
	void *ctx;
	const char *name;
};

extern const char isr_stubs[];
static struct idt_gate idt[VECTOR_COUNT];
static struct irq_slot irq_slots[VECTOR_COUNT][IRQ_HANDLERS_PER_VECTOR];
static uint64_t irq_counts[VECTOR_COUNT];

static const char *const exception_names[EXCEPTION_COUNT] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
	"#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

void idt_init(void)
{
	for (unsigned v = 0; v < VECTOR_COUNT; v++) {
		uint64_t addr = (uint64_t)(uintptr_t)(isr_stubs + v * ISR_STUB_SIZE);
		idt[v] = (struct idt_gate){
			.offset_lo = addr & 0xffff,
			.selector = GDT_KERNEL_CODE,
			.ist = v == VECTOR_DOUBLE_FAULT ? IST_DOUBLE_FAULT : 0,
			.type = IDT_GATE_INTERRUPT,
			.offset_mid = (addr >> 16) & 0xffff,
			.offset_hi = addr >> 32,
		};
	}
	struct idt_ptr ptr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(ptr));
}

int irq_register(unsigned vector, irq_handler_fn fn, void *ctx, const char *name)
{
	if (vector < VECTOR_IRQ_BASE || vector >= VECTOR_COUNT)
		return -1;
	for (unsigned i = 0; i < IRQ_HANDLERS_PER_VECTOR; i++) {
		if (!irq_slots[vector][i].fn) {
			irq_slots[vector][i] = (struct irq_slot){ fn, ctx, name };
			return 0;
		}
	}
	return -1;
}

uint64_t irq_count(unsigned vector) { return vector < VECTOR_COUNT ? irq_counts[vector] : 0; }

const char *irq_name(unsigned vector, unsigned handler)
{
	if (vector >= VECTOR_COUNT || handler >= IRQ_HANDLERS_PER_VECTOR)
		return NULL;
	return irq_slots[vector][handler].fn ? irq_slots[vector][handler].name : NULL;
}

/* Prints the fault report and exits QEMU with the fault status: what the
 * log holds first, then the report, all with bounded polled waits. */
static _Noreturn void exception_report(const struct trap_frame *tf)
{
	kprintf_emergency("ballast: EXCEPTION %s vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx\n",
	        exception_names[tf->vector], (unsigned long)tf->vector,
	        (unsigned long)tf->error, (unsigned long)tf->rip,
	        (unsigned long)read_cr2());
	kprintf_emergency("ballast:  rax=0x%016lx rbx=0x%016lx rcx=0x%016lx rdx=0x%016lx\n",
	        (unsigned long)tf->rax, (unsigned long)tf->rbx,
	        (unsigned long)tf->rcx, (unsigned long)tf->rdx);
	kprintf_emergency("ballast:  rsi=0x%016lx rdi=0x%016lx rbp=0x%016lx rsp=0x%016lx\n",
	        (unsigned long)tf->rsi, (unsigned long)tf->rdi,
	        (unsigned long)tf->rbp, (unsigned long)tf->rsp);
	kprintf_emergency("ballast:  r8=0x%016lx r9=0x%016lx r10=0x%016lx r11=0x%016lx\n",
	        (unsigned long)tf->r8, (unsigned long)tf->r9,
	        (unsigned long)tf->r10, (unsigned long)tf->r11);
	kprintf_emergency("ballast:  r12=0x%016lx r13=0x%016lx r14=0x%016lx r15=0x%016lx\n",
	        (unsigned long)tf->r12, (unsigned long)tf->r13,
	        (unsigned long)tf->r14, (unsigned long)tf->r15);
	kprintf_emergency("ballast:  cs=0x%lx ss=0x%lx rflags=0x%lx cr3=0x%lx\n",
	        (unsigned long)tf->cs, (unsigned long)tf->ss,
	        (unsigned long)tf->rflags, (unsigned long)read_cr3());
	arch_exit(EXIT_STATUS_FAULT);
}

static void irq_dispatch(unsigned vector)
{
	irq_counts[vector]++;
	for (unsigned i = 0; i < IRQ_HANDLERS_PER_VECTOR; i++) {
		const struct irq_slot *s = &irq_slots[vector][i];
		if (s->fn)
			s->fn(s->ctx);
	}
}

void arch_trap(struct trap_frame *tf);

static uint64_t entry_tsc;

uint64_t irq_entry_tsc(void) { return entry_tsc; }

void arch_trap(struct trap_frame *tf)
{
	entry_tsc = rdtsc();
	if (tf->vector == VECTOR_PAGE_FAULT && paging_handle_fault(read_cr2(), tf->error) == 0)
		return;
	if (tf->vector < EXCEPTION_COUNT)
		exception_report(tf);
	if (tf->vector == VECTOR_SPURIOUS)
		return; /* spurious LAPIC interrupts take no EOI */
	irq_dispatch(tf->vector);
	lapic_eoi();
}
