/*
 * main.c — sharehub-agent: runs one agency's agent until SIGTERM or SIGINT.
 *
 * Owns: the process and its signals. Never: exits without closing the store cleanly.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--config") != 0) {
        fputs("usage: sharehub-agent --config FILE    (docs/agent.md)\n", stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) {
        perror("sharehub-agent: sigaction");
        return 1;
    }
    sh_agent *a = NULL;
    sh_error err = {0};
    char buf[320];
    if (sh_agent_new(argv[2], &a, &err)) {
        fprintf(stderr, "sharehub-agent: %s\n", sh_error_format(&err, buf, sizeof buf));
        return 1;
    }
    sh_err rc = sh_agent_run(a, &s_stop);
    sh_agent_destroy(&a);
    return rc == SH_OK ? 0 : 1;
}
