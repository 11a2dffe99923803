/*
 * session.c — the broker's sessions: one per connection, keyed by ZeroMQ routing id. HELLO
 * and the subscriptions it names, the window of deliveries sent and not yet acknowledged,
 * ACK, and the timers that resend an overdue window or forget a silent peer.
 *
 * Owns: b->sessions and each session's window (a ring of cfg.window entries). Never: lets a
 * delivery leave the window before its ACK has committed; treats a subscription name it
 * does not know as "everything" or "nothing" (HELLO is refused: docs/protocol.md).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "clock.h"
#include "log.h"

int bk_session_find(sh_broker *b, const uint8_t *rid, size_t rid_len)
{
    for (size_t i = 0; i < b->nsessions; i++)
        if (b->sessions[i].rid_len == rid_len && memcmp(b->sessions[i].rid, rid, rid_len) == 0)
            return (int)i;
    return -1;
}

void bk_session_drop(sh_broker *b, size_t i)
{
    free(b->sessions[i].flight);
    b->sessions[i] = b->sessions[--b->nsessions];
}

int bk_session_get(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *org)
{
    int i = bk_session_find(b, rid, rid_len);
    if (i >= 0) return i;
    if (rid_len > sizeof b->sessions[0].rid) return -1;
    if (b->nsessions == b->capsessions) {
        size_t cap = b->capsessions ? b->capsessions * 2 : 16;
        bk_session *p = realloc(b->sessions, cap * sizeof *p);
        if (!p) return -1;
        b->sessions = p;
        b->capsessions = cap;
    }
    bk_session *s = &b->sessions[b->nsessions];
    memset(s, 0, sizeof *s);
    s->flight = calloc(b->cfg.window, sizeof *s->flight);
    if (!s->flight) return -1;
    memcpy(s->rid, rid, rid_len);
    s->rid_len = rid_len;
    snprintf(s->org, sizeof s->org, "%s", org);
    return (int)b->nsessions++;
}

/* The window's entry for event id, or NULL. ACKs come in the order of sending, so the
 * search ends near the head. */
static bk_flight *s_flight_find(const sh_broker *b, const bk_session *s, const uint8_t id[16])
{
    for (unsigned k = 0; k < s->nflight; k++) {
        bk_flight *f = bk_flight_at(b, s, k);
        if (!f->acked && memcmp(f->id, id, 16) == 0) return f;
    }
    return NULL;
}

/* ---- HELLO and subscriptions --------------------------------------------------------- */

#define SUBS_MAX 1024 /* bytes of a HELLO's subscriptions */

/* Checks a HELLO's subscriptions: "*", or event type names (sh_event_type_name) separated by
 * commas, no spaces, none empty. 0, or -1 with the first bad name in why. */
static int s_subs_check(const uint8_t *arg, size_t len, char *why, size_t cap)
{
    if (len == 1 && arg[0] == '*') return 0;
    if (len > SUBS_MAX) {
        snprintf(why, cap, "subscriptions: %zu bytes, at most %d", len, SUBS_MAX);
        return -1;
    }
    if (len == 0) {
        snprintf(why, cap, "no subscriptions: want * or event type names separated by commas");
        return -1;
    }
    const uint8_t *s = arg, *end = arg + len;
    while (s <= end) {
        const uint8_t *comma = memchr(s, ',', (size_t)(end - s));
        size_t l = (size_t)((comma ? comma : end) - s);
        char name[40];
        if (l == 0 || l >= sizeof name) {
            snprintf(why, cap, "subscriptions: %s name at byte %zu", l ? "over-long" : "an empty",
                     (size_t)(s - arg));
            return -1;
        }
        memcpy(name, s, l);
        name[l] = '\0';
        int known = sh_event_type_from_name(name) != 0;
        for (size_t i = 0; i < l && known; i++)
            known = (name[i] >= 'a' && name[i] <= 'z') || name[i] == '_';
        if (!known) {
            /* (the name is shown only when it is plain lower-case text) */
            int plain = 1;
            for (size_t i = 0; i < l; i++)
                plain &= (name[i] >= 'a' && name[i] <= 'z') || name[i] == '_' ||
                         (name[i] >= '0' && name[i] <= '9');
            snprintf(why, cap,
                     "subscriptions: '%s' is not an event type name (want * or names such as "
                     "request_for_support, safeguarding_concern, cp_plan_status; "
                     "docs/protocol.md lists them)",
                     plain ? name : "?");
            return -1;
        }
        if (!comma) break;
        s = comma + 1;
    }
    return 0;
}

