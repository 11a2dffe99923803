/*
 * agent.c — the agent's loop: broker connection, outbox, deliveries, local requests.
 *
 * Store layout (one LMDB environment, docs/agent.md):
 *   events    (sealed) event id -> u8 direction (1 sent, 2 received) | i64 BE at_ms |
 *                                  u8 n, peer[n] | u8 n, rule[n] | u8 flags | envelope
 *   by_child  (plain)  blind(kind, identifier) (32) | event id (16) -> ""
 *   by_thread (plain)  correlation id (16) | event id (16)          -> ""
 *   inbox     (plain)  u64 BE arrival seq -> event id
 *   outbox    (sealed) u64 BE seq -> encoded envelope waiting for the broker's CONFIRM
 *   outcome   (plain)  event id -> the broker's answer (outcome lines or the refusal)
 *   state     (plain)  "inbox_seq", "outbox_seq" -> u64 BE
 * Never: acknowledges a delivery before it is durable here; drops an outbox entry before the
 * broker has answered it with a final code.
 */
#include "agent.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "client.h"
#include "codec.h"
#include "crypto.h"
#include "http.h"
#include "ident.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "yaml.h"

#define ET(x)             SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x
#define WINDOW            64
#define DIR_SENT          1
#define DIR_RECEIVED      2
#define ATTENDANCES_SHOWN 25

enum { ROLE_EDUCATION = 1, ROLE_HEALTH = 2, ROLE_SOCIAL_CARE = 3 };

typedef struct y_broker {
    char *endpoint, *public_key;
} y_broker;

typedef struct y_config {
    char *org;
    int role;
    y_broker *broker;
    char *curve_key, *store, *master_key, *sign_key, *socket, *subscriptions, *http;
    unsigned heartbeat_ms, witness_ms;
    int log_level;
} y_config;

static const cyaml_strval_t s_levels[] = {{"info", 0}, {"warning", 1}, {"error", 2}};
static const cyaml_strval_t s_roles[] = {
    {"education", ROLE_EDUCATION}, {"health", ROLE_HEALTH}, {"social_care", ROLE_SOCIAL_CARE}};
static const cyaml_schema_field_t s_broker_fields[] = {
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_POINTER, y_broker, endpoint, 1, 256),
    CYAML_FIELD_STRING_PTR("public_key", CYAML_FLAG_POINTER, y_broker, public_key, 40, 40),
    CYAML_FIELD_END};
