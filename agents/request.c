/*
 * request.c — the pieces of a local request and its answer (docs/agent.md, "The local
 * interface"): the error and success objects, and the short text arguments (user, purpose).
 *
 * Owns: nothing. Never: accepts a user or purpose the audit log could not record.
 */
#include <string.h>

#include "agent_int.h"

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
json_object *ag_text_arg(json_object *req, const char *key, int required, const char *what,
                         const char **out)
{
    return ag_text_arg_max(req, key, required, what, USER_MAX, out);
}

json_object *ag_text_arg_max(json_object *req, const char *key, int required, const char *what,
                             size_t max, const char **out)
{
    json_object *v;
    char detail[160];
    *out = NULL;
    if (!json_object_object_get_ex(req, key, &v)) {
        if (!required) return NULL;
        snprintf(detail, sizeof detail, "%s: missing (%s, 1-%zu characters)", key, what, max);
        return ag_error_json(SH_E_MISSING_FIELD, detail);
    }
    const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    if (!t)
        snprintf(detail, sizeof detail, "%s: want a string (%s)", key, what);
    else if (!*t)
        snprintf(detail, sizeof detail, "%s: empty (%s, 1-%zu characters)", key, what, max);
    else if (strlen(t) > max)
        snprintf(detail, sizeof detail, "%s: too long (at most %zu characters)", key, max);
    else if (sh_text_check(t))
        snprintf(detail, sizeof detail, "%s: holds control characters or is not UTF-8", key);
    else {
        *out = t;
        return NULL;
    }
    return ag_error_json(t && *t ? SH_E_BAD_FIELD : SH_E_MISSING_FIELD, detail);
}

/* Reads are audited with who and why: both must be given, as clean short text; and a
 * request through the agency API names the client system that vouches for the user. */
json_object *ag_require_reader(json_object *req, const char **user, const char **purpose)
{
    const char *client;
    json_object *bad = ag_text_arg(req, "user", 1, "who is reading", user);
    if (!bad) bad = ag_text_arg(req, "purpose", 1, "why they are reading", purpose);
    if (!bad) bad = ag_text_arg(req, "client", 0, "the API client system", &client);
    return bad;
}

const char *ag_via(json_object *req, const char *what, char *buf, size_t cap)
{
    const char *client = ag_str(req, "client");
    json_object *u;
    if (json_object_object_get_ex(req, "unix", &u) && json_object_get_boolean(u)) {
        snprintf(buf, cap, "%s via unix", what); /* the user is the peer's login (local.c) */
        return buf;
    }
    if (!client || !*client || strlen(client) > USER_MAX) return what;
    snprintf(buf, cap, "%s via api:%s", what, client);
    return buf;
}
