/*
 * audit_bench.c — how fast an auditor can verify and replay a large audit log. Prints figures;
 * it is not a test.
 *
 * Builds a synthetic broker-like log of N entries (a county's year is a few million: every
 * event gives a receive entry and a send or deny entry per enrolled organisation), with a
 * signed checkpoint every 1,000 entries, in a fresh store under $TMPDIR; grants its keys to an
 * auditor's keyring; then times
 *   1. sh_audit_verify_ex in this process (one thread, one core),
 *   2. `sharehub audit verify STORE --keyring K`            (the command, end to end),
 *   3. `sharehub audit replay STORE --keyring K --json > /dev/null`.
 *
 * usage: audit_bench [N] [SHAREHUB-BINARY]   (defaults 10000000 and ../tools/sharehub next to
 *        this program); KEEP=1 keeps the store.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "ident.h"
#include "keyring.h"
#include "store.h"
#include "measure.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "audit_bench: " __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                                   \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

/* Runs argv with stdout to /dev/null; returns seconds taken, exits on failure. */
static double s_run(char *const argv[])
{
    double t0 = bench_now();
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s exited with %d", argv[1], argv[2],
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return bench_now() - t0;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    char binbuf[4096], self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(binbuf, sizeof binbuf, "%s/../tools/sharehub", dirname(self));
    const char *bin = argc > 2 ? argv[2] : binbuf;
    CHECK(n >= 1000, "N must be at least 1000");
    CHECK(access(bin, X_OK) == 0, "%s: not found (give the sharehub binary)", bin);

    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[4096], store[4200], sign[4200], ring[4200];
    snprintf(dir, sizeof dir, "%s/sharehub-audit-bench-XXXXXX", tmp);
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(sign, sizeof sign, "%s/sign.pem", dir);
    snprintf(ring, sizeof ring, "%s/auditor.keyring", dir);

    sh_error err = {0};
    uint8_t raw[SH_KEY_BYTES];
    sh_key *master = NULL, *audit_key = NULL, *blind_key = NULL;
    sh_signkey *signer = NULL;
    sh_store *s = NULL;
    sh_audit *a = NULL;
    sh_store_opts opts = {.map_size = (size_t)32 << 30};
    CHECK(!sh_random(raw, sizeof raw) && !sh_key_from_bytes(raw, &master), "key");
    sh_wipe(raw, sizeof raw);
    CHECK(!sh_signkey_generate_file(sign, &err) && !sh_signkey_load_file(sign, &signer, &err), "%s",
          err.detail);
    CHECK(!sh_store_open(store, master, &opts, &s, &err), "%s", err.detail);
    CHECK(!sh_store_derive_key(s, "audit mac", &audit_key) &&
              !sh_store_derive_key(s, "blind index", &blind_key),
          "derive");
    CHECK(!sh_audit_open(s, audit_key, signer, 0, &a, &err), "%s", err.detail);

    /* a broker's traffic: per event one receive and seven send/deny entries */
    static const char *const orgs[] = {"881", "882", "883", "RAJ", "R1L", "ESXPOL", "8819990"};
    static const char *const rules[] = {"isp-safeguarding-concerns@2", "isp-cpis@4",
                                        "isp-hub-feedback@3", "isp-request-for-support@3"};
    uint64_t rng = 42;
    uint8_t event[16], child[32];
    int64_t t0ms = 1767225600000; /* 2026-01-01 */
    double t0 = bench_now();
    uint64_t done = 0;
    while (done < n) {
        sh_txn *t = NULL;
        CHECK(!sh_txn_begin(s, 1, &t, &err), "%s", err.detail);
        for (int k = 0; k < 100000 && done < n; k++, done++) {
            uint64_t slot = done % 8;
            if (slot == 0) {
                CHECK(!sh_event_id_new(event), "event id");
                for (int b = 0; b < 4; b++) {
                    uint64_t v = sh_rng_next(&rng);
                    memcpy(child + 8 * b, &v, 8);
                }
            }
            const char *peer = orgs[slot % 7], *rule = rules[(done / 8) % 4];
            int deny = slot != 7 && (slot % 3) == 1;
            sh_audit_entry e = {
                .time_ms = t0ms + (int64_t)(done * 3), /* a year of 10M entries */
                .action = slot == 7 ? SH_AUDIT_RECEIVE
                          : deny    ? SH_AUDIT_DENY
                                    : SH_AUDIT_SEND,
                .outcome = deny ? SH_AUDIT_DENIED : SH_AUDIT_OK,
                .code = deny ? 800 : 0,
                .event_id = event,
                .child_ref = child,
                .actor_org = "8819990",
                .actor_user = "broker",
                .peer_org = slot == 7 ? NULL : peer,
                .rule = slot == 7 ? NULL : rule,
                .detail = slot == 7 ? "type=safeguarding_concern purpose=1 a6=5 a9=8 para=18 "
                                      "level=3 consent=1 la=881 school=8819990 referrer=-"
                          : deny    ? "no protocol covers safeguarding_concern to this recipient"
                                    : "queued items=child,level_of_need,safeguarding_concern"};
            CHECK(!sh_audit_append(a, t, &e, NULL, &err), "%s", err.detail);
        }
        if (done == n) CHECK(!sh_audit_checkpoint(a, t, &err), "%s", err.detail);
        CHECK(!sh_txn_commit(&t, &err), "%s", err.detail);
    }
    double build = bench_now() - t0;
    sh_store_info info;
    CHECK(!sh_store_get_info(s, &info), "info");

    /* the auditor's keyring: the audit and blind keys and the checkpoint signer */
    sh_keyring *k = NULL;
    uint8_t pub[SH_SIGN_PUB_BYTES];
    sh_signkey_public(signer, pub);
    CHECK(!sh_keyring_new(&k) &&
              !sh_keyring_put(k, sh_store_id(s), "bench", audit_key, blind_key, pub, &err) &&
              !sh_keyring_save(k, ring, &err),
          "keyring %s", err.detail);
    sh_keyring_destroy(&k);

    t0 = bench_now();
    sh_audit_report r;
    sh_audit_verify_opts o = {.trusted = (const uint8_t(*)[SH_SIGN_PUB_BYTES]) & pub,
                              .ntrusted = 1};
    CHECK(sh_audit_verify_ex(a, &o, &r) == SH_OK && r.entries == n, "verify: %s", r.detail);
    double verify = bench_now() - t0;
    sh_audit_destroy(&a);
    sh_store_destroy(&s);

    char *vargs[] = {(char *)bin, "audit", "verify", store, "--keyring", ring, NULL};
    char *rargs[] = {(char *)bin, "audit",  "replay",        store, "--keyring",
                     ring,        "--json", "--no-progress", NULL};
    double cli_verify = s_run(vargs);
    double cli_replay = s_run(rargs);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("audit log benchmark: %llu entries, %.2f GiB store, %ld cores\n", (unsigned long long)n,
           (double)info.used / (1 << 30), cpus);
    printf("  %-52s %8.1f s %12.0f entries/s\n", "build (append, HMAC, LMDB, 100k per commit)",
           build, (double)n / build);
    printf("  %-52s %8.1f s %12.0f entries/s\n", "verify in process (one thread)", verify,
           (double)n / verify);
    printf("  %-52s %8.1f s %12.0f entries/s\n", "sharehub audit verify (the command)", cli_verify,
           (double)n / cli_verify);
    printf("  %-52s %8.1f s %12.0f entries/s\n", "sharehub audit replay --json > /dev/null",
           cli_replay, (double)n / cli_replay);
    if (!getenv("KEEP") || strcmp(getenv("KEEP"), "1") != 0) {
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "audit_bench: could not remove %s\n", dir);
    } else {
        printf("  kept: %s (keyring %s)\n", dir, ring);
    }
    sh_key_destroy(&master);
    sh_key_destroy(&audit_key);
    sh_key_destroy(&blind_key);
    sh_signkey_destroy(&signer);
    return 0;
}
