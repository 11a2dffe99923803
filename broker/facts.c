/*
 * facts.c — what the broker knows about a child from the events it has accepted, for later
 * decisions: the consent on record for each purpose (newest wins), the school of record, and
 * which of the child's identifiers were seen together (links), so that consent recorded under
 * one identifier governs an event that carries another. All are kept under blinded references
 * of the child's identifiers.
 *
 * Owns: the consent, school and links databases. Never: stores an identifier in the clear;
 * lets a recorded consent override a declared risk of significant harm, or turn a refusal into
 * consent (a record only ever withdraws or refuses, so a wrong link can only deny).
 */
#include <string.h>

#include "broker_int.h"

/* ---- identifiers seen together -------------------------------------------------------- */

#define LINKED_MAX 16 /* identifiers followed from one event: a child has a handful */

typedef struct s_linked {
    uint8_t v[LINKED_MAX][SH_BLIND_BYTES];
    int n;
} s_linked;

sh_err bk_links_record(sh_broker *b, sh_txn *t, const bk_refs *r, sh_error *err)
{
    uint8_t key[2 * SH_BLIND_BYTES];
    sh_buf v = {0};
    sh_err rc = SH_OK;
    for (int i = 0; i < r->own && !rc; i++)
        for (int j = 0; j < r->own && !rc; j++) {
            if (i == j || memcmp(r->v[i], r->v[j], SH_BLIND_BYTES) == 0) continue;
            memcpy(key, r->v[i], SH_BLIND_BYTES);
            memcpy(key + SH_BLIND_BYTES, r->v[j], SH_BLIND_BYTES);
            sh_error e2;
            /* (a link already known is not written again: no page dirtied for it) */
            if (sh_txn_get(t, b->links, key, sizeof key, &v, &e2) == SH_OK) continue;
            rc = sh_txn_put(t, b->links, key, sizeof key, "", 0, 0, err);
        }
    sh_buf_free(&v);
    return rc;
}

static int s_has(const s_linked *l, const uint8_t *ref)
{
    for (int i = 0; i < l->n; i++)
        if (memcmp(l->v[i], ref, SH_BLIND_BYTES) == 0) return 1;
    return 0;
}

/* The event's identifiers and every identifier linked to the child's own, directly or through
 * others (breadth first, at most LINKED_MAX); a mother's NHS number is kept, not followed. */
static void s_linked_refs(sh_broker *b, sh_txn *t, const bk_refs *r, s_linked *out)
{
    out->n = 0;
    for (int i = 0; i < r->own; i++)
        if (!s_has(out, r->v[i])) memcpy(out->v[out->n++], r->v[i], SH_BLIND_BYTES);
    sh_cursor *c = NULL;
    sh_error err;
    for (int i = 0; i < out->n && (c || sh_cursor_open(t, b->links, &c, &err) == SH_OK); i++) {
        uint8_t seek[SH_BLIND_BYTES];
        memcpy(seek, out->v[i], SH_BLIND_BYTES);
        sh_kv kv;
        for (sh_err rc = sh_cursor_key(c, SH_CURSOR_SEEK, seek, sizeof seek, &kv, &err);
             rc == SH_OK && kv.klen == 2 * SH_BLIND_BYTES &&
             memcmp(kv.key, seek, SH_BLIND_BYTES) == 0 && out->n < LINKED_MAX;
             rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err))
            if (!s_has(out, kv.key + SH_BLIND_BYTES))
                memcpy(out->v[out->n++], kv.key + SH_BLIND_BYTES, SH_BLIND_BYTES);
    }
    sh_cursor_close(&c);
    for (int i = r->own; i < r->n && out->n < LINKED_MAX; i++)
        if (!s_has(out, r->v[i])) memcpy(out->v[out->n++], r->v[i], SH_BLIND_BYTES);
}

/* ---- consent on record --------------------------------------------------------------- */

