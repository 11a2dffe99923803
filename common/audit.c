/*
 * audit.c — the audit chain: append, signed heads, parse, verify.
 *
 * Owns the two LMDB databases below and nothing else. Never rewrites an entry, never records
 * personal data, never appends outside the caller's write transaction, never lets a
 * transaction that added entries commit without a signed head over its last one.
 *
 * FORMAT (version 2; docs/audit-format.md). All integers are big-endian. Strings are UTF-8,
 * without a terminator.
 *
 * Database "sh_audit": key = sequence number as u64 (8 bytes; entries start at 1 and are
 * consecutive). Value = one entry:
 *
 *   offset  size  field
 *   0       1     version, 0x02 (0x01: an entry written before hash chaining, below)
 *   1       8     seq, u64 — equal to the key
 *   9       8     time_ms, i64 — Unix epoch milliseconds, UTC
 *   17      1     action (1 write ... 13 erase: sh_audit_action)
 *   18      1     outcome (0 ok, 1 denied, 2 failed)
 *   19      2     code, u16 — sharehub error code behind the outcome, 0 if none
 *   21      1     flags: bit 0 = event id present, bit 1 = child ref present; others 0
 *   22      16    event id                    (only if flags bit 0)
 *   ..      32    child ref (blinded)         (only if flags bit 1)
 *   ..      1+n   actor_org:  u8 length n (0-64), then n bytes
 *   ..      1+n   actor_user: the same
 *   ..      1+n   peer_org:   the same
 *   ..      1+n   purpose:    the same
 *   ..      1+n   rule:       the same (ISP id and version, "isp-cpis@3")
 *   ..      2+n   detail:     u16 length n (0-1024), then n bytes
 *   ..      32    prev — the hash of entry seq-1; for seq 1, the genesis value
 *   ..      32    hash = SHA-256(every preceding byte of this entry)
 *
 *   genesis = SHA-256("sharehub/v2/audit-genesis" || store id); entry 1 is the genesis entry:
 *   admin, ok, no event, no child, empty strings but detail "genesis store=<32 hex>".
 *
 * Version 1 entries (a log begun before version 2) have the same layout but their last field
 * is HMAC-SHA256(audit key, the preceding bytes), their genesis HMAC-SHA256(audit key,
 * "sharehub/v1/audit-genesis" || store id), and no genesis entry: checking them needs the audit
 * key. New entries are always version 2, chained to whatever came before.
 *
 * Database "sh_audit_cp": key = the sequence number it covers, u64. Value (145 bytes):
 *
 *   0    1   version, 0x01
 *   1    8   seq, u64 — equal to the key
 *   9    8   time_ms, i64
 *   17   32  head — the hash (mac) of entry seq
 *   49   32  signer's Ed25519 public key
 *   81   64  Ed25519 signature of: "sharehub/v1/audit-checkpoint" || store id || bytes 1..48
 *
 * Every commit that adds entries writes one over its last entry (the signed head) and deletes
 * the head before it when both lie in the same run of `every` entries (seq / every equal): the
 * last head of each run is kept as history. So the newest checkpoint always covers the last
 * entry.
 */
#include "audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "fault.h"

#define ENTRY_FIXED 22
#define ENTRY_MAX                                                                                  \
    (ENTRY_FIXED + 16 + 32 + 5 * (1 + SH_AUDIT_SHORT_MAX) + 2 + SH_AUDIT_DETAIL_MAX +              \
     2 * SH_MAC_BYTES)
#define CP_SIZE    (1 + 8 + 8 + SH_MAC_BYTES + SH_SIGN_PUB_BYTES + SH_SIG_BYTES)
#define FLAG_EVENT 1u
#define FLAG_CHILD 2u

#define V1         1 /* HMAC-chained entries */
#define CP_VERSION 1 /* the checkpoint layout */
#define V2         2 /* hash-chained entries (SH_AUDIT_VERSION) */

static const char s_genesis_v1[] = "sharehub/v1/audit-genesis";
static const char s_genesis_v2[] = "sharehub/v2/audit-genesis";
static const char s_cp_label[] = "sharehub/v1/audit-checkpoint";

