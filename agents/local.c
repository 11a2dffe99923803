/*
 * local.c — the local interface (docs/agent.md): one JSON request in one frame, one JSON
 * answer, on a socket only the agent's user can open; and the status request.
 *
 * Owns: the REP socket's traffic. Never: answers with anything but a JSON object; reads a
 * request past its length.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "agent_int.h"

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
        else if (strcmp(op, "ack") == 0)
            out = ag_op_ack(a, req);
        else if (strcmp(op, "refused") == 0)
            out = ag_op_refused(a, req);
        else
            out = ag_error_json(SH_E_INVAL,
                                "op: status, publish, inbox, show, child, triage, ack or refused");
    }
    zmq_msg_close(&msg);
    json_object *ok, *code, *tag;
    /* a caller that keeps several requests in flight (sharehub-api) matches answers by tag */
    if (req && json_object_is_type(req, json_type_object) &&
        json_object_object_get_ex(req, "tag", &tag) && json_object_is_type(tag, json_type_int))
        json_object_object_add(out, "tag", json_object_get(tag));
    if (json_object_object_get_ex(out, "ok", &ok) && !json_object_get_boolean(ok) &&
        json_object_object_get_ex(out, "code", &code))
        ag_count_refused(a, json_object_get_int(code), "local");
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    zmq_send(a->rep, text, strlen(text), 0);
    json_object_put(out);
    if (req) json_object_put(req);
}
