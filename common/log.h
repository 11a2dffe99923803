/*
 * log.h — the daemons' log: one logfmt line per record on standard error, for systemd's
 * journal or a container runtime to collect (docs/operations.md#logs).
 *
 *   ts=2026-11-23T09:14:03.512Z level=warning component=agent org=R1L
 *   event=0193f7a2-6c1e-7d40-9b1a-2f5c8e3a9d10 msg="the broker refused an event: E806"
 *
 * Owns: the line format, its escaping, and the process's level and component.
 * Never: takes personal data — callers pass organisation codes, event ids, error codes and
 * counts, never a child's identifier, name or narrative; splits a line (each is one write).
 */
#ifndef SHAREHUB_LOG_H
#define SHAREHUB_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum { SH_LOG_INFO = 0, SH_LOG_WARNING = 1, SH_LOG_ERROR = 2 };

/* The component named on every line ("broker", "agent"; a static string) and the lowest
 * level written. */
void sh_log_init(const char *component, int min_level);

/* The level a name stands for ("info", "warning", "error") into *out; 0, or -1 for any other
 * name. */
int sh_log_level_parse(const char *name, int *out);

/* One record. org and event_id (16 bytes) may be NULL: the field is then left out. */
void sh_log(int level, const char *org, const uint8_t *event_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sh_logv(int level, const char *org, const uint8_t *event_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
