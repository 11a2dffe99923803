/* test_agents_audit.c — the auditor's side of the agents' case, through the real processes and
 * the `sharehub audit` command: a rolled-back agent log caught by the broker's witness; the
 * subject report of the case; what another policy would have done; an audited read of an
 * event from an agent's store and from the broker's. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents_fixture.h"
#include "audit.h"
#include "synth.h"
#include "testutil.h"

TestSuite(agents_audit, .init = af_setup, .fini = af_teardown, .timeout = 90);

Test(agents_audit, a_rolled_back_agent_log_is_caught_by_the_brokers_witness)
{
    uint64_t rng = 31;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r));
    json_object_put(r);
    json_object_put(af_wait_for(HUB, "safeguarding_concern"));
    /* an intruder keeps a copy of the hub's store as it is now */
    af_stop(&af_agent_pid[HUB]);
    char cmd[2000], hub[600];
    snprintf(hub, sizeof hub, "%s/881.store", af_dir);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s.old'", hub, hub);
    cr_assert_eq(system(cmd), 0);
    /* the hub works on; its checkpoints reach the broker (every 300 ms here) */
    af_start_agent(HUB);
    af_wait_ready();
    for (int i = 0; i < 2; i++) {
        r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(af_ok(r));
        json_object_put(r);
    }
    usleep(1500 * 1000);
    r = af_call(HUB,
                "{\"op\":\"child\",\"id\":\"%s\",\"user\":\"sw-2\",\"purpose\":"
                "\"triage\"}",
                c.nhs_number);
    json_object_put(r);
    af_stop(&af_agent_pid[HUB]); /* its final checkpoint is witnessed too */
    /* ... then puts the old copy back: a log that is internally consistent */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.old' '%s'", hub, hub, hub);
    cr_assert_eq(system(cmd), 0);
    char *ring = af_keyring(), *out, *bstore = af_path("broker.store");
    const char *alone[] = {"audit", "verify", hub, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, alone), 0, "on its own the rolled-back log verifies: %s", out);
    free(out);
    const char *witnessed[] = {"audit", "verify",    hub,  "--witness",
                               bstore,  "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, witnessed), 1, "%s", out);
    cr_assert(strstr(out, "TAMPERED: E606 SH_E_AUDIT_ROLLED_BACK"), "%s", out);
    cr_assert(strstr(out, "rolled back or cut short"), "%s", out);
    free(out);
    /* the other agents' logs agree with the broker's record of them */
    char school[600];
    snprintf(school, sizeof school, "%s/8819990.store", af_dir);
    const char *fine[] = {"audit", "verify", school, "--witness", bstore, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, fine), 0, "%s", out);
    cr_assert(strstr(out, "witnessed heads match (held by broker)"), "%s", out);
    free(out);
    /* restarted on the old store, the hub offers an older checkpoint: the broker refuses it */
    af_start_agent(HUB);
    usleep(1500 * 1000);
    const char *refused[] = {"audit",    "replay", bstore,  "--keyring", ring, "--json",
                             "--action", "refuse", "--org", "881",       NULL};
    cr_assert_eq(tu_cli(&out, refused), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":606"), "%s", out);
    cr_assert(strstr(out, "is behind the witnessed checkpoint"), "%s", out);
    free(out);
    free(ring);
    free(bstore);
}

