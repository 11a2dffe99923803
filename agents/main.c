/*
 * main.c — sharehub-agent: runs one agency's agent until SIGTERM or SIGINT.
 *
 * Owns: the process and its signals; its options follow common/cli.h (--help, --version).
 * Never: exits without closing the store cleanly.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "probe.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    /* its metrics and health endpoint's process, which it starts (probe.h) */
    if (argc > 1 && strcmp(argv[1], SH_PROBE_FLAG) == 0) return sh_probe_main(argc - 2, argv + 2);
    const char *config = NULL;
    int version = 0;
    size_t npos = 0;
    const cli_opt opts[] = {
        {"--config", CLI_TEXT, &config, 0, 0}, {"--version", CLI_FLAG, &version, 0, 0}, {0}};
    const cli_cmd c = {"sharehub-agent",
                       "usage: sharehub-agent --config FILE\n"
                       "       sharehub-agent --version\n"
                       "  One agency's agent (docs/agent.md): its store, outbox and local socket.\n"
                       "  SIGTERM stops it cleanly. exit 1 when it cannot start (the message names "
                       "the\n  file or setting), 2 for a usage error.\n",
                       opts,
                       0,
                       0,
                       ""};
    int rc = cli_parse(&c, argc - 1, argv + 1, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    if (version) {
        printf("sharehub-agent %s\n", SHAREHUB_VERSION);
        return SH_EXIT_OK;
    }
    if (!config) return cli_usage(&c, "missing option '--config'");
    if (cli_signals(s_on_signal, 0)) {
        perror("sharehub-agent: sigaction");
        return SH_EXIT_FAILED;
    }
    sh_agent *a = NULL;
    sh_error err = {0};
    char buf[400];
    if (sh_agent_new(config, &a, &err)) {
        fprintf(stderr, "sharehub-agent: %s\n", sh_error_format(&err, buf, sizeof buf));
        return SH_EXIT_FAILED;
    }
    sh_err e = sh_agent_run(a, &s_stop);
    sh_agent_destroy(&a);
    return e == SH_OK ? SH_EXIT_OK : SH_EXIT_FAILED;
}