void bk_hello(sh_broker *b, sh_txn *t, int si, const uint8_t *arg, size_t arglen, bk_reply *r)
{
    bk_session *s = &b->sessions[si];
    char why[200];
    if (s_subs_check(arg, arglen, why, sizeof why)) {
        /* nothing flows to a session whose subscriptions could not be read */
        s->ready = 0;
        bk_error_now(b, s->rid, s->rid_len, SH_E_BAD_SUBSCRIPTION, why);
        snprintf(r->cmd, sizeof r->cmd, "NONE");
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_BAD_SUBSCRIPTION, NULL, NULL, s->org,
                 NULL, NULL, why);
        return;
    }
    sh_error err;
    if (sh_txn_put(t, b->subs, s->org, strlen(s->org), arg, arglen, 0, &err) != SH_OK) {
        snprintf(r->cmd, sizeof r->cmd, "NONE"); /* the commit fails: the agent says HELLO again */
        return;
    }
    /* one live session per organisation: a reconnect replaces the old one */
    for (size_t i = 0; i < b->nsessions; i++)
        if ((int)i != si && strcmp(b->sessions[i].org, s->org) == 0) b->sessions[i].ready = 0;
    s->ready = 1;
    s->next = 0;
    s->nflight = s->head = 0;
    bk_reply_addf(r, "%s", s->org);
    bk_reply_addf(r, "%d", b->cfg.heartbeat_ms);
}

int bk_subscribed(sh_broker *b, sh_txn *t, const char *org, int type, sh_buf *buf)
{
    sh_error err;
    if (sh_txn_get(t, b->subs, org, strlen(org), buf, &err) != SH_OK) return 1; /* all */
    const char *name = sh_event_type_name(type);
    size_t nl = strlen(name);
    const char *s = (const char *)buf->data, *end = s + buf->len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t l = (size_t)((comma ? comma : end) - s);
        if ((l == 1 && *s == '*') || (l == nl && memcmp(s, name, nl) == 0)) return 1;
        s += l + 1;
    }
    return type == ET(DELIVERY_RECEIPT); /* receipts always reach their sender */
}

/* ---- ACK ----------------------------------------------------------------------------- */

/* Finds org's queue entry for event id: in flight first (*fl set), else by scanning its
 * queue (*fl NULL). */
static sh_err s_find_queued(sh_broker *b, sh_txn *t, bk_session *s, const uint8_t id[16],
                            uint64_t *seq, bk_flight **fl)
{
    if ((*fl = s_flight_find(b, s, id))) {
        *seq = (*fl)->seq;
        return SH_OK;
    }
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    uint8_t key[SH_QKEY_BYTES];
    sh_broker_qkey(s->org, 0, key);
    if (sh_cursor_open(t, b->queue, &c, &err)) return err.code;
    sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        if (kv.klen != sizeof key || memcmp(kv.key, key, SH_QKEY_ORG) != 0) break;
        if (kv.vlen >= 16 && memcmp(kv.val, id, 16) == 0) {
            *seq = sh_be64_get(kv.key + SH_QKEY_ORG);
            sh_cursor_close(&c);
            return SH_OK;
        }
    }
    sh_cursor_close(&c);
    return SH_E_NOT_FOUND;
}

