/*
 * broker.c — the broker's event loop: ZAP, sessions, publish, route, deliver, ack.
 *
 * Owns: everything in sh_broker. Store layout (all in one LMDB environment, docs/protocol.md):
 *   events  (sealed)  event id (16)          -> event record (below)
 *   queue   (sealed)  org code (9, NUL-padded) || seq (u64 BE) -> delivery record (below)
 *   state   (plain)   "seq"                  -> next queue sequence number (u64 BE)
 *                     "depth:" org code      -> entries in the org's queue (u64 BE)
 *                     "depths"               -> "1": the depth records are complete
 *   subs    (plain)   org code               -> the org's HELLO subscriptions (text)
 *   consent (plain)   blind(child id) (32) || purpose (1) -> u8 consent state | i64 BE time
 *   school  (plain)   blind(child id) (32)   -> the child's school of record (org code)
 *   plus the store's own sh_meta and the audit log.
 * event record:    u8 n, sender[n] | u32 n, outcome text[n] | u32 n, envelope[n]
 * delivery record: event id (16) | u8 n, sender[n] | u8 n, rule[n] | u8 flags |
 *                  [i64 BE accepted ms, when flags has FLAG_TIME] | copy[...]
 *
 * A batch of messages is processed inside one write transaction and committed once (group
 * commit); replies and deliveries are sent only after the commit succeeds. Never: sends a
 * CONFIRM for an event that is not durable.
 */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "client.h"
#include "codec.h"
#include "crypto.h"
#include "http.h"
#include "ident.h"
#include "log.h"
#include "metrics.h"
#include "minimise.h"
#include "policy.h"
#include "registry.h"
#include "store.h"

#define BATCH_MAX    512
#define WINDOW_MAX   4096              /* deliveries unacknowledged per recipient */
#define MAX_MSG      (4 * 1024 * 1024) /* ZeroMQ drops peers that send more in one message */
#define ORG_KEY      9                 /* queue keys start with the org code, NUL-padded */
#define FLAG_OVERDUE 1u
#define FLAG_TIME    2u /* the record holds the time the broker accepted the event */
#define ET(x)        SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x

/* A delivery sent and not yet acknowledged, with what its ACK needs from the queue record
 * (so the ACK does not open the record again). */
typedef struct s_flight {
    uint64_t seq;
    uint8_t id[16];
    int64_t sent_ms;
    int64_t accepted_ms; /* 0 when the record does not hold it */
    char sender[SH_ORG_MAX + 1];
    uint8_t receipt; /* the delivery is a receipt (no receipt for a receipt) */
    uint8_t acked;   /* its ACK committed; it leaves when every older entry has */
} s_flight;

typedef struct s_session {
    uint8_t rid[256]; /* ZeroMQ routing id */
    size_t rid_len;
    char org[SH_ORG_MAX + 1];
    int64_t seen_ms;
    int ready;        /* said HELLO: deliveries may flow */
    uint64_t next;    /* next queue seq to send */
    s_flight *flight; /* the window: a ring of cfg.window entries, oldest at head */
    unsigned head, nflight;
    int64_t rewind_ms; /* an ACK was not committed: offer the queue again from its start */
} s_session;

/* A reply or side effect that waits for the batch to commit. */
typedef struct s_reply {
    uint8_t rid[256];
    size_t rid_len;
    int kind; /* 0 frames, 1 ack done */
    char cmd[16];
    uint8_t *frames[20];
    size_t lens[20];
    size_t n;
    uint8_t ack_id[16];
} s_reply;

/* Counters for the metrics endpoint (docs/operations.md#metrics). A batch counts into
 * b->stage, emptied as it begins and added to b->stats only when the batch commits: the
 * counters agree with the store and its audit log. */
typedef struct s_stats {
    uint64_t accepted; /* events accepted (not counting duplicates) */
    sh_tally queued;   /* recipient=: queue entries written, events and receipts */
    sh_tally acked;    /* recipient=: queue entries acknowledged and removed */
    sh_tally denied;   /* reason=,isp=: shares the policy refused */
    sh_hist latency;   /* accepted to acknowledged by the recipient, events only */
} s_stats;

typedef struct s_depth {
    char org[ORG_KEY + 1];
    uint64_t n;
} s_depth;

/* One DELIVER's body being gathered (s_pump). */
typedef struct s_body {
    uint8_t *p;
    size_t len, cap, n;
} s_body;

struct sh_broker {
    sh_broker_config cfg;
    s_body body; /* s_pump's DELIVER being gathered (its buffer is reused) */
    void *ctx, *router, *zap, *monitor;
    /* refused connections since the last audit entry about them (written at most once a
     * second, so a flood of bad handshakes cannot flood the log or the disk) */
    unsigned refused_key, refused_handshake;
    int64_t refused_audit_ms;
    /* connections closed, and handshakes failed, since start: every connection that fails
     * its handshake is reported as failed before it is reported closed, so closed - failed
     * never exceeds the number of connections closed after their handshake succeeded */
    uint64_t closed_total, failed_total, dropped_audited;
    unsigned dropped_sends; /* messages refused by a full peer queue since the last log line */
    char public_key[SH_Z85_LEN + 1];
    sh_key *master, *audit_key;
    sh_signkey *signer;
    sh_store *store;
    sh_audit *audit;
    sh_db events, queue, state, subs, consent, school, witness;
    sh_registry *registry;
    sh_policy *policy;
    s_session *sessions;
    size_t nsessions, capsessions;
    s_reply *replies;
    size_t nreplies;
    uint64_t seq; /* next queue sequence number, as committed */
    s_stats stats, stage;
    s_depth *depths; /* entries in each recipient's queue, as committed */
    size_t ndepths, capdepths;
    sh_tally refused; /* code=: refusals sent (CONFIRM and ERROR), not in a batch's stage */
    uint64_t refused_key_total, refused_handshake_total, dropped_total;
    int64_t started_ms, store_failed_ms; /* store_failed_ms: the last commit failed then */
    sh_http *http;
};

/* ---- small helpers ------------------------------------------------------------------- */

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* logfmt lines on stderr (common/log.h); never personal data. */
static void s_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_logv(level[0] == 'e'   ? SH_LOG_ERROR
            : level[0] == 'w' ? SH_LOG_WARNING
                              : SH_LOG_INFO,
            NULL, NULL, fmt, ap);
    va_end(ap);
}

static void s_qkey(const char *org, uint64_t seq, uint8_t key[ORG_KEY + 8])
{
    memset(key, 0, ORG_KEY);
    memcpy(key, org, strnlen(org, ORG_KEY));
    sh_be64_put(key + ORG_KEY, seq);
}

/* ---- replies ------------------------------------------------------------------------- */

static s_reply *s_reply_new(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *cmd)
{
    if (b->nreplies == BATCH_MAX * 2) return NULL;
    s_reply *r = &b->replies[b->nreplies++];
    memset(r, 0, sizeof *r);
    memcpy(r->rid, rid, rid_len);
    r->rid_len = rid_len;
    snprintf(r->cmd, sizeof r->cmd, "%s", cmd);
    return r;
}

static void s_reply_add(s_reply *r, const void *data, size_t len)
{
    if (!r || r->n == 20) return;
    r->frames[r->n] = malloc(len ? len : 1);
    if (!r->frames[r->n]) return;
    if (len) memcpy(r->frames[r->n], data, len);
    r->lens[r->n++] = len;
}

static void s_reply_addf(s_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_reply_addf(s_reply *r, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s_reply_add(r, buf, n < 0 ? 0 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n);
}

static void s_send_frames(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *cmd,
                          uint8_t *const *frames, const size_t *lens, size_t n)
{
    /* A peer that has gone is not an error (EHOSTUNREACH); one whose queue is full (EAGAIN:
     * it does not read) loses this message, counted and logged once a second. Nothing of a
     * message is sent when its first frame is refused. The fields go in one body frame, each
     * a u32 BE length and its bytes (docs/protocol.md): CURVE seals every frame on its own,
     * so one frame for the fields is one seal instead of one a field. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 4 + lens[i];
    zmq_msg_t body;
    if (zmq_msg_init_size(&body, total) != 0) return;
    uint8_t *p = zmq_msg_data(&body);
    for (size_t i = 0; i < n; i++) {
        sh_be32_put(p, (uint32_t)lens[i]);
        if (lens[i]) memcpy(p + 4, frames[i], lens[i]);
        p += 4 + lens[i];
    }
    if (zmq_send(b->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) b->dropped_sends++, b->dropped_total++;
        zmq_msg_close(&body);
        return;
    }
    zmq_send(b->router, SH_PROTO_SIGNATURE, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(b->router, cmd, strlen(cmd), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_msg_send(&body, b->router, ZMQ_DONTWAIT) < 0) zmq_msg_close(&body);
}

static void s_count_refused(sh_broker *b, sh_err code)
{
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "code", sh_err_name(code));
    sh_tally_add(&b->refused, lab, 1);
}

static void s_reply_flush(sh_broker *b, s_reply *r)
{
    /* a CONFIRM's frames: event id, code, detail, outcome lines */
    if (strcmp(r->cmd, "CONFIRM") == 0 && r->n > 1 &&
        !(r->lens[1] == 1 && r->frames[1][0] == '0')) {
        char c[8] = "";
        memcpy(c, r->frames[1], r->lens[1] < sizeof c - 1 ? r->lens[1] : sizeof c - 1);
        s_count_refused(b, (sh_err)atoi(c));
    }
    s_send_frames(b, r->rid, r->rid_len, r->cmd, r->frames, r->lens, r->n);
}

static void s_reply_free(s_reply *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->frames[i]);
    r->n = 0;
}

/* An immediate ERROR, outside any batch. */
static void s_error_now(sh_broker *b, const uint8_t *rid, size_t rid_len, sh_err code,
                        const char *detail)
{
    char c[8];
    int n = snprintf(c, sizeof c, "%d", (int)code);
    uint8_t *f[2] = {(uint8_t *)c, (uint8_t *)detail};
    size_t l[2] = {(size_t)n, strlen(detail)};
    s_count_refused(b, code);
    s_send_frames(b, rid, rid_len, "ERROR", f, l, 2);
}

/* ---- sessions ------------------------------------------------------------------------ */

static int s_session_find(sh_broker *b, const uint8_t *rid, size_t rid_len)
{
    for (size_t i = 0; i < b->nsessions; i++)
        if (b->sessions[i].rid_len == rid_len && memcmp(b->sessions[i].rid, rid, rid_len) == 0)
            return (int)i;
    return -1;
}

static void s_session_drop(sh_broker *b, size_t i)
{
    free(b->sessions[i].flight);
    b->sessions[i] = b->sessions[--b->nsessions];
}

