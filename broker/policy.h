/*
 * policy.h — WEISF Information Sharing Protocols (ISPs): loading, lifecycle, decisions.
 *
 * Owns: the ISPs of a policy directory (one isp-*.yaml file each, docs/policy.md) and the decision
 * "may this event from this sender reach this recipient, and which data items may it see".
 * Never: permits without an ISP that names the event type, both parties, the purpose, the
 * lawful basis, the level of need and the consent position — deny is the default; never
 * permits under a draft, suspended or lapsed ISP. A policy is immutable once loaded.
 */
#ifndef SHAREHUB_POLICY_H
#define SHAREHUB_POLICY_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "codec.h"
#include "error.h"
#include "registry.h"

typedef struct sh_policy sh_policy;
typedef struct sh_isp sh_isp;

typedef enum sh_isp_state {
    SH_ISP_ACTIVE = 0,     /* in force */
    SH_ISP_REVIEW_DUE = 1, /* within 3 months of its review date: in force; the lead is warned */
    SH_ISP_OVERDUE = 2,    /* past its review date: in force, every share flagged overdue */
    SH_ISP_LAPSED = 3,     /* 3 months past its review date: never permits */
    SH_ISP_DRAFT = 4,      /* never permits */
    SH_ISP_SUSPENDED = 5,  /* never permits */
} sh_isp_state;

/* How long a recipient keeps what it received under a protocol, and what then happens. */
typedef struct sh_retention {
    unsigned count;   /* in units; 0 when the protocol does not say (a draft) */
    char unit;        /* 'd' days, 'm' calendar months (a year is 12) */
    int review;       /* at the end: 1 mark for review, 0 erase */
    const char *text; /* as written: "6 years" */
} sh_retention;

/* Loads every isp-*.yaml file of dir (in name order; other files are ignored). Errors:
 * SH_E_POLICY_FILE (detail: the file, the key and what is wrong — YAML, unknown key, bad value,
 * unknown data item, an inconsistent lawful basis, a protocol in force without its purpose
 * statement, gateways, controllers, DPIA, retention or a signature from every party, duplicate
 * id), SH_E_IO (the directory cannot be read), SH_E_NOMEM. */
sh_err sh_policy_load(const char *dir, sh_policy **out, sh_error *err);

/* One mistake in a protocol file: the file, the key (NULL when the YAML itself is wrong) and
 * what is wrong with the fix. */
typedef void (*sh_policy_report_fn)(void *ctx, const char *file, const char *key, const char *msg);

/* As sh_policy_load, but reports every mistake in every file to report (err keeps the first)
 * instead of stopping at the first. */
sh_err sh_policy_load_report(const char *dir, sh_policy **out, sh_policy_report_fn report,
                             void *ctx, sh_error *err);

void sh_policy_destroy(sh_policy **p);

size_t sh_policy_count(const sh_policy *p);
const sh_isp *sh_policy_at(const sh_policy *p, size_t i);

const char *sh_isp_id(const sh_isp *isp);
const char *sh_isp_version(const sh_isp *isp); /* "4", "4.1" */
const char *sh_isp_title(const sh_isp *isp);
const char *sh_isp_file(const sh_isp *isp);
const char *sh_isp_review_date(const sh_isp *isp);
const char *sh_isp_lead(const sh_isp *isp);
/* The day it lapses (YYYY-MM-DD: 3 months after its review date; from that day it never
 * permits). */
const char *sh_isp_lapse_date(const sh_isp *isp);
/* The levels of need it covers, lo to hi (0-4; 0 to 4 when it names none). */
void sh_isp_levels(const sh_isp *isp, unsigned *lo, unsigned *hi);

/* Its lawful basis: the schema's Article6 and Article9 values and the Schedule 1 paragraph
 * (0 when none); law.h writes them in words. */
void sh_isp_basis(const sh_isp *isp, int *article6, int *article9, unsigned *paragraph);

/* "isp-cpis@3": the rule reference recorded in audit entries. */
const char *sh_isp_rule(const sh_isp *isp);

/* The ISP whose rule reference is rule[0..len) ("isp-cpis@3"), or NULL. */
const sh_isp *sh_policy_find(const sh_policy *p, const char *rule, size_t len);

/* How long a share under isp may wait undelivered before it expires (delivery_expiry, ms);
 * 0 when the ISP does not say (the broker's --delivery-expiry applies). */
int64_t sh_isp_expiry_ms(const sh_isp *isp);

/* The lifecycle state at time now_ms (Unix ms, the date taken in UTC). */
sh_isp_state sh_isp_state_at(const sh_isp *isp, int64_t now_ms);

/* "active", "review_due", "overdue", "lapsed", "draft", "suspended". */
const char *sh_isp_state_name(sh_isp_state s);

