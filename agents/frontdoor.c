/*
 * frontdoor.c — the Children and Families Hub's front door: every request for support and
 * safeguarding concern the hub receives becomes a queue item with a triage state (open,
 * assigned, decided), the practitioner who holds it, and a decision deadline counted in
 * working days (front_door: in the configuration; docs/workspace.md).
 *
 * The queue is kept in the order a front door works it: immediate risk first, then the level
 * of need asked for, highest first, then newest first. Its records hold no personal data (no
 * child's name or identifier: listing the queue is not a read of every item).
 *
 * Owns: the front_door and fd_by_id databases. Never: moves an item out of decided (an
 * amendment keeps it decided); counts a weekend or a configured bank holiday as a working day.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"
#include "cli.h"
#include "clock.h"

#define FD_RECORD_V 1
#define FD_REC      (1 + 4 + 4 * 8 + 16 + 2 + (SH_ORG_MAX + 1) + 33 + 3 * (ACCOUNT_NAME_MAX + 1))

/* ---- rules ---------------------------------------------------------------------------- */

sh_err ag_fd_rules_load(const y_front_door *y, ag_fd_rules *r, sh_error *err)
{
    memset(r, 0, sizeof *r);
    r->working_days = 1;
    r->end_minute = 17 * 60;
    r->due_soon_ms = 4 * 3600000LL;
    if (!y) return SH_OK;
    long v;
    if (y->working_days) {
        if (cli_number(y->working_days, 0, 10, &v))
            return sh_error_set(err, SH_E_INVAL,
                                "front_door: working_days: want a whole number from 0 to 10");
        r->working_days = (int)v;
    }
    if (y->day_ends) {
        unsigned h, m;
        char tail;
        if (sscanf(y->day_ends, "%2u:%2u%c", &h, &m, &tail) != 2 || h > 23 || m > 59 ||
            strlen(y->day_ends) != 5)
            return sh_error_set(err, SH_E_INVAL, "front_door: day_ends: want HH:MM (24-hour)");
        r->end_minute = (int)(h * 60 + m);
    }
    if (y->due_soon && (sh_duration_parse(y->due_soon, &r->due_soon_ms) || r->due_soon_ms <= 0))
        return sh_error_set(err, SH_E_INVAL,
                            "front_door: due_soon: want a duration such as 4h or 90m");
    if (y->bank_holidays_count > FD_HOLIDAYS_MAX)
        return sh_error_set(err, SH_E_INVAL, "front_door: bank_holidays: at most %d dates",
                            FD_HOLIDAYS_MAX);
    for (unsigned i = 0; i < y->bank_holidays_count; i++) {
        if (sh_date_check(y->bank_holidays[i]))
            return sh_error_set(err, SH_E_BAD_DATE,
                                "front_door: bank_holidays: '%.20s' is not a YYYY-MM-DD date",
                                y->bank_holidays[i]);
        snprintf(r->holidays[r->nholidays++], 11, "%s", y->bank_holidays[i]);
    }
    for (unsigned i = 0; i < y->localities_count; i++)
        for (unsigned j = 0; j < y->localities[i].referrers_count; j++)
            if (sh_org_code_check(y->localities[i].referrers[j]))
                return sh_error_set(err, SH_E_BAD_ORG_CODE,
                                    "front_door: localities: %.32s: '%.12s' is not an "
                                    "organisation code",
                                    y->localities[i].name, y->localities[i].referrers[j]);
    return SH_OK;
}

