/* broker_fixture.c — the broker under test: a real broker process (forked, its own store,
 * keys and sockets) under a registry of five organisations and five ISPs, and the helpers
 * the broker's tests share (test_broker.c, test_protocol.c). */
#include "broker_fixture.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "store.h"
#include "synth.h"
#include "testutil.h"
#include "isp_fixture.h"

const char *const bf_org[NORG] = {"881", "8819990", "RAJ", "ESXPOL", "882"};
char bf_pub[NORG][41], bf_sec[NORG][41];
char bf_broker_pub[41];
char *bf_dir, *bf_tcp, *bf_ipc;
pid_t bf_broker;
sh_broker_config bf_cfg;

char *bf_path(const char *name)
{
    return tu_path(bf_dir, name);
}

void bf_write(const char *name, const char *text)
{
    char *p = bf_path(name), signed_text[8192];
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    if (strstr(name, "isp-")) { /* a protocol: signed by every party */
        snprintf(signed_text, sizeof signed_text, "%s", text);
        isp_fixture_sign(signed_text, sizeof signed_text);
        text = signed_text;
    }
    fputs(text, f);
    fclose(f);
    free(p);
}

/* The registry, with every org's key except those in `revoked` (a bit set). */
void bf_registry(unsigned revoked)
{
    static const char *const sector[NORG] = {"social_care", "education", "health", "police",
                                             "social_care"};
    static const char *const locality[NORG] = {"essex", "essex", "essex", "essex", "southend"};
    char text[4096] = "organisations:\n";
    for (int i = 0; i < NORG; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n,
                 "  - {code: '%s', name: Org %d, sector: %s, locality: %s%s%s, keys: [%s%s%s]}\n",
                 bf_org[i], i, sector[i], locality[i], i == HUB ? ", la_code: '881'" : "",
                 i == SOUTHEND ? ", la_code: '882'" : "", revoked & (1u << i) ? "" : "'",
                 revoked & (1u << i) ? "" : bf_pub[i], revoked & (1u << i) ? "" : "'");
    }
    bf_write("registry.yaml", text);
}

void bf_policy(void)
{
    char date[11], text[2048];
    time_t t = time(NULL) + 365 * 24 * 3600;
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&t));
    const char *basis = "lawful_basis: {article6: public_task, article9: "
                        "substantial_public_interest, dpa_schedule1_paragraph: 18}\n";
    snprintf(text, sizeof text,
             "id: isp-sgc\nversion: 1\ntitle: concerns\nstatus: active\nreview_date: '%s'\n"
             "lead: '881'\n"
             "purposes: [safeguarding]\nevent_types: [safeguarding_concern]\n"
             "senders: [{sector: education}, {sector: health}]\nrecipients:\n"
             "  - {organisation: '881', data_items: [child, safeguarding_concern]}\n"
             "  - {sector: police, data_items: [child.nhs_number, safeguarding_concern.category]}\n"
             "%sconsent: not_required\n",
             date, basis);
    bf_write("policy/isp-sgc.yaml", text);
    snprintf(text, sizeof text,
             "id: isp-feedback\nversion: 1\ntitle: feedback\nstatus: active\nreview_date: '%s'\n"
             "lead: '881'\n"
             "purposes: [safeguarding, early_help]\nevent_types: [hub_decision]\n"
             "senders: [{organisation: '881'}]\nrecipients:\n"
             "  - {relationship: referrer, data_items: [child.upn, hub_decision.outcome]}\n"
             "%sconsent: not_required\n",
             date, basis);
    bf_write("policy/isp-feedback.yaml", text);
    snprintf(text, sizeof text,
             "id: isp-eh\nversion: 1\ntitle: early help\nstatus: active\nreview_date: '%s'\n"
             "lead: '881'\n"
             "purposes: [early_help]\nevent_types: [request_for_support]\n"
             "senders: [{sector: education}]\n"
             "recipients: [{organisation: '881', data_items: [child, request_for_support]}]\n"
             "%sconsent: required\n",
             date, basis);
    bf_write("policy/isp-eh.yaml", text);
    snprintf(text, sizeof text,
             "id: isp-consent\nversion: 1\ntitle: consent records\nstatus: active\n"
             "review_date: '%s'\nlead: '881'\n"
             "purposes: [early_help]\nevent_types: [consent]\nsenders: [{sector: education}]\n"
             "recipients: [{organisation: '881', data_items: [child, consent_change]}]\n"
             "lawful_basis: {article6: public_task, article9: none}\nconsent: not_required\n",
             date);
    bf_write("policy/isp-consent.yaml", text);
    snprintf(text, sizeof text,
             "id: isp-cp-school\nversion: 1\ntitle: CP status to the school\nstatus: active\n"
             "review_date: '%s'\nlead: '881'\n"
             "purposes: [safeguarding]\nevent_types: [cp_plan_status]\n"
             "senders: [{organisation: '881'}]\n"
             "recipients: [{relationship: child_school, data_items: [child.upn, "
             "cp_plan_status.status, cp_plan_status.start_date]}]\n%sconsent: not_required\n",
             date, basis);
    bf_write("policy/isp-cp-school.yaml", text);
}

