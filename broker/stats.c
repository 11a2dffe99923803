/*
 * stats.c — the broker's counters and its metrics and health page (docs/operations.md,
 * "Metrics"), served by common/http.
 *
 * Owns: how b->stats and b->stage are emptied and merged, and every metric's name, type and
 * help text. Never: counts what a batch did before the batch has committed.
 */
#include <string.h>

#include "broker_int.h"
#include "clock.h"

void bk_stats_reset(bk_stats *st)
{
    st->accepted = 0;
    sh_tally_reset(&st->queued);
    sh_tally_reset(&st->acked);
    sh_tally_reset(&st->expired);
    sh_tally_reset(&st->denied);
    sh_tally_reset(&st->forwards);
    memset(&st->latency, 0, sizeof st->latency);
}

void bk_stats_merge(bk_stats *dst, const bk_stats *src)
{
    dst->accepted += src->accepted;
    sh_tally_merge(&dst->queued, &src->queued);
    sh_tally_merge(&dst->acked, &src->acked);
    sh_tally_merge(&dst->expired, &src->expired);
    sh_tally_merge(&dst->denied, &src->denied);
    sh_tally_merge(&dst->forwards, &src->forwards);
    sh_hist_merge(&dst->latency, &src->latency);
}

#define M(name) "sharehub_broker_" name

/* 1 while a link of peer code has said HELLO here: what is queued for its authority flows. */
static int s_peer_up(const sh_broker *b, const char *code)
{
    for (size_t k = 0; k < b->nsessions; k++)
        if (b->sessions[k].ready && strcmp(b->sessions[k].org, code) == 0) return 1;
    return 0;
}

int bk_metrics(void *ctx, FILE *f)
{
    sh_broker *b = ctx;
    const bk_stats *st = &b->stats;
    int64_t now = sh_clock_ms();
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
    e |= sh_prom_counters(f, M("deliveries_expired_total"),
                          "Deliveries removed unacknowledged past their expiry (the sender was "
                          "sent an EXPIRED receipt for each event).",
                          &st->expired);
    e |= sh_prom_counters(f, M("shares_denied_total"),
                          "Shares the policy refused, by reason and by the ISP that decided "
                          "(isp=\"-\" when none covers the share).",
                          &st->denied);
    e |= sh_prom_counters(
        f, M("forwards_total"),
        "FORWARDs taken from each peer, in its link's order (docs/federation.md).", &st->forwards);
    e |= sh_prom_counters(f, M("refused_total"),
                          "Messages refused with an error code (CONFIRM or ERROR), by code.",
                          &b->refused);
    e |= sh_prom_family(f, M("connections_refused_total"), "counter",
                        "Connections refused at the handshake.");
    e |= sh_prom_sample(f, M("connections_refused_total"), "reason=\"not_enrolled\"",
                        (double)b->refused_key_total);
    e |= sh_prom_sample(f, M("connections_refused_total"), "reason=\"handshake\"",
                        (double)b->refused_handshake_total);
    e |= sh_prom_value(f, M("handshakes_interrupted_total"), "counter",
                       "Connections closed during their handshake (the peer stopped or crashed, or "
                       "the network failed): not refusals.",
                       (double)b->interrupted_total);
    e |= sh_prom_value(
        f, M("connections_closed_total"), "counter",
        "Authenticated connections closed by the transport.",
        (double)(b->closed_total > b->failed_total ? b->closed_total - b->failed_total : 0));
    e |= sh_prom_value(f, M("sends_dropped_total"), "counter",
                       "Messages not sent because a peer's queue was full (it will be offered "
                       "them again).",
                       (double)b->dropped_total);
    e |= sh_prom_value(f, M("network_restarts_total"), "counter",
                       "Times the network process ended and was started again (each audited, "
                       "E709).",
                       (double)b->net_restarts);
    e |= sh_prom_value(f, M("probe_restarts_total"), "counter",
                       "Times the probe process (this endpoint) ended and was started again.",
                       (double)(b->probe ? sh_probe_restarts(b->probe) : 0));
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
        int64_t at = b->depths[i].n ? bk_oldest_ms(b, t, b->depths[i].org) : 0;
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
    e |= sh_prom_family(f, M("peer_up"), "gauge",
                        "1 while another authority's link takes what this broker holds for it.");
    for (size_t i = 0; i < sh_registry_count(b->registry); i++) {
        const sh_org *o = sh_registry_at(b->registry, i);
        if (o->sector != SH_SECTOR_PEER) continue;
        lab[0] = '\0';
        sh_label(lab, sizeof lab, "peer", o->code);
        sh_label(lab, sizeof lab, "authority", o->la_code);
        e |= sh_prom_sample(f, M("peer_up"), lab, s_peer_up(b, o->code));
    }
    e |= sh_prom_family(f, M("agent_connected"), "gauge",
                        "1 while the enrolled organisation's agent is connected and receiving.");
    for (size_t i = 0; i < sh_registry_count(b->registry); i++) {
        const sh_org *o = sh_registry_at(b->registry, i);
        if (o->authority || o->sector == SH_SECTOR_PEER) continue; /* (not an agent of ours) */
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

const char *bk_ready_detail(void *ctx)
{
    /* A peer down does not make the broker unready: its own agencies are served all the same;
     * what waits for the other authority waits in its queue (docs/federation.md). */
    sh_broker *b = ctx;
    size_t used = 0;
    b->peers_text[0] = '\0';
    for (size_t i = 0; i < sh_registry_count(b->registry); i++) {
        const sh_org *o = sh_registry_at(b->registry, i);
        if (o->sector != SH_SECTOR_PEER) continue;
        uint64_t depth = 0;
        for (size_t k = 0; k < b->ndepths; k++)
            if (strcmp(b->depths[k].org, o->code) == 0) depth = b->depths[k].n;
        bk_append(b->peers_text, &used, sizeof b->peers_text,
                  "peer %s (authority %s): %s, %llu waiting\n", o->code, o->la_code,
                  s_peer_up(b, o->code) ? "up" : "down", (unsigned long long)depth);
    }
    return b->peers_text;
}

const char *bk_not_ready(void *ctx)
{
    const sh_broker *b = ctx;
    if (b->store_failed_ms) return "the store refused the last write (disk or map full)";
    return b->net_pid ? NULL : "the network process is restarting";
}
