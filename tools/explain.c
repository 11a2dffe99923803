/*
 * explain.c — `sharehub policy explain`: who would receive an event, and why, in the words an
 * information-governance officer uses (docs/policy.md, "Reading explain").
 *
 * Owns: nothing past the call. Never: decides a share differently from the broker (both use
 * broker/decide.h); prints an enum as a number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "commands.h"
#include "decide.h"
#include "json.h"
#include "law.h"
#include "policy.h"
#include "registry.h"
#include "synth.h"

#define CONSENT(x) SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_##x
#define ET(x)      SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x

typedef struct s_out {
    int json, n, permitted;
    const sh_registry *reg;
    char unnamed[2048]; /* organisations no protocol names as recipients (text mode) */
} s_out;

static void s_basis(int a6, int a9, unsigned para, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s; %s", sh_article6_words(a6), sh_article9_words(a9));
    if (para && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ", DPA 2018 Schedule 1 paragraph %u", para);
}

static void s_retention(const sh_retention *r, char *out, size_t cap)
{
    if (!r || !r->count)
        snprintf(out, cap, "not said (a draft)");
    else
        snprintf(out, cap, "%s, then %s", r->text, r->review ? "review it" : "erase it");
}

static const char *s_state_words(sh_isp_state s)
{
    static const char *const w[] = {"active", "review due", "overdue for review",
                                    "lapsed", "a draft",    "suspended"};
    return (unsigned)s < sizeof w / sizeof w[0] ? w[s] : "unknown";
}

static void s_json_kv(const char *key, const char *value, int comma)
{
    printf("%s\"%s\":", comma ? "," : "", key);
    if (value)
        cli_json_string(stdout, value);
    else
        fputs("null", stdout);
}

/* One recipient's decision. */
static int s_one(void *ctx, const sh_org *to, const sh_decision *d)
{
    s_out *o = ctx;
    char basis[200] = "", keep[120] = "";
    if (d->isp) {
        int a6, a9;
        unsigned para;
        sh_isp_basis(d->isp, &a6, &a9, &para);
        s_basis(a6, a9, para, basis, sizeof basis);
    }
    if (d->permit) s_retention(d->retention, keep, sizeof keep);
    o->permitted += d->permit;
    if (o->json) {
        printf("%s{", o->n++ ? "," : "");
        s_json_kv("org", to->code, 0);
        s_json_kv("name", to->name, 1);
        s_json_kv("decision", d->permit ? "permit" : "deny", 1);
        printf(",\"code\":%d", (int)d->code);
        s_json_kv("code_name", sh_err_name(d->code), 1);
        s_json_kv("isp", d->isp ? sh_isp_rule(d->isp) : NULL, 1);
        s_json_kv("isp_title", d->isp ? sh_isp_title(d->isp) : NULL, 1);
        s_json_kv("isp_state", d->isp ? sh_isp_state_name(d->state) : NULL, 1);
        s_json_kv("isp_basis", d->isp ? basis : NULL, 1);
        s_json_kv("reason", d->reason, 1);
        s_json_kv("ground", d->permit ? d->ground : NULL, 1);
        s_json_kv("ground_words", d->permit ? sh_ground_words(d->ground) : NULL, 1);
        printf(",\"items\":[");
        for (size_t k = 0; k < d->n_items; k++) {
            if (k) putchar(',');
            cli_json_string(stdout, d->items[k]);
        }
        putchar(']');
        s_json_kv("retention", d->permit ? keep : NULL, 1);
        putchar('}');
        return 0;
    }
    if (d->permit) {
        printf("\nPERMIT  %s  %s\n", to->code, to->name);
        printf("        under     %s \"%s\" (%s)\n", sh_isp_rule(d->isp), sh_isp_title(d->isp),
               s_state_words(d->state));
        printf("        basis     %s\n", basis);
        printf("        consent   %s\n", sh_ground_words(d->ground));
        printf("        sees     ");
        for (size_t k = 0; k < d->n_items; k++)
            printf(" %s%s", d->items[k], k + 1 < d->n_items ? "," : "");
        printf("\n        keeps it  %s\n", keep);
        return 0;
    }
    if (!d->isp) { /* listed together at the end */
        size_t used = strlen(o->unnamed);
        snprintf(o->unnamed + used, sizeof o->unnamed - used, "%s%s", used ? ", " : "", to->code);
        return 0;
    }
    printf("\ndeny    %s  %s\n", to->code, to->name);
    printf("        closest   %s \"%s\" (%s)\n", sh_isp_rule(d->isp), sh_isp_title(d->isp),
           s_state_words(d->state));
    printf("        basis     %s\n", basis);
    printf("        why       E%03d %s: %s\n", (int)d->code, sh_err_name(d->code), d->reason);
    return 0;
}

