/*
 * registry.c — loading and looking up the enrolment registry.
 *
 * File format (docs/policy.md):
 *   organisations:
 *     - code: "RH8"
 *       name: Mid and South Essex NHS Foundation Trust
 *       sector: health            # education | health | social_care | police | local_authority
 *       locality: essex           # [a-z0-9-]
 *       la_code: "881"            # optional: the LA this organisation answers for
 *       service_type: emergency_department   # optional: what kind of service (health)
 *       keys: ["<40-character Z85 CURVE public key>", ...]
 *       sign_keys: ["<64 hex: Ed25519 public key>", ...]   # optional: who may sign its events
 *
 * Owns: the parsed registry, immutable after load. Never: accepts a duplicate code or key.
 */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <zmq.h>

#include "crypto.h"
#include "ident.h"
#include "registry_int.h"
#include "directory.h"

typedef struct y_registry {
    y_org *organisations;
    unsigned organisations_count;
} y_registry;

static const cyaml_strval_t s_sectors[] = {
    {"education", SH_SECTOR_EDUCATION},
    {"health", SH_SECTOR_HEALTH},
    {"social_care", SH_SECTOR_SOCIAL_CARE},
    {"police", SH_SECTOR_POLICE},
    {"local_authority", SH_SECTOR_LOCAL_AUTHORITY},
    {"peer", SH_SECTOR_PEER},
};

static const cyaml_schema_value_t s_string = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 200),
};

/* An organisation entry's fields; the registry's also take keys, and the sector peer (which
 * the directory's do not: sectors counts how many of s_sectors are allowed). */
#define ORG_FIELDS(sectors)                                                                        \
    CYAML_FIELD_STRING_PTR("code", CYAML_FLAG_POINTER, y_org, code, 1, 9),                         \
        CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_org, name, 1, 200),                   \
        CYAML_FIELD_ENUM("sector", CYAML_FLAG_STRICT, y_org, sector, s_sectors, sectors),          \
        CYAML_FIELD_STRING_PTR("locality", CYAML_FLAG_POINTER, y_org, locality, 1, 40),            \
        CYAML_FIELD_STRING_PTR("la_code", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_org,         \
                               la_code, 3, 3),                                                     \
        CYAML_FIELD_STRING_PTR("service_type", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_org,    \
                               service_type, 1, 40),                                               \
        CYAML_FIELD_SEQUENCE("sign_keys", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_org,         \
                             sign_keys, &s_string, 0, 8)

static const cyaml_schema_field_t s_org_fields[] = {
    ORG_FIELDS(6),
    CYAML_FIELD_SEQUENCE("keys", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_org, keys, &s_string,
                         0, 64),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t s_org_fields_nokeys[] = {
    ORG_FIELDS(5),
    CYAML_FIELD_END,
};

/* Kinds of service (docs/policy.md); the first seven are unscheduled care, where CP-IS flags
 * are shown. */
static const char *const s_service_types[] = {"emergency_department",
                                              "urgent_treatment_centre",
                                              "minor_injury_unit",
                                              "walk_in_centre",
                                              "out_of_hours_gp",
                                              "ambulance",
                                              "maternity",
                                              "acute_inpatient",
                                              "community_health",
                                              "mental_health",
                                              "primary_care",
                                              "health_visiting",
                                              "school_nursing",
                                              "sexual_health"};
#define UNSCHEDULED_TYPES 7

int sh_service_type_known(const char *s)
{
    for (size_t i = 0; s && i < sizeof s_service_types / sizeof s_service_types[0]; i++)
        if (strcmp(s, s_service_types[i]) == 0) return 1 + (i < UNSCHEDULED_TYPES);
    return 0;
}

size_t sh_service_types(const char *const **names)
{
    *names = s_service_types;
    return sizeof s_service_types / sizeof s_service_types[0];
}

const cyaml_schema_value_t sh_registry_org_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_org, s_org_fields),
};
const cyaml_schema_value_t sh_registry_org_schema_nokeys = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_org, s_org_fields_nokeys),
};

static const cyaml_schema_field_t s_top_fields[] = {
    CYAML_FIELD_SEQUENCE("organisations", CYAML_FLAG_POINTER, y_registry, organisations,
                         &sh_registry_org_schema, 0, 100000),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t s_top = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_registry, s_top_fields),
};

typedef struct s_codeent {
    const char *code;
    size_t org;
} s_codeent;

