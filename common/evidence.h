/*
 * evidence.h — sender evidence that survives minimisation (docs/evidence.md).
 *
 * The publishing agency commits to every field of an event — each field occurrence is a leaf,
 * hashed with its own salt — and signs a Merkle tree of the events it publishes together, once
 * per batch. The broker forwards, with each recipient's minimised copy, the salts of the
 * leaves the copy keeps and the hashes of those it withholds; the recipient recomputes the
 * event's digest from what it holds and checks the sender's signature. So a recipient can
 * prove what the sender said, and the broker can neither forge an event nor alter a field,
 * while no recipient learns a withheld field (a salt it never sees protects it).
 *
 * Owns: the leaf walk, the digests, the batch tree and the two evidence encodings. Never:
 * trusts a length, an index or a count it has not checked; accepts a copy with a leaf the
 * evidence does not account for, or evidence with a leaf the copy lacks.
 */
#ifndef SHAREHUB_EVIDENCE_H
#define SHAREHUB_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"

#define SH_EVIDENCE_BATCH_MAX  1024 /* events under one signature */
#define SH_EVIDENCE_PROOF_MAX  10   /* hashes in an inclusion proof (log2 of the batch) */
#define SH_EVIDENCE_LEAVES_MAX 4096 /* field occurrences in one event */
#define SH_EVIDENCE_SEED_BYTES 32

/* One batch signature and one event's place under it. */
typedef struct sh_evidence_batch {
    uint8_t signer[SH_SIGN_PUB_BYTES];
    uint8_t sig[SH_SIG_BYTES];
    uint16_t n, index; /* events in the batch; this event's position */
    uint8_t k;         /* hashes in proof */
    uint8_t proof[SH_EVIDENCE_PROOF_MAX][32];
} sh_evidence_batch;

/* The digest an event's leaves commit to, from its encoding and its seed (the salts' source).
 * Errors: SH_E_MALFORMED (not an Envelope encoding the walk can follow), SH_E_RANGE (more
 * than SH_EVIDENCE_LEAVES_MAX field occurrences). */
sh_err sh_evidence_digest(const uint8_t *env, size_t len,
                          const uint8_t seed[SH_EVIDENCE_SEED_BYTES], uint8_t digest[32]);

/* The Merkle root of n (1..SH_EVIDENCE_BATCH_MAX) event digests, and each event's inclusion
 * proof into bs[0..n) (n, index, k, proof). SH_E_RANGE for a bad n. */
sh_err sh_evidence_batch_prove_all(const uint8_t (*digests)[32], size_t n, uint8_t root[32],
                                   sh_evidence_batch *bs);

/* The root that an event digest and its inclusion proof b lead to. SH_E_EVIDENCE when the
 * proof's length does not fit b->n and b->index. */
sh_err sh_evidence_proof_root(const uint8_t digest[32], const sh_evidence_batch *b,
                              uint8_t root[32]);

/* Signs root with k into b (signer, sig): once per batch, then copied to each event's. */
sh_err sh_evidence_sign(const sh_signkey *k, const uint8_t root[32], sh_evidence_batch *b);

/* The evidence a sender publishes with an event: the batch part and the seed. Returns the
 * bytes written to out, 0 when cap is too small. SH_EVIDENCE_SENDER_MAX bytes always do. */
#define SH_EVIDENCE_BATCH_BYTES(k) (1 + 32 + 64 + 2 + 2 + 1 + 32 * (size_t)(k))
#define SH_EVIDENCE_SENDER_MAX     (SH_EVIDENCE_BATCH_BYTES(SH_EVIDENCE_PROOF_MAX) + 32)
size_t sh_evidence_sender_encode(const sh_evidence_batch *b,
                                 const uint8_t seed[SH_EVIDENCE_SEED_BYTES], uint8_t *out,
                                 size_t cap);

/* Reads a sender's evidence's layout into b and seed, checking nothing else (for evidence
 * already checked, kept). SH_E_EVIDENCE when it is not laid out as one. */
sh_err sh_evidence_sender_decode(const uint8_t *ev, size_t evlen, sh_evidence_batch *b,
                                 uint8_t seed[SH_EVIDENCE_SEED_BYTES]);

/* The last batch signature a checker verified: the events of one batch share it, so it is
 * verified once (zero it to start). */
typedef struct sh_evidence_cache {
    int valid;
    uint8_t root[32], signer[SH_SIGN_PUB_BYTES], sig[SH_SIG_BYTES];
} sh_evidence_cache;

/* Checks a sender's evidence against the event it came with: its layout, the event's digest
 * under the seed, the proof and the signature (under the key it names: whose key it is, the
 * caller decides). Fills b and seed. cache may be NULL. Errors: SH_E_EVIDENCE (the detail says
 * what failed). */
sh_err sh_evidence_check_sender(const uint8_t *env, size_t len, const uint8_t *ev, size_t evlen,
                                sh_evidence_batch *b, uint8_t seed[SH_EVIDENCE_SEED_BYTES],
                                sh_evidence_cache *cache, sh_error *err) SH_WUR;

/* The version of an evidence encoding (its first byte): SH_EVIDENCE_SENDER (a sender's, with
 * its seed: what a recipient of the whole event gets too) or SH_EVIDENCE_COPY; 0 for none. */
/* Loads the algorithms the checks use, for this thread, now: a process about to sandbox
 * itself calls it first (OpenSSL reads its configuration and providers on first use).
 * SH_E_CRYPTO. */
sh_err sh_evidence_prepare(void) SH_WUR;

#define SH_EVIDENCE_SENDER 1
#define SH_EVIDENCE_COPY   2
int sh_evidence_kind(const uint8_t *ev, size_t evlen);

/* The evidence for one recipient's copy of env (copy: env minimised, an order-keeping subset of
 * its fields): the batch part, then for each leaf of env its salt when the copy keeps it, its
 * hash when it does not. *out is malloc'd. Errors: SH_E_MALFORMED (copy is not a subset of env
 * in order), SH_E_RANGE, SH_E_NOMEM. */
sh_err sh_evidence_for_copy(const uint8_t *env, size_t len, const uint8_t *copy, size_t copylen,
                            const sh_evidence_batch *b, const uint8_t seed[SH_EVIDENCE_SEED_BYTES],
                            uint8_t **out, size_t *outlen);

/* The evidence for less, a copy of copy with fewer fields (an order-keeping subset), from
 * copy's evidence ev (kind 2): each leaf copy keeps and less does not turns from its salt into
 * its hash. What the broker of another authority does when it withholds more of a copy it
 * received (docs/federation.md). *out is malloc'd. Errors: SH_E_EVIDENCE (ev is not a copy's
 * evidence for copy), SH_E_MALFORMED (less is not a subset of copy in order), SH_E_RANGE,
 * SH_E_NOMEM, SH_E_CRYPTO. */
sh_err sh_evidence_reduce(const uint8_t *copy, size_t copylen, const uint8_t *ev, size_t evlen,
                          const uint8_t *less, size_t lesslen, uint8_t **out, size_t *outlen);

/* Checks a recipient's copy against its evidence: every leaf of the copy accounted for, in
 * order, the digest rebuilt from them and the withheld hashes, the proof, the signature. On
 * SH_OK fills b (the signer's key is b->signer: the caller checks it is the sender's). Errors:
 * SH_E_EVIDENCE (the detail says what failed). */
sh_err sh_evidence_check_copy(const uint8_t *copy, size_t copylen, const uint8_t *ev, size_t evlen,
                              sh_evidence_batch *b, sh_evidence_cache *cache, sh_error *err) SH_WUR;

#endif
