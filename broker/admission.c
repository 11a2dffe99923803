/*
 * admission.c — connections refused and dropped, audited: the network process (net.c) admits
 * only enrolled CURVE keys and counts refused keys, failed handshakes and connections the
 * transport closed; its counts (channel.c) are audited here at most once a second.
 *
 * Owns: the refusal counters' audit. Never: records a peer that went away mid-handshake as a
 * hostile one; writes more than one audit entry of each kind a second, however many
 * connections fail.
 */
#include <inttypes.h>
#include <string.h>

#include "broker_int.h"

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
