/*
 * evidence.c — sender evidence: leaves, digests, the batch tree, the two encodings
 * (evidence.h; the byte layouts and every hash input are in docs/evidence.md).
 *
 * Owns nothing past a call. Never: reads a field past the end of its buffer, follows nesting
 * deeper than SH_EVIDENCE_DEPTH, or lets a copy's leaf go unaccounted for.
 */
#include "evidence.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "wire.h"

#define SH_EVIDENCE_DEPTH 6
#define PATH_MAX_BYTES    255
#define V_SENDER          1
#define V_COPY            2
#define KEPT              1
#define WITHHELD          2

static const char s_leaf_label[] = "sharehub/v1/evidence-leaf";
static const char s_event_label[] = "sharehub/v1/evidence-event";
static const char s_batch_label[] = "sharehub/v1/evidence-batch";

/* SHA-256 over n pieces, with a context and digest fetched once per thread (OpenSSL 3 fetches
 * the algorithm again on every EVP_sha256() init: a cost per leaf otherwise). */
static _Thread_local EVP_MD_CTX *s_ctx;
static _Thread_local EVP_MD *s_md;

static int s_hash(uint8_t out[32], const void *const *p, const size_t *len, size_t n)
{
    if (!s_md && !(s_md = EVP_MD_fetch(NULL, "SHA256", NULL))) return -1;
    if (!s_ctx && !(s_ctx = EVP_MD_CTX_new())) return -1;
    int ok = EVP_DigestInit_ex2(s_ctx, s_md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(s_ctx, p[i], len[i]) == 1;
    unsigned olen = 0;
    ok = ok && EVP_DigestFinal_ex(s_ctx, out, &olen) == 1 && olen == 32;
    return ok ? 0 : -1;
}

/* ---- the leaf walk --------------------------------------------------------------------- */

/* fn gets each field occurrence in encoding order: its path (field names joined by '.', a
 * repeated field's occurrence as name#k) and its bytes (tag and value; none for a message,
 * whose fields follow as leaves of their own). Non-zero from fn stops the walk. */
typedef int (*s_leaf_fn)(void *ctx, const char *path, size_t plen, const uint8_t *b, size_t blen);

static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* Appends ".name" (no dot at the start) and, for k >= 0, "#k" to the path of plen bytes in
 * path[PATH_MAX_BYTES + 1]: its new length, or 0 when it would not fit. (Not snprintf: this
 * runs for every field of every event, at the sender, the broker and each recipient.) */
static size_t s_path_add(char *path, size_t plen, const char *name, long k)
{
    char num[24]; /* k's digits, written from the end */
    size_t nl = strlen(name), kl = 0;
    if (k >= 0) {
        unsigned long v = (unsigned long)k;
        do
            num[sizeof num - 1 - kl++] = (char)('0' + v % 10);
        while (v /= 10);
    }
    size_t need = (plen ? 1 : 0) + nl + (k >= 0 ? 1 + kl : 0);
    if (need > PATH_MAX_BYTES - plen) return 0;
    char *p = path + plen;
    if (plen) *p++ = '.';
    memcpy(p, name, nl);
    p += nl;
    if (k >= 0) {
        *p++ = '#';
        memcpy(p, num + sizeof num - kl, kl);
        p += kl;
    }
    *p = '\0';
    return plen + need;
}

/* 0 done, -1 malformed, 1 stopped by fn. */
static int s_walk(const ProtobufCMessageDescriptor *d, const uint8_t *in, size_t len, char *path,
                  size_t plen, int depth, s_leaf_fn fn, void *ctx)
{
    if (depth > SH_EVIDENCE_DEPTH || d->n_fields > 64) return -1;
    unsigned seen[64] = {0}; /* occurrences of each repeated field so far */
    const uint8_t *p = in, *end = in + len;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t tag, v;
        if (s_varint(&p, end, &tag)) return -1;
        uint32_t wt = tag & 7;
        const uint8_t *body = p;
        size_t blen = 0;
        if (wt == 0) {
            if (s_varint(&p, end, &v)) return -1;
        } else if (wt == 1 || wt == 5) {
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < w) return -1;
            p += w;
        } else if (wt == 2) {
            if (s_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            body = p;
            blen = (size_t)v;
            p += blen;
        } else {
            return -1;
        }
        if (tag >> 3 > UINT32_MAX) return -1;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        if (!f) return -1;
        size_t fi = (size_t)(f - d->fields);
        size_t np = s_path_add(path, plen, f->name,
                               f->label == PROTOBUF_C_LABEL_REPEATED ? (long)seen[fi]++ : -1);
        if (!np) return -1;
        int msg = wt == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE;
        int rc = fn(ctx, path, np, msg ? NULL : start, msg ? 0 : (size_t)(p - start));
        if (!rc && msg) rc = s_walk(f->descriptor, body, blen, path, np, depth + 1, fn, ctx);
        path[plen] = '\0';
        if (rc) return rc;
    }
    return 0;
}