static int s_session_get(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *org)
{
    int i = s_session_find(b, rid, rid_len);
    if (i >= 0) return i;
    if (rid_len > sizeof b->sessions[0].rid) return -1;
    if (b->nsessions == b->capsessions) {
        size_t cap = b->capsessions ? b->capsessions * 2 : 16;
        s_session *p = realloc(b->sessions, cap * sizeof *p);
        if (!p) return -1;
        b->sessions = p;
        b->capsessions = cap;
    }
    s_session *s = &b->sessions[b->nsessions];
    memset(s, 0, sizeof *s);
    s->flight = calloc(b->cfg.window, sizeof *s->flight);
    if (!s->flight) return -1;
    memcpy(s->rid, rid, rid_len);
    s->rid_len = rid_len;
    snprintf(s->org, sizeof s->org, "%s", org);
    return (int)b->nsessions++;
}

/* ---- audit --------------------------------------------------------------------------- */

static void s_audit(sh_broker *b, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                    const uint8_t *event_id, const uint8_t *child_ref, const char *actor,
                    const char *peer, const char *rule, const char *detail)
{
    sh_audit_entry e = {.action = action,
                        .outcome = outcome,
                        .code = (uint16_t)code,
                        .event_id = event_id,
                        .child_ref = child_ref,
                        .actor_org = actor,
                        .actor_user = "broker",
                        .peer_org = peer,
                        .rule = rule,
                        .detail = detail};
    sh_error err;
    if (sh_audit_append(b->audit, t, &e, NULL, &err) != SH_OK)
        s_log("error", "audit append failed: %s", err.detail);
    /* (only a batch writes these two: they count into its stage) */
    if (action == SH_AUDIT_RECEIVE && outcome == SH_AUDIT_OK) b->stage.accepted++;
    if (action == SH_AUDIT_DENY) {
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "reason", sh_err_name(code));
        sh_label(lab, sizeof lab, "isp", rule ? rule : "-");
        sh_tally_add(&b->stage.denied, lab, 1);
    }
}

/* A blinded reference to the child for audit entries: NHS number, else UPN, else LA id. */
static const uint8_t *s_child_ref(sh_broker *b, const sh_envelope *e, uint8_t out[32])
{
    const sh_child *c = e->child;
    if (!c) return NULL;
    const char *kind = c->nhs_number[0]          ? "nhs"
                       : c->upn[0]               ? "upn"
                       : c->la_child_id[0]       ? "la"
                       : c->mother_nhs_number[0] ? "nhs"
                                                 : NULL;
    const char *v = !kind               ? NULL
                    : c->nhs_number[0]  ? c->nhs_number
                    : c->upn[0]         ? c->upn
                    : c->la_child_id[0] ? c->la_child_id
                                        : c->mother_nhs_number;
    if (!kind || sh_store_blind(b->store, kind, v, out) != SH_OK) return NULL;
    return out;
}

/* ---- event records ------------------------------------------------------------------- */

typedef struct s_event {
    char sender[SH_ORG_MAX + 1];
    const char *outcome;
    size_t outcome_len;
    const uint8_t *env;
    size_t env_len;
} s_event;

static int s_event_parse(const uint8_t *v, size_t n, s_event *ev)
{
    if (n < 1 || v[0] > SH_ORG_MAX || n < 1u + v[0] + 4) return -1;
    memcpy(ev->sender, v + 1, v[0]);
    ev->sender[v[0]] = '\0';
    const uint8_t *p = v + 1 + v[0];
    size_t ol = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    p += 4;
    if ((size_t)(v + n - p) < ol + 4) return -1;
    ev->outcome = (const char *)p;
    ev->outcome_len = ol;
    p += ol;
    size_t el = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    p += 4;
    if ((size_t)(v + n - p) != el) return -1;
    ev->env = p;
    ev->env_len = el;
    return 0;
}

static uint8_t *s_event_build(const char *sender, const char *outcome, const uint8_t *env,
                              size_t env_len, size_t *len)
{
    size_t sl = strlen(sender), ol = strlen(outcome);
    *len = 1 + sl + 4 + ol + 4 + env_len;
    uint8_t *v = malloc(*len), *p = v;
    if (!v) return NULL;
    *p++ = (uint8_t)sl;
    memcpy(p, sender, sl);
    p += sl;
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(ol >> (8 * i));
    memcpy(p, outcome, ol);
    p += ol;
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(env_len >> (8 * i));
    memcpy(p, env, env_len);
    return v;
}

/* The sender of a stored event, into out; 0 when found. */
static int s_event_sender(sh_broker *b, sh_txn *t, const uint8_t *id, size_t idlen, char *out,
                          size_t cap, sh_buf *buf)
{
    sh_error err;
    s_event ev;
    if (idlen != 16 || sh_txn_get(t, b->events, id, 16, buf, &err) != SH_OK ||
        s_event_parse(buf->data, buf->len, &ev))
        return -1;
    snprintf(out, cap, "%s", ev.sender);
    return 0;
}

/* ---- queueing ------------------------------------------------------------------------ */

/* A delivery record's parts (layout at the top of this file), pointing into it. */
typedef struct s_delivery {
    const uint8_t *id; /* 16 bytes */
    char sender[SH_ORG_MAX + 1];
    const uint8_t *rule;
    size_t rule_len;
    uint8_t flags;
    int64_t accepted_ms; /* 0 when the record does not hold it */
    const uint8_t *copy;
    size_t copy_len;
} s_delivery;

/* 0, or -1 when v is not a whole delivery record. */
static int s_delivery_parse(const uint8_t *v, size_t n, s_delivery *d)
{
    if (n < 19) return -1;
    size_t sl = v[16];
    if (sl > SH_ORG_MAX || n < 18 + sl) return -1;
    size_t rl = v[17 + sl];
    if (n < 19 + sl + rl) return -1;
    size_t at = 19 + sl + rl;
    d->id = v;
    memcpy(d->sender, v + 17, sl);
    d->sender[sl] = '\0';
    d->rule = v + 18 + sl;
    d->rule_len = rl;
    d->flags = v[18 + sl + rl];
    d->accepted_ms = 0;
    if (d->flags & FLAG_TIME) {
        if (n < at + 8) return -1;
        d->accepted_ms = (int64_t)sh_be64_get(v + at);
        at += 8;
    }
    d->copy = v + at;
    d->copy_len = n - at;
    return 0;
}

/* Puts a delivery for org into the queue at the next sequence number. */
static sh_err s_enqueue(sh_broker *b, sh_txn *t, uint64_t *seq, const char *org,
                        const uint8_t id[16], const char *sender, const char *rule, uint8_t flags,
                        const uint8_t *copy, size_t len, sh_error *err)
{
    size_t sl = strlen(sender), rl = strlen(rule), n = 16 + 1 + sl + 1 + rl + 1 + 8 + len;
    uint8_t *v = malloc(n), *p = v, key[ORG_KEY + 8];
    if (!v) return sh_error_set(err, SH_E_NOMEM, "delivery");
    memcpy(p, id, 16);
    p += 16;
    *p++ = (uint8_t)sl;
    memcpy(p, sender, sl);
    p += sl;
    *p++ = (uint8_t)rl;
    memcpy(p, rule, rl);
    p += rl;
    *p++ = flags | FLAG_TIME;
    sh_be64_put(p, (uint64_t)s_now());
    p += 8;
    memcpy(p, copy, len);
    s_qkey(org, (*seq)++, key);
    uint8_t sb[8];
    sh_be64_put(sb, *seq);
    sh_err rc = sh_txn_put(t, b->queue, key, sizeof key, v, n, SH_PUT_NEW, err);
    if (!rc) rc = sh_txn_put(t, b->state, "seq", 3, sb, 8, 0, err);
    free(v);
    if (!rc) {
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "recipient", org);
        sh_tally_add(&b->stage.queued, lab, 1);
    }
    return rc;
}

/* A DeliveryReceipt from the broker to the events' sender, for n (1 to RECEIPT_IDS) events. */
#define RECEIPT_IDS (1 + SH_REPEATED_MAX)
static sh_err s_receipt(sh_broker *b, sh_txn *t, uint64_t *seq, const uint8_t (*ids)[16], size_t n,
                        const char *sender, const char *recipient, int status, sh_error *err)
{
    ProtobufCBinaryData more[RECEIPT_IDS - 1];
    if (n < 1 || n > RECEIPT_IDS) return sh_error_set(err, SH_E_INVAL, "receipt for %zu events", n);
    for (size_t i = 1; i < n; i++)
        more[i - 1] = (ProtobufCBinaryData){16, (uint8_t *)ids[i]};
    uint8_t id[16];
    if (sh_event_id_new(id) != SH_OK) return sh_error_set(err, SH_E_IO, "event id");
    int64_t now = s_now();
    Sharehub__V1__Envelope e = SHAREHUB__V1__ENVELOPE__INIT;
    Sharehub__V1__LawfulBasis lb = SHAREHUB__V1__LAWFUL_BASIS__INIT;
    Sharehub__V1__DeliveryReceipt r = SHAREHUB__V1__DELIVERY_RECEIPT__INIT;
    e.event_id = (ProtobufCBinaryData){16, id};
    e.schema_version = SH_SCHEMA_VERSION;
    e.event_type = ET(DELIVERY_RECEIPT);
    e.source_org = (char *)b->cfg.org_code;
    e.occurred_at_ms = e.published_at_ms = now;
    e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_SERVICE_OPERATION;
    lb.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
    e.lawful_basis = &lb;
    e.consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_REQUIRED;
    r.for_event_id = (ProtobufCBinaryData){16, (uint8_t *)ids[0]};
    r.n_more_event_ids = n - 1;
    r.more_event_ids = more;
    r.recipient_org = (char *)recipient;
    r.status = status;
    r.at_ms = now;
    e.body_case = SHAREHUB__V1__ENVELOPE__BODY_DELIVERY_RECEIPT;
    e.delivery_receipt = &r;
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_err rc = sh_envelope_encode(&e, &buf, &len, err);
    if (!rc) rc = s_enqueue(b, t, seq, sender, id, b->cfg.org_code, "receipt", 0, buf, len, err);
    free(buf);
    return rc;
}

