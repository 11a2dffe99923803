/*
 * isp.c — reading an Information Sharing Protocol file and checking that it is one an
 * information-governance officer could sign (docs/policy.md, "Protocol files").
 *
 * Owns: the YAML schema of isp-*.yaml, its checks (lawful basis as the law writes it and its
 * consistency, signatories from every party, retention, lifecycle dates) and loading a policy
 * directory. Never: accepts a protocol in force that lacks what WEISF requires of it, or stops
 * at the first mistake when asked to report them all.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ident.h"
#include "isp_int.h"
#include "law.h"
#include "yaml.h"

#define N(a) (sizeof a / sizeof a[0])

/* ---- schema ---------------------------------------------------------------------------- */

static const cyaml_strval_t s_status[] = {
    {"draft", STATUS_DRAFT}, {"active", STATUS_ACTIVE}, {"suspended", STATUS_SUSPENDED}};
static const cyaml_strval_t s_sectors[] = {{"education", SH_SECTOR_EDUCATION},
                                           {"health", SH_SECTOR_HEALTH},
                                           {"social_care", SH_SECTOR_SOCIAL_CARE},
                                           {"police", SH_SECTOR_POLICE},
                                           {"local_authority", SH_SECTOR_LOCAL_AUTHORITY}};
static const cyaml_strval_t s_relations[] = {{"referrer", REL_REFERRER},
                                             {"responsible_la", REL_RESPONSIBLE_LA},
                                             {"child_school", REL_CHILD_SCHOOL}};
static const cyaml_strval_t s_consent[] = {
    {"required", CONSENT_RULE_REQUIRED},
    {"required_unless_significant_harm", CONSENT_RULE_UNLESS_HARM},
    {"not_required", CONSENT_RULE_NOT_REQUIRED},
    {"significant_harm_only", CONSENT_RULE_HARM_ONLY}};
static const cyaml_strval_t s_then[] = {{"erase", THEN_ERASE}, {"review", THEN_REVIEW}};
static const cyaml_strval_t s_controller_roles[] = {
    {"controller", CONTROLLER}, {"joint_controller", JOINT_CONTROLLER}, {"processor", PROCESSOR}};
/* The schema's purposes and event types take their names from the protobuf-c descriptors
 * (codec.h): filled once, before the first file is read (s_tables). */
static cyaml_strval_t s_purposes[16], s_event_types[32];

static const cyaml_schema_value_t s_string = {CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64)};
static const cyaml_schema_value_t s_text = {CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 200)};
static cyaml_schema_value_t s_purpose = {CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, int, s_purposes, 0)};
static cyaml_schema_value_t s_event_type = {
    CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, int, s_event_types, 0)};

static const cyaml_schema_field_t s_retention_fields[] = {
    CYAML_FIELD_STRING_PTR("keep", CYAML_FLAG_POINTER, y_retention, keep, 1, 40),
    CYAML_FIELD_ENUM("then", CYAML_FLAG_STRICT, y_retention, then, s_then, N(s_then)),
    CYAML_FIELD_END};

static const cyaml_schema_field_t s_party_fields[] = {
    CYAML_FIELD_STRING_PTR("organisation", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                           organisation, 1, 9),
    CYAML_FIELD_ENUM("sector", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_party, sector, s_sectors,
                     N(s_sectors)),
    CYAML_FIELD_ENUM("relationship", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_party, relationship,
                     s_relations, N(s_relations)),
    CYAML_FIELD_SEQUENCE("localities", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                         localities, &s_string, 1, 64),
    CYAML_FIELD_SEQUENCE("service_types", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                         service_types, &s_string, 1, 32),
    CYAML_FIELD_SEQUENCE("data_items", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                         data_items, &s_string, 1, 128),
    CYAML_FIELD_MAPPING_PTR("retention", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                            retention, s_retention_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_party = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_party, s_party_fields)};

static const cyaml_schema_field_t s_basis_fields[] = {
    CYAML_FIELD_STRING_PTR("article6", CYAML_FLAG_POINTER, y_basis, article6_text, 1, 60),
    CYAML_FIELD_STRING_PTR("article9", CYAML_FLAG_POINTER, y_basis, article9_text, 1, 60),
    CYAML_FIELD_STRING_PTR("dpa_schedule1_paragraph", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           y_basis, paragraph_text, 1, 60),
    CYAML_FIELD_END};

