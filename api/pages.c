/*
 * pages.c — the workspace's pages (docs/workspace.md): signing in and out, the front-door
 * queue, an item with the child's history and the triage and assignment forms (the child
 * search and record, the clinician's and the auditor's views are records.c's), what the page
 * files share (pages.h), and the workspace's routes. Each page asks the agent (link.c) and
 * renders a template (api/workspace/templates) with the answer; forms post, then redirect
 * (a reload never posts twice), with a one-off confirmation or error in the session.
 *
 * Owns: nothing beyond a request. Never: keeps a password past the check (wiped); opens a
 * child's record without the user choosing why (the purpose is audited with the read); shows
 * a form that the user's role cannot submit.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "pages.h"
#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "password.h"

#define PAGE   25
#define HUB    (WS_ROLE(WS_PRACTITIONER) | WS_ROLE(WS_MANAGER) | WS_ROLE(WS_READ_ONLY))
#define DECIDE (WS_ROLE(WS_PRACTITIONER) | WS_ROLE(WS_MANAGER))
#define CLIENT "workspace" /* the client system the agent's audit names: "via api:workspace" */

/* Why a record is opened (the audit's purpose), as the purpose page offers them. */
static const char *const s_purposes[][2] = {
    {"triage", "Front-door triage of a contact or referral"},
    {"safeguarding_enquiry", "Safeguarding enquiry (section 47)"},
    {"direct_care", "Direct care of the child"},
    {"case_work", "Case work with the child and family"},
};

const char *pg_purpose(api_req *r)
{
    const char *p = ws_field(r, "purpose");
    for (size_t i = 0; p && i < sizeof s_purposes / sizeof s_purposes[0]; i++)
        if (strcmp(p, s_purposes[i][0]) == 0) return s_purposes[i][0];
    return NULL;
}

json_object *pg_purpose_list(const char *chosen)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < sizeof s_purposes / sizeof s_purposes[0]; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "value", json_object_new_string(s_purposes[i][0]));
        json_object_object_add(o, "text", json_object_new_string(s_purposes[i][1]));
        json_object_object_add(
            o, "checked", json_object_new_boolean(chosen && strcmp(chosen, s_purposes[i][0]) == 0));
        json_object_array_add(a, o);
    }
    return a;
}

json_object *pg_stringf(const char *fmt, ...)
{
    char b[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    return json_object_new_string(b);
}

/* A request to the agent made by the signed-in user. */
json_object *pg_req(api_req *r, const char *op)
{
    json_object *q = json_object_new_object();
    json_object_object_add(q, "op", json_object_new_string(op));
    if (r->sess && r->sess->role)
        json_object_object_add(q, "user", json_object_new_string(r->sess->user));
    json_object_object_add(q, "client", json_object_new_string(CLIENT));
    return q;
}

void pg_ask(api *s, api_req *r, json_object *q)
{
    if (api_ask(s, r, q)) /* api_ask answered with a JSON 503: make it a page */
        ws_fail(s, r, SH_E_AGENT_UNAVAILABLE, "the agency's service is not answering: try again");
}

/* o's member key as an array, or as an object: an empty one is put there when it is missing or
 * of another type (the pages never trust the shape of an answer blindly). */
json_object *pg_member(json_object *o, const char *key, json_type type)
{
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, type)) return v;
    v = type == json_type_array ? json_object_new_array() : json_object_new_object();
    json_object_object_add(o, key, v);
    return v;
}

/* When the agent's answer is a refusal: a page saying so (its code and detail), and 1. */
int pg_refused(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    if (json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v)) return 0;
    int code = json_object_object_get_ex(reply, "code", &v) ? json_object_get_int(v) : 103;
    ws_fail(s, r, (sh_err)code, json_object_get_string(json_object_object_get(reply, "detail")));
    return 1;
}

/* ---- words for people ------------------------------------------------------------------ */

static void s_when(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!ms || !localtime_r(&t, &tm) || !strftime(out, cap, "%a %e %b %Y, %H:%M", &tm))
        snprintf(out, cap, "-");
}

void pg_add_when(json_object *o, const char *key, const char *out_key)
{
    json_object *v;
    char b[64];
    if (!json_object_object_get_ex(o, key, &v)) return;
    s_when(json_object_get_int64(v), b, sizeof b);
    json_object_object_add(o, out_key, json_object_new_string(b));
}

