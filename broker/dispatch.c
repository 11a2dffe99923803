/*
 * dispatch.c — one message from an agent, as the network process hands it over (net.h): who
 * sent it (the CURVE key its connection authenticated, looked up again so a key revoked since
 * the connection was made is refused now), the network process's verdict on a PUBLISH,
 * whether it is a protocol message, and which command with exactly its frames
 * (docs/protocol.md).
 *
 * Owns: nothing. Never: answers a command whose frame count is wrong with anything but
 * ERROR 700; acts on a message from a key the registry no longer holds.
 */
#include <string.h>

#include "broker_int.h"
#include "clock.h"
#include "net.h"

/* The commands an agent sends: name, frames after the routing id (signature and command
 * included), and whether it is answered only after the batch commits. */
static const struct {
    const char *name;
    size_t frames;
} s_commands[] = {
    {"PUBLISH", SH_FRAMES_PUBLISH}, {"ACK", SH_FRAMES_ACK},         {"HELLO", SH_FRAMES_HELLO},
    {"PING", SH_FRAMES_PING},       {"WITNESS", SH_FRAMES_WITNESS}, {"FORWARD", SH_FRAMES_FORWARD},
};

static void s_refuse(sh_broker *b, sh_txn *t, const uint8_t *rid, size_t rid_len, const char *org,
                     const char *detail)
{
    bk_error_now(b, rid, rid_len, SH_E_PROTOCOL, detail);
    bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_PROTOCOL, NULL, NULL, org, NULL, NULL,
             detail);
}

/* The network process's verdict frame (net.h), into v; -1 when it is not one. */
static int s_verdict(zmq_msg_t *m, bk_verdict *v)
{
    const uint8_t *p = zmq_msg_data(m);
    size_t len = zmq_msg_size(m);
    v->kind = len ? (char)p[0] : 0;
    v->code = SH_OK;
    v->has_id = 0;
    v->detail[0] = '\0';
    if (v->kind == 'M' && len == 1) return 0;
    if ((v->kind != 'X' && v->kind != 'V') || len < BK_VERDICT_HEAD) return -1;
    v->code = (sh_err)(p[1] << 8 | p[2]);
    v->has_id = p[3] != 0;
    memcpy(v->id, p + 4, 16);
    size_t dl =
        len - BK_VERDICT_HEAD < sizeof v->detail ? len - BK_VERDICT_HEAD : sizeof v->detail - 1;
    memcpy(v->detail, p + BK_VERDICT_HEAD, dl);
    v->detail[dl] = '\0';
    return v->code ? 0 : -1;
}

