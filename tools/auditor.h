/*
 * auditor.h — what the `sharehub audit` subcommands share: opening a store's audit log with
 * an auditor's keyring (or an operator's master key), finding a child's blinded references,
 * and the subject report and policy what-if built on them.
 *
 * Never: opens a store for writing unless the master key was given for an audited read;
 * prints a blinded reference next to the identifier it came from.
 */
#ifndef SHAREHUB_AUDITOR_H
#define SHAREHUB_AUDITOR_H

#include <stdio.h>

#include "audit.h"
#include "keyring.h"
#include "store.h"

enum { SH_EXIT_OK = 0, SH_EXIT_BAD = 1, SH_EXIT_USAGE = 2 };

/* Where keys come from: an auditor's keyring file, or a store's master key and checkpoint
 * signing key (an operator's own store; needed for reading sealed payloads). */
typedef struct sh_auth {
    const char *keyring, *master, *sign;
    sh_keyring *ring; /* loaded on first use */
} sh_auth;

/* One store's audit log, open for auditing. */
typedef struct sh_alog {
    const char *dir;
    sh_store *store;
    sh_audit *audit;
    const sh_keyring_entry *keys;
    sh_keyring *own; /* keys derived from the master key */
    sh_key *master;
    sh_signkey *sign;
} sh_alog;

sh_err sh_alog_open(const char *dir, sh_auth *auth, sh_alog *out, sh_error *err) SH_WUR;
void sh_alog_close(sh_alog *l);
void sh_auth_free(sh_auth *a);

/* The blinded references of the given child identifiers under this store's blind key.
 * Returns how many were made; SH_E_WRONG_KEY (as a negative) when the store's keys hold no
 * blind key, SH_E_INVAL when an identifier is not an NHS number, UPN or LA child id. */
int sh_alog_child_refs(const sh_alog *l, char *const *ids, size_t nids, uint8_t (*refs)[32],
                       sh_error *err);

/* Verifies the log, with the broker's witness records of it when witness is not NULL.
 * Prints nothing; fills rep. */
sh_err sh_alog_verify(sh_alog *l, sh_alog *witness, int progress, sh_audit_report *rep);

/* Writes s to f as a JSON string (with quotes). */
void sh_json_put_string(FILE *f, const char *s);

/* ISO 8601 UTC time of a millisecond timestamp, "2026-11-22T10:31:05.123Z". */
void sh_iso_time(int64_t ms, char out[32]);

/* `sharehub audit subject` and `sharehub audit whatif` (argc/argv after the subcommand). */
int sh_audit_subject_main(int argc, char **argv);
int sh_audit_whatif_main(int argc, char **argv);

/* The usage text shared by the audit subcommands. */
void sh_audit_usage(FILE *f);

/* Parses the options every audit subcommand takes (--keyring, --master, --sign-key); returns
 * 1 when argv[*i] was one of them (and advances *i), 0 otherwise, -1 on a missing value. */
int sh_auth_option(sh_auth *a, int argc, char **argv, int *i);

/* Prints an error from an sh_error as "sharehub audit: <what>: E<code> ...". Returns 2. */
int sh_audit_fail(const char *what, const sh_error *e);

#endif
