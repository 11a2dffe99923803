/* test_auditor.c — `sharehub audit` as an auditor runs it, on a log written through the audit
 * library and then attacked on disk: a clean verify, an altered byte, a deleted entry, two
 * swapped entries, a cut tail; replay with its filters; keys an auditor must have and must not
 * need. The real processes' logs (witnessing, subject report, what-if) are in test_agents.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "ident.h"
#include "testutil.h"

#define N 50 /* entries after the genesis entry, committed ten at a time */

static char *dir, *store, *ring, *master, *sign;
static char nhs_a[11], nhs_b[11];
static uint8_t events[N / 5 + 1][16];

static void setup(void)
{
    dir = tu_tmpdir();
    store = tu_path(dir, "store");
    ring = tu_path(dir, "auditor.keyring");
    master = tu_path(dir, "master.key");
    sign = tu_path(dir, "sign.pem");
    sh_error err;
    cr_assert_eq(sh_key_generate_file(master, &err), SH_OK);
    cr_assert_eq(sh_signkey_generate_file(sign, &err), SH_OK);
    uint64_t rng = 77;
    sh_nhs_synthetic(&rng, nhs_a);
    sh_nhs_synthetic(&rng, nhs_b);
    sh_key *mk = NULL, *ak = NULL;
    sh_signkey *sk = NULL;
    sh_store *s = NULL;
    sh_audit *a = NULL;
    sh_txn *t = NULL;
    uint8_t ref[2][32];
    cr_assert_eq(sh_key_load_file(master, &mk, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(sign, &sk, &err), SH_OK);
    cr_assert_eq(sh_store_open(store, mk, NULL, &s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_derive_key(s, "audit mac", &ak), SH_OK);
    cr_assert_eq(sh_audit_open(s, ak, sk, 10, &a, &err), SH_OK);
    cr_assert_eq(sh_store_blind(s, "nhs", nhs_a, ref[0]), SH_OK);
    cr_assert_eq(sh_store_blind(s, "nhs", nhs_b, ref[1]), SH_OK);
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    for (int i = 0; i <= N / 5; i++)
        cr_assert_eq(sh_event_id_new(events[i]), SH_OK);
    for (int i = 1; i <= N; i++) {
        int act = i % 3 == 0 ? SH_AUDIT_DENY : i % 3 == 1 ? SH_AUDIT_SEND : SH_AUDIT_READ;
        sh_audit_entry e = {.time_ms = 1767225600000 + (int64_t)i * 3600000, /* hourly */
                            .action = (uint8_t)act,
                            .outcome = act == SH_AUDIT_DENY ? SH_AUDIT_DENIED : SH_AUDIT_OK,
                            .code = act == SH_AUDIT_DENY ? 806 : 0,
                            .event_id = events[i / 5],
                            .child_ref = ref[i % 2],
                            .actor_org = "881",
                            .actor_user = act == SH_AUDIT_READ ? "sw-1" : "broker",
                            .peer_org = act == SH_AUDIT_READ ? NULL : "RAJ",
                            .purpose = act == SH_AUDIT_READ ? "triage" : NULL,
                            .rule = act == SH_AUDIT_READ ? NULL : "isp-cpis@4",
                            .detail = "synthetic"};
        cr_assert_eq(sh_audit_append(a, t, &e, NULL, &err), SH_OK, "%s", err.detail);
        if (i % 10 == 0) { /* heads signed at 11, 21 .. 51: each ends a run of ten, all kept */
            cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
            if (i < N) cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
        }
    }
    sh_audit_destroy(&a);
    sh_store_destroy(&s);
    sh_key_destroy(&ak);
    sh_key_destroy(&mk);
    sh_signkey_destroy(&sk);
    const char *grant[] = {"audit", "grant",     store, "--master", master, "--sign-key",
                           sign,    "--keyring", ring,  "--name",   "hub",  NULL};
    char *out = NULL;
    cr_assert_eq(tu_cli(&out, grant), 0, "%s", out);
    free(out);
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
    free(store);
    free(ring);
    free(master);
    free(sign);
}

TestSuite(auditor, .init = setup, .fini = teardown, .timeout = 30);

static int s_verify(char **out)
{
    const char *args[] = {"audit", "verify", store, "--keyring", ring, NULL};
    return tu_cli(out, args);
}

static void s_key(int seq, uint8_t k[8])
{
    tu_be64((uint64_t)seq, k);
}

Test(auditor, clean_log_verifies_with_the_keyring_alone)
{
    char *out;
    cr_assert_eq(s_verify(&out), 0, "%s", out);
    cr_assert(strstr(out, "OK: 51 entries, 5 checkpoints"), "%s", out);
    free(out);
    const char *json[] = {"audit", "verify", store, "--keyring", ring, "--json", NULL};
    cr_assert_eq(tu_cli(&out, json), 0, "%s", out);
    cr_assert(strstr(out, "\"result\":\"OK\"") && strstr(out, "\"entries\":51"), "%s", out);
    free(out);
    /* the keyring holds no master or data key, no key that could write an entry (no audit
     * MAC key: entries are hash-chained, heads signed), and the store was not written */
    FILE *f = fopen(ring, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(strstr(text, "audit=- ") && strstr(text, "blind=") && strstr(text, "signers="), "%s",
              text);
    cr_assert_null(strstr(text, "master"));
}

/* A store is named by the keyring's name for its id: given as NAME=STORE, another store in
 * its place is refused (E608), whatever its own chain says. */
Test(auditor, a_store_given_in_place_of_another_is_refused)
{
    char *out, named[700];
    snprintf(named, sizeof named, "hub=%s", store);
    const char *ok[] = {"audit", "verify", named, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, ok), 0, "%s", out);
    cr_assert(strstr(out, "OK: 51 entries") && strstr(out, "(hub)"), "%s", out);
    free(out);
    snprintf(named, sizeof named, "broker=%s", store);
    const char *bad[] = {"audit", "verify", named, "--keyring", ring, "--json", NULL};
    cr_assert_eq(tu_cli(&out, bad), 1, "%s", out);
    cr_assert(strstr(out, "\"result\":\"TAMPERED\"") && strstr(out, "\"code\":608") &&
                  strstr(out, "the keyring names 'hub', not 'broker'") &&
                  strstr(out, "\"name\":\"hub\""),
              "%s", out);
    free(out);
}

Test(auditor, an_altered_byte_is_named)
{
    uint8_t k[8];
    s_key(20, k);
    cr_assert_eq(tu_raw_flip(store, "sh_audit", k, 8, 40, 0x01), 0);
    char *out;
    cr_assert_eq(s_verify(&out), 1, "%s", out);
    cr_assert(strstr(out, "TAMPERED: E600 SH_E_AUDIT_ALTERED at entry 20"), "%s", out);
    cr_assert(strstr(out, "19 entries verified before it"), "%s", out);
    free(out);
}

Test(auditor, a_deleted_entry_is_named)
{
    uint8_t k[8];
    s_key(20, k);
    cr_assert_eq(tu_raw_del(store, "sh_audit", k, 8), 0);
    char *out;
    cr_assert_eq(s_verify(&out), 1, "%s", out);
    cr_assert(strstr(out, "E601 SH_E_AUDIT_MISSING at entry 20"), "%s", out);
    free(out);
}

Test(auditor, two_swapped_entries_are_named)
{
    uint8_t k20[8], k21[8], v20[2048], v21[2048];
    size_t l20, l21;
    s_key(20, k20);
    s_key(21, k21);
    cr_assert_eq(tu_raw_get(store, "sh_audit", k20, 8, v20, sizeof v20, &l20), 0);
    cr_assert_eq(tu_raw_get(store, "sh_audit", k21, 8, v21, sizeof v21, &l21), 0);
    cr_assert_eq(tu_raw_put(store, "sh_audit", k20, 8, v21, l21), 0);
    cr_assert_eq(tu_raw_put(store, "sh_audit", k21, 8, v20, l20), 0);
    char *out;
    cr_assert_eq(s_verify(&out), 1, "%s", out);
    cr_assert(strstr(out, "E602 SH_E_AUDIT_REORDERED at entry 20"), "%s", out);
    free(out);
}

Test(auditor, a_cut_tail_is_named)
{
    for (int i = 45; i <= N + 1; i++) {
        uint8_t k[8];
        s_key(i, k);
        cr_assert_eq(tu_raw_del(store, "sh_audit", k, 8), 0);
    }
    char *out;
    cr_assert_eq(s_verify(&out), 1, "%s", out);
    cr_assert(strstr(out, "E603 SH_E_AUDIT_TRUNCATED at entry 45"), "%s", out);
    free(out);
}

Test(auditor, keys_are_required_and_guarded)
{
    char *out;
    const char *none[] = {"audit", "verify", store, NULL};
    cr_assert_eq(tu_cli(&out, none), 2, "%s", out);
    cr_assert(strstr(out, "--keyring"), "%s", out);
    free(out);
    cr_assert_eq(chmod(ring, 0644), 0);
    cr_assert_eq(s_verify(&out), 1, "%s", out);
    cr_assert(strstr(out, "E401"), "%s", out);
    free(out);
    cr_assert_eq(chmod(ring, 0600), 0);
    char *missing = tu_path(dir, "nowhere");
    const char *gone[] = {"audit", "verify", missing, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, gone), 1, "%s", out);
    cr_assert(strstr(out, "UNREADABLE"), "%s", out);
    free(out);
    free(missing);
}

static int s_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

Test(auditor, replay_filters_entries)
{
    char *out, ev[SH_EVENT_ID_STR];
    const char *deny[] = {"audit",  "replay",   store,  "--keyring", ring,
                          "--json", "--action", "deny", NULL};
    cr_assert_eq(tu_cli(&out, deny), 0, "%s", out);
    cr_assert_eq(s_lines(out), 16, "%s", out); /* i % 3 == 0 for i in 1..50 */
    cr_assert(strstr(out, "\"action\":\"deny\",\"outcome\":\"denied\",\"code\":806"), "%s", out);
    free(out);
    const char *child[] = {"audit",  "replay",  store, "--keyring", ring,
                           "--json", "--child", nhs_a, NULL};
    cr_assert_eq(tu_cli(&out, child), 0, "%s", out);
    cr_assert_eq(s_lines(out), 25, "%s", out); /* the even entries */
    cr_assert_null(strstr(out, nhs_a), "a replay never prints the identifier");
    free(out);
    /* hourly entries from 2026-01-01T01:00 (the genesis entry's time too): the first day holds
     * entries 1..24 */
    const char *day[] = {"audit",  "replay",     store,  "--keyring",  ring, "--json",
                         "--from", "2026-01-01", "--to", "2026-01-01", NULL};
    cr_assert_eq(tu_cli(&out, day), 0, "%s", out);
    cr_assert_eq(s_lines(out), 24, "%s", out);
    free(out);
    sh_event_id_format(events[2], ev); /* entries 10..14 */
    const char *reads[] = {"audit",  "replay",   store, "--keyring",  ring,
                           "--json", "--event",  ev,    "--decision", "ok",
                           "--isp",  "isp-cpis", NULL};
    cr_assert_eq(tu_cli(&out, reads), 0, "%s", out);
    cr_assert_eq(s_lines(out), 2, "%s", out); /* 10 (send) and 13 (send); 12 is a deny */
    free(out);
    const char *table[] = {"audit", "replay", store, "--keyring", ring, "--org", "RAJ", NULL};
    cr_assert_eq(tu_cli(&out, table), 0, "%s", out);
    cr_assert(strstr(out, "SEQ") && strstr(out, "33 of 51 entries shown"), "%s", out);
    free(out);
    const char *bad[] = {"audit", "replay", store, "--keyring", ring, "--action", "nap", NULL};
    cr_assert_eq(tu_cli(&out, bad), 2, "%s", out);
    cr_assert(strstr(out, "--action"), "%s", out);
    free(out);
}

Test(auditor, replay_stops_at_tampering)
{
    uint8_t k[8];
    s_key(30, k);
    cr_assert_eq(tu_raw_flip(store, "sh_audit", k, 8, 25, 0x80), 0);
    char *out;
    const char *all[] = {"audit", "replay", store, "--keyring", ring, "--json", NULL};
    cr_assert_eq(tu_cli(&out, all), 1, "%s", out);
    cr_assert(strstr(out, "\"seq\":29,") && !strstr(out, "\"seq\":30,"), "%s", out);
    cr_assert(strstr(out, "stopped at entry 30: E600"), "%s", out);
    free(out);
}

Test(auditor, without_the_blind_key_a_log_is_verified_not_searched)
{
    char *ring2 = tu_path(dir, "verify-only.keyring"), *out;
    const char *grant[] = {"audit",      "grant",      store,       "--master", master,
                           "--sign-key", sign,         "--keyring", ring2,      "--name",
                           "hub",        "--no-blind", NULL};
    cr_assert_eq(tu_cli(&out, grant), 0, "%s", out);
    free(out);
    const char *verify[] = {"audit", "verify", store, "--keyring", ring2, NULL};
    cr_assert_eq(tu_cli(&out, verify), 0, "%s", out);
    free(out);
    const char *search[] = {"audit", "replay", store, "--keyring", ring2, "--child", nhs_a, NULL};
    cr_assert_eq(tu_cli(&out, search), 1, "%s", out);
    cr_assert(strstr(out, "no blind key"), "%s", out);
    free(out);
    free(ring2);
}

/* ---- time from outside: RFC 3161 (tools/audit_tsa.c) --------------------------------- */

/* A time-stamping authority made with OpenSSL in dir/name: a root, and a time-stamping
 * certificate under it; returns the command that answers a request on stdin. */
static void s_tsa(const char *name, char *cmd, size_t cap)
{
    char sh[4096];
    snprintf(
        sh, sizeof sh,
        "set -e; mkdir -p '%s/%s'; cd '%s/%s'; echo 01 > serial;"
        "printf '[tsa]\\ndefault_tsa=c\\n[c]\\nserial=./serial\\ncrypto_device=builtin\\n"
        "signer_cert=./tsa.crt\\ncerts=./ca.crt\\nsigner_key=./tsa.key\\nsigner_digest=sha256\\n"
        "default_policy=1.2.3.4.1\\ndigests=sha256\\naccuracy=secs:1\\nordering=yes\\n"
        "tsa_name=no\\ness_cert_id_chain=no\\ness_cert_id_alg=sha256\\n"
        "[ext]\\nextendedKeyUsage=critical,timeStamping\\n' > tsa.cnf;"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key"
        " -out ca.crt -subj '/CN=Test TSA root' -days 2 2>/dev/null;"
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key"
        " -out tsa.csr -subj '/CN=Test TSA' 2>/dev/null;"
        "openssl x509 -req -in tsa.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tsa.crt"
        " -days 2 -extfile tsa.cnf -extensions ext 2>/dev/null",
        dir, name, dir, name);
    cr_assert_eq(system(sh), 0, "the test TSA %s could not be made", name);
    snprintf(cmd, cap,
             "cd '%s/%s' && openssl ts -reply -config tsa.cnf -queryfile /dev/stdin"
             " -out /dev/stdout 2>/dev/null",
             dir, name);
}

/* Appends n entries to the store's log and commits (a new signed head). */
static void s_append(int n)
{
    sh_key *mk = NULL;
    sh_signkey *sk = NULL;
    sh_store *s = NULL;
    sh_audit *a = NULL;
    sh_txn *t = NULL;
    sh_error err;
    cr_assert_eq(sh_key_load_file(master, &mk, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(sign, &sk, &err), SH_OK);
    cr_assert_eq(sh_store_open(store, mk, NULL, &s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_audit_open(s, NULL, sk, 10, &a, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    for (int i = 0; i < n; i++) {
        sh_audit_entry e = {.action = SH_AUDIT_ADMIN,
                            .outcome = SH_AUDIT_OK,
                            .actor_org = "881",
                            .actor_user = "agent",
                            .detail = "later"};
        cr_assert_eq(sh_audit_append(a, t, &e, NULL, &err), SH_OK, "%s", err.detail);
    }
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail);
    sh_audit_destroy(&a);
    sh_store_destroy(&s);
    sh_signkey_destroy(&sk);
    sh_key_destroy(&mk);
}

Test(auditor, time_stamps_from_an_outside_authority_are_kept_and_checked)
{
    /* (under valgrind, which follows every program, its six openssl runs and five commands
     * take longer than the suite's 30 s; the dev and ASan runs check it. A longer timeout
     * made Criterion itself leak under ASan.) */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) cr_skip_test("too slow under valgrind");
    char cmd[4200], other[4200], ca[4200], other_ca[4200], sh[9000];
    s_tsa("tsa", cmd, sizeof cmd);
    s_tsa("other", other, sizeof other);
    snprintf(ca, sizeof ca, "%s/tsa/ca.crt", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other/ca.crt", dir);
    /* a copy of the store as it is now, to put back later */
    snprintf(sh, sizeof sh, "cp -a '%s' '%s.before'", store, store);
    cr_assert_eq(system(sh), 0);
    s_append(5);
    char *out = NULL;
    const char *stamp[] = {"audit",         "timestamp", store,      "--keyring", ring,
                           "--tsa-command", cmd,         "--tsa-ca", ca,          NULL};
    cr_assert_eq(tu_cli(&out, stamp), 0, "%s", out);
    cr_assert_not_null(strstr(out, "time-stamped at "), "%s", out);
    free(out);
    const char *verify[] = {"audit", "verify", store, "--keyring", ring, "--tsa-ca", ca, NULL};
    cr_assert_eq(tu_cli(&out, verify), 0, "%s", out);
    cr_assert_not_null(strstr(out, "1 time-stamps check (newest: entry 56 at "), "%s", out);
    free(out);
    /* a token is only as good as the roots it is checked by */
    const char *wrong[] = {"audit", "verify", store, "--keyring", ring, "--tsa-ca", other_ca, NULL};
    cr_assert_eq(tu_cli(&out, wrong), 1, "%s", out);
    cr_assert_not_null(strstr(out, "E612"), "%s", out);
    free(out);
    /* an authority whose answer does not check is not kept */
    const char *refused[] = {"audit",         "timestamp", store,      "--keyring", ring,
                             "--tsa-command", other,       "--tsa-ca", ca,          NULL};
    cr_assert_eq(tu_cli(&out, refused), 1, "%s", out);
    cr_assert_not_null(strstr(out, "E612"), "%s", out);
    free(out);
    /* the store put back to its earlier copy verifies on its own; the token kept beside it
     * (or held by an auditor) names an entry the log no longer has */
    snprintf(sh, sizeof sh, "cp '%s.before/data.mdb' '%s/data.mdb'", store, store);
    cr_assert_eq(system(sh), 0);
    cr_assert_eq(tu_cli(&out, verify), 1, "%s", out);
    cr_assert_not_null(strstr(out, "past the log's end"), "%s", out);
    cr_assert_not_null(strstr(out, "E612"), "%s", out);
    free(out);
}
