/*
 * agent_record.c — an agent's event records (agent_record.h).
 *
 * Owns: their byte layout. Never: returns a part that runs past the value.
 */
#include "agent_record.h"

#include <stdlib.h>
#include <string.h>

#include "shred.h"
#include "store.h"
#include "wire.h"

int sh_agent_record_parse(const uint8_t *v, size_t n, sh_agent_record *r)
{
    if (n < 12) return -1;
    r->direction = v[0];
    r->at_ms = (int64_t)sh_be64_get(v + 1);
    size_t pl = v[9];
    if (pl > SH_ORG_MAX || n < 11 + pl) return -1;
    memcpy(r->peer, v + 10, pl);
    r->peer[pl] = '\0';
    size_t rl = v[10 + pl];
    if (rl > SH_RECORD_RULE_MAX || n < 12 + pl + rl) return -1;
    memcpy(r->rule, v + 11 + pl, rl);
    r->rule[rl] = '\0';
    r->flags = v[11 + pl + rl];
    r->env = v + 12 + pl + rl;
    r->env_len = n - 12 - pl - rl;
    return 0;
}

uint8_t *sh_agent_record_build(int direction, int64_t at_ms, const char *peer, const char *rule,
                               uint8_t flags, const uint8_t *env, size_t env_len, size_t *len)
{
    size_t pl = strlen(peer), rl = strlen(rule);
    if (pl > SH_ORG_MAX || rl > SH_RECORD_RULE_MAX) return NULL;
    *len = 1 + 8 + 1 + pl + 1 + rl + 1 + env_len;
    uint8_t *v = malloc(*len), *p = v;
    if (!v) return NULL;
    *p++ = (uint8_t)direction;
    sh_be64_put(p, (uint64_t)at_ms);
    p += 8;
    *p++ = (uint8_t)pl;
    memcpy(p, peer, pl);
    p += pl;
    *p++ = (uint8_t)rl;
    memcpy(p, rule, rl);
    p += rl;
    *p++ = flags;
    if (env_len) memcpy(p, env, env_len);
    return v;
}

int64_t sh_agent_record_time(const uint8_t *v, size_t n)
{
    return n >= 9 ? (int64_t)sh_be64_get(v + 1) : 0;
}

int sh_agent_record_open(struct sh_shred *s, const uint8_t id[16], const sh_agent_record *r,
                         uint8_t **plain, size_t *len)
{
    *plain = NULL;
    *len = 0;
    if (r->env_len < SH_SHRED_OVERHEAD) return SH_E_STORE_CORRUPT;
    size_t cap = r->env_len - SH_SHRED_OVERHEAD;
    uint8_t *p = malloc(cap ? cap : 1);
    sh_err rc = p ? sh_shred_unseal(s, id, 16, r->env, r->env_len, p, cap, len) : SH_E_NOMEM;
    if (rc) {
        free(p);
        return rc;
    }
    *plain = p;
    return SH_OK;
}