size_t pg_attendances(json_object *ctx, json_object *reply)
{
    json_object *att = pg_array(reply, "attendances");
    size_t n = json_object_array_length(att);
    for (size_t i = 0; i < n; i++)
        pg_add_when(json_object_array_get_idx(att, i), "at", "when");
    json_object_object_add(ctx, "attendances", json_object_get(att));
    return n;
}

/* "section_47_strategy" -> "Section 47 strategy", "cp_plan_status" -> "CP plan status" */
json_object *pg_words(const char *name)
{
    static const char *const upper[] = {"cp", "la", "nhs", "upn", "ed"}; /* said as letters */
    char b[256];
    snprintf(b, sizeof b, "%s", name ? name : "");
    for (char *p = b; *p; p++)
        if (*p == '_') *p = ' ';
    for (char *w = b; *w;) {
        size_t n = strcspn(w, " ");
        for (size_t i = 0; i < sizeof upper / sizeof upper[0]; i++)
            if (n == strlen(upper[i]) && strncmp(w, upper[i], n) == 0)
                for (size_t k = 0; k < n; k++)
                    w[k] = (char)(w[k] - 'a' + 'A');
        w += n + (w[n] == ' ');
    }
    if (b[0] >= 'a' && b[0] <= 'z') b[0] = (char)(b[0] - 'a' + 'A');
    return json_object_new_string(b);
}

void pg_add_words(json_object *o, const char *key, const char *out_key)
{
    json_object *v;
    if (json_object_object_get_ex(o, key, &v))
        json_object_object_add(o, out_key, pg_words(json_object_get_string(v)));
}

/* A queue item or front-door state made readable: times, the deadline's state, words. */
static void s_item_words(json_object *it, int64_t now)
{
    if (!json_object_is_type(it, json_type_object)) return;
    pg_add_when(it, "received_at_ms", "received");
    pg_add_when(it, "deadline_ms", "deadline");
    pg_add_when(it, "decided_at_ms", "decided");
    pg_add_words(it, "type", "type_words");
    pg_add_words(it, "state", "state_words");
    json_object *v;
    const char *due = json_object_object_get_ex(it, "due", &v) ? json_object_get_string(v) : "";
    json_object_object_add(it, "overdue", json_object_new_boolean(strcmp(due, "overdue") == 0));
    json_object_object_add(it, "due_soon", json_object_new_boolean(strcmp(due, "due_soon") == 0));
    json_object_object_add(it, "decided_late",
                           json_object_new_boolean(strcmp(due, "decided_late") == 0));
    int64_t dl = json_object_object_get_ex(it, "deadline_ms", &v) ? json_object_get_int64(v) : 0;
    int64_t mins = (dl - now) / 60000;
    char b[64];
    if (strcmp(due, "overdue") == 0)
        snprintf(b, sizeof b, "%lld h %lld min overdue", (long long)(-mins / 60),
                 (long long)(-mins % 60));
    else if (strncmp(due, "decided", 7) != 0)
        snprintf(b, sizeof b, "%lld h %lld min left", (long long)(mins / 60),
                 (long long)(mins % 60));
    else
        b[0] = '\0';
    json_object_object_add(it, "left", json_object_new_string(b));
    const char *id = json_object_object_get_ex(it, "event_id", &v) ? json_object_get_string(v) : "";
    json_object_object_add(it, "short_id", pg_stringf("%.8s", id));
}

/* A message's fields as label/value rows (nested ones flattened: "Concerns 1 category"). */
void pg_rows(json_object *o, const char *prefix, json_object *rows)
{
    json_object_object_foreach(o, k, v)
    {
        char label[160];
        snprintf(label, sizeof label, "%s%s%s", prefix, *prefix ? " " : "", k);
        if (json_object_is_type(v, json_type_object)) {
            pg_rows(v, label, rows);
        } else if (json_object_is_type(v, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                char l2[200];
                snprintf(l2, sizeof l2, "%s %zu", label, i + 1);
                json_object *e = json_object_array_get_idx(v, i);
                if (json_object_is_type(e, json_type_object))
                    pg_rows(e, l2, rows);
                else {
                    json_object *row = json_object_new_object();
                    json_object_object_add(row, "label", pg_words(l2));
                    json_object_object_add(row, "value",
                                           json_object_new_string(json_object_get_string(e)));
                    json_object_array_add(rows, row);
                }
            }
        } else {
            const char *t = json_object_get_string(v);
            if (strstr(k, "_ms") && json_object_is_type(v, json_type_int)) {
                char b[64];
                s_when(json_object_get_int64(v), b, sizeof b);
                t = NULL;
                json_object *row = json_object_new_object();
                json_object_object_add(row, "label", pg_words(label));
                json_object_object_add(row, "value", json_object_new_string(b));
                json_object_array_add(rows, row);
                continue;
            }
            json_object *row = json_object_new_object();
            json_object_object_add(row, "label", pg_words(label));
            json_object_object_add(
                row, "value",
                json_object_is_type(v, json_type_boolean)
                    ? json_object_new_string(json_object_get_boolean(v) ? "Yes" : "No")
                : strchr(t, '_') && !strchr(t, ' ') ? pg_words(t)
                                                    : json_object_new_string(t));
            json_object_array_add(rows, row);
        }
    }
}

