/*
 * shred.c — the day-key tree of shred.h.
 *
 * File (all integers big-endian):
 *   "SHSHRED1" (8) | u32 first day | u8 n | n x (u8 depth 0-16 | u32 index | key 32) |
 *   SHA-256 of everything before it (32)
 * A node (depth, index) covers days [index << (16 - depth), (index + 1) << (16 - depth)); its
 * children are HKDF(node key, "shred/left") and HKDF(node key, "shred/right"). The nodes are
 * disjoint, in day order, and cover exactly [first day, 65536).
 *
 * Owns: the file and the keys read from it. Never: writes a forgotten key anywhere.
 */
#include "shred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire.h"

#define LEVELS   16
#define NODE_MAX (2 * LEVELS + 2) /* a cover of [D, 65536) needs at most 16 nodes */
#define MAGIC    "SHSHRED1"
#define FILE_MAX (8 + 4 + 1 + NODE_MAX * 37 + 32)

typedef struct s_node {
    uint8_t depth;
    uint32_t index;
    uint8_t key[SH_KEY_BYTES];
} s_node;

#define CACHED 4 /* day keys kept derived: a day's values share one */

struct sh_shred {
    char *path;
    uint32_t first;
    s_node nodes[NODE_MAX];
    size_t n;
    struct {
        uint32_t day;
        sh_key *key;
    } cache[CACHED]; /* most recently derived first; never a day before first */
};

static uint32_t s_lo(const s_node *x)
{
    return x->index << (LEVELS - x->depth);
}

static uint32_t s_hi(const s_node *x)
{
    return (x->index + 1) << (LEVELS - x->depth);
}

uint32_t sh_shred_day_of(int64_t ms)
{
    int64_t d = ms >= 0 ? ms / 86400000 : 0;
    return d >= SH_SHRED_DAYS ? SH_SHRED_DAYS - 1 : (uint32_t)d;
}

uint32_t sh_shred_first_day(const sh_shred *s)
{
    return s->first;
}

/* One step down the tree: the key of the left (right = 0) or right (right = 1) child. */
static sh_err s_child(const uint8_t key[SH_KEY_BYTES], int right, uint8_t out[SH_KEY_BYTES])
{
    sh_key *k = NULL, *c = NULL;
    sh_err rc = sh_key_from_bytes(key, &k);
    if (!rc) rc = sh_key_derive(k, NULL, 0, right ? "shred/right" : "shred/left", &c);
    if (!rc) sh_key_export(c, out);
    sh_key_destroy(&c);
    sh_key_destroy(&k);
    return rc;
}

/* The file's bytes for s into buf (FILE_MAX); its length. */
static size_t s_encode(const sh_shred *s, uint8_t *buf)
{
    size_t at = 0;
    memcpy(buf, MAGIC, 8);
    at = 8;
    sh_be32_put(buf + at, s->first);
    at += 4;
    buf[at++] = (uint8_t)s->n;
    for (size_t i = 0; i < s->n; i++) {
        buf[at++] = s->nodes[i].depth;
        sh_be32_put(buf + at, s->nodes[i].index);
        at += 4;
        memcpy(buf + at, s->nodes[i].key, SH_KEY_BYTES);
        at += SH_KEY_BYTES;
    }
    sh_sha256(buf, at, buf + at);
    return at + 32;
}

