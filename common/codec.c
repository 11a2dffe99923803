/*
 * codec.c — Envelope decode, validation and encode.
 *
 * Owns: the validation rules of docs/schema.md. Validation runs in two passes: a generic walk
 * over the protobuf-c descriptors that checks every string (UTF-8, length, no control
 * characters), every enum (a value the schema knows), every repeated field (at most
 * SH_REPEATED_MAX) and refuses unknown fields at any depth — so nothing the schema does not
 * name can ride along into a minimised copy; then the rules of each field and body.
 * Never: echoes a field's value into an error, or returns an Envelope that failed validation.
 */
#include "codec.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ident.h"

/* Short names for the generated enums and body cases. */
#define ET(x)           SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x
#define BODY(x)         SHAREHUB__V1__ENVELOPE__BODY_##x
#define BODY_FIELD_BASE 19 /* body field number = event type + 19 (docs/schema.md) */

/* ---- text and dates ------------------------------------------------------------------- */

sh_err sh_text_check(const char *s)
{
    if (!s) return SH_OK;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n]) {
        if (n >= SH_TEXT_MAX) return SH_E_BAD_TEXT;
        unsigned c = p[n];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return SH_E_BAD_TEXT;
            n++;
            continue;
        }
        unsigned need, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return SH_E_BAD_TEXT; /* continuation byte, overlong lead or > U+10FFFF */
        }
        for (unsigned i = 1; i <= need; i++) {
            unsigned cc = p[n + i];
            if ((cc & 0xc0) != 0x80) return SH_E_BAD_TEXT; /* also stops at the NUL */
            cp = cp << 6 | (cc & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return SH_E_BAD_TEXT; /* overlong, out of range or a surrogate */
        if (cp >= 0x80 && cp < 0xa0) return SH_E_BAD_TEXT; /* C1 controls */
        n += need + 1;
    }
    return SH_OK;
}

sh_err sh_date_check(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return SH_E_BAD_DATE;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return SH_E_BAD_DATE;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1900 || y > 2199 || m < 1 || m > 12 || d < 1) return SH_E_BAD_DATE;
    int max = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) max = 29;
    return d <= max ? SH_OK : SH_E_BAD_DATE;
}

/* ---- generic descriptor walk ---------------------------------------------------------- */

/* The names from the envelope down to the field being checked; written out only for an
 * error message (formatting it for every field was a tenth of the broker's time). */
#define PATH_MAX_DEPTH 12
typedef struct s_path {
    const char *name[PATH_MAX_DEPTH];
    int n;
} s_path;

static const char *s_path_text(const s_path *p, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < p->n && len + 1 < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? "." : "", p->name[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    return out;
}

static sh_err s_walk(const ProtobufCMessage *m, s_path *path, int depth, sh_error *err);

static sh_err s_walk_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           s_path *path, int depth, sh_error *err)
{
    char at[128];
    const char *base = (const char *)m;
    const void *member = base + f->offset;
    size_t count = 1;
    bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *(const uint32_t *)(const void *)(base + f->quantifier_offset);
        if (which != f->id) return SH_OK;
    }
    if (repeated) {
        count = *(const size_t *)(const void *)(base + f->quantifier_offset);
        member = *(const void *const *)member;
        if (count > SH_REPEATED_MAX)
            return sh_error_set(err, SH_E_BAD_FIELD, "%s: more than %d elements",
                                s_path_text(path, at, sizeof at), SH_REPEATED_MAX);
    }
    for (size_t i = 0; i < count; i++) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
            const char *s = ((const char *const *)member)[repeated ? i : 0];
            if (sh_text_check(s) != SH_OK)
                return sh_error_set(err, SH_E_BAD_TEXT, "%s", s_path_text(path, at, sizeof at));
            break;
        }
        case PROTOBUF_C_TYPE_ENUM: {
            int v = ((const int *)member)[repeated ? i : 0];
            if (!protobuf_c_enum_descriptor_get_value(f->descriptor, v))
                return sh_error_set(err, SH_E_BAD_FIELD, "%s: unknown enum value %d",
                                    s_path_text(path, at, sizeof at), v);
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *sub =
                ((const ProtobufCMessage *const *)member)[repeated ? i : 0];
            if (sub) {
                sh_err rc = s_walk(sub, path, depth + 1, err);
                if (rc != SH_OK) return rc;
            }
            break;
        }
        default:
            break;
        }
    }
    return SH_OK;
}

