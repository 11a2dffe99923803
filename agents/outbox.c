/*
 * outbox.c — publishing: an event made locally is completed (id, source, times), stored and
 * put in the outbox in one transaction, drained to the broker in order (at most WINDOW
 * unconfirmed), and settled by the broker's CONFIRM.
 *
 * Owns: the outbox and outcome databases and the window of publishes in flight. Never:
 * removes an outbox entry before a final answer (a retryable refusal keeps it).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"
#include "log.h"

static int s_retryable(int code)
{
    return code == SH_E_MAP_FULL || code == SH_E_DISK_FULL || code == SH_E_UNAVAILABLE ||
           code == SH_E_NOMEM || code == SH_E_IO || code == SH_E_STORE;
}

/* Whether what waits in the outbox goes now (sh_gather_due): what waits behind the window is
 * counted from outbox_seq, which moves only once its entries are committed; with nothing in
 * flight the outbox is read, whatever it holds. */
static int s_due(sh_agent *a, int64_t now)
{
    if (!a->nflight) {
        a->gather_ms = 0;
        return 1;
    }
    uint64_t next = a->flight[a->nflight - 1].seq + 1;
    size_t waiting = a->outbox_seq > next ? (size_t)(a->outbox_seq - next) : 0;
    if (!waiting) {
        a->gather_ms = 0;
        return 0;
    }
    if (!a->gather_ms) a->gather_ms = now;
    if (!sh_gather_due(a->nflight, waiting, now - a->gather_ms)) return 0;
    a->gather_ms = 0;
    return 1;
}

int ag_gather_wait_ms(const sh_agent *a, int64_t now)
{
    if (!a->gather_ms || !a->connected || !a->nflight || a->nflight >= WINDOW || now < a->retry_ms)
        return -1; /* nothing gathering, or what would end it is a CONFIRM, not the time */
    int64_t left = a->gather_ms + SH_GATHER_MS - now;
    return left < 0 ? 0 : (int)left;
}

void ag_drain(sh_agent *a)
{
    int64_t now = sh_clock_ms();
    if (!a->connected || a->nflight >= WINDOW || now < a->retry_ms || !s_due(a, now)) return;
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    uint8_t from[8];
    uint64_t next = a->nflight ? a->flight[a->nflight - 1].seq + 1 : 0;
    uint8_t *envs[WINDOW];
    size_t lens[WINDOW], n = 0;
    unsigned first = a->nflight;
    sh_be64_put(from, next);
    if (sh_txn_begin(a->store, 0, &t, &err)) return;
    if (sh_cursor_open(t, a->outbox, &c, &err) == SH_OK) {
        sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, from, 8, &kv, &err);
        for (; rc == SH_OK && a->nflight < WINDOW;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.vlen < 18) continue;
            /* (a sealed database's cursor opens each value into the same buffer: copied) */
            if (!(envs[n] = malloc(kv.vlen))) break;
            memcpy(envs[n], kv.val, kv.vlen);
            lens[n++] = kv.vlen;
            ag_flight *f = &a->flight[a->nflight++];
            f->seq = sh_be64_get(kv.key);
            memcpy(f->id, kv.val + 2, 16); /* field 1, length 16, then the id */
            f->sent_ms = sh_clock_ms();
        }
        /* one signature for what goes now (docs/evidence.md) */
        if (n &&
            sh_client_publish_batch(a->broker, (const uint8_t *const *)envs, lens, n) != SH_OK) {
            a->nflight = first; /* the broker is unreachable: resent after reconnecting */
            ag_link_down(a, "a publish could not be sent");
        } else if (n) {
            a->sent += n;
            a->batches++;
        }
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
    for (size_t i = 0; i < n; i++)
        free(envs[i]);
}

/* Counts a CONFIRM into its batch: its code, its latency, and the recipients it names as
 * denied (outcome lines "<org> deny <code> <rule>", docs/protocol.md). */
void ag_count_confirm(ag_batch *bt, const sh_msg *m, int code, int64_t stored_ms)
{
    bt->settled++;
    if (code) {
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "code", sh_err_name((sh_err)code));
        sh_label(lab, sizeof lab, "by", "broker");
        sh_tally_add(&bt->refused, lab, 1);
        return;
    }
    bt->accepted++;
    if (stored_ms) sh_hist_observe(&bt->confirm_latency, (double)(sh_clock_ms() - stored_ms) / 1e3);
    for (size_t i = SH_CONFIRM_LINES_AT; i < m->nframes; i++) {
        char line[160], org[16], rule[72];
        int dc = 0;
        snprintf(line, sizeof line, "%.*s", (int)m->len[i], (const char *)m->frame[i]);
        if (sscanf(line, "%15s deny %d %71s", org, &dc, rule) != 3) continue;
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "reason", sh_err_name((sh_err)dc));
        sh_label(lab, sizeof lab, "isp", rule);
        sh_tally_add(&bt->denied, lab, 1);
    }
}

