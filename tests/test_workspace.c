/* test_workspace.c — what the workspace stands on (docs/workspace.md): the decision deadline in
 * working days with bank holidays; the templates' escaping; and, through the real broker and
 * agents, the hub's triage state machine (open, assigned, decided once, amended with a
 * reason), the level/outcome rule, roles, accounts and their lockout, the front-door queue,
 * and the name search that keeps no name in clear. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_int.h"
#include "agents_fixture.h"
#include "password.h"
#include "synth.h"
#include "template.h"
#include "testutil.h"

/* ---- the deadline ------------------------------------------------------------------- */

static int64_t s_utc(const char *when) /* "2026-11-30 10:00" */
{
    struct tm tm = {0};
    cr_assert_not_null(strptime(when, "%Y-%m-%d %H:%M", &tm), "%s", when);
    return (int64_t)timegm(&tm) * 1000;
}

static void s_rules(ag_fd_rules *r, const char *days)
{
    static char *hol[] = {"2026-12-25", "2026-12-28"};
    y_front_door y = {.working_days = (char *)days, .bank_holidays = hol, .bank_holidays_count = 2};
    sh_error err;
    cr_assert_eq(ag_fd_rules_load(&y, r, &err), SH_OK, "%s", err.detail);
}

Test(front_door, deadline_counts_working_days_and_skips_weekends_and_bank_holidays)
{
    setenv("TZ", "UTC", 1);
    tzset();
    ag_fd_rules r;
    s_rules(&r, "1");
    const char *cases[][2] = {
        {"2026-11-30 10:00", "2026-12-01 17:00"}, /* Monday: Tuesday's end */
        {"2026-12-04 16:00", "2026-12-07 17:00"}, /* Friday: Monday's */
        {"2026-12-05 11:00", "2026-12-07 17:00"}, /* Saturday: Monday's */
        {"2026-12-24 09:00", "2026-12-29 17:00"}, /* Christmas Eve: past the holiday, weekend
                                                     and the substitute day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(ag_fd_deadline(&r, s_utc(cases[i][0])), s_utc(cases[i][1]), "received %s",
                     cases[i][0]);
    s_rules(&r, "0"); /* the same working day */
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-11-30 10:00")), s_utc("2026-11-30 17:00"));
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-11-30 18:00")), s_utc("2026-12-01 17:00"));
    /* the answer is kept by the minute of arrival: the last millisecond of 16:59 and the first
     * of 17:00, one after the other, get different days */
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-11-30 16:59")), s_utc("2026-11-30 17:00"));
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-11-30 16:59") + 59999), s_utc("2026-11-30 17:00"));
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-11-30 17:00")), s_utc("2026-12-01 17:00"));
    s_rules(&r, "3");
    cr_assert_eq(ag_fd_deadline(&r, s_utc("2026-12-23 12:00")), s_utc("2026-12-30 17:00"));
    unsetenv("TZ");
    tzset();
}

Test(front_door, bad_rules_are_refused_naming_the_key)
{
    ag_fd_rules r;
    sh_error err;
    y_front_door y = {.day_ends = "25:00"};
    cr_assert_eq(ag_fd_rules_load(&y, &r, &err), SH_E_INVAL);
    cr_assert(strstr(err.detail, "day_ends"), "%s", err.detail);
    static char *bad[] = {"2026-02-30"};
    y_front_door y2 = {.bank_holidays = bad, .bank_holidays_count = 1};
    cr_assert_eq(ag_fd_rules_load(&y2, &r, &err), SH_E_BAD_DATE);
    cr_assert(strstr(err.detail, "2026-02-30"), "%s", err.detail);
    y_front_door y3 = {.working_days = "2.5"};
    cr_assert_eq(ag_fd_rules_load(&y3, &r, &err), SH_E_INVAL);
}

/* ---- templates ---------------------------------------------------------------------- */

static sh_templates *s_templates(const char *const files[][2], size_t n, sh_err want)
{
    char *dir = tu_tmpdir();
    char path[600];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(files[i][1], f);
        fclose(f);
    }
    sh_templates *t = NULL;
    sh_error err;
    cr_assert_eq(sh_templates_load(dir, &t, &err), want, "%s", want ? "" : err.detail);
    tu_rmrf(dir);
    free(dir);
    return t;
}

