/*
 * triage.c — the Children and Families Hub's triage as a state machine (docs/workspace.md):
 * a received request for support or safeguarding concern is open, assigned, then decided —
 * once. Changing a decision is an amendment with a reason, linked to the decision it changes;
 * the referrer receives it. The level of need and the outcome must agree (the hub's table,
 * s_fits); a team manager may record another pair as an exception, with a reason that is kept.
 *
 * The decision (a hub_decision event in the outbox) and the item's new state are written in
 * one transaction: a decision is never sent for an item that stays open, nor recorded unsent.
 *
 * Owns: nothing stored of its own (the item is frontdoor.c's). Never: decides at an agent that
 * is not the hub; decides on a decision, a receipt or anything the hub sent; decides twice.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"
#include "json.h"

#define OUTCOME(x) SHAREHUB__V1__HUB_OUTCOME__HUB_OUTCOME_##x

/* The outcomes that fit each level of need (DOMAIN: "Decisions the hub can record"). */
static const int s_fits[5][4] = {
    {0},
    {OUTCOME(NO_FURTHER_ACTION), OUTCOME(UNIVERSAL_SERVICES)},
    {OUTCOME(UNIVERSAL_SERVICES), OUTCOME(EARLY_HELP)},
    {OUTCOME(FAMILY_SOLUTIONS), OUTCOME(SECTION_17_ASSESSMENT)},
    {OUTCOME(SECTION_17_ASSESSMENT), OUTCOME(SECTION_47_STRATEGY), OUTCOME(IMMEDIATE_PROTECTION)},
};

static int s_fit(int level, int outcome)
{
    for (int i = 0; i < 4 && s_fits[level][i]; i++)
        if (s_fits[level][i] == outcome) return 1;
    return 0;
}

/* "universal_services, early_help" for a level. */
static void s_fitting(int level, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < 4 && s_fits[level][i]; i++) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", i ? ", " : "",
                 sh_enum_name(&sharehub__v1__hub_outcome__descriptor, s_fits[level][i]));
    }
}

/* The referral as the hub received it: its envelope (child, thread); an error to answer when
 * it is not one the hub can decide on. */
static json_object *s_referral(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_envelope **src)
{
    sh_buf b = {0};
    sh_error err;
    sh_agent_record r;
    *src = NULL;
    sh_err rc = ag_record_get(a, t, id, &r, &b, &err);
    if (!rc && sh_envelope_decode_minimised(r.env, r.env_len, src, &err)) rc = SH_E_STORE_CORRUPT;
    json_object *bad = NULL;
    char detail[200];
    if (rc == SH_E_NOT_FOUND) {
        bad = ag_error_json(SH_E_UNKNOWN_EVENT, "referral_event_id: no such event at the hub");
    } else if (rc) {
        bad = ag_error_json(rc, "referral_event_id: the stored event cannot be read");
    } else if (r.direction != SH_DIR_RECEIVED || ((*src)->event_type != ET(REQUEST_FOR_SUPPORT) &&
                                                  (*src)->event_type != ET(SAFEGUARDING_CONCERN))) {
        snprintf(detail, sizeof detail,
                 "referral_event_id: a decision is made on a request for support or a "
                 "safeguarding concern the hub received; this is a %s the hub %s",
                 sh_event_type_name((*src)->event_type),
                 r.direction == SH_DIR_SENT ? "sent" : "received");
        bad = ag_error_json(SH_E_TRIAGE_STATE, detail);
    }
    sh_buf_free(&b);
    if (bad) {
        sh_envelope_free(*src);
        *src = NULL;
    }
    return bad;
}