static sh_err s_walk(const ProtobufCMessage *m, s_path *path, int depth, sh_error *err)
{
    char at[128];
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > 8 || path->n >= PATH_MAX_DEPTH)
        return sh_error_set(err, SH_E_BAD_FIELD, "%s: nested too deeply",
                            s_path_text(path, at, sizeof at));
    if (m->n_unknown_fields)
        return sh_error_set(err, SH_E_UNKNOWN_FIELD, "%s%sunknown field number %u",
                            s_path_text(path, at, sizeof at), path->n ? ": " : "",
                            (unsigned)m->unknown_fields[0].tag);
    for (unsigned i = 0; i < d->n_fields; i++) {
        path->name[path->n++] = d->fields[i].name;
        sh_err rc = s_walk_field(m, &d->fields[i], path, depth, err);
        path->n--;
        if (rc != SH_OK) return rc;
    }
    return SH_OK;
}

/* ---- field rules ---------------------------------------------------------------------- */

static bool s_empty(const char *s)
{
    return !s || !s[0];
}

static sh_err s_require_text(const char *s, const char *field, sh_error *err)
{
    return s_empty(s) ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
}

static sh_err s_require_enum(int v, const char *field, sh_error *err)
{
    return v == 0 ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
}

static sh_err s_date(const char *s, bool required, const char *field, sh_error *err)
{
    if (s_empty(s)) return required ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
    return sh_date_check(s) == SH_OK ? SH_OK : sh_error_set(err, SH_E_BAD_DATE, "%s", field);
}

static sh_err s_org(const char *s, bool required, const char *field, sh_error *err)
{
    if (s_empty(s)) return required ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
    return sh_org_code_check(s) == SH_OK ? SH_OK
                                         : sh_error_set(err, SH_E_BAD_ORG_CODE, "%s", field);
}

static sh_err s_la(const char *s, bool required, const char *field, sh_error *err)
{
    if (s_empty(s)) return required ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
    return sh_la_code_check(s) == SH_OK ? SH_OK : sh_error_set(err, SH_E_BAD_LA_CODE, "%s", field);
}

static sh_err s_nhs(const char *s, bool required, const char *field, sh_error *err)
{
    if (s_empty(s)) return required ? sh_error_set(err, SH_E_MISSING_FIELD, "%s", field) : SH_OK;
    return sh_nhs_check(s) == SH_OK ? SH_OK : sh_error_set(err, SH_E_BAD_NHS_NUMBER, "%s", field);
}

static sh_err s_event_ref(ProtobufCBinaryData id, const char *field, sh_error *err)
{
    if (id.len == 0) return sh_error_set(err, SH_E_MISSING_FIELD, "%s", field);
    return sh_event_id_check(id.data, id.len) == SH_OK
               ? SH_OK
               : sh_error_set(err, SH_E_BAD_EVENT_ID, "%s", field);
}

static sh_err s_time(int64_t ms, const char *field, sh_error *err)
{
    if (ms == 0) return sh_error_set(err, SH_E_MISSING_FIELD, "%s", field);
    /* 2000-01-01 .. 2200-01-01: catches seconds-for-milliseconds and garbage */
    if (ms < 946684800000LL || ms > 7258118400000LL)
        return sh_error_set(err, SH_E_BAD_FIELD, "%s: not a time in milliseconds", field);
    return SH_OK;
}

static sh_err s_professional(const Sharehub__V1__Professional *p, const char *field, sh_error *err)
{
    char f[64];
    if (!p) return sh_error_set(err, SH_E_MISSING_FIELD, "%s", field);
    snprintf(f, sizeof f, "%s.org_code", field);
    sh_err rc = s_org(p->org_code, true, f, err);
    if (rc != SH_OK) return rc;
    snprintf(f, sizeof f, "%s.role", field);
    return s_require_text(p->role, f, err);
}

static sh_err s_la_contact(const Sharehub__V1__LaContact *c, const char *field, sh_error *err)
{
    char f[64];
    if (!c) return sh_error_set(err, SH_E_MISSING_FIELD, "%s", field);
    snprintf(f, sizeof f, "%s.la_code", field);
    sh_err rc = s_la(c->la_code, true, f, err);
    if (rc != SH_OK) return rc;
    snprintf(f, sizeof f, "%s.office_hours_phone", field);
    rc = s_require_text(c->office_hours_phone, f, err);
    if (rc != SH_OK) return rc;
    snprintf(f, sizeof f, "%s.out_of_hours_phone", field);
    return s_require_text(c->out_of_hours_phone, f, err);
}

