/*
 * minimise.h — the copy of an event one recipient may see.
 *
 * Owns: filtering an encoded, validated Envelope down to the header fields and the data items
 * an ISP allows, at the protobuf wire level: a withheld field is absent from the output, not
 * blanked. Never: adds, reorders or rewrites a field it keeps.
 */
#ifndef SHAREHUB_MINIMISE_H
#define SHAREHUB_MINIMISE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SH_MINIMISE_DEPTH 6  /* deepest message nesting followed (the schema's is 3) */
#define SH_MINIMISE_SLACK 64 /* out needs len + this much room while it works */

/* Writes into out (capacity >= len + SH_MINIMISE_SLACK) the envelope in[0..len) with only: the
 * header fields (event id, schema version, event type, source, times, purpose, lawful basis,
 * consent, correlation id), the body field itself (so the event type still matches it), and the
 * data items named (dotted paths as in docs/policy.md; naming a message keeps all of it). in must
 * have passed sh_envelope_decode. Errors: SH_E_MALFORMED, SH_E_RANGE. */
sh_err sh_minimise(const uint8_t *in, size_t len, const char *const *items, size_t n_items,
                   uint8_t *out, size_t cap, size_t *outlen);

#endif
