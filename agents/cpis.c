/*
 * cpis.c — health's part of CP-IS (the Child Protection Information Sharing service): the
 * child-protection or looked-after flag of a child, from the plan status events received
 * (and, at the hub that starts the plans, sent),
 * and the access notification the responsible local authority is sent when a flagged child
 * is seen in unscheduled care — an attendance published here, or a clinician's system asking
 * for the child's flag (the FHIR Flag search, docs/fhir.md).
 *
 * Owns: nothing stored. Never: notifies for a child without a current flag.
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"

int ag_flag_for(sh_agent *a, sh_txn *t, const uint8_t ref[32], ag_flag *f)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    int64_t best_cp = -1, best_lac = -1;
    int cp_on = 0, lac_on = 0, pre_birth = 0;
    ag_flag cp = {0}, lac = {0};
    memset(f, 0, sizeof *f);
    if (sh_cursor_open(t, a->by_child, &c, &err)) return 0;
    for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, 32, &kv, &err);
         rc == SH_OK && kv.klen == 48 && memcmp(kv.key, ref, 32) == 0;
         rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        sh_buf b = {0};
        sh_agent_record r;
        sh_envelope *e = NULL;
        if (ag_record_get(a, t, kv.key + 32, &r, &b, &err) == SH_OK &&
            sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK) {
            /* the latest status of each plan kind counts */
            const Sharehub__V1__LaContact *la = NULL;
            ag_flag *into = NULL;
            const char *start = NULL;
            if (e->event_type == ET(CP_PLAN_STATUS) && e->occurred_at_ms > best_cp) {
                best_cp = e->occurred_at_ms;
                cp_on = e->cp_plan_status->status == SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                pre_birth = e->cp_plan_status->pre_birth;
                la = e->cp_plan_status->responsible_la;
                start = e->cp_plan_status->start_date;
                into = &cp;
            } else if (e->event_type == ET(LOOKED_AFTER_STATUS) && e->occurred_at_ms > best_lac) {
                best_lac = e->occurred_at_ms;
                lac_on = e->looked_after_status->status ==
                         SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                la = e->looked_after_status->responsible_la;
                start = e->looked_after_status->start_date;
                into = &lac;
            }
            if (into) {
                memset(into, 0, sizeof *into);
                memcpy(into->event_id, kv.key + 32, 16);
                into->at_ms = e->occurred_at_ms;
                snprintf(into->start, sizeof into->start, "%s", start ? start : "");
                if (la) {
                    snprintf(into->la, sizeof into->la, "%s", la->la_code);
                    snprintf(into->office, sizeof into->office, "%s", la->office_hours_phone);
                    snprintf(into->out_of_hours, sizeof into->out_of_hours, "%s",
                             la->out_of_hours_phone);
                }
            }
        }
        sh_envelope_free(e);
        sh_buf_free(&b);
    }
    sh_cursor_close(&c);
    if (cp_on) {
        *f = cp;
        f->type = pre_birth ? SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_PRE_BIRTH_PLAN
                            : SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_CHILD_PROTECTION_PLAN;
    } else if (lac_on) {
        *f = lac;
        f->type = SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_LOOKED_AFTER;
    }
    return f->type != 0;
}

sh_err ag_cpis_notify(sh_agent *a, const char *nhs, const char *dob, const ag_flag *f,
                      const char *site, int setting, const ProtobufCBinaryData *attendance,
                      ProtobufCBinaryData correlation, uint8_t nid[16], sh_error *err)
{
    sh_envelope n;
    Sharehub__V1__Child c = SHAREHUB__V1__CHILD__INIT;
    Sharehub__V1__LawfulBasis lb = SHAREHUB__V1__LAWFUL_BASIS__INIT;
    Sharehub__V1__AccessNotification an = SHAREHUB__V1__ACCESS_NOTIFICATION__INIT;
    lb.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
    lb.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2H_HEALTH_SOCIAL_CARE;
    lb.dpa_schedule1_paragraph = 2;
    if (sh_envelope_start(&n, nid, ET(ACCESS_NOTIFICATION), a->cfg->org,
                          SHAREHUB__V1__PURPOSE__PURPOSE_SAFEGUARDING, &lb, sh_clock_ms()))
        return sh_error_set(err, SH_E_IO, "access notification: no event id");
    c.nhs_number = (char *)nhs;
    if (dob) c.date_of_birth = (char *)dob;
    c.responsible_la = (char *)f->la;
    n.child = &c;
    n.correlation_id = correlation;
    if (attendance) an.attendance_event_id = *attendance;
    an.site_code = (char *)(site && *site ? site : a->cfg->org);
    an.setting = setting;
    an.accessed_at_ms = n.published_at_ms;
    an.flag = f->type;
    n.body_case = SHAREHUB__V1__ENVELOPE__BODY_ACCESS_NOTIFICATION;
    n.access_notification = &an;
    return ag_publish_env(a, &n, "cp-is", "safeguarding", err);
}

void ag_cpis_attendance(sh_agent *a, const sh_envelope *e, json_object *out)
{
    if (e->event_type != ET(UNSCHEDULED_CARE_ATTENDANCE) || !e->child || !e->child->nhs_number[0])
        return;
    uint8_t ref[SH_BLIND_BYTES], nid[16];
    ag_flag f;
    sh_txn *t = NULL;
    sh_error err;
    if (sh_store_blind(a->store, "nhs", e->child->nhs_number, ref) ||
        sh_txn_begin(a->store, 0, &t, &err))
        return;
    ag_flag_for(a, t, ref, &f);
    sh_txn_abort(&t);
    if (!f.type) return;
    const Sharehub__V1__UnscheduledCareAttendance *u = e->unscheduled_care_attendance;
    char idt[SH_EVENT_ID_STR];
    if (ag_cpis_notify(a, e->child->nhs_number, e->child->date_of_birth, &f, u->site_code,
                       u->setting, &e->event_id, e->correlation_id, nid, &err) == SH_OK)
        json_object_object_add(out, "access_notification",
                               json_object_new_string(sh_event_id_format(nid, idt)));
    else
        ag_log(a, "error", "access notification not queued: %s", err.detail);
}
