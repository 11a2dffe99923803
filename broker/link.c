/*
 * link.c — sharehub-link, the peer link (docs/federation.md): it carries what another
 * authority's broker holds for this authority into this authority's broker. To the remote
 * broker it is an agent enrolled as this authority's peer ("LA" + its LA code): HELLO, then
 * deliveries in a window. To the local broker it is the remote authority's peer: each delivery
 * goes on as one FORWARD, and only once the local broker has answered it — after its commit —
 * is it acknowledged to the remote one, so a delivery is never lost between the two and one
 * forwarded twice is stored once (the local broker dedupes by event id). FORWARDs carry the
 * link's run and their number in it, so the local broker takes them in order only (border.c).
 *
 * Owns: the two connections and the ids forwarded and not yet answered, in order. Never:
 * acknowledges a delivery the local broker has not durably answered; holds anything on disk.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cli.h"
#include "client.h"
#include "clock.h"
#include "crypto.h"
#include "daemon.h"
#include "directory.h"
#include "log.h"
#include "store.h"

#define PENDING_MAX 8192 /* forwarded, not yet answered (two full windows) */

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig)
{
    if (sig == SIGTERM || sig == SIGINT) s_stop = 1;
}

typedef struct lk {
    sh_client *remote, *local;
    int ready; /* the remote broker answered HELLO */
    int64_t hb, hello_ms, ping_ms, heard_ms, oldest_ms;
    uint8_t (*pending)[16]; /* forwarded ids, oldest first (a ring) */
    size_t head, n;
    uint8_t acks[SH_ACK_MAX][16]; /* answered, to acknowledge to the remote */
    size_t nacks;
    uint64_t forwarded, answered, refused, restarts;
    uint8_t run[8]; /* this run's id: FORWARDs carry it and their place in it (border.c) */
    uint64_t next;
    uint64_t heads;     /* the remote broker's heads received (sh_client_head) */
    int64_t witness_ms; /* when the newest was last witnessed to the local broker */
    uint64_t witnessed, witness_refused;
} lk;

/* Codes that say the local broker could not take it now: not acknowledged, so it comes again. */
static int s_transient(int code)
{
    return code < 0 || code == SH_E_NOMEM || code == SH_E_IO || code == SH_E_MAP_FULL ||
           code == SH_E_DISK_FULL || code == SH_E_STORE || code == SH_E_UNAVAILABLE ||
           code == SH_E_INTERNAL;
}

static void s_new_run(lk *l)
{
    if (sh_random(l->run, sizeof l->run)) /* (never in practice: then the clock is unique) */
        sh_be64_put(l->run, (uint64_t)sh_clock_ms());
    l->next = 0;
}

/* Starts over from the remote's oldest unacknowledged delivery (HELLO restarts delivery there):
 * what was forwarded and not answered is forwarded again, in order. */
static void s_restart(lk *l, const char *why)
{
    sh_log(SH_LOG_WARNING, NULL, NULL, "link: starting over from the oldest delivery: %s", why);
    l->n = l->head = 0;
    l->ready = 0;
    l->hello_ms = 0;
    l->restarts++;
    s_new_run(l);
}

static void s_flush_acks(lk *l)
{
    if (!l->nacks) return;
    if (sh_client_ack_many(l->remote, (const uint8_t(*)[16])l->acks, l->nacks))
        s_restart(l, "an ACK could not be sent");
    l->nacks = 0;
}

static void s_from_remote(lk *l)
{
    sh_msg m;
    while (sh_client_recv(l->remote, 0, &m) == SH_OK) {
        l->heard_ms = sh_clock_ms();
        if (strcmp(m.command, "READY") == 0) {
            if (!l->ready) sh_log(SH_LOG_INFO, NULL, NULL, "link: the remote broker is ready");
            l->ready = 1;
        } else if (strcmp(m.command, "PONG") == 0) {
            if (m.nframes == 1 && m.len[0] == 5 && !memcmp(m.frame[0], "hello", 5))
                l->ready = 0, l->hello_ms = 0;
        } else if (strcmp(m.command, "ERROR") == 0) {
            sh_log(SH_LOG_ERROR, NULL, NULL, "link: the remote broker answered E%03d",
                   sh_msg_code(&m));
        } else if (strcmp(m.command, "DELIVER") == 0 && !l->ready) {
            /* what the remote sent before the READY of the HELLO that started this run: it is
             * sent again, from the oldest unacknowledged, after that READY (forwarding it now
             * could put a later event ahead of one a restart gave up) */
            continue;
        } else if (strcmp(m.command, "DELIVER") == 0 && m.nframes == SH_DELIVER_FIELDS &&
                   m.len[0] == 16) {
            if (l->n == PENDING_MAX) {
                s_restart(l, "too many forwarded and not answered");
                return;
            }
            sh_wire_body body = {0};
            int bad = 0;
            uint8_t place[16];
            memcpy(place, l->run, 8);
            sh_be64_put(place + 8, l->next);
            for (size_t i = 0; i < SH_DELIVER_FIELDS; i++)
                bad |= sh_wire_body_add(&body, m.frame[i], m.len[i]);
            bad |= sh_wire_body_add(&body, place, sizeof place);
            const void *fr[3] = {SH_PROTO_SIGNATURE, "FORWARD", body.p};
            const size_t fl[3] = {4, 7, body.len};
            if (bad || sh_client_send_raw(l->local, fr, fl, 3)) {
                sh_wire_body_free(&body);
                s_restart(l, "the local broker cannot be reached");
                return;
            }
            sh_wire_body_free(&body);
            l->next++;
            if (!l->n) l->oldest_ms = sh_clock_ms();
            memcpy(l->pending[(l->head + l->n++) % PENDING_MAX], m.frame[0], 16);
            l->forwarded++;
        }
    }
}