Test(template, escapes_every_value_and_renders_sections)
{
    const char *const files[][2] = {
        {"page.html", "<p title=\"{{v}}\">{{v}}</p>{{#list}}[{{n}}{{^last}},{{/last}}]{{/list}}"
                      "{{^missing}}none{{/missing}}{{#obj}}{{a.b}}{{/obj}}{{> part}}"
                      "{{> $which}}{{list.1.n}}"},
        {"part.html", "<i>{{v}}</i>"},
        {"other.html", "(other {{v}})"}};
    sh_templates *t = s_templates(files, 3, SH_OK);
    json_object *ctx = json_tokener_parse(
        "{\"v\":\"<script>alert('x')</script>&\\\"\",\"list\":[{\"n\":1},{\"n\":2,\"last\":true}],"
        "\"obj\":{\"a\":{\"b\":\"deep\"}},\"which\":\"other\"}");
    size_t len = 0;
    char *out = sh_template_render(t, "page", ctx, &len);
    cr_assert_not_null(out);
    const char *esc = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;";
    char want[1024];
    snprintf(want, sizeof want, "<p title=\"%s\">%s</p>[1,][2]nonedeep<i>%s</i>(other %s)2", esc,
             esc, esc, esc);
    cr_assert_str_eq(out, want);
    cr_assert_eq(len, strlen(want));
    cr_assert_null(strstr(out, "<script>"));
    free(out);
    json_object_put(ctx);
    sh_templates_free(&t);
}

Test(template, broken_templates_are_refused_at_load)
{
    const char *const unclosed[][2] = {{"a.html", "{{#x}}never closed"}};
    cr_assert_null(s_templates(unclosed, 1, SH_E_API_CONFIG));
    const char *const unknown[][2] = {{"a.html", "{{> nowhere}}"}};
    cr_assert_null(s_templates(unknown, 1, SH_E_API_CONFIG));
    const char *const stray[][2] = {{"a.html", "text {{/x}}"}};
    cr_assert_null(s_templates(stray, 1, SH_E_API_CONFIG));
    const char *const loop[][2] = {{"a.html", "{{> a}}"}};
    cr_assert_null(s_templates(loop, 1, SH_E_API_CONFIG));
}

/* ---- the hub's triage, through the real processes ------------------------------------ */

TestSuite(workspace_agent, .init = af_setup, .fini = af_teardown, .timeout = 120);

static void s_account(const char *name, const char *role)
{
    char hash[SH_PASSWORD_HASH];
    sh_error err;
    cr_assert_eq(sh_password_hash("synthetic password for tests", hash, &err), SH_OK);
    json_object *r = af_call(HUB,
                             "{\"op\":\"account_set\",\"name\":\"%s\",\"role\":\"%s\","
                             "\"hash\":\"%s\",\"user\":\"admin\",\"display\":\"%s\"}",
                             name, role, hash, name);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
}

static int s_code(json_object *r)
{
    json_object *v;
    return json_object_object_get_ex(r, "code", &v) ? json_object_get_int(v) : 0;
}

static json_object *s_triage(const char *user, const char *id, int level, const char *outcome,
                             const char *extra)
{
    return af_call(HUB,
                   "{\"op\":\"triage\",\"user\":\"%s\",\"referral_event_id\":\"%s\",\"level\":%d,"
                   "\"outcome\":\"%s\",\"rationale\":\"SYNTHETIC-RATIONALE\"%s}",
                   user, id, level, outcome, extra);
}

