/*
 * registry_int.h — an organisation entry as the registry file and the federation directory
 * both write it (docs/policy.md, docs/federation.md): its YAML schema and its checks, shared by
 * registry.c and directory.c and nothing else.
 *
 * Owns: nothing. Never: lets one file accept an organisation entry the other would refuse.
 */
#ifndef SHAREHUB_REGISTRY_INT_H
#define SHAREHUB_REGISTRY_INT_H

#include "registry.h"
#include "yaml.h"

typedef struct y_org {
    char *code, *name, *locality, *la_code, *service_type;
    int sector;
    char **keys;
    unsigned keys_count;
    char **sign_keys;
    unsigned sign_keys_count;
} y_org;

/* An organisation entry (the directory's have no keys: with_keys 0). */
extern const cyaml_schema_value_t sh_registry_org_schema, sh_registry_org_schema_nokeys;

/* Checks entry i of file path and fills *o from it (its strings point into y), its signing
 * keys decoded into signs[0..y->sign_keys_count). SH_E_REGISTRY_FILE (or code, for another
 * file's entries), naming the file, the organisation and what is wrong. */
sh_err sh_registry_org_make(const char *path, const y_org *y, size_t i, uint8_t (*signs)[32],
                            sh_org *o, sh_err code, sh_error *err);

#endif
