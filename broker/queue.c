/*
 * queue.c — the broker's per-recipient queues: entries written (deliveries and receipts),
 * the pump that sends them in DELIVER messages, and the depth of each queue.
 *
 * Owns: the queue and state databases' entries, b->deliver, b->depths. Never: removes a
 * queue entry (only an ACK does: session.c), or counts a depth the store does not hold.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "clock.h"
#include "fault.h"
#include "log.h"

sh_err bk_enqueue(sh_broker *b, sh_txn *t, uint64_t *seq, const char *org, const uint8_t id[16],
                  const char *sender, const char *rule, uint8_t flags, const sh_retain *retain,
                  uint32_t day, const char *to, const uint8_t *copy, size_t len, sh_error *err)
{
    size_t n = 0, sl = len + SH_SHRED_OVERHEAD;
    /* a receipt for another authority's organisation goes by its peer (docs/federation.md) */
    const sh_org *o = to ? NULL : sh_registry_by_code(b->registry, org);
    char peer[SH_ORG_MAX + 1], via[SH_ORG_MAX + 16];
    if (o && o->authority) {
        snprintf(peer, sizeof peer, "LA%s", o->authority);
        snprintf(via, sizeof via, "to=%s/%s/", org, rule);
        org = peer;
        to = via;
    }
    if (flags & SH_DELIVERY_WHOLE) day = 0, len = 0; /* the event's record holds it */
    if (day) flags |= SH_DELIVERY_SEALED;
    uint8_t *v = sh_broker_delivery_build(id, sender, rule, flags, sh_clock_ms(), retain, to,
                                          day ? NULL : copy, day ? sl : len, &n);
    uint8_t key[SH_QKEY_BYTES], sb[8];
    if (!v) return sh_error_set(err, SH_E_NOMEM, "delivery");
    sh_err rc = day ? bk_keep_seal(b, id, day, copy, len, v + n - sl, sl, err) : SH_OK;
    if (rc) {
        free(v);
        return rc;
    }
    sh_broker_qkey(org, (*seq)++, key);
    sh_be64_put(sb, *seq);
    rc = sh_txn_put(t, b->queue, key, sizeof key, v, n, SH_PUT_NEW, err);
    if (!rc) rc = sh_txn_put(t, b->state, "seq", 3, sb, 8, 0, err);
    free(v);
    if (!rc) {
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "recipient", org);
        sh_tally_add(&b->stage.queued, lab, 1);
    }
    return rc;
}

sh_err bk_receipt(sh_broker *b, sh_txn *t, uint64_t *seq, const uint8_t (*ids)[16], size_t n,
                  const char *sender, const char *recipient, int status, sh_err reason,
                  sh_error *err)
{
    /* A DeliveryReceipt from the broker to the events' sender, for n (1 to RECEIPT_IDS)
     * events. */
    sh_receipt r;
    sh_err rc =
        sh_receipt_start(&r, b->cfg.org_code, ids, n, recipient, status, reason, sh_clock_ms());
    if (rc == SH_E_INVAL) return sh_error_set(err, rc, "receipt for %zu events", n);
    if (rc) return sh_error_set(err, rc, "event id");
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = sh_envelope_encode(&r.e, &buf, &len, err);
    if (!rc)
        rc = bk_enqueue(b, t, seq, sender, r.id, b->cfg.org_code, SH_RULE_RECEIPT, 0, NULL, 0, NULL,
                        buf, len, err);
    free(buf);
    return rc;
}

/* ---- delivery pump ------------------------------------------------------------------- */

/* Under the test hook "deliver_tamper" (fault.h), the copy with the first byte of its
 * narrative's marker changed, as a broker that alters what it forwards would: the recipient
 * must refuse it (docs/evidence.md). Elsewhere the copy itself. */
static const uint8_t *s_tamper(sh_broker *b, const uint8_t *copy, size_t len)
{
    static const char mark[] = "SYNTHETIC-NARRATIVE-MARKER";
    size_t at = len;
    if (!sh_fault("deliver_tamper")) return copy;
    for (size_t i = 0; i + sizeof mark - 1 <= len && at == len; i++)
        if (memcmp(copy + i, mark, sizeof mark - 1) == 0) at = i;
    uint8_t *p = at < len ? realloc(b->tampered.data, len) : NULL;
    if (!p) return copy;
    b->tampered.data = p;
    b->tampered.cap = b->tampered.len = len;
    memcpy(p, copy, len);
    p[at] = 'R';
    return p;
}

/* Adds a queue record's delivery (six fields, docs/protocol.md) to bd, its copy opened when
 * sealed, with its evidence; -1 (nothing added) when out of memory. */
