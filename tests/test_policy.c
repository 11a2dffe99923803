/* test_policy.c — the WEISF decision table (permit, deny, minimise, lifecycle, consent, level
 * of need, purpose, lawful basis, parties), ISP and registry file checking, and wire-level
 * minimisation. Fixture dates are computed from today, so lifecycle cases never drift. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "codec.h"
#include "lint.h"
#include "minimise.h"
#include "policy.h"
#include "registry.h"
#include "synth.h"
#include "testutil.h"
#include "isp_fixture.h"

static char *dir;
static sh_policy *policy;
static sh_registry *reg;

/* today + months, as YYYY-MM-DD */
static void s_date(int months, char out[11])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mon += months;
    tm.tm_mday = tm.tm_mday > 28 ? 28 : tm.tm_mday;
    timegm(&tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static void s_write(const char *name, const char *text)
{
    char *p = tu_path(dir, name), signed_text[8192];
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    if (strncmp(name, "isp-", 4) == 0) { /* a protocol: signed by every party */
        snprintf(signed_text, sizeof signed_text, "%s", text);
        isp_fixture_sign(signed_text, sizeof signed_text);
        text = signed_text;
    }
    fputs(text, f);
    fclose(f);
    free(p);
}

static const char *registry_yaml = "organisations:\n"
                                   "  - {code: '881', name: Essex Children and Families Hub, "
                                   "sector: social_care, locality: essex, la_code: '881'}\n"
                                   "  - {code: '882', name: Southend Hub, sector: social_care, "
                                   "locality: southend, la_code: '882'}\n"
                                   "  - {code: '881EDU', name: Essex Education Service, "
                                   "sector: local_authority, locality: essex}\n"
                                   "  - {code: '8819990', name: Example Academy, sector: "
                                   "education, locality: essex}\n"
                                   "  - {code: '8829990', name: Southend Example School, sector: "
                                   "education, locality: southend}\n"
                                   "  - {code: 'RAJ', name: Example Acute Trust, sector: health, "
                                   "locality: essex}\n"
                                   "  - {code: 'R1L', name: Example Community Trust, sector: "
                                   "health, locality: essex}\n"
                                   "  - {code: 'ESXPOL', name: Example Police, sector: police, "
                                   "locality: essex}\n";

/* One ISP file. review = months from today. */
static void s_isp(const char *id, const char *status, int review, const char *body)
{
    char date[11], text[4096], name[64];
    s_date(review, date);
    snprintf(text, sizeof text,
             "id: %s\nversion: 2\ntitle: Test protocol %s\nstatus: %s\nreview_date: '%s'\n"
             "lead: '881'\n%s",
             id, id, status, date, body);
    snprintf(name, sizeof name, "%s.yaml", id); /* ids start "isp-" */
    s_write(name, text);
}

static const char *basis_sg = "lawful_basis: {article6: public_task, article9: "
                              "substantial_public_interest, dpa_schedule1_paragraph: 18}\n";

static void setup(void)
{
    dir = tu_tmpdir();
    char b[2048];
    s_write("registry.yml", registry_yaml);
    /* Requests for support: partners in Essex to the Essex hub, levels 3-4, consent unless
     * significant harm. */
    snprintf(b, sizeof b,
             "purposes: [safeguarding, early_help]\nevent_types: [request_for_support]\n"
             "senders:\n  - {sector: education, localities: [essex]}\n  - {sector: health}\n"
             "  - {sector: police}\nrecipients:\n  - organisation: '881'\n"
             "    data_items: [child, level_of_need, request_for_support]\n%s"
             "consent: required_unless_significant_harm\nlevel_of_need: {min: 3, max: 4}\n",
             basis_sg);
    s_isp("isp-rfs", "active", 12, b);
    /* Safeguarding concerns: to the hub (everything) and the police (less). */
    snprintf(b, sizeof b,
             "purposes: [safeguarding]\nevent_types: [safeguarding_concern]\n"
             "senders:\n  - {sector: education}\n  - {sector: health}\n"
             "recipients:\n  - organisation: '881'\n    data_items: [child, safeguarding_concern]\n"
             "  - sector: police\n    data_items: [child.nhs_number, child.date_of_birth, "
             "safeguarding_concern.category]\n%sconsent: not_required\n",
             basis_sg);
    s_isp("isp-sgc", "active", 12, b);
    /* Hub decisions back to the referrer, rationale withheld; review due within 3 months. */
    snprintf(b, sizeof b,
             "purposes: [safeguarding, early_help]\nevent_types: [hub_decision]\n"
             "senders:\n  - organisation: '881'\nrecipients:\n  - relationship: referrer\n"
             "    data_items: [child.upn, level_of_need, hub_decision.outcome, "
             "hub_decision.level_of_need, hub_decision.referral_event_id]\n%s"
             "consent: not_required\n",
             basis_sg);
    s_isp("isp-feedback", "active", 1, b);
    /* CP-IS flags to health: overdue (past review date, within 3 months) */
    snprintf(b, sizeof b,
             "purposes: [safeguarding, direct_care]\nevent_types: [cp_plan_status, "
             "looked_after_status]\nsenders:\n  - {sector: social_care, localities: [essex]}\n"
             "recipients:\n  - sector: health\n    data_items: [child.nhs_number, "
             "child.date_of_birth, cp_plan_status.status, cp_plan_status.start_date, "
             "cp_plan_status.end_date, cp_plan_status.responsible_la, looked_after_status]\n%s"
             "consent: not_required\n",
             basis_sg);
    s_isp("isp-cpis", "active", -1, b);
    /* Access notifications to the child's responsible LA */
    s_isp("isp-access", "active", 12,
          "purposes: [safeguarding]\nevent_types: [access_notification]\n"
          "senders:\n  - {sector: health}\nrecipients:\n  - relationship: responsible_la\n"
          "    data_items: [child.nhs_number, access_notification]\n"
          "lawful_basis: {article6: public_task, article9: health_social_care, "
          "dpa_schedule1_paragraph: 2}\nconsent: not_required\n");
    /* Education welfare to the LA education service: lapsed (4 months past review) */
    s_isp("isp-edwelfare-old", "active", -4,
          "purposes: [education_welfare]\nevent_types: [child_missing_education]\n"
          "senders:\n  - {sector: education}\nrecipients:\n  - organisation: 881EDU\n"
          "    data_items: [child, child_missing_education]\n"
          "lawful_basis: {article6: public_task, article9: none}\nconsent: not_required\n");
    /* ... and its active successor for exclusions and attendance */
    s_isp("isp-edwelfare", "active", 12,
          "purposes: [education_welfare]\nevent_types: [exclusion, attendance_concern]\n"
          "senders:\n  - {sector: education}\nrecipients:\n  - organisation: 881EDU\n"
          "    data_items: [child, exclusion, attendance_concern]\n"
          "lawful_basis: {article6: public_task, article9: none}\nconsent: not_required\n");
    /* A draft and a suspended protocol: never permit */
    s_isp("isp-draft-ehc", "draft", 12,
          "purposes: [send]\nevent_types: [ehc_plan_status]\nsenders:\n"
          "  - organisation: 881EDU\nrecipients:\n  - sector: health\n    data_items: [child]\n"
          "lawful_basis: {article6: public_task, article9: none}\nconsent: required\n");
    s_isp("isp-suspended-consent", "suspended", 12,
          "purposes: [early_help]\nevent_types: [consent]\nsenders:\n  - sector: education\n"
          "recipients:\n  - organisation: '881'\n    data_items: [child]\n"
          "lawful_basis: {article6: public_task, article9: none}\nconsent: required\n");
    /* Consent strictly required: attendance to early help via the hub */
    s_isp("isp-consent", "active", 12,
          "purposes: [early_help]\nevent_types: [attendance_concern]\nsenders:\n"
          "  - sector: education\nrecipients:\n  - organisation: '881'\n"
          "    data_items: [child.upn, attendance_concern]\n"
          "lawful_basis: {article6: public_task, article9: none}\nconsent: required\n");
    sh_error err;
    char *pol = tu_path(dir, ".");
    char *rp = tu_path(dir, "registry.yml");
    cr_assert_eq(sh_registry_load(rp, &reg, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_policy_load(dir, &policy, &err), SH_OK, "%s", err.detail);
    free(pol);
    free(rp);
}

static void teardown(void)
{
    sh_policy_destroy(&policy);
    sh_registry_destroy(&reg);
    tu_rmrf(dir);
    free(dir);
}

TestSuite(policy, .init = setup, .fini = teardown);

typedef struct row {
    int type;
    const char *from, *to;
    int consent; /* 0: as synthesised (given) */
    int level;   /* -1: as synthesised */
    int purpose; /* 0: as synthesised */
    int art9;    /* -1: as synthesised */
    const char *referrer;
    int permit;
    sh_err code;
    const char *rule; /* expected rule of the decision, or NULL for none */
    const char *why;
} row;

#define GIVEN      SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN
#define REFUSED    SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_REFUSED
#define NOT_SOUGHT SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_SOUGHT_RISK_OF_HARM
#define WITHDRAWN  SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_WITHDRAWN
/* ... and the event asserts a risk of significant harm (priority, immediate risk) */
#define ASSERTED            100
#define NOT_SOUGHT_ASSERTED (NOT_SOUGHT + ASSERTED)
#define REFUSED_ASSERTED    (REFUSED + ASSERTED)
/* ... and it carries a practitioner's recorded judgement of significant harm */
#define JUDGED            200
#define REFUSED_JUDGED    (REFUSED + JUDGED)
#define NOT_SOUGHT_JUDGED (NOT_SOUGHT + JUDGED)
#define P_SG              1
#define P_EH              2
#define P_DC              3
#define P_EW              4

static const row table[] = {
    /* requests for support */
    {1, "8819990", "881", 0, 3, 0, -1, 0, 1, SH_OK, "isp-rfs@2", "school to hub, level 3, consent"},
    {1, "RAJ", "881", 0, 4, 0, -1, 0, 1, SH_OK, "isp-rfs@2", "health to hub"},
    {1, "ESXPOL", "881", 0, 4, 0, -1, 0, 1, SH_OK, "isp-rfs@2", "police to hub"},
    {1, "8829990", "881", 0, 3, 0, -1, 0, 0, SH_E_DENY_PARTY, "isp-rfs@2",
     "school outside the locality"},
    {1, "8819990", "882", 0, 3, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "the wrong hub"},
    {1, "8819990", "RAJ", 0, 3, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "not to health"},
    {1, "8819990", "881", 0, 2, 0, -1, 0, 0, SH_E_DENY_LEVEL, "isp-rfs@2",
     "level 2 needs no request"},
    {1, "8819990", "881", REFUSED, 3, 0, -1, 0, 0, SH_E_DENY_CONSENT, "isp-rfs@2",
     "consent refused, level 3"},
    {1, "8819990", "881", REFUSED, 4, 0, -1, 0, 1, SH_OK, "isp-rfs@2",
     "consent refused, level 4: harm"},
    {1, "8819990", "881", NOT_SOUGHT, 3, 0, -1, 0, 0, SH_E_DENY_CONSENT, "isp-rfs@2",
     "not sought for risk of harm, level 3, the request does not assert the risk"},
    {1, "8819990", "881", NOT_SOUGHT_ASSERTED, 3, 0, -1, 0, 1, SH_OK, "isp-rfs@2",
     "not sought for risk of harm, level 3, on the priority line"},
    {1, "8819990", "881", REFUSED_ASSERTED, 3, 0, -1, 0, 1, SH_OK, "isp-rfs@2",
     "refused, level 3, on the priority line: harm comes before consent"},
    {1, "8819990", "881", REFUSED_JUDGED, 3, 0, -1, 0, 1, SH_OK, "isp-rfs@2",
     "refused, level 3, with a practitioner's recorded judgement of significant harm"},
    {1, "8819990", "881", NOT_SOUGHT_JUDGED, 3, 0, -1, 0, 1, SH_OK, "isp-rfs@2",
     "not sought, level 3, with a recorded judgement"},
    {1, "8819990", "881", WITHDRAWN, 3, 0, -1, 0, 0, SH_E_DENY_CONSENT, "isp-rfs@2",
     "consent withdrawn"},
    {1, "8819990", "881", 0, 3, P_DC, -1, 0, 0, SH_E_DENY_PURPOSE, "isp-rfs@2",
     "purpose direct care"},
    {1, "8819990", "881", 0, 3, 0, 5, 0, 0, SH_E_DENY_BASIS, "isp-rfs@2",
     "other Article 9 condition"},
    /* safeguarding concerns */
    {2, "RAJ", "881", 0, -1, 0, -1, 0, 1, SH_OK, "isp-sgc@2", "health concern to hub"},
    {2, "RAJ", "ESXPOL", 0, -1, 0, -1, 0, 1, SH_OK, "isp-sgc@2", "to police, minimised"},
    {2, "ESXPOL", "881", 0, -1, 0, -1, 0, 0, SH_E_DENY_PARTY, "isp-sgc@2",
     "police is no sender here"},
    {2, "RAJ", "8819990", 0, -1, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "not to schools"},
    {2, "RAJ", "881", REFUSED, -1, 0, -1, 0, 1, SH_OK, "isp-sgc@2", "consent not required"},
    /* hub decisions back to the referrer */
    {3, "881", "8819990", 0, -1, 0, -1, "8819990", 1, SH_OK, "isp-feedback@2", "to the referrer"},
    {3, "881", "RAJ", 0, -1, 0, -1, "8819990", 0, SH_E_DENY_NO_ISP, NULL, "not the referrer"},
    {3, "881", "8819990", 0, -1, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "referrer unknown"},
    {3, "882", "8819990", 0, -1, 0, -1, "8819990", 0, SH_E_DENY_PARTY, "isp-feedback@2",
     "other hub"},
    /* CP-IS flags (overdue protocol still permits) */
    {4, "881", "RAJ", 0, -1, 0, -1, 0, 1, SH_OK, "isp-cpis@2", "CP flag to ED"},
    {5, "881", "R1L", 0, -1, 0, -1, 0, 1, SH_OK, "isp-cpis@2", "LAC flag to community health"},
    {4, "881", "8819990", 0, -1, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "not to schools"},
    {4, "882", "RAJ", 0, -1, 0, -1, 0, 0, SH_E_DENY_PARTY, "isp-cpis@2",
     "sender outside the locality"},
    /* access notifications to the responsible LA */
    {7, "RAJ", "881", 0, -1, 0, 5, 0, 1, SH_OK, "isp-access@2", "to the child's LA"},
    {7, "RAJ", "882", 0, -1, 0, 5, 0, 0, SH_E_DENY_NO_ISP, NULL, "not the child's LA"},
    /* education welfare */
    {8, "8819990", "881EDU", 0, -1, P_EW, 0, 0, 1, SH_OK, "isp-edwelfare@2", "exclusion"},
    {10, "8819990", "881EDU", 0, -1, P_EW, 0, 0, 1, SH_OK, "isp-edwelfare@2", "attendance"},
    {9, "8819990", "881EDU", 0, -1, P_EW, 0, 0, 0, SH_E_DENY_LAPSED, "isp-edwelfare-old@2",
     "lapsed"},
    {8, "8819990", "881", 0, -1, P_EW, 0, 0, 0, SH_E_DENY_NO_ISP, NULL, "exclusion not to hub"},
    {8, "8819990", "881EDU", 0, -1, P_EW, 4, 0, 0, SH_E_DENY_BASIS, "isp-edwelfare@2",
     "special category not covered"},
    /* consent strictly required */
    {10, "8819990", "881", 0, -1, P_EH, 0, 0, 1, SH_OK, "isp-consent@2",
     "attendance to early help"},
    {10, "8819990", "881", NOT_SOUGHT, 4, P_EH, 0, 0, 0, SH_E_DENY_CONSENT, "isp-consent@2",
     "required even at level 4"},
    /* draft, suspended, nothing at all */
    {11, "881EDU", "RAJ", 0, -1, 5, 0, 0, 0, SH_E_DENY_NOT_ACTIVE, "isp-draft-ehc@2", "draft"},
    {12, "8819990", "881", 0, -1, P_EH, 0, 0, 0, SH_E_DENY_NOT_ACTIVE, "isp-suspended-consent@2",
     "suspended"},
    {6, "RAJ", "881", 0, -1, 0, -1, 0, 0, SH_E_DENY_NO_ISP, NULL, "no protocol for attendances"},
    {13, "881", "RAJ", 0, -1, 6, 0, 0, 0, SH_E_DENY_NO_ISP, NULL, "no protocol for receipts"},
};

static sh_envelope *s_event(const row *r)
{
    sh_envelope *e = tu_envelope(r->type);
    if (r->consent) e->consent = r->consent % ASSERTED;
    int asserted = r->consent > ASSERTED && r->consent < JUDGED;
    if (asserted && r->type == 1) e->request_for_support->priority = 1;
    if (asserted && r->type == 2) e->safeguarding_concern->immediate_risk = 1;
    if (r->consent > JUDGED) {
        Sharehub__V1__HarmJudgement *h = malloc(sizeof *h);
        Sharehub__V1__Professional *by = malloc(sizeof *by);
        cr_assert(h && by);
        sharehub__v1__harm_judgement__init(h);
        sharehub__v1__professional__init(by);
        by->org_code = strdup(r->from);
        by->role = strdup("Social worker");
        by->name = strdup("A Practitioner");
        h->made_by = by;
        h->made_at_ms = e->published_at_ms;
        e->harm_judgement = h;
    }
    if (r->level >= 0) {
        e->level_of_need = (uint32_t)r->level;
    }
    if (r->purpose) e->purpose = r->purpose;
    if (r->art9 >= 0) {
        e->lawful_basis->article9 = r->art9;
        e->lawful_basis->dpa_schedule1_paragraph = r->art9 == 4 ? 18 : r->art9 == 5 ? 2 : 0;
    }
    return e;
}

Test(policy, decision_table)
{
    cr_assert_geq(sizeof table / sizeof table[0], 30);
    int64_t now = (int64_t)time(NULL) * 1000;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const row *r = &table[i];
        sh_envelope *e = s_event(r);
        sh_share s = {e,
                      sh_registry_by_code(reg, r->from),
                      sh_registry_by_code(reg, r->to),
                      r->referrer,
                      now,
                      NULL};
        cr_assert_not_null(s.sender, "row %zu: %s", i, r->from);
        cr_assert_not_null(s.recipient, "row %zu: %s", i, r->to);
        sh_decision d;
        sh_policy_decide(policy, &s, &d);
        cr_assert_eq(d.permit, r->permit, "row %zu (%s): permit %d, want %d: %s", i, r->why,
                     d.permit, r->permit, d.reason);
        cr_assert_eq(d.code, r->code, "row %zu (%s): %s, want %s: %s", i, r->why,
                     sh_err_name(d.code), sh_err_name(r->code), d.reason);
        if (r->rule)
            cr_assert_str_eq(d.isp ? sh_isp_rule(d.isp) : "(none)", r->rule, "row %zu (%s)", i,
                             r->why);
        else
            cr_assert_null(d.isp, "row %zu (%s)", i, r->why);
        if (e->child)
            cr_assert_null(strstr(d.reason, e->child->nhs_number),
                           "row %zu: the reason must not name the child", i);
        sh_envelope_free(e);
    }
}

Test(policy, lifecycle_states)
{
    int64_t now = (int64_t)time(NULL) * 1000;
    const char *want[][2] = {{"isp-rfs", "active"},      {"isp-feedback", "review_due"},
                             {"isp-cpis", "overdue"},    {"isp-edwelfare-old", "lapsed"},
                             {"isp-draft-ehc", "draft"}, {"isp-suspended-consent", "suspended"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const sh_isp *isp = NULL;
        for (size_t j = 0; j < sh_policy_count(policy); j++)
            if (strcmp(sh_isp_id(sh_policy_at(policy, j)), want[i][0]) == 0)
                isp = sh_policy_at(policy, j);
        cr_assert_not_null(isp, "%s", want[i][0]);
        cr_assert_str_eq(sh_isp_state_name(sh_isp_state_at(isp, now)), want[i][1], "%s",
                         want[i][0]);
    }
    /* an overdue protocol still permits, and the decision says so */
    const row r = {4, "881", "RAJ", 0, -1, 0, -1, 0, 1, SH_OK, "isp-cpis@2", ""};
    sh_envelope *e = s_event(&r);
    sh_share s = {e,   sh_registry_by_code(reg, "881"), sh_registry_by_code(reg, "RAJ"), NULL, now,
                  NULL};
    sh_decision d;
    sh_policy_decide(policy, &s, &d);
    cr_assert(d.permit);
    cr_assert_eq(d.state, SH_ISP_OVERDUE);
    cr_assert_not_null(strstr(d.reason, "overdue"), "%s", d.reason);
    /* ... until 3 months past its review date */
    s.now_ms = now + 100LL * 24 * 3600 * 1000;
    sh_policy_decide(policy, &s, &d);
    cr_assert(!d.permit);
    cr_assert_eq(d.code, SH_E_DENY_LAPSED);
    sh_envelope_free(e);
}

/* Decodes a minimised copy and returns it. */
static sh_envelope *s_minimised(const char *from, const char *to, int type, const char *referrer)
{
    int64_t now = (int64_t)time(NULL) * 1000;
    uint64_t rng = 77;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, type, &c, from, NULL, NULL, 100, &buf, &len, &err), SH_OK);
    sh_envelope *e = NULL;
    cr_assert_eq(sh_envelope_decode(buf, len, &e, &err), SH_OK);
    sh_share s = {e,   sh_registry_by_code(reg, from), sh_registry_by_code(reg, to), referrer, now,
                  NULL};
    sh_decision d;
    sh_policy_decide(policy, &s, &d);
    cr_assert(d.permit, "%s", d.reason);
    uint8_t *out = malloc(len + SH_MINIMISE_SLACK);
    size_t olen = 0;
    cr_assert_eq(sh_minimise(buf, len, d.items, d.n_items, out, len + SH_MINIMISE_SLACK, &olen),
                 SH_OK);
    cr_assert_leq(olen, len);
    sh_envelope *m = NULL;
    cr_assert_eq(sh_envelope_decode_minimised(out, olen, &m, &err), SH_OK, "%s", err.detail);
    cr_assert_arr_eq(m->event_id.data, e->event_id.data, 16, "the header is always kept");
    cr_assert_eq(m->event_type, e->event_type);
    cr_assert_str_eq(m->source_org, e->source_org);
    cr_assert_eq(m->consent, e->consent);
    cr_assert_not_null(m->lawful_basis);
    sh_envelope_free(e);
    free(buf);
    free(out);
    return m;
}

