/*
 * cmd_policy.c — `sharehub policy check` (an information-governance officer's lint of a
 * policy directory) and `sharehub policy explain` (who would receive an event, and why).
 *
 * Owns: nothing past the call. Never: decides a share differently from the broker (both use
 * broker/decide.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "commands.h"
#include "decide.h"
#include "json.h"
#include "lint.h"
#include "policy.h"
#include "registry.h"
#include "synth.h"

typedef struct s_lint_out {
    int warnings;
} s_lint_out;

static void s_print_finding(void *ctx, sh_lint_level level, const sh_isp *isp, const char *msg)
{
    s_lint_out *o = ctx;
    o->warnings += level == SH_LINT_WARNING;
    printf("%s: %s: %s: %s\n", level == SH_LINT_ERROR ? "error" : "warning", sh_isp_file(isp),
           sh_isp_rule(isp), msg);
}

/* Files in dir that look like a protocol (YAML with an id and recipients) but are not named
 * isp-*.yaml: the broker does not load them. Each is a warning; the count is returned. */
static int s_misnamed(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        int yaml = (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
                   (len > 4 && strcmp(name + len - 4, ".yml") == 0);
        if (!yaml || (strncmp(name, "isp-", 4) == 0 && strcmp(name + len - 5, ".yaml") == 0))
            continue;
        char path[4200], text[65536];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f) fclose(f);
        text[got] = '\0';
        int id = strncmp(text, "id:", 3) == 0 || strstr(text, "\nid:");
        if (id && strstr(text, "\nrecipients:")) {
            printf("warning: %s: looks like a protocol but is not named isp-*.yaml: the broker "
                   "does not load it (rename it isp-<name>.yaml)\n",
                   path);
            n++;
        }
    }
    if (d) closedir(d);
    return n;
}

/* One mistake in a protocol file, as the loader reports it. */
static void s_print_mistake(void *ctx, const char *file, const char *key, const char *msg)
{
    (*(int *)ctx)++;
    if (key)
        printf("error: %s: %s: %s\n", file, key, msg);
    else
        printf("error: %s\n", msg);
}

static int s_check(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL;
    size_t npos = 0;
    const cli_opt opts[] = {{"--registry", CLI_TEXT, &regpath, 0, 0}, {0}};
    const cli_cmd c = {
        "sharehub policy check",
        "usage: sharehub policy check POLICY-DIR [--registry FILE]\n"
        "  Loads every isp-*.yaml in POLICY-DIR as the broker would, then reports: protocols\n"
        "  lapsed, overdue or due for review; organisations the registry does not hold;\n"
        "  protocols that overlap or contradict each other. exit 1 when there is an error.\n",
        opts,
        1,
        1,
        "POLICY-DIR"};
    int rc = cli_parse(&c, argc, argv, &dir, &npos);
    if (rc != CLI_RUN) return rc;
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    char buf[400];
    if (regpath && sh_registry_load(regpath, &reg, &err)) {
        printf("error: %s\n", sh_error_format(&err, buf, sizeof buf));
        return SH_EXIT_FAILED;
    }
    int mistakes = 0, misnamed = s_misnamed(dir);
    if (sh_policy_load_report(dir, &p, s_print_mistake, &mistakes, &err)) {
        if (err.code != SH_E_POLICY_FILE)
            printf("error: %s\n", sh_error_format(&err, buf, sizeof buf));
        printf("%d errors, %d warnings: the broker will not load these protocols until each error "
               "is corrected\n",
               mistakes + (err.code != SH_E_POLICY_FILE), misnamed);
        sh_registry_destroy(&reg);
        return SH_EXIT_FAILED;
    }
    int64_t now = sh_clock_ms();
    s_lint_out o = {0};
    o.warnings += misnamed;
    int errors = sh_policy_lint(p, reg, now, s_print_finding, &o), active = 0;
    for (size_t i = 0; i < sh_policy_count(p); i++)
        active += sh_isp_state_at(sh_policy_at(p, i), now) <= SH_ISP_OVERDUE;
    printf("%zu protocols (%d in force), %d errors, %d warnings%s\n", sh_policy_count(p), active,
           errors, o.warnings,
           reg ? "" : " (no --registry: organisations and overlaps not checked)");
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return errors ? SH_EXIT_FAILED : SH_EXIT_OK;
}

/* One recipient's decision, as `policy explain` prints it. */
static int s_explain_one(void *ctx, const sh_org *to, const sh_decision *d)
{
    (void)ctx;
    if (d->permit) {
        printf("  PERMIT %-9s %s\n         %s\n         sees:", to->code, to->name, d->reason);
        for (size_t k = 0; k < d->n_items; k++)
            printf(" %s", d->items[k]);
        putchar('\n');
    } else {
        printf("  deny   %-9s %s\n         E%03d %s: %s\n", to->code, to->name, (int)d->code,
               sh_err_name(d->code), d->reason);
    }
    return 0;
}

