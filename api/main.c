/*
 * main.c — sharehub-api: the agency's HTTPS API beside its agent (docs/api.md).
 *
 * Owns: the process: options (common/cli.h), signals (SIGHUP reloads the client registry,
 * SIGTERM/SIGINT stop cleanly), the server's life. Never: starts with a configuration it
 * could not read whole (the error names the file, the key and the problem).
 */
#include <signal.h>
#include <stdio.h>

#include "api_int.h"
#include "cli.h"
#include "log.h"
#include "sandbox.h"

static volatile int s_stop, s_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int version = 0;
    size_t npos = 0;
    const cli_opt opts[] = {
        {"--config", CLI_TEXT, &config, 0, 0}, {"--version", CLI_FLAG, &version, 0, 0}, {0}};
    const cli_cmd c = {
        "sharehub-api",
        "usage: sharehub-api --config FILE\n"
        "       sharehub-api --version\n"
        "  The agency's HTTPS API (mutual TLS) beside its agent: publish, track, inbox, child\n"
        "  lookups and, for health, FHIR (docs/api.md). SIGHUP reloads the client registry;\n"
        "  SIGTERM stops cleanly. exit 1 when it cannot start (the message names the file or\n"
        "  setting), 2 for a usage error.\n",
        opts,
        0,
        0,
        ""};
    int rc = cli_parse(&c, argc - 1, argv + 1, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    if (version) {
        printf("sharehub-api %s\n", SHAREHUB_VERSION);
        return SH_EXIT_OK;
    }
    if (!config) return cli_usage(&c, "missing option '--config'");
    if (cli_signals(s_on_signal, 1)) {
        perror("sharehub-api: sigaction");
        return SH_EXIT_FAILED;
    }
    api_config *cfg = NULL;
    api *s = NULL;
    sh_error err = {0};
    char buf[400];
    if (api_config_load(config, &cfg, &err) == SH_OK) sh_log_init("api", cfg->log_level);
    if (cfg && api_new(cfg, &s, &err) == SH_OK) {
        sh_log(SH_LOG_INFO, NULL, NULL, "serving https://%s for the agent at %s (%zu clients)",
               cfg->listen, cfg->agent_socket, cfg->nclients);
    } else {
        fprintf(stderr, "sharehub-api: %s\n", sh_error_format(&err, buf, sizeof buf));
        api_config_free(&cfg);
        return SH_EXIT_FAILED;
    }
    /* it parses HTTP from other hosts: its sockets and keys are open; it starts no program,
     * traces nothing, makes no socket but to its agent (docs/security.md) */
    int filtered = 0;
    if (sh_sandbox_service(&filtered, &err)) {
        fprintf(stderr, "sharehub-api: %s\n", sh_error_format(&err, buf, sizeof buf));
        api_destroy(&s);
        api_config_free(&cfg);
        return SH_EXIT_FAILED;
    }
    if (!filtered)
        sh_log(SH_LOG_ERROR, NULL, NULL,
               "this kernel has no seccomp (or this is valgrind): no system call filter");
    sh_err e = api_run(s, &s_stop, &s_reload, config);
    sh_log(SH_LOG_INFO, NULL, NULL, "stopping%s", e == SH_OK ? "" : " after an error");
    api_destroy(&s);
    api_config_free(&cfg);
    sh_log(SH_LOG_INFO, NULL, NULL, "stopped");
    return e == SH_OK ? SH_EXIT_OK : SH_EXIT_FAILED;
}
