/* test_policy_files.c — ISP files as an information-governance officer writes them, refused
 * with the file, the line, the key, what is wrong and the fix: unknown keys, enumerations given
 * as numbers, numbers that are not whole, dates that are not real, duplicates, a lawful basis
 * that is not consistent, and a protocol in force without what every party signs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "isp_fixture.h"
#include "law.h"
#include "policy.h"
#include "testutil.h"

/* Writes text as dir/name, signed by every party first when sign. */
static void s_put(const char *dir, const char *name, const char *text, int sign)
{
    char *p = tu_path(dir, name), buf[8192];
    snprintf(buf, sizeof buf, "%s", text);
    if (sign) isp_fixture_sign(buf, sizeof buf);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(buf, f);
    fclose(f);
    free(p);
}

/* The file body (signed when sign) is refused, the first mistake naming want. */
static void s_refused(const char *body, int sign, const char *want)
{
    char *d = tu_tmpdir();
    s_put(d, "isp-bad.yaml", body, sign);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_E_POLICY_FILE, "accepted: %s", body);
    cr_assert_null(pol);
    cr_assert_not_null(strstr(err.detail, want), "detail '%s' lacks '%s'", err.detail, want);
    cr_assert_not_null(strstr(err.detail, "isp-bad.yaml"), "%s", err.detail);
    tu_rmrf(d);
    free(d);
}

static void s_bad_isp(const char *body, const char *want)
{
    s_refused(body, 1, want);
}

#define ISP_HEAD                                                                                   \
    "id: x\nversion: 1\ntitle: t\nstatus: active\nreview_date: '2030-01-01'\n"                     \
    "lead: '881'\n"                                                                                \
    "purposes: [safeguarding]\nevent_types: [hub_decision]\n"                                      \
    "lawful_basis: {article6: public_task, article9: none}\n"                                      \
    "consent: not_required\n"

Test(policy_files, bad_files_are_named)
{
    s_bad_isp(ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, data_items: "
                       "[child]}]\nshoe_size: 9\n",
              "shoe_size");
    s_bad_isp(ISP_HEAD "senders: [{sector: dentistry}]\nrecipients: [{sector: health, "
                       "data_items: [child]}]\n",
              "dentistry");
    s_bad_isp(ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, data_items: "
                       "[child.shoe_size]}]\n",
              "unknown data item 'child.shoe_size'");
    s_bad_isp(ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health}]\n",
              "data_items is missing");
    s_bad_isp(ISP_HEAD "senders: [{sector: health, organisation: RAJ}]\nrecipients: [{sector: "
                       "health, data_items: [child]}]\n",
              "exactly one of");
    s_bad_isp(ISP_HEAD "senders: [{relationship: referrer}]\nrecipients: [{sector: health, "
                       "data_items: [child]}]\n",
              "a relationship names a recipient");
    s_bad_isp("id: x\nversion: 1\n", "isp-bad.yaml");
}

/* The ISP_HEAD file with one line replaced (from `from` to the end of its line) by `to`. */
static char *s_head_with(const char *from, const char *to)
{
    static char buf[2048];
    const char *head = ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, "
                                "data_items: [child]}]\n";
    const char *at = strstr(head, from), *eol = at ? strchr(at, '\n') : NULL;
    cr_assert_not_null(eol, "%s", from);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - head), head, to, eol);
    return buf;
}

