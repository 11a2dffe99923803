/*
 * publish.c — PUBLISH: an agent's event is decoded and checked (its source is the key that
 * sent it), deduplicated by event id, decided for every enrolled organisation under the
 * policy (with the consent and school on record), minimised for each permitted recipient,
 * queued, stored and audited; the CONFIRM carries one outcome line per recipient named.
 *
 * Owns: the events database. Never: queues a field an ISP does not allow; confirms before
 * the batch commits (reply.c sends after the commit); believes source_org over the key.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "clock.h"
#include "decide.h"
#include "minimise.h"

/* The sender of a stored event, into out; 0 when found. */
static int s_event_sender(sh_broker *b, sh_txn *t, const uint8_t *id, size_t idlen, char *out,
                          size_t cap, sh_buf *buf)
{
    sh_error err;
    sh_broker_event ev;
    if (idlen != 16 || sh_txn_get(t, b->events, id, 16, buf, &err) != SH_OK ||
        sh_broker_event_parse(buf->data, buf->len, &ev))
        return -1;
    snprintf(out, cap, "%s", ev.sender);
    return 0;
}

/* Whether raw[0..len) is the event a stored record holds: its bytes, or once the broker's copy
 * is erased, their SHA-256. */
static int s_same_event(sh_broker *b, const uint8_t *id, const sh_broker_event *ev,
                        const uint8_t *raw, size_t len)
{
    if (ev->form == SH_EVENT_ERASED) {
        uint8_t sum[32];
        sh_sha256(raw, len, sum);
        return memcmp(sum, ev->env, 32) == 0;
    }
    if (ev->form == SH_EVENT_PLAIN) return ev->env_len == len && memcmp(ev->env, raw, len) == 0;
    sh_buf open = {0};
    int same = ev->env_len == len + SH_SHRED_OVERHEAD &&
               bk_keep_open(b, id, ev->env, ev->env_len, &open) == SH_OK && open.len == len &&
               memcmp(open.data, raw, len) == 0;
    sh_buf_free(&open);
    return same;
}

