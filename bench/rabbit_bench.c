/*
 * rabbit_bench.c — issue 7's workload on RabbitMQ, for comparison with sharehub_bench: the
 * same ~1 KB events (sharehub's own encoded requests for support, behind a 16-byte header),
 * one publisher and three consumers on the same machine. The broker (started by bench/run on
 * loopback) is set up as a careful engineer would for durable delivery: a durable fanout
 * exchange, three durable queues, persistent messages, publisher confirms (pipelined, at most
 * WINDOW unconfirmed). Each consumer is its own process with manual acknowledgement: it takes
 * what has arrived (prefetch 256), appends each message to its own file, calls fdatasync once
 * for the batch, then acknowledges the batch (multiple=true) — group commit, as sharehub's
 * agents do. An event is "fully delivered" when all three consumers have it on disk.
 *
 * What RabbitMQ does not do here that sharehub does: no policy decision, no per-recipient
 * minimisation, no encryption at rest, no audit log, no delivery receipt back to the sender.
 *
 * Prints "key value" lines (bench/run makes the table). Not a test.
 *
 * usage: rabbit_bench PORT throughput N WINDOW
 *        rabbit_bench PORT latency RATE SECONDS
 *        rabbit_bench PORT fill N          (N persistent messages queued, no consumer)
 *        rabbit_bench PORT probe SECONDS   (until a publish is confirmed: the seconds taken)
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "synth.h"
#include "measure.h"

#define NARRATIVE  560 /* as sharehub_bench: about 1 KB encoded */
#define RECIPIENTS 3
#define PREFETCH   256
#define EXCHANGE   "sharehub.bench"

static const char *s_queue[RECIPIENTS] = {"bench.881", "bench.8819990", "bench.RAJ"};

/* 0 when the last RPC succeeded; otherwise says what failed. */
static int s_ok(amqp_connection_state_t c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    fprintf(stderr, "rabbit_bench: %s failed (reply type %d, library error %d)\n", what,
            (int)r.reply_type, r.library_error);
    return -1;
}

static amqp_connection_state_t s_connect(int port)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = c ? amqp_tcp_socket_new(c) : NULL;
    if (!sock || amqp_socket_open(sock, "127.0.0.1", port) != AMQP_STATUS_OK) {
        fprintf(stderr, "rabbit_bench: cannot connect to 127.0.0.1:%d\n", port);
        if (c) amqp_destroy_connection(c);
        return NULL;
    }
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (r.reply_type != AMQP_RESPONSE_NORMAL || !amqp_channel_open(c, 1) ||
        s_ok(c, "channel open")) {
        fprintf(stderr, "rabbit_bench: login failed\n");
        amqp_destroy_connection(c);
        return NULL;
    }
    return c;
}

static void s_close(amqp_connection_state_t c)
{
    if (!c) return;
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* The durable fanout exchange and three durable queues, emptied. */
static int s_declare(amqp_connection_state_t c)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("fanout"), 0, 1, 0,
                          0, amqp_empty_table);
    if (s_ok(c, "exchange declare")) return -1;
    for (int i = 0; i < RECIPIENTS; i++) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(s_queue[i]), 0, 1, 0, 0, amqp_empty_table);
        if (s_ok(c, "queue declare")) return -1;
        amqp_queue_bind(c, 1, amqp_cstring_bytes(s_queue[i]), amqp_cstring_bytes(EXCHANGE),
                        amqp_empty_bytes, amqp_empty_table);
        if (s_ok(c, "queue bind")) return -1;
        amqp_queue_purge(c, 1, amqp_cstring_bytes(s_queue[i]));
        if (s_ok(c, "queue purge")) return -1;
    }
    return 0;
}

/* ---- a consumer: its own process, its own file ------------------------------------------- */

/* Receives n messages from queue q; writes each completion time (after the fdatasync that
 * made it durable) to times[index]. 0, or non-zero. */