Test(policy_files, enums_are_names_numbers_are_whole_dates_are_real)
{
    /* each was accepted once (status 0 and 9 counted as active) */
    s_bad_isp(s_head_with("status:", "status: 0"),
              "status: '0' is not one of: draft, active, suspended");
    s_bad_isp(s_head_with("status:", "status: 9"), "status: '9' is not one of");
    s_bad_isp(s_head_with("status:", "status: Active"), "status: 'Active' is not one of");
    s_bad_isp(s_head_with("consent:", "consent: 3"),
              "consent: '3' is not one of: required, required_unless_significant_harm");
    s_bad_isp(s_head_with("lawful_basis:", "lawful_basis: {article6: 4, article9: none}"),
              "article6: '4' is not an Article 6 condition: write it as the law does, 6(1)(a)");
    s_bad_isp(s_head_with("purposes:", "purposes: [1]"), "purposes: '1' is not one of");
    s_bad_isp(s_head_with("version:", "version: -1"), "version: '-1' is not a version");
    s_bad_isp(s_head_with("version:", "version: v2"), "version: 'v2' is not a version");
    s_bad_isp(s_head_with("review_date:", "review_date: '2027-02-30'"),
              "review_date: '2027-02-30' is not a calendar date");
    s_refused(s_head_with("lead:", "lead: '881'\npurpose_statement: twenty characters and more\n"
                                   "gateways: [Children Act 1989 s47]\n"
                                   "controllers: [{organisation: '881', role: controller}]\n"
                                   "retention: {keep: 1 year, then: erase}\n"
                                   "dpia: {reference: D-1, completed_on: '2026-01-01'}\n"
                                   "signatories: [{organisation: '881', signs_for: health, "
                                   "role: r, signed_on: '2026-13-01', version: '1'}]"),
              0, "signatories 1: '2026-13-01' is not a calendar date");
    s_bad_isp(s_head_with("lawful_basis:", "lawful_basis: {article6: public_task, article9: "
                                           "substantial_public_interest, "
                                           "dpa_schedule1_paragraph: 18.5}"),
              "dpa_schedule1_paragraph: '18.5' is not a DPA 2018 Schedule 1 paragraph");
    /* the line and column of what cyaml refused */
    s_bad_isp(s_head_with("status:", "status: 9"), "isp-bad.yaml:4:9: status");
    /* and what is right still loads */
    char *d = tu_tmpdir();
    s_put(d, "isp-ok.yaml", s_head_with("version:", "version: '2.1'"), 1);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    cr_assert_str_eq(sh_isp_version(sh_policy_at(pol, 0)), "2.1");
    cr_assert_str_eq(sh_isp_rule(sh_policy_at(pol, 0)), "x@2.1");
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
}

Test(policy_files, duplicate_ids_and_missing_directory)
{
    sh_policy *pol = NULL;
    sh_error err;
    char *d = tu_tmpdir();
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "isp-f%d.yaml", i);
        s_put(d, name,
              ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, data_items: "
                       "[child]}]\n",
              1);
    }
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_E_POLICY_FILE, "%s", err.detail);
    cr_assert_not_null(strstr(err.detail, "is also the id of"), "%s", err.detail);
    cr_assert_eq(sh_policy_load("/nonexistent/policy", &pol, &err), SH_E_IO);
    tu_rmrf(d);
    free(d);
}

/* delivery_expiry is a duration with a unit; anything else names the key and the forms. */
Test(policy_files, delivery_expiry)
{
#define BODY                                                                                       \
    ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, data_items: [child]}]\n"
    const char *bad[] = {"5", "5 d", "-1d", "0s", "367d", "1.5h", "5w", "d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body, BODY "delivery_expiry: '%s'\n", bad[i]);
        s_bad_isp(body, "delivery_expiry");
    }
    char *d = tu_tmpdir();
    s_put(d, "isp-ok.yaml", BODY "delivery_expiry: 36h\n", 1);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_isp_expiry_ms(sh_policy_at(pol, 0)), 36LL * 3600 * 1000);
    cr_assert_eq(sh_policy_find(pol, "x@1", 3), sh_policy_at(pol, 0));
    cr_assert_null(sh_policy_find(pol, "x@2", 3));
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
    int64_t ms;
    cr_assert_eq(sh_duration_parse("30s", &ms), 0);
    cr_assert_eq(ms, 30000);
    cr_assert_eq(sh_duration_parse("366d", &ms), 0);
    cr_assert_eq(sh_duration_parse("15m", &ms), 0);
    cr_assert_eq(ms, 900000);
    cr_assert_eq(sh_duration_parse("", &ms), -1);
    cr_assert_eq(sh_duration_parse(NULL, &ms), -1);
    cr_assert_eq(sh_duration_parse("9999999999s", &ms), -1);
#undef BODY
}

/* The lawful basis as the law writes it is read as the schema's names are; a citation that
 * is not one, or does not fit with the rest, is refused with the fix. */