static int s_walk_env(const uint8_t *env, size_t len, s_leaf_fn fn, void *ctx)
{
    char path[PATH_MAX_BYTES + 1] = "";
    return s_walk(&sharehub__v1__envelope__descriptor, env, len, path, 0, 0, fn, ctx);
}

/* The salts of an event: its seed's AES-256-CTR keystream from a zero counter block, 32 bytes a
 * leaf in order (one cipher stream an event, not a hash a leaf). */
static _Thread_local EVP_CIPHER_CTX *s_cctx;
static _Thread_local EVP_CIPHER *s_ctr;

static int s_salts_begin(const uint8_t seed[32])
{
    static const uint8_t zero_iv[16];
    if (!s_ctr && !(s_ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL))) return -1;
    if (!s_cctx && !(s_cctx = EVP_CIPHER_CTX_new())) return -1;
    return EVP_EncryptInit_ex2(s_cctx, s_ctr, seed, zero_iv, NULL) == 1 ? 0 : -1;
}

static int s_salt_next(uint8_t salt[32])
{
    static const uint8_t zero[32];
    int n = 0;
    return EVP_EncryptUpdate(s_cctx, salt, &n, zero, 32) == 1 && n == 32 ? 0 : -1;
}

static int s_leaf(const uint8_t salt[32], const char *path, size_t plen, const uint8_t *b,
                  size_t blen, uint8_t out[32])
{
    uint8_t pre[sizeof s_leaf_label - 1 + 32 + 1 + PATH_MAX_BYTES];
    size_t n = sizeof s_leaf_label - 1;
    memcpy(pre, s_leaf_label, n);
    memcpy(pre + n, salt, 32);
    pre[n + 32] = (uint8_t)plen;
    memcpy(pre + n + 33, path, plen);
    const void *p[2] = {pre, b ? (const void *)b : ""};
    const size_t l[2] = {n + 33 + plen, blen};
    return s_hash(out, p, l, 2);
}

/* Every leaf of an event: path, bytes, salt and hash (salts only when a seed is given). */
typedef struct s_leaf_rec {
    char path[PATH_MAX_BYTES + 1];
    size_t plen;
    const uint8_t *b;
    size_t blen;
    uint8_t salt[32], hash[32];
} s_leaf_rec;

typedef struct s_leaves {
    s_leaf_rec *v;
    size_t n, cap;
    const uint8_t *seed;
    int bad;
} s_leaves;

static int s_collect(void *ctx, const char *path, size_t plen, const uint8_t *b, size_t blen)
{
    s_leaves *L = ctx;
    if (L->n == SH_EVIDENCE_LEAVES_MAX) return L->bad = 2;
    if (L->n == L->cap) {
        size_t ncap = L->cap ? 2 * L->cap : 64;
        s_leaf_rec *v = realloc(L->v, ncap * sizeof *v);
        if (!v) return L->bad = 4;
        L->v = v;
        L->cap = ncap;
    }
    s_leaf_rec *r = &L->v[L->n];
    memcpy(r->path, path, plen + 1);
    r->plen = plen;
    r->b = b;
    r->blen = blen;
    if (L->seed && (s_salt_next(r->salt) || s_leaf(r->salt, path, plen, b, blen, r->hash)))
        return L->bad = 3;
    L->n++;
    return 0;
}

/* Collects the leaves of env into *L (L->v malloc'd). SH_OK, SH_E_MALFORMED, SH_E_RANGE,
 * SH_E_NOMEM, SH_E_CRYPTO. */
