/* Local APIC in xAPIC (MMIO) mode: enabled, accepting all priorities. */
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/lapic.h"
#include "kernel/log.h"
#include "kernel/mm/paging.h"

#define MSR_APIC_BASE         0x1b
#define MSR_APIC_BASE_ENABLE  (1u << 11)
#define MSR_APIC_BASE_ADDR    0xfffff000ull

#define LAPIC_ID    0x020
#define LAPIC_TPR   0x080
#define LAPIC_EOI   0x0b0
#define LAPIC_SVR   0x0f0
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_MMIO_SIZE 0x1000

static volatile uint8_t *lapic;

static uint32_t lapic_read(uint32_t reg) { return mmio_read32(lapic + reg); }
static void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(lapic + reg, v); }

int lapic_init(uint64_t madt_lapic_phys)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);
	uint64_t phys = msr & MSR_APIC_BASE_ADDR;
	if (madt_lapic_phys && madt_lapic_phys != phys)
		klog("lapic: MADT says 0x%" PRIx64 ", MSR says 0x%" PRIx64 "; using the MSR", madt_lapic_phys, phys);
	wrmsr(MSR_APIC_BASE, msr | MSR_APIC_BASE_ENABLE);
	lapic = paging_map_mmio(phys, LAPIC_MMIO_SIZE);
	if (!lapic)
		return -1;
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VECTOR_SPURIOUS);
	return 0;
}

uint32_t lapic_id(void) { return lapic ? lapic_read(LAPIC_ID) >> 24 : 0; }

void lapic_eoi(void)
{
	if (lapic)
		lapic_write(LAPIC_EOI, 0);
}
