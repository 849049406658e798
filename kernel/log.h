/* Kernel log: formatted lines on the serial console, each starting with
 * "ballast: " so tests and users can tell them from console answers. */
#ifndef BALLAST_LOG_H
#define BALLAST_LOG_H

#include <inttypes.h>

/* Formats into a stack buffer and writes it with polled serial output: safe
 * in exception and interrupt context, never allocates. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define klog(fmt, ...) kprintf("ballast: " fmt "\n", ##__VA_ARGS__)

/* A broken invariant: prints where and why, then exits QEMU with the fault
 * status. */
_Noreturn void panic_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define panic(...) panic_at(__FILE__, __LINE__, __VA_ARGS__)

#endif
