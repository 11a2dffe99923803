/*
 * ws.c — the workspace: the web pages Children and Families Hub practitioners, their managers
 * and clinicians work in (docs/workspace.md), served by sharehub-api on a listener of its own.
 * HTTPS only (the API's certificate; no client certificate: people sign in). Sessions are
 * random 256-bit ids in a Secure, HttpOnly, SameSite=Strict cookie, ended after an idle and an
 * absolute time; every POST carries its session's CSRF token; every page is sent with a strict
 * Content-Security-Policy (no inline script or style). Pages are templates (template.c) over
 * what the agent answers; the pages themselves are in pages.c.
 *
 * Owns: the workspace's MHD_Daemon, its sessions, templates and static files. Never: serves a
 * page that needs a signed-in user without one; accepts a POST without its CSRF token; serves
 * a file outside its asset directories; keeps a password (pages.c drops it after checking).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "api_int.h"
#include "clock.h"
#include "crypto.h"
#include "http.h"
#include "log.h"
#include "form.h"
#include "template.h"

#define SESSIONS   512
#define FORM_MAX   (64 * 1024)
#define ASSET_MAX  (4 * 1024 * 1024)
#define COOKIE     "sh_session"
#define PRIORITIES "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"
#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "   \
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

struct ws {
    sh_templates *tpl;
    ws_session sessions[SESSIONS];
    char govuk[4096];  /* govuk-frontend's dist/govuk: /govuk/ */
    char assets[4200]; /* its assets (fonts, images): /assets/, where its CSS looks */
    char statics[4096];
};

static const char *const s_roles[] = {"", "practitioner", "manager", "read_only", "auditor"};

const char *ws_role_name(int role)
{
    return role > 0 && role <= WS_AUDITOR ? s_roles[role] : "";
}

int ws_role_value(const char *name)
{
    for (int r = 1; name && r <= WS_AUDITOR; r++)
        if (strcmp(s_roles[r], name) == 0) return r;
    return WS_NOBODY;
}

/* ---- sessions -------------------------------------------------------------------------- */

static void s_token(char out[48])
{
    uint8_t b[32];
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (sh_random(b, sizeof b)) { /* no randomness: no session (an empty id never matches) */
        out[0] = '\0';
        return;
    }
    for (int i = 0; i < 32; i++)
        out[i] = a[b[i] & 63]; /* 192 bits */
    out[32] = '\0';
    sh_wipe(b, sizeof b);
}

static int s_live(const api *s, const ws_session *x, int64_t now)
{
    return x->id[0] && now - x->seen_ms < s->cfg->ws_idle_ms &&
           now - x->created_ms < s->cfg->ws_absolute_ms;
}

static void s_clear(ws_session *x)
{
    if (x->values) json_object_put(x->values);
    memset(x, 0, sizeof *x);
}

/* Constant-time equality of two tokens. */
static int s_same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0 && la > 0;
}

ws_session *ws_session_new(api *s, api_req *r)
{
    int64_t now = sh_clock_ms();
    ws_session *slot = NULL, *oldest = NULL;
    for (int i = 0; i < SESSIONS && !slot; i++) {
        ws_session *x = &s->ws->sessions[i];
        if (!s_live(s, x, now))
            slot = x;
        else if (!x->role && (!oldest || x->seen_ms < oldest->seen_ms))
            oldest = x;
    }
    /* full: a sign-in form's session gives way (its form says "open the page again"); a
     * signed-in person's never does */
    if (!slot) slot = oldest;
    if (!slot) return NULL;
    s_clear(slot);
    s_token(slot->id);
    s_token(slot->csrf);
    if (!slot->id[0] || !slot->csrf[0]) {
        s_clear(slot);
        return NULL;
    }
    slot->created_ms = slot->seen_ms = now;
    snprintf(r->cookie, sizeof r->cookie,
             COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%lld", slot->id,
             (long long)(s->cfg->ws_absolute_ms / 1000));
    r->sess = slot;
    return slot;
}

