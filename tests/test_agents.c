/* test_agents.c — the real broker and three real agent processes (education, health, the
 * Children and Families Hub), driven through the agents' local sockets as a host system
 * would: a concern reaches the hub, the hub's decision reaches the referrer only (minimised),
 * a child-protection flag reaches health, an attendance of the flagged child notifies the
 * child's LA, health never holds the narrative, the outbox survives a broker outage, and
 * every local read is in the audit log with who and why. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "agent.h"
#include "audit.h"
#include "broker.h"
#include "client.h"
#include "synth.h"
#include "testutil.h"

enum { HUB, SCHOOL, HEALTH, NAGENT };
static const char *org[NAGENT] = {"881", "8819990", "RAJ"};
static const char *role[NAGENT] = {"social_care", "education", "health"};
static char pub[NAGENT][41], sec[NAGENT][41], bpub[41];
static char *dir, ep[64];
static pid_t broker_pid, agent_pid[NAGENT];
static sh_broker_config bcfg;
static volatile sig_atomic_t stop_flag, reload_flag;
static void *zctx;

static char *s_path(const char *name)
{
    return tu_path(dir, name);
}

static void s_write(const char *name, const char *text, mode_t mode)
{
    char *p = s_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
    free(p);
}

static void s_on_term(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void s_start_broker(void)
{
    broker_pid = fork();
    cr_assert_neq(broker_pid, -1);
    if (broker_pid == 0) {
        signal(SIGTERM, s_on_term);
        sh_broker *b = NULL;
        sh_error err;
        if (sh_broker_new(&bcfg, &b, &err)) {
            fprintf(stderr, "broker: %s\n", err.detail);
            _exit(3);
        }
        sh_broker_run(b, &stop_flag, &reload_flag);
        sh_broker_destroy(&b);
        _exit(0);
    }
}

static void s_start_agent(int i)
{
    char name[32];
    snprintf(name, sizeof name, "%s.yaml", org[i]);
    char *cfg = s_path(name);
    agent_pid[i] = fork();
    cr_assert_neq(agent_pid[i], -1);
    if (agent_pid[i] == 0) {
        signal(SIGTERM, s_on_term);
        sh_agent *a = NULL;
        sh_error err;
        if (sh_agent_new(cfg, &a, &err)) {
            fprintf(stderr, "agent %s: %s\n", org[i], err.detail);
            _exit(3);
        }
        sh_agent_run(a, &stop_flag);
        sh_agent_destroy(&a);
        _exit(0);
    }
    free(cfg);
    /* serving once its socket exists: its signal handler is installed by then */
    char sock[600];
    snprintf(sock, sizeof sock, "%s/%s.sock", dir, org[i]);
    struct stat st;
    for (int tries = 0; tries < 200 && stat(sock, &st) != 0; tries++)
        usleep(20 * 1000);
}

/* Stops a process; returns 0 for a clean exit, else its wait status. */
static int s_halt(pid_t *pid)
{
    if (*pid <= 0) return 0;
    kill(*pid, SIGTERM);
    int status = 0;
    waitpid(*pid, &status, 0);
    *pid = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : (status ? status : -1);
}

static void s_stop(pid_t *pid)
{
    int status = s_halt(pid);
    cr_assert_eq(status, 0, "exit status %d", status);
}

