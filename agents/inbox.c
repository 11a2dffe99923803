/*
 * inbox.c — deliveries: stored in batches (one write transaction, one commit, one ACK for the
 * batch once it is durable), redeliveries recognised and acknowledged again.
 *
 * Owns: the inbox database's entries. Never: acknowledges a delivery before its batch has
 * committed; stores a delivery that does not decode.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

sh_txn *ag_batch_txn(sh_agent *a, ag_batch *bt)
{
    sh_error err;
    if (!bt->t) {
        if (sh_txn_begin(a->store, 1, &bt->t, &err)) {
            ag_log(a, "error", "cannot begin a transaction: %s", err.detail);
            return NULL;
        }
        bt->inbox_seq = a->inbox_seq;
    }
    return bt->t;
}

static void s_reset(ag_batch *bt)
{
    bt->t = NULL;
    bt->n = bt->nconfirm = 0;
    bt->stored = bt->delivered = bt->settled = bt->accepted = bt->due = 0;
    memset(&bt->latency, 0, sizeof bt->latency);
    memset(&bt->confirm_latency, 0, sizeof bt->confirm_latency);
    sh_tally_reset(&bt->refused);
    sh_tally_reset(&bt->denied);
}

/* Commits the batch, then acknowledges each delivery in it and counts what it recorded; a
 * failed commit acknowledges nothing (the broker resends) and resends what was in flight
 * (its CONFIRMs were not recorded: the outbox still holds those events). */
void ag_flush(sh_agent *a, ag_batch *bt)
{
    if (!bt->t) { /* nothing written: the local requests refused before writing are answered */
        if (a->local.np) ag_local_settled(a, SH_OK, NULL);
        return;
    }
    sh_error err;
    sh_err rc = ag_put_seq(a, bt->t, "inbox_seq", bt->inbox_seq, &err);
    if (!rc) rc = ag_broker_head_record(a, bt->t, 0, &err);
    if (!rc && a->local.n)
        rc = ag_put_seq(a, bt->t, "outbox_seq", a->outbox_seq + a->local.n, &err);
    if (!rc) rc = ag_commit(a, &bt->t, &err);
    ag_local_settled(a, rc, &err); /* the local publishes in it are answered either way */
    if (rc) {
        sh_txn_abort(&bt->t);
        ag_log(a, "error", "storing %zu deliveries and %zu confirms: %s", bt->n, bt->nconfirm,
               err.detail);
        if (bt->nconfirm) a->nflight = 0;
    } else {
        a->inbox_seq = bt->inbox_seq;
        a->received += bt->stored;
        if (bt->due && !a->due) a->due_ms = sh_clock_ms();
        a->due += bt->due;
        a->delivered += bt->delivered;
        sh_hist_merge(&a->delivery_latency, &bt->latency);
        a->settled += bt->settled;
        a->accepted += bt->accepted;
        sh_tally_merge(&a->refused, &bt->refused);
        sh_tally_merge(&a->denied, &bt->denied);
        sh_hist_merge(&a->confirm_latency, &bt->confirm_latency);
        if (bt->n) sh_client_ack_many(a->broker, (const uint8_t(*)[16])bt->ack, bt->n);
    }
    s_reset(bt);
}

