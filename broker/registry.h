/*
 * registry.h — the enrolment registry: which CURVE public key belongs to which organisation.
 *
 * Owns: the loaded registry file (YAML, docs/policy.md) and lookups by key and by code.
 * Never: trusts an organisation code a peer claims; the key decides who a peer is. A registry
 * is immutable once loaded: reloading (SIGHUP) builds a new one and swaps it in whole.
 */
#ifndef SHAREHUB_REGISTRY_H
#define SHAREHUB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SH_CURVE_KEY_BYTES 32
#define SH_Z85_KEY_LEN     40 /* Z85 text of a 32-byte key */

typedef enum sh_sector {
    SH_SECTOR_NONE = 0,
    SH_SECTOR_EDUCATION = 1,
    SH_SECTOR_HEALTH = 2,
    SH_SECTOR_SOCIAL_CARE = 3,
    SH_SECTOR_POLICE = 4,
    SH_SECTOR_LOCAL_AUTHORITY = 5,
    SH_SECTOR_PEER = 6, /* another authority's broker (docs/federation.md): code "LA" + la_code */
} sh_sector;

typedef struct sh_org {
    const char *code; /* organisation code, e.g. "RH8" */
    const char *name; /* e.g. "Mid and South Essex NHS Foundation Trust" */
    sh_sector sector;
    const char *locality;     /* e.g. "essex" */
    const char *la_code;      /* DfE LA code this organisation answers for, or NULL */
    const char *service_type; /* health: "emergency_department", "community_health" ...; or NULL */
    /* the Ed25519 keys that may sign its events (docs/evidence.md); none: any that verifies */
    const uint8_t (*sign_keys)[32];
    size_t nsign_keys;
    /* NULL for an organisation this broker serves; for one the federation directory places
     * under another authority, that authority's LA code: its events go through the peer link
     * "LA" + authority (docs/federation.md) */
    const char *authority;
} sh_org;

typedef struct sh_registry sh_registry;

/* Loads a registry file. Errors: SH_E_REGISTRY_FILE (the detail names the file and the
 * problem: YAML error, unknown key, bad code, bad key, duplicate code or key), SH_E_NOMEM. */
sh_err sh_registry_load(const char *path, sh_registry **out, sh_error *err);

void sh_registry_destroy(sh_registry **r);

/* The organisation enrolled with this CURVE public key, or NULL. */
const sh_org *sh_registry_by_key(const sh_registry *r, const uint8_t key[SH_CURVE_KEY_BYTES]);

/* The organisation with this code, or NULL. */
const sh_org *sh_registry_by_code(const sh_registry *r, const char *code);

/* Organisations in file order: index 0 .. sh_registry_count()-1. */
size_t sh_registry_count(const sh_registry *r);
const sh_org *sh_registry_at(const sh_registry *r, size_t i);

/* Enrolled CURVE keys, in key order: index 0 .. sh_registry_key_count()-1; each key into key,
 * and its organisation returned (NULL past the end). */
size_t sh_registry_key_count(const sh_registry *r);
const sh_org *sh_registry_key_at(const sh_registry *r, size_t i, uint8_t key[SH_CURVE_KEY_BYTES]);

/* Adds a Z85 CURVE public key to organisation code in the registry file at path, or removes
 * it with revoke. The file is checked first and rewritten in canonical YAML (comments are not
 * kept) through a temporary file, fsync and rename, so a reader never sees half a file.
 * Errors: SH_E_REGISTRY_FILE (the file, an unknown code, a key enrolled elsewhere or absent),
 * SH_E_KEY_FORMAT (not a Z85 key), SH_E_IO. */
sh_err sh_registry_enrol(const char *path, const char *code, const char *key, int revoke,
                         sh_error *err);

/* 2 when s is a kind of service in unscheduled care (emergency department, urgent treatment
 * centre, minor injury unit, walk-in centre, out-of-hours GP, ambulance, maternity), 1 when it
 * is another kind sharehub knows (acute_inpatient, community_health ...), 0 when unknown. */
int sh_service_type_known(const char *s);

/* Every kind of service, unscheduled care first; returns the count. */
size_t sh_service_types(const char *const **names);

/* The federation directory (directory.h) joined to a registry, which takes it over: every
 * organisation the directory places under another authority than own_la is added (authority
 * set, no keys). Errors: SH_E_DIRECTORY_FILE when own_la is not in the directory, when an
 * organisation enrolled here is placed under another authority, or when a peer is enrolled for
 * an authority the directory does not hold or for this one. On error the directory is
 * destroyed and the registry is as it was. */
struct sh_directory;
sh_err sh_registry_federate(sh_registry *r, struct sh_directory *d, const char *own_la,
                            sh_error *err);

/* The directory joined to r, and this broker's own LA code; NULL when none was. */
const struct sh_directory *sh_registry_directory(const sh_registry *r, const char **own_la);

/* Organisations 0 .. sh_registry_local_count()-1 are this broker's own (enrolled here); the
 * rest, the directory's of other authorities. */
size_t sh_registry_local_count(const sh_registry *r);

/* The other authorities' organisations a decision considers for every event: those
 * named(ctx, o) says some protocol could name as a recipient by code or sector. Until this is
 * called after sh_registry_federate, all of them. SH_E_NOMEM. */
sh_err sh_registry_candidates(sh_registry *r, int (*named)(void *ctx, const sh_org *o), void *ctx,
                              sh_error *err);
size_t sh_registry_candidate_count(const sh_registry *r);
const sh_org *sh_registry_candidate_at(const sh_registry *r, size_t i);

/* The next organisation of another authority, from *from on, whose la_code is la (a
 * responsible_la party); NULL when none is left. Start with *from = 0. */
const sh_org *sh_registry_foreign_la(const sh_registry *r, const char *la, size_t *from);

/* The peer enrolled for authority la ("LA" + la), or NULL. */
const sh_org *sh_registry_peer(const sh_registry *r, const char *la);

/* "education", "health", "social_care", "police", "local_authority", "peer"; "none". */
const char *sh_sector_name(sh_sector s);

#endif
