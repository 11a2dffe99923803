/*
 * audit_cli.c — `sharehub audit`: verify, grant, replay and event; the shared opening of a
 * store's log for auditors (subject and whatif are in subject.c and whatif.c).
 *
 * Owns: the auditor's commands, their options, exit codes (0 verified / found, 1 tampered,
 * 2 could not read or usage) and output formats (docs/audit.md).
 * Never: decrypts a stored event without auditing the read in that store's own chain, or
 * prints a child's identifier next to its blinded reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_record.h"
#include "auditor.h"
#include "broker_record.h"
#include "codec.h"
#include "ident.h"
#include "json.h"
#include "shred.h"

int sh_audit_main(int argc, char **argv);

#define KEYS_USAGE                                                                                 \
    "  keys: --keyring FILE (an auditor's, from `sharehub audit grant`), or --master KEY and\n"    \
    "  --sign-key PEM (the store's own, for an operator)\n"

static const char s_usage[] =
    "usage: sharehub audit COMMAND [ARGS]   (each command's own: sharehub audit COMMAND --help)\n"
    "  verify STORE... [--witness BROKER-STORE] [--json]     check audit chains and each\n"
    "                                                        other's signed heads\n"
    "  grant STORE --master KEY --sign-key PEM --keyring FILE --name NAME [--no-blind]\n"
    "        [--mac-key]                                     add a store's audit keys to a "
    "keyring\n"
    "  replay STORE [filters] [--json]                       list entries\n"
    "  subject CHILD-ID... --stores STORE... [--format md|html] [--output FILE]\n"
    "                                                        one child's report across stores\n"
    "  whatif --store BROKER-STORE --policy DIR --registry FILE   decisions under another policy\n"
    "  timestamp STORE --tsa-command CMD --tsa-ca PEM          an RFC 3161 time-stamp of the\n"
    "                                                        newest signed head\n"
    "  event STORE EVENT-ID --master KEY --sign-key PEM --user U --purpose P\n"
    "                                                        one stored event, the read "
    "audited\n" KEYS_USAGE
    "exit: 0 verified / done, 1 tampered or failed (the message says why), 2 usage\n";

/* ---- verify ---------------------------------------------------------------------------- */

static int s_is_tamper(sh_err rc)
{
    return (rc >= SH_E_AUDIT_ALTERED && rc <= SH_E_AUDIT_WRONG_STORE) || rc == SH_E_TIMESTAMP;
}

/* Prints one store's verdict; returns its exit code. */
static int s_print_verdict(const char *dir, const char *name, const char *id,
                           const sh_audit_report *r, int json)
{
    char head[2 * SH_MAC_BYTES + 1];
    sh_hex_encode(r->head_mac, SH_MAC_BYTES, head);
    int code = r->result == SH_OK ? SH_EXIT_OK : SH_EXIT_FAILED;
    const char *verdict = r->result == SH_OK       ? "OK"
                          : s_is_tamper(r->result) ? "TAMPERED"
                                                   : "UNREADABLE";
    if (json) {
        printf("{\"store\":");
        cli_json_string(stdout, dir);
        printf(",\"result\":\"%s\",\"code\":%d,\"entries\":%llu,\"checkpoints\":%llu,"
               "\"head_seq\":%llu,\"head\":\"%s\",\"bad_seq\":%llu,\"store_id\":\"%s\","
               "\"name\":",
               verdict, (int)r->result, (unsigned long long)r->entries,
               (unsigned long long)r->checkpoints, (unsigned long long)r->head_seq, head,
               (unsigned long long)r->bad_seq, id);
        cli_json_string(stdout, name);
        printf(",\"detail\":");
        cli_json_string(stdout, r->detail);
        printf("}\n");
    } else if (code == SH_EXIT_OK) {
        printf("%s: OK: %llu entries, %llu checkpoints (last at %llu), head %llu %.16s%s%s; "
               "store %s%s%s%s\n",
               dir, (unsigned long long)r->entries, (unsigned long long)r->checkpoints,
               (unsigned long long)r->last_checkpoint_seq, (unsigned long long)r->head_seq, head,
               r->detail[0] ? "; " : "", r->detail, id, name[0] ? " (" : "", name,
               name[0] ? ")" : "");
    } else if (s_is_tamper(r->result)) {
        printf("%s: TAMPERED: E%03d %s at entry %llu: %s (%llu entries verified before it)\n", dir,
               (int)r->result, sh_err_name(r->result), (unsigned long long)r->bad_seq, r->detail,
               (unsigned long long)r->entries);
    } else {
        printf("%s: UNREADABLE: E%03d %s: %s\n", dir, (int)r->result, sh_err_name(r->result),
               r->detail);
    }
    return code;
}