Test(workspace_agent, triage_is_a_state_machine_held_to_the_hubs_rules)
{
    af_wait_ready();
    sh_synth_child c;
    sh_synth_child_at(7001, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    char id[40];
    snprintf(id, sizeof id, "%s", af_get(r, "event_id"));
    json_object_put(r);
    json_object_put(af_wait_for(HUB, "safeguarding_concern"));
    s_account("prac", "practitioner");
    s_account("boss", "manager");
    s_account("viewer", "read_only");

    /* the queue holds it, open, with its deadline; listing is not a read */
    r = af_call(HUB, "{\"op\":\"queue\",\"user\":\"prac\"}");
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object *items = json_object_object_get(r, "items");
    cr_assert_eq(json_object_array_length(items), 1);
    json_object *it = json_object_array_get_idx(items, 0);
    cr_assert_str_eq(af_get(it, "event_id"), id);
    cr_assert_str_eq(af_get(it, "state"), "open");
    cr_assert(!json_object_get_boolean(json_object_object_get(it, "immediate_risk")));
    cr_assert_gt(json_object_get_int64(json_object_object_get(it, "deadline_ms")),
                 json_object_get_int64(json_object_object_get(it, "received_at_ms")));
    cr_assert_eq(json_object_get_int(json_object_object_get(r, "total")), 1);
    json_object_put(r);

    /* who may do what */
    r = s_triage("nobody", id, 4, "section_47_strategy", "");
    cr_assert_eq(s_code(r), SH_E_ROLE, "%s", json_object_to_json_string(r));
    json_object_put(r);
    r = s_triage("viewer", id, 4, "section_47_strategy", "");
    cr_assert_eq(s_code(r), SH_E_ROLE);
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"assign\",\"user\":\"prac\",\"event_id\":\"%s\",\"to\":\"prac\"}",
                id);
    cr_assert_eq(s_code(r), SH_E_ROLE, "only a manager assigns");
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"assign\",\"user\":\"boss\",\"event_id\":\"%s\",\"to\":\"viewer\"}",
                id);
    cr_assert_eq(s_code(r), SH_E_BAD_FIELD, "a read-only account holds no item");
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"assign\",\"user\":\"boss\",\"event_id\":\"%s\",\"to\":\"prac\"}",
                id);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    cr_assert_str_eq(af_get(json_object_object_get(r, "item"), "state"), "assigned");
    json_object_put(r);

    /* level and outcome must agree; a manager may record an exception with a reason */
    r = s_triage("prac", id, 2, "section_47_strategy", "");
    cr_assert_eq(s_code(r), SH_E_LEVEL_OUTCOME);
    cr_assert(strstr(af_get(r, "detail"), "universal_services, early_help"), "%s",
              af_get(r, "detail"));
    json_object_put(r);
    r = s_triage("prac", id, 2, "section_47_strategy", ",\"exception_reason\":\"x\"");
    cr_assert_eq(s_code(r), SH_E_LEVEL_OUTCOME, "a practitioner's exception is not one");
    json_object_put(r);
    r = s_triage("prac", id, 4, "no_such_outcome", "");
    cr_assert_eq(s_code(r), SH_E_BAD_FIELD);
    json_object_put(r);

    /* nothing to amend yet; then decided, once */
    r = s_triage("prac", id, 4, "section_47_strategy", ",\"amend_reason\":\"x\"");
    cr_assert_eq(s_code(r), SH_E_TRIAGE_STATE);
    json_object_put(r);
    r = s_triage("prac", id, 4, "section_47_strategy", "");
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    char first[40];
    snprintf(first, sizeof first, "%s", af_get(r, "event_id"));
    json_object_put(r);
    r = s_triage("boss", id, 1, "no_further_action", "");
    cr_assert_eq(s_code(r), SH_E_TRIAGE_STATE, "a second decision is refused");
    cr_assert(strstr(af_get(r, "detail"), "already decided by prac"), "%s", af_get(r, "detail"));
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"assign\",\"user\":\"boss\",\"event_id\":\"%s\",\"to\":\"boss\"}",
                id);
    cr_assert_eq(s_code(r), SH_E_TRIAGE_STATE, "a decided item is not reassigned");
    json_object_put(r);
    /* the decision reaches the school, and then the amendment, linked to it */
    json_object_put(af_wait_for(SCHOOL, "hub_decision"));
    r = s_triage("boss", id, 2, "section_47_strategy",
                 ",\"amend_reason\":\"SYNTHETIC new information\","
                 "\"exception_reason\":\"SYNTHETIC manager's exception\"");
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    cr_assert_str_eq(af_get(r, "amends"), first);
    cr_assert_eq(json_object_get_int(
                     json_object_object_get(json_object_object_get(r, "item"), "amendments")),
                 1);
    json_object_put(r);
    int found = 0;
    for (int tries = 0; tries < 100 && !found; tries++) {
        r = af_call(SCHOOL, "{\"op\":\"inbox\",\"user\":\"t\",\"purpose\":\"t\"}");
        const char *txt = json_object_to_json_string(r);
        found = strstr(txt, first) && strstr(txt, "amends_event_id");
        cr_assert_null(strstr(txt, "SYNTHETIC new information"), "the reason stays at the hub");
        cr_assert_null(strstr(txt, "SYNTHETIC-RATIONALE"));
        json_object_put(r);
        if (!found) usleep(100 * 1000);
    }
    cr_assert(found, "the school receives the amendment naming the first decision");

    /* decisions are made on received referrals only: not on a decision, nor a receipt */
    r = s_triage("prac", first, 4, "section_47_strategy", "");
    cr_assert_eq(s_code(r), SH_E_TRIAGE_STATE);
    cr_assert(strstr(af_get(r, "detail"), "hub_decision the hub sent"), "%s", af_get(r, "detail"));
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"queue\",\"user\":\"boss\",\"state\":\"decided\"}");
    it = json_object_array_get_idx(json_object_object_get(r, "items"), 0);
    cr_assert_str_eq(af_get(it, "state"), "decided");
    cr_assert_str_eq(af_get(it, "decided_by"), "boss");
    json_object_put(r);
}

