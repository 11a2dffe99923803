/*
 * keep.c — how long the broker keeps what it holds of an event, and its erasure
 * (docs/store-format.md, "Erasure at the broker").
 *
 * The broker keeps each accepted event for --keep-events (default 30 days; never shorter than
 * the longest delivery expiry, so a delivery can always still be made): the envelope in its
 * event record and the minimised copies in its queues are sealed under the key of the day
 * that period ends (shred.h). When it has passed, the sweep replaces the envelope with its
 * SHA-256 (sender and outcome stay: a retry is still recognised, a receipt still routed),
 * removes any copy still queued (its sender is told: EXPIRED), audits each erasure, and then
 * forgets the keys of the days before today, so no copy — in a record, LMDB's free pages or
 * a backup of the store — can be opened again.
 *
 * Owns: the broker's shred file, state "keep_seq". Never: forgets a day whose copies the
 * sweep has not yet erased; lets an erasure stand whose audit entry failed; reads a copy's
 * personal data into an audit entry.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "clock.h"

#define SWEEP_MAX 1000  /* erasures in one transaction */
#define SCAN_MAX  50000 /* audit entries read in one */

sh_err bk_keep_init(sh_broker *b, sh_error *err)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/erase.shred", b->cfg.store_dir) >= sizeof path)
        return sh_error_set(err, SH_E_INVAL, "--store: path too long");
    return sh_shred_open(path, 1, &b->shred, err);
}

uint32_t bk_keep_day(const sh_broker *b, int64_t accepted_ms)
{
    return sh_shred_day_of(accepted_ms + b->cfg.keep_ms);
}

sh_err bk_keep_seal(sh_broker *b, const uint8_t id[16], uint32_t day, const uint8_t *in, size_t len,
                    uint8_t *out, size_t cap, sh_error *err)
{
    size_t n = 0;
    sh_err rc = sh_shred_seal(b->shred, day, id, 16, in, len, out, cap, &n);
    if (rc == SH_E_NOT_FOUND)
        return sh_error_set(err, SH_E_STORE, "no erasure key for day %u (the clock went back?)",
                            day);
    if (!rc && n != cap) rc = SH_E_INVAL;
    return rc ? sh_error_set(err, rc, "sealing for erasure") : SH_OK;
}

sh_err bk_keep_open(sh_broker *b, const uint8_t *id, const uint8_t *in, size_t len, sh_buf *out)
{
    if (len < SH_SHRED_OVERHEAD) return SH_E_STORE_CORRUPT;
    size_t need = len - SH_SHRED_OVERHEAD, n = 0;
    if (out->cap < need) {
        uint8_t *p = realloc(out->data, need ? need : 1);
        if (!p) return SH_E_NOMEM;
        out->data = p;
        out->cap = need ? need : 1;
    }
    sh_err rc = sh_shred_unseal(b->shred, id, 16, in, len, out->data, out->cap, &n);
    out->len = rc ? 0 : n;
    return rc;
}

/* ---- the sweep -------------------------------------------------------------------------- */

/* Erases the broker's copy of the event a `receive` entry r records, in t: the record's
 * envelope gives way to its SHA-256; audited with the entry's child reference. */