/* start <= end for two valid dates: YYYY-MM-DD compares as text. */
static sh_err s_date_order(const char *start, const char *end, const char *field, sh_error *err)
{
    if (!s_empty(start) && !s_empty(end) && strcmp(start, end) > 0)
        return sh_error_set(err, SH_E_BAD_FIELD, "%s: before the start date", field);
    return SH_OK;
}

static sh_err s_child(const sh_child *c, bool lenient, sh_error *err)
{
    sh_err rc;
    if ((rc = s_nhs(c->nhs_number, false, "child.nhs_number", err)) != SH_OK) return rc;
    if (!s_empty(c->upn) && sh_upn_check(c->upn) != SH_OK)
        return sh_error_set(err, SH_E_BAD_UPN, "child.upn");
    if (!s_empty(c->la_child_id) && sh_la_child_id_check(c->la_child_id) != SH_OK)
        return sh_error_set(err, SH_E_BAD_LA_CHILD_ID, "child.la_child_id");
    if ((rc = s_date(c->date_of_birth, false, "child.date_of_birth", err)) != SH_OK) return rc;
    if ((rc = s_la(c->responsible_la, false, "child.responsible_la", err)) != SH_OK) return rc;
    if (c->unborn) {
        if ((rc = s_nhs(c->mother_nhs_number, true, "child.mother_nhs_number", err)) != SH_OK)
            return rc;
        return s_date(c->expected_due_date, false, "child.expected_due_date", err);
    }
    if (!s_empty(c->mother_nhs_number) || !s_empty(c->expected_due_date))
        return sh_error_set(err, SH_E_BAD_FIELD,
                            "child.mother_nhs_number: only for an unborn child");
    if (!lenient && s_empty(c->nhs_number) && s_empty(c->upn) && s_empty(c->la_child_id))
        return sh_error_set(err, SH_E_MISSING_FIELD, "child: one of nhs_number, upn, la_child_id");
    return SH_OK;
}