struct sh_audit {
    sh_store *s;
    sh_db entries, cps;
    sh_mac *mac; /* the version-1 chain's key, or NULL when none was given */
    const sh_signkey *signer;
    uint32_t every;
    uint8_t genesis1[SH_MAC_BYTES], genesis2[SH_MAC_BYTES];
    /* the signed head of the transaction committing now, and of the last one committed */
    pthread_mutex_t lock;
    int pending, have_head;
    uint8_t pending_cp[CP_SIZE], head_cp[CP_SIZE];
};

const char *sh_audit_action_name(int action)
{
    static const char *const names[] = {"unknown",    "write",   "read",    "send",  "receive",
                                        "deny",       "deliver", "refuse",  "admin", "witness",
                                        "connection", "expire",  "sign_in", "erase"};
    return (action < 1 || action > SH_AUDIT_ACTION_MAX) ? "unknown" : names[action];
}

sh_err sh_audit_open(sh_store *s, const sh_key *audit_key, const sh_signkey *signer,
                     uint32_t checkpoint_every, sh_audit **out, sh_error *err)
{
    *out = NULL;
    sh_audit *a = calloc(1, sizeof *a);
    if (!a) return sh_error_set(err, SH_E_NOMEM, "audit");
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return sh_error_set(err, SH_E_NOMEM, "audit lock");
    }
    a->s = s;
    a->signer = signer;
    a->every = checkpoint_every ? checkpoint_every : SH_AUDIT_CP_DEFAULT;
    uint8_t g[sizeof s_genesis_v2 - 1 + SH_STORE_ID_BYTES];
    memcpy(g, s_genesis_v2, sizeof s_genesis_v2 - 1);
    memcpy(g + sizeof s_genesis_v2 - 1, sh_store_id(s), SH_STORE_ID_BYTES);
    sh_sha256(g, sizeof g, a->genesis2);
    sh_err rc = sh_store_db(s, "sh_audit", SH_DB_PLAIN, &a->entries, err);
    if (!rc) rc = sh_store_db(s, "sh_audit_cp", SH_DB_PLAIN, &a->cps, err);
    if (!rc && audit_key && sh_mac_new(audit_key, &a->mac) != SH_OK)
        rc = sh_error_set(err, SH_E_CRYPTO, "audit mac");
    if (!rc && a->mac &&
        sh_mac_compute(a->mac, s_genesis_v1, sizeof s_genesis_v1 - 1, sh_store_id(s),
                       SH_STORE_ID_BYTES, a->genesis1) != SH_OK)
        rc = sh_error_set(err, SH_E_CRYPTO, "audit genesis");
    if (rc) {
        sh_audit_destroy(&a);
        return rc;
    }
    *out = a;
    return SH_OK;
}

void sh_audit_destroy(sh_audit **ap)
{
    if (!ap || !*ap) return;
    sh_mac_destroy(&(*ap)->mac);
    pthread_mutex_destroy(&(*ap)->lock);
    free(*ap);
    *ap = NULL;
}

/* ---- encoding ------------------------------------------------------------------------ */

static sh_err s_put_str(uint8_t **p, const char *s, size_t max, int wide, const char *field,
                        sh_error *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max) return sh_error_set(err, SH_E_INVAL, "audit %s: over %zu bytes", field, max);
    if (n && sh_text_check(s) != SH_OK)
        return sh_error_set(err, SH_E_INVAL, "audit %s: not clean UTF-8 text", field);
    if (wide) *(*p)++ = (uint8_t)(n >> 8);
    *(*p)++ = (uint8_t)n;
    if (n) memcpy(*p, s, n);
    *p += n;
    return SH_OK;
}

sh_store *sh_audit_store(sh_audit *a)
{
    return a->s;
}

