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
 * A value sealed under a day's key (sh_shred_seal) is u32 BE day | sealed value (crypto.h),
 * SH_SHRED_OVERHEAD bytes longer than the plaintext.
 *
 * Owns: the shred file; the keys of the last few days used (a day's values share one). Never:
 * keeps a forgotten key in memory after the call that forgot it; accepts a file that group or
 * others can read; derives a key for a forgotten day.
 */
#ifndef SHAREHUB_SHRED_H
#define SHAREHUB_SHRED_H

#include <stdint.h>

#include "crypto.h"
#include "error.h"

#define SH_SHRED_DAYS     65536u /* days 0 .. 65535 */
#define SH_SHRED_OVERHEAD (4 + SH_SEAL_OVERHEAD)

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

/* Seals in[0..len) under the key of day, bound to ad, into out (capacity cap >= len +
 * SH_SHRED_OVERHEAD): *outlen bytes. SH_E_NOT_FOUND when day is forgotten; SH_E_INVAL when
 * out is too small. */
sh_err sh_shred_seal(sh_shred *s, uint32_t day, const void *ad, size_t adlen, const uint8_t *in,
                     size_t len, uint8_t *out, size_t cap, size_t *outlen) SH_WUR;

/* Opens what sh_shred_seal made into out (capacity cap >= len - SH_SHRED_OVERHEAD): SH_OK,
 * SH_E_NOT_FOUND when its day is forgotten (the value is erased), SH_E_STORE_CORRUPT when it
 * is too short or does not open with ad, SH_E_INVAL when out is too small. */
sh_err sh_shred_unseal(sh_shred *s, const void *ad, size_t adlen, const uint8_t *in, size_t len,
                       uint8_t *out, size_t cap, size_t *outlen) SH_WUR;

/* The day a value made by sh_shred_seal is sealed under; 0 when it is too short. */
uint32_t sh_shred_sealed_day(const uint8_t *in, size_t len);

/* Forgets every day before day: the file is rewritten (a new file, synced, renamed over the
 * old, the directory synced) holding only keys for day and after; the keys in memory are
 * replaced likewise. A day at or before sh_shred_first_day changes nothing. */
sh_err sh_shred_forget_before(sh_shred *s, uint32_t day, sh_error *err) SH_WUR;

/* The day (days since 1970-01-01, UTC) of a time in Unix milliseconds. */
uint32_t sh_shred_day_of(int64_t ms);

#endif
