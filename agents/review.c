/*
 * review.c — a person's review of received copies whose retention ended in review
 * (docs/agent.md, "Retention review"): the list of those waiting, and the decision on one —
 * keep it for a further period (then review it again) or erase it now.
 *
 * Owns: the review decisions' changes to the retention databases and their audit entries.
 * Never: decides for a copy that is not waiting for review; records the copy's content, or a
 * reason in free text, in the audit log; keeps a copy without sealing it under the day its
 * new period ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

#define LIST_MAX 500 /* copies listed at most */

/* A review period: "90d", "18m" or "2y" (1 day to 100 years), into r (review again at its
 * end). 0, or -1 when text is not one. */
static int s_period(const char *text, sh_retain *r)
{
    char unit = 0, extra = 0;
    unsigned n = 0;
    if (!text || sscanf(text, "%5u%c%c", &n, &unit, &extra) != 2 || n == 0) return -1;
    if (unit == 'y') n *= 12, unit = 'm';
    if ((unit != 'd' && unit != 'm') || n > (unit == 'd' ? 36525u : 1200u)) return -1;
    *r = (sh_retain){(uint16_t)n, unit, 1};
    return 0;
}

/* The rule (ISP) a retention record v[0..n) (n >= 13) names, into out. */
static void s_rule(const uint8_t *v, size_t n, char out[256])
{
    size_t rl = v[12] < n - 13 ? v[12] : n - 13;
    memcpy(out, v + 13, rl);
    out[rl] = '\0';
}

json_object *ag_op_review(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *ids = ag_str(req, "event_id"), *decision = ag_str(req, "decision");
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    uint8_t id[16];
    sh_retain more = {0};
    if (sh_event_id_parse(ids, id)) return ag_error_json(SH_E_BAD_EVENT_ID, "event_id");
    int keep = decision && strcmp(decision, "keep") == 0;
    if (!keep && !(decision && strcmp(decision, "erase") == 0))
        return ag_error_json(SH_E_BAD_FIELD, "decision: want keep or erase");
    if (keep && s_period(ag_str(req, "keep"), &more))
        return ag_error_json(SH_E_BAD_FIELD,
                             "keep: want how much longer, as 90d, 18m or 2y (1 day to 100 years)");
    sh_txn *t = NULL;
    sh_error err = {0};
    sh_buf rv = {0}, b = {0};
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_err rc = sh_txn_get(t, a->retention, id, 16, &rv, &err);
    if (rc == SH_E_NOT_FOUND || (!rc && (rv.len < 13 || rv.data[11] != 2))) {
        sh_buf_free(&rv);
        sh_txn_abort(&t);
        return ag_error_json(rc == SH_E_NOT_FOUND ? SH_E_NOT_FOUND : SH_E_BAD_FIELD,
                             rc == SH_E_NOT_FOUND
                                 ? "event_id: this agency holds no received copy of it with a "
                                   "retention"
                                 : "event_id: not due for review (its retention has not ended, "
                                   "or ends in erasure)");
    }
    char rule[256], what[400], when[32], idt[SH_EVENT_ID_STR];
    if (!rc) s_rule(rv.data, rv.len, rule);
    sh_agent_record r;
    sh_envelope *e = NULL;
    uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int nr = 0;
    if (!rc) rc = ag_record_get(a, t, id, &r, &b, &err);
    if (!rc && sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK)
        nr = sh_child_refs(a->store, e->child, refs);
    const char *type = e ? sh_event_type_name(e->event_type) : "an event";
    int64_t due = 0;
    if (!rc) rc = ag_retain_release(a, t, id, &err);
    if (!rc && keep) {
        int64_t now = sh_clock_ms();
        due = sh_clock_add(now, more.count, more.unit);
        rc = ag_retain_schedule(a, t, id, rule, &more, now, &err);
        if (!rc) rc = ag_record_reseal(a, t, id, sh_shred_day_of(due), &err);
        snprintf(what, sizeof what,
                 "kept on review for %u %s%s: %s from %s under %s, due for review again %s",
                 more.count, more.unit == 'm' ? "month" : "day", more.count == 1 ? "" : "s", type,
                 r.peer, rule, sh_clock_iso(due, when, sizeof when));
        if (!rc)
            rc = ag_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user,
                          r.peer, purpose, rule, what);
    } else if (!rc) {
        rc = ag_retain_erase(a, t, id, e, &err);
        if (!rc) rc = sh_txn_del(t, a->retention, id, 16, &err);
        snprintf(what, sizeof what, "erased on review: %s from %s, kept under %s", type, r.peer,
                 rule);
        if (!rc)
            rc = ag_audit(a, t, SH_AUDIT_ERASE, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user,
                          r.peer, purpose, rule, what);
    }
    sh_envelope_free(e);
    sh_buf_free(&b);
    sh_buf_free(&rv);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code ? err.code : rc, err.detail);
    }
    json_object *out = ag_ok();
    json_object_object_add(out, "event_id", json_object_new_string(sh_event_id_format(id, idt)));
    json_object_object_add(out, "decision", json_object_new_string(keep ? "kept" : "erased"));
    if (keep) json_object_object_add(out, "due_at_ms", json_object_new_int64(due));
    return out;
}

json_object *ag_op_review_due(sh_agent *a, json_object *req)
{
    const char *user, *purpose;
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *items = json_object_new_array();
    size_t n = 0, total = 0;
    sh_err rc = sh_cursor_open(t, a->retention, &c, &err);
    for (sh_err crc = rc ? rc : sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); crc == SH_OK;
         crc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        if (kv.klen != 16 || kv.vlen < 13 || ((const uint8_t *)kv.val)[11] != 2) continue;
        total++;
        if (n == LIST_MAX) continue;
        const uint8_t *v = kv.val;
        sh_buf b = {0};
        sh_agent_record r;
        sh_envelope *e = NULL;
        char rule[256], idt[SH_EVENT_ID_STR], kt[16];
        int64_t due = (int64_t)sh_be64_get(v);
        s_rule(v, kv.vlen, rule);
        snprintf(kt, sizeof kt, "%u%c", (unsigned)(v[8] << 8 | v[9]), v[10]);
        if (ag_record_get(a, t, kv.key, &r, &b, &err) == SH_OK)
            sh_envelope_decode_minimised(r.env, r.env_len, &e, &err);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "event_id",
                               json_object_new_string(sh_event_id_format(kv.key, idt)));
        if (e)
            json_object_object_add(o, "type",
                                   json_object_new_string(sh_event_type_name(e->event_type)));
        if (e) json_object_object_add(o, "peer", json_object_new_string(r.peer));
        json_object_object_add(o, "rule", json_object_new_string(rule));
        json_object_object_add(o, "kept", json_object_new_string(kt));
        json_object_object_add(o, "due_at_ms", json_object_new_int64(due));
        json_object_array_add(items, o);
        n++;
        sh_envelope_free(e);
        sh_buf_free(&b);
    }
    sh_cursor_close(&c);
    char detail[80];
    snprintf(detail, sizeof detail, "review list: %zu received copies due for review", total);
    rc = ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, NULL, NULL, user, NULL, purpose, NULL,
                  detail);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        json_object_put(items);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok();
    json_object_object_add(out, "items", items);
    json_object_object_add(out, "total", json_object_new_int64((int64_t)total));
    return out;
}