sh_err sh_audit_head(sh_audit *a, sh_txn *t, uint64_t *seq, uint8_t mac[SH_MAC_BYTES],
                     sh_error *err)
{
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_err rc = sh_cursor_open(t, a->entries, &c, err);
    if (rc) return rc;
    rc = sh_cursor_get(c, SH_CURSOR_LAST, NULL, 0, &kv, err);
    if (rc == SH_E_NOT_FOUND) {
        *seq = 0;
        memcpy(mac, a->genesis2, SH_MAC_BYTES);
        rc = SH_OK;
    } else if (rc == SH_OK) {
        if (kv.klen != 8 || kv.vlen < ENTRY_FIXED + 2 * SH_MAC_BYTES)
            rc = sh_error_set(err, SH_E_AUDIT_FORMAT, "last audit entry cannot be read");
        else {
            *seq = sh_be64_get(kv.key);
            memcpy(mac, kv.val + kv.vlen - SH_MAC_BYTES, SH_MAC_BYTES);
        }
    }
    sh_cursor_close(&c);
    return rc;
}

static void s_cp_message(const uint8_t *store_id, const uint8_t *cp,
                         uint8_t msg[sizeof s_cp_label - 1 + SH_STORE_ID_BYTES + 48])
{
    memcpy(msg, s_cp_label, sizeof s_cp_label - 1);
    memcpy(msg + sizeof s_cp_label - 1, store_id, SH_STORE_ID_BYTES);
    memcpy(msg + sizeof s_cp_label - 1 + SH_STORE_ID_BYTES, cp + 1, 48);
}

/* Signs a checkpoint over entry seq (hash head) into cp. */
static sh_err s_sign_cp(sh_audit *a, uint64_t seq, const uint8_t head[SH_MAC_BYTES],
                        uint8_t cp[CP_SIZE], sh_error *err)
{
    if (!a->signer) return sh_error_set(err, SH_E_INVAL, "audit opened without a signing key");
    uint8_t msg[sizeof s_cp_label - 1 + SH_STORE_ID_BYTES + 48];
    cp[0] = CP_VERSION;
    sh_be64_put(cp + 1, seq);
    sh_be64_put(cp + 9, (uint64_t)sh_clock_ms());
    memcpy(cp + 17, head, SH_MAC_BYTES);
    sh_signkey_public(a->signer, cp + 49);
    s_cp_message(sh_store_id(a->s), cp, msg);
    if (sh_sign(a->signer, msg, sizeof msg, cp + 81) != SH_OK)
        return sh_error_set(err, SH_E_CRYPTO, "signing audit checkpoint %llu",
                            (unsigned long long)seq);
    return SH_OK;
}

static sh_err s_write_checkpoint(sh_audit *a, sh_txn *t, uint64_t seq,
                                 const uint8_t head[SH_MAC_BYTES], sh_error *err)
{
    uint8_t cp[CP_SIZE];
    sh_err rc = s_sign_cp(a, seq, head, cp, err);
    if (rc) return rc;
    sh_error e2;
    rc = sh_txn_put(t, a->cps, cp + 1, 8, cp, sizeof cp, SH_PUT_NEW, &e2);
    if (rc == SH_E_EXISTS) return SH_OK; /* this head is already covered */
    if (rc && err) *err = e2;
    return rc;
}

/* The signed head of a commit (sh_txn_on_commit): a checkpoint over the last entry H, unless
 * one covers it already (sh_audit_checkpoint). The head P before it is removed when it lies in
 * the same run of `every` entries as H, so the last head of each run is kept as history. */