#define VERIFY_MAX 64

static int s_verify(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *witness_dir = NULL, *tsa_ca = NULL, *dirs[VERIFY_MAX + 1];
    size_t ndirs = 0;
    int json = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--witness", CLI_TEXT, &witness_dir, 0, 0},
                            {"--tsa-ca", CLI_TEXT, &tsa_ca, 0, 0},
                            {"--json", CLI_FLAG, &json, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit verify",
        "usage: sharehub audit verify [NAME=]STORE... [--witness BROKER-STORE]\n"
        "                             [--tsa-ca PEM] [--json]\n"
        "  Checks each store's audit chain: every entry's hash, the order, every\n"
        "  signed head and checkpoint; then each store against the signed heads of\n"
        "  it that the other stores given hold: the broker's of each agent, each\n"
        "  agent's of the broker (a log rolled back, cut or rewritten shows).\n"
        "  --witness adds the broker's store (verified and reported too). NAME=:\n"
        "  the store must be the one the keyring names NAME (E608 otherwise).\n"
        "  --tsa-ca: check each store's RFC 3161 time-stamps (`audit timestamp`) against\n"
        "  the authorities' certificates in PEM (E612 otherwise).\n" KEYS_USAGE
        "  exit 0 all OK; 1 a chain is TAMPERED or a store UNREADABLE\n",
        opts,
        1,
        VERIFY_MAX,
        "STORE"};
    int rc = cli_parse(&c, argc, argv, dirs, &ndirs);
    if (rc != CLI_RUN || (rc = sh_auth_given(&c, &auth)) != CLI_RUN) return rc;
    if (witness_dir) dirs[ndirs++] = witness_dir;
    sh_alog logs[VERIFY_MAX + 1], set[VERIFY_MAX + 1];
    sh_audit_report reps[VERIFY_MAX + 1], setreps[VERIFY_MAX + 1];
    char names[VERIFY_MAX + 1][SH_KEYRING_NAME_MAX + 1], ids[VERIFY_MAX + 1][33];
    int in_set[VERIFY_MAX + 1];
    size_t nset = 0;
    for (size_t i = 0; i < ndirs; i++) {
        char want[SH_KEYRING_NAME_MAX + 1] = "";
        sh_error err = {0};
        const char *eq = strchr(dirs[i], '='), *slash = strchr(dirs[i], '/');
        if (eq && (!slash || eq < slash) && (size_t)(eq - dirs[i]) < sizeof want) {
            memcpy(want, dirs[i], (size_t)(eq - dirs[i])); /* NAME=STORE */
            dirs[i] = eq + 1;
        }
        names[i][0] = ids[i][0] = '\0';
        in_set[i] = 0;
        memset(&reps[i], 0, sizeof reps[i]);
        if (sh_alog_open(dirs[i], &auth, &logs[i], &err)) {
            reps[i].result = err.code;
            snprintf(reps[i].detail, sizeof reps[i].detail, "%s", err.detail);
            continue;
        }
        snprintf(names[i], sizeof names[i], "%s", auth.master ? "" : logs[i].keys->name);
        sh_hex_encode(sh_store_id(logs[i].store), SH_STORE_ID_BYTES, ids[i]);
        if (want[0] && !auth.master && strcmp(want, names[i]) != 0) {
            reps[i].result = SH_E_AUDIT_WRONG_STORE; /* (its log is not the one asked about) */
            reps[i].bad_seq = 1;
            snprintf(reps[i].detail, sizeof reps[i].detail,
                     "this is store %.32s, which the keyring names '%.48s', not '%.48s'", ids[i],
                     names[i], want);
            continue;
        }
        in_set[i] = 1;
        set[nset++] = logs[i];
    }
    sh_alog_verify_all(set, nset, !json && isatty(2), setreps);
    int worst = SH_EXIT_OK;
    for (size_t i = 0, k = 0; i < ndirs; i++) {
        if (in_set[i]) reps[i] = setreps[k++];
        if (in_set[i] && tsa_ca && reps[i].result == SH_OK)
            sh_alog_check_timestamps(&logs[i], tsa_ca, &reps[i]);
        int code = s_print_verdict(dirs[i], names[i], ids[i], &reps[i], json);
        if (code > worst) worst = code;
        if (ids[i][0]) sh_alog_close(&logs[i]);
    }
    sh_auth_free(&auth);
    return worst;
}