Test(policy_files, lawful_basis_as_the_law_writes_it)
{
    cr_assert_eq(sh_law_article6("6(1)(e)"), 4);
    cr_assert_eq(sh_law_article6("Article 6(1)(e)"), 4);
    cr_assert_eq(sh_law_article6("public_task"), 4);
    cr_assert_eq(sh_law_article6("e_public_task"), 4);
    cr_assert_eq(sh_law_article6("6(1)(c)"), 2);
    cr_assert_eq(sh_law_article6("6(1)(f)"), -1);
    cr_assert_eq(sh_law_article6("6(1)(e) and more"), -1);
    cr_assert_str_eq(sh_law_article6_unusable("6(1)(f)"), "legitimate interests");
    cr_assert_eq(sh_law_article9("9(2)(g)"), 4);
    cr_assert_eq(sh_law_article9("Art. 9(2)(h)"), 5);
    cr_assert_eq(sh_law_article9("none"), 0);
    cr_assert_eq(sh_law_article9("9(2)(z)"), -1);
    unsigned para, part;
    const char *same[] = {"18", "paragraph 18", "Schedule 1 paragraph 18",
                          "DPA 2018 Schedule 1 Part 2 paragraph 18", "Sch 1 para 18"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        cr_assert_eq(sh_law_paragraph(same[i], &para, &part), 0, "%s", same[i]);
        cr_assert_eq(para, 18, "%s", same[i]);
    }
    cr_assert_eq(part, 0);
    cr_assert_eq(sh_law_paragraph("Schedule 1 Part 3 paragraph 18", &para, &part), 0);
    cr_assert_eq(part, 3);
    cr_assert_eq(sh_law_paragraph("paragraph 38", &para, &part), -1);
    cr_assert_eq(sh_law_paragraph("paragraph eighteen", &para, &part), -1);
    cr_assert_eq(sh_law_part(2), 1);
    cr_assert_eq(sh_law_part(18), 2);
    cr_assert_eq(sh_law_part(30), 3);

#define BASIS(x) s_head_with("lawful_basis:", "lawful_basis: " x)
    s_bad_isp(BASIS("{article6: 6(1)(f), article9: none}"),
              "lawful_basis.article6: '6(1)(f)' is legitimate interests, which a public body");
    s_bad_isp(BASIS("{article6: 6(1)(b), article9: none}"), "is contract");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: 9(2)(g)}"),
              "dpa_schedule1_paragraph: missing: 9(2)(g) needs a Schedule 1 Part 2 condition");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: 2}"),
              "paragraph 2 is in Part 1, which does not serve 9(2)(g): give a Part 2");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: 9(2)(h), dpa_schedule1_paragraph: 18}"),
              "9(2)(h) is met through Schedule 1 paragraph 2");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: none, dpa_schedule1_paragraph: 18}"),
              "a Schedule 1 paragraph goes with 9(2)(b), 9(2)(g) or 9(2)(h)");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: 9(2)(g), dpa_schedule1_paragraph: "
                    "Schedule 1 Part 3 paragraph 18}"),
              "paragraph 18 is in Part 2 of Schedule 1, not Part 3");
    s_bad_isp(BASIS("{article6: 6(1)(a), article9: none}"),
              "consent: the lawful basis is consent (6(1)(a)), so consent must be required");
    s_bad_isp(BASIS("{article6: 6(1)(e), article9: 9(2)(a)}"), "(9(2)(a)), so consent must be");
#undef BASIS
    /* the same protocol in law's words and in the schema's names decides the same */
    char *d = tu_tmpdir();
    s_put(d, "isp-law.yaml",
          s_head_with("lawful_basis:", "lawful_basis: {article6: Article 6(1)(e), article9: "
                                       "9(2)(g), dpa_schedule1_paragraph: Schedule 1 paragraph "
                                       "18}"),
          1);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
}

/* A protocol in force carries what every party signs; a draft may be incomplete. Asked for
 * every mistake, the loader reports each with its file and key. */
typedef struct s_seen {
    int n;
    char text[8192];
} s_seen;

static void s_collect(void *ctx, const char *file, const char *key, const char *msg)
{
    s_seen *s = ctx;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof s->text - used, "%s | %s | %s\n", strrchr(file, '/') + 1,
             key ? key : "-", msg);
    s->n++;
}

