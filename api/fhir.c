/*
 * fhir.c — FHIR R4 for health systems (docs/fhir.md): the CP-IS flag of a child as a
 * searchset Bundle of Flag resources (the search is itself a CP-IS access: the responsible
 * authority is told), and an emergency-department attendance taken as an Encounter and
 * published as an unscheduled-care attendance. Errors are OperationOutcomes.
 *
 * Owns: the mapping between FHIR resources and the sharehub schema, one function each way.
 * Never: accepts a resource it cannot map whole (a modifierExtension, an unknown identifier
 * system) — it answers what is wrong and where, as FHIR's OperationOutcome says it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "clock.h"
#include "ident.h"

#define NHS_SYSTEM     "https://fhir.nhs.uk/Id/nhs-number"
#define ODS_SYSTEM     "https://fhir.nhs.uk/Id/ods-organization-code"
#define ODS_SITE       "https://fhir.nhs.uk/Id/ods-site-code"
#define FLAG_SYSTEM    "urn:sharehub:fhir:CodeSystem:cpis-flag"
#define SETTING_SYSTEM "urn:sharehub:fhir:CodeSystem:care-setting"
#define LA_SYSTEM      "urn:sharehub:fhir:NamingSystem:dfe-la-code"
#define ACT_CODE       "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define UUID_SYSTEM    "urn:ietf:rfc:3986"

static const char *const s_fhir_json[] = {"application/fhir+json", "application/json", NULL};

/* ---- OperationOutcome ------------------------------------------------------------------ */

/* The FHIR issue type of a sharehub code (http://hl7.org/fhir/issue-type). */
static const char *s_issue(sh_err code)
{
    switch (code) {
    case SH_E_NO_CLIENT_CERT:
    case SH_E_UNKNOWN_CLIENT:
        return "login";
    case SH_E_OUT_OF_SCOPE:
    case SH_E_SPOOFED_SOURCE:
        return "forbidden";
    case SH_E_NOT_FOUND:
    case SH_E_NO_RESOURCE:
        return "not-found";
    case SH_E_METHOD:
    case SH_E_MEDIA_TYPE:
        return "not-supported";
    case SH_E_TOO_LARGE:
        return "too-long";
    case SH_E_MISSING_FIELD:
        return "required";
    case SH_E_REPLAYED:
        return "duplicate";
    case SH_E_AGENT_UNAVAILABLE:
    case SH_E_MAP_FULL:
    case SH_E_DISK_FULL:
        return "transient";
    default:
        break;
    }
    return api_status_of(code) == MHD_HTTP_BAD_REQUEST ? "invalid" : "exception";
}

void api_fhir_error(api_req *r, sh_err code, const char *detail, const char *expression)
{
    json_object *oo = json_object_new_object(), *issues = json_object_new_array(),
                *issue = json_object_new_object();
    char diag[400];
    snprintf(diag, sizeof diag, "E%03d %s: %s%s%s", code, sh_err_name(code), sh_err_message(code),
             detail && *detail ? ": " : "", detail ? detail : "");
    json_object_object_add(oo, "resourceType", json_object_new_string("OperationOutcome"));
    json_object_object_add(issue, "severity", json_object_new_string("error"));
    json_object_object_add(issue, "code", json_object_new_string(s_issue(code)));
    json_object *details = json_object_new_object(), *codings = json_object_new_array(),
                *coding = json_object_new_object();
    char c[8];
    snprintf(c, sizeof c, "%03d", code);
    json_object_object_add(coding, "system",
                           json_object_new_string("urn:sharehub:fhir:CodeSystem:error"));
    json_object_object_add(coding, "code", json_object_new_string(c));
    json_object_object_add(coding, "display", json_object_new_string(sh_err_name(code)));
    json_object_array_add(codings, coding);
    json_object_object_add(details, "coding", codings);
    json_object_object_add(issue, "details", details);
    json_object_object_add(issue, "diagnostics", json_object_new_string(diag));
    if (expression && *expression) {
        json_object *ex = json_object_new_array();
        json_object_array_add(ex, json_object_new_string(expression));
        json_object_object_add(issue, "expression", ex);
    }
    json_object_array_add(issues, issue);
    json_object_object_add(oo, "issue", issues);
    unsigned st = api_status_of(code);
    if (st == MHD_HTTP_SERVICE_UNAVAILABLE) r->retry_after = 5;
    r->ctype = "application/fhir+json";
    api_answer(r, st, oo);
}

