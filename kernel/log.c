#include <stdarg.h>
#include <stdio.h>
#include "kernel/arch/arch.h"
#include "kernel/arch/cpu.h"
#include "kernel/console/serial.h"
#include "kernel/log.h"

#define KPRINTF_MAX 512

void kprintf(const char *fmt, ...)
{
	char buf[KPRINTF_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1; /* truncated; still print what fits */
	serial_write(buf, (size_t)n);
}

_Noreturn void panic_at(const char *file, int line, const char *fmt, ...)
{
	char buf[KPRINTF_MAX];
	va_list ap;
	irq_disable();
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("ballast: PANIC at %s:%d: %s\n", file, line, buf);
	arch_exit(EXIT_STATUS_FAULT);
}