static sh_err s_body(const sh_envelope *e, sh_error *err)
{
    sh_err rc = SH_OK;
    switch (e->body_case) {
    case BODY(REQUEST_FOR_SUPPORT): {
        const Sharehub__V1__RequestForSupport *b = e->request_for_support;
        if ((rc = s_professional(b->referrer, "request_for_support.referrer", err))) return rc;
        if (b->n_concerns == 0)
            return sh_error_set(err, SH_E_MISSING_FIELD, "request_for_support.concerns");
        for (size_t i = 0; i < b->n_concerns; i++)
            if ((rc = s_require_enum(b->concerns[i]->category,
                                     "request_for_support.concerns.category", err)))
                return rc;
        return SH_OK;
    }
    case BODY(SAFEGUARDING_CONCERN): {
        const Sharehub__V1__SafeguardingConcern *b = e->safeguarding_concern;
        if ((rc = s_require_enum(b->category, "safeguarding_concern.category", err))) return rc;
        if ((rc = s_require_text(b->narrative, "safeguarding_concern.narrative", err))) return rc;
        return s_professional(b->reported_by, "safeguarding_concern.reported_by", err);
    }
    case BODY(HUB_DECISION): {
        const Sharehub__V1__HubDecision *b = e->hub_decision;
        if ((rc = s_event_ref(b->referral_event_id, "hub_decision.referral_event_id", err)))
            return rc;
        if (b->level_of_need < 1 || b->level_of_need > 4)
            return sh_error_set(err, SH_E_BAD_FIELD, "hub_decision.level_of_need: want 1-4");
        if (b->level_of_need != e->level_of_need)
            return sh_error_set(err, SH_E_BAD_FIELD,
                                "level_of_need: differs from hub_decision.level_of_need");
        if ((rc = s_require_enum(b->outcome, "hub_decision.outcome", err))) return rc;
        if ((rc = s_require_text(b->rationale, "hub_decision.rationale", err))) return rc;
        if ((rc = s_time(b->decided_at_ms, "hub_decision.decided_at_ms", err))) return rc;
        /* an amendment names the decision it changes and why; neither alone */
        if (b->amends_event_id.len &&
            (rc = s_event_ref(b->amends_event_id, "hub_decision.amends_event_id", err)))
            return rc;
        if (b->amends_event_id.len && s_empty(b->amendment_reason))
            return sh_error_set(err, SH_E_MISSING_FIELD,
                                "hub_decision.amendment_reason: an amendment says why");
        if (!b->amends_event_id.len && !s_empty(b->amendment_reason))
            return sh_error_set(err, SH_E_BAD_FIELD,
                                "hub_decision.amendment_reason: without amends_event_id");
        return s_professional(b->decided_by, "hub_decision.decided_by", err);
    }
    case BODY(CP_PLAN_STATUS): {
        const Sharehub__V1__CpPlanStatus *b = e->cp_plan_status;
        if ((rc = s_require_enum(b->status, "cp_plan_status.status", err))) return rc;
        if ((rc = s_require_enum(b->category, "cp_plan_status.category", err))) return rc;
        if ((rc = s_date(b->start_date, true, "cp_plan_status.start_date", err))) return rc;
        bool ended = b->status == SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_ENDED;
        if ((rc = s_date(b->end_date, ended, "cp_plan_status.end_date", err))) return rc;
        if ((rc = s_date_order(b->start_date, b->end_date, "cp_plan_status.end_date", err)))
            return rc;
        return s_la_contact(b->responsible_la, "cp_plan_status.responsible_la", err);
    }
    case BODY(LOOKED_AFTER_STATUS): {
        const Sharehub__V1__LookedAfterStatus *b = e->looked_after_status;
        if ((rc = s_require_enum(b->status, "looked_after_status.status", err))) return rc;
        if ((rc = s_require_enum(b->legal_status, "looked_after_status.legal_status", err)))
            return rc;
        if ((rc = s_date(b->start_date, true, "looked_after_status.start_date", err))) return rc;
        bool ended = b->status == SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_ENDED;
        if ((rc = s_date(b->end_date, ended, "looked_after_status.end_date", err))) return rc;
        if ((rc = s_date_order(b->start_date, b->end_date, "looked_after_status.end_date", err)))
            return rc;
        return s_la_contact(b->responsible_la, "looked_after_status.responsible_la", err);
    }
    case BODY(UNSCHEDULED_CARE_ATTENDANCE): {
        const Sharehub__V1__UnscheduledCareAttendance *b = e->unscheduled_care_attendance;
        if ((rc = s_org(b->site_code, true, "unscheduled_care_attendance.site_code", err)))
            return rc;
        if ((rc = s_require_enum(b->setting, "unscheduled_care_attendance.setting", err)))
            return rc;
        return s_time(b->arrived_at_ms, "unscheduled_care_attendance.arrived_at_ms", err);
    }
    case BODY(ACCESS_NOTIFICATION): {
        const Sharehub__V1__AccessNotification *b = e->access_notification;
        /* absent when the access was a flag lookup rather than an attendance */
        if (b->attendance_event_id.len &&
            (rc = s_event_ref(b->attendance_event_id, "access_notification.attendance_event_id",
                              err)))
            return rc;
        if ((rc = s_org(b->site_code, true, "access_notification.site_code", err))) return rc;
        if ((rc = s_require_enum(b->setting, "access_notification.setting", err))) return rc;
        if ((rc = s_require_enum(b->flag, "access_notification.flag", err))) return rc;
        return s_time(b->accessed_at_ms, "access_notification.accessed_at_ms", err);
    }
    case BODY(EXCLUSION): {
        const Sharehub__V1__Exclusion *b = e->exclusion;
        if ((rc = s_require_enum(b->kind, "exclusion.kind", err))) return rc;
        if ((rc = s_org(b->school_code, true, "exclusion.school_code", err))) return rc;
        if ((rc = s_date(b->start_date, true, "exclusion.start_date", err))) return rc;
        if ((rc = s_require_enum(b->reason, "exclusion.reason", err))) return rc;
        bool suspension = b->kind == SHAREHUB__V1__EXCLUSION_KIND__EXCLUSION_KIND_SUSPENSION;
        if (suspension && (b->sessions < 1 || b->sessions > 90))
            return sh_error_set(err, SH_E_BAD_FIELD, "exclusion.sessions: want 1-90");
        if (!suspension && b->sessions != 0)
            return sh_error_set(err, SH_E_BAD_FIELD, "exclusion.sessions: only for a suspension");
        return SH_OK;
    }
    case BODY(CHILD_MISSING_EDUCATION): {
        const Sharehub__V1__ChildMissingEducation *b = e->child_missing_education;
        if ((rc = s_require_enum(b->reason, "child_missing_education.reason", err))) return rc;
        if ((rc = s_org(b->last_known_school, false, "child_missing_education.last_known_school",
                        err)))
            return rc;
        return s_date(b->missing_since, true, "child_missing_education.missing_since", err);
    }
    case BODY(ATTENDANCE_CONCERN): {
        const Sharehub__V1__AttendanceConcern *b = e->attendance_concern;
        if ((rc = s_date(b->period_start, true, "attendance_concern.period_start", err))) return rc;
        if ((rc = s_date(b->period_end, true, "attendance_concern.period_end", err))) return rc;
        if ((rc = s_date_order(b->period_start, b->period_end, "attendance_concern.period_end",
                               err)))
            return rc;
        if (b->attendance_permille > 1000)
            return sh_error_set(err, SH_E_BAD_FIELD,
                                "attendance_concern.attendance_permille: want 0-1000");
        return SH_OK;
    }
    case BODY(EHC_PLAN_STATUS): {
        const Sharehub__V1__EhcPlanStatus *b = e->ehc_plan_status;
        if ((rc = s_require_enum(b->status, "ehc_plan_status.status", err))) return rc;
        if ((rc = s_org(b->named_setting, false, "ehc_plan_status.named_setting", err))) return rc;
        return s_date(b->date, true, "ehc_plan_status.date", err);
    }
    case BODY(CONSENT_CHANGE): {
        const Sharehub__V1__Consent *b = e->consent_change;
        if ((rc = s_require_enum(b->action, "consent_change.action", err))) return rc;
        if ((rc = s_require_enum(b->scope, "consent_change.scope", err))) return rc;
        if ((rc = s_require_enum(b->given_by, "consent_change.given_by", err))) return rc;
        return s_date(b->recorded_on, true, "consent_change.recorded_on", err);
    }
    case BODY(DELIVERY_RECEIPT): {
        const Sharehub__V1__DeliveryReceipt *b = e->delivery_receipt;
        if ((rc = s_event_ref(b->for_event_id, "delivery_receipt.for_event_id", err))) return rc;
        for (size_t i = 0; i < b->n_more_event_ids; i++)
            if ((rc = s_event_ref(b->more_event_ids[i], "delivery_receipt.more_event_ids", err)))
                return rc;
        if ((rc = s_org(b->recipient_org, true, "delivery_receipt.recipient_org", err))) return rc;
        if ((rc = s_require_enum(b->status, "delivery_receipt.status", err))) return rc;
        return s_time(b->at_ms, "delivery_receipt.at_ms", err);
    }
    default:
        return sh_error_set(err, SH_E_MISSING_FIELD, "body");
    }
}

