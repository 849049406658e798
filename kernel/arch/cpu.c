/* CPU feature setup, TSC calibration and the QEMU exit path. */
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"

#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)

/* PIT channel 2, gated through port 0x61, counts down once in mode 0; its
 * output bit in port 0x61 goes high at terminal count. */
#define PIT_HZ            1193182u
#define PIT_CH2_DATA      0x42
#define PIT_CMD           0x43
#define PIT_CMD_CH2_MODE0 0xb0 /* channel 2, lobyte/hibyte, mode 0, binary */
#define PORT_61           0x61
#define PORT_61_GATE2     0x01
#define PORT_61_SPEAKER   0x02
#define PORT_61_OUT2      0x20
#define TSC_CALIBRATE_MS  10
#define TSC_FALLBACK_KHZ  1000000 /* if the PIT never answers */

#define ISA_DEBUG_EXIT_PORT 0xf4

static uint64_t tsc_khz_value = TSC_FALLBACK_KHZ;

void cpu_init_features(void)
{
	/* SSE must work everywhere: newlib and gcc use it (see isr.S). */
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

void tsc_calibrate(void)
{
	uint32_t count = PIT_HZ / (1000 / TSC_CALIBRATE_MS);
	uint8_t p61 = inb(PORT_61);
	outb(PORT_61, (p61 & ~PORT_61_SPEAKER) & ~PORT_61_GATE2);
	outb(PIT_CMD, PIT_CMD_CH2_MODE0);
	outb(PIT_CH2_DATA, count & 0xff);
	outb(PIT_CH2_DATA, count >> 8);
	outb(PORT_61, (p61 & ~PORT_61_SPEAKER) | PORT_61_GATE2); /* start counting */
	uint64_t t0 = rdtsc();
	uint64_t spins = 0;
	while (!(inb(PORT_61) & PORT_61_OUT2)) {
		if (++spins > 100000000ull) {
			klog("tsc: PIT did not count; assuming %u kHz", TSC_FALLBACK_KHZ);
			outb(PORT_61, p61);
			return;
		}
	}
	uint64_t t1 = rdtsc();
	outb(PORT_61, p61);
	tsc_khz_value = (t1 - t0) / TSC_CALIBRATE_MS;
	if (tsc_khz_value == 0)
		tsc_khz_value = TSC_FALLBACK_KHZ;
}

uint64_t tsc_khz(void) { return tsc_khz_value; }

uint64_t tsc_to_us(uint64_t ticks) { return ticks * 1000 / tsc_khz_value; }

_Noreturn void arch_exit(int status)
{
	outl(ISA_DEBUG_EXIT_PORT, (uint32_t)status);
	/* still here: no isa-debug-exit device */
	kprintf("ballast: exit status %d, but no isa-debug-exit device; halting\n", status);
	cpu_halt_forever();
}
