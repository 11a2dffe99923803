/*
 * server.c — HTTPS for the agency API: libmicrohttpd with GnuTLS in external-polling epoll
 * mode (one thread: the loop polls the daemon and the agent's socket together), client
 * certificates checked on every request against the CA and the client registry, scopes,
 * bodies gathered up to 1 MiB, routing, and errors as JSON (docs/api.md).
 *
 * Owns: the MHD_Daemon, each request's api_req, the loop. Never: answers a request whose
 * client is unknown or outside its scopes with anything but 401/403 (audited at the agent);
 * blocks: a request waiting for the agent is suspended, and others are served meanwhile.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#include "api_int.h"
#include "cli.h"
#include "clock.h"
#include "crypto.h"
#include "http.h"
#include "log.h"

#define CONNECTIONS 4096 /* a thousand clients at once, and room */
#define TIMEOUT_S   30   /* a connection silent this long is closed (slow clients) */
/* TLS 1.2 and 1.3 only; AEAD ciphers with forward secrecy */
#define PRIORITIES                                                                                 \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"         \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

/* ---- responses ------------------------------------------------------------------------- */

void api_answer(api_req *r, unsigned status, json_object *body)
{
    const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    free(r->resp);
    r->resp = strdup(text);
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    r->status = r->resp ? status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (!r->ctype) r->ctype = "application/json";
    json_object_put(body);
}

unsigned api_status_of(sh_err code)
{
    switch (code) {
    case SH_E_NO_CLIENT_CERT:
    case SH_E_UNKNOWN_CLIENT:
        return MHD_HTTP_UNAUTHORIZED;
    case SH_E_OUT_OF_SCOPE:
    case SH_E_SPOOFED_SOURCE:
        return MHD_HTTP_FORBIDDEN;
    case SH_E_NO_RESOURCE:
    case SH_E_NOT_FOUND:
        return MHD_HTTP_NOT_FOUND;
    case SH_E_METHOD:
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    case SH_E_MEDIA_TYPE:
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case SH_E_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case SH_E_REPLAYED:
        return MHD_HTTP_CONFLICT;
    case SH_E_AGENT_UNAVAILABLE:
    case SH_E_MAP_FULL:
    case SH_E_DISK_FULL:
    case SH_E_STORE:
    case SH_E_TXN:
    case SH_E_UNAVAILABLE:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    default:
        break;
    }
    if (code == SH_E_INVAL || (code >= 200 && code < 400)) return MHD_HTTP_BAD_REQUEST;
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* The field a detail names first ("child.nhs_number: fails…", or the bare path). */
static void s_field(const char *detail, char *out, size_t cap)
{
    size_t n = strcspn(detail, ": ");
    out[0] = '\0';
    if (n == 0 || n >= cap || (detail[n] != ':' && detail[n] != '\0')) return;
    for (size_t i = 0; i < n; i++) {
        char ch = detail[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
              ch == '[' || ch == ']'))
            return;
    }
    memcpy(out, detail, n);
    out[n] = '\0';
}

void api_error(api_req *r, sh_err code, const char *detail)
{
    if (r->fhir) {
        api_fhir_error(r, code, detail, NULL);
        return;
    }
    json_object *o = json_object_new_object();
    char field[80];
    json_object_object_add(o, "code", json_object_new_int(code));
    json_object_object_add(o, "name", json_object_new_string(sh_err_name(code)));
    json_object_object_add(o, "message", json_object_new_string(sh_err_message(code)));
    if (detail && *detail) {
        json_object_object_add(o, "detail", json_object_new_string(detail));
        s_field(detail, field, sizeof field);
        if (field[0]) json_object_object_add(o, "field", json_object_new_string(field));
    }
    unsigned st = api_status_of(code);
    if (st == MHD_HTTP_SERVICE_UNAVAILABLE) r->retry_after = 5;
    api_answer(r, st, o);
}

int api_agent_failed(api_req *r, json_object *reply, const char *expression)
{
    json_object *v;
    if (json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v)) return 0;
    sh_err code = json_object_object_get_ex(reply, "code", &v) ? (sh_err)json_object_get_int(v)
                                                               : SH_E_INTERNAL;
    const char *detail =
        json_object_object_get_ex(reply, "detail", &v) ? json_object_get_string(v) : NULL;
    if (r->fhir)
        api_fhir_error(r, code, detail, expression);
    else
        api_error(r, code, detail);
    return 1;
}