static sh_err s_erase_event(sh_broker *b, sh_txn *t, const sh_audit_record *r, sh_buf *scratch,
                            sh_error *err)
{
    sh_buf v = {0};
    sh_broker_event ev;
    sh_err rc = sh_txn_get(t, b->events, r->event_id, 16, &v, err);
    if (rc == SH_E_NOT_FOUND) return SH_OK; /* (nothing to erase) */
    if (rc) return rc;
    if (sh_broker_event_parse(v.data, v.len, &ev) || ev.form == SH_EVENT_ERASED) {
        sh_buf_free(&v);
        return SH_OK; /* damaged (left for inspection) or already erased */
    }
    /* zeros when nothing readable is left: its day was forgotten first, or it is damaged */
    uint8_t sum[32] = {0};
    if (ev.form == SH_EVENT_PLAIN)
        sh_sha256(ev.env, ev.env_len, sum);
    else if ((rc = bk_keep_open(b, r->event_id, ev.env, ev.env_len, scratch)) == SH_OK)
        sh_sha256(scratch->data, scratch->len, sum);
    if (rc == SH_E_NOMEM) {
        sh_buf_free(&v);
        return sh_error_set(err, rc, "erasing an event");
    }
    if (rc == SH_E_STORE_CORRUPT) bk_log("error", "an event copy due for erasure was damaged");
    rc = SH_OK;
    char *outcome = malloc(ev.outcome_len + 1), type[40] = "event", what[300], when[32], keep[24];
    size_t nl = 0;
    uint8_t *nv = NULL;
    if (outcome) {
        memcpy(outcome, ev.outcome, ev.outcome_len);
        outcome[ev.outcome_len] = '\0';
        nv = sh_broker_event_build(ev.sender, outcome, sum, 32, SH_EVENT_ERASED, &nl, NULL);
    }
    rc = nv ? sh_txn_put(t, b->events, r->event_id, 16, nv, nl, 0, err)
            : sh_error_set(err, SH_E_NOMEM, "erasing an event");
    if (!rc) rc = bk_evidence_forget(b, t, r->event_id, err); /* its seed goes with it */
    sscanf(r->detail, "type=%39s", type); /* the receive entry's decision context */
    snprintf(what, sizeof what, "erased: the broker's copy of a %s from %s, kept %s, due %s", type,
             ev.sender, sh_duration_format(b->cfg.keep_ms, keep, sizeof keep),
             sh_clock_iso(r->time_ms + b->cfg.keep_ms, when, sizeof when));
    if (!rc)
        rc = bk_audit(b, t, SH_AUDIT_ERASE, SH_AUDIT_OK, 0, r->event_id,
                      r->has_child ? r->child_ref : NULL, b->cfg.org_code, ev.sender, "keep-events",
                      what);
    free(nv);
    free(outcome);
    sh_buf_free(&v);
    return rc;
}

/* Erases the broker's copies of the events accepted longer than --keep-events ago. The audit
 * log is the index: its `receive` entries, one per accepted event, in the order accepted, are
 * walked from where the last sweep stopped (state "keep_seq") to the first not yet due,
 * SCAN_MAX entries and SWEEP_MAX erasures to a transaction. Returns the number erased. */
static size_t s_sweep_events(sh_broker *b, int64_t now, sh_err *rcp, sh_error *err)
{
    size_t total = 0;
    int more = 1;
    sh_buf scratch = {0};
    while (more && !*rcp) {
        sh_txn *t = NULL;
        sh_buf v = {0};
        uint64_t from = 1, head = 0, seq;
        size_t n = 0, read = 0;
        uint8_t mac[SH_MAC_BYTES], sb[8];
        more = 0;
        sh_err rc = sh_txn_begin(b->store, 1, &t, err);
        if (!rc && sh_txn_get(t, b->state, "keep_seq", 8, &v, err) == SH_OK && v.len == 8)
            from = sh_be64_get(v.data) + 1;
        sh_buf_free(&v);
        if (!rc) rc = sh_audit_head(b->audit, t, &head, mac, err);
        for (seq = from; !rc && seq <= head; seq++) {
            if (n == SWEEP_MAX || read == SCAN_MAX) {
                more = 1;
                break;
            }
            sh_audit_record r;
            read++;
            rc = sh_audit_get(b->audit, t, seq, &r, err);
            if (rc || r.action != SH_AUDIT_RECEIVE || !r.has_event) continue;
            if (r.time_ms + b->cfg.keep_ms > now) break; /* the rest are younger */
            rc = s_erase_event(b, t, &r, &scratch, err);
            n++;
        }
        sh_be64_put(sb, seq - 1); /* every entry before seq is done */
        if (!rc && seq > from) rc = sh_txn_put(t, b->state, "keep_seq", 8, sb, 8, 0, err);
        if (!rc && seq > from) rc = sh_txn_commit(&t, err);
        sh_txn_abort(&t);
        if (!rc) total += n;
        *rcp = rc;
    }
    sh_buf_free(&scratch);
    return total;
}

typedef struct s_leftover {
    uint8_t key[SH_QKEY_BYTES];
    uint8_t id[16];
    char sender[SH_ORG_MAX + 1];
    uint8_t tell; /* an event's copy (its sender is told), not a receipt */
} s_leftover;

/* Whether a queue entry is past the broker's keeping: queued longer than --keep-events, or
 * sealed under a day before today (kept under a longer setting before a restart). */
static int s_past(const sh_broker *b, const sh_broker_delivery *d, int64_t now, uint32_t today)
{
    if (d->accepted_ms > 0 && d->accepted_ms + b->cfg.keep_ms <= now) return 1;
    return (d->flags & SH_DELIVERY_SEALED) && sh_shred_sealed_day(d->copy, d->copy_len) < today;
}

/* Finds up to SWEEP_MAX queue entries past keeping: each recipient's queue from its oldest
 * entry (queues are in the order accepted) to the first that is not. */
