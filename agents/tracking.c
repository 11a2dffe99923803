/*
 * tracking.c — what became of each event this agency sent, per recipient (docs/agent.md,
 * "Tracking"): the broker's decision (from the CONFIRM's outcome lines), then queued,
 * delivered, read or expired, with times (from the CONFIRM and the receipts that come back);
 * and the READ receipt this agency sends the first time a person opens an event it received.
 *
 * Owns: the tracking and read databases' entries. Never: records a state for an event this
 * agency did not send; sends a second READ receipt for one event.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

#define RS(x) SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_##x

/* A tracking record: six times (0: not yet), the reason code of an expiry or a denial, and the
 * id of the recipient's signed STORED receipt (zero: none yet). A record of four times and the
 * code (34 bytes) is one written before STORED receipts; of five times, the code and the
 * receipt (58 bytes), one written before denials at another authority's border. */
enum { T_QUEUED, T_DELIVERED, T_READ, T_EXPIRED, T_STORED, T_DENIED, T_TIMES };
#define TRACK_OLD   (4 * 8 + 2)
#define TRACK_FIVE  (5 * 8 + 2 + 16)
#define TRACK_BYTES (T_TIMES * 8 + 2 + 16)
typedef struct track {
    int64_t at[T_TIMES];
    uint16_t code;
    uint8_t receipt[16];
} track;

static size_t s_key(const uint8_t id[16], const char *org, uint8_t key[16 + SH_ORG_MAX])
{
    size_t n = strlen(org);
    if (n > SH_ORG_MAX) n = SH_ORG_MAX;
    memcpy(key, id, 16);
    memcpy(key + 16, org, n);
    return 16 + n;
}

static void s_load(sh_agent *a, sh_txn *t, const uint8_t *key, size_t klen, track *tr)
{
    sh_buf b = {0};
    sh_error err;
    memset(tr, 0, sizeof *tr);
    if (sh_txn_get(t, a->tracking, key, klen, &b, &err) == SH_OK &&
        (b.len == TRACK_BYTES || b.len == TRACK_FIVE || b.len == TRACK_OLD)) {
        int n = b.len == TRACK_OLD ? T_STORED : b.len == TRACK_FIVE ? T_DENIED : T_TIMES;
        for (int i = 0; i < n; i++)
            tr->at[i] = (int64_t)sh_be64_get(b.data + 8 * i);
        tr->code = (uint16_t)(b.data[8 * n] << 8 | b.data[8 * n + 1]);
        if (n > T_STORED) memcpy(tr->receipt, b.data + 8 * n + 2, 16);
    }
    sh_buf_free(&b);
}

static sh_err s_store(sh_agent *a, sh_txn *t, const uint8_t *key, size_t klen, const track *tr,
                      sh_error *err)
{
    uint8_t v[TRACK_BYTES];
    for (int i = 0; i < T_TIMES; i++)
        sh_be64_put(v + 8 * i, (uint64_t)tr->at[i]);
    v[8 * T_TIMES] = (uint8_t)(tr->code >> 8);
    v[8 * T_TIMES + 1] = (uint8_t)tr->code;
    memcpy(v + 8 * T_TIMES + 2, tr->receipt, 16);
    return sh_txn_put(t, a->tracking, key, klen, v, sizeof v, 0, err);
}

/* Sets state `which` (at `at`, if not already known) for org's copy of event id; a STORED
 * one with the id of the receipt that says so. */
static sh_err s_mark(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *org, int which,
                     int64_t at, uint16_t code, const uint8_t *receipt, sh_error *err)
{
    uint8_t key[16 + SH_ORG_MAX];
    size_t klen = s_key(id, org, key);
    track tr;
    s_load(a, t, key, klen, &tr);
    if (tr.at[which]) return SH_OK;
    tr.at[which] = at > 0 ? at : sh_clock_ms();
    if (which == T_EXPIRED || which == T_DENIED) tr.code = code;
    if (which == T_STORED && receipt) memcpy(tr.receipt, receipt, 16);
    return s_store(a, t, key, klen, &tr, err);
}

sh_err ag_track_confirm(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *lines,
                        sh_error *err)
{
    int64_t now = sh_clock_ms();
    for (const char *p = lines; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char org[SH_ORG_MAX + 1], verdict[16];
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        if (sscanf(line, "%9s %15s", org, verdict) == 2 && strcmp(verdict, "permit") == 0) {
            sh_err rc = s_mark(a, t, id, org, T_QUEUED, now, 0, NULL, err);
            if (rc) return rc;
        }
        p = eol ? eol + 1 : p + n;
    }
    return SH_OK;
}

sh_err ag_track_receipt(sh_agent *a, sh_txn *t, const char *peer, const sh_envelope *e,
                        sh_error *err)
{
    const Sharehub__V1__DeliveryReceipt *r = e->delivery_receipt;
    int which = r->status == RS(DELIVERED) ? T_DELIVERED
                : r->status == RS(READ)    ? T_READ
                : r->status == RS(EXPIRED) ? T_EXPIRED
                : r->status == RS(STORED)  ? T_STORED
                : r->status == RS(DENIED)  ? T_DENIED
                                           : -1;
    if (which < 0) return SH_OK;
    /* READ and STORED receipts come from the recipient itself, signed (its evidence was
     * checked before this); the broker's name the recipient */
    const char *org = which == T_READ || which == T_STORED ? peer : r->recipient_org;
    if (!org || !*org) return SH_OK;
    for (size_t i = 0; i <= r->n_more_event_ids; i++) {
        const ProtobufCBinaryData *id = i == 0 ? &r->for_event_id : &r->more_event_ids[i - 1];
        if (id->len != 16) continue;
        sh_buf b = {0};
        sh_agent_record rec;
        int ours = sh_txn_get(t, a->events, id->data, 16, &b, err) == SH_OK &&
                   sh_agent_record_parse(b.data, b.len, &rec) == 0 && rec.direction == SH_DIR_SENT;
        sh_buf_free(&b);
        if (!ours) continue;
        sh_err rc = s_mark(a, t, id->data, org, which, r->at_ms, (uint16_t)r->reason_code,
                           e->event_id.data, err);
        if (rc) return rc;
    }
    return SH_OK;
}