void bk_ack(sh_broker *b, sh_txn *t, int si, const uint8_t *id, bk_reply *r, bk_acked *acked)
{
    bk_session *s = &b->sessions[si];
    sh_error err;
    uint64_t qseq = 0;
    bk_flight *f = NULL;
    snprintf(r->cmd, sizeof r->cmd, "NONE"); /* an ACK is not answered */
    /* an ACK for something already acked (a redelivery crossed the ACK) is harmless */
    if (s_find_queued(b, t, s, id, &qseq, &f) != SH_OK) return;
    uint8_t key[SH_QKEY_BYTES];
    sh_buf buf = {0};
    sh_broker_qkey(s->org, qseq, key);
    char sender[SH_ORG_MAX + 1] = "";
    int is_receipt = 1;
    int64_t accepted_ms = 0;
    sh_broker_delivery d;
    if (f) {
        memcpy(sender, f->sender, sizeof sender);
        is_receipt = f->receipt;
        accepted_ms = f->accepted_ms;
    } else if (sh_txn_get(t, b->queue, key, sizeof key, &buf, &err) == SH_OK &&
               sh_broker_delivery_parse(buf.data, buf.len, &d) == 0) {
        memcpy(sender, d.sender, sizeof sender);
        is_receipt = sh_broker_delivery_is_receipt(&d);
        accepted_ms = d.accepted_ms;
    }
    sh_buf_free(&buf);
    /* the recipient holds it durably whatever happens to this batch: it leaves the window */
    r->kind = BK_REPLY_ACK;
    memcpy(r->id, id, 16);
    if (sh_txn_del(t, b->queue, key, sizeof key, &err) != SH_OK) return;
    if (bk_audit(b, t, SH_AUDIT_DELIVER, SH_AUDIT_OK, 0, id, NULL, sender, s->org, NULL,
                 "acknowledged by recipient"))
        return;
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "recipient", s->org);
    sh_tally_add(&b->stage.acked, lab, 1);
    if (!is_receipt && accepted_ms)
        sh_hist_observe(&b->stage.latency, (double)(sh_clock_ms() - accepted_ms) / 1e3);
    if (!is_receipt && sender[0] && strcmp(sender, b->cfg.org_code) != 0 && acked->n < SH_ACK_MAX) {
        memcpy(acked->e[acked->n].sender, sender, sizeof sender);
        memcpy(acked->e[acked->n++].id, id, 16);
    }
}

void bk_ack_receipts(sh_broker *b, sh_txn *t, uint64_t *seq, const char *recipient, bk_acked *acked)
{
    /* The DELIVERED receipts for one ACK message: one per sender for up to RECEIPT_IDS of its
     * events, in the order acknowledged (one ACK of 256 events from one sender: 4 receipts,
     * not 256). A failed enqueue fails the transaction: the batch's commit reports it. */
    uint8_t ids[RECEIPT_IDS][16];
    sh_error err;
    for (size_t i = 0; i < acked->n; i++) {
        if (!acked->e[i].sender[0]) continue; /* taken into an earlier receipt */
        const char *sender = acked->e[i].sender;
        size_t n = 0;
        for (size_t k = i; k < acked->n && n < RECEIPT_IDS; k++)
            if (strcmp(acked->e[k].sender, sender) == 0) {
                memcpy(ids[n++], acked->e[k].id, 16);
                if (k > i) acked->e[k].sender[0] = '\0';
            }
        if (bk_receipt(b, t, seq, (const uint8_t(*)[16])ids, n, sender, recipient,
                       SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED, SH_OK, &err))
            break;
        acked->e[i].sender[0] = '\0';
    }
    acked->n = 0;
}

void bk_unflight(sh_broker *b, const bk_reply *r, int64_t rewind_ms)
{
    /* by routing id, not index: a session dropped in this batch moved the others */
    int si = bk_session_find(b, r->rid, r->rid_len);
    if (si < 0) return;
    bk_session *s = &b->sessions[si];
    bk_flight *f = s_flight_find(b, s, r->id);
    if (f) f->acked = 1;
    while (s->nflight && bk_flight_at(b, s, 0)->acked) {
        s->head = (s->head + 1) % b->cfg.window;
        s->nflight--;
    }
    if (rewind_ms) s->rewind_ms = rewind_ms;
}

/* ---- timers -------------------------------------------------------------------------- */

void bk_timers(sh_broker *b)
{
    /* Resends deliveries whose ACK is overdue; forgets sessions that went silent. */
    int64_t now = sh_clock_ms();
    for (size_t i = 0; i < b->nsessions;) {
        bk_session *s = &b->sessions[i];
        if (now - s->seen_ms > 3LL * b->cfg.heartbeat_ms) {
            bk_session_drop(b, i);
            continue;
        }
        int stale = 0;
        for (unsigned k = 0; k < s->nflight; k++) {
            const bk_flight *f = bk_flight_at(b, s, k);
            stale |= !f->acked && now - f->sent_ms >= b->cfg.redeliver_ms;
        }
        if (stale) {
            /* resend the whole window in order from its oldest entry */
            s->next = s->nflight ? bk_flight_at(b, s, 0)->seq : s->next;
            s->nflight = s->head = 0;
        }
        if (s->rewind_ms && now >= s->rewind_ms && s->nflight == 0) {
            /* entries whose ACK could not be committed are still queued: offer them again
             * (the agent holds them already, answers with another ACK and stores nothing) */
            s->next = 0;
            s->rewind_ms = 0;
        }
        i++;
    }
}
