#ifndef BALLAST_MM_CONSOLE_H
#define BALLAST_MM_CONSOLE_H
void mm_console_init(void);
#endif
