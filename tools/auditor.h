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
#include "cli.h"
#include "keyring.h"
#include "store.h"

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

/* CLI_RUN when the options name keys (a keyring, or a master key with its signing key), else
 * the usage error, reported for command c. */
int sh_auth_given(const cli_cmd *c, const sh_auth *a);
void sh_alog_close(sh_alog *l);
void sh_auth_free(sh_auth *a);

/* The blinded references of the given child identifiers under this store's blind key.
 * Returns how many were made; SH_E_WRONG_KEY (as a negative) when the store's keys hold no
 * blind key, SH_E_BAD_NHS_NUMBER, SH_E_BAD_UPN or SH_E_BAD_LA_CHILD_ID when an identifier
 * fails its check (the detail names the check: a mistyped NHS number is never "no entries"). */
int sh_alog_child_refs(const sh_alog *l, char *const *ids, size_t nids, uint8_t (*refs)[32],
                       sh_error *err);

/* Verifies the log on its own. Prints nothing; fills rep. */
sh_err sh_alog_verify(sh_alog *l, int progress, sh_audit_report *rep);

/* Verifies n logs, each on its own and then against the signed heads of it that the others
 * hold (their `witness` entries: the broker's of each agent, each agent's of the broker), so a
 * log rolled back, cut short or rewritten since another recorded its head shows. reps[i] is
 * logs[i]'s; its detail ends "<n> witnessed heads match (held by <names>)". A log that does
 * not verify is not used as a witness. Prints nothing. */
void sh_alog_verify_all(sh_alog *logs, size_t n, int progress, sh_audit_report *reps);

/* A short name for a log in reports: the keyring's name for it, or its directory's name. */
const char *sh_alog_label(const sh_alog *l);

/* ISO 8601 UTC time of a millisecond timestamp, "2026-11-22T10:31:05.123Z". */
void sh_iso_time(int64_t ms, char out[32]);

/* The options every audit command takes for its keys: --keyring FILE, or --master KEY and
 * --sign-key PEM (cli.h). */
#define SH_AUTH_OPTS(a)                                                                            \
    {"--keyring", CLI_TEXT, &(a).keyring, 0, 0}, {"--master", CLI_TEXT, &(a).master, 0, 0},        \
    {                                                                                              \
        "--sign-key", CLI_TEXT, &(a).sign, 0, 0                                                    \
    }

/* `sharehub audit subject`, `whatif` and `timestamp` (argc/argv after the subcommand). */
int sh_audit_subject_main(int argc, char **argv);
int sh_audit_whatif_main(int argc, char **argv);
int sh_audit_timestamp_main(int argc, char **argv);

/* Checks the RFC 3161 tokens kept beside l's store (audit_tsa.c) against the authorities'
 * certificates in the PEM file ca, for a log that verified (rep->result SH_OK): each over its
 * entry's digest, signed, chained; an entry past the log's end is a log cut back. Sets rep
 * (SH_E_TIMESTAMP, naming the token) or adds "; <n> time-stamps check (newest: …)" to its
 * detail. */
void sh_alog_check_timestamps(sh_alog *l, const char *ca, sh_audit_report *rep);

#endif
