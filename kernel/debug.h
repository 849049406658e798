#ifndef BALLAST_DEBUG_H
#define BALLAST_DEBUG_H
#include <stdint.h>
/* Provokes the named exception; returns only if it did not happen. */
int debug_crash(const char *kind);
/* Registers the console's uptime command (timer ticks beside TSC time). */
void debug_console_init(void);
#endif
