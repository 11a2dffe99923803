/*
 * journal.c — what the broker records of itself: its log lines (logfmt, common/log.h) and its
 * audit entries, each appended in the batch's transaction.
 *
 * Owns: nothing. Never: lets a write stand whose audit entry failed (the append fails the
 * transaction: common/audit.h); logs personal data.
 */
#include <stdarg.h>

#include "broker_int.h"
#include "log.h"

/* logfmt lines on stderr (common/log.h); never personal data. */
void bk_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_logv(level[0] == 'e'   ? SH_LOG_ERROR
            : level[0] == 'w' ? SH_LOG_WARNING
                              : SH_LOG_INFO,
            NULL, NULL, fmt, ap);
    va_end(ap);
}

sh_err bk_audit(sh_broker *b, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                const uint8_t *event_id, const uint8_t *child_ref, const char *actor,
                const char *peer, const char *rule, const char *detail)
{
    return bk_audit_for(b, t, action, outcome, code, event_id, child_ref, actor, peer, rule, NULL,
                        detail);
}

sh_err bk_audit_for(sh_broker *b, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                    const uint8_t *event_id, const uint8_t *child_ref, const char *actor,
                    const char *peer, const char *rule, const char *purpose, const char *detail)
{
    sh_audit_entry e = {.action = action,
                        .outcome = outcome,
                        .code = (uint16_t)code,
                        .event_id = event_id,
                        .child_ref = child_ref,
                        .actor_org = actor,
                        .actor_user = "broker",
                        .peer_org = peer,
                        .purpose = purpose,
                        .rule = rule,
                        .detail = detail};
    sh_error err;
    sh_err rc = sh_audit_append(b->audit, t, &e, NULL, &err);
    if (rc) {
        /* (the append failed the transaction: nothing of it will be written) */
        bk_log("error", "audit append failed, the batch is refused: %s", err.detail);
        return rc;
    }
    /* (only a batch writes these two: they count into its stage) */
    if (action == SH_AUDIT_RECEIVE && outcome == SH_AUDIT_OK) b->stage.accepted++;
    if (action == SH_AUDIT_DENY) {
        char lab[SH_LABELS_MAX] = "";
        sh_label(lab, sizeof lab, "reason", sh_err_name(code));
        sh_label(lab, sizeof lab, "isp", rule ? rule : "-");
        sh_tally_add(&b->stage.denied, lab, 1);
    }
    return SH_OK;
}