/* ---- small JSON helpers ---------------------------------------------------------------- */

static json_object *s_get(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v)
               ? v
               : NULL;
}

static const char *s_str(json_object *o, const char *key)
{
    json_object *v = s_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static json_object *s_first(json_object *o, const char *key)
{
    json_object *v = s_get(o, key);
    return v && json_object_is_type(v, json_type_array) && json_object_array_length(v)
               ? json_object_array_get_idx(v, 0)
               : NULL;
}

static void s_add(json_object *o, const char *key, const char *text)
{
    if (text && *text) json_object_object_add(o, key, json_object_new_string(text));
}

static json_object *s_coding(const char *system, const char *code, const char *display)
{
    json_object *c = json_object_new_object();
    s_add(c, "system", system);
    s_add(c, "code", code);
    s_add(c, "display", display);
    return c;
}

static json_object *s_concept(json_object *coding, const char *text)
{
    json_object *cc = json_object_new_object(), *arr = json_object_new_array();
    json_object_array_add(arr, coding);
    json_object_object_add(cc, "coding", arr);
    s_add(cc, "text", text);
    return cc;
}

/* An instant as FHIR writes it: 2026-11-29T10:45:41.719Z. */
static void s_instant(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* A FHIR dateTime with a time and zone (2026-11-29T10:45:00Z, …+01:00, fractions allowed)
 * into ms. 0, or -1. */
static int s_datetime(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int n = 0, frac = 0, fd = 0;
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, fd++)
            if (fd < 3) frac = frac * 10 + (*p - '0');
        if (fd == 0) return -1;
        for (; fd < 3; fd++)
            frac *= 10;
    }
    int off = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0');
        if (*p == '-') off = -off;
        p += 6;
    } else {
        return -1;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

/* ---- GET /fhir/r4/Flag?patient.identifier=SYSTEM|NHS ------------------------------------ */

void api_fhir_flag_start(api *s, api_req *r)
{
    const char *q = api_query(r, "patient.identifier");
    if (!q) {
        api_fhir_error(r, SH_E_MISSING_FIELD,
                       "patient.identifier: search by the child's NHS number, "
                       "patient.identifier=" NHS_SYSTEM "|NNNNNNNNNN",
                       "Flag.subject");
        return;
    }
    const char *bar = strchr(q, '|'), *value = bar ? bar + 1 : q;
    if (bar &&
        ((size_t)(bar - q) != strlen(NHS_SYSTEM) || strncmp(q, NHS_SYSTEM, (size_t)(bar - q)))) {
        api_fhir_error(r, SH_E_BAD_FIELD,
                       "patient.identifier: only the NHS number system (" NHS_SYSTEM
                       ") is searched here",
                       "Flag.subject");
        return;
    }
    char id[40];
    snprintf(id, sizeof id, "nhs:%.30s", value);
    json_object *req = json_object_new_object(), *access = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string("child"));
    json_object_object_add(req, "id", json_object_new_string(id));
    json_object_object_add(req, "flag_only", json_object_new_boolean(1));
    s_add(access, "site", r->client->site);
    s_add(access, "setting", r->client->setting);
    json_object_object_add(req, "access", access);
    if (api_reader(r, req, 1)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

/* The Flag resource of the agent's answer about nhs. */
static json_object *s_flag(json_object *reply, const char *nhs)
{
    static const struct {
        const char *flag, *code, *display;
    } kinds[] = {{"child_protection_plan", "child-protection-plan", "Child protection plan"},
                 {"looked_after", "looked-after", "Looked-after child"},
                 {"pre_birth_plan", "pre-birth-plan", "Unborn child protection plan"}};
    const char *flag = s_str(reply, "flag");
    size_t k = 0;
    while (k < 3 && strcmp(kinds[k].flag, flag ? flag : "") != 0)
        k++;
    if (k == 3) return NULL;
    json_object *f = json_object_new_object(), *cat = json_object_new_array();
    char when[32];
    json_object_object_add(f, "resourceType", json_object_new_string("Flag"));
    s_add(f, "id", s_str(reply, "flag_event_id"));
    json_object *v = s_get(reply, "flag_at_ms");
    if (v) {
        json_object *meta = json_object_new_object();
        s_instant(json_object_get_int64(v), when);
        s_add(meta, "lastUpdated", when);
        json_object_object_add(f, "meta", meta);
    }
    json_object *la = s_get(reply, "la_contact");
    const char *code = s_str(la, "la_code");
    char ref[24] = "";
    if (code && *code) { /* the responsible authority, with its numbers, contained */
        json_object *org = json_object_new_object(), *ids = json_object_new_array(),
                    *ident = json_object_new_object(), *contacts = json_object_new_array();
        snprintf(ref, sizeof ref, "la-%s", code);
        json_object_object_add(org, "resourceType", json_object_new_string("Organization"));
        s_add(org, "id", ref);
        s_add(ident, "system", LA_SYSTEM);
        s_add(ident, "value", code);
        json_object_array_add(ids, ident);
        json_object_object_add(org, "identifier", ids);
        const char *name = s_str(la, "name");
        char nm[64];
        snprintf(nm, sizeof nm, "%s (local authority %s)", name ? name : "Local authority", code);
        s_add(org, "name", nm);
        const char *phones[2][2] = {{"office hours", s_str(la, "office_hours_phone")},
                                    {"out of hours", s_str(la, "out_of_hours_phone")}};
        for (int i = 0; i < 2; i++) {
            if (!phones[i][1] || !*phones[i][1]) continue;
            json_object *c = json_object_new_object(), *purpose = json_object_new_object(),
                        *tel = json_object_new_array(), *t = json_object_new_object();
            s_add(purpose, "text", phones[i][0]);
            json_object_object_add(c, "purpose", purpose);
            s_add(t, "system", "phone");
            s_add(t, "value", phones[i][1]);
            s_add(t, "use", "work");
            json_object_array_add(tel, t);
            json_object_object_add(c, "telecom", tel);
            json_object_array_add(contacts, c);
        }
        if (json_object_array_length(contacts))
            json_object_object_add(org, "contact", contacts);
        else
            json_object_put(contacts);
        json_object *contained = json_object_new_array();
        json_object_array_add(contained, org);
        json_object_object_add(f, "contained", contained);
    }
    s_add(f, "status", "active");
    json_object_array_add(cat, s_concept(s_coding("http://terminology.hl7.org/CodeSystem/"
                                                  "flag-category",
                                                  "safety", "Safety"),
                                         NULL));
    json_object_object_add(f, "category", cat);
    json_object_object_add(
        f, "code",
        s_concept(s_coding(FLAG_SYSTEM, kinds[k].code, kinds[k].display), kinds[k].display));
    json_object *subj = json_object_new_object(), *sid = json_object_new_object();
    s_add(sid, "system", NHS_SYSTEM);
    s_add(sid, "value", nhs);
    json_object_object_add(subj, "identifier", sid);
    json_object_object_add(f, "subject", subj);
    const char *start = s_str(reply, "flag_start");
    if (start && *start) {
        json_object *period = json_object_new_object();
        s_add(period, "start", start);
        json_object_object_add(f, "period", period);
    }
    if (ref[0]) {
        json_object *author = json_object_new_object();
        char hash[28];
        snprintf(hash, sizeof hash, "#%s", ref);
        s_add(author, "reference", hash);
        json_object_object_add(f, "author", author);
    }
    return f;
}

void api_fhir_flag_finish(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, "Flag.subject")) return;
    const char *q = api_query(r, "patient.identifier"), *bar = q ? strchr(q, '|') : NULL;
    char nhs[SH_NHS_LEN + 1] = "", when[32], self[160];
    sh_nhs_normalise(bar ? bar + 1 : q, nhs);
    json_object *b = json_object_new_object(), *entries = json_object_new_array();
    json_object_object_add(b, "resourceType", json_object_new_string("Bundle"));
    json_object *meta = json_object_new_object();
    s_instant(sh_clock_ms(), when);
    s_add(meta, "lastUpdated", when);
    json_object_object_add(b, "meta", meta);
    s_add(b, "type", "searchset");
    s_add(b, "timestamp", when);
    json_object *flag = s_flag(reply, nhs);
    json_object_object_add(b, "total", json_object_new_int(flag ? 1 : 0));
    json_object *links = json_object_new_array(), *self_link = json_object_new_object();
    snprintf(self, sizeof self, "Flag?patient.identifier=%s|%s", NHS_SYSTEM, nhs);
    s_add(self_link, "relation", "self");
    s_add(self_link, "url", self);
    json_object_array_add(links, self_link);
    json_object_object_add(b, "link", links);
    if (flag) {
        json_object *e = json_object_new_object(), *search = json_object_new_object();
        char full[64];
        snprintf(full, sizeof full, "urn:uuid:%s", s_str(reply, "flag_event_id"));
        s_add(e, "fullUrl", full);
        json_object_object_add(e, "resource", flag);
        s_add(search, "mode", "match");
        json_object_object_add(e, "search", search);
        json_object_array_add(entries, e);
    }
    const char *an = s_str(reply, "access_notification");
    if (an) { /* the clinician's system learns that the authority was told of this access */
        json_object *e = json_object_new_object(), *oo = json_object_new_object(),
                    *issues = json_object_new_array(), *issue = json_object_new_object(),
                    *search = json_object_new_object();
        char diag[200];
        snprintf(diag, sizeof diag,
                 "CP-IS access recorded: local authority %s has been sent access notification "
                 "%s",
                 s_str(reply, "responsible_la") ? s_str(reply, "responsible_la") : "?", an);
        json_object_object_add(oo, "resourceType", json_object_new_string("OperationOutcome"));
        s_add(issue, "severity", "information");
        s_add(issue, "code", "informational");
        s_add(issue, "diagnostics", diag);
        json_object_array_add(issues, issue);
        json_object_object_add(oo, "issue", issues);
        char full[64];
        snprintf(full, sizeof full, "urn:uuid:%s", an);
        s_add(e, "fullUrl", full);
        json_object_object_add(e, "resource", oo);
        s_add(search, "mode", "outcome");
        json_object_object_add(e, "search", search);
        json_object_array_add(entries, e);
    }
    if (json_object_array_length(entries))
        json_object_object_add(b, "entry", entries);
    else
        json_object_put(entries);
    r->ctype = "application/fhir+json";
    api_answer(r, MHD_HTTP_OK, b);
}