static int s_deliver_add(sh_wire_body *bd, const sh_broker_delivery *d, const uint8_t *copy,
                         size_t copy_len, const uint8_t *ev, size_t evlen)
{
    size_t mark = bd->len, nmark = bd->nfields;
    char fl[48] = ""; /* "overdue retain=72m:review" (docs/protocol.md, DELIVER) */
    size_t fn = d->flags & SH_DELIVERY_OVERDUE ? (size_t)snprintf(fl, sizeof fl, "overdue") : 0;
    if (d->retain.count) {
        if (fn) fl[fn++] = ' ';
        fn += sh_retain_format(&d->retain, fl + fn, sizeof fl - fn);
    }
    /* a peer's delivery: its recipients' to= tokens after the others (docs/federation.md) */
    char *all = NULL;
    if (d->to_len) {
        all = malloc(fn + 1 + d->to_len + 1);
        if (!all) return -1;
        memcpy(all, fl, fn);
        if (fn) all[fn++] = ' ';
        memcpy(all + fn, d->to, d->to_len);
        fn += d->to_len;
    }
    int bad = sh_wire_body_add(bd, d->id, 16) ||
              sh_wire_body_add(bd, d->sender, strlen(d->sender)) ||
              sh_wire_body_add(bd, d->rule, d->rule_len) ||
              sh_wire_body_add(bd, all ? all : fl, all ? fn : strlen(fl)) ||
              sh_wire_body_add(bd, copy, copy_len) || sh_wire_body_add(bd, ev, evlen);
    free(all);
    if (bad) {
        bd->len = mark;
        bd->nfields = nmark;
        return -1;
    }
    return 0;
}

/* Sends what bd holds as one DELIVER to s; bd is empty after (its buffer is kept for the
 * next: a fresh one per message cost page faults). A message refused (the peer's queue is
 * full) is resent when its window goes stale. */
