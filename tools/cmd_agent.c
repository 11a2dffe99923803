/*
 * cmd_agent.c — the commands that talk to the local agent over its socket (docs/agent.md,
 * "The local interface"): status, publish, inbox, show, child, triage.
 *
 * Owns: one REQ connection per request. Never: reads a reply past its length, or prints a
 * child's identifiers anywhere but to the user who asked (stdout).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "codec.h"
#include "commands.h"

#define REPLY_WAIT_MS 10000 /* how long a request waits for the agent's answer */

static const char *const s_usage[][2] = {
    {"status", "usage: sharehub status [--socket PATH] [--json]\n"
               "  The agent's organisation, role, broker link, outbox and inbox counts.\n"},
    {"publish", "usage: sharehub publish [FILE|-] --user U [--purpose P] [--socket PATH] [--json]\n"
                "  Publishes one event written as JSON (docs/agent.md), from FILE or standard\n"
                "  input (at most 1 MiB). The agent fills event_id, schema_version, source_org\n"
                "  and the times when they are absent, stores it and puts it in its outbox.\n"
                "  Prints the status and the event id: 'sent' (handed to the broker, not yet\n"
                "  confirmed), 'queued' (waiting for the broker) or 'already accepted' (this\n"
                "  agency holds this very event). The broker's answer: sharehub show EVENT-ID.\n"},
    {"inbox", "usage: sharehub inbox --user U --purpose P [--since N] [--follow] [--summary]\n"
              "                      [--socket PATH] [--json]\n"
              "  What this agency received, oldest first, from arrival N (default 0), 100 at a\n"
              "  time (it says when more are there). Every event shown is audited as a read by U\n"
              "  for P. At the hub, each referral shows its triage state and deadline. --follow\n"
              "  keeps printing new arrivals. --summary lists what arrived (type, sender, time),\n"
              "  not what it says: no child is shown, and nothing is read.\n"},
    {"show", "usage: sharehub show EVENT-ID --user U --purpose P [--socket PATH] [--json]\n"
             "  One event in full, with the broker's answer for events sent. Audited as a read.\n"},
    {"child", "usage: sharehub child ID --user U --purpose P [--socket PATH] [--json]\n"
              "  Everything this agency holds about a child (NHS number, UPN or LA child id):\n"
              "  the current CP-IS flag, the last 25 unscheduled-care attendances, every event.\n"
              "  Audited as a read.\n"},
    {"triage",
     "usage: sharehub triage REFERRAL-ID --level 1-4 --outcome O --rationale TEXT --user U\n"
     "                       [--amend REASON] [--exception REASON] [--socket PATH] [--json]\n"
     "  The hub's decision on a request for support or safeguarding concern it received,\n"
     "  shared back under its ISPs. Decided once: --amend changes the decision, with the\n"
     "  reason. U is a practitioner's or team manager's account (sharehub account).\n"
     "  O: no_further_action, universal_services, early_help, family_solutions,\n"
     "  section_17_assessment, section_47_strategy, immediate_protection; it must fit the\n"
     "  level (docs/workspace.md), or a manager gives --exception with the reason.\n"},
};

#define SOCKET_NOTE                                                                                \
    "  The agent is at --socket PATH, or $SHAREHUB_SOCKET. exit 1 when the agent refuses (its\n"   \
    "  code and reason are printed) or cannot be reached.\n"

json_object *agent_call(const cli_cmd *c, const char *socket, json_object *req)
{
    char ep[600];
    struct stat st;
    if (stat(socket, &st) != 0) {
        cli_error(c, SH_EXIT_FAILED, SH_E_IO, "cannot reach the agent at %s: %s", socket,
                  strerror(errno));
        return NULL;
    }
    snprintf(ep, sizeof ep, "ipc://%s", socket);
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int linger = 0, tmo = REPLY_WAIT_MS;
    json_object *out = NULL;
    const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    if (s && !zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) &&
        !zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo) && !zmq_connect(s, ep) &&
        zmq_send(s, text, strlen(text), 0) >= 0) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) >= 0 && zmq_msg_size(&m) <= INT32_MAX) {
            /* a received buffer has no terminating NUL: parsed with its length */
            json_tokener *tok = json_tokener_new();
            out = tok ? json_tokener_parse_ex(tok, zmq_msg_data(&m), (int)zmq_msg_size(&m)) : NULL;
            if (out && json_tokener_get_parse_end(tok) != zmq_msg_size(&m)) {
                json_object_put(out); /* trailing bytes: not one JSON reply */
                out = NULL;
            }
            if (tok) json_tokener_free(tok);
        }
        zmq_msg_close(&m);
    }
    if (!out)
        cli_error(c, SH_EXIT_FAILED, SH_E_IO, "the agent at %s did not answer in %d s", socket,
                  REPLY_WAIT_MS / 1000);
    if (s) zmq_close(s);
    if (ctx) zmq_ctx_term(ctx);
    return out;
}