void bk_append(char *text, size_t *used, size_t cap, const char *fmt, ...)
{
    if (*used + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

/* Routes a receipt published by a recipient (READ, or STORED for up to 1 + SH_REPEATED_MAX
 * events of one sender) back to the original sender: only a recipient of every event it
 * names may send it. */
static sh_err s_route_receipt(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from,
                              const sh_envelope *e, const uint8_t *raw, size_t len, char *outcome,
                              size_t cap, sh_error *err)
{
    sh_buf buf = {0};
    sh_broker_event ev;
    const Sharehub__V1__DeliveryReceipt *dr = e->delivery_receipt;
    char sender[SH_ORG_MAX + 1] = "", needle[SH_ORG_MAX + 10];
    snprintf(needle, sizeof needle, "%s permit", from->code);
    sh_err rc = SH_OK;
    for (size_t k = 0; !rc && k <= dr->n_more_event_ids; k++) {
        const ProtobufCBinaryData *fid = k ? &dr->more_event_ids[k - 1] : &dr->for_event_id;
        const char *field = k ? "delivery_receipt.more_event_ids" : "delivery_receipt.for_event_id";
        rc = fid->len == 16 ? sh_txn_get(t, b->events, fid->data, 16, &buf, err)
                            : sh_error_set(err, SH_E_BAD_FIELD, "%s: want 16 bytes", field);
        if (rc == SH_E_NOT_FOUND) rc = sh_error_set(err, SH_E_UNKNOWN_EVENT, "%s", field);
        if (!rc && sh_broker_event_parse(buf.data, buf.len, &ev))
            rc = sh_error_set(err, SH_E_STORE_CORRUPT, "event record");
        if (rc) break;
        if (k == 0) snprintf(sender, sizeof sender, "%s", ev.sender);
        if (strcmp(sender, ev.sender) != 0) {
            rc = sh_error_set(err, SH_E_BAD_FIELD,
                              "%s: the events one receipt covers have one sender", field);
            break;
        }
        /* only a recipient of the event may report on it */
        int was = 0;
        for (size_t i = 0; i + strlen(needle) <= ev.outcome_len && !was; i++)
            was = (i == 0 || ev.outcome[i - 1] == '\n') &&
                  memcmp(ev.outcome + i, needle, strlen(needle)) == 0;
        if (!was)
            rc = sh_error_set(err, SH_E_DENY_PARTY, "%s did not receive that event", from->code);
    }
    /* an agent speaks for itself only: READ (one event) or STORED (DELIVERED and EXPIRED are
     * the broker's) */
    if (!rc && dr->status != SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_READ &&
        dr->status != SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_STORED)
        rc = sh_error_set(err, SH_E_BAD_FIELD,
                          "delivery_receipt.status: an agent's receipt is read or stored");
    else if (!rc && dr->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_READ &&
             dr->n_more_event_ids)
        rc = sh_error_set(err, SH_E_BAD_FIELD,
                          "delivery_receipt.more_event_ids: a read receipt covers one event");
    if (!rc)
        rc = bk_enqueue(b, t, seq, sender, e->event_id.data, from->code, SH_RULE_RECEIPT, 0, NULL,
                        0, NULL, raw, len, err);
    if (!rc) snprintf(outcome, cap, "%s permit receipt", sender);
    sh_buf_free(&buf);
    return rc;
}

/* A CONFIRM's outcome lines from text[0..len) ('\n'-separated): at most SH_OUTCOME_LINES_MAX;
 * when there are more, the last one sent is "more <n>", n the lines not sent (each is in the
 * broker's audit log). */
void bk_outcome_lines(bk_reply *r, const char *text, size_t len)
{
    size_t total = 0, sent = 0;
    for (size_t i = 0; i < len; i++)
        total += text[i] == '\n';
    total += len && text[len - 1] != '\n';
    const char *o = text, *end = text + len;
    while (o < end) {
        const char *nl = memchr(o, '\n', (size_t)(end - o));
        if (total > SH_OUTCOME_LINES_MAX && sent == SH_OUTCOME_LINES_MAX - 1) {
            bk_reply_addf(r, "more %zu", total - sent);
            return;
        }
        bk_reply_add(r, o, (size_t)((nl ? nl : end) - o));
        sent++;
        assert(sent <= SH_OUTCOME_LINES_MAX);
        o = nl ? nl + 1 : end;
    }
}

/* Audits the decision and, when it permits, queues the minimised copy; adds the outcome line.
 * A share with another authority's organisation is gathered for border.c instead. Non-zero (an
 * error code, in r->err) when the copy could not be queued. */
int bk_route_one(void *ctx, const sh_org *to, const sh_decision *dec)
{
    bk_route *r = ctx;
    sh_broker *b = r->b;
    sh_decision d = *dec;
    const uint8_t *id = r->e->event_id.data;
    const char *rule = d.isp ? sh_isp_rule(d.isp) : "-";
    const char *purpose = sh_enum_name(&sharehub__v1__purpose__descriptor, (int)r->e->purpose);
    if (to->sector == SH_SECTOR_PEER) return 0; /* a link, not a recipient */
    if (!d.permit) {
        if (r->overridden && d.code == SH_E_DENY_CONSENT)
            strncat(d.reason, " (withdrawn or refused on record)",
                    sizeof d.reason - strlen(d.reason) - 1);
        bk_audit_for(b, r->t, SH_AUDIT_DENY, SH_AUDIT_DENIED, d.code, id, r->child, r->from->code,
                     to->code, rule, purpose, d.reason);
        /* organisations no protocol names as recipients are audited, not listed; a recipient
         * the other authority named is always answered, in a receipt too */
        if (r->border || (d.code != SH_E_DENY_NO_ISP && d.code != SH_E_DENY_PARTY))
            bk_append(r->outcome, r->used, r->cap, "%s deny %d %s\n", to->code, (int)d.code, rule);
        if (r->border)
            return (int)bk_receipt(b, r->t, r->seq, (const uint8_t(*)[16])id, 1, r->from->code,
                                   to->code, SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DENIED,
                                   d.code, r->err);
        return 0;
    }
    if (to->authority) { /* crosses the border: queued once per authority (border.c) */
        r->out[r->nout++] = (bk_crossing){to, d};
        return 0;
    }
    if (!bk_subscribed(b, r->t, to->code, r->e->event_type, r->buf)) {
        bk_append(r->outcome, r->used, r->cap, "%s unsubscribed %s\n", to->code, rule);
        bk_audit_for(b, r->t, SH_AUDIT_SEND, SH_AUDIT_DENIED, 0, id, r->child, r->from->code,
                     to->code, rule, purpose,
                     "not queued: the recipient does not subscribe to this type");
        /* the sender is another authority's: it hears of it as of a denial */
        if (r->border)
            return (int)bk_receipt(b, r->t, r->seq, (const uint8_t(*)[16])id, 1, r->from->code,
                                   to->code, SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DENIED,
                                   SH_E_UNSUBSCRIBED, r->err);
        return 0;
    }
    size_t clen = 0, slack = r->len + SH_MINIMISE_SLACK;
    const uint8_t *src = r->raw;
    size_t slen = r->len;
    sh_err rc = SH_OK;
    if (r->limit) { /* what the sending authority allowed this recipient, first */
        rc = sh_minimise(r->raw, r->len, r->limit, r->nlimit, r->copy2, slack, &slen);
        src = r->copy2;
    }
    if (!rc) rc = sh_minimise(src, slen, d.items, d.n_items, r->copy, slack, &clen);
    if (rc) sh_error_set(r->err, rc, "minimising the copy for %s", to->code);
    uint8_t flags = d.state == SH_ISP_OVERDUE ? SH_DELIVERY_OVERDUE : 0;
    sh_retain keep = {0}; /* the recipient's retention under the protocol, in its DELIVER */
    if (d.retention && d.retention->count)
        keep = (sh_retain){(uint16_t)d.retention->count, d.retention->unit,
                           (uint8_t)d.retention->review};
    /* nothing withheld: the queue entry refers to the event's own (sealed) envelope */
    if (!rc && clen == r->len && memcmp(r->copy, r->raw, clen) == 0) flags |= SH_DELIVERY_WHOLE;
    if (!rc)
        rc = bk_enqueue(b, r->t, r->seq, to->code, id, r->from->code, rule, flags, &keep, r->day,
                        NULL, r->copy, clen, r->err);
    if (rc) return (int)rc;
    bk_append(r->outcome, r->used, r->cap, "%s permit %s%s\n", to->code, rule,
              flags & SH_DELIVERY_OVERDUE ? " overdue" : "");
    char detail[SH_POLICY_ITEMS_TEXT_MAX + 200], kt[40];
    size_t kn = sh_retain_format(&keep, kt, sizeof kt);
    size_t dn =
        (size_t)snprintf(detail, sizeof detail, "queued%s ground=%s%s%s%s%s items=",
                         flags & SH_DELIVERY_OVERDUE ? " overdue" : "", d.ground, kn ? " " : "",
                         kn ? kt : "", r->border ? " border=" : "", r->border ? r->border : "");
    sh_decision_items(&d, detail + dn, sizeof detail - dn);
    bk_audit_for(b, r->t, SH_AUDIT_SEND, SH_AUDIT_OK, 0, id, r->child, r->from->code, to->code,
                 rule, purpose, detail);
    return 0;
}

void bk_publish(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from, const uint8_t *raw,
                size_t len, const uint8_t *evd, size_t evlen, const bk_verdict *verdict,
                bk_reply *r)
{
    sh_error err = {0};
    sh_envelope *e = NULL;
    sh_buf buf = {0};
    const uint8_t *child = NULL;
    sh_err rc = sh_envelope_decode(raw, len, &e, &err);
    if (rc) {
        /* the event id, whenever the bytes hold one, lets a pipelining sender match the
         * refusal to its event (docs/protocol.md) */
        uint8_t peek[16];
        int has = sh_envelope_peek_id(raw, len, peek);
        bk_confirm(r, has ? peek : NULL, rc, err.detail);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, rc, has ? peek : NULL, NULL, from->code,
                 NULL, NULL, err.detail);
        return;
    }
    const uint8_t *id = e->event_id.data;
    bk_refs refs; /* the child's blinded references, made once for every use below */
    refs.n = sh_child_refs(b->store, e->child, refs.v);
    /* an unborn child's flag is carried by the mother's NHS number: not the child's own */
    refs.own = refs.n - (e->child && e->child->mother_nhs_number && e->child->mother_nhs_number[0]);
    child = refs.n ? refs.v[0] : NULL;
    if (strcmp(e->source_org, from->code) != 0) {
        bk_confirm(r, id, SH_E_SPOOFED_SOURCE, "source_org is not the authenticated organisation");
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_SPOOFED_SOURCE, id, child, from->code,
                 NULL, NULL, "source_org differs from the key's organisation");
        goto out;
    }
    /* what the sender says is what it signed (docs/evidence.md): the network process checked
     * the evidence and its signer (net.c) */
    if (verdict->kind == 'V') {
        bk_confirm(r, id, verdict->code, verdict->detail);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, verdict->code, id, child, from->code, NULL,
                 NULL, verdict->detail);
        goto out;
    }
    /* idempotent publish: the same bytes again are confirmed again, stored once */
    rc = sh_txn_get(t, b->events, id, 16, &buf, &err);
    if (rc == SH_OK) {
        sh_broker_event ev;
        if (sh_broker_event_parse(buf.data, buf.len, &ev) == 0 &&
            strcmp(ev.sender, from->code) == 0 && s_same_event(b, id, &ev, raw, len)) {
            bk_confirm(r, id, SH_OK, "duplicate: already accepted");
            bk_outcome_lines(r, ev.outcome, ev.outcome_len);
        } else {
            bk_confirm(r, id, SH_E_REPLAYED, "event_id was used for another event");
            bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_REPLAYED, id, child, from->code,
                     NULL, NULL, "event id reused with different content");
        }
        goto out;
    }
    if (rc != SH_E_NOT_FOUND) {
        bk_confirm(r, id, rc, err.detail);
        goto out;
    }

    bk_accept(b, t, seq, from, e, &refs, raw, len, evd, evlen, NULL, 0, NULL, r);
