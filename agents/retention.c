/*
 * retention.c — how long the agency keeps what it received: each delivery's retention, as
 * the protocol that permitted it says (the broker sends it with the delivery), and the day it
 * falls due, ordered so that what is due can be found without a scan.
 *
 *   retention     (plain) event id (16) -> i64 BE due ms | u16 BE count | u8 unit 'd'|'m' |
 *                                          u8 review | u8 n, rule[n]
 *   retention_due (plain) i64 BE due ms | event id (16) -> ""
 *
 * A received copy whose retention ends in erasure is sealed, inside its record, under the key
 * of the day its retention ends (common/shred.h); the sweep deletes it and its indexes when
 * that day comes, with an audit entry saying what was erased under which rule, and then
 * forgets the days before today, so no copy of it — in LMDB's free pages, in a backup — can be
 * opened again. A copy whose retention ends in review is sealed the same way; on its day it
 * is marked, audited and held — sealed under tomorrow's key, every day, until a person
 * reviews it (review.c): kept for longer (sealed under its new day) or erased.
 *
 * Owns: those two databases and the sweep. Never: holds any of the event's content in them,
 * or schedules an event twice (a redelivery is not stored again, so never scheduled again);
 * forgets a day some copy still waits for.
 */
#include <stdio.h>
#include <stdlib.h>
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

/* ---- received copies sealed under the day their retention ends ------------------------ */

sh_err ag_seal_for_day(sh_agent *a, const uint8_t id[16], uint32_t erase_day, const uint8_t *raw,
                       size_t len, uint8_t **out, size_t *outlen, sh_error *err)
{
    size_t cap = len + SH_SHRED_OVERHEAD;
    uint8_t *v = malloc(cap);
    *out = NULL;
    if (!v) return sh_error_set(err, SH_E_NOMEM, "sealing for erasure");
    sh_err rc = sh_shred_seal(a->shred, erase_day, id, 16, raw, len, v, cap, outlen);
    if (rc) {
        free(v);
        return rc == SH_E_NOT_FOUND
                   ? sh_error_set(err, SH_E_STORE, "no erasure key for day %u", erase_day)
                   : sh_error_set(err, rc, "sealing for erasure");
    }
    *out = v;
    return SH_OK;
}

sh_err ag_record_open(sh_agent *a, const uint8_t id[16], sh_agent_record *r, sh_buf *b)
{
    if (!(r->flags & SH_RECORD_DAYKEY)) return SH_OK;
    uint8_t *plain = NULL;
    size_t n = 0;
    sh_err rc = sh_agent_record_open(a->shred, id, r, &plain, &n);
    if (rc) return rc;
    /* the record's strings are copies: the sealed bytes are no longer needed */
    sh_buf_free(b);
    b->data = plain;
    b->len = b->cap = n;
    r->env = plain;
    r->env_len = n;
    return SH_OK;
}

sh_err ag_record_get(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_agent_record *r, sh_buf *b,
                     sh_error *err)
{
    sh_err rc = sh_txn_get(t, a->events, id, 16, b, err);
    if (rc) return rc;
    if (sh_agent_record_parse(b->data, b->len, r)) return SH_E_STORE_CORRUPT;
    return ag_record_open(a, id, r, b);
}

sh_err ag_record_reseal(sh_agent *a, sh_txn *t, const uint8_t id[16], uint32_t day, sh_error *err)
{
    sh_buf b = {0};
    sh_agent_record r;
    uint8_t *sealed = NULL, *v = NULL;
    size_t slen = 0, n = 0;
    sh_err rc = ag_record_get(a, t, id, &r, &b, err);
    if (rc == SH_E_STORE_CORRUPT) sh_error_set(err, rc, "a received copy does not open");
    if (!rc) rc = ag_seal_for_day(a, id, day, r.env, r.env_len, &sealed, &slen, err);
    if (!rc) {
        v = sh_agent_record_build(r.direction, r.at_ms, r.peer, r.rule,
                                  (uint8_t)(r.flags | SH_RECORD_DAYKEY), sealed, slen, &n);
        rc = v ? sh_txn_put(t, a->events, id, 16, v, n, 0, err)
               : sh_error_set(err, SH_E_NOMEM, "resealing a copy");
    }
    free(v);
    free(sealed);
    sh_buf_free(&b);
    return rc;
}