void ws_session_end(api *s, api_req *r)
{
    (void)s;
    if (r->sess) s_clear(r->sess);
    r->sess = NULL;
    snprintf(r->cookie, sizeof r->cookie,
             COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
}

/* The session the request's cookie names: live, or none (*expired set when it had one). */
static ws_session *s_session(api *s, api_req *r, int *expired)
{
    const char *c = MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, COOKIE);
    *expired = 0;
    if (!c || strlen(c) != 32) return NULL;
    int64_t now = sh_clock_ms();
    for (int i = 0; i < SESSIONS; i++) {
        ws_session *x = &s->ws->sessions[i];
        if (!x->id[0] || !s_same(x->id, c)) continue;
        if (!s_live(s, x, now)) {
            *expired = 1;
            s_clear(x);
            return NULL;
        }
        x->seen_ms = now;
        return x;
    }
    *expired = 1; /* a cookie for a session this process does not know (restarted) */
    return NULL;
}

/* ---- forms ----------------------------------------------------------------------------- */

static enum MHD_Result s_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    if (key && key[0] != '_') /* as a form's: '_' names are the server's own */
        json_object_object_add(cls, key, json_object_new_string(value ? value : ""));
    return MHD_YES;
}

const char *ws_field(api_req *r, const char *name)
{
    json_object *v;
    if (!r->form || !json_object_object_get_ex(r->form, name, &v)) return NULL;
    return json_object_get_string(v);
}

/* ---- responses ------------------------------------------------------------------------- */

static void s_set(api_req *r, unsigned status, char *body, size_t len, const char *ctype)
{
    free(r->resp);
    r->resp = body;
    r->resp_len = len;
    r->status = body ? status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    r->ctype = ctype;
}

void ws_redirect(api_req *r, const char *location)
{
    snprintf(r->location, sizeof r->location, "%s", location);
    s_set(r, MHD_HTTP_SEE_OTHER, strdup(""), 0, "text/plain");
}

void ws_page(api *s, api_req *r, unsigned status, const char *title, const char *tpl,
             json_object *ctx)
{
    json_object_object_add(ctx, "title", json_object_new_string(title));
    json_object_object_add(ctx, "body_template", json_object_new_string(tpl));
    json_object_object_add(ctx, "org", json_object_new_string(s->org));
    json_object_object_add(ctx, "agency_hub", json_object_new_boolean(s->role == 3));
    json_object_object_add(ctx, "agency_health", json_object_new_boolean(s->role == 2));
    ws_session *x = r->sess;
    if (x) {
        json_object_object_add(ctx, "csrf", json_object_new_string(x->csrf));
        if (x->role) {
            json_object *me = json_object_new_object();
            json_object_object_add(me, "name", json_object_new_string(x->user));
            json_object_object_add(me, "display", json_object_new_string(x->display));
            json_object_object_add(me, "role", json_object_new_string(ws_role_name(x->role)));
            json_object_object_add(me, "is_manager",
                                   json_object_new_boolean(x->role == WS_MANAGER));
            json_object_object_add(
                me, "can_decide",
                json_object_new_boolean(x->role == WS_MANAGER || x->role == WS_PRACTITIONER));
            json_object_object_add(me, "is_auditor",
                                   json_object_new_boolean(x->role == WS_AUDITOR));
            json_object_object_add(ctx, "me", me);
        }
        if (x->flash[0]) json_object_object_add(ctx, "flash", json_object_new_string(x->flash));
        if (x->error[0]) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "message", json_object_new_string(x->error));
            json_object_object_add(
                e, "field", json_object_new_string(x->error_field[0] ? x->error_field : "main"));
            json_object_object_add(ctx, "error", e);
        }
        if (x->values) json_object_object_add(ctx, "values", json_object_get(x->values));
        x->flash[0] = x->error[0] = x->error_field[0] = '\0'; /* shown once */
        if (x->values) json_object_put(x->values);
        x->values = NULL;
    }
    size_t len = 0;
    char *html = sh_template_render(s->ws->tpl, "layout", ctx, &len);
    json_object_put(ctx);
    if (!html) {
        s_set(r, MHD_HTTP_INTERNAL_SERVER_ERROR, strdup("the page could not be made"), 26,
              "text/plain; charset=utf-8");
        return;
    }
    s_set(r, status, html, len, "text/html; charset=utf-8");
}

