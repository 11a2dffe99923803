/*
 * lint.h — reviewing a policy directory the way an information-governance officer would.
 *
 * Owns: the findings of `sharehub policy check`: lifecycle (review due, overdue, lapsed, draft,
 * suspended), organisations and localities the registry does not know, and ISPs in force that
 * overlap (two protocols cover the same share) or contradict each other (they cover it with
 * different data items). Never: changes the policy.
 */
#ifndef SHAREHUB_LINT_H
#define SHAREHUB_LINT_H

#include <stdint.h>

#include "policy.h"
#include "registry.h"

typedef enum sh_lint_level { SH_LINT_WARNING = 0, SH_LINT_ERROR = 1 } sh_lint_level;

typedef void (*sh_lint_fn)(void *ctx, sh_lint_level level, const sh_isp *isp, const char *msg);

/* Reports every finding through fn; reg may be NULL (organisation and overlap checks are then
 * skipped). Returns the number of errors. */
int sh_policy_lint(const sh_policy *p, const sh_registry *reg, int64_t now_ms, sh_lint_fn fn,
                   void *ctx);

#endif
