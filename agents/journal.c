/*
 * journal.c — what the agent records of itself, and the changes of state every part of it may
 * cause: log lines (logfmt, common/log.h), audit entries, the commit that makes a write and its
 * audit entry durable together — whose failure makes the agent not ready until a write works
 * again — and the loss of the broker.
 *
 * Owns: a->store_failed_ms and a->connected's falling edge. Never: lets a write stand whose
 * audit entry failed; logs personal data; logs a transition more than once.
 */
#include <stdarg.h>

#include "agent_int.h"
#include "clock.h"
#include "log.h"

void ag_log_event(const sh_agent *a, const char *level, const uint8_t *event_id, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_logv(level[0] == 'e'   ? SH_LOG_ERROR
            : level[0] == 'w' ? SH_LOG_WARNING
                              : SH_LOG_INFO,
            a->cfg ? a->cfg->org : NULL, event_id, fmt, ap);
    va_end(ap);
}

sh_err ag_audit(sh_agent *a, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                const uint8_t *id, const uint8_t *child, const char *user, const char *peer,
                const char *purpose, const char *rule, const char *detail)
{
    sh_audit_entry e = {.action = action,
                        .outcome = outcome,
                        .code = (uint16_t)code,
                        .event_id = id,
                        .child_ref = child,
                        .actor_org = a->cfg->org,
                        .actor_user = user,
                        .peer_org = peer,
                        .purpose = purpose,
                        .rule = rule,
                        .detail = detail};
    sh_error err;
    sh_err rc = sh_audit_append(a->audit, t, &e, NULL, &err);
    if (rc) ag_log(a, "error", "audit append failed, the write is refused: %s", err.detail);
    return rc;
}

sh_err ag_commit(sh_agent *a, sh_txn **t, sh_error *err)
{
    sh_err rc = sh_txn_commit(t, err);
    if (rc) {
        if (!a->store_failed_ms)
            ag_log(a, "error", "the store refuses writes (E%03d %s): not ready", (int)rc,
                   sh_err_name(rc));
        a->store_failed_ms = sh_clock_ms();
    } else if (rc == SH_OK && a->store_failed_ms) {
        a->store_failed_ms = 0;
        ag_log(a, "info", "the store takes writes again; asking the broker to resend");
        /* a fresh HELLO has the broker offer its whole queue again now, rather than when its
         * redelivery timer fires (what is here already is acknowledged, not stored twice) */
        if (a->connected)
            (void)sh_client_hello(a->broker, a->cfg->subscriptions ? a->cfg->subscriptions : "*");
    }
    return rc;
}

void ag_store_probe(sh_agent *a)
{
    /* after a refused write nothing else may come to write: try one audit entry a second, so
     * the agent learns as soon as the store takes writes again (ag_commit) */
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(a->store, 1, &t, &err)) return;
    ag_audit(a, t, SH_AUDIT_ADMIN, SH_AUDIT_OK, 0, NULL, NULL, "agent", NULL, NULL, NULL,
             "the store takes writes again");
    (void)ag_commit(a, &t, &err); /* (a failure keeps the store marked, and the time of it) */
}

void ag_link_down(sh_agent *a, const char *why)
{
    if (a->connected)
        ag_log(a, "warning", "lost the broker (%s): working offline, publishes wait in the outbox",
               why);
    a->connected = 0;
}