void ws_fail(api *s, api_req *r, sh_err code, const char *detail)
{
    unsigned st = code == SH_E_NO_SESSION                  ? MHD_HTTP_UNAUTHORIZED
                  : code == SH_E_CSRF || code == SH_E_ROLE ? MHD_HTTP_FORBIDDEN
                                                           : api_status_of(code);
    if (code == SH_E_TRIAGE_STATE || code == SH_E_LEVEL_OUTCOME) st = MHD_HTTP_CONFLICT;
    json_object *ctx = json_object_new_object();
    char c[16];
    snprintf(c, sizeof c, "E%03d", code);
    json_object_object_add(ctx, "code", json_object_new_string(c));
    json_object_object_add(ctx, "name", json_object_new_string(sh_err_name(code)));
    json_object_object_add(ctx, "message", json_object_new_string(sh_err_message(code)));
    if (detail && *detail) json_object_object_add(ctx, "detail", json_object_new_string(detail));
    json_object_object_add(ctx, "sign_in", json_object_new_boolean(code == SH_E_NO_SESSION));
    ws_page(s, r, st, "There is a problem", "problem", ctx);
}

int ws_agent_error(api_req *r, json_object *reply)
{
    json_object *v;
    if (json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v)) return 0;
    if (!r->sess) return 1;
    int code = json_object_object_get_ex(reply, "code", &v) ? json_object_get_int(v) : 103;
    const char *d = json_object_object_get_ex(reply, "detail", &v) ? json_object_get_string(v) : "";
    snprintf(r->sess->error, sizeof r->sess->error, "%s (E%03d)",
             d && *d ? d : sh_err_message((sh_err)code), code);
    return 1;
}

/* ---- static files ---------------------------------------------------------------------- */

static const char *s_ctype(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const struct {
        const char *ext, *type;
    } t[] = {{".css", "text/css; charset=utf-8"},
             {".js", "text/javascript; charset=utf-8"},
             {".mjs", "text/javascript; charset=utf-8"},
             {".woff2", "font/woff2"},
             {".woff", "font/woff"},
             {".png", "image/png"},
             {".svg", "image/svg+xml"},
             {".ico", "image/x-icon"},
             {".json", "application/json"}};
    for (size_t i = 0; dot && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(dot, t[i].ext) == 0) return t[i].type;
    return NULL;
}

/* /govuk/REL and /assets/REL from govuk-frontend's dist, /static/REL from the workspace's
 * own: only files of known types, paths of [A-Za-z0-9._/-] without "..". */
static int s_static(api *s, api_req *r, const char *url)
{
    const char *dir = NULL, *rel = NULL;
    if (strncmp(url, "/assets/", 8) == 0)
        dir = s->ws->assets, rel = url + 8;
    else if (strncmp(url, "/static/", 8) == 0)
        dir = s->ws->statics, rel = url + 8;
    else if (strncmp(url, "/govuk/", 7) == 0)
        dir = s->ws->govuk, rel = url + 7;
    if (!dir) return 0;
    const char *type = s_ctype(rel);
    int ok = type && *rel && !strstr(rel, "..") && strlen(rel) < 200;
    for (const char *p = rel; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-' || *p == '/';
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = ok ? fopen(path, "rb") : NULL;
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > ASSET_MAX) {
        if (f) fclose(f);
        s_set(r, MHD_HTTP_NOT_FOUND, strdup("not found"), 9, "text/plain; charset=utf-8");
        return 1;
    }
    char *b = malloc((size_t)st.st_size + 1);
    size_t n = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!b || n != (size_t)st.st_size) {
        free(b);
        s_set(r, MHD_HTTP_INTERNAL_SERVER_ERROR, strdup("cannot read"), 11, "text/plain");
        return 1;
    }
    s_set(r, MHD_HTTP_OK, b, n, type);
    r->retry_after = -1; /* (marks a cacheable asset for s_queue) */
    return 1;
}

