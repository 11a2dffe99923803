/*
 * broker_record.c — the broker's event and delivery records (broker_record.h).
 *
 * Owns: their byte layouts. Never: returns a record part that runs past the value.
 */
#include "broker_record.h"

#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "wire.h"

int sh_broker_event_parse(const uint8_t *v, size_t n, sh_broker_event *ev)
{
    if (n < 1 || v[0] > SH_ORG_MAX || n < 1u + v[0] + 4) return -1;
    memcpy(ev->sender, v + 1, v[0]);
    ev->sender[v[0]] = '\0';
    const uint8_t *p = v + 1 + v[0];
    size_t ol = sh_be32_get(p);
    p += 4;
    if ((size_t)(v + n - p) < 4 || (size_t)(v + n - p) - 4 < ol) return -1;
    ev->outcome = (const char *)p;
    ev->outcome_len = ol;
    p += ol;
    size_t el = sh_be32_get(p), rest = (size_t)(v + n - p) - 4;
    p += 4;
    if (rest != el && rest != el + 1) return -1;
    ev->env = p;
    ev->env_len = el;
    ev->form = rest == el ? SH_EVENT_PLAIN : p[el];
    if (ev->form > SH_EVENT_ERASED || (ev->form == SH_EVENT_ERASED && el != 32)) return -1;
    return 0;
}

uint8_t *sh_broker_event_build(const char *sender, const char *outcome, const uint8_t *env,
                               size_t env_len, uint8_t form, size_t *len, uint8_t **slot)
{
    size_t sl = strlen(sender), ol = strlen(outcome);
    if (sl > SH_ORG_MAX || ol > UINT32_MAX || env_len > UINT32_MAX) return NULL;
    *len = 1 + sl + 4 + ol + 4 + env_len + 1;
    uint8_t *v = malloc(*len), *p = v;
    if (!v) return NULL;
    *p++ = (uint8_t)sl;
    memcpy(p, sender, sl);
    p += sl;
    sh_be32_put(p, (uint32_t)ol);
    p += 4;
    memcpy(p, outcome, ol);
    p += ol;
    sh_be32_put(p, (uint32_t)env_len);
    p += 4;
    if (env && env_len) memcpy(p, env, env_len);
    if (slot) *slot = p;
    p[env_len] = form;
    return v;
}

int sh_broker_delivery_parse(const uint8_t *v, size_t n, sh_broker_delivery *d)
{
    if (n < 19) return -1;
    size_t sl = v[16];
    if (sl > SH_ORG_MAX || n < 18 + sl) return -1;
    size_t rl = v[17 + sl];
    if (n < 19 + sl + rl) return -1;
    size_t at = 19 + sl + rl;
    d->id = v;
    memcpy(d->sender, v + 17, sl);
    d->sender[sl] = '\0';
    d->rule = v + 18 + sl;
    d->rule_len = rl;
    d->flags = v[18 + sl + rl];
    d->accepted_ms = 0;
    if (d->flags & SH_DELIVERY_TIME) {
        if (n < at + 8) return -1;
        d->accepted_ms = (int64_t)sh_be64_get(v + at);
        at += 8;
    }
    d->retain = (sh_retain){0};
    if (d->flags & SH_DELIVERY_RETAIN) {
        if (n < at + 4 || (v[at + 2] != 'd' && v[at + 2] != 'm')) return -1;
        d->retain = (sh_retain){(uint16_t)(v[at] << 8 | v[at + 1]), (char)v[at + 2], v[at + 3]};
        at += 4;
    }
    d->to = NULL;
    d->to_len = 0;
    if (d->flags & SH_DELIVERY_TO) {
        if (n < at + 2 || n - at - 2 < (size_t)(v[at] << 8 | v[at + 1])) return -1;
        d->to_len = (size_t)(v[at] << 8 | v[at + 1]);
        d->to = (const char *)v + at + 2;
        at += 2 + d->to_len;
    }
    d->copy = v + at;
    d->copy_len = n - at;
    return 0;
}

uint8_t *sh_broker_delivery_build(const uint8_t id[16], const char *sender, const char *rule,
                                  uint8_t flags, int64_t accepted_ms, const sh_retain *retain,
                                  const char *to, const uint8_t *copy, size_t copy_len, size_t *len)
{
    size_t sl = strlen(sender), rl = strlen(rule), tl = to ? strlen(to) : 0;
    int keep = retain && retain->count && (retain->unit == 'd' || retain->unit == 'm');
    if (sl > SH_ORG_MAX || rl > 255 || tl > 65535) return NULL;
    *len = 16 + 1 + sl + 1 + rl + 1 + 8 + (keep ? 4 : 0) + (to ? 2 + tl : 0) + copy_len;
    uint8_t *v = malloc(*len), *p = v;
    if (!v) return NULL;
    memcpy(p, id, 16);
    p += 16;
    *p++ = (uint8_t)sl;
    memcpy(p, sender, sl);
    p += sl;
    *p++ = (uint8_t)rl;
    memcpy(p, rule, rl);
    p += rl;
    *p++ = (uint8_t)((flags & ~(SH_DELIVERY_RETAIN | SH_DELIVERY_TO)) | SH_DELIVERY_TIME |
                     (keep ? SH_DELIVERY_RETAIN : 0) | (to ? SH_DELIVERY_TO : 0));
    sh_be64_put(p, (uint64_t)accepted_ms);
    p += 8;
    if (keep) {
        *p++ = (uint8_t)(retain->count >> 8);
        *p++ = (uint8_t)retain->count;
        *p++ = (uint8_t)retain->unit;
        *p++ = retain->review ? 1 : 0;
    }
    if (to) {
        *p++ = (uint8_t)(tl >> 8);
        *p++ = (uint8_t)tl;
        memcpy(p, to, tl);
        p += tl;
    }
    if (copy && copy_len) memcpy(p, copy, copy_len);
    return v;
}

int sh_broker_delivery_is_receipt(const sh_broker_delivery *d)
{
    return d->rule_len == sizeof SH_RULE_RECEIPT - 1 &&
           memcmp(d->rule, SH_RULE_RECEIPT, d->rule_len) == 0;
}

void sh_broker_qkey(const char *org, uint64_t seq, uint8_t key[SH_QKEY_BYTES])
{
    memset(key, 0, SH_QKEY_ORG);
    memcpy(key, org, strnlen(org, SH_QKEY_ORG));
    sh_be64_put(key + SH_QKEY_ORG, seq);
}