static const cyaml_schema_field_t s_range_fields[] = {
    CYAML_FIELD_STRING_PTR("min", CYAML_FLAG_POINTER, y_range, min_text, 1, 9),
    CYAML_FIELD_STRING_PTR("max", CYAML_FLAG_POINTER, y_range, max_text, 1, 9), CYAML_FIELD_END};

static const cyaml_schema_field_t s_signatory_fields[] = {
    CYAML_FIELD_STRING_PTR("organisation", CYAML_FLAG_POINTER, y_signatory, organisation, 1, 9),
    CYAML_FIELD_ENUM("signs_for", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_signatory, signs_for,
                     s_sectors, N(s_sectors)),
    CYAML_FIELD_STRING_PTR("role", CYAML_FLAG_POINTER, y_signatory, role, 1, 100),
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_signatory, name, 1,
                           100),
    CYAML_FIELD_STRING_PTR("signed_on", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_signatory,
                           signed_on, 1, 20),
    CYAML_FIELD_STRING_PTR("version", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_signatory,
                           version, 1, 16),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_signatory = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_signatory, s_signatory_fields)};

static const cyaml_schema_field_t s_controller_fields[] = {
    CYAML_FIELD_STRING_PTR("organisation", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_controller,
                           organisation, 1, 9),
    CYAML_FIELD_ENUM("sector", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_controller, sector,
                     s_sectors, N(s_sectors)),
    CYAML_FIELD_ENUM("role", CYAML_FLAG_STRICT, y_controller, role, s_controller_roles,
                     N(s_controller_roles)),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_controller = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_controller, s_controller_fields)};

static const cyaml_schema_field_t s_dpia_fields[] = {
    CYAML_FIELD_STRING_PTR("reference", CYAML_FLAG_POINTER, y_dpia, reference, 1, 64),
    CYAML_FIELD_STRING_PTR("completed_on", CYAML_FLAG_POINTER, y_dpia, completed_on, 1, 20),
    CYAML_FIELD_END};

static cyaml_schema_field_t s_isp_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, y_isp, id, 1, 48),
    CYAML_FIELD_STRING_PTR("version", CYAML_FLAG_POINTER, y_isp, version, 1, 16),
    CYAML_FIELD_STRING_PTR("title", CYAML_FLAG_POINTER, y_isp, title, 1, 200),
    CYAML_FIELD_ENUM("status", CYAML_FLAG_STRICT, y_isp, status, s_status, N(s_status)),
    CYAML_FIELD_STRING_PTR("review_date", CYAML_FLAG_POINTER, y_isp, review_date, 1, 20),
    CYAML_FIELD_STRING_PTR("lead", CYAML_FLAG_POINTER, y_isp, lead, 1, 9),
    CYAML_FIELD_STRING_PTR("purpose_statement", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                           purpose_statement, 1, 2000),
    CYAML_FIELD_SEQUENCE("gateways", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp, gateways,
                         &s_text, 1, 16),
    CYAML_FIELD_SEQUENCE("purposes", CYAML_FLAG_POINTER, y_isp, purposes, &s_purpose, 1,
                         N(s_purposes)),
    CYAML_FIELD_SEQUENCE("event_types", CYAML_FLAG_POINTER, y_isp, event_types, &s_event_type, 1,
                         N(s_event_types)),
    CYAML_FIELD_SEQUENCE("senders", CYAML_FLAG_POINTER, y_isp, senders, &s_party, 1, 64),
    CYAML_FIELD_SEQUENCE("recipients", CYAML_FLAG_POINTER, y_isp, recipients, &s_party, 1, 64),
    CYAML_FIELD_MAPPING_PTR("lawful_basis", CYAML_FLAG_POINTER, y_isp, lawful_basis,
                            s_basis_fields),
    CYAML_FIELD_ENUM("consent", CYAML_FLAG_STRICT, y_isp, consent, s_consent, N(s_consent)),
    CYAML_FIELD_MAPPING_PTR("level_of_need", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                            level_of_need, s_range_fields),
    CYAML_FIELD_SEQUENCE("controllers", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                         controllers, &s_controller, 1, 64),
    CYAML_FIELD_MAPPING_PTR("retention", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp, retention,
                            s_retention_fields),
    CYAML_FIELD_MAPPING_PTR("dpia", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp, dpia,
                            s_dpia_fields),
    CYAML_FIELD_SEQUENCE("signatories", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                         signatories, &s_signatory, 1, 64),
    CYAML_FIELD_STRING_PTR("delivery_expiry", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                           delivery_expiry, 2, 10),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_isp_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_isp, s_isp_fields)};