static sh_err s_head_hook(void *ctx, sh_txn *t, sh_txn_phase phase, sh_error *err)
{
    sh_audit *a = ctx;
    if (phase != SH_TXN_BEFORE) {
        pthread_mutex_lock(&a->lock);
        if (phase == SH_TXN_DONE && a->pending) {
            memcpy(a->head_cp, a->pending_cp, CP_SIZE);
            a->have_head = 1;
        }
        a->pending = 0;
        pthread_mutex_unlock(&a->lock);
        return SH_OK;
    }
    uint64_t h = 0, p = 0;
    uint8_t head[SH_MAC_BYTES], cp[CP_SIZE];
    sh_err rc = sh_audit_head(a, t, &h, head, err);
    if (rc || h == 0) return rc;
    sh_cursor *c = NULL;
    sh_kv kv;
    int covered = 0;
    if ((rc = sh_cursor_open(t, a->cps, &c, err))) return rc;
    rc = sh_cursor_get(c, SH_CURSOR_LAST, NULL, 0, &kv, err);
    if (!rc && kv.klen == 8 && sh_be64_get(kv.key) == h && kv.vlen == CP_SIZE) {
        covered = 1;
        memcpy(cp, kv.val, CP_SIZE);
        rc = sh_cursor_get(c, SH_CURSOR_PREV, NULL, 0, &kv, err);
    }
    if (!rc && kv.klen == 8) p = sh_be64_get(kv.key);
    sh_cursor_close(&c);
    if (rc && rc != SH_E_NOT_FOUND) return rc;
    if (p && p < h && p / a->every == h / a->every) {
        uint8_t key[8];
        sh_be64_put(key, p);
        if ((rc = sh_txn_del(t, a->cps, key, 8, err))) return rc;
    }
    if (!covered && ((rc = s_sign_cp(a, h, head, cp, err)) ||
                     (rc = sh_txn_put(t, a->cps, cp + 1, 8, cp, sizeof cp, SH_PUT_NEW, err))))
        return rc;
    pthread_mutex_lock(&a->lock);
    memcpy(a->pending_cp, cp, CP_SIZE);
    a->pending = 1;
    pthread_mutex_unlock(&a->lock);
    return SH_OK;
}

sh_err sh_audit_signed_head(sh_audit *a, uint8_t cp[SH_AUDIT_CP_BYTES])
{
    pthread_mutex_lock(&a->lock);
    int have = a->have_head;
    if (have) memcpy(cp, a->head_cp, CP_SIZE);
    pthread_mutex_unlock(&a->lock);
    return have ? SH_OK : SH_E_NOT_FOUND;
}

static sh_err s_append(sh_audit *a, sh_txn *t, const sh_audit_entry *e, uint64_t *seq_out,
                       sh_error *err);

sh_err sh_audit_append(sh_audit *a, sh_txn *t, const sh_audit_entry *e, uint64_t *seq_out,
                       sh_error *err)
{
    /* a write that cannot be audited must not stand: the whole transaction fails with it */
    sh_err rc = sh_fault("audit_append")
                    ? sh_error_set(err, SH_E_IO, "audit append: injected fault")
                    : s_append(a, t, e, seq_out, err);
    if (rc) {
        char why[160];
        snprintf(why, sizeof why, "audit entry refused (E%03d: %.100s)", (int)rc, err->detail);
        sh_txn_fail(t, rc, why);
    } else {
        sh_txn_on_commit(t, s_head_hook, a); /* no commit leaves an unsigned tail */
    }
    return rc;
}

