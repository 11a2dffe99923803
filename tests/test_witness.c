/* test_witness.c — everyone witnesses everyone, through the real processes: the broker's signed
 * head rides on every CONFIRM and DELIVER and the agents record it, so a broker log rewritten
 * and re-signed with the broker's own keys, put back from a copy, cut or emptied is caught by
 * `sharehub audit verify` across the stores (and, put back, by the agents live); and an edited
 * witness record at the broker does not let it accept a rolled-back agent. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents_fixture.h"
#include "audit.h"
#include "synth.h"
#include "testutil.h"

TestSuite(witness, .init = af_setup, .fini = af_teardown, .timeout = 90);

static void s_store_path(const char *org, char out[600])
{
    snprintf(out, 600, "%s/%s.store", af_dir, org);
}

/* One concern from the school, confirmed by the broker: the school's outbox is empty again, so
 * the CONFIRM, and the broker's head with it, has reached the school. */
static void s_concern(uint64_t seed)
{
    sh_synth_child c;
    sh_synth_child_make(&seed, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r));
    json_object_put(r);
    for (int tries = 0;; tries++) {
        cr_assert(tries < 100, "the school's concern was never confirmed");
        r = af_call(SCHOOL, "{\"op\":\"status\"}");
        int64_t waiting = json_object_get_int64(json_object_object_get(r, "outbox"));
        json_object_put(r);
        if (waiting == 0) break;
        usleep(100 * 1000);
    }
}

static void s_stop_all(void)
{
    for (int i = 0; i < NAGENT; i++)
        af_stop(&af_agent_pid[i]); /* each records the newest broker head as it stops */
    af_stop(&af_broker_pid);
}

/* `sharehub audit verify` of the three agents' stores with --witness the broker's. */
static int s_verify_all(char **out, const char *ring, int json)
{
    char st[4][600];
    s_store_path("881", st[0]);
    s_store_path("8819990", st[1]);
    s_store_path("RAJ", st[2]);
    s_store_path("broker", st[3]);
    const char *args[] = {"audit",     "verify", st[0],       st[1], st[2],
                          "--witness", st[3],    "--keyring", ring,  json ? "--json" : NULL,
                          NULL};
    return tu_cli(out, args);
}

typedef struct s_log {
    sh_audit_record *v;
    size_t n;
} s_log;

static int s_keep(void *ctx, const sh_audit_record *r)
{
    s_log *l = ctx;
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    cr_assert_not_null(l->v);
    l->v[l->n++] = *r;
    return 0;
}

/* What an operator holding the broker's master and signing keys can do: rewrite its log
 * without the `send` entries to peer, re-chained from a new genesis and re-signed, so that it
 * verifies on its own. Returns how many entries it removed. */
static size_t s_rewrite_broker_without_sends_to(const char *peer)
{
    char dir[600], mk[600], sk[600];
    s_store_path("broker", dir);
    snprintf(mk, sizeof mk, "%s/broker.master", af_dir);
    snprintf(sk, sizeof sk, "%s/broker.sign", af_dir);
    sh_key *master = NULL;
    sh_signkey *sign = NULL;
    sh_store *st = NULL;
    sh_audit *a = NULL;
    sh_error err;
    cr_assert_eq(sh_key_load_file(mk, &master, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(sk, &sign, &err), SH_OK);
    cr_assert_eq(sh_store_open(dir, master, NULL, &st, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_audit_open(st, NULL, sign, 0, &a, &err), SH_OK);
    s_log l = {0};
    sh_audit_report rep;
    cr_assert_eq(sh_audit_scan(a, 1, s_keep, &l, &rep), SH_OK, "%s", rep.detail);
    sh_db entries, cps;
    cr_assert_eq(sh_store_db(st, "sh_audit", SH_DB_PLAIN, &entries, &err), SH_OK);
    cr_assert_eq(sh_store_db(st, "sh_audit_cp", SH_DB_PLAIN, &cps, &err), SH_OK);
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(st, 1, &t, &err), SH_OK);
    for (size_t i = 0; i < l.n; i++) {
        uint8_t k[8];
        tu_be64(l.v[i].seq, k);
        cr_assert_eq(sh_txn_del(t, entries, k, 8, &err), SH_OK);
        (void)sh_txn_del(t, cps, k, 8, &err); /* (only some entries have one) */
    }
    size_t removed = 0;
    for (size_t i = 1; i < l.n; i++) { /* (the genesis entry is written again by itself) */
        const sh_audit_record *r = &l.v[i];
        if (r->action == SH_AUDIT_SEND && strcmp(r->peer_org, peer) == 0) {
            removed++;
            continue;
        }
        sh_audit_entry e = {.time_ms = r->time_ms,
                            .action = r->action,
                            .outcome = r->outcome,
                            .code = r->code,
                            .event_id = r->has_event ? r->event_id : NULL,
                            .child_ref = r->has_child ? r->child_ref : NULL,
                            .actor_org = r->actor_org,
                            .actor_user = r->actor_user,
                            .peer_org = r->peer_org,
                            .purpose = r->purpose,
                            .rule = r->rule,
                            .detail = r->detail};
        cr_assert_eq(sh_audit_append(a, t, &e, NULL, &err), SH_OK, "%s", err.detail);
    }
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail); /* and signs its head */
    free(l.v);
    sh_audit_destroy(&a);
    sh_store_destroy(&st);
    sh_signkey_destroy(&sign);
    sh_key_destroy(&master);
    return removed;
}

