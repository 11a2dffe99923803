/*
 * audit_verify.c — checking an audit chain (audit.h, docs/audit-format.md "Verification"):
 * every entry, link and signed head; the heads other stores hold of it; scans forwards and
 * backwards.
 *
 * Owns nothing past a call. Never: writes to the log; trusts an entry it has not checked when
 * it reports a verification.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "audit_int.h"

/* ---- verification -------------------------------------------------------------------- */

typedef struct s_cp {
    uint64_t seq;
    uint8_t head[SH_MAC_BYTES];
} s_cp;

static sh_err s_fail(sh_audit_report *r, sh_err code, uint64_t seq, const char *detail)
{
    r->result = code;
    r->bad_seq = seq;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
    return code;
}

/* Loads and checks every checkpoint's signature; *out is a malloc'd array in seq order. */
static sh_err s_load_checkpoints(sh_audit *a, sh_txn *t,
                                 const uint8_t (*trusted)[SH_SIGN_PUB_BYTES], size_t ntrusted,
                                 s_cp **out, size_t *count, sh_audit_report *r)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    s_cp *cps = NULL;
    size_t n = 0, cap = 0;
    char what[120];
    *out = NULL;
    *count = 0;
    if (sh_cursor_open(t, a->cps, &c, &err)) return s_fail(r, err.code, 0, err.detail);
    sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        uint64_t seq = kv.klen == 8 ? sh_be64_get(kv.key) : 0;
        snprintf(what, sizeof what, "checkpoint at entry %llu", (unsigned long long)seq);
        if (kv.klen != 8 || kv.vlen != CP_SIZE || kv.val[0] != CP_VERSION ||
            sh_be64_get(kv.val + 1) != seq) {
            rc = s_fail(r, SH_E_AUDIT_FORMAT, seq, what);
            break;
        }
        const uint8_t *pub = kv.val + 49;
        int pinned = ntrusted == 0;
        for (size_t i = 0; i < ntrusted && !pinned; i++)
            pinned = memcmp(trusted[i], pub, SH_SIGN_PUB_BYTES) == 0;
        uint8_t msg[CP_MSG_BYTES];
        sh_audit_cp_message(sh_store_id(a->s), kv.val, msg);
        if (!pinned) {
            strncat(what, ": signed by an untrusted key", sizeof what - strlen(what) - 1);
            rc = s_fail(r, SH_E_AUDIT_CHECKPOINT, seq, what);
            break;
        }
        if (sh_verify(pub, msg, sizeof msg, kv.val + 81) != SH_OK) {
            strncat(what, ": signature does not verify", sizeof what - strlen(what) - 1);
            rc = s_fail(r, SH_E_AUDIT_CHECKPOINT, seq, what);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            s_cp *p = realloc(cps, ncap * sizeof *p);
            if (!p) {
                rc = s_fail(r, SH_E_NOMEM, seq, "checkpoints");
                break;
            }
            cps = p;
            cap = ncap;
        }
        cps[n].seq = seq;
        memcpy(cps[n].head, kv.val + 17, SH_MAC_BYTES);
        n++;
    }
    sh_cursor_close(&c);
    if (rc == SH_E_NOT_FOUND)
        rc = SH_OK;
    else if (rc && r->result == SH_OK)
        rc = s_fail(r, rc, 0, err.detail);
    if (rc) {
        free(cps);
        return rc;
    }
    *out = cps;
    *count = n;
    return SH_OK;
}

/* The link an entry must carry (its last 32 bytes): SHA-256 of the bytes before it for a
 * version 2 entry, their HMAC under the audit key for a version 1 entry. */
static sh_err s_link(const sh_audit *a, const sh_kv *kv, uint8_t out[SH_MAC_BYTES])
{
    if (kv->val[0] == V2) {
        sh_sha256(kv->val, kv->vlen - SH_MAC_BYTES, out);
        return SH_OK;
    }
    if (!a->mac) return SH_E_KEY_MISSING;
    return sh_mac_compute(a->mac, kv->val, kv->vlen - SH_MAC_BYTES, NULL, 0, out) == SH_OK
               ? SH_OK
               : SH_E_CRYPTO;
}