/* Records a consent event's state for each of the child's identifiers, newest wins. */
sh_err bk_consent_record(sh_broker *b, sh_txn *t, const sh_envelope *e, const bk_refs *r,
                         sh_error *err)
{
    static const int state[] = {
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_RECORDED] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN,
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_WITHDRAWN] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_WITHDRAWN,
        [SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_REFUSED] =
            SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_REFUSED,
    };
    const Sharehub__V1__Consent *c = e->consent_change;
    if ((unsigned)c->action >= sizeof state / sizeof state[0] || !state[c->action]) return SH_OK;
    uint8_t key[33], val[9];
    const int n = r->n;
    sh_buf old = {0};
    sh_err rc = SH_OK;
    for (int i = 0; i < n && !rc; i++) {
        memcpy(key, r->v[i], 32);
        key[32] = (uint8_t)c->scope;
        sh_error e2;
        if (sh_txn_get(t, b->consent, key, sizeof key, &old, &e2) == SH_OK && old.len == 9 &&
            (int64_t)sh_be64_get(old.data + 1) > e->occurred_at_ms)
            continue; /* a newer record stands */
        val[0] = (uint8_t)state[c->action];
        sh_be64_put(val + 1, (uint64_t)e->occurred_at_ms);
        rc = sh_txn_put(t, b->consent, key, sizeof key, val, sizeof val, 0, err);
    }
    sh_buf_free(&old);
    return rc;
}

/* The consent the decision must use: a withdrawal or refusal on record for this child and
 * purpose overrides an event that claims consent was given. A declared risk of significant
 * harm is left as it is: protection from harm comes before consent. */
int bk_effective_consent(sh_broker *b, sh_txn *t, const sh_envelope *e, const bk_refs *r,
                         int *recorded)
{
    *recorded = 0;
    if (e->consent != SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN) return (int)e->consent;
    uint8_t key[33];
    s_linked all; /* consent follows the child: through every identifier linked to these */
    s_linked_refs(b, t, r, &all);
    int n = all.n, result = (int)e->consent;
    int64_t newest = -1;
    sh_buf v = {0};
    for (int i = 0; i < n; i++) {
        memcpy(key, all.v[i], 32);
        key[32] = (uint8_t)e->purpose;
        sh_error err;
        if (sh_txn_get(t, b->consent, key, sizeof key, &v, &err) == SH_OK && v.len == 9 &&
            (int64_t)sh_be64_get(v.data + 1) > newest) {
            newest = (int64_t)sh_be64_get(v.data + 1);
            result = v.data[0] == SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_GIVEN ? (int)e->consent
                                                                                   : v.data[0];
            *recorded = result != (int)e->consent;
        }
    }
    sh_buf_free(&v);
    return result;
}

/* ---- school of record ------------------------------------------------------------------ */

/* An education organisation that publishes about a child becomes the child's school of
 * record, under each identifier the event carries; the latest publisher wins. */
sh_err bk_school_record(sh_broker *b, sh_txn *t, const sh_envelope *e, const sh_org *from,
                        const bk_refs *r, sh_error *err)
{
    if (from->sector != SH_SECTOR_EDUCATION || !e->child) return SH_OK;
    const int n = r->n;
    sh_err rc = SH_OK;
    for (int i = 0; i < n && !rc; i++)
        rc = sh_txn_put(t, b->school, r->v[i], 32, from->code, strlen(from->code), 0, err);
    return rc;
}

/* The child's school of record, found through any of the event's identifiers; "" if none. */
void bk_school_lookup(sh_broker *b, sh_txn *t, const bk_refs *r, char out[SH_ORG_MAX + 1])
{
    const int n = r->n;
    sh_buf v = {0};
    out[0] = '\0';
    for (int i = 0; i < n && !out[0]; i++) {
        sh_error err;
        if (sh_txn_get(t, b->school, r->v[i], 32, &v, &err) == SH_OK && v.len <= SH_ORG_MAX) {
            memcpy(out, v.data, v.len);
            out[v.len] = '\0';
        }
    }
    sh_buf_free(&v);
}
