/*
 * border.c — events crossing to and from other local authorities (docs/federation.md).
 *
 * Out: the shares this broker's policy permits with organisations the federation directory
 * places under another authority are queued for that authority's peer, once per event: one
 * copy holding what any of its recipients may see, and for each recipient a to= token naming
 * it, the protocol that permitted it and the data items it may see. In: a peer's FORWARD is
 * one such delivery of the other authority's; it is checked (the peer speaks for its own
 * authority's organisations only; the sender's evidence verifies), decided again under this
 * broker's policy for the named recipients only, each copy minimised again, and stored and
 * audited like a PUBLISH. A denial here goes back to the sender as a DENIED receipt.
 *
 * Owns: the to= token format. Never: delivers to a recipient the sending authority did not
 * name, or a field it did not permit that recipient; forwards an event a peer sent on to a
 * third authority.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"
#include "clock.h"
#include "decide.h"
#include "directory.h"
#include "minimise.h"

sh_err bk_border_out(bk_route *r)
{
    sh_broker *b = r->b;
    const uint8_t *id = r->e->event_id.data;
    const char *purpose = sh_enum_name(&sharehub__v1__purpose__descriptor, (int)r->e->purpose);
    size_t nitems = 0, tcap = 1;
    for (size_t i = 0; i < r->nout; i++) {
        nitems += r->out[i].d.n_items;
        tcap += 96 + SH_POLICY_ITEMS_TEXT_MAX;
    }
    const char **items = calloc(nitems + 1, sizeof *items);
    char *to = malloc(tcap), *done = calloc(r->nout + 1, 1);
    sh_err rc = items && to && done ? SH_OK : sh_error_set(r->err, SH_E_NOMEM, "border");
    for (size_t i = 0; !rc && i < r->nout; i++) {
        if (done[i]) continue;
        const char *la = r->out[i].to->authority;
        const sh_org *peer = sh_registry_peer(b->registry, la);
        size_t n = 0, tl = 0;
        to[0] = '\0';
        for (size_t k = i; k < r->nout; k++) {
            const bk_crossing *c = &r->out[k];
            if (strcmp(c->to->authority, la) != 0) continue;
            for (size_t j = 0; j < c->d.n_items; j++)
                items[n++] = c->d.items[j];
            bk_append(to, &tl, tcap, "%sto=%s/%s/", tl ? " " : "", c->to->code,
                      sh_isp_rule(c->d.isp));
            tl += sh_decision_items(&c->d, to + tl, tcap - tl);
        }
        size_t clen = 0;
        uint8_t flags = 0;
        if (peer) {
            /* one copy for the authority: what any of its recipients may see; the other
             * broker cuts it down for each (their items are in the tokens) */
            rc = sh_minimise(r->raw, r->len, items, n, r->copy, r->len + SH_MINIMISE_SLACK, &clen);
            if (!rc && clen == r->len && memcmp(r->copy, r->raw, clen) == 0)
                flags |= SH_DELIVERY_WHOLE;
            if (!rc)
                rc = bk_enqueue(b, r->t, r->seq, peer->code, id, r->from->code, "border", flags,
                                NULL, r->day, to, r->copy, clen, r->err);
            if (rc) break;
        }
        for (size_t k = i; k < r->nout; k++) {
            const bk_crossing *c = &r->out[k];
            if (strcmp(c->to->authority, la) != 0) continue;
            done[k] = 1;
            const char *rule = sh_isp_rule(c->d.isp);
            char detail[SH_POLICY_ITEMS_TEXT_MAX + 160];
            if (!peer) {
                snprintf(detail, sizeof detail,
                         "%s is served by authority %s, and no peer link to it is enrolled",
                         c->to->code, la);
                bk_audit_for(b, r->t, SH_AUDIT_DENY, SH_AUDIT_DENIED, SH_E_DENY_NO_PEER, id,
                             r->child, r->from->code, c->to->code, rule, purpose, detail);
                bk_append(r->outcome, r->used, r->cap, "%s deny %d %s\n", c->to->code,
                          (int)SH_E_DENY_NO_PEER, rule);
                continue;
            }
            bk_append(r->outcome, r->used, r->cap, "%s permit %s\n", c->to->code, rule);
            size_t dn = (size_t)snprintf(detail, sizeof detail,
                                         "queued via=%s ground=%s items=", peer->code, c->d.ground);
            sh_decision_items(&c->d, detail + dn, sizeof detail - dn);
            bk_audit_for(b, r->t, SH_AUDIT_SEND, SH_AUDIT_OK, 0, id, r->child, r->from->code,
                         c->to->code, rule, purpose, detail);
        }
    }
    free(items);
    free(to);
    free(done);
    return rc;
}