/* --basis "6(1)(e), 9(2)(g), Schedule 1 paragraph 18": each part is an Article 6 or 9
 * condition or a Schedule 1 paragraph, in any order. */
static int s_parse_basis(const char *text, int *a6, int *a9, unsigned *para)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", text);
    int seen6 = 0;
    *a9 = 0, *para = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",;/", &save); tok;
         tok = strtok_r(NULL, ",;/", &save)) {
        while (*tok == ' ')
            tok++;
        unsigned part;
        int v;
        if ((v = sh_law_article6(tok)) > 0)
            *a6 = v, seen6 = 1;
        else if ((v = sh_law_article9(tok)) >= 0)
            *a9 = v;
        else if (sh_law_paragraph(tok, para, &part) != 0)
            return -1;
    }
    return seen6 ? 0 : -1;
}

/* The event as read from FILE: JSON (docs/agent.md, "JSON events") or the encoded envelope. */
static int s_read_event(const cli_cmd *c, const char *file, const char *from, sh_envelope **out)
{
    char *text = NULL;
    size_t len = 0;
    sh_error err = {0};
    int rc = cli_read_file(c, file, SH_ENVELOPE_MAX, SH_E_TOO_LARGE, &text, &len);
    if (rc != CLI_RUN) return rc;
    size_t lead = strspn(text, " \t\r\n");
    if (lead < len && text[lead] == '{') {
        ProtobufCMessage *m = NULL;
        if (sh_json_to_message(text, len, &sharehub__v1__envelope__descriptor, &m, &err)) {
            free(text);
            return cli_fail(c, &err);
        }
        sh_envelope *e = (sh_envelope *)m;
        /* what an agent fills in when it publishes: the id, version, source and times */
        int64_t now = sh_clock_ms();
        if (!e->schema_version) e->schema_version = SH_SCHEMA_VERSION;
        if (!e->occurred_at_ms) e->occurred_at_ms = now;
        if (!e->published_at_ms) e->published_at_ms = now;
        if (e->event_id.len == 0 && (e->event_id.data = malloc(16)))
            e->event_id.len = sh_event_id_new(e->event_id.data) == SH_OK ? 16 : 0;
        if (!e->source_org || !e->source_org[0]) {
            if (e->source_org != protobuf_c_empty_string) free(e->source_org);
            e->source_org = strdup(from);
        }
        *out = e;
    } else if (sh_envelope_decode((const uint8_t *)text, len, out, &err)) {
        free(text);
        return cli_fail(c, &err);
    }
    free(text);
    return CLI_RUN;
}

