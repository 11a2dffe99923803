/*
 * sharehub.c — the `sharehub` command: what people and scripts run.
 *
 * Owns: argument parsing, exit codes and human-readable output.
 * Never: prints an identifier or any other personal data, or keeps a key after it is done.
 *
 * Exit codes: 0 success / verified; 1 the thing checked is bad (invalid identifier, tampered
 * log); 2 usage error or something could not be read.
 */
#include <errno.h>
#include <json-c/json.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "auditor.h"
#include "client.h"
#include "clock.h"
#include "codec.h"
#include "crypto.h"
#include "decide.h"
#include "ident.h"
#include "lint.h"
#include "minimise.h"
#include "policy.h"
#include "registry.h"
#include "store.h"
#include "synth.h"

enum { EXIT_OK = SH_EXIT_OK, EXIT_BAD = SH_EXIT_BAD, EXIT_USAGE = SH_EXIT_USAGE };

int sh_audit_main(int argc, char **argv); /* audit_cli.c */

static void s_usage(FILE *f)
{
    fputs(
        "usage:\n"
        "  sharehub version\n"
        "  sharehub selfcheck [--keep]       self-check of codec, store and audit log\n"
        "  sharehub keygen master|sign|curve PATH  new key file, mode 0600, never overwritten\n"
        "  sharehub ident check nhs|upn|la|org VALUE\n"
        "  sharehub ident synthetic [SEED [LA]]      a synthetic child, as JSON\n"
        "  sharehub audit verify|grant|replay|subject|whatif|event ...   (sharehub audit --help)\n"
        "  sharehub status  [--json]                       the local agent's state\n"
        "  sharehub publish [FILE|-] --user U [--purpose P] [--json]\n"
        "  sharehub inbox   --user U --purpose P [--since N] [--follow] [--json]\n"
        "  sharehub show    EVENT-ID --user U --purpose P [--json]\n"
        "  sharehub child   ID --user U --purpose P [--json]   (NHS number, UPN or LA id)\n"
        "  sharehub triage  REFERRAL-ID --level 1-4 --outcome O --rationale TEXT --user U\n"
        "    agent commands reach the agent at --socket PATH or $SHAREHUB_SOCKET\n"
        "  sharehub enrol --registry FILE --code ORG --key PUBLIC-KEY [--revoke]\n"
        "  sharehub policy check POLICY-DIR [--registry FILE]\n"
        "  sharehub policy explain --policy DIR --registry FILE --from ORG\n"
        "                          (--event FILE | --type EVENT-TYPE) [--level N]\n"
        "                          [--consent "
        "given|refused|withdrawn|not_sought_risk_of_harm|not_required]\n"
        "                          [--referrer ORG] [--school ORG]\n",
        f);
}

static int s_fail(const sh_error *e, const char *what)
{
    char buf[320];
    fprintf(stderr, "sharehub: %s: %s\n", what, sh_error_format(e, buf, sizeof buf));
    return EXIT_USAGE;
}

/* ---- keygen / ident -------------------------------------------------------------------- */