static size_t s_find_leftovers(sh_broker *b, sh_txn *t, int64_t now, s_leftover *out)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    size_t n = 0;
    uint32_t today = sh_shred_day_of(now);
    if (sh_cursor_open(t, b->queue, &c, &err)) return 0;
    sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err);
    while (rc == SH_OK && n < SWEEP_MAX && kv.klen == SH_QKEY_BYTES) {
        sh_broker_delivery d;
        if (sh_broker_delivery_parse(kv.val, kv.vlen, &d) == 0 && s_past(b, &d, now, today)) {
            s_leftover *x = &out[n++];
            memcpy(x->key, kv.key, SH_QKEY_BYTES);
            memcpy(x->id, d.id, 16);
            memcpy(x->sender, d.sender, sizeof x->sender);
            x->tell = !sh_broker_delivery_is_receipt(&d) && d.sender[0] &&
                      strcmp(d.sender, b->cfg.org_code) != 0;
            rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err);
            continue;
        }
        /* the rest of this organisation's queue is younger: on to the next */
        char org[SH_QKEY_ORG + 1];
        memcpy(org, kv.key, SH_QKEY_ORG);
        org[SH_QKEY_ORG] = '\0';
        rc = bk_queue_next_org(c, org, &kv, &err);
    }
    sh_cursor_close(&c);
    return n;
}

/* Removes queued copies past keeping, SWEEP_MAX to a transaction; the number removed. */
static size_t s_sweep_queues(sh_broker *b, int64_t now, sh_err *rcp, sh_error *err)
{
    static s_leftover found[SWEEP_MAX];
    size_t total = 0, n = 1;
    char keep[24];
    sh_duration_format(b->cfg.keep_ms, keep, sizeof keep);
    while (n && !*rcp) {
        sh_txn *t = NULL;
        sh_err rc = sh_txn_begin(b->store, 1, &t, err);
        n = rc ? 0 : s_find_leftovers(b, t, now, found);
        uint64_t seq = b->seq;
        bk_stats_reset(&b->stage);
        for (size_t i = 0; i < n && !rc; i++) {
            s_leftover *x = &found[i];
            char org[SH_QKEY_ORG + 1], what[160];
            memcpy(org, x->key, SH_QKEY_ORG);
            org[SH_QKEY_ORG] = '\0';
            snprintf(what, sizeof what,
                     "erased: a copy still queued for %s after %s, the broker's "
                     "keeping",
                     org, keep);
            rc = sh_txn_del(t, b->queue, x->key, SH_QKEY_BYTES, err);
            if (!rc)
                rc = bk_audit(b, t, SH_AUDIT_ERASE, SH_AUDIT_OK, 0, x->id, NULL, b->cfg.org_code,
                              org, "keep-events", what);
            if (!rc && x->tell)
                rc = bk_receipt(b, t, &seq, (const uint8_t(*)[16])x->id, 1, x->sender, org,
                                SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_EXPIRED, SH_E_EXPIRED,
                                err);
            char lab[SH_LABELS_MAX] = "";
            sh_label(lab, sizeof lab, "recipient", org);
            if (!rc) sh_tally_add(&b->stage.expired, lab, 1);
        }
        if (!rc && n) rc = bk_depths_apply(b, t, err);
        if (!rc && n) rc = sh_txn_commit(&t, err);
        sh_txn_abort(&t);
        if (!rc && n) {
            b->seq = seq;
            bk_stats_merge(&b->stats, &b->stage);
            bk_depths_apply(b, NULL, err);
            total += n;
        }
        *rcp = rc;
    }
    return total;
}

sh_err bk_keep_sweep(sh_broker *b, int64_t now, sh_error *err)
{
    sh_err rc = SH_OK;
    b->kept_swept_ms = now;
    size_t ne = s_sweep_events(b, now, &rc, err);
    size_t nq = rc ? 0 : s_sweep_queues(b, now, &rc, err);
    /* nothing sealed under a day before today is left: those days' keys can go. (An event's
     * `receive` entry is written a moment after the time its day was taken from, in the same
     * transaction: a day is kept a minute into the next, so the sweep reaches such an event
     * before its key goes.) */
    uint32_t today = sh_shred_day_of(now - 60000);
    if (!rc && today > sh_shred_first_day(b->shred))
        rc = sh_shred_forget_before(b->shred, today, err);
    if (ne || nq)
        bk_log("info", "erased %zu event copies and %zu queued copies past --keep-events", ne, nq);
    return rc;
}
