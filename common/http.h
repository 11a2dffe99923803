/*
 * http.h — a small HTTP/1.1 server for GET and HEAD, run by libmicrohttpd inside its caller's
 * event loop (no thread). The daemons' probe process (probe.h) serves their metrics and
 * health through it; the listening address format is sharehub-api's too.
 *
 * Owns: the listening socket it is given and libmicrohttpd's connections. Never: serves a
 * method other than GET or HEAD; blocks the event loop (libmicrohttpd runs non-blocking,
 * connections are few and time out).
 */
#ifndef SHAREHUB_HTTP_H
#define SHAREHUB_HTTP_H

#include <stddef.h>

#include "error.h"

/* The answer to a GET or HEAD of path: an HTTP status, a body (malloc'd, freed by the server;
 * NULL and 0 for none) and its content type (a static string). */
typedef unsigned (*sh_http_answer)(void *ctx, const char *path, char **body, size_t *len,
                                   const char **ctype);

typedef struct sh_http sh_http;

/* A listening address written "127.0.0.1:9750" or "[::1]:9750" (a numeric address and a port
 * 1-65535) into addr; 0, or -1 for anything else. The metrics endpoint and sharehub-api. */
struct sockaddr_storage;
int sh_http_listen_parse(const char *listen, struct sockaddr_storage *addr);

/* A listening TCP socket (close-on-exec) on listen, into *fd. Errors: SH_E_INVAL (the address
 * is not of that form), SH_E_IO (cannot listen: the detail names the address). */
sh_err sh_http_listen(const char *listen, int *fd, sh_error *err) SH_WUR;

/* Serves the listening socket fd (which it then owns, and closes) with answer(ctx, ...).
 * SH_E_IO when libmicrohttpd cannot start. */
sh_err sh_http_new(int fd, sh_http_answer answer, void *ctx, sh_http **out, sh_error *err) SH_WUR;

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
