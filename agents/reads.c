/*
 * reads.c — reading what the agency holds: the inbox, one event, everything about a child.
 * Every read is audited with who read and why, in the same transaction as the read: a read
 * that cannot be audited shows nothing.
 *
 * Owns: nothing stored. Never: returns a damaged event's content; shows a read it could not
 * audit.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"
#include "ident.h"
#include "json.h"

#define ATTENDANCES_SHOWN 25 /* the newest unscheduled-care attendances a child view lists */

/* A stored event that cannot be read back as it was written: its seal fails (the value was
 * altered on disk, or moved from another key), or it no longer parses. Reported to the reader,
 * logged and audited; nothing of it is returned. */
static json_object *s_damaged(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_err why,
                              const char *user, const char *purpose)
{
    char idt[SH_EVENT_ID_STR];
    sh_event_id_format(id, idt);
    ag_log_event(a, "error", id, "event damaged in this store (E%03d %s): not returned", why,
                 sh_err_name(why));
    ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_FAILED, why, id, NULL, user, NULL, purpose, NULL,
             "stored event damaged: not returned");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event_id", json_object_new_string(idt));
    json_object_object_add(o, "damaged", json_object_new_boolean(1));
    json_object_object_add(o, "code", json_object_new_int(why));
    json_object_object_add(o, "error", json_object_new_string(sh_err_name(why)));
    json_object_object_add(
        o, "message",
        json_object_new_string("this event fails its integrity check in the agency's store "
                               "(altered or moved on disk); nothing of it is shown: restore the "
                               "store from a backup and ask the sender to resend"));
    return o;
}

/* One stored event as JSON: its metadata and (with full) the event itself. NULL with *why set
 * when it is not there (SH_E_NOT_FOUND) or cannot be read back (a damage code). */
static json_object *s_event_json(sh_agent *a, sh_txn *t, const uint8_t id[16], int full,
                                 sh_envelope **env_out, sh_err *why)
{
    sh_buf b = {0};
    sh_error err;
    sh_agent_record r;
    json_object *o = NULL;
    if (env_out) *env_out = NULL;
    sh_err rc = ag_record_get(a, t, id, &r, &b, &err);
    if (rc) {
        sh_buf_free(&b);
        *why = rc;
        return NULL;
    }
    sh_envelope *e = NULL;
    *why = SH_E_STORE_CORRUPT;
    if (sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK) {
        char idt[SH_EVENT_ID_STR];
        o = json_object_new_object();
        json_object_object_add(o, "event_id", json_object_new_string(sh_event_id_format(id, idt)));
        json_object_object_add(o, "type",
                               json_object_new_string(sh_event_type_name(e->event_type)));
        json_object_object_add(
            o, "direction",
            json_object_new_string(r.direction == SH_DIR_SENT ? "sent" : "received"));
        json_object_object_add(o, "peer", json_object_new_string(r.peer));
        if (r.rule[0]) json_object_object_add(o, "rule", json_object_new_string(r.rule));
        if (r.flags) json_object_object_add(o, "overdue", json_object_new_boolean(1));
        int64_t due = 0;
        sh_retain kept;
        if (r.direction == SH_DIR_RECEIVED && ag_retain_get(a, t, id, &due, &kept)) {
            char text[32];
            json_object *k = json_object_new_object();
            snprintf(text, sizeof text, "%u%c", (unsigned)kept.count, kept.unit);
            json_object_object_add(k, "keep", json_object_new_string(text));
            json_object_object_add(k, "then",
                                   json_object_new_string(kept.review ? "review" : "erase"));
            json_object_object_add(k, "due_at_ms", json_object_new_int64(due));
            if (kept.review == 2) /* the day came: kept until a person reviews it */
                json_object_object_add(k, "review_due", json_object_new_boolean(1));
            json_object_object_add(o, "retention", k);
        }
        json_object_object_add(o, "stored_at_ms", json_object_new_int64(r.at_ms));
        char origin[240];
        if (full && r.direction == SH_DIR_RECEIVED &&
            ag_evidence_origin(a, t, id, r.env, r.env_len, e, r.rule, origin, sizeof origin) ==
                SH_OK) /* who said it, proved again from the sender's evidence kept */
            json_object_object_add(o, "origin", json_object_new_string(origin));
        sh_buf ob = {0};
        if (sh_txn_get(t, a->outcome, id, 16, &ob, &err) == SH_OK)
            json_object_object_add(o, "broker",
                                   json_object_new_string_len((const char *)ob.data, (int)ob.len));
        else if (r.direction == SH_DIR_SENT)
            json_object_object_add(o, "broker", json_object_new_string("waiting in the outbox"));
        sh_buf_free(&ob);
        char *ej = sh_json_from_message(&e->base, 0);
        json_object *ev = ej ? json_tokener_parse(ej) : NULL;
        free(ej);
        if (!full && ev) { /* a summary: who it is about and the body, not everything */
            json_object *keep = json_object_new_object(), *v;
            if (json_object_object_get_ex(ev, "child", &v))
                json_object_object_add(keep, "child", json_object_get(v));
            if (json_object_object_get_ex(ev, "level_of_need", &v))
                json_object_object_add(keep, "level_of_need", json_object_get(v));
            const ProtobufCFieldDescriptor *bf = protobuf_c_message_descriptor_get_field(
                &sharehub__v1__envelope__descriptor, (unsigned)e->body_case);
            if (bf && json_object_object_get_ex(ev, bf->name, &v))
                json_object_object_add(keep, bf->name, json_object_get(v));
            json_object_put(ev);
            ev = keep;
        }
        if (ev) json_object_object_add(o, "event", ev);
        if (env_out)
            *env_out = e;
        else
            sh_envelope_free(e);
    }
    sh_buf_free(&b);
    return o;
}