/* ---- grant ----------------------------------------------------------------------------- */

static int s_grant(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *dir = NULL, *name = NULL;
    int no_blind = 0, mac_key = 0;
    size_t npos = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--name", CLI_TEXT, &name, 0, 0},
                            {"--no-blind", CLI_FLAG, &no_blind, 0, 0},
                            {"--mac-key", CLI_FLAG, &mac_key, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit grant",
        "usage: sharehub audit grant STORE --master KEY --sign-key PEM --keyring FILE --name NAME\n"
        "                            [--no-blind] [--mac-key]\n"
        "  Adds the store's public signing key (and, unless --no-blind, its key for finding a\n"
        "  child's entries) to an auditor's keyring FILE, created 0600 if absent. The keyring\n"
        "  opens no event and can write no entry: it verifies, replays and searches the log only.\n"
        "  --mac-key adds the audit MAC key, needed only for a log begun before version 2.\n",
        opts,
        1,
        1,
        "STORE"};
    int prc = cli_parse(&c, argc, argv, &dir, &npos);
    if (prc != CLI_RUN) return prc;
    if (!auth.master || !auth.sign || !auth.keyring || !name)
        return cli_usage(&c, "missing option '%s'",
                         !auth.master    ? "--master"
                         : !auth.sign    ? "--sign-key"
                         : !auth.keyring ? "--keyring"
                                         : "--name");
    const char *ring_path = auth.keyring;
    auth.keyring = NULL;
    sh_alog l;
    sh_error err = {0};
    sh_keyring *ring = NULL;
    if (sh_alog_open(dir, &auth, &l, &err)) return cli_fail(&c, &err);
    struct stat st;
    sh_err rc = stat(ring_path, &st) == 0 ? sh_keyring_load(ring_path, &ring, &err)
                                          : (sh_keyring_new(&ring) ? SH_E_NOMEM : SH_OK);
    sh_key *audit = NULL, *blind = NULL;
    if (!rc && ((mac_key && sh_store_derive_key(l.store, "audit mac", &audit)) ||
                (!no_blind && sh_store_derive_key(l.store, "blind index", &blind))))
        rc = sh_error_set(&err, SH_E_CRYPTO, "deriving keys");
    if (!rc)
        rc = sh_keyring_put(ring, sh_store_id(l.store), name, audit, blind, l.keys->signers[0],
                            &err);
    if (!rc) rc = sh_keyring_save(ring, ring_path, &err);
    char id[2 * SH_STORE_ID_BYTES + 1];
    sh_hex_encode(sh_store_id(l.store), SH_STORE_ID_BYTES, id);
    sh_key_destroy(&audit);
    sh_key_destroy(&blind);
    sh_keyring_destroy(&ring);
    sh_alog_close(&l);
    if (rc) return cli_fail(&c, &err);
    printf("%s: store %s added to %s as %s (%s)\n", dir, id, ring_path, name,
           no_blind ? "verify and replay only" : "verify, replay and search by child");
    return SH_EXIT_OK;
}

/* ---- replay ---------------------------------------------------------------------------- */

/* Parses a time option; *day is set when only a date was given. -1 on bad input. */
static int s_parse_time(const char *s, int64_t *out, int *day)
{
    struct tm tm = {0};
    char *end;
    *day = 0;
    if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) && (*end == '\0' || strcmp(end, "Z") == 0)) {
        *out = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    if ((end = strptime(s, "%Y-%m-%d", &tm)) && *end == '\0') {
        *out = (int64_t)timegm(&tm) * 1000;
        *day = 1;
        return 0;
    }
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 0) return -1;
    *out = v;
    return 0;
}