/* ---- sign in and out ------------------------------------------------------------------- */

static void p_home(api *s, api_req *r)
{
    if (!r->sess || !r->sess->role) {
        ws_redirect(r, "/sign-in");
        return;
    }
    ws_redirect(r, r->sess->role == WS_AUDITOR ? "/audit"
                   : s->role == 2              ? "/clinician"
                   : s->role == 3              ? "/queue"
                                               : "/children");
}

static void s_sign_in_page(api *s, api_req *r, unsigned status, const char *message)
{
    json_object *ctx = json_object_new_object();
    if (message) json_object_object_add(ctx, "problem", json_object_new_string(message));
    if (ws_field(r, "expired"))
        json_object_object_add(ctx, "notice",
                               json_object_new_string("Your session ended. Sign in again."));
    if (ws_field(r, "signed_out"))
        json_object_object_add(ctx, "notice", json_object_new_string("You have signed out."));
    const char *name = ws_field(r, "name");
    if (name) json_object_object_add(ctx, "name", json_object_new_string(name));
    ws_page(s, r, status, "Sign in", "sign_in", ctx);
}

static void p_sign_in_form(api *s, api_req *r)
{
    if (r->sess && r->sess->role) {
        ws_redirect(r, "/");
        return;
    }
    if (!r->sess && !ws_session_new(s, r)) {
        ws_fail(s, r, SH_E_UNAVAILABLE, "too many people are signing in: try again in a minute");
        return;
    }
    s_sign_in_page(s, r, MHD_HTTP_OK, NULL);
}

static void s_wipe_field(api_req *r, const char *name)
{
    const char *p = ws_field(r, name);
    if (p) sh_wipe((char *)p, strlen(p)); /* json-c's own copy of the password */
}

/* Password checks a second, and sign-ins waiting for theirs, at most: each check costs the
 * loop tens of milliseconds of Argon2id, and the per-account lock does not stop names sprayed
 * across accounts. */
#define SIGN_INS_PER_SECOND 10
#define SIGN_INS_WAITING    4

static void p_sign_in(api *s, api_req *r)
{
    const char *name = ws_field(r, "name"), *pw = ws_field(r, "password");
    static int64_t second;
    static int count;
    int64_t now = sh_clock_ms() / 1000;
    if (now != second) second = now, count = 0;
    if (++count > SIGN_INS_PER_SECOND || s->signing_in >= SIGN_INS_WAITING) {
        s_wipe_field(r, "password");
        s_sign_in_page(s, r, MHD_HTTP_TOO_MANY_REQUESTS,
                       "Too many people are signing in at this moment: try again in a few "
                       "seconds");
        return;
    }
    if (!name || !*name || !pw || !*pw) {
        s_wipe_field(r, "password");
        s_sign_in_page(s, r, MHD_HTTP_UNAUTHORIZED, "Enter your user name and password");
        return;
    }
    json_object *q = pg_req(r, "account_get");
    json_object_object_add(q, "name", json_object_new_string(name));
    r->step = 0;
    r->signing = 1;
    s->signing_in++;
    pg_ask(s, r, q);
}

