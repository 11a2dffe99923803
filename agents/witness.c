/*
 * witness.c — witnessing both ways: this store's signed audit head sent to the broker to be
 * recorded in its log (WITNESS), and the broker's signed head, which every CONFIRM and DELIVER
 * carries, recorded in this store's log (docs/audit.md, "Witnessing").
 *
 * Owns: the newest broker head seen (memory and the state database's "broker_head") and when
 * it was last recorded. Never: records a broker head whose signature does not verify; lets a
 * broker head that goes back (a rolled-back or replaced broker log) pass without an audited
 * alarm; writes a transaction of its own for a head (it rides on the next commit).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

#define RECORD_EVERY_MS 1000 /* at most one broker head a second into this log */

/* Checkpoints the audit head if entries were added since the last checkpoint, then sends the
 * newest checkpoint to the broker unless it already holds it (docs/audit.md). */
void ag_witness(sh_agent *a)
{
    sh_txn *t = NULL;
    sh_error err;
    uint8_t cp[SH_AUDIT_CP_BYTES], head[SH_MAC_BYTES];
    uint64_t head_seq = 0, cp_seq = 0;
    a->witness_ms = sh_clock_ms();
    if (sh_txn_begin(a->store, 1, &t, &err)) return;
    sh_err rc = sh_audit_head(a->audit, t, &head_seq, head, &err);
    sh_err cprc = rc ? rc : sh_audit_last_checkpoint(a->audit, t, cp, &cp_seq, &err);
    if (!rc && head_seq > 0 && (cprc == SH_E_NOT_FOUND || (!cprc && cp_seq < head_seq))) {
        if (sh_audit_checkpoint(a->audit, t, &err) || ag_commit(a, &t, &err)) {
            ag_log(a, "error", "audit checkpoint: %s", err.detail);
            sh_txn_abort(&t);
            return;
        }
        if (sh_txn_begin(a->store, 0, &t, &err)) return;
        cprc = sh_audit_last_checkpoint(a->audit, t, cp, &cp_seq, &err);
    }
    sh_txn_abort(&t);
    if (!cprc && cp_seq > a->witnessed_seq && a->connected)
        sh_client_witness(a->broker, sh_store_id(a->store), cp, sizeof cp);
}

void ag_on_witnessed(sh_agent *a, const sh_msg *m)
{
    if (m->nframes < 3) return;
    char seq[24];
    snprintf(seq, sizeof seq, "%.*s", (int)(m->len[0] < 20 ? m->len[0] : 20),
             (const char *)m->frame[0]);
    char codetext[8];
    snprintf(codetext, sizeof codetext, "%.*s", (int)(m->len[1] < 6 ? m->len[1] : 6),
             (const char *)m->frame[1]);
    int code = atoi(codetext);
    if (code == 0 && codetext[0] == '0') {
        uint64_t v = strtoull(seq, NULL, 10);
        if (v > a->witnessed_seq) a->witnessed_seq = v;
        return;
    }
    ag_log(a, "error", "the broker refused this store's audit checkpoint %s: E%03d %.*s", seq, code,
           (int)(m->len[2] < 200 ? m->len[2] : 200), (const char *)m->frame[2]);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err) == SH_OK) {
        ag_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_FAILED, (sh_err)code, NULL, NULL, "agent", NULL,
                 NULL, NULL, "the broker refused this store's audit checkpoint");
        if (ag_commit(a, &t, &err)) ag_log(a, "error", "audit: %s", err.detail);
    }
    a->witnessed_seq = UINT64_MAX; /* do not resend: an operator must look at this store */
}

/* The head's seq and hash (cp at head + 16: version, seq, time, head). */
static uint64_t s_seq(const uint8_t *h)
{
    return sh_be64_get(h + SH_STORE_ID_BYTES + 1);
}

static const uint8_t *s_hash(const uint8_t *h)
{
    return h + SH_STORE_ID_BYTES + 17;
}

/* The broker's head went back, or forked, from the newest this agent holds: kept to be audited
 * with the next commit (ag_broker_head_record), and logged — once for each newest head held,
 * however many heads behind it follow. Only a head whose signature verifies raises it. */
static void s_alarm(sh_agent *a, const uint8_t *h)
{
    sh_audit_cp_info info;
    if (a->bhead_alarm_seq == s_seq(a->bhead) ||
        sh_audit_checkpoint_check(h, h + SH_STORE_ID_BYTES, SH_AUDIT_CP_BYTES, &info))
        return;
    a->bhead_alarm_seq = s_seq(a->bhead);
    ag_log(a, "error",
           "the broker's signed audit head went back: entry %llu after entry %llu %s: its log "
           "was rolled back or replaced",
           (unsigned long long)info.seq, (unsigned long long)s_seq(a->bhead),
           info.seq == s_seq(a->bhead) ? "with another hash" : "was seen");
    memcpy(a->bhead_bad, h, SH_WIRE_HEAD_BYTES);
    a->bhead_bad_pending = 1;
}

