/*
 * wire.c — bodies of broker messages: fields, each a u32 BE length and its bytes (wire.h).
 *
 * Owns: the buffer of a body being built. Never: reads past the end of a received body.
 */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sh_wire_body_add(sh_wire_body *b, const void *field, size_t len)
{
    if (len > UINT32_MAX || b->len + 4 + len < b->len) return -1;
    if (b->len + 4 + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + 4 + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    sh_be32_put(b->p + b->len, (uint32_t)len);
    if (len) memcpy(b->p + b->len + 4, field, len);
    b->len += 4 + len;
    b->nfields++;
    return 0;
}

void sh_wire_body_clear(sh_wire_body *b)
{
    b->len = b->nfields = 0;
}

void sh_wire_body_free(sh_wire_body *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

sh_err sh_wire_body_read(const uint8_t *body, size_t len, size_t max, const uint8_t **fields,
                         size_t *lens, size_t keep, size_t *used, size_t *count)
{
    const uint8_t *p = body;
    size_t left = len, n = 0;
    while (left && n < max) {
        if (left < 4) return SH_E_PROTOCOL;
        size_t l = sh_be32_get(p);
        if (l > left - 4) return SH_E_PROTOCOL;
        if (n < keep) {
            fields[n] = p + 4;
            lens[n] = l;
        }
        p += 4 + l;
        left -= 4 + l;
        n++;
    }
    *used = (size_t)(p - body);
    *count = n;
    return SH_OK;
}

size_t sh_retain_format(const sh_retain *r, char *out, size_t cap)
{
    if (!r || !r->count || (r->unit != 'd' && r->unit != 'm')) return 0;
    int n = snprintf(out, cap, "retain=%u%c:%s", (unsigned)r->count, r->unit,
                     r->review ? "review" : "erase");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int sh_deliver_flags_parse(const uint8_t *flags, size_t len, int *overdue, sh_retain *r)
{
    *overdue = 0;
    *r = (sh_retain){0};
    for (size_t at = 0; at < len;) {
        const uint8_t *sp = memchr(flags + at, ' ', len - at);
        size_t tl = sp ? (size_t)(sp - (flags + at)) : len - at;
        const char *tok = (const char *)flags + at;
        if (tl == 7 && memcmp(tok, "overdue", 7) == 0) *overdue = 1;
        if (tl > 7 && memcmp(tok, "retain=", 7) == 0) {
            char buf[32], unit = 0, then[8] = "";
            unsigned count = 0;
            int used = 0;
            if (tl >= sizeof buf) return -1;
            memcpy(buf, tok, tl);
            buf[tl] = '\0';
            if (sscanf(buf, "retain=%5u%c:%7[a-z]%n", &count, &unit, then, &used) != 3 ||
                (size_t)used != tl || count < 1 || count > 36500 || (unit != 'd' && unit != 'm') ||
                (strcmp(then, "erase") != 0 && strcmp(then, "review") != 0))
                return -1;
            *r = (sh_retain){(uint16_t)count, unit, then[0] == 'r'};
        }
        at += tl + 1;
    }
    return 0;
}
