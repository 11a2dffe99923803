/* test_evidence.c — sender evidence (common/evidence.c, docs/evidence.md): a batch of synthetic
 * events signed once; each minimised the way the broker minimises for a recipient, and the
 * copy checked against its evidence; every way a broker could change what a sender said — a
 * field altered, added, dropped without its hash, a forged event, a withheld hash swapped, an
 * event from another batch, another signer — refused; and an event's digest and the batch tree
 * checked against independent computations from the document. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "evidence.h"
#include "minimise.h"
#include "synth.h"
#include "testutil.h"

#define N 5 /* events in the batch */

static sh_signkey *s_key;
static char *s_dir;
static uint8_t *s_env[N], s_seed[N][32], s_digest[N][32], s_root[32];
static size_t s_len[N];
static sh_evidence_batch s_b[N];

static void s_setup(void)
{
    sh_error err;
    s_dir = tu_tmpdir();
    char *p = tu_path(s_dir, "sign.pem");
    cr_assert_eq(sh_signkey_generate_file(p, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(p, &s_key, &err), SH_OK);
    free(p);
    uint64_t rng = 909;
    for (int i = 0; i < N; i++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        /* event types 1..5: a request, a concern, a decision, a CP plan, a looked-after status */
        cr_assert_eq(
            sh_synth_event(&rng, 1 + i, &c, "8819990", NULL, NULL, 0, &s_env[i], &s_len[i], &err),
            SH_OK, "%s", err.detail);
        cr_assert_eq(sh_random(s_seed[i], 32), SH_OK);
        cr_assert_eq(sh_evidence_digest(s_env[i], s_len[i], s_seed[i], s_digest[i]), SH_OK);
    }
    cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])s_digest, N, s_root, s_b),
                 SH_OK);
    cr_assert_eq(sh_evidence_sign(s_key, s_root, &s_b[0]), SH_OK);
    for (int i = 1; i < N; i++) {
        memcpy(s_b[i].signer, s_b[0].signer, 32);
        memcpy(s_b[i].sig, s_b[0].sig, 64);
    }
}

static void s_teardown(void)
{
    for (int i = 0; i < N; i++)
        free(s_env[i]);
    sh_signkey_destroy(&s_key);
    tu_rmrf(s_dir);
    free(s_dir);
}

TestSuite(evidence, .init = s_setup, .fini = s_teardown);

/* Event i minimised to items (NULL: headers only), with its evidence for that copy. */
static void s_copy(int i, const char *const *items, size_t n, uint8_t *copy, size_t *clen,
                   uint8_t **ev, size_t *evlen)
{
    cr_assert_eq(
        sh_minimise(s_env[i], s_len[i], items, n, copy, s_len[i] + SH_MINIMISE_SLACK, clen), SH_OK);
    cr_assert_eq(
        sh_evidence_for_copy(s_env[i], s_len[i], copy, *clen, &s_b[i], s_seed[i], ev, evlen),
        SH_OK);
}

Test(evidence, the_sender_evidence_checks_and_each_recipients_copy_proves_its_origin)
{
    sh_error err;
    static const char *const cases[][3] = {
        {"child", NULL, NULL},            /* the whole child */
        {"child.nhs_number", NULL, NULL}, /* one field of it */
        {"child.nhs_number", "child.date_of_birth", NULL},
        {NULL, NULL, NULL}, /* the headers alone */
    };
    static const size_t ncase[] = {1, 1, 2, 0};
    for (int i = 0; i < N; i++) {
        uint8_t sev[SH_EVIDENCE_SENDER_MAX], seed[32];
        size_t sl = sh_evidence_sender_encode(&s_b[i], s_seed[i], sev, sizeof sev);
        cr_assert_gt(sl, 0);
        sh_evidence_batch b;
        cr_assert_eq(sh_evidence_check_sender(s_env[i], s_len[i], sev, sl, &b, seed, NULL, &err),
                     SH_OK, "event %d: %s", i, err.detail);
        cr_assert_arr_eq(seed, s_seed[i], 32);
        for (size_t k = 0; k < sizeof ncase / sizeof ncase[0]; k++) {
            uint8_t copy[8192], *ev = NULL;
            size_t clen = 0, evlen = 0;
            s_copy(i, ncase[k] ? cases[k] : NULL, ncase[k], copy, &clen, &ev, &evlen);
            cr_assert_eq(sh_evidence_check_copy(copy, clen, ev, evlen, &b, NULL, &err), SH_OK,
                         "event %d case %zu: %s", i, k, err.detail);
            cr_assert_arr_eq(b.signer, s_b[0].signer, 32, "the signer is named");
            free(ev);
        }
        /* the whole event is a copy too */
        uint8_t *ev = NULL;
        size_t evlen = 0;
        cr_assert_eq(sh_evidence_for_copy(s_env[i], s_len[i], s_env[i], s_len[i], &s_b[i],
                                          s_seed[i], &ev, &evlen),
                     SH_OK);
        cr_assert_eq(sh_evidence_check_copy(s_env[i], s_len[i], ev, evlen, &b, NULL, &err), SH_OK);
        free(ev);
    }
}

