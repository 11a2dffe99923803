/*
 * sharehub_bench.c — issue 7's workload on sharehub, through the real executables: the broker
 * and three recipient agents (the hub 881, a school 8819990, an acute trust RAJ), each with its
 * own encrypted, audited store, on loopback (tests/rig.c starts them). One publisher, holding
 * the community trust R1L's key, publishes requests for support of about 1 KB that one ISP
 * permits, whole, to all three.
 *
 * The publisher sends what is due as an agent's outbox does (sh_gather_due): at once when
 * nothing is unconfirmed, else gathered behind what is, for at most SH_GATHER_MS; a paced
 * event's latency counts from its paced time, so the gathering is in every figure.
 *
 * A publish is confirmed by the broker only after its durable, audited write; a recipient
 * acknowledges only after its own durable write; each acknowledgement comes back to the
 * publisher as a DELIVERED receipt. An event is "fully delivered" when the publisher holds
 * all three receipts, so the latency printed is publish -> stored at all three recipients ->
 * receipt back at the publisher: one broker hop and commit more than "stored at the recipient".
 * The "stored" latencies stop earlier: each receipt carries the time (wall clock, whole ms)
 * at which the broker handled the recipient's ACK, which the recipient sends only after its
 * durable write; publish -> the latest of the three, rounded up to the next ms, is an upper
 * bound on publish -> stored at all three.
 *
 * Prints "key value" lines (bench/run makes the table). Not a test.
 *
 * usage: sharehub_bench BUILD-DIR throughput N WINDOW
 *        sharehub_bench BUILD-DIR latency RATE SECONDS
 *        sharehub_bench BUILD-DIR backlog N        (recipients offline; then kill -9, restart)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "codec.h"
#include "rig.h"
#include "synth.h"
#include "measure.h"

#define NARRATIVE  560 /* makes an encoded request for support of about 1 KB */
#define RECIPIENTS 3

static const char *s_policy =
    "purposes: [safeguarding]\nevent_types: [request_for_support]\n"
    "senders: [{organisation: R1L}]\nrecipients:\n"
    "  - {organisation: '881', data_items: [child, level_of_need, request_for_support]}\n"
    "  - {organisation: '8819990', data_items: [child, level_of_need, request_for_support]}\n"
    "  - {organisation: RAJ, data_items: [child, level_of_need, request_for_support]}\n";

/* ---- events ------------------------------------------------------------------------- */

typedef struct event {
    uint8_t *buf;
    size_t len;
    uint8_t id[16];
    double sent, confirmed, delivered; /* monotonic clock */
    double sent_wall, stored_wall;     /* wall clock: publish, and the latest ACK's receipt */
    int receipts;
} event;

typedef struct run {
    event *ev;
    size_t n;
    size_t *slot; /* open-addressing table: event id -> index + 1 */
    size_t cap;
    uint64_t rng;
    sh_synth_child child;
    size_t bytes;
} run;