static void s_deliver_send(sh_broker *b, const bk_session *s, sh_wire_body *bd)
{
    if (!bd->nfields) return;
    assert(bd->nfields % SH_DELIVER_FIELDS == 0);
    zmq_msg_t body;
    size_t len = bd->len;
    sh_wire_body_clear(bd);
    /* the broker's signed head first (docs/protocol.md, DELIVER), then the deliveries */
    uint8_t head[4 + SH_WIRE_HEAD_BYTES];
    size_t hl = bk_head(b, head + 4);
    sh_be32_put(head, (uint32_t)hl);
    if (zmq_msg_init_size(&body, 4 + hl + len) != 0) return;
    memcpy(zmq_msg_data(&body), head, 4 + hl);
    memcpy((uint8_t *)zmq_msg_data(&body) + 4 + hl, bd->p, len);
    if (zmq_send(b->net, s->rid, s->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) b->dropped_sends++, b->dropped_total++;
        zmq_msg_close(&body);
    } else {
        zmq_send(b->net, SH_PROTO_SIGNATURE, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(b->net, "DELIVER", 7, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (zmq_msg_send(&body, b->net, ZMQ_DONTWAIT) < 0) zmq_msg_close(&body);
    }
}

/* The copy a queue record delivers, into *copy and *len: its own bytes; opened when sealed
 * (into b->opened); or, for a whole copy, the event's envelope from its record (b->whole).
 * SH_E_NOT_FOUND when it was erased. */
static sh_err s_copy(sh_broker *b, sh_txn *t, const sh_broker_delivery *d, const uint8_t **copy,
                     size_t *len)
{
    const uint8_t *in = d->copy;
    size_t inlen = d->copy_len;
    int sealed = (d->flags & SH_DELIVERY_SEALED) != 0;
    if (d->flags & SH_DELIVERY_WHOLE) {
        sh_error err;
        sh_broker_event ev;
        sh_err rc = sh_txn_get(t, b->events, d->id, 16, &b->whole, &err);
        if (rc) return rc;
        if (sh_broker_event_parse(b->whole.data, b->whole.len, &ev)) return SH_E_STORE_CORRUPT;
        if (ev.form == SH_EVENT_ERASED) return SH_E_NOT_FOUND;
        in = ev.env;
        inlen = ev.env_len;
        sealed = ev.form == SH_EVENT_SEALED;
    }
    if (sealed) {
        sh_err rc = bk_keep_open(b, d->id, in, inlen, &b->opened);
        if (rc) return rc;
        in = b->opened.data;
        inlen = b->opened.len;
    }
    *copy = in;
    *len = inlen;
    return SH_OK;
}

void bk_pump(sh_broker *b)
{
    /* Sends queued deliveries to every ready session with room in its window: at most
     * SH_DELIVER_MAX to a DELIVER, closed once its body passes SH_DELIVER_BYTES. */
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 0, &t, &err)) return;
    int64_t now = sh_clock_ms();
    for (size_t i = 0; i < b->nsessions; i++) {
        bk_session *s = &b->sessions[i];
        if (!s->ready || s->nflight >= b->cfg.window) continue;
        sh_cursor *c = NULL;
        sh_kv kv;
        sh_wire_body *bd = &b->deliver;
        uint8_t key[SH_QKEY_BYTES];
        sh_broker_qkey(s->org, s->next, key);
        if (sh_cursor_open(t, b->queue, &c, &err)) continue;
        sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err);
        for (; rc == SH_OK && s->nflight < b->cfg.window;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.klen != sizeof key || memcmp(kv.key, key, SH_QKEY_ORG) != 0) break;
            sh_broker_delivery d;
            uint64_t seq = sh_be64_get(kv.key + SH_QKEY_ORG);
            if (sh_broker_delivery_parse(kv.val, kv.vlen, &d) != 0) {
                /* opened (so written by this broker) but not a record: left for inspection */
                sh_log(SH_LOG_ERROR, s->org, NULL, "queue entry %llu is damaged; skipped",
                       (unsigned long long)seq);
                s->next = seq + 1;
                continue;
            }
            const uint8_t *copy = d.copy;
            size_t clen = d.copy_len;
            sh_err orc = s_copy(b, t, &d, &copy, &clen);
            if (orc == SH_E_NOMEM) break; /* the rest waits a turn */
            if (orc) { /* erased, or damaged: the keep sweep removes it; never sent */
                sh_log(SH_LOG_ERROR, s->org, NULL, "queue entry %llu does not open: %s",
                       (unsigned long long)seq, sh_err_name(orc));
                s->next = seq + 1;
                continue;
            }
            const uint8_t *ev = NULL;
            size_t evlen = 0;
            orc = bk_evidence_for(b, t, &d, copy, clen, &ev, &evlen);
            copy = s_tamper(b, copy, clen); /* (a test hook: a broker that alters a copy) */
            if (orc == SH_E_NOMEM) break;
            if (orc) { /* its evidence is damaged or gone: never sent without it */
                sh_log(SH_LOG_ERROR, s->org, NULL, "queue entry %llu: no evidence: %s",
                       (unsigned long long)seq, sh_err_name(orc));
                s->next = seq + 1;
                continue;
            }
            if (s_deliver_add(bd, &d, copy, clen, ev, evlen) != 0) break; /* out of memory */
            bk_flight *f = bk_flight_at(b, s, s->nflight++);
            memset(f, 0, sizeof *f);
            f->seq = seq;
            memcpy(f->id, d.id, 16);
            f->sent_ms = now;
            f->accepted_ms = d.accepted_ms;
            memcpy(f->sender, d.sender, sizeof f->sender);
            f->receipt = (uint8_t)sh_broker_delivery_is_receipt(&d);
            s->next = seq + 1;
            if (bd->nfields == SH_DELIVER_MAX * SH_DELIVER_FIELDS || bd->len >= SH_DELIVER_BYTES)
                s_deliver_send(b, s, bd);
        }
        s_deliver_send(b, s, bd);
        if (rc == SH_E_AUTH_FAILED || rc == SH_E_WRONG_KEY)
            sh_log(SH_LOG_ERROR, s->org, NULL, "a queue entry does not open: %s", sh_err_name(rc));
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
}

sh_err bk_queue_next_org(sh_cursor *c, const char *org, sh_kv *kv, sh_error *err)
{
    uint8_t next[SH_QKEY_BYTES];
    sh_broker_qkey(org, UINT64_MAX, next);
    sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, next, sizeof next, kv, err);
    if (rc == SH_OK && kv->klen == sizeof next && memcmp(kv->key, next, sizeof next) == 0)
        rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, kv, err);
    return rc;
}

int64_t bk_oldest_ms(sh_broker *b, sh_txn *t, const char *org)
{
    /* When the broker accepted the oldest event still queued for org; 0 if none or unknown. */
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_error err;
    sh_broker_delivery d;
    uint8_t key[SH_QKEY_BYTES];
    int64_t at = 0;
    sh_broker_qkey(org, 0, key);
    if (sh_cursor_open(t, b->queue, &c, &err)) return 0;
    if (sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err) == SH_OK &&
        kv.klen == sizeof key && memcmp(kv.key, key, SH_QKEY_ORG) == 0 &&
        sh_broker_delivery_parse(kv.val, kv.vlen, &d) == 0)
        at = d.accepted_ms;
    sh_cursor_close(&c);
    return at;
}

/* ---- queue depths (docs/protocol.md: the broker's store) ------------------------------ */