typedef struct s_filter {
    int64_t from, to; /* [from, to) */
    const char *org, *isp;
    int action, outcome; /* -1: any */
    int has_event;
    uint8_t event[16];
    uint8_t refs[8][32];
    size_t nrefs;
} s_filter;

static int s_match(const s_filter *f, const sh_audit_record *r)
{
    if (r->time_ms < f->from || r->time_ms >= f->to) return 0;
    if (f->action >= 0 && r->action != f->action) return 0;
    if (f->outcome >= 0 && r->outcome != f->outcome) return 0;
    if (f->org && strcmp(r->actor_org, f->org) != 0 && strcmp(r->peer_org, f->org) != 0) return 0;
    if (f->has_event && (!r->has_event || memcmp(r->event_id, f->event, 16) != 0)) return 0;
    if (f->isp) {
        size_t n = strlen(f->isp);
        if (strncmp(r->rule, f->isp, n) != 0 || (r->rule[n] != '\0' && r->rule[n] != '@')) return 0;
    }
    if (f->nrefs) {
        int hit = 0;
        for (size_t i = 0; i < f->nrefs && !hit; i++)
            hit = r->has_child && memcmp(r->child_ref, f->refs[i], 32) == 0;
        if (!hit) return 0;
    }
    return 1;
}

static const char *const s_outcomes[] = {"ok", "denied", "failed"};

typedef struct s_replay {
    s_filter f;
    int json, progress;
    uint64_t total, seen, shown;
} s_replay;

static int s_replay_visit(void *ctx, const sh_audit_record *r)
{
    s_replay *p = ctx;
    if (p->progress && (++p->seen & 0xffff) == 0 && p->total)
        fprintf(stderr, "\r  replaying %3d%%  %llu of %llu entries",
                (int)(p->seen * 100 / p->total), (unsigned long long)p->seen,
                (unsigned long long)p->total);
    if (!s_match(&p->f, r)) return 0;
    p->shown++;
    char when[32], ev[SH_EVENT_ID_STR] = "";
    sh_iso_time(r->time_ms, when);
    if (r->has_event) sh_event_id_format(r->event_id, ev);
    const char *outcome = r->outcome < 3 ? s_outcomes[r->outcome] : "unknown";
    if (p->json) {
        char ref[65] = "";
        if (r->has_child) sh_hex_encode(r->child_ref, 32, ref);
        printf(
            "{\"seq\":%llu,\"time\":\"%s\",\"time_ms\":%lld,\"action\":\"%s\",\"outcome\":\"%s\","
            "\"code\":%u,\"event_id\":%s%s%s,\"child_ref\":%s%s%s,\"actor_org\":",
            (unsigned long long)r->seq, when, (long long)r->time_ms,
            sh_audit_action_name(r->action), outcome, r->code, ev[0] ? "\"" : "",
            ev[0] ? ev : "null", ev[0] ? "\"" : "", ref[0] ? "\"" : "", ref[0] ? ref : "null",
            ref[0] ? "\"" : "");
        cli_json_string(stdout, r->actor_org);
        fputs(",\"actor_user\":", stdout);
        cli_json_string(stdout, r->actor_user);
        fputs(",\"peer_org\":", stdout);
        cli_json_string(stdout, r->peer_org);
        fputs(",\"purpose\":", stdout);
        cli_json_string(stdout, r->purpose);
        fputs(",\"rule\":", stdout);
        cli_json_string(stdout, r->rule);
        fputs(",\"detail\":", stdout);
        cli_json_string(stdout, r->detail);
        fputs("}\n", stdout);
    } else {
        char code[8] = "";
        if (r->code) snprintf(code, sizeof code, "E%03u", r->code);
        printf("%8llu  %.19s  %-8s %-6s %-4s  %-9s %-12.12s %-9s %-32.32s %-36s  %.70s\n",
               (unsigned long long)r->seq, when, sh_audit_action_name(r->action), outcome, code,
               r->actor_org, r->actor_user, r->peer_org[0] ? r->peer_org : "-",
               r->rule[0] ? r->rule : "-", ev[0] ? ev : "-", r->detail);
    }
    return 0;
}