static int s_keygen(int argc, char **argv)
{
    if (argc != 2) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    sh_error err = {0};
    sh_err rc;
    if (strcmp(argv[0], "curve") == 0) {
        /* the secret key goes to the file; the public key is printed, for the registry */
        char pub[SH_Z85_LEN + 1], sec[SH_Z85_LEN + 2];
        if (sh_curve_keypair(pub, sec)) {
            sh_error_set(&err, SH_E_CRYPTO, "CURVE key generation");
            return s_fail(&err, "keygen");
        }
        sec[SH_Z85_LEN] = '\n';
        rc = sh_secret_file_write(argv[1], sec, SH_Z85_LEN + 1, &err);
        sh_wipe(sec, sizeof sec);
        if (rc) return s_fail(&err, "keygen");
        printf("wrote curve key to %s (mode 0600); public key: %s\n", argv[1], pub);
        return EXIT_OK;
    }
    if (strcmp(argv[0], "master") == 0)
        rc = sh_key_generate_file(argv[1], &err);
    else if (strcmp(argv[0], "sign") == 0)
        rc = sh_signkey_generate_file(argv[1], &err);
    else {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    if (rc) return s_fail(&err, "keygen");
    printf("wrote %s key to %s (mode 0600)\n", argv[0], argv[1]);
    return EXIT_OK;
}

static int s_ident(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "synthetic") == 0) {
        /* a synthetic child as JSON, for scripts and demos: never a real person; each SEED
         * below SH_SYNTH_INDEXES is a different child */
        if (argc > 3) {
            fprintf(stderr, "sharehub ident synthetic: extra argument '%s'\n", argv[3]);
            return EXIT_USAGE;
        }
        uint64_t seed = (uint64_t)sh_clock_ms() % SH_SYNTH_INDEXES;
        const char *la = argc >= 3 ? argv[2] : "881";
        if (argc >= 2) {
            size_t n = strspn(argv[1], "0123456789");
            if (n == 0 || argv[1][n] || n > 7 || strtoull(argv[1], NULL, 10) >= SH_SYNTH_INDEXES) {
                fprintf(stderr,
                        "sharehub ident synthetic: SEED '%s': want a whole number from 0 to %u\n",
                        argv[1], SH_SYNTH_INDEXES - 1);
                return EXIT_USAGE;
            }
            seed = strtoull(argv[1], NULL, 10);
        }
        if (sh_la_code_check(la) != SH_OK) {
            fprintf(stderr,
                    "sharehub ident synthetic: LA '%s': not a DfE local authority code (3 digits, "
                    "201-938, such as 881 for Essex)\n",
                    la);
            return EXIT_USAGE;
        }
        sh_synth_child c;
        sh_synth_child_at(seed, la, &c);
        printf("{\"nhs_number\":\"%s\",\"upn\":\"%s\",\"la_child_id\":\"%s\","
               "\"given_name\":\"%s\",\"family_name\":\"%s\",\"date_of_birth\":\"%s\","
               "\"responsible_la\":\"%s\"}\n",
               c.nhs_number, c.upn, c.la_child_id, c.given_name, c.family_name, c.date_of_birth,
               c.responsible_la);
        return EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[0], "check") != 0) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    const char *kind = argv[1], *v = argv[2];
    sh_err rc;
    char nhs[SH_NHS_LEN + 1];
    if (strcmp(kind, "nhs") == 0)
        rc = sh_nhs_normalise(v, nhs);
    else if (strcmp(kind, "upn") == 0)
        rc = sh_upn_check(v);
    else if (strcmp(kind, "la") == 0)
        rc = sh_la_code_check(v);
    else if (strcmp(kind, "org") == 0)
        rc = sh_org_code_check(v);
    else {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    /* The value is not echoed: it may identify a child. */
    if (rc) {
        printf("invalid: E%03d %s: %s\n", (int)rc, sh_err_name(rc), sh_err_message(rc));
        return EXIT_BAD;
    }
    printf("valid %s\n", kind);
    return EXIT_OK;
}

typedef struct s_opened {
    sh_key *master, *audit_key;
    sh_signkey *sign;
    sh_store *store;
    sh_audit *audit;
} s_opened;

static void s_close(s_opened *o)
{
    sh_audit_destroy(&o->audit);
    sh_store_destroy(&o->store);
    sh_key_destroy(&o->audit_key);
    sh_key_destroy(&o->master);
    sh_signkey_destroy(&o->sign);
}

static sh_err s_open(const char *dir, const char *master, const char *sign, uint32_t every,
                     s_opened *o, sh_error *err)
{
    memset(o, 0, sizeof *o);
    sh_err rc = sh_key_load_file(master, &o->master, err);
    if (!rc && sign) rc = sh_signkey_load_file(sign, &o->sign, err);
    if (!rc) rc = sh_store_open(dir, o->master, NULL, &o->store, err);
    if (!rc && (rc = sh_store_derive_key(o->store, "audit mac", &o->audit_key)))
        sh_error_set(err, rc, "deriving the audit key");
    if (!rc) rc = sh_audit_open(o->store, o->audit_key, o->sign, every, &o->audit, err);
    if (rc) s_close(o);
    return rc;
}

/* ---- policy ---------------------------------------------------------------------------- */

typedef struct s_lint_out {
    int warnings;
} s_lint_out;

static void s_print_finding(void *ctx, sh_lint_level level, const sh_isp *isp, const char *msg)
{
    s_lint_out *o = ctx;
    o->warnings += level == SH_LINT_WARNING;
    printf("%s: %s: %s: %s\n", level == SH_LINT_ERROR ? "error" : "warning", sh_isp_file(isp),
           sh_isp_rule(isp), msg);
}