/* A copy waiting for a person's review is held: sealed under tomorrow's key and looked at
 * again when tomorrow comes (retention_due at its first moment), so the daily forgetting never
 * reaches it while it waits, and the key it was under before is forgotten as usual. */
static sh_err s_hold(sh_agent *a, sh_txn *t, const uint8_t id[16], uint32_t today, sh_error *err)
{
    uint8_t due[24];
    sh_be64_put(due, (uint64_t)(today + 1) * 86400000ULL);
    memcpy(due + 8, id, 16);
    sh_err rc = ag_record_reseal(a, t, id, today + 1, err);
    if (!rc) rc = sh_txn_put(t, a->retention_due, due, sizeof due, "", 0, 0, err);
    return rc;
}

sh_err ag_retain_release(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_error *err)
{
    sh_buf b = {0};
    sh_agent_record r;
    sh_err rc = sh_txn_get(t, a->events, id, 16, &b, err);
    if (!rc && !sh_agent_record_parse(b.data, b.len, &r) && (r.flags & SH_RECORD_DAYKEY)) {
        uint8_t due[24];
        sh_be64_put(due, (uint64_t)sh_shred_sealed_day(r.env, r.env_len) * 86400000ULL);
        memcpy(due + 8, id, 16);
        rc = sh_txn_del(t, a->retention_due, due, sizeof due, err);
    }
    sh_buf_free(&b);
    return rc == SH_E_NOT_FOUND ? SH_OK : rc;
}

/* ---- the sweep -------------------------------------------------------------------------- */

#define SWEEP_MAX 1000

