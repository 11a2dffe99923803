/*
 * keyring.h — an auditor's keys: per store, what it takes to verify and search its audit log
 * without the store's master key.
 *
 * Owns: the keyring file format (docs/audit.md) and the keys it holds, zeroised on destroy.
 * Never: holds a store's master or data key, so nothing in a keyring decrypts a stored event;
 * reads a keyring file that group or others can access.
 *
 * Per store: the Ed25519 public keys trusted to sign its heads and checkpoints (all that
 * verifying a version 2 log takes), optionally the blind key (turns a child's identifier into
 * the blinded reference the log records; without it the log can be verified and replayed but
 * not searched by child), and optionally the audit MAC key, needed only for the version 1
 * entries of a log begun before version 2.
 */
#ifndef SHAREHUB_KEYRING_H
#define SHAREHUB_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"
#include "store.h"

#define SH_KEYRING_NAME_MAX    64
#define SH_KEYRING_SIGNERS_MAX 8

typedef struct sh_keyring_entry {
    uint8_t store_id[SH_STORE_ID_BYTES];
    char name[SH_KEYRING_NAME_MAX + 1]; /* a label for people: "broker", "hub-881" */
    sh_key *audit;                      /* the store's "audit mac" key (version 1 logs), or NULL */
    sh_mac *blind;                      /* keyed with its "blind index" key, or NULL */
    uint8_t signers[SH_KEYRING_SIGNERS_MAX][SH_SIGN_PUB_BYTES];
    size_t nsigners;
} sh_keyring_entry;

typedef struct sh_keyring sh_keyring;

sh_err sh_keyring_new(sh_keyring **out) SH_WUR;

/* Loads a keyring file. Errors: SH_E_KEY_MISSING, SH_E_KEY_PERMISSIONS, SH_E_KEY_FORMAT (the
 * detail names the line and what is wrong), SH_E_IO, SH_E_NOMEM. */
sh_err sh_keyring_load(const char *path, sh_keyring **out, sh_error *err) SH_WUR;

/* Adds a store's keys, or replaces them when the store is already present (keeping its other
 * signers and adding signer). audit and blind may be NULL. Keys are copied. */
sh_err sh_keyring_put(sh_keyring *k, const uint8_t id[SH_STORE_ID_BYTES], const char *name,
                      const sh_key *audit, const sh_key *blind,
                      const uint8_t signer[SH_SIGN_PUB_BYTES], sh_error *err) SH_WUR;

/* Writes the keyring to path (mode 0600, replacing it atomically). */
sh_err sh_keyring_save(const sh_keyring *k, const char *path, sh_error *err) SH_WUR;

/* The keys for a store id, or NULL. */
const sh_keyring_entry *sh_keyring_find(const sh_keyring *k, const uint8_t id[SH_STORE_ID_BYTES]);

size_t sh_keyring_count(const sh_keyring *k);
const sh_keyring_entry *sh_keyring_at(const sh_keyring *k, size_t i);

void sh_keyring_destroy(sh_keyring **k);

#endif
