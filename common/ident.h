/*
 * ident.h — identifiers: NHS numbers, unique pupil numbers, DfE LA codes, organisation codes,
 * local-authority child ids and event ids (UUIDv7); and synthetic valid ones for tests.
 *
 * Owns: the check algorithms, shape rules and the generators of synthetic identifiers.
 * Never: decides whether an organisation exists (that is the enrolment registry's job — a
 * valid shape is not a real organisation), and never logs the identifiers it checks.
 */
#ifndef SHAREHUB_IDENT_H
#define SHAREHUB_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SH_NHS_LEN      10 /* digits, no spaces */
#define SH_UPN_LEN      13 /* check letter + 12 */
#define SH_ORG_MAX      9  /* organisation code: 1-9 of [A-Z0-9] */
#define SH_LA_CHILD_MAX 32 /* local-authority child id: 1-32 of [A-Za-z0-9-] */
#define SH_EVENT_ID_LEN 16 /* bytes */
#define SH_EVENT_ID_STR 37 /* 36 characters and the terminating NUL */

/* NHS number: exactly 10 digits whose Modulus 11 check digit is right. 0000000000 passes the
 * arithmetic but is refused. Returns SH_OK or SH_E_BAD_NHS_NUMBER. */
sh_err sh_nhs_check(const char *s);

/* Copies an NHS number typed by a person ("943 476 5919", "943-476-5919") into out as 10
 * digits, dropping spaces and hyphens, then checks it. out must hold SH_NHS_LEN + 1 bytes. */
sh_err sh_nhs_normalise(const char *in, char out[SH_NHS_LEN + 1]);

/* UPN: check letter, 3-digit LA code, 4-digit establishment, 2-digit year, 3-digit serial; a
 * temporary UPN has a letter from the check table in place of the last serial digit.
 * Returns SH_OK or SH_E_BAD_UPN. */
sh_err sh_upn_check(const char *s);

/* The UPN check letter for the 12 characters after it, or 0 if they are malformed. */
char sh_upn_check_letter(const char twelve[12]);

/* DfE local authority code: 3 digits in 201-938. Returns SH_OK or SH_E_BAD_LA_CODE. */
sh_err sh_la_code_check(const char *s);

/* Name of a DfE LA code known to this build (the Essex region and neighbours), or NULL. */
const char *sh_la_name(const char *code);

/* Organisation code shape: 1-9 of [A-Z0-9] (NHS ODS, DfE LA, DfE establishment numbers).
 * Returns SH_OK or SH_E_BAD_ORG_CODE. The shape alone proves nothing: look the code up. */
sh_err sh_org_code_check(const char *s);

/* Local-authority child id: 1-32 of [A-Za-z0-9-]. Returns SH_OK or SH_E_BAD_LA_CHILD_ID. */
sh_err sh_la_child_id_check(const char *s);

/* A new event id: UUIDv7 (RFC 9562), 48-bit Unix milliseconds, then a 12-bit counter that
 * keeps ids from one process strictly increasing within a millisecond, then 62 random bits
 * from the OS. Thread-safe. Returns SH_OK or SH_E_IO if the OS gave no randomness. */
sh_err sh_event_id_new(uint8_t out[SH_EVENT_ID_LEN]);

/* SH_OK if id is 16 bytes with version 7 and the RFC 9562 variant; else SH_E_BAD_EVENT_ID. */
sh_err sh_event_id_check(const uint8_t *id, size_t len);

/* Milliseconds since the epoch held in a UUIDv7. */
int64_t sh_event_id_time_ms(const uint8_t id[SH_EVENT_ID_LEN]);

/* The kind of a child identifier typed by a person, as blinded references name it, and its
 * canonical form in canon: "nhs" (canon: the 10 digits), "upn" or "la" (canon: as typed). A
 * prefix "nhs:", "upn:" or "la:" says which it is. Without one, what is shaped like an NHS
 * number (10 digits once spaces and hyphens are dropped) is one, and what is shaped like a UPN
 * (13 characters: a letter, 11 digits, a digit or letter) is one: a wrong check digit or
 * check letter is an error, never taken as a local-authority id — a mistyped NHS number must
 * not find "nothing". Anything else of 1-32 [A-Za-z0-9-] is an LA child id.
 * Returns SH_OK and *kind, or SH_E_BAD_NHS_NUMBER, SH_E_BAD_UPN, SH_E_BAD_LA_CHILD_ID with
 * *why naming the check that failed (never the value). */
sh_err sh_ident_classify(const char *in, char *canon, size_t cap, const char **kind,
                         const char **why);

/* sh_ident_classify's kind, or NULL when in is not a valid identifier. */
const char *sh_ident_kind(const char *in, char *canon, size_t cap);

/* Formats an id as 8-4-4-4-12 lower-case hex; returns out. */
char *sh_event_id_format(const uint8_t id[SH_EVENT_ID_LEN], char out[SH_EVENT_ID_STR]);

/* Parses the 8-4-4-4-12 form (either case). Returns SH_OK or SH_E_BAD_EVENT_ID. */
sh_err sh_event_id_parse(const char *s, uint8_t out[SH_EVENT_ID_LEN]);

/* --- Synthetic identifiers, for tests and the demo only ------------------------------------
 * Deterministic from *rng (any seed), so a failing test can be replayed. */

/* splitmix64: the next value of the sequence, advancing *rng. */
uint64_t sh_rng_next(uint64_t *rng);

/* How many distinct synthetic children there are: the *_at functions give different
 * identifiers for every index below this (900,000 = 10^5 x the 9 final digits that keep an NHS
 * check digit valid). */
#define SH_SYNTH_INDEXES 900000u

/* The synthetic NHS number of index (mod SH_SYNTH_INDEXES): valid, in the never-issued range
 * 999 000 0000 - 999 999 9999, and different for every index below SH_SYNTH_INDEXES. */
void sh_nhs_synthetic_at(uint64_t index, char out[SH_NHS_LEN + 1]);

/* A valid NHS number from that range, for a random index drawn from *rng. */
void sh_nhs_synthetic(uint64_t *rng, char out[SH_NHS_LEN + 1]);

/* The synthetic permanent UPN of index for LA code la (3 digits, e.g. "881"): valid, and
 * different for every index below 10^9. */
void sh_upn_synthetic_at(uint64_t index, const char *la, char out[SH_UPN_LEN + 1]);

/* A valid permanent UPN for LA code la, for a random index drawn from *rng. */
void sh_upn_synthetic(uint64_t *rng, const char *la, char out[SH_UPN_LEN + 1]);

#endif
