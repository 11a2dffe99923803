/*
 * api_load.c — load for the agency API (bench/api_bench.py runs it): C connections over TLS
 * with a client certificate, HTTP/1.1 keep-alive, one request in flight on each, N requests
 * in all; prints requests/s and the latency quantiles as one JSON line.
 *
 *   api_load HOST PORT CA CERT KEY CONNS N post PATH BODY-FILE
 *   api_load HOST PORT CA CERT KEY CONNS N get  PATH-FILE   (one path per line, taken in turn)
 *
 * Owns: its connections and threads. Never: counts an answer other than 2xx as done (the
 * first other status is printed and the run fails).
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "measure.h"

typedef struct job {
    const char *host;
    int port;
    SSL_CTX *ctx;
    int post;
    const char *path;
    const char *body;
    size_t body_len;
    char **paths;
    size_t npaths;
    long n;      /* requests this connection makes */
    double *lat; /* its latencies, seconds */
    int failed;
    char why[200];
} job;

static atomic_long s_next_path;

/* Reads one HTTP/1.1 response; its status, or -1. */
static int s_response(SSL *ssl, char *buf, size_t cap)
{
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        if (have == cap) return -1;
        int r = SSL_read(ssl, buf + have, (int)(cap - have));
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) return -1;
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    long len = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
    size_t body = have - (size_t)(end + 4 - buf);
    while ((long)body < len) {
        char sink[16384];
        int r = SSL_read(ssl, sink, sizeof sink);
        if (r <= 0) return -1;
        body += (size_t)r;
    }
    return status;
}

static void *s_run(void *arg)
{
    job *j = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    inet_pton(AF_INET, j->host, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    SSL *ssl = SSL_new(j->ctx);
    if (fd < 0 || !ssl || connect(fd, (struct sockaddr *)&a, sizeof a) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) || !SSL_set_fd(ssl, fd) ||
        SSL_connect(ssl) != 1) {
        snprintf(j->why, sizeof j->why, "cannot connect over TLS");
        j->failed = 1;
        goto out;
    }
    char *req = malloc(j->body_len + 1024), *buf = malloc(65536);
    for (long i = 0; i < j->n && req && buf; i++) {
        const char *path = j->path;
        if (!j->post) path = j->paths[atomic_fetch_add(&s_next_path, 1) % (long)j->npaths];
        int n = j->post
                    ? snprintf(req, 1024,
                               "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                               "X-Sharehub-User: bench\r\nX-Sharehub-Purpose: bench\r\n"
                               "Content-Length: %zu\r\n\r\n",
                               path, j->host, j->body_len)
                    : snprintf(req, 1024,
                               "GET %s HTTP/1.1\r\nHost: %s\r\nX-Sharehub-User: bench\r\n"
                               "X-Sharehub-Purpose: bench\r\n\r\n",
                               path, j->host);
        if (j->post) memcpy(req + n, j->body, j->body_len);
        size_t len = (size_t)n + (j->post ? j->body_len : 0);
        double t0 = bench_now();
        int st = SSL_write(ssl, req, (int)len) == (int)len ? s_response(ssl, buf, 65536) : -1;
        j->lat[i] = bench_now() - t0;
        if (st < 200 || st > 299) {
            snprintf(j->why, sizeof j->why, "request %ld: status %d", i, st);
            j->failed = 1;
            break;
        }
    }
    free(req);
    free(buf);
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = malloc(1 << 20);
    *len = b ? fread(b, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (b) b[*len] = '\0';
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 11) {
        fprintf(stderr, "usage: api_load HOST PORT CA CERT KEY CONNS N post PATH BODY-FILE\n"
                        "       api_load HOST PORT CA CERT KEY CONNS N get - PATHS-FILE\n");
        return 2;
    }
    int conns = atoi(argv[6]);
    long n = atol(argv[7]);
    int post = strcmp(argv[8], "post") == 0;
    if (conns < 1 || conns > 256 || n < conns) return 2;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1 ||
        SSL_CTX_use_certificate_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "api_load: certificates: %s\n", ERR_error_string(ERR_get_error(), NULL));
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    size_t blen = 0;
    char *body = s_slurp(argv[10], &blen);
    if (!body) return 1;
    char **paths = NULL;
    size_t npaths = 0;
    if (!post) {
        for (char *p = strtok(body, "\n"); p; p = strtok(NULL, "\n")) {
            char **np = realloc(paths, (npaths + 1) * sizeof *np);
            if (!np) return 1;
            paths = np;
            paths[npaths++] = p;
        }
        if (!npaths) return 2;
    }
    job *jobs = calloc((size_t)conns, sizeof *jobs);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    double *lat = calloc((size_t)n, sizeof *lat);
    if (!jobs || !th || !lat) return 1;
    long given = 0;
    for (int i = 0; i < conns; i++) {
        job *j = &jobs[i];
        *j = (job){argv[1],     atoi(argv[2]),
                   ctx,         post,
                   argv[9],     body,
                   blen,        paths,
                   npaths,      n / conns + (i < n % conns),
                   lat + given, 0,
                   ""};
        given += j->n;
    }
    double t0 = bench_now();
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, s_run, &jobs[i]);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double secs = bench_now() - t0;
    for (int i = 0; i < conns; i++)
        if (jobs[i].failed) {
            fprintf(stderr, "api_load: connection %d: %s\n", i, jobs[i].why);
            return 1;
        }
    bench_sort(lat, (size_t)n);
    printf("{\"requests\":%ld,\"connections\":%d,\"seconds\":%.3f,\"per_second\":%.0f,"
           "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
           n, conns, secs, (double)n / secs, bench_quantile(lat, (size_t)n, 0.50) * 1e3,
           bench_quantile(lat, (size_t)n, 0.99) * 1e3, lat[n - 1] * 1e3);
    free(lat);
    free(jobs);
    free(th);
    free(paths);
    free(body);
    SSL_CTX_free(ctx);
    return 0;
}