static void p_sign_in_answer(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    const char *name = ws_field(r, "name");
    if (r->step == 0) {
        int code = json_object_object_get_ex(reply, "code", &v) ? json_object_get_int(v) : 0;
        int ok = json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
        const char *hash =
            ok && json_object_object_get_ex(reply, "hash", &v) ? json_object_get_string(v) : NULL;
        int good = 0;
        if (hash) {
            good = sh_password_check(hash, ws_field(r, "password"));
        } else if (code != SH_E_LOCKED) { /* no such account: take the same time */
            static const char dummy[] = "$argon2id$v=19$m=19456,t=2,p=1$c2hhcmVodWJzYWx0MTIz"
                                        "$Y2hlY2tpbmcgdGFrZXMgdGhlIHNhbWUgdGltZS4uLi4";
            sh_password_check(dummy, ws_field(r, "password"));
        }
        s_wipe_field(r, "password");
        json_object_object_add(r->form, "_good", json_object_new_boolean(good));
        json_object_object_add(r->form, "_locked", json_object_new_boolean(code == SH_E_LOCKED));
        if (good) {
            json_object_object_add(r->form, "_role",
                                   json_object_get(json_object_object_get(reply, "role")));
            json_object_object_add(r->form, "_display",
                                   json_object_get(json_object_object_get(reply, "display")));
        }
        json_object *q = pg_req(r, "sign_in");
        json_object_object_add(q, "name", json_object_new_string(name));
        json_object_object_add(q, "ok", json_object_new_boolean(good));
        json_object_object_add(q, "from", json_object_new_string("workspace"));
        r->step = 1;
        pg_ask(s, r, q);
        return;
    }
    int good = json_object_get_boolean(json_object_object_get(r->form, "_good"));
    int was_locked = json_object_get_boolean(json_object_object_get(r->form, "_locked"));
    int locked = json_object_object_get_ex(reply, "locked", &v) && json_object_get_boolean(v);
    int recorded = json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
    if (good && recorded) {
        ws_session_end(s, r); /* a new id once signed in: no fixation */
        ws_session *x = ws_session_new(s, r);
        if (!x) {
            ws_fail(s, r, SH_E_UNAVAILABLE, "too many sessions: try again in a minute");
            return;
        }
        snprintf(x->user, sizeof x->user, "%s", name);
        snprintf(x->display, sizeof x->display, "%s", ws_field(r, "_display"));
        x->role = ws_role_value(ws_field(r, "_role"));
        sh_log(SH_LOG_INFO, NULL, NULL, "workspace: %s signed in", ws_role_name(x->role));
        ws_redirect(r, "/");
        return;
    }
    if (was_locked || locked)
        s_sign_in_page(s, r, MHD_HTTP_LOCKED,
                       "This account is locked after repeated failed sign-ins. Try again in 15 "
                       "minutes, or ask your team manager to unlock it.");
    else
        s_sign_in_page(s, r, MHD_HTTP_UNAUTHORIZED, "The user name or password is not right");
}

static void p_sign_out(api *s, api_req *r)
{
    ws_session_end(s, r);
    ws_redirect(r, "/sign-in?signed_out=1");
}

/* ---- the queue ------------------------------------------------------------------------- */

static void p_queue(api *s, api_req *r)
{
    json_object *q = pg_req(r, "queue");
    const char *state = ws_field(r, "state"), *type = ws_field(r, "type");
    const char *loc = ws_field(r, "locality"), *page = ws_field(r, "page");
    if (state && *state) json_object_object_add(q, "state", json_object_new_string(state));
    if (type && *type) json_object_object_add(q, "type", json_object_new_string(type));
    if (loc && *loc) json_object_object_add(q, "locality", json_object_new_string(loc));
    if (ws_field(r, "mine"))
        json_object_object_add(q, "assignee", json_object_new_string(r->sess->user));
    if (ws_field(r, "overdue")) json_object_object_add(q, "overdue", json_object_new_boolean(1));
    long p = page ? strtol(page, NULL, 10) : 1;
    if (p < 1 || p > 100000) p = 1;
    json_object_object_add(q, "offset", json_object_new_int64((p - 1) * PAGE));
    json_object_object_add(q, "limit", json_object_new_int(PAGE));
    json_object_object_add(r->form, "_page", json_object_new_int((int)p));
    pg_ask(s, r, q);
}