static int s_working(const ag_fd_rules *r, const struct tm *tm)
{
    if (tm->tm_wday == 0 || tm->tm_wday == 6) return 0;
    char d[40];
    snprintf(d, sizeof d, "%04d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
    for (unsigned i = 0; i < r->nholidays; i++)
        if (strcmp(r->holidays[i], d) == 0) return 0;
    return 1;
}

static int64_t s_deadline(const ag_fd_rules *r, int64_t received_ms)
{
    time_t t = (time_t)(received_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) return received_ms + 86400000LL;
    int minute = tm.tm_hour * 60 + tm.tm_min, need = r->working_days;
    tm.tm_hour = 12; /* noon: day steps never meet a clock change */
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    if (need == 0 && !(s_working(r, &tm) && minute < r->end_minute)) need = 1;
    for (int n = 0, guard = 0; n < need && guard < 400; guard++) {
        tm.tm_mday++;
        tm.tm_isdst = -1;
        if (mktime(&tm) == (time_t)-1) break;
        if (s_working(r, &tm)) n++;
    }
    tm.tm_hour = r->end_minute / 60;
    tm.tm_min = r->end_minute % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t d = mktime(&tm);
    return d == (time_t)-1 ? received_ms + 86400000LL : (int64_t)d * 1000;
}

/* The end of the working day that is working_days working days after the day of arrival
 * (0: the day of arrival itself when it is a working day and not yet over, else the next).
 * The answer depends only on the minute of arrival, so the last one is kept: mktime rereads
 * the time zone's file on every call, and events arrive by the hundred a second. */
int64_t ag_fd_deadline(ag_fd_rules *r, int64_t received_ms)
{
    int64_t minute = (received_ms >= 0 ? received_ms / 60000 : -1) + 1;
    if (minute > 0 && minute == r->memo_minute) return r->memo_deadline;
    r->memo_minute = minute;
    return r->memo_deadline = s_deadline(r, received_ms);
}

/* ---- records -------------------------------------------------------------------------- */

static void s_key(const ag_fd_item *it, uint8_t key[FD_KEY])
{
    key[0] = (uint8_t)(255 - (it->immediate ? 1 : 0));
    key[1] = (uint8_t)(255 - it->level);
    sh_be64_put(key + 2, ~(uint64_t)it->received_ms);
    memcpy(key + 10, it->id, 16);
}

static void s_str(uint8_t **p, const char *s, size_t cap)
{
    memset(*p, 0, cap);
    memcpy(*p, s, strnlen(s, cap - 1));
    *p += cap;
}

static void s_get_str(const uint8_t **p, char *s, size_t cap)
{
    memcpy(s, *p, cap);
    s[cap - 1] = '\0';
    *p += cap;
}

static void s_pack(const ag_fd_item *it, uint8_t b[FD_REC])
{
    uint8_t *p = b;
    *p++ = FD_RECORD_V;
    *p++ = (uint8_t)it->state;
    *p++ = (uint8_t)it->type;
    *p++ = (uint8_t)it->immediate;
    *p++ = (uint8_t)it->level;
    const int64_t times[4] = {it->received_ms, it->deadline_ms, it->assigned_ms, it->decided_ms};
    for (int i = 0; i < 4; i++, p += 8)
        sh_be64_put(p, (uint64_t)times[i]);
    memcpy(p, it->decision, 16);
    p += 16;
    *p++ = (uint8_t)(it->amendments >> 8);
    *p++ = (uint8_t)it->amendments;
    s_str(&p, it->referrer, sizeof it->referrer);
    s_str(&p, it->locality, sizeof it->locality);
    s_str(&p, it->assignee, sizeof it->assignee);
    s_str(&p, it->assigned_by, sizeof it->assigned_by);
    s_str(&p, it->decided_by, sizeof it->decided_by);
}

static int s_unpack(const uint8_t *b, size_t n, const uint8_t key[FD_KEY], ag_fd_item *it)
{
    if (n != FD_REC || b[0] != FD_RECORD_V) return -1;
    const uint8_t *p = b + 1;
    it->state = *p++;
    it->type = *p++;
    it->immediate = *p++;
    it->level = *p++;
    int64_t *times[4] = {&it->received_ms, &it->deadline_ms, &it->assigned_ms, &it->decided_ms};
    for (int i = 0; i < 4; i++, p += 8)
        *times[i] = (int64_t)sh_be64_get(p);
    memcpy(it->decision, p, 16);
    p += 16;
    it->amendments = (unsigned)(p[0] << 8 | p[1]);
    p += 2;
    s_get_str(&p, it->referrer, sizeof it->referrer);
    s_get_str(&p, it->locality, sizeof it->locality);
    s_get_str(&p, it->assignee, sizeof it->assignee);
    s_get_str(&p, it->assigned_by, sizeof it->assigned_by);
    s_get_str(&p, it->decided_by, sizeof it->decided_by);
    memcpy(it->id, key + 10, 16);
    return it->state < FD_OPEN || it->state > FD_DECIDED ? -1 : 0;
}

sh_err ag_fd_put(sh_agent *a, sh_txn *t, const ag_fd_item *it, const uint8_t key[FD_KEY],
                 sh_error *err)
{
    uint8_t b[FD_REC];
    s_pack(it, b);
    return sh_txn_put(t, a->front_door, key, FD_KEY, b, FD_REC, 0, err);
}

int ag_fd_get(sh_agent *a, sh_txn *t, const uint8_t id[16], ag_fd_item *it, uint8_t key[FD_KEY])
{
    sh_buf k = {0}, v = {0};
    sh_error err;
    int found = sh_txn_get(t, a->fd_by_id, id, 16, &k, &err) == SH_OK && k.len == FD_KEY &&
                sh_txn_get(t, a->front_door, k.data, FD_KEY, &v, &err) == SH_OK &&
                s_unpack(v.data, v.len, k.data, it) == 0;
    if (found) memcpy(key, k.data, FD_KEY);
    sh_buf_free(&k);
    sh_buf_free(&v);
    return found;
}

static const char *s_locality(const sh_agent *a, const char *referrer)
{
    const y_front_door *y = a->cfg->front_door;
    for (unsigned i = 0; y && i < y->localities_count; i++)
        for (unsigned j = 0; j < y->localities[i].referrers_count; j++)
            if (strcmp(y->localities[i].referrers[j], referrer) == 0) return y->localities[i].name;
    return "";
}

sh_err ag_fd_arrived(sh_agent *a, sh_txn *t, const sh_envelope *e, const char *peer, int64_t at_ms,
                     sh_error *err)
{
    if (a->cfg->role != ROLE_SOCIAL_CARE) return SH_OK;
    ag_fd_item it = {0};
    if (e->event_type == ET(REQUEST_FOR_SUPPORT) && e->request_for_support)
        it.immediate = e->request_for_support->priority;
    else if (e->event_type == ET(SAFEGUARDING_CONCERN) && e->safeguarding_concern)
        it.immediate = e->safeguarding_concern->immediate_risk;
    else
        return SH_OK;
    memcpy(it.id, e->event_id.data, 16);
    it.state = FD_OPEN;
    it.type = e->event_type;
    it.level = e->level_of_need <= 4 ? (int)e->level_of_need : 0;
    it.received_ms = at_ms;
    it.deadline_ms = ag_fd_deadline(&a->fd, it.received_ms);
    snprintf(it.referrer, sizeof it.referrer, "%s", peer);
    snprintf(it.locality, sizeof it.locality, "%s", s_locality(a, peer));
    uint8_t key[FD_KEY];
    s_key(&it, key);
    sh_err rc = sh_txn_put(t, a->fd_by_id, it.id, 16, key, FD_KEY, SH_PUT_NEW, err);
    if (rc == SH_E_EXISTS) return SH_OK; /* (a redelivery) */
    return rc ? rc : ag_fd_put(a, t, &it, key, err);
}

/* ---- reading the queue ---------------------------------------------------------------- */

static const char *const s_states[] = {"", "open", "assigned", "decided"};

static const char *s_due(const sh_agent *a, const ag_fd_item *it, int64_t now)
{
    if (it->state == FD_DECIDED)
        return it->decided_ms > it->deadline_ms ? "decided_late" : "decided";
    if (now > it->deadline_ms) return "overdue";
    if (it->deadline_ms - now <= a->fd.due_soon_ms) return "due_soon";
    return "on_time";
}

json_object *ag_fd_json(sh_agent *a, const ag_fd_item *it, int64_t now)
{
    char idt[SH_EVENT_ID_STR];
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event_id", json_object_new_string(sh_event_id_format(it->id, idt)));
    json_object_object_add(o, "type", json_object_new_string(sh_event_type_name(it->type)));
    json_object_object_add(o, "state", json_object_new_string(s_states[it->state]));
    json_object_object_add(o, "immediate_risk", json_object_new_boolean(it->immediate));
    json_object_object_add(o, "level_of_need", json_object_new_int(it->level));
    json_object_object_add(o, "referrer", json_object_new_string(it->referrer));
    const char *la = sh_la_name(it->referrer);
    if (la) json_object_object_add(o, "referrer_name", json_object_new_string(la));
    if (it->locality[0])
        json_object_object_add(o, "locality", json_object_new_string(it->locality));
    json_object_object_add(o, "received_at_ms", json_object_new_int64(it->received_ms));
    json_object_object_add(o, "deadline_ms", json_object_new_int64(it->deadline_ms));
    json_object_object_add(o, "due", json_object_new_string(s_due(a, it, now)));
    if (it->assignee[0]) {
        json_object_object_add(o, "assignee", json_object_new_string(it->assignee));
        json_object_object_add(o, "assigned_by", json_object_new_string(it->assigned_by));
        json_object_object_add(o, "assigned_at_ms", json_object_new_int64(it->assigned_ms));
    }
    if (it->state == FD_DECIDED) {
        json_object_object_add(o, "decided_at_ms", json_object_new_int64(it->decided_ms));
        json_object_object_add(o, "decided_by", json_object_new_string(it->decided_by));
        json_object_object_add(o, "decision_event_id",
                               json_object_new_string(sh_event_id_format(it->decision, idt)));
        json_object_object_add(o, "amendments", json_object_new_int((int)it->amendments));
    }
    return o;
}

/* queue: the front door, filtered and paged; counts of the whole queue. Listing is not a read
 * of any child's record: it holds none, and is not audited as one. */
json_object *ag_op_queue(sh_agent *a, json_object *req)
{
    const char *user;
    int role;
    json_object *bad = ag_require_account(
        a, req, ROLES(ACC_PRACTITIONER, ACC_MANAGER, ACC_READ_ONLY), &user, &role);
    if (bad) return bad;
    if (a->cfg->role != ROLE_SOCIAL_CARE)
        return ag_error_json(SH_E_INVAL, "the front-door queue is the Children and Families Hub's");
    const char *state = ag_str(req, "state"), *type = ag_str(req, "type");
    const char *locality = ag_str(req, "locality"), *holder = ag_str(req, "assignee");
    json_object *v;
    int overdue = json_object_object_get_ex(req, "overdue", &v) && json_object_get_boolean(v);
    int want = 0, want_type = 0;
    if (!state || strcmp(state, "open") == 0)
        want = -1; /* open or assigned */
    else if (strcmp(state, "assigned") == 0)
        want = FD_ASSIGNED;
    else if (strcmp(state, "decided") == 0)
        want = FD_DECIDED;
    else if (strcmp(state, "all") != 0)
        return ag_error_json(SH_E_BAD_FIELD, "state: want open, assigned, decided or all");
    if (type && *type &&
        ((want_type = sh_event_type_from_name(type)) != ET(REQUEST_FOR_SUPPORT) &&
         want_type != ET(SAFEGUARDING_CONCERN)))
        return ag_error_json(SH_E_BAD_FIELD,
                             "type: want request_for_support or safeguarding_concern");
    int64_t offset = 0, limit = 25;
    if (json_object_object_get_ex(req, "offset", &v) &&
        (!json_object_is_type(v, json_type_int) || (offset = json_object_get_int64(v)) < 0))
        return ag_error_json(SH_E_BAD_FIELD, "offset: want a whole number, 0 or more");
    if (json_object_object_get_ex(req, "limit", &v) &&
        (!json_object_is_type(v, json_type_int) || (limit = json_object_get_int64(v)) < 1 ||
         limit > 200))
        return ag_error_json(SH_E_BAD_FIELD, "limit: want a whole number from 1 to 200");
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    json_object *out = ag_ok(), *items = json_object_new_array();
    int64_t now = sh_clock_ms(), total = 0;
    int64_t n_open = 0, n_unassigned = 0, n_overdue = 0, n_due_soon = 0, n_mine = 0;
    if (sh_cursor_open(t, a->front_door, &c, &err) == SH_OK) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            ag_fd_item it;
            if (kv.klen != FD_KEY || s_unpack(kv.val, kv.vlen, kv.key, &it)) continue;
            int open = it.state != FD_DECIDED, late = open && now > it.deadline_ms;
            if (open) {
                n_open++;
                n_unassigned += it.state == FD_OPEN;
                n_overdue += late;
                n_due_soon += !late && it.deadline_ms - now <= a->fd.due_soon_ms;
                n_mine += strcmp(it.assignee, user) == 0;
            }
            if ((want == -1 && !open) || (want > 0 && it.state != want)) continue;
            if (overdue && !late) continue;
            if (want_type && it.type != want_type) continue;
            if (locality && *locality && strcmp(it.locality, locality) != 0) continue;
            if (holder && *holder && strcmp(it.assignee, holder) != 0) continue;
            if (total >= offset && total < offset + limit)
                json_object_array_add(items, ag_fd_json(a, &it, now));
            total++;
        }
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
    json_object *counts = json_object_new_object();
    json_object_object_add(counts, "open", json_object_new_int64(n_open));
    json_object_object_add(counts, "unassigned", json_object_new_int64(n_unassigned));
    json_object_object_add(counts, "overdue", json_object_new_int64(n_overdue));
    json_object_object_add(counts, "due_soon", json_object_new_int64(n_due_soon));
    json_object_object_add(counts, "mine", json_object_new_int64(n_mine));
    json_object_object_add(out, "counts", counts);
    json_object_object_add(out, "total", json_object_new_int64(total));
    json_object_object_add(out, "offset", json_object_new_int64(offset));
    json_object_object_add(out, "items", items);
    json_object *loc = json_object_new_array();
    const y_front_door *y = a->cfg->front_door;
    for (unsigned i = 0; y && i < y->localities_count; i++)
        json_object_array_add(loc, json_object_new_string(y->localities[i].name));
    json_object_object_add(out, "localities", loc);
    json_object_object_add(out, "now_ms", json_object_new_int64(now));
    return out;
}

