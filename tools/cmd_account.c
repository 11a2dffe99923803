/*
 * cmd_account.c — `sharehub account`: the workspace's named users at the local agent
 * (docs/workspace.md, "Accounts"). The password is read from standard input, hashed here with
 * Argon2id (common/password.h) and only the hash is sent: the agent never sees a password.
 *
 * Owns: nothing. Never: takes a password from the command line (it would be in ps and the
 * shell's history), or prints one.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "crypto.h"
#include "password.h"

static const char s_usage[] =
    "usage: sharehub account set NAME --role R --user ADMIN [--display TEXT] [--password-stdin]\n"
    "                            [--socket PATH] [--json]\n"
    "       sharehub account list [--socket PATH] [--json]\n"
    "  set: makes the account NAME (a-z, 0-9, '.', '_', '-'; at most 64) or changes its role or\n"
    "  display name; either way its failed sign-ins are cleared (it is unlocked). A new\n"
    "  account needs --password-stdin: the first line of standard input, at least 12\n"
    "  characters. R: practitioner, manager, read_only or auditor. Audited as ADMIN's.\n"
    "  list: the accounts, their roles and whether each is locked now.\n"
    "  The agent is at --socket PATH, or $SHAREHUB_SOCKET.\n";

int cmd_account(int argc, char **argv)
{
    const char *socket = getenv("SHAREHUB_SOCKET"), *role = NULL, *user = NULL, *display = NULL;
    const char *pos[2] = {0};
    int json = 0, from_stdin = 0;
    size_t npos = 0;
    const cli_opt opts[] = {{"--socket", CLI_TEXT, &socket, 0, 0},
                            {"--json", CLI_FLAG, &json, 0, 0},
                            {"--role", CLI_TEXT, &role, 0, 0},
                            {"--user", CLI_TEXT, &user, 0, 0},
                            {"--display", CLI_TEXT, &display, 0, 0},
                            {"--password-stdin", CLI_FLAG, &from_stdin, 0, 0},
                            {NULL, CLI_FLAG, NULL, 0, 0}};
    const cli_cmd c = {"sharehub account", s_usage, opts, 1, 2, "set|list NAME"};
    int rc = cli_parse(&c, argc, argv, pos, &npos);
    if (rc != CLI_RUN) return rc;
    int set = strcmp(pos[0], "set") == 0;
    if (!set && strcmp(pos[0], "list") != 0)
        return cli_usage(&c, "unknown subcommand '%.20s': want set or list", pos[0]);
    if (set && npos != 2) return cli_usage(&c, "set: give the account's NAME");
    if (!set && npos != 1) return cli_usage(&c, "list takes no NAME");
    if (set && !role) return cli_usage(&c, "missing option '--role'");
    if (set && !user) return cli_usage(&c, "missing option '--user' (the administrator: audited)");
    if (!socket) return cli_usage(&c, "no agent socket: give --socket PATH or set SHAREHUB_SOCKET");
    json_object *req = json_object_new_object(), *r = NULL;
    json_object_object_add(req, "op", json_object_new_string(set ? "account_set" : "accounts"));
    if (set) {
        json_object_object_add(req, "name", json_object_new_string(pos[1]));
        json_object_object_add(req, "role", json_object_new_string(role));
        json_object_object_add(req, "user", json_object_new_string(user));
        if (display) json_object_object_add(req, "display", json_object_new_string(display));
    }
    if (set && from_stdin) {
        char line[SH_PASSWORD_MAX + 2], hash[SH_PASSWORD_HASH];
        sh_error err;
        if (!fgets(line, sizeof line, stdin)) {
            json_object_put(req);
            return cli_error(&c, SH_EXIT_FAILED, SH_E_MISSING_FIELD,
                             "--password-stdin: standard input is empty");
        }
        line[strcspn(line, "\r\n")] = '\0';
        sh_err hrc = sh_password_hash(line, hash, &err);
        sh_wipe(line, sizeof line);
        if (hrc) {
            json_object_put(req);
            return cli_fail(&c, &err);
        }
        json_object_object_add(req, "hash", json_object_new_string(hash));
    }
    rc = SH_EXIT_FAILED;
    if ((r = agent_call(&c, socket, req)) && (rc = agent_status(&c, r)) == SH_EXIT_OK) {
        if (json) {
            puts(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        } else if (set) {
            printf("%s %s\n", json_object_get_string(json_object_object_get(r, "status")), pos[1]);
        } else {
            json_object *list = json_object_object_get(r, "accounts");
            for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *x = json_object_array_get_idx(list, i), *d;
                printf("%-24s %-13s %s%s\n",
                       json_object_get_string(json_object_object_get(x, "name")),
                       json_object_get_string(json_object_object_get(x, "role")),
                       json_object_object_get_ex(x, "display", &d) ? json_object_get_string(d) : "",
                       json_object_get_boolean(json_object_object_get(x, "locked")) ? "  (locked)"
                                                                                    : "");
            }
        }
    }
    if (r) json_object_put(r);
    json_object_put(req);
    return rc;
}