static volatile sig_atomic_t child_stop, child_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP)
        child_reload = 1;
    else
        child_stop = 1;
}

/* Forks the broker: a separate process with its own store, sockets and signal handlers. */
void bf_start(void)
{
    bf_broker = fork();
    cr_assert_neq(bf_broker, -1);
    if (bf_broker == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = s_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        char *faults = bf_path("faults"); /* fault points (common/fault.h) */
        setenv("SHAREHUB_FAULT_DIR", faults, 1);
        free(faults);
        sh_broker *b = NULL;
        sh_error err;
        if (sh_broker_new(&bf_cfg, &b, &err)) {
            fprintf(stderr, "broker: %s\n", err.detail);
            _exit(3);
        }
        sh_err rc = sh_broker_run(b, &child_stop, &child_reload);
        sh_broker_destroy(&b);
        _exit(rc == SH_OK ? 0 : 4);
    }
    /* serving once it answers a PING over tcp (the hub's key is always enrolled here) */
    sh_client *c = NULL;
    sh_error err;
    cr_assert_eq(sh_client_new(bf_tcp, bf_broker_pub, bf_pub[0], bf_sec[0], &c, &err), SH_OK);
    sh_msg m;
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        cr_assert_eq(sh_client_ping(c), SH_OK);
        up = sh_client_expect(c, "PONG", 100, &m) == SH_OK;
    }
    sh_client_destroy(&c);
    cr_assert(up, "the broker did not start");
}

void bf_stop(void)
{
    if (bf_broker <= 0) return;
    kill(bf_broker, SIGTERM);
    int status = 0;
    waitpid(bf_broker, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "broker exit status %d", status);
    bf_broker = 0;
}

sh_client *bf_client_at(int org, const char *endpoint)
{
    sh_client *c = NULL;
    sh_error err;
    cr_assert_eq(sh_client_new(endpoint, bf_broker_pub, bf_pub[org], bf_sec[org], &c, &err), SH_OK,
                 "%s", err.detail);
    return c;
}

sh_client *bf_client(int org)
{
    return bf_client_at(org, bf_tcp);
}

/* A client that has said HELLO and got READY. */
sh_client *bf_agent(int org)
{
    sh_client *c = bf_client(org);
    sh_msg m;
    cr_assert_eq(sh_client_hello(c, "*"), SH_OK);
    cr_assert_eq(sh_client_expect(c, "READY", WAIT, &m), SH_OK, "%s got no READY", bf_org[org]);
    cr_assert_eq(m.len[0], strlen(bf_org[org]));
    cr_assert_arr_eq(m.frame[0], bf_org[org], m.len[0]);
    return c;
}

