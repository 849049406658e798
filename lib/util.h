/* Small helpers the whole kernel (and its tests) share. */
#ifndef BALLAST_UTIL_H
#define BALLAST_UTIL_H

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
