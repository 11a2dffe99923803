/*
 * yaml.h — loading configuration YAML through libcyaml with errors people can act on.
 *
 * Owns: the cyaml configuration (strict: unknown keys are errors) and turning cyaml's log
 * into one error detail naming the file and the problem.
 * Never: accepts a document with keys the schema does not name.
 */
#ifndef SHAREHUB_YAML_H
#define SHAREHUB_YAML_H

#include <cyaml/cyaml.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "error.h"

/* Loads path against schema into *out (free with sh_yaml_free). On failure returns code with
 * err->detail = "<path>:<line>:<column>: <key>: <problem>", and for an enumeration the values
 * it allows ("... is not one of: draft, active, suspended"). Enumerations in schemas given
 * here should carry CYAML_FLAG_STRICT: names only, never numbers. */
sh_err sh_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, sh_err code,
                    sh_error *err);

/* As sh_yaml_load, from data[0..len) already read (name is used in messages only): a file
 * checked against a signature is parsed from the bytes that were checked. */
sh_err sh_yaml_load_data(const char *name, const uint8_t *data, size_t len,
                         const cyaml_schema_value_t *schema, void **out, sh_err code,
                         sh_error *err);

void sh_yaml_free(const cyaml_schema_value_t *schema, void *data);

/* Fills table (cap entries) with the names of a schema enum's values (sh_enum_name, from its
 * protobuf-c descriptor) for a cyaml enumeration: value 0 only when keep_zero; and, when
 * plain_too, a name that begins with a legal reference ("e_public_task",
 * "2g_substantial_public_interest") also without it ("public_task"), listed first. Returns the
 * entries filled; the strings are the library's. */
uint32_t sh_yaml_enum_table(const ProtobufCEnumDescriptor *d, int keep_zero, int plain_too,
                            cyaml_strval_t *table, uint32_t cap);

#endif