/* ---- the request's life ---------------------------------------------------------------- */

static enum MHD_Result s_queue(api_req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype ? r->ctype : "text/plain");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            r->retry_after == -1 ? "private, max-age=3600" : "no-store");
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    if (r->location[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->cookie[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->cookie);
    enum MHD_Result rc = MHD_queue_response(r->c, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static const api_route *s_route(api_req *r, const char *url, int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < ws_nroutes; i++) {
        const api_route *rt = &ws_routes[i];
        const char *p = rt->pattern, *u = url;
        int ok = 1;
        while (ok && *p && *u) {
            if (*p == '*') {
                size_t n = strcspn(u, "/");
                if (n == 0 || n >= sizeof r->arg)
                    ok = 0;
                else
                    memcpy(r->arg, u, n), r->arg[n] = '\0', u += n, p++;
                continue;
            }
            ok = *p++ == *u++;
        }
        if (!ok || *p || *u) continue;
        *path_known = 1;
        if (strcmp(rt->method, r->method) == 0) return rt;
    }
    return NULL;
}

static void s_begin(api *s, api_req *r)
{
    int expired = 0, known = 0;
    r->sess = s_session(s, r, &expired);
    r->route = s_route(r, r->url, &known);
    int post = strcmp(r->method, "POST") == 0;
    if (!r->route) {
        ws_fail(s, r, known ? SH_E_METHOD : SH_E_NO_RESOURCE,
                known ? "this page does not take that method" : "there is no page at this address");
        return;
    }
    if (post) {
        const char *ct =
            MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
            ws_fail(s, r, SH_E_MEDIA_TYPE, "a form is posted as application/x-www-form-urlencoded");
            return;
        }
        r->form = ws_form_parse(r->body ? r->body : "", r->len);
        if (r->body) sh_wipe(r->body, r->len); /* it may hold a password */
        if (!r->form) {
            ws_fail(s, r, SH_E_MALFORMED, "the form's fields are not URL-encoded");
            return;
        }
    } else {
        r->form = json_object_new_object();
        MHD_get_connection_values(r->c, MHD_GET_ARGUMENT_KIND, s_arg, r->form);
    }
    unsigned roles = r->route->scopes;
    if (roles && (!r->sess || !r->sess->role)) { /* a page for signed-in users */
        if (!post) {
            ws_redirect(r, expired ? "/sign-in?expired=1" : "/sign-in");
            return;
        }
        ws_fail(s, r, SH_E_NO_SESSION,
                expired ? "your session has ended: sign in again (nothing was done)"
                        : "sign in first (nothing was done)");
        return;
    }
    if (post) { /* every form carries its session's token */
        const char *tok = ws_field(r, "csrf");
        if (!r->sess || !tok || !s_same(r->sess->csrf, tok)) {
            ws_fail(s, r, r->sess ? SH_E_CSRF : SH_E_NO_SESSION,
                    r->sess ? "the form did not come from this session's page: nothing was done"
                            : "this form's session has ended: open the page again");
            return;
        }
    }
    if (roles && !(roles & WS_ROLE(r->sess->role))) {
        char d[120];
        snprintf(d, sizeof d, "a %s account cannot use this page", ws_role_name(r->sess->role));
        ws_fail(s, r, SH_E_ROLE, d);
        return;
    }
    r->route->start(s, r);
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **ctx)
{
    (void)version;
    api *s = cls;
    api_req *r = *ctx;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *ctx = r;
        r->c = c;
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->url, sizeof r->url, "%s", url);
        if (strlen(url) >= sizeof r->url) {
            s_set(r, MHD_HTTP_URI_TOO_LONG, strdup("address too long"), 16, "text/plain");
        } else if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            s_static(s, r, url);
        }
        return MHD_YES;
    }
    if (*upload_len) {
        if (!r->status && !r->too_large) {
            if (r->len + *upload_len > FORM_MAX) {
                r->too_large = 1;
            } else {
                char *b = realloc(r->body, r->len + *upload_len + 1);
                if (!b) return MHD_NO;
                memcpy(b + r->len, upload, *upload_len);
                r->body = b;
                r->len += *upload_len;
                b[r->len] = '\0';
            }
        }
        *upload_len = 0;
        return MHD_YES;
    }
    if (!r->started) {
        r->started = 1;
        if (r->too_large && !r->status) ws_fail(s, r, SH_E_TOO_LARGE, "the form is over 64 KiB");
        if (!r->status) s_begin(s, r);
    }
    if (r->status) return s_queue(r);
    if (r->tag) {
        r->suspended = 1;
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    ws_fail(s, r, SH_E_INTERNAL, "no page was made");
    return s_queue(r);
}