static const cyaml_schema_field_t s_config_fields[] = {
    CYAML_FIELD_STRING_PTR("org", CYAML_FLAG_POINTER, y_config, org, 1, 9),
    CYAML_FIELD_ENUM("role", CYAML_FLAG_DEFAULT, y_config, role, s_roles, 3),
    CYAML_FIELD_MAPPING_PTR("broker", CYAML_FLAG_POINTER, y_config, broker, s_broker_fields),
    CYAML_FIELD_STRING_PTR("curve_key", CYAML_FLAG_POINTER, y_config, curve_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("store", CYAML_FLAG_POINTER, y_config, store, 1, 4096),
    CYAML_FIELD_STRING_PTR("master_key", CYAML_FLAG_POINTER, y_config, master_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("sign_key", CYAML_FLAG_POINTER, y_config, sign_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("socket", CYAML_FLAG_POINTER, y_config, socket, 1, 100),
    CYAML_FIELD_STRING_PTR("subscriptions", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           subscriptions, 1, 1000),
    CYAML_FIELD_STRING_PTR("http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config, http, 1, 64),
    CYAML_FIELD_UINT("heartbeat_ms", CYAML_FLAG_OPTIONAL, y_config, heartbeat_ms),
    CYAML_FIELD_UINT("witness_ms", CYAML_FLAG_OPTIONAL, y_config, witness_ms),
    CYAML_FIELD_ENUM("log_level", CYAML_FLAG_OPTIONAL, y_config, log_level, s_levels, 3),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_config, s_config_fields)};

typedef struct s_flight {
    uint64_t seq;
    uint8_t id[16];
    int64_t sent_ms;
} s_flight;

struct sh_agent {
    y_config *cfg;
    sh_key *master, *audit_key;
    sh_signkey *signer;
    sh_store *store;
    sh_audit *audit;
    sh_db events, by_child, by_thread, inbox, outbox, outcome, state;
    sh_client *broker;
    void *ctx, *rep;
    int connected;
    int64_t heard_ms, hello_ms, ping_ms, witness_ms;
    int64_t retry_ms;       /* the broker asked us to retry: no resend before this time */
    uint64_t witnessed_seq; /* newest checkpoint the broker has recorded */
    uint64_t inbox_seq, outbox_seq;
    s_flight flight[WINDOW];
    unsigned nflight;
    /* metrics (docs/operations.md#metrics), each counted once its write has committed */
    uint64_t outbox0;         /* outbox entries when the agent started */
    uint64_t queued, settled; /* entries put into the outbox, and removed by a CONFIRM */
    uint64_t accepted;        /* of those settled: accepted by the broker */
    uint64_t received;        /* deliveries stored */
    uint64_t delivered;       /* our events recipients acknowledged, from DELIVERED receipts */
    sh_tally refused;         /* code=,by=: refusals by the broker, and of local requests */
    sh_tally denied;          /* reason=,isp=: recipients the broker's policy refused */
    sh_hist confirm_latency;  /* stored in the outbox to confirmed by the broker */
    sh_hist delivery_latency; /* the sender's published_at to stored here */
    int64_t started_ms;
    sh_http *http;
};

/* ---- helpers ------------------------------------------------------------------------- */

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* logfmt lines on stderr (common/log.h), naming this agency; never personal data. */
static void s_log_event(const sh_agent *a, const char *level, const uint8_t *event_id,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void s_log_event(const sh_agent *a, const char *level, const uint8_t *event_id,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_logv(level[0] == 'e'   ? SH_LOG_ERROR
            : level[0] == 'w' ? SH_LOG_WARNING
                              : SH_LOG_INFO,
            a->cfg ? a->cfg->org : NULL, event_id, fmt, ap);
    va_end(ap);
}
#define s_log(a, level, ...) s_log_event(a, level, NULL, __VA_ARGS__)

static void s_audit(sh_agent *a, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                    const uint8_t *id, const uint8_t *child, const char *user, const char *peer,
                    const char *purpose, const char *rule, const char *detail)
{
    sh_audit_entry e = {.action = action,
                        .outcome = outcome,
                        .code = (uint16_t)code,
                        .event_id = id,
                        .child_ref = child,
                        .actor_org = a->cfg->org,
                        .actor_user = user,
                        .peer_org = peer,
                        .purpose = purpose,
                        .rule = rule,
                        .detail = detail};
    sh_error err;
    if (sh_audit_append(a->audit, t, &e, NULL, &err))
        s_log(a, "error", "audit append: %s", err.detail);
}

/* The blinded references of every identifier the envelope carries (at most 4). */
static int s_child_refs(sh_agent *a, const sh_envelope *e, uint8_t refs[4][32])
{
    int n = 0;
    const sh_child *c = e->child;
    if (!c) return 0;
    if (c->nhs_number[0] && !sh_store_blind(a->store, "nhs", c->nhs_number, refs[n])) n++;
    if (c->upn[0] && !sh_store_blind(a->store, "upn", c->upn, refs[n])) n++;
    if (c->la_child_id[0] && !sh_store_blind(a->store, "la", c->la_child_id, refs[n])) n++;
    if (c->mother_nhs_number[0] && !sh_store_blind(a->store, "nhs", c->mother_nhs_number, refs[n]))
        n++;
    return n;
}

static sh_err s_put_seq(sh_agent *a, sh_txn *t, const char *key, uint64_t v, sh_error *err)
{
    uint8_t b[8];
    sh_be64_put(b, v);
    return sh_txn_put(t, a->state, key, strlen(key), b, 8, 0, err);
}

/* Stores an event (sent or received) with its indexes, inside t; refs[0..nr) are the
 * child's blinded references (s_child_refs: the caller has them for its audit entry). */
static sh_err s_store_event(sh_agent *a, sh_txn *t, int direction, const char *peer,
                            const char *rule, uint8_t flags, const sh_envelope *e,
                            const uint8_t *raw, size_t len, const uint8_t (*refs)[32], int nr,
                            sh_error *err)
{
    size_t pl = strlen(peer), rl = strlen(rule), n = 1 + 8 + 1 + pl + 1 + rl + 1 + len;
    uint8_t *v = malloc(n), *p = v;
    if (!v) return sh_error_set(err, SH_E_NOMEM, "event");
    *p++ = (uint8_t)direction;
    sh_be64_put(p, (uint64_t)s_now());
    p += 8;
    *p++ = (uint8_t)pl;
    memcpy(p, peer, pl);
    p += pl;
    *p++ = (uint8_t)rl;
    memcpy(p, rule, rl);
    p += rl;
    *p++ = flags;
    memcpy(p, raw, len);
    const uint8_t *id = e->event_id.data;
    sh_err rc = sh_txn_put(t, a->events, id, 16, v, n, SH_PUT_NEW, err);
    free(v);
    if (rc) return rc;
    uint8_t key[48];
    for (int i = 0; i < nr && !rc; i++) {
        memcpy(key, refs[i], 32);
        memcpy(key + 32, id, 16);
        rc = sh_txn_put(t, a->by_child, key, 48, "", 0, 0, err);
    }
    if (!rc && e->correlation_id.len == 16) {
        memcpy(key, e->correlation_id.data, 16);
        memcpy(key + 16, id, 16);
        rc = sh_txn_put(t, a->by_thread, key, 32, "", 0, 0, err);
    }
    return rc;
}

typedef struct s_record {
    int direction;
    int64_t at_ms;
    char peer[SH_ORG_MAX + 1], rule[65];
    uint8_t flags;
    const uint8_t *env;
    size_t env_len;
} s_record;

static int s_parse_record(const uint8_t *v, size_t n, s_record *r)
{
    if (n < 12) return -1;
    r->direction = v[0];
    r->at_ms = (int64_t)sh_be64_get(v + 1);
    size_t pl = v[9];
    if (pl > SH_ORG_MAX || n < 11 + pl) return -1;
    memcpy(r->peer, v + 10, pl);
    r->peer[pl] = '\0';
    size_t rl = v[10 + pl];
    if (rl > 64 || n < 12 + pl + rl) return -1;
    memcpy(r->rule, v + 11 + pl, rl);
    r->rule[rl] = '\0';
    r->flags = v[11 + pl + rl];
    r->env = v + 12 + pl + rl;
    r->env_len = n - 12 - pl - rl;
    return 0;
}

/* ---- outbox and broker --------------------------------------------------------------- */

static int s_retryable(int code)
{
    return code == SH_E_MAP_FULL || code == SH_E_DISK_FULL || code == SH_E_UNAVAILABLE ||
           code == SH_E_NOMEM || code == SH_E_IO || code == SH_E_STORE;
}

static void s_drain(sh_agent *a)
{
    if (!a->connected || a->nflight >= WINDOW || s_now() < a->retry_ms) return;
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    uint8_t from[8];
    uint64_t next = a->nflight ? a->flight[a->nflight - 1].seq + 1 : 0;
    sh_be64_put(from, next);
    if (sh_txn_begin(a->store, 0, &t, &err)) return;
    if (sh_cursor_open(t, a->outbox, &c, &err) == SH_OK) {
        sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, from, 8, &kv, &err);
        for (; rc == SH_OK && a->nflight < WINDOW;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.vlen < 18) continue;
            if (sh_client_publish(a->broker, kv.val, kv.vlen) != SH_OK) {
                a->connected = 0; /* the broker is unreachable: retry after reconnecting */
                break;
            }
            s_flight *f = &a->flight[a->nflight++];
            f->seq = sh_be64_get(kv.key);
            memcpy(f->id, kv.val + 2, 16); /* field 1, length 16, then the id */
            f->sent_ms = s_now();
        }
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
}

static void s_count_refused(sh_agent *a, int code, const char *by)
{
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "code", sh_err_name((sh_err)code));
    sh_label(lab, sizeof lab, "by", by);
    sh_tally_add(&a->refused, lab, 1);
}

/* Counts a CONFIRM once recorded: its code, its latency, and the recipients it names as
 * denied (outcome lines "<org> deny <code> <rule>", docs/protocol.md). */
static void s_count_confirm(sh_agent *a, const sh_msg *m, int code, int64_t stored_ms)
{
    a->settled++;
    if (code) {
        s_count_refused(a, code, "broker");
        return;
    }
    a->accepted++;
    if (stored_ms) sh_hist_observe(&a->confirm_latency, (double)(s_now() - stored_ms) / 1e3);
    for (size_t i = 3; i < m->nframes; i++) {
        char line[160], org[16], rule[72];
        int dc = 0;
        snprintf(line, sizeof line, "%.*s", (int)m->len[i], (const char *)m->frame[i]);
        if (sscanf(line, "%15s deny %d %71s", org, &dc, rule) != 3) continue;
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "reason", sh_err_name((sh_err)dc));
        sh_label(lab, sizeof lab, "isp", rule);
        sh_tally_add(&a->denied, lab, 1);
    }
}

static void s_on_confirm(sh_agent *a, const sh_msg *m)
{
    if (m->nframes < 3 || m->len[0] != 16) return;
    unsigned k = 0;
    while (k < a->nflight && memcmp(a->flight[k].id, m->frame[0], 16) != 0)
        k++;
    if (k == a->nflight) return; /* an answer to a resend already settled */
    int code = sh_msg_code(m);
    if (s_retryable(code)) {
        s_log(a, "warning", "broker asked to retry (E%03d); the outbox keeps the event", code);
        a->nflight = 0; /* resend everything in flight, in order, in a second */
        a->retry_ms = s_now() + 1000;
        return;
    }
    uint64_t seq = a->flight[k].seq;
    memmove(&a->flight[k], &a->flight[k + 1], (a->nflight - k - 1) * sizeof a->flight[0]);
    a->nflight--;
    char text[4096];
    size_t used = 0;
    if (code == 0)
        used +=
            (size_t)snprintf(text, sizeof text, "%.*s", (int)m->len[2], (const char *)m->frame[2]);
    else
        used +=
            (size_t)snprintf(text, sizeof text, "refused E%03d %s: %.*s", code,
                             sh_err_name((sh_err)code), (int)m->len[2], (const char *)m->frame[2]);
    for (size_t i = 3; i < m->nframes && used < sizeof text - 1; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "\n%.*s", (int)m->len[i],
                                 (const char *)m->frame[i]);
    if (used >= sizeof text) used = sizeof text - 1;
    sh_txn *t = NULL;
    sh_error err;
    uint8_t key[8];
    sh_be64_put(key, seq);
    if (sh_txn_begin(a->store, 1, &t, &err)) return;
    sh_err rc = sh_txn_del(t, a->outbox, key, 8, &err);
    if (!rc) rc = sh_txn_put(t, a->outcome, m->frame[0], 16, text, used, 0, &err);
    if (!rc)
        s_audit(a, t, code == 0 ? SH_AUDIT_SEND : SH_AUDIT_REFUSE,
                code == 0 ? SH_AUDIT_OK : SH_AUDIT_DENIED, (sh_err)(code < 0 ? 0 : code),
                m->frame[0], NULL, "agent", "broker", NULL, NULL,
                code == 0 ? "accepted by the broker" : "refused by the broker");
    int64_t stored_ms = 0; /* when the event went into the outbox */
    sh_buf ev = {0};
    sh_error gerr;
    if (!rc && sh_txn_get(t, a->events, m->frame[0], 16, &ev, &gerr) == SH_OK && ev.len >= 9)
        stored_ms = (int64_t)sh_be64_get(ev.data + 1);
    sh_buf_free(&ev);
    if (rc || sh_txn_commit(&t, &err)) {
        sh_txn_abort(&t);
        s_log(a, "error", "recording a confirm: %s", err.detail);
        return;
    }
    if (code) s_log_event(a, "warning", m->frame[0], "the broker refused an event: E%03d", code);
    s_count_confirm(a, m, code, stored_ms);
}

/* Deliveries drained from the broker together are stored in one write transaction (group
 * commit: one fsync for the batch) and acknowledged together once it has committed. */
#define DELIVER_BATCH SH_ACK_MAX
typedef struct s_batch {
    sh_txn *t;
    uint64_t inbox_seq; /* the next arrival number inside t */
    size_t n;
    uint8_t ack[DELIVER_BATCH][16];
    uint64_t stored;    /* new events in t (not redeliveries) */
    uint64_t delivered; /* events of ours the DELIVERED receipts in t cover */
    sh_hist latency;    /* their delivery latency, counted if t commits */
} s_batch;

/* Commits the batch, then acknowledges each event in it; a failed commit acknowledges
 * nothing (the broker resends). */
static void s_flush(sh_agent *a, s_batch *bt)
{
    if (!bt->t) return;
    sh_error err;
    sh_err rc = s_put_seq(a, bt->t, "inbox_seq", bt->inbox_seq, &err);
    if (rc || sh_txn_commit(&bt->t, &err)) {
        sh_txn_abort(&bt->t);
        s_log(a, "error", "storing %zu deliveries: %s", bt->n, err.detail);
    } else {
        a->inbox_seq = bt->inbox_seq;
        a->received += bt->stored;
        a->delivered += bt->delivered;
        sh_hist_merge(&a->delivery_latency, &bt->latency);
        sh_client_ack_many(a->broker, (const uint8_t(*)[16])bt->ack, bt->n);
    }
    bt->t = NULL;
    bt->n = 0;
    bt->stored = bt->delivered = 0;
    memset(&bt->latency, 0, sizeof bt->latency);
}

static void s_on_deliver(sh_agent *a, const sh_msg *m, s_batch *bt)
{
    if (m->nframes != 5 || m->len[0] != 16 || m->len[1] > SH_ORG_MAX || m->len[2] > 64) return;
    char peer[SH_ORG_MAX + 1], rule[65];
    memcpy(peer, m->frame[1], m->len[1]);
    peer[m->len[1]] = '\0';
    memcpy(rule, m->frame[2], m->len[2]);
    rule[m->len[2]] = '\0';
    sh_envelope *e = NULL;
    sh_error err;
    if (sh_envelope_decode_minimised(m->frame[4], m->len[4], &e, &err)) {
        s_log_event(a, "error", m->frame[0], "the broker delivered an invalid event: %s",
                    err.detail);
        return; /* not acknowledged: it stays queued at the broker for inspection */
    }
    sh_buf b = {0};
    if (!bt->t) {
        if (sh_txn_begin(a->store, 1, &bt->t, &err)) goto out;
        bt->inbox_seq = a->inbox_seq;
    }
    sh_err rc = sh_txn_get(bt->t, a->events, m->frame[0], 16, &b, &err);
    if (rc == SH_OK) { /* a redelivery: already durable here (or in this batch) */
        memcpy(bt->ack[bt->n++], m->frame[0], 16);
        goto out;
    }
    uint8_t seqkey[8], refs[4][32];
    int nr = s_child_refs(a, e, refs);
    rc = s_store_event(a, bt->t, DIR_RECEIVED, peer, rule, m->len[3] ? 1 : 0, e, m->frame[4],
                       m->len[4], (const uint8_t(*)[32])refs, nr, &err);
    sh_be64_put(seqkey, bt->inbox_seq);
    if (!rc) rc = sh_txn_put(bt->t, a->inbox, seqkey, 8, m->frame[0], 16, 0, &err);
    if (!rc)
        s_audit(a, bt->t, SH_AUDIT_RECEIVE, SH_AUDIT_OK, 0, m->frame[0], nr ? refs[0] : NULL,
                "agent", peer, NULL, rule, sh_event_type_name(e->event_type));
    if (rc) {
        /* the transaction cannot go on: none of the batch is acknowledged, all is resent */
        s_log(a, "error", "storing a delivery: %s", err.detail);
        sh_txn_abort(&bt->t);
        bt->n = 0;
        bt->stored = bt->delivered = 0;
        memset(&bt->latency, 0, sizeof bt->latency);
        goto out;
    }
    bt->inbox_seq++;
    bt->stored++;
    if (e->event_type == ET(DELIVERY_RECEIPT) && e->delivery_receipt &&
        e->delivery_receipt->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED)
        bt->delivered += 1 + e->delivery_receipt->n_more_event_ids; /* one receipt, many events */
    if (e->published_at_ms > 0)
        sh_hist_observe(&bt->latency, (double)(s_now() - e->published_at_ms) / 1e3);
    memcpy(bt->ack[bt->n++], m->frame[0], 16);
out:
    if (bt->n == DELIVER_BATCH) s_flush(a, bt);
    sh_buf_free(&b);
    sh_envelope_free(e);
}

/* ---- witnessing ---------------------------------------------------------------------- */

/* Checkpoints the audit head if entries were added since the last checkpoint, then sends the
 * newest checkpoint to the broker unless it already holds it (docs/audit.md). */
static void s_witness(sh_agent *a)
{
    sh_txn *t = NULL;
    sh_error err;
    uint8_t cp[SH_AUDIT_CP_BYTES], head[SH_MAC_BYTES];
    uint64_t head_seq = 0, cp_seq = 0;
    a->witness_ms = s_now();
    if (sh_txn_begin(a->store, 1, &t, &err)) return;
    sh_err rc = sh_audit_head(a->audit, t, &head_seq, head, &err);
    sh_err cprc = rc ? rc : sh_audit_last_checkpoint(a->audit, t, cp, &cp_seq, &err);
    if (!rc && head_seq > 0 && (cprc == SH_E_NOT_FOUND || (!cprc && cp_seq < head_seq))) {
        if (sh_audit_checkpoint(a->audit, t, &err) || sh_txn_commit(&t, &err)) {
            s_log(a, "error", "audit checkpoint: %s", err.detail);
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

static void s_on_witnessed(sh_agent *a, const sh_msg *m)
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
    s_log(a, "error", "the broker refused this store's audit checkpoint %s: E%03d %.*s", seq, code,
          (int)(m->len[2] < 200 ? m->len[2] : 200), (const char *)m->frame[2]);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err) == SH_OK) {
        s_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_FAILED, (sh_err)code, NULL, NULL, "agent", NULL,
                NULL, NULL, "the broker refused this store's audit checkpoint");
        if (sh_txn_commit(&t, &err)) s_log(a, "error", "audit: %s", err.detail);
    }
    a->witnessed_seq = UINT64_MAX; /* do not resend: an operator must look at this store */
}