/* The event types a "types" argument names (comma-separated names): a bit per type; all
 * bits when absent. NULL, or the error to answer with. */
static json_object *s_types(json_object *req, uint64_t *mask)
{
    const char *list = ag_str(req, "types");
    *mask = ~0ULL;
    if (!list) return NULL;
    *mask = 0;
    char name[48], detail[120];
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        int v = n && n < sizeof name ? sh_event_type_from_name(name) : -1;
        if (v <= 0 || v >= 64) {
            snprintf(detail, sizeof detail, "types: '%.40s' is not an event type name", name);
            return ag_error_json(SH_E_BAD_FIELD, detail);
        }
        *mask |= 1ULL << v;
        if (!p[n]) break;
        p += n + 1;
    }
    return NULL;
}

/* The event type of inbox entry kv (the event is opened), or 0 when it cannot be known. */
static int s_inbox_type(sh_agent *a, sh_txn *t, const sh_kv *kv)
{
    sh_buf b = {0};
    sh_error err;
    sh_agent_record r;
    sh_envelope *e = NULL;
    int type = 0;
    if (ag_record_get(a, t, kv->val, &r, &b, &err) == SH_OK &&
        sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK)
        type = e->event_type;
    sh_envelope_free(e);
    sh_buf_free(&b);
    return type;
}