/* The hub_decision event as JSON (the JSON mapping of docs/schema.md). */
static json_object *s_decision(sh_agent *a, const sh_envelope *src, const char *ref, int level,
                               const char *outcome, const char *rationale, const char *display,
                               const char *amends, const char *amend_reason, const char *exception)
{
    json_object *j = json_object_new_object(), *hd = json_object_new_object();
    json_object *rj = json_object_new_object();
    json_object_object_add(hd, "referral_event_id", json_object_new_string(ref));
    json_object_object_add(hd, "level_of_need", json_object_new_int(level));
    json_object_object_add(hd, "outcome", json_object_new_string(outcome));
    json_object_object_add(hd, "rationale", json_object_new_string(rationale));
    json_object_object_add(hd, "decided_at_ms", json_object_new_int64(sh_clock_ms()));
    if (amends) {
        json_object_object_add(hd, "amends_event_id", json_object_new_string(amends));
        json_object_object_add(hd, "amendment_reason", json_object_new_string(amend_reason));
    }
    if (exception)
        json_object_object_add(hd, "exception_reason", json_object_new_string(exception));
    json_object_object_add(rj, "org_code", json_object_new_string(a->cfg->org));
    json_object_object_add(rj, "role", json_object_new_string("Hub practitioner"));
    json_object_object_add(rj, "name", json_object_new_string(display));
    json_object_object_add(hd, "decided_by", rj);
    json_object_object_add(j, "event_type", json_object_new_string("hub_decision"));
    json_object_object_add(j, "level_of_need", json_object_new_int(level));
    json_object_object_add(j, "purpose",
                           json_object_new_string(level >= 3 ? "safeguarding" : "early_help"));
    json_object_object_add(j, "consent", json_object_new_string("not_required"));
    json_object *lb = json_object_new_object();
    json_object_object_add(lb, "article6", json_object_new_string("e_public_task"));
    json_object_object_add(lb, "article9",
                           json_object_new_string("2g_substantial_public_interest"));
    json_object_object_add(lb, "dpa_schedule1_paragraph", json_object_new_int(18));
    json_object_object_add(j, "lawful_basis", lb);
    uint8_t rid[16];
    char th[SH_EVENT_ID_STR];
    sh_event_id_parse(ref, rid);
    json_object_object_add(/* the thread: the referral's own, or the referral itself */
                           j, "correlation_id",
                           json_object_new_string(sh_event_id_format(
                               src->correlation_id.len == 16 ? src->correlation_id.data : rid,
                               th)));
    json_object_object_add(j, "hub_decision", hd);
    char *cj = src->child ? sh_json_from_message(&src->child->base, 0) : NULL;
    if (cj) json_object_object_add(j, "child", json_tokener_parse(cj));
    free(cj);
    return j;
}

