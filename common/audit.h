/*
 * audit.h — the append-only, tamper-evident audit log, kept in the store's LMDB environment.
 *
 * Owns: the audit chain (databases "sh_audit" and "sh_audit_cp"), its HMAC-SHA256 links, its
 * Ed25519-signed checkpoints, and verification. The byte format is at the top of audit.c and
 * in docs/audit-format.md.
 * Never: rewrites or deletes an entry; records personal data (a child appears only as a
 * blinded 32-byte reference, an event only by its id); appends outside the caller's write
 * transaction — an entry commits atomically with the write it records, or not at all.
 */
#ifndef SHAREHUB_AUDIT_H
#define SHAREHUB_AUDIT_H

#include <stdint.h>

#include "crypto.h"
#include "error.h"
#include "store.h"

#define SH_AUDIT_VERSION    1
#define SH_AUDIT_SHORT_MAX  64   /* actor_org, actor_user, peer_org, purpose, rule: bytes */
#define SH_AUDIT_DETAIL_MAX 1024 /* detail: bytes */
#define SH_AUDIT_CP_DEFAULT 1000 /* entries between automatic checkpoints */

typedef enum sh_audit_action {
    SH_AUDIT_WRITE = 1,   /* stored locally */
    SH_AUDIT_READ = 2,    /* read by a person or system (actor_user, purpose) */
    SH_AUDIT_SEND = 3,    /* sent to the broker / a recipient (peer_org) */
    SH_AUDIT_RECEIVE = 4, /* received from peer_org */
    SH_AUDIT_DENY = 5,    /* sharing with peer_org refused by policy (rule, code) */
    SH_AUDIT_DELIVER = 6, /* delivered to peer_org and acknowledged */
    SH_AUDIT_REFUSE = 7,  /* input refused (code), e.g. a malformed or forged event */
    SH_AUDIT_ADMIN = 8,   /* start, stop, key or policy change */
} sh_audit_action;

typedef enum sh_audit_outcome {
    SH_AUDIT_OK = 0,
    SH_AUDIT_DENIED = 1,
    SH_AUDIT_FAILED = 2,
} sh_audit_outcome;

/* One entry to append. Strings may be NULL (recorded as empty); each must pass
 * sh_text_check and fit its maximum. */
typedef struct sh_audit_entry {
    int64_t time_ms;          /* 0 = now */
    uint8_t action;           /* sh_audit_action */
    uint8_t outcome;          /* sh_audit_outcome */
    uint16_t code;            /* sh_err code behind a denial or failure; 0 if none */
    const uint8_t *event_id;  /* 16 bytes, or NULL */
    const uint8_t *child_ref; /* 32-byte blinded reference (sh_store_blind), or NULL */
    const char *actor_org, *actor_user, *peer_org, *purpose, *rule, *detail;
} sh_audit_entry;

/* One entry as read back from the log. */
typedef struct sh_audit_record {
    uint64_t seq;
    int64_t time_ms;
    uint8_t action, outcome;
    uint16_t code;
    int has_event, has_child;
    uint8_t event_id[16];
    uint8_t child_ref[32];
    char actor_org[SH_AUDIT_SHORT_MAX + 1], actor_user[SH_AUDIT_SHORT_MAX + 1];
    char peer_org[SH_AUDIT_SHORT_MAX + 1], purpose[SH_AUDIT_SHORT_MAX + 1];
    char rule[SH_AUDIT_SHORT_MAX + 1];
    char detail[SH_AUDIT_DETAIL_MAX + 1];
    uint8_t prev_mac[SH_MAC_BYTES], mac[SH_MAC_BYTES];
} sh_audit_record;

typedef struct sh_audit sh_audit;

/* Opens the audit log of store s. audit_key keys the HMAC chain (derive it with
 * sh_store_derive_key(s, "audit mac", ...)); signer signs checkpoints and may be NULL for a
 * log that is only read and verified (appends then fail with SH_E_INVAL). checkpoint_every:
 * entries between automatic checkpoints (0 = SH_AUDIT_CP_DEFAULT). Keys are borrowed and must
 * outlive the sh_audit. Must not be called while this thread holds a write transaction. */
sh_err sh_audit_open(sh_store *s, const sh_key *audit_key, const sh_signkey *signer,
                     uint32_t checkpoint_every, sh_audit **out, sh_error *err) SH_WUR;

void sh_audit_destroy(sh_audit **a);

/* Appends e inside write transaction t, chained to the entry before it; when the new sequence
 * number is a multiple of checkpoint_every a signed checkpoint is written too. The entry
 * exists once t commits. Errors: SH_E_INVAL (bad field: the detail names it), SH_E_TXN,
 * SH_E_AUDIT_FORMAT (the current head cannot be read), and the store's write errors. */
sh_err sh_audit_append(sh_audit *a, sh_txn *t, const sh_audit_entry *e, uint64_t *seq_out,
                       sh_error *err) SH_WUR;

/* Writes a signed checkpoint over the current head inside t (no-op on an empty log or when
 * the head already has one). Call it at clean shutdown so the whole log is covered. */
sh_err sh_audit_checkpoint(sh_audit *a, sh_txn *t, sh_error *err) SH_WUR;

/* Reads entry seq (as stored; it is not verified here). Errors: SH_E_NOT_FOUND,
 * SH_E_AUDIT_FORMAT. */
sh_err sh_audit_get(sh_audit *a, sh_txn *t, uint64_t seq, sh_audit_record *r, sh_error *err);

/* Parses one stored entry value. SH_OK or SH_E_AUDIT_FORMAT. */
sh_err sh_audit_parse(const uint8_t *v, size_t len, sh_audit_record *r);

typedef struct sh_audit_report {
    sh_err result;     /* SH_OK, or the first problem found */
    uint64_t entries;  /* entries verified before the problem (all of them on SH_OK) */
    uint64_t bad_seq;  /* the sequence number the problem is at; 0 on SH_OK */
    uint64_t head_seq; /* last entry verified */
    uint8_t head_mac[SH_MAC_BYTES];
    uint64_t checkpoints; /* signed checkpoints verified */
    uint64_t last_checkpoint_seq;
    char detail[200];
} sh_audit_report;

/* Walks the whole chain in its own read transaction and checks every link and every
 * checkpoint. trusted (n keys) pins the checkpoint signers; with n == 0 any signature that
 * verifies under the key recorded in the checkpoint is accepted. Returns rep->result:
 *   SH_OK                  every entry and checkpoint verified
 *   SH_E_AUDIT_ALTERED     an entry's MAC fails, or it does not chain to the one before
 *   SH_E_AUDIT_MISSING     a sequence number is absent (bad_seq is the first one missing)
 *   SH_E_AUDIT_REORDERED   an intact entry is stored under another sequence number
 *   SH_E_AUDIT_TRUNCATED   the chain ends before the last checkpoint's sequence number
 *   SH_E_AUDIT_CHECKPOINT  a checkpoint's signature, signer or head MAC is wrong
 *   SH_E_AUDIT_FORMAT      an entry or checkpoint cannot be parsed
 * or a store error if the log could not be read. Truncation after the last checkpoint cannot
 * be seen from the log alone: the broker witnesses checkpoints for that. */
sh_err sh_audit_verify(sh_audit *a, const uint8_t (*trusted)[SH_SIGN_PUB_BYTES], size_t n,
                       sh_audit_report *rep);

/* Short lower-case name of an action ("write", "deny", ...), or "unknown". */
const char *sh_audit_action_name(int action);

#endif
