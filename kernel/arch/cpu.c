/* CPU feature setup, TSC calibration and the QEMU exit path. */
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/log.h"

#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)

/* The TSC is measured against PIT channel 0 (every PC-like QEMU machine
 * has it, microvm included; channel 2's gate at port 0x61 is missing on
 * microvm): free-running in mode 2 from 0xffff, read by latching. The tick
 * (timer.c) reprograms channel 0 afterwards. */
#define PIT_HZ            1193182u
#define PIT_CH0_DATA      0x40
#define PIT_CMD           0x43
#define PIT_CMD_CH0_MODE2 0x34 /* channel 0, lobyte/hibyte, rate generator */
#define PIT_CMD_CH0_LATCH 0x00
/* 500 us is 597 PIT counts, so +-1 count is 0.17%: plenty for timestamps,
 * delays in ms and latencies in us. Under QEMU the emulated PIT and the TSC
 * both follow host time, so a vCPU descheduled inside the window skews
 * neither; only stalls at its two ends do, and those are read out
 * (pit_ch0_read_at). It was 10 ms, then 2 ms: the window is dead time in
 * every boot (a fifth of ballast's own boot time on microvm at 2 ms). */
#define TSC_CALIBRATE_US  500
#define TSC_CALIBRATE_SAMPLES 5 /* bracketed readings at each end of the window */
#define TSC_FALLBACK_KHZ  1000000 /* if the PIT never moves */
#define TSC_CALIBRATE_SPINS 100000000ull

#define ISA_DEBUG_EXIT_PORT 0xf4

static uint64_t tsc_khz_value = TSC_FALLBACK_KHZ;

void cpu_init_features(void)
{
	/* SSE must work everywhere: newlib and gcc use it (see isr.S). */
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

static uint16_t pit_ch0_read(void)
{
	outb(PIT_CMD, PIT_CMD_CH0_LATCH);
	uint8_t lo = inb(PIT_CH0_DATA);
	return (uint16_t)(lo | inb(PIT_CH0_DATA) << 8);
}

/* One PIT reading paired with the TSC at the moment it was taken: the
 * midpoint of rdtsc before and after the latch, from the attempt with the
 * shortest gap. The short window makes the ends matter: a vCPU stalled
 * between latch and rdtsc (a port access waiting for QEMU's lock, a host
 * preemption) would otherwise put the whole stall into the measurement. */
static uint16_t pit_ch0_read_at(uint64_t *tsc)
{
	uint64_t best_gap = UINT64_MAX;
	uint16_t value = 0;
	for (unsigned i = 0; i < TSC_CALIBRATE_SAMPLES; i++) {
		uint64_t before = rdtsc();
		uint16_t v = pit_ch0_read();
		uint64_t after = rdtsc();
		if (after - before < best_gap) {
			best_gap = after - before;
			value = v;
			*tsc = before + (after - before) / 2;
		}
	}
	return value;
}

void tsc_calibrate(void)
{
	const uint32_t wait = (uint32_t)((uint64_t)PIT_HZ * TSC_CALIBRATE_US / 1000000);
	outb(PIT_CMD, PIT_CMD_CH0_MODE2);
	outb(PIT_CH0_DATA, 0xff);
	outb(PIT_CH0_DATA, 0xff);
	uint64_t t0, t1;
	uint16_t start = pit_ch0_read_at(&t0);
	for (uint64_t spins = 0; spins < TSC_CALIBRATE_SPINS; spins++) {
		/* counts down and wraps at 0xffff, 55 ms: the difference is the
		 * ticks elapsed */
		if ((uint16_t)(start - pit_ch0_read()) >= wait) {
			uint16_t elapsed = (uint16_t)(start - pit_ch0_read_at(&t1));
			tsc_khz_value = (t1 - t0) * PIT_HZ / ((uint64_t)elapsed * 1000);
			if (tsc_khz_value == 0)
				tsc_khz_value = TSC_FALLBACK_KHZ;
			return;
		}
	}
	klog("tsc: the PIT did not count; assuming %u kHz", TSC_FALLBACK_KHZ);
}

uint64_t tsc_khz(void) { return tsc_khz_value; }

uint64_t tsc_to_us(uint64_t ticks) { return ticks * 1000 / tsc_khz_value; }

_Noreturn void arch_exit(int status)
{
	outl(ISA_DEBUG_EXIT_PORT, (uint32_t)status);
	/* still here: no isa-debug-exit device */
	kprintf_emergency("ballast: exit status %d, but no isa-debug-exit device; halting\n", status);
	cpu_halt_forever();
}
