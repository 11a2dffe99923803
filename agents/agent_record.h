/*
 * agent_record.h — the record an agent keeps for every event it sent or received (docs/
 * agent.md, "Store"): written and parsed here and nowhere else; the agent and `sharehub
 * audit` both use these functions.
 *
 *   events  event id (16) -> u8 direction (1 sent, 2 received) | i64 BE stored-at ms |
 *                            u8 n, peer[n] | u8 n, rule[n] | u8 flags | envelope
 *
 * Never: reads past the value it is given; a parser that returns 0 has checked every length.
 */
#ifndef SHAREHUB_AGENT_RECORD_H
#define SHAREHUB_AGENT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"

#define SH_DIR_SENT        1
#define SH_DIR_RECEIVED    2
#define SH_RECORD_RULE_MAX 64 /* bytes of the rule (the ISP's rule id) */
#define SH_RECORD_OVERDUE  1u /* flags: the ISP that permitted it was past its review date */
#define SH_RECORD_DAYKEY                                                                           \
    2u /* flags: the envelope is u32 BE day | sealed under that day's                              \
          erasure key (docs/store-format.md, "Erasure keys") */

typedef struct sh_agent_record {
    int direction; /* SH_DIR_SENT or SH_DIR_RECEIVED */
    int64_t at_ms; /* when it was stored here */
    char peer[SH_ORG_MAX + 1], rule[SH_RECORD_RULE_MAX + 1];
    uint8_t flags;
    const uint8_t *env; /* the envelope as sent or as delivered (minimised) */
    size_t env_len;
} sh_agent_record;

/* 0, or -1 when v[0..n) is not a whole record. */
int sh_agent_record_parse(const uint8_t *v, size_t n, sh_agent_record *r);

/* A new record (malloc'd, *len bytes); NULL when out of memory or peer or rule is too long. */
uint8_t *sh_agent_record_build(int direction, int64_t at_ms, const char *peer, const char *rule,
                               uint8_t flags, const uint8_t *env, size_t env_len, size_t *len);

struct sh_shred;
/* The envelope of a record sealed under a day key (SH_RECORD_DAYKEY), opened with the day keys
 * in s into a new buffer (*plain, *len; free()). SH_E_NOT_FOUND when that day's key has been
 * forgotten (the copy was erased), SH_E_STORE_CORRUPT when it does not open, SH_E_NOMEM. */
int sh_agent_record_open(struct sh_shred *s, const uint8_t id[16], const sh_agent_record *r,
                         uint8_t **plain, size_t *len);

/* The time a record was stored, read from its first bytes; 0 when v is too short. */
int64_t sh_agent_record_time(const uint8_t *v, size_t n);

#endif
