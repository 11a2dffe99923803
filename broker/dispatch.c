/*
 * dispatch.c — one message from an agent: who sent it (the CURVE key ZAP admitted, looked up
 * again so a key revoked since the connection was made is refused now), whether it is a
 * protocol message, and which command with exactly its frames (docs/protocol.md).
 *
 * Owns: nothing. Never: answers a command whose frame count is wrong with anything but
 * ERROR 700; acts on a message from a key the registry no longer holds.
 */
#include <string.h>

#include "broker_int.h"
#include "clock.h"

/* The commands an agent sends: name, frames after the routing id (signature and command
 * included), and whether it is answered only after the batch commits. */
static const struct {
    const char *name;
    size_t frames;
} s_commands[] = {
    {"PUBLISH", SH_FRAMES_PUBLISH}, {"ACK", SH_FRAMES_ACK},         {"HELLO", SH_FRAMES_HELLO},
    {"PING", SH_FRAMES_PING},       {"WITNESS", SH_FRAMES_WITNESS},
};

static void s_refuse(sh_broker *b, sh_txn *t, const uint8_t *rid, size_t rid_len, const char *org,
                     const char *detail)
{
    bk_error_now(b, rid, rid_len, SH_E_PROTOCOL, detail);
    bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_FAILED, SH_E_PROTOCOL, NULL, NULL, org, NULL, NULL,
             detail);
}

void bk_dispatch(sh_broker *b, sh_txn *t, uint64_t *seq, zmq_msg_t *parts, size_t n)
{
    const uint8_t *rid = zmq_msg_data(&parts[0]);
    size_t rid_len = zmq_msg_size(&parts[0]);
    const char *user = n > 1 ? zmq_msg_gets(&parts[1], "User-Id") : NULL;
    uint8_t key[32];
    const sh_org *from = NULL;
    if (user && strlen(user) == SH_Z85_LEN && zmq_z85_decode(key, user))
        from = sh_registry_by_key(b->registry, key);
    if (!from) {
        bk_error_now(b, rid, rid_len, SH_E_NOT_ENROLLED, "key not enrolled or revoked");
        int si = bk_session_find(b, rid, rid_len);
        if (si >= 0) bk_session_drop(b, (size_t)si);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_NOT_ENROLLED, NULL, NULL, "-", NULL,
                 NULL, "message from a key that is not enrolled");
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
                 "unknown command '%s': want PUBLISH, ACK, HELLO, PING or WITNESS",
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
                   r);
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
        bk_ack_receipts(b, t, seq, b->sessions[si].org, &acked);
    } else if (strcmp(cmd, "HELLO") == 0) {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "READY");
        if (r) bk_hello(b, t, si, arg, arglen, r);
    } else if (strcmp(cmd, "PING") == 0) {
        /* says whether deliveries flow to this connection: a broker that restarted, or that
         * forgot a silent session, has not heard this agent's HELLO */
        bk_reply *r = bk_reply_new(b, rid, rid_len, "PONG");
        if (r) bk_reply_addf(r, "%s", b->sessions[si].ready ? "ready" : "hello");
    } else {
        bk_reply *r = bk_reply_new(b, rid, rid_len, "WITNESSED");
        if (r)
            bk_witness(b, t, from, arg, arglen, zmq_msg_data(&parts[4]), zmq_msg_size(&parts[4]),
                       r);
    }
}
