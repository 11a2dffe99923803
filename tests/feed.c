/*
 * feed.c — the reliability programs' publisher (feed.h).
 *
 * Owns: the events it has sent. Never: counts an event as sent before the agent answered it.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "feed.h"

static int s_feed_grow(feed *f)
{
    if (f->n < f->cap) return 0;
    size_t cap = f->cap ? f->cap * 2 : 4096;
    void *a = realloc(f->id, cap * 16), *b = a ? realloc(f->nhs, cap * 11) : NULL;
    if (a) f->id = a;
    if (b) f->nhs = b;
    if (!a || !b) return -1;
    f->cap = cap;
    return 0;
}

/* Makes the next event pending unless one is. 0, or -1. */
int feed_pending(feed *f)
{
    if (f->pending) return 0;
    if (s_feed_grow(f)) return -1;
    int type = rig_rand(&f->rng) % 10 < 7 ? 0 : 1;
    f->pending = rig_publish_request(&f->rng, type, f->id[f->n], f->nhs[f->n]);
    if (!f->pending) return -1;
    f->n++;
    return 0;
}

/* Sends the pending event (making one first if none): 1 answered and accepted, 0 no answer
 * (resend later), -1 refused (a failure: every event here is valid). */
int feed_one(rig *r, feed *f)
{
    if (feed_pending(f)) return -1;
    json_object *o = rig_call(r, RIG_PUB, f->pending, 500), *v;
    if (!o) {
        f->lost_answers++;
        return 0;
    }
    int ok = json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
    if (!ok) { /* (a resend of an event the agent holds is answered ok: "already accepted") */
        fprintf(stderr, "publish refused: %s\n", json_object_to_json_string(o));
        json_object_put(o);
        return -1;
    }
    json_object_put(o);
    free(f->pending);
    f->pending = NULL;
    return 1;
}

void feed_free(feed *f)
{
    free(f->id);
    free(f->nhs);
    free(f->pending);
}

/* Waits until every agent is connected and the counts reach what the feed implies: the hub
 * holds every event, RAJ every concern (the types are in the ledger's policy), the publisher
 * a receipt for each copy. Returns 0, or -1 after timeout_ms. */
int feed_settle(rig *r, size_t events, int timeout_ms)
{
    int64_t end = rig_ms() + timeout_ms;
    long last[RIG_N] = {0};
    int stable = 0;
    while (rig_ms() < end) {
        long ob[RIG_N] = {0}, rc[RIG_N] = {0};
        int conn = 1, same = 1;
        for (int i = 1; i < RIG_N; i++) {
            int c;
            if (rig_status(r, i, &ob[i], &rc[i], &c) || c != 1) conn = 0;
            same &= rc[i] == last[i];
            last[i] = rc[i];
        }
        /* done when the outbox is empty, the hub has every event, and nothing moved for 2 s
         * (RAJ's and the publisher's counts depend on the mix, checked by the ledger) */
        stable = conn && ob[RIG_PUB] == 0 && (size_t)rc[RIG_HUB] >= events && same ? stable + 1 : 0;
        if (stable >= 8) return 0;
        usleep(250 * 1000);
    }
    return -1;
}

/* Publishes n events through the publisher's agent, each answered before the next. */
int feed_n(rig *r, feed *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = 0;
        for (int tries = 0; got == 0 && tries < 20; tries++)
            got = feed_one(r, f);
        if (got != 1) return -1;
    }
    return 0;
}
