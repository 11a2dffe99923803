/*
 * queue_bench.c — the time the hub's agent takes to answer the front-door queue's first page
 * (the `queue` request of docs/agent.md, what the workspace's queue page asks), over the
 * agent's local socket, as bench/workspace_bench.py runs it:
 *
 *   queue_bench SOCKET USER N [FILTER-JSON]
 *
 * Sends N requests one after another (a REQ socket) and prints one JSON line: the queue's total,
 * the items on the page, and the latency quantiles in milliseconds.
 *
 * Owns: its socket. Never: counts an answer that is not ok (the run fails).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "measure.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: queue_bench SOCKET USER N [FILTER-JSON]\n");
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    if (n < 1 || n > 100000) {
        fprintf(stderr, "queue_bench: N: 1 to 100000\n");
        return 2;
    }
    char ep[600], req[1200];
    snprintf(ep, sizeof ep, "ipc://%s", argv[1]);
    snprintf(req, sizeof req, "{\"op\":\"queue\",\"user\":\"%s\",\"limit\":25%s%s}", argv[2],
             argc > 4 ? "," : "", argc > 4 ? argv[4] : "");
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int tmo = 30000, linger = 0;
    if (!s || zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo) ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) || zmq_connect(s, ep)) {
        fprintf(stderr, "queue_bench: cannot connect to %s: %s\n", ep, zmq_strerror(zmq_errno()));
        return 1;
    }
    double *lat = calloc((size_t)n, sizeof *lat);
    char *buf = malloc(1 << 20);
    if (!lat || !buf) return 1;
    long total = -1, items = 0;
    for (long i = 0; i < n; i++) {
        double t0 = bench_now();
        if (zmq_send(s, req, strlen(req), 0) < 0) return 1;
        int len = zmq_recv(s, buf, (1 << 20) - 1, 0);
        lat[i] = bench_now() - t0;
        if (len < 0 || len >= (1 << 20) - 1) {
            fprintf(stderr, "queue_bench: no answer (or over 1 MiB)\n");
            return 1;
        }
        buf[len] = '\0';
        if (!strstr(buf, "\"ok\":true")) {
            fprintf(stderr, "queue_bench: refused: %.300s\n", buf);
            return 1;
        }
        const char *t = strstr(buf, "\"total\":");
        total = t ? strtol(t + 8, NULL, 10) : -1;
        items = 0;
        for (const char *p = buf; (p = strstr(p, "\"event_id\":")); p++)
            items++;
    }
    bench_sort(lat, (size_t)n);
    printf("{\"requests\":%ld,\"total\":%ld,\"items\":%ld,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"max_ms\":%.2f}\n",
           n, total, items, bench_quantile(lat, (size_t)n, 0.5) * 1e3,
           bench_quantile(lat, (size_t)n, 0.99) * 1e3, lat[n - 1] * 1e3);
    free(lat);
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