Test(policy, minimised_copies)
{
    /* the hub gets the whole safeguarding concern */
    sh_envelope *m = s_minimised("RAJ", "881", 2, NULL);
    cr_assert_not_null(m->child);
    cr_assert_str_neq(m->child->given_name, "");
    cr_assert_str_neq(m->safeguarding_concern->narrative, "");
    cr_assert_not_null(m->safeguarding_concern->reported_by);
    sh_envelope_free(m);
    /* the police get identifiers and the category only: no names, no narrative */
    m = s_minimised("RAJ", "ESXPOL", 2, NULL);
    cr_assert_str_neq(m->child->nhs_number, "");
    cr_assert_str_neq(m->child->date_of_birth, "");
    cr_assert_str_eq(m->child->given_name, "");
    cr_assert_str_eq(m->child->family_name, "");
    cr_assert_str_eq(m->child->upn, "");
    cr_assert_neq(m->safeguarding_concern->category, 0);
    cr_assert_str_eq(m->safeguarding_concern->narrative, "");
    cr_assert_null(m->safeguarding_concern->reported_by);
    sh_envelope_free(m);
    /* the referrer learns the outcome, not the rationale */
    m = s_minimised("881", "8819990", 3, "8819990");
    cr_assert_eq(m->body_case, SHAREHUB__V1__ENVELOPE__BODY_HUB_DECISION);
    cr_assert_neq(m->hub_decision->outcome, 0);
    cr_assert_eq(m->hub_decision->level_of_need, 3);
    cr_assert_eq(m->level_of_need, 3);
    cr_assert_str_eq(m->hub_decision->rationale, "");
    cr_assert_null(m->hub_decision->decided_by);
    cr_assert_str_neq(m->child->upn, "");
    cr_assert_str_eq(m->child->nhs_number, "");
    sh_envelope_free(m);
    /* CP-IS: the flag, dates and the LA's contact; not the category */
    m = s_minimised("881", "RAJ", 4, NULL);
    cr_assert_neq(m->cp_plan_status->status, 0);
    cr_assert_str_neq(m->cp_plan_status->start_date, "");
    cr_assert_not_null(m->cp_plan_status->responsible_la);
    cr_assert_str_neq(m->cp_plan_status->responsible_la->out_of_hours_phone, "");
    cr_assert_eq(m->cp_plan_status->category, 0, "category withheld");
    cr_assert_eq(m->level_of_need, 0, "level of need withheld");
    cr_assert_str_eq(m->child->given_name, "");
    sh_envelope_free(m);
}