/* lenient: a minimised copy, where withheld fields are absent (see codec.h). */
static sh_err s_validate(const sh_envelope *e, bool lenient, sh_error *err)
{
    sh_error_clear(err);
    if (!e) return sh_error_set(err, SH_E_INVAL, "no envelope");
    s_path path = {.n = 0};
    sh_err rc = s_walk(&e->base, &path, 0, err);
    if (rc != SH_OK) return rc;

    if ((rc = s_event_ref(e->event_id, "event_id", err))) return rc;
    if (e->schema_version != SH_SCHEMA_VERSION)
        return sh_error_set(err, SH_E_SCHEMA_VERSION, "schema_version %u; this build speaks %d",
                            (unsigned)e->schema_version, SH_SCHEMA_VERSION);
    if ((rc = s_require_enum(e->event_type, "event_type", err))) return rc;
    if (e->body_case == BODY(_NOT_SET)) return sh_error_set(err, SH_E_MISSING_FIELD, "body");
    if ((int)e->body_case != (int)e->event_type + BODY_FIELD_BASE)
        return sh_error_set(err, SH_E_BODY_MISMATCH, "event_type %s with body field %d",
                            sh_event_type_name(e->event_type), (int)e->body_case);
    if ((rc = s_org(e->source_org, true, "source_org", err))) return rc;
    if ((rc = s_time(e->occurred_at_ms, "occurred_at_ms", err))) return rc;
    if ((rc = s_time(e->published_at_ms, "published_at_ms", err))) return rc;
    if (e->occurred_at_ms > e->published_at_ms + SH_CLOCK_SKEW_MS)
        return sh_error_set(err, SH_E_BAD_FIELD, "occurred_at_ms: after published_at_ms");

    bool receipt = e->event_type == ET(DELIVERY_RECEIPT);
    if (receipt && e->child)
        return sh_error_set(err, SH_E_BAD_FIELD, "child: a delivery receipt carries no child");
    if (!receipt && !e->child && !lenient) return sh_error_set(err, SH_E_MISSING_FIELD, "child");
    if (e->child && (rc = s_child(e->child, lenient, err))) return rc;

    if (e->level_of_need > 4) return sh_error_set(err, SH_E_BAD_FIELD, "level_of_need: want 0-4");
    if ((rc = s_require_enum(e->purpose, "purpose", err))) return rc;
    if (!e->lawful_basis) return sh_error_set(err, SH_E_MISSING_FIELD, "lawful_basis");
    if ((rc = s_require_enum(e->lawful_basis->article6, "lawful_basis.article6", err))) return rc;
    bool needs_para = e->lawful_basis->article9 ==
                      SHAREHUB__V1__ARTICLE9__ARTICLE9_2G_SUBSTANTIAL_PUBLIC_INTEREST;
    if (needs_para && e->lawful_basis->dpa_schedule1_paragraph == 0)
        return sh_error_set(err, SH_E_MISSING_FIELD,
                            "lawful_basis.dpa_schedule1_paragraph: needed with Article 9(2)(g)");
    if (e->lawful_basis->dpa_schedule1_paragraph > 37)
        return sh_error_set(err, SH_E_BAD_FIELD, "lawful_basis.dpa_schedule1_paragraph: want 1-37");
    if ((rc = s_require_enum(e->consent, "consent", err))) return rc;
    /* level 1 is universal need: no risk of significant harm to share without consent for */
    if (e->consent == SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_SOUGHT_RISK_OF_HARM &&
        e->level_of_need == 1)
        return sh_error_set(err, SH_E_BAD_FIELD,
                            "consent: not_sought_risk_of_harm contradicts level_of_need 1 "
                            "(universal need: no risk of significant harm)");
    if (e->correlation_id.len != 0 && e->correlation_id.len != 16)
        return sh_error_set(err, SH_E_BAD_FIELD, "correlation_id: want 16 bytes");
    if (e->harm_judgement) {
        const Sharehub__V1__HarmJudgement *h = e->harm_judgement;
        if ((rc = s_professional(h->made_by, "harm_judgement.made_by", err)) ||
            (rc = s_require_text(h->made_by->name, "harm_judgement.made_by.name", err)) ||
            (rc = s_time(h->made_at_ms, "harm_judgement.made_at_ms", err)))
            return rc;
        if (h->made_at_ms > e->published_at_ms + SH_CLOCK_SKEW_MS)
            return sh_error_set(err, SH_E_BAD_FIELD,
                                "harm_judgement.made_at_ms: after "
                                "published_at_ms");
        if (e->level_of_need == 1)
            return sh_error_set(err, SH_E_BAD_FIELD,
                                "harm_judgement contradicts level_of_need 1 (universal need: no "
                                "risk of significant harm)");
    }
    return lenient ? SH_OK : s_body(e, err);
}

