/*
 * commands.h — the `sharehub` commands, one entry point each (argc/argv: the words after the
 * command's name), and the conventions they share (common/cli.h, docs/cli.md).
 *
 *   cmd_keys.c     keygen, ident
 *   cmd_policy.c   policy check (explain.c: policy explain)
 *   cmd_agent.c    status, publish, inbox, show, child, triage (the local agent)
 *   cmd_account.c  account set, account list (the workspace's users, at the local agent)
 *   cmd_review.c   review (retention reviews, at the local agent)
 *   cmd_enrol.c    enrol
 *   cmd_directory.c directory sign, directory verify (the federation directory)
 *   selfcheck.c    selfcheck
 *   audit_cli.c    audit verify, grant, replay, event; subject.c and whatif.c the rest
 */
#ifndef SHAREHUB_COMMANDS_H
#define SHAREHUB_COMMANDS_H

#include "cli.h"

int cmd_keygen(int argc, char **argv);
int cmd_ident(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_policy_explain(int argc, char **argv);
int cmd_agent(const char *name, int argc, char **argv);
int cmd_enrol(int argc, char **argv);
int cmd_directory(int argc, char **argv);
int cmd_account(int argc, char **argv);
int cmd_review(int argc, char **argv);

struct json_object;
/* Sends one JSON request to the agent at socket; the reply, or NULL (the error reported). */
struct json_object *agent_call(const cli_cmd *c, const char *socket, struct json_object *req);
/* The exit code of an agent's reply, with its refusal reported. */
int agent_status(const cli_cmd *c, struct json_object *r);
int cmd_selfcheck(int argc, char **argv);
int sh_audit_main(int argc, char **argv);

#endif