static sh_err s_leaves_of(const uint8_t *env, size_t len, const uint8_t *seed, s_leaves *L)
{
    memset(L, 0, sizeof *L);
    L->seed = seed;
    if (seed && s_salts_begin(seed)) return SH_E_CRYPTO;
    int rc = s_walk_env(env, len, s_collect, L);
    sh_err e = rc == 0       ? SH_OK
               : L->bad == 2 ? SH_E_RANGE
               : L->bad == 3 ? SH_E_CRYPTO
               : L->bad == 4 ? SH_E_NOMEM
                             : SH_E_MALFORMED;
    if (e) {
        free(L->v);
        L->v = NULL;
    }
    return e;
}

/* The event digest over n leaf hashes laid end to end. */
static int s_event_digest(const uint8_t *hashes, size_t n, uint8_t out[32])
{
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    const void *p[3] = {s_event_label, be, hashes};
    const size_t l[3] = {sizeof s_event_label - 1, 4, 32 * n};
    return s_hash(out, p, l, 3);
}

sh_err sh_evidence_digest(const uint8_t *env, size_t len,
                          const uint8_t seed[SH_EVIDENCE_SEED_BYTES], uint8_t digest[32])
{
    s_leaves L;
    sh_err rc = s_leaves_of(env, len, seed, &L);
    if (rc) return rc;
    uint8_t *h = malloc(32 * (L.n ? L.n : 1));
    if (!h) rc = SH_E_NOMEM;
    for (size_t i = 0; h && i < L.n; i++)
        memcpy(h + 32 * i, L.v[i].hash, 32);
    if (h && s_event_digest(h, L.n, digest)) rc = SH_E_CRYPTO;
    free(h);
    free(L.v);
    return rc;
}

/* ---- the batch tree (RFC 9162 section 2.1: leaf 0x00, node 0x01) ------------------------ */

static int s_node(uint8_t out[32], const uint8_t l[32], const uint8_t r[32])
{
    static const uint8_t one = 1;
    const void *p[3] = {&one, l, r};
    const size_t n[3] = {1, 32, 32};
    return s_hash(out, p, n, 3);
}

static int s_leafnode(uint8_t out[32], const uint8_t d[32])
{
    static const uint8_t zero = 0;
    const void *p[2] = {&zero, d};
    const size_t n[2] = {1, 32};
    return s_hash(out, p, n, 2);
}

/* The hash of digests[lo..hi); appends each index's sibling at this level to its proof. */
static int s_mth(const uint8_t (*d)[32], size_t lo, size_t hi, sh_evidence_batch *bs,
                 uint8_t out[32])
{
    if (hi - lo == 1) return s_leafnode(out, d[lo]);
    size_t k = 1;
    while (k * 2 < hi - lo)
        k *= 2;
    uint8_t l[32], r[32];
    if (s_mth(d, lo, lo + k, bs, l) || s_mth(d, lo + k, hi, bs, r)) return -1;
    for (size_t i = lo; i < hi; i++) {
        sh_evidence_batch *b = &bs[i];
        if (b->k == SH_EVIDENCE_PROOF_MAX) return -1;
        memcpy(b->proof[b->k++], i < lo + k ? r : l, 32);
    }
    return s_node(out, l, r);
}

sh_err sh_evidence_batch_prove_all(const uint8_t (*digests)[32], size_t n, uint8_t root[32],
                                   sh_evidence_batch *bs)
{
    if (n < 1 || n > SH_EVIDENCE_BATCH_MAX) return SH_E_RANGE;
    for (size_t i = 0; i < n; i++) {
        memset(&bs[i], 0, sizeof bs[i]);
        bs[i].n = (uint16_t)n;
        bs[i].index = (uint16_t)i;
    }
    return s_mth(digests, 0, n, bs, root) ? SH_E_CRYPTO : SH_OK;
}

/* The root that digest and b's proof lead to (RFC 9162 2.1.3.2); -1 when the proof's length
 * does not fit n and index. */
