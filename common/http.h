/*
 * http.h — the daemons' HTTP endpoint for metrics and health checks (docs/operations.md),
 * served by libmicrohttpd inside the daemon's own event loop: no thread, so a handler reads
 * the daemon's state without locks, and a daemon whose loop is stuck stops answering its
 * liveness probe.
 *
 * Owns: the listening socket and libmicrohttpd's connections. Never: serves anything but
 * GET and HEAD; blocks the event loop (libmicrohttpd runs non-blocking, connections are few
 * and time out).
 */
#ifndef SHAREHUB_HTTP_H
#define SHAREHUB_HTTP_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* What a daemon serves (docs/operations.md#metrics-and-health):
 *   /metrics  metrics(ctx, f) writes the page (Prometheus text 0.0.4); 0, or -1 (500)
 *   /healthz  200 "ok" whenever the event loop turns
 *   /readyz   200 "ready" when not_ready(ctx) is NULL, else 503 "not ready: <its reason>"
 * and 404 for any other path. */
typedef struct sh_http_site {
    int (*metrics)(void *ctx, FILE *f);
    const char *(*not_ready)(void *ctx);
    void *ctx;
} sh_http_site;

typedef struct sh_http sh_http;

/* A listening address written "127.0.0.1:9750" or "[::1]:9750" (a numeric address and a port
 * 1-65535) into addr; 0, or -1 for anything else. The metrics endpoint and sharehub-api. */
struct sockaddr_storage;
int sh_http_listen_parse(const char *listen, struct sockaddr_storage *addr);

/* Listens on listen ("127.0.0.1:9750", "[::1]:9750"; a numeric address and port). Errors:
 * SH_E_INVAL (the address is not of that form), SH_E_IO (cannot listen: the detail names the
 * address). */
sh_err sh_http_new(const char *listen, const sh_http_site *site, sh_http **out, sh_error *err);

/* The descriptor to poll for input; when it is readable (and at least every second, for
 * timeouts) call sh_http_serve. */
int sh_http_fd(const sh_http *h);

/* Accepts, reads and answers what is ready, without blocking. */
void sh_http_serve(sh_http *h);

/* How long the loop may wait before calling sh_http_serve again: 0 when work is pending
 * (a response still being written), else at most max_ms. */
int sh_http_wait_ms(sh_http *h, int max_ms);

void sh_http_destroy(sh_http **h);

#endif