static void p_queue_answer(api *s, api_req *r, json_object *reply)
{
    if (pg_refused(s, r, reply)) return;
    json_object *ctx = json_object_new_object(), *items = pg_array(reply, "items");
    int64_t now = json_object_get_int64(json_object_object_get(reply, "now_ms"));
    for (size_t i = 0; i < json_object_array_length(items); i++)
        s_item_words(json_object_array_get_idx(items, i), now);
    int64_t total = json_object_get_int64(json_object_object_get(reply, "total"));
    int page = json_object_get_int(json_object_object_get(r->form, "_page"));
    int64_t first = total ? (int64_t)(page - 1) * PAGE + 1 : 0;
    int64_t last = (int64_t)(page - 1) * PAGE + (int64_t)json_object_array_length(items);
    json_object_object_add(ctx, "items", json_object_get(items));
    json_object_object_add(ctx, "counts", json_object_get(json_object_object_get(reply, "counts")));
    json_object_object_add(ctx, "total", json_object_new_int64(total));
    json_object_object_add(ctx, "first", json_object_new_int64(first));
    json_object_object_add(ctx, "last", json_object_new_int64(last));
    json_object_object_add(ctx, "empty", json_object_new_boolean(total == 0));
    /* the filters, kept in the paging links */
    char keep[300] = "";
    const char *keys[] = {"state", "type", "locality", "mine", "overdue"};
    json_object *f = json_object_new_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *x = ws_field(r, keys[i]);
        if (!x || !*x) continue;
        int safe = 1;
        for (const char *c = x; *c; c++)
            safe &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';
        if (!safe) continue;
        size_t n = strlen(keep);
        snprintf(keep + n, sizeof keep - n, "&%s=%s", keys[i], x);
        json_object_object_add(f, keys[i], json_object_new_string(x));
        char sel[48];
        snprintf(sel, sizeof sel, "%s_%s", keys[i], x);
        json_object_object_add(f, sel, json_object_new_boolean(1));
    }
    json_object_object_add(ctx, "filter", f);
    if (page > 1)
        json_object_object_add(ctx, "prev", pg_stringf("/queue?page=%d%s", page - 1, keep));
    if (last < total)
        json_object_object_add(ctx, "next", pg_stringf("/queue?page=%d%s", page + 1, keep));
    json_object *locs = pg_array(reply, "localities"), *la = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(locs); i++) {
        const char *n = json_object_get_string(json_object_array_get_idx(locs, i));
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(n));
        const char *cur = ws_field(r, "locality");
        json_object_object_add(o, "selected", json_object_new_boolean(cur && strcmp(cur, n) == 0));
        json_object_array_add(la, o);
    }
    json_object_object_add(ctx, "localities", la);
    ws_page(s, r, MHD_HTTP_OK, "Front-door queue", "queue", ctx);
}

/* ---- an item --------------------------------------------------------------------------- */

static void p_item(api *s, api_req *r)
{
    const char *purpose = pg_purpose(r);
    if (!purpose) { /* why, first: it is recorded with the read */
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "action", pg_stringf("/items/%s", r->arg));
        json_object_object_add(ctx, "purposes", pg_purpose_list(NULL));
        if (ws_field(r, "purpose"))
            json_object_object_add(
                ctx, "problem", json_object_new_string("Choose why you are opening this record"));
        ws_page(s, r, MHD_HTTP_OK, "Why are you opening this record?", "purpose", ctx);
        return;
    }
    json_object *q = pg_req(r, "item");
    json_object_object_add(q, "event_id", json_object_new_string(r->arg));
    json_object_object_add(q, "purpose", json_object_new_string(purpose));
    pg_ask(s, r, q);
}

/* The outcomes, each with the levels it fits (the form says so before submit). */
static json_object *s_outcomes(const char *chosen)
{
    static const char *const o[][3] = {
        {"no_further_action", "No further action", "1"},
        {"universal_services", "Advice or signposting to universal services", "1 2"},
        {"early_help", "Early help (Early Help Plan, Team Around the Family)", "2"},
        {"family_solutions", "Family Solutions (intensive family support)", "3"},
        {"section_17_assessment", "Child-in-need assessment (section 17)", "3 4"},
        {"section_47_strategy", "Strategy discussion and section 47 enquiry", "4"},
        {"immediate_protection", "Immediate protective action", "4"},
    };
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "value", json_object_new_string(o[i][0]));
        json_object_object_add(x, "text", json_object_new_string(o[i][1]));
        json_object_object_add(x, "levels", json_object_new_string(o[i][2]));
        json_object_object_add(x, "checked",
                               json_object_new_boolean(chosen && strcmp(chosen, o[i][0]) == 0));
        json_object_array_add(a, x);
    }
    return a;
}

