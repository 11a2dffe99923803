/*
 * link.c — the link to the broker: HELLO until READY, PING every heartbeat, the messages the
 * broker sends (deliveries, confirms, witness answers, errors); witnessing is witness.c.
 *
 * Owns: the connection state (connected, heard, hello, ping, witness times). Never: treats
 * the broker as there when it has not answered for three heartbeats.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

void ag_broker_io(sh_agent *a)
{
    sh_msg m;
    ag_batch *bt = &a->batch;
    while (sh_client_recv(a->broker, 0, &m) == SH_OK) {
        a->heard_ms = sh_clock_ms();
        if (strcmp(m.command, "DELIVER") == 0) {
            ag_on_deliver(a, &m, bt);
            continue;
        }
        if (strcmp(m.command, "CONFIRM") == 0) { /* recorded with the deliveries: one commit */
            ag_on_confirm(a, &m, bt);
            continue;
        }
        ag_flush(a, bt); /* the other handlers write in their own transactions */
        if (strcmp(m.command, "READY") == 0) {
            if (!a->connected) ag_log(a, "info", "connected to the broker");
            a->connected = 1;
            a->nflight = 0;    /* resend what was in flight: the broker dedupes */
            a->witness_ms = 0; /* and offer the newest audit checkpoint */
        } else if (strcmp(m.command, "PONG") == 0) {
            if (a->connected && m.nframes == 1 && m.len[0] == 5 &&
                !memcmp(m.frame[0], "hello", 5)) {
                /* the broker restarted or forgot us: say HELLO again, deliveries resume */
                ag_link_down(a, "it has no session for us; saying HELLO again");
                a->hello_ms = 0;
            }
        } else if (strcmp(m.command, "WITNESSED") == 0) {
            ag_on_witnessed(a, &m);
        } else if (strcmp(m.command, "ERROR") == 0) {
            ag_log(a, "error", "broker error E%03d", sh_msg_code(&m));
        }
    }
    ag_broker_head_seen(a);
    /* (the turn's transaction is committed by the loop, after the local requests) */
}

void ag_timers(sh_agent *a)
{
    int64_t now = sh_clock_ms();
    if (a->store_failed_ms && now - a->store_failed_ms >= STORE_PROBE_MS) ag_store_probe(a);
    int64_t hb = a->cfg->heartbeat_ms ? a->cfg->heartbeat_ms : 2000;
    if (a->connected && now - a->heard_ms > 3 * hb) {
        ag_link_down(a, "silent for three heartbeats");
        a->nflight = 0;
    }
    if (!a->connected && now - a->hello_ms >= hb / 2) {
        a->hello_ms = now;
        sh_client_hello(a->broker, a->cfg->subscriptions ? a->cfg->subscriptions : "*");
    }
    if (a->connected && now - a->ping_ms >= hb) {
        a->ping_ms = now;
        if (sh_client_ping(a->broker)) ag_link_down(a, "a PING could not be sent");
    }
    if (now - a->swept_ms >= 3600000) { /* retention: hourly (and at start) */
        sh_error e2;
        if (ag_retain_sweep(a, now, NULL, NULL, &e2))
            ag_log(a, "error", "retention: the sweep failed: %s", e2.detail);
    }
    ag_broker_head_alarm(a);
    ag_receipts_send(a, now);
    int64_t every = a->cfg->witness_ms ? a->cfg->witness_ms : 10000;
    if (a->connected && now - a->witness_ms >= every) ag_witness(a);
    for (unsigned i = 0; i < a->nflight; i++)
        if (now - a->flight[i].sent_ms > 10 * hb) { /* no CONFIRM: resend from here */
            a->nflight = i;
            break;
        }
}
