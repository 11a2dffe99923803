/*
 * json.h — one generic mapping between JSON and every sharehub protobuf message, driven by
 * protobuf-c's descriptors (json-c for the JSON side). No per-message code.
 *
 * Owns: the mapping rules (docs/json.md): field names as in the .proto; enums as their short
 * lower-case names ("safeguarding_concern", "public_task") on output, and that, the full name
 * or the number on input; 16-byte ids as 8-4-4-4-12 hex text; int64 as JSON numbers (strings
 * accepted); a oneof member by its field name.
 * Never: accepts a JSON key the schema does not name (strict, like the codec), or puts a
 * field's value into an error.
 */
#ifndef SHAREHUB_JSON_H
#define SHAREHUB_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "error.h"

/* Parses JSON text into a new message of type d (free with protobuf_c_message_free_unpacked
 * (msg, NULL)). Errors: SH_E_MALFORMED (not JSON; the detail gives the parser's reason),
 * SH_E_BAD_FIELD (unknown key, wrong type, unknown enum name, bad id text: the detail names
 * the path), SH_E_TOO_LARGE (text over 1 MiB), SH_E_NOMEM. The message is not validated:
 * run sh_envelope_validate on an Envelope. */
sh_err sh_json_to_message(const char *text, size_t len, const ProtobufCMessageDescriptor *d,
                          ProtobufCMessage **out, sh_error *err);

/* Writes msg as JSON into a new malloc'd string (free()); fields at their default value are
 * left out. pretty: indented. Returns NULL when out of memory. */
char *sh_json_from_message(const ProtobufCMessage *msg, int pretty);

#endif