static int s_root(const uint8_t digest[32], const sh_evidence_batch *b, uint8_t root[32])
{
    if (b->n < 1 || b->index >= b->n) return -1;
    uint64_t fn = b->index, sn = (uint64_t)b->n - 1;
    uint8_t r[32];
    if (s_leafnode(r, digest)) return -1;
    for (unsigned i = 0; i < b->k; i++) {
        if (sn == 0) return -1;
        if ((fn & 1) || fn == sn) {
            if (s_node(r, b->proof[i], r)) return -1;
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else if (s_node(r, r, b->proof[i])) {
            return -1;
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) return -1;
    memcpy(root, r, 32);
    return 0;
}

sh_err sh_evidence_proof_root(const uint8_t digest[32], const sh_evidence_batch *b,
                              uint8_t root[32])
{
    return s_root(digest, b, root) ? SH_E_EVIDENCE : SH_OK;
}

static void s_batch_msg(const uint8_t root[32], uint8_t msg[sizeof s_batch_label - 1 + 32])
{
    memcpy(msg, s_batch_label, sizeof s_batch_label - 1);
    memcpy(msg + sizeof s_batch_label - 1, root, 32);
}

sh_err sh_evidence_sign(const sh_signkey *k, const uint8_t root[32], sh_evidence_batch *b)
{
    uint8_t msg[sizeof s_batch_label - 1 + 32];
    s_batch_msg(root, msg);
    sh_signkey_public(k, b->signer);
    return sh_sign(k, msg, sizeof msg, b->sig) == SH_OK ? SH_OK : SH_E_CRYPTO;
}

/* Checks that digest is under b's signed root (a root, signer and signature just verified, in
 * cache, is not verified again). */
static sh_err s_check_batch(const uint8_t digest[32], const sh_evidence_batch *b,
                            sh_evidence_cache *cache, sh_error *err)
{
    uint8_t root[32], msg[sizeof s_batch_label - 1 + 32];
    if (s_root(digest, b, root))
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: the inclusion proof does not fit");
    if (cache && cache->valid && !memcmp(cache->root, root, 32) &&
        !memcmp(cache->signer, b->signer, 32) && !memcmp(cache->sig, b->sig, 64))
        return SH_OK;
    s_batch_msg(root, msg);
    if (sh_verify(b->signer, msg, sizeof msg, b->sig) != SH_OK)
        return sh_error_set(err, SH_E_EVIDENCE,
                            "evidence: the sender's signature does not verify over this event");
    if (cache) {
        cache->valid = 1;
        memcpy(cache->root, root, 32);
        memcpy(cache->signer, b->signer, 32);
        memcpy(cache->sig, b->sig, 64);
    }
    return SH_OK;
}

sh_err sh_evidence_prepare(void)
{
    static const uint8_t zero[32];
    uint8_t out[32];
    const void *p[1] = {zero};
    const size_t len[1] = {sizeof zero};
    return s_hash(out, p, len, 1) || s_salts_begin(zero) ? SH_E_CRYPTO : SH_OK;
}

int sh_evidence_kind(const uint8_t *ev, size_t evlen)
{
    return ev && evlen && (ev[0] == V_SENDER || ev[0] == V_COPY) ? ev[0] : 0;
}

/* ---- encodings -------------------------------------------------------------------------- */

static size_t s_put_batch(uint8_t *o, uint8_t version, const sh_evidence_batch *b)
{
    o[0] = version;
    memcpy(o + 1, b->signer, 32);
    memcpy(o + 33, b->sig, 64);
    o[97] = (uint8_t)(b->n >> 8), o[98] = (uint8_t)b->n;
    o[99] = (uint8_t)(b->index >> 8), o[100] = (uint8_t)b->index;
    o[101] = b->k;
    memcpy(o + 102, b->proof, 32 * (size_t)b->k);
    return SH_EVIDENCE_BATCH_BYTES(b->k);
}

/* Reads the batch part; returns its length, 0 when malformed. */
static size_t s_get_batch(const uint8_t *p, size_t len, uint8_t version, sh_evidence_batch *b)
{
    memset(b, 0, sizeof *b);
    if (len < SH_EVIDENCE_BATCH_BYTES(0) || p[0] != version || p[101] > SH_EVIDENCE_PROOF_MAX ||
        len < SH_EVIDENCE_BATCH_BYTES(p[101]))
        return 0;
    memcpy(b->signer, p + 1, 32);
    memcpy(b->sig, p + 33, 64);
    b->n = (uint16_t)(p[97] << 8 | p[98]);
    b->index = (uint16_t)(p[99] << 8 | p[100]);
    b->k = p[101];
    memcpy(b->proof, p + 102, 32 * (size_t)b->k);
    if (b->n < 1 || b->n > SH_EVIDENCE_BATCH_MAX || b->index >= b->n) return 0;
    return SH_EVIDENCE_BATCH_BYTES(b->k);
}

size_t sh_evidence_sender_encode(const sh_evidence_batch *b,
                                 const uint8_t seed[SH_EVIDENCE_SEED_BYTES], uint8_t *out,
                                 size_t cap)
{
    if (b->k > SH_EVIDENCE_PROOF_MAX || cap < SH_EVIDENCE_BATCH_BYTES(b->k) + 32) return 0;
    size_t n = s_put_batch(out, V_SENDER, b);
    memcpy(out + n, seed, 32);
    return n + 32;
}

sh_err sh_evidence_sender_decode(const uint8_t *ev, size_t evlen, sh_evidence_batch *b,
                                 uint8_t seed[SH_EVIDENCE_SEED_BYTES])
{
    size_t n = ev ? s_get_batch(ev, evlen, V_SENDER, b) : 0;
    if (!n || evlen != n + 32) return SH_E_EVIDENCE;
    memcpy(seed, ev + n, 32);
    return SH_OK;
}

sh_err sh_evidence_check_sender(const uint8_t *env, size_t len, const uint8_t *ev, size_t evlen,
                                sh_evidence_batch *b, uint8_t seed[SH_EVIDENCE_SEED_BYTES],
                                sh_evidence_cache *cache, sh_error *err)
{
    size_t n = ev ? s_get_batch(ev, evlen, V_SENDER, b) : 0;
    if (!n || evlen != n + 32)
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: not a sender's evidence (%zu bytes)",
                            evlen);
    memcpy(seed, ev + n, 32);
    uint8_t digest[32];
    sh_err rc = sh_evidence_digest(env, len, seed, digest);
    if (rc)
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: the event cannot be walked (E%03d)",
                            (int)rc);
    return s_check_batch(digest, b, cache, err);
}

