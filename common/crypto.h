/*
 * crypto.h — the only cryptography in sharehub: sealing with AES-256-GCM, HKDF-SHA256 key
 * derivation, HMAC-SHA256, Ed25519 signatures, and key files.
 *
 * Owns: key material (in opaque objects, zeroised on destroy), nonces, the sealed-value format.
 * Never: lets a caller choose a nonce, returns plaintext whose tag did not verify, or reads a
 * key file that group or others can access. Every verify/open result must be checked.
 *
 * Sealed value (docs/store-format.md):
 *   version 0x01 | key id (8) | nonce (12) | ciphertext (n) | GCM tag (16)
 * GCM additional data = the 21-byte header followed by the caller's associated data, so a
 * value is bound to its key id, its nonce and wherever the caller says it belongs.
 *
 * Nonces are 96 random bits from the OS for every seal. With random nonces one key must seal
 * fewer than 2^32 values (NIST SP 800-38D); the store derives one key per store (salted with
 * the store's random id) to keep each key well below that.
 */
#ifndef SHAREHUB_CRYPTO_H
#define SHAREHUB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SH_KEY_BYTES      32
#define SH_KEY_ID_BYTES   8
#define SH_NONCE_BYTES    12
#define SH_TAG_BYTES      16
#define SH_SEAL_HEADER    (1 + SH_KEY_ID_BYTES + SH_NONCE_BYTES)
#define SH_SEAL_OVERHEAD  (SH_SEAL_HEADER + SH_TAG_BYTES) /* 37 bytes */
#define SH_SEAL_VERSION   0x01
#define SH_MAC_BYTES      32
#define SH_SIGN_PUB_BYTES 32
#define SH_SIG_BYTES      64

/* ---- symmetric keys ------------------------------------------------------------------- */

/* A key holds its AES-GCM contexts (the key schedule is made once), so one key is used by one
 * thread at a time: sh_seal and sh_open on the same key from two threads at once race. */
typedef struct sh_key sh_key;

/* Creates path holding a new random 256-bit key as 64 lower-case hex digits and a newline,
 * mode 0600; refuses to overwrite (SH_E_EXISTS). SH_E_IO names the failing call. */
sh_err sh_key_generate_file(const char *path, sh_error *err);

/* Loads a master key file written by sh_key_generate_file (64 hex digits, optional newline).
 * Errors: SH_E_KEY_MISSING, SH_E_KEY_PERMISSIONS (any group/other permission bit set, or not
 * a regular file), SH_E_KEY_FORMAT, SH_E_IO, SH_E_NOMEM. */
sh_err sh_key_load_file(const char *path, sh_key **out, sh_error *err) SH_WUR;

/* A key from 32 raw bytes (copied; the caller zeroises its copy). */
sh_err sh_key_from_bytes(const uint8_t raw[SH_KEY_BYTES], sh_key **out) SH_WUR;

/* Copies the key's 32 bytes to out: only to hand a derived key to someone entitled to it (an
 * auditor's keyring). The caller wipes out. */
void sh_key_export(const sh_key *k, uint8_t out[SH_KEY_BYTES]);

/* HKDF-SHA256: a sub-key of master for one job, named by label ("store data", "audit mac").
 * info = "sharehub/v1/" || label; salt may be NULL. */
sh_err sh_key_derive(const sh_key *master, const void *salt, size_t saltlen, const char *label,
                     sh_key **out) SH_WUR;

/* The key's public 8-byte id: HMAC-SHA256(key, "sharehub/v1/key-id")[0..8]. Safe to store. */
void sh_key_id(const sh_key *k, uint8_t out[SH_KEY_ID_BYTES]);

/* Zeroises and frees *k, and sets *k to NULL. Accepts NULL and *k == NULL. */
void sh_key_destroy(sh_key **k);

/* ---- sealing (AES-256-GCM) ------------------------------------------------------------ */

/* Seals pt into out (capacity outcap >= ptlen + SH_SEAL_OVERHEAD) with a fresh random nonce.
 * ad binds the value to its context and is not stored. out must not overlap pt. */
sh_err sh_seal(const sh_key *k, const void *ad, size_t adlen, const void *pt, size_t ptlen,
               uint8_t *out, size_t outcap, size_t *outlen) SH_WUR;