static int s_policy_check(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--registry") == 0 && i + 1 < argc)
            regpath = argv[++i];
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!dir) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    if (regpath && sh_registry_load(regpath, &reg, &err)) {
        char buf[320];
        printf("error: %s\n", sh_error_format(&err, buf, sizeof buf));
        return EXIT_BAD;
    }
    if (sh_policy_load(dir, &p, &err)) {
        char buf[320];
        printf("error: %s\n", sh_error_format(&err, buf, sizeof buf));
        sh_registry_destroy(&reg);
        return EXIT_BAD;
    }
    int64_t now = sh_clock_ms();
    s_lint_out o = {0};
    int errors = sh_policy_lint(p, reg, now, s_print_finding, &o);
    int active = 0;
    for (size_t i = 0; i < sh_policy_count(p); i++) {
        sh_isp_state st = sh_isp_state_at(sh_policy_at(p, i), now);
        active += st <= SH_ISP_OVERDUE;
    }
    printf("%zu protocols (%d in force), %d errors, %d warnings%s\n", sh_policy_count(p), active,
           errors, o.warnings,
           reg ? "" : " (no --registry: organisations and overlaps not checked)");
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return errors ? EXIT_BAD : EXIT_OK;
}

static int s_read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = SH_ENVELOPE_MAX + 1, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf) n = fread(buf, 1, cap, f);
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* One recipient's decision, as `policy explain` prints it. */
static int s_explain_one(void *ctx, const sh_org *to, const sh_decision *d)
{
    (void)ctx;
    if (d->permit) {
        printf("  PERMIT %-9s %s\n         %s\n         sees:", to->code, to->name, d->reason);
        for (size_t k = 0; k < d->n_items; k++)
            printf(" %s", d->items[k]);
        putchar('\n');
    } else {
        printf("  deny   %-9s %s\n         E%03d %s: %s\n", to->code, to->name, (int)d->code,
               sh_err_name(d->code), d->reason);
    }
    return 0;
}

static int s_policy_explain(int argc, char **argv)
{
    const char *dir = NULL, *regpath = NULL, *from = NULL, *file = NULL, *type = NULL;
    const char *consent = NULL, *referrer = NULL, *school = NULL;
    int level = -1;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--policy") == 0)
            dir = v;
        else if (strcmp(k, "--registry") == 0)
            regpath = v;
        else if (strcmp(k, "--from") == 0)
            from = v;
        else if (strcmp(k, "--event") == 0)
            file = v;
        else if (strcmp(k, "--type") == 0)
            type = v;
        else if (strcmp(k, "--level") == 0)
            level = atoi(v);
        else if (strcmp(k, "--consent") == 0)
            consent = v;
        else if (strcmp(k, "--referrer") == 0)
            referrer = v;
        else if (strcmp(k, "--school") == 0)
            school = v;
        else {
            fprintf(stderr, "sharehub policy explain: unknown option '%s'\n", k);
            return EXIT_USAGE;
        }
    }
    if (argc % 2 || !dir || !regpath || !from || (!file == !type)) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    sh_error err = {0};
    sh_policy *p = NULL;
    sh_registry *reg = NULL;
    sh_envelope *e = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = EXIT_USAGE;
    if (sh_registry_load(regpath, &reg, &err) || sh_policy_load(dir, &p, &err)) {
        s_fail(&err, "policy explain");
        goto out;
    }
    const sh_org *sender = sh_registry_by_code(reg, from);
    if (!sender) {
        fprintf(stderr, "sharehub: --from %s is not in the enrolment registry\n", from);
        goto out;
    }
    const char *named[2][2] = {{"--school", school}, {"--referrer", referrer}};
    for (int i = 0; i < 2; i++)
        if (named[i][1] && !sh_registry_by_code(reg, named[i][1])) {
            fprintf(stderr, "sharehub: %s %s is not in the enrolment registry\n", named[i][0],
                    named[i][1]);
            goto out;
        }
    if (file) {
        if (s_read_file(file, &buf, &len)) {
            fprintf(stderr, "sharehub: %s: %s\n", file, strerror(errno));
            goto out;
        }
    } else {
        int t = sh_event_type_from_name(type);
        if (!t) {
            fprintf(stderr, "sharehub: --type %s is not an event type (see docs/schema.md)\n",
                    type);
            goto out;
        }
        uint64_t rng = 1;
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        if (sh_synth_event(&rng, t, &c, from, NULL, NULL, 0, &buf, &len, &err)) {
            s_fail(&err, "policy explain");
            goto out;
        }
    }
    if (sh_envelope_decode(buf, len, &e, &err)) {
        s_fail(&err, file ? file : "synthetic event");
        goto out;
    }
    if (level >= 0) e->level_of_need = (uint32_t)level;
    int cv = 0;
    if (consent && (sh_enum_value(&sharehub__v1__consent_state__descriptor, consent, &cv) || !cv)) {
        char names[200];
        sh_enum_names(&sharehub__v1__consent_state__descriptor, names, sizeof names);
        fprintf(stderr, "sharehub: --consent '%s' is not a consent state: want one of %s\n",
                consent, names);
        goto out;
    }
    if (consent) e->consent = cv;
    /* the explained event must still be valid after the overrides */
    if (sh_envelope_validate(e, &err)) {
        s_fail(&err, "policy explain");
        goto out;
    }
    printf("%s from %s (purpose %d, level of need %u, consent %d):\n",
           sh_event_type_name(e->event_type), from, e->purpose, e->level_of_need, e->consent);
    sh_decide_all(p, reg, e, sender, referrer, school, sh_clock_ms(), s_explain_one, NULL);
    rc = EXIT_OK;