static size_t s_hash(const uint8_t id[16], size_t cap)
{
    uint64_t h;
    memcpy(&h, id + 8, 8); /* UUIDv7: the random half */
    return (size_t)(h * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static event *s_find(run *r, const uint8_t id[16])
{
    for (size_t i = s_hash(id, r->cap);; i = (i + 1) & (r->cap - 1)) {
        if (!r->slot[i]) return NULL;
        event *e = &r->ev[r->slot[i] - 1];
        if (memcmp(e->id, id, 16) == 0) return e;
    }
}

/* Makes event i (encoded, id recorded and indexed); 0 or -1. */
static int s_make(run *r, size_t i)
{
    sh_error err;
    sh_envelope *env = NULL;
    event *e = &r->ev[i];
    if (i % 50 == 0) sh_synth_child_make(&r->rng, "881", &r->child);
    if (sh_synth_event(&r->rng, 1, &r->child, "R1L", NULL, NULL, NARRATIVE, &e->buf, &e->len,
                       &err) ||
        sh_envelope_decode(e->buf, e->len, &env, &err)) {
        fprintf(stderr, "sharehub_bench: event: %s\n", err.detail);
        return -1;
    }
    memcpy(e->id, env->event_id.data, 16);
    sh_envelope_free(env);
    size_t k = s_hash(e->id, r->cap);
    while (r->slot[k])
        k = (k + 1) & (r->cap - 1);
    r->slot[k] = i + 1;
    r->bytes += e->len;
    return 0;
}

static int s_run_new(run *r, size_t n, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->rng = seed;
    for (r->cap = 1024; r->cap < 2 * n; r->cap *= 2)
        ;
    r->ev = calloc(n, sizeof *r->ev);
    r->slot = calloc(r->cap, sizeof *r->slot);
    if (!r->ev || !r->slot) return -1;
    for (size_t i = 0; i < n; i++)
        if (s_make(r, i)) return -1;
    return 0;
}

static void s_run_free(run *r)
{
    for (size_t i = 0; r->ev && i < r->n; i++)
        free(r->ev[i].buf);
    free(r->ev);
    free(r->slot);
}

/* ---- the publisher ------------------------------------------------------------------ */

/* Receipts to acknowledge: one ACK for what one drain of the socket brought, as an agent does. */
typedef struct acks {
    uint8_t id[SH_ACK_MAX][16];
    size_t n;
} acks;

static int s_ack_flush(sh_client *c, acks *a)
{
    sh_err rc = sh_client_ack_many(c, (const uint8_t(*)[16])a->id, a->n);
    a->n = 0;
    return rc ? -1 : 0;
}

/* One message from the broker: a CONFIRM, or a receipt (acknowledged). -1 on a refusal. */
static int s_handle(run *r, sh_client *c, const sh_msg *m, size_t *confirmed, size_t *delivered,
                    size_t *inflight, acks *a)
{
    double now = bench_now();
    if (strcmp(m->command, "CONFIRM") == 0) {
        if (sh_msg_code(m) != 0) {
            fprintf(stderr, "sharehub_bench: publish refused: E%03d %.*s\n", sh_msg_code(m),
                    m->nframes > 2 ? (int)m->len[2] : 0,
                    m->nframes > 2 ? (const char *)m->frame[2] : "");
            return -1;
        }
        event *e = m->len[0] == 16 ? s_find(r, m->frame[0]) : NULL;
        if (e && e->confirmed == 0) {
            e->confirmed = now;
            (*confirmed)++;
            (*inflight)--;
        }
    } else if (strcmp(m->command, "DELIVER") == 0 && m->nframes >= 5 && m->len[0] == 16) {
        sh_envelope *env = NULL;
        sh_error err;
        if (sh_envelope_decode_minimised(m->frame[4], m->len[4], &env, &err) == SH_OK &&
            env->body_case == SHAREHUB__V1__ENVELOPE__BODY_DELIVERY_RECEIPT &&
            env->delivery_receipt->for_event_id.len == 16 &&
            /* (the broker's; the recipients' own STORED receipts come later, and are acked) */
            env->delivery_receipt->status ==
                SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED) {
            const Sharehub__V1__DeliveryReceipt *rc = env->delivery_receipt;
            double acked = (double)(rc->at_ms + 1) / 1e3;
            for (size_t k = 0; k <= rc->n_more_event_ids; k++) { /* one receipt, many events */
                const ProtobufCBinaryData *id = k ? &rc->more_event_ids[k - 1] : &rc->for_event_id;
                event *e = id->len == 16 ? s_find(r, id->data) : NULL;
                if (e && acked > e->stored_wall) e->stored_wall = acked;
                if (e && ++e->receipts == RECIPIENTS) {
                    e->delivered = now;
                    (*delivered)++;
                }
            }
        }
        sh_envelope_free(env);
        memcpy(a->id[a->n++], m->frame[0], 16);
        if (a->n == SH_ACK_MAX && s_ack_flush(c, a)) return -1;
    }
    return 0;
}

/* How many of n events paced at rate from t0 are due at now. */
static size_t s_due(size_t n, double t0, double rate, double now)
{
    double k = (now - t0) * rate + 1;
    return k <= 0 ? 0 : k >= (double)n ? n : (size_t)k;
}

/* Publishes every event of r, at most window unconfirmed, at rate events/s (0: as fast as
 * the window allows); waits until all are fully delivered. 0, or -1. */
static int s_publish(run *r, sh_client *c, size_t window, double rate, int need_delivery,
                     double *t_end)
{
    size_t next = 0, confirmed = 0, delivered = 0, inflight = 0;
    double t0 = bench_now(), last = t0;
    sh_msg m;
    acks a = {.n = 0};
    while (need_delivery ? delivered < r->n : confirmed < r->n) {
        double now = bench_now();
        int progressed = 0;
        /* what is due goes as one batch, one signature, by the rule an agent's drain follows
         * (sh_gather_due, docs/agent.md#publishing): at once when nothing is unconfirmed, else
         * once SH_GATHER_MAX wait or the first has waited SH_GATHER_MS */
        const uint8_t *envs[256];
        size_t lens[256], nb = 0, due = rate > 0 ? s_due(r->n, t0, rate, now) : r->n;
        double waited = rate > 0 ? now - (t0 + next / rate) : 0;
        int go = due > next && sh_gather_due(inflight, due - next, (int64_t)(waited * 1e3));
        double wall = bench_wall();
        while (go && next < due && inflight < window && nb < 256) {
            /* a paced event's latency counts from its time, the gathering included */
            double late = rate > 0 ? now - (t0 + next / rate) : 0;
            r->ev[next].sent = now - late;
            r->ev[next].sent_wall = wall - late;
            envs[nb] = r->ev[next].buf;
            lens[nb++] = r->ev[next].len;
            next++;
            inflight++;
            progressed = 1;
        }
        if (nb && sh_client_publish_batch(c, envs, lens, nb)) return -1;
        sh_err rc;
        while ((rc = sh_client_recv(c, 0, &m)) == SH_OK) {
            if (s_handle(r, c, &m, &confirmed, &delivered, &inflight, &a)) return -1;
            progressed = 1;
        }
        if (s_ack_flush(c, &a)) return -1;
        if (rc != SH_E_NOT_FOUND) return -1;
        if (progressed) {
            last = now;
            continue;
        }
        if (now - last > 60) {
            fprintf(stderr, "sharehub_bench: stalled: %zu confirmed, %zu delivered of %zu\n",
                    confirmed, delivered, r->n);
            for (size_t i = 0, k = 0; i < r->n && k < 12; i++)
                if (r->ev[i].confirmed == 0) {
                    fprintf(stderr, "  unconfirmed: #%zu (sent %.3f s after the start)\n", i,
                            r->ev[i].sent - t0);
                    k++;
                }
            return -1;
        }
        /* nothing to do: wait for a message, or until the next paced send */
        zmq_pollitem_t item = {sh_client_socket(c), 0, ZMQ_POLLIN, 0};
        long wait_us = 1000;
        if (rate > 0 && next < r->n) { /* the next event's time, or the end of the gathering:
                                        * its time limit, or its SH_GATHER_MAX-th event's time */
            double full = (double)(next + SH_GATHER_MAX - 1) / rate,
                   limit = next / rate + SH_GATHER_MS / 1e3;
            double at = t0 + (due > next ? (full < limit ? full : limit) : next / rate) - now;
            wait_us = at <= 0 ? 0 : (long)(at * 1e6);
        }
        if (wait_us >= 1000)
            zmq_poll(&item, 1, wait_us / 1000);
        else if (wait_us > 0)
            nanosleep(&(struct timespec){0, wait_us * 1000}, NULL);
    }
    *t_end = bench_now();
    return 0;
}

/* ---- the three programs --------------------------------------------------------------- */

static rig *s_rig(const char *bindir, int with_recipients, unsigned map_mib)
{
    rig_opts o = {.port = 32000 + getpid() % 1700, .policy = s_policy, .map_mib = map_mib};
    rig *g = rig_new(bindir, &o);
    if (!g) return NULL;
    int ok = rig_start(g, RIG_BROKER) == 0;
    for (int i = RIG_HUB; ok && with_recipients && i <= RIG_HEALTH; i++)
        ok = rig_start(g, i) == 0 && rig_wait_connected(g, i, 15000) == 0;
    if (!ok) rig_destroy(&g);
    return g;
}

static sh_client *s_publisher(rig *g)
{
    sh_client *c = NULL;
    sh_msg m;
    if (rig_client(g, RIG_PUB, &c) || sh_client_hello(c, "*") ||
        sh_client_expect(c, "READY", 10000, &m)) {
        sh_client_destroy(&c);
        return NULL;
    }
    return c;
}

static void s_latencies(const run *r, const char *prefix)
{
    double *d = malloc(r->n * sizeof *d);
    if (!d) return;
    for (int stored = 0; stored <= 1; stored++) {
        for (size_t i = 0; i < r->n; i++)
            d[i] = stored ? (r->ev[i].stored_wall - r->ev[i].sent_wall) * 1e3
                          : (r->ev[i].delivered - r->ev[i].sent) * 1e3;
        bench_sort(d, r->n);
        const char *s = stored ? "_stored" : "";
        printf("%s%s_p50_ms %.2f\n%s%s_p99_ms %.2f\n%s%s_p999_ms %.2f\n%s%s_max_ms %.2f\n", prefix,
               s, bench_quantile(d, r->n, 0.5), prefix, s, bench_quantile(d, r->n, 0.99), prefix, s,
               bench_quantile(d, r->n, 0.999), prefix, s, d[r->n - 1]);
    }
    free(d);
}

static int s_throughput(const char *bindir, size_t n, size_t window)
{
    run r;
    rig *g = NULL;
    sh_client *c = NULL;
    int status = 1;
    double t_end;
    if (s_run_new(&r, n, 0x5eed + n) || !(g = s_rig(bindir, 1, 0)) || !(c = s_publisher(g)))
        goto out;
    double t0 = bench_now();
    if (s_publish(&r, c, window, 0, 1, &t_end)) goto out;
    double last_confirm = 0;
    for (size_t i = 0; i < n; i++)
        if (r.ev[i].confirmed > last_confirm) last_confirm = r.ev[i].confirmed;
    long peak = 0;
    rig_rss_kib(g, RIG_BROKER, &peak, NULL);
    printf("events %zu\nevent_bytes %.0f\nconfirmed_per_s %.0f\ndelivered_per_s %.0f\n"
           "broker_peak_rss_kib %ld\n",
           n, (double)r.bytes / (double)n, (double)n / (last_confirm - t0),
           (double)n / (t_end - t0), peak);
    s_latencies(&r, "saturated");
    status = 0;
out:
    sh_client_destroy(&c);
    if (g && rig_stop_all(g)) status = 1;
    rig_destroy(&g);
    s_run_free(&r);
    return status;
}

static int s_latency(const char *bindir, double rate, double seconds)
{
    run r;
    rig *g = NULL;
    sh_client *c = NULL;
    int status = 1;
    double t_end;
    size_t n = (size_t)(rate * seconds);
    if (n < 100 || s_run_new(&r, n, 0x1a7 + n) || !(g = s_rig(bindir, 1, 0)) ||
        !(c = s_publisher(g)))
        goto out;
    double t0 = bench_now();
    if (s_publish(&r, c, 100000, rate, 1, &t_end)) goto out;
    printf("rate %.0f\nevents %zu\nachieved_per_s %.0f\n", rate, n,
           (double)n / (r.ev[n - 1].sent - t0));
    long long wb = rig_write_bytes(g, RIG_BROKER), wa = 0;
    static const int agents[RECIPIENTS] = {RIG_HUB, RIG_SCHOOL, RIG_HEALTH};
    for (int i = 0; i < RECIPIENTS && wa >= 0; i++) {
        long long w = rig_write_bytes(g, agents[i]);
        wa = w < 0 ? -1 : wa + w;
    }
    if (wb >= 0 && wa >= 0)
        printf("broker_disk_bytes_per_event %.0f\nagent_disk_bytes_per_event %.0f\n",
               (double)wb / (double)n, (double)wa / RECIPIENTS / (double)n);
    s_latencies(&r, "latency");
    status = 0;
out:
    sh_client_destroy(&c);
    if (g && rig_stop_all(g)) status = 1;
    rig_destroy(&g);
    s_run_free(&r);
    return status;
}

/* Until the broker answers a PING: seconds, or -1. */
static double s_until_serving(rig *g, double t0, double limit_s)
{
    while (bench_now() - t0 < limit_s) {
        sh_client *c = NULL;
        sh_msg m;
        int ok = rig_client(g, RIG_PUB, &c) == 0 && sh_client_ping(c) == SH_OK &&
                 sh_client_expect(c, "PONG", 100, &m) == SH_OK;
        sh_client_destroy(&c);
        if (ok) return bench_now() - t0;
    }
    return -1;
}

static int s_backlog(const char *bindir, size_t n)
{
    run r;
    rig *g = NULL;
    sh_client *c = NULL;
    int status = 1;
    double t_end;
    /* events are made in chunks, so a million need not be held at once */
    size_t chunk = n < 100000 ? n : 100000, done = 0;
    if (s_run_new(&r, chunk, 0xb10c) || !(g = s_rig(bindir, 0, 16384)) || !(c = s_publisher(g)))
        goto out;
    long rss0 = rig_rss_kib(g, RIG_BROKER, NULL, NULL);
    double t0 = bench_now();
    while (done < n) {
        if (done) { /* the next chunk: fresh events under the same table */
            for (size_t i = 0; i < r.n; i++)
                free(r.ev[i].buf);
            memset(r.ev, 0, r.n * sizeof *r.ev);
            memset(r.slot, 0, r.cap * sizeof *r.slot);
            for (size_t i = 0; i < r.n; i++)
                if (s_make(&r, i)) goto out;
        }
        if (s_publish(&r, c, 512, 0, 0, &t_end)) goto out;
        done += r.n;
        fprintf(stderr, "backlog: %zu queued\n", done);
    }
    sleep(2); /* the broker's housekeeping settles */
    long peak = 0, anon = 0, rss1 = rig_rss_kib(g, RIG_BROKER, &peak, &anon);
    printf("queued_events %zu\nqueue_entries %zu\npublish_per_s %.0f\nbroker_rss_before_kib "
           "%ld\nbroker_rss_queued_kib %ld\nbroker_anon_queued_kib %ld\nbroker_peak_rss_kib "
           "%ld\n",
           done, done * RECIPIENTS, (double)done / (t_end - t0), rss0, rss1, anon, peak);
    sh_client_destroy(&c);
    /* kill -9 with the queue full, restart, time until it answers and until it confirms */
    rig_signal(g, RIG_BROKER, SIGKILL); /* (waits for the exit; returns its status) */
    double k0 = bench_now();
    if (rig_start(g, RIG_BROKER)) goto out;
    double serving = s_until_serving(g, k0, 30);
    double confirm = -1;
    sh_msg m;
    if (serving >= 0 && (c = s_publisher(g))) {
        sh_error err;
        free(r.ev[0].buf);
        r.ev[0].buf = NULL;
        if (sh_synth_event(&r.rng, 1, &r.child, "R1L", NULL, NULL, NARRATIVE, &r.ev[0].buf,
                           &r.ev[0].len, &err) == SH_OK &&
            sh_client_publish(c, r.ev[0].buf, r.ev[0].len) == SH_OK &&
            sh_client_expect(c, "CONFIRM", 10000, &m) == SH_OK && sh_msg_code(&m) == 0)
            confirm = bench_now() - k0;
    }
    long rss2 = rig_rss_kib(g, RIG_BROKER, NULL, NULL);
    printf("restart_serving_s %.3f\nrestart_first_confirm_s %.3f\nbroker_rss_restarted_kib %ld\n",
           serving, confirm, rss2);
    status = serving >= 0 && confirm >= 0 ? 0 : 1;
out:
    sh_client_destroy(&c);
    if (g && rig_stop_all(g)) status = 1;
    rig_destroy(&g);
    s_run_free(&r);
    return status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && strcmp(argv[2], "throughput") == 0)
        return s_throughput(argv[1], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
    if (argc >= 5 && strcmp(argv[2], "latency") == 0)
        return s_latency(argv[1], strtod(argv[3], NULL), strtod(argv[4], NULL));
    if (argc >= 4 && strcmp(argv[2], "backlog") == 0)
        return s_backlog(argv[1], strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: sharehub_bench BUILD-DIR throughput N WINDOW\n"
                    "       sharehub_bench BUILD-DIR latency RATE SECONDS\n"
                    "       sharehub_bench BUILD-DIR backlog N\n");
    return 2;
}
