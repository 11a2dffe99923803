/*
 * witness.c — WITNESS: an agent's signed audit head recorded in the broker's own chain, so that
 * an agent log later rolled back, cut short or replaced shows against this record
 * (docs/audit.md, "Witnessing").
 *
 * Owns: the witnessed database (sealed: store id -> u8 n, org[n] · u64 BE seq · head (32) ·
 * u64 BE seq of the broker's `witness` entry that recorded it). Never: records a checkpoint
 * whose signature does not verify, one behind what it holds, or one for a store witnessed for
 * another organisation; trusts a record that does not open, or that the audit entry it names
 * does not bear out (it is taken from the audit log instead); answers with anything it did not
 * compute (WITNESSED's seq is 0 when no checkpoint was read).
 */
#include <string.h>

#include "broker_int.h"
#include "directory.h"
#include "log.h"

#define REC_MAX (1 + SH_ORG_MAX + 8 + SH_MAC_BYTES + 8)

typedef struct s_known {
    int have;
    char org[SH_ORG_MAX + 1];
    uint64_t seq, audit_seq;
    uint8_t head[SH_MAC_BYTES];
} s_known;

typedef struct s_find {
    const uint8_t *id;
    s_known *k;
} s_find;

/* Fills k from witness entry r when it records a checkpoint of store f->id; 1 when it does. */
static int s_from_entry(const uint8_t *id, const sh_audit_record *r, s_known *k)
{
    uint8_t rid[SH_STORE_ID_BYTES], cp[SH_AUDIT_CP_BYTES];
    size_t on = strlen(r->actor_org);
    if (r->action != SH_AUDIT_WITNESS || r->outcome != SH_AUDIT_OK || on > SH_ORG_MAX ||
        sh_audit_witness_parse(r->detail, rid, cp) || memcmp(rid, id, SH_STORE_ID_BYTES) != 0)
        return 0;
    k->have = 1;
    memcpy(k->org, r->actor_org, on + 1);
    k->seq = sh_be64_get(cp + 1);
    memcpy(k->head, cp + 17, SH_MAC_BYTES);
    k->audit_seq = r->seq;
    return 1;
}

static int s_find_visit(void *ctx, const sh_audit_record *r)
{
    s_find *f = ctx;
    return s_from_entry(f->id, r, f->k);
}

/* What the broker last witnessed of store id, into k (k->have 0: never). The sealed record is
 * used when it opens and the audit entry it names records the same checkpoint; otherwise (a
 * record edited, damaged, or kept by an older version in the plain `witness` database) the
 * newest `witness` entry of the broker's own log for that store is, and the repair is audited. */
static sh_err s_known_get(sh_broker *b, sh_txn *t, const uint8_t *id, s_known *k, sh_error *err)
{
    memset(k, 0, sizeof *k);
    sh_buf v = {0};
    sh_err rc = sh_txn_get(t, b->witnessed, id, SH_STORE_ID_BYTES, &v, err);
    int suspect = rc == SH_E_AUTH_FAILED || rc == SH_E_WRONG_KEY || rc == SH_E_SEAL_FORMAT;
    if (rc == SH_OK) {
        size_t on = v.len ? v.data[0] : 0;
        sh_audit_record r;
        s_known from_log = {0};
        if (on > SH_ORG_MAX || v.len != 1 + on + 8 + SH_MAC_BYTES + 8 ||
            sh_audit_get(b->audit, t, sh_be64_get(v.data + 1 + on + 8 + SH_MAC_BYTES), &r, err) !=
                SH_OK ||
            !s_from_entry(id, &r, &from_log) || from_log.seq != sh_be64_get(v.data + 1 + on) ||
            !sh_mac_equal(from_log.head, v.data + 1 + on + 8) || strlen(from_log.org) != on ||
            memcmp(from_log.org, v.data + 1, on) != 0)
            suspect = 1;
        else
            *k = from_log;
    } else if (rc == SH_E_NOT_FOUND) {
        sh_buf old = {0};
        suspect = sh_txn_get(t, b->witness_v1, id, SH_STORE_ID_BYTES, &old, err) == SH_OK;
        sh_buf_free(&old);
    } else if (!suspect) {
        sh_buf_free(&v);
        return rc;
    }
    sh_buf_free(&v);
    if (!suspect) return SH_OK;
    s_find f = {id, k};
    if ((rc = sh_audit_find_back(b->audit, t, s_find_visit, &f, err))) return rc;
    char hex[2 * SH_STORE_ID_BYTES + 1], detail[200];
    sh_hex_encode(id, SH_STORE_ID_BYTES, hex);
    snprintf(detail, sizeof detail,
             "witness record of store %s did not open or disagreed with the audit log: taken "
             "from the log (%s)",
             hex, k->have ? "its newest witness entry" : "no witness entry");
    bk_log("warning", "%s", detail);
    return bk_audit(b, t, SH_AUDIT_ADMIN, SH_AUDIT_FAILED, SH_E_STORE_CORRUPT, NULL, NULL, "-",
                    NULL, NULL, detail);
}

