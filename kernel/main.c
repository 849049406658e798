/* kmain: the kernel's init calls, in order, then the idle loop. */
#include <stdio.h>
#include <string.h>
#include "boot/boot_info.h"
#include "drivers/pci/pci.h"
#include "drivers/virtio/balloon.h"
#include "drivers/virtio/virtio.h"
#include "drivers/virtio/virtio_mmio.h"
#include "drivers/virtio/virtio_pci.h"
#include "kernel/arch/acpi.h"
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/arch/irq_route.h"
#include "kernel/console/console.h"
#include "kernel/console/parse.h"
#include "kernel/console/serial.h"
#include "kernel/debug.h"
#include "kernel/log.h"
#include "kernel/mm/mm.h"
#include "kernel/mm/mm_console.h"
#include "kernel/mm/selftest.h"
#include "kernel/work.h"

#define CMDLINE_VALUE_MAX 32

static void log_boot_map(const struct boot_info *bi)
{
	for (uint32_t i = 0; i < bi->mem_count; i++)
		kdebug("memmap base=0x%" PRIx64 " size=0x%" PRIx64 " type=%s", bi->mem[i].base, bi->mem[i].size,
		       boot_mem_type_name(bi->mem[i].type));
}

static void log_summary(const struct boot_info *bi)
{
	struct mm_stats s;
	mm_stats(&s);
	uint64_t us = tsc_to_us(rdtsc() - bi->entry_tsc);
	klog("summary usable_bytes=%" PRIu64 " managed_pages=%" PRIu64 " free_pages=%" PRIu64
	     " allocated_pages=%" PRIu64 " boot_ms=%" PRIu64 ".%03" PRIu64,
	     s.usable_pages * PAGE_SIZE, s.pmm.managed_pages, s.pmm.free_pages, s.pmm.allocated_pages,
	     us / 1000, us % 1000);
}

/* Where the boot's time goes: a TSC stamp after each step, told with
 * "verbose" (the TSC is calibrated only part of the way in, so the figures
 * are worked out at the end). */
#define BOOT_STEPS_MAX 16
static struct { const char *step; uint64_t tsc; } boot_steps[BOOT_STEPS_MAX];
static unsigned boot_step_count;

static void boot_step(const char *step)
{
	if (boot_step_count < BOOT_STEPS_MAX)
		boot_steps[boot_step_count++] = (typeof(boot_steps[0])){ step, rdtsc() };
}

static void log_boot_steps(const struct boot_info *bi)
{
	char buf[384];
	size_t n = 0;
	uint64_t prev = bi->entry_tsc;
	for (unsigned i = 0; i < boot_step_count && n < sizeof(buf); i++) {
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%" PRIu64, boot_steps[i].step,
		                      tsc_to_us(boot_steps[i].tsc - prev));
		prev = boot_steps[i].tsc;
	}
	kdebug("boot steps (us since the one before):%s", buf);
}

static _Noreturn void idle_loop(void)
{
	for (;;) {
		irq_disable();
		if (work_pending()) {
			irq_enable();
			work_run();
		} else {
			irq_enable_and_halt();
		}
	}
}

_Noreturn void kmain(const struct boot_info *bi)
{
	char value[CMDLINE_VALUE_MAX];

	boot_step("front_end");
	serial_init();                 /* the UART */
	log_init(bi->cmdline);         /* the log, from here on ("verbose": boot detail) */
	klog("booting (%s front end) version=%s cmdline='%s'", bi->front_end, BALLAST_VERSION, bi->cmdline);
	boot_step("log");
	cpu_init_features();           /* SSE on, as newlib and gcc expect */
	gdt_init();                    /* off the firmware's descriptor tables */
	idt_init();                    /* every exception reports and exits */
	boot_step("cpu");
	tsc_calibrate();               /* timestamps and the boot-time figure */
	boot_step("tsc");
	log_boot_map(bi);
	mm_init(bi);                   /* allocator, page tables, heap window */
	boot_step("mm");
	acpi_init(bi->rsdp);           /* tables for interrupt routing */
	irq_init();                    /* PIC off, LAPIC and IOAPICs on */
	mm_start();                    /* async reclaim, on the timer */
	boot_step("irq");
	pci_init();                    /* every function behind every bridge */
	boot_step("pci");
	balloon_console_init(bi->cmdline); /* stats and persona commands, boot-time stats mode */
	bool polled = cmdline_find(bi->cmdline, "polled", NULL, 0);
	/* packed rings whenever a device offers them, unless "packed=off" */
	virtio_set_packed_allowed(!(cmdline_find(bi->cmdline, "packed", value, sizeof(value)) && strcmp(value, "off") == 0));
	if (virtio_pci_probe_all(polled) + virtio_mmio_probe_all(bi->cmdline, polled) == 0)
		klog("no virtio-balloon device");
	boot_step("virtio");
	mm_console_init();             /* the mem command */
	debug_console_init();          /* uptime, irq */
	console_init();                /* command input on COM1 */
	if (cmdline_find(bi->cmdline, "crash", value, sizeof(value)))
		debug_crash(value);
	if (cmdline_find(bi->cmdline, "selftest", NULL, 0))
		mm_selftest();
	boot_step("rest");
	log_boot_steps(bi);
	log_summary(bi);
	klog("ready");
	log_start();                   /* from here the idle loop writes the log */
	idle_loop();
}