/* ---- the report ----------------------------------------------------------------------- */

typedef struct s_check {
    const char *file;
    sh_error *err;
    int mistakes;
    sh_policy_report_fn report;
    void *ctx;
} s_check;

/* One mistake in the file: "file: key: what is wrong; the fix". The first is kept in err. */
__attribute__((format(printf, 3, 4))) static void s_bad(s_check *ck, const char *key,
                                                        const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ck->mistakes++ == 0)
        sh_error_set(ck->err, SH_E_POLICY_FILE, "%s: %s: %s", ck->file, key, msg);
    if (ck->report) ck->report(ck->ctx, ck->file, key, msg);
}

/* ---- checks --------------------------------------------------------------------------- */

/* A whole number lo..hi written in decimal digits only (no sign, point or exponent). */
static int s_number(s_check *ck, const char *key, const char *text, unsigned lo, unsigned hi,
                    unsigned *out)
{
    unsigned long v = 0;
    size_t n = strspn(text, "0123456789");
    if (n == 0 || text[n] || n > 9 || (v = strtoul(text, NULL, 10)) < lo || v > hi) {
        s_bad(ck, key, "'%.20s' is not a whole number from %u to %u", text, lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int s_date(s_check *ck, const char *key, const char *text)
{
    if (sh_date_check(text) == SH_OK) return 0;
    s_bad(ck, key, "'%.20s' is not a calendar date: write it YYYY-MM-DD (as \"2027-01-31\")", text);
    return -1;
}

/* "6 years", "18 months", "2 weeks", "90 days" (singular too), 1 day to 100 years. */
static int s_retention(s_check *ck, const char *key, const y_retention *y, sh_retention *out)
{
    static const struct {
        const char *word;
        char unit;
        unsigned mul, max;
    } units[] = {{"day", 'd', 1, 36500},
                 {"week", 'd', 7, 5200},
                 {"month", 'm', 1, 1200},
                 {"year", 'm', 12, 100}};
    char word[16] = "";
    unsigned long n = 0;
    int used = 0;
    if (sscanf(y->keep, "%lu %15[a-z]%n", &n, word, &used) == 2 && !y->keep[used] &&
        isdigit((unsigned char)y->keep[0])) {
        size_t wl = strlen(word);
        if (wl > 1 && word[wl - 1] == 's') word[wl - 1] = '\0';
        for (size_t i = 0; i < N(units); i++)
            if (strcmp(word, units[i].word) == 0 && n >= 1 && n <= units[i].max) {
                *out = (sh_retention){(unsigned)n * units[i].mul, units[i].unit,
                                      y->then == THEN_REVIEW, y->keep};
                return 0;
            }
    }
    s_bad(ck, key,
          "'%.40s' is not a retention period: write a whole number and days, weeks, months or "
          "years (as \"6 years\"), up to 100 years",
          y->keep);
    return -1;
}

static void s_check_party(s_check *ck, const char *side, unsigned i, y_party *p, int recipient,
                          const sh_retention *dflt)
{
    char key[48];
    snprintf(key, sizeof key, "%s %u", side, i + 1);
    int kinds = (p->organisation != NULL) + (p->sector != 0) + (p->relationship != 0);
    if (kinds != 1) s_bad(ck, key, "give exactly one of organisation, sector, relationship");
    if (p->organisation && sh_org_code_check(p->organisation) != SH_OK)
        s_bad(ck, key, "organisation '%.9s' is not a code (1-9 of A-Z, 0-9)", p->organisation);
    if (p->localities_count && !p->sector) s_bad(ck, key, "localities go with a sector");
    if (p->service_types_count && p->sector != SH_SECTOR_HEALTH)
        s_bad(ck, key, "service_types go with sector: health");
    for (unsigned k = 0; k < p->service_types_count; k++)
        if (!sh_service_type_known(p->service_types[k]))
            s_bad(ck, key,
                  "service type '%.40s' is not one sharehub knows: use emergency_department, "
                  "urgent_treatment_centre, minor_injury_unit, walk_in_centre, out_of_hours_gp, "
                  "ambulance, maternity, or another listed in docs/policy.md",
                  p->service_types[k]);
    if (!recipient && p->relationship) s_bad(ck, key, "a relationship names a recipient");
    if (!recipient && p->data_items_count) s_bad(ck, key, "data_items belong to recipients");
    if (!recipient && p->retention) s_bad(ck, key, "retention belongs to recipients");
    if (recipient && !p->data_items_count)
        s_bad(ck, key, "data_items is missing: list what this recipient may see");
    size_t joined = 0;
    for (unsigned k = 0; k < p->data_items_count; k++) {
        if (!sh_policy_item_valid(p->data_items[k]))
            s_bad(ck, key, "unknown data item '%.60s' (docs/schema.md names them)",
                  p->data_items[k]);
        joined += strlen(p->data_items[k]) + 1;
    }
    if (joined > SH_POLICY_ITEMS_TEXT_MAX) /* each decision's items go into an audit entry */
        s_bad(ck, key,
              "data_items come to over %d characters together; name whole messages instead of "
              "their fields",
              SH_POLICY_ITEMS_TEXT_MAX);
    if (p->retention) {
        char rk[64];
        snprintf(rk, sizeof rk, "%s retention.keep", key);
        s_retention(ck, rk, p->retention, &p->ret);
    } else if (recipient && dflt) {
        p->ret = *dflt;
    }
}

static void s_check_basis(s_check *ck, y_isp *y)
{
    y_basis *b = y->lawful_basis;
    b->article6 = sh_law_article6(b->article6_text);
    b->article9 = sh_law_article9(b->article9_text);
    const char *unusable = sh_law_article6_unusable(b->article6_text);
    if (unusable)
        s_bad(ck, "lawful_basis.article6",
              "'%.40s' is %s, which a public body sharing for its tasks cannot rely on: "
              "use 6(1)(e) public task (or 6(1)(c) legal obligation)",
              b->article6_text, unusable);
    else if (b->article6 < 0)
        s_bad(ck, "lawful_basis.article6",
              "'%.40s' is not an Article 6 condition: write it as the law does, 6(1)(a), "
              "6(1)(c), 6(1)(d) or 6(1)(e)",
              b->article6_text);
    if (b->article9 < 0)
        s_bad(ck, "lawful_basis.article9",
              "'%.40s' is not an Article 9 condition: write none, 9(2)(a), 9(2)(b), 9(2)(c), "
              "9(2)(g) or 9(2)(h)",
              b->article9_text);
    unsigned part = 0;
    if (b->paragraph_text && sh_law_paragraph(b->paragraph_text, &b->paragraph, &part) < 0) {
        s_bad(ck, "lawful_basis.dpa_schedule1_paragraph",
              "'%.40s' is not a DPA 2018 Schedule 1 paragraph: write its number 1-37 (as 18, "
              "or \"Schedule 1 paragraph 18\")",
              b->paragraph_text);
        return;
    }
    unsigned para = b->paragraph;
    if (para && part && part != sh_law_part(para))
        s_bad(ck, "lawful_basis.dpa_schedule1_paragraph",
              "paragraph %u is in Part %u of Schedule 1, not Part %u", para, sh_law_part(para),
              part);
    const char *k = "lawful_basis.dpa_schedule1_paragraph";
    switch (b->article9) {
    case 4: /* 9(2)(g) */
        if (!para)
            s_bad(ck, k,
                  "missing: 9(2)(g) needs a Schedule 1 Part 2 condition; for safeguarding "
                  "children it is paragraph 18");
        else if (sh_law_part(para) != 2)
            s_bad(ck, k,
                  "paragraph %u is in Part %u, which does not serve 9(2)(g): give a Part 2 "
                  "paragraph (6-28); for safeguarding children, paragraph 18",
                  para, sh_law_part(para));
        break;
    case 5: /* 9(2)(h) */
        if (para != 2)
            s_bad(ck, k,
                  "9(2)(h) is met through Schedule 1 paragraph 2 (health or social care "
                  "purposes): write 2");
        break;
    case 2: /* 9(2)(b) */
        if (para != 1)
            s_bad(ck, k,
                  "9(2)(b) is met through Schedule 1 paragraph 1 (employment, social security "
                  "and social protection): write 1");
        break;
    default:
        if (para && b->article9 >= 0)
            s_bad(ck, k, "a Schedule 1 paragraph goes with 9(2)(b), 9(2)(g) or 9(2)(h), not %s",
                  sh_article9_words(b->article9));
    }
    if ((b->article6 == 1 || b->article9 == 1) && y->consent != CONSENT_RULE_REQUIRED)
        s_bad(ck, "consent",
              "the lawful basis is consent (%s), so consent must be required: write "
              "consent: required, or choose another basis",
              b->article6 == 1 ? "6(1)(a)" : "9(2)(a)");
}

/* The party lines that need a signature, and whether one is there. */
static void s_check_signatures(s_check *ck, const y_isp *y)
{
    const char *v = y->version;
    for (unsigned i = 0; i < y->signatories_count; i++) {
        const y_signatory *s = &y->signatories[i];
        char key[48];
        snprintf(key, sizeof key, "signatories %u", i + 1);
        if (sh_org_code_check(s->organisation) != SH_OK)
            s_bad(ck, key, "organisation '%.9s' is not a code", s->organisation);
        if (!s->signed_on)
            s_bad(ck, key, "signed_on is missing: the date %s's %s signed", s->organisation,
                  s->role);
        else
            s_date(ck, key, s->signed_on);
        if (!s->version)
            s_bad(ck, key, "version is missing: the version signed (this is version %s)", v);
        else if (strcmp(s->version, v) != 0)
            s_bad(ck, key,
                  "%s signed version %s, but this is version %s: a changed protocol needs every "
                  "party to sign it again (set version and signed_on when they have)",
                  s->organisation, s->version, v);
    }
    int lead = 0;
    for (unsigned i = 0; i < y->signatories_count; i++)
        lead |= strcmp(y->signatories[i].organisation, y->lead) == 0;
    if (!lead)
        s_bad(ck, "signatories",
              "the lead, %s, has not signed: add {organisation: \"%s\", role: ..., signed_on: "
              "YYYY-MM-DD, version: \"%s\"}",
              y->lead, y->lead, v);
    for (int side = 0; side < 2; side++) {
        const y_party *ps = side ? y->recipients : y->senders;
        unsigned np = side ? y->recipients_count : y->senders_count;
        for (unsigned i = 0; i < np; i++) {
            const y_party *p = &ps[i];
            int sector = p->sector;
            if (p->relationship == REL_CHILD_SCHOOL) sector = SH_SECTOR_EDUCATION;
            if (p->relationship == REL_RESPONSIBLE_LA) sector = SH_SECTOR_SOCIAL_CARE;
            if (p->relationship == REL_REFERRER) continue; /* a sender under another protocol */
            int ok = 0;
            for (unsigned k = 0; k < y->signatories_count && !ok; k++) {
                const y_signatory *s = &y->signatories[k];
                ok = p->organisation ? strcmp(s->organisation, p->organisation) == 0
                                     : s->signs_for == sector;
            }
            if (ok) continue;
            char key[48];
            snprintf(key, sizeof key, "%s %u", side ? "recipient" : "sender", i + 1);
            if (p->organisation)
                s_bad(ck, key,
                      "%s is a party but has not signed: add a signatory with organisation: "
                      "\"%s\"",
                      p->organisation, p->organisation);
            else
                s_bad(ck, key,
                      "no one has signed for the %s sector: add a signatory from its lead "
                      "organisation with signs_for: %s",
                      sh_sector_name((sh_sector)sector), sh_sector_name((sh_sector)sector));
        }
    }
}

/* What a protocol in force must contain beyond who, what and why (a draft may lack it). */
static void s_check_signable(s_check *ck, const y_isp *y)
{
    if (!y->purpose_statement || strlen(y->purpose_statement) < 20)
        s_bad(ck, "purpose_statement",
              "%s: say in a sentence or more why these parties share this, as the signed "
              "protocol does",
              y->purpose_statement ? "too short" : "missing");
    if (!y->gateways_count)
        s_bad(ck, "gateways",
              "missing: name the legal gateway(s) that allow the sharing, as "
              "[\"Children Act 1989 s47\", \"Children Act 2004 s11\"]");
    if (!y->controllers_count)
        s_bad(ck, "controllers",
              "missing: name who controls the data, as [{organisation: \"%s\", role: "
              "controller}]",
              y->lead);
    int controllers = 0;
    for (unsigned i = 0; i < y->controllers_count; i++) {
        const y_controller *c = &y->controllers[i];
        controllers += c->role != PROCESSOR;
        if ((c->organisation != NULL) == (c->sector != 0))
            s_bad(ck, "controllers", "entry %u: give exactly one of organisation and sector",
                  i + 1);
    }
    if (y->controllers_count && !controllers)
        s_bad(ck, "controllers", "only processors are named: at least one party is a controller");
    if (!y->dpia)
        s_bad(ck, "dpia",
              "missing: give the data protection impact assessment, as {reference: "
              "ECC-DPIA-2025-014, completed_on: \"2025-06-01\"}");
    else
        s_date(ck, "dpia.completed_on", y->dpia->completed_on);
    for (unsigned i = 0; i < y->recipients_count; i++)
        if (!y->retention && !y->recipients[i].retention) {
            s_bad(ck, "retention",
                  "missing for recipient %u: say how long it keeps what it receives and what "
                  "then happens, as {keep: 6 years, then: erase}, for the protocol or the "
                  "recipient",
                  i + 1);
            break;
        }
    if (!y->signatories_count)
        s_bad(ck, "signatories",
              "missing: every party signs, with the date and the version signed, as "
              "[{organisation: \"%s\", role: Director of Children's Services, signed_on: "
              "\"2026-01-15\", version: \"%s\"}]",
              y->lead, y->version);
    else
        s_check_signatures(ck, y);
}

static void s_add_months(const char *date, int months, char out[11])
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = atoi(date), m = atoi(date + 5), d = atoi(date + 8);
    int idx = (y * 12 + (m - 1)) + months;
    y = idx / 12;
    m = idx % 12 + 1;
    int max = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > max) d = max;
    /* review dates are checked as 1900-2199 on load, so the fields fit their widths */
    snprintf(out, 11, "%04u-%02u-%02u", (unsigned)y % 10000, (unsigned)m % 100, (unsigned)d % 100);
}

static void s_check_isp(s_check *ck, sh_isp *isp)
{
    y_isp *y = isp->y;
    for (const char *c = y->id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            s_bad(ck, "id", "'%.48s' is not [a-z0-9-]: use lower-case letters, digits, '-'", y->id);
            break;
        }
    if (!isdigit((unsigned char)y->version[0]) ||
        strspn(y->version, "0123456789.") != strlen(y->version))
        s_bad(ck, "version", "'%.16s' is not a version: write digits and dots, as \"4\" or \"4.1\"",
              y->version);
    int dated = s_date(ck, "review_date", y->review_date) == 0;
    if (y->delivery_expiry && sh_duration_parse(y->delivery_expiry, &isp->expiry_ms))
        s_bad(ck, "delivery_expiry",
              "'%.10s' is not a duration from 1s to 366d, written as a whole number and a unit "
              "(30s, 15m, 36h, 5d)",
              y->delivery_expiry);
    if (y->level_of_need &&
        s_number(ck, "level_of_need.min", y->level_of_need->min_text, 0, 4,
                 &y->level_of_need->min) == 0 &&
        s_number(ck, "level_of_need.max", y->level_of_need->max_text, 0, 4,
                 &y->level_of_need->max) == 0 &&
        y->level_of_need->min > y->level_of_need->max)
        s_bad(ck, "level_of_need", "min %u is above max %u", y->level_of_need->min,
              y->level_of_need->max);
    if (sh_org_code_check(y->lead) != SH_OK)
        s_bad(ck, "lead", "'%.9s' is not an organisation code", y->lead);
    s_check_basis(ck, y);
    sh_retention dflt = {0};
    int has_dflt = y->retention && s_retention(ck, "retention.keep", y->retention, &dflt) == 0;
    for (unsigned i = 0; i < y->senders_count; i++)
        s_check_party(ck, "sender", i, &y->senders[i], 0, NULL);
    for (unsigned i = 0; i < y->recipients_count; i++)
        s_check_party(ck, "recipient", i, &y->recipients[i], 1, has_dflt ? &dflt : NULL);
    if (y->status != STATUS_DRAFT) s_check_signable(ck, y);
    snprintf(isp->rule, sizeof isp->rule, "%s@%s", y->id, y->version);
    if (dated) {
        s_add_months(y->review_date, -3, isp->due_from);
        s_add_months(y->review_date, 3, isp->lapse_from);
    }
}

/* ---- loading -------------------------------------------------------------------------- */

static int s_namecmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_ispcmp(const void *a, const void *b)
{
    return strcmp(((const sh_isp *)a)->y->id, ((const sh_isp *)b)->y->id);
}

static pthread_once_t s_tables_once = PTHREAD_ONCE_INIT;

static void s_tables(void)
{
    s_purpose.enumeration.count =
        sh_yaml_enum_table(&sharehub__v1__purpose__descriptor, 0, 0, s_purposes, N(s_purposes));
    s_event_type.enumeration.count = sh_yaml_enum_table(&sharehub__v1__event_type__descriptor, 0, 0,
                                                        s_event_types, N(s_event_types));
}

/* The isp-*.yaml files of dir, with their paths, in name order. */
static sh_err s_list(const char *dir, char ***out, size_t *count, sh_error *err)
{
    DIR *d = opendir(dir);
    if (!d) return sh_error_set(err, SH_E_IO, "policy directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    sh_err rc = SH_OK;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        size_t len = strlen(de->d_name);
        /* protocol files are isp-*.yaml; the registry and notes may sit beside them */
        if (strncmp(de->d_name, "isp-", 4) != 0 || len < 10 ||
            strcmp(de->d_name + len - 5, ".yaml") != 0)
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof *p);
            if (!p) {
                rc = sh_error_set(err, SH_E_NOMEM, "policy");
                break;
            }
            names = p;
        }
        if (!(names[n] = malloc(strlen(dir) + len + 2))) {
            rc = sh_error_set(err, SH_E_NOMEM, "policy");
            break;
        }
        sprintf(names[n++], "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (!rc && n > 1) qsort(names, n, sizeof *names, s_namecmp);
    *out = names;
    *count = n;
    return rc;
}

sh_err sh_policy_load_report(const char *dir, sh_policy **out, sh_policy_report_fn report,
                             void *ctx, sh_error *err)
{
    *out = NULL;
    pthread_once(&s_tables_once, s_tables);
    char **names = NULL;
    size_t n = 0;
    sh_err rc = s_list(dir, &names, &n, err);
    sh_policy *p = rc ? NULL : calloc(1, sizeof *p);
    if (!rc && (!p || !(p->isps = calloc(n ? n : 1, sizeof *p->isps))))
        rc = sh_error_set(err, SH_E_NOMEM, "policy");
    s_check ck = {NULL, err, 0, report, ctx};
    for (size_t i = 0; !rc && i < n && (report || !ck.mistakes); i++) {
        void *data = NULL;
        sh_error yerr = {0};
        ck.file = names[i];
        if (sh_yaml_load(names[i], &s_isp_schema, &data, SH_E_POLICY_FILE, &yerr)) {
            if (yerr.code != SH_E_POLICY_FILE) {
                rc = sh_error_set(err, yerr.code, "%s", yerr.detail);
                break;
            }
            /* an unknown key: say where the keys are listed (and what approvers became) */
            if (strstr(yerr.detail, "Unexpected key")) {
                size_t dl = strlen(yerr.detail);
                snprintf(yerr.detail + dl, sizeof yerr.detail - dl, "%s",
                         strstr(yerr.detail, "approvers")
                             ? " — approvers are now signatories, each with signed_on and the "
                               "version signed (docs/policy.md)"
                             : " — not a protocol key (docs/policy.md lists them)");
            }
            if (ck.mistakes++ == 0) *err = yerr;
            if (report) report(ctx, names[i], NULL, yerr.detail);
            continue;
        }
        sh_isp *isp = &p->isps[p->n++];
        isp->y = data;
        isp->file = names[i];
        names[i] = NULL;
        s_check_isp(&ck, isp);
        for (size_t j = 0; j + 1 < p->n; j++)
            if (strcmp(p->isps[j].y->id, isp->y->id) == 0)
                s_bad(&ck, "id", "%s is also the id of %s: every protocol needs its own",
                      isp->y->id, p->isps[j].file);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!rc && ck.mistakes) rc = SH_E_POLICY_FILE;
    if (rc) {
        sh_policy_destroy(&p);
        return rc;
    }
    qsort(p->isps, p->n, sizeof *p->isps, s_ispcmp);
    *out = p;
    return SH_OK;
}

sh_err sh_policy_load(const char *dir, sh_policy **out, sh_error *err)
{
    return sh_policy_load_report(dir, out, NULL, NULL, err);
}

void sh_policy_destroy(sh_policy **pp)
{
    if (!pp || !*pp) return;
    sh_policy *p = *pp;
    for (size_t i = 0; p->isps && i < p->n; i++) {
        sh_yaml_free(&s_isp_schema, p->isps[i].y);
        free(p->isps[i].file);
    }
    free(p->isps);
    free(p);
    *pp = NULL;
}
