/*
 * cmd_directory.c — `sharehub directory sign|verify`: the federation directory's signature
 * (docs/federation.md). Signing checks the file as a broker would first; verifying checks it
 * and its signature as a broker does when it loads it, and says what it holds.
 *
 * Owns: nothing past the call. Never: signs a directory a broker would refuse.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "crypto.h"
#include "directory.h"

int cmd_directory(int argc, char **argv)
{
    const char *key = NULL, *fedkey = NULL, *pos[2] = {NULL, NULL};
    size_t npos = 0;
    const cli_opt opts[] = {
        {"--key", CLI_TEXT, &key, 0, 0}, {"--federation-key", CLI_TEXT, &fedkey, 0, 0}, {0}};
    const cli_cmd c = {
        "sharehub directory",
        "usage: sharehub directory sign FILE --key PEM\n"
        "       sharehub directory verify FILE --federation-key HEX\n"
        "  sign: checks the federation directory FILE as a broker would (its YAML, codes and\n"
        "  keys; no organisation under two authorities), then writes FILE.sig, the signature\n"
        "  of the federation's Ed25519 key PEM (`sharehub keygen sign`). verify: checks FILE\n"
        "  and FILE.sig under the federation's public key (64 hex digits), as a broker does at\n"
        "  start and on SIGHUP, and prints each authority with its broker and organisations.\n",
        opts,
        2,
        2,
        "sign|verify FILE"};
    int rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc != CLI_RUN) return rc;
    sh_error err = {0};
    char buf[400];
    if (strcmp(pos[0], "sign") == 0) {
        if (!key) return cli_usage(&c, "missing option '--key'");
        sh_signkey *k = NULL;
        if (sh_signkey_load_file(key, &k, &err) || sh_directory_sign(pos[1], k, &err)) {
            sh_signkey_destroy(&k);
            fprintf(stderr, "sharehub directory: %s\n", sh_error_format(&err, buf, sizeof buf));
            return SH_EXIT_FAILED;
        }
        sh_signkey_destroy(&k);
        printf("signed %s: %s.sig\n", pos[1], pos[1]);
        return SH_EXIT_OK;
    }
    if (strcmp(pos[0], "verify") != 0)
        return cli_usage(&c, "want sign or verify, not '%.20s'", pos[0]);
    uint8_t fk[SH_SIGN_PUB_BYTES];
    if (sh_hex_decode(fedkey, fk, sizeof fk))
        return cli_usage(&c, "--federation-key: want 64 hex digits");
    sh_directory *d = NULL;
    if (sh_directory_load(pos[1], fk, &d, &err)) {
        fprintf(stderr, "sharehub directory: %s\n", sh_error_format(&err, buf, sizeof buf));
        return SH_EXIT_FAILED;
    }
    printf("%s: signed by the federation key, serial %llu, %zu authorities\n", pos[1],
           (unsigned long long)sh_directory_serial(d), sh_directory_count(d));
    for (size_t i = 0; i < sh_directory_count(d); i++) {
        const sh_authority *a = sh_directory_at(d, i);
        printf("  %s %s: broker %s at %s, %zu organisations\n", a->la_code, a->name, a->broker_code,
               a->endpoint, a->norgs);
    }
    sh_directory_destroy(&d);
    return SH_EXIT_OK;
}
