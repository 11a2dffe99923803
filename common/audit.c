/*
 * audit.c — the audit chain: append, checkpoint, parse, verify.
 *
 * Owns the two LMDB databases below and nothing else. Never rewrites an entry, never records
 * personal data, never appends outside the caller's write transaction.
 *
 * FORMAT (version 1). All integers are big-endian. Strings are UTF-8, without a terminator.
 *
 * Database "sh_audit": key = sequence number as u64 (8 bytes; entries start at 1 and are
 * consecutive). Value = one entry:
 *
 *   offset  size  field
 *   0       1     version, 0x01
 *   1       8     seq, u64 — equal to the key
 *   9       8     time_ms, i64 — Unix epoch milliseconds, UTC
 *   17      1     action (1 write, 2 read, 3 send, 4 receive, 5 deny, 6 deliver, 7 refuse,
 *                 8 admin, 9 witness, 10 connection, 11 expire)
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
 *   ..      32    prev_mac — the mac of entry seq-1; for seq 1, the genesis value
 *   ..      32    mac = HMAC-SHA256(audit key, every preceding byte of this entry)
 *
 *   genesis = HMAC-SHA256(audit key, "sharehub/v1/audit-genesis" || store id)
 *   where store id is the 16 bytes of sh_meta "store_id" (docs/store-format.md).
 *
 * Database "sh_audit_cp": key = the sequence number it covers, u64. Value (145 bytes):
 *
 *   0    1   version, 0x01
 *   1    8   seq, u64 — equal to the key
 *   9    8   time_ms, i64
 *   17   32  head_mac — the mac of entry seq
 *   49   32  signer's Ed25519 public key
 *   81   64  Ed25519 signature of: "sharehub/v1/audit-checkpoint" || store id || bytes 1..48
 *
 * Verification walks keys in order with expected = 1 and prev = genesis. For each entry: it
 * must parse (else FORMAT); its mac must verify (else ALTERED); its seq must equal its key
 * (else REORDERED); its key must equal expected (else MISSING expected); its prev_mac must
 * equal prev (else ALTERED: broken link). Each checkpoint's signature must verify under a
 * trusted key and its head_mac must equal the mac of entry seq (else CHECKPOINT); the chain
 * must reach the last checkpoint (else TRUNCATED).
 */
#include "audit.h"

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

static const char s_genesis_label[] = "sharehub/v1/audit-genesis";
static const char s_cp_label[] = "sharehub/v1/audit-checkpoint";

struct sh_audit {
    sh_store *s;
    sh_db entries, cps;
    sh_mac *mac;
    const sh_signkey *signer;
    uint32_t every;
    uint8_t genesis[SH_MAC_BYTES];
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
    a->s = s;
    a->signer = signer;
    a->every = checkpoint_every ? checkpoint_every : SH_AUDIT_CP_DEFAULT;
    sh_err rc = sh_store_db(s, "sh_audit", SH_DB_PLAIN, &a->entries, err);
    if (!rc) rc = sh_store_db(s, "sh_audit_cp", SH_DB_PLAIN, &a->cps, err);
    if (!rc && sh_mac_new(audit_key, &a->mac) != SH_OK)
        rc = sh_error_set(err, SH_E_CRYPTO, "audit mac");
    if (!rc && sh_mac_compute(a->mac, s_genesis_label, sizeof s_genesis_label - 1, sh_store_id(s),
                              SH_STORE_ID_BYTES, a->genesis) != SH_OK)
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
        memcpy(mac, a->genesis, SH_MAC_BYTES);
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

static sh_err s_write_checkpoint(sh_audit *a, sh_txn *t, uint64_t seq,
                                 const uint8_t head[SH_MAC_BYTES], sh_error *err)
{
    if (!a->signer) return sh_error_set(err, SH_E_INVAL, "audit opened without a signing key");
    uint8_t cp[CP_SIZE], msg[sizeof s_cp_label - 1 + SH_STORE_ID_BYTES + 48];
    cp[0] = SH_AUDIT_VERSION;
    sh_be64_put(cp + 1, seq);
    sh_be64_put(cp + 9, (uint64_t)sh_clock_ms());
    memcpy(cp + 17, head, SH_MAC_BYTES);
    sh_signkey_public(a->signer, cp + 49);
    s_cp_message(sh_store_id(a->s), cp, msg);
    if (sh_sign(a->signer, msg, sizeof msg, cp + 81) != SH_OK)
        return sh_error_set(err, SH_E_CRYPTO, "signing audit checkpoint %llu",
                            (unsigned long long)seq);
    sh_error e2;
    sh_err rc = sh_txn_put(t, a->cps, cp + 1, 8, cp, sizeof cp, SH_PUT_NEW, &e2);
    if (rc == SH_E_EXISTS) return SH_OK; /* this head is already covered */
    if (rc && err) *err = e2;
    return rc;
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
    }
    return rc;
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
    uint8_t prev[SH_MAC_BYTES], buf[ENTRY_MAX];
    sh_err rc = sh_audit_head(a, t, &seq, prev, err);
    if (rc) return rc;
    seq++;