static void s_from_local(lk *l)
{
    sh_msg m;
    while (sh_client_recv(l->local, 0, &m) == SH_OK) {
        if (strcmp(m.command, "ERROR") == 0) {
            sh_log(SH_LOG_ERROR, NULL, NULL, "link: the local broker answered E%03d",
                   sh_msg_code(&m));
            continue;
        }
        if (strcmp(m.command, "WITNESSED") == 0) {
            int code = sh_msg_code(&m);
            if (code == 0)
                l->witnessed++;
            else {
                l->witness_refused++;
                sh_log(SH_LOG_ERROR, NULL, NULL,
                       "link: the local broker refused the remote broker's head: E%03d %.*s", code,
                       m.nframes > 2 ? (int)m.len[2] : 0,
                       m.nframes > 2 ? (const char *)m.frame[2] : "");
            }
            continue;
        }
        if (strcmp(m.command, "CONFIRM") != 0 || !l->n) continue;
        /* CONFIRMs come in the order the FORWARDs went (docs/protocol.md); one for a FORWARD
         * of a run given up (or one refused before its id was read) is not ours to count */
        const uint8_t *want = l->pending[l->head];
        int code = sh_msg_code(&m);
        if (m.nframes < 2 || m.len[0] != 16 || memcmp(m.frame[0], want, 16) != 0) continue;
        if (s_transient(code)) {
            char why[80];
            snprintf(why, sizeof why, "the local broker could not take a delivery (E%03d)", code);
            s_restart(l, why);
            return;
        }
        if (code) {
            l->refused++;
            sh_log(SH_LOG_WARNING, NULL, NULL,
                   "link: the local broker refused a delivery (E%03d): acknowledged, audited there",
                   code);
        }
        memcpy(l->acks[l->nacks++], want, 16);
        l->head = (l->head + 1) % PENDING_MAX;
        l->n--;
        l->oldest_ms = sh_clock_ms();
        l->answered++;
        if (l->nacks == SH_ACK_MAX) s_flush_acks(l);
    }
}

/* The remote broker's newest signed head, recorded in the local broker's chain (WITNESS) at
 * most once a second: neither authority can later rewrite what it sent the other unseen
 * (docs/federation.md, "Witnessing across the border"). */
static void s_witness(lk *l, int64_t now)
{
    uint8_t head[SH_WIRE_HEAD_BYTES];
    uint64_t n = sh_client_head(l->remote, head);
    if (n == l->heads || (now - l->witness_ms < 1000 && now)) return;
    if (sh_client_witness(l->local, head, head + 16, SH_WIRE_HEAD_BYTES - 16) == SH_OK) {
        l->heads = n;
        l->witness_ms = now;
    }
}

static void s_timers(lk *l)
{
    int64_t now = sh_clock_ms();
    s_witness(l, now);
    if (l->ready && now - l->heard_ms > 3 * l->hb) s_restart(l, "the remote broker is silent");
    if (!l->ready && now - l->hello_ms >= l->hb / 2) {
        l->hello_ms = now;
        sh_client_hello(l->remote, "*");
    }
    if (now - l->ping_ms >= l->hb) {
        l->ping_ms = now;
        sh_client_ping(l->remote);
        sh_client_ping(l->local); /* (keeps the local broker's session for the link) */
    }
    if (l->n && now - l->oldest_ms > 5 * l->hb) s_restart(l, "the local broker did not answer");
}