const char *api_header(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

const char *api_query(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

json_object *api_body_json(api_req *r, const char *const *ctypes)
{
    const char *ct = api_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    int ok = 0;
    for (size_t i = 0; ct && ctypes[i]; i++) {
        size_t n = strlen(ctypes[i]);
        ok |= strncasecmp(ct, ctypes[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';');
    }
    char detail[120];
    if (!ok) {
        snprintf(detail, sizeof detail, "Content-Type: want %s%s%s", ctypes[0],
                 ctypes[1] ? " or " : "", ctypes[1] ? ctypes[1] : "");
        api_error(r, SH_E_MEDIA_TYPE, detail);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *o = tok && r->len ? json_tokener_parse_ex(tok, r->body, (int)r->len) : NULL;
    if (o && json_tokener_get_parse_end(tok) != r->len) {
        json_object_put(o);
        o = NULL;
    }
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (tok && json_tokener_get_error(tok) != json_tokener_success)
            snprintf(detail, sizeof detail, "body: not JSON (%s at byte %zu)",
                     json_tokener_error_desc(json_tokener_get_error(tok)),
                     json_tokener_get_parse_end(tok));
        else
            snprintf(detail, sizeof detail, "body: want one JSON object");
        json_object_put(o);
        o = NULL;
        api_error(r, SH_E_MALFORMED, detail);
    }
    if (tok) json_tokener_free(tok);
    return o;
}

int api_reader(api_req *r, json_object *req, int purpose_required)
{
    const char *user = api_header(r, "X-Sharehub-User");
    const char *purpose = api_header(r, "X-Sharehub-Purpose");
    if (!user || !*user) {
        api_error(r, SH_E_MISSING_FIELD,
                  "X-Sharehub-User: missing (the person this system acts for, 1-64 characters)");
        return -1;
    }
    if (purpose_required && (!purpose || !*purpose)) {
        api_error(r, SH_E_MISSING_FIELD,
                  "X-Sharehub-Purpose: missing (why they are reading, 1-64 characters)");
        return -1;
    }
    json_object_object_add(req, "user", json_object_new_string(user));
    if (purpose && *purpose)
        json_object_object_add(req, "purpose", json_object_new_string(purpose));
    json_object_object_add(req, "client", json_object_new_string(r->client->name));
    return 0;
}

/* ---- the client's certificate ---------------------------------------------------------- */

/* What a connection's certificate proved, checked once and kept for its requests: verifying
 * a chain costs a signature check, and keep-alive connections make many requests. */
#define VERIFY_AGAIN_MS 60000 /* re-checked this often (a certificate may expire meanwhile) */
typedef struct conn_auth {
    int64_t at_ms;
    sh_err code; /* SH_OK, SH_E_NO_CLIENT_CERT */
    uint8_t fp[32];
    char who[96];
} conn_auth;

static void s_conn_notify(void *cls, struct MHD_Connection *c, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *ctx = calloc(1, sizeof(conn_auth)); /* NULL: verified on every request instead */
    } else {
        free(*ctx);
        *ctx = NULL;
    }
}

/* Verifies the connection's certificate into ca. */
static void s_verify(struct MHD_Connection *c, conn_auth *ca)
{
    ca->code = SH_E_NO_CLIENT_CERT;
    snprintf(ca->who, sizeof ca->who, "no certificate");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t ts = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned n = 0, status = 0;
    const gnutls_datum_t *certs = ts ? gnutls_certificate_get_peers(ts, &n) : NULL;
    if (!certs || n == 0) return;
    size_t fl = sizeof ca->fp;
    if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &certs[0], ca->fp, &fl) < 0 || fl != 32) return;
    const uint8_t *fp = ca->fp;
    snprintf(ca->who, sizeof ca->who, "certificate sha256:%02x%02x%02x%02x%02x%02x%02x%02x…", fp[0],
             fp[1], fp[2], fp[3], fp[4], fp[5], fp[6], fp[7]);
    if (gnutls_certificate_verify_peers2(ts, &status) < 0 || status != 0) return;
    ca->code = SH_OK;
}