/* Opens a sealed value into out (capacity >= inlen - SH_SEAL_OVERHEAD). On any failure out is
 * zeroed and *outlen is 0. Errors: SH_E_SEAL_FORMAT (short or unknown version), SH_E_WRONG_KEY
 * (other key id), SH_E_AUTH_FAILED (altered, or ad differs: the value was moved), SH_E_RANGE. */
sh_err sh_open(const sh_key *k, const void *ad, size_t adlen, const uint8_t *in, size_t inlen,
               uint8_t *out, size_t outcap, size_t *outlen) SH_WUR;

/* ---- SHA-256 -------------------------------------------------------------------------- */

/* SHA-256 of p[0..n) into out. */
void sh_sha256(const void *p, size_t n, uint8_t out[32]);

/* ---- HMAC-SHA256 ---------------------------------------------------------------------- */

/* A keyed HMAC-SHA256 context, keyed once and reused for many messages. Not thread-safe:
 * one per thread. */
typedef struct sh_mac sh_mac;

sh_err sh_mac_new(const sh_key *k, sh_mac **out) SH_WUR;

/* out = HMAC(key, a || b); b may be NULL with blen 0. */
sh_err sh_mac_compute(sh_mac *m, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t out[SH_MAC_BYTES]) SH_WUR;

void sh_mac_destroy(sh_mac **m);

/* Constant-time comparison of two MACs; returns 1 when equal. */
int sh_mac_equal(const uint8_t a[SH_MAC_BYTES], const uint8_t b[SH_MAC_BYTES]);

/* ---- Ed25519 signatures --------------------------------------------------------------- */

typedef struct sh_signkey sh_signkey;

/* Writes a new Ed25519 private key to path as PKCS#8 PEM, mode 0600, never overwriting. */
sh_err sh_signkey_generate_file(const char *path, sh_error *err);
/* A fresh Ed25519 key held in memory only (a test client's, a bench's). SH_E_CRYPTO. */
sh_err sh_signkey_generate(sh_signkey **out) SH_WUR;

/* Loads an Ed25519 PKCS#8 PEM private key, with the same permission rules as sh_key. */
sh_err sh_signkey_load_file(const char *path, sh_signkey **out, sh_error *err) SH_WUR;

void sh_signkey_public(const sh_signkey *k, uint8_t pub[SH_SIGN_PUB_BYTES]);

sh_err sh_sign(const sh_signkey *k, const void *msg, size_t len, uint8_t sig[SH_SIG_BYTES]) SH_WUR;

/* SH_OK when sig is pub's signature of msg; else SH_E_BAD_SIGNATURE (SH_E_CRYPTO when libsodium
 * cannot start). */
sh_err sh_verify(const uint8_t pub[SH_SIGN_PUB_BYTES], const void *msg, size_t len,
                 const uint8_t sig[SH_SIG_BYTES]) SH_WUR;

void sh_signkey_destroy(sh_signkey **k);

/* Reads a small secret file (at most cap-1 bytes, NUL-terminated) with the same rules as key
 * files: a regular file, not a symbolic link, no group or other permission bits.
 * Errors: SH_E_KEY_MISSING, SH_E_KEY_PERMISSIONS, SH_E_IO. The caller wipes buf. */
sh_err sh_secret_file_read(const char *path, char *buf, size_t cap, size_t *len,
                           sh_error *err) SH_WUR;

/* Creates path with mode 0600 (never overwriting: SH_E_EXISTS) holding len bytes of data,
 * synced to disk. */
sh_err sh_secret_file_write(const char *path, const void *data, size_t len, sh_error *err);

/* ---- helpers -------------------------------------------------------------------------- */

/* Fills buf with len random bytes from the kernel (getrandom, drawn in 4 KiB blocks; see crypto.c).
 * SH_E_IO on failure. */
sh_err sh_random(void *buf, size_t len) SH_WUR;

/* Zeroises len bytes in a way the compiler cannot remove. */
void sh_wipe(void *p, size_t len);

/* Writes 2n lower-case hex digits of p[0..n) and a NUL into out (2n + 1 bytes). */
void sh_hex_encode(const uint8_t *p, size_t n, char *out);

/* The value of one hex digit (either case), or -1. */
int sh_hex_digit(char c);

/* Reads exactly 2n hex digits (either case, nothing else) into out[0..n); 0, or -1 (out may be
 * partly written). */
int sh_hex_decode(const char *hex, uint8_t *out, size_t n);

#endif
