/*
 * records.c — the workspace's pages about a child's record (docs/workspace.md): the child
 * search (an identifier, or a name and date of birth) and the record it opens, the clinician's
 * CP-IS view at a health agency, and the auditor's view of the log. The queue, items and
 * sign-in are pages.c's; the routes are there too.
 *
 * Owns: nothing beyond a request. Never: puts a child's identifier or name in an address (the
 * searches are posted forms); opens a record without the purpose the user chose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "pages.h"

/* ---- children -------------------------------------------------------------------------- */

static void s_search_page(api *s, api_req *r, unsigned status, const char *problem,
                          const char *field)
{
    json_object *ctx = json_object_new_object();
    const char *keys[] = {"id", "given_name", "family_name", "dob_day", "dob_month", "dob_year"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *x = ws_field(r, keys[i]);
        if (x) json_object_object_add(ctx, keys[i], json_object_new_string(x));
    }
    json_object_object_add(ctx, "purposes", pg_purpose_list(pg_purpose(r)));
    json_object_object_add(ctx, "small", json_object_new_boolean(1));
    if (problem) {
        json_object_object_add(ctx, "problem", json_object_new_string(problem));
        json_object_object_add(ctx, "problem_field", json_object_new_string(field));
        char f[48];
        snprintf(f, sizeof f, "problem_%s", field);
        json_object_object_add(ctx, f, json_object_new_boolean(1));
    }
    ws_page(s, r, status, "Find a child", "search", ctx);
}

static void s_child_ask(api *s, api_req *r, const char *id, const char *purpose)
{
    json_object *q = pg_req(r, "child");
    json_object_object_add(q, "id", json_object_new_string(id));
    json_object_object_add(q, "purpose", json_object_new_string(purpose));
    if (s->role == 2 && r->route && strcmp(r->route->pattern, "/clinician") == 0) {
        json_object *acc = json_object_new_object();
        if (s->cfg->ws_site[0])
            json_object_object_add(acc, "site", json_object_new_string(s->cfg->ws_site));
        if (s->cfg->ws_setting[0])
            json_object_object_add(acc, "setting", json_object_new_string(s->cfg->ws_setting));
        json_object_object_add(q, "access", acc);
    }
    r->step = 2;
    pg_ask(s, r, q);
}

void p_children(api *s, api_req *r)
{
    const char *id = ws_field(r, "id"), *given = ws_field(r, "given_name");
    const char *family = ws_field(r, "family_name"), *purpose = pg_purpose(r);
    const char *d = ws_field(r, "dob_day"), *m = ws_field(r, "dob_month"),
               *y = ws_field(r, "dob_year");
    int by_id = id && *id, by_name = (given && *given) || (family && *family);
    /* the form is a GET; the search a POST: a child's identifiers and name never go into an
     * address (browser history, proxies' logs) */
    if (strcmp(r->method, "GET") == 0) {
        s_search_page(s, r, MHD_HTTP_OK, NULL, NULL);
        return;
    }
    if (!by_id && !by_name) {
        s_search_page(s, r, MHD_HTTP_BAD_REQUEST,
                      "Enter an NHS number, UPN or local authority id, or a name and date of "
                      "birth",
                      "id");
        return;
    }
    if (!purpose) {
        s_search_page(s, r, MHD_HTTP_BAD_REQUEST, "Choose why you are looking for this child",
                      "purpose");
        return;
    }
    if (by_id) {
        s_child_ask(s, r, id, purpose);
        return;
    }
    if (!given || !*given || !family || !*family || !d || !*d || !m || !*m || !y || !*y) {
        s_search_page(s, r, MHD_HTTP_BAD_REQUEST,
                      "Enter the child's first name, last name and full date of birth", "name");
        return;
    }
    char dob[16];
    snprintf(dob, sizeof dob, "%04d-%02d-%02d", atoi(y) % 10000, atoi(m) % 100, atoi(d) % 100);
    json_object *q = pg_req(r, "find");
    json_object_object_add(q, "given_name", json_object_new_string(given));
    json_object_object_add(q, "family_name", json_object_new_string(family));
    json_object_object_add(q, "date_of_birth", json_object_new_string(dob));
    json_object_object_add(q, "purpose", json_object_new_string(purpose));
    r->step = 1;
    pg_ask(s, r, q);
}

