/*
 * synth.h — synthetic children and events, for tests, the demo and benchmarks.
 *
 * Owns: generation of obviously synthetic, valid-format data: NHS numbers from the
 * never-issued 999 range, UPNs with correct check letters, names marked ZZTEST.
 * Never: is called on a real data path, or produces anything that could be a real person.
 * Deterministic from the caller's rng seed, so a failing test can be replayed.
 */
#ifndef SHAREHUB_SYNTH_H
#define SHAREHUB_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ident.h"

typedef struct sh_synth_child {
    char nhs_number[SH_NHS_LEN + 1];
    char upn[SH_UPN_LEN + 1];
    char la_child_id[16];
    char given_name[16];
    char family_name[24];
    char date_of_birth[11];
    char responsible_la[4];
} sh_synth_child;

/* Synthetic child number index (mod SH_SYNTH_INDEXES) of local authority la (a DfE code such
 * as "881"): its NHS number, UPN and LA child id differ from every other index's. */
void sh_synth_child_at(uint64_t index, const char *la, sh_synth_child *c);

/* A synthetic child of local authority la at a random index drawn from *rng. */
void sh_synth_child_make(uint64_t *rng, const char *la, sh_synth_child *c);

/* An encoded, valid v1 Envelope of event_type (1-13) about child c, published by source_org,
 * with a fresh event id and the given correlation id (16 bytes or NULL). ref_event_id (16
 * bytes) is the event a hub decision, access notification or receipt refers to; NULL makes
 * one up. narrative_bytes pads the main free-text field to about that size (0: a sentence).
 * *out is malloc'd (free()). Errors: SH_E_INVAL (unknown type), those of sh_envelope_encode. */
sh_err sh_synth_event(uint64_t *rng, int event_type, const sh_synth_child *c,
                      const char *source_org, const uint8_t *correlation_id,
                      const uint8_t *ref_event_id, size_t narrative_bytes, uint8_t **out,
                      size_t *len, sh_error *err);

#endif
