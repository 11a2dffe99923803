/*
 * main.c — sharehub-broker: options, signals, and the broker's life.
 *
 * Owns: the process: parses options (common/cli.h: --help, --version, errors that name the
 * option), installs SIGHUP (reload registry and policy) and SIGTERM/SIGINT (clean stop)
 * handlers, runs the broker. Never: exits without closing the store (a clean stop writes a
 * final audit checkpoint).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "cli.h"
#include "crypto.h"
#include "clock.h"
#include "log.h"
#include "net.h"
#include "probe.h"

static volatile sig_atomic_t s_stop, s_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        s_reload = 1;
    else
        s_stop = 1;
}

int main(int argc, char **argv)
{
    /* the broker's network process, which the broker starts (net.h) */
    if (argc > 1 && strcmp(argv[1], BK_NET_FLAG) == 0) return bk_net_main(argc - 2, argv + 2);
    /* its metrics and health endpoint's process, which it starts too (probe.h) */
    if (argc > 1 && strcmp(argv[1], SH_PROBE_FLAG) == 0) return sh_probe_main(argc - 2, argv + 2);
    sh_broker_config cfg = {0};
    const char *eps[4] = {NULL, NULL, NULL, NULL}, *level = NULL, *expiry = NULL, *keep = NULL;
    const char *lks[9] = {NULL};
    cli_list endpoints = {eps, 0, 3}, links = {lks, 0, 8};
    long heartbeat = 0, redeliver = 0, window = 0, map_mib = 0, every = 0;
    int version = 0;
    size_t npos = 0;
    const cli_opt opts[] = {{"--endpoint", CLI_MANY, &endpoints, 0, 0},
                            {"--store", CLI_TEXT, &cfg.store_dir, 0, 0},
                            {"--master", CLI_TEXT, &cfg.master_key, 0, 0},
                            {"--sign-key", CLI_TEXT, &cfg.sign_key, 0, 0},
                            {"--curve-key", CLI_TEXT, &cfg.curve_key, 0, 0},
                            {"--registry", CLI_TEXT, &cfg.registry, 0, 0},
                            {"--policy", CLI_TEXT, &cfg.policy_dir, 0, 0},
                            {"--org", CLI_TEXT, &cfg.org_code, 0, 0},
                            {"--heartbeat-ms", CLI_NUMBER, &heartbeat, 100, 3600000},
                            {"--redeliver-ms", CLI_NUMBER, &redeliver, 100, 86400000},
                            {"--window", CLI_NUMBER, &window, 1, 4096},
                            {"--delivery-expiry", CLI_TEXT, &expiry, 0, 0},
                            {"--keep-events", CLI_TEXT, &keep, 0, 0},
                            {"--map-mib", CLI_NUMBER, &map_mib, 1, 1048576},
                            {"--checkpoint-every", CLI_NUMBER, &every, 1, 1000000},
                            {"--log-level", CLI_TEXT, &level, 0, 0},
                            {"--http", CLI_TEXT, &cfg.http_listen, 0, 0},
                            {"--directory", CLI_TEXT, &cfg.directory, 0, 0},
                            {"--federation-key", CLI_TEXT, &cfg.federation_key, 0, 0},
                            {"--authority", CLI_TEXT, &cfg.authority, 0, 0},
                            {"--link", CLI_MANY, &links, 0, 0},
                            {"--version", CLI_FLAG, &version, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub-broker",
        "usage: sharehub-broker --endpoint EP [--endpoint EP]... --store DIR --master KEY\n"
        "           --sign-key PEM --curve-key FILE --registry FILE --policy DIR\n"
        "           [--org CODE] [--heartbeat-ms N] [--redeliver-ms N] [--window N]\n"
        "           [--delivery-expiry DURATION]   (30s, 15m, 36h, 5d; default 5d)\n"
        "           [--keep-events DURATION]   (its copies of an event are erased after this;\n"
        "           default 30d, at least the longest delivery expiry)\n"
        "           [--map-mib N] [--checkpoint-every N] [--log-level info|warning|error]\n"
        "           [--http ADDR:PORT]   (metrics and health, e.g. 127.0.0.1:9750)\n"
        "           [--directory FILE --federation-key HEX --authority LA]   (federation:\n"
        "           the signed directory, the key that signs it, this broker's LA code)\n"
        "           [--link LA=KEYFILE]...   (a sharehub-link this broker starts for each\n"
        "           neighbour, with that CURVE secret key; up to 8)\n"
        "       sharehub-broker --version\n"
        "  The WEISF routing broker (docs/protocol.md, docs/operations.md). SIGHUP reloads the\n"
        "  registry and the policy; SIGTERM stops cleanly. exit 1 when it cannot start (the\n"
        "  message names the file or setting), 2 for a usage error.\n",
        opts,
        0,
        0,
        ""};
    int rc = cli_parse(&c, argc - 1, argv + 1, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    if (version) {
        printf("sharehub-broker %s\n", SHAREHUB_VERSION);
        return SH_EXIT_OK;
    }
    const char *missing = !endpoints.n      ? "--endpoint"
                          : !cfg.store_dir  ? "--store"
                          : !cfg.master_key ? "--master"
                          : !cfg.sign_key   ? "--sign-key"
                          : !cfg.curve_key  ? "--curve-key"
                          : !cfg.registry   ? "--registry"
                          : !cfg.policy_dir ? "--policy"
                                            : NULL;
    if (missing) return cli_usage(&c, "missing option '%s'", missing);
    if ((cfg.directory || cfg.federation_key || cfg.authority) &&
        !(cfg.directory && cfg.federation_key && cfg.authority))
        return cli_usage(&c, "--directory, --federation-key and --authority go together");
    uint8_t fk[SH_SIGN_PUB_BYTES];
    if (cfg.federation_key && sh_hex_decode(cfg.federation_key, fk, sizeof fk))
        return cli_usage(&c, "--federation-key: want 64 hex digits (an Ed25519 public key, as "
                             "`sharehub keygen sign` prints it)");
    if (level && sh_log_level_parse(level, &cfg.log_level))
        return cli_usage(&c, "--log-level '%.20s': want info, warning or error", level);
    if (expiry && sh_duration_parse(expiry, &cfg.expiry_ms))
        return cli_usage(&c,
                         "--delivery-expiry '%.20s': want a whole number and a unit, from 1s to "
                         "366d (30s, 15m, 36h, 5d)",
                         expiry);
    if (keep && sh_duration_parse(keep, &cfg.keep_ms))
        return cli_usage(&c,
                         "--keep-events '%.20s': want a whole number and a unit, from 1s to "
                         "366d (12h, 30d)",
                         keep);
    for (size_t i = 0; i < endpoints.n; i++)
        cfg.endpoints[i] = endpoints.v[i];
    for (size_t i = 0; i < links.n; i++) {
        const char *eq = strchr(links.v[i], '=');
        if (!eq || eq - links.v[i] != 3 || !eq[1] || !cfg.directory)
            return cli_usage(&c,
                             "--link '%.40s': want LA=KEYFILE (a DfE LA code, the link's CURVE "
                             "secret key file), with --directory",
                             links.v[i]);
        cfg.links[i] = links.v[i];
    }
    cfg.heartbeat_ms = (int)heartbeat;
    cfg.redeliver_ms = (int)redeliver;
    cfg.window = (unsigned)window;
    cfg.map_size = (size_t)map_mib << 20;
    cfg.checkpoint_every = (uint32_t)every;
    if (cli_signals(s_on_signal, 1)) {
        perror("sharehub-broker: sigaction");
        return SH_EXIT_FAILED;
    }
    /* the network process is this program: its path now, as the kernel gives it (valgrind
     * answers this for its client; /proc/self/exe itself would name valgrind) */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("sharehub-broker: /proc/self/exe");
        return SH_EXIT_FAILED;
    }
    self[n] = '\0';
    cfg.net_program = self;
    sh_broker *b = NULL;
    sh_error err = {0};
    char buf[400];
    if (sh_broker_new(&cfg, &b, &err)) {
        fprintf(stderr, "sharehub-broker: %s\n", sh_error_format(&err, buf, sizeof buf));
        return SH_EXIT_FAILED;
    }
    sh_err e = sh_broker_run(b, &s_stop, &s_reload);
    sh_log(SH_LOG_INFO, NULL, NULL, "stopping%s", e == SH_OK ? "" : " after an error");
    sh_broker_destroy(&b);
    sh_log(SH_LOG_INFO, NULL, NULL, "stopped");
    return e == SH_OK ? SH_EXIT_OK : SH_EXIT_FAILED;
}
