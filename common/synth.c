/*
 * synth.c — synthetic children and events of every type.
 *
 * Owns: the shapes of valid synthetic events. Never: real-looking names or identifiers; all
 * family names start "ZZTEST", all NHS numbers are in the never-issued 999 range.
 */
#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"

void sh_synth_child_at(uint64_t index, const char *la, sh_synth_child *c)
{
    index %= SH_SYNTH_INDEXES;
    memset(c, 0, sizeof *c);
    sh_nhs_synthetic_at(index, c->nhs_number);
    sh_upn_synthetic_at(index, la, c->upn);
    /* the LA id: a permutation of index below 10^6 (7919 is prime to 10^6) */
    snprintf(c->la_child_id, sizeof c->la_child_id, "LA%.3s-%06u", la,
             (unsigned)((index * 7919 + 17) % 1000000));
    uint64_t h = index; /* names and birth date: any values will do, the same for an index */
    uint64_t r = sh_rng_next(&h);
    snprintf(c->given_name, sizeof c->given_name, "Child%03u", (unsigned)(r / 1000000 % 1000));
    snprintf(c->family_name, sizeof c->family_name, "ZZTEST-%04u",
             (unsigned)(r / 1000000000 % 10000));
    snprintf(c->date_of_birth, sizeof c->date_of_birth, "%04u-%02u-%02u", 2008 + (unsigned)(r % 17),
             1 + (unsigned)(r / 17 % 12), 1 + (unsigned)(r / 204 % 28));
    snprintf(c->responsible_la, sizeof c->responsible_la, "%.3s", la);
}

void sh_synth_child_make(uint64_t *rng, const char *la, sh_synth_child *c)
{
    sh_synth_child_at(sh_rng_next(rng) % SH_SYNTH_INDEXES, la, c);
}