/* Encodes entry e as entry seq chained to prev, stores it, and leaves its hash in hash. */
static sh_err s_put_entry(sh_audit *a, sh_txn *t, uint64_t seq, const uint8_t *prev,
                          const sh_audit_entry *e, uint8_t hash[SH_MAC_BYTES], sh_error *err)
{
    uint8_t buf[ENTRY_MAX];
    uint8_t *p = buf;
    *p++ = V2;
    sh_be64_put(p, seq);
    p += 8;
    sh_be64_put(p, (uint64_t)(e->time_ms ? e->time_ms : sh_clock_ms()));
    p += 8;
    *p++ = e->action;
    *p++ = e->outcome;
    *p++ = (uint8_t)(e->code >> 8);
    *p++ = (uint8_t)e->code;
    *p++ = (uint8_t)((e->event_id ? FLAG_EVENT : 0) | (e->child_ref ? FLAG_CHILD : 0));
    if (e->event_id) {
        memcpy(p, e->event_id, 16);
        p += 16;
    }
    if (e->child_ref) {
        memcpy(p, e->child_ref, 32);
        p += 32;
    }
    sh_err rc;
    if ((rc = s_put_str(&p, e->actor_org, SH_AUDIT_SHORT_MAX, 0, "actor_org", err)) ||
        (rc = s_put_str(&p, e->actor_user, SH_AUDIT_SHORT_MAX, 0, "actor_user", err)) ||
        (rc = s_put_str(&p, e->peer_org, SH_AUDIT_SHORT_MAX, 0, "peer_org", err)) ||
        (rc = s_put_str(&p, e->purpose, SH_AUDIT_SHORT_MAX, 0, "purpose", err)) ||
        (rc = s_put_str(&p, e->rule, SH_AUDIT_SHORT_MAX, 0, "rule", err)) ||
        (rc = s_put_str(&p, e->detail, SH_AUDIT_DETAIL_MAX, 1, "detail", err)))
        return rc;
    memcpy(p, prev, SH_MAC_BYTES);
    p += SH_MAC_BYTES;
    sh_sha256(buf, (size_t)(p - buf), p);
    memcpy(hash, p, SH_MAC_BYTES);
    p += SH_MAC_BYTES;
    return sh_txn_put(t, a->entries, buf + 1, 8, buf, (size_t)(p - buf), SH_PUT_NEW, err);
}

static void s_genesis_detail(const sh_audit *a, char out[64])
{
    char id[2 * SH_STORE_ID_BYTES + 1];
    sh_hex_encode(sh_store_id(a->s), SH_STORE_ID_BYTES, id);
    snprintf(out, 64, "genesis store=%s", id);
}

static sh_err s_append(sh_audit *a, sh_txn *t, const sh_audit_entry *e, uint64_t *seq_out,
                       sh_error *err)
{
    if (seq_out) *seq_out = 0;
    if (!a->signer) return sh_error_set(err, SH_E_INVAL, "audit opened without a signing key");
    if (e->action < SH_AUDIT_WRITE || e->action > SH_AUDIT_ACTION_MAX)
        return sh_error_set(err, SH_E_INVAL, "audit action %u", e->action);
    if (e->outcome > SH_AUDIT_FAILED)
        return sh_error_set(err, SH_E_INVAL, "audit outcome %u", e->outcome);

    uint64_t seq = 0;
    uint8_t prev[SH_MAC_BYTES];
    sh_err rc = sh_audit_head(a, t, &seq, prev, err);
    if (rc) return rc;
    if (seq == 0) { /* a new log begins with the entry that names its store */
        char detail[64];
        s_genesis_detail(a, detail);
        sh_audit_entry g = {.action = SH_AUDIT_ADMIN, .time_ms = e->time_ms, .detail = detail};
        if ((rc = s_put_entry(a, t, ++seq, prev, &g, prev, err))) return rc;
    }
    if ((rc = s_put_entry(a, t, ++seq, prev, e, prev, err))) return rc;
    if (seq_out) *seq_out = seq;
    return SH_OK;
}

sh_err sh_audit_checkpoint(sh_audit *a, sh_txn *t, sh_error *err)
{
    uint64_t seq = 0;
    uint8_t head[SH_MAC_BYTES];
    sh_err rc = sh_audit_head(a, t, &seq, head, err);
    if (rc || seq == 0) return rc;
    return s_write_checkpoint(a, t, seq, head, err);
}

sh_err sh_audit_last_checkpoint(sh_audit *a, sh_txn *t, uint8_t cp[SH_AUDIT_CP_BYTES],
                                uint64_t *seq, sh_error *err)
{
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_err rc = sh_cursor_open(t, a->cps, &c, err);
    if (rc) return rc;
    rc = sh_cursor_get(c, SH_CURSOR_LAST, NULL, 0, &kv, err);
    if (!rc && (kv.klen != 8 || kv.vlen != CP_SIZE))
        rc = sh_error_set(err, SH_E_AUDIT_FORMAT, "last checkpoint cannot be read");
    if (!rc) {
        memcpy(cp, kv.val, CP_SIZE);
        *seq = sh_be64_get(kv.key);
    }
    sh_cursor_close(&c);
    return rc;
}