/* ---- POST /fhir/r4/Encounter ----------------------------------------------------------- */

/* The identifier value of o (a Reference or an element holding "identifier") when its system
 * is one of the two given. */
static const char *s_ident(json_object *o, const char *sys1, const char *sys2)
{
    json_object *id = s_get(o, "identifier");
    if (id && json_object_is_type(id, json_type_array)) id = json_object_array_get_idx(id, 0);
    const char *sys = s_str(id, "system");
    if (!sys || (strcmp(sys, sys1) != 0 && (!sys2 || strcmp(sys, sys2) != 0))) return NULL;
    return s_str(id, "value");
}

/* The text of a CodeableConcept: its text, else its first coding's display. */
static const char *s_text(json_object *cc)
{
    const char *t = s_str(cc, "text");
    return t ? t : s_str(s_first(cc, "coding"), "display");
}

void api_fhir_encounter_start(api *s, api_req *r)
{
    json_object *enc = api_body_json(r, s_fhir_json);
    if (!enc) return;
    const char *rt = s_str(enc, "resourceType"), *status = s_str(enc, "status");
    const char *why = NULL, *where = NULL;
    sh_err code = SH_E_BAD_FIELD;
    json_object *cls = s_get(enc, "class");
    const char *nhs = s_ident(s_get(enc, "subject"), NHS_SYSTEM, NULL);
    json_object *loc = s_get(s_first(enc, "location"), "location");
    const char *site = s_ident(loc, ODS_SITE, ODS_SYSTEM);
    if (!site) site = s_ident(s_get(enc, "serviceProvider"), ODS_SYSTEM, ODS_SITE);
    const char *start = s_str(s_get(enc, "period"), "start");
    int64_t arrived = 0;
    const char *setting = "emergency_department";
    json_object *type = s_first(enc, "type"), *tc = s_first(type, "coding");
    if (tc && s_str(tc, "system") && strcmp(s_str(tc, "system"), SETTING_SYSTEM) == 0)
        setting = s_str(tc, "code");
    if (!rt || strcmp(rt, "Encounter") != 0) {
        why = "resourceType: want Encounter", where = "Encounter";
    } else if (s_get(enc, "modifierExtension")) {
        why = "modifierExtension: not understood here, so the resource cannot be taken",
        where = "Encounter.modifierExtension";
    } else if (!status) {
        code = SH_E_MISSING_FIELD, why = "status", where = "Encounter.status";
    } else if (strcmp(status, "arrived") && strcmp(status, "triaged") &&
               strcmp(status, "in-progress") && strcmp(status, "finished")) {
        why = "status: an attendance is arrived, triaged, in-progress or finished",
        where = "Encounter.status";
    } else if (!cls) {
        code = SH_E_MISSING_FIELD, why = "class", where = "Encounter.class";
    } else if (!s_str(cls, "system") || strcmp(s_str(cls, "system"), ACT_CODE) != 0 ||
               !s_str(cls, "code") || strcmp(s_str(cls, "code"), "EMER") != 0) {
        why = "class: want " ACT_CODE " EMER (an unscheduled-care attendance)",
        where = "Encounter.class";
    } else if (!nhs) {
        code = SH_E_MISSING_FIELD,
        why = "subject.identifier: the patient's NHS number (system " NHS_SYSTEM ")",
        where = "Encounter.subject";
    } else if (!site) {
        code = SH_E_MISSING_FIELD,
        why = "location.location.identifier: the ODS site code (or serviceProvider's)",
        where = "Encounter.location";
    } else if (!start) {
        code = SH_E_MISSING_FIELD, why = "period.start: when the patient arrived",
        where = "Encounter.period.start";
    } else if (s_datetime(start, &arrived)) {
        why = "period.start: a dateTime with a time and zone (2026-11-29T10:45:00Z)",
        where = "Encounter.period.start";
    }
    if (why) {
        json_object_put(enc);
        api_fhir_error(r, code, why, where);
        return;
    }
    /* the sharehub event (docs/fhir.md has the mapping) */
    json_object *ev = json_object_new_object(), *child = json_object_new_object(),
                *lb = json_object_new_object(), *u = json_object_new_object();
    s_add(ev, "event_type", "unscheduled_care_attendance");
    const char *eid = s_ident(enc, UUID_SYSTEM, NULL);
    if (eid && strncmp(eid, "urn:uuid:", 9) == 0) s_add(ev, "event_id", eid + 9);
    s_add(ev, "purpose", "direct_care");
    s_add(ev, "consent", "not_required");
    s_add(lb, "article6", "e_public_task");
    s_add(lb, "article9", "2h_health_social_care");
    json_object_object_add(lb, "dpa_schedule1_paragraph", json_object_new_int(2));
    json_object_object_add(ev, "lawful_basis", lb);
    s_add(child, "nhs_number", nhs);
    json_object_object_add(ev, "child", child);
    s_add(u, "site_code", site);
    s_add(u, "setting", setting);
    json_object_object_add(u, "arrived_at_ms", json_object_new_int64(arrived));
    s_add(u, "presenting_complaint", s_text(s_first(enc, "reasonCode")));
    s_add(u, "outcome", s_text(s_get(s_get(enc, "hospitalization"), "dischargeDisposition")));
    json_object_object_add(ev, "unscheduled_care_attendance", u);
    json_object_put(enc);
    json_object *req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string("publish"));
    json_object_object_add(req, "event", ev);
    if (api_reader(r, req, 0)) {
        json_object_put(req);
        return;
    }
    api_ask(s, r, req);
}