static int s_codecmp(const void *a, const void *b)
{
    return strcmp(((const s_codeent *)a)->code, ((const s_codeent *)b)->code);
}

typedef struct s_keyent {
    uint8_t key[SH_CURVE_KEY_BYTES];
    size_t org;
} s_keyent;

struct sh_registry {
    y_registry *y;
    sh_org *orgs;
    size_t norgs, nlocal; /* orgs[nlocal..norgs): the directory's, of other authorities */
    sh_directory *dir;
    const char *own_la;
    s_codeent *codes;   /* every organisation, sorted by code */
    size_t *candidates; /* the other authorities' organisations a protocol could name */
    size_t ncandidates;
    size_t *las; /* the other authorities' organisations with an la_code */
    size_t nlas;
    s_keyent *keys; /* sorted by key */
    size_t nkeys;
    uint8_t (*signs)[SH_SIGN_PUB_BYTES]; /* every organisation's signing keys, in order */
};

static int s_keycmp(const void *a, const void *b)
{
    return memcmp(((const s_keyent *)a)->key, ((const s_keyent *)b)->key, SH_CURVE_KEY_BYTES);
}

static int s_locality_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) return 0;
    return 1;
}

const char *sh_sector_name(sh_sector s)
{
    for (size_t i = 0; i < sizeof s_sectors / sizeof s_sectors[0]; i++)
        if (s_sectors[i].val == (int64_t)s) return s_sectors[i].str;
    return "none";
}

/* (Re)builds the index by code; -1 when out of memory. */
static int s_index_codes(sh_registry *r)
{
    s_codeent *c = realloc(r->codes, (r->norgs + 1) * sizeof *c);
    if (!c) return -1;
    for (size_t i = 0; i < r->norgs; i++)
        c[i] = (s_codeent){r->orgs[i].code, i};
    qsort(c, r->norgs, sizeof *c, s_codecmp);
    r->codes = c;
    return 0;
}

sh_err sh_registry_org_make(const char *path, const y_org *y, size_t i, uint8_t (*signs)[32],
                            sh_org *o, sh_err code, sh_error *err)
{
    if (sh_org_code_check(y->code) != SH_OK)
        return sh_error_set(err, code, "%s: organisation %zu: code is not 1-9 of [A-Z0-9]", path,
                            i + 1);
    if (y->la_code && sh_la_code_check(y->la_code) != SH_OK)
        return sh_error_set(err, code, "%s: %s: la_code is not a DfE LA code", path, y->code);
    if (y->service_type && !sh_service_type_known(y->service_type))
        return sh_error_set(err, code,
                            "%s: %s: service_type '%.40s' is not a kind of service sharehub "
                            "knows (docs/policy.md lists them)",
                            path, y->code, y->service_type);
    if (y->service_type && y->sector != SH_SECTOR_HEALTH)
        return sh_error_set(err, code,
                            "%s: %s: service_type is for health organisations (sector: health)",
                            path, y->code);
    if (!s_locality_ok(y->locality))
        return sh_error_set(err, code, "%s: %s: locality is not [a-z0-9-]", path, y->code);
    if (y->sector == SH_SECTOR_PEER &&
        (!y->la_code || strncmp(y->code, "LA", 2) != 0 || strcmp(y->code + 2, y->la_code) != 0))
        return sh_error_set(err, code,
                            "%s: %s: a peer (another authority's broker) is enrolled as \"LA\" and "
                            "its la_code, with that la_code (docs/federation.md)",
                            path, y->code);
    for (unsigned k = 0; k < y->sign_keys_count; k++) {
        if (sh_hex_decode(y->sign_keys[k], signs[k], SH_SIGN_PUB_BYTES))
            return sh_error_set(err, code,
                                "%s: %s: sign_keys %u is not 64 hex digits (an Ed25519 public "
                                "key, as `sharehub keygen sign` prints it)",
                                path, y->code, k + 1);
    }
    *o = (sh_org){.code = y->code,
                  .name = y->name,
                  .sector = (sh_sector)y->sector,
                  .locality = y->locality,
                  .la_code = y->la_code,
                  .service_type = y->service_type,
                  .sign_keys = y->sign_keys_count ? (const uint8_t(*)[32])signs : NULL,
                  .nsign_keys = y->sign_keys_count};
    return SH_OK;
}