/* Appends a formatted line to text[0..cap), never past its end. */
static void s_append(char *text, size_t *used, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_append(char *text, size_t *used, size_t cap, const char *fmt, ...)
{
    if (*used + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

/* ---- consent on record --------------------------------------------------------------- */

/* Blinded references for each identifier of the child (at most 4). */
static int s_child_refs(sh_broker *b, const sh_envelope *e, uint8_t refs[4][32])
{
    const sh_child *c = e->child;
    int n = 0;
    if (!c) return 0;
    if (c->nhs_number[0] && !sh_store_blind(b->store, "nhs", c->nhs_number, refs[n])) n++;
    if (c->upn[0] && !sh_store_blind(b->store, "upn", c->upn, refs[n])) n++;
    if (c->la_child_id[0] && !sh_store_blind(b->store, "la", c->la_child_id, refs[n])) n++;
    if (c->mother_nhs_number[0] && !sh_store_blind(b->store, "nhs", c->mother_nhs_number, refs[n]))
        n++;
    return n;
}

/* Records a consent event's state for each of the child's identifiers, newest wins. */
static sh_err s_consent_record(sh_broker *b, sh_txn *t, const sh_envelope *e, sh_error *err)
{
    static const int state[] = {
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_RECORDED] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN,
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_WITHDRAWN] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_WITHDRAWN,
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_REFUSED] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_REFUSED,
    };
    const Sharehub__V1__Consent *c = e->consent_change;
    if ((unsigned)c->action >= sizeof state / sizeof state[0] || !state[c->action]) return SH_OK;
    uint8_t refs[4][32], key[33], val[9];
    int n = s_child_refs(b, e, refs);
    sh_buf old = {0};
    sh_err rc = SH_OK;
    for (int i = 0; i < n && !rc; i++) {
        memcpy(key, refs[i], 32);
        key[32] = (uint8_t)c->scope;
        sh_error e2;
        if (sh_txn_get(t, b->consent, key, sizeof key, &old, &e2) == SH_OK && old.len == 9 &&
            (int64_t)sh_be64_get(old.data + 1) > e->occurred_at_ms)
            continue; /* a newer record stands */
        val[0] = (uint8_t)state[c->action];
        sh_be64_put(val + 1, (uint64_t)e->occurred_at_ms);
        rc = sh_txn_put(t, b->consent, key, sizeof key, val, sizeof val, 0, err);
    }
    sh_buf_free(&old);
    return rc;
}

/* The consent the decision must use: a withdrawal or refusal on record for this child and
 * purpose overrides an event that claims consent was given. A declared risk of significant
 * harm is left as it is: protection from harm comes before consent. */
static int s_effective_consent(sh_broker *b, sh_txn *t, const sh_envelope *e, int *recorded)
{
    *recorded = 0;
    if (e->consent != SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN) return (int)e->consent;
    uint8_t refs[4][32], key[33];
    int n = s_child_refs(b, e, refs), result = (int)e->consent;
    int64_t newest = -1;
    sh_buf v = {0};
    for (int i = 0; i < n; i++) {
        memcpy(key, refs[i], 32);
        key[32] = (uint8_t)e->purpose;
        sh_error err;
        if (sh_txn_get(t, b->consent, key, sizeof key, &v, &err) == SH_OK && v.len == 9 &&
            (int64_t)sh_be64_get(v.data + 1) > newest) {
            newest = (int64_t)sh_be64_get(v.data + 1);
            result = v.data[0] == SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN ? (int)e->consent
                                                                                   : v.data[0];
            *recorded = result != (int)e->consent;
        }
    }
    sh_buf_free(&v);
    return result;
}

/* ---- school of record ------------------------------------------------------------------ */

/* An education organisation that publishes about a child becomes the child's school of
 * record, under each identifier the event carries; the latest publisher wins. */
static sh_err s_school_record(sh_broker *b, sh_txn *t, const sh_envelope *e, const sh_org *from,
                              sh_error *err)
{
    if (from->sector != SH_SECTOR_EDUCATION || !e->child) return SH_OK;
    uint8_t refs[4][32];
    int n = s_child_refs(b, e, refs);
    sh_err rc = SH_OK;
    for (int i = 0; i < n && !rc; i++)
        rc = sh_txn_put(t, b->school, refs[i], 32, from->code, strlen(from->code), 0, err);
    return rc;
}

/* The child's school of record, found through any of the event's identifiers; "" if none. */
static void s_school_lookup(sh_broker *b, sh_txn *t, const sh_envelope *e, char out[SH_ORG_MAX + 1])
{
    uint8_t refs[4][32];
    int n = s_child_refs(b, e, refs);
    sh_buf v = {0};
    out[0] = '\0';
    for (int i = 0; i < n && !out[0]; i++) {
        sh_error err;
        if (sh_txn_get(t, b->school, refs[i], 32, &v, &err) == SH_OK && v.len <= SH_ORG_MAX) {
            memcpy(out, v.data, v.len);
            out[v.len] = '\0';
        }
    }
    sh_buf_free(&v);
}

/* ---- PUBLISH ------------------------------------------------------------------------- */

static void s_confirm_refused(s_reply *r, const uint8_t *id, sh_err code, const char *detail)
{
    s_reply_add(r, id, id ? 16 : 0);
    s_reply_addf(r, "%d", (int)code);
    s_reply_addf(r, "%s", detail);
}

/* Routes a receipt published by a recipient (e.g. READ) back to the original sender. */
static sh_err s_route_receipt(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from,
                              const sh_envelope *e, const uint8_t *raw, size_t len, char *outcome,
                              size_t cap, sh_error *err)
{
    sh_buf buf = {0};
    s_event ev;
    const ProtobufCBinaryData *fid = &e->delivery_receipt->for_event_id;
    if (e->delivery_receipt->n_more_event_ids)
        return sh_error_set(err, SH_E_BAD_FIELD,
                            "delivery_receipt.more_event_ids: an agent's receipt covers one event");
    sh_err rc = sh_txn_get(t, b->events, fid->data, 16, &buf, err);
    if (rc == SH_E_NOT_FOUND)
        rc = sh_error_set(err, SH_E_UNKNOWN_EVENT, "delivery_receipt.for_event_id");
    else if (!rc && s_event_parse(buf.data, buf.len, &ev))
        rc = sh_error_set(err, SH_E_STORE_CORRUPT, "event record");
    if (!rc) {
        /* only a recipient of the event may report on it */
        char needle[SH_ORG_MAX + 10];
        snprintf(needle, sizeof needle, "%s permit", from->code);
        int was = 0;
        for (size_t i = 0; i + strlen(needle) <= ev.outcome_len && !was; i++)
            was = (i == 0 || ev.outcome[i - 1] == '\n') &&
                  memcmp(ev.outcome + i, needle, strlen(needle)) == 0;
        if (!was)
            rc = sh_error_set(err, SH_E_DENY_PARTY, "%s did not receive that event", from->code);
        else
            rc = s_enqueue(b, t, seq, ev.sender, e->event_id.data, from->code, "receipt", 0, raw,
                           len, err);
        if (!rc) snprintf(outcome, cap, "%s permit receipt", ev.sender);
    }
    sh_buf_free(&buf);
    return rc;
}

static int s_subscribed(sh_broker *b, sh_txn *t, const char *org, int type, sh_buf *buf)
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

/* What the routing decisions of an event depended on, for the `receive` audit entry, so that
 * `sharehub audit whatif` can decide them again under another policy (docs/audit.md). */
#define SH_BROKER_CONTEXT_MAX 256
static void s_decision_context(const sh_envelope *e, const char *school, const char *referrer,
                               char *out, size_t cap)
{
    const Sharehub__V1__LawfulBasis *lb = e->lawful_basis;
    const char *la = sh_policy_responsible_la(e);
    snprintf(out, cap,
             "type=%s purpose=%d a6=%d a9=%d para=%u level=%u consent=%d la=%s school=%s "
             "referrer=%s",
             sh_event_type_name(e->event_type), (int)e->purpose, lb ? (int)lb->article6 : 0,
             lb ? (int)lb->article9 : 0, lb ? lb->dpa_schedule1_paragraph : 0, e->level_of_need,
             (int)e->consent, la && la[0] ? la : "-", school[0] ? school : "-",
             referrer[0] ? referrer : "-");
}

static void s_publish(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from,
                      const uint8_t *raw, size_t len, s_reply *r)
{
    sh_error err = {0};
    sh_envelope *e = NULL;
    sh_buf buf = {0};
    char *outcome = NULL;
    uint8_t ref[32], *copy = NULL;
    const uint8_t *child = NULL;
    sh_err rc = sh_envelope_decode(raw, len, &e, &err);
    if (rc) {
        /* the event id, if the bytes held a valid one, helps the sender match the refusal */
        s_confirm_refused(r, NULL, rc, err.detail);
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, rc, NULL, NULL, from->code, NULL, NULL,
                err.detail);
        return;
    }
    const uint8_t *id = e->event_id.data;
    child = s_child_ref(b, e, ref);
    if (strcmp(e->source_org, from->code) != 0) {
        s_confirm_refused(r, id, SH_E_SPOOFED_SOURCE,
                          "source_org is not the authenticated organisation");
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_SPOOFED_SOURCE, id, child, from->code,
                NULL, NULL, "source_org differs from the key's organisation");
        goto out;
    }
    /* idempotent publish: the same bytes again are confirmed again, stored once */
    rc = sh_txn_get(t, b->events, id, 16, &buf, &err);
    if (rc == SH_OK) {
        s_event ev;
        if (s_event_parse(buf.data, buf.len, &ev) == 0 && strcmp(ev.sender, from->code) == 0 &&
            ev.env_len == len && memcmp(ev.env, raw, len) == 0) {
            s_reply_add(r, id, 16);
            s_reply_addf(r, "0");
            s_reply_addf(r, "duplicate: already accepted");
            const char *o = ev.outcome, *end = ev.outcome + ev.outcome_len;
            while (o < end) {
                const char *nl = memchr(o, '\n', (size_t)(end - o));
                s_reply_add(r, o, (size_t)((nl ? nl : end) - o));
                o = nl ? nl + 1 : end;
            }
        } else {
            s_confirm_refused(r, id, SH_E_REPLAYED, "event_id was used for another event");
            s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_REPLAYED, id, child, from->code,
                    NULL, NULL, "event id reused with different content");
        }
        goto out;
    }
    if (rc != SH_E_NOT_FOUND) {
        s_confirm_refused(r, id, rc, err.detail);
        goto out;
    }

    size_t cap = 128 * (sh_registry_count(b->registry) + 1), used = 0;
    outcome = calloc(1, cap);
    copy = malloc(len + SH_MINIMISE_SLACK);
    if (!outcome || !copy) {
        s_confirm_refused(r, id, SH_E_NOMEM, "out of memory");
        goto out;
    }
    char context[SH_BROKER_CONTEXT_MAX];
    snprintf(context, sizeof context, "type=%s", sh_event_type_name(e->event_type));
    if (e->event_type == ET(DELIVERY_RECEIPT)) {
        rc = s_route_receipt(b, t, seq, from, e, raw, len, outcome, cap, &err);
        if (rc) {
            s_confirm_refused(r, id, rc, err.detail);
            s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, rc, id, NULL, from->code, NULL, NULL,
                    err.detail);
            goto out;
        }
        used = strlen(outcome);
    } else {
        char referrer[SH_ORG_MAX + 1] = "";
        if (e->event_type == ET(HUB_DECISION))
            s_event_sender(b, t, e->hub_decision->referral_event_id.data,
                           e->hub_decision->referral_event_id.len, referrer, sizeof referrer, &buf);
        int64_t now = s_now();
        /* decide with the consent on record; the event's own bytes are what is stored */
        int overridden = 0, claimed = e->consent;
        char school[SH_ORG_MAX + 1];
        s_school_lookup(b, t, e, school);
        e->consent = s_effective_consent(b, t, e, &overridden);
        s_decision_context(e, school, referrer, context, sizeof context);
        for (size_t i = 0; i < sh_registry_count(b->registry); i++) {
            const sh_org *to = sh_registry_at(b->registry, i);
            if (strcmp(to->code, from->code) == 0) continue;
            sh_share s = {
                e, from, to, referrer[0] ? referrer : NULL, now, school[0] ? school : NULL};
            sh_decision d;
            sh_policy_decide(b->policy, &s, &d);
            const char *rule = d.isp ? sh_isp_rule(d.isp) : "-";
            if (!d.permit) {
                if (overridden && d.code == SH_E_DENY_CONSENT)
                    strncat(d.reason, " (withdrawn or refused on record)",
                            sizeof d.reason - strlen(d.reason) - 1);
                s_audit(b, t, SH_AUDIT_DENY, SH_AUDIT_DENIED, d.code, id, child, from->code,
                        to->code, rule, d.reason);
                /* organisations no protocol names as recipients are audited, not listed */
                if (d.code == SH_E_DENY_NO_ISP || d.code == SH_E_DENY_PARTY) continue;
                s_append(outcome, &used, cap, "%s deny %d %s\n", to->code, (int)d.code, rule);
                continue;
            }
            if (!s_subscribed(b, t, to->code, e->event_type, &buf)) {
                s_append(outcome, &used, cap, "%s unsubscribed %s\n", to->code, rule);
                s_audit(b, t, SH_AUDIT_SEND, SH_AUDIT_DENIED, 0, id, child, from->code, to->code,
                        rule, "not queued: the recipient does not subscribe to this type");
                continue;
            }
            size_t clen = 0;
            rc = sh_minimise(raw, len, d.items, d.n_items, copy, len + SH_MINIMISE_SLACK, &clen);
            uint8_t flags = d.state == SH_ISP_OVERDUE ? FLAG_OVERDUE : 0;
            if (!rc)
                rc = s_enqueue(b, t, seq, to->code, id, from->code, rule, flags, copy, clen, &err);
            if (rc) {
                s_confirm_refused(r, id, rc, err.detail);
                goto out;
            }
            s_append(outcome, &used, cap, "%s permit %s%s\n", to->code, rule,
                     flags ? " overdue" : "");
            char detail[SH_POLICY_ITEMS_TEXT_MAX + 40];
            size_t dn =
                (size_t)snprintf(detail, sizeof detail, "queued%s items=", flags ? " overdue" : "");
            sh_decision_items(&d, detail + dn, sizeof detail - dn);
            s_audit(b, t, SH_AUDIT_SEND, SH_AUDIT_OK, 0, id, child, from->code, to->code, rule,
                    detail);
        }
        e->consent = claimed;
    }
    if (used && outcome[used - 1] == '\n') outcome[--used] = '\0';
    size_t vlen = 0;
    uint8_t *v = s_event_build(from->code, outcome, raw, len, &vlen);
    rc = v ? sh_txn_put(t, b->events, id, 16, v, vlen, SH_PUT_NEW, &err)
           : sh_error_set(&err, SH_E_NOMEM, "event");
    free(v);
    /* a consent event also becomes the consent on record for later decisions */
    if (!rc && e->event_type == ET(CONSENT)) rc = s_consent_record(b, t, e, &err);
    if (!rc) rc = s_school_record(b, t, e, from, &err);
    if (rc) {
        s_confirm_refused(r, id, rc, err.detail);
        goto out;
    }
    s_audit(b, t, SH_AUDIT_RECEIVE, SH_AUDIT_OK, 0, id, child, from->code, NULL, NULL, context);
    s_reply_add(r, id, 16);
    s_reply_addf(r, "0");
    s_reply_addf(r, "accepted");
    for (char *line = strtok(outcome, "\n"); line; line = strtok(NULL, "\n"))
        s_reply_add(r, line, strlen(line));