/* Entry 1 of a version 2 log names its store and nothing else. */
static int s_is_genesis(const sh_audit *a, const sh_audit_record *r)
{
    char want[64];
    sh_audit_genesis_detail(a, want);
    return r->action == SH_AUDIT_ADMIN && r->outcome == SH_AUDIT_OK && r->code == 0 &&
           !r->has_event && !r->has_child && !r->actor_org[0] && !r->actor_user[0] &&
           !r->peer_org[0] && !r->purpose[0] && !r->rule[0] && strcmp(r->detail, want) == 0;
}

/* Walks entries from seq `from` (prev0 = the hash they must chain to; NULL from entry 1: the
 * genesis value of entry 1's version), checking each; checks checkpoints cps (may be NULL) on
 * the way and hands each entry to fn (may be NULL). */
static sh_err s_walk(sh_audit *a, sh_txn *t, uint64_t from, const uint8_t *prev0, const s_cp *cps,
                     size_t ncp, sh_audit_visit fn, void *ctx, const sh_audit_verify_opts *o,
                     sh_audit_report *r)
{
    sh_cursor *c = NULL;
    sh_error err;
    char what[160];
    size_t next_cp = 0;
    sh_err rc = sh_cursor_open(t, a->entries, &c, &err);
    if (rc) return s_fail(r, rc, 0, err.detail);
    uint64_t expected = from;
    uint8_t prev[SH_MAC_BYTES], mac[SH_MAC_BYTES], seek[8], version = V1;
    memcpy(prev, prev0 ? prev0 : a->genesis2, SH_MAC_BYTES); /* (an empty log's head) */
    sh_be64_put(seek, from);
    sh_audit_record rec;
    sh_kv kv;
    rc = sh_cursor_get(c, SH_CURSOR_SEEK, seek, 8, &kv, &err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        uint64_t key = kv.klen == 8 ? sh_be64_get(kv.key) : 0;
        if (kv.klen != 8 || sh_audit_parse(kv.val, kv.vlen, &rec) != SH_OK ||
            rec.version < version) {
            snprintf(what, sizeof what, "entry %llu cannot be parsed%s", (unsigned long long)key,
                     kv.klen == 8 && kv.vlen && kv.val[0] == V1 ? " (version 1 after version 2)"
                                                                : "");
            rc = s_fail(r, SH_E_AUDIT_FORMAT, kv.klen == 8 ? key : expected, what);
            break;
        }
        if (!prev0 && key == 1) { /* the chain's start depends on the log's first version */
            if (rec.version == V1 && !a->mac) {
                rc = s_fail(r, SH_E_KEY_MISSING, 1,
                            "the log began before version 2: its version 1 entries are checked "
                            "with the store's audit key (--master, or a keyring that holds it)");
                break;
            }
            memcpy(prev, rec.version == V1 ? a->genesis1 : a->genesis2, SH_MAC_BYTES);
            if (rec.version == V2 && !s_is_genesis(a, &rec)) {
                rc = s_fail(r, SH_E_AUDIT_GENESIS, 1,
                            "entry 1 is not the genesis entry naming this store");
                break;
            }
        }
        version = rec.version;
        if ((rc = s_link(a, &kv, mac)) != SH_OK) {
            snprintf(what, sizeof what,
                     "entry %llu is version 1: checking it needs the store's audit key",
                     (unsigned long long)key);
            s_fail(r, rc, key, rc == SH_E_KEY_MISSING ? what : "audit mac");
            break;
        }
        if (!sh_mac_equal(mac, rec.mac)) {
            snprintf(what, sizeof what, "entry %llu: its hash does not match it (content altered)",
                     (unsigned long long)key);
            rc = s_fail(r, SH_E_AUDIT_ALTERED, key, what);
            break;
        }
        if (rec.seq != key) {
            snprintf(what, sizeof what, "entry %llu holds entry %llu", (unsigned long long)key,
                     (unsigned long long)rec.seq);
            rc = s_fail(r, SH_E_AUDIT_REORDERED, key, what);
            break;
        }
        if (key != expected) {
            snprintf(what, sizeof what, "entry %llu is missing (next present: %llu)",
                     (unsigned long long)expected, (unsigned long long)key);
            rc = s_fail(r, SH_E_AUDIT_MISSING, expected, what);
            break;
        }
        if (!sh_mac_equal(prev, rec.prev_mac)) {
            snprintf(what, sizeof what, "entry %llu: does not chain to the entry before it",
                     (unsigned long long)key);
            rc = s_fail(r, SH_E_AUDIT_ALTERED, key, what);
            break;
        }
        while (next_cp < ncp && cps[next_cp].seq < key)
            next_cp++; /* seen as missing above */
        if (next_cp < ncp && cps[next_cp].seq == key) {
            if (!sh_mac_equal(cps[next_cp].head, rec.mac)) {
                snprintf(what, sizeof what, "checkpoint at entry %llu disagrees with the chain",
                         (unsigned long long)key);
                rc = s_fail(r, SH_E_AUDIT_CHECKPOINT, key, what);
                break;
            }
            r->checkpoints++;
            r->last_checkpoint_seq = key;
            next_cp++;
        }
        memcpy(prev, rec.mac, SH_MAC_BYTES);
        r->entries++;
        r->head_seq = key;
        expected = key + 1;
        if (o && o->progress && (r->entries & 0xffff) == 0) o->progress(o->ctx, r->entries);
        if (fn && fn(ctx, &rec)) {
            rc = SH_E_NOT_FOUND; /* stopped by the visitor: a clean end */
            break;
        }
    }
    sh_cursor_close(&c);
    if (rc == SH_E_NOT_FOUND)
        rc = SH_OK;
    else if (rc && r->result == SH_OK)
        s_fail(r, rc, expected, err.detail);
    memcpy(r->head_mac, prev, SH_MAC_BYTES);
    return rc;
}