json_object *ag_op_inbox(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *client = ag_str(req, "client");
    json_object *bad = ag_require_reader(req, &user, &purpose), *v;
    uint64_t mask = 0;
    if (!bad) bad = s_types(req, &mask);
    if (bad) return bad;
    int64_t since = -1, limit = 100;
    int summary = json_object_object_get_ex(req, "summary", &v) && json_object_get_boolean(v);
    if (json_object_object_get_ex(req, "since", &v)) {
        if (!json_object_is_type(v, json_type_int) || (since = json_object_get_int64(v)) < 0)
            return ag_error_json(SH_E_BAD_FIELD, "since: want a whole number, 0 or more");
    }
    if (json_object_object_get_ex(req, "limit", &v)) {
        if (!json_object_is_type(v, json_type_int) || (limit = json_object_get_int64(v)) < 1 ||
            limit > 1000)
            return ag_error_json(SH_E_BAD_FIELD, "limit: want a whole number from 1 to 1000");
    }
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    char via[VIA_MAX];
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    /* no cursor: a client system starts after what it has acknowledged */
    uint64_t acked = client ? ag_acked(a, t, client) : 0;
    uint64_t from = since >= 0 ? (uint64_t)since : acked, next = from;
    json_object *out = ag_ok(), *items = json_object_new_array();
    uint8_t key[8];
    sh_be64_put(key, from);
    int more = 0;
    if (sh_cursor_open(t, a->inbox, &c, &err) == SH_OK) {
        int64_t n = 0;
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, key, 8, &kv, &err); rc == SH_OK;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.vlen != 16) continue;
            uint64_t seq = sh_be64_get(kv.key);
            if (mask != ~0ULL) {
                int type = s_inbox_type(a, t, &kv);
                if (type <= 0 || type >= 64 || !(mask & (1ULL << type))) {
                    if (n < limit) next = seq + 1; /* passed over: the next page starts after */
                    continue;
                }
            }
            if (n == limit) { /* one more is there: say so, never a silent cap */
                more = 1;
                break;
            }
            uint8_t id[16];
            memcpy(id, kv.val, 16);
            sh_envelope *e = NULL;
            sh_err why;
            json_object *item = s_event_json(a, t, id, 0, &e, &why);
            next = seq + 1;
            if (!item && why == SH_E_NOT_FOUND) continue;
            if (!item) item = s_damaged(a, t, id, why, user, purpose);
            json_object_object_add(item, "seq", json_object_new_int64((int64_t)seq));
            ag_fd_item fd;
            uint8_t fkey[FD_KEY];
            if (e && ag_fd_get(a, t, id, &fd, fkey)) /* the hub: where its triage stands */
                json_object_object_add(item, "front_door", ag_fd_json(a, &fd, sh_clock_ms()));
            json_object_array_add(items, item);
            n++;
            if (!e) continue;
            if (summary) { /* what arrived, not what it says: not a read of anyone's record */
                json_object_object_del(item, "event");
                sh_envelope_free(e);
                continue;
            }
            uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
            int nr = sh_child_refs(a->store, e->child, refs);
            ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user, NULL,
                     purpose, NULL, ag_via(req, "inbox", via, sizeof via));
            sh_envelope_free(e);
        }
        sh_cursor_close(&c);
    }
    if (ag_commit(a, &t, &err)) { /* the reads could not be audited: show nothing */
        json_object_put(out);
        json_object_put(items);
        return ag_error_json(err.code, err.detail);
    }
    json_object_object_add(out, "items", items);
    json_object_object_add(out, "next", json_object_new_int64((int64_t)next));
    json_object_object_add(out, "more", json_object_new_boolean(more));
    if (client) json_object_object_add(out, "acknowledged", json_object_new_int64((int64_t)acked));
    return out;
}

json_object *ag_op_show(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *ids = ag_str(req, "event_id");
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    uint8_t id[16];
    if (sh_event_id_parse(ids, id)) return ag_error_json(SH_E_BAD_EVENT_ID, "event_id");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_envelope *e = NULL;
    sh_err why;
    json_object *item = s_event_json(a, t, id, 1, &e, &why);
    if (!item && why == SH_E_NOT_FOUND) {
        sh_txn_abort(&t);
        return ag_error_json(SH_E_NOT_FOUND, "no such event at this agency");
    }
    if (!item) { /* the failed read is audited; the reader gets the damage, not the data */
        json_object_put(s_damaged(a, t, id, why, user, purpose));
        ag_commit(a, &t, &err);
        return ag_error_json(why, "this event fails its integrity check in the agency's store "
                                  "(altered or moved on disk); nothing of it is shown");
    }
    const char *dir = json_object_get_string(json_object_object_get(item, "direction"));
    const char *only = ag_str(req, "direction"); /* the API's track scope: sent events only */
    if (only && dir && strcmp(only, dir) != 0) {
        sh_txn_abort(&t);
        sh_envelope_free(e);
        json_object_put(item);
        return ag_error_json(SH_E_NOT_FOUND, strcmp(only, "sent") == 0
                                                 ? "no event this agency sent has this id"
                                                 : "no event this agency received has this id");
    }
    uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int nr = e ? sh_child_refs(a->store, e->child, refs) : 0;
    char via[VIA_MAX];
    ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user, NULL, purpose,
             NULL, ag_via(req, "event", via, sizeof via));
    int sent = dir && strcmp(dir, "sent") == 0;
    int receipt = e && e->event_type == ET(DELIVERY_RECEIPT);
    if (sent) { /* what became of it at each recipient */
        sh_buf ob = {0};
        json_object *tr = sh_txn_get(t, a->outcome, id, 16, &ob, &err) == SH_OK
                              ? ag_tracking_json(a, t, id, (const char *)ob.data, ob.len)
                              : json_object_new_array();
        json_object_object_add(item, "tracking", tr);
        sh_buf_free(&ob);
    }
    sh_envelope_free(e);
    if (ag_commit(a, &t, &err)) {
        json_object_put(item);
        return ag_error_json(err.code, err.detail);
    }
    /* the sender learns that a person here has opened it (once; a failure is logged: the
     * read itself stands) */
    if (!sent && !receipt && ag_read_receipt(a, id, user, &err))
        ag_log_event(a, "warning", id, "the READ receipt could not be made: %s", err.detail);
    json_object *out = ag_ok();
    json_object_object_add(out, "item", item);
    return out;
}

