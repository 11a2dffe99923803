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
