/* test_agents.c — the real broker and three real agent processes (education, health, the
 * Children and Families Hub), driven through the agents' local sockets as a host system
 * would: a concern reaches the hub, the hub's decision reaches the referrer only (minimised),
 * a child-protection flag reaches health, an attendance of the flagged child notifies the
 * child's LA, health never holds the narrative, the outbox survives a broker outage, and
 * every local read is in the audit log with who and why. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "agent.h"
#include "audit.h"
#include "broker.h"
#include "client.h"
#include "synth.h"
#include "agents_fixture.h"
#include "clock.h"
#include "testutil.h"

TestSuite(agents, .init = af_setup, .fini = af_teardown, .timeout = 90);

Test(agents, a_case_end_to_end)
{
    uint64_t rng = 4242;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    af_play_case(&c);
    json_object *r;

    /* reads need who and why */
    r = af_call(HEALTH, "{\"op\":\"child\",\"id\":\"%s\"}", c.nhs_number);
    cr_assert(!af_ok(r));
    cr_assert_str_eq(af_get(r, "error"), "SH_E_MISSING_FIELD");
    json_object_put(r);

    /* every local read is in the health agent's audit log with user and purpose */
    af_stop(&af_agent_pid[HEALTH]);
    sh_key *mk = NULL, *ak = NULL;
    sh_store *st = NULL;
    sh_audit *a = NULL;
    sh_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/RAJ.master", af_dir);
    cr_assert_eq(sh_key_load_file(path, &mk, &err), SH_OK);
    snprintf(path, sizeof path, "%s/RAJ.store", af_dir);
    cr_assert_eq(sh_store_open(path, mk, NULL, &st, &err), SH_OK);
    cr_assert_eq(sh_store_derive_key(st, "audit mac", &ak), SH_OK);
    cr_assert_eq(sh_audit_open(st, ak, NULL, 0, &a, &err), SH_OK);
    sh_audit_report rep;
    cr_assert_eq(sh_audit_verify(a, NULL, 0, &rep), SH_OK, "%s", rep.detail);
    int reads = 0, nurse_reads = 0;
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(st, 0, &t, &err), SH_OK);
    for (uint64_t s = 1; s <= rep.head_seq; s++) {
        sh_audit_record rec;
        cr_assert_eq(sh_audit_get(a, t, s, &rec, &err), SH_OK);
        if (rec.action == SH_AUDIT_READ) {
            reads++;
            cr_assert_str_neq(rec.actor_user, "");
            cr_assert_str_neq(rec.purpose, "");
            nurse_reads += strcmp(rec.actor_user, "ed-nurse-3") == 0 &&
                           strcmp(rec.purpose, "direct_care") == 0;
        }
    }
    sh_txn_abort(&t);
    cr_assert_gt(reads, 0);
    cr_assert_eq(nurse_reads, 3,
                 "the clinician's view read the flag, the attendance and its notification");
    sh_audit_destroy(&a);
    sh_store_destroy(&st);
    sh_key_destroy(&ak);
    sh_key_destroy(&mk);
}

/* The broker sends each delivery's retention under the protocol that permitted it; the
 * recipient records when it falls due and shows it (the test protocols keep 6 years, then
 * erase: tests/isp_fixture.h). A sent event has none. */
Test(agents, a_received_event_is_kept_as_its_protocol_says)
{
    uint64_t rng = 5151;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    af_play_case(&c);
    json_object *r = af_call(HUB, "{\"op\":\"inbox\",\"user\":\"sw\",\"purpose\":\"test\"}");
    cr_assert(af_ok(r));
    json_object *items, *it, *v;
    cr_assert(json_object_object_get_ex(r, "items", &items));
    cr_assert_gt(json_object_array_length(items), 0);
    it = json_object_array_get_idx(items, 0);
    cr_assert(json_object_object_get_ex(it, "event_id", &v));
    char id[64];
    snprintf(id, sizeof id, "%s", json_object_get_string(v));
    json_object_put(r);
    r = af_call(HUB, "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw\",\"purpose\":\"test\"}",
                id);
    cr_assert(af_ok(r));
    json_object *item, *keep;
    cr_assert(json_object_object_get_ex(r, "item", &item));
    cr_assert(json_object_object_get_ex(item, "retention", &keep), "%s",
              json_object_to_json_string(item));
    cr_assert(json_object_object_get_ex(keep, "keep", &v));
    cr_assert_str_eq(json_object_get_string(v), "72m");
    cr_assert(json_object_object_get_ex(keep, "then", &v));
    cr_assert_str_eq(json_object_get_string(v), "erase");
    cr_assert(json_object_object_get_ex(keep, "due_at_ms", &v));
    int64_t due = json_object_get_int64(v);
    cr_assert(json_object_object_get_ex(item, "stored_at_ms", &v));
    int64_t want = sh_clock_add(json_object_get_int64(v), 72, 'm');
    cr_assert(due > want - 1000 && due < want + 1000, "due %lld, stored + 6 years %lld",
              (long long)due, (long long)want); /* (the two clocks are read a moment apart) */
    json_object_put(r);
    /* the school's own sent concern: no retention of a received copy */
    r = af_call(SCHOOL,
                "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"dsl\",\"purpose\":\"test\"}", id);
    if (af_ok(r) && json_object_object_get_ex(r, "item", &item))
        cr_assert(!json_object_object_get_ex(item, "retention", &keep));
    json_object_put(r);
}

