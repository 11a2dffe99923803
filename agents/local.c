/*
 * local.c — the local interface (docs/agent.md): one JSON request in one frame, one JSON
 * answer, on a socket only the agent's user can open; and the publish and status requests.
 *
 * Owns: the REP socket's traffic. Never: answers with anything but a JSON object; reads a
 * request past its length.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "agent_int.h"
#include "json.h"

json_object *ag_error_json(sh_err code, const char *detail)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "code", json_object_new_int(code));
    json_object_object_add(o, "error", json_object_new_string(sh_err_name(code)));
    json_object_object_add(o, "message", json_object_new_string(sh_err_message(code)));
    json_object_object_add(o, "detail", json_object_new_string(detail ? detail : ""));
    return o;
}

json_object *ag_ok(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    return o;
}

const char *ag_str(json_object *req, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A short text argument (user, purpose): 1 to USER_MAX bytes of clean text. NULL when it is
 * good (or absent and not required), else the error to answer with. */
static json_object *s_text_arg(json_object *req, const char *key, int required, const char *what,
                               const char **out)
{
    json_object *v;
    char detail[160];
    *out = NULL;
    if (!json_object_object_get_ex(req, key, &v)) {
        if (!required) return NULL;
        snprintf(detail, sizeof detail, "%s: missing (%s, 1-%d characters)", key, what, USER_MAX);
        return ag_error_json(SH_E_MISSING_FIELD, detail);
    }
    const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (!t)
        snprintf(detail, sizeof detail, "%s: want a string (%s)", key, what);
    else if (!*t)
        snprintf(detail, sizeof detail, "%s: empty (%s, 1-%d characters)", key, what, USER_MAX);
    else if (strlen(t) > USER_MAX)
        snprintf(detail, sizeof detail, "%s: too long (at most %d characters)", key, USER_MAX);
    else if (sh_text_check(t))
        snprintf(detail, sizeof detail, "%s: holds control characters or is not UTF-8", key);
    else {
        *out = t;
        return NULL;
    }
    return ag_error_json(t && *t ? SH_E_BAD_FIELD : SH_E_MISSING_FIELD, detail);
}

/* Reads are audited with who and why: both must be given, as clean short text. */
json_object *ag_require_reader(json_object *req, const char **user, const char **purpose)
{
    json_object *bad = s_text_arg(req, "user", 1, "who is reading", user);
    if (!bad) bad = s_text_arg(req, "purpose", 1, "why they are reading", purpose);
    return bad;
}

/* A publish of an event id this agency already holds: the same event again (its times filled
 * from the first when the request left them out) is answered as accepted, never stored twice;
 * another event under that id is refused (E703). */