/* One request to an agent's local socket; returns the parsed reply (json_object_put it). */
static json_object *s_call(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_object *s_call(int i, const char *fmt, ...)
{
    char req[8192], sock[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    snprintf(sock, sizeof sock, "ipc://%s/%s.sock", dir, org[i]);
    void *s = zmq_socket(zctx, ZMQ_REQ);
    int linger = 0, tmo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    cr_assert_eq(zmq_connect(s, sock), 0);
    cr_assert_geq(zmq_send(s, req, strlen(req), 0), 0);
    char *buf = malloc(1 << 20);
    int n = zmq_recv(s, buf, (1 << 20) - 1, 0);
    zmq_close(s);
    cr_assert_gt(n, 0, "no answer from %s to %s", org[i], req);
    buf[n] = '\0';
    json_object *o = json_tokener_parse(buf);
    cr_assert_not_null(o, "%s", buf);
    free(buf);
    return o;
}

static int s_ok(json_object *o)
{
    json_object *v;
    return json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

static const char *s_get(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* Polls an agent's inbox until an item of `type` arrives; returns that item (caller puts). */
static json_object *s_wait_for(int i, const char *type)
{
    for (int tries = 0; tries < 100; tries++) {
        json_object *r = s_call(i, "{\"op\":\"inbox\",\"user\":\"tester\",\"purpose\":\"test\"}");
        cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
        json_object *items = json_object_object_get(r, "items");
        for (size_t k = 0; k < json_object_array_length(items); k++) {
            json_object *it = json_object_array_get_idx(items, k);
            if (strcmp(s_get(it, "type"), type) == 0) {
                json_object *keep = json_object_get(it);
                json_object_put(r);
                return keep;
            }
        }
        json_object_put(r);
        usleep(100 * 1000);
    }
    cr_assert_fail("%s never received a %s", org[i], type);
    return NULL;
}

static void s_wait_ready(void)
{
    for (int i = 0; i < NAGENT; i++) {
        int up = 0;
        for (int tries = 0; tries < 100 && !up; tries++) {
            char sock[600];
            snprintf(sock, sizeof sock, "%s/%s.sock", dir, org[i]);
            struct stat st;
            if (stat(sock, &st) == 0) {
                json_object *r = s_call(i, "{\"op\":\"status\"}");
                up = s_ok(r) && json_object_get_boolean(json_object_object_get(r, "connected"));
                json_object_put(r);
            }
            if (!up) usleep(100 * 1000);
        }
        cr_assert(up, "agent %s never connected", org[i]);
    }
}

static void setup(void)
{
    dir = tu_tmpdir();
    zctx = zmq_ctx_new();
    char bsec[42], text[4096], date[11];
    cr_assert_eq(sh_curve_keypair(bpub, bsec), SH_OK);
    strcat(bsec, "\n");
    s_write("broker.curve", bsec, 0600);
    sh_error err;
    char *p;
    const char *keyfiles[] = {"broker.master", "broker.sign"};
    (void)keyfiles;
    cr_assert_eq(sh_key_generate_file((p = s_path("broker.master")), &err), SH_OK);
    free(p);
    cr_assert_eq(sh_signkey_generate_file((p = s_path("broker.sign")), &err), SH_OK);
    free(p);
    for (int i = 0; i < NAGENT; i++) {
        char name[64], sk[42];
        cr_assert_eq(sh_curve_keypair(pub[i], sk), SH_OK);
        memcpy(sec[i], sk, 41);
        strcat(sk, "\n");
        snprintf(name, sizeof name, "%s.curve", org[i]);
        s_write(name, sk, 0600);
        snprintf(name, sizeof name, "%s/%s.master", dir, org[i]);
        cr_assert_eq(sh_key_generate_file(name, &err), SH_OK);
        snprintf(name, sizeof name, "%s/%s.sign", dir, org[i]);
        cr_assert_eq(sh_signkey_generate_file(name, &err), SH_OK);
    }
    snprintf(text, sizeof text,
             "organisations:\n"
             "  - {code: '881', name: Hub, sector: social_care, locality: essex, la_code: '881', "
             "keys: ['%s']}\n"
             "  - {code: '8819990', name: School, sector: education, locality: essex, keys: "
             "['%s']}\n"
             "  - {code: RAJ, name: Acute trust, sector: health, locality: essex, keys: ['%s']}\n",
             pub[HUB], pub[SCHOOL], pub[HEALTH]);
    s_write("registry.yaml", text, 0600);
    p = s_path("policy");
    mkdir(p, 0700);
    free(p);
    time_t t = time(NULL) + 365 * 24 * 3600;
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    const char *head = "version: 1\ntitle: t\nstatus: active\nlead: '881'\n"
                       "approvers: [{role: DCS, organisation: '881'}]\n";
    const char *sg = "lawful_basis: {article6: public_task, article9: "
                     "substantial_public_interest, dpa_schedule1_paragraph: 18}\n";
    snprintf(
        text, sizeof text,
        "id: isp-sgc\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
        "event_types: [safeguarding_concern]\nsenders: [{sector: education}, {sector: health}]\n"
        "recipients: [{organisation: '881', data_items: [child, safeguarding_concern]}]\n"
        "%sconsent: not_required\n",
        head, date, sg);
    s_write("policy/isp-sgc.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-feedback\n%sreview_date: '%s'\npurposes: [safeguarding, early_help]\n"
             "event_types: [hub_decision]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{relationship: referrer, data_items: [child.upn, child.given_name, "
             "level_of_need, hub_decision.outcome, hub_decision.level_of_need]}]\n"
             "%sconsent: not_required\n",
             head, date, sg);
    s_write("policy/isp-feedback.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-cpis\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [cp_plan_status]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{sector: health, data_items: [child.nhs_number, child.date_of_birth, "
             "cp_plan_status.status, cp_plan_status.start_date, cp_plan_status.responsible_la]}]\n"
             "%sconsent: not_required\n",
             head, date, sg);
    s_write("policy/isp-cpis.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-cp-school\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [cp_plan_status]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{relationship: child_school, data_items: [child.given_name, "
             "cp_plan_status.status, cp_plan_status.start_date]}]\n%sconsent: not_required\n",
             head, date, sg);
    s_write("policy/isp-cp-school.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-access\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [access_notification]\nsenders: [{sector: health}]\n"
             "recipients: [{relationship: responsible_la, data_items: [child.nhs_number, "
             "access_notification]}]\nlawful_basis: {article6: public_task, article9: "
             "health_social_care, dpa_schedule1_paragraph: 2}\nconsent: not_required\n",
             head, date);
    s_write("policy/isp-access.yaml", text, 0600);
    /* below the ephemeral range (32768+), apart from test_broker.c's ports */
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 21000 + getpid() % 10000);
    for (int i = 0; i < NAGENT; i++) {
        char name[32];
        snprintf(text, sizeof text,
                 "org: '%s'\nrole: %s\nbroker: {endpoint: '%s', public_key: '%s'}\n"
                 "curve_key: %s/%s.curve\nstore: %s/%s.store\nmaster_key: %s/%s.master\n"
                 "sign_key: %s/%s.sign\nsocket: %s/%s.sock\nheartbeat_ms: 500\nwitness_ms: 300\n"
                 "log_level: warning\n",
                 org[i], role[i], ep, bpub, dir, org[i], dir, org[i], dir, org[i], dir, org[i], dir,
                 org[i]);
        snprintf(name, sizeof name, "%s.yaml", org[i]);
        s_write(name, text, 0600);
    }
    memset(&bcfg, 0, sizeof bcfg);
    bcfg.endpoints[0] = ep;
    bcfg.store_dir = s_path("broker.store");
    bcfg.master_key = s_path("broker.master");
    bcfg.sign_key = s_path("broker.sign");
    bcfg.curve_key = s_path("broker.curve");
    bcfg.registry = s_path("registry.yaml");
    bcfg.policy_dir = s_path("policy");
    bcfg.heartbeat_ms = 2000;
    bcfg.redeliver_ms = 1000;
    bcfg.log_level = 1;
    s_start_broker();
    for (int i = 0; i < NAGENT; i++)
        s_start_agent(i);
    s_wait_ready();
}

static void teardown(void)
{
    /* stop everything first, so a failure cannot leave a process behind, then judge */
    int status[NAGENT + 1];
    for (int i = 0; i < NAGENT; i++)
        status[i] = s_halt(&agent_pid[i]);
    status[NAGENT] = s_halt(&broker_pid);
    zmq_ctx_term(zctx);
    tu_rmrf(dir);
    for (int i = 0; i <= NAGENT; i++)
        cr_assert_eq(status[i], 0, "process %d exit status", i);
}

TestSuite(agents, .init = setup, .fini = teardown, .timeout = 90);

#define CONCERN_JSON                                                                               \
    "{\"op\":\"publish\",\"user\":\"dsl-1\",\"purpose\":\"safeguarding\",\"event\":{"              \
    "\"event_type\":\"safeguarding_concern\",\"purpose\":\"safeguarding\",\"consent\":"            \
    "\"not_sought_risk_of_harm\",\"level_of_need\":4,\"lawful_basis\":{\"article6\":"              \
    "\"e_public_task\",\"article9\":\"2g_substantial_public_interest\","                           \
    "\"dpa_schedule1_paragraph\":18},\"child\":{\"nhs_number\":\"%s\",\"upn\":\"%s\","             \
    "\"given_name\":\"Child001\",\"family_name\":\"ZZTEST-0001\",\"date_of_birth\":\"2015-03-"     \
    "01\","                                                                                        \
    "\"responsible_la\":\"881\"},\"safeguarding_concern\":{\"category\":\"neglect\","              \
    "\"narrative\":\"SYNTHETIC-NARRATIVE-MARKER: no food at home for days\",\"reported_by\":{"     \
    "\"org_code\":\"8819990\",\"role\":\"Designated Safeguarding Lead\"}}}}"

/* The scripted case: a concern, the hub's decision, a child-protection plan, an attendance at
 * the emergency department and the clinician's view, each checked as it happens. */
static void s_play_case(const sh_synth_child *cp_child)
{
    const sh_synth_child c = *cp_child;

    /* the school's DSL raises a concern */
    json_object *r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
    char concern[40];
    snprintf(concern, sizeof concern, "%s", s_get(r, "event_id"));
    json_object_put(r);

    /* it reaches the hub whole */
    json_object *it = s_wait_for(HUB, "safeguarding_concern");
    cr_assert_str_eq(s_get(it, "event_id"), concern);
    cr_assert_str_eq(s_get(it, "peer"), "8819990");
    cr_assert_str_eq(s_get(it, "rule"), "isp-sgc@1");
    json_object_put(it);
    r = s_call(HUB,
               "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw-7\",\"purpose\":\"triage\"}",
               concern);
    cr_assert(s_ok(r));
    cr_assert_not_null(strstr(json_object_to_json_string(r), "SYNTHETIC-NARRATIVE-MARKER"));
    json_object_put(r);

    /* the hub decides: level 4, strategy discussion */
    r = s_call(
        HUB,
        "{\"op\":\"triage\",\"referral_event_id\":\"%s\",\"level\":4,\"outcome\":"
        "\"section_47_strategy\",\"rationale\":\"SYNTHETIC-RATIONALE-MARKER\",\"user\":\"sw-7\"}",
        concern);
    cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
    /* the school learns the outcome of its referral, not the rationale */
    it = s_wait_for(SCHOOL, "hub_decision");
    const char *txt = json_object_to_json_string(it);
    cr_assert_not_null(strstr(txt, "section_47_strategy"), "%s", txt);
    cr_assert_null(strstr(txt, "RATIONALE-MARKER"), "%s", txt);
    json_object_put(it);

    /* a child-protection plan starts; health receives the flag */
    char cp[2048];
    snprintf(
        cp, sizeof cp,
        "{\"op\":\"publish\",\"user\":\"sw-7\",\"purpose\":\"safeguarding\",\"event\":{"
        "\"event_type\":\"cp_plan_status\",\"purpose\":\"safeguarding\",\"consent\":"
        "\"not_required\",\"level_of_need\":4,\"lawful_basis\":{\"article6\":\"e_public_task\","
        "\"article9\":\"2g_substantial_public_interest\",\"dpa_schedule1_paragraph\":18},"
        "\"child\":{\"nhs_number\":\"%s\",\"date_of_birth\":\"2015-03-01\",\"given_name\":"
        "\"Child001\"},\"cp_plan_status\":{\"status\":\"started\",\"category\":\"neglect\","
        "\"start_date\":\"2026-11-01\",\"responsible_la\":{\"la_code\":\"881\","
        "\"office_hours_phone\":\"01632 960001\",\"out_of_hours_phone\":\"01632 960002\"}}}}",
        c.nhs_number);
    r = s_call(HUB, "%s", cp);
    cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
    it = s_wait_for(HEALTH, "cp_plan_status");
    txt = json_object_to_json_string(it);
    cr_assert_null(strstr(txt, "Child001"), "health does not get the name: %s", txt);
    json_object_put(it);
    /* the school that raised the concern is the child's school of record: it learns the
     * plan's status for its pupil, and nothing of the category */
    it = s_wait_for(SCHOOL, "cp_plan_status");
    txt = json_object_to_json_string(it);
    cr_assert_not_null(strstr(txt, "started"), "%s", txt);
    cr_assert_null(strstr(txt, "neglect"), "%s", txt);
    json_object_put(it);

    /* the child attends the emergency department: the hub is notified automatically */
    char att[2048];
    snprintf(att, sizeof att,
             "{\"op\":\"publish\",\"user\":\"ed-nurse-3\",\"purpose\":\"direct_care\",\"event\":{"
             "\"event_type\":\"unscheduled_care_attendance\",\"purpose\":\"direct_care\","
             "\"consent\":\"not_required\",\"lawful_basis\":{\"article6\":\"e_public_task\","
             "\"article9\":\"2h_health_social_care\",\"dpa_schedule1_paragraph\":2},"
             "\"child\":{\"nhs_number\":\"%s\"},\"unscheduled_care_attendance\":{\"site_code\":"
             "\"RAJ01\",\"setting\":\"emergency_department\",\"arrived_at_ms\":%lld}}}",
             c.nhs_number, (long long)time(NULL) * 1000);
    r = s_call(HEALTH, "%s", att);
    cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
    cr_assert_not_null(s_get(r, "access_notification"), "%s", json_object_to_json_string(r));
    json_object_put(r);
    it = s_wait_for(HUB, "access_notification");
    json_object_put(it);

    /* the clinician's view: the flag and the attendance; never the referral's narrative */
    r = s_call(HEALTH,
               "{\"op\":\"child\",\"id\":\"%s\",\"user\":\"ed-nurse-3\",\"purpose\":"
               "\"direct_care\"}",
               c.nhs_number);
    txt = json_object_to_json_string(r);
    cr_assert(s_ok(r), "%s", txt);
    cr_assert_str_eq(s_get(r, "flag"), "child_protection_plan", "%s", txt);
    cr_assert_eq(json_object_array_length(json_object_object_get(r, "attendances")), 1);
    cr_assert_null(strstr(txt, "NARRATIVE-MARKER"), "%s", txt);
    cr_assert_null(strstr(txt, "safeguarding_concern"), "%s", txt);
    json_object_put(r);
}

Test(agents, a_case_end_to_end)
{
    uint64_t rng = 4242;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    s_play_case(&c);
    json_object *r;

    /* reads need who and why */
    r = s_call(HEALTH, "{\"op\":\"child\",\"id\":\"%s\"}", c.nhs_number);
    cr_assert(!s_ok(r));
    cr_assert_str_eq(s_get(r, "error"), "SH_E_MISSING_FIELD");
    json_object_put(r);

    /* every local read is in the health agent's audit log with user and purpose */
    s_stop(&agent_pid[HEALTH]);
    sh_key *mk = NULL, *ak = NULL;
    sh_store *st = NULL;
    sh_audit *a = NULL;
    sh_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/RAJ.master", dir);
    cr_assert_eq(sh_key_load_file(path, &mk, &err), SH_OK);
    snprintf(path, sizeof path, "%s/RAJ.store", dir);
    cr_assert_eq(sh_store_open(path, mk, NULL, &st, &err), SH_OK);
    cr_assert_eq(sh_store_derive_key(st, "audit mac", &ak), SH_OK);
    cr_assert_eq(sh_audit_open(st, ak, NULL, 0, &a, &err), SH_OK);
    sh_audit_report rep;
    cr_assert_eq(sh_audit_verify(a, NULL, 0, &rep), SH_OK, "%s", rep.detail);
    int reads = 0, nurse_reads = 0;
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(st, 0, &t, &err), SH_OK);
    for (uint64_t s = 1; s <= rep.head_seq; s++) {
        sh_audit_record rec;
        cr_assert_eq(sh_audit_get(a, t, s, &rec, &err), SH_OK);
        if (rec.action == SH_AUDIT_READ) {
            reads++;
            cr_assert_str_neq(rec.actor_user, "");
            cr_assert_str_neq(rec.purpose, "");
            nurse_reads += strcmp(rec.actor_user, "ed-nurse-3") == 0 &&
                           strcmp(rec.purpose, "direct_care") == 0;
        }
    }
    sh_txn_abort(&t);
    cr_assert_gt(reads, 0);
    cr_assert_eq(nurse_reads, 3,
                 "the clinician's view read the flag, the attendance and its notification");
    sh_audit_destroy(&a);
    sh_store_destroy(&st);
    sh_key_destroy(&ak);
    sh_key_destroy(&mk);
}

Test(agents, outbox_survives_a_broker_outage)
{
    s_stop(&broker_pid);
    uint64_t rng = 99;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    json_object *r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
    char id[40];
    snprintf(id, sizeof id, "%s", s_get(r, "event_id"));
    json_object_put(r);
    usleep(1500 * 1000); /* the school notices the broker is gone */
    r = s_call(SCHOOL, "{\"op\":\"status\"}");
    cr_assert_eq(json_object_get_int(json_object_object_get(r, "outbox")), 1, "%s",
                 json_object_to_json_string(r));
    json_object_put(r);
    s_start_broker();
    json_object *it = s_wait_for(HUB, "safeguarding_concern");
    cr_assert_str_eq(s_get(it, "event_id"), id);
    json_object_put(it);
    for (int tries = 0; tries < 50; tries++) {
        r = s_call(SCHOOL, "{\"op\":\"status\"}");
        int left = json_object_get_int(json_object_object_get(r, "outbox"));
        json_object_put(r);
        if (!left) return;
        usleep(100 * 1000);
    }
    cr_assert_fail("the outbox never drained");
}

/* An intruder with disk access edits the hub's store: one byte of a sealed event flipped, two
 * events' values swapped. The agent says which events are damaged and returns nothing of them
 * (the swapped values would otherwise show one child's concern under another's id). */
Test(agents, a_store_edited_on_disk_is_reported_never_read)
{
    char ids[3][40];
    static uint64_t rng = 77;
    for (int i = 0; i < 3; i++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        json_object *r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
        snprintf(ids[i], sizeof ids[i], "%s", s_get(r, "event_id"));
        json_object_put(r);
    }
    for (int tries = 0; tries < 100; tries++) {
        json_object *r = s_call(HUB, "{\"op\":\"status\"}");
        int64_t got = json_object_get_int64(json_object_object_get(r, "received"));
        json_object_put(r);
        if (got >= 3) break;
        usleep(100 * 1000);
    }
    s_stop(&agent_pid[HUB]);
    char *store = s_path("881.store");
    uint8_t id[3][16], a[1 << 16], b[1 << 16];
    size_t al = 0, bl = 0;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sh_event_id_parse(ids[i], id[i]), SH_OK);
    cr_assert_eq(tu_raw_flip(store, "events", id[0], 16, 40, 0x04), 0);
    cr_assert_eq(tu_raw_get(store, "events", id[1], 16, a, sizeof a, &al), 0);
    cr_assert_eq(tu_raw_get(store, "events", id[2], 16, b, sizeof b, &bl), 0);
    cr_assert_eq(tu_raw_put(store, "events", id[1], 16, b, bl), 0);
    cr_assert_eq(tu_raw_put(store, "events", id[2], 16, a, al), 0);
    free(store);
    s_start_agent(HUB);
    for (int i = 0; i < 3; i++) {
        json_object *r = s_call(
            HUB, "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw-7\",\"purpose\":\"triage\"}",
            ids[i]);
        const char *txt = json_object_to_json_string(r);
        cr_assert(!s_ok(r), "a damaged event was shown: %s", txt);
        cr_assert_eq(json_object_get_int(json_object_object_get(r, "code")), SH_E_AUTH_FAILED, "%s",
                     txt);
        cr_assert_not_null(strstr(txt, "integrity"), "%s", txt);
        cr_assert_null(strstr(txt, "SYNTHETIC-NARRATIVE-MARKER"), "%s", txt);
        json_object_put(r);
    }
    /* the inbox lists them as damaged, with nothing of their content */
    json_object *r = s_call(HUB, "{\"op\":\"inbox\",\"user\":\"sw-7\",\"purpose\":\"triage\"}");
    cr_assert(s_ok(r));
    json_object *items = json_object_object_get(r, "items");
    int damaged = 0;
    for (size_t k = 0; k < json_object_array_length(items); k++) {
        json_object *it = json_object_array_get_idx(items, k);
        if (json_object_get_boolean(json_object_object_get(it, "damaged"))) {
            damaged++;
            cr_assert_null(json_object_object_get(it, "event"));
        }
    }
    cr_assert_eq(damaged, 3, "%s", json_object_to_json_string(r));
    json_object_put(r);
    /* and the failed reads are in the hub's audit log */
    s_stop(&agent_pid[HUB]);
    char *out = NULL, *st = s_path("881.store"), *mk = s_path("881.master"),
         *sk = s_path("881.sign");
    const char *args[] = {"audit", "replay", st, "--master", mk, "--sign-key", sk, "--json", NULL};
    cr_assert_eq(tu_cli(&out, args), 0, "%s", out);
    size_t failed = 0;
    for (const char *p = out; (p = strstr(p, "stored event damaged")); p++)
        failed++;
    cr_assert_eq(failed, 6, "three shows and three inbox lines audited as failed reads: %zu",
                 failed);
    free(out);
    free(st);
    free(mk);
    free(sk);
    s_start_agent(HUB);
}

Test(agents, agent_restart_mid_case_loses_and_duplicates_nothing)
{
    uint64_t rng = 7;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    /* the hub is down while two concerns are raised */
    s_stop(&agent_pid[HUB]);
    char ids[2][40];
    for (int i = 0; i < 2; i++) {
        json_object *r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(s_ok(r), "%s", json_object_to_json_string(r));
        snprintf(ids[i], sizeof ids[i], "%s", s_get(r, "event_id"));
        json_object_put(r);
    }
    s_start_agent(HUB);
    /* both arrive once each, and again once each after a second restart */
    for (int round = 0; round < 2; round++) {
        int seen[2] = {0, 0}, total = 0;
        for (int tries = 0; tries < 100 && (seen[0] < 1 || seen[1] < 1); tries++) {
            usleep(100 * 1000);
            struct stat st;
            char sock[600];
            snprintf(sock, sizeof sock, "%s/881.sock", dir);
            if (stat(sock, &st)) continue;
            json_object *r = s_call(HUB, "{\"op\":\"inbox\",\"user\":\"t\",\"purpose\":\"t\"}");
            json_object *items = json_object_object_get(r, "items");
            seen[0] = seen[1] = total = 0;
            for (size_t k = 0; k < json_object_array_length(items); k++) {
                json_object *it = json_object_array_get_idx(items, k);
                if (strcmp(s_get(it, "type"), "safeguarding_concern")) continue;
                total++;
                for (int i = 0; i < 2; i++)
                    seen[i] += strcmp(s_get(it, "event_id"), ids[i]) == 0;
            }
            json_object_put(r);
        }
        cr_assert(seen[0] == 1 && seen[1] == 1 && total == 2,
                  "round %d: seen %d and %d of %d concerns", round, seen[0], seen[1], total);
        s_stop(&agent_pid[HUB]);
        s_start_agent(HUB);
    }
}

/* ---- what an auditor finds in these processes' logs --------------------------------------- */

/* Grants the broker's and the agents' audit keys to an auditor's keyring; returns its path. */
static char *s_keyring(void)
{
    char *ring = s_path("auditor.keyring"), *out = NULL;
    const char *names[] = {"broker", "881", "8819990", "RAJ"};
    const char *labels[] = {"broker", "hub", "school", "health"};
    for (int i = 0; i < 4; i++) {
        char st[600], mk[600], sk[600];
        snprintf(st, sizeof st, "%s/%s.store", dir, names[i]);
        snprintf(mk, sizeof mk, "%s/%s.master", dir, names[i]);
        snprintf(sk, sizeof sk, "%s/%s.sign", dir, names[i]);
        const char *grant[] = {"audit", "grant",     st,   "--master", mk,        "--sign-key",
                               sk,      "--keyring", ring, "--name",   labels[i], NULL};
        cr_assert_eq(tu_cli(&out, grant), 0, "%s", out);
        free(out);
    }
    return ring;
}

Test(agents, a_rolled_back_agent_log_is_caught_by_the_brokers_witness)
{
    uint64_t rng = 31;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    json_object *r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(s_ok(r));
    json_object_put(r);
    json_object_put(s_wait_for(HUB, "safeguarding_concern"));
    /* an intruder keeps a copy of the hub's store as it is now */
    s_stop(&agent_pid[HUB]);
    char cmd[2000], hub[600];
    snprintf(hub, sizeof hub, "%s/881.store", dir);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s.old'", hub, hub);
    cr_assert_eq(system(cmd), 0);
    /* the hub works on; its checkpoints reach the broker (every 300 ms here) */
    s_start_agent(HUB);
    s_wait_ready();
    for (int i = 0; i < 2; i++) {
        r = s_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
        cr_assert(s_ok(r));
        json_object_put(r);
    }
    usleep(1500 * 1000);
    r = s_call(HUB,
               "{\"op\":\"child\",\"id\":\"%s\",\"user\":\"sw-2\",\"purpose\":"
               "\"triage\"}",
               c.nhs_number);
    json_object_put(r);
    s_stop(&agent_pid[HUB]); /* its final checkpoint is witnessed too */
    /* ... then puts the old copy back: a log that is internally consistent */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.old' '%s'", hub, hub, hub);
    cr_assert_eq(system(cmd), 0);
    char *ring = s_keyring(), *out, *bstore = s_path("broker.store");
    const char *alone[] = {"audit", "verify", hub, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, alone), 0, "on its own the rolled-back log verifies: %s", out);
    free(out);
    const char *witnessed[] = {"audit", "verify",    hub,  "--witness",
                               bstore,  "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, witnessed), 1, "%s", out);
    cr_assert(strstr(out, "TAMPERED: E606 SH_E_AUDIT_ROLLED_BACK"), "%s", out);
    cr_assert(strstr(out, "rolled back or cut short"), "%s", out);
    free(out);
    /* the other agents' logs agree with the broker's record of them */
    char school[600];
    snprintf(school, sizeof school, "%s/8819990.store", dir);
    const char *fine[] = {"audit", "verify", school, "--witness", bstore, "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, fine), 0, "%s", out);
    cr_assert(strstr(out, "witnessed checkpoints match"), "%s", out);
    free(out);
    /* restarted on the old store, the hub offers an older checkpoint: the broker refuses it */
    s_start_agent(HUB);
    usleep(1500 * 1000);
    const char *refused[] = {"audit",    "replay", bstore,  "--keyring", ring, "--json",
                             "--action", "refuse", "--org", "881",       NULL};
    cr_assert_eq(tu_cli(&out, refused), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":606"), "%s", out);
    cr_assert(strstr(out, "is behind the witnessed checkpoint"), "%s", out);
    free(out);
    free(ring);
    free(bstore);
}

Test(agents, the_auditor_reports_the_case_and_what_another_policy_would_have_done)
{
    uint64_t rng = 4243;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    s_play_case(&c);
    for (int i = 0; i < NAGENT; i++)
        s_stop(&agent_pid[i]);
    s_stop(&broker_pid);
    char *ring = s_keyring(), *out = NULL, *md = s_path("report.md"), *html = s_path("report.html");
    char st[4][600];
    const char *names[] = {"broker", "881", "8819990", "RAJ"};
    for (int i = 0; i < 4; i++)
        snprintf(st[i], sizeof st[i], "%s/%s.store", dir, names[i]);
    const char *subject[] = {"audit", "subject",   c.nhs_number, "--stores", st[0], st[1], st[2],
                             st[3],   "--keyring", ring,         "--output", md,    NULL};
    cr_assert_eq(tu_cli(&out, subject), 0, "%s", out);
    free(out);
    FILE *f = fopen(md, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    /* four events: the concern, the decision, the plan, the attendance (and its notification) */
    cr_assert(strstr(text, "Events about the child (5)"), "%s", text);
    cr_assert(strstr(text, "| broker |") && strstr(text, "verified: "), "%s", text);
    cr_assert(strstr(text, "safeguarding_concern from 8819990"), "%s", text);
    cr_assert(strstr(text, "shared with 881 under isp-sgc@1; data items: "
                           "child,safeguarding_concern"),
              "%s", text);
    cr_assert(strstr(text, "shared with RAJ under isp-cpis@1; data items: child.nhs_number,"
                           "child.date_of_birth,cp_plan_status.status"),
              "%s", text);
    cr_assert(strstr(text, "received and stored by RAJ from 881 under isp-cpis@1"), "%s", text);
    cr_assert(strstr(text, "delivered to 8819990 and acknowledged"), "%s", text);
    cr_assert(strstr(text, "READ at RAJ by ed-nurse-3 for \"direct_care\""), "%s", text);
    cr_assert(strstr(text, "READ at 881 by sw-7 for \"triage\""), "%s", text);
    cr_assert(strstr(text, "not shared with (no protocol names them as recipients"), "%s", text);
    cr_assert_null(strstr(text, "NARRATIVE-MARKER"), "the audit logs hold no narrative");
    cr_assert_null(strstr(text, "Child001"), "nor names");
    /* the identifier appears once: where the report says what was searched */
    char *first = strstr(text, c.nhs_number);
    cr_assert(first && !strstr(first + 1, c.nhs_number), "%s", text);
    const char *page[] = {"audit",    "subject", c.nhs_number, "--stores",  st[0],
                          st[1],      st[2],     st[3],        "--keyring", ring,
                          "--format", "html",    "--output",   html,        NULL};
    cr_assert_eq(tu_cli(&out, page), 0, "%s", out);
    free(out);
    f = fopen(html, "r");
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strncmp(text, "<!DOCTYPE html>", 15) == 0 && strstr(text, "</html>"));
    cr_assert(strstr(text, "<table>") && strstr(text, "@media print"));
    cr_assert(strstr(text, "READ at RAJ by ed-nurse-3 for &quot;direct_care&quot;"));

    /* what-if: the same policy changes nothing */
    char *reg = s_path("registry.yaml"), *pol = s_path("policy"), *pol2 = s_path("policy2");
    const char *same[] = {"audit",      "whatif", "--store",   st[0], "--policy", pol,
                          "--registry", reg,      "--keyring", ring,  "--json",   NULL};
    cr_assert_eq(tu_cli(&out, same), 0, "%s", out);
    cr_assert(strstr(out, "\"newly_permitted\":{\"count\":0") &&
                  strstr(out, "\"newly_denied\":{\"count\":0") &&
                  strstr(out, "\"items_removed\":{\"count\":0") &&
                  strstr(out, "\"items_added\":{\"count\":0"),
              "%s", out);
    free(out);
    /* health no longer gets the date of birth, and the feedback protocol has lapsed */
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s' '%s' && sed -i 's/child.nhs_number, child.date_of_birth,/"
             "child.nhs_number,/' '%s/isp-cpis.yaml' && sed -i \"s/^review_date: .*/review_date:"
             " '2020-01-31'/\" '%s/isp-feedback.yaml'",
             pol, pol2, pol2, pol2);
    cr_assert_eq(system(cmd), 0);
    const char *changed[] = {"audit",      "whatif", "--store",   st[0], "--policy", pol2,
                             "--registry", reg,      "--keyring", ring,  NULL};
    cr_assert_eq(tu_cli(&out, changed), 0, "%s", out);
    cr_assert(strstr(out, "newly denied                                1"), "%s", out);
    cr_assert(strstr(out, "data items removed                          1"), "%s", out);
    cr_assert(strstr(out, "now denied: E802 isp-feedback@1 is lapsed"), "%s", out);
    cr_assert(strstr(out, "-> RAJ: isp-cpis@1 would no longer share child.date_of_birth"), "%s",
              out);
    free(out);

    /* reading an event's contents takes the store's own keys, and is itself audited */
    const char *received[] = {"audit",  "replay",   st[1],     "--keyring", ring,
                              "--json", "--action", "receive", NULL};
    cr_assert_eq(tu_cli(&out, received), 0, "%s", out);
    char id[SH_EVENT_ID_STR];
    const char *at = strstr(out, "\"event_id\":\"");
    cr_assert_not_null(at, "%s", out);
    snprintf(id, sizeof id, "%.36s", at + 12);
    free(out);
    char *mk = s_path("881.master"), *sk = s_path("881.sign");
    const char *no_keys[] = {"audit", "event",  st[1],  id,          "--keyring",
                             ring,    "--user", "ig-1", "--purpose", "subject access request",
                             NULL};
    cr_assert_eq(tu_cli(&out, no_keys), 2, "a keyring opens no payload: %s", out);
    free(out);
    const char *read[] = {"audit",    "event", st[1],        id,
                          "--master", mk,      "--sign-key", sk,
                          "--user",   "ig-1",  "--purpose",  "subject access request",
                          NULL};
    cr_assert_eq(tu_cli(&out, read), 0, "%s", out);
    cr_assert(strstr(out, "SYNTHETIC-NARRATIVE-MARKER"), "%s", out);
    free(out);
    /* the broker's copy of the same event, parsed as a broker's record (its store has a queue) */
    char *bmk = s_path("broker.master"), *bsk = s_path("broker.sign");
    const char *bread[] = {"audit",    "event", st[0],        id,
                           "--master", bmk,     "--sign-key", bsk,
                           "--user",   "ig-1",  "--purpose",  "subject access request",
                           NULL};
    cr_assert_eq(tu_cli(&out, bread), 0, "%s", out);
    cr_assert(strstr(out, "SYNTHETIC-NARRATIVE-MARKER"), "%s", out);
    free(out);
    free(bmk);
    free(bsk);
    const char *trail[] = {"audit",    "replay", st[1],   "--keyring", ring, "--json",
                           "--action", "read",   "--org", "auditor",   NULL};
    cr_assert_eq(tu_cli(&out, trail), 0, "%s", out);
    cr_assert(strstr(out, "\"actor_user\":\"ig-1\",\"peer_org\":\"\",\"purpose\":\"subject "
                          "access request\""),
              "%s", out);
    cr_assert(strstr(out, id), "%s", out);
    free(out);
    const char *still[] = {"audit", "verify", st[1], "--keyring", ring, NULL};
    cr_assert_eq(tu_cli(&out, still), 0, "%s", out);
    free(out);
    free(mk);
    free(sk);
    free(reg);
    free(pol);
    free(pol2);
    free(ring);
    free(md);
    free(html);
}