/* A copy whose one byte at `at` is changed (the evidence unchanged) must not check. */
static void s_refuse(const uint8_t *copy, size_t clen, const uint8_t *ev, size_t evlen,
                     const char *why)
{
    sh_evidence_batch b;
    sh_error err;
    cr_assert_eq(sh_evidence_check_copy(copy, clen, ev, evlen, &b, NULL, &err), SH_E_EVIDENCE, "%s",
                 why);
}

Test(evidence, whatever_the_broker_changes_the_recipient_refuses)
{
    const char *items[] = {"child.nhs_number", "child.date_of_birth"};
    uint8_t copy[8192], bad[8192], *ev = NULL;
    size_t clen = 0, evlen = 0;
    s_copy(3, items, 2, copy, &clen, &ev, &evlen);
    /* every byte of the copy changed in turn: the copy no longer checks (or does not parse) */
    for (size_t at = 0; at < clen; at++) {
        memcpy(bad, copy, clen);
        bad[at] ^= 0x01;
        s_refuse(bad, clen, ev, evlen, "a changed byte");
    }
    /* every byte of the evidence changed in turn */
    uint8_t *ebad = malloc(evlen);
    for (size_t at = 0; at < evlen; at++) {
        memcpy(ebad, ev, evlen);
        ebad[at] ^= 0x01;
        s_refuse(copy, clen, ebad, evlen, "a changed evidence byte");
    }
    free(ebad);
    /* a field the sender wrote, withheld without its hash (the evidence of a smaller copy with
     * a bigger one; and the other way round: a field added) */
    uint8_t small[8192], *sev = NULL;
    size_t slen = 0, sevlen = 0;
    const char *one[] = {"child.nhs_number"};
    s_copy(3, one, 1, small, &slen, &sev, &sevlen);
    s_refuse(copy, clen, sev, sevlen, "a field added");
    s_refuse(small, slen, ev, evlen, "a field dropped");
    /* another event's evidence; an event of this batch with another's evidence */
    uint8_t other[8192], *oev = NULL;
    size_t olen = 0, oevlen = 0;
    s_copy(2, items, 2, other, &olen, &oev, &oevlen);
    s_refuse(copy, clen, oev, oevlen, "another event's evidence");
    s_refuse(other, olen, ev, evlen, "another event with this evidence");
    free(sev);
    free(oev);
    free(ev);
}