/* An attendance of the child, for the views' "last 25": an unscheduled-care attendance held
 * here, or the access notification of one (what the hub receives); each attendance once. */
static void s_attendance(json_object *att, const sh_envelope *e, const uint8_t id[16])
{
    int64_t at;
    const char *site;
    const uint8_t *aid = id;
    if (e->event_type == ET(UNSCHEDULED_CARE_ATTENDANCE) && e->unscheduled_care_attendance) {
        at = e->unscheduled_care_attendance->arrived_at_ms;
        site = e->unscheduled_care_attendance->site_code;
    } else if (e->event_type == ET(ACCESS_NOTIFICATION) && e->access_notification &&
               e->access_notification->attendance_event_id.len == 16) {
        at = e->access_notification->accessed_at_ms;
        site = e->access_notification->site_code;
        aid = e->access_notification->attendance_event_id.data;
    } else {
        return;
    }
    char idt[SH_EVENT_ID_STR];
    sh_event_id_format(aid, idt);
    for (size_t i = 0; i < json_object_array_length(att); i++)
        if (strcmp(json_object_get_string(
                       json_object_object_get(json_object_array_get_idx(att, i), "event_id")),
                   idt) == 0)
            return;
    json_object *x = json_object_new_object();
    json_object_object_add(x, "at", json_object_new_int64(at));
    json_object_object_add(x, "site", json_object_new_string(site ? site : ""));
    json_object_object_add(x, "event_id", json_object_new_string(idt));
    json_object_array_add(att, x);
}

static int s_cmp_arrival(const void *x, const void *y)
{
    int64_t a = json_object_get_int64(json_object_object_get(*(json_object *const *)x, "at"));
    int64_t b = json_object_get_int64(json_object_object_get(*(json_object *const *)y, "at"));
    return a < b ? 1 : a > b ? -1 : 0;
}

static int s_cmp_stored(const void *x, const void *y)
{
    int64_t a =
        json_object_get_int64(json_object_object_get(*(json_object *const *)x, "stored_at_ms"));
    int64_t b =
        json_object_get_int64(json_object_object_get(*(json_object *const *)y, "stored_at_ms"));
    return a < b ? 1 : a > b ? -1 : 0;
}

/* A child's CP-IS flag in an answer: `flag` (its name, or none) and, when there is one, the
 * responsible authority with its numbers, the plan's start and the status event behind it. */
static void s_flag_json(json_object *out, const ag_flag *f)
{
    const char *fname =
        f->type ? sh_enum_name(&sharehub__v1__flag_type__descriptor, f->type) : NULL;
    json_object_object_add(out, "flag", json_object_new_string(fname ? fname : "none"));
    if (!f->type) return;
    char idt[SH_EVENT_ID_STR];
    json_object *la = json_object_new_object();
    json_object_object_add(out, "responsible_la", json_object_new_string(f->la));
    json_object_object_add(la, "la_code", json_object_new_string(f->la));
    const char *name = sh_la_name(f->la);
    if (name) json_object_object_add(la, "name", json_object_new_string(name));
    json_object_object_add(la, "office_hours_phone", json_object_new_string(f->office));
    json_object_object_add(la, "out_of_hours_phone", json_object_new_string(f->out_of_hours));
    json_object_object_add(out, "la_contact", la);
    if (f->start[0]) json_object_object_add(out, "flag_start", json_object_new_string(f->start));
    json_object_object_add(out, "flag_event_id",
                           json_object_new_string(sh_event_id_format(f->event_id, idt)));
    json_object_object_add(out, "flag_at_ms", json_object_new_int64(f->at_ms));
}