static int s_witness_cmp(const void *x, const void *y)
{
    const sh_audit_witness *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

sh_err sh_audit_check_witnesses(sh_audit *a, const sh_audit_witness *ws, size_t n,
                                sh_audit_report *r)
{
    sh_txn *t = NULL;
    sh_error err;
    char what[200];
    sh_err rc = SH_OK;
    if (!n || r->result != SH_OK) return r->result;
    sh_audit_witness *w = malloc(n * sizeof *w);
    if (!w) return s_fail(r, SH_E_NOMEM, 0, "witnesses");
    memcpy(w, ws, n * sizeof *w);
    qsort(w, n, sizeof *w, s_witness_cmp);
    if (sh_txn_begin(a->s, 0, &t, &err)) {
        free(w);
        return s_fail(r, err.code, 0, err.detail);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        sh_audit_record rec;
        char when[32];
        time_t secs = (time_t)(w[i].time_ms / 1000);
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&secs, &tm));
        const char *by = w[i].by && w[i].by[0] ? w[i].by : "a witness";
        if (w[i].seq > r->head_seq) {
            snprintf(what, sizeof what,
                     "%s holds this log's signed head at entry %llu (of %s) but the log ends at "
                     "entry %llu: rolled back or cut short",
                     by, (unsigned long long)w[i].seq, when, (unsigned long long)r->head_seq);
            rc = s_fail(r, SH_E_AUDIT_ROLLED_BACK, r->head_seq + 1, what);
        } else if (sh_audit_get(a, t, w[i].seq, &rec, &err) != SH_OK ||
                   !sh_mac_equal(rec.mac, w[i].head)) {
            snprintf(what, sizeof what,
                     "entry %llu differs from the signed head %s holds (of %s): the log was "
                     "rewritten or replaced from there on or before",
                     (unsigned long long)w[i].seq, by, when);
            rc = s_fail(r, SH_E_AUDIT_ROLLED_BACK, w[i].seq, what);
        }
    }
    sh_txn_abort(&t);
    free(w);
    return r->result = rc;
}