/* Whether signer is the audit key the federation directory gives the broker of peer's
 * authority: a peer witnesses that broker's log only (docs/federation.md). */
static int s_peer_signer(sh_broker *b, const sh_org *peer, const uint8_t signer[SH_SIGN_PUB_BYTES])
{
    const sh_directory *d = sh_registry_directory(b->registry, NULL);
    const sh_authority *a = d ? sh_directory_find(d, peer->la_code) : NULL;
    return a && memcmp(a->sign_key, signer, SH_SIGN_PUB_BYTES) == 0;
}

/* Records an agent's (or a peer's: its broker's) signed audit checkpoint in the broker's own
 * chain and its sealed record. */
void bk_witness(sh_broker *b, sh_txn *t, const sh_org *from, const uint8_t *id, size_t idlen,
                const uint8_t *cp, size_t cplen, bk_reply *r)
{
    sh_audit_cp_info info = {0}; /* (its seq is answered even when nothing was parsed) */
    sh_err rc = SH_OK;
    char detail[SH_AUDIT_WITNESS_DETAIL] = "";
    sh_error err;
    s_known k;
    if (idlen != SH_STORE_ID_BYTES) {
        rc = SH_E_PROTOCOL;
        snprintf(detail, sizeof detail, "store id of %zu bytes; want 16", idlen);
    } else if ((rc = sh_audit_checkpoint_check(id, cp, cplen, &info))) {
        memset(&info, 0, sizeof info);
        snprintf(detail, sizeof detail, "%s",
                 rc == SH_E_AUDIT_FORMAT ? "not a 145-byte version-1 checkpoint"
                                         : "checkpoint signature does not verify");
    } else if (from->sector == SH_SECTOR_PEER && !s_peer_signer(b, from, info.signer)) {
        rc = SH_E_AUDIT_CHECKPOINT;
        snprintf(detail, sizeof detail,
                 "checkpoint signed by a key the federation directory does not give authority "
                 "%s's broker",
                 from->la_code);
    } else if ((rc = s_known_get(b, t, id, &k, &err))) {
        snprintf(detail, sizeof detail, "%s", err.detail);
    } else if (k.have && strcmp(k.org, from->code) != 0) {
        rc = SH_E_SPOOFED_SOURCE;
        snprintf(detail, sizeof detail, "this store is witnessed for another organisation");
    } else if (k.have &&
               (info.seq < k.seq || (info.seq == k.seq && !sh_mac_equal(k.head, info.head)))) {
        rc = SH_E_AUDIT_ROLLED_BACK;
        snprintf(detail, sizeof detail,
                 "checkpoint at entry %llu %s the witnessed checkpoint at entry %llu: the agent's "
                 "log was rolled back or replaced",
                 (unsigned long long)info.seq, info.seq < k.seq ? "is behind" : "differs from",
                 (unsigned long long)k.seq);
    } else if (k.have && info.seq == k.seq) {
        rc = SH_E_EXISTS; /* already witnessed: answer OK, record nothing new */
    }
    if (rc == SH_OK) {
        uint64_t at = 0;
        sh_audit_witness_detail(id, &info, detail);
        sh_audit_entry e = {.action = SH_AUDIT_WITNESS,
                            .actor_org = from->code,
                            .actor_user = "broker",
                            .detail = detail};
        rc = sh_audit_append(b->audit, t, &e, &at, &err);
        uint8_t v[REC_MAX];
        size_t on = strlen(from->code);
        v[0] = (uint8_t)on;
        memcpy(v + 1, from->code, on);
        sh_be64_put(v + 1 + on, info.seq);
        memcpy(v + 1 + on + 8, info.head, SH_MAC_BYTES);
        sh_be64_put(v + 1 + on + 8 + SH_MAC_BYTES, at);
        if (!rc)
            rc = sh_txn_put(t, b->witnessed, id, idlen, v, 1 + on + 8 + SH_MAC_BYTES + 8, 0, &err);
        if (rc) snprintf(detail, sizeof detail, "%s", err.detail);
    } else if (rc != SH_E_EXISTS) {
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, rc, NULL, NULL, from->code, NULL, NULL,
                 detail);
        sh_log(SH_LOG_WARNING, from->code, NULL, "witness refused: E%03d %s", (int)rc, detail);
    }
    bk_reply_addf(r, "%llu", (unsigned long long)info.seq);
    bk_reply_addf(r, "%d", rc == SH_E_EXISTS ? 0 : (int)rc);
    bk_reply_addf(r, "%s",
                  rc == SH_OK         ? "witnessed"
                  : rc == SH_E_EXISTS ? "already witnessed"
                                      : detail);
}