Test(agents, outbox_survives_a_broker_outage)
{
    af_stop(&af_broker_pid);
    uint64_t rng = 99;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    char id[40];
    snprintf(id, sizeof id, "%s", af_get(r, "event_id"));
    json_object_put(r);
    usleep(1500 * 1000); /* the school notices the broker is gone */
    r = af_call(SCHOOL, "{\"op\":\"status\"}");
    cr_assert_eq(json_object_get_int(json_object_object_get(r, "outbox")), 1, "%s",
                 json_object_to_json_string(r));
    json_object_put(r);
    af_start_broker();
    json_object *it = af_wait_for(HUB, "safeguarding_concern");
    cr_assert_str_eq(af_get(it, "event_id"), id);
    json_object_put(it);
    for (int tries = 0; tries < 50; tries++) {
        r = af_call(SCHOOL, "{\"op\":\"status\"}");
        int left = json_object_get_int(json_object_object_get(r, "outbox"));
        json_object_put(r);
        if (!left) return;
        usleep(100 * 1000);
    }
    cr_assert_fail("the outbox never drained");
}

/* What is published while earlier publishes are unconfirmed gathers behind them, but only for
 * a few milliseconds: with the broker frozen (SIGSTOP: the connection stays up, nothing is
 * confirmed) the second event is sent all the same, and both arrive once it runs again. */
Test(agents, a_publish_behind_an_unconfirmed_one_waits_only_a_moment)
{
    uint64_t rng = 7;
    sh_synth_child c[2];
    char id[2][40];
    cr_assert_eq(kill(af_broker_pid, SIGSTOP), 0);
    for (int i = 0; i < 2; i++) {
        sh_synth_child_make(&rng, "881", &c[i]);
        json_object *r = af_call(SCHOOL, CONCERN_JSON, c[i].nhs_number, c[i].upn);
        cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
        snprintf(id[i], sizeof id[i], "%s", af_get(r, "event_id"));
        json_object_put(r);
    }
    int in_flight = 0; /* (the agent gives the broker up after 1.5 s of silence) */
    for (int tries = 0; tries < 30 && in_flight < 2; tries++) {
        usleep(25 * 1000);
        json_object *r = af_call(SCHOOL, "{\"op\":\"status\"}");
        in_flight = json_object_get_int(json_object_object_get(r, "in_flight"));
        json_object_put(r);
    }
    cr_assert_eq(kill(af_broker_pid, SIGCONT), 0);
    cr_assert_eq(in_flight, 2, "the second publish was still held back after 750 ms");
    int got = 0;
    for (int tries = 0; tries < 100 && got != 3; tries++) {
        json_object *r =
            af_call(HUB, "{\"op\":\"inbox\",\"user\":\"tester\",\"purpose\":\"test\"}");
        json_object *items = json_object_object_get(r, "items");
        for (size_t k = 0; k < json_object_array_length(items); k++)
            for (int i = 0; i < 2; i++)
                if (strcmp(af_get(json_object_array_get_idx(items, k), "event_id"), id[i]) == 0)
                    got |= 1 << i;
        json_object_put(r);
        if (got != 3) usleep(100 * 1000);
    }
    cr_assert_eq(got, 3, "the hub received %s of the two", got ? "one" : "neither");
}

/* An intruder with disk access edits the hub's store: one byte of a sealed event flipped, two
 * events' values swapped. The agent says which events are damaged and returns nothing of them
 * (the swapped values would otherwise show one child's concern under another's id). */