sh_err sh_audit_checkpoint_check(const uint8_t store_id[SH_STORE_ID_BYTES], const uint8_t *cp,
                                 size_t len, sh_audit_cp_info *out)
{
    memset(out, 0, sizeof *out);
    if (!cp || len != CP_SIZE || cp[0] != CP_VERSION) return SH_E_AUDIT_FORMAT;
    uint8_t msg[sizeof s_cp_label - 1 + SH_STORE_ID_BYTES + 48];
    s_cp_message(store_id, cp, msg);
    if (sh_verify(cp + 49, msg, sizeof msg, cp + 81) != SH_OK) return SH_E_AUDIT_CHECKPOINT;
    out->seq = sh_be64_get(cp + 1);
    out->time_ms = (int64_t)sh_be64_get(cp + 9);
    memcpy(out->head, cp + 17, SH_MAC_BYTES);
    memcpy(out->signer, cp + 49, SH_SIGN_PUB_BYTES);
    memcpy(out->sig, cp + 81, SH_SIG_BYTES);
    return SH_OK;
}

void sh_audit_witness_detail(const uint8_t store_id[SH_STORE_ID_BYTES], const sh_audit_cp_info *cp,
                             char out[SH_AUDIT_WITNESS_DETAIL])
{
    char id[2 * SH_STORE_ID_BYTES + 1], head[2 * SH_MAC_BYTES + 1];
    char signer[2 * SH_SIGN_PUB_BYTES + 1], sig[2 * SH_SIG_BYTES + 1];
    sh_hex_encode(store_id, SH_STORE_ID_BYTES, id);
    sh_hex_encode(cp->head, SH_MAC_BYTES, head);
    sh_hex_encode(cp->signer, SH_SIGN_PUB_BYTES, signer);
    sh_hex_encode(cp->sig, SH_SIG_BYTES, sig);
    snprintf(out, SH_AUDIT_WITNESS_DETAIL, "store=%s seq=%llu time=%lld head=%s signer=%s sig=%s",
             id, (unsigned long long)cp->seq, (long long)cp->time_ms, head, signer, sig);
}

static int s_unhex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = sh_hex_digit(s[2 * i]), lo = hi < 0 ? -1 : sh_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

sh_err sh_audit_witness_parse(const char *d, uint8_t store_id[SH_STORE_ID_BYTES],
                              uint8_t cp[SH_AUDIT_CP_BYTES])
{
    char id[33], head[65], signer[65], sig[129];
    unsigned long long seq;
    long long time_ms;
    int end = 0;
    if (sscanf(d,
               "store=%32[0-9a-f] seq=%llu time=%lld head=%64[0-9a-f] signer=%64[0-9a-f] "
               "sig=%128[0-9a-f]%n",
               id, &seq, &time_ms, head, signer, sig, &end) != 6 ||
        d[end] != '\0' || strlen(id) != 32 || strlen(head) != 64 || strlen(signer) != 64 ||
        strlen(sig) != 128)
        return SH_E_AUDIT_FORMAT;
    cp[0] = CP_VERSION;
    sh_be64_put(cp + 1, seq);
    sh_be64_put(cp + 9, (uint64_t)time_ms);
    if (s_unhex(id, SH_STORE_ID_BYTES, store_id) || s_unhex(head, SH_MAC_BYTES, cp + 17) ||
        s_unhex(signer, SH_SIGN_PUB_BYTES, cp + 49) || s_unhex(sig, SH_SIG_BYTES, cp + 81))
        return SH_E_AUDIT_FORMAT;
    return SH_OK;
}

/* ---- parsing ------------------------------------------------------------------------- */

static int s_get_str(const uint8_t **p, const uint8_t *end, char *out, size_t max, int wide)
{
    if (end - *p < (wide ? 2 : 1)) return -1;
    size_t n = *(*p)++;
    if (wide) n = n << 8 | *(*p)++;
    if (n > max || (size_t)(end - *p) < n || memchr(*p, 0, n)) return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return sh_text_check(out) == SH_OK ? 0 : -1; /* UTF-8, no controls but tab, LF, CR */
}