sh_err sh_audit_verify_ex(sh_audit *a, const sh_audit_verify_opts *o, sh_audit_report *r)
{
    memset(r, 0, sizeof *r);
    sh_txn *t = NULL;
    sh_error err;
    s_cp *cps = NULL;
    size_t ncp = 0;
    char what[200];
    if (sh_txn_begin(a->s, 0, &t, &err)) return s_fail(r, err.code, 0, err.detail);
    sh_err rc = s_load_checkpoints(a, t, o->trusted, o->ntrusted, &cps, &ncp, r);
    if (!rc) rc = s_walk(a, t, 1, NULL, cps, ncp, o->visit, o->visit_ctx, o, r);
    if (!rc && r->head_seq == 0) /* every store records its opening: this one was emptied */
        rc = s_fail(r, SH_E_AUDIT_EMPTY, 1,
                    "the log holds no entry, though every store records its opening: emptied");
    else if (!rc && ncp && cps[ncp - 1].seq > r->head_seq) {
        snprintf(what, sizeof what, "log ends at entry %llu; a signed checkpoint covers entry %llu",
                 (unsigned long long)r->head_seq, (unsigned long long)cps[ncp - 1].seq);
        rc = s_fail(r, SH_E_AUDIT_TRUNCATED, r->head_seq + 1, what);
    } else if (!rc && (ncp == 0 || cps[ncp - 1].seq < r->head_seq)) {
        uint64_t signed_to = ncp ? cps[ncp - 1].seq : 0;
        snprintf(what, sizeof what,
                 "entries %llu to %llu follow the last signed head (%s%llu): every commit signs "
                 "its head, so they were added without the store's signing key",
                 (unsigned long long)signed_to + 1, (unsigned long long)r->head_seq,
                 ncp ? "entry " : "none: ", (unsigned long long)signed_to);
        rc = s_fail(r, SH_E_AUDIT_UNSIGNED, signed_to + 1, what);
    }
    sh_txn_abort(&t);
    free(cps);
    r->result = rc;
    if (!rc && o->nwitnesses) rc = sh_audit_check_witnesses(a, o->witnesses, o->nwitnesses, r);
    return rc;
}

sh_err sh_audit_verify(sh_audit *a, const uint8_t (*trusted)[SH_SIGN_PUB_BYTES], size_t ntrusted,
                       sh_audit_report *r)
{
    sh_audit_verify_opts o = {.trusted = trusted, .ntrusted = ntrusted};
    return sh_audit_verify_ex(a, &o, r);
}

sh_err sh_audit_scan(sh_audit *a, uint64_t from, sh_audit_visit fn, void *ctx, sh_audit_report *r)
{
    memset(r, 0, sizeof *r);
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->s, 0, &t, &err)) return s_fail(r, err.code, 0, err.detail);
    uint8_t prev[SH_MAC_BYTES];
    sh_err rc = SH_OK;
    if (from < 1) from = 1;
    if (from > 1) {
        sh_audit_record rec;
        rc = sh_audit_get(a, t, from - 1, &rec, &err);
        if (rc)
            s_fail(r, rc, from - 1, err.detail);
        else
            memcpy(prev, rec.mac, SH_MAC_BYTES);
    }
    if (!rc) rc = s_walk(a, t, from, from > 1 ? prev : NULL, NULL, 0, fn, ctx, NULL, r);
    sh_txn_abort(&t);
    return r->result = rc;
}