out:
    sh_envelope_free(e);
    sh_buf_free(&buf);
    free(outcome);
    free(copy);
}

/* ---- WITNESS ------------------------------------------------------------------------- */

/* Records an agent's signed audit checkpoint in the broker's own chain, so that an agent log
 * later rolled back or cut short shows against this record (docs/audit.md). witness db:
 * store id -> u8 n, org[n] · u64 BE seq · head mac (32) of the newest checkpoint witnessed. */
static void s_witness(sh_broker *b, sh_txn *t, const sh_org *from, const uint8_t *id, size_t idlen,
                      const uint8_t *cp, size_t cplen, s_reply *r)
{
    sh_audit_cp_info info;
    sh_err rc = SH_OK;
    char detail[SH_AUDIT_WITNESS_DETAIL] = "";
    sh_buf buf = {0};
    sh_error err;
    if (idlen != SH_STORE_ID_BYTES) {
        rc = SH_E_PROTOCOL;
        snprintf(detail, sizeof detail, "store id of %zu bytes; want 16", idlen);
    } else if ((rc = sh_audit_checkpoint_check(id, cp, cplen, &info))) {
        snprintf(detail, sizeof detail, "%s",
                 rc == SH_E_AUDIT_FORMAT ? "not a 145-byte version-1 checkpoint"
                                         : "checkpoint signature does not verify");
    } else if ((rc = sh_txn_get(t, b->witness, id, idlen, &buf, &err)) == SH_OK) {
        size_t on = buf.len ? buf.data[0] : 0;
        if (buf.len != 1 + on + 8 + SH_MAC_BYTES) {
            rc = SH_E_STORE_CORRUPT;
            snprintf(detail, sizeof detail, "witness record damaged");
        } else {
            uint64_t last = sh_be64_get(buf.data + 1 + on);
            const uint8_t *head = buf.data + 1 + on + 8;
            if (on != strlen(from->code) || memcmp(buf.data + 1, from->code, on) != 0) {
                rc = SH_E_SPOOFED_SOURCE;
                snprintf(detail, sizeof detail, "this store is witnessed for another organisation");
            } else if (info.seq < last || (info.seq == last && !sh_mac_equal(head, info.head))) {
                rc = SH_E_AUDIT_ROLLED_BACK;
                snprintf(detail, sizeof detail,
                         "checkpoint at entry %llu %s the witnessed checkpoint at entry %llu: the "
                         "agent's log was rolled back or replaced",
                         (unsigned long long)info.seq,
                         info.seq < last ? "is behind" : "differs from", (unsigned long long)last);
            } else if (info.seq == last) {
                rc = SH_E_EXISTS; /* already witnessed: answer OK, record nothing new */
            }
        }
    } else if (rc == SH_E_NOT_FOUND) {
        rc = SH_OK;
    } else {
        snprintf(detail, sizeof detail, "%s", err.detail);
    }
    if (rc == SH_OK) {
        uint8_t v[1 + SH_ORG_MAX + 8 + SH_MAC_BYTES];
        size_t on = strlen(from->code);
        v[0] = (uint8_t)on;
        memcpy(v + 1, from->code, on);
        sh_be64_put(v + 1 + on, info.seq);
        memcpy(v + 1 + on + 8, info.head, SH_MAC_BYTES);
        rc = sh_txn_put(t, b->witness, id, idlen, v, 1 + on + 8 + SH_MAC_BYTES, 0, &err);
        if (rc) snprintf(detail, sizeof detail, "%s", err.detail);
    }
    if (rc == SH_OK) {
        sh_audit_witness_detail(id, &info, detail);
        s_audit(b, t, SH_AUDIT_WITNESS, SH_AUDIT_OK, 0, NULL, NULL, from->code, NULL, NULL, detail);
    } else if (rc != SH_E_EXISTS) {
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, rc, NULL, NULL, from->code, NULL, NULL,
                detail);
        sh_log(SH_LOG_WARNING, from->code, NULL, "witness refused: E%03d %s", (int)rc, detail);
    }
    s_reply_addf(r, "%llu", (unsigned long long)info.seq);
    s_reply_addf(r, "%d", rc == SH_E_EXISTS ? 0 : (int)rc);
    s_reply_addf(r, "%s",
                 rc == SH_OK         ? "witnessed"
                 : rc == SH_E_EXISTS ? "already witnessed"
                                     : detail);
    sh_buf_free(&buf);
}

/* ---- ACK ----------------------------------------------------------------------------- */

static s_flight *s_flight_at(const sh_broker *b, const s_session *s, unsigned k)
{
    return &s->flight[(s->head + k) % b->cfg.window];
}

/* The window's entry for event id, or NULL. ACKs come in the order of sending, so the
 * search ends near the head. */
static s_flight *s_flight_find(const sh_broker *b, const s_session *s, const uint8_t id[16])
{
    for (unsigned k = 0; k < s->nflight; k++) {
        s_flight *f = s_flight_at(b, s, k);
        if (!f->acked && memcmp(f->id, id, 16) == 0) return f;
    }
    return NULL;
}

/* Finds org's queue entry for event id: in flight first (*fl set), else by scanning its
 * queue (*fl NULL). */
static sh_err s_find_queued(sh_broker *b, sh_txn *t, s_session *s, const uint8_t id[16],
                            uint64_t *seq, s_flight **fl)
{
    if ((*fl = s_flight_find(b, s, id))) {
        *seq = (*fl)->seq;
        return SH_OK;
    }
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    uint8_t key[ORG_KEY + 8];
    s_qkey(s->org, 0, key);
    if (sh_cursor_open(t, b->queue, &c, &err)) return err.code;
    sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        if (kv.klen != sizeof key || memcmp(kv.key, key, ORG_KEY) != 0) break;
        if (kv.vlen >= 16 && memcmp(kv.val, id, 16) == 0) {
            *seq = sh_be64_get(kv.key + ORG_KEY);
            sh_cursor_close(&c);
            return SH_OK;
        }
    }
    sh_cursor_close(&c);
    return SH_E_NOT_FOUND;
}

/* What one ACK message acknowledged that its senders get a receipt for. */
typedef struct s_acked {
    size_t n;
    struct {
        char sender[SH_ORG_MAX + 1];
        uint8_t id[16];
    } e[SH_ACK_MAX];
} s_acked;