/* What the broker knows about one candidate share. */
typedef struct sh_share {
    const sh_envelope *env;
    const sh_org *sender;    /* the authenticated publisher */
    const sh_org *recipient; /* the candidate recipient */
    const char *referrer;    /* org code that published the event env refers to, or NULL */
    int64_t now_ms;
    const char *child_school; /* the child's school of record (docs/policy.md), or NULL */
} sh_share;

typedef struct sh_decision {
    int permit;
    sh_err code;              /* SH_OK when permitted, else an SH_E_DENY_* code */
    const sh_isp *isp;        /* the ISP that permitted, or the one that came closest; or NULL */
    sh_isp_state state;       /* that ISP's state */
    const char *const *items; /* data items the recipient may see (when permitted) */
    size_t n_items;
    const sh_retention *retention; /* how long the recipient keeps it (when permitted) */
    /* when permitted, the consent ground: "not_required" (the protocol needs none),
     * "consent_given", "level_4", "risk_asserted" (the event asserts a risk of significant
     * harm), "harm_judgement" (it carries a practitioner's recorded judgement of that risk) */
    const char *ground;
    char reason[320]; /* one line in words, no personal data */
} sh_decision;

/* The data items of a permitting decision as one comma-separated line ("child,narrative"),
 * as the broker's audit entries record them; returns its length. Policy files are refused
 * when one recipient's items would exceed SH_POLICY_ITEMS_TEXT_MAX characters. */
#define SH_POLICY_ITEMS_TEXT_MAX 700
size_t sh_decision_items(const sh_decision *d, char *out, size_t cap);

/* A consent state in words: "given", "not sought (risk of significant harm)". */
const char *sh_consent_words(int consent);

/* A consent ground (sh_decision.ground) in words: "without consent: level of need 4". */
const char *sh_ground_words(const char *ground);

/* Whether the event itself asserts a risk of significant harm: 2 when it carries a
 * practitioner's recorded judgement (harm_judgement), 1 when it is a safeguarding concern
 * marked immediate_risk or a request for support on the priority line, else 0. */
int sh_policy_risk_asserted(const sh_envelope *e);

/* The local authority responsible for the child, as the responsible_la relationship reads it:
 * the child's own field, else the plan's LA contact; NULL when neither is given. */
const char *sh_policy_responsible_la(const sh_envelope *e);

/* Decides one share. ISPs are tried in id order; the first that permits wins. On denial the
 * reason comes from the ISP, among those naming this recipient for this event type, that met
 * the most conditions in this order: sender party, status and lifecycle, purpose, lawful
 * basis, level of need, consent; when none names it, the code is SH_E_DENY_NO_ISP and isp is
 * NULL. Consent is met when the protocol
 * does not require it, when it is given, or — for required_unless_significant_harm — at level
 * of need 4, or when consent was not sought for risk of harm and the event asserts that risk
 * (a concern's immediate_risk, a request's priority). */
void sh_policy_decide(const sh_policy *p, const sh_share *s, sh_decision *d);

/* 1 when some protocol names org as a recipient by its code or by its sector (relationship
 * parties are not considered: they can name anyone). */
int sh_policy_names_recipient(const sh_policy *p, const sh_org *org);

/* Whether isp names event_type and purpose and has sender and recipient as parties by
 * organisation or sector (relationship parties are not considered); if so *items and *n are the
 * recipient's data items. Ignores status, lifecycle, basis, level and consent: for linting. */
int sh_isp_covers(const sh_isp *isp, int event_type, int purpose, const sh_org *sender,
                  const sh_org *recipient, const char *const **items, size_t *n);

/* Every organisation code isp names, up to cap, each with its role in roles ("lead",
 * "sender", "recipient", "signatory", "controller"); returns the count. */
size_t sh_isp_organisations(const sh_isp *isp, const char **out, const char **roles, size_t cap);

/* Its legal gateways, as written; returns the count. */
size_t sh_isp_gateways(const sh_isp *isp, const char *const **out);

/* Its signatories' organisations and signed_on dates (NULL when missing), up to cap; returns
 * the count. */
size_t sh_isp_signatures(const sh_isp *isp, const char **orgs, const char **dates, size_t cap);

/* Every locality isp names for sector parties, with the sector, up to cap. */
size_t sh_isp_localities(const sh_isp *isp, const char **out, sh_sector *sectors, size_t cap);

/* Writes isp as a reviewer reads it, in Markdown (docs/policy-review.md): what it is for, the
 * law, who sends, who receives what and keeps it how long, controllers, DPIA, signatures.
 * Organisations are named from reg when given (it may be NULL). */
void sh_isp_write_markdown(const sh_isp *isp, const sh_registry *reg, FILE *f);

/* True when path names a data item of the schema that can be withheld ("child",
 * "child.nhs_number", "level_of_need", "cp_plan_status", "request_for_support.concerns"). */
int sh_policy_item_valid(const char *path);

#endif
