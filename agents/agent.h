/*
 * agent.h — the sharehub agent an agency runs: education, health or social care (the
 * Children and Families Hub). docs/agent.md describes its configuration and local interface.
 *
 * Owns: the agency's encrypted store of everything it sent and received (indexed by child and
 * by case thread), its audit log, its outbox to the broker, and its local interface (a Unix
 * socket only the agent's user can reach).
 * Never: loses a local publish once it has answered "queued" (the outbox is durable and drains
 * when the broker is back); returns a child's data without auditing the read, who made it and
 * why; holds a field the broker withheld.
 */
#ifndef SHAREHUB_AGENT_H
#define SHAREHUB_AGENT_H

#include <signal.h>

#include "error.h"

typedef struct sh_agent sh_agent;

/* Loads the YAML config at path, opens the store, binds the local socket, connects to the
 * broker. Errors name the file or key at fault (SH_E_POLICY_FILE is not used: config errors
 * are SH_E_INVAL with the detail). */
sh_err sh_agent_new(const char *config_path, sh_agent **out, sh_error *err);

/* Serves until *stop is non-zero. */
sh_err sh_agent_run(sh_agent *a, volatile sig_atomic_t *stop);

/* Checkpoints the audit log and closes everything. */
void sh_agent_destroy(sh_agent **a);

#endif