static void s_ack(sh_broker *b, sh_txn *t, int si, const uint8_t *id, size_t idlen, s_reply *r,
                  s_acked *acked)
{
    s_session *s = &b->sessions[si];
    sh_error err;
    uint64_t qseq = 0;
    s_flight *f = NULL;
    if (idlen != 16 || s_find_queued(b, t, s, id, &qseq, &f) != SH_OK) {
        /* an ACK for something already acked (a redelivery crossed the ACK) is harmless */
        r->n = 0;
        snprintf(r->cmd, sizeof r->cmd, "NONE");
        return;
    }
    uint8_t key[ORG_KEY + 8];
    sh_buf buf = {0};
    s_qkey(s->org, qseq, key);
    char sender[SH_ORG_MAX + 1] = "";
    int is_receipt = 1;
    int64_t accepted_ms = 0;
    s_delivery d;
    if (f) {
        memcpy(sender, f->sender, sizeof sender);
        is_receipt = f->receipt;
        accepted_ms = f->accepted_ms;
    } else if (sh_txn_get(t, b->queue, key, sizeof key, &buf, &err) == SH_OK &&
               s_delivery_parse(buf.data, buf.len, &d) == 0) {
        memcpy(sender, d.sender, sizeof sender);
        is_receipt = d.rule_len == 7 && memcmp(d.rule, "receipt", 7) == 0;
        accepted_ms = d.accepted_ms;
    }
    sh_buf_free(&buf);
    /* the recipient holds it durably whatever happens to this batch: it leaves the window */
    r->kind = 1;
    memcpy(r->ack_id, id, 16);
    if (sh_txn_del(t, b->queue, key, sizeof key, &err) != SH_OK) return;
    s_audit(b, t, SH_AUDIT_DELIVER, SH_AUDIT_OK, 0, id, NULL, sender, s->org, NULL,
            "acknowledged by recipient");
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "recipient", s->org);
    sh_tally_add(&b->stage.acked, lab, 1);
    if (!is_receipt && accepted_ms)
        sh_hist_observe(&b->stage.latency, (s_now() - accepted_ms) / 1e3);
    if (!is_receipt && sender[0] && strcmp(sender, b->cfg.org_code) != 0 && acked->n < SH_ACK_MAX) {
        memcpy(acked->e[acked->n].sender, sender, sizeof sender);
        memcpy(acked->e[acked->n++].id, id, 16);
    }
    snprintf(r->cmd, sizeof r->cmd, "NONE");
}

/* The DELIVERED receipts for one ACK message: one per sender for up to RECEIPT_IDS of its
 * events, in the order acknowledged (one ACK of 256 events from one sender: 4 receipts, not
 * 256). A failed enqueue fails the transaction: the batch's commit reports it. */
static void s_ack_receipts(sh_broker *b, sh_txn *t, uint64_t *seq, const char *recipient,
                           s_acked *acked)
{
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
        s_receipt(b, t, seq, (const uint8_t(*)[16])ids, n, sender, recipient,
                  SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED, &err);
        acked->e[i].sender[0] = '\0';
    }
    acked->n = 0;
}

/* ---- delivery pump ------------------------------------------------------------------- */

/* Deliveries for one session, gathered into the body of one DELIVER (docs/protocol.md): at
 * most DELIVER_MAX of them or about DELIVER_BYTES, each five length-prefixed fields. */
#define DELIVER_MAX   64
#define DELIVER_BYTES (512 * 1024)

static int s_body_field(s_body *bd, const void *f, size_t l)
{
    if (bd->len + 4 + l > bd->cap) {
        size_t cap = bd->cap ? bd->cap : 16384;
        while (cap < bd->len + 4 + l)
            cap *= 2;
        uint8_t *p = realloc(bd->p, cap);
        if (!p) return -1;
        bd->p = p;
        bd->cap = cap;
    }
    sh_be32_put(bd->p + bd->len, (uint32_t)l);
    if (l) memcpy(bd->p + bd->len + 4, f, l);
    bd->len += 4 + l;
    return 0;
}

/* Adds a queue record's delivery to bd; -1 (nothing added) when out of memory. */
static int s_body_add(s_body *bd, const s_delivery *d)
{
    size_t mark = bd->len;
    const char *fl = d->flags & FLAG_OVERDUE ? "overdue" : "";
    if (s_body_field(bd, d->id, 16) || s_body_field(bd, d->sender, strlen(d->sender)) ||
        s_body_field(bd, d->rule, d->rule_len) || s_body_field(bd, fl, strlen(fl)) ||
        s_body_field(bd, d->copy, d->copy_len)) {
        bd->len = mark;
        return -1;
    }
    bd->n++;
    return 0;
}

/* Sends what bd holds as one DELIVER to s; bd is empty after (its buffer is kept for the
 * next: a fresh one per message cost page faults). A message refused (the peer's queue is
 * full) is resent when its window goes stale. */
static void s_body_send(sh_broker *b, const s_session *s, s_body *bd)
{
    if (!bd->n) return;
    zmq_msg_t body;
    size_t len = bd->len;
    bd->len = bd->n = 0;
    if (zmq_msg_init_size(&body, len) != 0) return;
    memcpy(zmq_msg_data(&body), bd->p, len);
    if (zmq_send(b->router, s->rid, s->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) b->dropped_sends++, b->dropped_total++;
        zmq_msg_close(&body);
    } else {
        zmq_send(b->router, SH_PROTO_SIGNATURE, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(b->router, "DELIVER", 7, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        if (zmq_msg_send(&body, b->router, ZMQ_DONTWAIT) < 0) zmq_msg_close(&body);
    }
}

/* Sends queued deliveries to every ready session with room in its window. */
static void s_pump(sh_broker *b)
{
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 0, &t, &err)) return;
    int64_t now = s_now();
    for (size_t i = 0; i < b->nsessions; i++) {
        s_session *s = &b->sessions[i];
        if (!s->ready || s->nflight >= b->cfg.window) continue;
        sh_cursor *c = NULL;
        sh_kv kv;
        s_body *bd = &b->body;
        uint8_t key[ORG_KEY + 8];
        s_qkey(s->org, s->next, key);
        if (sh_cursor_open(t, b->queue, &c, &err)) continue;
        sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err);
        for (; rc == SH_OK && s->nflight < b->cfg.window;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.klen != sizeof key || memcmp(kv.key, key, ORG_KEY) != 0) break;
            s_delivery d;
            uint64_t seq = sh_be64_get(kv.key + ORG_KEY);
            if (s_delivery_parse(kv.val, kv.vlen, &d) != 0) {
                /* opened (so written by this broker) but not a record: left for inspection */
                sh_log(SH_LOG_ERROR, s->org, NULL, "queue entry %llu is damaged; skipped",
                       (unsigned long long)seq);
                s->next = seq + 1;
                continue;
            }
            if (s_body_add(bd, &d) != 0) break; /* out of memory: the rest waits a turn */
            s_flight *f = s_flight_at(b, s, s->nflight++);
            memset(f, 0, sizeof *f);
            f->seq = seq;
            memcpy(f->id, kv.val, 16);
            f->sent_ms = now;
            f->accepted_ms = d.accepted_ms;
            memcpy(f->sender, d.sender, sizeof f->sender);
            f->receipt = d.rule_len == 7 && memcmp(d.rule, "receipt", 7) == 0;
            s->next = seq + 1;
            if (bd->n == DELIVER_MAX || bd->len >= DELIVER_BYTES) s_body_send(b, s, bd);
        }
        s_body_send(b, s, bd);
        if (rc == SH_E_AUTH_FAILED || rc == SH_E_WRONG_KEY)
            sh_log(SH_LOG_ERROR, s->org, NULL, "a queue entry does not open: %s", sh_err_name(rc));
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
}

/* The store's pages this process has mapped count in its resident set though they belong
 * to the page cache; past 32 MiB they are unmapped (they stay cached), so the broker's
 * resident set stays flat however long the queues grow. Checked once a second. */
#define MAPPED_MAX (32L << 20)
static void s_trim(sh_broker *b)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size = 0, resident = 0, shared = 0;
    int n = f ? fscanf(f, "%ld %ld %ld", &size, &resident, &shared) : 0;
    if (f) fclose(f);
    if (n == 3 && shared * sysconf(_SC_PAGESIZE) > MAPPED_MAX &&
        sh_store_release_pages(b->store) != SH_OK)
        s_log("warning", "could not release the store's mapped pages");
}

/* Resends deliveries whose ACK is overdue; forgets sessions that went silent. */
static void s_timers(sh_broker *b)
{
    int64_t now = s_now();
    for (size_t i = 0; i < b->nsessions;) {
        s_session *s = &b->sessions[i];
        if (now - s->seen_ms > 3LL * b->cfg.heartbeat_ms) {
            s_session_drop(b, i);
            continue;
        }
        int stale = 0;
        for (unsigned k = 0; k < s->nflight; k++) {
            const s_flight *f = s_flight_at(b, s, k);
            stale |= !f->acked && now - f->sent_ms >= b->cfg.redeliver_ms;
        }
        if (stale) {
            /* resend the whole window in order from its oldest entry */
            s->next = s->nflight ? s_flight_at(b, s, 0)->seq : s->next;
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

/* ---- one message --------------------------------------------------------------------- */

static void s_handle(sh_broker *b, sh_txn *t, uint64_t *seq, zmq_msg_t *parts, size_t n)
{
    const uint8_t *rid = zmq_msg_data(&parts[0]);
    size_t rid_len = zmq_msg_size(&parts[0]);
    /* who sent it: the CURVE key ZAP admitted, looked up again now, so a key revoked since
     * the connection was made is refused on its next message */
    const char *user = n > 1 ? zmq_msg_gets(&parts[1], "User-Id") : NULL;
    uint8_t key[32];
    const sh_org *from = NULL;
    if (user && strlen(user) == SH_Z85_LEN && zmq_z85_decode(key, user))
        from = sh_registry_by_key(b->registry, key);
    if (!from) {
        s_error_now(b, rid, rid_len, SH_E_NOT_ENROLLED, "key not enrolled or revoked");
        int si = s_session_find(b, rid, rid_len);
        if (si >= 0) s_session_drop(b, (size_t)si);
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_NOT_ENROLLED, NULL, NULL, "-", NULL,
                NULL, "message from a key that is not enrolled");
        return;
    }
    if (n < 3 || zmq_msg_size(&parts[1]) != 4 ||
        memcmp(zmq_msg_data(&parts[1]), SH_PROTO_SIGNATURE, 4) != 0 ||
        zmq_msg_size(&parts[2]) == 0 || zmq_msg_size(&parts[2]) > 15) {
        s_error_now(b, rid, rid_len, SH_E_PROTOCOL,
                    "want " SH_PROTO_SIGNATURE ", a command and its frames");
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_PROTOCOL, NULL, NULL, from->code, NULL,
                NULL, "not a protocol message");
        return;
    }
    char cmd[16];
    memcpy(cmd, zmq_msg_data(&parts[2]), zmq_msg_size(&parts[2]));
    cmd[zmq_msg_size(&parts[2])] = '\0';
    int si = s_session_get(b, rid, rid_len, from->code);
    if (si < 0) {
        s_error_now(b, rid, rid_len, SH_E_NOMEM, "no room for another session");
        return;
    }
    b->sessions[si].seen_ms = s_now();
    const uint8_t *arg = n > 3 ? zmq_msg_data(&parts[3]) : NULL;
    size_t arglen = n > 3 ? zmq_msg_size(&parts[3]) : 0;

    if (strcmp(cmd, "PUBLISH") == 0 && n == 4) {
        s_reply *r = s_reply_new(b, rid, rid_len, "CONFIRM");
        if (!r) return;
        if (arglen > SH_ENVELOPE_MAX) {
            s_confirm_refused(r, NULL, SH_E_TOO_LARGE, "envelope over 1 MiB");
            s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_TOO_LARGE, NULL, NULL, from->code,
                    NULL, NULL, "oversize envelope");
            return;
        }
        s_publish(b, t, seq, from, arg, arglen, r);
    } else if (strcmp(cmd, "ACK") == 0 && n == 4) {
        /* one id, or up to SH_ACK_MAX ids in one frame (s_batch leaves room for them all) */
        if (arglen == 0 || arglen % 16 || arglen / 16 > SH_ACK_MAX) {
            s_error_now(b, rid, rid_len, SH_E_PROTOCOL, "ACK: want 1 to 256 event ids of 16 bytes");
            s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_PROTOCOL, NULL, NULL, from->code,
                    NULL, NULL, "malformed ACK");
            return;
        }
        s_acked acked = {.n = 0};
        for (size_t i = 0; i < arglen; i += 16) {
            s_reply *r = s_reply_new(b, rid, rid_len, "NONE");
            if (r) s_ack(b, t, si, arg + i, 16, r, &acked);
        }
        s_ack_receipts(b, t, seq, b->sessions[si].org, &acked);
    } else if (strcmp(cmd, "HELLO") == 0 && n == 4) {
        s_session *s = &b->sessions[si];
        /* one live session per organisation: a reconnect replaces the old one */
        for (size_t i = 0; i < b->nsessions; i++)
            if ((int)i != si && strcmp(b->sessions[i].org, from->code) == 0)
                b->sessions[i].ready = 0;
        s->ready = 1;
        s->next = 0;
        s->nflight = s->head = 0;
        sh_error err;
        if (arglen > 0 && arglen < 1024 &&
            sh_txn_put(t, b->subs, from->code, strlen(from->code), arg, arglen, 0, &err))
            s_log("error", "saving subscriptions: %s", err.detail);
        s_reply *r = s_reply_new(b, rid, rid_len, "READY");
        s_reply_addf(r, "%s", from->code);
        s_reply_addf(r, "%d", b->cfg.heartbeat_ms);
    } else if (strcmp(cmd, "PING") == 0) {
        /* says whether deliveries flow to this connection: a broker that restarted, or that
         * forgot a silent session, has not heard this agent's HELLO */
        s_reply *r = s_reply_new(b, rid, rid_len, "PONG");
        if (r) s_reply_addf(r, "%s", b->sessions[si].ready ? "ready" : "hello");
    } else if (strcmp(cmd, "WITNESS") == 0 && n == 5) {
        s_reply *r = s_reply_new(b, rid, rid_len, "WITNESSED");
        if (r)
            s_witness(b, t, from, arg, arglen, zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]), r);
    } else {
        s_error_now(b, rid, rid_len, SH_E_PROTOCOL, "unknown command or wrong frame count");
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_PROTOCOL, NULL, NULL, from->code, NULL,
                NULL, "unknown command");
    }
}