static int s_consume(int port, int q, size_t n, const char *dir, double *times)
{
    amqp_connection_state_t c = s_connect(port);
    if (!c) return 1;
    char path[600];
    snprintf(path, sizeof path, "%s/%s.data", dir, s_queue[q]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return 1;
    amqp_basic_qos(c, 1, 0, PREFETCH, 0);
    if (s_ok(c, "qos")) return 1;
    amqp_basic_consume(c, 1, amqp_cstring_bytes(s_queue[q]), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (s_ok(c, "consume")) return 1;
    size_t got = 0, idx[PREFETCH];
    while (got < n) {
        size_t k = 0;
        uint64_t last_tag = 0;
        struct timeval wait = {30, 0}, none = {0, 0};
        while (k < PREFETCH) {
            amqp_envelope_t env;
            amqp_maybe_release_buffers(c);
            amqp_rpc_reply_t r = amqp_consume_message(c, &env, k ? &none : &wait, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                if (k) break; /* nothing more has arrived: commit what we have */
                fprintf(stderr, "rabbit_bench: consumer %s: nothing for 30 s\n", s_queue[q]);
                return 2;
            }
            uint64_t i = 0;
            if (env.message.body.len >= 16) memcpy(&i, env.message.body.bytes, 8);
            ssize_t w = write(fd, env.message.body.bytes, env.message.body.len);
            last_tag = env.delivery_tag;
            amqp_destroy_envelope(&env);
            if (w < 0 || i >= n) return 3;
            idx[k++] = (size_t)i;
        }
        if (fdatasync(fd) != 0) return 4;
        double now = bench_now();
        for (size_t j = 0; j < k; j++)
            times[idx[j]] = now;
        if (amqp_basic_ack(c, 1, last_tag, 1) != AMQP_STATUS_OK) return 5;
        got += k;
    }
    close(fd);
    s_close(c);
    return 0;
}

/* ---- the publisher ------------------------------------------------------------------------ */

/* Reads publisher confirms that have arrived (waiting up to wait_us for the first); adds the
 * number of newly confirmed messages to *acked. -1 on a nack or a broken connection. */
static int s_confirms(amqp_connection_state_t c, uint64_t *acked, long wait_us)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {wait_us / 1000000, wait_us % 1000000};
        int rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT) return 0;
        if (rc != AMQP_STATUS_OK) return -1;
        wait_us = 0;
        if (f.frame_type != AMQP_FRAME_METHOD) continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            /* acks arrive in order on one channel: the newest tag is the count confirmed */
            if (a->delivery_tag > *acked) *acked = a->delivery_tag;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf(stderr, "rabbit_bench: the broker refused a message (nack)\n");
            return -1;
        }
    }
}

typedef struct payloads {
    uint8_t **buf;
    size_t *len;
    size_t n, bytes;
} payloads;

static int s_payloads(payloads *p, size_t n)
{
    uint64_t rng = 0x5eed + n;
    sh_synth_child child;
    sh_error err;
    p->n = n;
    p->bytes = 0;
    p->buf = calloc(n, sizeof *p->buf);
    p->len = calloc(n, sizeof *p->len);
    if (!p->buf || !p->len) return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t *env = NULL;
        size_t len = 0;
        if (i % 50 == 0) sh_synth_child_make(&rng, "881", &child);
        if (sh_synth_event(&rng, 1, &child, "R1L", NULL, NULL, NARRATIVE, &env, &len, &err))
            return -1;
        p->buf[i] = malloc(16 + len);
        if (!p->buf[i]) return -1;
        uint64_t idx = i;
        memset(p->buf[i], 0, 16);
        memcpy(p->buf[i], &idx, 8);
        memcpy(p->buf[i] + 16, env, len);
        p->len[i] = 16 + len;
        p->bytes += 16 + len;
        free(env);
    }
    return 0;
}

static void s_payloads_free(payloads *p)
{
    for (size_t i = 0; p->buf && i < p->n; i++)
        free(p->buf[i]);
    free(p->buf);
    free(p->len);
}