/* One outcome line's recipient: its decision and, when permitted, its state and times. */
static json_object *s_recipient(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *line)
{
    char org[SH_ORG_MAX + 1] = "", verdict[16] = "", f3[80] = "", f4[80] = "", f5[16] = "";
    int nf = sscanf(line, "%9s %15s %79s %79s %15s", org, verdict, f3, f4, f5);
    if (nf < 2) return NULL;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "org", json_object_new_string(org));
    if (strcmp(verdict, "deny") == 0) {
        int code = atoi(f3);
        json_object_object_add(o, "decision", json_object_new_string("denied"));
        json_object_object_add(o, "code", json_object_new_int(code));
        json_object_object_add(o, "name", json_object_new_string(sh_err_name((sh_err)code)));
        json_object_object_add(o, "reason", json_object_new_string(sh_err_message((sh_err)code)));
        if (strcmp(f4, "-") != 0 && f4[0])
            json_object_object_add(o, "isp", json_object_new_string(f4));
        json_object_object_add(o, "state", json_object_new_string("denied"));
        return o;
    }
    json_object_object_add(o, "decision", json_object_new_string("permitted"));
    if (f3[0]) json_object_object_add(o, "isp", json_object_new_string(f3));
    if (strcmp(f4, "overdue") == 0)
        json_object_object_add(o, "overdue", json_object_new_boolean(1));
    if (strcmp(verdict, "unsubscribed") == 0) {
        json_object_object_add(o, "state", json_object_new_string("not_subscribed"));
        return o;
    }
    uint8_t key[16 + SH_ORG_MAX];
    track tr;
    s_load(a, t, key, s_key(id, org, key), &tr);
    static const char *const names[T_TIMES] = {"queued",  "delivered", "read",
                                               "expired", "stored",    "denied"};
    const char *state = "queued";
    /* The times come from three clocks: queued is when this agency recorded the broker's
     * CONFIRM, delivered and expired the broker's, read the recipient's. A CONFIRM read late
     * can be recorded after the delivery it led to: queued is never shown after a later
     * state (it was queued by then). */
    for (int i = T_DELIVERED; i < T_TIMES; i++)
        if (tr.at[i] && (!tr.at[T_QUEUED] || tr.at[i] < tr.at[T_QUEUED]))
            tr.at[T_QUEUED] = tr.at[i];
    for (int i = 0; i < T_TIMES; i++)
        if (tr.at[i]) {
            char k[24];
            snprintf(k, sizeof k, "%s_at_ms", names[i]);
            json_object_object_add(o, k, json_object_new_int64(tr.at[i]));
        }
    if (tr.at[T_STORED]) { /* the recipient's own signed word: `show` proves its origin */
        char rid[SH_EVENT_ID_STR];
        sh_event_id_format(tr.receipt, rid);
        json_object_object_add(o, "stored_receipt", json_object_new_string(rid));
    }
    if (tr.at[T_DELIVERED] || tr.at[T_STORED]) state = "delivered";
    if (tr.at[T_READ]) state = "read";
    if (tr.at[T_EXPIRED] && !tr.at[T_DELIVERED]) {
        state = "expired";
        json_object_object_add(o, "reason_code", json_object_new_int(tr.code));
    }
    /* denied at another authority's border, after this one's broker permitted it: that
     * broker's DENIED receipt (docs/federation.md) */
    if (tr.at[T_DENIED] && !tr.at[T_DELIVERED]) {
        state = "denied";
        json_object_object_add(o, "reason_code", json_object_new_int(tr.code));
        json_object_object_add(o, "name", json_object_new_string(sh_err_name((sh_err)tr.code)));
        json_object_object_add(o, "reason",
                               json_object_new_string(sh_err_message((sh_err)tr.code)));
    }
    json_object_object_add(o, "state", json_object_new_string(state));
    return o;
}

json_object *ag_tracking_json(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *lines,
                              size_t len)
{
    json_object *arr = json_object_new_array();
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        char line[160];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        p = eol ? eol + 1 : end;
        if (strncmp(line, "accepted", 8) == 0 || strncmp(line, "duplicate", 9) == 0 ||
            strncmp(line, "more ", 5) == 0)
            continue;
        json_object *r = s_recipient(a, t, id, line);
        if (r) json_object_array_add(arr, r);
    }
    return arr;
}

sh_err ag_read_receipt(sh_agent *a, const uint8_t id[16], const char *user, sh_error *err)
{
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_err rc = sh_txn_begin(a->store, 0, &t, err);
    if (rc) return rc;
    int sent = sh_txn_get(t, a->read, id, 16, &b, err) == SH_OK;
    sh_txn_abort(&t);
    sh_buf_free(&b);
    if (sent) return SH_OK;
    sh_receipt r;
    const uint8_t(*ids)[16] = (const uint8_t(*)[16])id;
    if (sh_receipt_start(&r, a->cfg->org, ids, 1, a->cfg->org, RS(READ), SH_OK, sh_clock_ms()))
        return sh_error_set(err, SH_E_IO, "event id");
    return ag_publish_marked(a, &r.e, user, "read receipt", id, NULL, err);
}