Test(workspace_agent, accounts_lock_after_five_failed_sign_ins)
{
    af_wait_ready();
    s_account("locky", "practitioner");
    json_object *r = af_call(HUB, "{\"op\":\"account_get\",\"name\":\"locky\"}");
    cr_assert(af_ok(r));
    cr_assert(strncmp(af_get(r, "hash"), "$argon2id$", 10) == 0);
    cr_assert(sh_password_check(af_get(r, "hash"), "synthetic password for tests"));
    cr_assert(!sh_password_check(af_get(r, "hash"), "synthetic password for test"));
    json_object_put(r);
    for (int i = 0; i < LOCK_AFTER; i++) {
        r = af_call(HUB, "{\"op\":\"sign_in\",\"name\":\"locky\",\"ok\":false}");
        cr_assert(af_ok(r));
        cr_assert_eq(json_object_get_boolean(json_object_object_get(r, "locked")),
                     i == LOCK_AFTER - 1);
        json_object_put(r);
    }
    r = af_call(HUB, "{\"op\":\"account_get\",\"name\":\"locky\"}");
    cr_assert_eq(s_code(r), SH_E_LOCKED, "a locked account gives no hash");
    cr_assert_null(json_object_object_get(r, "hash"));
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"account_get\",\"name\":\"nobody\"}");
    cr_assert_eq(s_code(r), SH_E_SIGN_IN);
    json_object_put(r);
    s_account("locky", "practitioner"); /* an administrator unlocks it */
    r = af_call(HUB, "{\"op\":\"account_get\",\"name\":\"locky\"}");
    cr_assert(af_ok(r));
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"account_set\",\"name\":\"Bad Name\",\"role\":\"practitioner\","
                     "\"hash\":\"$argon2id$x\",\"user\":\"admin\"}");
    cr_assert_eq(s_code(r), SH_E_BAD_FIELD);
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"account_set\",\"name\":\"x\",\"role\":\"root\",\"hash\":"
                     "\"$argon2id$x\",\"user\":\"admin\"}");
    cr_assert_eq(s_code(r), SH_E_BAD_FIELD);
    json_object_put(r);
    sh_error err;
    char hash[SH_PASSWORD_HASH];
    cr_assert_eq(sh_password_hash("too short", hash, &err), SH_E_INVAL);
}

