/* Faults provoked on purpose ("crash=<kind>" on the command line), to test
 * the exception report and the exit path; and the uptime command. */
#include <stdio.h>
#include <string.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/timer.h"
#include "kernel/console/console.h"
#include "kernel/debug.h"
#include "kernel/log.h"
#include "lib/util.h"

/* Physical page 0 is never mapped, so this address always faults. */
#define CRASH_PF_ADDRESS 0x10ul
#define CRASH_GP_ADDRESS 0x8000000000000000ul /* non-canonical */

int debug_crash(const char *kind)
{
	if (strcmp(kind, "pf") == 0) {
		klog("crash: touching 0x%lx", CRASH_PF_ADDRESS);
		__asm__ volatile("movq $1, (%0)" : : "r"(CRASH_PF_ADDRESS) : "memory");
	} else if (strcmp(kind, "gp") == 0) {
		klog("crash: loading from non-canonical 0x%lx", CRASH_GP_ADDRESS);
		uint64_t v;
		__asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(CRASH_GP_ADDRESS) : "memory");
	} else if (strcmp(kind, "ud") == 0) {
		klog("crash: executing ud2");
		__asm__ volatile("ud2");
	} else if (strcmp(kind, "de") == 0) {
		klog("crash: dividing by zero");
		__asm__ volatile("xor %%ecx, %%ecx; div %%ecx" : : : "eax", "ecx", "edx");
	} else {
		klog("crash: unknown kind '%s' (pf, gp, ud, de)", kind);
		return -1;
	}
	klog("crash: survived the '%s' fault?", kind);
	return -1;
}

/* Timer ticks and TSC time side by side: a timer that does not tick (an
 * interrupt routed to the wrong pin) stops retries, delays and reporting
 * without any other sign, and this is where a test sees it. */
static void cmd_uptime(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		console_usage();
		return;
	}
	console_ok("ticks=%" PRIu64 " tick_ms=%u tsc_ms=%" PRIu64, timer_ticks(), TIMER_TICK_MS,
	           tsc_to_us(rdtsc()) / 1000);
}

#define IRQ_ANSWER_MAX 768

/* Interrupts taken per vector: which vector a device's interrupts really
 * use (MSI-X config and queue vectors, a shared INTx line) shows here. */
static void cmd_irq(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		console_usage();
		return;
	}
	char buf[IRQ_ANSWER_MAX];
	size_t n = 0;
	buf[0] = '\0';
	for (unsigned v = VECTOR_IRQ_BASE; v < VECTOR_COUNT && n < sizeof(buf); v++) {
		if (!irq_name(v, 0))
			continue;
		for (unsigned h = 0; irq_name(v, h) && n < sizeof(buf); h++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", h ? "+" : n ? " " : "", irq_name(v, h));
		if (n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "@0x%x=%" PRIu64, v, irq_count(v));
	}
	console_ok("%s", buf);
}

static const struct console_cmd debug_cmds[] = {
	{ "uptime", "", cmd_uptime },
	{ "irq", "", cmd_irq },
};

void debug_console_init(void)
{
	console_register(debug_cmds, ARRAY_SIZE(debug_cmds));
}
