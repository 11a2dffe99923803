/*
 * witness.c — WITNESS: an agent's signed audit checkpoint recorded in the broker's own chain,
 * so that an agent log later rolled back, cut short or replaced shows against this record
 * (docs/audit.md, "Witnessing").
 *
 * Owns: the witness database (store id -> u8 n, org[n] | u64 BE seq | head mac (32) of the
 * newest checkpoint witnessed). Never: records a checkpoint whose signature does not verify,
 * one behind what it holds, or one for a store witnessed for another organisation; answers
 * with anything it did not compute (WITNESSED's seq is 0 when no checkpoint was read).
 */
#include <string.h>

#include "broker_int.h"
#include "log.h"

/* Records an agent's signed audit checkpoint in the broker's own chain, so that an agent log
 * later rolled back or cut short shows against this record (docs/audit.md). witness db:
 * store id -> u8 n, org[n] · u64 BE seq · head mac (32) of the newest checkpoint witnessed. */
void bk_witness(sh_broker *b, sh_txn *t, const sh_org *from, const uint8_t *id, size_t idlen,
                const uint8_t *cp, size_t cplen, bk_reply *r)
{
    sh_audit_cp_info info = {0}; /* (its seq is answered even when nothing was parsed) */
    sh_err rc = SH_OK;
    char detail[SH_AUDIT_WITNESS_DETAIL] = "";
    sh_buf buf = {0};
    sh_error err;
    if (idlen != SH_STORE_ID_BYTES) {
        rc = SH_E_PROTOCOL;
        snprintf(detail, sizeof detail, "store id of %zu bytes; want 16", idlen);
    } else if ((rc = sh_audit_checkpoint_check(id, cp, cplen, &info))) {
        memset(&info, 0, sizeof info);
        snprintf(detail, sizeof detail, "%s",
                 rc == SH_E_AUDIT_FORMAT ? "not a 145-byte version-1 checkpoint"
                                         : "checkpoint signature does not verify");
    } else if ((rc = sh_txn_get(t, b->witness, id, idlen, &buf, &err)) == SH_OK) {
        size_t on = buf.len ? buf.data[0] : 0;
        if (buf.len != 1 + on + 8 + SH_MAC_BYTES) {
            rc = SH_E_STORE_CORRUPT;
            snprintf(detail, sizeof detail, "witness record damaged");
        } else {
            uint64_t last = sh_be64_get(buf.data + 1 + on);
            const uint8_t *head = buf.data + 1 + on + 8;
            if (on != strlen(from->code) || memcmp(buf.data + 1, from->code, on) != 0) {
                rc = SH_E_SPOOFED_SOURCE;
                snprintf(detail, sizeof detail, "this store is witnessed for another organisation");
            } else if (info.seq < last || (info.seq == last && !sh_mac_equal(head, info.head))) {
                rc = SH_E_AUDIT_ROLLED_BACK;
                snprintf(detail, sizeof detail,
                         "checkpoint at entry %llu %s the witnessed checkpoint at entry %llu: the "
                         "agent's log was rolled back or replaced",
                         (unsigned long long)info.seq,
                         info.seq < last ? "is behind" : "differs from", (unsigned long long)last);
            } else if (info.seq == last) {
                rc = SH_E_EXISTS; /* already witnessed: answer OK, record nothing new */
            }
        }
    } else if (rc == SH_E_NOT_FOUND) {
        rc = SH_OK;
    } else {
        snprintf(detail, sizeof detail, "%s", err.detail);
    }
    if (rc == SH_OK) {
        uint8_t v[1 + SH_ORG_MAX + 8 + SH_MAC_BYTES];
        size_t on = strlen(from->code);
        v[0] = (uint8_t)on;
        memcpy(v + 1, from->code, on);
        sh_be64_put(v + 1 + on, info.seq);
        memcpy(v + 1 + on + 8, info.head, SH_MAC_BYTES);
        rc = sh_txn_put(t, b->witness, id, idlen, v, 1 + on + 8 + SH_MAC_BYTES, 0, &err);
        if (rc) snprintf(detail, sizeof detail, "%s", err.detail);
    }
    if (rc == SH_OK) {
        sh_audit_witness_detail(id, &info, detail);
        bk_audit(b, t, SH_AUDIT_WITNESS, SH_AUDIT_OK, 0, NULL, NULL, from->code, NULL, NULL,
                 detail);
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
    sh_buf_free(&buf);
}