/* Who is asking: the registered client of the verified certificate; else the refusal's code
 * and in who a name for the audit entry (a fingerprint's first bytes, never a subject). The
 * registry is looked up on every request (a reload takes effect at once). */
static sh_err s_client(api *s, struct MHD_Connection *c, const api_client **out, char *who,
                       size_t cap)
{
    *out = NULL;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_auth once, *ca = ci && ci->socket_context ? ci->socket_context : &once;
    int64_t now = sh_clock_ms();
    if (ca == &once || !ca->at_ms || now - ca->at_ms >= VERIFY_AGAIN_MS) {
        s_verify(c, ca);
        ca->at_ms = now;
    }
    snprintf(who, cap, "%s", ca->who);
    if (ca->code) return ca->code;
    *out = api_client_find(s->cfg, ca->fp);
    if (!*out) return SH_E_UNKNOWN_CLIENT;
    snprintf(who, cap, "%s", (*out)->name);
    return SH_OK;
}

/* ---- routing --------------------------------------------------------------------------- */

/* Whether url fits pattern ('*' is one non-empty segment, copied into arg). */
static int s_match(const char *pattern, const char *url, char *arg, size_t cap)
{
    const char *p = pattern, *u = url;
    while (*p && *u) {
        if (*p == '*') {
            size_t n = strcspn(u, "/");
            if (n == 0 || n >= cap) return 0;
            memcpy(arg, u, n);
            arg[n] = '\0';
            p++;
            u += n;
            continue;
        }
        if (*p != *u) return 0;
        p++;
        u++;
    }
    return *p == '\0' && *u == '\0';
}

/* The route for method and url; NULL with *code SH_E_NO_RESOURCE or SH_E_METHOD (allow then
 * lists the methods the path takes). */
static const api_route *s_route(api_req *r, const char *url, sh_err *code)
{
    int path = 0;
    r->allow[0] = '\0';
    for (size_t i = 0; i < api_nroutes; i++) {
        const api_route *rt = &api_routes[i];
        if (!s_match(rt->pattern, url, r->arg, sizeof r->arg)) continue;
        if (strcmp(rt->method, r->method) == 0) return rt;
        path = 1;
        size_t n = strlen(r->allow);
        if (!strstr(r->allow, rt->method))
            snprintf(r->allow + n, sizeof r->allow - n, "%s%s", n ? ", " : "", rt->method);
    }
    *code = path ? SH_E_METHOD : SH_E_NO_RESOURCE;
    return NULL;
}

/* ---- the request's life ---------------------------------------------------------------- */

static enum MHD_Result s_queue(api *s, api_req *r)
{
    struct MHD_Response *resp;
    if (r->streaming) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, api_stream_read, r, NULL);
        if (!resp) return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        enum MHD_Result rc = MHD_queue_response(r->c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    (void)s;
    resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp = NULL; /* the response owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->location[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED && r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->status == MHD_HTTP_CONTENT_TOO_LARGE || r->status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->c, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **ctx)
{
    (void)version;
    api *s = cls;
    api_req *r = *ctx;
    if (!r) { /* the headers are in: who is asking, and for what */
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *ctx = r;
        r->c = c;
        r->fhir = strncmp(url, "/fhir/", 6) == 0;
        snprintf(r->method, sizeof r->method, "%s", method);
        char who[96];
        sh_err code = SH_OK;
        sh_err auth = s_client(s, c, &r->client, who, sizeof who);
        r->route = s_route(r, url, &code);
        char route[120];
        snprintf(route, sizeof route, "%.7s %s", method, r->route ? r->route->pattern : "?");
        for (char *p = strchr(route, '*'); p; p = strchr(p, '*'))
            *p = '#'; /* the audit records the route, never the identifier in the path */
        if (auth) {
            api_error(r, auth,
                      auth == SH_E_NO_CLIENT_CERT
                          ? "this API takes requests only from client systems with a certificate "
                            "from the deployment's client CA"
                          : "this certificate is not in the client registry: ask the agency to "
                            "register it (docs/operations.md)");
            api_audit_refusal(s, who, route, auth, sh_err_message(auth));
        } else if (!r->route) {
            api_error(r, code,
                      code == SH_E_METHOD ? "see the Allow header"
                                          : "no resource at this path (docs/api.md lists them)");
        } else if (r->route->scopes && !(r->client->scopes & r->route->scopes)) {
            char need[64], detail[sizeof route + sizeof need + 40];
            api_scopes_text(r->route->scopes, need, sizeof need);
            for (char *p = strchr(need, ' '); p; p = strchr(p, ' '))
                *p = '/';
            snprintf(detail, sizeof detail, "%s needs the scope %s", route, need);
            api_error(r, SH_E_OUT_OF_SCOPE, detail);
            api_audit_refusal(s, who, route, SH_E_OUT_OF_SCOPE, detail);
        }
        return MHD_YES;
    }
    if (*upload_len) { /* the body, kept up to BODY_MAX; past it, read and dropped */
        if (!r->status && !r->too_large) {
            if (r->len + *upload_len > BODY_MAX) {
                r->too_large = 1;
                free(r->body);
                r->body = NULL;
                r->len = 0;
            } else {
                char *b = realloc(r->body, r->len + *upload_len + 1);
                if (!b) return MHD_NO;
                memcpy(b + r->len, upload, *upload_len);
                r->body = b;
                r->len += *upload_len;
                r->body[r->len] = '\0';
            }
        }
        *upload_len = 0;
        return MHD_YES;
    }
    if (!r->started) {
        r->started = 1;
        if (r->too_large && !r->status) api_error(r, SH_E_TOO_LARGE, "body: over 1 MiB");
        if (!r->status) r->route->start(s, r);
    }
    if (r->status || r->streaming) return s_queue(s, r);
    if (r->tag) { /* asked the agent: wait for its answer without holding the loop */
        r->suspended = 1;
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    api_error(r, SH_E_INTERNAL, "no answer was made");
    return s_queue(s, r);
}