/* Reads the to= tokens of a FORWARD's flags into named (up to cap); the count, or -1 when a
 * token is malformed. Other tokens are skipped, as an agent skips those it does not know. */
static int s_tokens(const uint8_t *flags, size_t len, char *text, bk_named *named, size_t cap)
{
    memcpy(text, flags, len);
    text[len] = '\0';
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(text, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        if (strncmp(tok, "to=", 3) != 0) continue;
        char *org = tok + 3, *rule = strchr(org, '/'), *items = rule ? strchr(rule + 1, '/') : NULL;
        if (!items || n == cap) return -1;
        *rule++ = '\0';
        *items++ = '\0';
        if (sh_org_code_check(org) != SH_OK) return -1;
        int again = 0; /* (a recipient named twice is decided once) */
        for (size_t k = 0; k < n && !again; k++)
            again = strcmp(named[k].org, org) == 0;
        if (again) continue;
        bk_named *m = &named[n++];
        if (strlen(rule) >= sizeof m->rule) return -1;
        snprintf(m->org, sizeof m->org, "%s", org);
        snprintf(m->rule, sizeof m->rule, "%s", rule);
        m->nitems = 0;
        for (char *s2 = NULL, *it = strtok_r(items, ",", &s2); it; it = strtok_r(NULL, ",", &s2)) {
            if (m->nitems == BK_NAMED_ITEMS || !sh_policy_item_valid(it)) return -1;
            m->items[m->nitems++] = it;
        }
    }
    return (int)n;
}

/* A refusal: answered, audited; the peer acknowledges it (it is not retried). */
static void s_refuse(sh_broker *b, sh_txn *t, const sh_org *peer, const uint8_t *id,
                     const char *sender, sh_err code, const char *detail, bk_reply *r)
{
    bk_confirm(r, id, code, detail);
    bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, code, id, NULL,
             sender && sender[0] ? sender : "-", peer->code, NULL, detail);
}

/* A receipt from the other authority for one of this authority's senders (a DELIVERED,
 * DENIED or EXPIRED of its broker's, or a READ or STORED of a recipient's): queued for it. */
static void s_receipt_in(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *peer,
                         const char *sender, const sh_envelope *e, const uint8_t *raw, size_t len,
                         const uint8_t *ev, size_t evlen, const bk_named *to, bk_reply *r)
{
    sh_error err = {0};
    const uint8_t *id = e->event_id.data;
    const sh_org *dst = sh_registry_by_code(b->registry, to->org);
    if (!dst || dst->authority || dst->sector == SH_SECTOR_PEER) {
        s_refuse(b, t, peer, id, sender, SH_E_DENY_PARTY,
                 "a receipt for an organisation this broker does not serve", r);
        return;
    }
    char outcome[SH_ORG_MAX + 24];
    snprintf(outcome, sizeof outcome, "%s permit receipt", dst->code);
    sh_err rc = bk_enqueue(b, t, seq, dst->code, id, sender, SH_RULE_RECEIPT, 0, NULL, 0, NULL, raw,
                           len, &err);
    size_t vlen = 0;
    uint8_t *v =
        rc ? NULL : sh_broker_event_build(sender, outcome, raw, len, SH_EVENT_PLAIN, &vlen, NULL);
    if (!rc && !v) rc = sh_error_set(&err, SH_E_NOMEM, "event");
    if (!rc) rc = sh_txn_put(t, b->events, id, 16, v, vlen, SH_PUT_NEW, &err);
    if (!rc && evlen) rc = bk_evidence_keep(b, t, id, ev, evlen, &err);
    free(v);
    if (rc) {
        bk_confirm(r, id, rc, err.detail);
        return;
    }
    char detail[80];
    snprintf(detail, sizeof detail, "type=delivery_receipt via=%s", peer->code);
    bk_audit(b, t, SH_AUDIT_RECEIVE, SH_AUDIT_OK, 0, id, NULL, sender, peer->code, NULL, detail);
    bk_confirm(r, id, SH_OK, "accepted");
    bk_reply_add(r, outcome, strlen(outcome));
}

