/*
 * local.c — the local interface (docs/agent.md): one JSON request in one frame, one JSON
 * answer, on a socket only the agent's user can open; and the status request. A ROUTER socket:
 * REQ clients (the sharehub command) and DEALER clients with many requests in flight
 * (sharehub-api) both speak to it. The publishes read in one turn are written in one
 * transaction and answered once it has committed (group commit); any other request first
 * commits and answers those before it, so a client sees its own publishes.
 *
 * Owns: the ROUTER socket's traffic and the turn's publish batch. Never: answers with anything
 * but a JSON object; answers a publish before its transaction has committed; reads a request
 * past its length.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
    json_object_object_add(o, "in_flight", json_object_new_int64(a->nflight));
    json_object_object_add(o, "received", json_object_new_int64((int64_t)a->inbox_seq));
    return o;
}

/* Sends out (taken) to the peer id, with the request's tag; counts a refusal. */
static void s_reply(sh_agent *a, const uint8_t *id, size_t id_len, json_object *out,
                    json_object *req)
{
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
    /* a peer that has gone loses its answer; nothing waits for it (ROUTER drops it) */
    if (zmq_send(a->rep, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
        zmq_send(a->rep, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(a->rep, text, strlen(text), ZMQ_DONTWAIT);
    json_object_put(out);
}

void ag_local_settled(sh_agent *a, sh_err rc, const sh_error *err)
{
    ag_local *lb = &a->local;
    if (!rc) {
        a->outbox_seq += lb->n;
        a->queued += lb->n;
    }
    for (unsigned i = 0; i < lb->np; i++) {
        ag_pending *p = &lb->p[i];
        json_object *ok;
        if (rc && json_object_object_get_ex(p->out, "ok", &ok) && json_object_get_boolean(ok)) {
            json_object_put(p->out); /* nothing of it was stored */
            p->out = ag_error_json(rc, err ? err->detail : "the transaction failed");
        }
        s_reply(a, p->id, p->id_len, p->out, p->req);
        if (p->req) json_object_put(p->req);
        p->out = p->req = NULL;
    }
    lb->n = lb->np = 0;
}

static json_object *s_dispatch(sh_agent *a, const char *op, json_object *req)
{
    if (strcmp(op, "status") == 0) return s_op_status(a);
    if (strcmp(op, "publish") == 0) return ag_op_publish(a, req, NULL);
    if (strcmp(op, "inbox") == 0) return ag_op_inbox(a, req);
    if (strcmp(op, "show") == 0) return ag_op_show(a, req);
    if (strcmp(op, "child") == 0) return ag_op_child(a, req);
    if (strcmp(op, "triage") == 0) return ag_op_triage(a, req);
    if (strcmp(op, "ack") == 0) return ag_op_ack(a, req);
    if (strcmp(op, "refused") == 0) return ag_op_refused(a, req);
    if (strcmp(op, "queue") == 0) return ag_op_queue(a, req);
    if (strcmp(op, "assign") == 0) return ag_op_assign(a, req);
    if (strcmp(op, "find") == 0) return ag_op_find(a, req);
    if (strcmp(op, "item") == 0) return ag_op_item(a, req);
    if (strcmp(op, "audit") == 0) return ag_op_audit(a, req);
    if (strcmp(op, "account_set") == 0) return ag_op_account_set(a, req);
    if (strcmp(op, "account_get") == 0) return ag_op_account_get(a, req);
    if (strcmp(op, "sign_in") == 0) return ag_op_sign_in(a, req);
    if (strcmp(op, "accounts") == 0) return ag_op_accounts(a, req);
    if (strcmp(op, "review") == 0) return ag_op_review(a, req);
    if (strcmp(op, "review_due") == 0) return ag_op_review_due(a, req);
    return ag_error_json(SH_E_INVAL,
                         "op: status, publish, inbox, show, child, triage, ack, refused, queue, "
                         "assign, find, item, audit, account_set, account_get, sign_in, accounts, "
                         "review or review_due");
}

/* Who is asking, from the kernel's credentials of the connection (libzmq gives them as the
 * IPC peer address "host:uid:gid:pid"). The agent's own Unix user (sharehub-api, the
 * operator's tools) names the user it acts for; anyone else (a member of socket_group) is
 * their login name, and the request is marked "unix" for the audit entry: a request naming
 * another user, or an API client system, or touching accounts, is refused. */
static void s_identity(sh_agent *a, json_object *req, const char *peer, json_object **out)
{
    json_object_object_del(req, "unix"); /* only the agent sets it */
    const char *p = strrchr(peer, ':');
    long uid = -1;
    for (int k = 0; p && k < 2; k++) { /* back over pid and gid to the uid */
        const char *q = p;
        while (q > peer && q[-1] != ':')
            q--;
        p = q > peer ? q - 1 : NULL;
    }
    if (p) uid = strtol(p + 1, NULL, 10);
    if (uid == (long)geteuid()) return;
    struct passwd pw, *pwp = NULL;
    char buf[4096];
    if (uid < 0 || getpwuid_r((uid_t)uid, &pw, buf, sizeof buf, &pwp) != 0 || !pwp) {
        *out = ag_error_json(SH_E_ROLE, "the agent cannot tell which Unix account is asking");
        return;
    }
    const char *user = ag_str(req, "user");
    char detail[200];
    if (user && strcmp(user, pwp->pw_name) != 0) {
        snprintf(detail, sizeof detail,
                 "user: a request from the Unix account '%.64s' is made as '%.64s'", pwp->pw_name,
                 pwp->pw_name);
        *out = ag_error_json(SH_E_ROLE, detail);
        return;
    }
    if (json_object_object_get_ex(req, "client", NULL)) {
        *out = ag_error_json(SH_E_ROLE, "client: only the agency API names a client system");
        return;
    }
    /* accounts, sign-ins and the API's own bookkeeping are the agent's own user's */
    static const char *const own[] = {"account_set", "account_get", "sign_in",
                                      "accounts",    "ack",         "refused"};
    const char *op = ag_str(req, "op");
    for (size_t i = 0; op && i < sizeof own / sizeof own[0]; i++)
        if (strcmp(op, own[i]) == 0) {
            snprintf(detail, sizeof detail, "op: %s is for the agent's own Unix user", op);
            *out = ag_error_json(SH_E_ROLE, detail);
            return;
        }
    json_object_object_add(req, "user", json_object_new_string(pwp->pw_name));
    json_object_object_add(req, "unix", json_object_new_boolean(1));
}

/* Reads one request: the peer's id, the empty delimiter, one frame of JSON. 1 and *req (NULL
 * with *out the error to answer) when one was read; 0 when none waits. */
static int s_read(sh_agent *a, ag_pending *p, json_object **req, json_object **out)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    *req = *out = NULL;
    if (zmq_msg_recv(&m, a->rep, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    /* the connection's credentials, as libzmq attaches them to a message (not always to the
     * routing id's frame: read from each frame until one has them) */
    char peer[96] = "";
    const char *pa = zmq_msg_gets(&m, "Peer-Address");
    if (pa) snprintf(peer, sizeof peer, "%s", pa);
    p->id_len = zmq_msg_size(&m) <= ID_MAX ? zmq_msg_size(&m) : 0;
    memcpy(p->id, zmq_msg_data(&m), p->id_len);
    int frames = 0, delimited = 0;
    size_t len = 0;
    while (zmq_msg_more(&m)) {
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a->rep, 0) < 0) break;
        frames++;
        if (!peer[0] && (pa = zmq_msg_gets(&m, "Peer-Address")))
            snprintf(peer, sizeof peer, "%s", pa);
        if (frames == 1) {
            delimited = zmq_msg_size(&m) == 0;
        } else if (frames == 2) {
            len = zmq_msg_size(&m);
            if (len <= 1024 * 1024) {
                json_tokener *tok = json_tokener_new_ex(32);
                *req = tok ? json_tokener_parse_ex(tok, zmq_msg_data(&m), (int)len) : NULL;
                if (tok) json_tokener_free(tok);
            }
        }
    }
    zmq_msg_close(&m);
    if (*req && json_object_is_type(*req, json_type_object)) s_identity(a, *req, peer, out);
    const char *op = *req ? ag_str(*req, "op") : NULL;
    if (!delimited || frames != 2)
        *out = ag_error_json(SH_E_PROTOCOL, "one frame of JSON per request");
    else if (len > 1024 * 1024)
        *out = ag_error_json(SH_E_TOO_LARGE, "request over 1 MiB");
    else if (!*req || !json_object_is_type(*req, json_type_object))
        *out = ag_error_json(SH_E_MALFORMED, "request: want a JSON object");
    else if (!op)
        *out = ag_error_json(SH_E_MISSING_FIELD, "op");
    return 1;
}

void ag_local_io(sh_agent *a)
{
    ag_local *lb = &a->local;
    for (int k = 0; k < LOCAL_BATCH && lb->np < LOCAL_BATCH; k++) {
        json_object *req, *out;
        ag_pending one = {0};
        if (!s_read(a, &one, &req, &out)) break;
        if (!one.id_len) { /* no routing id: nobody to answer */
            if (req) json_object_put(req);
            if (out) json_object_put(out);
            continue;
        }
        const char *op = out ? NULL : ag_str(req, "op");
        /* a health agent's publish may cause an access notification: it goes alone */
        if (op && strcmp(op, "publish") == 0 && a->cfg->role != ROLE_HEALTH) {
            one.out = ag_op_publish(a, req, lb);
            one.req = req;
            lb->p[lb->np++] = one; /* answered when the turn's transaction commits */
            continue;
        }
        ag_flush(a, &a->batch); /* what came before is committed and answered first */
        if (!out) out = s_dispatch(a, op, req);
        s_reply(a, one.id, one.id_len, out, req);
        if (req) json_object_put(req);
    }
}