/* Runs the workload: n messages, at most window unconfirmed, paced at rate/s (0: flat out). */
static int s_run(int port, size_t n, size_t window, double rate, int latency_mode)
{
    payloads p = {0};
    char dir[] = "/tmp/rabbit-bench-XXXXXX";
    if (n == 0 || !mkdtemp(dir) || s_payloads(&p, n)) return 2;
    amqp_connection_state_t c = s_connect(port);
    if (!c || s_declare(c)) return 2;
    amqp_confirm_select(c, 1);
    if (s_ok(c, "confirm select")) return 2;
    /* the consumers' completion times, shared with them */
    double *sent = calloc(n, sizeof *sent), *confirmed_at = calloc(n, sizeof *confirmed_at);
    double *times[RECIPIENTS];
    for (int q = 0; q < RECIPIENTS; q++) {
        void *m = mmap(NULL, n * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED) return 2;
        times[q] = m;
    }
    if (!sent || !confirmed_at) return 2;
    pid_t kid[RECIPIENTS];
    for (int q = 0; q < RECIPIENTS; q++) {
        kid[q] = fork();
        if (kid[q] < 0) return 2;
        if (kid[q] == 0) _exit(s_consume(port, q, n, dir, times[q]));
    }
    usleep(300 * 1000); /* the consumers are attached before the first message */
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                                               AMQP_BASIC_CONTENT_TYPE_FLAG,
                                     .delivery_mode = 2,
                                     .content_type = amqp_cstring_bytes("application/x-protobuf")};
    uint64_t acked = 0, prev_acked = 0;
    size_t next = 0;
    int status = 0;
    double t0 = bench_now();
    while (acked < n && status == 0) {
        double now = bench_now();
        while (next < n && next - acked < window && (rate <= 0 || now >= t0 + next / rate)) {
            sent[next] = now;
            if (amqp_basic_publish(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_empty_bytes, 0, 0,
                                   &props, (amqp_bytes_t){p.len[next], p.buf[next]}) != 0) {
                status = 1;
                break;
            }
            next++;
            if (rate > 0) break;
        }
        long wait_us = 0;
        if (rate > 0 && next < n) {
            double due = t0 + next / rate - bench_now();
            wait_us = due <= 0 ? 0 : (long)(due * 1e6);
        } else if (next == n || next - acked >= window) {
            wait_us = 100000;
        }
        if (s_confirms(c, &acked, wait_us)) status = 1;
        double t = bench_now();
        for (; prev_acked < acked; prev_acked++)
            confirmed_at[prev_acked] = t;
    }
    double t_confirmed = bench_now();
    for (int q = 0; q < RECIPIENTS; q++) {
        int st = 0;
        waitpid(kid[q], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "rabbit_bench: consumer %s failed (status %d)\n", s_queue[q], st);
            status = 1;
        }
    }
    if (status == 0) {
        double *d = malloc(n * sizeof *d), last = 0;
        for (size_t i = 0; d && i < n; i++) {
            double done = 0;
            for (int q = 0; q < RECIPIENTS; q++)
                if (times[q][i] > done) done = times[q][i];
            if (done > last) last = done;
            d[i] = (done - sent[i]) * 1e3;
        }
        if (!d) return 2;
        bench_sort(d, n);
        const char *pre = latency_mode ? "latency" : "saturated";
        printf("events %zu\nevent_bytes %.0f\n", n, (double)p.bytes / (double)n);
        if (latency_mode)
            printf("rate %.0f\nachieved_per_s %.0f\n", rate, (double)n / (sent[n - 1] - t0));
        else
            printf("confirmed_per_s %.0f\ndelivered_per_s %.0f\n", (double)n / (t_confirmed - t0),
                   (double)n / (last - t0));
        printf("%s_p50_ms %.2f\n%s_p99_ms %.2f\n%s_p999_ms %.2f\n%s_max_ms %.2f\n", pre,
               bench_quantile(d, n, 0.5), pre, bench_quantile(d, n, 0.99), pre,
               bench_quantile(d, n, 0.999), pre, d[n - 1]);
        free(d);
    }
    s_close(c);
    for (int q = 0; q < RECIPIENTS; q++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.data", dir, s_queue[q]);
        unlink(path);
        munmap(times[q], n * sizeof(double));
    }
    rmdir(dir);
    free(sent);
    free(confirmed_at);
    s_payloads_free(&p);
    return status;
}