static void s_child_page(api *s, api_req *r, json_object *reply, const char *tpl, const char *title)
{
    json_object *ctx = json_object_new_object(), *v;
    json_object *events = pg_array(reply, "events");
    for (size_t i = 0; i < json_object_array_length(events); i++) {
        json_object *h = json_object_array_get_idx(events, i);
        pg_add_words(h, "type", "type_words");
        pg_add_when(h, "stored_at_ms", "stored");
        json_object *ev, *ch;
        if (!json_object_object_get_ex(ctx, "child_rows", NULL) &&
            json_object_object_get_ex(h, "event", &ev) &&
            json_object_object_get_ex(ev, "child", &ch)) {
            json_object *rows = json_object_new_array();
            pg_rows(ch, "", rows);
            json_object_object_add(ctx, "child_rows", rows);
        }
    }
    json_object_object_add(ctx, "events", json_object_get(events));
    json_object_object_add(ctx, "no_events",
                           json_object_new_boolean(json_object_array_length(events) == 0));
    json_object_object_add(ctx, "attendance_count",
                           json_object_new_int((int)pg_attendances(ctx, reply)));
    const char *flag = json_object_get_string(json_object_object_get(reply, "flag"));
    json_object_object_add(ctx, "flagged",
                           json_object_new_boolean(flag && strcmp(flag, "none") != 0));
    json_object_object_add(ctx, "flag_words", pg_words(flag));
    const char *keys[] = {"la_contact", "flag_start", "access_notification"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_object_get_ex(reply, keys[i], &v))
            json_object_object_add(ctx, keys[i], json_object_get(v));
    const char *id = ws_field(r, "id") ? ws_field(r, "id") : ws_field(r, "nhs");
    json_object_object_add(ctx, "id", json_object_new_string(id ? id : ""));
    ws_page(s, r, MHD_HTTP_OK, title, tpl, ctx);
}

void p_children_answer(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    int ok = json_object_object_get_ex(reply, "ok", &v) && json_object_get_boolean(v);
    if (!ok) { /* a mistyped identifier says so: never "nothing found" */
        int code = json_object_object_get_ex(reply, "code", &v) ? json_object_get_int(v) : 103;
        const char *d = json_object_get_string(json_object_object_get(reply, "detail"));
        char msg[300];
        snprintf(msg, sizeof msg, "%s: %s (E%03d)", sh_err_message((sh_err)code), d ? d : "", code);
        s_search_page(s, r, MHD_HTTP_BAD_REQUEST, msg, r->step == 2 ? "id" : "name");
        return;
    }
    if (r->step == 2) {
        s_child_page(s, r, reply, "child", "Child record");
        return;
    }
    json_object *ctx = json_object_new_object(), *kids = pg_array(reply, "children");
    for (size_t i = 0; i < json_object_array_length(kids); i++)
        pg_add_when(json_object_array_get_idx(kids, i), "latest_at_ms", "latest");
    json_object_object_add(ctx, "children", json_object_get(kids));
    json_object_object_add(ctx, "none",
                           json_object_new_boolean(json_object_array_length(kids) == 0));
    json_object_object_add(ctx, "purpose", json_object_new_string(pg_purpose(r)));
    ws_page(s, r, MHD_HTTP_OK, "Children found", "found", ctx);
}

/* A record opened from the search's results (a POST: the identifier stays out of the address),
 * for the purpose chosen for the search. */
void p_child(api *s, api_req *r)
{
    const char *purpose = pg_purpose(r), *id = ws_field(r, "id");
    if (!purpose || !id || !*id) {
        s_search_page(s, r, MHD_HTTP_BAD_REQUEST, "Search for the child first", "id");
        return;
    }
    s_child_ask(s, r, id, purpose);
}

/* ---- the clinician's view (health) ----------------------------------------------------- */