sh_err sh_registry_load(const char *path, sh_registry **out, sh_error *err)
{
    *out = NULL;
    sh_registry *r = calloc(1, sizeof *r);
    if (!r) return sh_error_set(err, SH_E_NOMEM, "registry");
    void *data = NULL;
    sh_err rc = sh_yaml_load(path, &s_top, &data, SH_E_REGISTRY_FILE, err);
    r->y = data;
    size_t total_keys = 0, total_signs = 0, nsigns = 0;
    if (!rc) {
        r->norgs = r->y->organisations_count;
        for (size_t i = 0; i < r->norgs; i++) {
            total_keys += r->y->organisations[i].keys_count;
            total_signs += r->y->organisations[i].sign_keys_count;
        }
        r->orgs = calloc(r->norgs ? r->norgs : 1, sizeof *r->orgs);
        r->keys = calloc(total_keys ? total_keys : 1, sizeof *r->keys);
        r->signs = calloc(total_signs ? total_signs : 1, sizeof *r->signs);
        if (!r->orgs || !r->keys || !r->signs) rc = sh_error_set(err, SH_E_NOMEM, "registry");
    }
    for (size_t i = 0; !rc && i < r->norgs; i++) {
        const y_org *y = &r->y->organisations[i];
        rc = sh_registry_org_make(path, y, i, r->signs + nsigns, &r->orgs[i], SH_E_REGISTRY_FILE,
                                  err);
        nsigns += y->sign_keys_count;
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(r->orgs[j].code, y->code) == 0)
                rc = sh_error_set(err, SH_E_REGISTRY_FILE, "%s: organisation %s enrolled twice",
                                  path, y->code);
        for (unsigned k = 0; !rc && k < y->keys_count; k++) {
            s_keyent *ke = &r->keys[r->nkeys];
            if (strlen(y->keys[k]) != SH_Z85_KEY_LEN || !zmq_z85_decode(ke->key, y->keys[k]))
                rc = sh_error_set(err, SH_E_REGISTRY_FILE,
                                  "%s: %s: key %u is not a 40-character Z85 CURVE key", path,
                                  y->code, k + 1);
            ke->org = i;
            r->nkeys++;
        }
    }
    r->nlocal = r->norgs;
    if (!rc && s_index_codes(r)) rc = sh_error_set(err, SH_E_NOMEM, "registry");
    if (!rc && r->nkeys) {
        qsort(r->keys, r->nkeys, sizeof *r->keys, s_keycmp);
        for (size_t i = 1; i < r->nkeys; i++)
            if (s_keycmp(&r->keys[i - 1], &r->keys[i]) == 0) {
                rc = sh_error_set(err, SH_E_REGISTRY_FILE, "%s: one key is enrolled for %s and %s",
                                  path, r->orgs[r->keys[i - 1].org].code,
                                  r->orgs[r->keys[i].org].code);
                break;
            }
    }
    if (rc) {
        sh_registry_destroy(&r);
        return rc;
    }
    *out = r;
    return SH_OK;
}

void sh_registry_destroy(sh_registry **rp)
{
    if (!rp || !*rp) return;
    sh_registry *r = *rp;
    sh_yaml_free(&s_top, r->y);
    sh_directory_destroy(&r->dir);
    free(r->codes);
    free(r->candidates);
    free(r->las);
    free(r->orgs);
    free(r->keys);
    free(r->signs);
    free(r);
    *rp = NULL;
}

const sh_org *sh_registry_by_key(const sh_registry *r, const uint8_t key[SH_CURVE_KEY_BYTES])
{
    s_keyent probe;
    memcpy(probe.key, key, SH_CURVE_KEY_BYTES);
    const s_keyent *hit = bsearch(&probe, r->keys, r->nkeys, sizeof *r->keys, s_keycmp);
    return hit ? &r->orgs[hit->org] : NULL;
}

const sh_org *sh_registry_by_code(const sh_registry *r, const char *code)
{
    s_codeent probe = {code, 0};
    const s_codeent *hit =
        code && r->codes ? bsearch(&probe, r->codes, r->norgs, sizeof *r->codes, s_codecmp) : NULL;
    return hit ? &r->orgs[hit->org] : NULL;
}

size_t sh_registry_local_count(const sh_registry *r)
{
    return r->nlocal;
}