out:
    free(buf);
    sh_envelope_free(e);
    sh_policy_destroy(&p);
    sh_registry_destroy(&reg);
    return rc;
}

static int s_policy(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "check") == 0) return s_policy_check(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "explain") == 0) return s_policy_explain(argc - 1, argv + 1);
    s_usage(stderr);
    return EXIT_USAGE;
}

/* ---- commands that talk to the local agent ------------------------------------------- */

typedef struct s_opts {
    const char *socket, *user, *purpose, *pos, *outcome, *rationale;
    long since, level;
    int json, follow, help;
} s_opts;

/* Parses the options every agent command shares; returns -1 on an unknown option. */
static int s_parse_opts(int argc, char **argv, s_opts *o)
{
    memset(o, 0, sizeof *o);
    o->socket = getenv("SHAREHUB_SOCKET");
    o->level = -1;
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--json") == 0)
            o->json = 1;
        else if (strcmp(k, "--follow") == 0 || strcmp(k, "-f") == 0)
            o->follow = 1;
        else if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0)
            o->help = 1;
        else if (strcmp(k, "--socket") == 0 && v)
            o->socket = argv[++i];
        else if (strcmp(k, "--user") == 0 && v)
            o->user = argv[++i];
        else if (strcmp(k, "--purpose") == 0 && v)
            o->purpose = argv[++i];
        else if (strcmp(k, "--since") == 0 && v)
            o->since = atol(argv[++i]);
        else if (strcmp(k, "--level") == 0 && v)
            o->level = atol(argv[++i]);
        else if (strcmp(k, "--outcome") == 0 && v)
            o->outcome = argv[++i];
        else if (strcmp(k, "--rationale") == 0 && v)
            o->rationale = argv[++i];
        else if ((k[0] != '-' || strcmp(k, "-") == 0) && !o->pos)
            o->pos = k;
        else
            return -1;
    }
    return 0;
}

/* Sends one JSON request to the agent; the reply, or NULL (with a message on stderr). */
static json_object *s_agent_call(const char *socket, json_object *req)
{
    if (!socket) {
        fputs("sharehub: no agent socket: give --socket PATH or set SHAREHUB_SOCKET\n", stderr);
        return NULL;
    }
    char ep[600];
    snprintf(ep, sizeof ep, "ipc://%s", socket);
    struct stat st;
    if (stat(socket, &st) != 0) {
        fprintf(stderr, "sharehub: cannot reach the agent at %s: %s\n", socket, strerror(errno));
        return NULL;
    }
    void *ctx = zmq_ctx_new(), *s = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int linger = 0, tmo = 10000;
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
    if (!out) fprintf(stderr, "sharehub: the agent at %s did not answer\n", socket);
    if (s) zmq_close(s);
    if (ctx) zmq_ctx_term(ctx);
    return out;
}

/* Prints an agent error on stderr; returns the exit code for the reply. */
static int s_reply_status(json_object *r)
{
    json_object *v;
    if (json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v)) return EXIT_OK;
    fprintf(stderr, "sharehub: E%03d %s: %s: %s\n",
            json_object_get_int(json_object_object_get(r, "code")),
            json_object_get_string(json_object_object_get(r, "error")),
            json_object_get_string(json_object_object_get(r, "message")),
            json_object_get_string(json_object_object_get(r, "detail")));
    return EXIT_BAD;
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
    printf("%s  %-5s %-8s %-28s %s  %s%s%s%s%s\n", when, sent ? "sent" : "from",
           sent || !peer ? "" : peer, s_jstr_or(it, "type"), s_jstr_or(it, "event_id"),
           given ? given : "", family ? " " : "", family ? family : "",
           nhs   ? " NHS "
           : upn ? " UPN "
                 : "",
           nhs   ? nhs
           : upn ? upn
                 : "");
}