void ag_on_confirm(sh_agent *a, const sh_msg *m, ag_batch *bt)
{
    if (m->nframes < 3 || m->len[0] != 16) return;
    unsigned k = 0;
    while (k < a->nflight && memcmp(a->flight[k].id, m->frame[0], 16) != 0)
        k++;
    if (k == a->nflight) return; /* an answer to a resend already settled */
    int code = sh_msg_code(m);
    if (s_retryable(code)) {
        ag_log(a, "warning", "broker asked to retry (E%03d); the outbox keeps the event", code);
        a->nflight = 0; /* resend everything in flight, in order, in a second */
        a->retry_ms = sh_clock_ms() + 1000;
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
    for (size_t i = SH_CONFIRM_LINES_AT; i < m->nframes && used < sizeof text - 1; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "\n%.*s", (int)m->len[i],
                                 (const char *)m->frame[i]);
    if (used >= sizeof text) used = sizeof text - 1;
    sh_txn *t = ag_batch_txn(a, bt);
    sh_error err;
    uint8_t key[8];
    sh_be64_put(key, seq);
    if (!t) {
        a->nflight = 0; /* not recorded: the outbox keeps it, and it is sent again */
        return;
    }
    sh_err rc = sh_txn_del(t, a->outbox, key, 8, &err);
    if (!rc) rc = sh_txn_put(t, a->outcome, m->frame[0], 16, text, used, 0, &err);
    if (!rc && code == 0) rc = ag_track_confirm(a, t, m->frame[0], text, &err);
    if (!rc)
        ag_audit(a, t, code == 0 ? SH_AUDIT_SEND : SH_AUDIT_REFUSE,
                 code == 0 ? SH_AUDIT_OK : SH_AUDIT_DENIED, (sh_err)(code < 0 ? 0 : code),
                 m->frame[0], NULL, "agent", "broker", NULL, NULL,
                 code == 0 ? "accepted by the broker" : "refused by the broker");
    int64_t stored_ms = 0; /* when the event went into the outbox */
    sh_buf ev = {0};
    sh_error gerr;
    if (!rc && sh_txn_get(t, a->events, m->frame[0], 16, &ev, &gerr) == SH_OK && ev.len >= 9)
        stored_ms = (int64_t)sh_be64_get(ev.data + 1);
    sh_buf_free(&ev);
    if (rc) { /* the transaction cannot go on: flushing it fails and everything is resent */
        ag_log(a, "error", "recording a confirm: %s", err.detail);
        sh_txn_fail(t, rc, "recording a confirm");
    }
    if (code) ag_log_event(a, "warning", m->frame[0], "the broker refused an event: E%03d", code);
    bt->nconfirm++;
    ag_count_confirm(bt, m, code, stored_ms);
}

sh_err ag_publish_env(sh_agent *a, sh_envelope *e, const char *user, const char *purpose,
                      sh_error *err)
{
    return ag_publish_marked(a, e, user, purpose, NULL, NULL, err);
}

sh_err ag_publish_put(sh_agent *a, sh_txn *t, uint64_t seq, sh_envelope *e, const char *user,
                      const char *purpose, const uint8_t *read_of, const char *client,
                      sh_error *err)
{
    char via[VIA_MAX];
    const char *what = sh_event_type_name(e->event_type);
    if (client && *client) {
        snprintf(via, sizeof via, "%s via api:%s", what, client);
        what = via;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_err rc = sh_envelope_encode(e, &buf, &len, err);
    if (rc) return rc;
    uint8_t key[8], refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int nr = sh_child_refs(a->store, e->child, refs);
    sh_be64_put(key, seq);
    rc = ag_store_event(a, t, SH_DIR_SENT, a->cfg->org, "", 0, e, buf, len,
                        (const uint8_t(*)[SH_BLIND_BYTES])refs, nr, err);
    if (rc == SH_E_EXISTS) sh_error_set(err, rc, "event_id: already used here");
    if (!rc) rc = sh_txn_put(t, a->outbox, key, 8, buf, len, SH_PUT_NEW, err);
    if (!rc && read_of) {
        uint8_t at[8];
        sh_be64_put(at, (uint64_t)e->published_at_ms);
        rc = sh_txn_put(t, a->read, read_of, 16, at, 8, 0, err);
    }
    if (!rc)
        rc = ag_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, e->event_id.data, nr ? refs[0] : NULL,
                      user, NULL, purpose, NULL, what);
    free(buf);
    return rc;
}

/* Validates, stores and queues one envelope built locally, in a transaction of its own; with
 * read_of, in the same transaction, records that event as read (its READ receipt is this
 * envelope). */
sh_err ag_publish_marked(sh_agent *a, sh_envelope *e, const char *user, const char *purpose,
                         const uint8_t *read_of, const char *client, sh_error *err)
{
    sh_txn *t = NULL;
    sh_err rc = sh_txn_begin(a->store, 1, &t, err);
    if (rc) return rc;
    rc = ag_publish_put(a, t, a->outbox_seq, e, user, purpose, read_of, client, err);
    if (!rc) rc = ag_put_seq(a, t, "outbox_seq", a->outbox_seq + 1, err);
    if (rc) {
        sh_txn_abort(&t);
        return rc;
    }
    if ((rc = ag_commit(a, &t, err))) return rc;
    a->outbox_seq++;
    a->queued++;
    return SH_OK; /* (the loop drains the outbox when this request is answered) */
}

/* Fills what the agent knows: id, version, source, times. */
sh_err ag_complete(sh_agent *a, sh_envelope *e, uint8_t idbuf[16], sh_error *err)
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
    int64_t now = sh_clock_ms();
    if (!e->published_at_ms) e->published_at_ms = now;
    if (!e->occurred_at_ms) e->occurred_at_ms = now;
    return SH_OK;
}
