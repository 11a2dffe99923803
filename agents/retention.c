/*
 * retention.c — how long the agency keeps what it received: each delivery's retention, as
 * the protocol that permitted it says (the broker sends it with the delivery), and the day it
 * falls due, ordered so that what is due can be found without a scan.
 *
 *   retention     (plain) event id (16) -> i64 BE due ms | u16 BE count | u8 unit 'd'|'m' |
 *                                          u8 review | u8 n, rule[n]
 *   retention_due (plain) i64 BE due ms | event id (16) -> ""
 *
 * Owns: those two databases. Never: holds any of the event's content, or schedules an event
 * twice (a redelivery is not stored again, so never scheduled again).
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"

sh_err ag_retain_schedule(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *rule,
                          const sh_retain *r, int64_t stored_ms, sh_error *err)
{
    if (!r->count) return SH_OK;
    size_t rl = strnlen(rule, 255);
    uint8_t v[8 + 4 + 1 + 255], due[8 + 16];
    int64_t at = sh_clock_add(stored_ms, r->count, r->unit);
    sh_be64_put(v, (uint64_t)at);
    v[8] = (uint8_t)(r->count >> 8);
    v[9] = (uint8_t)r->count;
    v[10] = (uint8_t)r->unit;
    v[11] = r->review ? 1 : 0;
    v[12] = (uint8_t)rl;
    memcpy(v + 13, rule, rl);
    memcpy(due, v, 8);
    memcpy(due + 8, id, 16);
    sh_err rc = sh_txn_put(t, a->retention, id, 16, v, 13 + rl, 0, err);
    if (!rc) rc = sh_txn_put(t, a->retention_due, due, sizeof due, "", 0, 0, err);
    return rc;
}

int ag_retain_get(sh_agent *a, sh_txn *t, const uint8_t id[16], int64_t *due_ms, sh_retain *r)
{
    sh_buf v = {0};
    sh_error err;
    int found = sh_txn_get(t, a->retention, id, 16, &v, &err) == SH_OK && v.len >= 13 &&
                (v.data[10] == 'd' || v.data[10] == 'm');
    if (found) {
        *due_ms = (int64_t)sh_be64_get(v.data);
        *r = (sh_retain){(uint16_t)(v.data[8] << 8 | v.data[9]), (char)v.data[10], v.data[11]};
    }
    sh_buf_free(&v);
    return found;
}
