/*
 * resources.c — the /v1 resources of the agency API (docs/api.md): for each, the local request
 * it makes of the agent and how the agent's answer reads over HTTP.
 *
 * Owns: the route table. Never: lets a request that reads personal data through without its
 * user and purpose; turns an invalid identifier into "nothing found" (the agent refuses it,
 * 400); answers a publish 202 before the agent has the event durable in its outbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "openapi.h"

static const char *const s_json[] = {"application/json", NULL};

static json_object *s_op(const char *op)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "op", json_object_new_string(op));
    return o;
}

/* Copies key from src to dst when present. */
static void s_copy(json_object *dst, json_object *src, const char *key)
{
    json_object *v;
    if (json_object_object_get_ex(src, key, &v))
        json_object_object_add(dst, key, json_object_get(v));
}

/* A cursor as the API shows it: opaque text (the agent's inbox position). */
static json_object *s_cursor(json_object *reply, const char *key)
{
    json_object *v;
    char text[24];
    int64_t n = json_object_object_get_ex(reply, key, &v) ? json_object_get_int64(v) : 0;
    snprintf(text, sizeof text, "%lld", (long long)n);
    return json_object_new_string(text);
}

/* A cursor from a client: the text of one we gave. 0, or -1. */
static int s_cursor_parse(const char *text, int64_t *out)
{
    size_t n = text ? strspn(text, "0123456789") : 0;
    if (n == 0 || n > 18 || text[n]) return -1;
    *out = strtoll(text, NULL, 10);
    return 0;
}

/* ---- POST /v1/events ---------------------------------------------------------------- */

static void s_publish(api *s, api_req *r)
{
    json_object *ev = api_body_json(r, s_json);
    if (!ev) return;
    json_object *req = s_op("publish");
    json_object_object_add(req, "event", ev);
    if (api_reader(r, req, 0)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

static void s_publish_done(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, NULL)) return;
    json_object *o = json_object_new_object(), *v;
    s_copy(o, reply, "event_id");
    s_copy(o, reply, "status");
    s_copy(o, reply, "broker");
    s_copy(o, reply, "access_notification");
    if (json_object_object_get_ex(reply, "event_id", &v))
        snprintf(r->location, sizeof r->location, "/v1/events/%s", json_object_get_string(v));
    api_answer(r, MHD_HTTP_ACCEPTED, o);
}

/* ---- GET /v1/events/{id} ------------------------------------------------------------ */

