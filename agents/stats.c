/*
 * stats.c — the agent's counters and its metrics and health page (docs/operations.md,
 * "Metrics").
 *
 * Owns: every metric's name, type and help text. Never: counts a write before it commits.
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"

void ag_count_refused(sh_agent *a, int code, const char *by)
{
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "code", sh_err_name((sh_err)code));
    sh_label(lab, sizeof lab, "by", by);
    sh_tally_add(&a->refused, lab, 1);
}

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

int ag_metrics(void *ctx, FILE *f)
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
    e |= sh_prom_value(f, M("probe_restarts_total"), "counter",
                       "Times the probe process (this endpoint) ended and was started again.",
                       (double)(a->probe ? sh_probe_restarts(a->probe) : 0));
    e |= sh_prom_value(f, M("events_published_total"), "counter",
                       "Events stored in the outbox for the broker (publishes and CP-IS access "
                       "notifications).",
                       (double)a->queued);
    e |= sh_prom_value(f, M("events_confirmed_total"), "counter",
                       "Events the broker accepted (confirmed durable and routed).",
                       (double)a->accepted);
    e |= sh_prom_value(f, M("publishes_sent_total"), "counter",
                       "PUBLISHes sent to the broker, resends after a reconnection included.",
                       (double)a->sent);
    e |= sh_prom_value(f, M("publish_batches_total"), "counter",
                       "Signed batches the PUBLISHes went in (one signature each).",
                       (double)a->batches);
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
    int64_t oldest = depth ? s_outbox_oldest_ms(a, t) : 0, now = sh_clock_ms();
    e |= sh_prom_value(f, M("outbox_oldest_age_seconds"), "gauge",
                       "Age of the oldest event waiting in the outbox (0 when empty).",
                       oldest && now > oldest ? (double)(now - oldest) / 1e3 : 0);
    e |= sh_prom_store_audit(f, "sharehub_agent_", a->store, a->audit, t);
    sh_txn_abort(&t);
    e |= sh_prom_value(f, M("store_writable"), "gauge",
                       "0 when the store refused the last write (disk or map full), else 1.",
                       a->store_failed_ms ? 0 : 1);
    e |= sh_prom_value(f, M("broker_connected"), "gauge",
                       "1 while the broker answers (HELLO acknowledged, heartbeats answered).",
                       a->connected ? 1 : 0);
    return e ? -1 : 0;
}

#undef M

/* Not ready while the broker does not answer, or while the store refuses writes (a delivery
 * could not be stored, a publish could not be made durable). */
const char *ag_not_ready(void *ctx)
{
    const sh_agent *a = ctx;
    if (a->store_failed_ms) return "the store refused the last write (disk or map full)";
    return a->connected ? NULL : "the broker does not answer";
}
