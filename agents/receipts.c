/*
 * receipts.c — the STORED receipts this agency signs for what it received (docs/agent.md,
 * "Tracking"): every event it stores (a receipt excepted) is noted as due in the same
 * transaction; the notes become one DeliveryReceipt (STORED) per sender for up to
 * 1 + SH_REPEATED_MAX events, put in the outbox like any event this agency publishes, so it
 * goes out signed with the agency's sender evidence. A sender holds it as proof, in the
 * recipient's own signed words, that the recipient stored its event.
 *
 * Owns: the stored_due database (sender org, NUL-padded to SH_ORG_MAX, || event id -> "").
 * Never: loses a note (it leaves only in the transaction that puts its receipt in the outbox);
 * signs a receipt for a receipt; holds a note longer than RECEIPT_WAIT_MS once it could go.
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"

#define RECEIPT_WAIT_MS 1000 /* a note waits this long for others of its sender to share one */
#define RECEIPTS_A_TURN 16   /* receipts made in one transaction */
#define DUE_KEY         (SH_ORG_MAX + 16)

sh_err ag_receipt_due(sh_agent *a, sh_txn *t, const char *sender, const uint8_t id[16],
                      sh_error *err)
{
    uint8_t key[DUE_KEY] = {0};
    size_t n = strlen(sender);
    memcpy(key, sender, n < SH_ORG_MAX ? n : SH_ORG_MAX);
    memcpy(key + SH_ORG_MAX, id, 16);
    return sh_txn_put(t, a->stored_due, key, sizeof key, "", 0, 0, err);
}

sh_err ag_receipts_load(sh_agent *a, sh_error *err)
{
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_err rc = sh_txn_begin(a->store, 0, &t, err);
    if (!rc) rc = sh_cursor_open(t, a->stored_due, &c, err);
    a->due = 0;
    for (sh_cursor_op op = SH_CURSOR_FIRST; !rc; op = SH_CURSOR_NEXT) {
        sh_err r = sh_cursor_key(c, op, NULL, 0, &kv, err);
        if (r == SH_E_NOT_FOUND) break;
        if (r)
            rc = r;
        else
            a->due++;
    }
    a->due_ms = a->due ? sh_clock_ms() : 0; /* (their age is not kept: they wait one more) */
    sh_cursor_close(&c);
    sh_txn_abort(&t);
    return rc;
}

/* Up to RECEIPTS_A_TURN receipts from the notes, in one transaction with their notes'
 * removal; how many notes they covered, or -1. */
static long s_turn(sh_agent *a, sh_error *err)
{
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_kv kv;
    uint8_t ids[1 + SH_REPEATED_MAX][16], keys[1 + SH_REPEATED_MAX][DUE_KEY];
    char sender[SH_ORG_MAX + 1];
    long covered = 0;
    unsigned made = 0;
    sh_err rc = sh_txn_begin(a->store, 1, &t, err);
    if (!rc) rc = sh_cursor_open(t, a->stored_due, &c, err);
    sh_err r = rc ? rc : sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err);
    while (!rc && r == SH_OK && made < RECEIPTS_A_TURN) {
        size_t n = 0;
        memcpy(sender, kv.key, SH_ORG_MAX);
        sender[SH_ORG_MAX] = '\0';
        /* this sender's notes, in key order, up to what one receipt covers */
        while (r == SH_OK && n < 1 + SH_REPEATED_MAX && kv.klen == DUE_KEY &&
               strncmp((const char *)kv.key, sender, SH_ORG_MAX) == 0) {
            memcpy(keys[n], kv.key, DUE_KEY);
            memcpy(ids[n++], kv.key + SH_ORG_MAX, 16);
            r = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err);
        }
        if (r != SH_OK && r != SH_E_NOT_FOUND) {
            rc = r;
            break;
        }
        if (!n) { /* a key of another length: not a note (never written): drop it */
            rc = sh_error_set(err, SH_E_STORE_CORRUPT, "stored_due: a key of %zu bytes", kv.klen);
            break;
        }
        sh_receipt rec;
        rc = sh_receipt_start(&rec, a->cfg->org, (const uint8_t(*)[16])ids, n, a->cfg->org,
                              SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_STORED, SH_OK,
                              sh_clock_ms())
                 ? sh_error_set(err, SH_E_IO, "receipt: event id")
                 : SH_OK;
        if (!rc)
            rc = ag_publish_put(a, t, a->outbox_seq + made, &rec.e, "agent", "stored receipt", NULL,
                                NULL, err);
        for (size_t i = 0; !rc && i < n; i++)
            rc = sh_txn_del(t, a->stored_due, keys[i], DUE_KEY, err);
        made++;
        covered += (long)n;
    }
    sh_cursor_close(&c);
    if (!rc && made) rc = ag_put_seq(a, t, "outbox_seq", a->outbox_seq + made, err);
    if (!rc && made) rc = ag_commit(a, &t, err);
    sh_txn_abort(&t);
    if (rc) return -1;
    a->outbox_seq += made;
    a->queued += made;
    return covered;
}

void ag_receipts_send(sh_agent *a, int64_t now)
{
    if (!a->due || a->store_failed_ms ||
        (a->due < 1 + SH_REPEATED_MAX && now - a->due_ms < RECEIPT_WAIT_MS))
        return;
    sh_error err;
    long covered = s_turn(a, &err);
    if (covered < 0) {
        ag_log(a, "error", "stored receipts: %s (tried again in a second)", err.detail);
        a->due_ms = now;
        return;
    }
    /* (notes left over wait for the next turn, which takes them at once) */
    a->due = (uint64_t)covered >= a->due ? 0 : a->due - (uint64_t)covered;
    if (!a->due) a->due_ms = 0;
}
