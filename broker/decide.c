/*
 * decide.c — one loop over the registry for an event's decisions, and the decision context
 * (decide.h).
 *
 * Owns: the context's text format. Never: reads a key or value past the detail it is given.
 */
#include "decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "law.h"

/* One decision, handed to fn. */
static int s_one(const sh_policy *p, const sh_envelope *e, const sh_org *from, const sh_org *to,
                 const char *referrer, const char *school, int64_t now_ms, sh_decide_fn fn,
                 void *ctx)
{
    if (strcmp(to->code, from->code) == 0 || to->sector == SH_SECTOR_PEER) return 0;
    sh_share s = {e,      from,
                  to,     referrer && referrer[0] ? referrer : NULL,
                  now_ms, school && school[0] ? school : NULL};
    sh_decision d;
    sh_policy_decide(p, &s, &d);
    return fn(ctx, to, &d);
}

enum { EXTRA = 8 }; /* others' organisations a relationship names, at most, for one event */

size_t sh_decide_max(const sh_registry *reg)
{
    return sh_registry_local_count(reg) + sh_registry_candidate_count(reg) + EXTRA;
}

int sh_decide_all(const sh_policy *p, const sh_registry *reg, const sh_envelope *e,
                  const sh_org *from, const char *referrer, const char *school, int64_t now_ms,
                  sh_decide_fn fn, void *ctx)
{
    /* this broker's organisations; then, of other authorities', those a protocol names, and
     * those a relationship party may be for this event (the referrer, the school of record,
     * the responsible authority's), each once */
    int rc = 0;
    for (size_t i = 0; !rc && i < sh_registry_local_count(reg); i++)
        rc = s_one(p, e, from, sh_registry_at(reg, i), referrer, school, now_ms, fn, ctx);
    const sh_org *extra[EXTRA];
    size_t nx = 0, at = 0;
    const char *la = sh_policy_responsible_la(e);
    for (int k = 0; k < 2; k++) {
        const sh_org *o = sh_registry_by_code(reg, k ? school : referrer);
        if (o && o->authority) extra[nx++] = o;
    }
    for (const sh_org *o; nx < EXTRA && (o = sh_registry_foreign_la(reg, la, &at));)
        extra[nx++] = o;
    for (size_t i = 0; !rc && i < sh_registry_candidate_count(reg); i++) {
        const sh_org *o = sh_registry_candidate_at(reg, i);
        for (size_t k = 0; k < nx; k++)
            if (extra[k] == o) extra[k] = NULL; /* (decided here) */
        rc = s_one(p, e, from, o, referrer, school, now_ms, fn, ctx);
    }
    for (size_t k = 0; !rc && k < nx; k++) {
        for (size_t j = 0; extra[k] && j < k; j++)
            if (extra[j] == extra[k]) extra[k] = NULL;
        if (extra[k]) rc = s_one(p, e, from, extra[k], referrer, school, now_ms, fn, ctx);
    }
    return rc;
}

void sh_decide_context_write(const sh_envelope *e, const char *school, const char *referrer,
                             char out[SH_DECIDE_CONTEXT_MAX])
{
    const Sharehub__V1__LawfulBasis *lb = e->lawful_basis;
    const char *la = sh_policy_responsible_la(e);
    char a6[16] = "-", a9[16] = "-";
    /* "6(1)(e) public task" -> "6(1)(e)": the citation, as protocols write it */
    if (lb && lb->article6) sscanf(sh_article6_words((int)lb->article6), "%15s", a6);
    if (lb) sscanf(lb->article9 ? sh_article9_words((int)lb->article9) : "none", "%15s", a9);
    snprintf(out, SH_DECIDE_CONTEXT_MAX,
             "type=%s purpose=%s a6=%s a9=%s para=%u level=%u consent=%s risk=%d la=%s "
             "school=%s referrer=%s",
             sh_event_type_name(e->event_type),
             sh_enum_name(&sharehub__v1__purpose__descriptor, (int)e->purpose), a6, a9,
             lb ? lb->dpa_schedule1_paragraph : 0, e->level_of_need,
             sh_enum_name(&sharehub__v1__consent_state__descriptor, (int)e->consent),
             sh_policy_risk_asserted(e), la && la[0] ? la : "-", school && school[0] ? school : "-",
             referrer && referrer[0] ? referrer : "-");
}

