/*
 * policy.c — ISP files, the WEISF lifecycle and the sharing decision.
 *
 * Owns: parsing and checking ISP files (docs/policy.md), lifecycle dates, and decisions.
 * Never: permits by default, or under an ISP that is a draft, suspended or lapsed.
 */
#include "policy.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "ident.h"
#include "yaml.h"

#define ET(x)      SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x
#define CONSENT(x) SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_##x

enum { STATUS_DRAFT = 1, STATUS_ACTIVE = 2, STATUS_SUSPENDED = 3 };
enum { REL_NONE = 0, REL_REFERRER = 1, REL_RESPONSIBLE_LA = 2, REL_CHILD_SCHOOL = 3 };
enum { CONSENT_RULE_REQUIRED = 1, CONSENT_RULE_UNLESS_HARM = 2, CONSENT_RULE_NOT_REQUIRED = 3 };

typedef struct y_party {
    char *organisation;
    int sector;
    int relationship;
    char **localities;
    unsigned localities_count;
    char **data_items;
    unsigned data_items_count;
} y_party;

/* (numbers are read as text and parsed strictly by s_number: libcyaml reads "2.1" as 2) */
typedef struct y_basis {
    int article6, article9;
    char *paragraph_text;
    unsigned dpa_schedule1_paragraph;
} y_basis;

typedef struct y_range {
    char *min_text, *max_text;
    unsigned min, max;
} y_range;

typedef struct y_approver {
    char *role, *organisation, *approved_on;
} y_approver;

typedef struct y_isp {
    char *id;
    char *version_text;
    unsigned version;
    char *title;
    int status;
    char *review_date;
    char *lead;
    int *purposes;
    unsigned purposes_count;
    int *event_types;
    unsigned event_types_count;
    y_party *senders;
    unsigned senders_count;
    y_party *recipients;
    unsigned recipients_count;
    y_basis *lawful_basis;
    int consent;
    y_range *level_of_need;
    y_approver *approvers;
    unsigned approvers_count;
    char *delivery_expiry; /* "5d": undelivered shares expire after this; NULL: the broker's */
} y_isp;

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
/* The schema's enumerations take their names from the protobuf-c descriptors (codec.h):
 * filled once, before the first file is read (s_tables). */
static cyaml_strval_t s_purposes[16], s_event_types[32], s_article6[16], s_article9[16];
static const cyaml_strval_t s_consent[] = {
    {"required", CONSENT_RULE_REQUIRED},
    {"required_unless_significant_harm", CONSENT_RULE_UNLESS_HARM},
    {"not_required", CONSENT_RULE_NOT_REQUIRED}};

#define N(a) (sizeof a / sizeof a[0])

static const cyaml_schema_value_t s_string = {CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64)};
static cyaml_schema_value_t s_purpose = {CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, int, s_purposes, 0)};
static cyaml_schema_value_t s_event_type = {
    CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, int, s_event_types, 0)};

static const cyaml_schema_field_t s_party_fields[] = {
    CYAML_FIELD_STRING_PTR("organisation", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                           organisation, 1, 9),
    CYAML_FIELD_ENUM("sector", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_party, sector, s_sectors,
                     N(s_sectors)),
    CYAML_FIELD_ENUM("relationship", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_party, relationship,
                     s_relations, N(s_relations)),
    CYAML_FIELD_SEQUENCE("localities", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                         localities, &s_string, 1, 64),
    CYAML_FIELD_SEQUENCE("data_items", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_party,
                         data_items, &s_string, 1, 128),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_party = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_party, s_party_fields)};

static cyaml_schema_field_t s_basis_fields[] = {
    CYAML_FIELD_ENUM("article6", CYAML_FLAG_STRICT, y_basis, article6, s_article6, 0),
    CYAML_FIELD_ENUM("article9", CYAML_FLAG_STRICT, y_basis, article9, s_article9, 0),
    CYAML_FIELD_STRING_PTR("dpa_schedule1_paragraph", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           y_basis, paragraph_text, 1, 9),
    CYAML_FIELD_END};