void api_completed(void *cls, struct MHD_Connection *c, void **ctx,
                   enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    api_req_free(cls, *ctx);
    *ctx = NULL;
}

void api_req_free(api *s, api_req *r)
{
    if (!r) return;
    api_link_forget(s, r);
    if (r->streaming) api_stream_closed(s, r);
    if (r->signing) s->signing_in--;
    if (r->body) sh_wipe(r->body, r->len); /* a workspace form may hold a password */
    free(r->body);
    free(r->resp);
    free(r->out);
    if (r->form) { /* its values may hold a password: wiped before json-c frees them */
        json_object_object_foreach(r->form, k, v)
        {
            (void)k;
            if (json_object_is_type(v, json_type_string))
                sh_wipe((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
        }
        json_object_put(r->form);
    }
    free(r);
}

/* ---- life ------------------------------------------------------------------------------ */

/* A certificate file (PEM, at most 64 KiB) into *out. */
static sh_err s_pem(const char *path, const char *what, char **out, sh_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sh_error_set(err, SH_E_API_CONFIG, "%s: %s: cannot open: %s", what, path,
                            strerror(errno));
    char *b = malloc(65536);
    size_t n = b ? fread(b, 1, 65535, f) : 0;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (!b) return sh_error_set(err, SH_E_NOMEM, "%s", what);
    b[n] = '\0';
    if (bad || !strstr(b, "-----BEGIN CERTIFICATE-----")) {
        free(b);
        return sh_error_set(err, SH_E_API_CONFIG, "%s: %s: not a PEM certificate (or over 64 KiB)",
                            what, path);
    }
    *out = b;
    return SH_OK;
}

/* Lets this process hold a descriptor for each of CONNECTIONS clients. */
static void s_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            sh_log(SH_LOG_WARNING, NULL, NULL, "cannot raise the descriptor limit: %s",
                   strerror(errno));
    }
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    sh_log(SH_LOG_INFO, NULL, NULL, "https: %s", line);
}

