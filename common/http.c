/*
 * http.c — metrics and health over HTTP, with libmicrohttpd in external-polling epoll mode.
 *
 * Owns: the MHD_Daemon and the three paths of sh_http_site.
 * Never: runs a thread; answers a method other than GET or HEAD; holds more than a few
 * connections (an endpoint for probes and one scraper, not a web server).
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CONNECTIONS 16 /* probes and a scraper or two */
#define TIMEOUT_S   5  /* a client silent this long is dropped */

struct sh_http {
    struct MHD_Daemon *d;
    sh_http_site site;
    int fd;
};

/* Queues text (copied) with status and content type. */
static enum MHD_Result s_answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                                const char *text, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return s_answer(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **req)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)req;
    const sh_http_site *site = &((sh_http *)cls)->site;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/healthz") == 0) return s_text(c, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0) {
        const char *why = site->not_ready(site->ctx);
        if (!why) return s_text(c, MHD_HTTP_OK, "ready\n");
        char text[256];
        snprintf(text, sizeof text, "not ready: %s\n", why);
        return s_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, text);
    }
    if (strcmp(url, "/metrics") != 0) return s_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f) return s_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    int bad = site->metrics(site->ctx, f);
    if (fclose(f) || bad) {
        free(page);
        return s_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    enum MHD_Result rc =
        s_answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", page, len);
    free(page);
    return rc;
}

int sh_http_listen_parse(const char *listen, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) return -1;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(addr, 0, sizeof *addr);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        host[hl - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

sh_err sh_http_new(const char *listen, const sh_http_site *site, sh_http **out, sh_error *err)
{
    *out = NULL;
    struct sockaddr_storage addr;
    if (!listen || sh_http_listen_parse(listen, &addr))
        return sh_error_set(err, SH_E_INVAL,
                            "http listen address: want a numeric address and port, such as "
                            "127.0.0.1:9750 or [::1]:9750");
    sh_http *h = calloc(1, sizeof *h);
    if (!h) return sh_error_set(err, SH_E_NOMEM, "http endpoint");
    h->site = *site;
    unsigned flags = MHD_USE_EPOLL | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, s_access, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)TIMEOUT_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        if (h->d) MHD_stop_daemon(h->d);
        free(h);
        return sh_error_set(err, SH_E_IO,
                            "http endpoint: cannot listen on %s (in use, or not an address of "
                            "this machine)",
                            listen);
    }
    h->fd = info->epoll_fd;
    *out = h;
    return SH_OK;
}

int sh_http_fd(const sh_http *h)
{
    return h->fd;
}

void sh_http_serve(sh_http *h)
{
    MHD_run(h->d);
}

int sh_http_wait_ms(sh_http *h, int max_ms)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(h->d, &ms) != MHD_YES) return max_ms;
    return ms < (MHD_UNSIGNED_LONG_LONG)max_ms ? (int)ms : max_ms;
}

void sh_http_destroy(sh_http **hp)
{
    sh_http *h = *hp;
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
    *hp = NULL;
}