Test(workspace_agent, a_child_is_found_by_name_and_date_of_birth_never_kept_in_clear)
{
    af_wait_ready();
    sh_synth_child c;
    sh_synth_child_at(7002, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r));
    json_object_put(r);
    json_object_put(af_wait_for(HUB, "safeguarding_concern"));
    /* CONCERN_JSON's child is Child001 ZZTEST-0001, born 2015-03-01: any case, spacing or
     * hyphenation of the same name matches */
    r = af_call(HUB,
                "{\"op\":\"find\",\"user\":\"u\",\"purpose\":\"p\",\"given_name\":"
                "\"child001\",\"family_name\":\"zztest 0001\",\"date_of_birth\":\"2015-03-01\"}");
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object *kids = json_object_object_get(r, "children");
    cr_assert_eq(json_object_array_length(kids), 1, "%s", json_object_to_json_string(r));
    cr_assert_str_eq(af_get(json_object_array_get_idx(kids, 0), "nhs_number"), c.nhs_number);
    json_object_put(r);
    r = af_call(HUB,
                "{\"op\":\"find\",\"user\":\"u\",\"purpose\":\"p\",\"given_name\":"
                "\"Child001\",\"family_name\":\"ZZTEST-0001\",\"date_of_birth\":\"2015-03-02\"}");
    cr_assert_eq(json_object_array_length(json_object_object_get(r, "children")), 0);
    json_object_put(r);
    r = af_call(HUB,
                "{\"op\":\"find\",\"user\":\"u\",\"purpose\":\"p\",\"given_name\":"
                "\"Child001\",\"family_name\":\"ZZTEST-0001\",\"date_of_birth\":\"2015-02-30\"}");
    cr_assert_eq(s_code(r), SH_E_BAD_DATE);
    json_object_put(r);
    char *data = af_path("881.store/data.mdb");
    FILE *f = fopen(data, "rb");
    cr_assert_not_null(f, "%s", data);
    char *raw = malloc(64 << 20);
    cr_assert_not_null(raw);
    size_t n = fread(raw, 1, 64 << 20, f);
    fclose(f);
    cr_assert_null(memmem(raw, n, "ZZTEST-0001", 11), "a name in clear in the hub's store");
    cr_assert_null(memmem(raw, n, "child001", 8));
    free(raw);
    free(data);
}

Test(front_door, items_are_on_time_due_soon_overdue_or_decided_late)
{
    sh_agent *a = calloc(1, sizeof *a);
    cr_assert_not_null(a);
    a->fd.due_soon_ms = 4 * 3600000LL;
    int64_t now = s_utc("2026-11-30 12:00");
    const struct {
        int state;
        int64_t deadline, decided;
        const char *due;
    } cases[] = {
        {FD_OPEN, s_utc("2026-12-01 17:00"), 0, "on_time"},
        {FD_ASSIGNED, s_utc("2026-11-30 15:00"), 0, "due_soon"},
        {FD_OPEN, s_utc("2026-11-30 11:59"), 0, "overdue"},
        {FD_DECIDED, s_utc("2026-11-30 17:00"), s_utc("2026-11-30 11:00"), "decided"},
        {FD_DECIDED, s_utc("2026-11-29 17:00"), s_utc("2026-11-30 11:00"), "decided_late"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ag_fd_item it = {.state = cases[i].state,
                         .type = 21,
                         .level = 3,
                         .received_ms = s_utc("2026-11-29 10:00"),
                         .deadline_ms = cases[i].deadline,
                         .decided_ms = cases[i].decided};
        json_object *o = ag_fd_json(a, &it, now);
        cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "due")), cases[i].due,
                         "case %zu", i);
        json_object_put(o);
    }
    free(a);
}