sh_err api_new(api_config *cfg, api **out, sh_error *err)
{
    *out = NULL;
    struct sockaddr_storage addr;
    if (sh_http_listen_parse(cfg->listen, &addr))
        return sh_error_set(err, SH_E_API_CONFIG,
                            "listen: want a numeric address and port, such as 127.0.0.1:8443 or "
                            "[::1]:8443");
    api *s = calloc(1, sizeof *s);
    if (!s) return sh_error_set(err, SH_E_NOMEM, "api");
    s->cfg = cfg;
    char *cert = NULL, *ca = NULL, key[16384];
    size_t kl = 0;
    sh_err rc = s_pem(cfg->cert_file, "tls.certificate", &cert, err);
    if (!rc) rc = s_pem(cfg->ca_file, "tls.client_ca", &ca, err);
    if (!rc) {
        rc = sh_secret_file_read(cfg->key_file, key, sizeof key, &kl, err);
        if (rc) {
            char d[sizeof err->detail];
            snprintf(d, sizeof d, "%s", err->detail);
            sh_error_set(err, rc, "tls.key: %s", d);
        }
    }
    if (!rc) rc = api_link_open(s, err);
    if (!rc) {
        s_raise_fd_limit();
        unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        s->d = MHD_start_daemon(
            flags, 0, NULL, NULL, s_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
            MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
            MHD_OPTION_HTTPS_MEM_TRUST, ca, MHD_OPTION_HTTPS_PRIORITIES, PRIORITIES,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, api_completed, s,
            MHD_OPTION_NOTIFY_CONNECTION, s_conn_notify, s, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log,
            s, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
        if (!s->d)
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "cannot serve HTTPS on %s: the address is in use or not this "
                              "machine's, or the certificate and key do not match",
                              cfg->listen);
    }
    sh_wipe(key, sizeof key);
    free(cert);
    free(ca);
    if (!rc) rc = ws_new(s, err);
    if (rc) {
        api_destroy(&s);
        return rc;
    }
    *out = s;
    return SH_OK;
}

sh_err api_run(api *s, volatile int *stop, volatile int *reload, const char *config_path)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    int fd = info ? info->epoll_fd : -1;
    const union MHD_DaemonInfo *winfo =
        s->wd ? MHD_get_daemon_info(s->wd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    int wfd = winfo ? winfo->epoll_fd : -1;
    if (fd < 0 || (s->wd && wfd < 0)) return SH_E_INTERNAL;
    int64_t second = 0;
    while (!*stop) {
        if (*reload) {
            *reload = 0;
            api_config *c = NULL;
            sh_error e;
            if (api_config_load(config_path, &c, &e)) {
                sh_log(SH_LOG_ERROR, NULL, NULL, "reload refused, keeping the registry: %s",
                       e.detail);
            } else {
                /* the client registry changes; listening address, keys and socket need a
                 * restart */
                api_client *old = s->cfg->clients;
                s->cfg->clients = c->clients;
                s->cfg->nclients = c->nclients;
                c->clients = old;
                api_config_free(&c);
                sh_log(SH_LOG_INFO, NULL, NULL, "client registry reloaded: %zu clients",
                       s->cfg->nclients);
            }
        }
        MHD_UNSIGNED_LONG_LONG mt = 0;
        int wait = MHD_get_timeout(s->d, &mt) == MHD_YES && mt < 100 ? (int)mt : 100;
        if (s->wd && MHD_get_timeout(s->wd, &mt) == MHD_YES && mt < (unsigned)wait) wait = (int)mt;
        zmq_pollitem_t items[3] = {
            {s->agent, 0, ZMQ_POLLIN, 0}, {NULL, fd, ZMQ_POLLIN, 0}, {NULL, wfd, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, s->wd ? 3 : 2, wait);
        if (n < 0 && zmq_errno() != EINTR) return SH_E_IO;
        if (n > 0 && (items[0].revents & ZMQ_POLLIN)) api_link_io(s);
        MHD_run(s->d);
        if (s->wd) MHD_run(s->wd);
        int64_t now = sh_clock_ms();
        api_streams_tick(s, now);
        if (now / 1000 != second) {
            second = now / 1000;
            api_link_io(s); /* its timeouts */
            api_refusals_flush(s, now);
        }
    }
    return SH_OK;
}

void api_destroy(api **sp)
{
    api *s = *sp;
    if (!s) return;
    /* libmicrohttpd stops only with every connection resumed */
    for (api_req *w = s->waiting; w; w = w->next)
        if (w->suspended) w->suspended = 0, MHD_resume_connection(w->c);
    for (api_req *w = s->streams; w; w = w->snext)
        if (w->suspended) w->suspended = 0, MHD_resume_connection(w->c);
    ws_destroy(s);
    if (s->d) MHD_stop_daemon(s->d);
    if (s->agent) zmq_close(s->agent);
    if (s->zctx) zmq_ctx_term(s->zctx);
    free(s);
    *sp = NULL;
}