int agent_status(const cli_cmd *c, json_object *r)
{
    json_object *v;
    if (json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v)) return SH_EXIT_OK;
    json_object_object_get_ex(r, "detail", &v);
    const char *detail = v ? json_object_get_string(v) : "";
    json_object_object_get_ex(r, "code", &v);
    sh_err code = v ? (sh_err)json_object_get_int(v) : SH_E_INTERNAL;
    /* the detail names the problem in the user's terms; the code's own message otherwise */
    return cli_error(c, SH_EXIT_FAILED, code, "%s",
                     detail && *detail ? detail : sh_err_message(code));
}

static const char *s_jstr(json_object *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = o;
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg && cur; seg = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(cur, seg, &cur)) cur = NULL;
    return cur ? json_object_get_string(cur) : NULL;
}

static const char *s_jstr_or(json_object *o, const char *path)
{
    const char *s = s_jstr(o, path);
    return s ? s : "";
}

static void s_print_item(json_object *it)
{
    if (json_object_get_boolean(json_object_object_get(it, "damaged"))) {
        printf("DAMAGED  %s  E%03d %s: %s\n", s_jstr_or(it, "event_id"),
               json_object_get_int(json_object_object_get(it, "code")), s_jstr_or(it, "error"),
               s_jstr_or(it, "message"));
        return;
    }
    const char *given = s_jstr(it, "event.child.given_name"),
               *family = s_jstr(it, "event.child.family_name"),
               *nhs = s_jstr(it, "event.child.nhs_number"), *upn = s_jstr(it, "event.child.upn");
    time_t t = (time_t)(json_object_get_int64(json_object_object_get(it, "stored_at_ms")) / 1000);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    const char *dir = s_jstr(it, "direction"), *peer = s_jstr(it, "peer");
    int sent = dir && strcmp(dir, "sent") == 0;
    /* what a reader needs at a glance: the level of need, immediate risk, where the hub's
     * triage stands and when it is due; what a receipt is about */
    char note[160] = "";
    const char *level = s_jstr(it, "event.level_of_need");
    int risk = json_object_get_boolean(json_object_object_get(
                   json_object_object_get(it, "front_door"), "immediate_risk")) ||
               (s_jstr(it, "event.safeguarding_concern.immediate_risk") &&
                strcmp(s_jstr(it, "event.safeguarding_concern.immediate_risk"), "true") == 0) ||
               (s_jstr(it, "event.request_for_support.priority") &&
                strcmp(s_jstr(it, "event.request_for_support.priority"), "true") == 0);
    if (level && strcmp(level, "0") != 0)
        snprintf(note + strlen(note), sizeof note - strlen(note), " L%s", level);
    if (risk) snprintf(note + strlen(note), sizeof note - strlen(note), " IMMEDIATE-RISK");
    const char *st = s_jstr(it, "front_door.state"), *due = s_jstr(it, "front_door.due");
    if (st) {
        time_t dl = (time_t)(json_object_get_int64(json_object_object_get(
                                 json_object_object_get(it, "front_door"), "deadline_ms")) /
                             1000);
        char dls[32];
        strftime(dls, sizeof dls, "%a %d %b %H:%M", localtime(&dl));
        if (strcmp(st, "decided") == 0)
            snprintf(note + strlen(note), sizeof note - strlen(note), " [decided]");
        else
            snprintf(note + strlen(note), sizeof note - strlen(note), " [%s, due %s%s]", st, dls,
                     due && strcmp(due, "overdue") == 0 ? " OVERDUE" : "");
    }
    const char *rs = s_jstr(it, "event.delivery_receipt.status");
    if (rs)
        snprintf(note + strlen(note), sizeof note - strlen(note), " %s at %s: %.8s", rs,
                 s_jstr_or(it, "event.delivery_receipt.recipient_org"),
                 s_jstr_or(it, "event.delivery_receipt.for_event_id"));
    printf("%s  %-5s %-8s %-28s %s %s%s%s%s%s%s\n", when, sent ? "sent" : "from",
           sent || !peer ? "" : peer, s_jstr_or(it, "type"), s_jstr_or(it, "event_id"),
           given ? given : "", family ? " " : "", family ? family : "",
           nhs   ? " NHS "
           : upn ? " UPN "
                 : "",
           nhs   ? nhs
           : upn ? upn
                 : "",
           note);
}