sh_err sh_envelope_validate(const sh_envelope *e, sh_error *err)
{
    return s_validate(e, false, err);
}

/* ---- decode / encode ------------------------------------------------------------------ */

static sh_err s_decode(const uint8_t *buf, size_t len, bool lenient, sh_envelope **out,
                       sh_error *err)
{
    *out = NULL;
    sh_error_clear(err);
    if (len > SH_ENVELOPE_MAX)
        return sh_error_set(err, SH_E_TOO_LARGE, "%zu bytes; limit %d", len, SH_ENVELOPE_MAX);
    if (!buf && len) return sh_error_set(err, SH_E_INVAL, "no buffer");
    sh_envelope *e = sharehub__v1__envelope__unpack(NULL, len, buf);
    if (!e) return sh_error_set(err, SH_E_MALFORMED, "envelope (%zu bytes)", len);
    sh_err rc = s_validate(e, lenient, err);
    if (rc != SH_OK) {
        sharehub__v1__envelope__free_unpacked(e, NULL);
        return rc;
    }
    *out = e;
    return SH_OK;
}

sh_err sh_envelope_decode(const uint8_t *buf, size_t len, sh_envelope **out, sh_error *err)
{
    return s_decode(buf, len, false, out, err);
}

sh_err sh_envelope_decode_minimised(const uint8_t *buf, size_t len, sh_envelope **out,
                                    sh_error *err)
{
    return s_decode(buf, len, true, out, err);
}

