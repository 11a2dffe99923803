/*
 * policy.c — the WEISF lifecycle and the sharing decision under loaded protocols.
 *
 * Owns: lifecycle dates, data items, and decisions (isp.c reads and checks the files).
 * Never: permits by default, or under an ISP that is a draft, suspended or lapsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "isp_int.h"
#include "law.h"

#define ET(x)      SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x
#define CONSENT(x) SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_##x
#define N(a)       (sizeof a / sizeof a[0])

/* ---- data items ----------------------------------------------------------------------- */

/* Envelope fields always sent: they say what the event is and why it may be shared. */
static int s_header_field(const char *name)
{
    static const char *const always[] = {"event_id",       "schema_version", "event_type",
                                         "source_org",     "occurred_at_ms", "published_at_ms",
                                         "purpose",        "lawful_basis",   "consent",
                                         "correlation_id", "harm_judgement"};
    for (size_t i = 0; i < N(always); i++)
        if (strcmp(name, always[i]) == 0) return 1;
    return 0;
}

int sh_policy_item_valid(const char *path)
{
    char buf[128];
    if (!path || strlen(path) >= sizeof buf) return 0;
    strcpy(buf, path);
    const ProtobufCMessageDescriptor *d = &sharehub__v1__envelope__descriptor;
    int depth = 0;
    for (char *seg = strtok(buf, "."); seg; seg = strtok(NULL, "."), depth++) {
        if (!d) return 0; /* a scalar has no sub-fields */
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, seg);
        if (!f || (depth == 0 && s_header_field(seg))) return 0;
        d = f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
    }
    return depth > 0 && path[strlen(path) - 1] != '.';
}

/* ---- dates ---------------------------------------------------------------------------- */

static void s_today(int64_t now_ms, char out[11])
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

sh_isp_state sh_isp_state_at(const sh_isp *isp, int64_t now_ms)
{
    if (isp->y->status == STATUS_DRAFT) return SH_ISP_DRAFT;
    if (isp->y->status == STATUS_SUSPENDED) return SH_ISP_SUSPENDED;
    char today[11];
    s_today(now_ms, today);
    if (strcmp(today, isp->lapse_from) >= 0) return SH_ISP_LAPSED;
    if (strcmp(today, isp->y->review_date) > 0) return SH_ISP_OVERDUE;
    if (strcmp(today, isp->due_from) >= 0) return SH_ISP_REVIEW_DUE;
    return SH_ISP_ACTIVE;
}

const char *sh_isp_state_name(sh_isp_state s)
{
    static const char *const names[] = {"active", "review_due", "overdue",
                                        "lapsed", "draft",      "suspended"};
    return (unsigned)s < N(names) ? names[s] : "unknown";
}

/* ---- the loaded protocols ------------------------------------------------------------ */

size_t sh_policy_count(const sh_policy *p)
{
    return p->n;
}

const sh_isp *sh_policy_at(const sh_policy *p, size_t i)
{
    return i < p->n ? &p->isps[i] : NULL;
}

const char *sh_isp_id(const sh_isp *isp)
{
    return isp->y->id;
}

const char *sh_isp_version(const sh_isp *isp)
{
    return isp->y->version;
}

const char *sh_isp_title(const sh_isp *isp)
{
    return isp->y->title;
}

const char *sh_isp_file(const sh_isp *isp)
{
    return isp->file;
}

int64_t sh_isp_expiry_ms(const sh_isp *isp)
{
    return isp->expiry_ms;
}

const sh_isp *sh_policy_find(const sh_policy *p, const char *rule, size_t len)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strlen(p->isps[i].rule) == len && memcmp(p->isps[i].rule, rule, len) == 0)
            return &p->isps[i];
    return NULL;
}

const char *sh_isp_review_date(const sh_isp *isp)
{
    return isp->y->review_date;
}

const char *sh_isp_lead(const sh_isp *isp)
{
    return isp->y->lead;
}

const char *sh_isp_lapse_date(const sh_isp *isp)
{
    return isp->lapse_from;
}

void sh_isp_levels(const sh_isp *isp, unsigned *lo, unsigned *hi)
{
    *lo = isp->y->level_of_need ? isp->y->level_of_need->min : 0;
    *hi = isp->y->level_of_need ? isp->y->level_of_need->max : 4;
}

void sh_isp_basis(const sh_isp *isp, int *article6, int *article9, unsigned *paragraph)
{
    *article6 = isp->y->lawful_basis->article6;
    *article9 = isp->y->lawful_basis->article9;
    *paragraph = isp->y->lawful_basis->paragraph;
}

const char *sh_isp_rule(const sh_isp *isp)
{
    return isp->rule;
}

/* ---- deciding ------------------------------------------------------------------------- */

