/*
 * main.c — sharehub-broker: flags, signals, and the broker's life.
 *
 * Owns: the process: parses flags, installs SIGHUP (reload registry and policy) and
 * SIGTERM/SIGINT (clean stop) handlers, runs the broker. Never: exits without closing the
 * store (a clean stop writes a final audit checkpoint).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

static volatile sig_atomic_t s_stop, s_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

static void s_usage(void)
{
    fputs("usage: sharehub-broker --endpoint EP [--endpoint EP] --store DIR --master KEY\n"
          "           --sign-key PEM --curve-key FILE --registry FILE --policy DIR\n"
          "           [--org CODE] [--heartbeat-ms N] [--redeliver-ms N] [--window N]\n"
          "           [--map-mib N] [--checkpoint-every N] [--log-level info|warning|error]\n"
          "           [--http ADDR:PORT]   (metrics and health, e.g. 127.0.0.1:9750)\n"
          "SIGHUP reloads the registry and the policy; SIGTERM stops cleanly.\n",
          stderr);
}

int main(int argc, char **argv)
{
    sh_broker_config cfg = {0};
    int neps = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            s_usage();
            return 2;
        }
        i++;
        if (strcmp(k, "--endpoint") == 0 && neps < 3)
            cfg.endpoints[neps++] = v;
        else if (strcmp(k, "--store") == 0)
            cfg.store_dir = v;
        else if (strcmp(k, "--master") == 0)
            cfg.master_key = v;
        else if (strcmp(k, "--sign-key") == 0)
            cfg.sign_key = v;
        else if (strcmp(k, "--curve-key") == 0)
            cfg.curve_key = v;
        else if (strcmp(k, "--registry") == 0)
            cfg.registry = v;
        else if (strcmp(k, "--policy") == 0)
            cfg.policy_dir = v;
        else if (strcmp(k, "--org") == 0)
            cfg.org_code = v;
        else if (strcmp(k, "--heartbeat-ms") == 0)
            cfg.heartbeat_ms = atoi(v);
        else if (strcmp(k, "--redeliver-ms") == 0)
            cfg.redeliver_ms = atoi(v);
        else if (strcmp(k, "--window") == 0)
            cfg.window = (unsigned)atoi(v);
        else if (strcmp(k, "--map-mib") == 0)
            cfg.map_size = (size_t)atol(v) << 20;
        else if (strcmp(k, "--checkpoint-every") == 0)
            cfg.checkpoint_every = (uint32_t)atol(v);
        else if (strcmp(k, "--http") == 0)
            cfg.http_listen = v;
        else if (strcmp(k, "--log-level") == 0)
            cfg.log_level = strcmp(v, "error") == 0 ? 2 : strcmp(v, "warning") == 0 ? 1 : 0;
        else {
            s_usage();
            return 2;
        }
    }
    if (!neps || !cfg.store_dir || !cfg.master_key || !cfg.sign_key || !cfg.curve_key ||
        !cfg.registry || !cfg.policy_dir) {
        s_usage();
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGHUP, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
        sigaction(SIGINT, &sa, NULL)) {
        perror("sharehub-broker: sigaction");
        return 1;
    }
    sh_broker *b = NULL;
    sh_error err = {0};
    char buf[320];
    if (sh_broker_new(&cfg, &b, &err)) {
        fprintf(stderr, "sharehub-broker: %s\n", sh_error_format(&err, buf, sizeof buf));
        return 1;
    }
    sh_err rc = sh_broker_run(b, &s_stop, &s_reload);
    sh_broker_destroy(&b);
    return rc == SH_OK ? 0 : 1;
}