Test(evidence, a_forged_event_or_another_signer_does_not_verify)
{
    sh_error err;
    /* the broker makes up an event and signs it with a key of its own */
    uint64_t rng = 77;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *forged = NULL, seed[32] = {1};
    size_t flen = 0;
    cr_assert_eq(sh_synth_event(&rng, 2, &c, "8819990", NULL, NULL, 0, &forged, &flen, &err),
                 SH_OK);
    /* with the real sender's batch: the digest is not under its root */
    uint8_t *ev = NULL;
    size_t evlen = 0;
    cr_assert_eq(sh_evidence_for_copy(forged, flen, forged, flen, &s_b[1], seed, &ev, &evlen),
                 SH_OK);
    sh_evidence_batch b;
    cr_assert_eq(sh_evidence_check_copy(forged, flen, ev, evlen, &b, NULL, &err), SH_E_EVIDENCE);
    cr_assert(strstr(err.detail, "signature"), "%s", err.detail);
    free(ev);
    /* signed by another key: it verifies, under that key, and the signer says whose it is */
    char *p = tu_path(s_dir, "broker.pem");
    sh_signkey *other = NULL;
    cr_assert_eq(sh_signkey_generate_file(p, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(p, &other, &err), SH_OK);
    uint8_t digest[1][32], root[32];
    sh_evidence_batch ob;
    cr_assert_eq(sh_evidence_digest(forged, flen, seed, digest[0]), SH_OK);
    cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])digest, 1, root, &ob), SH_OK);
    cr_assert_eq(sh_evidence_sign(other, root, &ob), SH_OK);
    cr_assert_eq(sh_evidence_for_copy(forged, flen, forged, flen, &ob, seed, &ev, &evlen), SH_OK);
    cr_assert_eq(sh_evidence_check_copy(forged, flen, ev, evlen, &b, NULL, &err), SH_OK);
    cr_assert(memcmp(b.signer, s_b[0].signer, 32) != 0,
              "the signer is not the sender's: the recipient refuses it by key");
    free(ev);
    sh_signkey_destroy(&other);
    free(forged);
    free(p);
}

/* RFC 9162 section 2.1.1, computed here from the definition with OpenSSL: the root the library
 * signs, for every batch size up to 33, and every proof leads to it. */
static void s_mth(const uint8_t (*d)[32], size_t n, uint8_t out[32])
{
    uint8_t buf[65];
    if (n == 1) {
        buf[0] = 0;
        memcpy(buf + 1, d[0], 32);
        SHA256(buf, 33, out);
        return;
    }
    size_t k = 1;
    while (k * 2 < n)
        k *= 2;
    buf[0] = 1;
    s_mth(d, k, buf + 1);
    s_mth(d + k, n - k, buf + 33);
    SHA256(buf, 65, out);
}

Test(evidence, the_batch_tree_is_rfc_9162s)
{
    uint8_t d[33][32], root[32], want[32];
    sh_evidence_batch *bs = calloc(33, sizeof *bs);
    for (int i = 0; i < 33; i++)
        memset(d[i], i + 1, 32);
    for (size_t n = 1; n <= 33; n++) {
        cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])d, n, root, bs), SH_OK);
        s_mth((const uint8_t(*)[32])d, n, want);
        cr_assert_arr_eq(root, want, 32, "n %zu", n);
        for (size_t i = 0; i < n; i++) {
            uint8_t got[32];
            cr_assert_eq(sh_evidence_proof_root(d[i], &bs[i], got), SH_OK, "n %zu i %zu", n, i);
            cr_assert_arr_eq(got, want, 32, "n %zu: event %zu's proof leads to the root", n, i);
            bs[i].index = (uint16_t)((i + 1) % n); /* another place: not the root */
            if (n > 1)
                cr_assert(sh_evidence_proof_root(d[i], &bs[i], got) != SH_OK ||
                              memcmp(got, want, 32) != 0,
                          "n %zu i %zu", n, i);
        }
    }
    cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])d, 0, root, bs), SH_E_RANGE);
    free(bs);
}

/* A digest computed here from docs/evidence.md alone, for an envelope written byte by byte: the
 * leaves' paths (a nested message, a repeated field's occurrences as name#k, a message's own
 * leaf with no bytes), their bytes, the salts (AES-256-CTR of the seed) and the two hashes. */
static void s_sha(const void *a, size_t al, const void *b, size_t bl, uint8_t out[32])
{
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    unsigned ol = 0;
    cr_assert(x && EVP_DigestInit_ex(x, EVP_sha256(), NULL) && EVP_DigestUpdate(x, a, al) &&
              EVP_DigestUpdate(x, b, bl) && EVP_DigestFinal_ex(x, out, &ol) && ol == 32);
    EVP_MD_CTX_free(x);
}

