/*
 * api.c — the local requests only the agency API (sharehub-api, docs/api.md) makes: a client
 * system acknowledging its inbox up to a cursor (its own state, audited), and the API's
 * refusals of client systems, audited here so the agency's one tamper-evident log holds them.
 *
 * Owns: the acks database's entries. Never: moves a client's acknowledgement backwards or past
 * what the inbox holds; records a path that could hold an identifier (the API sends the
 * route, "/v1/children/{id}", not the request's path).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

uint64_t ag_acked(sh_agent *a, sh_txn *t, const char *client)
{
    sh_buf b = {0};
    sh_error err;
    uint64_t v = 0;
    if (sh_txn_get(t, a->acks, client, strlen(client), &b, &err) == SH_OK && b.len == 8)
        v = sh_be64_get(b.data);
    sh_buf_free(&b);
    return v;
}

json_object *ag_op_ack(sh_agent *a, json_object *req)
{
    const char *client, *user;
    json_object *v, *bad = ag_text_arg(req, "client", 1, "the API client system", &client);
    if (!bad) bad = ag_text_arg(req, "user", 1, "who is acknowledging", &user);
    if (bad) return bad;
    int64_t cursor;
    if (!json_object_object_get_ex(req, "cursor", &v))
        return ag_error_json(SH_E_MISSING_FIELD, "cursor: missing (the `next` of an inbox page)");
    if (!json_object_is_type(v, json_type_int) || (cursor = json_object_get_int64(v)) < 0)
        return ag_error_json(SH_E_BAD_FIELD, "cursor: want the `next` of an inbox page");
    if ((uint64_t)cursor > a->inbox_seq)
        return ag_error_json(SH_E_BAD_FIELD, "cursor: beyond what the inbox holds");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    uint64_t was = ag_acked(a, t, client);
    json_object *out = ag_ok();
    if ((uint64_t)cursor > was) {
        uint8_t b[8];
        char detail[USER_MAX + 96];
        sh_be64_put(b, (uint64_t)cursor);
        snprintf(detail, sizeof detail, "inbox acknowledged up to %lld (from %llu) via api:%s",
                 (long long)cursor, (unsigned long long)was, client);
        sh_err rc = sh_txn_put(t, a->acks, client, strlen(client), b, 8, 0, &err);
        if (!rc)
            rc = ag_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, NULL, NULL, user, NULL, NULL, NULL,
                          detail);
        if (rc || ag_commit(a, &t, &err)) {
            sh_txn_abort(&t);
            json_object_put(out);
            return ag_error_json(err.code, err.detail);
        }
        was = (uint64_t)cursor;
    } else {
        sh_txn_abort(&t); /* already there (a retry): nothing changes */
    }
    json_object_object_add(out, "acknowledged", json_object_new_int64((int64_t)was));
    return out;
}

json_object *ag_op_refused(sh_agent *a, json_object *req)
{
    const char *client, *route, *why;
    json_object *v, *bad = ag_text_arg(req, "client", 1, "the client, or its certificate", &client);
    if (!bad) bad = ag_text_arg(req, "route", 1, "the method and route refused", &route);
    if (!bad) bad = ag_text_arg(req, "why", 1, "why", &why);
    if (bad) return bad;
    int code = json_object_object_get_ex(req, "code", &v) ? json_object_get_int(v) : 0;
    if (code < 900 || code > 999)
        return ag_error_json(SH_E_BAD_FIELD, "code: an API refusal's code, 900-999");
    int64_t n = json_object_object_get_ex(req, "count", &v) ? json_object_get_int64(v) : 1;
    if (n < 1) n = 1;
    char detail[3 * USER_MAX + 80];
    if (n == 1)
        snprintf(detail, sizeof detail, "api %s: %s (client %s)", route, why, client);
    else
        snprintf(detail, sizeof detail,
                 "api: %lld refusals in the last second, the last %s: %s "
                 "(client %s)",
                 (long long)n, route, why, client);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_err rc = ag_audit(a, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, (sh_err)code, NULL, NULL, "api",
                         NULL, NULL, NULL, detail);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code, err.detail);
    }
    ag_count_refused(a, code, "api");
    return ag_ok();
}