sh_err sh_registry_candidates(sh_registry *r, int (*named)(void *ctx, const sh_org *o), void *ctx,
                              sh_error *err)
{
    size_t *c = calloc(r->norgs - r->nlocal + 1, sizeof *c), n = 0;
    if (!c) return sh_error_set(err, SH_E_NOMEM, "registry");
    for (size_t i = r->nlocal; i < r->norgs; i++)
        if (named(ctx, &r->orgs[i])) c[n++] = i;
    free(r->candidates);
    r->candidates = c;
    r->ncandidates = n;
    return SH_OK;
}

size_t sh_registry_candidate_count(const sh_registry *r)
{
    return r->ncandidates;
}

const sh_org *sh_registry_candidate_at(const sh_registry *r, size_t i)
{
    return i < r->ncandidates ? &r->orgs[r->candidates[i]] : NULL;
}

const sh_org *sh_registry_foreign_la(const sh_registry *r, const char *la, size_t *from)
{
    for (; la && *from < r->nlas; (*from)++)
        if (strcmp(r->orgs[r->las[*from]].la_code, la) == 0) return &r->orgs[r->las[(*from)++]];
    return NULL;
}

sh_err sh_registry_federate(sh_registry *r, sh_directory *d, const char *own_la, sh_error *err)
{
    sh_err rc = SH_OK;
    const sh_authority *own = sh_directory_find(d, own_la);
    if (!own)
        rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                          "the federation directory has no authority %.8s: this broker's "
                          "--authority",
                          own_la ? own_la : "(none)");
    size_t foreign = 0;
    for (size_t i = 0; !rc && i < sh_directory_count(d); i++)
        if (sh_directory_at(d, i) != own) foreign += sh_directory_at(d, i)->norgs;
    for (size_t i = 0; !rc && i < r->nlocal; i++) {
        const sh_org *o = &r->orgs[i];
        const sh_authority *a = sh_directory_serving(d, o->code);
        if (o->sector == SH_SECTOR_PEER) {
            const sh_authority *p = sh_directory_find(d, o->la_code);
            if (!p || p == own)
                rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                                  "peer %s is enrolled for authority %s, which %s", o->code,
                                  o->la_code,
                                  p ? "is this broker's own" : "the federation directory lacks");
        } else if (a && a != own) {
            rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                              "organisation %s is enrolled here (authority %s) and listed in the "
                              "federation directory under authority %s: each is served by one",
                              o->code, own_la, a->la_code);
        }
    }
    sh_org *orgs = rc ? NULL : realloc(r->orgs, (r->nlocal + foreign + 1) * sizeof *orgs);
    if (!rc && !orgs) rc = sh_error_set(err, SH_E_NOMEM, "registry");
    if (rc) {
        sh_directory_destroy(&d);
        return rc;
    }
    r->orgs = orgs;
    r->norgs = r->nlocal;
    for (size_t i = 0; i < sh_directory_count(d); i++) {
        const sh_authority *a = sh_directory_at(d, i);
        for (size_t k = 0; a != own && k < a->norgs; k++)
            r->orgs[r->norgs++] = a->orgs[k];
    }
    sh_directory_destroy(&r->dir);
    r->dir = d;
    r->own_la = own->la_code;
    if (s_index_codes(r)) return sh_error_set(err, SH_E_NOMEM, "registry");
    /* until a policy says which it could name: all of them (sh_registry_candidates) */
    free(r->candidates);
    r->candidates = NULL;
    r->ncandidates = 0;
    size_t *c = calloc(r->norgs - r->nlocal + 1, sizeof *c);
    size_t *l = calloc(r->norgs - r->nlocal + 1, sizeof *l);
    if (!c || !l) {
        free(c);
        free(l);
        return sh_error_set(err, SH_E_NOMEM, "registry");
    }
    for (size_t i = r->nlocal; i < r->norgs; i++) {
        c[r->ncandidates++] = i;
        if (r->orgs[i].la_code) l[r->nlas++] = i;
    }
    r->candidates = c;
    free(r->las);
    r->las = l;
    return SH_OK;
}

const sh_directory *sh_registry_directory(const sh_registry *r, const char **own_la)
{
    if (own_la) *own_la = r->own_la;
    return r->dir;
}

const sh_org *sh_registry_peer(const sh_registry *r, const char *la)
{
    char code[SH_ORG_MAX + 2];
    if (!la || (size_t)snprintf(code, sizeof code, "LA%s", la) >= sizeof code) return NULL;
    const sh_org *o = sh_registry_by_code(r, code);
    return o && o->sector == SH_SECTOR_PEER && !o->authority ? o : NULL;
}