json_object *ag_op_triage(sh_agent *a, json_object *req)
{
    if (a->cfg->role != ROLE_SOCIAL_CARE)
        return ag_error_json(SH_E_INVAL, "triage is for the Children and Families Hub");
    const char *user, *ref = ag_str(req, "referral_event_id"), *outcome = ag_str(req, "outcome");
    const char *rationale, *amend, *exception, *client;
    int role, level = 0, out_v = 0;
    json_object *v,
        *bad = ag_require_account(a, req, ROLES(ACC_PRACTITIONER, ACC_MANAGER), &user, &role);
    if (!bad)
        bad = ag_text_arg_max(req, "rationale", 1, "why: every decision records it", TEXT_MAX,
                              &rationale);
    if (!bad)
        bad = ag_text_arg_max(req, "amend_reason", 0, "why the decision changes", TEXT_MAX, &amend);
    if (!bad)
        bad = ag_text_arg_max(req, "exception_reason", 0, "why this pair", TEXT_MAX, &exception);
    if (!bad) bad = ag_text_arg(req, "client", 0, "the API client system", &client);
    if (bad) return bad;
    if (json_object_object_get_ex(req, "level", &v)) level = json_object_get_int(v);
    if (level < 1 || level > 4) return ag_error_json(SH_E_BAD_FIELD, "level: want 1-4");
    char fits[160], detail[400];
    if (!outcome || sh_enum_value(&sharehub__v1__hub_outcome__descriptor, outcome, &out_v) ||
        out_v <= 0) {
        sh_enum_names(&sharehub__v1__hub_outcome__descriptor, fits, sizeof fits);
        snprintf(detail, sizeof detail, "outcome: want one of %s", fits);
        return ag_error_json(outcome ? SH_E_BAD_FIELD : SH_E_MISSING_FIELD, detail);
    }
    if (!s_fit(level, out_v)) {
        s_fitting(level, fits, sizeof fits);
        if (role != ACC_MANAGER || !exception) {
            snprintf(detail, sizeof detail,
                     "%s does not fit level of need %d (it fits: %s); a team manager may record "
                     "another pair as an exception, with a reason",
                     sh_enum_name(&sharehub__v1__hub_outcome__descriptor, out_v), level, fits);
            return ag_error_json(SH_E_LEVEL_OUTCOME, detail);
        }
    } else {
        exception = NULL; /* a pair that fits needs no exception */
    }
    uint8_t rid[16], key[FD_KEY];
    if (sh_event_id_parse(ref, rid)) return ag_error_json(SH_E_BAD_EVENT_ID, "referral_event_id");
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_envelope *src = NULL;
    ag_fd_item it;
    char display[ACCOUNT_NAME_MAX + 1], amends[SH_EVENT_ID_STR], when[40];
    ag_account_role(a, t, user, display);
    bad = s_referral(a, t, rid, &src);
    if (!bad && !ag_fd_get(a, t, rid, &it, key))
        bad = ag_error_json(SH_E_TRIAGE_STATE, "referral_event_id: not an item of the front door");
    if (!bad && it.state == FD_DECIDED && !amend) {
        sh_clock_iso(it.decided_ms, when, sizeof when);
        snprintf(detail, sizeof detail,
                 "already decided by %s at %s: a change is an amendment, with a reason",
                 it.decided_by, when);
        bad = ag_error_json(SH_E_TRIAGE_STATE, detail);
    }
    if (!bad && it.state != FD_DECIDED && amend)
        bad = ag_error_json(SH_E_TRIAGE_STATE, "not decided yet: nothing to amend");
    if (bad) {
        sh_txn_abort(&t);
        sh_envelope_free(src);
        return bad;
    }
    if (amend) sh_event_id_format(it.decision, amends);
    json_object *j =
        s_decision(a, src, ref, level, sh_enum_name(&sharehub__v1__hub_outcome__descriptor, out_v),
                   rationale, display, amend ? amends : NULL, amend, exception);
    sh_envelope_free(src);
    const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
    ProtobufCMessage *m = NULL;
    uint8_t idbuf[16];
    sh_err rc =
        sh_json_to_message(text, strlen(text), &sharehub__v1__envelope__descriptor, &m, &err);
    json_object_put(j);
    sh_envelope *e = (sh_envelope *)m;
    if (!rc) rc = ag_complete(a, e, idbuf, &err);
    if (!rc) rc = ag_publish_put(a, t, a->outbox_seq, e, user, "triage", NULL, client, &err);
    if (!rc) rc = ag_put_seq(a, t, "outbox_seq", a->outbox_seq + 1, &err);
    if (!rc) {
        it.state = FD_DECIDED;
        it.decided_ms = e->hub_decision->decided_at_ms;
        memcpy(it.decision, e->event_id.data, 16);
        snprintf(it.decided_by, sizeof it.decided_by, "%s", user);
        if (amend) it.amendments++;
        rc = ag_fd_put(a, t, &it, key, &err);
    }
    if (!rc && exception) {
        /* the reason is kept with the decision (sealed), not in the log: it may name people */
        rc = ag_audit(a, t, SH_AUDIT_WRITE, SH_AUDIT_OK, 0, rid, NULL, user, NULL, "triage", NULL,
                      "a team manager's exception: a level/outcome pair outside the table");
    }
    if (rc || ag_commit(a, &t, &err)) {
        sh_txn_abort(&t);
        if (m) protobuf_c_message_free_unpacked(m, NULL);
        return ag_error_json(err.code, err.detail);
    }
    a->outbox_seq++;
    a->queued++;
    char idt[SH_EVENT_ID_STR];
    json_object *out = ag_ok();
    json_object_object_add(out, "event_id",
                           json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
    json_object_object_add(out, "status", json_object_new_string(a->connected ? "sent" : "queued"));
    if (amend) json_object_object_add(out, "amends", json_object_new_string(amends));
    json_object_object_add(out, "item", ag_fd_json(a, &it, sh_clock_ms()));
    protobuf_c_message_free_unpacked(m, NULL);
    return out;
}