const char *sh_policy_responsible_la(const sh_envelope *e)
{
    if (e->child && e->child->responsible_la && e->child->responsible_la[0])
        return e->child->responsible_la;
    if (e->event_type == ET(CP_PLAN_STATUS) && e->cp_plan_status->responsible_la)
        return e->cp_plan_status->responsible_la->la_code;
    if (e->event_type == ET(LOOKED_AFTER_STATUS) && e->looked_after_status->responsible_la)
        return e->looked_after_status->responsible_la->la_code;
    return NULL;
}

static int s_listed(char *const *v, unsigned n, const char *x)
{
    for (unsigned i = 0; i < n; i++)
        if (x && strcmp(v[i], x) == 0) return 1;
    return 0;
}

static int s_party_matches(const y_party *p, const sh_org *org, const sh_share *s)
{
    if (!org) return 0;
    if (p->organisation) return strcmp(p->organisation, org->code) == 0;
    if (p->relationship == REL_REFERRER) return s->referrer && strcmp(s->referrer, org->code) == 0;
    if (p->relationship == REL_CHILD_SCHOOL)
        return s->child_school && strcmp(s->child_school, org->code) == 0;
    if (p->relationship == REL_RESPONSIBLE_LA) {
        const char *la = sh_policy_responsible_la(s->env);
        return la && org->la_code && strcmp(la, org->la_code) == 0;
    }
    if ((int)org->sector != p->sector) return 0;
    if (p->service_types_count &&
        !s_listed(p->service_types, p->service_types_count, org->service_type))
        return 0;
    return !p->localities_count || s_listed(p->localities, p->localities_count, org->locality);
}

static int s_contains(const int *v, unsigned n, int x)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

int sh_policy_risk_asserted(const sh_envelope *e)
{
    if (e->harm_judgement) return 2;
    if (e->event_type == ET(SAFEGUARDING_CONCERN) && e->safeguarding_concern)
        return e->safeguarding_concern->immediate_risk;
    if (e->event_type == ET(REQUEST_FOR_SUPPORT) && e->request_for_support)
        return e->request_for_support->priority;
    return 0;
}

const char *sh_ground_words(const char *ground)
{
    static const char *const w[][2] = {
        {"not_required", "consent not required by the protocol"},
        {"consent_given", "consent given"},
        {"level_4", "without consent: level of need 4"},
        {"risk_asserted", "without consent: the event asserts a risk of significant harm"},
        {"harm_judgement",
         "without consent: a practitioner's recorded judgement of significant harm"}};
    for (size_t i = 0; ground && i < N(w); i++)
        if (strcmp(ground, w[i][0]) == 0) return w[i][1];
    return "unknown";
}

const char *sh_consent_words(int c)
{
    static const char *const w[] = {
        "not stated",  "given", "refused", "withdrawn", "not sought (risk of significant harm)",
        "not required"};
    return (unsigned)c < N(w) ? w[c] : "unknown";
}

/* The lawful basis in words: "6(1)(e) public task; 9(2)(g) substantial public interest,
 * Schedule 1 paragraph 18". */
static void s_basis_words(int a6, int a9, unsigned para, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s; %s", sh_article6_words(a6), sh_article9_words(a9));
    if (para && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ", Schedule 1 paragraph %u", para);
}

/* Tries one ISP; returns the number of conditions met (8 = permitted) and, when it stops
 * short, the code and reason of the first condition that failed, in words. */
