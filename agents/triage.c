/*
 * triage.c — the Children and Families Hub's triage: a hub decision (level of need, outcome,
 * rationale, who decided) made from a referral the hub holds, published on its thread.
 *
 * Owns: nothing stored. Never: triages at an agent that is not the hub, or a referral the
 * hub does not hold.
 */
#include <string.h>

#include "agent_int.h"
#include "clock.h"
#include "json.h"

json_object *ag_op_triage(sh_agent *a, json_object *req)
{
    if (a->cfg->role != ROLE_SOCIAL_CARE)
        return ag_error_json(SH_E_INVAL, "triage is for the Children and Families Hub");
    const char *user = ag_str(req, "user"), *ref = ag_str(req, "referral_event_id");
    const char *outcome = ag_str(req, "outcome"), *rationale = ag_str(req, "rationale");
    json_object *v;
    int level = json_object_object_get_ex(req, "level", &v) ? json_object_get_int(v) : 0;
    if (!user || !*user) return ag_error_json(SH_E_MISSING_FIELD, "user");
    if (!ref || !outcome || !rationale || !*rationale)
        return ag_error_json(SH_E_MISSING_FIELD, "referral_event_id, outcome and rationale");
    if (level < 1 || level > 4) return ag_error_json(SH_E_BAD_FIELD, "level: want 1-4");
    /* the referral as received here gives the child and the thread */
    uint8_t rid[16];
    sh_error err;
    if (sh_event_id_parse(ref, rid)) return ag_error_json(SH_E_BAD_EVENT_ID, "referral_event_id");
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_agent_record r;
    sh_envelope *src = NULL;
    if (sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_err rc = sh_txn_get(t, a->events, rid, 16, &b, &err);
    if (!rc && (sh_agent_record_parse(b.data, b.len, &r) ||
                sh_envelope_decode_minimised(r.env, r.env_len, &src, &err)))
        rc = SH_E_STORE_CORRUPT;
    sh_txn_abort(&t);
    if (rc) {
        sh_buf_free(&b);
        return ag_error_json(rc == SH_E_NOT_FOUND ? SH_E_UNKNOWN_EVENT : rc,
                             "referral_event_id: no such referral at the hub");
    }
    json_object *j = json_object_new_object(), *hd = json_object_new_object();
    json_object *rj = json_object_new_object();
    json_object_object_add(hd, "referral_event_id", json_object_new_string(ref));
    json_object_object_add(hd, "level_of_need", json_object_new_int(level));
    json_object_object_add(hd, "outcome", json_object_new_string(outcome));
    json_object_object_add(hd, "rationale", json_object_new_string(rationale));
    json_object_object_add(hd, "decided_at_ms", json_object_new_int64(sh_clock_ms()));
    json_object_object_add(rj, "org_code", json_object_new_string(a->cfg->org));
    json_object_object_add(rj, "role", json_object_new_string("Hub practitioner"));
    json_object_object_add(rj, "name", json_object_new_string(user));
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
    /* the thread: the referral's own thread, or the referral itself */
    char th[SH_EVENT_ID_STR];
    json_object_object_add(
        j, "correlation_id",
        json_object_new_string(sh_event_id_format(
            src->correlation_id.len == 16 ? src->correlation_id.data : rid, th)));
    json_object_object_add(j, "hub_decision", hd);
    char *cj = src->child ? sh_json_from_message(&src->child->base, 0) : NULL;
    if (cj) json_object_object_add(j, "child", json_tokener_parse(cj));
    free(cj);
    sh_envelope_free(src);
    sh_buf_free(&b);
    json_object *wrap = json_object_new_object();
    json_object_object_add(wrap, "event", j);
    json_object_object_add(wrap, "user", json_object_new_string(user));
    json_object_object_add(wrap, "purpose", json_object_new_string("triage"));
    json_object *out = ag_op_publish(a, wrap, NULL);
    json_object_put(wrap);
    return out;
}
