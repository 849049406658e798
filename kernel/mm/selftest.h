#ifndef BALLAST_SELFTEST_H
#define BALLAST_SELFTEST_H
_Noreturn void mm_selftest(void);
#endif