sh_err sh_envelope_encode(const sh_envelope *e, uint8_t **out, size_t *len, sh_error *err)
{
    *out = NULL;
    *len = 0;
    sh_err rc = sh_envelope_validate(e, err);
    if (rc != SH_OK) return rc;
    size_t n = sharehub__v1__envelope__get_packed_size(e);
    if (n > SH_ENVELOPE_MAX)
        return sh_error_set(err, SH_E_TOO_LARGE, "%zu bytes; limit %d", n, SH_ENVELOPE_MAX);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return sh_error_set(err, SH_E_NOMEM, "%zu bytes", n);
    if (sharehub__v1__envelope__pack(e, buf) != n) {
        free(buf);
        return sh_error_set(err, SH_E_INTERNAL, "packed size changed");
    }
    *out = buf;
    *len = n;
    return SH_OK;
}

void sh_envelope_free(sh_envelope *e)
{
    if (e) sharehub__v1__envelope__free_unpacked(e, NULL);
}

/* A protobuf varint at *p (before end); -1 when it runs past end or over 10 bytes. */
static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return 0;
    }
    return -1;
}

int sh_envelope_peek_id(const uint8_t *buf, size_t len, uint8_t id[16])
{
    const uint8_t *p = buf, *end = buf + (buf ? len : 0);
    while (p < end) {
        uint64_t key, n;
        if (s_varint(&p, end, &key)) return 0;
        switch (key & 7) {
        case 0: /* varint */
            if (s_varint(&p, end, &n)) return 0;
            break;
        case 1: /* 64-bit */
            if ((size_t)(end - p) < 8) return 0;
            p += 8;
            break;
        case 2: /* length-delimited */
            if (s_varint(&p, end, &n) || n > (uint64_t)(end - p)) return 0;
            if (key >> 3 == 1 && n == 16) {
                memcpy(id, p, 16);
                return 1;
            }
            p += n;
            break;
        case 5: /* 32-bit */
            if ((size_t)(end - p) < 4) return 0;
            p += 4;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

sh_err sh_envelope_start(sh_envelope *e, uint8_t id[16], int type, const char *source, int purpose,
                         Sharehub__V1__LawfulBasis *lb, int64_t now_ms)
{
    sharehub__v1__envelope__init(e);
    if (sh_event_id_new(id) != SH_OK) return SH_E_IO;
    e->event_id = (ProtobufCBinaryData){16, id};
    e->schema_version = SH_SCHEMA_VERSION;
    e->event_type = type;
    e->source_org = (char *)source;
    e->occurred_at_ms = e->published_at_ms = now_ms;
    e->purpose = purpose;
    e->lawful_basis = lb;
    e->consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_REQUIRED;
    return SH_OK;
}

sh_err sh_receipt_start(sh_receipt *r, const char *source, const uint8_t (*ids)[16], size_t n,
                        const char *recipient, int status, sh_err reason, int64_t now_ms)
{
    if (n < 1 || n > 1 + SH_REPEATED_MAX) return SH_E_INVAL;
    sharehub__v1__lawful_basis__init(&r->basis);
    sharehub__v1__delivery_receipt__init(&r->body);
    r->basis.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
    if (sh_envelope_start(&r->e, r->id, SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_DELIVERY_RECEIPT,
                          source, SHAREHUB__V1__PURPOSE__PURPOSE_SERVICE_OPERATION, &r->basis,
                          now_ms))
        return SH_E_IO;
    for (size_t i = 1; i < n; i++)
        r->more[i - 1] = (ProtobufCBinaryData){16, (uint8_t *)ids[i]};
    r->body.for_event_id = (ProtobufCBinaryData){16, (uint8_t *)ids[0]};
    r->body.n_more_event_ids = n - 1;
    r->body.more_event_ids = n > 1 ? r->more : NULL;
    r->body.recipient_org = (char *)recipient;
    r->body.status = status;
    r->body.reason_code = (uint32_t)reason;
    r->body.at_ms = now_ms;
    r->e.body_case = SHAREHUB__V1__ENVELOPE__BODY_DELIVERY_RECEIPT;
    r->e.delivery_receipt = &r->body;
    return SH_OK;
}