Test(policy_files, in_force_needs_what_every_party_signs)
{
    const char *body = ISP_HEAD "senders: [{sector: health}]\nrecipients: [{organisation: RAJ, "
                                "data_items: [child]}]\n";
    char *d = tu_tmpdir();
    s_put(d, "isp-bare.yaml", body, 0);
    /* a draft of the same loads */
    char draft[2048];
    snprintf(draft, sizeof draft, "%s", body);
    memcpy(strstr(draft, "status: active"), "status: draft ", 14);
    s_put(d, "isp-draft.yaml", draft, 0);
    memcpy(strstr(draft, "id: x"), "id: y", 5);
    s_put(d, "isp-draft.yaml", draft, 0);
    s_seen seen = {0};
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load_report(d, &pol, s_collect, &seen, &err), SH_E_POLICY_FILE);
    cr_assert_null(pol);
    const char *want[] = {"isp-bare.yaml | purpose_statement | missing: say in a sentence",
                          "isp-bare.yaml | gateways | missing: name the legal gateway(s)",
                          "isp-bare.yaml | controllers | missing: name who controls the data",
                          "isp-bare.yaml | dpia | missing: give the data protection impact",
                          "isp-bare.yaml | retention | missing for recipient 1",
                          "isp-bare.yaml | signatories | missing: every party signs"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(seen.text, want[i]), "lacks '%s' in:\n%s", want[i], seen.text);
    cr_assert_eq(seen.n, 6, "%s", seen.text);
    cr_assert_null(strstr(seen.text, "isp-draft.yaml"), "%s", seen.text);
    /* the first mistake is also the error, as the broker reports it */
    cr_assert_not_null(strstr(err.detail, "isp-bare.yaml: purpose_statement: missing"), "%s",
                       err.detail);
    tu_rmrf(d);
    free(d);
}

#define SIGNED_TAIL(sigs)                                                                          \
    "purpose_statement: why these parties share this, in words\n"                                  \
    "gateways: [Children Act 1989 s47]\n"                                                          \
    "controllers: [{organisation: '881', role: controller}]\n"                                     \
    "retention: {keep: 1 year, then: erase}\n"                                                     \
    "dpia: {reference: D-1, completed_on: '2026-01-01'}\nsignatories:\n" sigs

Test(policy_files, every_party_signs_the_version_in_force)
{
    const char *parties = "senders: [{sector: health}]\nrecipients: [{organisation: RAJ, "
                          "data_items: [child]}, {relationship: child_school, data_items: "
                          "[child.upn]}]\n";
    char body[4096];
    /* all there: loads */
    snprintf(
        body, sizeof body,
        "%s%s" SIGNED_TAIL(
            "  - {organisation: '881', role: DCS, signed_on: '2026-01-02', version: '1'}\n"
            "  - {organisation: QH8, signs_for: health, role: CG, signed_on: '2026-01-03', "
            "version: '1'}\n"
            "  - {organisation: '881', signs_for: education, role: DoE, signed_on: '2026-01-03', "
            "version: '1'}\n"
            "  - {organisation: RAJ, role: CG, signed_on: '2026-01-04', version: '1'}\n"),
        ISP_HEAD, parties);
    char *d = tu_tmpdir();
    s_put(d, "isp-ok.yaml", body, 0);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
    /* the version moved on and one party has not signed it again */
    snprintf(
        body, sizeof body,
        "%s%s" SIGNED_TAIL(
            "  - {organisation: '881', role: DCS, signed_on: '2026-01-02', version: '1'}\n"
            "  - {organisation: QH8, signs_for: health, role: CG, signed_on: '2026-01-03', "
            "version: '1'}\n"
            "  - {organisation: '881', signs_for: education, role: DoE, signed_on: '2026-01-03', "
            "version: '1'}\n"
            "  - {organisation: RAJ, role: CG, signed_on: '2026-01-04', version: '0.9'}\n"),
        ISP_HEAD, parties);
    s_refused(body, 0,
              "signatories 4: RAJ signed version 0.9, but this is version 1: a changed "
              "protocol needs every party to sign it again");
    /* a party organisation, a sector and the lead that have not signed */
    snprintf(
        body, sizeof body,
        "%s%s" SIGNED_TAIL(
            "  - {organisation: '881', signs_for: education, role: DoE, signed_on: '2026-01-03', "
            "version: '1'}\n"),
        ISP_HEAD, parties);
    memcpy(strstr(body, "lead: '881'"), "lead: 'R1L'", 11);
    s_refused(body, 0, "signatories: the lead, R1L, has not signed");
    memcpy(strstr(body, "lead: 'R1L'"), "lead: '881'", 11);
    s_refused(body, 0,
              "sender 1: no one has signed for the health sector: add a signatory from "
              "its lead organisation with signs_for: health");
    snprintf(
        body, sizeof body,
        "%s%s" SIGNED_TAIL(
            "  - {organisation: '881', signs_for: education, role: DoE, signed_on: '2026-01-03', "
            "version: '1'}\n"
            "  - {organisation: QH8, signs_for: health, role: CG, signed_on: '2026-01-03', "
            "version: '1'}\n"),
        ISP_HEAD, parties);
    s_refused(body, 0, "recipient 1: RAJ is a party but has not signed");
    /* a signature without its date or version */
    snprintf(body, sizeof body, "%s%s" SIGNED_TAIL("  - {organisation: '881', role: DCS}\n"),
             ISP_HEAD, parties);
    s_refused(body, 0, "signatories 1: signed_on is missing");
}

