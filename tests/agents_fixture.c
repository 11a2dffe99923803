/* agents_fixture.c — the agents under test: a real broker and three real agent processes
 * (the hub 881, a school 8819990, an acute trust RAJ) under a policy of five ISPs, each agent
 * driven through its local socket as a host system would, and the helpers and the case their
 * tests share (test_agents.c, test_agents_audit.c). */
#include "agents_fixture.h"
#include "password.h"

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
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
#include "client.h"
#include "synth.h"
#include "testutil.h"
#include "isp_fixture.h"

const char *const af_org[NAGENT] = {"881", "8819990", "RAJ"};
const char *const af_role[NAGENT] = {"social_care", "education", "health"};
char af_pub[NAGENT][41], af_sec[NAGENT][41], af_bpub[41];
char *af_dir, af_ep[64];
pid_t af_broker_pid, af_agent_pid[NAGENT];
sh_broker_config af_bcfg;
static volatile sig_atomic_t stop_flag, reload_flag;
void *af_zctx;

char *af_path(const char *name)
{
    return tu_path(af_dir, name);
}

void af_write(const char *name, const char *text, mode_t mode)
{
    char *p = af_path(name), signed_text[8192];
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    if (strstr(name, "isp-")) { /* a protocol: signed by every party */
        snprintf(signed_text, sizeof signed_text, "%s", text);
        isp_fixture_sign(signed_text, sizeof signed_text);
        text = signed_text;
    }
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

static void s_on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

void af_start_broker(void)
{
    af_broker_pid = fork();
    cr_assert_neq(af_broker_pid, -1);
    if (af_broker_pid == 0) {
        signal(SIGTERM, s_on_term);
        signal(SIGHUP, s_on_hup); /* reload the registry and policy, as the daemon does */
        sh_broker *b = NULL;
        sh_error err;
        if (sh_broker_new(&af_bcfg, &b, &err)) {
            fprintf(stderr, "broker: %s\n", err.detail);
            _exit(3);
        }
        sh_broker_run(b, &stop_flag, &reload_flag);
        sh_broker_destroy(&b);
        _exit(0);
    }
}

void af_start_agent(int i)
{
    char name[32];
    snprintf(name, sizeof name, "%s.yaml", af_org[i]);
    char *cfg = af_path(name);
    af_agent_pid[i] = fork();
    cr_assert_neq(af_agent_pid[i], -1);
    if (af_agent_pid[i] == 0) {
        signal(SIGTERM, s_on_term);
        sh_agent *a = NULL;
        sh_error err;
        if (sh_agent_new(cfg, &a, &err)) {
            fprintf(stderr, "agent %s: %s\n", af_org[i], err.detail);
            _exit(3);
        }
        sh_agent_run(a, &stop_flag);
        sh_agent_destroy(&a);
        _exit(0);
    }
    free(cfg);
    /* serving once its socket exists: its signal handler is installed by then */
    char sock[600];
    snprintf(sock, sizeof sock, "%s/%s.sock", af_dir, af_org[i]);
    struct stat st;
    for (int tries = 0; tries < 200 && stat(sock, &st) != 0; tries++)
        usleep(20 * 1000);
}

/* Stops a process; returns 0 for a clean exit, else its wait status. */
int af_halt(pid_t *pid)
{
    if (*pid <= 0) return 0;
    kill(*pid, SIGTERM);
    int status = 0;
    waitpid(*pid, &status, 0);
    *pid = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : (status ? status : -1);
}

void af_stop(pid_t *pid)
{
    int status = af_halt(pid);
    cr_assert_eq(status, 0, "exit status %d", status);
}

/* One request to an agent's local socket; returns the parsed reply (json_object_put it). */
json_object *af_call(int i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
json_object *af_call(int i, const char *fmt, ...)
{
    char req[8192], sock[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req, sizeof req, fmt, ap);
    va_end(ap);
    snprintf(sock, sizeof sock, "ipc://%s/%s.sock", af_dir, af_org[i]);
    void *s = zmq_socket(af_zctx, ZMQ_REQ);
    int linger = 0, tmo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    cr_assert_eq(zmq_connect(s, sock), 0);
    cr_assert_geq(zmq_send(s, req, strlen(req), 0), 0);
    char *buf = malloc(1 << 20);
    int n = zmq_recv(s, buf, (1 << 20) - 1, 0);
    zmq_close(s);
    cr_assert_gt(n, 0, "no answer from %s to %s", af_org[i], req);
    buf[n] = '\0';
    json_object *o = json_tokener_parse(buf);
    cr_assert_not_null(o, "%s", buf);
    free(buf);
    return o;
}

int af_ok(json_object *o)
{
    json_object *v;
    return json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

const char *af_get(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* Polls an agent's inbox until an item of `type` arrives; returns that item (caller puts). */
json_object *af_wait_for(int i, const char *type)
{
    for (int tries = 0; tries < 100; tries++) {
        json_object *r = af_call(i, "{\"op\":\"inbox\",\"user\":\"tester\",\"purpose\":\"test\"}");
        cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
        json_object *items = json_object_object_get(r, "items");
        for (size_t k = 0; k < json_object_array_length(items); k++) {
            json_object *it = json_object_array_get_idx(items, k);
            if (strcmp(af_get(it, "type"), type) == 0) {
                json_object *keep = json_object_get(it);
                json_object_put(r);
                return keep;
            }
        }
        json_object_put(r);
        usleep(100 * 1000);
    }
    cr_assert_fail("%s never received a %s", af_org[i], type);
    return NULL;
}

void af_wait_ready(void)
{
    for (int i = 0; i < NAGENT; i++) {
        int up = 0;
        for (int tries = 0; tries < 100 && !up; tries++) {
            char sock[600];
            snprintf(sock, sizeof sock, "%s/%s.sock", af_dir, af_org[i]);
            struct stat st;
            if (stat(sock, &st) == 0) {
                json_object *r = af_call(i, "{\"op\":\"status\"}");
                up = af_ok(r) && json_object_get_boolean(json_object_object_get(r, "connected"));
                json_object_put(r);
            }
            if (!up) usleep(100 * 1000);
        }
        cr_assert(up, "agent %s never connected", af_org[i]);
    }
}

void af_setup(void)
{
    af_dir = tu_tmpdir();
    af_zctx = zmq_ctx_new();
    char bsec[42], text[4096], date[11];
    cr_assert_eq(sh_curve_keypair(af_bpub, bsec), SH_OK);
    strcat(bsec, "\n");
    af_write("broker.curve", bsec, 0600);
    sh_error err;
    char *p;
    const char *keyfiles[] = {"broker.master", "broker.sign"};
    (void)keyfiles;
    cr_assert_eq(sh_key_generate_file((p = af_path("broker.master")), &err), SH_OK);
    free(p);
    cr_assert_eq(sh_signkey_generate_file((p = af_path("broker.sign")), &err), SH_OK);
    free(p);
    for (int i = 0; i < NAGENT; i++) {
        char name[64], sk[42];
        cr_assert_eq(sh_curve_keypair(af_pub[i], sk), SH_OK);
        memcpy(af_sec[i], sk, 41);
        strcat(sk, "\n");
        snprintf(name, sizeof name, "%s.curve", af_org[i]);
        af_write(name, sk, 0600);
        snprintf(name, sizeof name, "%s/%s.master", af_dir, af_org[i]);
        cr_assert_eq(sh_key_generate_file(name, &err), SH_OK);
        snprintf(name, sizeof name, "%s/%s.sign", af_dir, af_org[i]);
        cr_assert_eq(sh_signkey_generate_file(name, &err), SH_OK);
    }
    snprintf(text, sizeof text,
             "organisations:\n"
             "  - {code: '881', name: Hub, sector: social_care, locality: essex, la_code: '881', "
             "keys: ['%s']}\n"
             "  - {code: '8819990', name: School, sector: education, locality: essex, keys: "
             "['%s']}\n"
             "  - {code: RAJ, name: Acute trust, sector: health, locality: essex, keys: ['%s']}\n",
             af_pub[HUB], af_pub[SCHOOL], af_pub[HEALTH]);
    af_write("registry.yaml", text, 0600);
    p = af_path("policy");
    mkdir(p, 0700);
    free(p);
    time_t t = time(NULL) + 365 * 24 * 3600;
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    const char *head = "version: 1\ntitle: t\nstatus: active\nlead: '881'\n"
                       "";
    const char *sg = "lawful_basis: {article6: public_task, article9: "
                     "substantial_public_interest, dpa_schedule1_paragraph: 18}\n";
    snprintf(
        text, sizeof text,
        "id: isp-sgc\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
        "event_types: [safeguarding_concern]\nsenders: [{sector: education}, {sector: health}]\n"
        "recipients: [{organisation: '881', data_items: [child, safeguarding_concern]}]\n"
        "%sconsent: not_required\n",
        head, date, sg);
    af_write("policy/isp-sgc.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-feedback\n%sreview_date: '%s'\npurposes: [safeguarding, early_help]\n"
             "event_types: [hub_decision]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{relationship: referrer, data_items: [child.upn, child.given_name, "
             "level_of_need, hub_decision.outcome, hub_decision.level_of_need, "
             "hub_decision.amends_event_id]}]\n"
             "%sconsent: not_required\n",
             head, date, sg);
    af_write("policy/isp-feedback.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-cpis\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [cp_plan_status]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{sector: health, data_items: [child.nhs_number, child.date_of_birth, "
             "cp_plan_status.status, cp_plan_status.start_date, cp_plan_status.responsible_la]}]\n"
             "%sconsent: not_required\n",
             head, date, sg);
    af_write("policy/isp-cpis.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-cp-school\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [cp_plan_status]\nsenders: [{organisation: '881'}]\n"
             "recipients: [{relationship: child_school, data_items: [child.given_name, "
             "cp_plan_status.status, cp_plan_status.start_date]}]\n%sconsent: not_required\n",
             head, date, sg);
    af_write("policy/isp-cp-school.yaml", text, 0600);
    snprintf(text, sizeof text,
             "id: isp-access\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [access_notification]\nsenders: [{sector: health}]\n"
             "recipients: [{relationship: responsible_la, data_items: [child.nhs_number, "
             "access_notification]}]\nlawful_basis: {article6: public_task, article9: "
             "health_social_care, dpa_schedule1_paragraph: 2}\nconsent: not_required\n",
             head, date);
    af_write("policy/isp-access.yaml", text, 0600);
    /* below the ephemeral range (32768+), apart from test_broker.c's ports */
    snprintf(af_ep, sizeof af_ep, "tcp://127.0.0.1:%d", 21000 + getpid() % 10000);
    /* the senders list each agency trusts: every agency's signing key (docs/evidence.md) */
    size_t used = 0;
    for (int i = 0; i < NAGENT; i++) {
        char path[600], hex[65];
        sh_signkey *k = NULL;
        uint8_t pub[32];
        snprintf(path, sizeof path, "%s/%s.sign", af_dir, af_org[i]);
        cr_assert_eq(sh_signkey_load_file(path, &k, &err), SH_OK);
        sh_signkey_public(k, pub);
        sh_signkey_destroy(&k);
        sh_hex_encode(pub, 32, hex);
        used +=
            (size_t)snprintf(text + used, sizeof text - used, "org=%s key=%s\n", af_org[i], hex);
    }
    af_write("senders", text, 0600);
    for (int i = 0; i < NAGENT; i++) {
        char name[32];
        snprintf(text, sizeof text,
                 "org: '%s'\nrole: %s\nbroker: {endpoint: '%s', public_key: '%s'}\n"
                 "curve_key: %s/%s.curve\nstore: %s/%s.store\nmaster_key: %s/%s.master\n"
                 "sign_key: %s/%s.sign\nsocket: %s/%s.sock\nheartbeat_ms: 500\nwitness_ms: 300\n"
                 "senders: %s/senders\nlog_level: warning\n",
                 af_org[i], af_role[i], af_ep, af_bpub, af_dir, af_org[i], af_dir, af_org[i],
                 af_dir, af_org[i], af_dir, af_org[i], af_dir, af_org[i], af_dir);
        snprintf(name, sizeof name, "%s.yaml", af_org[i]);
        af_write(name, text, 0600);
    }
    memset(&af_bcfg, 0, sizeof af_bcfg);
    af_bcfg.endpoints[0] = af_ep;
    af_bcfg.store_dir = af_path("broker.store");
    af_bcfg.net_program = SHAREHUB_BROKER;
    af_bcfg.master_key = af_path("broker.master");
    af_bcfg.sign_key = af_path("broker.sign");
    af_bcfg.curve_key = af_path("broker.curve");
    af_bcfg.registry = af_path("registry.yaml");
    af_bcfg.policy_dir = af_path("policy");
    af_bcfg.heartbeat_ms = 2000;
    af_bcfg.redeliver_ms = 1000;
    af_bcfg.log_level = 1;
    af_start_broker();
    for (int i = 0; i < NAGENT; i++)
        af_start_agent(i);
    af_wait_ready();
}

void af_teardown(void)
{
    /* stop everything first, so a failure cannot leave a process behind, then judge */
    int status[NAGENT + 1];
    for (int i = 0; i < NAGENT; i++)
        status[i] = af_halt(&af_agent_pid[i]);
    status[NAGENT] = af_halt(&af_broker_pid);
    zmq_ctx_term(af_zctx);
    tu_rmrf(af_dir);
    for (int i = 0; i <= NAGENT; i++)
        cr_assert_eq(status[i], 0, "process %d exit status", i);
}

/* The scripted case: a concern, the hub's decision, a child-protection plan, an attendance at
 * the emergency department and the clinician's view, each checked as it happens. */
void af_play_case(const sh_synth_child *cp_child)
{
    const sh_synth_child c = *cp_child;

    /* the school's DSL raises a concern */
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    char concern[40];
    snprintf(concern, sizeof concern, "%s", af_get(r, "event_id"));
    json_object_put(r);

    /* it reaches the hub whole */
    json_object *it = af_wait_for(HUB, "safeguarding_concern");
    cr_assert_str_eq(af_get(it, "event_id"), concern);
    cr_assert_str_eq(af_get(it, "peer"), "8819990");
    cr_assert_str_eq(af_get(it, "rule"), "isp-sgc@1");
    json_object_put(it);
    r = af_call(HUB,
                "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw-7\",\"purpose\":\"triage\"}",
                concern);
    cr_assert(af_ok(r));
    cr_assert_not_null(strstr(json_object_to_json_string(r), "SYNTHETIC-NARRATIVE-MARKER"));
    json_object_put(r);

    /* the hub decides: level 4, strategy discussion (by a practitioner's account) */
    char hash[SH_PASSWORD_HASH];
    sh_error herr;
    cr_assert_eq(sh_password_hash("synthetic password seven", hash, &herr), SH_OK);
    r = af_call(HUB,
                "{\"op\":\"account_set\",\"name\":\"sw-7\",\"role\":\"practitioner\","
                "\"hash\":\"%s\",\"user\":\"admin\"}",
                hash);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
    r = af_call(
        HUB,
        "{\"op\":\"triage\",\"referral_event_id\":\"%s\",\"level\":4,\"outcome\":"
        "\"section_47_strategy\",\"rationale\":\"SYNTHETIC-RATIONALE-MARKER\",\"user\":\"sw-7\"}",
        concern);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
    /* the school learns the outcome of its referral, not the rationale */
    it = af_wait_for(SCHOOL, "hub_decision");
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
    r = af_call(HUB, "%s", cp);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object_put(r);
    it = af_wait_for(HEALTH, "cp_plan_status");
    txt = json_object_to_json_string(it);
    cr_assert_null(strstr(txt, "Child001"), "health does not get the name: %s", txt);
    json_object_put(it);
    /* the school that raised the concern is the child's school of record: it learns the
     * plan's status for its pupil, and nothing of the category */
    it = af_wait_for(SCHOOL, "cp_plan_status");
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
    r = af_call(HEALTH, "%s", att);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    cr_assert_not_null(af_get(r, "access_notification"), "%s", json_object_to_json_string(r));
    json_object_put(r);
    it = af_wait_for(HUB, "access_notification");
    json_object_put(it);

    /* the clinician's view: the flag and the attendance; never the referral's narrative */
    r = af_call(HEALTH,
                "{\"op\":\"child\",\"id\":\"%s\",\"user\":\"ed-nurse-3\",\"purpose\":"
                "\"direct_care\"}",
                c.nhs_number);
    txt = json_object_to_json_string(r);
    cr_assert(af_ok(r), "%s", txt);
    cr_assert_str_eq(af_get(r, "flag"), "child_protection_plan", "%s", txt);
    cr_assert_eq(json_object_array_length(json_object_object_get(r, "attendances")), 1);
    cr_assert_null(strstr(txt, "NARRATIVE-MARKER"), "%s", txt);
    cr_assert_null(strstr(txt, "safeguarding_concern"), "%s", txt);
    json_object_put(r);
}

/* Grants the broker's and the agents' audit keys to an auditor's keyring; returns its path. */
char *af_keyring(void)
{
    char *ring = af_path("auditor.keyring"), *out = NULL;
    const char *names[] = {"broker", "881", "8819990", "RAJ"};
    const char *labels[] = {"broker", "hub", "school", "health"};
    for (int i = 0; i < 4; i++) {
        char st[600], mk[600], sk[600];
        snprintf(st, sizeof st, "%s/%s.store", af_dir, names[i]);
        snprintf(mk, sizeof mk, "%s/%s.master", af_dir, names[i]);
        snprintf(sk, sizeof sk, "%s/%s.sign", af_dir, names[i]);
        const char *grant[] = {"audit", "grant",     st,   "--master", mk,        "--sign-key",
                               sk,      "--keyring", ring, "--name",   labels[i], NULL};
        cr_assert_eq(tu_cli(&out, grant), 0, "%s", out);
        free(out);
    }
    return ring;
}
