/*
 * cmd_review.c — `sharehub review`: the received copies whose retention ended in review, and a
 * person's decision on one — keep it longer (reviewed again then) or erase it now (docs/agent.md,
 * "Retention review"). Every list and decision is audited at the agent as U's, for P.
 *
 * Owns: nothing. Never: prints what a copy says (the list names type, sender, protocol, dates).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "commands.h"

static const char s_usage[] =
    "usage: sharehub review --due --user U --purpose P [--socket PATH] [--json]\n"
    "       sharehub review EVENT-ID --keep PERIOD --user U --purpose P [--socket PATH] [--json]\n"
    "       sharehub review EVENT-ID --erase --user U --purpose P [--socket PATH] [--json]\n"
    "  --due: the received copies whose protocol's retention has ended in review, waiting for a\n"
    "  person (type, sender, protocol, how long it was kept, since when it is due). --keep: keep\n"
    "  one PERIOD longer (90d, 18m or 2y), then review it again. --erase: erase it now, by\n"
    "  crypto-shredding as at the end of a retention. Audited as U's, for P.\n"
    "  The agent is at --socket PATH, or $SHAREHUB_SOCKET. exit 1 when the agent refuses.\n";

int cmd_review(int argc, char **argv)
{
    const char *socket = getenv("SHAREHUB_SOCKET"), *user = NULL, *purpose = NULL, *keep = NULL;
    const char *pos = NULL;
    int json = 0, due = 0, erase = 0;
    size_t npos = 0;
    const cli_opt opts[] = {
        {"--socket", CLI_TEXT, &socket, 0, 0}, {"--json", CLI_FLAG, &json, 0, 0},
        {"--user", CLI_TEXT, &user, 0, 0},     {"--purpose", CLI_TEXT, &purpose, 0, 0},
        {"--due", CLI_FLAG, &due, 0, 0},       {"--keep", CLI_TEXT, &keep, 0, 0},
        {"--erase", CLI_FLAG, &erase, 0, 0},   {NULL, CLI_FLAG, NULL, 0, 0}};
    const cli_cmd c = {"sharehub review", s_usage, opts, 0, 1, "EVENT-ID"};
    int rc = cli_parse(&c, argc, argv, &pos, &npos);
    if (rc != CLI_RUN) return rc;
    if (due + !!keep + erase != 1)
        return cli_usage(&c, "give one of --due, --keep PERIOD or --erase");
    if (due && npos) return cli_usage(&c, "--due lists them all: no EVENT-ID");
    if (!due && !npos) return cli_usage(&c, "which copy: give its EVENT-ID");
    if (!user) return cli_usage(&c, "missing option '--user' (who is reviewing: it is audited)");
    if (!purpose) return cli_usage(&c, "missing option '--purpose' (why: it is audited)");
    if (!socket) return cli_usage(&c, "no agent socket: give --socket PATH or set SHAREHUB_SOCKET");
    json_object *req = json_object_new_object(), *r = NULL;
    json_object_object_add(req, "op", json_object_new_string(due ? "review_due" : "review"));
    json_object_object_add(req, "user", json_object_new_string(user));
    json_object_object_add(req, "purpose", json_object_new_string(purpose));
    if (!due) {
        json_object_object_add(req, "event_id", json_object_new_string(pos));
        json_object_object_add(req, "decision", json_object_new_string(keep ? "keep" : "erase"));
        if (keep) json_object_object_add(req, "keep", json_object_new_string(keep));
    }
    rc = SH_EXIT_FAILED;
    if ((r = agent_call(&c, socket, req)) && (rc = agent_status(&c, r)) == SH_EXIT_OK) {
        json_object *v;
        char when[32];
        if (json) {
            puts(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        } else if (due) {
            json_object *items = json_object_object_get(r, "items");
            printf("%lld received copies due for review\n",
                   (long long)json_object_get_int64(json_object_object_get(r, "total")));
            for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *x = json_object_array_get_idx(items, i);
                const char *type = json_object_object_get_ex(x, "type", &v)
                                       ? json_object_get_string(v)
                                       : "(does not open)";
                const char *peer =
                    json_object_object_get_ex(x, "peer", &v) ? json_object_get_string(v) : "-";
                printf("%s  %-24s from %-9s under %s, kept %s, due since %s\n",
                       json_object_get_string(json_object_object_get(x, "event_id")), type, peer,
                       json_object_get_string(json_object_object_get(x, "rule")),
                       json_object_get_string(json_object_object_get(x, "kept")),
                       sh_clock_iso(json_object_get_int64(json_object_object_get(x, "due_at_ms")),
                                    when, sizeof when));
            }
        } else if (json_object_object_get_ex(r, "due_at_ms", &v)) {
            printf("kept %s: due for review again %s\n", pos,
                   sh_clock_iso(json_object_get_int64(v), when, sizeof when));
        } else {
            printf("erased %s\n", pos);
        }
    }
    if (r) json_object_put(r);
    json_object_put(req);
    return rc;
}
