/*
 * daemon.h — what the broker and every agent do the same way: read their CURVE secret, open
 * their store and its audit log, and make a child's blinded references.
 *
 * Owns: the store, audit log and signing key of a running daemon (sh_vault).
 * Never: keeps the master key once the store is open (the store keeps only keys derived from
 * it), or leaves a secret in memory it has finished with.
 */
#ifndef SHAREHUB_DAEMON_H
#define SHAREHUB_DAEMON_H

#include <stdint.h>

#include "audit.h"
#include "codec.h"
#include "crypto.h"
#include "store.h"
#include "wire.h"

/* A daemon's store and audit log, and the key that signs the log's checkpoints. */
typedef struct sh_vault {
    sh_store *store;
    sh_audit *audit;
    sh_signkey *signer;
} sh_vault;

/* Loads the master key from master_file and the checkpoint signing key from sign_file (each
 * refused when group- or world-readable), opens the store in dir and its audit log, then
 * wipes the master key. On error nothing stays open and *v is zeroed.
 * Errors: those of sh_key_load_file, sh_signkey_load_file, sh_store_open, sh_audit_open. */
sh_err sh_vault_open(const char *dir, const char *master_file, const char *sign_file,
                     const sh_store_opts *opts, uint32_t checkpoint_every, sh_vault *v,
                     sh_error *err) SH_WUR;

/* Records an administrative event — e, then a signed checkpoint over the head when
 * checkpoint is set (a clean stop) — in one transaction of its own. Errors: those of
 * sh_audit_append, sh_audit_checkpoint and the commit; nothing is written on an error. */
sh_err sh_vault_record(sh_vault *v, const sh_audit_entry *e, int checkpoint, sh_error *err);

/* Closes the audit log and the store and frees the signing key. Accepts a zeroed vault. */
void sh_vault_close(sh_vault *v);

/* Reads a Z85 CURVE secret key from path (sh_secret_file_read's rules; trailing newline and
 * spaces ignored) and derives its public key. Errors: those of sh_secret_file_read, and
 * SH_E_KEY_FORMAT (the detail names the file) when it is not 40 characters of Z85. */
sh_err sh_curve_secret_load(const char *path, char secret[SH_Z85_LEN + 1],
                            char public_key[SH_Z85_LEN + 1], sh_error *err) SH_WUR;

/* The blinded references of each identifier the child carries, in this order: NHS number,
 * UPN, LA child id, mother's NHS number (an unborn child's). Returns how many were made (0
 * when c is NULL). */
#define SH_CHILD_REFS_MAX 4
int sh_child_refs(sh_store *s, const sh_child *c, uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES]);

#endif