static void s_broker_io(sh_agent *a)
{
    sh_msg m;
    s_batch bt = {0};
    while (sh_client_recv(a->broker, 0, &m) == SH_OK) {
        a->heard_ms = s_now();
        if (strcmp(m.command, "DELIVER") == 0) {
            s_on_deliver(a, &m, &bt);
            continue;
        }
        s_flush(a, &bt); /* the other handlers write in their own transactions */
        if (strcmp(m.command, "READY") == 0) {
            a->connected = 1;
            a->nflight = 0;    /* resend what was in flight: the broker dedupes */
            a->witness_ms = 0; /* and offer the newest audit checkpoint */
            s_log(a, "info", "connected to the broker");
        } else if (strcmp(m.command, "PONG") == 0) {
            if (a->connected && m.nframes == 1 && m.len[0] == 5 &&
                !memcmp(m.frame[0], "hello", 5)) {
                /* the broker restarted or forgot us: say HELLO again, deliveries resume */
                a->connected = 0;
                a->hello_ms = 0;
                s_log(a, "warning", "the broker has no session for us; saying HELLO again");
            }
        } else if (strcmp(m.command, "WITNESSED") == 0) {
            s_on_witnessed(a, &m);
        } else if (strcmp(m.command, "CONFIRM") == 0) {
            s_on_confirm(a, &m);
        } else if (strcmp(m.command, "ERROR") == 0) {
            s_log(a, "error", "broker error E%03d", sh_msg_code(&m));
        }
    }
    s_flush(a, &bt);
}