void bf_setup(void)
{
    bf_dir = tu_tmpdir();
    for (int i = 0; i < NORG; i++)
        cr_assert_eq(sh_curve_keypair(bf_pub[i], bf_sec[i]), SH_OK);
    char bsec[42];
    cr_assert_eq(sh_curve_keypair(bf_broker_pub, bsec), SH_OK);
    bsec[40] = '\n';
    bsec[41] = '\0';
    bf_write("broker.curve", bsec);
    char *p = bf_path("broker.curve");
    chmod(p, 0600);
    free(p);
    sh_error err;
    char *mk = bf_path("master.key"), *sk = bf_path("sign.pem"), *pol = bf_path("policy");
    cr_assert_eq(sh_key_generate_file(mk, &err), SH_OK);
    cr_assert_eq(sh_signkey_generate_file(sk, &err), SH_OK);
    cr_assert_eq(mkdir(pol, 0700), 0);
    bf_registry(0);
    bf_policy();
    char *faults = bf_path("faults");
    cr_assert_eq(mkdir(faults, 0700), 0);
    free(faults);
    int port =
        11000 + (int)(getpid() % 10000); /* below the ephemeral range, apart from test_agents.c */
    bf_tcp = malloc(64);
    snprintf(bf_tcp, 64, "tcp://127.0.0.1:%d", port);
    bf_ipc = malloc(strlen(bf_dir) + 32);
    sprintf(bf_ipc, "ipc://%s/broker.ipc", bf_dir);
    memset(&bf_cfg, 0, sizeof bf_cfg);
    bf_cfg.endpoints[0] = bf_tcp;
    bf_cfg.endpoints[1] = bf_ipc;
    bf_cfg.store_dir = bf_path("store");
    bf_cfg.master_key = mk;
    bf_cfg.sign_key = sk;
    bf_cfg.curve_key = bf_path("broker.curve");
    bf_cfg.net_program = SHAREHUB_BROKER; /* its network process (broker/net.h) */
    bf_cfg.registry = bf_path("registry.yaml");
    bf_cfg.policy_dir = pol;
    bf_cfg.heartbeat_ms = 60000;
    bf_cfg.redeliver_ms = 400;
    bf_cfg.checkpoint_every = 50;
    bf_cfg.log_level = 1;
    bf_start();
}

void bf_teardown(void)
{
    int status = 0;
    if (bf_broker > 0) { /* stop it before judging, so a failure cannot leave it running */
        kill(bf_broker, SIGTERM);
        waitpid(bf_broker, &status, 0);
        bf_broker = 0;
    }
    tu_rmrf(bf_dir);
    cr_assert(status == 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
              "broker exit status %d", status);
}

/* An encoded synthetic event of `type` published as `org` (source_org = as). */
uint8_t *bf_event(int type, const char *as, const uint8_t *ref, size_t *len)
{
    static uint64_t rng = 99;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, type, &c, as, NULL, ref, 200, &buf, len, &err), SH_OK, "%s",
                 err.detail);
    return buf;
}

/* Publishes and returns the CONFIRM. */
void bf_publish(sh_client *c, const uint8_t *buf, size_t len, sh_msg *m)
{
    cr_assert_eq(sh_client_publish(c, buf, len), SH_OK);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, m), SH_OK, "no CONFIRM");
}

/* Publishes n safeguarding concerns as the school, each accepted; their ids in ids. */
void bf_publish_concerns(sh_client *school, uint8_t (*ids)[16], int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *ev = bf_event(2, "8819990", NULL, &len);
        sh_msg m;
        bf_publish(school, ev, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0);
        memcpy(ids[i], m.frame[0], 16);
        free(ev);
    }
}

int bf_has_line(const sh_msg *m, const char *line)
{
    for (size_t i = SH_CONFIRM_LINES_AT; i < m->nframes; i++)
        if (m->len[i] == strlen(line) && memcmp(m->frame[i], line, m->len[i]) == 0) return 1;
    return 0;
}

void bf_fault(const char *point, int on)
{
    char name[64];
    snprintf(name, sizeof name, "faults/%s", point);
    char *p = bf_path(name);
    if (on)
        bf_write(name, "");
    else
        unlink(p);
    free(p);
}

int bf_audit_count(int action, int code, const char *detail_part)
{
    sh_key *mk = NULL, *ak = NULL;
    sh_store *st = NULL;
    sh_audit *a = NULL;
    sh_txn *t = NULL;
    sh_error err;
    uint64_t head = 0;
    uint8_t mac[SH_MAC_BYTES];
    int n = 0;
    cr_assert_eq(sh_key_load_file(bf_cfg.master_key, &mk, &err), SH_OK);
    cr_assert_eq(sh_store_open(bf_cfg.store_dir, mk, NULL, &st, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_derive_key(st, "audit mac", &ak), SH_OK);
    cr_assert_eq(sh_audit_open(st, ak, NULL, 0, &a, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(st, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_head(a, t, &head, mac, &err), SH_OK);
    for (uint64_t s = 1; s <= head; s++) {
        sh_audit_record rec;
        cr_assert_eq(sh_audit_get(a, t, s, &rec, &err), SH_OK);
        n += (action < 0 || rec.action == action) && (code < 0 || rec.code == code) &&
             (!detail_part || strstr(rec.detail, detail_part));
    }
    sh_txn_abort(&t);
    sh_audit_destroy(&a);
    sh_store_destroy(&st);
    sh_key_destroy(&ak);
    sh_key_destroy(&mk);
    return n;
}
