/*
 * shred.h — keys that can be destroyed by the day, for erasure by crypto-shredding
 * (docs/store-format.md, "Erasure").
 *
 * Every day d (days since 1970-01-01, 0 to 65535: until the year 2149) has a 256-bit key,
 * derived from a secret root through a binary tree 16 levels deep (HKDF-SHA256, one step a
 * level). A shred file holds only the smallest set of subtree keys that covers the days not
 * yet forgotten. Forgetting the days before D rewrites the file with a cover that omits them:
 * from then on no key of those days can be derived, by anyone, from anything sharehub keeps —
 * so data sealed under them is unreadable wherever its bytes remain (LMDB's free pages, a
 * copy of the store).
 *
 * Owns: the shred file. Never: keeps a forgotten key in memory after the call that forgot it;
 * accepts a file that group or others can read; derives a key for a forgotten day.
 */
#ifndef SHAREHUB_SHRED_H
#define SHAREHUB_SHRED_H

#include <stdint.h>

#include "crypto.h"
#include "error.h"

#define SH_SHRED_DAYS 65536u /* days 0 .. 65535 */

typedef struct sh_shred sh_shred;

/* Opens the shred file at path; with create, makes a new one (a random root, mode 0600) when
 * there is none. Errors: SH_E_KEY_MISSING, SH_E_KEY_PERMISSIONS (group or other bits),
 * SH_E_KEY_FORMAT (not a shred file, or damaged: its checksum fails), SH_E_IO, SH_E_NOMEM. */
sh_err sh_shred_open(const char *path, int create, sh_shred **out, sh_error *err) SH_WUR;

/* Zeroises every key held and frees *s; accepts NULL. */
void sh_shred_destroy(sh_shred **s);

/* The first day not forgotten (0 for a new file). */
uint32_t sh_shred_first_day(const sh_shred *s);

/* The key of day: SH_OK, or SH_E_NOT_FOUND when day was forgotten (or is past the last). The
 * caller destroys *out. */
sh_err sh_shred_day_key(const sh_shred *s, uint32_t day, sh_key **out) SH_WUR;

/* Forgets every day before day: the file is rewritten (a new file, synced, renamed over the
 * old, the directory synced) holding only keys for day and after; the keys in memory are
 * replaced likewise. A day at or before sh_shred_first_day changes nothing. */
sh_err sh_shred_forget_before(sh_shred *s, uint32_t day, sh_error *err) SH_WUR;

/* The day (days since 1970-01-01, UTC) of a time in Unix milliseconds. */
uint32_t sh_shred_day_of(int64_t ms);

#endif