static void s_timers(sh_agent *a)
{
    int64_t now = s_now();
    int64_t hb = a->cfg->heartbeat_ms ? a->cfg->heartbeat_ms : 2000;
    if (a->connected && now - a->heard_ms > 3 * hb) {
        a->connected = 0;
        a->nflight = 0;
        s_log(a, "warning", "broker silent; working offline, publishes wait in the outbox");
    }
    if (!a->connected && now - a->hello_ms >= hb / 2) {
        a->hello_ms = now;
        sh_client_hello(a->broker, a->cfg->subscriptions ? a->cfg->subscriptions : "*");
    }
    if (a->connected && now - a->ping_ms >= hb) {
        a->ping_ms = now;
        if (sh_client_ping(a->broker)) a->connected = 0;
    }
    int64_t every = a->cfg->witness_ms ? a->cfg->witness_ms : 10000;
    if (a->connected && now - a->witness_ms >= every) s_witness(a);
    for (unsigned i = 0; i < a->nflight; i++)
        if (now - a->flight[i].sent_ms > 10 * hb) { /* no CONFIRM: resend from here */
            a->nflight = i;
            break;
        }
}

/* ---- local requests ------------------------------------------------------------------ */

static json_object *s_error_json(sh_err code, const char *detail)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "code", json_object_new_int(code));
    json_object_object_add(o, "error", json_object_new_string(sh_err_name(code)));
    json_object_object_add(o, "message", json_object_new_string(sh_err_message(code)));
    json_object_object_add(o, "detail", json_object_new_string(detail ? detail : ""));
    return o;
}

