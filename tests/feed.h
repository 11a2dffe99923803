/*
 * feed.h — the publisher of the reliability programs: a host system in front of R1L's agent
 * that publishes synthetic events through its local socket, resending each under the same id
 * until the agent answers, and waits for the rig to settle (tests/rig.h).
 */
#ifndef SHAREHUB_FEED_H
#define SHAREHUB_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "rig.h"

/* What the publisher (a host system in front of R1L's agent) has sent: every event it tried,
 * each resent under the same id until the agent answered (accepted, or "already accepted"
 * when the first answer was lost with a killed agent). */
typedef struct feed {
    uint8_t (*id)[16];
    char (*nhs)[11];
    size_t n, cap;
    char *pending; /* the request waiting for an answer */
    uint64_t rng;
    size_t lost_answers;
} feed;

/* Makes the next event the pending one, unless one is pending already; 0, or -1. */
int feed_pending(feed *f);

/* Sends the pending event (making one first if none): 1 answered and accepted (or already
 * accepted), 0 no answer (resend later), -1 refused (a failure: every event here is valid). */
int feed_one(rig *r, feed *f);

/* Publishes n events, each answered before the next; 0, or -1. */
int feed_n(rig *r, feed *f, size_t n);

/* Waits until every agent is connected and the counts reach what the feed implies; 0, or -1
 * after timeout_ms. */
int feed_settle(rig *r, size_t events, int timeout_ms);

void feed_free(feed *f);

/* `sharehub-reliability hostile` (hostile.c). */
int rel_hostile(const char *bindir, uint64_t seed);

#endif