int cmd_policy_explain(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL, *from = NULL, *file = NULL, *type = NULL;
    const char *consent = NULL, *referrer = NULL, *school = NULL, *date = NULL, *purpose = NULL;
    const char *basis = NULL, *only = NULL;
    long level = -1;
    int json = 0, risk = 0, judgement = 0;
    Sharehub__V1__HarmJudgement hj = SHAREHUB__V1__HARM_JUDGEMENT__INIT;
    Sharehub__V1__Professional by = SHAREHUB__V1__PROFESSIONAL__INIT;
    size_t npos = 0;
    const cli_opt opts[] = {{"--policy", CLI_TEXT, &dir, 0, 0},
                            {"--registry", CLI_TEXT, &regpath, 0, 0},
                            {"--from", CLI_TEXT, &from, 0, 0},
                            {"--to", CLI_TEXT, &only, 0, 0},
                            {"--event", CLI_TEXT, &file, 0, 0},
                            {"--type", CLI_TEXT, &type, 0, 0},
                            {"--date", CLI_TEXT, &date, 0, 0},
                            {"--purpose", CLI_TEXT, &purpose, 0, 0},
                            {"--level", CLI_NUMBER, &level, 0, 4},
                            {"--consent", CLI_TEXT, &consent, 0, 0},
                            {"--basis", CLI_TEXT, &basis, 0, 0},
                            {"--risk", CLI_FLAG, &risk, 0, 0},
                            {"--judgement", CLI_FLAG, &judgement, 0, 0},
                            {"--referrer", CLI_TEXT, &referrer, 0, 0},
                            {"--school", CLI_TEXT, &school, 0, 0},
                            {"--json", CLI_FLAG, &json, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub policy explain",
        "usage: sharehub policy explain --policy DIR --registry FILE --from ORG\n"
        "           (--event FILE | --type EVENT-TYPE) [--to ORG] [--date YYYY-MM-DD]\n"
        "           [--purpose PURPOSE] [--level 0-4] [--consent STATE] [--basis BASIS]\n"
        "           [--risk] [--judgement] [--referrer ORG] [--school ORG] [--json]\n"
        "  For an event from ORG — the JSON or encoded event in FILE, or a synthetic one of\n"
        "  EVENT-TYPE — prints each enrolled organisation's decision as the broker makes it on\n"
        "  that date (default today): PERMIT with the protocol, its lawful basis, the consent\n"
        "  ground that applied, the data items the recipient sees and how long it keeps them;\n"
        "  deny with the protocol that came closest for that recipient and the first condition\n"
        "  it failed. Organisations no protocol names are listed together.\n"
        "  The options replace the event's own: PURPOSE safeguarding, early_help, direct_care,\n"
        "  education_welfare, send, service_operation; STATE given, refused, withdrawn,\n"
        "  not_sought_risk_of_harm, not_required; BASIS as the law writes it, \"6(1)(e),\n"
        "  9(2)(g), Schedule 1 paragraph 18\"; --risk: the event asserts a risk of significant\n"
        "  harm (a concern's immediate risk, a request's priority line); --judgement: it carries\n"
        "  a practitioner's recorded judgement of significant harm. --referrer: who\n"
        "  published the event a hub decision answers; --school: the child's school of record.\n"
        "  --to ORG: that organisation only.\n",
        opts,
        0,
        0,
        ""};
    int rc = cli_parse(&c, argc, argv, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    if (!dir || !regpath || !from)
        return cli_usage(&c, "missing option '%s'",
                         !dir       ? "--policy"
                         : !regpath ? "--registry"
                                    : "--from");
    if (!file == !type) return cli_usage(&c, "give one of --event FILE and --type EVENT-TYPE");
    int64_t when = date ? sh_clock_noon(date) : sh_clock_ms();
    if (when < 0)
        return cli_usage(&c, "--date '%.20s' is not a calendar date written YYYY-MM-DD", date);
    int cv = 0, pv = 0, a6 = 0, a9 = 0;
    unsigned para = 0;
    char names[600];
    if (consent && (sh_enum_value(&sharehub__v1__consent_state__descriptor, consent, &cv) || !cv)) {
        sh_enum_names(&sharehub__v1__consent_state__descriptor, names, sizeof names);
        return cli_usage(&c, "--consent '%.30s' is not a consent state: want one of %s", consent,
                         names);
    }
    if (purpose && (sh_enum_value(&sharehub__v1__purpose__descriptor, purpose, &pv) || !pv)) {
        sh_enum_names(&sharehub__v1__purpose__descriptor, names, sizeof names);
        return cli_usage(&c, "--purpose '%.30s' is not a purpose: want one of %s", purpose, names);
    }
    if (basis && s_parse_basis(basis, &a6, &a9, &para))
        return cli_usage(&c,
                         "--basis '%.60s' is not a lawful basis: write an Article 6 condition, "
                         "then any Article 9 condition and Schedule 1 paragraph, as \"6(1)(e), "
                         "9(2)(g), paragraph 18\"",
                         basis);
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    sh_envelope *e = NULL;
    rc = SH_EXIT_FAILED;
    if (sh_registry_load(regpath, &reg, &err) || sh_policy_load(dir, &p, &err)) {
        rc = cli_fail(&c, &err);
        goto out;
    }
    const sh_org *sender = sh_registry_by_code(reg, from);
    const char *named[4][2] = {
        {"--from", from}, {"--school", school}, {"--referrer", referrer}, {"--to", only}};
    for (int i = 0; i < 4; i++)
        if (named[i][1] && !sh_registry_by_code(reg, named[i][1])) {
            rc = cli_usage(&c, "%s %s is not in the enrolment registry", named[i][0], named[i][1]);
            goto out;
        }
    if (file) {
        if ((rc = s_read_event(&c, file, from, &e)) != CLI_RUN) goto out;
    } else {
        int t = sh_event_type_from_name(type);
        if (!t) {
            sh_enum_names(&sharehub__v1__event_type__descriptor, names, sizeof names);
            rc = cli_usage(&c, "--type '%.40s' is not an event type: want one of %s", type, names);
            goto out;
        }
        uint64_t rng = 1;
        sh_synth_child k;
        uint8_t *buf = NULL;
        size_t len = 0;
        sh_synth_child_make(&rng, "881", &k);
        if (sh_synth_event(&rng, t, &k, from, NULL, NULL, 0, &buf, &len, &err) ||
            sh_envelope_decode(buf, len, &e, &err)) {
            free(buf);
            rc = cli_fail(&c, &err);
            goto out;
        }
        free(buf);
    }
    if (level >= 0) e->level_of_need = (uint32_t)level;
    if (consent) e->consent = cv;
    if (purpose) e->purpose = pv;
    if (basis) {
        e->lawful_basis->article6 = a6;
        e->lawful_basis->article9 = a9;
        e->lawful_basis->dpa_schedule1_paragraph = para;
    }
    if (risk && e->event_type == ET(SAFEGUARDING_CONCERN))
        e->safeguarding_concern->immediate_risk = 1;
    if (risk && e->event_type == ET(REQUEST_FOR_SUPPORT)) e->request_for_support->priority = 1;
    if (risk && !sh_policy_risk_asserted(e)) {
        rc = cli_usage(&c, "--risk: only a safeguarding_concern or a request_for_support can "
                           "assert a risk of significant harm");
        goto out;
    }
    if (judgement) { /* a recorded judgement, made by someone at the sender */
        by.org_code = (char *)from;
        by.role = "Social worker";
        by.name = "A practitioner";
        hj.made_by = &by;
        hj.made_at_ms = e->published_at_ms;
        if (e->harm_judgement) sharehub__v1__harm_judgement__free_unpacked(e->harm_judgement, NULL);
        e->harm_judgement = &hj;
    }
    /* the explained event must still be valid after the overrides */
    if (sh_envelope_validate(e, &err)) {
        rc = cli_fail(&c, &err);
        goto out;
    }
    char day[32], eb[200];
    sh_clock_iso(when, day, sizeof day);
    day[10] = '\0';
    s_basis((int)e->lawful_basis->article6, (int)e->lawful_basis->article9,
            e->lawful_basis->dpa_schedule1_paragraph, eb, sizeof eb);
    const char *pname = sh_enum_name(&sharehub__v1__purpose__descriptor, (int)e->purpose);
    s_out o = {.json = json, .reg = reg};
    if (json) {
        printf("{\"event\":{");
        s_json_kv("type", sh_event_type_name(e->event_type), 0);
        s_json_kv("from", from, 1);
        s_json_kv("date", day, 1);
        s_json_kv("purpose", pname, 1);
        printf(",\"level_of_need\":%u", e->level_of_need);
        s_json_kv("consent", sh_enum_name(&sharehub__v1__consent_state__descriptor, e->consent), 1);
        s_json_kv("lawful_basis", eb, 1);
        printf(",\"risk_asserted\":%s,\"harm_judgement\":%s},\"decisions\":[",
               sh_policy_risk_asserted(e) ? "true" : "false", e->harm_judgement ? "true" : "false");
    } else {
        printf("A %s from %s (%s)\n", sh_event_type_name(e->event_type), from, sender->name);
        printf("  decided on %s, for %s, level of need %u, consent %s,\n", day, pname,
               e->level_of_need, sh_consent_words(e->consent));
        static const char *const risk_words[] = {
            "no risk of significant harm asserted", "the event asserts a risk of significant harm",
            "it carries a practitioner's recorded judgement of significant harm"};
        printf("  lawful basis %s;\n  %s.\n", eb, risk_words[sh_policy_risk_asserted(e)]);
        if (type)
            printf("  (a synthetic %s: --purpose, --level, --consent, --basis, --risk, "
                   "--judgement and --date change what it says)\n",
                   type);
    }
    if (only) {
        sh_share s = {e, sender, sh_registry_by_code(reg, only), referrer, when, school};
        sh_decision d;
        sh_policy_decide(p, &s, &d);
        s_one(&o, s.recipient, &d);
    } else {
        sh_decide_all(p, reg, e, sender, referrer, school, when, s_one, &o);
    }
    if (json) {
        printf("]}\n");
    } else {
        if (o.unnamed[0])
            printf("\ndeny    no protocol names these as recipients of a %s from %s (E800): %s\n",
                   sh_event_type_name(e->event_type), from, o.unnamed);
        printf("\n%d permitted.\n", o.permitted);
    }
    rc = SH_EXIT_OK;
out:
    if (e && e->harm_judgement == &hj) e->harm_judgement = NULL; /* not the event's to free */
    sh_envelope_free(e);
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return rc;
}