/* A link's FORWARDs are taken in its order only: each names the link's run (8 random bytes) and
 * its place in it (u64 BE, from 0), and this broker keeps the last it took of each peer in its
 * state, in the same transaction. One out of sequence — a broker restarted or a commit failed
 * with FORWARDs in flight, which would otherwise let a later event in before an earlier one —
 * is answered 705 and not taken: the link starts a new run from the sending broker's oldest
 * unacknowledged delivery. 0 when in sequence (and recorded). */
static int s_in_sequence(sh_broker *b, sh_txn *t, const sh_org *peer, const uint8_t *id,
                         const uint8_t seq[16], bk_reply *r)
{
    char key[SH_ORG_MAX + 8];
    int kl = snprintf(key, sizeof key, "fwd:%s", peer->code);
    sh_buf buf = {0};
    sh_error err;
    sh_err rc = sh_txn_get(t, b->state, key, (size_t)kl, &buf, &err);
    uint64_t want = 0, got = sh_be64_get(seq + 8);
    if (rc == SH_OK && buf.len == 16 && memcmp(buf.data, seq, 8) == 0)
        want = sh_be64_get(buf.data + 8) + 1;
    sh_buf_free(&buf);
    if (rc && rc != SH_E_NOT_FOUND) {
        bk_confirm(r, id, rc, err.detail);
        return -1;
    }
    if (got != want) {
        bk_confirm(r, id, SH_E_UNAVAILABLE,
                   "FORWARD out of sequence: the link must start over from the oldest delivery");
        return -1;
    }
    rc = sh_txn_put(t, b->state, key, (size_t)kl, seq, 16, 0, &err);
    if (rc) bk_confirm(r, id, rc, err.detail);
    return rc ? -1 : 0;
}

