/*
 * fault.c — test-build fault injection (fault.h).
 *
 * Owns: nothing. Never: fails a point unless the test asked for it through the environment.
 */
#include "fault.h"

#ifdef SHAREHUB_FAULTS
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int sh_fault(const char *point)
{
    const char *dir = getenv("SHAREHUB_FAULT_DIR");
    char path[512];
    struct stat st;
    if (!dir || !*dir) return 0;
    if (snprintf(path, sizeof path, "%s/%s", dir, point) >= (int)sizeof path) return 0;
    return stat(path, &st) == 0;
}
#else
typedef int sh_fault_unused; /* (an empty translation unit is not ISO C) */
#endif