static const cyaml_schema_field_t s_range_fields[] = {
    CYAML_FIELD_STRING_PTR("min", CYAML_FLAG_POINTER, y_range, min_text, 1, 9),
    CYAML_FIELD_STRING_PTR("max", CYAML_FLAG_POINTER, y_range, max_text, 1, 9), CYAML_FIELD_END};

static const cyaml_schema_field_t s_approver_fields[] = {
    CYAML_FIELD_STRING_PTR("role", CYAML_FLAG_POINTER, y_approver, role, 1, 100),
    CYAML_FIELD_STRING_PTR("organisation", CYAML_FLAG_POINTER, y_approver, organisation, 1, 9),
    CYAML_FIELD_STRING_PTR("approved_on", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_approver,
                           approved_on, 10, 10),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_approver = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_approver, s_approver_fields)};

static cyaml_schema_field_t s_isp_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, y_isp, id, 1, 48),
    CYAML_FIELD_STRING_PTR("version", CYAML_FLAG_POINTER, y_isp, version_text, 1, 9),
    CYAML_FIELD_STRING_PTR("title", CYAML_FLAG_POINTER, y_isp, title, 1, 200),
    CYAML_FIELD_ENUM("status", CYAML_FLAG_STRICT, y_isp, status, s_status, N(s_status)),
    CYAML_FIELD_STRING_PTR("review_date", CYAML_FLAG_POINTER, y_isp, review_date, 10, 10),
    CYAML_FIELD_STRING_PTR("lead", CYAML_FLAG_POINTER, y_isp, lead, 1, 9),
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
    CYAML_FIELD_SEQUENCE("approvers", CYAML_FLAG_POINTER, y_isp, approvers, &s_approver, 1, 32),
    CYAML_FIELD_STRING_PTR("delivery_expiry", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_isp,
                           delivery_expiry, 2, 10),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_isp_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_isp, s_isp_fields)};

struct sh_isp {
    y_isp *y;
    char *file;
    char rule[64];
    char due_from[11], lapse_from[11]; /* review date - 3 months, + 3 months */
    int64_t expiry_ms;                 /* delivery_expiry; 0 when not set */
};

struct sh_policy {
    sh_isp *isps;
    size_t n;
};

/* ---- data items ----------------------------------------------------------------------- */

/* Envelope fields always sent: they say what the event is and why it may be shared. */
static int s_header_field(const char *name)
{
    static const char *const always[] = {
        "event_id",        "schema_version", "event_type",   "source_org", "occurred_at_ms",
        "published_at_ms", "purpose",        "lawful_basis", "consent",    "correlation_id"};
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

/* ---- loading -------------------------------------------------------------------------- */

static sh_err s_check_party(const char *file, const char *side, unsigned i, const y_party *p,
                            int recipient, sh_error *err)
{
    int kinds = (p->organisation != NULL) + (p->sector != 0) + (p->relationship != 0);
    if (kinds != 1)
        return sh_error_set(err, SH_E_POLICY_FILE,
                            "%s: %s %u: give exactly one of organisation, sector, relationship",
                            file, side, i + 1);
    if (p->organisation && sh_org_code_check(p->organisation) != SH_OK)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: organisation is not a code", file,
                            side, i + 1);
    if (p->localities_count && !p->sector)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: localities go with a sector", file,
                            side, i + 1);
    if (!recipient && p->relationship)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: a relationship names a recipient",
                            file, side, i + 1);
    if (!recipient && p->data_items_count)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: data_items belong to recipients",
                            file, side, i + 1);
    if (recipient && !p->data_items_count)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: data_items is missing", file, side,
                            i + 1);
    size_t joined = 0;
    for (unsigned k = 0; k < p->data_items_count; k++) {
        if (!sh_policy_item_valid(p->data_items[k]))
            return sh_error_set(err, SH_E_POLICY_FILE, "%s: %s %u: unknown data item '%s'", file,
                                side, i + 1, p->data_items[k]);
        joined += strlen(p->data_items[k]) + 1;
    }
    if (joined > SH_POLICY_ITEMS_TEXT_MAX) /* each decision's items go into an audit entry */
        return sh_error_set(err, SH_E_POLICY_FILE,
                            "%s: %s %u: data_items come to over %d characters together; name "
                            "whole messages instead of their fields",
                            file, side, i + 1, SH_POLICY_ITEMS_TEXT_MAX);
    return SH_OK;
}