json_object *ag_op_child(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *id = ag_str(req, "id");
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    char canon[40], detail[240];
    const char *kind, *check;
    sh_err idrc = sh_ident_classify(id ? id : "", canon, sizeof canon, &kind, &check);
    if (idrc) { /* never "nothing found" for a mistyped identifier */
        snprintf(detail, sizeof detail, "id: %s", check);
        return ag_error_json(idrc, detail);
    }
    uint8_t ref[32];
    if (sh_store_blind(a->store, kind, canon, ref)) return ag_error_json(SH_E_CRYPTO, "blind");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    char via[VIA_MAX];
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *out = ag_ok(), *items = json_object_new_array(), *att = json_object_new_array();
    json_object *fo;
    int flag_only = json_object_object_get_ex(req, "flag_only", &fo) && json_object_get_boolean(fo);
    if (!flag_only && sh_cursor_open(t, a->by_child, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, 32, &kv, &err);
             rc == SH_OK && kv.klen == 48 && memcmp(kv.key, ref, 32) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            uint8_t eid[16];
            memcpy(eid, kv.key + 32, 16);
            sh_envelope *e = NULL;
            sh_err why;
            json_object *item = s_event_json(a, t, eid, 1, &e, &why);
            if (!item && why != SH_E_NOT_FOUND)
                json_object_array_add(items, s_damaged(a, t, eid, why, user, purpose));
            if (!item) continue;
            if (e) s_attendance(att, e, eid);
            json_object_array_add(items, item);
            ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, eid, ref, user, NULL, purpose, NULL,
                     ag_via(req, "child record", via, sizeof via));
            sh_envelope_free(e);
        }
        sh_cursor_close(&c);
    }
    ag_flag f;
    ag_flag_for(a, t, ref, &f);
    if (flag_only) /* who checked this child's flag, and why */
        ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, NULL, ref, user, NULL, purpose, NULL,
                 ag_via(req, "child flag", via, sizeof via));
    if (ag_commit(a, &t, &err)) {
        json_object_put(out);
        json_object_put(items);
        json_object_put(att);
        return ag_error_json(err.code, err.detail);
    }
    json_object_array_sort(att, s_cmp_arrival);
    while (json_object_array_length(att) > ATTENDANCES_SHOWN)
        json_object_array_del_idx(att, ATTENDANCES_SHOWN, 1);
    s_flag_json(out, &f);
    /* health: a clinician's system asking for the flag is a CP-IS access — the responsible
     * authority is told, as after an attendance (docs/fhir.md) */
    json_object *acc;
    if (f.type && a->cfg->role == ROLE_HEALTH && strcmp(kind, "nhs") == 0 &&
        json_object_object_get_ex(req, "access", &acc)) {
        const char *site = ag_str(acc, "site"), *setting_name = ag_str(acc, "setting");
        int setting = 0;
        if (!setting_name ||
            sh_enum_value(&sharehub__v1__care_setting__descriptor, setting_name, &setting) ||
            setting <= 0)
            setting = SHAREHUB__V1__CARE_SETTING__CARE_SETTING_EMERGENCY_DEPARTMENT;
        uint8_t nid[16];
        char idt[SH_EVENT_ID_STR];
        if (site && sh_org_code_check(site) != SH_OK) site = NULL;
        if (ag_cpis_notify(a, canon, NULL, &f, site, setting, NULL, (ProtobufCBinaryData){0, NULL},
                           nid, &err) == SH_OK)
            json_object_object_add(out, "access_notification",
                                   json_object_new_string(sh_event_id_format(nid, idt)));
        else
            ag_log(a, "error", "access notification not queued: %s", err.detail);
    }
    if (flag_only) {
        json_object_put(att);
        json_object_put(items);
        return out;
    }
    json_object_object_add(out, "attendances", att);
    json_object_object_add(out, "events", items);
    return out;
}

/* item: one front-door item opened in the workspace — the referral in full, its triage state,
 * and the child's history here (every other event about the child, newest first, with the
 * protocol each arrived under), the CP-IS flag and the attendances. One audited read: the
 * view, naming how many events it showed. A team manager also gets who it can be assigned to. */