static void p_item_answer(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    if (pg_refused(s, r, reply)) return;
    json_object *ctx = json_object_new_object(), *item = pg_object(reply, "item");
    int64_t now = sh_clock_ms();
    json_object *ev = pg_object(item, "event"), *child = NULL, *rows;
    json_object_object_get_ex(ev, "child", &child);
    json_object_object_add(ctx, "event_id", json_object_new_string(r->arg));
    json_object_object_add(ctx, "purpose", json_object_new_string(pg_purpose(r)));
    pg_add_words(item, "type", "type_words");
    pg_add_when(item, "stored_at_ms", "stored");
    json_object_object_add(ctx, "item", json_object_get(item));
    if (child) {
        rows = json_object_new_array();
        pg_rows(child, "", rows);
        json_object_object_add(ctx, "child_rows", rows);
    }
    /* the sharing itself (purpose, consent on record, the level asked for), then the body:
     * whatever message the event carries */
    rows = json_object_new_array();
    static const char *const head[][2] = {
        {"purpose", "Purpose"}, {"consent", "Consent"}, {"level_of_need", "Level of need"}};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) {
        json_object *hv;
        if (!json_object_object_get_ex(ev, head[i][0], &hv)) continue;
        json_object *row = json_object_new_object();
        json_object_object_add(row, "label", json_object_new_string(head[i][1]));
        json_object_object_add(row, "value", pg_words(json_object_get_string(hv)));
        json_object_array_add(rows, row);
    }
    json_object_object_foreach(ev, k, bv)
    {
        if (json_object_is_type(bv, json_type_object) && strcmp(k, "child") != 0 &&
            strcmp(k, "lawful_basis") != 0)
            pg_rows(bv, "", rows);
    }
    json_object_object_add(ctx, "body_rows", rows);
    json_object *fd;
    if (json_object_object_get_ex(reply, "front_door", &fd)) {
        s_item_words(fd, now);
        json_object_object_add(ctx, "fd", json_object_get(fd));
        const char *st = json_object_get_string(json_object_object_get(fd, "state"));
        int decided = st && strcmp(st, "decided") == 0;
        json_object_object_add(ctx, "decided", json_object_new_boolean(decided));
        json_object_object_add(ctx, "open", json_object_new_boolean(!decided));
    }
    json_object *hist = pg_array(reply, "history");
    for (size_t i = 0; i < json_object_array_length(hist); i++) {
        json_object *h = json_object_array_get_idx(hist, i);
        pg_add_words(h, "type", "type_words");
        pg_add_when(h, "stored_at_ms", "stored");
    }
    json_object_object_add(ctx, "history", json_object_get(hist));
    json_object_object_add(ctx, "no_history",
                           json_object_new_boolean(json_object_array_length(hist) == 0));
    pg_attendances(ctx, reply);
    const char *flag = json_object_get_string(json_object_object_get(reply, "flag"));
    json_object_object_add(ctx, "flagged",
                           json_object_new_boolean(flag && strcmp(flag, "none") != 0));
    json_object_object_add(ctx, "flag_words", pg_words(flag));
    if (json_object_object_get_ex(reply, "la_contact", &v))
        json_object_object_add(ctx, "la_contact", json_object_get(v));
    if (json_object_object_get_ex(reply, "flag_start", &v))
        json_object_object_add(ctx, "flag_start", json_object_get(v));
    json_object *acc;
    if (json_object_object_get_ex(reply, "assignable", &acc) &&
        json_object_is_type(acc, json_type_array)) {
        json_object *list = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(acc); i++) {
            json_object *a = json_object_array_get_idx(acc, i);
            const char *role = json_object_get_string(json_object_object_get(a, "role"));
            if (strcmp(role, "practitioner") && strcmp(role, "manager")) continue;
            json_object_array_add(list, json_object_get(a));
        }
        json_object_object_add(ctx, "assignable", list);
    }
    const char *level =
        r->sess && r->sess->values
            ? json_object_get_string(json_object_object_get(r->sess->values, "level"))
            : NULL;
    const char *outcome =
        r->sess && r->sess->values
            ? json_object_get_string(json_object_object_get(r->sess->values, "outcome"))
            : NULL;
    json_object *levels = json_object_new_array();
    static const char *const lv[] = {"", "1 - Universal", "2 - Additional (early help)",
                                     "3 - Intensive (Family Solutions)", "4 - Specialist"};
    for (int i = 1; i <= 4; i++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "value", json_object_new_int(i));
        json_object_object_add(x, "text", json_object_new_string(lv[i]));
        json_object_object_add(x, "checked", json_object_new_boolean(level && atoi(level) == i));
        json_object_array_add(levels, x);
    }
    json_object_object_add(ctx, "levels", levels);
    json_object_object_add(ctx, "outcomes", s_outcomes(outcome));
    ws_page(s, r, MHD_HTTP_OK, "Referral", "item", ctx);
}

