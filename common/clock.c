/*
 * clock.c — wall-clock milliseconds (clock.h).
 *
 * Owns: nothing. Never: fails (CLOCK_REALTIME is always there on Linux).
 */
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h" /* sh_date_check */

int64_t sh_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sh_duration_parse(const char *text, int64_t *ms)
{
    size_t n = text ? strspn(text, "0123456789") : 0;
    if (n == 0 || n > 9 || !text[n] || text[n + 1]) return -1;
    int64_t v = 0, unit;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (text[i] - '0');
    switch (text[n]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    default:
        return -1;
    }
    if (v < 1 || v > SH_DURATION_MAX_MS / unit) return -1;
    *ms = v * unit;
    return 0;
}

char *sh_clock_iso(int64_t ms, char *out, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!cap) return out;
    if (!gmtime_r(&secs, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) out[0] = '\0';
    return out;
}

int64_t sh_clock_add(int64_t ms, unsigned count, char unit)
{
    if (unit == 'd') return ms + (int64_t)count * 86400000;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int months = tm.tm_mon + (int)count, year = tm.tm_year + 1900 + months / 12, mon = months % 12;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = mdays[mon] + (mon == 1 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    if (tm.tm_mday > max) tm.tm_mday = max;
    return (int64_t)timegm(&tm) * 1000 + ms % 1000;
}

int64_t sh_clock_noon(const char *date)
{
    if (!date || sh_date_check(date) != SH_OK) return -1;
    struct tm tm = {0};
    tm.tm_year = atoi(date) - 1900;
    tm.tm_mon = atoi(date + 5) - 1;
    tm.tm_mday = atoi(date + 8);
    tm.tm_hour = 12;
    return (int64_t)timegm(&tm) * 1000;
}

char *sh_duration_format(int64_t ms, char *out, size_t cap)
{
    static const struct {
        int64_t ms;
        char unit;
    } u[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (ms > 0 && ms % u[i].ms == 0) {
            snprintf(out, cap, "%lld%c", (long long)(ms / u[i].ms), u[i].unit);
            return out;
        }
    snprintf(out, cap, "%lldms", (long long)ms);
    return out;
}