sh_err sh_evidence_for_copy(const uint8_t *env, size_t len, const uint8_t *copy, size_t copylen,
                            const sh_evidence_batch *b, const uint8_t seed[SH_EVIDENCE_SEED_BYTES],
                            uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    s_leaves E, C;
    sh_err rc = s_leaves_of(env, len, seed, &E);
    if (rc) return rc;
    if ((rc = s_leaves_of(copy, copylen, NULL, &C))) {
        free(E.v);
        return rc;
    }
    size_t cap = SH_EVIDENCE_BATCH_BYTES(b->k) + 2 + 33 * E.n;
    uint8_t *o = malloc(cap);
    if (!o) rc = SH_E_NOMEM;
    size_t at = o ? s_put_batch(o, V_COPY, b) : 0, j = 0;
    if (o) {
        o[at++] = (uint8_t)(E.n >> 8);
        o[at++] = (uint8_t)E.n;
    }
    for (size_t i = 0; o && i < E.n; i++) {
        const s_leaf_rec *e = &E.v[i];
        int kept = j < C.n && C.v[j].plen == e->plen && !memcmp(C.v[j].path, e->path, e->plen) &&
                   C.v[j].blen == e->blen && (!e->blen || !memcmp(C.v[j].b, e->b, e->blen));
        o[at++] = kept ? KEPT : WITHHELD;
        memcpy(o + at, kept ? e->salt : e->hash, 32);
        at += 32;
        j += kept;
    }
    if (o && j != C.n) rc = SH_E_MALFORMED; /* the copy holds a leaf the event does not */
    free(E.v);
    free(C.v);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *outlen = at;
    return SH_OK;
}