Test(policy, minimise_with_nothing_allowed_keeps_an_empty_body)
{
    uint64_t rng = 5;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL, out[4096];
    size_t len = 0, olen = 0;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, 2, &c, "RAJ", NULL, NULL, 0, &buf, &len, &err), SH_OK);
    cr_assert_eq(sh_minimise(buf, len, NULL, 0, out, sizeof out, &olen), SH_OK);
    sh_envelope *m = NULL;
    cr_assert_eq(sh_envelope_decode_minimised(out, olen, &m, &err), SH_OK, "%s", err.detail);
    cr_assert_null(m->child);
    cr_assert_eq(m->body_case, SHAREHUB__V1__ENVELOPE__BODY_SAFEGUARDING_CONCERN);
    sh_envelope *full = NULL;
    cr_assert_eq(sh_envelope_decode(out, olen, &full, &err), SH_E_MISSING_FIELD,
                 "a minimised copy is not a complete event");
    cr_assert_eq(sh_minimise(buf, len, NULL, 0, out, len, &olen), SH_E_RANGE);
    cr_assert_eq(sh_minimise(buf, len - 3, NULL, 0, out, sizeof out, &olen), SH_E_MALFORMED);
    sh_envelope_free(m);
    free(buf);
}

Test(policy, data_items)
{
    cr_assert(sh_policy_item_valid("child"));
    cr_assert(sh_policy_item_valid("child.nhs_number"));
    cr_assert(sh_policy_item_valid("level_of_need"));
    cr_assert(sh_policy_item_valid("request_for_support.referrer.phone"));
    cr_assert(sh_policy_item_valid("cp_plan_status.responsible_la"));
    cr_assert(!sh_policy_item_valid("child.shoe_size"));
    cr_assert(!sh_policy_item_valid("event_id"), "header fields are always sent");
    cr_assert(!sh_policy_item_valid("child.nhs_number.x"));
    cr_assert(!sh_policy_item_valid("child."));
    cr_assert(!sh_policy_item_valid(""));
}