void p_clinician(api *s, api_req *r)
{
    const char *nhs = ws_field(r, "nhs");
    if (strcmp(r->method, "GET") == 0 || !nhs || !*nhs) { /* the check itself is a POST */
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "purposes", pg_purpose_list("direct_care"));
        json_object_object_add(ctx, "small", json_object_new_boolean(1));
        ws_page(s, r, MHD_HTTP_OK, "Check a child protection flag", "clinician_form", ctx);
        return;
    }
    s_child_ask(s, r, nhs, pg_purpose(r) ? pg_purpose(r) : "direct_care");
}

void p_clinician_answer(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
        int code = json_object_object_get_ex(reply, "code", &v) ? json_object_get_int(v) : 103;
        const char *d = json_object_get_string(json_object_object_get(reply, "detail"));
        json_object *ctx = json_object_new_object();
        char msg[300];
        snprintf(msg, sizeof msg, "%s: %s (E%03d)", sh_err_message((sh_err)code), d ? d : "", code);
        json_object_object_add(ctx, "problem", json_object_new_string(msg));
        json_object_object_add(ctx, "nhs", json_object_new_string(ws_field(r, "nhs")));
        json_object_object_add(ctx, "purposes", pg_purpose_list(pg_purpose(r)));
        json_object_object_add(ctx, "small", json_object_new_boolean(1));
        ws_page(s, r, MHD_HTTP_BAD_REQUEST, "Check a child protection flag", "clinician_form", ctx);
        return;
    }
    s_child_page(s, r, reply, "clinician", "Child protection flag");
}

/* ---- the auditor's view ---------------------------------------------------------------- */

void p_audit(api *s, api_req *r)
{
    json_object *q = pg_req(r, "audit");
    const char *action = ws_field(r, "action"), *actor = ws_field(r, "actor");
    const char *before = ws_field(r, "before");
    if (action && *action) json_object_object_add(q, "action", json_object_new_string(action));
    if (actor && *actor) json_object_object_add(q, "actor", json_object_new_string(actor));
    if (before && *before)
        json_object_object_add(q, "before", json_object_new_int64(atoll(before)));
    json_object_object_add(q, "limit", json_object_new_int(50));
    pg_ask(s, r, q);
}

void p_audit_answer(api *s, api_req *r, json_object *reply)
{
    json_object *v;
    if (pg_refused(s, r, reply)) return;
    json_object *ctx = json_object_new_object(), *list = pg_array(reply, "entries");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *e = json_object_array_get_idx(list, i);
        pg_add_when(e, "time_ms", "when");
        json_object *id;
        if (json_object_object_get_ex(e, "event_id", &id))
            json_object_object_add(e, "short_id", pg_stringf("%.8s", json_object_get_string(id)));
    }
    json_object_object_add(ctx, "entries", json_object_get(list));
    json_object_object_add(ctx, "head", json_object_get(json_object_object_get(reply, "head")));
    const char *action = ws_field(r, "action"), *actor = ws_field(r, "actor");
    json_object *f = json_object_new_object();
    if (actor) json_object_object_add(f, "actor", json_object_new_string(actor));
    static const char *const actions[] = {"write",   "read",    "send",  "receive", "deny",
                                          "deliver", "refuse",  "admin", "witness", "connection",
                                          "expire",  "sign_in", "erase"};
    json_object *acts = json_object_new_array();
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(actions[i]));
        json_object_object_add(o, "selected",
                               json_object_new_boolean(action && strcmp(action, actions[i]) == 0));
        json_object_array_add(acts, o);
    }
    json_object_object_add(ctx, "actions", acts);
    json_object_object_add(ctx, "filter", f);
    if (json_object_object_get_ex(reply, "before", &v)) {
        char more[200];
        int safe = 1;
        for (const char *c = actor ? actor : ""; *c; c++)
            safe &= (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                    *c == '_' || *c == '.';
        snprintf(more, sizeof more, "/audit?before=%lld%s%s%s%s",
                 (long long)json_object_get_int64(v),
                 action && *action && strlen(action) < 20 ? "&action=" : "",
                 action && *action && strlen(action) < 20 ? action : "",
                 safe && actor && *actor && strlen(actor) <= 64 ? "&actor=" : "",
                 safe && actor && *actor && strlen(actor) <= 64 ? actor : "");
        json_object_object_add(ctx, "older", json_object_new_string(more));
    }
    ws_page(s, r, MHD_HTTP_OK, "Audit log", "audit", ctx);
}
