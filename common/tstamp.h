/*
 * tstamp.h — time from outside (RFC 3161): an audit head's time-stamp request, and the check
 * of the authority's answer (docs/audit-format.md, "Time-stamps").
 *
 * The digest an authority stamps for the entry at seq of the log of store id is
 *   SHA-256("sharehub/v1/timestamp" || store id (16) || seq (u64 BE) || the entry's hash (32))
 * so a token names one store, one entry and, through the hash chain, every entry before it.
 *
 * Owns: nothing. Never: accepts a token whose digest, signature or certificate chain does not
 * check; believes a time the token does not carry.
 */
#ifndef SHAREHUB_TSTAMP_H
#define SHAREHUB_TSTAMP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The digest above, into out. */
void sh_tstamp_digest(const uint8_t store_id[16], uint64_t seq, const uint8_t hash[32],
                      uint8_t out[32]);

/* A DER TimeStampReq for digest (SHA-256, a random nonce, the signer's certificate asked
 * for), malloc'd into *der. SH_E_CRYPTO, SH_E_NOMEM. */
sh_err sh_tstamp_request(const uint8_t digest[32], uint8_t **der, size_t *len,
                         sh_error *err) SH_WUR;

/* Checks a DER TimeStampResp: granted, its token signed by a certificate that chains to one in
 * the PEM file ca_file and may stamp time, over exactly digest (and, when req is given, with
 * that request's nonce); the time it gives into *gen_ms (ms since the epoch).
 * SH_E_TIMESTAMP naming what failed; SH_E_KEY_MISSING when ca_file cannot be read. */
sh_err sh_tstamp_check(const uint8_t *resp, size_t len, const uint8_t digest[32],
                       const uint8_t *req, size_t reqlen, const char *ca_file, int64_t *gen_ms,
                       sh_error *err) SH_WUR;

#endif