static int s_run(const char *remote_ep, const char *remote_key, const char *local_ep,
                 const char *local_key, const char *keyfile, long hb)
{
    char secret[SH_Z85_LEN + 1], pub[SH_Z85_LEN + 1], buf[400];
    sh_error err = {0};
    lk l = {.hb = hb};
    int rc = SH_EXIT_FAILED;
    l.pending = calloc(PENDING_MAX, 16);
    if (!l.pending) return SH_EXIT_FAILED;
    if (sh_curve_secret_load(keyfile, secret, pub, &err) ||
        sh_client_new_agent(remote_ep, remote_key, pub, secret, 2000, &l.remote, &err) ||
        sh_client_new_agent(local_ep, local_key, pub, secret, 2000, &l.local, &err)) {
        fprintf(stderr, "sharehub-link: %s\n", sh_error_format(&err, buf, sizeof buf));
        goto out;
    }
    sh_log(SH_LOG_INFO, NULL, NULL, "link: from %s into %s, as %.8s…", remote_ep, local_ep, pub);
    l.heard_ms = sh_clock_ms();
    s_new_run(&l);
    while (!s_stop) {
        zmq_pollitem_t items[2] = {{sh_client_socket(l.remote), 0, ZMQ_POLLIN, 0},
                                   {sh_client_socket(l.local), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 100) < 0 && zmq_errno() != EINTR) break;
        s_from_remote(&l);
        s_from_local(&l);
        s_flush_acks(&l);
        s_timers(&l);
    }
    /* the newest head, witnessed before stopping (its answer waited for a moment) */
    s_witness(&l, 0);
    for (int64_t until = sh_clock_ms() + 500; sh_clock_ms() < until;) {
        zmq_pollitem_t it = {sh_client_socket(l.local), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) > 0) s_from_local(&l);
    }
    sh_log(SH_LOG_INFO, NULL, NULL,
           "link: stopping: %llu forwarded, %llu answered (%llu refused), %llu restarts, %llu "
           "heads witnessed (%llu refused)",
           (unsigned long long)l.forwarded, (unsigned long long)l.answered,
           (unsigned long long)l.refused, (unsigned long long)l.restarts,
           (unsigned long long)l.witnessed, (unsigned long long)l.witness_refused);
    rc = SH_EXIT_OK;
out:
    sh_wipe(secret, sizeof secret);
    sh_client_destroy(&l.remote);
    sh_client_destroy(&l.local);
    free(l.pending);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *fedkey = NULL, *own = NULL, *peer = NULL, *key = NULL;
    const char *local = NULL, *local_key = NULL;
    long hb = 2000;
    size_t npos = 0;
    const cli_opt opts[] = {{"--directory", CLI_TEXT, &dir, 0, 0},
                            {"--federation-key", CLI_TEXT, &fedkey, 0, 0},
                            {"--authority", CLI_TEXT, &own, 0, 0},
                            {"--peer", CLI_TEXT, &peer, 0, 0},
                            {"--curve-key", CLI_TEXT, &key, 0, 0},
                            {"--local", CLI_TEXT, &local, 0, 0},
                            {"--local-key", CLI_TEXT, &local_key, 0, 0},
                            {"--heartbeat-ms", CLI_NUMBER, &hb, 100, 3600000},
                            {0}};
    const cli_cmd c = {
        "sharehub-link",
        "usage: sharehub-link --directory FILE --federation-key HEX --authority LA --peer LA\n"
        "           --curve-key FILE --local ENDPOINT --local-key Z85 [--heartbeat-ms N]\n"
        "  Carries what the broker of authority --peer holds for authority --authority into\n"
        "  this authority's broker (--local, whose public key is --local-key), as\n"
        "  docs/federation.md describes. The remote broker's endpoint and key come from the\n"
        "  signed directory. The key in --curve-key is enrolled at the remote broker as\n"
        "  \"LA\" + --authority and at the local one as \"LA\" + --peer, both sector peer.\n"
        "  SIGTERM stops it; exit 1 when it cannot start, 2 for a usage error.\n",
        opts,
        0,
        0,
        ""};
    int rc = cli_parse(&c, argc - 1, argv + 1, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    const char *missing = !dir         ? "--directory"
                          : !fedkey    ? "--federation-key"
                          : !own       ? "--authority"
                          : !peer      ? "--peer"
                          : !key       ? "--curve-key"
                          : !local     ? "--local"
                          : !local_key ? "--local-key"
                                       : NULL;
    if (missing) return cli_usage(&c, "missing option '%s'", missing);
    uint8_t fk[SH_SIGN_PUB_BYTES];
    if (sh_hex_decode(fedkey, fk, sizeof fk))
        return cli_usage(&c, "--federation-key: want 64 hex digits");
    sh_directory *d = NULL;
    sh_error err = {0};
    char buf[400];
    if (sh_directory_load(dir, fk, &d, &err)) {
        fprintf(stderr, "sharehub-link: %s\n", sh_error_format(&err, buf, sizeof buf));
        return SH_EXIT_FAILED;
    }
    const sh_authority *a = sh_directory_find(d, peer);
    if (!a || !sh_directory_find(d, own) || strcmp(own, peer) == 0) {
        fprintf(stderr, "sharehub-link: %s: %s\n", dir,
                !a                       ? "the directory has no authority --peer"
                : strcmp(own, peer) == 0 ? "--peer is this authority"
                                         : "the directory has no authority --authority");
        sh_directory_destroy(&d);
        return SH_EXIT_FAILED;
    }
    if (cli_signals(s_on_signal, 0)) {
        sh_directory_destroy(&d);
        return SH_EXIT_FAILED;
    }
    char ep[256], rk[SH_Z85_LEN + 1];
    snprintf(ep, sizeof ep, "%s", a->endpoint);
    snprintf(rk, sizeof rk, "%s", a->curve_key);
    sh_directory_destroy(&d);
    return s_run(ep, rk, local, local_key, key, hb);
}
