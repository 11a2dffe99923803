/*
 * cmd_keys.c — `sharehub keygen` (new key files) and `sharehub ident` (check an identifier, or
 * make a synthetic child).
 *
 * Owns: nothing past the call. Never: echoes an identifier it checked (it may name a child),
 * overwrites a key file, or leaves a secret in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "commands.h"
#include "crypto.h"
#include "ident.h"
#include "synth.h"

int cmd_keygen(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    size_t npos = 0;
    const cli_opt opts[] = {{0}};
    const cli_cmd c = {"sharehub keygen",
                       "usage: sharehub keygen master|sign|curve PATH\n"
                       "  Writes a new key to PATH, mode 0600; never overwrites a file.\n"
                       "  master: a store's 32-byte master key; sign: an Ed25519 key (PEM) that "
                       "signs\n  the audit log's heads and an agency's sender evidence — its "
                       "public key is\n  printed, for the senders list (docs/evidence.md); "
                       "curve: a CURVE secret key\n  (Z85) — its public key is printed, for the "
                       "enrolment registry.\n",
                       opts,
                       2,
                       2,
                       "KIND PATH"};
    int rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc != CLI_RUN) return rc;
    const char *kind = pos[0], *path = pos[1];
    sh_error err = {0};
    sh_err e;
    if (strcmp(kind, "curve") == 0) {
        /* the secret key goes to the file; the public key is printed, for the registry */
        char pub[SH_Z85_LEN + 1], sec[SH_Z85_LEN + 2];
        if (sh_curve_keypair(pub, sec))
            return cli_error(&c, SH_EXIT_FAILED, SH_E_CRYPTO, "CURVE key generation failed");
        sec[SH_Z85_LEN] = '\n';
        e = sh_secret_file_write(path, sec, SH_Z85_LEN + 1, &err);
        sh_wipe(sec, sizeof sec);
        if (e) return cli_fail(&c, &err);
        printf("wrote curve key to %s (mode 0600); public key: %s\n", path, pub);
        return SH_EXIT_OK;
    }
    if (strcmp(kind, "master") == 0)
        e = sh_key_generate_file(path, &err);
    else if (strcmp(kind, "sign") == 0)
        e = sh_signkey_generate_file(path, &err);
    else
        return cli_usage(&c, "'%.20s' is not a kind of key: want master, sign or curve", kind);
    if (e) return cli_fail(&c, &err);
    if (strcmp(kind, "sign") == 0) { /* the public half, for the senders list */
        sh_signkey *k = NULL;
        uint8_t pub[SH_SIGN_PUB_BYTES];
        char hex[2 * SH_SIGN_PUB_BYTES + 1];
        if (sh_signkey_load_file(path, &k, &err)) return cli_fail(&c, &err);
        sh_signkey_public(k, pub);
        sh_signkey_destroy(&k);
        sh_hex_encode(pub, sizeof pub, hex);
        printf("wrote sign key to %s (mode 0600); public key: %s\n", path, hex);
        return SH_EXIT_OK;
    }
    printf("wrote %s key to %s (mode 0600)\n", kind, path);
    return SH_EXIT_OK;
}

/* `sharehub ident synthetic [SEED [LA]]`: a synthetic child as JSON, never a real person;
 * each SEED below SH_SYNTH_INDEXES is a different child. */
static int s_synthetic(const cli_cmd *c, const char **pos, size_t npos)
{
    long seed = (long)(sh_clock_ms() % SH_SYNTH_INDEXES);
    const char *la = npos >= 3 ? pos[2] : "881";
    if (npos >= 2 && cli_number(pos[1], 0, SH_SYNTH_INDEXES - 1, &seed))
        return cli_usage(c, "SEED '%.20s': want a whole number from 0 to %u", pos[1],
                         SH_SYNTH_INDEXES - 1);
    if (sh_la_code_check(la) != SH_OK)
        return cli_usage(c,
                         "LA '%.20s': not a DfE local authority code (3 digits, 201-938, such as "
                         "881 for Essex)",
                         la);
    sh_synth_child k;
    sh_synth_child_at((uint64_t)seed, la, &k);
    printf("{\"nhs_number\":\"%s\",\"upn\":\"%s\",\"la_child_id\":\"%s\",\"given_name\":\"%s\","
           "\"family_name\":\"%s\",\"date_of_birth\":\"%s\",\"responsible_la\":\"%s\"}\n",
           k.nhs_number, k.upn, k.la_child_id, k.given_name, k.family_name, k.date_of_birth,
           k.responsible_la);
    return SH_EXIT_OK;
}

int cmd_ident(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    size_t npos = 0;
    const cli_opt opts[] = {{0}};
    const cli_cmd c = {"sharehub ident",
                       "usage: sharehub ident check nhs|upn|la|org VALUE\n"
                       "       sharehub ident synthetic [SEED [LA]]\n"
                       "       sharehub ident event-id\n"
                       "  check: whether VALUE is a valid NHS number (spaces allowed), unique "
                       "pupil\n  number, local authority code or organisation code; exit 1 when "
                       "it is not. The\n  value is never printed back.\n"
                       "  synthetic: a synthetic child as JSON — NHS number in the never-issued "
                       "999\n  range, valid UPN and LA id, a ZZTEST name. Each SEED from 0 to "
                       "899999 is a\n  different child; LA is a DfE code (default 881).\n"
                       "  event-id: a new event id (UUIDv7), for a system that publishes through "
                       "the\n  API and wants its retries to be recognised (docs/api.md).\n",
                       opts,
                       1,
                       3,
                       "check|synthetic|event-id"};
    int rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc != CLI_RUN) return rc;
    if (strcmp(pos[0], "synthetic") == 0) return s_synthetic(&c, pos, npos);
    if (strcmp(pos[0], "event-id") == 0) {
        uint8_t id[SH_EVENT_ID_LEN];
        char text[SH_EVENT_ID_STR];
        if (npos != 1) return cli_usage(&c, "event-id takes no argument");
        sh_error err = {SH_E_IO, "no randomness from the system"};
        if (sh_event_id_new(id)) return cli_fail(&c, &err);
        printf("%s\n", sh_event_id_format(id, text));
        return SH_EXIT_OK;
    }
    if (strcmp(pos[0], "check") != 0)
        return cli_usage(&c, "'%.20s': want check, synthetic or event-id", pos[0]);
    if (npos != 3)
        return cli_usage(&c, npos == 1 ? "missing argument KIND" : "missing argument VALUE");
    const char *kind = pos[1], *v = pos[2];
    sh_err e;
    char nhs[SH_NHS_LEN + 1];
    if (strcmp(kind, "nhs") == 0)
        e = sh_nhs_normalise(v, nhs);
    else if (strcmp(kind, "upn") == 0)
        e = sh_upn_check(v);
    else if (strcmp(kind, "la") == 0)
        e = sh_la_code_check(v);
    else if (strcmp(kind, "org") == 0)
        e = sh_org_code_check(v);
    else
        return cli_usage(&c, "'%.20s' is not a kind of identifier: want nhs, upn, la or org", kind);
    /* The value is not echoed: it may identify a child. */
    if (e) {
        printf("invalid: E%03d %s: %s\n", (int)e, sh_err_name(e), sh_err_message(e));
        return SH_EXIT_FAILED;
    }
    printf("valid %s\n", kind);
    return SH_EXIT_OK;
}
