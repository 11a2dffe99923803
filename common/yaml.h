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

#include "error.h"

/* Loads path against schema into *out (free with sh_yaml_free). On failure returns code with
 * err->detail = "<path>:<line>:<column>: <key>: <problem>", and for an enumeration the values
 * it allows ("... is not one of: draft, active, suspended"). Enumerations in schemas given
 * here should carry CYAML_FLAG_STRICT: names only, never numbers. */
sh_err sh_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, sh_err code,
                    sh_error *err);

void sh_yaml_free(const cyaml_schema_value_t *schema, void *data);

#endif
