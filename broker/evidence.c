/*
 * evidence.c — the sender's evidence at the broker (docs/evidence.md): checked at PUBLISH
 * by the network process (net.c), kept sealed beside the event, and turned into each recipient's
 * evidence as its copy goes out.
 *
 * Owns: the evidence database (sealed: event id -> the sender's evidence as received) and the
 * pump's evidence scratch. Never: gives a
 * recipient the seed of an event it receives minimised (only the salts of what it keeps).
 */
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "evidence.h"

sh_err bk_evidence_keep(sh_broker *b, sh_txn *t, const uint8_t *id, const uint8_t *ev, size_t evlen,
                        sh_error *err)
{
    return sh_txn_put(t, b->evidence, id, 16, ev, evlen, 0, err);
}

sh_err bk_evidence_forget(sh_broker *b, sh_txn *t, const uint8_t *id, sh_error *err)
{
    sh_err rc = sh_txn_del(t, b->evidence, id, 16, err);
    return rc == SH_E_NOT_FOUND ? SH_OK : rc;
}

sh_err bk_evidence_for(sh_broker *b, sh_txn *t, const sh_broker_delivery *d, const uint8_t *copy,
                       size_t clen, const uint8_t **out, size_t *outlen)
{
    sh_error err;
    *out = NULL;
    *outlen = 0;
    sh_err rc = sh_txn_get(t, b->evidence, d->id, 16, &b->ev_sender, &err);
    if (rc == SH_E_NOT_FOUND) return SH_OK; /* the broker's own receipts carry none */
    if (rc) return rc;
    if (d->flags & SH_DELIVERY_WHOLE) { /* the whole event: the sender's evidence as it is */
        *out = b->ev_sender.data;
        *outlen = b->ev_sender.len;
        return SH_OK;
    }
    sh_broker_event ev;
    sh_evidence_batch eb;
    uint8_t seed[SH_EVIDENCE_SEED_BYTES];
    /* an event from another authority is held as that broker's copy for this one, with the
     * copy's evidence: withholding more turns salts into hashes (docs/federation.md) */
    int received_copy = sh_evidence_kind(b->ev_sender.data, b->ev_sender.len) == SH_EVIDENCE_COPY;
    if ((rc = sh_txn_get(t, b->events, d->id, 16, &b->ev_event, &err))) return rc;
    if (sh_broker_event_parse(b->ev_event.data, b->ev_event.len, &ev)) return SH_E_STORE_CORRUPT;
    if (ev.form == SH_EVENT_ERASED) return SH_E_NOT_FOUND;
    const uint8_t *env = ev.env;
    size_t len = ev.env_len;
    if (ev.form == SH_EVENT_SEALED) {
        if ((rc = bk_keep_open(b, d->id, ev.env, ev.env_len, &b->ev_full))) return rc;
        env = b->ev_full.data;
        len = b->ev_full.len;
    }
    free(b->ev_copy);
    b->ev_copy = NULL;
    if (received_copy) {
        rc = sh_evidence_reduce(env, len, b->ev_sender.data, b->ev_sender.len, copy, clen,
                                &b->ev_copy, outlen);
        *out = b->ev_copy;
        return rc;
    }
    /* (checked when it was published: read again here for its parts) */
    if (sh_evidence_sender_decode(b->ev_sender.data, b->ev_sender.len, &eb, seed))
        return SH_E_STORE_CORRUPT;
    rc = sh_evidence_for_copy(env, len, copy, clen, &eb, seed, &b->ev_copy, outlen);
    sh_wipe(seed, sizeof seed);
    *out = b->ev_copy;
    return rc;
}

void bk_evidence_free(sh_broker *b)
{
    sh_buf_free(&b->ev_sender);
    sh_buf_free(&b->ev_event);
    sh_buf_free(&b->ev_full);
    sh_buf_free(&b->tampered);
    free(b->ev_copy);
    b->ev_copy = NULL;
}
