#include <stddef.h>
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/arch/timer.h"
#include "kernel/log.h"

#define PIT_HZ            1193182u
#define PIT_CH0_DATA      0x40
#define PIT_CMD           0x43
#define PIT_CMD_CH0_RATE  0x34 /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
#define PIT_ISA_IRQ       0
#define MAX_TICK_HANDLERS 8

static struct { irq_handler_fn fn; void *ctx; } handlers[MAX_TICK_HANDLERS];
static unsigned handler_count;
static volatile uint64_t ticks;
static bool started;

static void timer_irq(void *ctx)
{
	(void)ctx;
	ticks++;
	for (unsigned i = 0; i < handler_count; i++)
		handlers[i].fn(handlers[i].ctx);
}

static int timer_start(void)
{
	uint32_t divisor = PIT_HZ / (1000 / TIMER_TICK_MS);
	if (irq_route_isa(PIT_ISA_IRQ, timer_irq, NULL, "timer") < 0) {
		klog("timer: cannot route the PIT interrupt");
		return -1;
	}
	outb(PIT_CMD, PIT_CMD_CH0_RATE);
	outb(PIT_CH0_DATA, divisor & 0xff);
	outb(PIT_CH0_DATA, divisor >> 8);
	started = true;
	return 0;
}

int timer_add_tick_handler(irq_handler_fn fn, void *ctx)
{
	if (handler_count >= MAX_TICK_HANDLERS)
		return -1;
	uint64_t flags = irq_save();
	handlers[handler_count++] = (typeof(handlers[0])){ fn, ctx };
	irq_restore(flags);
	return started ? 0 : timer_start();
}

uint64_t timer_ticks(void) { return ticks; }