Test(witness, a_broker_log_rewritten_and_re_signed_with_its_own_keys_is_caught_by_the_agents)
{
    s_concern(51);
    s_concern(52);
    s_stop_all();
    char *ring = af_keyring(), *out = NULL, broker[600];
    s_store_path("broker", broker);
    cr_assert_eq(s_verify_all(&out, ring, 0), 0, "before: %s", out);
    cr_assert(strstr(out, "(held by hub, school, health)") || strstr(out, "held by hub"), "%s",
              out);
    free(out);

    cr_assert_eq(s_rewrite_broker_without_sends_to("881"), 2, "the two shares with the hub");
    const char *alone[] = {"audit", "verify", broker, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, alone), 0, "re-signed, it verifies on its own: %s", out);
    free(out);
    cr_assert_eq(s_verify_all(&out, ring, 0), 1, "%s", out);
    cr_assert(strstr(out, "broker.store: TAMPERED: E606 SH_E_AUDIT_ROLLED_BACK"), "%s", out);
    cr_assert(strstr(out, "differs from the signed head"), "%s", out);
    cr_assert(strstr(out, "881.store: OK"), "the agents' own logs still verify: %s", out);
    free(out);
    free(ring);
}

Test(witness, a_broker_log_put_back_from_a_copy_is_alarmed_live_and_caught_after)
{
    s_concern(61);
    char cmd[2000], broker[600];
    s_store_path("broker", broker);
    af_stop(&af_broker_pid);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s.old'", broker, broker);
    cr_assert_eq(system(cmd), 0);
    af_start_broker();
    af_wait_ready();
    s_concern(62);
    s_concern(63);
    usleep(1200 * 1000); /* (the agents record a broker head at most once a second) */
    s_concern(64);
    /* the broker is put back to the copy and started on it */
    af_stop(&af_broker_pid);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.old' '%s'", broker, broker, broker);
    cr_assert_eq(system(cmd), 0);
    af_start_broker();
    af_wait_ready();
    s_concern(65); /* its CONFIRM carries a head behind the one the school holds */
    s_stop_all();
    char *ring = af_keyring(), *out = NULL, school[600];
    s_store_path("8819990", school);
    const char *alarm[] = {"audit",    "replay",  school,       "--keyring", ring, "--json",
                           "--action", "witness", "--decision", "failed",    NULL};
    cr_assert_eq(tu_cli(&out, alarm), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":606") && strstr(out, "(went back)"), "%s", out);
    free(out);
    cr_assert_eq(s_verify_all(&out, ring, 0), 1, "%s", out);
    cr_assert(strstr(out, "broker.store: TAMPERED: E606"), "%s", out);
    free(out);

    /* cut without any key: the newest entry gone is seen by the signed head alone; emptied,
     * the log is an error on its own */
    const char *alone[] = {"audit", "verify", broker, "--keyring", ring, "--json", NULL};
    cr_assert_eq(tu_cli(&out, alone), 0, "%s", out);
    json_object *j = json_tokener_parse(out);
    uint64_t head = (uint64_t)json_object_get_int64(json_object_object_get(j, "head_seq"));
    json_object_put(j);
    free(out);
    uint8_t k[8];
    tu_be64(head, k);
    cr_assert_eq(tu_raw_del(broker, "sh_audit", k, 8), 0);
    cr_assert_eq(tu_cli(&out, alone), 1, "%s", out);
    cr_assert(strstr(out, "\"code\":603"), "%s", out);
    free(out);
    for (uint64_t s = 1; s < head; s++) {
        tu_be64(s, k);
        cr_assert_eq(tu_raw_del(broker, "sh_audit", k, 8), 0);
    }
    cr_assert_eq(tu_cli(&out, alone), 1, "%s", out);
    cr_assert(strstr(out, "\"code\":607"), "%s", out);
    free(out);
    free(ring);
}

Test(witness, an_edited_witness_record_does_not_let_the_broker_accept_a_rolled_back_agent)
{
    s_concern(71);
    char cmd[2000], hub[600], broker[600];
    s_store_path("881", hub);
    s_store_path("broker", broker);
    af_stop(&af_agent_pid[HUB]);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s.old'", hub, hub);
    cr_assert_eq(system(cmd), 0);
    af_start_agent(HUB);
    af_wait_ready();
    s_concern(72);
    usleep(800 * 1000); /* its newer head reaches the broker (witness_ms 300 here) */
    af_stop(&af_agent_pid[HUB]);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.old' '%s'", hub, hub, hub);
    cr_assert_eq(system(cmd), 0);
    /* and the intruder edits the broker's record of the hub's store */
    sh_store *st = NULL;
    sh_error err;
    cr_assert_eq(sh_store_open_ro(hub, &st, &err), SH_OK, "%s", err.detail);
    uint8_t id[16];
    memcpy(id, sh_store_id(st), 16);
    sh_store_destroy(&st);
    af_stop(&af_broker_pid);
    cr_assert_eq(tu_raw_flip(broker, "witnessed", id, 16, 30, 0x01), 0);
    af_start_broker();
    af_start_agent(HUB);
    af_wait_ready();     /* (the broker is two programs now: slow to start under valgrind) */
    usleep(1500 * 1000); /* the hub's WITNESS (witness_ms 300 here) is refused */
    s_stop_all();
    char *ring = af_keyring(), *out = NULL;
    const char *refused[] = {"audit",    "replay", broker,  "--keyring", ring, "--json",
                             "--action", "refuse", "--org", "881",       NULL};
    cr_assert_eq(tu_cli(&out, refused), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":606") && strstr(out, "is behind the witnessed checkpoint"),
              "the rolled-back hub is refused all the same: %s", out);
    free(out);
    const char *repaired[] = {"audit",    "replay", broker,       "--keyring", ring, "--json",
                              "--action", "admin",  "--decision", "failed",    NULL};
    cr_assert_eq(tu_cli(&out, repaired), 0, "%s", out);
    cr_assert(strstr(out, "did not open or disagreed with the audit log"), "%s", out);
    free(out);
    free(ring);
}
