/*
 * decide.h — every routing decision for one event, made the same way wherever it is made: by
 * the broker when it accepts an event, by `sharehub policy explain`, and again by `sharehub
 * audit whatif` from the broker's audit log. And the decision context: what the decisions of
 * an event depended on, written into the broker's `receive` audit entry and parsed back here
 * (docs/audit.md, "Decision context").
 *
 * Owns: the decision context's text format, writer and parser side by side. Never: decides
 * a share of an organisation with itself; puts an identifier into the context.
 */
#ifndef SHAREHUB_DECIDE_H
#define SHAREHUB_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "ident.h"
#include "policy.h"
#include "registry.h"

/* Calls fn for every enrolled organisation other than from (and other than a peer), in
 * registry order, then for each organisation of other authorities that a protocol names or
 * that is the event's referrer or the child's school of record (sh_registry_candidates), with
 * the decision for it (sh_policy_decide). fn returns 0 to go on, non-zero to stop; the result is
 * that value (0 when every organisation was decided). */
typedef int (*sh_decide_fn)(void *ctx, const sh_org *to, const sh_decision *d);
int sh_decide_all(const sh_policy *p, const sh_registry *reg, const sh_envelope *e,
                  const sh_org *from, const char *referrer, const char *school, int64_t now_ms,
                  sh_decide_fn fn, void *ctx);

/* The most decisions sh_decide_all makes for one event with this registry. */
size_t sh_decide_max(const sh_registry *reg);

/* The decision context: "type=<name> purpose=<name> a6=<6(1)(x)|-> a9=<9(2)(x)|none>
 * para=<n> level=<n> consent=<name> risk=<0|1> la=<code|-> school=<org|-> referrer=<org|->",
 * at most SH_DECIDE_CONTEXT_MAX bytes with its NUL. Names are the schema's enum names and the
 * law's citations; consent is the one the broker decided with (a withdrawal on record replaces
 * a claimed consent); risk is whether the event asserted a risk of significant harm (1: its
 * own flag, immediate risk or priority; 2: a practitioner's recorded judgement). The
 * parser also reads the numbers entries held before names, and a context without risk. */
#define SH_DECIDE_CONTEXT_MAX 256
void sh_decide_context_write(const sh_envelope *e, const char *school, const char *referrer,
                             char out[SH_DECIDE_CONTEXT_MAX]);

/* A decision context read back, and the skeleton envelope it stands for: enough of an event
 * to decide it again (type, purpose, lawful basis, level, consent, responsible LA). */
typedef struct sh_decide_context {
    int event_type, purpose, article6, article9, paragraph, level, consent, risk;
    char la[8], school[SH_ORG_MAX + 1], referrer[SH_ORG_MAX + 1]; /* "" for "-" */
    sh_envelope env;
    Sharehub__V1__LawfulBasis lb;
    Sharehub__V1__Child child;
    Sharehub__V1__CpPlanStatus cp;
    Sharehub__V1__LookedAfterStatus lac;
    Sharehub__V1__SafeguardingConcern sgc;
    Sharehub__V1__RequestForSupport rfs;
    Sharehub__V1__HarmJudgement hj;
} sh_decide_context;

/* Parses detail into *c (c->env then points into c: do not copy c). 0, or -1 when detail is
 * not a decision context (a receipt's "type=delivery_receipt", an entry older than
 * contexts). */
int sh_decide_context_read(const char *detail, sh_decide_context *c);

/* The event type a broker `receive` entry's detail names ("" if none), into out. */
void sh_decide_context_type(const char *detail, char *out, size_t cap);

#endif