Test(evidence, the_event_digest_is_the_documents)
{
    static const uint8_t env[] = {
        0x0A, 0x10, 1,    2,    3,   4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* event_id */
        0x10, 0x01,                  /* schema_version 1 */
        0xA2, 0x01, 0x0D,            /* request_for_support (20), 13 bytes: */
        0x12, 0x02, 'a',  'b',       /*   household "ab" */
        0x1A, 0x03, 0x12, 0x01, 'x', /*   concerns#0 { about "x" } */
        0x1A, 0x02, 0x08, 0x02,      /*   concerns#1 { category 2 } */
    };
    static const struct {
        const char *path;
        size_t off, len; /* the leaf's bytes in env (len 0: a message) */
    } leaf[] = {
        {"event_id", 0, 18},
        {"schema_version", 18, 2},
        {"request_for_support", 0, 0},
        {"request_for_support.household", 23, 4},
        {"request_for_support.concerns#0", 0, 0},
        {"request_for_support.concerns#0.about", 29, 3},
        {"request_for_support.concerns#1", 0, 0},
        {"request_for_support.concerns#1.category", 34, 2},
    };
    enum { NL = sizeof leaf / sizeof leaf[0] };
    cr_assert_eq(sizeof env, 36u);
    uint8_t seed[32], zero[32 * NL] = {0}, salts[32 * NL], iv[16] = {0}, hashes[32 * NL];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(0x40 + i);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    cr_assert(c && EVP_EncryptInit_ex(c, EVP_aes_256_ctr(), NULL, seed, iv) &&
              EVP_EncryptUpdate(c, salts, &outl, zero, sizeof zero) && outl == (int)sizeof zero);
    EVP_CIPHER_CTX_free(c);
    for (int i = 0; i < NL; i++) {
        uint8_t pre[25 + 32 + 1 + 64];
        size_t pl = strlen(leaf[i].path);
        memcpy(pre, "sharehub/v1/evidence-leaf", 25);
        memcpy(pre + 25, salts + 32 * i, 32);
        pre[57] = (uint8_t)pl;
        memcpy(pre + 58, leaf[i].path, pl);
        s_sha(pre, 58 + pl, env + leaf[i].off, leaf[i].len, hashes + 32 * i);
    }
    uint8_t head[26 + 4], want[32], got[32];
    memcpy(head, "sharehub/v1/evidence-event", 26);
    head[26] = head[27] = head[28] = 0, head[29] = NL;
    s_sha(head, sizeof head, hashes, sizeof hashes, want);
    cr_assert_eq(sh_evidence_digest(env, sizeof env, seed, got), SH_OK);
    cr_assert_arr_eq(got, want, 32, "the digest differs from the document's");
}

/* Another authority's broker withholds more of a copy it received (docs/federation.md): the
 * reduced copy's evidence, derived from the received copy's alone, checks under the sender's
 * signature; it is the evidence the sender's broker would have made for that copy; and a copy
 * that is not a subset of the received one is refused. */
Test(evidence, a_copy_cut_down_again_still_proves_its_origin)
{
    sh_error err;
    static const char *const wide[] = {"child"}, *const narrow[] = {"child.nhs_number"};
    for (int i = 0; i < N; i++) {
        uint8_t copy[8192], less[8192], *ev = NULL, *rev = NULL, *direct = NULL;
        size_t clen = 0, llen = 0, evlen = 0, rlen = 0, dlen = 0;
        s_copy(i, wide, 1, copy, &clen, &ev, &evlen);
        cr_assert_eq(sh_minimise(copy, clen, narrow, 1, less, sizeof less, &llen), SH_OK);
        cr_assert_eq(sh_evidence_reduce(copy, clen, ev, evlen, less, llen, &rev, &rlen), SH_OK);
        sh_evidence_batch b;
        cr_assert_eq(sh_evidence_check_copy(less, llen, rev, rlen, &b, NULL, &err), SH_OK,
                     "event %d: %s", i, err.detail);
        cr_assert_eq(sh_evidence_for_copy(s_env[i], s_len[i], less, llen, &s_b[i], s_seed[i],
                                          &direct, &dlen),
                     SH_OK);
        cr_assert(dlen == rlen && memcmp(direct, rev, rlen) == 0,
                  "the same evidence as the sender's broker would make");
        /* the wider copy is not a subset of the narrower one */
        uint8_t *bad = NULL;
        size_t blen = 0;
        cr_assert_neq(sh_evidence_reduce(less, llen, rev, rlen, copy, clen, &bad, &blen), SH_OK);
        cr_assert_null(bad);
        free(ev);
        free(rev);
        free(direct);
    }
}