sh_err sh_audit_parse(const uint8_t *v, size_t len, sh_audit_record *r)
{
    memset(r, 0, sizeof *r);
    if (len < ENTRY_FIXED + 2 * SH_MAC_BYTES || len > ENTRY_MAX || (v[0] != V1 && v[0] != V2))
        return SH_E_AUDIT_FORMAT;
    r->version = v[0];
    const uint8_t *p = v + 1, *end = v + len - 2 * SH_MAC_BYTES;
    r->seq = sh_be64_get(p);
    r->time_ms = (int64_t)sh_be64_get(p + 8);
    r->action = p[16];
    r->outcome = p[17];
    r->code = (uint16_t)(p[18] << 8 | p[19]);
    uint8_t flags = p[20];
    p += 21;
    if (flags & ~(FLAG_EVENT | FLAG_CHILD)) return SH_E_AUDIT_FORMAT;
    if (r->action < SH_AUDIT_WRITE || r->action > SH_AUDIT_ACTION_MAX ||
        r->outcome > SH_AUDIT_FAILED)
        return SH_E_AUDIT_FORMAT; /* not an action or outcome the format names */
    if (flags & FLAG_EVENT) {
        if (end - p < 16) return SH_E_AUDIT_FORMAT;
        memcpy(r->event_id, p, 16);
        r->has_event = 1;
        p += 16;
    }
    if (flags & FLAG_CHILD) {
        if (end - p < 32) return SH_E_AUDIT_FORMAT;
        memcpy(r->child_ref, p, 32);
        r->has_child = 1;
        p += 32;
    }
    if (s_get_str(&p, end, r->actor_org, SH_AUDIT_SHORT_MAX, 0) ||
        s_get_str(&p, end, r->actor_user, SH_AUDIT_SHORT_MAX, 0) ||
        s_get_str(&p, end, r->peer_org, SH_AUDIT_SHORT_MAX, 0) ||
        s_get_str(&p, end, r->purpose, SH_AUDIT_SHORT_MAX, 0) ||
        s_get_str(&p, end, r->rule, SH_AUDIT_SHORT_MAX, 0) ||
        s_get_str(&p, end, r->detail, SH_AUDIT_DETAIL_MAX, 1) || p != end)
        return SH_E_AUDIT_FORMAT;
    memcpy(r->prev_mac, end, SH_MAC_BYTES);
    memcpy(r->mac, end + SH_MAC_BYTES, SH_MAC_BYTES);
    return SH_OK;
}

sh_err sh_audit_get(sh_audit *a, sh_txn *t, uint64_t seq, sh_audit_record *r, sh_error *err)
{
    uint8_t key[8];
    sh_buf b = {0};
    sh_be64_put(key, seq);
    sh_err rc = sh_txn_get(t, a->entries, key, 8, &b, err);
    if (!rc && (rc = sh_audit_parse(b.data, b.len, r)))
        sh_error_set(err, rc, "audit entry %llu", (unsigned long long)seq);
    sh_buf_free(&b);
    return rc;
}

sh_err sh_audit_find_back(sh_audit *a, sh_txn *t, sh_audit_visit fn, void *ctx, sh_error *err)
{
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_audit_record rec;
    sh_err rc = sh_cursor_open(t, a->entries, &c, err);
    if (rc) return rc;
    rc = sh_cursor_get(c, SH_CURSOR_LAST, NULL, 0, &kv, err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_PREV, NULL, 0, &kv, err))
        if (kv.klen == 8 && sh_audit_parse(kv.val, kv.vlen, &rec) == SH_OK && fn(ctx, &rec)) break;
    sh_cursor_close(&c);
    return rc == SH_E_NOT_FOUND ? SH_OK : rc;
}

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
        uint8_t msg[sizeof s_cp_label - 1 + SH_STORE_ID_BYTES + 48];
        s_cp_message(sh_store_id(a->s), kv.val, msg);
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
    s_genesis_detail(a, want);
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