static int s_try(const sh_isp *isp, const sh_share *s, sh_decision *d)
{
    const y_isp *y = isp->y;
    const sh_envelope *e = s->env;
    const char *rule = isp->rule;
    d->isp = isp;
    d->state = sh_isp_state_at(isp, s->now_ms);
    if (!s_contains(y->event_types, y->event_types_count, e->event_type)) return 0;
    const y_party *to = NULL;
    for (unsigned i = 0; i < y->recipients_count && !to; i++)
        if (s_party_matches(&y->recipients[i], s->recipient, s)) to = &y->recipients[i];
    if (!to) {
        d->code = SH_E_DENY_PARTY;
        snprintf(d->reason, sizeof d->reason, "%s: the recipient %s is not one of its parties",
                 rule, s->recipient->code);
        return 1;
    }
    int sender_ok = 0;
    for (unsigned i = 0; i < y->senders_count && !sender_ok; i++)
        sender_ok = s_party_matches(&y->senders[i], s->sender, s);
    if (!sender_ok) {
        d->code = SH_E_DENY_PARTY;
        snprintf(d->reason, sizeof d->reason, "%s: the sender %s is not one of its parties", rule,
                 s->sender->code);
        return 2;
    }
    if (d->state == SH_ISP_LAPSED) {
        d->code = SH_E_DENY_LAPSED;
        snprintf(d->reason, sizeof d->reason,
                 "%s lapsed on %s (3 months after its review date %s) and permits nothing", rule,
                 isp->lapse_from, y->review_date);
        return 3;
    }
    if (d->state == SH_ISP_DRAFT || d->state == SH_ISP_SUSPENDED) {
        d->code = SH_E_DENY_NOT_ACTIVE;
        snprintf(d->reason, sizeof d->reason, "%s is %s and permits nothing", rule,
                 d->state == SH_ISP_DRAFT ? "a draft" : "suspended");
        return 3;
    }
    if (!s_contains(y->purposes, y->purposes_count, e->purpose)) {
        d->code = SH_E_DENY_PURPOSE;
        int n = snprintf(d->reason, sizeof d->reason, "%s does not cover the purpose %s (it covers",
                         rule, sh_enum_name(&sharehub__v1__purpose__descriptor, e->purpose));
        for (unsigned i = 0; i < y->purposes_count && n > 0 && (size_t)n < sizeof d->reason; i++)
            n += snprintf(d->reason + n, sizeof d->reason - (size_t)n, "%s%s", i ? ", " : " ",
                          sh_enum_name(&sharehub__v1__purpose__descriptor, y->purposes[i]));
        if (n > 0 && (size_t)n < sizeof d->reason)
            snprintf(d->reason + n, sizeof d->reason - (size_t)n, ")");
        return 4;
    }
    const y_basis *b = y->lawful_basis;
    const Sharehub__V1__LawfulBasis *eb = e->lawful_basis;
    if ((int)eb->article6 != b->article6 || (int)eb->article9 != b->article9 ||
        (b->article9 == 4 && eb->dpa_schedule1_paragraph != b->paragraph)) {
        char have[120], want[120];
        s_basis_words((int)eb->article6, (int)eb->article9, eb->dpa_schedule1_paragraph, have,
                      sizeof have);
        s_basis_words(b->article6, b->article9, b->paragraph, want, sizeof want);
        d->code = SH_E_DENY_BASIS;
        snprintf(d->reason, sizeof d->reason,
                 "%s: the event's lawful basis (%.90s) is not its (%.90s)", rule, have, want);
        return 5;
    }
    unsigned lo = y->level_of_need ? y->level_of_need->min : 0;
    unsigned hi = y->level_of_need ? y->level_of_need->max : 4;
    if (e->level_of_need < lo || e->level_of_need > hi) {
        d->code = SH_E_DENY_LEVEL;
        snprintf(d->reason, sizeof d->reason, "%s covers levels of need %u to %u, not level %u",
                 rule, lo, hi, e->level_of_need);
        return 6;
    }
    const char *ground = NULL;
    int harm = y->consent == CONSENT_RULE_UNLESS_HARM || y->consent == CONSENT_RULE_HARM_ONLY;
    if (y->consent == CONSENT_RULE_NOT_REQUIRED)
        ground = "not_required";
    else if (harm && e->level_of_need == 4)
        ground = "level_4";
    else if (harm && sh_policy_risk_asserted(e))
        ground = sh_policy_risk_asserted(e) == 2 ? "harm_judgement" : "risk_asserted";
    else if (y->consent != CONSENT_RULE_HARM_ONLY && e->consent == CONSENT(GIVEN))
        ground = "consent_given";
    if (!ground) {
        d->code = SH_E_DENY_CONSENT;
        if (y->consent == CONSENT_RULE_REQUIRED)
            snprintf(d->reason, sizeof d->reason, "%s needs consent, and consent is %s", rule,
                     sh_consent_words(e->consent));
        else if (y->consent == CONSENT_RULE_HARM_ONLY)
            snprintf(d->reason, sizeof d->reason,
                     "%s shares only on a risk of significant harm: level of need 4, or an "
                     "event that asserts the risk (immediate risk, priority); this is level %u "
                     "and asserts none",
                     rule, e->level_of_need);
        else if (e->consent == CONSENT(NOT_SOUGHT_RISK_OF_HARM))
            snprintf(d->reason, sizeof d->reason,
                     "%s: consent was not sought for a risk of significant harm, but below level "
                     "of need 4 the event must assert that risk (immediate risk, priority, a "
                     "recorded judgement) and it does not",
                     rule);
        else
            snprintf(d->reason, sizeof d->reason,
                     "%s needs consent below level of need 4 unless the event asserts a risk of "
                     "significant harm, and consent is %s",
                     rule, sh_consent_words(e->consent));
        return 7;
    }
    d->permit = 1;
    d->code = SH_OK;
    d->items = (const char *const *)to->data_items;
    d->n_items = to->data_items_count;
    d->retention = &to->ret;
    d->ground = ground;
    snprintf(d->reason, sizeof d->reason, "%s permits (%s)%s", rule, sh_ground_words(ground),
             d->state == SH_ISP_OVERDUE ? "; the protocol is overdue for review" : "");
    return 8;
}