/* audit: the newest entries of this agency's audit log, for an auditor's account in the
 * workspace — what the log itself holds (who, what, when, why, under which protocol), never a
 * child's reference or anything of an event; newest first, `before` a seq to page back,
 * `action` and `actor` to filter. */
json_object *ag_op_audit(sh_agent *a, json_object *req)
{
    const char *user, *action = ag_str(req, "action"), *actor = ag_str(req, "actor");
    int role;
    json_object *v, *bad = ag_require_account(a, req, ROLES(ACC_AUDITOR), &user, &role);
    if (bad) return bad;
    int want = 0;
    for (int i = SH_AUDIT_WRITE; action && *action && i <= SH_AUDIT_ACTION_MAX; i++)
        if (strcmp(sh_audit_action_name(i), action) == 0) want = i;
    if (action && *action && !want)
        return ag_error_json(SH_E_BAD_FIELD, "action: not an audit action (docs/audit-format.md)");
    int64_t limit = 50, before = 0;
    if (json_object_object_get_ex(req, "limit", &v) &&
        ((limit = json_object_get_int64(v)) < 1 || limit > 200))
        return ag_error_json(SH_E_BAD_FIELD, "limit: want 1-200");
    if (json_object_object_get_ex(req, "before", &v) && (before = json_object_get_int64(v)) < 0)
        return ag_error_json(SH_E_BAD_FIELD, "before: want a sequence number");
    sh_txn *t = NULL;
    sh_error err;
    uint64_t head = 0;
    uint8_t mac[SH_MAC_BYTES];
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    if (sh_audit_head(a->audit, t, &head, mac, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok(), *list = json_object_new_array();
    uint64_t seq = before > 0 && (uint64_t)before <= head + 1 ? (uint64_t)before - 1 : head;
    uint64_t scanned = 0, next = 0;
    for (; seq >= 1 && json_object_array_length(list) < (size_t)limit && scanned < 100000;
         seq--, scanned++) {
        sh_audit_record r;
        if (sh_audit_get(a->audit, t, seq, &r, &err)) continue;
        if ((want && r.action != want) || (actor && *actor && strcmp(r.actor_user, actor) != 0))
            continue;
        static const char *const outcomes[] = {"ok", "denied", "failed"};
        char idt[SH_EVENT_ID_STR];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "seq", json_object_new_int64((int64_t)r.seq));
        json_object_object_add(e, "time_ms", json_object_new_int64(r.time_ms));
        json_object_object_add(e, "action", json_object_new_string(sh_audit_action_name(r.action)));
        json_object_object_add(e, "outcome",
                               json_object_new_string(r.outcome < 3 ? outcomes[r.outcome] : "?"));
        if (r.code) json_object_object_add(e, "code", json_object_new_int(r.code));
        json_object_object_add(e, "actor_org", json_object_new_string(r.actor_org));
        json_object_object_add(e, "actor_user", json_object_new_string(r.actor_user));
        if (r.peer_org[0])
            json_object_object_add(e, "peer_org", json_object_new_string(r.peer_org));
        if (r.purpose[0]) json_object_object_add(e, "purpose", json_object_new_string(r.purpose));
        if (r.rule[0]) json_object_object_add(e, "rule", json_object_new_string(r.rule));
        if (r.has_event)
            json_object_object_add(e, "event_id",
                                   json_object_new_string(sh_event_id_format(r.event_id, idt)));
        json_object_object_add(e, "about_a_child", json_object_new_boolean(r.has_child));
        json_object_object_add(e, "detail", json_object_new_string(r.detail));
        json_object_array_add(list, e);
        next = seq;
    }
    sh_txn_abort(&t);
    json_object_object_add(out, "head", json_object_new_int64((int64_t)head));
    json_object_object_add(out, "entries", list);
    if (next > 1 && seq >= 1)
        json_object_object_add(out, "before", json_object_new_int64((int64_t)next));
    return out;
}
