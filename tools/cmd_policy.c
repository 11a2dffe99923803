/*
 * cmd_policy.c — `sharehub policy check` (an information-governance officer's lint of a
 * policy directory); `policy explain` is explain.c.
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

static int s_show(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL;
    size_t npos = 0;
    const cli_opt opts[] = {{"--registry", CLI_TEXT, &regpath, 0, 0}, {0}};
    const cli_cmd c = {
        "sharehub policy show",
        "usage: sharehub policy show POLICY-DIR [--registry FILE]\n"
        "  Prints every protocol in POLICY-DIR as an information-governance officer reviews it,\n"
        "  in Markdown: why, the law, who sends, who receives what and keeps it how long,\n"
        "  controllers, DPIA and signatures (organisations named from the registry).\n",
        opts,
        1,
        1,
        "POLICY-DIR"};
    int rc = cli_parse(&c, argc, argv, &dir, &npos);
    if (rc != CLI_RUN) return rc;
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    if ((regpath && sh_registry_load(regpath, &reg, &err)) || sh_policy_load(dir, &p, &err)) {
        rc = cli_fail(&c, &err);
        sh_registry_destroy(&reg);
        return rc;
    }
    printf("# Information sharing protocols, for review\n\n"
           "Generated from the protocol files by `sharehub policy show %s%s%s`: do not edit it by "
           "hand. %zu protocols, in the order the broker tries them.\n\n",
           dir, regpath ? " --registry " : "", regpath ? regpath : "", sh_policy_count(p));
    for (size_t i = 0; i < sh_policy_count(p); i++)
        sh_isp_write_markdown(sh_policy_at(p, i), reg, stdout);
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return fflush(stdout) == 0 ? SH_EXIT_OK : SH_EXIT_FAILED;
}

int cmd_policy(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "check") == 0) return s_check(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "explain") == 0) return cmd_policy_explain(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "show") == 0) return s_show(argc - 1, argv + 1);
    static const char usage[] =
        "usage: sharehub policy check POLICY-DIR [--registry FILE]\n"
        "       sharehub policy explain --policy DIR --registry FILE --from ORG ...\n"
        "       sharehub policy show POLICY-DIR [--registry FILE]\n"
        "  (sharehub policy check --help, sharehub policy explain --help, sharehub policy show "
        "--help)\n";
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