static int s_help(const char *cmd)
{
    static const struct {
        const char *cmd, *text;
    } helps[] = {
        {"status", "sharehub status [--json]\n  The agent's organisation, role, broker link, "
                   "outbox and inbox counts.\n"},
        {"publish", "sharehub publish [FILE|-] --user U [--purpose P] [--json]\n  Publishes one "
                    "event written as JSON (docs/agent.md). The agent fills event_id, "
                    "schema_version,\n  source_org and the times when they are absent. Prints "
                    "the event id; exit 1 if refused.\n"},
        {"inbox", "sharehub inbox --user U --purpose P [--since N] [--follow] [--json]\n  What "
                  "this agency received, oldest first. Every event shown is audited as a read\n"
                  "  by U for P. --follow keeps printing new arrivals (like tail -f).\n"},
        {"show", "sharehub show EVENT-ID --user U --purpose P [--json]\n  One event in full, "
                 "with the broker's answer for events sent. Audited as a read.\n"},
        {"child", "sharehub child ID --user U --purpose P [--json]\n  Everything this agency "
                  "holds about a child (NHS number, UPN or LA child id):\n  current CP-IS flag, "
                  "the last 25 unscheduled-care attendances, every event. Audited.\n"},
        {"triage", "sharehub triage REFERRAL-ID --level 1-4 --outcome O --rationale TEXT --user U\n"
                   "  The hub's decision on a referral, shared back to the referrer under its "
                   "ISP.\n  Outcomes: no_further_action, universal_services, early_help, "
                   "family_solutions,\n  section_17_assessment, section_47_strategy, "
                   "immediate_protection.\n"},
    };
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(helps[i].cmd, cmd) == 0) {
            fputs(helps[i].text, stdout);
            return EXIT_OK;
        }
    return EXIT_USAGE;
}