static json_object *s_ok(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

static const char *s_str(json_object *req, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Reads are audited with who and why: both must be given, as clean short text. */
static json_object *s_require_reader(json_object *req, const char **user, const char **purpose)
{
    *user = s_str(req, "user");
    *purpose = s_str(req, "purpose");
    if (!*user || !**user || strlen(*user) > 64 || sh_text_check(*user))
        return s_error_json(SH_E_MISSING_FIELD, "user: who is reading (1-64 characters)");
    if (!*purpose || !**purpose || strlen(*purpose) > 64 || sh_text_check(*purpose))
        return s_error_json(SH_E_MISSING_FIELD, "purpose: why they are reading (1-64 characters)");
    return NULL;
}

/* Validates, stores and queues one envelope built locally. */
static sh_err s_publish_env(sh_agent *a, sh_envelope *e, const char *user, const char *purpose,
                            sh_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_err rc = sh_envelope_encode(e, &buf, &len, err);
    if (rc) return rc;
    sh_txn *t = NULL;
    if ((rc = sh_txn_begin(a->store, 1, &t, err))) {
        free(buf);
        return rc;
    }
    uint8_t key[8], refs[4][32];
    int nr = s_child_refs(a, e, refs);
    sh_be64_put(key, a->outbox_seq);
    rc = s_store_event(a, t, DIR_SENT, a->cfg->org, "", 0, e, buf, len, (const uint8_t(*)[32])refs,
                       nr, err);
    if (rc == SH_E_EXISTS) sh_error_set(err, rc, "event_id: already used here");
    if (!rc) rc = sh_txn_put(t, a->outbox, key, 8, buf, len, SH_PUT_NEW, err);
    if (!rc) rc = s_put_seq(a, t, "outbox_seq", a->outbox_seq + 1, err);
    if (!rc)
        s_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, e->event_id.data, nr ? refs[0] : NULL, user,
                NULL, purpose, NULL, sh_event_type_name(e->event_type));
    free(buf);
    if (rc) {
        sh_txn_abort(&t);
        return rc;
    }
    if ((rc = sh_txn_commit(&t, err))) return rc;
    a->outbox_seq++;
    a->queued++;
    s_drain(a);
    return SH_OK;
}

/* Fills what the agent knows: id, version, source, times. */
static sh_err s_complete(sh_agent *a, sh_envelope *e, uint8_t idbuf[16], sh_error *err)
{
    if (e->event_id.len == 0) {
        if (sh_event_id_new(idbuf)) return sh_error_set(err, SH_E_IO, "event id");
        e->event_id.data = malloc(16);
        if (!e->event_id.data) return sh_error_set(err, SH_E_NOMEM, "event id");
        memcpy(e->event_id.data, idbuf, 16);
        e->event_id.len = 16;
    }
    if (!e->schema_version) e->schema_version = SH_SCHEMA_VERSION;
    if (!e->source_org || !e->source_org[0]) {
        if (e->source_org != protobuf_c_empty_string) free(e->source_org);
        e->source_org = strdup(a->cfg->org);
        if (!e->source_org) return sh_error_set(err, SH_E_NOMEM, "source");
    } else if (strcmp(e->source_org, a->cfg->org) != 0) {
        return sh_error_set(err, SH_E_SPOOFED_SOURCE, "source_org: this agent is %s", a->cfg->org);
    }
    int64_t now = s_now();
    if (!e->published_at_ms) e->published_at_ms = now;
    if (!e->occurred_at_ms) e->occurred_at_ms = now;
    return SH_OK;
}

/* CP-IS: is there a current child-protection or looked-after flag for this child? */
static int s_flag_for(sh_agent *a, sh_txn *t, const uint8_t ref[32], int *flag, char *la,
                      size_t lacap);

static json_object *s_op_publish(sh_agent *a, json_object *req)
{
    const char *user = s_str(req, "user"), *purpose = s_str(req, "purpose");
    json_object *ev;
    if (!user || !*user) return s_error_json(SH_E_MISSING_FIELD, "user: who is publishing");
    if (!json_object_object_get_ex(req, "event", &ev))
        return s_error_json(SH_E_MISSING_FIELD, "event");
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    ProtobufCMessage *m = NULL;
    sh_error err = {0};
    sh_err rc =
        sh_json_to_message(text, strlen(text), &sharehub__v1__envelope__descriptor, &m, &err);
    if (rc) return s_error_json(rc, err.detail);
    sh_envelope *e = (sh_envelope *)m;
    uint8_t id[16];
    json_object *out = NULL;
    if ((rc = s_complete(a, e, id, &err)) || (rc = s_publish_env(a, e, user, purpose, &err))) {
        out = s_error_json(rc, err.detail);
        goto done;
    }
    char idt[SH_EVENT_ID_STR];
    out = s_ok();
    json_object_object_add(out, "event_id",
                           json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
    json_object_object_add(out, "status", json_object_new_string(a->connected ? "sent" : "queued"));

    /* Health, CP-IS: an unscheduled-care attendance of a flagged child notifies its LA */
    if (a->cfg->role == ROLE_HEALTH && e->event_type == ET(UNSCHEDULED_CARE_ATTENDANCE) &&
        e->child && e->child->nhs_number[0]) {
        uint8_t ref[32];
        int flag = 0;
        char la[8] = "";
        sh_txn *t = NULL;
        if (!sh_store_blind(a->store, "nhs", e->child->nhs_number, ref) &&
            !sh_txn_begin(a->store, 0, &t, &err)) {
            s_flag_for(a, t, ref, &flag, la, sizeof la);
            sh_txn_abort(&t);
        }
        if (flag) {
            Sharehub__V1__Envelope n = SHAREHUB__V1__ENVELOPE__INIT;
            Sharehub__V1__Child c = SHAREHUB__V1__CHILD__INIT;
            Sharehub__V1__LawfulBasis lb = SHAREHUB__V1__LAWFUL_BASIS__INIT;
            Sharehub__V1__AccessNotification an = SHAREHUB__V1__ACCESS_NOTIFICATION__INIT;
            uint8_t nid[16];
            if (sh_event_id_new(nid) == SH_OK) {
                n.event_id = (ProtobufCBinaryData){16, nid};
                n.schema_version = SH_SCHEMA_VERSION;
                n.event_type = ET(ACCESS_NOTIFICATION);
                n.source_org = a->cfg->org;
                n.occurred_at_ms = n.published_at_ms = s_now();
                c.nhs_number = e->child->nhs_number;
                c.date_of_birth = e->child->date_of_birth;
                c.responsible_la = la;
                n.child = &c;
                n.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_SAFEGUARDING;
                lb.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
                lb.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2H_HEALTH_SOCIAL_CARE;
                lb.dpa_schedule1_paragraph = 2;
                n.lawful_basis = &lb;
                n.consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_REQUIRED;
                n.correlation_id = e->correlation_id;
                an.attendance_event_id = e->event_id;
                an.site_code = e->unscheduled_care_attendance->site_code;
                an.setting = e->unscheduled_care_attendance->setting;
                an.accessed_at_ms = n.published_at_ms;
                an.flag = flag;
                n.body_case = SHAREHUB__V1__ENVELOPE__BODY_ACCESS_NOTIFICATION;
                n.access_notification = &an;
                if (s_publish_env(a, &n, "cp-is", "safeguarding", &err) == SH_OK)
                    json_object_object_add(out, "access_notification",
                                           json_object_new_string(sh_event_id_format(nid, idt)));
                else
                    s_log(a, "error", "access notification not queued: %s", err.detail);
            }
        }
    }
done:
    protobuf_c_message_free_unpacked(m, NULL);
    return out;
}

/* A stored event that cannot be read back as it was written: its seal fails (the value was
 * altered on disk, or moved from another key), or it no longer parses. Reported to the reader,
 * logged and audited; nothing of it is returned. */
static json_object *s_damaged(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_err why,
                              const char *user, const char *purpose)
{
    char idt[SH_EVENT_ID_STR];
    sh_event_id_format(id, idt);
    s_log_event(a, "error", id, "event damaged in this store (E%03d %s): not returned", why,
                sh_err_name(why));
    s_audit(a, t, SH_AUDIT_READ, SH_AUDIT_FAILED, why, id, NULL, user, NULL, purpose, NULL,
            "stored event damaged: not returned");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event_id", json_object_new_string(idt));
    json_object_object_add(o, "damaged", json_object_new_boolean(1));
    json_object_object_add(o, "code", json_object_new_int(why));
    json_object_object_add(o, "error", json_object_new_string(sh_err_name(why)));
    json_object_object_add(
        o, "message",
        json_object_new_string("this event fails its integrity check in the agency's store "
                               "(altered or moved on disk); nothing of it is shown: restore the "
                               "store from a backup and ask the sender to resend"));
    return o;
}

/* One stored event as JSON: its metadata and (with full) the event itself. NULL with *why set
 * when it is not there (SH_E_NOT_FOUND) or cannot be read back (a damage code). */
static json_object *s_event_json(sh_agent *a, sh_txn *t, const uint8_t id[16], int full,
                                 sh_envelope **env_out, sh_err *why)
{
    sh_buf b = {0};
    sh_error err;
    s_record r;
    json_object *o = NULL;
    if (env_out) *env_out = NULL;
    sh_err rc = sh_txn_get(t, a->events, id, 16, &b, &err);
    if (!rc && s_parse_record(b.data, b.len, &r)) rc = SH_E_STORE_CORRUPT;
    if (rc) {
        sh_buf_free(&b);
        *why = rc;
        return NULL;
    }
    sh_envelope *e = NULL;
    *why = SH_E_STORE_CORRUPT;
    if (sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK) {
        char idt[SH_EVENT_ID_STR];
        o = json_object_new_object();
        json_object_object_add(o, "event_id", json_object_new_string(sh_event_id_format(id, idt)));
        json_object_object_add(o, "type",
                               json_object_new_string(sh_event_type_name(e->event_type)));
        json_object_object_add(
            o, "direction", json_object_new_string(r.direction == DIR_SENT ? "sent" : "received"));
        json_object_object_add(o, "peer", json_object_new_string(r.peer));
        if (r.rule[0]) json_object_object_add(o, "rule", json_object_new_string(r.rule));
        if (r.flags) json_object_object_add(o, "overdue", json_object_new_boolean(1));
        json_object_object_add(o, "stored_at_ms", json_object_new_int64(r.at_ms));
        sh_buf ob = {0};
        if (sh_txn_get(t, a->outcome, id, 16, &ob, &err) == SH_OK)
            json_object_object_add(o, "broker",
                                   json_object_new_string_len((const char *)ob.data, (int)ob.len));
        else if (r.direction == DIR_SENT)
            json_object_object_add(o, "broker", json_object_new_string("waiting in the outbox"));
        sh_buf_free(&ob);
        char *ej = sh_json_from_message(&e->base, 0);
        json_object *ev = ej ? json_tokener_parse(ej) : NULL;
        free(ej);
        if (!full && ev) { /* a summary: who it is about and the body, not everything */
            json_object *keep = json_object_new_object(), *v;
            if (json_object_object_get_ex(ev, "child", &v))
                json_object_object_add(keep, "child", json_object_get(v));
            if (json_object_object_get_ex(ev, "level_of_need", &v))
                json_object_object_add(keep, "level_of_need", json_object_get(v));
            const ProtobufCFieldDescriptor *bf = protobuf_c_message_descriptor_get_field(
                &sharehub__v1__envelope__descriptor, (unsigned)e->body_case);
            if (bf && json_object_object_get_ex(ev, bf->name, &v))
                json_object_object_add(keep, bf->name, json_object_get(v));
            json_object_put(ev);
            ev = keep;
        }
        if (ev) json_object_object_add(o, "event", ev);
        if (env_out)
            *env_out = e;
        else
            sh_envelope_free(e);
    }
    sh_buf_free(&b);
    return o;
}

static json_object *s_op_inbox(sh_agent *a, json_object *req)
{
    const char *user, *purpose;
    json_object *bad = s_require_reader(req, &user, &purpose), *v;
    if (bad) return bad;
    uint64_t since = 0;
    int limit = 100;
    if (json_object_object_get_ex(req, "since", &v)) since = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(req, "limit", &v)) limit = json_object_get_int(v);
    if (limit <= 0 || limit > 1000) limit = 100;
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 1, &t, &err)) return s_error_json(err.code, err.detail);
    json_object *out = s_ok(), *items = json_object_new_array();
    uint8_t from[8];
    sh_be64_put(from, since);
    uint64_t next = since;
    if (sh_cursor_open(t, a->inbox, &c, &err) == SH_OK) {
        int n = 0;
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, from, 8, &kv, &err);
             rc == SH_OK && n < limit; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.vlen != 16) continue;
            uint8_t id[16];
            memcpy(id, kv.val, 16);
            uint64_t seq = sh_be64_get(kv.key);
            sh_envelope *e = NULL;
            sh_err why;
            json_object *item = s_event_json(a, t, id, 0, &e, &why);
            if (!item && why == SH_E_NOT_FOUND) continue;
            if (!item) {
                item = s_damaged(a, t, id, why, user, purpose);
                json_object_object_add(item, "seq", json_object_new_int64((int64_t)seq));
                json_object_array_add(items, item);
                next = seq + 1;
                n++;
                continue;
            }
            json_object_object_add(item, "seq", json_object_new_int64((int64_t)seq));
            json_object_array_add(items, item);
            uint8_t refs[4][32];
            int nr = e ? s_child_refs(a, e, refs) : 0;
            s_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user, NULL,
                    purpose, NULL, "inbox");
            sh_envelope_free(e);
            next = seq + 1;
            n++;
        }
        sh_cursor_close(&c);
    }
    if (sh_txn_commit(&t, &err)) { /* the reads could not be audited: show nothing */
        json_object_put(out);
        json_object_put(items);
        return s_error_json(err.code, err.detail);
    }
    json_object_object_add(out, "items", items);
    json_object_object_add(out, "next", json_object_new_int64((int64_t)next));
    return out;
}

static json_object *s_op_show(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *ids = s_str(req, "event_id");
    json_object *bad = s_require_reader(req, &user, &purpose);
    if (bad) return bad;
    uint8_t id[16];
    if (sh_event_id_parse(ids, id)) return s_error_json(SH_E_BAD_EVENT_ID, "event_id");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return s_error_json(err.code, err.detail);
    sh_envelope *e = NULL;
    sh_err why;
    json_object *item = s_event_json(a, t, id, 1, &e, &why);
    if (!item && why == SH_E_NOT_FOUND) {
        sh_txn_abort(&t);
        return s_error_json(SH_E_NOT_FOUND, "no such event at this agency");
    }
    if (!item) { /* the failed read is audited; the reader gets the damage, not the data */
        json_object_put(s_damaged(a, t, id, why, user, purpose));
        sh_txn_commit(&t, &err);
        return s_error_json(why, "this event fails its integrity check in the agency's store "
                                 "(altered or moved on disk); nothing of it is shown");
    }
    uint8_t refs[4][32];
    int nr = e ? s_child_refs(a, e, refs) : 0;
    s_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user, NULL, purpose, NULL,
            "event");
    sh_envelope_free(e);
    if (sh_txn_commit(&t, &err)) {
        json_object_put(item);
        return s_error_json(err.code, err.detail);
    }
    json_object *out = s_ok();
    json_object_object_add(out, "item", item);
    return out;
}

