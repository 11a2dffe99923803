/*
 * evidence_bench.c — what sender evidence costs per event on this machine (docs/evidence.md,
 * docs/performance.md): the digest a sender makes, the batch signature, the broker's check of
 * a sender's evidence (batch signature verified once, then cached), a copy's evidence, a
 * recipient's check of it, and a signed audit head. Prints microseconds per operation.
 *
 *   evidence_bench [N]      N operations of each (default 20000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "evidence.h"
#include "measure.h"
#include "minimise.h"
#include "synth.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "evidence_bench: %s failed\n", #x);                                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100) n = 100;
    uint64_t rng = 5;
    sh_synth_child c;
    sh_error err;
    uint8_t *env = NULL, seed[32] = {1}, d[64][32], root[32], s2[32], sev[SH_EVIDENCE_SENDER_MAX];
    size_t len = 0;
    sh_evidence_batch b[64], bb;
    sh_signkey *k = NULL;
    sh_synth_child_make(&rng, "881", &c);
    /* the bench workload's event: a request for support with a 700-byte narrative */
    CHECK(sh_synth_event(&rng, 1, &c, "8819990", NULL, NULL, 700, &env, &len, &err) == SH_OK);
    CHECK(sh_signkey_generate(&k) == SH_OK);
    double t0 = bench_now();
    for (int i = 0; i < n; i++)
        CHECK(sh_evidence_digest(env, len, seed, d[i % 64]) == SH_OK);
    double digest = (bench_now() - t0) / n * 1e6;
    CHECK(sh_evidence_batch_prove_all((const uint8_t(*)[32])d, 64, root, b) == SH_OK);
    t0 = bench_now();
    for (int i = 0; i < n / 10; i++)
        CHECK(sh_evidence_sign(k, root, &b[0]) == SH_OK);
    double sign = (bench_now() - t0) / (n / 10) * 1e6;
    size_t sl = sh_evidence_sender_encode(&b[0], seed, sev, sizeof sev);
    uint8_t pub[32], msg[58] = "sharehub/v1/evidence-batch";
    sh_signkey_public(k, pub);
    uint8_t sig[64];
    CHECK(sh_sign(k, msg, sizeof msg, sig) == SH_OK);
    t0 = bench_now();
    for (int i = 0; i < n / 10; i++)
        CHECK(sh_verify(pub, msg, sizeof msg, sig) == SH_OK);
    double verify = (bench_now() - t0) / (n / 10) * 1e6;
    t0 = bench_now();
    for (int i = 0; i < n / 10; i++)
        CHECK(sh_evidence_check_sender(env, len, sev, sl, &bb, s2, NULL, &err) == SH_OK);
    double check_full = (bench_now() - t0) / (n / 10) * 1e6;
    sh_evidence_cache cache = {0};
    t0 = bench_now();
    for (int i = 0; i < n; i++)
        CHECK(sh_evidence_check_sender(env, len, sev, sl, &bb, s2, &cache, &err) == SH_OK);
    double check_cached = (bench_now() - t0) / n * 1e6;
    const char *items[] = {"child.nhs_number", "child.date_of_birth", "request_for_support"};
    uint8_t *copy = malloc(len + SH_MINIMISE_SLACK), *ev = NULL;
    size_t cl = 0, evl = 0;
    CHECK(copy && sh_minimise(env, len, items, 3, copy, len + SH_MINIMISE_SLACK, &cl) == SH_OK);
    t0 = bench_now();
    for (int i = 0; i < n; i++) {
        CHECK(sh_evidence_for_copy(env, len, copy, cl, &b[0], seed, &ev, &evl) == SH_OK);
        free(ev);
    }
    double for_copy = (bench_now() - t0) / n * 1e6;
    CHECK(sh_evidence_for_copy(env, len, copy, cl, &b[0], seed, &ev, &evl) == SH_OK);
    t0 = bench_now();
    for (int i = 0; i < n; i++)
        CHECK(sh_evidence_check_copy(copy, cl, ev, evl, &bb, &cache, &err) == SH_OK);
    double check_copy = (bench_now() - t0) / n * 1e6;
    printf("event %zu bytes; sender's evidence %zu bytes; a copy of %zu bytes: its evidence "
           "%zu bytes\n",
           len, sl, cl, evl);
    printf("%-52s %8.1f us\n", "sender: digest of one event", digest);
    printf("%-52s %8.1f us\n", "sender: the batch signature (once a batch)", sign);
    printf("%-52s %8.1f us\n", "an Ed25519 verification (sh_verify)", verify);
    printf("%-52s %8.1f us\n", "broker: check a sender's evidence, signature verified", check_full);
    printf("%-52s %8.1f us\n", "broker: the same, batch signature already verified", check_cached);
    printf("%-52s %8.1f us\n", "broker: a minimised copy's evidence", for_copy);
    printf("%-52s %8.1f us\n", "recipient: check a copy (batch signature verified)", check_copy);
    free(ev);
    free(copy);
    free(env);
    sh_signkey_destroy(&k);
    return 0;
}
