/*
 * clock.h — the one clock of sharehub: wall-clock milliseconds since the Unix epoch.
 *
 * Owns: nothing. Never: used to measure an interval that must not jump backwards (bench/
 * has its own monotonic clock); every stored and transmitted time comes from here.
 */
#ifndef SHAREHUB_CLOCK_H
#define SHAREHUB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t sh_clock_ms(void);

/* A duration written as a whole number and a unit, "30s", "15m", "36h", "5d" (seconds,
 * minutes, hours, days; digits only, no sign or space), from 1 second to 366 days, into *ms.
 * 0, or -1 when text is not of that form or out of range. */
#define SH_DURATION_MAX_MS (366LL * 86400 * 1000)
int sh_duration_parse(const char *text, int64_t *ms);

/* ms as the largest whole unit sh_duration_parse reads ("30d", "36h", "15m", "30s"; else
 * "1500ms") into out; out. */
char *sh_duration_format(int64_t ms, char *out, size_t cap);

/* Noon UTC of date (YYYY-MM-DD, a real calendar date), in Unix ms: the moment a decision "on
 * that day" is taken at; -1 when date is not such a date. */
int64_t sh_clock_noon(const char *date);

/* ms plus count days ('d') or calendar months ('m'; the day of the month clamped to the
 * month's last, as 31 January + 1 month = 28 or 29 February), in UTC. */
int64_t sh_clock_add(int64_t ms, unsigned count, char unit);

/* ms as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out (at least 21 bytes); out. */
char *sh_clock_iso(int64_t ms, char *out, size_t cap);

#endif