json_object *ag_op_item(sh_agent *a, json_object *req)
{
    const char *user, *purpose, *ids = ag_str(req, "event_id");
    json_object *bad = ag_require_reader(req, &user, &purpose);
    if (bad) return bad;
    uint8_t id[16], key[FD_KEY];
    if (sh_event_id_parse(ids, id)) return ag_error_json(SH_E_BAD_EVENT_ID, "event_id");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_envelope *e = NULL;
    sh_err why;
    json_object *item = s_event_json(a, t, id, 1, &e, &why);
    if (!item) {
        if (why != SH_E_NOT_FOUND) json_object_put(s_damaged(a, t, id, why, user, purpose));
        ag_commit(a, &t, &err);
        return ag_error_json(why == SH_E_NOT_FOUND ? SH_E_NOT_FOUND : why,
                             why == SH_E_NOT_FOUND ? "no such event at this agency"
                                                   : "this event fails its integrity check");
    }
    json_object *out = ag_ok(), *hist = json_object_new_array(), *att = json_object_new_array();
    ag_fd_item it;
    if (ag_fd_get(a, t, id, &it, key))
        json_object_object_add(out, "front_door", ag_fd_json(a, &it, sh_clock_ms()));
    uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int nr = e ? sh_child_refs(a->store, e->child, refs) : 0;
    ag_flag f = {0};
    if (nr && sh_cursor_open(t, a->by_child, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, refs[0], 32, &kv, &err);
             rc == SH_OK && kv.klen == 48 && memcmp(kv.key, refs[0], 32) == 0;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            uint8_t eid[16];
            memcpy(eid, kv.key + 32, 16);
            if (memcmp(eid, id, 16) == 0) continue;
            sh_envelope *he = NULL;
            json_object *h = s_event_json(a, t, eid, 0, &he, &why);
            if (!h) continue; /* a damaged one is reported when it is itself opened */
            if (he) s_attendance(att, he, eid);
            sh_envelope_free(he);
            json_object_array_add(hist, h);
        }
        sh_cursor_close(&c);
        ag_flag_for(a, t, refs[0], &f);
    }
    char detail[120], via[VIA_MAX];
    snprintf(detail, sizeof detail, "front-door item with the child's history (%zu events)",
             json_object_array_length(hist));
    ag_audit(a, t, SH_AUDIT_READ, SH_AUDIT_OK, 0, id, nr ? refs[0] : NULL, user, NULL, purpose,
             NULL, ag_via(req, detail, via, sizeof via));
    int received =
        strcmp(json_object_get_string(json_object_object_get(item, "direction")), "received") == 0;
    int receipt = e && e->event_type == ET(DELIVERY_RECEIPT);
    sh_envelope_free(e);
    if (ag_commit(a, &t, &err)) {
        json_object_put(out);
        json_object_put(item);
        json_object_put(hist);
        json_object_put(att);
        return ag_error_json(err.code, err.detail);
    }
    if (received && !receipt && ag_read_receipt(a, id, user, &err))
        ag_log_event(a, "warning", id, "the READ receipt could not be made: %s", err.detail);
    json_object_array_sort(hist, s_cmp_stored);
    json_object_array_sort(att, s_cmp_arrival);
    while (json_object_array_length(att) > ATTENDANCES_SHOWN)
        json_object_array_del_idx(att, ATTENDANCES_SHOWN, 1);
    json_object_object_add(out, "item", item);
    json_object_object_add(out, "history", hist);
    json_object_object_add(out, "attendances", att);
    s_flag_json(out, &f);
    int role = ACC_NONE;
    if (sh_txn_begin(a->store, 0, &t, &err) == SH_OK) {
        role = ag_account_role(a, t, user, NULL);
        sh_txn_abort(&t);
    }
    if (role == ACC_MANAGER) {
        json_object *q = json_object_new_object();
        json_object *list = ag_op_accounts(a, q);
        json_object_put(q);
        json_object *acc;
        if (json_object_object_get_ex(list, "accounts", &acc))
            json_object_object_add(out, "assignable", json_object_get(acc));
        json_object_put(list);
    }
    return out;
}