void ag_broker_head_seen(sh_agent *a)
{
    uint8_t h[SH_WIRE_HEAD_BYTES];
    uint64_t n = sh_client_head(a->broker, h);
    if (n == a->bhead_count) return;
    a->bhead_count = n;
    if (h[SH_STORE_ID_BYTES] != 1) return; /* not a checkpoint this version knows */
    int same_store = a->bhead_have && memcmp(h, a->bhead, SH_STORE_ID_BYTES) == 0;
    if (same_store && s_seq(h) == s_seq(a->bhead) &&
        memcmp(s_hash(h), s_hash(a->bhead), SH_MAC_BYTES) == 0)
        return;
    if (same_store && s_seq(h) <= s_seq(a->bhead)) {
        s_alarm(a, h);
        return;
    }
    if (a->bhead_have && !same_store)
        ag_log(a, "warning", "the broker answers from another store than before: recording it");
    memcpy(a->bhead, h, sizeof h);
    a->bhead_have = a->bhead_dirty = 1;
}

sh_err ag_broker_head_record(sh_agent *a, sh_txn *t, int now_anyway, sh_error *err)
{
    int64_t now = sh_clock_ms();
    if (a->bhead_bad_pending) {
        sh_audit_cp_info info;
        char detail[SH_AUDIT_WITNESS_DETAIL + 16];
        a->bhead_bad_pending = 0;
        if (sh_audit_checkpoint_check(a->bhead_bad, a->bhead_bad + SH_STORE_ID_BYTES,
                                      SH_AUDIT_CP_BYTES, &info) == SH_OK) {
            sh_audit_witness_detail(a->bhead_bad, &info, detail);
            strcat(detail, " (went back)");
            sh_err rc = ag_audit(a, t, SH_AUDIT_WITNESS, SH_AUDIT_FAILED, SH_E_AUDIT_ROLLED_BACK,
                                 NULL, NULL, "agent", NULL, NULL, NULL, detail);
            if (rc) return rc;
        }
    }
    if (!a->bhead_dirty || (!now_anyway && now - a->bhead_recorded_ms < RECORD_EVERY_MS))
        return SH_OK;
    a->bhead_dirty = 0;
    a->bhead_recorded_ms = now;
    sh_audit_cp_info info;
    char detail[SH_AUDIT_WITNESS_DETAIL];
    if (sh_audit_checkpoint_check(a->bhead, a->bhead + SH_STORE_ID_BYTES, SH_AUDIT_CP_BYTES,
                                  &info)) {
        ag_log(a, "error", "the broker sent a signed head whose signature does not verify");
        return ag_audit(a, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_AUDIT_CHECKPOINT, NULL, NULL,
                        "agent", NULL, NULL, NULL,
                        "the broker's signed audit head: its signature does not verify");
    }
    sh_audit_witness_detail(a->bhead, &info, detail);
    sh_err rc = ag_audit(a, t, SH_AUDIT_WITNESS, SH_AUDIT_OK, 0, NULL, NULL, "agent", NULL, NULL,
                         NULL, detail);
    if (!rc) rc = sh_txn_put(t, a->state, "broker_head", 11, a->bhead, sizeof a->bhead, 0, err);
    return rc;
}

void ag_broker_head_alarm(sh_agent *a)
{
    sh_txn *t = NULL;
    sh_error err;
    if (!a->bhead_bad_pending || sh_txn_begin(a->store, 1, &t, &err)) return;
    if (ag_broker_head_record(a, t, 0, &err) || ag_commit(a, &t, &err))
        ag_log(a, "error", "audit: %s", err.detail);
    sh_txn_abort(&t);
}

void ag_broker_head_load(sh_agent *a)
{
    sh_txn *t = NULL;
    sh_error err;
    sh_buf b = {0};
    if (sh_txn_begin(a->store, 0, &t, &err)) return;
    if (sh_txn_get(t, a->state, "broker_head", 11, &b, &err) == SH_OK &&
        b.len == SH_WIRE_HEAD_BYTES) {
        memcpy(a->bhead, b.data, b.len);
        a->bhead_have = 1;
    }
    sh_buf_free(&b);
    sh_txn_abort(&t);
}