/* assign: a team manager gives an open item to a practitioner (or a manager); reassigning
 * is allowed until it is decided. Audited. */
json_object *ag_op_assign(sh_agent *a, json_object *req)
{
    const char *user, *to = ag_str(req, "to"), *ids = ag_str(req, "event_id");
    int role;
    json_object *bad = ag_require_account(a, req, ROLES(ACC_MANAGER), &user, &role);
    if (bad) return bad;
    uint8_t id[16], key[FD_KEY];
    if (sh_event_id_parse(ids, id)) return ag_error_json(SH_E_BAD_EVENT_ID, "event_id");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    ag_fd_item it;
    char detail[200];
    int to_role = to ? ag_account_role(a, t, to, NULL) : ACC_NONE;
    json_object *refusal = NULL;
    if (to_role != ACC_PRACTITIONER && to_role != ACC_MANAGER) {
        snprintf(detail, sizeof detail, "to: '%.64s' is not a practitioner's or manager's account",
                 to ? to : "");
        refusal = ag_error_json(SH_E_BAD_FIELD, detail);
    } else if (!ag_fd_get(a, t, id, &it, key)) {
        refusal = ag_error_json(SH_E_UNKNOWN_EVENT, "event_id: not an item of the front door");
    } else if (it.state == FD_DECIDED) {
        refusal = ag_error_json(SH_E_TRIAGE_STATE, "already decided: nothing to assign");
    }
    if (refusal) {
        sh_txn_abort(&t);
        return refusal;
    }
    snprintf(detail, sizeof detail, "assigned to %s%s%s", to, it.assignee[0] ? " from " : "",
             it.assignee);
    it.state = FD_ASSIGNED;
    it.assigned_ms = sh_clock_ms();
    snprintf(it.assignee, sizeof it.assignee, "%s", to);
    snprintf(it.assigned_by, sizeof it.assigned_by, "%s", user);
    sh_err rc = ag_fd_put(a, t, &it, key, &err);
    if (!rc)
        rc = ag_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, id, NULL, user, NULL, "triage", NULL,
                      detail);
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        return ag_error_json(err.code, err.detail);
    }
    json_object *out = ag_ok();
    json_object_object_add(out, "item", ag_fd_json(a, &it, sh_clock_ms()));
    return out;
}