static int s_explain(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL, *from = NULL, *file = NULL, *type = NULL;
    const char *consent = NULL, *referrer = NULL, *school = NULL;
    long level = -1;
    size_t npos = 0;
    const cli_opt opts[] = {
        {"--policy", CLI_TEXT, &dir, 0, 0},      {"--registry", CLI_TEXT, &regpath, 0, 0},
        {"--from", CLI_TEXT, &from, 0, 0},       {"--event", CLI_TEXT, &file, 0, 0},
        {"--type", CLI_TEXT, &type, 0, 0},       {"--level", CLI_NUMBER, &level, 0, 4},
        {"--consent", CLI_TEXT, &consent, 0, 0}, {"--referrer", CLI_TEXT, &referrer, 0, 0},
        {"--school", CLI_TEXT, &school, 0, 0},   {0}};
    const cli_cmd c = {
        "sharehub policy explain",
        "usage: sharehub policy explain --policy DIR --registry FILE --from ORG\n"
        "                               (--event FILE | --type EVENT-TYPE) [--level 0-4]\n"
        "                               [--consent STATE] [--referrer ORG] [--school ORG]\n"
        "  For an event from ORG — the JSON or encoded event in FILE, or a synthetic one of\n"
        "  EVENT-TYPE — prints every enrolled organisation's decision as the broker makes it:\n"
        "  PERMIT with the ISP and the data items it would see, or deny with the code and why.\n"
        "  --referrer: who published the event a hub decision answers; --school: the child's\n"
        "  school of record. STATE: given, refused, withdrawn, not_sought_risk_of_harm,\n"
        "  not_required.\n",
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
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    sh_envelope *e = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int cv = 0;
    rc = SH_EXIT_FAILED;
    if (sh_registry_load(regpath, &reg, &err) || sh_policy_load(dir, &p, &err)) {
        rc = cli_fail(&c, &err);
        goto out;
    }
    const sh_org *sender = sh_registry_by_code(reg, from);
    const char *named[3][2] = {{"--from", from}, {"--school", school}, {"--referrer", referrer}};
    for (int i = 0; i < 3; i++)
        if (named[i][1] && !sh_registry_by_code(reg, named[i][1])) {
            rc = cli_usage(&c, "%s %s is not in the enrolment registry", named[i][0], named[i][1]);
            goto out;
        }
    if (consent && (sh_enum_value(&sharehub__v1__consent_state__descriptor, consent, &cv) || !cv)) {
        char names[200];
        sh_enum_names(&sharehub__v1__consent_state__descriptor, names, sizeof names);
        rc = cli_usage(&c, "--consent '%.30s' is not a consent state: want one of %s", consent,
                       names);
        goto out;
    }
    if (file) {
        char *text = NULL;
        if ((rc = cli_read_file(&c, file, SH_ENVELOPE_MAX, SH_E_TOO_LARGE, &text, &len)) != CLI_RUN)
            goto out;
        buf = (uint8_t *)text;
        rc = SH_EXIT_FAILED;
    } else {
        int t = sh_event_type_from_name(type);
        if (!t) {
            char names[600];
            sh_enum_names(&sharehub__v1__event_type__descriptor, names, sizeof names);
            rc = cli_usage(&c, "--type '%.40s' is not an event type: want one of %s", type, names);
            goto out;
        }
        uint64_t rng = 1;
        sh_synth_child k;
        sh_synth_child_make(&rng, "881", &k);
        if (sh_synth_event(&rng, t, &k, from, NULL, NULL, 0, &buf, &len, &err)) {
            rc = cli_fail(&c, &err);
            goto out;
        }
    }
    /* JSON (docs/agent.md, "JSON events") when it looks like it, else the encoded envelope */
    size_t lead = file ? strspn((const char *)buf, " \t\r\n") : 0;
    if (file && lead < len && buf[lead] == '{') {
        ProtobufCMessage *m = NULL;
        if (sh_json_to_message((const char *)buf, len, &sharehub__v1__envelope__descriptor, &m,
                               &err)) {
            rc = cli_fail(&c, &err);
            goto out;
        }
        e = (sh_envelope *)m;
        /* what an agent fills in when it publishes: the id, version, source and times */
        int64_t now = sh_clock_ms();
        if (!e->schema_version) e->schema_version = SH_SCHEMA_VERSION;
        if (!e->occurred_at_ms) e->occurred_at_ms = now;
        if (!e->published_at_ms) e->published_at_ms = now;
        if (e->event_id.len == 0 && (e->event_id.data = malloc(16))) {
            e->event_id.len = sh_event_id_new(e->event_id.data) == SH_OK ? 16 : 0;
        }
        if (!e->source_org || !e->source_org[0]) {
            if (e->source_org != protobuf_c_empty_string) free(e->source_org);
            e->source_org = strdup(from);
        }
    } else if (sh_envelope_decode(buf, len, &e, &err)) {
        rc = cli_fail(&c, &err);
        goto out;
    }
    if (level >= 0) e->level_of_need = (uint32_t)level;
    if (consent) e->consent = cv;
    /* the explained event must still be valid after the overrides */
    if (sh_envelope_validate(e, &err)) {
        rc = cli_fail(&c, &err);
        goto out;
    }
    printf("%s from %s (purpose %s, level of need %u, consent %s):\n",
           sh_event_type_name(e->event_type), from,
           sh_enum_name(&sharehub__v1__purpose__descriptor, e->purpose), e->level_of_need,
           sh_enum_name(&sharehub__v1__consent_state__descriptor, e->consent));
    sh_decide_all(p, reg, e, sender, referrer, school, sh_clock_ms(), s_explain_one, NULL);
    rc = SH_EXIT_OK;
out:
    free(buf);
    sh_envelope_free(e);
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return rc;
}

int cmd_policy(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "check") == 0) return s_check(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "explain") == 0) return s_explain(argc - 1, argv + 1);
    static const char usage[] =
        "usage: sharehub policy check POLICY-DIR [--registry FILE]\n"
        "       sharehub policy explain --policy DIR --registry FILE --from ORG ...\n"
        "  (sharehub policy check --help, sharehub policy explain --help)\n";
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        fputs(usage, stdout);
        return SH_EXIT_OK;
    }
    if (argc >= 1)
        fprintf(stderr, "sharehub policy: unknown command '%.40s' (see 'sharehub policy --help')\n",
                argv[0]);
    else
        fputs(usage, stderr);
    return SH_EXIT_USAGE;
}