/* The depth record of org, made (at 0) when create is set; NULL if absent or out of memory. */
static bk_depth *s_depth_of(sh_broker *b, const char *org, int create)
{
    for (size_t i = 0; i < b->ndepths; i++)
        if (strcmp(b->depths[i].org, org) == 0) return &b->depths[i];
    if (!create) return NULL;
    if (b->ndepths == b->capdepths) {
        size_t cap = b->capdepths ? b->capdepths * 2 : 16;
        bk_depth *d = realloc(b->depths, cap * sizeof *d);
        if (!d) return NULL;
        b->depths = d;
        b->capdepths = cap;
    }
    bk_depth *d = &b->depths[b->ndepths++];
    snprintf(d->org, sizeof d->org, "%s", org);
    d->n = 0;
    return d;
}

/* Writes org's depth record in t. */
static sh_err s_depth_put(sh_broker *b, sh_txn *t, const char *org, uint64_t n, sh_error *err)
{
    char key[6 + SH_QKEY_ORG + 1];
    uint8_t v[8];
    int kl = snprintf(key, sizeof key, "depth:%s", org);
    sh_be64_put(v, n);
    return sh_txn_put(t, b->state, key, (size_t)kl, v, 8, 0, err);
}

/* Loads every recipient's queue depth from the state database. A store written before depths
 * were recorded is counted once, by key (nothing is opened), and the counts written. */
sh_err bk_depths_load(sh_broker *b, sh_error *err)
{
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_buf v = {0};
    sh_kv kv;
    sh_err rc = sh_txn_begin(b->store, 0, &t, err);
    if (rc) return rc;
    int recorded = sh_txn_get(t, b->state, "depths", 6, &v, err) == SH_OK;
    sh_buf_free(&v);
    rc = sh_cursor_open(t, recorded ? b->state : b->queue, &c, err);
    if (!rc && recorded) {
        for (rc = sh_cursor_get(c, SH_CURSOR_SEEK, "depth:", 6, &kv, err);
             rc == SH_OK && kv.klen > 6 && kv.klen <= 6 + SH_QKEY_ORG &&
             memcmp(kv.key, "depth:", 6) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
            char org[SH_QKEY_ORG + 1];
            memcpy(org, kv.key + 6, kv.klen - 6);
            org[kv.klen - 6] = '\0';
            bk_depth *d = kv.vlen == 8 ? s_depth_of(b, org, 1) : NULL;
            if (d) d->n = sh_be64_get(kv.val);
        }
    } else if (!rc) {
        for (rc = sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err); rc == SH_OK;
             rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
            char org[SH_QKEY_ORG + 1];
            if (kv.klen != SH_QKEY_ORG + 8) continue;
            memcpy(org, kv.key, SH_QKEY_ORG);
            org[SH_QKEY_ORG] = '\0';
            bk_depth *d = s_depth_of(b, org, 1);
            if (!d) {
                rc = sh_error_set(err, SH_E_NOMEM, "queue depths");
                break;
            }
            d->n++;
        }
    }
    sh_cursor_close(&c);
    sh_txn_abort(&t);
    if (rc != SH_E_NOT_FOUND && rc != SH_OK) return rc;
    if (recorded) return SH_OK;
    rc = sh_txn_begin(b->store, 1, &t, err);
    for (size_t i = 0; !rc && i < b->ndepths; i++)
        rc = s_depth_put(b, t, b->depths[i].org, b->depths[i].n, err);
    if (!rc) rc = sh_txn_put(t, b->state, "depths", 6, "1", 1, 0, err);
    if (!rc) return sh_txn_commit(&t, err);
    sh_txn_abort(&t);
    return rc;
}

/* The batch's changes to the queue depths: written in t before it commits (t), then, once it
 * has, made the committed values (t NULL). Recipients: those the stage counts. */
sh_err bk_depths_apply(sh_broker *b, sh_txn *t, sh_error *err)
{
    const sh_tally *sets[3] = {&b->stage.queued, &b->stage.acked, &b->stage.expired};
    for (int k = 0; k < 3; k++)
        for (unsigned i = 0; i < sets[k]->n; i++) {
            const char *l = sets[k]->e[i].labels;
            if (k >= 1 && sh_tally_get(&b->stage.queued, l)) continue; /* done */
            if (k == 2 && sh_tally_get(&b->stage.acked, l)) continue;
            char org[SH_QKEY_ORG + 1] = "";
            if (sscanf(l, "recipient=\"%9[^\"]\"", org) != 1) continue;
            bk_depth *d = s_depth_of(b, org, t == NULL);
            uint64_t in = (d ? d->n : 0) + sh_tally_get(&b->stage.queued, l),
                     out = sh_tally_get(&b->stage.acked, l) + sh_tally_get(&b->stage.expired, l),
                     n = in > out ? in - out : 0;
            if (t) {
                sh_err rc = s_depth_put(b, t, org, n, err);
                if (rc) return rc;
            } else if (d) {
                d->n = n;
            }
        }
    return SH_OK;
}
