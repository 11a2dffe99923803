/*
 * expiry.c — deliveries nobody takes: a queue entry still unacknowledged when its expiry has
 * passed (the ISP's delivery_expiry, else the broker's --delivery-expiry; MESH's is 5 days) is
 * removed, audited (`expire`), counted, and its sender is sent an EXPIRED receipt naming the
 * recipient, so the referrer learns to use another route (docs/protocol.md#expiry).
 *
 * Owns: nothing of its own; removes queue entries in its own write transaction. Never: expires
 * a delivery while its recipient is connected and being offered it (its ACK may be on the
 * way); answers a receipt with a receipt; lets an expiry stand whose audit entry or receipt
 * was not written.
 */
#include <string.h>

#include "broker_int.h"
#include "log.h"

#define EXPIRE_MAX 256 /* entries removed in one pass (one transaction); the rest wait a second */

/* The expiry of a delivery made under rule (its ISP's, else the broker's). */
static int64_t s_expiry_ms(const sh_broker *b, const sh_broker_delivery *d)
{
    const sh_isp *isp = sh_broker_delivery_is_receipt(d)
                            ? NULL
                            : sh_policy_find(b->policy, (const char *)d->rule, d->rule_len);
    int64_t ms = isp ? sh_isp_expiry_ms(isp) : 0;
    return ms ? ms : b->cfg.expiry_ms;
}

/* The shortest expiry any delivery can have now: no entry younger than this can expire. */
static int64_t s_shortest_ms(const sh_broker *b)
{
    int64_t ms = b->cfg.expiry_ms;
    for (size_t i = 0; i < sh_policy_count(b->policy); i++) {
        int64_t v = sh_isp_expiry_ms(sh_policy_at(b->policy, i));
        if (v && v < ms) ms = v;
    }
    return ms;
}

/* Whether org has a ready session: it is being offered its deliveries, so none of them is
 * expired under it (a recipient that is connected and does not acknowledge shows in the queue's
 * age, docs/operations.md). Expiry is for recipients that do not collect at all. */
static int s_collecting(const sh_broker *b, const char *org)
{
    for (size_t i = 0; i < b->nsessions; i++)
        if (b->sessions[i].ready && strcmp(b->sessions[i].org, org) == 0) return 1;
    return 0;
}

typedef struct expired {
    uint8_t key[SH_QKEY_BYTES];
    uint8_t id[16];
    char sender[SH_ORG_MAX + 1];
    char rule[65];
    uint8_t receipt;
    int64_t waited_ms;
} expired;

/* Finds up to EXPIRE_MAX due entries in t: in each recipient's queue (seq order, which is the
 * order they were accepted in) until the first entry too young for any expiry to have passed. */
static size_t s_find(sh_broker *b, sh_txn *t, int64_t now, expired *out)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    size_t n = 0;
    int64_t shortest = s_shortest_ms(b);
    if (sh_cursor_open(t, b->queue, &c, &err)) return 0;
    sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err);
    while (rc == SH_OK && n < EXPIRE_MAX) {
        sh_broker_delivery d;
        char org[SH_QKEY_ORG + 1];
        if (kv.klen != SH_QKEY_BYTES) break;
        memcpy(org, kv.key, SH_QKEY_ORG);
        org[SH_QKEY_ORG] = '\0';
        int young = 0;
        if (sh_broker_delivery_parse(kv.val, kv.vlen, &d) == 0 && d.accepted_ms > 0) {
            young = now - d.accepted_ms < shortest;
            int64_t waited = now - d.accepted_ms;
            if (!young && waited >= s_expiry_ms(b, &d) && !s_collecting(b, org)) {
                expired *x = &out[n++];
                memcpy(x->key, kv.key, SH_QKEY_BYTES);
                memcpy(x->id, d.id, 16);
                memcpy(x->sender, d.sender, sizeof x->sender);
                size_t rl = d.rule_len < sizeof x->rule ? d.rule_len : sizeof x->rule - 1;
                memcpy(x->rule, d.rule, rl);
                x->rule[rl] = '\0';
                x->receipt = (uint8_t)sh_broker_delivery_is_receipt(&d);
                x->waited_ms = waited;
            }
        }
        if (young) /* the rest of org's queue is younger still: on to the next organisation */
            rc = bk_queue_next_org(c, org, &kv, &err);
        else
            rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err);
    }
    sh_cursor_close(&c);
    return n;
}

void bk_expire(sh_broker *b, int64_t now)
{
    static expired found[EXPIRE_MAX];
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 1, &t, &err)) return;
    size_t n = s_find(b, t, now, found);
    if (n == 0) {
        sh_txn_abort(&t);
        return;
    }
    uint64_t seq = b->seq;
    bk_stats_reset(&b->stage);
    sh_err rc = SH_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        expired *x = &found[i];
        char org[SH_QKEY_ORG + 1], detail[96];
        memcpy(org, x->key, SH_QKEY_ORG);
        org[SH_QKEY_ORG] = '\0';
        snprintf(detail, sizeof detail, "undelivered after %lld s: expired",
                 (long long)(x->waited_ms / 1000));
        rc = sh_txn_del(t, b->queue, x->key, SH_QKEY_BYTES, &err);
        if (!rc)
            rc = bk_audit(b, t, SH_AUDIT_EXPIRE, SH_AUDIT_FAILED, SH_E_EXPIRED, x->id, NULL,
                          x->sender, org, x->rule, detail);
        /* the sender learns, unless the entry was itself a receipt or from the broker */
        if (!rc && !x->receipt && x->sender[0] && strcmp(x->sender, b->cfg.org_code) != 0)
            rc = bk_receipt(b, t, &seq, (const uint8_t(*)[16])x->id, 1, x->sender, org,
                            SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_EXPIRED, SH_E_EXPIRED,
                            &err);
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "recipient", org);
        if (!rc) sh_tally_add(&b->stage.expired, lab, 1);
    }
    if (!rc) rc = bk_depths_apply(b, t, &err);
    if (rc || sh_txn_commit(&t, &err)) {
        sh_txn_abort(&t);
        bk_log("error", "expiring %zu deliveries: %s (tried again in a second)", n, err.detail);
        b->store_failed_ms = now;
        return;
    }
    b->seq = seq;
    bk_stats_merge(&b->stats, &b->stage);
    bk_depths_apply(b, NULL, &err);
    bk_log("warning", "%zu deliveries expired undelivered; their senders were told", n);
}
