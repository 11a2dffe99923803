/*
 * sharehub.c — the `sharehub` command: which command runs, the overall help, the version.
 * Each command is in a file of its own (commands.h); the conventions they all keep — exit
 * codes, options, --help, errors in words or JSON — are common/cli.h, described in docs/cli.md.
 *
 * Owns: the list of commands. Never: prints personal data, or keeps a key after it is done.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "codec.h"
#include "commands.h"
#include "store.h"

static const char s_usage[] =
    "usage: sharehub COMMAND [ARGS]       (sharehub COMMAND --help: that command's own)\n"
    "agency (through the local agent, --socket PATH or $SHAREHUB_SOCKET):\n"
    "  status                                  the agent's state\n"
    "  publish [FILE|-] --user U [--purpose P] publish one event (JSON)\n"
    "  inbox --user U --purpose P              what arrived (every read audited)\n"
    "  show EVENT-ID --user U --purpose P      one event in full\n"
    "  child ID --user U --purpose P           what this agency holds about a child\n"
    "  triage REFERRAL-ID --level N ...        the hub's decision on a referral\n"
    "  account set|list ...                    the workspace's users at this agency\n"
    "  review --due | EVENT-ID --keep P|--erase  copies whose retention ended in review\n"
    "information governance:\n"
    "  policy check|explain|show ...           lint a policy; who would receive an event; review "
    "it\n"
    "  audit verify|grant|replay|subject|whatif|event ...   the audit logs\n"
    "operations:\n"
    "  keygen master|sign|curve PATH           a new key file (0600)\n"
    "  enrol --registry FILE --code ORG --key KEY [--revoke]\n"
    "  directory sign|verify FILE ...          the federation directory's signature\n"
    "  ident check|synthetic ...               check an identifier; a synthetic child\n"
    "  selfcheck [--keep]                      the foundation's self-check\n"
    "  version                                 this build\n"
    "exit: 0 success; 1 the operation failed, or what was checked is bad; 2 usage error\n"
    "--json (where a command has it): output and errors as JSON\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {
        {"keygen", cmd_keygen},   {"ident", cmd_ident},         {"policy", cmd_policy},
        {"enrol", cmd_enrol},     {"selfcheck", cmd_selfcheck}, {"audit", sh_audit_main},
        {"account", cmd_account}, {"review", cmd_review},       {"directory", cmd_directory}};
    static const char *const agent[] = {"status", "publish", "inbox", "show", "child", "triage"};
    if (argc < 2) {
        fputs(s_usage, stderr);
        return SH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 && argc >= 3) { /* sharehub help COMMAND */
        char help[] = "--help";
        char *args[] = {argv[0], argv[2], help, NULL};
        return main(3, args);
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(s_usage, stdout);
        return SH_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && strcmp(argv[2], "--help") != 0 && strcmp(argv[2], "-h") != 0) {
            fprintf(stderr, "sharehub version: extra argument '%.40s'\n", argv[2]);
            return SH_EXIT_USAGE;
        }
        printf("sharehub %s (schema v%d, store format %d, audit format %d)\n", SHAREHUB_VERSION,
               SH_SCHEMA_VERSION, SH_STORE_FORMAT, SH_AUDIT_VERSION);
        return SH_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].run(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof agent / sizeof agent[0]; i++)
        if (strcmp(cmd, agent[i]) == 0) return cmd_agent(cmd, argc - 2, argv + 2);
    fprintf(stderr, "sharehub: unknown command '%.40s' (see 'sharehub --help')\n", cmd);
    return SH_EXIT_USAGE;
}
