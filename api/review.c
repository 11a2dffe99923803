/*
 * review.c — the workspace's retention review (docs/workspace.md, "Retention review"): the
 * received copies whose protocol's retention ended in review, and a manager's decision on
 * each — keep it for a further period, then review it again, or erase it now. The agent does
 * both (agents/review.c) and audits them as the manager's, for "retention review".
 *
 * Owns: nothing. Never: shows what a copy says (type, sender, protocol and dates only); erases
 * without the manager choosing it on the record's own page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pages.h"

#define PURPOSE "retention review"

/* The further periods a manager may keep a copy for (the agent takes 1 day to 100 years). */
static const char *const s_periods[][2] = {
    {"6m", "6 months"}, {"1y", "1 year"}, {"2y", "2 years"}, {"6y", "6 years"}};

void p_review(api *s, api_req *r)
{
    json_object *q = pg_req(r, "review_due");
    json_object_object_add(q, "purpose", json_object_new_string(PURPOSE));
    pg_ask(s, r, q);
}

/* "72m" -> "6 years", "1d" -> "1 day" */
static json_object *s_period_words(const char *kept)
{
    char unit = 0;
    unsigned n = 0;
    if (!kept || sscanf(kept, "%5u%c", &n, &unit) != 2) return json_object_new_string("-");
    if (unit == 'm' && n % 12 == 0) n /= 12, unit = 'y';
    const char *w = unit == 'd' ? "day" : unit == 'm' ? "month" : "year";
    return pg_stringf("%u %s%s", n, w, n == 1 ? "" : "s");
}

void p_review_answer(api *s, api_req *r, json_object *reply)
{
    if (pg_refused(s, r, reply)) return;
    json_object *items = pg_array(reply, "items"), *ctx = json_object_new_object(), *it = NULL;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *x = json_object_array_get_idx(items, i);
        pg_add_words(x, "type", "type_words");
        pg_add_when(x, "due_at_ms", "due_when");
        json_object_object_add(
            x, "kept_words",
            s_period_words(json_object_get_string(json_object_object_get(x, "kept"))));
        const char *id = json_object_get_string(json_object_object_get(x, "event_id"));
        if (r->arg[0] && id && strcmp(id, r->arg) == 0) it = x;
    }
    if (r->arg[0]) { /* one record's page: the decision */
        if (!it) {
            json_object_put(ctx);
            ws_fail(s, r, SH_E_NOT_FOUND, "no record with this id is waiting for review here");
            return;
        }
        const char *chosen =
            r->sess && r->sess->values
                ? json_object_get_string(json_object_object_get(r->sess->values, "decision"))
                : NULL;
        json_object *choices = json_object_new_array();
        for (size_t i = 0; i < sizeof s_periods / sizeof s_periods[0]; i++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "value", pg_stringf("keep:%s", s_periods[i][0]));
            json_object_object_add(o, "text", pg_stringf("Keep it %s more", s_periods[i][1]));
            json_object_object_add(o, "id", pg_stringf("decision-%s", s_periods[i][0]));
            int on = chosen && strncmp(chosen, "keep:", 5) == 0 &&
                     strcmp(chosen + 5, s_periods[i][0]) == 0;
            json_object_object_add(o, "checked", json_object_new_boolean(on));
            json_object_array_add(choices, o);
        }
        json_object_object_add(ctx, "item", json_object_get(it));
        json_object_object_add(ctx, "choices", choices);
        json_object_object_add(ctx, "erase_checked",
                               json_object_new_boolean(chosen && strcmp(chosen, "erase") == 0));
        json_object_object_add(ctx, "action", pg_stringf("/review/%s", r->arg));
        ws_page(s, r, MHD_HTTP_OK, "Review a record", "review_item", ctx);
        return;
    }
    json_object_object_add(ctx, "items", json_object_get(items));
    json_object_object_add(ctx, "total", json_object_get(json_object_object_get(reply, "total")));
    json_object_object_add(ctx, "empty",
                           json_object_new_boolean(json_object_array_length(items) == 0));
    ws_page(s, r, MHD_HTTP_OK, "Retention review", "review", ctx);
}

void p_review_decide(api *s, api_req *r)
{
    const char *d = ws_field(r, "decision");
    int erase = d && strcmp(d, "erase") == 0, keep = -1;
    for (size_t i = 0; d && i < sizeof s_periods / sizeof s_periods[0]; i++)
        if (strncmp(d, "keep:", 5) == 0 && strcmp(d + 5, s_periods[i][0]) == 0) keep = (int)i;
    if (!erase && keep < 0) { /* back to the page, saying what is missing */
        char back[200];
        if (r->sess) {
            snprintf(r->sess->error, sizeof r->sess->error,
                     "Choose whether to keep this record longer or erase it");
            snprintf(r->sess->error_field, sizeof r->sess->error_field, "decision-%s",
                     s_periods[0][0]);
        }
        snprintf(back, sizeof back, "/review/%.64s", r->arg);
        ws_redirect(r, back);
        return;
    }
    json_object *q = pg_req(r, "review");
    json_object_object_add(q, "purpose", json_object_new_string(PURPOSE));
    json_object_object_add(q, "event_id", json_object_new_string(r->arg));
    json_object_object_add(q, "decision", json_object_new_string(erase ? "erase" : "keep"));
    if (!erase) json_object_object_add(q, "keep", json_object_new_string(s_periods[keep][0]));
    pg_ask(s, r, q);
}

void p_review_after(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (ws_agent_error(r, reply)) {
        char back[200];
        if (r->sess) snprintf(r->sess->error_field, sizeof r->sess->error_field, "decision-6m");
        snprintf(back, sizeof back, "/review/%.64s", r->arg);
        ws_redirect(r, back);
        return;
    }
    json_object *due;
    if (r->sess && json_object_object_get_ex(reply, "due_at_ms", &due)) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "due", json_object_get(due));
        pg_add_when(o, "due", "when");
        snprintf(r->sess->flash, sizeof r->sess->flash, "Record kept: due for review again %s",
                 json_object_get_string(json_object_object_get(o, "when")));
        json_object_put(o);
    } else if (r->sess) {
        snprintf(r->sess->flash, sizeof r->sess->flash, "Record erased");
    }
    ws_redirect(r, "/review");
}
