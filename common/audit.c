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
#include "audit_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "codec.h"
#include "fault.h"

static const char s_genesis_v1[] = "sharehub/v1/audit-genesis";
static const char s_genesis_v2[] = "sharehub/v2/audit-genesis";

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

void sh_audit_cp_message(const uint8_t *store_id, const uint8_t *cp, uint8_t msg[CP_MSG_BYTES])
{
    memcpy(msg, CP_LABEL, 28);
    memcpy(msg + 28, store_id, SH_STORE_ID_BYTES);
    memcpy(msg + 28 + SH_STORE_ID_BYTES, cp + 1, 48);
}

/* Signs a checkpoint over entry seq (hash head) into cp. */
static sh_err s_sign_cp(sh_audit *a, uint64_t seq, const uint8_t head[SH_MAC_BYTES],
                        uint8_t cp[CP_SIZE], sh_error *err)
{
    if (!a->signer) return sh_error_set(err, SH_E_INVAL, "audit opened without a signing key");
    uint8_t msg[CP_MSG_BYTES];
    cp[0] = CP_VERSION;
    sh_be64_put(cp + 1, seq);
    sh_be64_put(cp + 9, (uint64_t)sh_clock_ms());
    memcpy(cp + 17, head, SH_MAC_BYTES);
    sh_signkey_public(a->signer, cp + 49);
    sh_audit_cp_message(sh_store_id(a->s), cp, msg);
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

void sh_audit_genesis_detail(const sh_audit *a, char out[64])
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
        sh_audit_genesis_detail(a, detail);
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
    uint8_t msg[CP_MSG_BYTES];
    sh_audit_cp_message(store_id, cp, msg);
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