sh_err ag_retain_erase(sh_agent *a, sh_txn *t, const uint8_t id[16], const sh_envelope *e,
                       sh_error *err)
{
    sh_err rc = sh_txn_del(t, a->events, id, 16, err);
    if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    uint8_t key[SH_BLIND_BYTES + 16], refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int nr = e ? sh_child_refs(a->store, e->child, refs) : 0;
    for (int i = 0; i < nr && !rc; i++) {
        memcpy(key, refs[i], SH_BLIND_BYTES);
        memcpy(key + SH_BLIND_BYTES, id, 16);
        rc = sh_txn_del(t, a->by_child, key, sizeof key, err);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    if (!rc && e && e->child &&
        ag_name_key(a->store, e->child->given_name, e->child->family_name, e->child->date_of_birth,
                    key) == 0) {
        memcpy(key + SH_BLIND_BYTES, id, 16);
        rc = sh_txn_del(t, a->by_name, key, sizeof key, err);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    if (!rc && e && e->correlation_id.len == 16) {
        memcpy(key, e->correlation_id.data, 16);
        memcpy(key + 16, id, 16);
        rc = sh_txn_del(t, a->by_thread, key, 32, err);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    ag_fd_item it;
    uint8_t fk[FD_KEY];
    if (!rc && ag_fd_get(a, t, id, &it, fk)) {
        rc = sh_txn_del(t, a->front_door, fk, FD_KEY, err);
        if (!rc || rc == SH_E_NOT_FOUND) rc = sh_txn_del(t, a->fd_by_id, id, 16, err);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    if (!rc) rc = sh_txn_del(t, a->read, id, 16, err);
    if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    return rc;
}

sh_err ag_retain_sweep(sh_agent *a, int64_t now_ms, size_t *erased, size_t *reviewed, sh_error *err)
{
    size_t ne = 0, nv = 0;
    sh_err rc = SH_OK;
    int more = 1;
    uint32_t today = sh_shred_day_of(now_ms);
    a->swept_ms = now_ms;
    while (more && !rc) {
        sh_txn *t = NULL;
        sh_cursor *c = NULL;
        rc = sh_txn_begin(a->store, 1, &t, err);
        if (!rc) rc = sh_cursor_open(t, a->retention_due, &c, err);
        uint8_t due[SWEEP_MAX][24];
        size_t n = 0;
        sh_kv kv;
        more = 0;
        for (sh_err crc = rc ? rc : sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err);
             !rc && crc == SH_OK; crc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
            if (kv.klen != 24 || (int64_t)sh_be64_get(kv.key) > now_ms) break;
            if (n == SWEEP_MAX) {
                more = 1;
                break;
            }
            memcpy(due[n++], kv.key, 24);
        }
        sh_cursor_close(&c);
        for (size_t i = 0; i < n && !rc; i++) {
            const uint8_t *id = due[i] + 8;
            sh_buf rv = {0}, b = {0};
            sh_error e2;
            if (sh_txn_get(t, a->retention, id, 16, &rv, &e2) || rv.len < 13) {
                sh_buf_free(&rv);
                rc = sh_txn_del(t, a->retention_due, due[i], 24, err);
                continue; /* (a stray: nothing to erase) */
            }
            if (rv.data[11] == 2) { /* still waiting for a person's review: held a day more */
                rc = sh_txn_del(t, a->retention_due, due[i], 24, err);
                if (!rc) rc = s_hold(a, t, id, today, err);
                if (rc == SH_E_NOT_FOUND) rc = sh_txn_del(t, a->retention, id, 16, err);
                if (rc == SH_E_STORE_CORRUPT) { /* damaged: not held (left for inspection) */
                    ag_log_event(a, "error", id, "a copy waiting for review is damaged");
                    rc = SH_OK;
                }
                sh_buf_free(&rv);
                continue;
            }
            int review = rv.data[11] == 1;
            char rule[256], what[400], when[32];
            size_t rl = rv.data[12] < rv.len - 13 ? rv.data[12] : rv.len - 13;
            memcpy(rule, rv.data + 13, rl);
            rule[rl] = '\0';
            sh_agent_record r;
            sh_envelope *e = NULL;
            uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
            int nr = 0;
            if (ag_record_get(a, t, id, &r, &b, &e2) == SH_OK &&
                sh_envelope_decode_minimised(r.env, r.env_len, &e, &e2) == SH_OK)
                nr = sh_child_refs(a->store, e->child, refs);
            sh_clock_iso((int64_t)sh_be64_get(rv.data), when, sizeof when);
            unsigned count = (unsigned)(rv.data[8] << 8 | rv.data[9]);
            snprintf(what, sizeof what, "%s %s from %s: kept %u %s%s as %s says, due %s",
                     review ? "due for review:" : "erased:",
                     e ? sh_event_type_name(e->event_type) : "an event", e ? r.peer : "its sender",
                     count, rv.data[10] == 'm' ? "month" : "day", count == 1 ? "" : "s", rule,
                     when);
            if (!review) rc = ag_retain_erase(a, t, id, e, err);
            if (!rc) rc = sh_txn_del(t, a->retention_due, due[i], 24, err);
            if (!rc && !review) rc = sh_txn_del(t, a->retention, id, 16, err);
            if (!rc && review) { /* kept, marked, held: the review is a person's (docs/agent.md) */
                rv.data[11] = 2;
                rc = sh_txn_put(t, a->retention, id, 16, rv.data, rv.len, 0, err);
                if (!rc && e) rc = s_hold(a, t, id, today, err);
            }
            if (!rc)
                rc = ag_audit(a, t, SH_AUDIT_ERASE, review ? SH_AUDIT_DENIED : SH_AUDIT_OK, 0, id,
                              nr ? refs[0] : NULL, "agent", e ? r.peer : NULL, "retention", rule,
                              what);
            if (!rc) review ? nv++ : ne++;
            sh_envelope_free(e);
            sh_buf_free(&b);
            sh_buf_free(&rv);
        }
        if (!rc && n)
            rc = ag_commit(a, &t, err);
        else
            sh_txn_abort(&t);
    }
    if (rc) return rc;
    /* forget every day before today that no copy still waits for: those due today or later
     * are sealed under today's key or later ones, and those waiting for review are held */
    if (today > sh_shred_first_day(a->shred)) {
        rc = sh_shred_forget_before(a->shred, today, err);
    }
    if (!rc && (ne || nv))
        ag_log(a, "info", "retention: %zu received copies erased, %zu due for review", ne, nv);
    if (erased) *erased = ne;
    if (reviewed) *reviewed = nv;
    return rc;
}
