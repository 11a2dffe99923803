/*
 * clock.h — the one clock of sharehub: wall-clock milliseconds since the Unix epoch.
 *
 * Owns: nothing. Never: used to measure an interval that must not jump backwards (bench/
 * has its own monotonic clock); every stored and transmitted time comes from here.
 */
#ifndef SHAREHUB_CLOCK_H
#define SHAREHUB_CLOCK_H

#include <stdint.h>

/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t sh_clock_ms(void);

#endif