void ag_on_deliver(sh_agent *a, const sh_msg *m, ag_batch *bt)
{
    if (m->nframes != SH_DELIVER_FIELDS || m->len[0] != 16 || m->len[1] > SH_ORG_MAX ||
        m->len[2] > 64)
        return;
    char peer[SH_ORG_MAX + 1], rule[65];
    memcpy(peer, m->frame[1], m->len[1]);
    peer[m->len[1]] = '\0';
    memcpy(rule, m->frame[2], m->len[2]);
    rule[m->len[2]] = '\0';
    sh_envelope *e = NULL;
    sh_error err;
    if (sh_envelope_decode_minimised(m->frame[4], m->len[4], &e, &err)) {
        ag_log_event(a, "error", m->frame[0], "the broker delivered an invalid event: %s",
                     err.detail);
        return; /* not acknowledged: it stays queued at the broker for inspection */
    }
    sh_buf b = {0};
    if (!ag_batch_txn(a, bt)) goto out;
    sh_err rc = sh_txn_get(bt->t, a->events, m->frame[0], 16, &b, &err);
    if (rc == SH_OK) { /* a redelivery: already durable here (or in this batch) */
        memcpy(bt->ack[bt->n++], m->frame[0], 16);
        goto out;
    }
    uint8_t seqkey[8], refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES], signer[SH_SIGN_PUB_BYTES];
    int nr = sh_child_refs(a->store, e->child, refs), overdue = 0;
    /* what the sender said, as it signed it (docs/evidence.md): else never stored */
    if ((rc = ag_evidence_check(a, m->frame[4], m->len[4], m->frame[5], m->len[5], e, rule, signer,
                                &err))) {
        ag_log_event(a, "error", m->frame[0], "a delivery from %s refused: %s", e->source_org,
                     err.detail);
        ag_audit(a, bt->t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, rc, m->frame[0], nr ? refs[0] : NULL,
                 "agent", peer, NULL, rule, err.detail);
        goto out; /* not acknowledged: it stays queued at the broker, refused again if resent */
    }
    sh_retain keep;
    if (sh_deliver_flags_parse(m->frame[3], m->len[3], &overdue, &keep)) {
        ag_log_event(a, "error", m->frame[0], "the broker delivered a malformed retain= flag");
        goto out; /* not acknowledged: it stays queued at the broker for inspection */
    }
    /* a copy with a retention is sealed under the key of the day it ends (erase or review) */
    int64_t now = sh_clock_ms();
    uint8_t *sealed = NULL, flags = overdue ? SH_RECORD_OVERDUE : 0;
    size_t slen = 0;
    rc = SH_OK;
    if (keep.count) {
        uint32_t day = sh_shred_day_of(sh_clock_add(now, keep.count, keep.unit));
        rc = ag_seal_for_day(a, m->frame[0], day, m->frame[4], m->len[4], &sealed, &slen, &err);
        flags |= SH_RECORD_DAYKEY;
    }
    if (!rc)
        rc = ag_store_event(a, bt->t, SH_DIR_RECEIVED, peer, rule, flags, e,
                            sealed ? sealed : m->frame[4], sealed ? slen : m->len[4],
                            (const uint8_t(*)[SH_BLIND_BYTES])refs, nr, &err);
    free(sealed);
    if (!rc) rc = ag_evidence_keep(a, bt->t, m->frame[0], m->frame[5], m->len[5], &err);
    if (!rc) rc = ag_retain_schedule(a, bt->t, m->frame[0], rule, &keep, now, &err);
    sh_be64_put(seqkey, bt->inbox_seq);
    if (!rc) rc = sh_txn_put(bt->t, a->inbox, seqkey, 8, m->frame[0], 16, 0, &err);
    if (!rc && e->event_type == ET(DELIVERY_RECEIPT) && e->delivery_receipt)
        rc = ag_track_receipt(a, bt->t, peer, e, &err);
    if (!rc) rc = ag_fd_arrived(a, bt->t, e, peer, sh_clock_ms(), &err);
    /* its sender gets this agency's signed word that it is stored (no receipt for a receipt) */
    int due = e->event_type != ET(DELIVERY_RECEIPT);
    if (!rc && due) rc = ag_receipt_due(a, bt->t, peer, m->frame[0], &err);
    if (!rc)
        ag_audit(a, bt->t, SH_AUDIT_RECEIVE, SH_AUDIT_OK, 0, m->frame[0], nr ? refs[0] : NULL,
                 "agent", peer, NULL, rule, sh_event_type_name(e->event_type));
    if (rc) {
        /* the transaction cannot go on: none of the batch is acknowledged, all is resent */
        ag_log(a, "error", "storing a delivery: %s", err.detail);
        sh_txn_abort(&bt->t);
        ag_local_settled(a, rc, &err);    /* the local publishes in it are lost: say so */
        if (bt->nconfirm) a->nflight = 0; /* their CONFIRMs went with it: resend */
        s_reset(bt);
        goto out;
    }
    bt->inbox_seq++;
    bt->stored++;
    bt->due += (uint64_t)due;
    if (e->event_type == ET(DELIVERY_RECEIPT) && e->delivery_receipt &&
        e->delivery_receipt->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED)
        bt->delivered += 1 + e->delivery_receipt->n_more_event_ids; /* one receipt, many events */
    if (e->published_at_ms > 0)
        sh_hist_observe(&bt->latency, (double)(sh_clock_ms() - e->published_at_ms) / 1e3);
    memcpy(bt->ack[bt->n++], m->frame[0], 16);
out:
    if (bt->n == DELIVER_BATCH || bt->nconfirm >= CONFIRM_BATCH) ag_flush(a, bt);
    sh_buf_free(&b);
    sh_envelope_free(e);
}