Test(agents_audit, the_auditor_reports_the_case_and_what_another_policy_would_have_done)
{
    uint64_t rng = 4243;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    af_play_case(&c);
    for (int i = 0; i < NAGENT; i++)
        af_stop(&af_agent_pid[i]);
    af_stop(&af_broker_pid);
    char *ring = af_keyring(), *out = NULL, *md = af_path("report.md"),
         *html = af_path("report.html");
    char st[4][600];
    const char *names[] = {"broker", "881", "8819990", "RAJ"};
    for (int i = 0; i < 4; i++)
        snprintf(st[i], sizeof st[i], "%s/%s.store", af_dir, names[i]);
    const char *subject[] = {"audit", "subject",   c.nhs_number, "--stores", st[0], st[1], st[2],
                             st[3],   "--keyring", ring,         "--output", md,    NULL};
    cr_assert_eq(tu_cli(&out, subject), 0, "%s", out);
    free(out);
    FILE *f = fopen(md, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    /* four events: the concern, the decision, the plan, the attendance (and its notification) */
    cr_assert(strstr(text, "Events about the child (5)"), "%s", text);
    cr_assert(strstr(text, "| broker |") && strstr(text, "verified: "), "%s", text);
    cr_assert(strstr(text, "safeguarding_concern from 8819990"), "%s", text);
    cr_assert(strstr(text, "shared with 881 under isp-sgc@1; data items: "
                           "child,safeguarding_concern"),
              "%s", text);
    cr_assert(strstr(text, "shared with RAJ under isp-cpis@1; data items: child.nhs_number,"
                           "child.date_of_birth,cp_plan_status.status"),
              "%s", text);
    cr_assert(strstr(text, "received and stored by RAJ from 881 under isp-cpis@1"), "%s", text);
    cr_assert(strstr(text, "delivered to 8819990 and acknowledged"), "%s", text);
    cr_assert(strstr(text, "READ at RAJ by ed-nurse-3 for \"direct_care\""), "%s", text);
    cr_assert(strstr(text, "READ at 881 by sw-7 for \"triage\""), "%s", text);
    cr_assert(strstr(text, "not shared with (no protocol names them as recipients"), "%s", text);
    cr_assert_null(strstr(text, "NARRATIVE-MARKER"), "the audit logs hold no narrative");
    cr_assert_null(strstr(text, "Child001"), "nor names");
    /* the identifier appears once: where the report says what was searched */
    char *first = strstr(text, c.nhs_number);
    cr_assert(first && !strstr(first + 1, c.nhs_number), "%s", text);
    const char *page[] = {"audit",    "subject", c.nhs_number, "--stores",  st[0],
                          st[1],      st[2],     st[3],        "--keyring", ring,
                          "--format", "html",    "--output",   html,        NULL};
    cr_assert_eq(tu_cli(&out, page), 0, "%s", out);
    free(out);
    f = fopen(html, "r");
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strncmp(text, "<!DOCTYPE html>", 15) == 0 && strstr(text, "</html>"));
    cr_assert(strstr(text, "<table>") && strstr(text, "@media print"));
    cr_assert(strstr(text, "READ at RAJ by ed-nurse-3 for &quot;direct_care&quot;"));

    /* what-if: the same policy changes nothing */
    char *reg = af_path("registry.yaml"), *pol = af_path("policy"), *pol2 = af_path("policy2");
    const char *same[] = {"audit",      "whatif", "--store",   st[0], "--policy", pol,
                          "--registry", reg,      "--keyring", ring,  "--json",   NULL};
    cr_assert_eq(tu_cli(&out, same), 0, "%s", out);
    cr_assert(strstr(out, "\"newly_permitted\":{\"count\":0") &&
                  strstr(out, "\"newly_denied\":{\"count\":0") &&
                  strstr(out, "\"items_removed\":{\"count\":0") &&
                  strstr(out, "\"items_added\":{\"count\":0"),
              "%s", out);
    free(out);
    /* health no longer gets the date of birth, and the feedback protocol has lapsed */
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s' '%s' && sed -i 's/child.nhs_number, child.date_of_birth,/"
             "child.nhs_number,/' '%s/isp-cpis.yaml' && sed -i \"s/^review_date: .*/review_date:"
             " '2020-01-31'/\" '%s/isp-feedback.yaml'",
             pol, pol2, pol2, pol2);
    cr_assert_eq(system(cmd), 0);
    const char *changed[] = {"audit",      "whatif", "--store",   st[0], "--policy", pol2,
                             "--registry", reg,      "--keyring", ring,  NULL};
    cr_assert_eq(tu_cli(&out, changed), 0, "%s", out);
    cr_assert(strstr(out, "newly denied                                1"), "%s", out);
    cr_assert(strstr(out, "data items removed                          1"), "%s", out);
    cr_assert(strstr(out, "now denied: E802 isp-feedback@1 lapsed on 2020-04-30"), "%s", out);
    cr_assert(strstr(out, "-> RAJ: isp-cpis@1 would no longer share child.date_of_birth"), "%s",
              out);
    free(out);
    /* the hub would keep concerns a day instead of six years: today they are kept for another
     * time; three days on, what the hub received would be erased */
    char *pol3 = af_path("policy3");
    snprintf(cmd, sizeof cmd,
             "cp -r '%s' '%s' && sed -i 's/^retention: {keep: 6 years, then: erase}/retention: "
             "{keep: 1 day, then: erase}/' '%s/isp-sgc.yaml'",
             pol, pol3, pol3);
    cr_assert_eq(system(cmd), 0);
    const char *shorter[] = {"audit",      "whatif", "--store",   st[0], "--policy", pol3,
                             "--registry", reg,      "--keyring", ring,  NULL};
    cr_assert_eq(tu_cli(&out, shorter), 0, "%s", out);
    cr_assert(strstr(out, "kept for another time") && strstr(out, "would be erased now     "), "%s",
              out);
    cr_assert(strstr(out, "-> 881: isp-sgc@1 keeps it 1d:erase instead of 72m:erase"), "%s", out);
    free(out);
    char later[11];
    time_t in3 = time(NULL) + 3 * 86400;
    strftime(later, sizeof later, "%Y-%m-%d", gmtime(&in3));
    const char *by_then[] = {"audit", "whatif",     "--store", st[0],       "--policy",
                             pol3,    "--registry", reg,       "--keyring", ring,
                             "--at",  later,        "--json",  NULL};
    cr_assert_eq(tu_cli(&out, by_then), 0, "%s", out);
    cr_assert(strstr(out, "\"would_be_erased\":{\"count\":") &&
                  !strstr(out, "\"would_be_erased\":{\"count\":0"),
              "%s", out);
    free(out);
    free(pol3);

    /* reading an event's contents takes the store's own keys, and is itself audited */
    const char *received[] = {"audit",  "replay",   st[1],     "--keyring", ring,
                              "--json", "--action", "receive", NULL};
    cr_assert_eq(tu_cli(&out, received), 0, "%s", out);
    char id[SH_EVENT_ID_STR];
    const char *at = strstr(out, "\"event_id\":\"");
    cr_assert_not_null(at, "%s", out);
    snprintf(id, sizeof id, "%.36s", at + 12);
    free(out);
    char *mk = af_path("881.master"), *sk = af_path("881.sign");
    const char *no_keys[] = {"audit", "event",  st[1],  id,          "--keyring",
                             ring,    "--user", "ig-1", "--purpose", "subject access request",
                             NULL};
    cr_assert_eq(tu_cli(&out, no_keys), 2, "a keyring opens no payload: %s", out);
    free(out);
    const char *read[] = {"audit",    "event", st[1],        id,
                          "--master", mk,      "--sign-key", sk,
                          "--user",   "ig-1",  "--purpose",  "subject access request",
                          NULL};
    cr_assert_eq(tu_cli(&out, read), 0, "%s", out);
    cr_assert(strstr(out, "SYNTHETIC-NARRATIVE-MARKER"), "%s", out);
    free(out);
    /* the broker's copy of the same event, parsed as a broker's record (its store has a queue) */
    char *bmk = af_path("broker.master"), *bsk = af_path("broker.sign");
    const char *bread[] = {"audit",    "event", st[0],        id,
                           "--master", bmk,     "--sign-key", bsk,
                           "--user",   "ig-1",  "--purpose",  "subject access request",
                           NULL};
    cr_assert_eq(tu_cli(&out, bread), 0, "%s", out);
    cr_assert(strstr(out, "SYNTHETIC-NARRATIVE-MARKER"), "%s", out);
    free(out);
    free(bmk);
    free(bsk);
    const char *trail[] = {"audit",    "replay", st[1],   "--keyring", ring, "--json",
                           "--action", "read",   "--org", "auditor",   NULL};
    cr_assert_eq(tu_cli(&out, trail), 0, "%s", out);
    cr_assert(strstr(out, "\"actor_user\":\"ig-1\",\"peer_org\":\"\",\"purpose\":\"subject "
                          "access request\""),
              "%s", out);
    cr_assert(strstr(out, id), "%s", out);
    free(out);
    /* the log still verifies; the auditor's read is its head, and signed over */
    const char *last[] = {"audit", "verify", st[1], "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, last), 0, "%s", out);
    unsigned long long at_cp = 0, head = 0;
    const char *lp = strstr(out, "(last at ");
    cr_assert(lp && sscanf(lp, "(last at %llu), head %llu", &at_cp, &head) == 2, "%s", out);
    cr_assert_eq(at_cp, head, "the newest entry is signed over: %s", out);
    free(out);
    free(mk);
    free(sk);
    free(reg);
    free(pol);
    free(pol2);
    free(ring);
    free(md);
    free(html);
}