/* ---- ZAP ----------------------------------------------------------------------------- */

static void s_zap(sh_broker *b)
{
    zmq_msg_t f[7];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < 7 ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, b->zap, 0) < 0) {
            zmq_msg_close(m);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            return;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    const char *status = "400", *text = "not enrolled";
    char user[SH_Z85_LEN + 1] = "";
    if (n == 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&f[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&f[6]);
        if (sh_registry_by_key(b->registry, key)) {
            status = "200";
            text = "OK";
            zmq_z85_encode(user, key, 32);
        }
    }
    /* version, request id, status, text, user id, metadata */
    zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(b->zap, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0,
             ZMQ_SNDMORE);
    zmq_send(b->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(b->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(b->zap, "", 0, 0);
    if (status[0] != '2') {
        b->refused_key_total++;
        if (b->refused_key++ == 0) s_log("warning", "connection refused: key not enrolled");
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* ---- refused connections ------------------------------------------------------------- */

/* One event from the router's monitor: a handshake that failed below the protocol (a peer
 * without CURVE, with a wrong server key, or sending bytes that are not ZMTP), or a closed
 * connection. ZeroMQ closes a connection without telling the socket when the peer sends a
 * message over ZMQ_MAXMSGSIZE, so a close after the handshake is the only trace of an
 * oversized frame. (The events name the local endpoint, not the peer, and the handshake's
 * success carries no file descriptor: so these are counts.) */
static void s_monitor(sh_broker *b)
{
    zmq_msg_t m[2];
    zmq_msg_init(&m[0]);
    zmq_msg_init(&m[1]);
    if (zmq_msg_recv(&m[0], b->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m[0]) &&
        zmq_msg_recv(&m[1], b->monitor, 0) >= 0 && zmq_msg_size(&m[0]) >= 2) {
        uint16_t ev;
        memcpy(&ev, zmq_msg_data(&m[0]), 2);
        if (ev & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)) {
            b->refused_handshake_total++;
            if (b->refused_handshake++ == 0)
                s_log("warning", "connection refused: handshake failed (no CURVE, or not ZMTP)");
        }
        /* (a refused key is counted by the ZAP handler, which sees it first) */
        if (ev & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
            b->failed_total++;
        if (ev & ZMQ_EVENT_DISCONNECTED) b->closed_total++;
    }
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
}

/* Records the connections refused or dropped since the last record, in one audit entry
 * each. */
static void s_audit_refused(sh_broker *b, int64_t now)
{
    uint64_t after = b->closed_total > b->failed_total ? b->closed_total - b->failed_total : 0;
    uint64_t dropped = after > b->dropped_audited ? after - b->dropped_audited : 0;
    if ((!b->refused_key && !b->refused_handshake && !dropped) || now - b->refused_audit_ms < 1000)
        return;
    sh_txn *t = NULL;
    sh_error err;
    char detail[320];
    if (sh_txn_begin(b->store, 1, &t, &err)) return;
    if (b->refused_key) {
        snprintf(detail, sizeof detail, "%u connection(s) refused: CURVE key not enrolled",
                 b->refused_key);
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_NOT_ENROLLED, NULL, NULL, "-", NULL,
                NULL, detail);
    }
    if (b->refused_handshake) {
        snprintf(detail, sizeof detail,
                 "%u connection(s) refused: handshake failed (no CURVE, or not ZMTP)",
                 b->refused_handshake);
        s_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_PROTOCOL, NULL, NULL, "-", NULL, NULL,
                detail);
    }
    if (dropped) {
        snprintf(detail, sizeof detail,
                 "%" PRIu64 " connection(s) closed by the transport after the handshake (peer "
                 "closed or crashed, network failed, or a message over 4 MiB)",
                 dropped);
        s_audit(b, t, SH_AUDIT_CONNECTION, SH_AUDIT_FAILED, SH_E_CONNECTION_CLOSED, NULL, NULL, "-",
                NULL, NULL, detail);
    }
    if (sh_txn_commit(&t, &err) == SH_OK) {
        if (b->refused_key + b->refused_handshake > 1)
            s_log("warning", "%u connections refused in the last second",
                  b->refused_key + b->refused_handshake);
        if (dropped) s_log("warning", "%s", detail);
        b->refused_key = b->refused_handshake = 0;
        b->dropped_audited += dropped;
    }
    b->refused_audit_ms = now;
}

/* ---- batch --------------------------------------------------------------------------- */

/* An ACK was handled: the event leaves its session's window. rewind_ms != 0 when the ACK's
 * batch did not commit (the queue entry stays): the session re-offers its queue then. */
static void s_unflight(sh_broker *b, const s_reply *r, int64_t rewind_ms)
{
    /* by routing id, not index: a session dropped in this batch moved the others */
    int si = s_session_find(b, r->rid, r->rid_len);
    if (si < 0) return;
    s_session *s = &b->sessions[si];
    s_flight *f = s_flight_find(b, s, r->ack_id);
    if (f) f->acked = 1;
    while (s->nflight && s_flight_at(b, s, 0)->acked) {
        s->head = (s->head + 1) % b->cfg.window;
        s->nflight--;
    }
    if (rewind_ms) s->rewind_ms = rewind_ms;
}

/* ---- queue depths (docs/protocol.md: the broker's store) ------------------------------ */

/* The depth record of org, made (at 0) when create is set; NULL if absent or out of memory. */
static s_depth *s_depth_of(sh_broker *b, const char *org, int create)
{
    for (size_t i = 0; i < b->ndepths; i++)
        if (strcmp(b->depths[i].org, org) == 0) return &b->depths[i];
    if (!create) return NULL;
    if (b->ndepths == b->capdepths) {
        size_t cap = b->capdepths ? b->capdepths * 2 : 16;
        s_depth *d = realloc(b->depths, cap * sizeof *d);
        if (!d) return NULL;
        b->depths = d;
        b->capdepths = cap;
    }
    s_depth *d = &b->depths[b->ndepths++];
    snprintf(d->org, sizeof d->org, "%s", org);
    d->n = 0;
    return d;
}

/* Writes org's depth record in t. */
static sh_err s_depth_put(sh_broker *b, sh_txn *t, const char *org, uint64_t n, sh_error *err)
{
    char key[6 + ORG_KEY + 1];
    uint8_t v[8];
    int kl = snprintf(key, sizeof key, "depth:%s", org);
    sh_be64_put(v, n);
    return sh_txn_put(t, b->state, key, (size_t)kl, v, 8, 0, err);
}

/* Loads every recipient's queue depth from the state database. A store written before depths
 * were recorded is counted once, by key (nothing is opened), and the counts written. */
static sh_err s_depths_load(sh_broker *b, sh_error *err)
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
             rc == SH_OK && kv.klen > 6 && kv.klen <= 6 + ORG_KEY &&
             memcmp(kv.key, "depth:", 6) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
            char org[ORG_KEY + 1];
            memcpy(org, kv.key + 6, kv.klen - 6);
            org[kv.klen - 6] = '\0';
            s_depth *d = kv.vlen == 8 ? s_depth_of(b, org, 1) : NULL;
            if (d) d->n = sh_be64_get(kv.val);
        }
    } else if (!rc) {
        for (rc = sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err); rc == SH_OK;
             rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
            char org[ORG_KEY + 1];
            if (kv.klen != ORG_KEY + 8) continue;
            memcpy(org, kv.key, ORG_KEY);
            org[ORG_KEY] = '\0';
            s_depth *d = s_depth_of(b, org, 1);
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
static sh_err s_depths_apply(sh_broker *b, sh_txn *t, sh_error *err)
{
    const sh_tally *sets[2] = {&b->stage.queued, &b->stage.acked};
    for (int k = 0; k < 2; k++)
        for (unsigned i = 0; i < sets[k]->n; i++) {
            const char *l = sets[k]->e[i].labels;
            if (k == 1 && sh_tally_get(&b->stage.queued, l)) continue; /* done */
            char org[ORG_KEY + 1] = "";
            if (sscanf(l, "recipient=\"%9[^\"]\"", org) != 1) continue;
            s_depth *d = s_depth_of(b, org, t == NULL);
            uint64_t in = (d ? d->n : 0) + sh_tally_get(&b->stage.queued, l),
                     out = sh_tally_get(&b->stage.acked, l), n = in > out ? in - out : 0;
            if (t) {
                sh_err rc = s_depth_put(b, t, org, n, err);
                if (rc) return rc;
            } else if (d) {
                d->n = n;
            }
        }
    return SH_OK;
}

static void s_stats_reset(s_stats *st)
{
    st->accepted = 0;
    sh_tally_reset(&st->queued);
    sh_tally_reset(&st->acked);
    sh_tally_reset(&st->denied);
    memset(&st->latency, 0, sizeof st->latency);
}

static void s_stats_merge(s_stats *dst, const s_stats *src)
{
    dst->accepted += src->accepted;
    sh_tally_merge(&dst->queued, &src->queued);
    sh_tally_merge(&dst->acked, &src->acked);
    sh_tally_merge(&dst->denied, &src->denied);
    sh_hist_merge(&dst->latency, &src->latency);
}

static void s_batch(sh_broker *b)
{
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 1, &t, &err)) {
        s_log("error", "cannot begin a transaction: %s", err.detail);
        return;
    }
    uint64_t seq = b->seq;
    b->nreplies = 0;
    s_stats_reset(&b->stage);
    /* (replies hold BATCH_MAX * 2: stop reading while one more message of SH_ACK_MAX acks
     * could not fit) */
    for (int k = 0; k < BATCH_MAX && b->nreplies + SH_ACK_MAX <= BATCH_MAX * 2; k++) {
        zmq_msg_t parts[6];
        size_t n = 0;
        int more = 1, got = 1;
        while (more) {
            zmq_msg_t scratch, *m = n < 6 ? &parts[n] : &scratch;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, b->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                got = 0;
                break;
            }
            more = zmq_msg_more(m);
            if (m == &scratch) {
                zmq_msg_close(m);
                n = 7; /* too many frames: a protocol error */
            } else {
                n++;
            }
        }
        if (!got && n == 0) break;
        if (got) s_handle(b, t, &seq, parts, n > 6 ? 2 : n); /* 2 frames: refused as malformed */
        for (size_t i = 0; i < n && i < 6; i++)
            zmq_msg_close(&parts[i]);
    }
    /* (a failed put leaves the transaction failed: its commit then reports the first error) */
    s_depths_apply(b, t, &err);
    sh_err rc = sh_txn_commit(&t, &err);
    if (rc) {
        s_log("error", "commit failed, %zu replies refused: %s", b->nreplies, err.detail);
        b->store_failed_ms = s_now();
        for (size_t i = 0; i < b->nreplies; i++) {
            s_reply *r = &b->replies[i];
            if (r->kind == 1) s_unflight(b, r, s_now() + b->cfg.redeliver_ms);
            if (strcmp(r->cmd, "CONFIRM") == 0) {
                uint8_t id[16];
                int has = r->n > 0 && r->lens[0] == 16;
                if (has) memcpy(id, r->frames[0], 16);
                s_reply_free(r);
                s_confirm_refused(r, has ? id : NULL, rc, sh_err_message(rc));
                s_reply_flush(b, r);
            }
            s_reply_free(r);
        }
        return;
    }
    b->seq = seq;
    b->store_failed_ms = 0;
    s_stats_merge(&b->stats, &b->stage);
    s_depths_apply(b, NULL, &err);
    for (size_t i = 0; i < b->nreplies; i++) {
        s_reply *r = &b->replies[i];
        if (r->kind == 1) s_unflight(b, r, 0);
        if (strcmp(r->cmd, "NONE") != 0) s_reply_flush(b, r);
        s_reply_free(r);
    }
}