sh_err sh_evidence_reduce(const uint8_t *copy, size_t copylen, const uint8_t *ev, size_t evlen,
                          const uint8_t *less, size_t lesslen, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    sh_evidence_batch b;
    size_t n = ev ? s_get_batch(ev, evlen, V_COPY, &b) : 0;
    if (!n || evlen < n + 2) return SH_E_EVIDENCE;
    size_t L = (size_t)ev[n] << 8 | ev[n + 1];
    if (L > SH_EVIDENCE_LEAVES_MAX || evlen != n + 2 + 33 * L) return SH_E_EVIDENCE;
    s_leaves C, S;
    sh_err rc = s_leaves_of(copy, copylen, NULL, &C);
    if (rc) return rc;
    if ((rc = s_leaves_of(less, lesslen, NULL, &S))) {
        free(C.v);
        return rc;
    }
    uint8_t *o = malloc(evlen);
    if (!o) rc = SH_E_NOMEM;
    size_t j = 0, k = 0; /* the next leaf of copy, of less */
    for (size_t i = 0; !rc && i < L; i++) {
        const uint8_t *e = ev + n + 2 + 33 * i;
        uint8_t *w = o + n + 2 + 33 * i;
        memcpy(w, e, 33);
        if (e[0] == WITHHELD) continue;
        if (e[0] != KEPT || j == C.n) {
            rc = SH_E_EVIDENCE;
            break;
        }
        const s_leaf_rec *c = &C.v[j++];
        int kept = k < S.n && S.v[k].plen == c->plen && !memcmp(S.v[k].path, c->path, c->plen) &&
                   S.v[k].blen == c->blen && (!c->blen || !memcmp(S.v[k].b, c->b, c->blen));
        k += kept;
        if (!kept) {
            w[0] = WITHHELD;
            if (s_leaf(e + 1, c->path, c->plen, c->b, c->blen, w + 1)) rc = SH_E_CRYPTO;
        }
    }
    if (!rc && j != C.n) rc = SH_E_EVIDENCE;  /* copy holds a leaf the evidence lacks */
    if (!rc && k != S.n) rc = SH_E_MALFORMED; /* less holds a leaf copy does not */
    if (!rc) memcpy(o, ev, n + 2);
    free(C.v);
    free(S.v);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *outlen = evlen;
    return SH_OK;
}

typedef struct s_check {
    const uint8_t *ent; /* the next evidence entry */
    size_t left;        /* entries not yet used */
    uint8_t *hashes;    /* leaf hashes, in order */
    size_t n;
    int bad;
} s_check;

/* Each leaf of the copy takes the next entries: withheld ones stand for leaves it lacks; then
 * the next must be kept (its salt makes this leaf's hash). */
static int s_check_leaf(void *ctx, const char *path, size_t plen, const uint8_t *b, size_t blen)
{
    s_check *c = ctx;
    while (c->left && c->ent[0] == WITHHELD) {
        memcpy(c->hashes + 32 * c->n++, c->ent + 1, 32);
        c->ent += 33;
        c->left--;
    }
    if (!c->left || c->ent[0] != KEPT) return c->bad = 1;
    if (s_leaf(c->ent + 1, path, plen, b, blen, c->hashes + 32 * c->n)) return c->bad = 2;
    c->n++;
    c->ent += 33;
    c->left--;
    return 0;
}

sh_err sh_evidence_check_copy(const uint8_t *copy, size_t copylen, const uint8_t *ev, size_t evlen,
                              sh_evidence_batch *b, sh_evidence_cache *cache, sh_error *err)
{
    size_t n = ev ? s_get_batch(ev, evlen, V_COPY, b) : 0;
    if (!n || evlen < n + 2)
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: not a copy's evidence (%zu bytes)",
                            evlen);
    size_t L = (size_t)ev[n] << 8 | ev[n + 1];
    if (L > SH_EVIDENCE_LEAVES_MAX || evlen != n + 2 + 33 * L)
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: %zu leaves in %zu bytes", L, evlen);
    for (size_t i = 0; i < L; i++)
        if (ev[n + 2 + 33 * i] != KEPT && ev[n + 2 + 33 * i] != WITHHELD)
            return sh_error_set(err, SH_E_EVIDENCE, "evidence: leaf %zu of unknown kind", i);
    s_check c = {.ent = ev + n + 2, .left = L, .hashes = malloc(32 * (L ? L : 1))};
    if (!c.hashes) return sh_error_set(err, SH_E_NOMEM, "evidence");
    int w = s_walk_env(copy, copylen, s_check_leaf, &c);
    while (!w && c.left && c.ent[0] == WITHHELD) { /* withheld leaves after the last kept one */
        memcpy(c.hashes + 32 * c.n++, c.ent + 1, 32);
        c.ent += 33;
        c.left--;
    }
    sh_err rc = SH_OK;
    uint8_t digest[32];
    if (w < 0)
        rc = sh_error_set(err, SH_E_EVIDENCE, "evidence: the copy cannot be walked");
    else if (w > 0 || c.left)
        rc = sh_error_set(err, SH_E_EVIDENCE,
                          "evidence: the copy's fields and the evidence's leaves disagree");
    else if (s_event_digest(c.hashes, c.n, digest))
        rc = sh_error_set(err, SH_E_CRYPTO, "evidence digest");
    else
        rc = s_check_batch(digest, b, cache, err);
    free(c.hashes);
    return rc;
}
