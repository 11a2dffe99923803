/* test_policy_files.c — ISP files as an information-governance officer writes them, refused
 * with the file, the line, the key and what is allowed: unknown keys, enumerations given as
 * numbers, numbers that are not whole, dates that are not real, duplicates. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "policy.h"
#include "testutil.h"

static void s_bad_isp(const char *body, const char *want)
{
    char *d = tu_tmpdir(), *p = tu_path(d, "isp-bad.yaml");
    FILE *f = fopen(p, "w");
    fputs(body, f);
    fclose(f);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_E_POLICY_FILE, "accepted: %s", body);
    cr_assert_null(pol);
    cr_assert_not_null(strstr(err.detail, want), "detail '%s' lacks '%s'", err.detail, want);
    cr_assert_not_null(strstr(err.detail, "isp-bad.yaml"), "%s", err.detail);
    tu_rmrf(d);
    free(d);
    free(p);
}

#define ISP_HEAD                                                                                   \
    "id: x\nversion: 1\ntitle: t\nstatus: active\nreview_date: '2030-01-01'\n"                     \
    "lead: '881'\napprovers: [{role: r, organisation: '881'}]\n"                                   \
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
    /* each was accepted before (status 0 and 9 counted as active; 2.1 read as 2) */
    s_bad_isp(s_head_with("status:", "status: 0"),
              "status: '0' is not one of: draft, active, suspended");
    s_bad_isp(s_head_with("status:", "status: 9"), "status: '9' is not one of");
    s_bad_isp(s_head_with("status:", "status: Active"), "status: 'Active' is not one of");
    s_bad_isp(s_head_with("consent:", "consent: 3"),
              "consent: '3' is not one of: required, required_unless_significant_harm");
    s_bad_isp(s_head_with("lawful_basis:", "lawful_basis: {article6: 4, article9: none}"),
              "article6: '4' is not one of: consent, a_consent, legal_obligation");
    s_bad_isp(s_head_with("purposes:", "purposes: [1]"), "purposes: '1' is not one of");
    s_bad_isp(s_head_with("version:", "version: 2.1"),
              "version: '2.1' is not a whole number from 1");
    s_bad_isp(s_head_with("version:", "version: -1"), "version: '-1' is not a whole number");
    s_bad_isp(s_head_with("review_date:", "review_date: '2027-02-30'"),
              "review_date: '2027-02-30' is not a calendar date");
    s_bad_isp(s_head_with("approvers:", "approvers: [{role: r, organisation: '881', "
                                        "approved_on: '2026-13-01'}]"),
              "approvers.approved_on: '2026-13-01' is not a calendar date");
    s_bad_isp(s_head_with("lawful_basis:", "lawful_basis: {article6: public_task, article9: "
                                           "substantial_public_interest, "
                                           "dpa_schedule1_paragraph: 18.5}"),
              "dpa_schedule1_paragraph: '18.5' is not a whole number from 1 to 37");
    /* the line and column of what cyaml refused */
    s_bad_isp(s_head_with("status:", "status: 9"), "isp-bad.yaml:4:9: status");
    /* and what is right still loads */
    char *d = tu_tmpdir(), *p = tu_path(d, "isp-ok.yaml");
    FILE *f = fopen(p, "w");
    fputs(s_head_with("approvers:", "approvers: [{role: r, organisation: '881', approved_on: "
                                    "'2026-02-28'}]"),
          f);
    fclose(f);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_isp_version(sh_policy_at(pol, 0)), 1);
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
    free(p);
}

Test(policy_files, duplicate_ids_and_missing_directory)
{
    sh_policy *pol = NULL;
    sh_error err;
    char *d = tu_tmpdir();
    for (int i = 0; i < 2; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s/isp-f%d.yaml", d, i);
        FILE *f = fopen(name, "w");
        fputs(ISP_HEAD "senders: [{sector: health}]\nrecipients: [{sector: health, data_items: "
                       "[child]}]\n",
              f);
        fclose(f);
    }
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_E_POLICY_FILE, "%s", err.detail);
    cr_assert_not_null(strstr(err.detail, "also used by"), "%s", err.detail);
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
    char *d = tu_tmpdir(), *p = tu_path(d, "isp-ok.yaml");
    FILE *f = fopen(p, "w");
    fputs(BODY "delivery_expiry: 36h\n", f);
    fclose(f);
    sh_policy *pol = NULL;
    sh_error err;
    cr_assert_eq(sh_policy_load(d, &pol, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_isp_expiry_ms(sh_policy_at(pol, 0)), 36LL * 3600 * 1000);
    cr_assert_eq(sh_policy_find(pol, "x@1", 3), sh_policy_at(pol, 0));
    cr_assert_null(sh_policy_find(pol, "x@2", 3));
    sh_policy_destroy(&pol);
    tu_rmrf(d);
    free(d);
    free(p);
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