static int s_replay_cmd(int argc, char **argv)
{
    sh_auth auth = {0};
    s_replay p = {.f = {.from = INT64_MIN, .to = INT64_MAX, .action = -1, .outcome = -1}};
    const char *dir = NULL, *child_v[8], *from = NULL, *to = NULL, *action = NULL, *decision = NULL,
               *event = NULL;
    cli_list child = {child_v, 0, 8};
    size_t npos = 0;
    int no_progress = 0, day = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--from", CLI_TEXT, &from, 0, 0},
                            {"--to", CLI_TEXT, &to, 0, 0},
                            {"--org", CLI_TEXT, &p.f.org, 0, 0},
                            {"--isp", CLI_TEXT, &p.f.isp, 0, 0},
                            {"--action", CLI_TEXT, &action, 0, 0},
                            {"--decision", CLI_TEXT, &decision, 0, 0},
                            {"--event", CLI_TEXT, &event, 0, 0},
                            {"--child", CLI_MANY, &child, 0, 0},
                            {"--json", CLI_FLAG, &p.json, 0, 0},
                            {"--no-progress", CLI_FLAG, &no_progress, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit replay",
        "usage: sharehub audit replay STORE [--from T] [--to T] [--org ORG] [--action A]\n"
        "                             [--decision ok|denied|failed] [--child ID]... [--event ID]\n"
        "                             [--isp ID] [--json] [--no-progress]\n"
        "  Lists the store's audit entries that match every filter given, oldest first.\n"
        "  T: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or epoch milliseconds; --to is exclusive (a\n"
        "  date: the whole day). A: write, read, send, receive, deny, deliver, refuse, admin,\n"
        "  witness, connection, expire, sign_in, erase. --child needs a keyring with the store's "
        "blind "
        "key.\n" KEYS_USAGE,
        opts,
        1,
        1,
        "STORE"};
    int prc = cli_parse(&c, argc, argv, &dir, &npos);
    if (prc != CLI_RUN || (prc = sh_auth_given(&c, &auth)) != CLI_RUN) return prc;
    if (from && s_parse_time(from, &p.f.from, &day))
        return cli_usage(&c, "--from '%.40s': want YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or epoch ms",
                         from);
    if (to && s_parse_time(to, &p.f.to, &day))
        return cli_usage(&c, "--to '%.40s': want YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or epoch ms", to);
    if (to && day) p.f.to += 86400000; /* a date names the whole day */
    if (action) {
        p.f.action = 0;
        for (int a = SH_AUDIT_WRITE; a <= SH_AUDIT_ACTION_MAX; a++)
            if (strcmp(sh_audit_action_name(a), action) == 0) p.f.action = a;
        if (!p.f.action)
            return cli_usage(&c,
                             "--action '%.30s': want write, read, send, receive, deny, deliver, "
                             "refuse, admin, witness, connection, expire, sign_in or erase",
                             action);
    }
    if (decision) {
        for (int o = 0; o < 3; o++)
            if (strcmp(s_outcomes[o], decision) == 0) p.f.outcome = o;
        if (p.f.outcome < 0)
            return cli_usage(&c, "--decision '%.30s': want ok, denied or failed", decision);
    }
    if (event) {
        if (sh_event_id_parse(event, p.f.event) != SH_OK)
            return cli_usage(&c, "--event: not an event id (a UUIDv7, 8-4-4-4-12 hex)");
        p.f.has_event = 1;
    }
    size_t nchild = child.n;
    sh_alog l;
    sh_error err = {0};
    if (sh_alog_open(dir, &auth, &l, &err)) {
        sh_auth_free(&auth);
        return cli_fail(&c, &err);
    }
    int rc = SH_EXIT_OK;
    if (nchild) {
        int n = sh_alog_child_refs(&l, (char *const *)child.v, nchild, p.f.refs, &err);
        if (n < 0) rc = cli_fail(&c, &err);
        p.f.nrefs = nchild;
    }
    if (rc == SH_EXIT_OK) {
        static char outbuf[1 << 20];
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
        p.progress = !no_progress && isatty(2);
        if (p.progress) {
            sh_txn *t = NULL;
            uint8_t mac[SH_MAC_BYTES];
            if (sh_txn_begin(l.store, 0, &t, &err) == SH_OK &&
                sh_audit_head(l.audit, t, &p.total, mac, &err) != SH_OK)
                p.total = 0;
            sh_txn_abort(&t);
        }
        if (!p.json)
            printf("%8s  %-19s  %-8s %-6s %-4s  %-9s %-12s %-9s %-32s %-36s  %s\n", "SEQ",
                   "TIME (UTC)", "ACTION", "RESULT", "CODE", "ORG", "USER", "PEER", "RULE", "EVENT",
                   "DETAIL");
        sh_audit_report r;
        sh_audit_scan(l.audit, 1, s_replay_visit, &p, &r);
        fflush(stdout);
        if (p.progress && p.total >= 65536) fprintf(stderr, "\r%60s\r", "");
        if (r.result != SH_OK) {
            fprintf(stderr,
                    "sharehub audit replay: %s: stopped at entry %llu: E%03d %s: %s\n"
                    "  (entries before it are shown; run `sharehub audit verify`)\n",
                    dir, (unsigned long long)r.bad_seq, (int)r.result, sh_err_name(r.result),
                    r.detail);
            rc = SH_EXIT_FAILED;
        } else if (!p.json) {
            fprintf(stderr, "%llu of %llu entries shown\n", (unsigned long long)p.shown,
                    (unsigned long long)r.entries);
        }
    }
    sh_alog_close(&l);
    sh_auth_free(&auth);
    return rc;
}