static int s_flag_for(sh_agent *a, sh_txn *t, const uint8_t ref[32], int *flag, char *la,
                      size_t lacap)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    int64_t best_cp = -1, best_lac = -1;
    int cp_on = 0, lac_on = 0, pre_birth = 0;
    *flag = 0;
    if (sh_cursor_open(t, a->by_child, &c, &err)) return 0;
    for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, 32, &kv, &err);
         rc == SH_OK && kv.klen == 48 && memcmp(kv.key, ref, 32) == 0;
         rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        sh_buf b = {0};
        s_record r;
        sh_envelope *e = NULL;
        if (sh_txn_get(t, a->events, kv.key + 32, 16, &b, &err) == SH_OK &&
            s_parse_record(b.data, b.len, &r) == 0 && r.direction == DIR_RECEIVED &&
            sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK) {
            /* the latest status of each plan kind counts */
            if (e->event_type == ET(CP_PLAN_STATUS) && e->occurred_at_ms > best_cp) {
                best_cp = e->occurred_at_ms;
                cp_on = e->cp_plan_status->status == SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                pre_birth = e->cp_plan_status->pre_birth;
                if (e->cp_plan_status->responsible_la)
                    snprintf(la, lacap, "%s", e->cp_plan_status->responsible_la->la_code);
            } else if (e->event_type == ET(LOOKED_AFTER_STATUS) && e->occurred_at_ms > best_lac) {
                best_lac = e->occurred_at_ms;
                lac_on = e->looked_after_status->status ==
                         SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                if (e->looked_after_status->responsible_la && !cp_on)
                    snprintf(la, lacap, "%s", e->looked_after_status->responsible_la->la_code);
            }
        }
        sh_envelope_free(e);
        sh_buf_free(&b);
    }
    sh_cursor_close(&c);
    if (cp_on)
        *flag = pre_birth ? SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_PRE_BIRTH_PLAN
                          : SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_CHILD_PROTECTION_PLAN;
    else if (lac_on)
        *flag = SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_LOOKED_AFTER;
    return *flag != 0;
}

static int s_cmp_arrival(const void *x, const void *y)
{
    int64_t a = json_object_get_int64(json_object_object_get(*(json_object *const *)x, "at"));
    int64_t b = json_object_get_int64(json_object_object_get(*(json_object *const *)y, "at"));
    return a < b ? 1 : a > b ? -1 : 0;
}

static json_object *s_op_child(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *id = s_str(req, "id");
    json_object *bad = s_require_reader(req, &user, &purpose);
    if (bad) return bad;
    char canon[40];
    const char *kind = id ? sh_ident_kind(id, canon, sizeof canon) : NULL;
    if (!kind)
        return s_error_json(SH_E_INVAL, "id: an NHS number, a UPN or a local-authority child id");
    uint8_t ref[32];
    if (sh_store_blind(a->store, kind, canon, ref)) return s_error_json(SH_E_CRYPTO, "blind");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 1, &t, &err)) return s_error_json(err.code, err.detail);
    json_object *out = s_ok(), *items = json_object_new_array(), *att = json_object_new_array();
    if (sh_cursor_open(t, a->by_child, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, 32, &kv, &err);
             rc == SH_OK && kv.klen == 48 && memcmp(kv.key, ref, 32) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            uint8_t eid[16];
            memcpy(eid, kv.key + 32, 16);
            sh_envelope *e = NULL;
            sh_err why;
            json_object *item = s_event_json(a, t, eid, 1, &e, &why);
            if (!item && why != SH_E_NOT_FOUND)
                json_object_array_add(items, s_damaged(a, t, eid, why, user, purpose));
            if (!item) continue;
            if (e && e->event_type == ET(UNSCHEDULED_CARE_ATTENDANCE)) {
                json_object *x = json_object_new_object();
                json_object_object_add(
                    x, "at", json_object_new_int64(e->unscheduled_care_attendance->arrived_at_ms));
                json_object_object_add(
                    x, "site", json_object_new_string(e->unscheduled_care_attendance->site_code));
                json_object_object_add(x, "event_id",
                                       json_object_get(json_object_object_get(item, "event_id")));
                json_object_array_add(att, x);
            }
            json_object_array_add(items, item);
            s_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, eid, ref, user, NULL, purpose, NULL,
                    "child record");
            sh_envelope_free(e);
        }
        sh_cursor_close(&c);
    }
    int flag = 0;
    char la[8] = "";
    s_flag_for(a, t, ref, &flag, la, sizeof la);
    if (sh_txn_commit(&t, &err)) {
        json_object_put(out);
        json_object_put(items);
        json_object_put(att);
        return s_error_json(err.code, err.detail);
    }
    json_object_array_sort(att, s_cmp_arrival);
    while (json_object_array_length(att) > ATTENDANCES_SHOWN)
        json_object_array_del_idx(att, ATTENDANCES_SHOWN, 1);
    static const char *const flags[] = {"none", "child_protection_plan", "looked_after",
                                        "pre_birth_plan"};
    json_object_object_add(out, "flag", json_object_new_string(flags[flag]));
    if (flag) json_object_object_add(out, "responsible_la", json_object_new_string(la));
    json_object_object_add(out, "attendances", att);
    json_object_object_add(out, "events", items);
    return out;
}

static json_object *s_op_triage(sh_agent *a, json_object *req)
{
    if (a->cfg->role != ROLE_SOCIAL_CARE)
        return s_error_json(SH_E_INVAL, "triage is for the Children and Families Hub");
    const char *user = s_str(req, "user"), *ref = s_str(req, "referral_event_id");
    const char *outcome = s_str(req, "outcome"), *rationale = s_str(req, "rationale");
    json_object *v;
    int level = json_object_object_get_ex(req, "level", &v) ? json_object_get_int(v) : 0;
    if (!user || !*user) return s_error_json(SH_E_MISSING_FIELD, "user");
    if (!ref || !outcome || !rationale || !*rationale)
        return s_error_json(SH_E_MISSING_FIELD, "referral_event_id, outcome and rationale");
    if (level < 1 || level > 4) return s_error_json(SH_E_BAD_FIELD, "level: want 1-4");
    /* the referral as received here gives the child and the thread */
    uint8_t rid[16];
    sh_error err;
    if (sh_event_id_parse(ref, rid)) return s_error_json(SH_E_BAD_EVENT_ID, "referral_event_id");
    sh_txn *t = NULL;
    sh_buf b = {0};
    s_record r;
    sh_envelope *src = NULL;
    if (sh_txn_begin(a->store, 0, &t, &err)) return s_error_json(err.code, err.detail);
    sh_err rc = sh_txn_get(t, a->events, rid, 16, &b, &err);
    if (!rc && (s_parse_record(b.data, b.len, &r) ||
                sh_envelope_decode_minimised(r.env, r.env_len, &src, &err)))
        rc = SH_E_STORE_CORRUPT;
    sh_txn_abort(&t);
    if (rc) {
        sh_buf_free(&b);
        return s_error_json(rc == SH_E_NOT_FOUND ? SH_E_UNKNOWN_EVENT : rc,
                            "referral_event_id: no such referral at the hub");
    }
    json_object *j = json_object_new_object(), *hd = json_object_new_object();
    json_object *rj = json_object_new_object();
    json_object_object_add(hd, "referral_event_id", json_object_new_string(ref));
    json_object_object_add(hd, "level_of_need", json_object_new_int(level));
    json_object_object_add(hd, "outcome", json_object_new_string(outcome));
    json_object_object_add(hd, "rationale", json_object_new_string(rationale));
    json_object_object_add(hd, "decided_at_ms", json_object_new_int64(s_now()));
    json_object_object_add(rj, "org_code", json_object_new_string(a->cfg->org));
    json_object_object_add(rj, "role", json_object_new_string("Hub practitioner"));
    json_object_object_add(rj, "name", json_object_new_string(user));
    json_object_object_add(hd, "decided_by", rj);
    json_object_object_add(j, "event_type", json_object_new_string("hub_decision"));
    json_object_object_add(j, "level_of_need", json_object_new_int(level));
    json_object_object_add(j, "purpose",
                           json_object_new_string(level >= 3 ? "safeguarding" : "early_help"));
    json_object_object_add(j, "consent", json_object_new_string("not_required"));
    json_object *lb = json_object_new_object();
    json_object_object_add(lb, "article6", json_object_new_string("e_public_task"));
    json_object_object_add(lb, "article9",
                           json_object_new_string("2g_substantial_public_interest"));
    json_object_object_add(lb, "dpa_schedule1_paragraph", json_object_new_int(18));
    json_object_object_add(j, "lawful_basis", lb);
    /* the thread: the referral's own thread, or the referral itself */
    char th[SH_EVENT_ID_STR];
    json_object_object_add(
        j, "correlation_id",
        json_object_new_string(sh_event_id_format(
            src->correlation_id.len == 16 ? src->correlation_id.data : rid, th)));
    json_object_object_add(j, "hub_decision", hd);
    char *cj = src->child ? sh_json_from_message(&src->child->base, 0) : NULL;
    if (cj) json_object_object_add(j, "child", json_tokener_parse(cj));
    free(cj);
    sh_envelope_free(src);
    sh_buf_free(&b);
    json_object *wrap = json_object_new_object();
    json_object_object_add(wrap, "event", j);
    json_object_object_add(wrap, "user", json_object_new_string(user));
    json_object_object_add(wrap, "purpose", json_object_new_string("triage"));
    json_object *out = s_op_publish(a, wrap);
    json_object_put(wrap);
    return out;
}

