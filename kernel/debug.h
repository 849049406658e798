#ifndef BALLAST_DEBUG_H
#define BALLAST_DEBUG_H
#include <stdint.h>
/* Provokes the named exception; returns only if it did not happen. */
int debug_crash(const char *kind);
#endif