/* A whole number lo..hi written in decimal digits only (no sign, point or exponent). */
static sh_err s_number(const char *file, const char *key, const char *text, unsigned lo,
                       unsigned hi, unsigned *out, sh_error *err)
{
    unsigned long v = 0;
    size_t n = strspn(text, "0123456789");
    if (n == 0 || text[n] || n > 9 || (v = strtoul(text, NULL, 10)) < lo || v > hi)
        return sh_error_set(err, SH_E_POLICY_FILE,
                            "%s: %s: '%s' is not a whole number from %u to %u", file, key, text, lo,
                            hi);
    *out = (unsigned)v;
    return SH_OK;
}

/* A real calendar date as YYYY-MM-DD. */
static sh_err s_date(const char *file, const char *key, const char *text, sh_error *err)
{
    if (sh_date_check(text) == SH_OK) return SH_OK;
    return sh_error_set(err, SH_E_POLICY_FILE,
                        "%s: %s: '%s' is not a calendar date written YYYY-MM-DD (as 2027-01-31)",
                        file, key, text);
}

static sh_err s_check_isp(const char *file, sh_isp *isp, sh_error *err)
{
    y_isp *y = isp->y;
    sh_err rc;
    for (const char *c = y->id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return sh_error_set(err, SH_E_POLICY_FILE, "%s: id is not [a-z0-9-]", file);
    if ((rc = s_number(file, "version", y->version_text, 1, 999999, &y->version, err)) ||
        (rc = s_date(file, "review_date", y->review_date, err)))
        return rc;
    if (y->delivery_expiry && sh_duration_parse(y->delivery_expiry, &isp->expiry_ms))
        return sh_error_set(err, SH_E_POLICY_FILE,
                            "%s: delivery_expiry: '%s' is not a duration from 1s to 366d, written "
                            "as a whole number and a unit (30s, 15m, 36h, 5d)",
                            file, y->delivery_expiry);
    if (y->lawful_basis->paragraph_text &&
        (rc =
             s_number(file, "lawful_basis.dpa_schedule1_paragraph", y->lawful_basis->paragraph_text,
                      1, 37, &y->lawful_basis->dpa_schedule1_paragraph, err)))
        return rc;
    if (y->level_of_need && ((rc = s_number(file, "level_of_need.min", y->level_of_need->min_text,
                                            0, 4, &y->level_of_need->min, err)) ||
                             (rc = s_number(file, "level_of_need.max", y->level_of_need->max_text,
                                            0, 4, &y->level_of_need->max, err))))
        return rc;
    for (unsigned i = 0; i < y->approvers_count; i++)
        if (y->approvers[i].approved_on &&
            (rc = s_date(file, "approvers.approved_on", y->approvers[i].approved_on, err)))
            return rc;
    if (sh_org_code_check(y->lead) != SH_OK)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: lead is not an organisation code", file);
    if (y->lawful_basis->article9 == 4 && y->lawful_basis->dpa_schedule1_paragraph == 0)
        return sh_error_set(err, SH_E_POLICY_FILE,
                            "%s: substantial_public_interest needs dpa_schedule1_paragraph", file);
    if (y->lawful_basis->dpa_schedule1_paragraph > 37)
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: dpa_schedule1_paragraph: want 1-37", file);
    if (y->level_of_need &&
        (y->level_of_need->min > y->level_of_need->max || y->level_of_need->max > 4))
        return sh_error_set(err, SH_E_POLICY_FILE, "%s: level_of_need: want 0 <= min <= max <= 4",
                            file);
    for (unsigned i = 0; i < y->senders_count; i++)
        if ((rc = s_check_party(file, "sender", i, &y->senders[i], 0, err))) return rc;
    for (unsigned i = 0; i < y->recipients_count; i++)
        if ((rc = s_check_party(file, "recipient", i, &y->recipients[i], 1, err))) return rc;
    snprintf(isp->rule, sizeof isp->rule, "%s@%u", y->id, y->version);
    s_add_months(y->review_date, -3, isp->due_from);
    s_add_months(y->review_date, 3, isp->lapse_from);
    return SH_OK;
}

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
    /* Article 6 and 9 conditions: "public_task" as well as the schema's "e_public_task" */
    s_basis_fields[0].value.enumeration.count =
        sh_yaml_enum_table(&sharehub__v1__article6__descriptor, 0, 1, s_article6, N(s_article6));
    s_basis_fields[1].value.enumeration.count =
        sh_yaml_enum_table(&sharehub__v1__article9__descriptor, 1, 1, s_article9, N(s_article9));
}