Test(agents, a_store_edited_on_disk_is_reported_never_read)
{
    char ids[3][40];
    static uint64_t rng = 77;
    for (int i = 0; i < 3; i++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
        snprintf(ids[i], sizeof ids[i], "%s", af_get(r, "event_id"));
        json_object_put(r);
    }
    for (int tries = 0; tries < 100; tries++) {
        json_object *r = af_call(HUB, "{\"op\":\"status\"}");
        int64_t got = json_object_get_int64(json_object_object_get(r, "received"));
        json_object_put(r);
        if (got >= 3) break;
        usleep(100 * 1000);
    }
    af_stop(&af_agent_pid[HUB]);
    char *store = af_path("881.store");
    uint8_t id[3][16], a[1 << 16], b[1 << 16];
    size_t al = 0, bl = 0;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sh_event_id_parse(ids[i], id[i]), SH_OK);
    cr_assert_eq(tu_raw_flip(store, "events", id[0], 16, 40, 0x04), 0);
    cr_assert_eq(tu_raw_get(store, "events", id[1], 16, a, sizeof a, &al), 0);
    cr_assert_eq(tu_raw_get(store, "events", id[2], 16, b, sizeof b, &bl), 0);
    cr_assert_eq(tu_raw_put(store, "events", id[1], 16, b, bl), 0);
    cr_assert_eq(tu_raw_put(store, "events", id[2], 16, a, al), 0);
    free(store);
    af_start_agent(HUB);
    for (int i = 0; i < 3; i++) {
        json_object *r = af_call(
            HUB, "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw-7\",\"purpose\":\"triage\"}",
            ids[i]);
        const char *txt = json_object_to_json_string(r);
        cr_assert(!af_ok(r), "a damaged event was shown: %s", txt);
        cr_assert_eq(json_object_get_int(json_object_object_get(r, "code")), SH_E_AUTH_FAILED, "%s",
                     txt);
        cr_assert_not_null(strstr(txt, "integrity"), "%s", txt);
        cr_assert_null(strstr(txt, "SYNTHETIC-NARRATIVE-MARKER"), "%s", txt);
        json_object_put(r);
    }
    /* the inbox lists them as damaged, with nothing of their content */
    json_object *r = af_call(HUB, "{\"op\":\"inbox\",\"user\":\"sw-7\",\"purpose\":\"triage\"}");
    cr_assert(af_ok(r));
    json_object *items = json_object_object_get(r, "items");
    int damaged = 0;
    for (size_t k = 0; k < json_object_array_length(items); k++) {
        json_object *it = json_object_array_get_idx(items, k);
        if (json_object_get_boolean(json_object_object_get(it, "damaged"))) {
            damaged++;
            cr_assert_null(json_object_object_get(it, "event"));
        }
    }
    cr_assert_eq(damaged, 3, "%s", json_object_to_json_string(r));
    json_object_put(r);
    /* and the failed reads are in the hub's audit log */
    af_stop(&af_agent_pid[HUB]);
    char *out = NULL, *st = af_path("881.store"), *mk = af_path("881.master"),
         *sk = af_path("881.sign");
    const char *args[] = {"audit", "replay", st, "--master", mk, "--sign-key", sk, "--json", NULL};
    cr_assert_eq(tu_cli(&out, args), 0, "%s", out);
    size_t failed = 0;
    for (const char *p = out; (p = strstr(p, "stored event damaged")); p++)
        failed++;
    cr_assert_eq(failed, 6, "three shows and three inbox lines audited as failed reads: %zu",
                 failed);
    free(out);
    free(st);
    free(mk);
    free(sk);
    af_start_agent(HUB);
}

Test(agents, agent_restart_mid_case_loses_and_duplicates_nothing)
{
    uint64_t rng = 7;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    /* the hub is down while two concerns are raised */
    af_stop(&af_agent_pid[HUB]);
    char ids[2][40];
    for (int i = 0; i < 2; i++) {
        json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
        snprintf(ids[i], sizeof ids[i], "%s", af_get(r, "event_id"));
        json_object_put(r);
    }
    af_start_agent(HUB);
    /* both arrive once each, and again once each after a second restart */
    for (int round = 0; round < 2; round++) {
        int seen[2] = {0, 0}, total = 0;
        for (int tries = 0; tries < 100 && (seen[0] < 1 || seen[1] < 1); tries++) {
            usleep(100 * 1000);
            struct stat st;
            char sock[600];
            snprintf(sock, sizeof sock, "%s/881.sock", af_dir);
            if (stat(sock, &st)) continue;
            json_object *r = af_call(HUB, "{\"op\":\"inbox\",\"user\":\"t\",\"purpose\":\"t\"}");
            json_object *items = json_object_object_get(r, "items");
            seen[0] = seen[1] = total = 0;
            for (size_t k = 0; k < json_object_array_length(items); k++) {
                json_object *it = json_object_array_get_idx(items, k);
                if (strcmp(af_get(it, "type"), "safeguarding_concern")) continue;
                total++;
                for (int i = 0; i < 2; i++)
                    seen[i] += strcmp(af_get(it, "event_id"), ids[i]) == 0;
            }
            json_object_put(r);
        }
        cr_assert(seen[0] == 1 && seen[1] == 1 && total == 2,
                  "round %d: seen %d and %d of %d concerns", round, seen[0], seen[1], total);
        af_stop(&af_agent_pid[HUB]);
        af_start_agent(HUB);
    }
}

/* ---- what an auditor finds in these processes' logs --------------------------------------- */
