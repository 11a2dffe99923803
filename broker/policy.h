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

/* Loads every isp-*.yaml file of dir (in name order; other files are ignored). Errors:
 * SH_E_POLICY_FILE (detail: the file and what is wrong — YAML, unknown key, bad value, unknown data
 * item, duplicate id), SH_E_IO (the directory cannot be read), SH_E_NOMEM. */
sh_err sh_policy_load(const char *dir, sh_policy **out, sh_error *err);

void sh_policy_destroy(sh_policy **p);

size_t sh_policy_count(const sh_policy *p);
const sh_isp *sh_policy_at(const sh_policy *p, size_t i);

const char *sh_isp_id(const sh_isp *isp);
unsigned sh_isp_version(const sh_isp *isp);
const char *sh_isp_title(const sh_isp *isp);
const char *sh_isp_file(const sh_isp *isp);
const char *sh_isp_review_date(const sh_isp *isp);
const char *sh_isp_lead(const sh_isp *isp);
/* The day it lapses (YYYY-MM-DD: 3 months after its review date; from that day it never
 * permits). */
const char *sh_isp_lapse_date(const sh_isp *isp);
/* The levels of need it covers, lo to hi (0-4; 0 to 4 when it names none). */
void sh_isp_levels(const sh_isp *isp, unsigned *lo, unsigned *hi);

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
    char reason[200]; /* one line, no personal data */
} sh_decision;

/* The data items of a permitting decision as one comma-separated line ("child,narrative"),
 * as the broker's audit entries record them; returns its length. Policy files are refused
 * when one recipient's items would exceed SH_POLICY_ITEMS_TEXT_MAX characters. */
#define SH_POLICY_ITEMS_TEXT_MAX 700
size_t sh_decision_items(const sh_decision *d, char *out, size_t cap);

/* The local authority responsible for the child, as the responsible_la relationship reads it:
 * the child's own field, else the plan's LA contact; NULL when neither is given. */
const char *sh_policy_responsible_la(const sh_envelope *e);

/* Decides one share. ISPs are tried in id order; the first that permits wins. On denial the
 * reason comes from the ISP that met the most conditions, in this order: event type, sender
 * party, recipient party, status and lifecycle, purpose, lawful basis, level of need, consent. */
void sh_policy_decide(const sh_policy *p, const sh_share *s, sh_decision *d);

/* Whether isp names event_type and purpose and has sender and recipient as parties by
 * organisation or sector (relationship parties are not considered); if so *items and *n are the
 * recipient's data items. Ignores status, lifecycle, basis, level and consent: for linting. */
int sh_isp_covers(const sh_isp *isp, int event_type, int purpose, const sh_org *sender,
                  const sh_org *recipient, const char *const **items, size_t *n);

/* Every organisation code isp names, up to cap, each with its role in roles ("lead",
 * "sender", "recipient", "approver"); returns the count. */
size_t sh_isp_organisations(const sh_isp *isp, const char **out, const char **roles, size_t cap);

/* Every locality isp names for sector parties, with the sector, up to cap. */
size_t sh_isp_localities(const sh_isp *isp, const char **out, sh_sector *sectors, size_t cap);

/* True when path names a data item of the schema that can be withheld ("child",
 * "child.nhs_number", "level_of_need", "cp_plan_status", "request_for_support.concerns"). */
int sh_policy_item_valid(const char *path);

#endif