void bk_dispatch(sh_broker *b, sh_txn *t, uint64_t *seq, bk_inbound *in)
{
    zmq_msg_t *parts = in->parts;
    size_t n = in->n;
    const uint8_t *rid = zmq_msg_data(&parts[0]);
    size_t rid_len = zmq_msg_size(&parts[0]);
    const sh_org *from = sh_registry_by_key(b->registry, zmq_msg_data(&in->key));
    if (!from) {
        bk_error_now(b, rid, rid_len, SH_E_NOT_ENROLLED, "key not enrolled or revoked");
        int si = bk_session_find(b, rid, rid_len);
        if (si >= 0) bk_session_drop(b, (size_t)si);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_NOT_ENROLLED, NULL, NULL, "-", NULL,
                 NULL, "message from a key that is not enrolled");
        return;
    }
    bk_verdict v;
    if (s_verdict(&in->verdict, &v)) {
        s_refuse(b, t, rid, rid_len, from->code, "the network process sent a bad verdict");
        return;
    }
    if (v.kind == 'X') { /* a PUBLISH whose envelope the network process could not decode */
        bk_reply *r = bk_reply_new(b, rid, rid_len, "CONFIRM");
        if (!r) return;
        bk_confirm(r, v.has_id ? v.id : NULL, v.code, v.detail);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, v.code, v.has_id ? v.id : NULL, NULL,
                 from->code, NULL, NULL, v.detail);
        return;
    }
    if (n < 3 || zmq_msg_size(&parts[1]) != 4 ||
        memcmp(zmq_msg_data(&parts[1]), SH_PROTO_SIGNATURE, 4) != 0 ||
        zmq_msg_size(&parts[2]) == 0 || zmq_msg_size(&parts[2]) > SH_WIRE_CMD_MAX) {
        s_refuse(b, t, rid, rid_len, from->code,
                 "not a protocol message: want " SH_PROTO_SIGNATURE ", a command and its frames");
        return;
    }
    char cmd[SH_WIRE_CMD_MAX + 1];
    memcpy(cmd, zmq_msg_data(&parts[2]), zmq_msg_size(&parts[2]));
    cmd[zmq_msg_size(&parts[2])] = '\0';
    size_t k = 0, ncmd = sizeof s_commands / sizeof s_commands[0];
    while (k < ncmd && strcmp(cmd, s_commands[k].name) != 0)
        k++;
    char detail[160];
    if (k == ncmd) {
        int plain = 1;
        for (const char *c = cmd; *c; c++)
            plain &= *c >= 'A' && *c <= 'Z';
        snprintf(detail, sizeof detail,
                 "unknown command '%s': want PUBLISH, ACK, HELLO, PING, WITNESS or FORWARD",
                 plain ? cmd : "?");
        s_refuse(b, t, rid, rid_len, from->code, detail);
        return;
    }
    if (n - 1 != s_commands[k].frames) {
        snprintf(detail, sizeof detail,
                 "%s: want %zu frames (signature and command included), got %zu", cmd,
                 s_commands[k].frames, n - 1);
        s_refuse(b, t, rid, rid_len, from->code, detail);
        return;
    }
    int si = bk_session_get(b, rid, rid_len, from->code);
    if (si < 0) {
        bk_error_now(b, rid, rid_len, SH_E_NOMEM, "no room for another session");
        return;
    }
    b->sessions[si].seen_ms = sh_clock_ms();
    const uint8_t *arg = n > 3 ? zmq_msg_data(&parts[3]) : NULL;
    size_t arglen = n > 3 ? zmq_msg_size(&parts[3]) : 0;

    if (strcmp(cmd, "PUBLISH") == 0) {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "CONFIRM");
        if (!r) return;
        if (arglen > SH_ENVELOPE_MAX) {
            uint8_t id[16];
            int has = sh_envelope_peek_id(arg, arglen, id);
            bk_confirm(r, has ? id : NULL, SH_E_TOO_LARGE, "envelope too large (limit 1 MiB)");
            bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_TOO_LARGE, has ? id : NULL, NULL,
                     from->code, NULL, NULL, "oversize envelope");
            return;
        }
        bk_publish(b, t, seq, from, arg, arglen, zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]),
                   &v, r);
    } else if (strcmp(cmd, "ACK") == 0) {
        /* one id, or up to SH_ACK_MAX ids in one frame (the batch leaves room for them all) */
        if (arglen == 0 || arglen % 16 || arglen / 16 > SH_ACK_MAX) {
            s_refuse(b, t, rid, rid_len, from->code, "ACK: want 1 to 256 event ids of 16 bytes");
            return;
        }
        bk_acked acked = {.n = 0};
        for (size_t i = 0; i < arglen; i += 16) {
            bk_reply *r = bk_reply_new(b, rid, rid_len, "NONE");
            if (r) bk_ack(b, t, si, arg + i, r, &acked);
        }
        /* a peer's ACK takes a delivery over the border: its recipients' receipts come from
         * the other authority's broker */
        if (from->sector == SH_SECTOR_PEER) acked.n = 0;
        bk_ack_receipts(b, t, seq, b->sessions[si].org, &acked);
    } else if (strcmp(cmd, "HELLO") == 0) {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "READY");
        if (r) bk_hello(b, t, si, arg, arglen, r);
    } else if (strcmp(cmd, "PING") == 0) {
        /* says whether deliveries flow to this connection: a broker that restarted, or that
         * forgot a silent session, has not heard this agent's HELLO */
        bk_reply *r = bk_reply_new(b, rid, rid_len, "PONG");
        if (r) bk_reply_addf(r, "%s", b->sessions[si].ready ? "ready" : "hello");
    } else if (strcmp(cmd, "FORWARD") == 0) {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "CONFIRM");
        if (r) bk_forward(b, t, seq, from, arg, arglen, r);
    } else {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "WITNESSED");
        if (r)
            bk_witness(b, t, from, arg, arglen, zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]),
                       r);
    }
}
