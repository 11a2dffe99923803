/*
 * publish.c — the publish request: a JSON event from the agency's own system made into an
 * envelope, completed, stored and put in the outbox (outbox.c); the same event again answered
 * as already accepted; and for health, the CP-IS access notification an attendance may cause.
 *
 * Owns: nothing stored of its own. Never: stores an event twice, or answers "sent" for an
 * event that is not durable here.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "json.h"

/* A publish of an event id this agency already holds: the same event again (its times filled
 * from the first when the request left them out) is answered as accepted, never stored twice;
 * another event under that id is refused (E703). */
static json_object *s_republish(sh_agent *a, sh_txn *in, sh_envelope *e, int had_published,
                                int had_occurred)
{
    sh_txn *t = in; /* a batch's transaction sees the publishes written in it */
    sh_error err;
    sh_buf b = {0}, ob = {0};
    sh_agent_record r;
    sh_envelope *old = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_object *out = NULL;
    if (!t && sh_txn_begin(a->store, 0, &t, &err)) return ag_error_json(err.code, err.detail);
    sh_err rc = ag_record_get(a, t, e->event_id.data, &r, &b, &err);
    if (!rc && sh_envelope_decode(r.env, r.env_len, &old, &err)) rc = SH_E_STORE_CORRUPT;
    if (!rc && r.direction == SH_DIR_SENT) {
        if (!had_published) e->published_at_ms = old->published_at_ms;
        if (!had_occurred) e->occurred_at_ms = old->occurred_at_ms;
        rc = sh_envelope_encode(e, &buf, &len, &err);
    }
    if (!rc && r.direction == SH_DIR_SENT && len == r.env_len && memcmp(buf, r.env, len) == 0) {
        char idt[SH_EVENT_ID_STR];
        out = ag_ok();
        json_object_object_add(out, "event_id",
                               json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
        json_object_object_add(out, "status", json_object_new_string("already accepted"));
        if (sh_txn_get(t, a->outcome, e->event_id.data, 16, &ob, &err) == SH_OK)
            json_object_object_add(out, "broker",
                                   json_object_new_string_len((const char *)ob.data, (int)ob.len));
        else
            json_object_object_add(out, "broker", json_object_new_string("waiting in the outbox"));
    } else if (!rc || rc == SH_E_NOT_FOUND) {
        out =
            ag_error_json(SH_E_REPLAYED, "event_id: already used at this agency for another event");
    } else {
        out = ag_error_json(rc, "event_id: the event stored under this id cannot be read");
    }
    if (!in) sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_buf_free(&ob);
    sh_envelope_free(old);
    free(buf);
    return out;
}

json_object *ag_op_publish(sh_agent *a, json_object *req, ag_local *lb)
{
    const char *user, *purpose, *client;
    json_object *ev, *bad = ag_text_arg(req, "user", 1, "who is publishing", &user);
    if (!bad) bad = ag_text_arg(req, "purpose", 0, "why", &purpose);
    if (!bad) bad = ag_text_arg(req, "client", 0, "the API client system", &client);
    if (bad) return bad;
    if (!json_object_object_get_ex(req, "event", &ev))
        return ag_error_json(SH_E_MISSING_FIELD, "event: missing (the event to publish)");
    const char *text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
    ProtobufCMessage *m = NULL;
    sh_error err = {0};
    sh_err rc =
        sh_json_to_message(text, strlen(text), &sharehub__v1__envelope__descriptor, &m, &err);
    if (rc) return ag_error_json(rc, err.detail);
    sh_envelope *e = (sh_envelope *)m;
    int had_published = e->published_at_ms != 0, had_occurred = e->occurred_at_ms != 0;
    uint8_t id[16];
    json_object *out = NULL;
    rc = ag_complete(a, e, id, &err);
    sh_txn *t = NULL;
    if (!rc && lb) {
        t = ag_batch_txn(a, &a->batch);
        rc = t ? ag_publish_put(a, t, a->outbox_seq + lb->n, e, user, purpose, NULL, client, &err)
               : sh_error_set(&err, SH_E_TXN, "the store cannot begin a transaction");
        if (!rc) lb->n++;
    } else if (!rc) {
        rc = ag_publish_marked(a, e, user, purpose, NULL, client, &err);
    }
    if (rc == SH_E_EXISTS) {
        out = s_republish(a, t, e, had_published, had_occurred);
    } else if (rc) {
        out = ag_error_json(rc, err.detail);
    } else {
        char idt[SH_EVENT_ID_STR];
        out = ag_ok();
        json_object_object_add(out, "event_id",
                               json_object_new_string(sh_event_id_format(e->event_id.data, idt)));
        /* "sent": handed to the broker, not yet confirmed; "queued": in the outbox until the
         * broker is reachable. The broker's answer is in `show` (docs/agent.md). */
        json_object_object_add(out, "status",
                               json_object_new_string(a->connected ? "sent" : "queued"));
        if (a->cfg->role == ROLE_HEALTH && !lb) ag_cpis_attendance(a, e, out);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return out;
}