/* Publishes n messages (confirmed) into the three queues with nobody consuming. */
static int s_fill(int port, size_t n)
{
    payloads p = {0};
    size_t chunk = n < 10000 ? n : 10000;
    if (n == 0 || s_payloads(&p, chunk)) return 2;
    amqp_connection_state_t c = s_connect(port);
    if (!c || s_declare(c)) return 2;
    amqp_confirm_select(c, 1);
    if (s_ok(c, "confirm select")) return 2;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    uint64_t acked = 0;
    size_t next = 0;
    double t0 = bench_now();
    while (acked < n) {
        while (next < n && next - acked < 512) {
            amqp_bytes_t body = {p.len[next % chunk], p.buf[next % chunk]};
            if (amqp_basic_publish(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_empty_bytes, 0, 0,
                                   &props, body) != 0)
                return 1;
            next++;
        }
        if (s_confirms(c, &acked, 100000)) return 1;
    }
    printf("queued_events %zu\npublish_per_s %.0f\n", n, (double)n / (bench_now() - t0));
    s_close(c);
    s_payloads_free(&p);
    return 0;
}

/* Tries, every 20 ms, to connect and have one persistent message confirmed. */
static int s_probe(int port, double limit)
{
    double t0 = bench_now();
    while (bench_now() - t0 < limit) {
        amqp_connection_state_t c = NULL;
        int ok = 0;
        FILE *devnull = freopen("/dev/null", "w", stderr); /* refusals are expected here */
        (void)devnull;
        if ((c = s_connect(port)) != NULL) {
            /* (declaring an existing exchange again is harmless; a fresh node has none) */
            amqp_exchange_declare(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_cstring_bytes("fanout"),
                                  0, 1, 0, 0, amqp_empty_table);
            amqp_confirm_select(c, 1);
            uint64_t acked = 0;
            amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                             .delivery_mode = 2};
            ok = s_ok(c, "confirm select") == 0 &&
                 amqp_basic_publish(c, 1, amqp_cstring_bytes(EXCHANGE), amqp_empty_bytes, 0, 0,
                                    &props, amqp_cstring_bytes("probe")) == 0 &&
                 s_confirms(c, &acked, 2000000) == 0 && acked == 1;
            s_close(c);
        }
        if (ok) {
            printf("serving_s %.3f\n", bench_now() - t0);
            return 0;
        }
        usleep(20 * 1000);
    }
    printf("serving_s -1\n");
    return 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && strcmp(argv[2], "throughput") == 0)
        return s_run(atoi(argv[1]), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), 0, 0);
    if (argc >= 5 && strcmp(argv[2], "latency") == 0) {
        double rate = strtod(argv[3], NULL);
        return s_run(atoi(argv[1]), (size_t)(rate * strtod(argv[4], NULL)), 100000, rate, 1);
    }
    if (argc >= 4 && strcmp(argv[2], "fill") == 0)
        return s_fill(atoi(argv[1]), strtoul(argv[3], NULL, 10));
    if (argc >= 4 && strcmp(argv[2], "probe") == 0)
        return s_probe(atoi(argv[1]), strtod(argv[3], NULL));
    fprintf(stderr, "usage: rabbit_bench PORT throughput N WINDOW\n"
                    "       rabbit_bench PORT latency RATE SECONDS\n"
                    "       rabbit_bench PORT fill N\n"
                    "       rabbit_bench PORT probe SECONDS\n");
    return 2;
}
