/*
 * search.c — finding a child by name and date of birth without keeping names in clear. Every
 * event whose child carries a given name, family name and date of birth is indexed under the
 * store's blinding (an HMAC keyed by the store's blind key) of the normalised three: the index
 * tells whether a name matches, never what a name is (docs/store-format.md, "by_name").
 *
 * Owns: the by_name database; the one-off build of the newer indexes for older stores.
 * Never: stores a name, or any part of one, in clear; answers a search without auditing what
 * it showed.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

/* Lower-case ASCII letters kept; other ASCII (spaces, hyphens, apostrophes, dots) dropped;
 * bytes of other UTF-8 characters kept as they are. "O'Neil-Smith" and "oneil smith" meet. */
static size_t s_norm(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; p && *p && n + 1 < cap; p++) {
        if (*p >= 'A' && *p <= 'Z')
            out[n++] = (char)(*p - 'A' + 'a');
        else if ((*p >= 'a' && *p <= 'z') || *p >= 0x80)
            out[n++] = (char)*p;
    }
    out[n] = '\0';
    return n;
}

int ag_name_key(sh_store *s, const char *given, const char *family, const char *dob,
                uint8_t out[SH_BLIND_BYTES])
{
    char g[128], f[128], text[300];
    if (!dob || sh_date_check(dob) || !s_norm(given, g, sizeof g) || !s_norm(family, f, sizeof f))
        return -1;
    snprintf(text, sizeof text, "%s\x1f%s\x1f%s", g, f, dob);
    return sh_store_blind(s, "name", text, out) == SH_OK ? 0 : -1;
}

/* find: the children whose name and date of birth match, each with their identifiers and how
 * many events this agency holds about them. Each matching event is an audited read. */
json_object *ag_op_find(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *given = ag_str(req, "given_name");
    const char *family = ag_str(req, "family_name"), *dob = ag_str(req, "date_of_birth");
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    char tmp[128];
    if (!given || !s_norm(given, tmp, sizeof tmp))
        return ag_error_json(SH_E_MISSING_FIELD, "given_name: a letter at least");
    if (!family || !s_norm(family, tmp, sizeof tmp))
        return ag_error_json(SH_E_MISSING_FIELD, "family_name: a letter at least");
    if (!dob || !*dob) return ag_error_json(SH_E_MISSING_FIELD, "date_of_birth: YYYY-MM-DD");
    if (sh_date_check(dob))
        return ag_error_json(SH_E_BAD_DATE, "date_of_birth: not a valid YYYY-MM-DD date");
    uint8_t ref[SH_BLIND_BYTES];
    if (ag_name_key(a->store, given, family, dob, ref)) return ag_error_json(SH_E_CRYPTO, "blind");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    char via[VIA_MAX];
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *children = json_object_new_object(); /* key: the child's first identifier */
    if (sh_cursor_open(t, a->by_name, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, SH_BLIND_BYTES, &kv, &err);
             rc == SH_OK && kv.klen == SH_BLIND_BYTES + 16 && memcmp(kv.key, ref, 32) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            uint8_t eid[16];
            memcpy(eid, kv.key + SH_BLIND_BYTES, 16);
            sh_buf b = {0};
            sh_agent_record r;
            sh_envelope *e = NULL;
            if (ag_record_get(a, t, eid, &r, &b, &err) != SH_OK ||
                sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) || !e->child) {
                sh_envelope_free(e);
                sh_buf_free(&b);
                continue;
            }
            const sh_child *ch = e->child;
            const char *id = ch->nhs_number && *ch->nhs_number ? ch->nhs_number
                             : ch->upn && *ch->upn             ? ch->upn
                                                               : ch->la_child_id;
            if (id && *id) {
                json_object *x;
                if (!json_object_object_get_ex(children, id, &x)) {
                    x = json_object_new_object();
                    json_object_object_add(x, "id", json_object_new_string(id));
                    json_object_object_add(x, "events", json_object_new_int(0));
                    json_object_object_add(children, id, x);
                }
                const struct {
                    const char *k, *v;
                } f[] = {{"nhs_number", ch->nhs_number},   {"upn", ch->upn},
                         {"la_child_id", ch->la_child_id}, {"given_name", ch->given_name},
                         {"family_name", ch->family_name}, {"date_of_birth", ch->date_of_birth}};
                for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
                    if (f[i].v && *f[i].v && !json_object_object_get_ex(x, f[i].k, NULL))
                        json_object_object_add(x, f[i].k, json_object_new_string(f[i].v));
                json_object *n = json_object_object_get(x, "events");
                json_object_set_int(n, json_object_get_int(n) + 1);
                json_object *last;
                if (!json_object_object_get_ex(x, "latest_at_ms", &last) ||
                    json_object_get_int64(last) < r.at_ms)
                    json_object_object_add(x, "latest_at_ms", json_object_new_int64(r.at_ms));
                uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
                int nr = sh_child_refs(a->store, ch, refs);
                ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, eid, nr ? refs[0] : NULL, user, NULL,
                         purpose, NULL, ag_via(req, "child search", via, sizeof via));
            }
            sh_envelope_free(e);
            sh_buf_free(&b);
        }
        sh_cursor_close(&c);
    }
    if (ag_commit(a, &t, &err)) {
        json_object_put(children);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok(), *list = json_object_new_array();
    json_object_object_foreach(children, k, v)
    {
        (void)k;
        json_object_array_add(list, json_object_get(v));
    }
    json_object_put(children);
    json_object_object_add(out, "children", list);
    return out;
}