sh_err sh_policy_load(const char *dir, sh_policy **out, sh_error *err)
{
    *out = NULL;
    pthread_once(&s_tables_once, s_tables);
    DIR *d = opendir(dir);
    if (!d) return sh_error_set(err, SH_E_IO, "policy directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    sh_err rc = SH_OK;
    for (struct dirent *de; (de = readdir(d));) {
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
    sh_policy *p = calloc(1, sizeof *p);
    if (!rc && (!p || !(p->isps = calloc(n ? n : 1, sizeof *p->isps))))
        rc = sh_error_set(err, SH_E_NOMEM, "policy");
    if (!rc && n > 1) qsort(names, n, sizeof *names, s_namecmp);
    for (size_t i = 0; !rc && i < n; i++) {
        void *data = NULL;
        rc = sh_yaml_load(names[i], &s_isp_schema, &data, SH_E_POLICY_FILE, err);
        if (rc) break;
        sh_isp *isp = &p->isps[p->n++];
        isp->y = data;
        isp->file = names[i];
        names[i] = NULL;
        rc = s_check_isp(isp->file, isp, err);
        for (size_t j = 0; !rc && j + 1 < p->n; j++)
            if (strcmp(p->isps[j].y->id, isp->y->id) == 0)
                rc = sh_error_set(err, SH_E_POLICY_FILE, "%s: id %s is also used by %s", isp->file,
                                  isp->y->id, p->isps[j].file);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc) {
        sh_policy_destroy(&p);
        return rc;
    }
    qsort(p->isps, p->n, sizeof *p->isps, s_ispcmp);
    *out = p;
    return SH_OK;
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

unsigned sh_isp_version(const sh_isp *isp)
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
    if (!p->localities_count) return 1;
    for (unsigned i = 0; i < p->localities_count; i++)
        if (strcmp(p->localities[i], org->locality) == 0) return 1;
    return 0;
}

static int s_contains(const int *v, unsigned n, int x)
{
    for (unsigned i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* Tries one ISP; returns the number of conditions met (9 = permitted) and, when it stops
 * short, the code and reason of the first condition that failed. */
static int s_try(const sh_isp *isp, const sh_share *s, sh_decision *d)
{
    const y_isp *y = isp->y;
    const sh_envelope *e = s->env;
    const char *rule = isp->rule;
    d->isp = isp;
    d->state = sh_isp_state_at(isp, s->now_ms);
    if (!s_contains(y->event_types, y->event_types_count, e->event_type)) return 0;
    int sender_ok = 0;
    for (unsigned i = 0; i < y->senders_count && !sender_ok; i++)
        sender_ok = s_party_matches(&y->senders[i], s->sender, s);
    if (!sender_ok) {
        d->code = SH_E_DENY_PARTY;
        snprintf(d->reason, sizeof d->reason, "%s: sender %s is not a party", rule,
                 s->sender->code);
        return 1;
    }
    const y_party *to = NULL;
    for (unsigned i = 0; i < y->recipients_count && !to; i++)
        if (s_party_matches(&y->recipients[i], s->recipient, s)) to = &y->recipients[i];
    if (!to) {
        d->code = SH_E_DENY_PARTY;
        snprintf(d->reason, sizeof d->reason, "%s: recipient %s is not a party", rule,
                 s->recipient->code);
        return 2;
    }
    if (d->state == SH_ISP_DRAFT || d->state == SH_ISP_SUSPENDED || d->state == SH_ISP_LAPSED) {
        d->code = d->state == SH_ISP_LAPSED ? SH_E_DENY_LAPSED : SH_E_DENY_NOT_ACTIVE;
        snprintf(d->reason, sizeof d->reason, "%s is %s (review date %s)", rule,
                 sh_isp_state_name(d->state), y->review_date);
        return 3;
    }
    if (!s_contains(y->purposes, y->purposes_count, e->purpose)) {
        d->code = SH_E_DENY_PURPOSE;
        snprintf(d->reason, sizeof d->reason, "%s does not cover purpose %d", rule, e->purpose);
        return 4;
    }
    const y_basis *b = y->lawful_basis;
    const Sharehub__V1__LawfulBasis *eb = e->lawful_basis;
    if ((int)eb->article6 != b->article6 || (int)eb->article9 != b->article9 ||
        (b->article9 == 4 && eb->dpa_schedule1_paragraph != b->dpa_schedule1_paragraph)) {
        d->code = SH_E_DENY_BASIS;
        snprintf(d->reason, sizeof d->reason,
                 "%s: lawful basis 6(1)/%d 9(2)/%d para %u is not the protocol's", rule,
                 eb->article6, eb->article9, eb->dpa_schedule1_paragraph);
        return 5;
    }
    unsigned lo = y->level_of_need ? y->level_of_need->min : 0;
    unsigned hi = y->level_of_need ? y->level_of_need->max : 4;
    if (e->level_of_need < lo || e->level_of_need > hi) {
        d->code = SH_E_DENY_LEVEL;
        snprintf(d->reason, sizeof d->reason, "%s: level of need %u outside %u-%u", rule,
                 e->level_of_need, lo, hi);
        return 6;
    }
    int consent_ok = y->consent == CONSENT_RULE_NOT_REQUIRED || e->consent == CONSENT(GIVEN) ||
                     (y->consent == CONSENT_RULE_UNLESS_HARM &&
                      (e->consent == CONSENT(NOT_SOUGHT_RISK_OF_HARM) || e->level_of_need == 4));
    if (!consent_ok) {
        d->code = SH_E_DENY_CONSENT;
        snprintf(d->reason, sizeof d->reason, "%s: consent %s", rule,
                 y->consent == CONSENT_RULE_REQUIRED
                     ? "required and not given"
                     : "required unless there is a risk of significant harm");
        return 7;
    }
    d->permit = 1;
    d->code = SH_OK;
    d->items = (const char *const *)to->data_items;
    d->n_items = to->data_items_count;
    snprintf(d->reason, sizeof d->reason, "%s permits%s", rule,
             d->state == SH_ISP_OVERDUE ? " (protocol overdue for review)" : "");
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
    snprintf(d->reason, sizeof d->reason, "no protocol covers %s to %s",
             sh_event_type_name(s->env->event_type), s->recipient ? s->recipient->code : "?");
    if (!s->sender || !s->recipient) return;
    int best = 0;
    for (size_t i = 0; i < p->n; i++) {
        sh_decision t;
        memset(&t, 0, sizeof t);
        int stage = s_try(&p->isps[i], s, &t);
        if (t.permit) {
            *d = t;
            return;
        }
        if (stage > best) {
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
    for (unsigned i = 0; i < y->approvers_count && n < cap; i++)
        roles[n] = "approver", out[n++] = y->approvers[i].organisation;
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
