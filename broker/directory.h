/*
 * directory.h — the federation directory (docs/federation.md): which local authorities are in
 * the federation, each one's broker (its code, endpoint and keys) and the organisations it
 * serves; one YAML file, signed by the federation's Ed25519 key in a file beside it.
 *
 * Owns: the parsed directory, immutable once loaded; the signature's message and file format.
 * Never: hands out a directory whose signature did not verify over the bytes it parsed, or
 * one that places an organisation under two authorities.
 */
#ifndef SHAREHUB_DIRECTORY_H
#define SHAREHUB_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"
#include "registry.h"

typedef struct sh_directory sh_directory;

typedef struct sh_authority {
    const char *la_code;     /* "881" */
    const char *name;        /* "Essex County Council" */
    const char *broker_code; /* its broker's organisation code: the source of its receipts */
    const char *endpoint;    /* "tcp://10.0.1.1:7750": where its peers connect */
    const char *curve_key;   /* its broker's CURVE public key, Z85 */
    uint8_t sign_key[SH_SIGN_PUB_BYTES]; /* its broker's audit signing key */
    const sh_org *orgs;                  /* the organisations it serves */
    size_t norgs;
} sh_authority;

/* Loads the directory at path and checks the signature in path + ".sig" under the federation's
 * public key. Errors: SH_E_DIRECTORY_FILE (the detail names the file and the problem: YAML, a
 * bad code or key, an authority or organisation listed twice, a missing or bad signature),
 * SH_E_IO, SH_E_NOMEM. */
sh_err sh_directory_load(const char *path, const uint8_t federation_key[SH_SIGN_PUB_BYTES],
                         sh_directory **out, sh_error *err);

/* Checks the directory at path as sh_directory_load does, apart from its signature, then signs
 * it with k into path + ".sig" (written whole: temporary file, fsync, rename). */
sh_err sh_directory_sign(const char *path, const sh_signkey *k, sh_error *err);

void sh_directory_destroy(sh_directory **d);

/* The serial number the file carries (each signed update raises it). */
uint64_t sh_directory_serial(const sh_directory *d);

size_t sh_directory_count(const sh_directory *d);
const sh_authority *sh_directory_at(const sh_directory *d, size_t i);
const sh_authority *sh_directory_find(const sh_directory *d, const char *la_code);

/* The authority an organisation code is listed under, or NULL. */
const sh_authority *sh_directory_serving(const sh_directory *d, const char *org_code);

/* The message the federation key signs: "sharehub/v1/directory\n" and then the file's bytes. */
#define SH_DIRECTORY_LABEL "sharehub/v1/directory\n"

#endif