    uint8_t *p = buf;
    *p++ = SH_AUDIT_VERSION;
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
    if ((rc = s_put_str(&p, e->actor_org, SH_AUDIT_SHORT_MAX, 0, "actor_org", err)) ||
        (rc = s_put_str(&p, e->actor_user, SH_AUDIT_SHORT_MAX, 0, "actor_user", err)) ||
        (rc = s_put_str(&p, e->peer_org, SH_AUDIT_SHORT_MAX, 0, "peer_org", err)) ||
        (rc = s_put_str(&p, e->purpose, SH_AUDIT_SHORT_MAX, 0, "purpose", err)) ||
        (rc = s_put_str(&p, e->rule, SH_AUDIT_SHORT_MAX, 0, "rule", err)) ||
        (rc = s_put_str(&p, e->detail, SH_AUDIT_DETAIL_MAX, 1, "detail", err)))
        return rc;
    memcpy(p, prev, SH_MAC_BYTES);
    p += SH_MAC_BYTES;
    if (sh_mac_compute(a->mac, buf, (size_t)(p - buf), NULL, 0, p) != SH_OK)
        return sh_error_set(err, SH_E_CRYPTO, "audit mac");
    p += SH_MAC_BYTES;

    rc = sh_txn_put(t, a->entries, buf + 1, 8, buf, (size_t)(p - buf), SH_PUT_NEW, err);
    if (rc) return rc;
    if (seq % a->every == 0 && (rc = s_write_checkpoint(a, t, seq, p - SH_MAC_BYTES, err)))
        return rc;
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
    if (!cp || len != CP_SIZE || cp[0] != SH_AUDIT_VERSION) return SH_E_AUDIT_FORMAT;
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
    cp[0] = SH_AUDIT_VERSION;
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
    if (len < ENTRY_FIXED + 2 * SH_MAC_BYTES || len > ENTRY_MAX || v[0] != SH_AUDIT_VERSION)
        return SH_E_AUDIT_FORMAT;
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
        if (kv.klen != 8 || kv.vlen != CP_SIZE || kv.val[0] != SH_AUDIT_VERSION ||
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

/* Walks entries from seq `from` (prev = the mac they must chain to), checking each; checks
 * checkpoints cps (may be NULL) on the way and hands each entry to fn (may be NULL). */
static sh_err s_walk(sh_audit *a, sh_txn *t, uint64_t from, const uint8_t prev0[SH_MAC_BYTES],
                     const s_cp *cps, size_t ncp, sh_audit_visit fn, void *ctx,
                     const sh_audit_verify_opts *o, sh_audit_report *r)
{
    sh_cursor *c = NULL;
    sh_error err;
    char what[160];
    size_t next_cp = 0;
    sh_err rc = sh_cursor_open(t, a->entries, &c, &err);
    if (rc) return s_fail(r, rc, 0, err.detail);
    uint64_t expected = from;
    uint8_t prev[SH_MAC_BYTES], mac[SH_MAC_BYTES], seek[8];
    memcpy(prev, prev0, SH_MAC_BYTES);
    sh_be64_put(seek, from);
    sh_audit_record rec;
    sh_kv kv;
    rc = sh_cursor_get(c, SH_CURSOR_SEEK, seek, 8, &kv, &err);
    for (; rc == SH_OK; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        uint64_t key = kv.klen == 8 ? sh_be64_get(kv.key) : 0;
        if (kv.klen != 8 || sh_audit_parse(kv.val, kv.vlen, &rec) != SH_OK) {
            snprintf(what, sizeof what, "entry %llu cannot be parsed", (unsigned long long)key);
            rc = s_fail(r, SH_E_AUDIT_FORMAT, kv.klen == 8 ? key : expected, what);
            break;
        }
        if (sh_mac_compute(a->mac, kv.val, kv.vlen - SH_MAC_BYTES, NULL, 0, mac) != SH_OK) {
            rc = s_fail(r, SH_E_CRYPTO, key, "audit mac");
            break;
        }
        if (!sh_mac_equal(mac, rec.mac)) {
            snprintf(what, sizeof what, "entry %llu: MAC does not verify (content altered)",
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
    if (!rc) rc = s_walk(a, t, 1, a->genesis, cps, ncp, NULL, NULL, o, r);
    if (!rc && r->head_seq == 0) /* every store records its opening: this one was emptied */
        rc = s_fail(r, SH_E_AUDIT_EMPTY, 1,
                    "the log holds no entry, though every store records its opening: emptied");
    else if (!rc && ncp && cps[ncp - 1].seq > r->head_seq) {
        snprintf(what, sizeof what, "log ends at entry %llu; a signed checkpoint covers entry %llu",
                 (unsigned long long)r->head_seq, (unsigned long long)cps[ncp - 1].seq);
        rc = s_fail(r, SH_E_AUDIT_TRUNCATED, r->head_seq + 1, what);
    }
    /* witnessed checkpoints: each must still be in the (now verified) chain */
    sh_audit_witness *w = NULL;
    if (!rc && o->nwitnesses) {
        w = malloc(o->nwitnesses * sizeof *w);
        if (!w) rc = s_fail(r, SH_E_NOMEM, 0, "witnesses");
    }
    if (w) {
        memcpy(w, o->witnesses, o->nwitnesses * sizeof *w);
        qsort(w, o->nwitnesses, sizeof *w, s_witness_cmp);
    }
    for (size_t i = 0; !rc && w && i < o->nwitnesses; i++) {
        sh_audit_record rec;
        char when[32];
        time_t secs = (time_t)(w[i].time_ms / 1000);
        struct tm tm;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&secs, &tm));
        if (w[i].seq > r->head_seq) {
            snprintf(what, sizeof what,
                     "the broker witnessed entry %llu (checkpoint of %s) but the log ends at "
                     "entry %llu: rolled back or cut short",
                     (unsigned long long)w[i].seq, when, (unsigned long long)r->head_seq);
            rc = s_fail(r, SH_E_AUDIT_ROLLED_BACK, r->head_seq + 1, what);
        } else if (sh_audit_get(a, t, w[i].seq, &rec, &err) != SH_OK ||
                   !sh_mac_equal(rec.mac, w[i].head)) {
            snprintf(what, sizeof what,
                     "entry %llu differs from the one the broker witnessed (checkpoint of %s): "
                     "the log was replaced from there on",
                     (unsigned long long)w[i].seq, when);
            rc = s_fail(r, SH_E_AUDIT_ROLLED_BACK, w[i].seq, what);
        }
    }
    free(w);
    sh_txn_abort(&t);
    free(cps);
    return r->result = rc;
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
    memcpy(prev, a->genesis, SH_MAC_BYTES);
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
    if (!rc) rc = s_walk(a, t, from, prev, NULL, 0, fn, ctx, NULL, r);
    sh_txn_abort(&t);
    return r->result = rc;
}