/* The value of "key=value" in a space-separated detail, into out (cap bytes). 0, or -1. */
static int s_kv(const char *detail, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    for (const char *p = detail; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, n) == 0 && p[n] == '=') {
            size_t len = strcspn(p + n + 1, " ");
            if (len >= cap) return -1;
            memcpy(out, p + n + 1, len);
            out[len] = '\0';
            return 0;
        }
    }
    return -1;
}

static int s_kv_int(const char *detail, const char *key, int *out)
{
    char buf[16], *end;
    if (s_kv(detail, key, buf, sizeof buf)) return -1;
    long v = strtol(buf, &end, 10);
    if (*end || end == buf || v < 0 || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

/* A value written as its name (or, in entries from before names, its number): the name is
 * looked up by fn, or in the enum d. */
static int s_kv_named(const char *detail, const char *key, const ProtobufCEnumDescriptor *d,
                      int (*fn)(const char *), int *out)
{
    char buf[32];
    if (s_kv_int(detail, key, out) == 0) return 0;
    if (s_kv(detail, key, buf, sizeof buf)) return -1;
    if (fn) return (*out = fn(buf)) < 0 ? -1 : 0;
    return sh_enum_value(d, buf, out) ? -1 : 0;
}

static int s_article6_or_none(const char *text)
{
    return strcmp(text, "-") == 0 ? 0 : sh_law_article6(text);
}

/* An org code or "-" (none) into out. */
static int s_kv_org(const char *detail, const char *key, char *out, size_t cap)
{
    if (s_kv(detail, key, out, cap)) return -1;
    if (strcmp(out, "-") == 0) out[0] = '\0';
    return 0;
}

int sh_decide_context_read(const char *detail, sh_decide_context *c)
{
    char type[48];
    memset(c, 0, sizeof *c);
    if (s_kv(detail, "type", type, sizeof type) ||
        s_kv_named(detail, "purpose", &sharehub__v1__purpose__descriptor, NULL, &c->purpose) ||
        s_kv_named(detail, "a6", NULL, s_article6_or_none, &c->article6) ||
        s_kv_named(detail, "a9", NULL, sh_law_article9, &c->article9) ||
        s_kv_int(detail, "para", &c->paragraph) || s_kv_int(detail, "level", &c->level) ||
        s_kv_named(detail, "consent", &sharehub__v1__consent_state__descriptor, NULL,
                   &c->consent) ||
        s_kv_org(detail, "la", c->la, sizeof c->la) ||
        s_kv_org(detail, "school", c->school, sizeof c->school) ||
        s_kv_org(detail, "referrer", c->referrer, sizeof c->referrer) ||
        !(c->event_type = sh_event_type_from_name(type)))
        return -1;
    sharehub__v1__envelope__init(&c->env);
    sharehub__v1__lawful_basis__init(&c->lb);
    sharehub__v1__child__init(&c->child);
    sharehub__v1__cp_plan_status__init(&c->cp);
    sharehub__v1__looked_after_status__init(&c->lac);
    sharehub__v1__safeguarding_concern__init(&c->sgc);
    sharehub__v1__request_for_support__init(&c->rfs);
    if (s_kv_int(detail, "risk", &c->risk)) c->risk = 0; /* (entries from before it) */
    c->env.event_type = c->event_type;
    c->env.purpose = c->purpose;
    c->lb.article6 = c->article6;
    c->lb.article9 = c->article9;
    c->lb.dpa_schedule1_paragraph = (uint32_t)c->paragraph;
    c->env.lawful_basis = &c->lb;
    c->env.level_of_need = (uint32_t)c->level;
    c->env.consent = c->consent;
    c->child.responsible_la = c->la;
    c->env.child = &c->child;
    if (c->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_CP_PLAN_STATUS)
        c->env.cp_plan_status = &c->cp;
    if (c->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_LOOKED_AFTER_STATUS)
        c->env.looked_after_status = &c->lac;
    /* the risk the event asserted, where the safeguarding exception looks for it */
    sharehub__v1__harm_judgement__init(&c->hj);
    if (c->risk == 2) c->env.harm_judgement = &c->hj;
    c->sgc.immediate_risk = c->rfs.priority = c->risk == 1;
    if (c->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_SAFEGUARDING_CONCERN)
        c->env.safeguarding_concern = &c->sgc;
    if (c->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_REQUEST_FOR_SUPPORT)
        c->env.request_for_support = &c->rfs;
    return 0;
}

void sh_decide_context_type(const char *detail, char *out, size_t cap)
{
    char type[48];
    out[0] = '\0';
    if (s_kv(detail, "type", type, sizeof type) == 0 && sh_event_type_from_name(type))
        snprintf(out, cap, "%s", type);
}