out:
    sh_envelope_free(e);
    sh_buf_free(&buf);
}

void bk_accept(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from, sh_envelope *e,
               const bk_refs *refs, const uint8_t *raw, size_t len, const uint8_t *evd,
               size_t evlen, const bk_named *named, size_t nnamed, const char *via, bk_reply *r)
{
    sh_error err = {0};
    sh_buf buf = {0};
    const uint8_t *id = e->event_id.data, *child = refs->n ? refs->v[0] : NULL;
    /* what the broker keeps of the event is sealed under the day it is erased (keep.c) */
    uint32_t day = bk_keep_day(b, sh_clock_ms());
    /* (room for every decision one event can make: not every organisation of the directory) */
    size_t nreg = sh_decide_max(b->registry), cap = 128 * (nreg + nnamed + 1), used = 0;
    char *outcome = calloc(1, cap);
    uint8_t *copy = malloc(len + SH_MINIMISE_SLACK), *copy2 = malloc(len + SH_MINIMISE_SLACK);
    bk_crossing *out = calloc(nreg + 1, sizeof *out);
    sh_err rc = SH_OK;
    if (!outcome || !copy || !copy2 || !out) {
        bk_confirm(r, id, SH_E_NOMEM, "out of memory");
        goto out;
    }
    char context[SH_DECIDE_CONTEXT_MAX];
    snprintf(context, sizeof context, "type=%s", sh_event_type_name(e->event_type));
    if (e->event_type == ET(DELIVERY_RECEIPT)) {
        rc = s_route_receipt(b, t, seq, from, e, raw, len, outcome, cap, &err);
        if (rc) {
            bk_confirm(r, id, rc, err.detail);
            bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, rc, id, NULL, from->code, NULL, NULL,
                     err.detail);
            goto out;
        }
        used = strlen(outcome);
    } else {
        char referrer[SH_ORG_MAX + 1] = "";
        if (e->event_type == ET(HUB_DECISION))
            s_event_sender(b, t, e->hub_decision->referral_event_id.data,
                           e->hub_decision->referral_event_id.len, referrer, sizeof referrer, &buf);
        int64_t now = sh_clock_ms();
        /* decide with the consent on record; the event's own bytes are what is stored */
        int overridden = 0, claimed = e->consent;
        char school[SH_ORG_MAX + 1];
        bk_school_lookup(b, t, refs, school);
        e->consent = bk_effective_consent(b, t, e, refs, &overridden);
        sh_decide_context_write(e, school, referrer, context);
        bk_route route = {b, t,       seq, from,  e,          raw, len, child, copy, copy2, NULL,
                          0, outcome, cap, &used, overridden, day, via, out,   0,    &buf,  &err};
        if (!named) {
            rc = (sh_err)sh_decide_all(b->policy, b->registry, e, from, referrer, school, now,
                                       bk_route_one, &route);
            if (!rc) rc = bk_border_out(&route);
        }
        for (size_t i = 0; named && !rc && i < nnamed; i++) {
            /* only what the sending authority's broker permitted, to whom it permitted it */
            const sh_org *to = sh_registry_by_code(b->registry, named[i].org);
            sh_decision d = {.code = SH_E_DENY_PARTY};
            sh_share sh = {
                e, from, to, referrer[0] ? referrer : NULL, now, school[0] ? school : NULL};
            if (to && !to->authority && to->sector != SH_SECTOR_PEER)
                sh_policy_decide(b->policy, &sh, &d);
            else
                snprintf(d.reason, sizeof d.reason, "%s is not an organisation this broker serves",
                         named[i].org);
            sh_org unknown = {.code = named[i].org};
            char border[SH_ORG_MAX + 72]; /* the audit's border=: the peer, and what permitted
                                             the share at the sending authority */
            snprintf(border, sizeof border, "%s:%s", via, named[i].rule);
            route.border = border;
            route.limit = named[i].items;
            route.nlimit = named[i].nitems;
            rc = (sh_err)bk_route_one(&route, to && !to->authority ? to : &unknown, &d);
        }
        if (rc) {
            bk_confirm(r, id, rc, err.detail);
            e->consent = claimed;
            goto out;
        }
        e->consent = claimed;
    }
    if (via) bk_append(context, &(size_t){strlen(context)}, sizeof context, " via=%s", via);
    if (used && outcome[used - 1] == '\n') outcome[--used] = '\0';
    size_t vlen = 0, sl = len + SH_SHRED_OVERHEAD;
    uint8_t *slot = NULL, *v = sh_broker_event_build(from->code, outcome, NULL, sl, SH_EVENT_SEALED,
                                                     &vlen, &slot);
    rc = v ? bk_keep_seal(b, id, day, raw, len, slot, sl, &err)
           : sh_error_set(&err, SH_E_NOMEM, "event");
    if (!rc) rc = sh_txn_put(t, b->events, id, 16, v, vlen, SH_PUT_NEW, &err);
    if (!rc && evlen) rc = bk_evidence_keep(b, t, id, evd, evlen, &err);
    free(v);
    /* a consent event also becomes the consent on record for later decisions */
    if (!rc && e->event_type == ET(CONSENT)) rc = bk_consent_record(b, t, e, refs, &err);
    if (!rc) rc = bk_school_record(b, t, e, from, refs, &err);
    if (!rc) rc = bk_links_record(b, t, refs, &err);
    if (rc) {
        bk_confirm(r, id, rc, err.detail);
        goto out;
    }
    bk_audit_for(b, t, SH_AUDIT_RECEIVE, SH_AUDIT_OK, 0, id, child, from->code, via, NULL,
                 e->event_type == ET(DELIVERY_RECEIPT)
                     ? NULL
                     : sh_enum_name(&sharehub__v1__purpose__descriptor, (int)e->purpose),
                 context);
    bk_confirm(r, id, SH_OK, "accepted");
    bk_outcome_lines(r, outcome, used);
out:
    sh_buf_free(&buf);
    free(outcome);
    free(copy);
    free(copy2);
    free(out);
}