/* Writes one bad ISP into a fresh directory and expects the loader to name the problem. */
Test(policy, registry_keys)
{
    char pub[41], sec[41], pub2[41], yaml[1024];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cr_assert_eq(zmq_curve_keypair(pub2, sec), 0);
    char *d = tu_tmpdir(), *p = tu_path(d, "reg.yaml");
    snprintf(yaml, sizeof yaml,
             "organisations:\n  - {code: RAJ, name: A, sector: health, locality: essex, keys: "
             "['%s']}\n  - {code: '881', name: B, sector: social_care, locality: essex, "
             "la_code: '881', keys: ['%s']}\n",
             pub, pub2);
    FILE *f = fopen(p, "w");
    fputs(yaml, f);
    fclose(f);
    sh_registry *r = NULL;
    sh_error err;
    cr_assert_eq(sh_registry_load(p, &r, &err), SH_OK, "%s", err.detail);
    uint8_t raw[32];
    cr_assert_not_null(zmq_z85_decode(raw, pub));
    cr_assert_str_eq(sh_registry_by_key(r, raw)->code, "RAJ");
    cr_assert_not_null(zmq_z85_decode(raw, pub2));
    cr_assert_str_eq(sh_registry_by_key(r, raw)->code, "881");
    raw[0] ^= 1;
    cr_assert_null(sh_registry_by_key(r, raw));
    cr_assert_eq(sh_registry_count(r), 2);
    cr_assert_str_eq(sh_registry_by_code(r, "881")->la_code, "881");
    cr_assert_null(sh_registry_by_code(r, "882"));
    cr_assert_str_eq(sh_sector_name(sh_registry_at(r, 0)->sector), "health");
    sh_registry_destroy(&r);

    const char *bad[][2] = {
        {"organisations:\n  - {code: rh8, name: A, sector: health, locality: essex}\n", "code"},
        {"organisations:\n  - {code: RAJ, name: A, sector: health, locality: Essex}\n", "locality"},
        {"organisations:\n  - {code: RAJ, name: A, sector: health, locality: essex, keys: [abc]}\n",
         "Z85"},
        {"organisations:\n  - {code: RAJ, name: A, sector: health, locality: essex}\n"
         "  - {code: RAJ, name: B, sector: health, locality: essex}\n",
         "enrolled twice"},
        {"organisations:\n  - {code: RAJ, name: A, sector: spa, locality: essex}\n", "spa"},
        {"organisations:\n  - {code: RAJ, name: A, sector: health, locality: essex, x: 1}\n", "x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = fopen(p, "w");
        fputs(bad[i][0], f);
        fclose(f);
        cr_assert_eq(sh_registry_load(p, &r, &err), SH_E_REGISTRY_FILE, "case %zu accepted", i);
        cr_assert_not_null(strstr(err.detail, bad[i][1]), "case %zu: %s", i, err.detail);
    }
    /* one key enrolled for two organisations */
    snprintf(yaml, sizeof yaml,
             "organisations:\n  - {code: RAJ, name: A, sector: health, locality: essex, keys: "
             "['%s']}\n  - {code: R1L, name: B, sector: health, locality: essex, keys: ['%s']}\n",
             pub, pub);
    f = fopen(p, "w");
    fputs(yaml, f);
    fclose(f);
    cr_assert_eq(sh_registry_load(p, &r, &err), SH_E_REGISTRY_FILE);
    cr_assert_not_null(strstr(err.detail, "one key is enrolled for"), "%s", err.detail);
    tu_rmrf(d);
    free(d);
    free(p);
}

typedef struct findings {
    int errors, warnings;
    char text[4096];
} findings;

static void s_collect(void *ctx, sh_lint_level level, const sh_isp *isp, const char *msg)
{
    findings *f = ctx;
    if (level == SH_LINT_ERROR)
        f->errors++;
    else
        f->warnings++;
    size_t n = strlen(f->text);
    snprintf(f->text + n, sizeof f->text - n, "%s %s: %s\n", level == SH_LINT_ERROR ? "E" : "W",
             sh_isp_id(isp), msg);
}

Test(policy, lint_findings)
{
    int64_t now = (int64_t)time(NULL) * 1000;
    findings f = {0};
    int errors = sh_policy_lint(policy, reg, now, s_collect, &f);
    cr_assert_eq(errors, f.errors);
    cr_assert_eq(errors, 1, "only the lapsed protocol is an error:\n%s", f.text);
    cr_assert_not_null(strstr(f.text, "E isp-edwelfare-old: lapsed"), "%s", f.text);
    cr_assert_not_null(strstr(f.text, "W isp-cpis: overdue"), "%s", f.text);
    cr_assert_not_null(strstr(f.text, "W isp-feedback: review due"), "%s", f.text);
    cr_assert_not_null(strstr(f.text, "W isp-draft-ehc: draft"), "%s", f.text);
    cr_assert_not_null(strstr(f.text, "W isp-suspended-consent: suspended"), "%s", f.text);

    /* a second protocol for the same share with other data items, naming an unknown org */
    s_isp("isp-zz-rival", "active", 12,
          "purposes: [safeguarding]\nevent_types: [safeguarding_concern]\n"
          "senders:\n  - {sector: health, localities: [essex, tendring]}\n"
          "recipients:\n  - organisation: '881'\n    data_items: [child.nhs_number]\n"
          "  - organisation: NOSUCH\n    data_items: [child]\n"
          "lawful_basis: {article6: public_task, article9: substantial_public_interest, "
          "dpa_schedule1_paragraph: 18}\nconsent: not_required\n");
    sh_policy *p2 = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(dir, &p2, &err), SH_OK, "%s", err.detail);
    memset(&f, 0, sizeof f);
    errors = sh_policy_lint(p2, reg, now, s_collect, &f);
    cr_assert_eq(errors, 4, "%s", f.text);
    cr_assert_not_null(strstr(f.text, "E isp-sgc: contradicts isp-zz-rival@2: both cover "
                                      "safeguarding_concern"),
                       "%s", f.text);
    cr_assert_not_null(strstr(f.text, "E isp-zz-rival: organisation NOSUCH (recipient) is not "
                                      "in the enrolment registry"),
                       "%s", f.text);
    cr_assert_not_null(strstr(f.text, "W isp-zz-rival: no enrolled health organisation is in "
                                      "locality tendring"),
                       "%s", f.text);
    /* without a registry only the lifecycle is checked */
    memset(&f, 0, sizeof f);
    cr_assert_eq(sh_policy_lint(p2, NULL, now, s_collect, &f), 1);
    sh_policy_destroy(&p2);
}