/* Writes s to its file: a new file beside it, synced, renamed over, the directory synced. */
static sh_err s_save(const sh_shred *s, sh_error *err)
{
    uint8_t buf[FILE_MAX];
    size_t len = s_encode(s, buf);
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", s->path) >= sizeof tmp)
        return sh_error_set(err, SH_E_IO, "%s: path too long", s->path);
    unlink(tmp); /* (a leftover of a crash mid-save: the old file is still whole) */
    sh_err rc = sh_secret_file_write(tmp, buf, len, err);
    sh_wipe(buf, sizeof buf);
    if (rc) return rc;
    if (rename(tmp, s->path) != 0) {
        rc = sh_error_set(err, SH_E_IO, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0'; /* the file is in / */
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = sh_error_set(err, SH_E_IO, "sync %s: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    return rc;
}

static sh_err s_decode(sh_shred *s, const uint8_t *p, size_t len, sh_error *err)
{
    uint8_t sum[32];
    if (len < 8 + 4 + 1 + 32 || memcmp(p, MAGIC, 8) != 0)
        return sh_error_set(err, SH_E_KEY_FORMAT, "%s: not a shred file", s->path);
    sh_sha256(p, len - 32, sum);
    size_t n = p[12];
    if (memcmp(sum, p + len - 32, 32) != 0 || n > NODE_MAX || len != 13 + n * 37 + 32)
        return sh_error_set(err, SH_E_KEY_FORMAT, "%s: damaged (its checksum or length fails)",
                            s->path);
    s->first = sh_be32_get(p + 8);
    s->n = n;
    uint32_t next = s->first;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *q = p + 13 + i * 37;
        s_node *x = &s->nodes[i];
        x->depth = q[0];
        x->index = sh_be32_get(q + 1);
        memcpy(x->key, q + 5, SH_KEY_BYTES);
        /* the nodes are whole subtrees, in order, covering [first, 65536) without a gap */
        if (x->depth > LEVELS || x->index >= (1u << x->depth) || s_lo(x) != next)
            return sh_error_set(err, SH_E_KEY_FORMAT, "%s: damaged (node %zu)", s->path, i + 1);
        next = s_hi(x);
    }
    if (next != SH_SHRED_DAYS && !(n == 0 && s->first == SH_SHRED_DAYS))
        return sh_error_set(err, SH_E_KEY_FORMAT, "%s: damaged (the days it covers)", s->path);
    return SH_OK;
}

sh_err sh_shred_open(const char *path, int create, sh_shred **out, sh_error *err)
{
    *out = NULL;
    sh_shred *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return sh_error_set(err, SH_E_NOMEM, "shred");
    }
    char buf[FILE_MAX + 1];
    size_t len = 0;
    sh_err rc = sh_secret_file_read(path, buf, sizeof buf, &len, err);
    if (rc == SH_E_KEY_MISSING && create) {
        s->n = 1;
        s->first = 0;
        s->nodes[0].depth = 0;
        s->nodes[0].index = 0;
        rc = sh_random(s->nodes[0].key, SH_KEY_BYTES);
        if (!rc)
            rc = s_save(s, err);
        else
            sh_error_set(err, rc, "random");
    } else if (!rc) {
        rc = s_decode(s, (const uint8_t *)buf, len, err);
    }
    sh_wipe(buf, sizeof buf);
    if (rc) {
        sh_shred_destroy(&s);
        return rc;
    }
    *out = s;
    return SH_OK;
}

void sh_shred_destroy(sh_shred **sp)
{
    if (!sp || !*sp) return;
    sh_shred *s = *sp;
    for (size_t i = 0; i < CACHED; i++)
        sh_key_destroy(&s->cache[i].key);
    sh_wipe(s->nodes, sizeof s->nodes);
    free(s->path);
    free(s);
    *sp = NULL;
}

sh_err sh_shred_day_key(const sh_shred *s, uint32_t day, sh_key **out)
{
    *out = NULL;
    const s_node *x = NULL;
    for (size_t i = 0; i < s->n && !x; i++)
        if (day >= s_lo(&s->nodes[i]) && day < s_hi(&s->nodes[i])) x = &s->nodes[i];
    if (!x) return SH_E_NOT_FOUND;
    uint8_t k[SH_KEY_BYTES];
    memcpy(k, x->key, sizeof k);
    sh_err rc = SH_OK;
    for (unsigned d = x->depth; d < LEVELS && !rc; d++)
        rc = s_child(k, (day >> (LEVELS - 1 - d)) & 1, k);
    if (!rc) rc = sh_key_from_bytes(k, out);
    sh_wipe(k, sizeof k);
    return rc;
}

sh_err sh_shred_forget_before(sh_shred *s, uint32_t day, sh_error *err)
{
    if (day <= s->first) return SH_OK;
    if (day > SH_SHRED_DAYS) day = SH_SHRED_DAYS;
    sh_shred next = *s; /* (path shared, not owned) */
    next.n = 0;
    next.first = day;
    sh_err rc = SH_OK;
    for (size_t i = 0; i < s->n && !rc; i++) {
        s_node x = s->nodes[i];
        if (s_hi(&x) <= day) continue; /* all forgotten */
        /* split the node that straddles day until its pieces lie wholly after it */
        while (s_lo(&x) < day && !rc) {
            s_node l = {(uint8_t)(x.depth + 1), x.index * 2, {0}};
            s_node r = {(uint8_t)(x.depth + 1), x.index * 2 + 1, {0}};
            rc = s_child(x.key, 0, l.key);
            if (!rc) rc = s_child(x.key, 1, r.key);
            if (rc) break;
            if (s_lo(&r) <= day) {
                x = r; /* the left half is wholly before day: forgotten */
            } else {
                next.nodes[next.n++] = r; /* the right half stays whole; go on in the left */
                x = l;
            }
            sh_wipe(&l, sizeof l);
            sh_wipe(&r, sizeof r);
        }
        if (!rc && s_lo(&x) >= day) next.nodes[next.n++] = x;
        sh_wipe(&x, sizeof x);
    }
    if (rc) {
        sh_wipe(&next, sizeof next);
        return sh_error_set(err, rc, "deriving the remaining day keys");
    }
    /* the right halves were gathered from the outside in: put the cover back in day order */
    for (size_t i = 0; i < next.n; i++)
        for (size_t j = i + 1; j < next.n; j++)
            if (s_lo(&next.nodes[j]) < s_lo(&next.nodes[i])) {
                s_node t = next.nodes[i];
                next.nodes[i] = next.nodes[j];
                next.nodes[j] = t;
                sh_wipe(&t, sizeof t);
            }
    memset(next.cache, 0, sizeof next.cache); /* (the keys stay s's) */
    rc = s_save(&next, err);
    if (!rc) {
        for (size_t i = 0; i < CACHED; i++)
            if (s->cache[i].key && s->cache[i].day < day) sh_key_destroy(&s->cache[i].key);
        sh_wipe(s->nodes, sizeof s->nodes);
        memcpy(s->nodes, next.nodes, sizeof s->nodes);
        s->n = next.n;
        s->first = next.first;
    }
    sh_wipe(&next, sizeof next);
    return rc;
}

/* The key of day from the cache, or derived into it (16 HKDF steps); NULL when forgotten. */
static const sh_key *s_cached(sh_shred *s, uint32_t day)
{
    for (size_t i = 0; i < CACHED; i++)
        if (s->cache[i].key && s->cache[i].day == day) return s->cache[i].key;
    sh_key *k = NULL;
    if (sh_shred_day_key(s, day, &k)) return NULL;
    sh_key_destroy(&s->cache[CACHED - 1].key); /* the least recent goes */
    memmove(&s->cache[1], &s->cache[0], (CACHED - 1) * sizeof s->cache[0]);
    s->cache[0].day = day;
    s->cache[0].key = k;
    return k;
}

sh_err sh_shred_seal(sh_shred *s, uint32_t day, const void *ad, size_t adlen, const uint8_t *in,
                     size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    if (cap < 4 || cap - 4 < len + SH_SEAL_OVERHEAD) return SH_E_INVAL;
    const sh_key *k = s_cached(s, day);
    if (!k) return SH_E_NOT_FOUND;
    size_t n = 0;
    sh_be32_put(out, day);
    sh_err rc = sh_seal(k, ad, adlen, in, len, out + 4, cap - 4, &n);
    if (!rc) *outlen = 4 + n;
    return rc;
}

uint32_t sh_shred_sealed_day(const uint8_t *in, size_t len)
{
    return len >= 4 ? sh_be32_get(in) : 0;
}

sh_err sh_shred_unseal(sh_shred *s, const void *ad, size_t adlen, const uint8_t *in, size_t len,
                       uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    if (len < SH_SHRED_OVERHEAD) return SH_E_STORE_CORRUPT;
    if (cap < len - SH_SHRED_OVERHEAD) return SH_E_INVAL;
    const sh_key *k = s_cached(s, sh_be32_get(in));
    if (!k) return SH_E_NOT_FOUND; /* erased */
    sh_err rc = sh_open(k, ad, adlen, in + 4, len - 4, out, cap, outlen);
    return rc == SH_OK || rc == SH_E_NOMEM ? rc : SH_E_STORE_CORRUPT;
}