void bk_forward(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *peer, const uint8_t *body,
                size_t len, bk_reply *r)
{
    const uint8_t *f[SH_DELIVER_FIELDS + 1];
    size_t fl[SH_DELIVER_FIELDS + 1], used = 0, count = 0;
    sh_error err = {0};
    if (peer->sector != SH_SECTOR_PEER) {
        s_refuse(b, t, peer, NULL, NULL, SH_E_PROTOCOL,
                 "FORWARD: only a peer (another authority's broker) forwards", r);
        return;
    }
    if (sh_wire_body_read(body, len, SH_DELIVER_FIELDS + 1, f, fl, SH_DELIVER_FIELDS + 1, &used,
                          &count) ||
        count != SH_DELIVER_FIELDS + 1 || used != len || fl[0] != 16 || fl[1] == 0 ||
        fl[1] > SH_ORG_MAX || fl[6] != 16) {
        s_refuse(b, t, peer, NULL, NULL, SH_E_PROTOCOL,
                 "FORWARD: want one body of seven fields: id, sender, rule, flags, copy, "
                 "evidence, and the link's sequence (16 bytes)",
                 r);
        return;
    }
    if (s_in_sequence(b, t, peer, f[0], f[6], r)) return;
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "peer", peer->code);
    sh_tally_add(&b->stage.forwards, lab, 1);
    const uint8_t *id = f[0];
    char sender[SH_ORG_MAX + 1];
    memcpy(sender, f[1], fl[1]);
    sender[fl[1]] = '\0';
    /* the peer speaks for its own authority's organisations and broker only */
    const sh_org *from = sh_registry_by_code(b->registry, sender);
    const sh_directory *dir = sh_registry_directory(b->registry, NULL);
    const sh_authority *a = dir ? sh_directory_find(dir, peer->la_code) : NULL;
    int is_broker = a && strcmp(a->broker_code, sender) == 0;
    if (!is_broker && (!from || !from->authority || strcmp(from->authority, peer->la_code) != 0)) {
        s_refuse(b, t, peer, id, sender, SH_E_SPOOFED_SOURCE,
                 "the sender is not an organisation of the peer's authority", r);
        return;
    }
    /* a to= token a recipient: as many as a protocol's sector party names in that authority */
    size_t ntok = 1;
    for (size_t i = 0; i + 3 <= fl[3]; i++)
        ntok += memcmp(f[3] + i, "to=", 3) == 0;
    bk_named *named = calloc(ntok, sizeof *named);
    char *text = malloc(fl[3] + 1);
    sh_envelope *e = NULL;
    sh_buf buf = {0};
    int n = text && named ? s_tokens(f[3], fl[3], text, named, ntok) : -1;
    int receipt = fl[2] == strlen(SH_RULE_RECEIPT) && !memcmp(f[2], SH_RULE_RECEIPT, fl[2]);
    sh_err rc = SH_OK;
    if (n <= 0 || (receipt && n != 1)) {
        s_refuse(b, t, peer, id, sender, SH_E_PROTOCOL,
                 "FORWARD: flags want one to=ORG/RULE/ITEMS token a recipient (one for a receipt)",
                 r);
        goto out;
    }
    rc = sh_envelope_decode_minimised(f[4], fl[4], &e, &err);
    if (!rc && (e->event_id.len != 16 || memcmp(e->event_id.data, id, 16) != 0))
        rc = sh_error_set(&err, SH_E_BAD_FIELD, "event_id: not the FORWARD's id");
    if (!rc && strcmp(e->source_org, sender) != 0 && !(receipt && is_broker))
        rc = sh_error_set(&err, SH_E_SPOOFED_SOURCE, "source_org is not the FORWARD's sender");
    if (!rc && receipt != (e->event_type == ET(DELIVERY_RECEIPT)))
        rc = sh_error_set(&err, SH_E_BAD_FIELD, "rule: receipt, for a receipt only");
    /* what the sender says is what it signed: its evidence, for the copy as it arrived */
    if (!rc && !(receipt && is_broker)) {
        sh_evidence_batch eb;
        uint8_t seed[SH_EVIDENCE_SEED_BYTES];
        int kind = sh_evidence_kind(f[5], fl[5]);
        rc = kind == SH_EVIDENCE_COPY
                 ? sh_evidence_check_copy(f[4], fl[4], f[5], fl[5], &eb, &b->forwarded, &err)
                 : sh_evidence_check_sender(f[4], fl[4], f[5], fl[5], &eb, seed, &b->forwarded,
                                            &err);
        sh_wipe(seed, sizeof seed);
        int ok = !from || !from->nsign_keys;
        for (size_t i = 0; !rc && from && i < from->nsign_keys; i++)
            ok |= memcmp(from->sign_keys[i], eb.signer, SH_SIGN_PUB_BYTES) == 0;
        if (!rc && !ok)
            rc = sh_error_set(&err, SH_E_EVIDENCE,
                              "evidence: signed by a key the directory does not give %s", sender);
    }
    if (rc) {
        s_refuse(b, t, peer, id, sender, rc, err.detail, r);
        goto out;
    }
    /* the same event again (the link redelivered it): the first answer again */
    rc = sh_txn_get(t, b->events, id, 16, &buf, &err);
    if (rc == SH_OK) {
        sh_broker_event ev;
        if (sh_broker_event_parse(buf.data, buf.len, &ev) == 0 && strcmp(ev.sender, sender) == 0) {
            bk_confirm(r, id, SH_OK, "duplicate: already accepted");
            bk_outcome_lines(r, ev.outcome, ev.outcome_len);
        } else {
            s_refuse(b, t, peer, id, sender, SH_E_REPLAYED, "event_id was used for another event",
                     r);
        }
        goto out;
    }
    if (rc != SH_E_NOT_FOUND) {
        bk_confirm(r, id, rc, err.detail);
        goto out;
    }
    if (receipt) {
        s_receipt_in(b, t, seq, peer, sender, e, f[4], fl[4], f[5], fl[5], &named[0], r);
        goto out;
    }
    bk_refs refs;
    refs.n = sh_child_refs(b->store, e->child, refs.v);
    refs.own = refs.n - (e->child && e->child->mother_nhs_number && e->child->mother_nhs_number[0]);
    bk_accept(b, t, seq, from, e, &refs, f[4], fl[4], f[5], fl[5], named, (size_t)n, peer->code, r);
out:
    free(named);
    free(text);
    sh_envelope_free(e);
    sh_buf_free(&buf);
}