Test(policy, child_school_relationship)
{
    s_isp("isp-cp-school", "active", 12,
          "purposes: [safeguarding]\nevent_types: [cp_plan_status]\n"
          "senders:\n  - organisation: '881'\nrecipients:\n  - relationship: child_school\n"
          "    data_items: [child.upn, cp_plan_status.status]\n"
          "lawful_basis: {article6: public_task, article9: substantial_public_interest, "
          "dpa_schedule1_paragraph: 18}\nconsent: not_required\n");
    sh_policy *p2 = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(dir, &p2, &err), SH_OK, "%s", err.detail);
    sh_envelope *e = tu_envelope(4);
    int64_t now = (int64_t)time(NULL) * 1000;
    const sh_org *hub = sh_registry_by_code(reg, "881"),
                 *school = sh_registry_by_code(reg, "8819990"),
                 *other = sh_registry_by_code(reg, "8829990");
    sh_decision d;
    sh_share s = {e, hub, school, NULL, now, "8819990"};
    sh_policy_decide(p2, &s, &d);
    cr_assert(d.permit, "the child's school of record: %s", d.reason);
    cr_assert_str_eq(sh_isp_rule(d.isp), "isp-cp-school@2");
    s.recipient = other;
    sh_policy_decide(p2, &s, &d);
    cr_assert(!d.permit, "another school");
    cr_assert_eq(d.code, SH_E_DENY_NO_ISP, "%s", d.reason);
    cr_assert_null(d.isp, "no protocol names another school: none is closest");
    s.recipient = school;
    s.child_school = NULL;
    sh_policy_decide(p2, &s, &d);
    cr_assert(!d.permit, "no school of record");
    sh_envelope_free(e);
    sh_policy_destroy(&p2);
}