/* ---- metrics and health (docs/operations.md#metrics) -------------------------------- */

/* When the broker accepted the oldest event still queued for org; 0 if none or unknown. */
static int64_t s_oldest_ms(sh_broker *b, sh_txn *t, const char *org)
{
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_error err;
    s_delivery d;
    uint8_t key[ORG_KEY + 8];
    int64_t at = 0;
    s_qkey(org, 0, key);
    if (sh_cursor_open(t, b->queue, &c, &err)) return 0;
    if (sh_cursor_get(c, SH_CURSOR_SEEK, key, sizeof key, &kv, &err) == SH_OK &&
        kv.klen == sizeof key && memcmp(kv.key, key, ORG_KEY) == 0 &&
        s_delivery_parse(kv.val, kv.vlen, &d) == 0)
        at = d.accepted_ms;
    sh_cursor_close(&c);
    return at;
}

#define M(name) "sharehub_broker_" name

static int s_metrics(void *ctx, FILE *f)
{
    sh_broker *b = ctx;
    const s_stats *st = &b->stats;
    int64_t now = s_now();
    char lab[SH_LABELS_MAX];
    int e = 0;
    e |= sh_prom_family(f, "sharehub_build_info", "gauge", "The running build.");
    lab[0] = '\0';
    sh_label(lab, sizeof lab, "component", "broker");
    sh_label(lab, sizeof lab, "version", SHAREHUB_VERSION);
    e |= sh_prom_sample(f, "sharehub_build_info", lab, 1);
    e |=
        sh_prom_family(f, M("start_time_seconds"), "gauge", "When the broker started (Unix time).");
    e |= sh_prom_sample(f, M("start_time_seconds"), NULL, (double)(b->started_ms / 1000));

    e |= sh_prom_value(f, M("events_accepted_total"), "counter",
                       "Events accepted: decided, queued, durable and confirmed to the sender.",
                       (double)st->accepted);
    e |= sh_prom_counters(f, M("deliveries_queued_total"),
                          "Queue entries written per recipient (permitted events and receipts).",
                          &st->queued);
    e |= sh_prom_counters(f, M("deliveries_acked_total"),
                          "Deliveries the recipient stored and acknowledged.", &st->acked);
    e |= sh_prom_counters(f, M("shares_denied_total"),
                          "Shares the policy refused, by reason and by the ISP that decided "
                          "(isp=\"-\" when none covers the share).",
                          &st->denied);
    e |= sh_prom_counters(f, M("refused_total"),
                          "Messages refused with an error code (CONFIRM or ERROR), by code.",
                          &b->refused);
    e |= sh_prom_family(f, M("connections_refused_total"), "counter",
                        "Connections refused at the handshake.");
    e |= sh_prom_sample(f, M("connections_refused_total"), "reason=\"not_enrolled\"",
                        (double)b->refused_key_total);
    e |= sh_prom_sample(f, M("connections_refused_total"), "reason=\"handshake\"",
                        (double)b->refused_handshake_total);
    e |= sh_prom_value(
        f, M("connections_closed_total"), "counter",
        "Authenticated connections closed by the transport.",
        (double)(b->closed_total > b->failed_total ? b->closed_total - b->failed_total : 0));
    e |= sh_prom_value(f, M("sends_dropped_total"), "counter",
                       "Messages not sent because a peer's queue was full (it will be offered "
                       "them again).",
                       (double)b->dropped_total);
    e |= sh_prom_histogram(f, M("delivery_latency_seconds"),
                           "From the broker accepting an event to a recipient acknowledging it.",
                           &st->latency);

    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 0, &t, &err)) return -1;
    e |= sh_prom_family(f, M("queue_depth"), "gauge", "Deliveries waiting for each recipient.");
    for (size_t i = 0; i < b->ndepths; i++) {
        lab[0] = '\0';
        sh_label(lab, sizeof lab, "recipient", b->depths[i].org);
        e |= sh_prom_sample(f, M("queue_depth"), lab, (double)b->depths[i].n);
    }
    e |= sh_prom_family(f, M("queue_oldest_age_seconds"), "gauge",
                        "Age of the oldest delivery waiting for each recipient (absent when none "
                        "waits).");
    for (size_t i = 0; i < b->ndepths; i++) {
        int64_t at = b->depths[i].n ? s_oldest_ms(b, t, b->depths[i].org) : 0;
        if (!at) continue;
        lab[0] = '\0';
        sh_label(lab, sizeof lab, "recipient", b->depths[i].org);
        e |= sh_prom_sample(f, M("queue_oldest_age_seconds"), lab,
                            (double)(now > at ? now - at : 0) / 1e3);
    }
    e |= sh_prom_store_audit(f, "sharehub_broker_", b->store, b->audit, t);
    sh_txn_abort(&t);
    e |= sh_prom_value(f, M("store_writable"), "gauge",
                       "0 when the store refused the last write (disk or map full).",
                       b->store_failed_ms ? 0 : 1);

    int states[SH_ISP_SUSPENDED + 1] = {0};
    for (size_t i = 0; i < sh_policy_count(b->policy); i++)
        states[sh_isp_state_at(sh_policy_at(b->policy, i), now)]++;
    e |= sh_prom_family(f, M("isps"), "gauge", "Information Sharing Protocols loaded, by state.");
    for (int s = 0; s <= SH_ISP_SUSPENDED; s++) {
        lab[0] = '\0';
        sh_label(lab, sizeof lab, "state", sh_isp_state_name((sh_isp_state)s));
        e |= sh_prom_sample(f, M("isps"), lab, states[s]);
    }
    size_t ready = 0;
    for (size_t i = 0; i < b->nsessions; i++)
        ready += b->sessions[i].ready != 0;
    e |= sh_prom_value(f, M("agents_connected"), "gauge", "Agents connected and receiving.",
                       (double)ready);
    e |= sh_prom_family(f, M("agent_connected"), "gauge",
                        "1 while the enrolled organisation's agent is connected and receiving.");
    for (size_t i = 0; i < sh_registry_count(b->registry); i++) {
        const sh_org *o = sh_registry_at(b->registry, i);
        int on = 0;
        for (size_t k = 0; k < b->nsessions; k++)
            on |= b->sessions[k].ready && strcmp(b->sessions[k].org, o->code) == 0;
        lab[0] = '\0';
        sh_label(lab, sizeof lab, "org", o->code);
        e |= sh_prom_sample(f, M("agent_connected"), lab, on);
    }
    return e ? -1 : 0;
}

#undef M

