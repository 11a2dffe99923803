/*
 * http.c — GET and HEAD over HTTP/1.1, with libmicrohttpd in external-polling epoll mode.
 *
 * Owns: the MHD_Daemon and its listening socket.
 * Never: runs a thread; answers a method other than GET or HEAD; holds more than a few
 * connections (an endpoint for probes and one scraper, not a web server).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTIONS 16 /* probes and a scraper or two */
#define TIMEOUT_S   5  /* a client silent this long is dropped */

struct sh_http {
    struct MHD_Daemon *d;
    sh_http_answer answer;
    void *ctx;
    int fd;
};

/* Queues body (copied) with status and content type. */
static enum MHD_Result s_answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                                const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **req)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)req;
    static const char plain[] = "text/plain; charset=utf-8", only[] = "only GET and HEAD\n";
    sh_http *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, plain, only, sizeof only - 1);
    char *body = NULL;
    size_t len = 0;
    const char *ctype = plain;
    unsigned status = h->answer(h->ctx, url, &body, &len, &ctype);
    enum MHD_Result rc = s_answer(c, status, ctype, body ? body : "", body ? len : 0);
    free(body);
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

sh_err sh_http_listen(const char *where, int *fd, sh_error *err)
{
    *fd = -1;
    struct sockaddr_storage addr;
    if (!where || sh_http_listen_parse(where, &addr))
        return sh_error_set(err, SH_E_INVAL,
                            "http listen address: want a numeric address and port, such as "
                            "127.0.0.1:9750 or [::1]:9750");
    socklen_t alen =
        addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1, s = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(s, (struct sockaddr *)&addr, alen) || listen(s, CONNECTIONS)) {
        int e = errno;
        if (s >= 0) close(s);
        return sh_error_set(err, SH_E_IO,
                            "http endpoint: cannot listen on %s (%s: in use, or not an address "
                            "of this machine)",
                            where, strerror(e));
    }
    *fd = s;
    return SH_OK;
}

sh_err sh_http_new(int fd, sh_http_answer answer, void *ctx, sh_http **out, sh_error *err)
{
    *out = NULL;
    sh_http *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return sh_error_set(err, SH_E_NOMEM, "http endpoint");
    }
    h->answer = answer;
    h->ctx = ctx;
    h->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, s_access, h, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TIMEOUT_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        if (h->d)
            MHD_stop_daemon(h->d);
        else
            close(fd);
        free(h);
        return sh_error_set(err, SH_E_IO, "http endpoint: libmicrohttpd did not start");
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