/* ---- life ------------------------------------------------------------------------------ */

sh_err ws_new(api *s, sh_error *err)
{
    api_config *cfg = s->cfg;
    if (!cfg->ws_listen) return SH_OK;
    struct sockaddr_storage addr;
    if (sh_http_listen_parse(cfg->ws_listen, &addr))
        return sh_error_set(err, SH_E_API_CONFIG,
                            "workspace.listen: want a numeric address and port, such as "
                            "127.0.0.1:8444");
    s->ws = calloc(1, sizeof *s->ws);
    if (!s->ws) return sh_error_set(err, SH_E_NOMEM, "workspace");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/templates", cfg->ws_root);
    sh_err rc = sh_templates_load(dir, &s->ws->tpl, err);
    if (rc) return rc;
    snprintf(s->ws->govuk, sizeof s->ws->govuk, "%s/node_modules/govuk-frontend/dist/govuk",
             cfg->ws_root);
    snprintf(s->ws->assets, sizeof s->ws->assets, "%s/assets", s->ws->govuk);
    snprintf(s->ws->statics, sizeof s->ws->statics, "%s/static", cfg->ws_root);
    struct stat st;
    snprintf(dir, sizeof dir, "%s/govuk-frontend.min.css", s->ws->govuk);
    if (stat(dir, &st) != 0)
        return sh_error_set(err, SH_E_API_CONFIG,
                            "workspace.root: %s has no govuk-frontend (run tools/deps build: it "
                            "installs the pinned package from npm)",
                            cfg->ws_root);
    char *cert = NULL, key[16384];
    size_t kl = 0;
    FILE *f = fopen(cfg->cert_file, "rb");
    cert = f ? calloc(1, 65536) : NULL;
    if (cert && fread(cert, 1, 65535, f) == 0) rc = SH_E_API_CONFIG;
    if (f) fclose(f);
    if (!cert) rc = sh_error_set(err, SH_E_API_CONFIG, "tls.certificate: cannot read");
    if (!rc) rc = sh_secret_file_read(cfg->key_file, key, sizeof key, &kl, err);
    if (!rc) {
        unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG | (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        s->wd = MHD_start_daemon(flags, 0, NULL, NULL, s_access, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_HTTPS_MEM_CERT, cert,
                                 MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_PRIORITIES,
                                 PRIORITIES, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_NOTIFY_COMPLETED, api_completed, s, MHD_OPTION_END);
        if (!s->wd)
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "cannot serve the workspace on %s: the address is in use or not "
                              "this machine's",
                              cfg->ws_listen);
    }
    sh_wipe(key, sizeof key);
    free(cert);
    return rc;
}

void ws_destroy(api *s)
{
    if (s->ws)
        for (api_req *w = s->waiting; w; w = w->next)
            if (w->suspended) w->suspended = 0, MHD_resume_connection(w->c);
    if (s->wd) MHD_stop_daemon(s->wd);
    s->wd = NULL;
    if (s->ws) {
        sh_templates_free(&s->ws->tpl);
        for (int i = 0; i < SESSIONS; i++)
            s_clear(&s->ws->sessions[i]);
        free(s->ws);
        s->ws = NULL;
    }
}