static json_object *s_republish(sh_agent *a, sh_envelope *e, int had_published, int had_occurred)
{
    sh_txn *t = NULL;
    sh_error err;
    sh_buf b = {0}, ob = {0};
    sh_agent_record r;
    sh_envelope *old = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_object *out = NULL;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_err rc = sh_txn_get(t, a->events, e->event_id.data, 16, &b, &err);
    if (!rc && (sh_agent_record_parse(b.data, b.len, &r) ||
                sh_envelope_decode(r.env, r.env_len, &old, &err)))
        rc = SH_E_STORE_CORRUPT;
    if (!rc && r.direction == SH_DIR_SENT) {
        if (!had_published) e->published_at_ms = old->published_at_ms;
        if (!had_occurred) e->occurred_at_ms = old->occurred_at_ms;
        rc = sh_envelope_encode(e, &buf, &len, &err);
    }
    if (!rc && r.direction == SH_DIR_SENT && len == r.env_len && memcmp(buf, r.env, len) == 0) {
        char idt[SH_EVENT_ID_STR];
        out = ag_ok();
        json_object_object_add(out, "event_id",
                               json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
        json_object_object_add(out, "status", json_object_new_string("already accepted"));
        if (sh_txn_get(t, a->outcome, e->event_id.data, 16, &ob, &err) == SH_OK)
            json_object_object_add(out, "broker",
                                   json_object_new_string_len((const char *)ob.data, (int)ob.len));
        else
            json_object_object_add(out, "broker", json_object_new_string("waiting in the outbox"));
    } else if (!rc || rc == SH_E_NOT_FOUND) {
        out =
            ag_error_json(SH_E_REPLAYED, "event_id: already used at this agency for another event");
    } else {
        out = ag_error_json(rc, "event_id: the event stored under this id cannot be read");
    }
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_buf_free(&ob);
    sh_envelope_free(old);
    free(buf);
    return out;
}

json_object *ag_op_publish(sh_agent *a, json_object *req)
{
    const char *user, *purpose;
    json_object *ev, *bad = s_text_arg(req, "user", 1, "who is publishing", &user);
    if (!bad) bad = s_text_arg(req, "purpose", 0, "why", &purpose);
    if (bad) return bad;
    if (!json_object_object_get_ex(req, "event", &ev))
        return ag_error_json(SH_E_MISSING_FIELD, "event: missing (the event to publish)");
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    ProtobufCMessage *m = NULL;
    sh_error err = {0};
    sh_err rc =
        sh_json_to_message(text, strlen(text), &sharehub__v1__envelope__descriptor, &m, &err);
    if (rc) return ag_error_json(rc, err.detail);
    sh_envelope *e = (sh_envelope *)m;
    int had_published = e->published_at_ms != 0, had_occurred = e->occurred_at_ms != 0;
    uint8_t id[16];
    json_object *out = NULL;
    rc = ag_complete(a, e, id, &err);
    if (!rc) rc = ag_publish_env(a, e, user, purpose, &err);
    if (rc == SH_E_EXISTS) {
        out = s_republish(a, e, had_published, had_occurred);
    } else if (rc) {
        out = ag_error_json(rc, err.detail);
    } else {
        char idt[SH_EVENT_ID_STR];
        out = ag_ok();
        json_object_object_add(out, "event_id",
                               json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
        /* "sent": handed to the broker, not yet confirmed; "queued": in the outbox until the
         * broker is reachable. The broker's answer is in `show` (docs/agent.md). */
        json_object_object_add(out, "status",
                               json_object_new_string(a->connected ? "sent" : "queued"));
        if (a->cfg->role == ROLE_HEALTH) ag_cpis_attendance(a, e, out);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return out;
}

static json_object *s_op_status(sh_agent *a)
{
    static const char *const roles[] = {"", "education", "health", "social_care"};
    json_object *o = ag_ok();
    json_object_object_add(o, "org", json_object_new_string(a->cfg->org));
    json_object_object_add(o, "role", json_object_new_string(roles[a->cfg->role]));
    json_object_object_add(o, "connected", json_object_new_boolean(a->connected));
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    int64_t waiting = 0;
    if (sh_txn_begin(a->store, 0, &t, &err) == SH_OK) {
        if (sh_cursor_open(t, a->outbox, &c, &err) == SH_OK) {
            for (sh_err rc = sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
                 rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err))
                waiting++;
            sh_cursor_close(&c);
        }
        sh_txn_abort(&t);
    }
    json_object_object_add(o, "outbox", json_object_new_int64(waiting));
    json_object_object_add(o, "received", json_object_new_int64((int64_t)a->inbox_seq));
    return o;
}

void ag_local_io(sh_agent *a)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, a->rep, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    json_object *out = NULL, *req = NULL;
    size_t len = zmq_msg_size(&msg);
    if (zmq_msg_more(&msg)) {
        out = ag_error_json(SH_E_PROTOCOL, "one frame of JSON per request");
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, a->rep, 0) >= 0)
            ;
    } else if (len > 1024 * 1024) {
        out = ag_error_json(SH_E_TOO_LARGE, "request over 1 MiB");
    } else {
        json_tokener *tok = json_tokener_new_ex(32);
        req = tok ? json_tokener_parse_ex(tok, zmq_msg_data(&msg), (int)len) : NULL;
        if (tok) json_tokener_free(tok);
        const char *op = req ? ag_str(req, "op") : NULL;
        if (!req || !json_object_is_type(req, json_type_object))
            out = ag_error_json(SH_E_MALFORMED, "request: want a JSON object");
        else if (!op)
            out = ag_error_json(SH_E_MISSING_FIELD, "op");
        else if (strcmp(op, "status") == 0)
            out = s_op_status(a);
        else if (strcmp(op, "publish") == 0)
            out = ag_op_publish(a, req);
        else if (strcmp(op, "inbox") == 0)
            out = ag_op_inbox(a, req);
        else if (strcmp(op, "show") == 0)
            out = ag_op_show(a, req);
        else if (strcmp(op, "child") == 0)
            out = ag_op_child(a, req);
        else if (strcmp(op, "triage") == 0)
            out = ag_op_triage(a, req);
        else
            out = ag_error_json(SH_E_INVAL, "op: status, publish, inbox, show, child or triage");
    }
    zmq_msg_close(&msg);
    json_object *ok, *code;
    if (json_object_object_get_ex(out, "ok", &ok) && !json_object_get_boolean(ok) &&
        json_object_object_get_ex(out, "code", &code))
        ag_count_refused(a, json_object_get_int(code), "local");
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    zmq_send(a->rep, text, strlen(text), 0);
    json_object_put(out);
    if (req) json_object_put(req);
}
