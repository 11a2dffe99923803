/*
 * audit_int.h — what audit.c (appending, signing) and audit_verify.c (checking) share: the
 * layout constants of docs/audit-format.md and the log's state. Nothing else includes it.
 */
#ifndef SHAREHUB_AUDIT_INT_H
#define SHAREHUB_AUDIT_INT_H

#include <pthread.h>

#include "audit.h"

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

#define CP_LABEL     "sharehub/v1/audit-checkpoint" /* 28 bytes */
#define CP_MSG_BYTES (28 + SH_STORE_ID_BYTES + 48)

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

/* The 92 bytes a checkpoint's signature covers: CP_LABEL, the store id, value bytes 1..48. */
void sh_audit_cp_message(const uint8_t *store_id, const uint8_t *cp, uint8_t msg[CP_MSG_BYTES]);
/* The detail of a version 2 log's genesis entry: "genesis store=<32 hex>". */
void sh_audit_genesis_detail(const sh_audit *a, char out[64]);

#endif