static const char *s_not_ready(void *ctx)
{
    const sh_broker *b = ctx;
    return b->store_failed_ms ? "the store refused the last write (disk or map full)" : NULL;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static sh_err s_load_config(sh_broker *b, sh_error *err)
{
    sh_registry *reg = NULL;
    sh_policy *pol = NULL;
    sh_err rc = sh_registry_load(b->cfg.registry, &reg, err);
    if (!rc) rc = sh_policy_load(b->cfg.policy_dir, &pol, err);
    if (rc) {
        sh_registry_destroy(&reg);
        return rc;
    }
    sh_registry_destroy(&b->registry);
    sh_policy_destroy(&b->policy);
    b->registry = reg;
    b->policy = pol;
    int64_t now = s_now();
    for (size_t i = 0; i < sh_policy_count(pol); i++) {
        const sh_isp *isp = sh_policy_at(pol, i);
        sh_isp_state st = sh_isp_state_at(isp, now);
        if (st != SH_ISP_ACTIVE)
            s_log("warning", "protocol %s is %s (review date %s)", sh_isp_rule(isp),
                  sh_isp_state_name(st), sh_isp_review_date(isp));
    }
    s_log("info", "loaded %zu organisations and %zu protocols", sh_registry_count(reg),
          sh_policy_count(pol));
    return SH_OK;
}

static sh_err s_load_curve(sh_broker *b, char secret[SH_Z85_LEN + 1], sh_error *err)
{
    char buf[128];
    size_t n = 0;
    sh_err rc = sh_secret_file_read(b->cfg.curve_key, buf, sizeof buf, &n, err);
    if (rc) return rc;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    uint8_t raw[32];
    if (n != SH_Z85_LEN || !zmq_z85_decode(raw, buf) || zmq_curve_public(b->public_key, buf)) {
        sh_wipe(buf, sizeof buf);
        return sh_error_set(err, SH_E_KEY_FORMAT, "%s: want a 40-character Z85 CURVE secret key",
                            b->cfg.curve_key);
    }
    memcpy(secret, buf, SH_Z85_LEN + 1);
    sh_wipe(buf, sizeof buf);
    sh_wipe(raw, sizeof raw);
    return SH_OK;
}

sh_err sh_broker_new(const sh_broker_config *cfg, sh_broker **out, sh_error *err)
{
    *out = NULL;
    /* deliveries, confirms and receipts share ZeroMQ's queue per connection (below) */
    if (cfg->window > WINDOW_MAX)
        return sh_error_set(err, SH_E_INVAL,
                            "window %u: at most %d unacknowledged deliveries per recipient",
                            cfg->window, WINDOW_MAX);
    sh_broker *b = calloc(1, sizeof *b);
    if (!b) return sh_error_set(err, SH_E_NOMEM, "broker");
    b->cfg = *cfg;
    sh_log_init("broker", cfg->log_level);
    if (!b->cfg.org_code) b->cfg.org_code = "SHAREHUB";
    if (b->cfg.heartbeat_ms <= 0) b->cfg.heartbeat_ms = 5000;
    if (b->cfg.redeliver_ms <= 0) b->cfg.redeliver_ms = 30000;
    if (!b->cfg.window) b->cfg.window = 1024;
    b->replies = calloc(BATCH_MAX * 2, sizeof *b->replies);
    char secret[SH_Z85_LEN + 1] = "";
    sh_store_opts so = {.map_size = cfg->map_size};
    sh_err rc = b->replies ? SH_OK : sh_error_set(err, SH_E_NOMEM, "replies");
    if (!rc) rc = s_load_curve(b, secret, err);
    if (!rc) rc = s_load_config(b, err);
    if (!rc) rc = sh_key_load_file(cfg->master_key, &b->master, err);
    if (!rc) rc = sh_signkey_load_file(cfg->sign_key, &b->signer, err);
    if (!rc) rc = sh_store_open(cfg->store_dir, b->master, &so, &b->store, err);
    if (!rc && (rc = sh_store_derive_key(b->store, "audit mac", &b->audit_key)))
        sh_error_set(err, rc, "audit key");
    if (!rc)
        rc =
            sh_audit_open(b->store, b->audit_key, b->signer, cfg->checkpoint_every, &b->audit, err);
    if (!rc) rc = sh_store_db(b->store, "events", SH_DB_SEALED, &b->events, err);
    if (!rc) rc = sh_store_db(b->store, "queue", SH_DB_SEALED, &b->queue, err);
    if (!rc) rc = sh_store_db(b->store, "state", SH_DB_PLAIN, &b->state, err);
    if (!rc) rc = sh_store_db(b->store, "subs", SH_DB_PLAIN, &b->subs, err);
    if (!rc) rc = sh_store_db(b->store, "consent", SH_DB_PLAIN, &b->consent, err);
    if (!rc) rc = sh_store_db(b->store, "school", SH_DB_PLAIN, &b->school, err);
    if (!rc) rc = sh_store_db(b->store, "witness", SH_DB_PLAIN, &b->witness, err);
    if (!rc) {
        sh_txn *t = NULL;
        sh_buf v = {0};
        if (sh_txn_begin(b->store, 0, &t, err) == SH_OK) {
            if (sh_txn_get(t, b->state, "seq", 3, &v, err) == SH_OK && v.len == 8)
                b->seq = sh_be64_get(v.data);
            sh_txn_abort(&t);
        }
        sh_buf_free(&v);
    }
    /* messages queued to one peer: ZeroMQ learns what the peer has read only every half of
     * this, so about 8,000 are dependable: a full window sent one delivery a message (at most
     * 4,096; usually 64 share a message) plus the CONFIRMs of its agent's publish window (64)
     * plus receipts fit with room */
    int one = 1, linger = 0, hwm = 16384;
    int64_t maxmsg = MAX_MSG;
    if (!rc) {
        b->ctx = zmq_ctx_new();
        b->zap = b->ctx ? zmq_socket(b->ctx, ZMQ_REP) : NULL;
        b->router = b->ctx ? zmq_socket(b->ctx, ZMQ_ROUTER) : NULL;
        if (!b->zap || !b->router || zmq_bind(b->zap, "inproc://zeromq.zap.01") ||
            zmq_setsockopt(b->router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
            zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, secret, SH_Z85_LEN) ||
            zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, "sharehub", 8) ||
            zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
            zmq_setsockopt(b->router, ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_setsockopt(b->router, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
            zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one))
            rc = sh_error_set(err, SH_E_IO, "zmq: %s", zmq_strerror(zmq_errno()));
        if (!rc && (zmq_socket_monitor(
                        b->router, "inproc://sharehub-monitor",
                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) ||
                    !(b->monitor = zmq_socket(b->ctx, ZMQ_PAIR)) ||
                    zmq_setsockopt(b->monitor, ZMQ_LINGER, &linger, sizeof linger) ||
                    zmq_connect(b->monitor, "inproc://sharehub-monitor")))
            rc = sh_error_set(err, SH_E_IO, "zmq monitor: %s", zmq_strerror(zmq_errno()));
        for (int i = 0; !rc && i < 4 && cfg->endpoints[i]; i++)
            if (zmq_bind(b->router, cfg->endpoints[i]))
                rc = sh_error_set(err, SH_E_IO, "bind %s: %s", cfg->endpoints[i],
                                  zmq_strerror(zmq_errno()));
    }
    sh_wipe(secret, sizeof secret);
    b->started_ms = s_now();
    if (!rc) rc = s_depths_load(b, err);
    if (!rc && cfg->http_listen) {
        sh_http_site site = {s_metrics, s_not_ready, b};
        rc = sh_http_new(cfg->http_listen, &site, &b->http, err);
    }
    if (!rc) {
        sh_txn *t = NULL;
        if (sh_txn_begin(b->store, 1, &t, err) == SH_OK) {
            s_audit(b, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, b->cfg.org_code, NULL, NULL,
                    "broker started");
            sh_txn_commit(&t, err);
        }
        s_log("info", "serving on %s (public key %s)", cfg->endpoints[0], b->public_key);
        if (b->http) s_log("info", "metrics and health on http://%s", cfg->http_listen);
    }
    if (rc) {
        sh_broker_destroy(&b);
        return rc;
    }
    *out = b;
    return SH_OK;
}

sh_err sh_broker_run(sh_broker *b, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload)
{
    int64_t last_timers = s_now();
    while (!*stop) {
        if (*reload) {
            *reload = 0;
            sh_error err;
            sh_txn *t = NULL;
            sh_err rc = s_load_config(b, &err);
            if (rc) s_log("error", "reload refused, keeping the old configuration: %s", err.detail);
            if (sh_txn_begin(b->store, 1, &t, &err) == SH_OK) {
                s_audit(b, t, SH_AUDIT_ADMIN, rc ? SH_AUDIT_FAILED : SH_AUDIT_OK, rc, NULL, NULL,
                        b->cfg.org_code, NULL, NULL,
                        rc ? "reload refused" : "registry and policy reloaded");
                sh_txn_commit(&t, &err);
            }
        }
        zmq_pollitem_t items[4] = {{b->router, 0, ZMQ_POLLIN, 0},
                                   {b->zap, 0, ZMQ_POLLIN, 0},
                                   {b->monitor, 0, ZMQ_POLLIN, 0},
                                   {NULL, b->http ? sh_http_fd(b->http) : -1, ZMQ_POLLIN, 0}};
        int wait = b->http ? sh_http_wait_ms(b->http, 100) : 100;
        int rc = zmq_poll(items, b->http ? 4 : 3, wait);
        if (rc < 0 && zmq_errno() != EINTR) return SH_E_IO;
        if (b->http && (wait == 0 || (rc > 0 && (items[3].revents & ZMQ_POLLIN))))
            sh_http_serve(b->http);
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) s_zap(b);
        if (rc > 0 && (items[2].revents & ZMQ_POLLIN)) s_monitor(b);
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) s_batch(b);
        int64_t now = s_now();
        if (now - last_timers >= 100) {
            s_timers(b);
            s_audit_refused(b, now);
            if (b->http) sh_http_serve(b->http); /* its connection timeouts */
            if (now / 1000 != last_timers / 1000) {
                s_trim(b);
                if (b->dropped_sends)
                    s_log("warning",
                          "%u messages dropped: a peer's queue was full (it is not reading)",
                          b->dropped_sends);
                b->dropped_sends = 0;
            }
            last_timers = now;
        }
        s_pump(b);
    }
    return SH_OK;
}

const char *sh_broker_public_key(const sh_broker *b)
{
    return b->public_key;
}

void sh_broker_destroy(sh_broker **bp)
{
    if (!bp || !*bp) return;
    sh_broker *b = *bp;
    if (b->audit) {
        sh_txn *t = NULL;
        sh_error err;
        if (sh_txn_begin(b->store, 1, &t, &err) == SH_OK) {
            s_audit(b, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, b->cfg.org_code, NULL, NULL,
                    "broker stopped");
            if (sh_audit_checkpoint(b->audit, t, &err) == SH_OK)
                sh_txn_commit(&t, &err);
            else
                sh_txn_abort(&t);
        }
    }
    sh_http_destroy(&b->http);
    if (b->monitor) zmq_close(b->monitor);
    if (b->router) zmq_close(b->router);
    if (b->zap) zmq_close(b->zap);
    if (b->ctx) zmq_ctx_term(b->ctx);
    for (size_t i = 0; i < b->nsessions; i++)
        free(b->sessions[i].flight);
    free(b->sessions);
    free(b->depths);
    if (b->replies)
        for (size_t i = 0; i < BATCH_MAX * 2; i++)
            s_reply_free(&b->replies[i]);
    free(b->replies);
    free(b->body.p);
    sh_audit_destroy(&b->audit);
    sh_store_destroy(&b->store);
    sh_key_destroy(&b->audit_key);
    sh_key_destroy(&b->master);
    sh_signkey_destroy(&b->signer);
    sh_registry_destroy(&b->registry);
    sh_policy_destroy(&b->policy);
    free(b);
    *bp = NULL;
}
