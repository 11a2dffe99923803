/*
 * cmd_enrol.c — `sharehub enrol`: add an organisation's CURVE public key to the enrolment
 * registry, or revoke it.
 *
 * Owns: nothing past the call. Never: leaves a half-written registry (it is written to a
 * temporary file, synced and renamed: broker/registry.c).
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "registry.h"

int cmd_enrol(int argc, char **argv)
{
    const char *reg = NULL, *code = NULL, *key = NULL;
    int revoke = 0;
    size_t npos = 0;
    const cli_opt opts[] = {{"--registry", CLI_TEXT, &reg, 0, 0},
                            {"--code", CLI_TEXT, &code, 0, 0},
                            {"--key", CLI_TEXT, &key, 0, 0},
                            {"--revoke", CLI_FLAG, &revoke, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub enrol",
        "usage: sharehub enrol --registry FILE --code ORG --key PUBLIC-KEY [--revoke]\n"
        "  Enrols a CURVE public key (40 characters of Z85, as `sharehub keygen curve` prints)\n"
        "  for organisation ORG in the registry FILE, or with --revoke removes it. The broker\n"
        "  applies it on its next reload (SIGHUP). The file is rewritten from what it holds:\n"
        "  its comments and layout are not kept.\n",
        opts,
        0,
        0,
        ""};
    int rc = cli_parse(&c, argc, argv, NULL, &npos);
    if (rc != CLI_RUN) return rc;
    if (!reg || !code || !key)
        return cli_usage(&c, "missing option '%s'",
                         !reg    ? "--registry"
                         : !code ? "--code"
                                 : "--key");
    sh_error err = {0};
    if (sh_registry_enrol(reg, code, key, revoke, &err)) return cli_fail(&c, &err);
    printf("%s key for %s in %s (the file was rewritten: comments and layout are not kept); "
           "reload the broker (SIGHUP) to apply it\n",
           revoke ? "revoked" : "enrolled", code, reg);
    return SH_EXIT_OK;
}