static void s_event(api *s, api_req *r)
{
    json_object *req = s_op("show");
    json_object_object_add(req, "event_id", json_object_new_string(r->arg));
    /* a client that may only track sees the events its agency sent, not those received */
    if (!(r->client->scopes & SCOPE_INBOX))
        json_object_object_add(req, "direction", json_object_new_string("sent"));
    if (api_reader(r, req, 1)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

static void s_event_done(api *s, api_req *r, json_object *reply)
{
    (void)s;
    json_object *item;
    if (api_agent_failed(r, reply, NULL)) return;
    if (!json_object_object_get_ex(reply, "item", &item)) {
        api_error(r, SH_E_INTERNAL, "the agent's answer holds no item");
        return;
    }
    api_answer(r, MHD_HTTP_OK, json_object_get(item));
}

/* ---- GET /v1/inbox, POST /v1/inbox/ack ---------------------------------------------- */

static void s_inbox(api *s, api_req *r)
{
    json_object *req = s_op("inbox");
    const char *after = api_query(r, "after"), *limit = api_query(r, "limit"),
               *type = api_query(r, "type");
    int64_t v = 0;
    if (after) {
        if (s_cursor_parse(after, &v)) {
            json_object_put(req);
            api_error(r, SH_E_BAD_FIELD,
                      "after: not a cursor this API gave (an inbox page's next)");
            return;
        }
        json_object_object_add(req, "since", json_object_new_int64(v));
    }
    if (limit) {
        if (s_cursor_parse(limit, &v) || v < 1 || v > 1000) {
            json_object_put(req);
            api_error(r, SH_E_BAD_FIELD, "limit: want a whole number from 1 to 1000");
            return;
        }
        json_object_object_add(req, "limit", json_object_new_int64(v));
    }
    if (type) json_object_object_add(req, "types", json_object_new_string(type));
    if (api_reader(r, req, 1)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

static void s_inbox_done(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, NULL)) return;
    json_object *o = json_object_new_object(), *items;
    if (json_object_object_get_ex(reply, "items", &items)) {
        /* each item's position is a cursor too (an ack up to and including it) */
        for (size_t i = 0; i < json_object_array_length(items); i++) {
            json_object *it = json_object_array_get_idx(items, i), *seq;
            if (!json_object_object_get_ex(it, "seq", &seq)) continue;
            char text[24];
            snprintf(text, sizeof text, "%lld", (long long)json_object_get_int64(seq) + 1);
            json_object_object_add(it, "cursor", json_object_new_string(text));
            json_object_object_del(it, "seq");
        }
        json_object_object_add(o, "items", json_object_get(items));
    }
    json_object_object_add(o, "next", s_cursor(reply, "next"));
    s_copy(o, reply, "more");
    json_object_object_add(o, "acknowledged", s_cursor(reply, "acknowledged"));
    api_answer(r, MHD_HTTP_OK, o);
}

static void s_ack(api *s, api_req *r)
{
    json_object *body = api_body_json(r, s_json), *v;
    if (!body) return;
    int64_t cursor = 0;
    const char *text =
        json_object_object_get_ex(body, "cursor", &v) && json_object_is_type(v, json_type_string)
            ? json_object_get_string(v)
            : NULL;
    int bad = !text || s_cursor_parse(text, &cursor);
    json_object_put(body);
    if (bad) {
        api_error(r, text ? SH_E_BAD_FIELD : SH_E_MISSING_FIELD,
                  "cursor: want a cursor this API gave, as a string (an inbox item's cursor, "
                  "or a page's next)");
        return;
    }
    json_object *req = s_op("ack");
    json_object_object_add(req, "cursor", json_object_new_int64(cursor));
    if (api_reader(r, req, 0)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

static void s_ack_done(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, NULL)) return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "acknowledged", s_cursor(reply, "acknowledged"));
    api_answer(r, MHD_HTTP_OK, o);
}

/* ---- GET /v1/children/{id}, /v1/children/{id}/flag ---------------------------------- */

static void s_child_ask(api *s, api_req *r, int flag_only)
{
    json_object *req = s_op("child");
    json_object_object_add(req, "id", json_object_new_string(r->arg));
    if (flag_only) json_object_object_add(req, "flag_only", json_object_new_boolean(1));
    if (api_reader(r, req, 1)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

static void s_child(api *s, api_req *r)
{
    /* a client with only the flags scope learns the flag, nothing else the agency holds */
    s_child_ask(s, r, !(r->client->scopes & SCOPE_INBOX));
}

static void s_child_flag(api *s, api_req *r)
{
    s_child_ask(s, r, 1);
}

static void s_child_done(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, NULL)) return;
    json_object_object_del(reply, "ok");
    json_object_object_del(reply, "tag");
    api_answer(r, MHD_HTTP_OK, json_object_get(reply));
}

/* ---- GET /v1/status, GET /v1/openapi.json ------------------------------------------- */

static void s_status(api *s, api_req *r)
{
    api_ask(s, r, s_op("status"));
}

static void s_status_done(api *s, api_req *r, json_object *reply)
{
    if (api_agent_failed(r, reply, NULL)) return;
    json_object *o = json_object_new_object();
    s_copy(o, reply, "org");
    s_copy(o, reply, "role");
    s_copy(o, reply, "connected");
    s_copy(o, reply, "outbox");
    json_object_object_add(o, "inbox", s_cursor(reply, "received"));
    json_object_object_add(o, "clients", json_object_new_int64((int64_t)s->cfg->nclients));
    api_answer(r, MHD_HTTP_OK, o);
}

static void s_openapi(api *s, api_req *r)
{
    (void)s;
    r->resp = malloc(sh_openapi_len);
    if (!r->resp) {
        api_error(r, SH_E_NOMEM, "openapi");
        return;
    }
    memcpy(r->resp, sh_openapi, sh_openapi_len);
    r->resp_len = sh_openapi_len;
    r->ctype = "application/json";
    r->status = MHD_HTTP_OK;
}

static void s_never(api *s, api_req *r, json_object *reply)
{
    (void)s;
    (void)reply;
    api_error(r, SH_E_INTERNAL, "no agent request was made");
}

#define ANY 0u
const api_route api_routes[] = {
    {"POST", "/v1/events", SCOPE_PUBLISH, s_publish, s_publish_done},
    {"GET", "/v1/events/*", SCOPE_TRACK | SCOPE_INBOX, s_event, s_event_done},
    {"GET", "/v1/inbox", SCOPE_INBOX, s_inbox, s_inbox_done},
    {"POST", "/v1/inbox/ack", SCOPE_INBOX, s_ack, s_ack_done},
    {"GET", "/v1/inbox/stream", SCOPE_INBOX, api_stream_start, api_stream_finish},
    {"GET", "/v1/children/*", SCOPE_INBOX | SCOPE_FLAGS, s_child, s_child_done},
    {"GET", "/v1/children/*/flag", SCOPE_INBOX | SCOPE_FLAGS, s_child_flag, s_child_done},
    {"GET", "/v1/status", SCOPE_ADMIN, s_status, s_status_done},
    {"GET", "/v1/openapi.json", ANY, s_openapi, s_never},
    {"GET", "/fhir/r4/Flag", SCOPE_FLAGS, api_fhir_flag_start, api_fhir_flag_finish},
    {"POST", "/fhir/r4/Encounter", SCOPE_PUBLISH, api_fhir_encounter_start,
     api_fhir_encounter_finish},
};
const size_t api_nroutes = sizeof api_routes / sizeof api_routes[0];