Test(policy_files, retention_and_service_types)
{
#define WITH(x) ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, " x "}]\n"
    s_bad_isp(WITH("data_items: [child], retention: {keep: 6 yrs, then: erase}"),
              "recipient 1 retention.keep: '6 yrs' is not a retention period: write a whole "
              "number and days, weeks, months or years");
    s_bad_isp(WITH("data_items: [child], retention: {keep: 0 days, then: erase}"),
              "not a retention period");
    s_bad_isp(WITH("data_items: [child], retention: {keep: 101 years, then: erase}"),
              "up to 100 years");
    s_bad_isp(WITH("data_items: [child], retention: {keep: 6 years, then: shred}"), "shred");
    s_bad_isp(WITH("data_items: [child], service_types: [dentist]"),
              "service type 'dentist' is not one sharehub knows");
    s_bad_isp(ISP_HEAD "senders: [{sector: education, service_types: [ambulance]}]\n"
                       "recipients: [{sector: health, data_items: [child]}]\n",
              "service_types go with sector: health");
    /* a recipient's own retention overrides the protocol's */
    char *d = tu_tmpdir();
    s_put(d, "isp-r.yaml",
          WITH("data_items: [child], service_types: [ambulance], retention: {keep: 18 months, "
               "then: review}"),
          1);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    s_put(d, "reg.yaml",
          "organisations:\n"
          "  - {code: AMB, name: A, sector: health, locality: essex, service_type: ambulance}\n"
          "  - {code: COM, name: C, sector: health, locality: essex, service_type: "
          "community_health}\n",
          0);
    char *rp = tu_path(d, "reg.yaml");
    sh_registry *reg = NULL;
    cr_assert_eq(sh_registry_load(rp, &reg, &err), SH_OK, "%s", err.detail);
    sh_envelope *e = tu_envelope(SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_HUB_DECISION);
    e->lawful_basis->article9 = 0;
    e->lawful_basis->dpa_schedule1_paragraph = 0;
    sh_decision dec;
    sh_share s = {e,    sh_registry_by_code(reg, "COM"), sh_registry_by_code(reg, "AMB"),
                  NULL, (int64_t)1767225600000,          NULL};
    sh_policy_decide(pol, &s, &dec);
    cr_assert(dec.permit, "%s", dec.reason);
    cr_assert_eq(dec.retention->count, 18);
    cr_assert_eq(dec.retention->unit, 'm');
    cr_assert_eq(dec.retention->review, 1);
    s.recipient = sh_registry_by_code(reg, "COM"); /* not an ambulance service */
    sh_policy_decide(pol, &s, &dec);
    cr_assert(!dec.permit);
    cr_assert_eq(dec.code, SH_E_DENY_NO_ISP, "%s", dec.reason);
    sh_envelope_free(e);
    sh_registry_destroy(&reg);
    sh_policy_destroy(&pol);
    free(rp);
    tu_rmrf(d);
    free(d);
    /* the registry refuses a kind of service it does not know, or outside health */
    d = tu_tmpdir();
    rp = tu_path(d, "reg.yaml");
    s_put(d, "reg.yaml",
          "organisations:\n  - {code: AMB, name: A, sector: health, locality: essex, "
          "service_type: dentist}\n",
          0);
    cr_assert_eq(sh_registry_load(rp, &reg, &err), SH_E_REGISTRY_FILE);
    cr_assert_not_null(strstr(err.detail, "service_type 'dentist' is not a kind of service"));
    s_put(d, "reg.yaml",
          "organisations:\n  - {code: SCH, name: S, sector: education, locality: essex, "
          "service_type: ambulance}\n",
          0);
    cr_assert_eq(sh_registry_load(rp, &reg, &err), SH_E_REGISTRY_FILE);
    cr_assert_not_null(strstr(err.detail, "service_type is for health organisations"));
    free(rp);
    tu_rmrf(d);
    free(d);
#undef WITH
}
