/*
 * ledger.h — what the rig's stores hold, counted after the processes have stopped: the
 * publisher's sent events and the broker's answers, each recipient's inbox, the receipts the
 * publisher got back. The reliability programs compare it with what they published.
 *
 * Owns: the counting. Never: writes to a store (each is opened, read in one transaction, and
 * closed).
 */
#ifndef SHAREHUB_LEDGER_H
#define SHAREHUB_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "rig.h"

typedef struct ledger_result {
    size_t published;  /* distinct events the test had accepted by the publisher's agent */
    size_t confirmed;  /* sent events the broker confirmed (outcome recorded, not refused) */
    size_t refused;    /* sent events the broker refused with a final code */
    size_t delivered;  /* confirmed events held exactly once by every permitted recipient */
    size_t copies;     /* (event, recipient) deliveries expected */
    size_t lost;       /* accepted but never confirmed, or a permitted copy missing */
    size_t duplicated; /* an inbox holding an event twice, or a receipt twice */
    size_t leaked;     /* an event held by a recipient no protocol permits */
    size_t receipts;   /* delivery receipts back at the publisher */
    size_t resent;     /* confirmations that said "duplicate: already accepted" */
    size_t outbox;     /* still waiting in the publisher's outbox */
} ledger_result;

/* Which rig recipients the rig's policy permits for an event type (bit 1 << RIG_HUB, ...). */
unsigned ledger_permitted(int event_type);

/* Counts, for the events ids[0..n) the test saw accepted (16 bytes each). 0, or -1 when a
 * store cannot be read (reason on stderr). */
int ledger_count(rig *r, const uint8_t (*ids)[16], size_t n, ledger_result *out);

/* Prints the figures and the problems; returns 0 when nothing was lost, duplicated or leaked
 * and nothing is left in the outbox. */
int ledger_report(const ledger_result *l);

/* Verifies every store's audit chain with `sharehub audit verify`, then the agents' chains
 * against the broker's witness records (--witness). 0 when all verify. */
int ledger_verify_audit(rig *r);

/* Searches every log the rig's processes wrote for any of the NHS numbers (11 bytes each),
 * the synthetic name marker and the narrative marker. Returns the number of hits. */
size_t ledger_grep_logs(rig *r, const char (*nhs)[11], size_t n);

#endif
