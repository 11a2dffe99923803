/* test_decision_table.c — every row of tests/decision-table.md decided as the broker decides it,
 * under the sample policy and registry (deploy/policy): the decision, its code, the protocol
 * that permitted or came closest for that recipient, the exact data items and how long the
 * recipient keeps them. The table is
 * the IG officer's; this file only reads it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "law.h"
#include "policy.h"
#include "registry.h"
#include "synth.h"

#define NCOL 16

/* Splits a Markdown table line into its trimmed cells; returns how many. */
static int s_cells(char *line, char *cells[], int cap)
{
    int n = 0;
    char *p = strchr(line, '|');
    while (p && n < cap) {
        char *start = p + 1, *end = strchr(start, '|');
        if (!end) break;
        *end = '\0';
        while (*start == ' ')
            start++;
        for (char *t = end - 1; t >= start && *t == ' '; t--)
            *t = '\0';
        cells[n++] = start;
        p = end;
    }
    return n;
}

/* The event a row describes, from a synthetic one of its type. */
static sh_envelope *s_event(char **c, const char *row, char *referrer, char *school)
{
    uint64_t rng = (uint64_t)atoi(row) * 7919 + 1;
    sh_synth_child k;
    sh_synth_child_make(&rng, "881", &k);
    int type = sh_event_type_from_name(c[3]);
    cr_assert(type, "row %s: event '%s'", row, c[3]);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    sh_envelope *e = NULL;
    cr_assert_eq(sh_synth_event(&rng, type, &k, c[2], NULL, NULL, 0, &buf, &len, &err), SH_OK,
                 "row %s: %s", row, err.detail);
    cr_assert_eq(sh_envelope_decode(buf, len, &e, &err), SH_OK, "row %s: %s", row, err.detail);
    free(buf);
    int v;
    cr_assert_eq(sh_enum_value(&sharehub__v1__purpose__descriptor, c[4], &v), 0, "row %s", row);
    e->purpose = v;
    e->level_of_need = (uint32_t)atoi(c[5]);
    if (type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_HUB_DECISION)
        e->hub_decision->level_of_need = e->level_of_need;
    cr_assert_eq(sh_enum_value(&sharehub__v1__consent_state__descriptor, c[6], &v), 0, "row %s",
                 row);
    e->consent = v;
    referrer[0] = school[0] = '\0';
    if (strcmp(c[7], "immediate risk") == 0) e->safeguarding_concern->immediate_risk = 1;
    if (strcmp(c[7], "priority") == 0) e->request_for_support->priority = 1;
    if (strncmp(c[7], "referrer ", 9) == 0) snprintf(referrer, 16, "%s", c[7] + 9);
    if (strncmp(c[7], "school ", 7) == 0) snprintf(school, 16, "%s", c[7] + 7);
    if (strcmp(c[7], "judgement") == 0) {
        Sharehub__V1__HarmJudgement *h = malloc(sizeof *h);
        Sharehub__V1__Professional *by = malloc(sizeof *by);
        cr_assert(h && by);
        sharehub__v1__harm_judgement__init(h);
        sharehub__v1__professional__init(by);
        by->org_code = strdup(c[2]);
        by->role = strdup("Designated Safeguarding Lead");
        by->name = strdup("A Practitioner");
        h->made_by = by;
        h->made_at_ms = e->published_at_ms;
        e->harm_judgement = h;
    }
    if (strcmp(c[8], "-") != 0) { /* "6(1)(c), none" or "6(1)(e), 9(2)(h), 2" */
        char basis[64], *save = NULL;
        snprintf(basis, sizeof basis, "%s", c[8]);
        char *a6 = strtok_r(basis, ",", &save), *a9 = strtok_r(NULL, ",", &save);
        char *para = strtok_r(NULL, ",", &save);
        unsigned p = 0, part;
        e->lawful_basis->article6 = sh_law_article6(a6);
        e->lawful_basis->article9 = sh_law_article9(a9 + strspn(a9, " "));
        if (para) cr_assert_eq(sh_law_paragraph(para + strspn(para, " "), &p, &part), 0);
        e->lawful_basis->dpa_schedule1_paragraph = p;
    }
    cr_assert_eq(sh_envelope_validate(e, &err), SH_OK, "row %s: the event is not valid: %s", row,
                 err.detail);
    return e;
}

Test(decision_table, every_row_is_decided_as_the_ig_officer_expects)
{
    sh_error err;
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    cr_assert_eq(sh_policy_load(SH_SOURCE_DIR "/deploy/policy", &p, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_registry_load(SH_SOURCE_DIR "/deploy/policy/enrolment.yaml", &reg, &err), SH_OK,
                 "%s", err.detail);
    FILE *f = fopen(SH_SOURCE_DIR "/tests/decision-table.md", "r");
    cr_assert_not_null(f);
    char line[4096];
    int rows = 0, live = 0, permits = 0;
    while (fgets(line, sizeof line, f)) {
        char *c[NCOL + 1];
        if (strncmp(line, "| ", 2) != 0 || s_cells(line, c, NCOL + 1) != NCOL ||
            !(c[0][0] >= '0' && c[0][0] <= '9'))
            continue;
        const char *row = c[0];
        char referrer[16], school[16];
        sh_envelope *e = s_event(c, row, referrer, school);
        sh_share s = {e,
                      sh_registry_by_code(reg, c[2]),
                      sh_registry_by_code(reg, c[10]),
                      referrer[0] ? referrer : NULL,
                      sh_clock_noon(c[9]),
                      school[0] ? school : NULL};
        cr_assert(s.sender && s.recipient, "row %s: %s or %s not in the registry", row, c[2],
                  c[10]);
        sh_decision d;
        sh_policy_decide(p, &s, &d);
        char got[16];
        snprintf(got, sizeof got, d.permit ? "permit" : "deny E%03d", (int)d.code);
        cr_assert_str_eq(got, c[11], "row %s (%s): %s, want %s: %s", row, c[1], got, c[11],
                         d.reason);
        cr_assert_str_eq(d.isp ? sh_isp_rule(d.isp) : "-", c[12], "row %s (%s): protocol: %s", row,
                         c[1], d.reason);
        char items[1024] = "-";
        size_t used = 0;
        for (size_t i = 0; i < d.n_items; i++)
            used += (size_t)snprintf(items + used, sizeof items - used, "%s%s", i ? ", " : "",
                                     d.items[i]);
        cr_assert_str_eq(items, c[13], "row %s (%s): items", row, c[1]);
        char keeps[64] = "-";
        if (d.permit && d.retention && d.retention->count)
            snprintf(keeps, sizeof keeps, "%s, %s", d.retention->text,
                     d.retention->review ? "review" : "erase");
        cr_assert_str_eq(keeps, c[14], "row %s (%s): retention", row, c[1]);
        rows++;
        live += strcmp(c[15], "yes") == 0;
        permits += d.permit;
        sh_envelope_free(e);
    }
    fclose(f);
    /* the issue asks for at least 60 rows, and both answers in good measure */
    cr_assert_geq(rows, 60, "%d rows", rows);
    cr_assert_geq(live, 30, "%d live rows", live);
    cr_assert(permits >= 20 && rows - permits >= 20, "%d permits of %d", permits, rows);
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
}
