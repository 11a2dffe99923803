/*
 * fuzz_evidence.c — libFuzzer target: sender evidence (common/evidence.c) on hostile bytes.
 * The input is split at its first byte into an "event" and an "evidence"; both checkers, the
 * decoder and the copy builder are run on them and must report, never crash. Then a genuine
 * copy and its evidence (a synthetic event, minimised) are changed at a place the input picks:
 * a copy or an evidence changed in any byte must never check. The reduction another
 * authority's broker makes (sh_evidence_reduce) runs on the input's halves too, and on the
 * genuine copy cut down to the part of the input it names; what it makes must check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"
#include "minimise.h"
#include "synth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *s_env, s_copy[8192], *s_ev, s_seed[32] = {9};
static size_t s_len, s_clen, s_evlen;
static sh_evidence_batch s_b;

static void s_init(void)
{
    uint64_t rng = 11;
    sh_synth_child c;
    sh_error err;
    uint8_t digest[1][32], root[32];
    sh_signkey *k = NULL;
    const char *items[] = {"child.nhs_number", "child.date_of_birth"};
    sh_synth_child_make(&rng, "881", &c);
    if (sh_synth_event(&rng, 2, &c, "8819990", NULL, NULL, 0, &s_env, &s_len, &err) ||
        sh_minimise(s_env, s_len, items, 2, s_copy, sizeof s_copy, &s_clen) ||
        sh_signkey_generate(&k) || sh_evidence_digest(s_env, s_len, s_seed, digest[0]) ||
        sh_evidence_batch_prove_all((const uint8_t(*)[32])digest, 1, root, &s_b) ||
        sh_evidence_sign(k, root, &s_b) ||
        sh_evidence_for_copy(s_env, s_len, s_copy, s_clen, &s_b, s_seed, &s_ev, &s_evlen))
        abort();
    sh_signkey_destroy(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_env) s_init();
    sh_evidence_batch b;
    sh_error err;
    uint8_t seed[32], digest[32];
    size_t cut = size ? (size_t)data[0] * size / 256 : 0;
    const uint8_t *ev = data + cut;
    size_t evlen = size - cut;
    (void)sh_evidence_kind(ev, evlen);
    (void)sh_evidence_sender_decode(ev, evlen, &b, seed);
    (void)sh_evidence_check_sender(data, cut, ev, evlen, &b, seed, NULL, &err);
    (void)sh_evidence_check_copy(data, cut, ev, evlen, &b, NULL, &err);
    (void)sh_evidence_digest(data, size, s_seed, digest);
    uint8_t *out = NULL;
    size_t outlen = 0;
    if (sh_evidence_for_copy(data, size, data, cut, &s_b, s_seed, &out, &outlen) == SH_OK)
        free(out);
    if (sh_evidence_reduce(data, cut, ev, evlen, data, cut, &out, &outlen) == SH_OK) free(out);
    if (sh_evidence_reduce(s_copy, s_clen, s_ev, s_evlen, data, size, &out, &outlen) == SH_OK)
        free(out);
    /* the genuine copy, cut down to nothing but its headers or to one item: still checks */
    {
        static const char *const one[] = {"child.nhs_number"};
        uint8_t less[8192];
        size_t llen = 0;
        if (sh_minimise(s_copy, s_clen, one, size & 1, less, sizeof less, &llen) ||
            sh_evidence_reduce(s_copy, s_clen, s_ev, s_evlen, less, llen, &out, &outlen) ||
            sh_evidence_check_copy(less, llen, out, outlen, &b, NULL, &err) != SH_OK)
            abort();
        free(out);
    }
    /* a genuine pair, changed where the input says: never checks */
    if (size >= 3) {
        int in_copy = data[1] & 1;
        size_t n = in_copy ? s_clen : s_evlen, at = ((size_t)data[1] << 8 | data[2]) % n;
        uint8_t *p = in_copy ? s_copy : s_ev, was = p[at], to = size > 3 ? data[3] : 0x5a;
        if (to != was) {
            p[at] = to;
            if (sh_evidence_check_copy(s_copy, s_clen, s_ev, s_evlen, &b, NULL, &err) == SH_OK)
                abort();
            p[at] = was;
        }
    }
    return 0;
}
