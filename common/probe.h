/*
 * probe.h — the daemons' metrics and health endpoint (docs/operations.md, "Metrics and
 * health"), served by a process of its own: the daemon, which holds the store and its keys,
 * never parses a byte of HTTP (docs/security.md, "Privilege separation").
 *
 * The daemon opens the listening socket and starts its own program again with SH_PROBE_FLAG:
 * that probe process accepts and parses HTTP in a sandbox (sandbox.h) and asks the daemon,
 * over a socket pair, for each answer, which the daemon gives from its event loop:
 *
 *   /metrics  metrics(ctx, f) writes the page (Prometheus text 0.0.4); 0, or -1 (500)
 *   /healthz  200 "ok" when the daemon's loop answers within 2 s (else 503)
 *   /readyz   200 "ready" (and the lines ready_detail(ctx) gives) when not_ready(ctx) is NULL,
 *             else 503 "not ready: <its reason>"
 *
 * and 404 for any other path, 405 for a method other than GET or HEAD.
 *
 * Owns: the listening socket, the probe process and its socket pair. Never: lets the daemon's
 * loop wait on the probe process longer than a second; restarts it more often than once a
 * second.
 */
#ifndef SHAREHUB_PROBE_H
#define SHAREHUB_PROBE_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* argv[1] of the probe process: the daemon's main hands the rest to sh_probe_main */
#define SH_PROBE_FLAG "--http-side"

typedef struct sh_probe_site {
    int (*metrics)(void *ctx, FILE *f);
    const char *(*not_ready)(void *ctx);
    void *ctx;
    const char *component; /* its log lines' component: "broker-probe", "agent-probe" */
    int log_level;         /* as sh_log_init's */
    const char *program;   /* the daemon's program; NULL: this process's own */
    /* optional (NULL: none): lines said after "ready" while ready (the broker's peers) */
    const char *(*ready_detail)(void *ctx);
} sh_probe_site;

typedef struct sh_probe sh_probe;

/* Listens on listen ("127.0.0.1:9750", "[::1]:9750") and starts the probe process. Errors:
 * SH_E_INVAL (not such an address), SH_E_IO (cannot listen, or cannot start the process). */
sh_err sh_probe_new(const char *listen, const sh_probe_site *site, sh_probe **out,
                    sh_error *err) SH_WUR;

/* The descriptor to poll for input (the socket pair), or -1 while the process is down. */
int sh_probe_fd(const sh_probe *p);

/* Answers what the probe process asked, without waiting for it to ask; reaps it when it has
 * died and starts it again a second later. Call when the descriptor is readable and at least
 * every 100 ms. */
void sh_probe_serve(sh_probe *p, int64_t now_ms);

/* How often the probe process was started again after it died (for *_probe_restarts_total). */
uint64_t sh_probe_restarts(const sh_probe *p);

/* Stops the probe process and closes the listening socket. */
void sh_probe_destroy(sh_probe **p);

/* The probe process: argv after SH_PROBE_FLAG (its component and log level), the listening
 * socket on descriptor 3 and the socket pair on 4. An exit status. */
int sh_probe_main(int argc, char **argv);

#endif
