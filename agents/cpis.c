/*
 * cpis.c — health's part of CP-IS (the Child Protection Information Sharing service): the
 * child-protection or looked-after flag of a child, from the plan status events received,
 * and the access notification an unscheduled-care attendance of a flagged child sends to
 * the responsible local authority.
 *
 * Owns: nothing stored. Never: notifies for a child without a current flag.
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"

int ag_flag_for(sh_agent *a, sh_txn *t, const uint8_t ref[32], int *flag, char *la, size_t lacap)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    int64_t best_cp = -1, best_lac = -1;
    int cp_on = 0, lac_on = 0, pre_birth = 0;
    *flag = 0;
    if (sh_cursor_open(t, a->by_child, &c, &err)) return 0;
    for (sh_err rc = sh_cursor_get(c, SH_CURSOR_SEEK, ref, 32, &kv, &err);
         rc == SH_OK && kv.klen == 48 && memcmp(kv.key, ref, 32) == 0;
         rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        sh_buf b = {0};
        sh_agent_record r;
        sh_envelope *e = NULL;
        if (sh_txn_get(t, a->events, kv.key + 32, 16, &b, &err) == SH_OK &&
            sh_agent_record_parse(b.data, b.len, &r) == 0 && r.direction == SH_DIR_RECEIVED &&
            sh_envelope_decode_minimised(r.env, r.env_len, &e, &err) == SH_OK) {
            /* the latest status of each plan kind counts */
            if (e->event_type == ET(CP_PLAN_STATUS) && e->occurred_at_ms > best_cp) {
                best_cp = e->occurred_at_ms;
                cp_on = e->cp_plan_status->status == SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                pre_birth = e->cp_plan_status->pre_birth;
                if (e->cp_plan_status->responsible_la)
                    snprintf(la, lacap, "%s", e->cp_plan_status->responsible_la->la_code);
            } else if (e->event_type == ET(LOOKED_AFTER_STATUS) && e->occurred_at_ms > best_lac) {
                best_lac = e->occurred_at_ms;
                lac_on = e->looked_after_status->status ==
                         SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
                if (e->looked_after_status->responsible_la && !cp_on)
                    snprintf(la, lacap, "%s", e->looked_after_status->responsible_la->la_code);
            }
        }
        sh_envelope_free(e);
        sh_buf_free(&b);
    }
    sh_cursor_close(&c);
    if (cp_on)
        *flag = pre_birth ? SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_PRE_BIRTH_PLAN
                          : SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_CHILD_PROTECTION_PLAN;
    else if (lac_on)
        *flag = SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_LOOKED_AFTER;
    return *flag != 0;
}

void ag_cpis_attendance(sh_agent *a, const sh_envelope *e, json_object *out)
{
    if (e->event_type != ET(UNSCHEDULED_CARE_ATTENDANCE) || !e->child || !e->child->nhs_number[0])
        return;
    uint8_t ref[SH_BLIND_BYTES];
    int flag = 0;
    char la[8] = "";
    sh_txn *t = NULL;
    sh_error err;
    if (sh_store_blind(a->store, "nhs", e->child->nhs_number, ref) ||
        sh_txn_begin(a->store, 0, &t, &err))
        return;
    ag_flag_for(a, t, ref, &flag, la, sizeof la);
    sh_txn_abort(&t);
    if (!flag) return;
    sh_envelope n;
    Sharehub__V1__Child c = SHAREHUB__V1__CHILD__INIT;
    Sharehub__V1__LawfulBasis lb = SHAREHUB__V1__LAWFUL_BASIS__INIT;
    Sharehub__V1__AccessNotification an = SHAREHUB__V1__ACCESS_NOTIFICATION__INIT;
    uint8_t nid[16];
    lb.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
    lb.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2H_HEALTH_SOCIAL_CARE;
    lb.dpa_schedule1_paragraph = 2;
    if (sh_envelope_start(&n, nid, ET(ACCESS_NOTIFICATION), a->cfg->org,
                          SHAREHUB__V1__PURPOSE__PURPOSE_SAFEGUARDING, &lb, sh_clock_ms())) {
        ag_log(a, "error", "access notification not queued: no event id");
        return;
    }
    c.nhs_number = e->child->nhs_number;
    c.date_of_birth = e->child->date_of_birth;
    c.responsible_la = la;
    n.child = &c;
    n.correlation_id = e->correlation_id;
    an.attendance_event_id = e->event_id;
    an.site_code = e->unscheduled_care_attendance->site_code;
    an.setting = e->unscheduled_care_attendance->setting;
    an.accessed_at_ms = n.published_at_ms;
    an.flag = flag;
    n.body_case = SHAREHUB__V1__ENVELOPE__BODY_ACCESS_NOTIFICATION;
    n.access_notification = &an;
    char idt[SH_EVENT_ID_STR];
    if (ag_publish_env(a, &n, "cp-is", "safeguarding", &err) == SH_OK)
        json_object_object_add(out, "access_notification",
                               json_object_new_string(sh_event_id_format(nid, idt)));
    else
        ag_log(a, "error", "access notification not queued: %s", err.detail);
}