/* ---- event: an audited read of one stored payload --------------------------------------- */

static int s_event(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *pos[2] = {NULL, NULL}, *user = NULL, *purpose = NULL;
    size_t npos = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--user", CLI_TEXT, &user, 0, 0},
                            {"--purpose", CLI_TEXT, &purpose, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit event",
        "usage: sharehub audit event STORE EVENT-ID --master KEY --sign-key PEM --user U\n"
        "                            --purpose P\n"
        "  Decrypts one stored event (a broker's or an agent's store) and prints it as JSON. It\n"
        "  takes the store's own keys — a keyring opens no event — and the read is audited in\n"
        "  the store's chain with U and P (1-64 characters each).\n",
        opts,
        2,
        2,
        "STORE EVENT-ID"};
    int prc = cli_parse(&c, argc, argv, pos, &npos);
    if (prc != CLI_RUN) return prc;
    const char *dir = pos[0], *idtext = pos[1];
    uint8_t id[16];
    if (!auth.master || !auth.sign)
        return cli_usage(&c, "reading an event takes the store's own keys: give --master and "
                             "--sign-key (a keyring opens no event)");
    if (!user || !purpose)
        return cli_usage(&c, "missing option '%s' (the read is audited)",
                         !user ? "--user" : "--purpose");
    if (sh_event_id_parse(idtext, id) != SH_OK)
        return cli_error(&c, SH_EXIT_USAGE, SH_E_BAD_EVENT_ID,
                         "EVENT-ID: not an event id (a UUIDv7, 8-4-4-4-12 hex)");
    const char *bad =
        !*user                                 ? "--user: empty"
        : strlen(user) > SH_AUDIT_SHORT_MAX    ? "--user: too long (at most 64 characters)"
        : sh_text_check(user)                  ? "--user: not clean text"
        : !*purpose                            ? "--purpose: empty"
        : strlen(purpose) > SH_AUDIT_SHORT_MAX ? "--purpose: too long (at most 64 characters)"
        : sh_text_check(purpose)               ? "--purpose: not clean text"
                                               : NULL;
    if (bad) return cli_error(&c, SH_EXIT_USAGE, SH_E_BAD_FIELD, "%s", bad);
    sh_alog l;
    sh_error err = {0};
    if (sh_alog_open(dir, &auth, &l, &err)) return cli_fail(&c, &err);
    sh_db events;
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_envelope *e = NULL;
    sh_err rc = sh_store_db(l.store, "events", SH_DB_SEALED, &events, &err);
    if (!rc) rc = sh_txn_begin(l.store, 1, &t, &err);
    if (!rc) rc = sh_txn_get(t, events, id, 16, &b, &err);
    /* the record's owner parses it: a broker's store has a queue, an agent's an outbox */
    int broker = sh_store_db_exists(l.store, "queue"),
        agent = sh_store_db_exists(l.store, "outbox");
    const uint8_t *env = NULL;
    uint8_t *opened = NULL;
    size_t envlen = 0;
    sh_broker_event bev;
    sh_agent_record arec;
    int daykey = 0; /* sealed under the day its retention (an agent's) or keeping ends */
    if (!rc && broker && sh_broker_event_parse(b.data, b.len, &bev) == 0) {
        env = bev.env;
        envlen = bev.env_len;
        daykey = bev.form == SH_EVENT_SEALED;
        if (bev.form == SH_EVENT_ERASED)
            rc = sh_error_set(&err, SH_E_NOT_FOUND,
                              "the broker's copy of the event was erased after --keep-events: "
                              "only its sender, outcome and hash remain");
    } else if (!rc && agent && sh_agent_record_parse(b.data, b.len, &arec) == 0) {
        env = arec.env;
        envlen = arec.env_len;
        daykey = (arec.flags & SH_RECORD_DAYKEY) != 0;
    }
    if (!rc && daykey) {
        char sp[4200];
        sh_shred *shred = NULL;
        snprintf(sp, sizeof sp, "%s/erase.shred", dir);
        rc = sh_shred_open(sp, 0, &shred, &err);
        size_t cap = envlen >= SH_SHRED_OVERHEAD ? envlen - SH_SHRED_OVERHEAD : 0;
        if (!rc && !(opened = malloc(cap ? cap : 1)))
            rc = sh_error_set(&err, SH_E_NOMEM, "opening the event");
        if (!rc) {
            rc = sh_shred_unseal(shred, id, 16, env, envlen, opened, cap, &envlen);
            if (rc == SH_E_NOT_FOUND)
                sh_error_set(&err, rc,
                             "the event was erased at the end of its retention: the key "
                             "of its day is forgotten, no copy of it can be opened");
            else if (rc)
                sh_error_set(&err, rc, "the event's sealed copy does not open");
        }
        sh_shred_destroy(&shred);
        env = opened;
    }
    if (!rc && !broker && !agent)
        rc = sh_error_set(&err, SH_E_STORE_CORRUPT, "%s: neither a broker's nor an agent's store",
                          dir);
    else if (!rc && (!env || sh_envelope_decode_minimised(env, envlen, &e, &err) != SH_OK))
        rc = sh_error_set(&err, SH_E_STORE_CORRUPT, "stored event cannot be decoded");
    if (!rc) {
        sh_audit_entry ae = {.action = SH_AUDIT_READ,
                             .event_id = id,
                             .actor_org = "auditor",
                             .actor_user = user,
                             .purpose = purpose,
                             .detail = "auditor read of a stored event (sharehub audit event)"};
        rc = sh_audit_append(l.audit, t, &ae, NULL, &err);
        /* signed over, so the read is not left in an unsigned tail anyone could cut */
        if (!rc) rc = sh_audit_checkpoint(l.audit, t, &err);
    }
    if (!rc) rc = sh_txn_commit(&t, &err);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    free(opened);
    int code = SH_EXIT_OK;
    if (rc) {
        code = cli_fail(&c, &err);
    } else {
        char *json = sh_json_from_message((const ProtobufCMessage *)e, 1);
        if (json) printf("%s\n", json);
        free(json);
        code = json ? SH_EXIT_OK : cli_error(&c, SH_EXIT_FAILED, SH_E_NOMEM, "out of memory");
    }
    sh_envelope_free(e);
    sh_alog_close(&l);
    return code;
}

int sh_audit_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {{"verify", s_verify},
                {"grant", s_grant},
                {"replay", s_replay_cmd},
                {"subject", sh_audit_subject_main},
                {"whatif", sh_audit_whatif_main},
                {"timestamp", sh_audit_timestamp_main},
                {"event", s_event}};
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
                      strcmp(argv[0], "help") == 0)) {
        fputs(s_usage, stdout);
        return SH_EXIT_OK;
    }
    for (size_t i = 0; argc >= 1 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[0], cmds[i].name) == 0) return cmds[i].run(argc - 1, argv + 1);
    if (argc >= 1)
        fprintf(stderr, "sharehub audit: unknown command '%.40s' (see 'sharehub audit --help')\n",
                argv[0]);
    else
        fputs(s_usage, stderr);
    return SH_EXIT_USAGE;
}
