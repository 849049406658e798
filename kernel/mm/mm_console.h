#ifndef BALLAST_MM_CONSOLE_H
#define BALLAST_MM_CONSOLE_H

#include <stddef.h>

void mm_console_init(void);
/* Appends " key=value ..." of another subsystem (the balloon) to mem show. */
typedef void (*mm_console_extra_fn)(char *buf, size_t len);
void mm_console_set_extra(mm_console_extra_fn fn);

#endif