/* The schema field an error names, as the Encounter element it came from. */
static const char *s_element(const char *detail)
{
    static const struct {
        const char *field, *element;
    } map[] = {{"child.nhs_number", "Encounter.subject.identifier"},
               {"unscheduled_care_attendance.site_code", "Encounter.location"},
               {"unscheduled_care_attendance.setting", "Encounter.type"},
               {"unscheduled_care_attendance.arrived_at_ms", "Encounter.period.start"},
               {"event_id", "Encounter.identifier"}};
    for (size_t i = 0; detail && i < sizeof map / sizeof map[0]; i++)
        if (strncmp(detail, map[i].field, strlen(map[i].field)) == 0) return map[i].element;
    return "Encounter";
}

void api_fhir_encounter_finish(api *s, api_req *r, json_object *reply)
{
    (void)s;
    if (api_agent_failed(r, reply, s_element(s_str(reply, "detail")))) return;
    /* the Encounter as taken: its id is the event's; the original body is answered back */
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *enc = tok ? json_tokener_parse_ex(tok, r->body, (int)r->len) : NULL;
    if (tok) json_tokener_free(tok);
    if (!enc) enc = json_object_new_object();
    const char *eid = s_str(reply, "event_id"), *status = s_str(reply, "status");
    s_add(enc, "id", eid);
    json_object *meta = json_object_new_object();
    char when[32];
    s_instant(sh_clock_ms(), when);
    s_add(meta, "lastUpdated", when);
    json_object_object_add(enc, "meta", meta);
    snprintf(r->location, sizeof r->location, "/fhir/r4/Encounter/%s", eid ? eid : "");
    r->ctype = "application/fhir+json";
    int again = status && strcmp(status, "already accepted") == 0;
    api_answer(r, again ? MHD_HTTP_OK : MHD_HTTP_CREATED, enc);
}