sh_err sh_synth_event(uint64_t *rng, int type, const sh_synth_child *c, const char *source_org,
                      const uint8_t *correlation_id, const uint8_t *ref_event_id,
                      size_t narrative_bytes, uint8_t **out, size_t *len, sh_error *err)
{
    *out = NULL;
    *len = 0;
    if (type < 1 || type > 13) return sh_error_set(err, SH_E_INVAL, "event type %d", type);

    uint8_t id[16], ref[16];
    if (sh_event_id_new(id) != SH_OK || sh_event_id_new(ref) != SH_OK)
        return sh_error_set(err, SH_E_IO, "no randomness for an event id");
    if (ref_event_id) memcpy(ref, ref_event_id, 16);

    /* The main free text: a synthetic sentence, padded to the size asked for. */
    static const char sentence[] = "Synthetic narrative for testing; describes no real person. ";
    size_t nlen = narrative_bytes > sizeof sentence ? narrative_bytes : sizeof sentence - 1;
    char *narrative = malloc(nlen + 1);
    if (!narrative) return sh_error_set(err, SH_E_NOMEM, "narrative");
    for (size_t i = 0; i < nlen; i++)
        narrative[i] = sentence[i % (sizeof sentence - 1)];
    narrative[nlen] = '\0';

    int64_t now = sh_clock_ms();
    Sharehub__V1__Envelope e = SHAREHUB__V1__ENVELOPE__INIT;
    Sharehub__V1__Child child = SHAREHUB__V1__CHILD__INIT;
    Sharehub__V1__LawfulBasis basis = SHAREHUB__V1__LAWFUL_BASIS__INIT;
    Sharehub__V1__Professional pro = SHAREHUB__V1__PROFESSIONAL__INIT;
    Sharehub__V1__LaContact lac = SHAREHUB__V1__LA_CONTACT__INIT;
    Sharehub__V1__Concern concern = SHAREHUB__V1__CONCERN__INIT;
    Sharehub__V1__Concern *concerns[1] = {&concern};
    Sharehub__V1__RequestForSupport rfs = SHAREHUB__V1__REQUEST_FOR_SUPPORT__INIT;
    Sharehub__V1__SafeguardingConcern sgc = SHAREHUB__V1__SAFEGUARDING_CONCERN__INIT;
    Sharehub__V1__HubDecision hd = SHAREHUB__V1__HUB_DECISION__INIT;
    Sharehub__V1__CpPlanStatus cp = SHAREHUB__V1__CP_PLAN_STATUS__INIT;
    Sharehub__V1__LookedAfterStatus lac_status = SHAREHUB__V1__LOOKED_AFTER_STATUS__INIT;
    Sharehub__V1__UnscheduledCareAttendance uca = SHAREHUB__V1__UNSCHEDULED_CARE_ATTENDANCE__INIT;
    Sharehub__V1__AccessNotification an = SHAREHUB__V1__ACCESS_NOTIFICATION__INIT;
    Sharehub__V1__Exclusion ex = SHAREHUB__V1__EXCLUSION__INIT;
    Sharehub__V1__ChildMissingEducation cme = SHAREHUB__V1__CHILD_MISSING_EDUCATION__INIT;
    Sharehub__V1__AttendanceConcern att = SHAREHUB__V1__ATTENDANCE_CONCERN__INIT;
    Sharehub__V1__EhcPlanStatus ehc = SHAREHUB__V1__EHC_PLAN_STATUS__INIT;
    Sharehub__V1__Consent con = SHAREHUB__V1__CONSENT__INIT;
    Sharehub__V1__DeliveryReceipt rcpt = SHAREHUB__V1__DELIVERY_RECEIPT__INIT;

    e.event_id = (ProtobufCBinaryData){16, id};
    e.schema_version = SH_SCHEMA_VERSION;
    e.event_type = (Sharehub__V1__EventType)type;
    e.source_org = (char *)source_org;
    e.occurred_at_ms = now - 60000;
    e.published_at_ms = now;
    if (correlation_id) e.correlation_id = (ProtobufCBinaryData){16, (uint8_t *)correlation_id};
    child.nhs_number = (char *)c->nhs_number;
    child.upn = (char *)c->upn;
    child.la_child_id = (char *)c->la_child_id;
    child.given_name = (char *)c->given_name;
    child.family_name = (char *)c->family_name;
    child.date_of_birth = (char *)c->date_of_birth;
    child.responsible_la = (char *)c->responsible_la;
    e.child = &child;
    e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_SAFEGUARDING;
    basis.article6 = SHAREHUB__V1__ARTICLE6__ARTICLE6_E_PUBLIC_TASK;
    basis.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2G_SUBSTANTIAL_PUBLIC_INTEREST;
    basis.dpa_schedule1_paragraph = 18;
    e.lawful_basis = &basis;
    e.consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN;
    pro.org_code = (char *)source_org;
    pro.role = "Designated Safeguarding Lead";
    pro.name = "ZZTEST Practitioner";
    pro.phone = "01632 960000"; /* Ofcom drama range */
    lac.la_code = (char *)c->responsible_la;
    lac.office_hours_phone = "01632 960001";
    lac.out_of_hours_phone = "01632 960002";

    switch (type) {
    case 1:
        concern.category = SHAREHUB__V1__CONCERN_CATEGORY__CONCERN_CATEGORY_NEGLECT;
        concern.about = "the child";
        concern.examples = narrative;
        rfs.referrer = &pro;
        rfs.household = "Synthetic household";
        rfs.n_concerns = 1;
        rfs.concerns = concerns;
        rfs.support_given = "Early help plan for six months";
        rfs.going_well = "Attends school";
        rfs.must_change = "Home conditions";
        e.level_of_need = 3;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_REQUEST_FOR_SUPPORT;
        e.request_for_support = &rfs;
        break;
    case 2:
        sgc.category = SHAREHUB__V1__CONCERN_CATEGORY__CONCERN_CATEGORY_PHYSICAL_ABUSE;
        sgc.narrative = narrative;
        sgc.reported_by = &pro;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_SAFEGUARDING_CONCERN;
        e.safeguarding_concern = &sgc;
        break;
    case 3:
        hd.referral_event_id = (ProtobufCBinaryData){16, ref};
        hd.level_of_need = 3;
        hd.outcome = SHAREHUB__V1__HUB_OUTCOME__HUB_OUTCOME_FAMILY_SOLUTIONS;
        hd.rationale = narrative;
        hd.decided_at_ms = now;
        pro.role = "Hub practitioner";
        hd.decided_by = &pro;
        e.level_of_need = 3;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_HUB_DECISION;
        e.hub_decision = &hd;
        break;
    case 4:
        cp.status = SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
        cp.category = SHAREHUB__V1__CP_CATEGORY__CP_CATEGORY_NEGLECT;
        cp.start_date = "2026-01-15";
        cp.responsible_la = &lac;
        e.level_of_need = 4;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_CP_PLAN_STATUS;
        e.cp_plan_status = &cp;
        break;
    case 5:
        lac_status.status = SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_STARTED;
        lac_status.legal_status = SHAREHUB__V1__LEGAL_STATUS__LEGAL_STATUS_SECTION_20;
        lac_status.start_date = "2026-02-01";
        lac_status.responsible_la = &lac;
        e.level_of_need = 4;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_LOOKED_AFTER_STATUS;
        e.looked_after_status = &lac_status;
        break;
    case 6:
        uca.site_code = "RH802";
        uca.setting = SHAREHUB__V1__CARE_SETTING__CARE_SETTING_EMERGENCY_DEPARTMENT;
        uca.arrived_at_ms = now - 3600000;
        uca.presenting_complaint = narrative;
        uca.outcome = "discharged";
        pro.role = "ED clinician";
        uca.clinician = &pro;
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_DIRECT_CARE;
        basis.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2H_HEALTH_SOCIAL_CARE;
        basis.dpa_schedule1_paragraph = 2;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_UNSCHEDULED_CARE_ATTENDANCE;
        e.unscheduled_care_attendance = &uca;
        break;
    case 7:
        an.attendance_event_id = (ProtobufCBinaryData){16, ref};
        an.site_code = "RH802";
        an.setting = SHAREHUB__V1__CARE_SETTING__CARE_SETTING_EMERGENCY_DEPARTMENT;
        an.accessed_at_ms = now;
        an.flag = SHAREHUB__V1__FLAG_TYPE__FLAG_TYPE_CHILD_PROTECTION_PLAN;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_ACCESS_NOTIFICATION;
        e.access_notification = &an;
        break;
    case 8:
        ex.kind = SHAREHUB__V1__EXCLUSION_KIND__EXCLUSION_KIND_SUSPENSION;
        ex.school_code = "8814001";
        ex.start_date = "2026-03-02";
        ex.sessions = 1 + (uint32_t)(sh_rng_next(rng) % 10);
        ex.reason = SHAREHUB__V1__EXCLUSION_REASON__EXCLUSION_REASON_PERSISTENT_DISRUPTION;
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_EDUCATION_WELFARE;
        basis.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_NONE;
        basis.dpa_schedule1_paragraph = 0;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_EXCLUSION;
        e.exclusion = &ex;
        break;
    case 9:
        cme.reason = SHAREHUB__V1__CME_REASON__CME_REASON_REMOVED_FROM_ROLL;
        cme.last_known_school = "8814001";
        cme.missing_since = "2026-04-20";
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_EDUCATION_WELFARE;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_CHILD_MISSING_EDUCATION;
        e.child_missing_education = &cme;
        break;
    case 10:
        att.period_start = "2026-01-05";
        att.period_end = "2026-03-27";
        att.attendance_permille = 500 + (uint32_t)(sh_rng_next(rng) % 400);
        att.unauthorised_sessions = 14;
        att.persistent_absence = 1;
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_EDUCATION_WELFARE;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_ATTENDANCE_CONCERN;
        e.attendance_concern = &att;
        break;
    case 11:
        ehc.status = SHAREHUB__V1__EHC_STATUS__EHC_STATUS_ISSUED;
        ehc.date = "2026-05-11";
        ehc.primary_need = "SEMH";
        ehc.named_setting = "8814001";
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_SEND;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_EHC_PLAN_STATUS;
        e.ehc_plan_status = &ehc;
        break;
    case 12:
        con.action = SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_RECORDED;
        con.scope = SHAREHUB__V1__PURPOSE__PURPOSE_EARLY_HELP;
        con.given_by = SHAREHUB__V1__CONSENT_GIVER__CONSENT_GIVER_PARENTAL_RESPONSIBILITY;
        con.recorded_on = "2026-06-01";
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_EARLY_HELP;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_CONSENT_CHANGE;
        e.consent_change = &con;
        break;
    case 13:
        rcpt.for_event_id = (ProtobufCBinaryData){16, ref};
        rcpt.recipient_org = "881";
        rcpt.status = SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED;
        rcpt.at_ms = now;
        e.child = NULL; /* receipts carry no child */
        e.purpose = SHAREHUB__V1__PURPOSE__PURPOSE_SERVICE_OPERATION;
        basis.article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_NONE;
        basis.dpa_schedule1_paragraph = 0;
        e.consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_REQUIRED;
        e.body_case = SHAREHUB__V1__ENVELOPE__BODY_DELIVERY_RECEIPT;
        e.delivery_receipt = &rcpt;
        break;
    }
    sh_err rc = sh_envelope_encode(&e, out, len, err);
    free(narrative);
    return rc;
}