size_t sh_decision_items(const sh_decision *d, char *out, size_t cap)
{
    size_t used = 0;
    if (cap) out[0] = '\0';
    for (size_t i = 0; i < d->n_items && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", d->items[i]);
    return used < cap ? used : cap - 1;
}

void sh_policy_decide(const sh_policy *p, const sh_share *s, sh_decision *d)
{
    memset(d, 0, sizeof *d);
    d->code = SH_E_DENY_NO_ISP;
    if (!s->sender || !s->recipient) {
        snprintf(d->reason, sizeof d->reason, "no protocol covers %s to %s",
                 sh_event_type_name(s->env->event_type), s->recipient ? s->recipient->code : "?");
        return;
    }
    snprintf(d->reason, sizeof d->reason, "no protocol names %s as a recipient of %s from %s",
             s->recipient->code, sh_event_type_name(s->env->event_type), s->sender->code);
    int best = 0;
    for (size_t i = 0; i < p->n; i++) {
        sh_decision t;
        memset(&t, 0, sizeof t);
        int stage = s_try(&p->isps[i], s, &t);
        if (t.permit) {
            *d = t;
            return;
        }
        /* only a protocol that names this recipient can be its closest */
        if (stage >= 2 && stage > best) {
            best = stage;
            *d = t;
        }
    }
}

/* ---- queries for linting -------------------------------------------------------------- */

static int s_static_match(const y_party *p, const sh_org *org)
{
    if (p->relationship) return 0;
    sh_share none = {0};
    return s_party_matches(p, org, &none);
}

int sh_policy_names_recipient(const sh_policy *p, const sh_org *org)
{
    for (size_t i = 0; i < sh_policy_count(p); i++) {
        const y_isp *y = sh_policy_at(p, i)->y;
        for (unsigned k = 0; k < y->recipients_count; k++)
            if (s_static_match(&y->recipients[k], org)) return 1;
    }
    return 0;
}

int sh_isp_covers(const sh_isp *isp, int event_type, int purpose, const sh_org *sender,
                  const sh_org *recipient, const char *const **items, size_t *n)
{
    const y_isp *y = isp->y;
    if (!s_contains(y->event_types, y->event_types_count, event_type) ||
        !s_contains(y->purposes, y->purposes_count, purpose))
        return 0;
    int from = 0;
    for (unsigned i = 0; i < y->senders_count && !from; i++)
        from = s_static_match(&y->senders[i], sender);
    for (unsigned i = 0; from && i < y->recipients_count; i++) {
        if (s_static_match(&y->recipients[i], recipient)) {
            *items = (const char *const *)y->recipients[i].data_items;
            *n = y->recipients[i].data_items_count;
            return 1;
        }
    }
    return 0;
}

size_t sh_isp_organisations(const sh_isp *isp, const char **out, const char **roles, size_t cap)
{
    const y_isp *y = isp->y;
    size_t n = 0;
    if (n < cap) roles[n] = "lead", out[n++] = y->lead;
    for (unsigned i = 0; i < y->senders_count && n < cap; i++)
        if (y->senders[i].organisation) roles[n] = "sender", out[n++] = y->senders[i].organisation;
    for (unsigned i = 0; i < y->recipients_count && n < cap; i++)
        if (y->recipients[i].organisation)
            roles[n] = "recipient", out[n++] = y->recipients[i].organisation;
    for (unsigned i = 0; i < y->signatories_count && n < cap; i++)
        roles[n] = "signatory", out[n++] = y->signatories[i].organisation;
    for (unsigned i = 0; i < y->controllers_count && n < cap; i++)
        if (y->controllers[i].organisation)
            roles[n] = "controller", out[n++] = y->controllers[i].organisation;
    return n;
}

size_t sh_isp_localities(const sh_isp *isp, const char **out, sh_sector *sectors, size_t cap)
{
    const y_isp *y = isp->y;
    size_t n = 0;
    for (int side = 0; side < 2; side++) {
        const y_party *ps = side ? y->recipients : y->senders;
        unsigned np = side ? y->recipients_count : y->senders_count;
        for (unsigned i = 0; i < np; i++)
            for (unsigned k = 0; k < ps[i].localities_count && n < cap; k++) {
                sectors[n] = (sh_sector)ps[i].sector;
                out[n++] = ps[i].localities[k];
            }
    }
    return n;
}

size_t sh_isp_gateways(const sh_isp *isp, const char *const **out)
{
    *out = (const char *const *)isp->y->gateways;
    return isp->y->gateways_count;
}

size_t sh_isp_signatures(const sh_isp *isp, const char **orgs, const char **dates, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < isp->y->signatories_count && n < cap; i++, n++) {
        orgs[n] = isp->y->signatories[i].organisation;
        dates[n] = isp->y->signatories[i].signed_on;
    }
    return n;
}