static int s_agent_cmd(const char *cmd, int argc, char **argv)
{
    s_opts o;
    if (s_parse_opts(argc, argv, &o)) {
        fprintf(stderr, "sharehub %s: unknown option (see sharehub %s --help)\n", cmd, cmd);
        return EXIT_USAGE;
    }
    if (o.help) return s_help(cmd);
    json_object *req = json_object_new_object(), *r = NULL;
    int rc = EXIT_USAGE;
    json_object_object_add(req, "op", json_object_new_string(cmd));
    if (o.user) json_object_object_add(req, "user", json_object_new_string(o.user));
    if (o.purpose) json_object_object_add(req, "purpose", json_object_new_string(o.purpose));
    if (strcmp(cmd, "publish") == 0) {
        FILE *f = !o.pos || strcmp(o.pos, "-") == 0 ? stdin : fopen(o.pos, "r");
        if (!f) {
            fprintf(stderr, "sharehub publish: %s: %s\n", o.pos, strerror(errno));
            goto out;
        }
        char *buf = malloc(1 << 20);
        size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
        if (f != stdin) fclose(f);
        if (!buf) goto out;
        buf[n] = '\0';
        enum json_tokener_error jerr;
        json_object *ev = json_tokener_parse_verbose(buf, &jerr);
        free(buf);
        if (!ev) {
            fprintf(stderr, "sharehub publish: E201 not JSON: %s\n", json_tokener_error_desc(jerr));
            rc = EXIT_BAD;
            goto out;
        }
        json_object_object_add(req, "event", ev);
    } else if (strcmp(cmd, "show") == 0 || strcmp(cmd, "child") == 0) {
        if (!o.pos) {
            s_help(cmd);
            goto out;
        }
        json_object_object_add(req, strcmp(cmd, "show") == 0 ? "event_id" : "id",
                               json_object_new_string(o.pos));
    } else if (strcmp(cmd, "triage") == 0) {
        if (!o.pos || o.level < 1 || !o.outcome || !o.rationale) {
            s_help(cmd);
            goto out;
        }
        json_object_object_add(req, "referral_event_id", json_object_new_string(o.pos));
        json_object_object_add(req, "level", json_object_new_int((int)o.level));
        json_object_object_add(req, "outcome", json_object_new_string(o.outcome));
        json_object_object_add(req, "rationale", json_object_new_string(o.rationale));
    }
    long since = o.since;
    for (;;) {
        if (strcmp(cmd, "inbox") == 0)
            json_object_object_add(req, "since", json_object_new_int64(since));
        r = s_agent_call(o.socket, req);
        if (!r) {
            rc = EXIT_USAGE;
            goto out;
        }
        rc = s_reply_status(r);
        if (rc != EXIT_OK) goto out;
        if (o.json) {
            puts(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
        } else if (strcmp(cmd, "inbox") == 0) {
            json_object *items = json_object_object_get(r, "items");
            for (size_t i = 0; i < json_object_array_length(items); i++)
                s_print_item(json_object_array_get_idx(items, i));
        } else if (strcmp(cmd, "child") == 0) {
            printf("CP-IS flag: %s%s%s\n", s_jstr(r, "flag"),
                   s_jstr(r, "responsible_la") ? "   responsible LA " : "",
                   s_jstr(r, "responsible_la") ? s_jstr(r, "responsible_la") : "");
            json_object *att = json_object_object_get(r, "attendances");
            printf("unscheduled-care attendances (last 25): %zu\n", json_object_array_length(att));
            json_object *ev = json_object_object_get(r, "events");
            printf("events held: %zu\n", json_object_array_length(ev));
            for (size_t i = 0; i < json_object_array_length(ev); i++)
                s_print_item(json_object_array_get_idx(ev, i));
        } else if (strcmp(cmd, "show") == 0) {
            puts(json_object_to_json_string_ext(json_object_object_get(r, "item"),
                                                JSON_C_TO_STRING_PRETTY |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        } else if (strcmp(cmd, "status") == 0) {
            printf("%s (%s): broker %s, outbox %s, received %s\n", s_jstr(r, "org"),
                   s_jstr(r, "role"),
                   json_object_get_boolean(json_object_object_get(r, "connected")) ? "connected"
                                                                                   : "unreachable",
                   s_jstr(r, "outbox"), s_jstr(r, "received"));
        } else {
            printf("%s %s%s%s\n", s_jstr(r, "status"), s_jstr(r, "event_id"),
                   s_jstr(r, "access_notification") ? "; access notification " : "",
                   s_jstr(r, "access_notification") ? s_jstr(r, "access_notification") : "");
        }
        if (!(o.follow && strcmp(cmd, "inbox") == 0)) break;
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

/* ---- enrol ----------------------------------------------------------------------------- */

static int s_enrol(int argc, char **argv)
{
    const char *reg = NULL, *code = NULL, *key = NULL;
    int revoke = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--revoke") == 0)
            revoke = 1;
        else if (strcmp(argv[i], "--registry") == 0 && i + 1 < argc)
            reg = argv[++i];
        else if (strcmp(argv[i], "--code") == 0 && i + 1 < argc)
            code = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!reg || !code || !key) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    sh_error err = {0};
    if (sh_registry_enrol(reg, code, key, revoke, &err)) {
        char buf[320];
        fprintf(stderr, "sharehub enrol: %s\n", sh_error_format(&err, buf, sizeof buf));
        return EXIT_BAD;
    }
    printf("%s key for %s in %s; reload the broker (SIGHUP) to apply it\n",
           revoke ? "revoked" : "enrolled", code, reg);
    return EXIT_OK;
}

/* ---- demo ------------------------------------------------------------------------------ */

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

#define DEMO_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "demo: FAILED: " __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                                   \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Overwrites one byte of the audit entry `seq` directly in LMDB, as an intruder with write
 * access to the disk could. */
static int s_tamper(const char *dir, uint64_t seq)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t key[8], copy[2048];
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
    k.mv_size = 8;
    k.mv_data = key;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_maxdbs(env, SH_STORE_MAX_DBS);
    if (!rc) rc = mdb_env_open(env, dir, 0, 0600);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "sh_audit", 0, &dbi);
    if (!rc) rc = mdb_get(txn, dbi, &k, &v);
    if (!rc && v.mv_size <= sizeof copy) {
        memcpy(copy, v.mv_data, v.mv_size);
        copy[30] ^= 0x01; /* inside the actor / detail fields */
        v.mv_data = copy;
        rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (!rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    return rc;
}

static int s_demo(int argc, char **argv)
{
    int keep = argc > 0 && strcmp(argv[0], "--keep") == 0;
    int result = EXIT_USAGE;
    const char *tmp = getenv("TMPDIR");
    char root[512], dir[600], master[600], other[600], sign[600];
    snprintf(root, sizeof root, "%s/sharehub-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        fprintf(stderr, "demo: mkdtemp: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    snprintf(dir, sizeof dir, "%s/store", root);
    snprintf(master, sizeof master, "%s/master.key", root);
    snprintf(other, sizeof other, "%s/other.key", root);
    snprintf(sign, sizeof sign, "%s/audit-sign.pem", root);

    sh_error err = {0};
    s_opened o = {0};
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_envelope *env = NULL;
    uint8_t *enc = NULL;
    uint8_t ids[13][16];
    struct timespec t0, t1;
    enum { N_CHILDREN = 3 };

    printf("sharehub %s — foundation self-check\n", SHAREHUB_VERSION);
    printf("working in %s (keys generated for this run only)\n\n", root);
    DEMO_CHECK(!sh_key_generate_file(master, &err) && !sh_key_generate_file(other, &err) &&
                   !sh_signkey_generate_file(sign, &err),
               "keygen: %s", err.detail);
    DEMO_CHECK(!chmod(master, 0644), "chmod");
    sh_key *k = NULL;
    sh_err rc = sh_key_load_file(master, &k, &err);
    sh_key_destroy(&k);
    DEMO_CHECK(rc == SH_E_KEY_PERMISSIONS, "a 0644 key file was not refused");
    printf("[keys]   a key file readable by others is refused: E%03d %s\n", (int)rc,
           sh_err_name(rc));
    DEMO_CHECK(!chmod(master, 0600), "chmod");

    DEMO_CHECK(!s_open(dir, master, sign, 10, &o, &err), "open: %s", err.detail);
    sh_db events;
    DEMO_CHECK(!sh_store_db(o.store, "events", SH_DB_SEALED, &events, &err), "db: %s", err.detail);

    /* One batch: every event of every type for three synthetic children, and an audit
     * entry for each write, made durable by a single commit (one fsync). */
    uint64_t rng = (uint64_t)time(NULL);
    sh_synth_child kids[N_CHILDREN];
    int written = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    DEMO_CHECK(!sh_txn_begin(o.store, 1, &t, &err), "begin: %s", err.detail);
    for (int c = 0; c < N_CHILDREN; c++) {
        sh_synth_child_make(&rng, c == 2 ? "882" : "881", &kids[c]);
        for (int type = 1; type <= 13; type++) {
            size_t len = 0;
            DEMO_CHECK(
                !sh_synth_event(&rng, type, &kids[c], "RH8", NULL, NULL, 600, &enc, &len, &err),
                "synth: %s", err.detail);
            DEMO_CHECK(!sh_envelope_decode(enc, len, &env, &err), "decode: %s", err.detail);
            memcpy(ids[type - 1], env->event_id.data, 16);
            uint8_t ref[SH_BLIND_BYTES];
            DEMO_CHECK(!sh_store_blind(o.store, "nhs", kids[c].nhs_number, ref), "blind");
            sh_audit_entry ae = {.action = SH_AUDIT_WRITE,
                                 .event_id = env->event_id.data,
                                 .child_ref = type == 13 ? NULL : ref,
                                 .actor_org = "RH8",
                                 .actor_user = "demo",
                                 .purpose = "safeguarding",
                                 .detail = sh_event_type_name(env->event_type)};
            DEMO_CHECK(!sh_txn_put(t, events, env->event_id.data, 16, enc, len, SH_PUT_NEW, &err) &&
                           !sh_audit_append(o.audit, t, &ae, NULL, &err),
                       "write: %s", err.detail);
            sh_envelope_free(env);
            env = NULL;
            free(enc);
            enc = NULL;
            written++;
        }
    }
    DEMO_CHECK(!sh_audit_checkpoint(o.audit, t, &err), "checkpoint: %s", err.detail);
    DEMO_CHECK(!sh_txn_commit(&t, &err), "commit: %s", err.detail);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("[store]  %d events of all 13 types for %d synthetic children sealed with "
           "AES-256-GCM,\n         audited and committed in one transaction (one fsync): "
           "%.1f ms\n",
           written, N_CHILDREN,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

    /* Read back the last child's events after closing and reopening the store. */
    s_close(&o);
    DEMO_CHECK(!s_open(dir, master, sign, 10, &o, &err), "reopen: %s", err.detail);
    DEMO_CHECK(!sh_store_db(o.store, "events", SH_DB_SEALED, &events, &err), "db");
    DEMO_CHECK(!sh_txn_begin(o.store, 1, &t, &err), "begin: %s", err.detail);
    for (int type = 1; type <= 13; type++) {
        DEMO_CHECK(!sh_txn_get(t, events, ids[type - 1], 16, &b, &err), "get: %s", err.detail);
        DEMO_CHECK(!sh_envelope_decode(b.data, b.len, &env, &err), "decode: %s", err.detail);
        DEMO_CHECK((int)env->event_type == type, "wrong event read back");
        sh_audit_entry ae = {.action = SH_AUDIT_READ,
                             .event_id = ids[type - 1],
                             .actor_org = "RH8",
                             .actor_user = "demo",
                             .purpose = "self-check"};
        DEMO_CHECK(!sh_audit_append(o.audit, t, &ae, NULL, &err), "audit: %s", err.detail);
        sh_envelope_free(env);
        env = NULL;
    }
    DEMO_CHECK(!sh_audit_checkpoint(o.audit, t, &err) && !sh_txn_commit(&t, &err), "commit");
    printf("[store]  reopened; 13 events read back, opened, decoded and validated; each read "
           "audited\n");

    uint8_t pub[SH_SIGN_PUB_BYTES];
    sh_signkey_public(o.sign, pub);
    sh_audit_report r;
    sh_audit_verify(o.audit, &pub, 1, &r);
    DEMO_CHECK(r.result == SH_OK, "audit chain did not verify: %s", r.detail);
    printf("[audit]  chain verified: %llu entries, %llu signed checkpoints\n",
           (unsigned long long)r.entries, (unsigned long long)r.checkpoints);
    s_close(&o);

    sh_key *wrong = NULL;
    DEMO_CHECK(!sh_key_load_file(other, &wrong, &err), "load other key");
    sh_store *st = NULL;
    rc = sh_store_open(dir, wrong, NULL, &st, &err);
    sh_key_destroy(&wrong);
    sh_store_destroy(&st);
    DEMO_CHECK(rc == SH_E_WRONG_KEY, "the store opened under the wrong key");
    printf("[store]  opening with another master key is refused: E%03d %s\n", (int)rc,
           sh_err_name(rc));

    DEMO_CHECK(s_tamper(dir, 20) == 0, "could not edit the store for the tamper check");
    DEMO_CHECK(!s_open(dir, master, sign, 10, &o, &err), "reopen: %s", err.detail);
    sh_audit_verify(o.audit, &pub, 1, &r);
    DEMO_CHECK(r.result == SH_E_AUDIT_ALTERED && r.bad_seq == 20,
               "a flipped byte in entry 20 was not found (got %s at %llu)", sh_err_name(r.result),
               (unsigned long long)r.bad_seq);
    printf("[audit]  one byte of entry 20 flipped on disk: E%03d %s at entry %llu\n", (int)r.result,
           sh_err_name(r.result), (unsigned long long)r.bad_seq);
    printf("\nself-check passed\n");
    result = EXIT_OK;
out:
    sh_txn_abort(&t);
    s_close(&o);
    sh_buf_free(&b);
    sh_envelope_free(env);
    free(enc);
    if (keep)
        printf("kept %s\n", root);
    else
        nftw(root, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    return result;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    /* --help on every subcommand: the agent commands have their own, the rest the usage */
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            if (s_help(cmd) != EXIT_OK) s_usage(stdout);
            return EXIT_OK;
        }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sharehub %s (schema v%d, store format %d, audit format %d)\n", SHAREHUB_VERSION,
               SH_SCHEMA_VERSION, SH_STORE_FORMAT, SH_AUDIT_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "selfcheck") == 0) return s_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "keygen") == 0) return s_keygen(argc - 2, argv + 2);
    if (strcmp(cmd, "ident") == 0) return s_ident(argc - 2, argv + 2);
    if (strcmp(cmd, "audit") == 0) return sh_audit_main(argc - 2, argv + 2);
    if (strcmp(cmd, "policy") == 0) return s_policy(argc - 2, argv + 2);
    if (strcmp(cmd, "enrol") == 0) return s_enrol(argc - 2, argv + 2);
    static const char *const agent_cmds[] = {"status", "publish", "inbox",
                                             "show",   "child",   "triage"};
    for (size_t i = 0; i < sizeof agent_cmds / sizeof agent_cmds[0]; i++)
        if (strcmp(cmd, agent_cmds[i]) == 0) return s_agent_cmd(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        s_usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "sharehub: unknown command '%s'\n", cmd);
    s_usage(stderr);
    return EXIT_USAGE;
}
