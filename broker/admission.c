/*
 * admission.c — who may connect: the ZAP handler admits only enrolled CURVE keys; the socket
 * monitor counts handshakes that failed and connections the transport closed; both are
 * audited as counts at most once a second.
 *
 * Owns: the ZAP and monitor sockets' traffic and the refusal counters. Never: admits a key
 * the registry does not hold; records a peer that went away mid-handshake as a hostile one;
 * writes more than one audit entry of each kind a second, however many connections fail.
 */
#include <inttypes.h>
#include <string.h>

#include "broker_int.h"

void bk_zap(sh_broker *b)
{
    zmq_msg_t f[7];
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < 7 ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, b->zap, 0) < 0) {
            zmq_msg_close(m);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            return;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    const char *status = "400", *text = "not enrolled";
    char user[SH_Z85_LEN + 1] = "";
    if (n == 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&f[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&f[6]);
        if (sh_registry_by_key(b->registry, key)) {
            status = "200";
            text = "OK";
            zmq_z85_encode(user, key, 32);
        }
    }
    /* version, request id, status, text, user id, metadata */
    zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(b->zap, n > 1 ? zmq_msg_data(&f[1]) : "", n > 1 ? zmq_msg_size(&f[1]) : 0,
             ZMQ_SNDMORE);
    zmq_send(b->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(b->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(b->zap, "", 0, 0);
    if (status[0] != '2') {
        b->refused_key_total++;
        if (b->refused_key++ == 0) bk_log("warning", "connection refused: key not enrolled");
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* One event from the router's monitor: a handshake refused below the protocol (a peer
 * without CURVE, with a wrong server key, or sending bytes that are not ZMTP: ZeroMQ reports
 * HANDSHAKE_FAILED_PROTOCOL), a handshake cut short because the connection closed (the peer
 * stopped or crashed, or the network failed: HANDSHAKE_FAILED_NO_DETAIL, whose value is the
 * errno — not an attack, and not reported as one), or a closed connection. ZeroMQ closes a
 * connection without telling the socket when the peer sends a message over ZMQ_MAXMSGSIZE, so a
 * close after the handshake is the only trace of an oversized frame. (The events name the local
 * endpoint, not the peer, and the handshake's success carries no file descriptor: so these are
 * counts.) */
void bk_monitor(sh_broker *b)
{
    zmq_msg_t m[2];
    zmq_msg_init(&m[0]);
    zmq_msg_init(&m[1]);
    if (zmq_msg_recv(&m[0], b->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m[0]) &&
        zmq_msg_recv(&m[1], b->monitor, 0) >= 0 && zmq_msg_size(&m[0]) >= 2) {
        uint16_t ev;
        memcpy(&ev, zmq_msg_data(&m[0]), 2);
        if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            b->refused_handshake_total++;
            if (b->refused_handshake++ == 0)
                bk_log("warning", "connection refused: handshake failed (no CURVE, or not ZMTP)");
        }
        if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            b->interrupted_total++;
            if (b->interrupted++ == 0)
                bk_log("info", "a connection closed during its handshake (the peer went away)");
        }
        /* (a refused key is counted by the ZAP handler, which sees it first) */
        if (ev & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
            b->failed_total++;
        if (ev & ZMQ_EVENT_DISCONNECTED) b->closed_total++;
    }
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
}

/* Records the connections refused or dropped since the last record, in one audit entry
 * each. */
void bk_audit_refused(sh_broker *b, int64_t now)
{
    uint64_t after = b->closed_total > b->failed_total ? b->closed_total - b->failed_total : 0;
    uint64_t dropped = after > b->dropped_audited ? after - b->dropped_audited : 0;
    if ((!b->refused_key && !b->refused_handshake && !b->interrupted && !dropped) ||
        now - b->refused_audit_ms < 1000)
        return;
    sh_txn *t = NULL;
    sh_error err;
    char detail[320];
    if (sh_txn_begin(b->store, 1, &t, &err)) return;
    if (b->refused_key) {
        snprintf(detail, sizeof detail, "%u connection(s) refused: CURVE key not enrolled",
                 b->refused_key);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_NOT_ENROLLED, NULL, NULL, "-", NULL,
                 NULL, detail);
    }
    if (b->refused_handshake) {
        snprintf(detail, sizeof detail,
                 "%u connection(s) refused: handshake failed (no CURVE, or not ZMTP)",
                 b->refused_handshake);
        bk_audit(b, t, SH_AUDIT_REFUSE, SH_AUDIT_DENIED, SH_E_PROTOCOL, NULL, NULL, "-", NULL, NULL,
                 detail);
    }
    if (b->interrupted) {
        snprintf(detail, sizeof detail,
                 "%u connection(s) closed during the handshake (the peer hung up: it stopped or "
                 "crashed, the network failed, or it gave up, as a peer without CURVE may)",
                 b->interrupted);
        bk_audit(b, t, SH_AUDIT_CONNECTION, SH_AUDIT_FAILED, SH_E_CONNECTION_CLOSED, NULL, NULL,
                 "-", NULL, NULL, detail);
    }
    if (dropped) {
        snprintf(detail, sizeof detail,
                 "%" PRIu64 " connection(s) closed by the transport after the handshake (peer "
                 "closed or crashed, network failed, or a message over 4 MiB)",
                 dropped);
        bk_audit(b, t, SH_AUDIT_CONNECTION, SH_AUDIT_FAILED, SH_E_CONNECTION_CLOSED, NULL, NULL,
                 "-", NULL, NULL, detail);
    }
    if (sh_txn_commit(&t, &err) == SH_OK) {
        if (b->refused_key + b->refused_handshake > 1)
            bk_log("warning", "%u connections refused in the last second",
                   b->refused_key + b->refused_handshake);
        if (dropped) bk_log("warning", "%s", detail);
        b->refused_key = b->refused_handshake = b->interrupted = 0;
        b->dropped_audited += dropped;
    }
    b->refused_audit_ms = now;
}
