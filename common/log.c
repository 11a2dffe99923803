/*
 * log.c — logfmt lines on standard error.
 *
 * Owns: the format of log.h. Never: writes a line in more than one write(2) call, or a
 * message with an unescaped quote, backslash or control character.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ident.h"

static const char *s_component = "sharehub";
static int s_min;

int sh_log_level_parse(const char *name, int *out)
{
    static const char *const names[] = {"info", "warning", "error"};
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

void sh_log_init(const char *component, int min_level)
{
    s_component = component;
    s_min = min_level;
}

void sh_log(int level, const char *org, const uint8_t *event_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_logv(level, org, event_id, fmt, ap);
    va_end(ap);
}

void sh_logv(int level, const char *org, const uint8_t *event_id, const char *fmt, va_list ap)
{
    static const char *const names[] = {"info", "warning", "error"};
    if (level < s_min) return;
    if (level < SH_LOG_INFO || level > SH_LOG_ERROR) level = SH_LOG_ERROR;
    char msg[600], line[1600], ts[32], id[SH_EVENT_ID_STR];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof ts - tl, ".%03ldZ", now.tv_nsec / 1000000);
    int n =
        snprintf(line, sizeof line, "ts=%s level=%s component=%s", ts, names[level], s_component);
    if (org && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " org=%s", org);
    if (event_id && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " event=%s",
                      sh_event_id_format(event_id, id));
    if (n < 0 || (size_t)n + 8 > sizeof line) return;
    size_t at = (size_t)n;
    memcpy(line + at, " msg=\"", 6);
    at += 6;
    /* escaped: \" \\ and control characters as \n, \t or a space */
    for (const char *p = msg; *p && at + 4 < sizeof line; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            line[at++] = '\\';
            line[at++] = (char)c;
        } else if (c == '\n') {
            line[at++] = '\\';
            line[at++] = 'n';
        } else if (c == '\t') {
            line[at++] = '\\';
            line[at++] = 't';
        } else {
            line[at++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
    }
    line[at++] = '"';
    line[at++] = '\n';
    /* one write: lines of processes sharing a stderr never interleave */
    ssize_t w = write(STDERR_FILENO, line, at);
    (void)w;
}
