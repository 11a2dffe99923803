/*
 * testutil.h — helpers shared by the unit tests: temporary directories, keys, raw LMDB edits
 * (what an intruder with disk access could do), and envelope fixtures.
 */
#ifndef SHAREHUB_TESTUTIL_H
#define SHAREHUB_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "crypto.h"
#include "store.h"

/* A new private directory under $TMPDIR (or /tmp); malloc'd path. Aborts the test on error. */
char *tu_tmpdir(void);

/* Removes a directory tree. */
void tu_rmrf(const char *path);

/* A random master key (aborts the test on failure). */
sh_key *tu_key(void);

/* path = dir + "/" + name, malloc'd. */
char *tu_path(const char *dir, const char *name);

/* Raw LMDB access to a store directory, bypassing sharehub. Each returns the LMDB code. */
int tu_raw_get(const char *dir, const char *db, const void *key, size_t klen, uint8_t *out,
               size_t cap, size_t *len);
int tu_raw_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
               size_t vlen);
int tu_raw_del(const char *dir, const char *db, const void *key, size_t klen);

/* Flips one bit (mask) of byte `at` of the value under key. */
int tu_raw_flip(const char *dir, const char *db, const void *key, size_t klen, size_t at,
                uint8_t mask);

/* Runs the `sharehub` command (SHAREHUB_CLI) with args (NULL-terminated), stdout and stderr
 * captured into *out (malloc'd, NUL-terminated; may be NULL). Returns its exit status, or -1
 * if it did not exit normally. */
int tu_cli(char **out, const char *const *args);

/* Big-endian u64 key. */
void tu_be64(uint64_t v, uint8_t out[8]);

/* A decoded, valid synthetic envelope of event type t (owned: sh_envelope_free). */
sh_envelope *tu_envelope(int t);

#endif