/* Stores made before the name index and the front door: every stored event indexed once,
 * in one transaction, marked done in state "indexes" = 1. */
sh_err ag_indexes_upgrade(sh_agent *a, sh_error *err)
{
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_buf b = {0};
    sh_kv kv;
    sh_err rc = sh_txn_begin(a->store, 1, &t, err);
    if (rc) return rc;
    if (sh_txn_get(t, a->state, "indexes", 7, &b, err) == SH_OK) {
        sh_buf_free(&b);
        sh_txn_abort(&t);
        return SH_OK;
    }
    uint64_t n = 0;
    rc = sh_cursor_open(t, a->events, &c, err);
    for (sh_err crc = rc ? rc : sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, err);
         !rc && crc == SH_OK; crc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, err)) {
        sh_agent_record r;
        sh_envelope *e = NULL;
        sh_error ignore;
        sh_buf opened = {0};
        if (kv.klen != 16 || sh_agent_record_parse(kv.val, kv.vlen, &r) ||
            ag_record_open(a, kv.key, &r, &opened) ||
            sh_envelope_decode_minimised(r.env, r.env_len, &e, &ignore)) {
            sh_buf_free(&opened);
            continue; /* damaged or erased: reported when it is read, not here */
        }
        uint8_t key[SH_BLIND_BYTES + 16];
        if (e->child && ag_name_key(a->store, e->child->given_name, e->child->family_name,
                                    e->child->date_of_birth, key) == 0) {
            memcpy(key + SH_BLIND_BYTES, kv.key, 16);
            rc = sh_txn_put(t, a->by_name, key, sizeof key, "", 0, 0, err);
        }
        if (!rc && r.direction == SH_DIR_RECEIVED)
            rc = ag_fd_arrived(a, t, e, r.peer, r.at_ms, err);
        /* a decision the hub made before: its referral (stored earlier: ids are time-ordered)
         * is decided */
        ag_fd_item it;
        uint8_t fk[FD_KEY];
        if (!rc && r.direction == SH_DIR_SENT && e->event_type == ET(HUB_DECISION) &&
            e->hub_decision && e->hub_decision->referral_event_id.len == 16 &&
            ag_fd_get(a, t, e->hub_decision->referral_event_id.data, &it, fk)) {
            it.state = FD_DECIDED;
            it.decided_ms = e->hub_decision->decided_at_ms;
            memcpy(it.decision, kv.key, 16);
            if (e->hub_decision->decided_by && e->hub_decision->decided_by->name)
                snprintf(it.decided_by, sizeof it.decided_by, "%s",
                         e->hub_decision->decided_by->name);
            rc = ag_fd_put(a, t, &it, fk, err);
        }
        sh_envelope_free(e);
        sh_buf_free(&opened);
        n++;
    }
    sh_cursor_close(&c);
    uint8_t one = 1;
    if (!rc) rc = sh_txn_put(t, a->state, "indexes", 7, &one, 1, 0, err);
    if (!rc && n)
        ag_log(a, "info", "name index and front door built for %llu stored events",
               (unsigned long long)n);
    if (rc) {
        sh_txn_abort(&t);
        return rc;
    }
    return ag_commit(a, &t, err);
}