static json_object *s_op_status(sh_agent *a)
{
    static const char *const roles[] = {"", "education", "health", "social_care"};
    json_object *o = s_ok();
    json_object_object_add(o, "org", json_object_new_string(a->cfg->org));
    json_object_object_add(o, "role", json_object_new_string(roles[a->cfg->role]));
    json_object_object_add(o, "connected", json_object_new_boolean(a->connected));
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    int64_t waiting = 0;
    if (sh_txn_begin(a->store, 0, &t, &err) == SH_OK) {
        if (sh_cursor_open(t, a->outbox, &c, &err) == SH_OK) {
            for (sh_err rc = sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
                 rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err))
                waiting++;
            sh_cursor_close(&c);
        }
        sh_txn_abort(&t);
    }
    json_object_object_add(o, "outbox", json_object_new_int64(waiting));
    json_object_object_add(o, "received", json_object_new_int64((int64_t)a->inbox_seq));
    return o;
}

static void s_local_io(sh_agent *a)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, a->rep, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    json_object *out = NULL, *req = NULL;
    size_t len = zmq_msg_size(&msg);
    if (zmq_msg_more(&msg)) {
        out = s_error_json(SH_E_PROTOCOL, "one frame of JSON per request");
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, a->rep, 0) >= 0)
            ;
    } else if (len > 1024 * 1024) {
        out = s_error_json(SH_E_TOO_LARGE, "request over 1 MiB");
    } else {
        json_tokener *tok = json_tokener_new_ex(32);
        req = tok ? json_tokener_parse_ex(tok, zmq_msg_data(&msg), (int)len) : NULL;
        if (tok) json_tokener_free(tok);
        const char *op = req ? s_str(req, "op") : NULL;
        if (!req || !json_object_is_type(req, json_type_object))
            out = s_error_json(SH_E_MALFORMED, "request: want a JSON object");
        else if (!op)
            out = s_error_json(SH_E_MISSING_FIELD, "op");
        else if (strcmp(op, "status") == 0)
            out = s_op_status(a);
        else if (strcmp(op, "publish") == 0)
            out = s_op_publish(a, req);
        else if (strcmp(op, "inbox") == 0)
            out = s_op_inbox(a, req);
        else if (strcmp(op, "show") == 0)
            out = s_op_show(a, req);
        else if (strcmp(op, "child") == 0)
            out = s_op_child(a, req);
        else if (strcmp(op, "triage") == 0)
            out = s_op_triage(a, req);
        else
            out = s_error_json(SH_E_INVAL, "op: status, publish, inbox, show, child or triage");
    }
    zmq_msg_close(&msg);
    json_object *ok, *code;
    if (json_object_object_get_ex(out, "ok", &ok) && !json_object_get_boolean(ok) &&
        json_object_object_get_ex(out, "code", &code))
        s_count_refused(a, json_object_get_int(code), "local");
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    zmq_send(a->rep, text, strlen(text), 0);
    json_object_put(out);
    if (req) json_object_put(req);
}

/* ---- metrics and health (docs/operations.md#metrics) -------------------------------- */

/* When the oldest event still in the outbox was stored; 0 if none. */
static int64_t s_outbox_oldest_ms(sh_agent *a, sh_txn *t)
{
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_error err;
    sh_buf ev = {0};
    int64_t at = 0;
    if (sh_cursor_open(t, a->outbox, &c, &err)) return 0;
    if (sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err) == SH_OK && kv.vlen >= 18 &&
        sh_txn_get(t, a->events, kv.val + 2, 16, &ev, &err) == SH_OK && ev.len >= 9)
        at = (int64_t)sh_be64_get(ev.data + 1);
    sh_buf_free(&ev);
    sh_cursor_close(&c);
    return at;
}

#define M(name) "sharehub_agent_" name

static int s_metrics(void *ctx, FILE *f)
{
    sh_agent *a = ctx;
    char lab[SH_LABELS_MAX] = "";
    int e = 0;
    e |= sh_prom_family(f, "sharehub_build_info", "gauge", "The running build.");
    sh_label(lab, sizeof lab, "component", "agent");
    sh_label(lab, sizeof lab, "org", a->cfg->org);
    sh_label(lab, sizeof lab, "version", SHAREHUB_VERSION);
    e |= sh_prom_sample(f, "sharehub_build_info", lab, 1);
    e |= sh_prom_value(f, M("start_time_seconds"), "gauge", "When the agent started (Unix time).",
                       (double)(a->started_ms / 1000));
    e |= sh_prom_value(f, M("events_published_total"), "counter",
                       "Events stored in the outbox for the broker (publishes and CP-IS access "
                       "notifications).",
                       (double)a->queued);
    e |= sh_prom_value(f, M("events_confirmed_total"), "counter",
                       "Events the broker accepted (confirmed durable and routed).",
                       (double)a->accepted);
    e |= sh_prom_value(f, M("events_received_total"), "counter",
                       "Deliveries from the broker stored here (redeliveries not counted).",
                       (double)a->received);
    e |= sh_prom_value(f, M("events_delivered_total"), "counter",
                       "This agency's events a recipient acknowledged as stored, once per "
                       "recipient, counted from the broker's DELIVERED receipts (one receipt "
                       "can cover many events).",
                       (double)a->delivered);
    e |= sh_prom_counters(f, M("shares_denied_total"),
                          "Recipients of this agency's events the broker's policy refused, as its "
                          "confirms report them, by reason and ISP.",
                          &a->denied);
    e |= sh_prom_counters(f, M("refused_total"),
                          "Refusals by error code: by=\"broker\" for events the broker refused, "
                          "by=\"local\" for requests to this agent.",
                          &a->refused);
    e |= sh_prom_histogram(f, M("confirm_latency_seconds"),
                           "From an event entering the outbox to the broker's confirm.",
                           &a->confirm_latency);
    e |= sh_prom_histogram(f, M("delivery_latency_seconds"),
                           "From the sender's published_at to the delivery stored here (two "
                           "clocks: read with their skew in mind).",
                           &a->delivery_latency);
    uint64_t in = a->outbox0 + a->queued, depth = in > a->settled ? in - a->settled : 0;
    e |= sh_prom_value(f, M("outbox_depth"), "gauge", "Events waiting for the broker's confirm.",
                       (double)depth);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 0, &t, &err)) return -1;
    int64_t oldest = depth ? s_outbox_oldest_ms(a, t) : 0, now = s_now();
    e |= sh_prom_value(f, M("outbox_oldest_age_seconds"), "gauge",
                       "Age of the oldest event waiting in the outbox (0 when empty).",
                       oldest && now > oldest ? (double)(now - oldest) / 1e3 : 0);
    e |= sh_prom_store_audit(f, "sharehub_agent_", a->store, a->audit, t);
    sh_txn_abort(&t);
    e |= sh_prom_value(f, M("broker_connected"), "gauge",
                       "1 while the broker answers (HELLO acknowledged, heartbeats answered).",
                       a->connected ? 1 : 0);
    return e ? -1 : 0;
}

