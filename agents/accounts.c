/*
 * accounts.c — the agency's named users, the people who sign in to the workspace: each with a
 * role (practitioner, team manager, read-only, auditor), a display name, the Argon2id hash of
 * their password, and the count of failed sign-ins that locks the account (LOCK_AFTER in a
 * row lock it for LOCK_MS). docs/workspace.md says who may do what.
 *
 * Owns: the accounts database. Never: sees a password (the CLI hashes it, sharehub-api checks
 * it); answers a hash for a locked account; records a sign-in name that is not an account
 * name's shape (a mistyped name could be anything).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

static const char *const s_roles[] = {"", "practitioner", "manager", "read_only", "auditor"};

const char *ag_role_name(int role)
{
    return role > 0 && role <= ACC_AUDITOR ? s_roles[role] : "none";
}

unsigned ag_role_bits(const int *roles)
{
    unsigned bits = 0;
    for (; *roles >= 0; roles++)
        bits |= 1u << *roles;
    return bits;
}

static int s_role_value(const char *name)
{
    for (int r = 1; name && r <= ACC_AUDITOR; r++)
        if (strcmp(s_roles[r], name) == 0) return r;
    return ACC_NONE;
}

/* 1-64 of [a-z0-9._-], starting with a letter or digit. */
static int s_name_ok(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    if (l < 1 || l > ACCOUNT_NAME_MAX || n[0] == '.' || n[0] == '-' || n[0] == '_') return 0;
    for (size_t i = 0; i < l; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '.' ||
              n[i] == '_' || n[i] == '-'))
            return 0;
    return 1;
}