/* Prints a reply the way a person reads it. */
static void s_print(const char *name, json_object *r)
{
    if (strcmp(name, "inbox") == 0) {
        json_object *items = json_object_object_get(r, "items");
        for (size_t i = 0; i < json_object_array_length(items); i++)
            s_print_item(json_object_array_get_idx(items, i));
    } else if (strcmp(name, "child") == 0) {
        printf("CP-IS flag: %s%s%s\n", s_jstr(r, "flag"),
               s_jstr(r, "responsible_la") ? "   responsible LA " : "",
               s_jstr(r, "responsible_la") ? s_jstr(r, "responsible_la") : "");
        json_object *att = json_object_object_get(r, "attendances");
        printf("unscheduled-care attendances (last 25): %zu\n", json_object_array_length(att));
        json_object *ev = json_object_object_get(r, "events");
        printf("events held: %zu\n", json_object_array_length(ev));
        for (size_t i = 0; i < json_object_array_length(ev); i++)
            s_print_item(json_object_array_get_idx(ev, i));
    } else if (strcmp(name, "show") == 0) {
        puts(json_object_to_json_string_ext(json_object_object_get(r, "item"),
                                            JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    } else if (strcmp(name, "status") == 0) {
        printf("%s (%s): broker %s, outbox %s, received %s\n", s_jstr(r, "org"), s_jstr(r, "role"),
               json_object_get_boolean(json_object_object_get(r, "connected")) ? "connected"
                                                                               : "unreachable",
               s_jstr(r, "outbox"), s_jstr(r, "received"));
    } else {
        printf("%s %s%s%s\n", s_jstr(r, "status"), s_jstr(r, "event_id"),
               s_jstr(r, "access_notification") ? "; access notification " : "",
               s_jstr(r, "access_notification") ? s_jstr(r, "access_notification") : "");
    }
}

int cmd_agent(const char *name, int argc, char **argv)
{
    const char *socket = getenv("SHAREHUB_SOCKET"), *user = NULL, *purpose = NULL;
    const char *outcome = NULL, *rationale = NULL, *pos = NULL, *amend = NULL, *exception = NULL;
    long since = 0, level = -1;
    int json = 0, follow = 0, summary = 0;
    size_t npos = 0, k = 0;
    while (strcmp(s_usage[k][0], name) != 0)
        k++;
    int is_inbox = strcmp(name, "inbox") == 0, is_triage = strcmp(name, "triage") == 0,
        reads = is_inbox || strcmp(name, "show") == 0 || strcmp(name, "child") == 0;
    cli_opt opts[12] = {{"--socket", CLI_TEXT, &socket, 0, 0}, {"--json", CLI_FLAG, &json, 0, 0}};
    size_t n = 2;
    if (strcmp(name, "status") != 0) opts[n++] = (cli_opt){"--user", CLI_TEXT, &user, 0, 0};
    if (reads || strcmp(name, "publish") == 0)
        opts[n++] = (cli_opt){"--purpose", CLI_TEXT, &purpose, 0, 0};
    if (is_inbox) {
        opts[n++] = (cli_opt){"--since", CLI_NUMBER, &since, 0, INT64_MAX / 2};
        opts[n++] = (cli_opt){"--follow", CLI_FLAG, &follow, 0, 0};
        opts[n++] = (cli_opt){"--summary", CLI_FLAG, &summary, 0, 0};
        opts[n++] = (cli_opt){"-f", CLI_FLAG, &follow, 0, 0};
    }
    if (is_triage) {
        opts[n++] = (cli_opt){"--level", CLI_NUMBER, &level, 1, 4};
        opts[n++] = (cli_opt){"--outcome", CLI_TEXT, &outcome, 0, 0};
        opts[n++] = (cli_opt){"--rationale", CLI_TEXT, &rationale, 0, 0};
        opts[n++] = (cli_opt){"--amend", CLI_TEXT, &amend, 0, 0};
        opts[n++] = (cli_opt){"--exception", CLI_TEXT, &exception, 0, 0};
    }
    char usage[1400], cmdname[32];
    snprintf(usage, sizeof usage, "%s%s", s_usage[k][1], SOCKET_NOTE);
    snprintf(cmdname, sizeof cmdname, "sharehub %s", name);
    int takes_pos = strcmp(name, "status") != 0 && !is_inbox;
    const char *argname = strcmp(name, "publish") == 0 ? "FILE"
                          : is_triage                  ? "REFERRAL-ID"
                          : strcmp(name, "show") == 0  ? "EVENT-ID"
                                                       : "ID";
    cli_cmd c = {cmdname,           usage,  opts, takes_pos && strcmp(name, "publish") != 0,
                 (size_t)takes_pos, argname};
    int rc = cli_parse(&c, argc, argv, &pos, &npos);
    if (rc != CLI_RUN) return rc;
    if (!socket) return cli_usage(&c, "no agent socket: give --socket PATH or set SHAREHUB_SOCKET");
    /* the agent's own Unix user names who it acts for; anyone else is their login (the
     * agent reads the connection's credentials: docs/agent.md) */
    struct stat st;
    int agents_user = stat(socket, &st) != 0 || st.st_uid == geteuid();
    if (strcmp(name, "status") != 0 && !user && agents_user)
        return cli_usage(&c, "missing option '--user' (who is %s: it is audited)",
                         reads ? "reading" : "acting");
    if (reads && !purpose)
        return cli_usage(&c, "missing option '--purpose' (why they are reading: it is audited)");
    if (is_triage && (level < 1 || !outcome || !rationale))
        return cli_usage(&c, "missing option '%s'",
                         level < 1  ? "--level"
                         : !outcome ? "--outcome"
                                    : "--rationale");

    json_object *req = json_object_new_object(), *r = NULL;
    json_object_object_add(req, "op", json_object_new_string(name));
    if (user) json_object_object_add(req, "user", json_object_new_string(user));
    if (purpose) json_object_object_add(req, "purpose", json_object_new_string(purpose));
    rc = SH_EXIT_FAILED;
    if (strcmp(name, "publish") == 0) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = cli_read_file(&c, pos ? pos : "-", SH_ENVELOPE_MAX, SH_E_TOO_LARGE, &text,
                                &len)) != CLI_RUN)
            goto out;
        enum json_tokener_error jerr = json_tokener_success;
        json_tokener *tok = json_tokener_new();
        json_object *ev = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
        if (tok) jerr = json_tokener_get_error(tok);
        if (ev && !json_object_is_type(ev, json_type_object)) {
            json_object_put(ev);
            ev = NULL;
        }
        if (tok) json_tokener_free(tok);
        free(text);
        if (!ev) {
            rc = cli_error(&c, SH_EXIT_FAILED, SH_E_MALFORMED, "%s: not a JSON object%s%s",
                           pos ? pos : "standard input", jerr ? ": " : "",
                           jerr ? json_tokener_error_desc(jerr) : "");
            goto out;
        }
        json_object_object_add(req, "event", ev);
    } else if (strcmp(name, "show") == 0 || strcmp(name, "child") == 0) {
        json_object_object_add(req, strcmp(name, "show") == 0 ? "event_id" : "id",
                               json_object_new_string(pos));
    } else if (is_triage) {
        json_object_object_add(req, "referral_event_id", json_object_new_string(pos));
        json_object_object_add(req, "level", json_object_new_int((int)level));
        json_object_object_add(req, "outcome", json_object_new_string(outcome));
        json_object_object_add(req, "rationale", json_object_new_string(rationale));
        if (amend) json_object_object_add(req, "amend_reason", json_object_new_string(amend));
        if (exception)
            json_object_object_add(req, "exception_reason", json_object_new_string(exception));
    }
    for (;;) {
        if (is_inbox) json_object_object_add(req, "since", json_object_new_int64(since));
        if (summary) json_object_object_add(req, "summary", json_object_new_boolean(1));
        if (!(r = agent_call(&c, socket, req))) {
            rc = SH_EXIT_FAILED;
            goto out;
        }
        if ((rc = agent_status(&c, r)) != SH_EXIT_OK) goto out;
        if (json)
            puts(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        else
            s_print(name, r);
        if (!json && is_inbox && !follow &&
            json_object_get_boolean(json_object_object_get(r, "more")))
            printf("(more arrived after these: sharehub inbox --since %s)\n", s_jstr_or(r, "next"));
        if (!(follow && is_inbox)) break;
        since = (long)json_object_get_int64(json_object_object_get(r, "next"));
        json_object_put(r);
        r = NULL;
        fflush(stdout);
        usleep(500 * 1000);
    }
out:
    if (r) json_object_put(r);
    json_object_put(req);
    return rc;
}