#undef M

/* (the store is open for as long as the agent runs; the broker may not be there) */
static const char *s_not_ready(void *ctx)
{
    const sh_agent *a = ctx;
    return a->connected ? NULL : "the broker does not answer";
}

/* ---- life cycle ---------------------------------------------------------------------- */

static sh_err s_load_seq(sh_agent *a, const char *key, uint64_t *v, sh_error *err)
{
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_err rc = sh_txn_begin(a->store, 0, &t, err);
    if (rc) return rc;
    rc = sh_txn_get(t, a->state, key, strlen(key), &b, err);
    if (rc == SH_OK && b.len == 8) *v = sh_be64_get(b.data);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    return rc == SH_E_NOT_FOUND || rc == SH_OK ? SH_OK : rc;
}

sh_err sh_agent_new(const char *config_path, sh_agent **out, sh_error *err)
{
    *out = NULL;
    sh_agent *a = calloc(1, sizeof *a);
    if (!a) return sh_error_set(err, SH_E_NOMEM, "agent");
    void *data = NULL;
    sh_err rc = sh_yaml_load(config_path, &s_config_schema, &data, SH_E_INVAL, err);
    a->cfg = data;
    if (!rc) sh_log_init("agent", a->cfg->log_level);
    if (!rc && sh_org_code_check(a->cfg->org))
        rc = sh_error_set(err, SH_E_INVAL, "%s: org is not an organisation code", config_path);
    char secret[64] = "", pub[SH_Z85_LEN + 1];
    size_t n = 0;
    if (!rc) rc = sh_secret_file_read(a->cfg->curve_key, secret, sizeof secret, &n, err);
    while (n && (secret[n - 1] == '\n' || secret[n - 1] == ' '))
        secret[--n] = '\0';
    if (!rc && (n != SH_Z85_LEN || zmq_curve_public(pub, secret)))
        rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: want a Z85 CURVE secret key",
                          a->cfg->curve_key);
    if (!rc) rc = sh_key_load_file(a->cfg->master_key, &a->master, err);
    if (!rc) rc = sh_signkey_load_file(a->cfg->sign_key, &a->signer, err);
    if (!rc) rc = sh_store_open(a->cfg->store, a->master, NULL, &a->store, err);
    if (!rc && (rc = sh_store_derive_key(a->store, "audit mac", &a->audit_key)))
        sh_error_set(err, rc, "audit key");
    if (!rc) rc = sh_audit_open(a->store, a->audit_key, a->signer, 0, &a->audit, err);
    const struct {
        const char *name;
        unsigned flags;
        sh_db *db;
    } dbs[] = {{"events", SH_DB_SEALED, &a->events},      {"by_child", SH_DB_PLAIN, &a->by_child},
               {"by_thread", SH_DB_PLAIN, &a->by_thread}, {"inbox", SH_DB_PLAIN, &a->inbox},
               {"outbox", SH_DB_SEALED, &a->outbox},      {"outcome", SH_DB_PLAIN, &a->outcome},
               {"state", SH_DB_PLAIN, &a->state}};
    for (size_t i = 0; !rc && i < sizeof dbs / sizeof dbs[0]; i++)
        rc = sh_store_db(a->store, dbs[i].name, dbs[i].flags, dbs[i].db, err);
    if (!rc) rc = s_load_seq(a, "inbox_seq", &a->inbox_seq, err);
    if (!rc) rc = s_load_seq(a, "outbox_seq", &a->outbox_seq, err);
    if (!rc) {
        sh_txn *t = NULL;
        sh_cursor *c = NULL;
        sh_kv kv;
        rc = sh_txn_begin(a->store, 0, &t, err);
        if (!rc) rc = sh_cursor_open(t, a->outbox, &c, err);
        for (rc = rc ? rc : sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err); rc == SH_OK;
             rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err))
            a->outbox0++;
        sh_cursor_close(&c);
        sh_txn_abort(&t);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    a->started_ms = s_now();
    if (!rc && a->cfg->http) {
        sh_http_site site = {s_metrics, s_not_ready, a};
        rc = sh_http_new(a->cfg->http, &site, &a->http, err);
    }
    if (!rc)
        rc = sh_client_new_agent(a->cfg->broker->endpoint, a->cfg->broker->public_key, pub, secret,
                                 100, &a->broker, err);
    sh_wipe(secret, sizeof secret);
    if (!rc) {
        /* the local interface: a socket file only this user can open */
        char ep[160];
        snprintf(ep, sizeof ep, "ipc://%s", a->cfg->socket);
        a->ctx = zmq_ctx_new();
        a->rep = a->ctx ? zmq_socket(a->ctx, ZMQ_REP) : NULL;
        mode_t old = umask(0077);
        int linger = 0;
        if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_bind(a->rep, ep))
            rc = sh_error_set(err, SH_E_IO, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
        umask(old);
        if (!rc && chmod(a->cfg->socket, 0600))
            rc = sh_error_set(err, SH_E_IO, "chmod %s: %s", a->cfg->socket, strerror(errno));
    }
    if (!rc) {
        sh_txn *t = NULL;
        if (sh_txn_begin(a->store, 1, &t, err) == SH_OK) {
            s_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, "agent", NULL, NULL, NULL,
                    "agent started");
            sh_txn_commit(&t, err);
        }
        s_log(a, "info", "serving %s", a->cfg->socket);
        if (a->http) s_log(a, "info", "metrics and health on http://%s", a->cfg->http);
    }
    if (rc) {
        sh_agent_destroy(&a);
        return rc;
    }
    *out = a;
    return SH_OK;
}

sh_err sh_agent_run(sh_agent *a, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        zmq_pollitem_t items[3] = {{sh_client_socket(a->broker), 0, ZMQ_POLLIN, 0},
                                   {a->rep, 0, ZMQ_POLLIN, 0},
                                   {NULL, a->http ? sh_http_fd(a->http) : -1, ZMQ_POLLIN, 0}};
        int wait = a->http ? sh_http_wait_ms(a->http, 100) : 100;
        int rc = zmq_poll(items, a->http ? 3 : 2, wait);
        if (rc < 0 && zmq_errno() != EINTR) return SH_E_IO;
        /* (every turn: the agent's loop is never busy enough for this to cost) */
        if (a->http) sh_http_serve(a->http);
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) s_broker_io(a);
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) s_local_io(a);
        s_timers(a);
        s_drain(a);
    }
    return SH_OK;
}

void sh_agent_destroy(sh_agent **ap)
{
    if (!ap || !*ap) return;
    sh_agent *a = *ap;
    if (a->audit) {
        sh_txn *t = NULL;
        sh_error err;
        if (sh_txn_begin(a->store, 1, &t, &err) == SH_OK) {
            s_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, "agent", NULL, NULL, NULL,
                    "agent stopped");
            if (sh_audit_checkpoint(a->audit, t, &err) == SH_OK)
                sh_txn_commit(&t, &err);
            else
                sh_txn_abort(&t);
        }
        /* have the broker witness the final checkpoint, if it is there to answer */
        sh_msg m;
        if (a->connected && a->broker && a->witnessed_seq != UINT64_MAX) {
            s_witness(a);
            if (sh_client_expect(a->broker, "WITNESSED", 1000, &m) == SH_OK) s_on_witnessed(a, &m);
        }
    }
    sh_http_destroy(&a->http);
    if (a->rep) zmq_close(a->rep);
    if (a->ctx) zmq_ctx_term(a->ctx);
    if (a->cfg && a->cfg->socket) unlink(a->cfg->socket);
    sh_client_destroy(&a->broker);
    sh_audit_destroy(&a->audit);
    sh_store_destroy(&a->store);
    sh_key_destroy(&a->audit_key);
    sh_key_destroy(&a->master);
    sh_signkey_destroy(&a->signer);
    sh_yaml_free(&s_config_schema, a->cfg);
    free(a);
    *ap = NULL;
}