size_t sh_registry_count(const sh_registry *r)
{
    return r->norgs;
}

const sh_org *sh_registry_at(const sh_registry *r, size_t i)
{
    return i < r->norgs ? &r->orgs[i] : NULL;
}

size_t sh_registry_key_count(const sh_registry *r)
{
    return r->nkeys;
}

const sh_org *sh_registry_key_at(const sh_registry *r, size_t i, uint8_t key[SH_CURVE_KEY_BYTES])
{
    if (i >= r->nkeys) return NULL;
    memcpy(key, r->keys[i].key, SH_CURVE_KEY_BYTES);
    return &r->orgs[r->keys[i].org];
}

/* Writes s as a double-quoted YAML scalar. */
static void s_yaml_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

sh_err sh_registry_enrol(const char *path, const char *code, const char *key, int revoke,
                         sh_error *err)
{
    sh_registry *r = NULL;
    uint8_t raw[SH_CURVE_KEY_BYTES];
    if (!key || strlen(key) != SH_Z85_KEY_LEN || !zmq_z85_decode(raw, key))
        return sh_error_set(err, SH_E_KEY_FORMAT, "want a 40-character Z85 CURVE public key");
    sh_err rc = sh_registry_load(path, &r, err);
    if (rc) return rc;
    const sh_org *owner = sh_registry_by_key(r, raw);
    size_t who = r->norgs;
    for (size_t i = 0; i < r->norgs; i++)
        if (strcmp(r->orgs[i].code, code) == 0) who = i;
    if (who == r->norgs)
        rc = sh_error_set(err, SH_E_REGISTRY_FILE, "%s: no organisation %s", path, code);
    else if (!revoke && owner)
        rc = sh_error_set(err, SH_E_REGISTRY_FILE, "%s: that key is already enrolled for %s", path,
                          owner->code);
    else if (revoke && owner != &r->orgs[who])
        rc = sh_error_set(err, SH_E_REGISTRY_FILE, "%s: that key is not enrolled for %s", path,
                          code);
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = NULL;
    if (!rc && (n < 0 || (size_t)n >= sizeof tmp))
        rc = sh_error_set(err, SH_E_IO, "%s: path too long", path);
    if (!rc) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            if (fd >= 0) close(fd);
            rc = sh_error_set(err, SH_E_IO, "%s: %s", tmp, strerror(errno));
        }
    }
    if (!rc) {
        fputs("# sharehub enrolment registry (written by sharehub enrol)\norganisations:\n", f);
        for (size_t i = 0; i < r->norgs; i++) {
            const y_org *y = &r->y->organisations[i];
            fputs("  - code: ", f);
            s_yaml_quoted(f, y->code);
            fputs("\n    name: ", f);
            s_yaml_quoted(f, y->name);
            fprintf(f, "\n    sector: %s\n    locality: %s\n", sh_sector_name(y->sector),
                    y->locality);
            if (y->la_code) {
                fputs("    la_code: ", f);
                s_yaml_quoted(f, y->la_code);
                fputc('\n', f);
            }
            if (y->service_type) fprintf(f, "    service_type: %s\n", y->service_type);
            if (y->sign_keys_count) { /* (checked when loaded: hex digits only) */
                fputs("    sign_keys: [", f);
                for (unsigned k = 0; k < y->sign_keys_count; k++)
                    fprintf(f, "%s'%s'", k ? ", " : "", y->sign_keys[k]);
                fputs("]\n", f);
            }
            fputs("    keys: [", f);
            int first = 1;
            for (unsigned k = 0; k < y->keys_count; k++) {
                if (revoke && i == who && strcmp(y->keys[k], key) == 0) continue;
                fprintf(f, "%s'%s'", first ? "" : ", ", y->keys[k]);
                first = 0;
            }
            if (!revoke && i == who) fprintf(f, "%s'%s'", first ? "" : ", ", key);
            fputs("]\n", f);
        }
        int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, path) != 0) {
            rc = sh_error_set(err, SH_E_IO, "writing %s: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    sh_registry_destroy(&r);
    if (!rc) { /* what was written must load */
        rc = sh_registry_load(path, &r, err);
        sh_registry_destroy(&r);
    }
    return rc;
}