/* After a form's action: back to the item, with the outcome in the session. */
static void p_after_item_action(api *s, api_req *r, json_object *reply)
{
    (void)s;
    char back[160];
    snprintf(back, sizeof back, "/items/%.64s?purpose=triage", r->arg);
    if (ws_agent_error(r, reply)) {
        if (r->sess) {
            snprintf(r->sess->error_field, sizeof r->sess->error_field, "%s",
                     r->step ? "assign" : "decide");
            if (r->sess->values) json_object_put(r->sess->values);
            r->sess->values = json_object_get(r->form);
        }
        ws_redirect(r, back);
        return;
    }
    json_object *v;
    if (r->sess && r->step == 1)
        snprintf(r->sess->flash, sizeof r->sess->flash, "Assigned to %s", ws_field(r, "to"));
    else if (r->sess)
        snprintf(r->sess->flash, sizeof r->sess->flash, "%s sent to the referrer",
                 json_object_object_get_ex(reply, "amends", &v) ? "Amended decision" : "Decision");
    ws_redirect(r, back);
}

static void p_decide(api *s, api_req *r)
{
    json_object *q = pg_req(r, "triage");
    json_object_object_add(q, "referral_event_id", json_object_new_string(r->arg));
    const char *level = ws_field(r, "level");
    json_object_object_add(q, "level", json_object_new_int(level ? atoi(level) : 0));
    const char *keys[][2] = {{"outcome", "outcome"},
                             {"rationale", "rationale"},
                             {"amend_reason", "amend_reason"},
                             {"exception_reason", "exception_reason"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *x = ws_field(r, keys[i][0]);
        if (x && *x) json_object_object_add(q, keys[i][1], json_object_new_string(x));
    }
    r->step = 0;
    pg_ask(s, r, q);
}

static void p_assign(api *s, api_req *r)
{
    json_object *q = pg_req(r, "assign");
    const char *to = ws_field(r, "to");
    json_object_object_add(q, "event_id", json_object_new_string(r->arg));
    json_object_object_add(q, "to", json_object_new_string(to ? to : ""));
    r->step = 1;
    pg_ask(s, r, q);
}

/* ---- the routes ------------------------------------------------------------------------ */

const api_route ws_routes[] = {
    {"GET", "/", 0, p_home, NULL},
    {"GET", "/sign-in", 0, p_sign_in_form, NULL},
    {"POST", "/sign-in", 0, p_sign_in, p_sign_in_answer},
    {"POST", "/sign-out", 0, p_sign_out, NULL},
    {"GET", "/queue", HUB, p_queue, p_queue_answer},
    {"GET", "/items/*", HUB, p_item, p_item_answer},
    {"POST", "/items/*/decide", DECIDE, p_decide, p_after_item_action},
    {"POST", "/items/*/assign", WS_ROLE(WS_MANAGER), p_assign, p_after_item_action},
    {"GET", "/children", WS_ANYONE, p_children, p_children_answer},
    {"POST", "/children", WS_ANYONE, p_children, p_children_answer},
    {"POST", "/children/record", WS_ANYONE, p_child, p_children_answer},
    {"GET", "/clinician", WS_ANYONE, p_clinician, p_clinician_answer},
    {"POST", "/clinician", WS_ANYONE, p_clinician, p_clinician_answer},
    {"GET", "/audit", WS_ROLE(WS_AUDITOR), p_audit, p_audit_answer},
    {"GET", "/review", WS_ROLE(WS_MANAGER), p_review, p_review_answer},
    {"GET", "/review/*", WS_ROLE(WS_MANAGER), p_review, p_review_answer},
    {"POST", "/review/*", WS_ROLE(WS_MANAGER), p_review_decide, p_review_after},
};
const size_t ws_nroutes = sizeof ws_routes / sizeof ws_routes[0];
