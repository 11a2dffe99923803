/*
 * audit.h — the append-only, tamper-evident audit log, kept in the store's LMDB environment.
 *
 * Owns: the audit chain (databases "sh_audit" and "sh_audit_cp"), its SHA-256 links (HMAC for
 * the version 1 entries of older logs), its Ed25519-signed heads and checkpoints, and
 * verification, which needs only public keys. The byte format is at the top of audit.c and in
 * docs/audit-format.md.
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

#define SH_AUDIT_VERSION    2    /* entries written now; version 1 entries are still read */
#define SH_AUDIT_SHORT_MAX  64   /* actor_org, actor_user, peer_org, purpose, rule: bytes */
#define SH_AUDIT_DETAIL_MAX 1024 /* detail: bytes */
#define SH_AUDIT_CP_DEFAULT 1000 /* a signed head is kept as history once per this many entries */
#define SH_AUDIT_CP_BYTES   145  /* one signed checkpoint (docs/audit-format.md) */

typedef enum sh_audit_action {
    SH_AUDIT_WRITE = 1,       /* stored locally */
    SH_AUDIT_READ = 2,        /* read by a person or system (actor_user, purpose) */
    SH_AUDIT_SEND = 3,        /* sent to the broker / a recipient (peer_org) */
    SH_AUDIT_RECEIVE = 4,     /* received from peer_org */
    SH_AUDIT_DENY = 5,        /* sharing with peer_org refused by policy (rule, code) */
    SH_AUDIT_DELIVER = 6,     /* delivered to peer_org and acknowledged */
    SH_AUDIT_REFUSE = 7,      /* input refused (code), e.g. a malformed or forged event */
    SH_AUDIT_ADMIN = 8,       /* start, stop, key or policy change */
    SH_AUDIT_WITNESS = 9,     /* (broker) an agent's signed checkpoint recorded (detail) */
    SH_AUDIT_CONNECTION = 10, /* (broker) authenticated connections closed by the transport */
    SH_AUDIT_EXPIRE = 11,     /* (broker) a delivery undelivered past its expiry, removed */
    SH_AUDIT_SIGN_IN = 12,    /* (agent) a person signed in to the workspace, or failed to */
    SH_AUDIT_ERASE = 13,      /* a received copy erased, or due for review, at the end of its
                                 retention (agent); the broker's copies erased after
                                 --keep-events (rule, detail; never the data) */
    SH_AUDIT_ACTION_MAX = SH_AUDIT_ERASE,
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
    uint8_t version; /* 2, or 1 for an HMAC-chained entry of a log begun before version 2 */
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

/* Opens the audit log of store s. audit_key is needed only to check the version 1 (HMAC)
 * entries of a log begun before version 2 (sh_store_derive_key(s, "audit mac", ...)) and may
 * be NULL; signer signs heads and checkpoints and may be NULL for a log that is only read and
 * verified (appends then fail with SH_E_INVAL). checkpoint_every: entries between the
 * checkpoints kept as history (0 = SH_AUDIT_CP_DEFAULT). Keys are borrowed and must outlive
 * the sh_audit. Must not be called while this thread holds a write transaction. */
sh_err sh_audit_open(sh_store *s, const sh_key *audit_key, const sh_signkey *signer,
                     uint32_t checkpoint_every, sh_audit **out, sh_error *err) SH_WUR;

void sh_audit_destroy(sh_audit **a);

/* Appends e inside write transaction t, chained to the entry before it (an empty log first
 * gets its genesis entry); t's commit signs the head it leaves (sh_txn_on_commit: t must not
 * carry another hook) and keeps the head before it only if that one ends a run of
 * checkpoint_every entries. The entry exists once t commits. A write that cannot be audited must
 * not stand: on any error t is failed (sh_txn_fail), so its commit writes nothing and returns this
 * error. Errors: SH_E_INVAL (bad field: the detail names it), SH_E_TXN, SH_E_AUDIT_FORMAT (the
 * current head cannot be read), and the store's write errors. */
sh_err sh_audit_append(sh_audit *a, sh_txn *t, const sh_audit_entry *e, uint64_t *seq_out,
                       sh_error *err) SH_WUR;

/* Writes a signed checkpoint over the current head inside t now (no-op on an empty log or when
 * the head already has one); the commit would otherwise sign it. */
sh_err sh_audit_checkpoint(sh_audit *a, sh_txn *t, sh_error *err) SH_WUR;

/* The last entry's sequence number (0 on an empty log) and mac (the genesis value then). */
sh_err sh_audit_head(sh_audit *a, sh_txn *t, uint64_t *seq, uint8_t mac[SH_MAC_BYTES],
                     sh_error *err) SH_WUR;

/* The newest signed checkpoint (SH_AUDIT_CP_BYTES) and the entry it covers: the signed head.
 * SH_E_NOT_FOUND when there is none. */
sh_err sh_audit_last_checkpoint(sh_audit *a, sh_txn *t, uint8_t cp[SH_AUDIT_CP_BYTES],
                                uint64_t *seq, sh_error *err) SH_WUR;

/* The signed head of the last commit this process made through a, without a transaction
 * (what the broker sends with CONFIRM and DELIVER). SH_E_NOT_FOUND before the first. */
sh_err sh_audit_signed_head(sh_audit *a, uint8_t cp[SH_AUDIT_CP_BYTES]);

/* A checkpoint as sent to a witness: checks its layout and its signature under the public
 * key it carries, for a store with id store_id. On SH_OK fills seq, time, head and signer.
 * Errors: SH_E_AUDIT_FORMAT, SH_E_AUDIT_CHECKPOINT (signature does not verify). */
typedef struct sh_audit_cp_info {
    uint64_t seq;
    int64_t time_ms;
    uint8_t head[SH_MAC_BYTES];
    uint8_t signer[SH_SIGN_PUB_BYTES];
    uint8_t sig[SH_SIG_BYTES];
} sh_audit_cp_info;

sh_err sh_audit_checkpoint_check(const uint8_t store_id[SH_STORE_ID_BYTES], const uint8_t *cp,
                                 size_t len, sh_audit_cp_info *out);

/* The detail of the broker's `witness` entry for checkpoint cp of store store_id:
 * "store=<32 hex> seq=<n> time=<ms> head=<64 hex> signer=<64 hex> sig=<128 hex>" (at most
 * SH_AUDIT_WITNESS_DETAIL bytes with its NUL). */
#define SH_AUDIT_WITNESS_DETAIL 400
void sh_audit_witness_detail(const uint8_t store_id[SH_STORE_ID_BYTES], const sh_audit_cp_info *cp,
                             char out[SH_AUDIT_WITNESS_DETAIL]);

/* Parses such a detail back into the store id and the 145-byte checkpoint it records (check it
 * with sh_audit_checkpoint_check). SH_OK or SH_E_AUDIT_FORMAT. */
sh_err sh_audit_witness_parse(const char *detail, uint8_t store_id[SH_STORE_ID_BYTES],
                              uint8_t cp[SH_AUDIT_CP_BYTES]);

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
 *   SH_E_AUDIT_ALTERED     an entry's hash (MAC) fails, or it does not chain to the one before
 *   SH_E_AUDIT_MISSING     a sequence number is absent (bad_seq is the first one missing)
 *   SH_E_AUDIT_REORDERED   an intact entry is stored under another sequence number
 *   SH_E_AUDIT_TRUNCATED   the chain ends before the last checkpoint's sequence number
 *   SH_E_AUDIT_CHECKPOINT  a checkpoint's signature, signer or head MAC is wrong
 *   SH_E_AUDIT_FORMAT      an entry or checkpoint cannot be parsed
 *   SH_E_AUDIT_EMPTY       the log holds no entry
 *   SH_E_AUDIT_GENESIS     entry 1 of a version 2 log is not the genesis entry of this store
 *   SH_E_AUDIT_UNSIGNED    entries follow the newest signed checkpoint (the signed head)
 *   SH_E_KEY_MISSING       version 1 entries, and the log was opened without the audit key
 * or a store error if the log could not be read. A log rolled back whole to an older signed
 * head cannot be seen from the log alone: witnesses hold its heads for that. */
sh_err sh_audit_verify(sh_audit *a, const uint8_t (*trusted)[SH_SIGN_PUB_BYTES], size_t n,
                       sh_audit_report *rep);

/* Called for each entry in order (verification and scans); non-zero stops a scan. */
typedef int (*sh_audit_visit)(void *ctx, const sh_audit_record *r);

/* A signed head of this log held by a witness (the broker for an agent, an agent for the
 * broker): the log must still hold entry seq with this hash. */
typedef struct sh_audit_witness {
    uint64_t seq;
    int64_t time_ms;
    uint8_t head[SH_MAC_BYTES];
    const char *by; /* who holds it, for the report ("broker", "hub-881"); may be NULL */
} sh_audit_witness;

typedef struct sh_audit_verify_opts {
    const uint8_t (*trusted)[SH_SIGN_PUB_BYTES]; /* checkpoint signers; see sh_audit_verify */
    size_t ntrusted;
    const sh_audit_witness *witnesses; /* in any order; may be NULL */
    size_t nwitnesses;
    /* called every 65,536 entries with the count verified so far (for a progress bar) */
    void (*progress)(void *ctx, uint64_t done);
    void *ctx;
    sh_audit_visit visit; /* each entry once verified (its return value is ignored); or NULL */
    void *visit_ctx;
} sh_audit_verify_opts;

/* sh_audit_verify with witnesses: after the walk, sh_audit_check_witnesses. */
sh_err sh_audit_verify_ex(sh_audit *a, const sh_audit_verify_opts *o, sh_audit_report *rep);

/* After a verification that left rep SH_OK: every witnessed (seq, head) must be in the chain,
 * else SH_E_AUDIT_ROLLED_BACK at that seq (the log was rolled back, cut short, rewritten or
 * replaced since the witness took it). Returns rep->result. */
sh_err sh_audit_check_witnesses(sh_audit *a, const sh_audit_witness *w, size_t n,
                                sh_audit_report *rep);

/* Calls fn for every entry from seq from on, in order, in one read transaction, checking each
 * entry's hash and its link to the entry before it on the way (from the first one visited).
 * Stops early when fn returns non-zero (then SH_OK). Errors: the first problem, as in
 * sh_audit_verify (rep->bad_seq names the entry), or a store error. */
sh_err sh_audit_scan(sh_audit *a, uint64_t from, sh_audit_visit fn, void *ctx,
                     sh_audit_report *rep);

/* Calls fn for the entries from the newest back, in t, until it returns non-zero; an entry
 * that does not parse is passed over. Nothing is verified: for finding a recent entry (the
 * broker's newest witness of a store) in a log whose head is signed. Errors: the store's. */
sh_err sh_audit_find_back(sh_audit *a, sh_txn *t, sh_audit_visit fn, void *ctx, sh_error *err);

/* The store the log belongs to. */
sh_store *sh_audit_store(sh_audit *a);

/* Short lower-case name of an action ("write", "deny", ...), or "unknown". */
const char *sh_audit_action_name(int action);

#endif