/* The stored account (a JSON object) or NULL. */
static json_object *s_load(sh_agent *a, sh_txn *t, const char *name)
{
    sh_buf b = {0};
    sh_error err;
    json_object *o = NULL;
    if (s_name_ok(name) && sh_txn_get(t, a->accounts, name, strlen(name), &b, &err) == SH_OK)
        o = json_tokener_parse((const char *)b.data);
    sh_buf_free(&b);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static sh_err s_save(sh_agent *a, sh_txn *t, const char *name, json_object *o, sh_error *err)
{
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    return sh_txn_put(t, a->accounts, name, strlen(name), text, strlen(text) + 1, 0, err);
}

static int64_t s_int(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

int ag_account_role(sh_agent *a, sh_txn *t, const char *name, char *display)
{
    json_object *o = s_load(a, t, name);
    int role = o && !s_int(o, "disabled") ? s_role_value(ag_str(o, "role")) : ACC_NONE;
    if (display) {
        const char *d = o ? ag_str(o, "display") : NULL;
        snprintf(display, ACCOUNT_NAME_MAX + 1, "%s", d && *d ? d : name);
    }
    if (o) json_object_put(o);
    return role;
}

json_object *ag_require_account(sh_agent *a, json_object *req, unsigned allowed, const char **user,
                                int *role)
{
    json_object *bad = ag_text_arg(req, "user", 1, "the signed-in user", user);
    if (bad) return bad;
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    *role = ag_account_role(a, t, *user, NULL);
    sh_txn_abort(&t);
    char detail[160];
    if (*role == ACC_NONE) {
        snprintf(detail, sizeof detail, "user: '%.64s' is not an account at this agency", *user);
        return ag_error_json(SH_E_ROLE, detail);
    }
    if (!(allowed & (1u << *role))) {
        snprintf(detail, sizeof detail, "a %s may not do this", ag_role_name(*role));
        return ag_error_json(SH_E_ROLE, detail);
    }
    return NULL;
}

/* account_set: made or changed by an administrator with the CLI (sharehub account add). */
json_object *ag_op_account_set(sh_agent *a, json_object *req)
{
    const char *name = ag_str(req, "name"), *role = ag_str(req, "role"), *admin;
    const char *hash = ag_str(req, "hash"), *display = ag_str(req, "display");
    json_object *bad = ag_text_arg(req, "user", 1, "the administrator", &admin);
    if (bad) return bad;
    if (!s_name_ok(name))
        return ag_error_json(SH_E_BAD_FIELD, "name: want 1-64 of a-z, 0-9, '.', '_' and '-'");
    if (s_role_value(role) == ACC_NONE)
        return ag_error_json(SH_E_BAD_FIELD,
                             "role: want practitioner, manager, read_only or auditor");
    if (display && (strlen(display) > ACCOUNT_NAME_MAX || sh_text_check(display)))
        return ag_error_json(SH_E_BAD_FIELD, "display: 1-64 characters of clean text");
    if (hash && (strncmp(hash, "$argon2id$", 10) != 0 || strlen(hash) > 200))
        return ag_error_json(SH_E_BAD_FIELD, "hash: want an Argon2id encoded hash");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *o = s_load(a, t, name);
    int made = !o;
    if (made && !hash) {
        sh_txn_abort(&t);
        return ag_error_json(SH_E_MISSING_FIELD, "hash: a new account needs a password");
    }
    if (made) {
        o = json_object_new_object();
        json_object_object_add(o, "created_ms", json_object_new_int64(sh_clock_ms()));
    }
    json_object_object_add(o, "role", json_object_new_string(role));
    if (display) json_object_object_add(o, "display", json_object_new_string(display));
    if (hash) json_object_object_add(o, "hash", json_object_new_string(hash));
    json_object_object_add(o, "failures", json_object_new_int(0)); /* and unlocked */
    json_object_object_add(o, "locked_until_ms", json_object_new_int64(0));
    json_object_object_add(o, "disabled", json_object_new_int(0));
    char detail[200];
    snprintf(detail, sizeof detail, "account %s %s: role %s%s", name, made ? "made" : "changed",
             role, hash && !made ? ", new password" : "");
    sh_err rc = s_save(a, t, name, o, &err);
    json_object_put(o);
    if (!rc)
        rc = ag_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, admin, NULL, NULL, NULL,
                      detail);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok();
    json_object_object_add(out, "status", json_object_new_string(made ? "made" : "changed"));
    return out;
}

/* account_get: what sharehub-api needs to check a sign-in. A locked or unknown account gives
 * no hash. */
json_object *ag_op_account_get(sh_agent *a, json_object *req)
{
    const char *name = ag_str(req, "name");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *o = s_load(a, t, name);
    sh_txn_abort(&t);
    if (!o || s_int(o, "disabled") || s_role_value(ag_str(o, "role")) == ACC_NONE) {
        if (o) json_object_put(o);
        return ag_error_json(SH_E_SIGN_IN, "no such account");
    }
    int64_t until = s_int(o, "locked_until_ms"), now = sh_clock_ms();
    json_object *out;
    if (until > now) {
        out = ag_error_json(SH_E_LOCKED, "locked after repeated failed sign-ins");
        json_object_object_add(out, "locked_until_ms", json_object_new_int64(until));
    } else {
        out = ag_ok();
        const char *d = ag_str(o, "display");
        json_object_object_add(out, "name", json_object_new_string(name));
        json_object_object_add(out, "role", json_object_new_string(ag_str(o, "role")));
        json_object_object_add(out, "display", json_object_new_string(d ? d : name));
        json_object_object_add(out, "hash", json_object_new_string(ag_str(o, "hash")));
    }
    json_object_put(o);
    return out;
}

/* sign_in: sharehub-api reports a sign-in it checked (ok true or false). Failures count up to
 * the lock; success clears them. Audited either way. */
json_object *ag_op_sign_in(sh_agent *a, json_object *req)
{
    const char *name = ag_str(req, "name"), *from = ag_str(req, "from");
    json_object *v;
    if (!json_object_object_get_ex(req, "ok", &v) || !json_object_is_type(v, json_type_boolean))
        return ag_error_json(SH_E_MISSING_FIELD, "ok: true or false");
    int ok = json_object_get_boolean(v);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *o = s_load(a, t, name);
    int64_t now = sh_clock_ms(), until = 0;
    int failures = 0, locked = 0;
    sh_err rc = SH_OK;
    if (o) {
        failures = ok ? 0 : (int)s_int(o, "failures") + 1;
        if (failures >= LOCK_AFTER) {
            until = now + LOCK_MS;
            failures = 0;
            locked = 1;
        }
        json_object_object_add(o, "failures", json_object_new_int(failures));
        if (locked) json_object_object_add(o, "locked_until_ms", json_object_new_int64(until));
        if (ok) json_object_object_add(o, "last_sign_in_ms", json_object_new_int64(now));
        rc = s_save(a, t, name, o, &err);
        json_object_put(o);
    }
    char via[160];
    snprintf(via, sizeof via, "%s%s%s%.40s",
             ok  ? "signed in"
             : o ? "wrong password"
                 : "no such account",
             locked ? ": account locked for 15 minutes" : "",
             from && strlen(from) <= 40 && !sh_text_check(from) ? " via " : "",
             from && strlen(from) <= 40 && !sh_text_check(from) ? from : "");
    if (!rc)
        rc = ag_audit(a, t, SH_AUDIT_SIGN_IN,
                      ok       ? SH_AUDIT_OK
                      : locked ? SH_AUDIT_DENIED
                               : SH_AUDIT_FAILED,
                      ok       ? 0
                      : locked ? SH_E_LOCKED
                               : SH_E_SIGN_IN,
                      NULL, NULL, s_name_ok(name) ? name : "?", NULL, NULL, NULL, via);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok();
    json_object_object_add(out, "locked", json_object_new_boolean(locked));
    if (locked) json_object_object_add(out, "locked_until_ms", json_object_new_int64(until));
    return out;
}

/* accounts: the names, roles and display names (never a hash), for a manager's assignment
 * list and the CLI; with "role", only those. */
json_object *ag_op_accounts(sh_agent *a, json_object *req)
{
    const char *only = ag_str(req, "role");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *out = ag_ok(), *list = json_object_new_array();
    int64_t now = sh_clock_ms();
    if (sh_cursor_open(t, a->accounts, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            json_object *o = kv.vlen ? json_tokener_parse((const char *)kv.val) : NULL;
            const char *role = o ? ag_str(o, "role") : NULL, *d = o ? ag_str(o, "display") : NULL;
            if (role && (!only || strcmp(only, role) == 0) && !s_int(o, "disabled")) {
                json_object *x = json_object_new_object();
                json_object_object_add(
                    x, "name", json_object_new_string_len((const char *)kv.key, (int)kv.klen));
                json_object_object_add(x, "role", json_object_new_string(role));
                if (d) json_object_object_add(x, "display", json_object_new_string(d));
                json_object_object_add(x, "locked",
                                       json_object_new_boolean(s_int(o, "locked_until_ms") > now));
                json_object_array_add(list, x);
            }
            if (o) json_object_put(o);
        }
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
    json_object_object_add(out, "accounts", list);
    return out;
}
