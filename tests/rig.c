/*
 * rig.c — see rig.h. Plain C and POSIX: no test framework, so the reliability programs can
 * print their own figures.
 */
#define _GNU_SOURCE /* asprintf */
#include "rig.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "client.h"
#include "crypto.h"
#include "ident.h"
#include "synth.h"
#include "isp_fixture.h"

const char *const rig_org[RIG_N] = {"SHAREHUB", "881", "8819990", "RAJ", "R1L"};
static const char *const s_role[RIG_N] = {"", "social_care", "education", "health", "health"};

struct rig {
    char dir[256], bindir[512], endpoint[64], bpub[SH_Z85_LEN + 1];
    char broker_store[512];
    rig_opts o;
    pid_t pid[RIG_N];
    void *zctx;
    void *req[RIG_N]; /* REQ sockets to the agents, remade after a timeout */
};

uint64_t rig_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

int64_t rig_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_write(const rig *r, const char *name, const char *text)
{
    char p[512], signed_text[8192];
    snprintf(p, sizeof p, "%s/%s", r->dir, name);
    if (strstr(name, "isp-")) { /* a protocol: signed by every party */
        snprintf(signed_text, sizeof signed_text, "%s", text);
        isp_fixture_sign(signed_text, sizeof signed_text);
        text = signed_text;
    }
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    return ok && chmod(p, 0600) == 0 ? 0 : -1;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void rig_paths(const rig *r, int who, char store[512], char master[512], char sign[512])
{
    const char *o = rig_org[who];
    if (who == RIG_BROKER)
        snprintf(store, 512, "%s", r->broker_store);
    else
        snprintf(store, 512, "%s/%s.store", r->dir, o);
    snprintf(master, 512, "%s/%s.master", r->dir, o);
    snprintf(sign, 512, "%s/%s.sign", r->dir, o);
}

static const char *s_policy_head =
    "version: 1\ntitle: reliability rig\nstatus: active\nlead: '881'\n"
    ""
    "lawful_basis: {article6: public_task, article9: substantial_public_interest, "
    "dpa_schedule1_paragraph: 18}\nconsent: not_required\n";

static int s_agent_configs(rig *r);

static int s_setup(rig *r)
{
    char text[4096], pub[RIG_N][SH_Z85_LEN + 1], date[11];
    sh_error err;
    for (int i = 0; i < RIG_N; i++) {
        char sec[SH_Z85_LEN + 2], store[512], master[512], sign[512], name[64];
        if (sh_curve_keypair(pub[i], sec)) return -1;
        strcat(sec, "\n");
        snprintf(name, sizeof name, "%s.curve", rig_org[i]);
        if (s_write(r, name, sec)) return -1;
        sh_wipe(sec, sizeof sec);
        rig_paths(r, i, store, master, sign);
        if (sh_key_generate_file(master, &err) || sh_signkey_generate_file(sign, &err)) {
            fprintf(stderr, "rig: keys: %s\n", err.detail);
            return -1;
        }
    }
    memcpy(r->bpub, pub[RIG_BROKER], sizeof r->bpub);
    snprintf(text, sizeof text,
             "organisations:\n"
             "  - {code: '881', name: Hub, sector: social_care, locality: essex, la_code: '881', "
             "keys: ['%s']}\n"
             "  - {code: '8819990', name: School, sector: education, locality: essex, "
             "keys: ['%s']}\n"
             "  - {code: RAJ, name: Acute trust, sector: health, locality: essex, keys: ['%s']}\n"
             "  - {code: R1L, name: Community trust, sector: health, locality: essex, "
             "keys: ['%s']}\n",
             pub[RIG_HUB], pub[RIG_SCHOOL], pub[RIG_HEALTH], pub[RIG_PUB]);
    if (s_write(r, "registry.yaml", text)) return -1;
    snprintf(text, sizeof text, "%s/policy", r->dir);
    if (mkdir(text, 0700)) return -1;
    time_t t = time(NULL) + 365 * 24 * 3600;
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%d", gmtime_r(&t, &tm));
    snprintf(text, sizeof text,
             "id: isp-rig-concerns\n%sreview_date: '%s'\npurposes: [safeguarding]\n"
             "event_types: [safeguarding_concern]\nsenders: [{organisation: R1L}]\n"
             "recipients:\n  - {organisation: '881', data_items: [child, safeguarding_concern]}\n"
             "  - {organisation: RAJ, data_items: [child.nhs_number, "
             "safeguarding_concern.category]}\n",
             s_policy_head, date);
    if (r->o.policy) {
        snprintf(text, sizeof text, "id: isp-rig-custom\n%sreview_date: '%s'\n%s", s_policy_head,
                 date, r->o.policy);
        return s_write(r, "policy/isp-rig-custom.yaml", text) ? -1 : s_agent_configs(r);
    }
    if (s_write(r, "policy/isp-rig-concerns.yaml", text)) return -1;
    snprintf(text, sizeof text,
             "id: isp-rig-rfs\n%sreview_date: '%s'\npurposes: [early_help]\n"
             "event_types: [request_for_support]\nsenders: [{organisation: R1L}]\n"
             "recipients: [{organisation: '881', data_items: [child, level_of_need, "
             "request_for_support]}]\n",
             s_policy_head, date);
    if (s_write(r, "policy/isp-rig-rfs.yaml", text)) return -1;
    return s_agent_configs(r);
}

static int s_agent_configs(rig *r)
{
    char text[4096];
    for (int i = 1; i < RIG_N; i++) {
        char name[64], subs[256] = "";
        if (i == RIG_HUB && r->o.hub_subscriptions)
            snprintf(subs, sizeof subs, "subscriptions: '%s'\n", r->o.hub_subscriptions);
        if (r->o.http_port)
            snprintf(subs + strlen(subs), sizeof subs - strlen(subs), "http: '127.0.0.1:%d'\n",
                     r->o.http_port + i);
        snprintf(text, sizeof text,
                 "org: '%s'\nrole: %s\nbroker: {endpoint: '%s', public_key: '%s'}\n"
                 "curve_key: %s/%s.curve\nstore: %s/%s.store\nmaster_key: %s/%s.master\n"
                 "sign_key: %s/%s.sign\nsocket: %s/%s.sock\nheartbeat_ms: 500\n"
                 "witness_ms: 1000\nlog_level: warning\n%s",
                 rig_org[i], s_role[i], r->endpoint, r->bpub, r->dir, rig_org[i], r->dir,
                 rig_org[i], r->dir, rig_org[i], r->dir, rig_org[i], r->dir, rig_org[i], subs);
        snprintf(name, sizeof name, "%s.yaml", rig_org[i]);
        if (s_write(r, name, text)) return -1;
    }
    return 0;
}

rig *rig_new(const char *bindir, const rig_opts *o)
{
    rig *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->o = *o;
    const char *tmp = getenv("TMPDIR");
    snprintf(r->dir, sizeof r->dir, "%s/sharehub-rig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    snprintf(r->bindir, sizeof r->bindir, "%s", bindir);
    snprintf(r->endpoint, sizeof r->endpoint, "tcp://127.0.0.1:%d", o->port);
    if (!mkdtemp(r->dir)) {
        fprintf(stderr, "rig: mkdtemp: %s\n", strerror(errno));
        free(r);
        return NULL;
    }
    if (o->broker_store)
        snprintf(r->broker_store, sizeof r->broker_store, "%s", o->broker_store);
    else
        snprintf(r->broker_store, sizeof r->broker_store, "%s/SHAREHUB.store", r->dir);
    r->zctx = zmq_ctx_new();
    if (!r->zctx || s_setup(r)) {
        fprintf(stderr, "rig: cannot set up %s\n", r->dir);
        rig_destroy(&r);
        return NULL;
    }
    return r;
}

void rig_destroy(rig **rp)
{
    if (!rp || !*rp) return;
    rig *r = *rp;
    for (int i = 0; i < RIG_N; i++)
        if (r->pid[i] > 0) rig_signal(r, i, SIGKILL);
    for (int i = 0; i < RIG_N; i++)
        if (r->req[i]) zmq_close(r->req[i]);
    if (r->zctx) zmq_ctx_term(r->zctx);
    const char *keep = getenv("KEEP");
    if (keep && strcmp(keep, "1") == 0)
        fprintf(stderr, "rig: kept %s\n", r->dir);
    else
        nftw(r->dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    free(r);
    *rp = NULL;
}

const char *rig_dir(const rig *r)
{
    return r->dir;
}

const char *rig_bindir(const rig *r)
{
    return r->bindir;
}

pid_t rig_pid(const rig *r, int who)
{
    return r->pid[who];
}

/* Starts argv[0] with stdout and stderr appended to log, its fault points (common/fault.h)
 * in faults when not NULL; its pid, or -1. */
static pid_t s_spawn(const char *const *argv, const char *log, const char *faults)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (faults) setenv("SHAREHUB_FAULT_DIR", faults, 1);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd);
    return pid < 0 ? -1 : pid;
}

int rig_start(rig *r, int who)
{
    char bin[600], log[600], store[512], master[512], sign[512], curve[512], reg[512], pol[512],
        cfg[512], map[16], redeliver[16];
    rig_paths(r, who, store, master, sign);
    snprintf(log, sizeof log, "%s/%s.log", r->dir, rig_org[who]);
    snprintf(curve, sizeof curve, "%s/%s.curve", r->dir, rig_org[who]);
    snprintf(reg, sizeof reg, "%s/registry.yaml", r->dir);
    snprintf(pol, sizeof pol, "%s/policy", r->dir);
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", r->dir, rig_org[who]);
    snprintf(map, sizeof map, "%u", r->o.map_mib ? r->o.map_mib : 1024);
    snprintf(redeliver, sizeof redeliver, "%u", r->o.redeliver_ms ? r->o.redeliver_ms : 1000);
    char http[32];
    const char *argv[32];
    int n = 0;
    if (who == RIG_BROKER) {
        snprintf(bin, sizeof bin, "%s/broker/sharehub-broker", r->bindir);
        const char *a[] = {
            bin,       "--endpoint",     r->endpoint, "--store",     store,    "--master",
            master,    "--sign-key",     sign,        "--curve-key", curve,    "--registry",
            reg,       "--policy",       pol,         "--map-mib",   map,      "--redeliver-ms",
            redeliver, "--heartbeat-ms", "1000",      "--log-level", "warning"};
        for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
            argv[n++] = a[i];
        if (r->o.http_port) {
            snprintf(http, sizeof http, "127.0.0.1:%d", r->o.http_port);
            argv[n++] = "--http";
            argv[n++] = http;
        }
    } else {
        snprintf(bin, sizeof bin, "%s/agents/sharehub-agent", r->bindir);
        argv[n++] = bin;
        argv[n++] = "--config";
        argv[n++] = cfg;
    }
    argv[n] = NULL;
    char faults[600];
    snprintf(faults, sizeof faults, "%s/faults-%s", r->dir, rig_org[who]);
    if (mkdir(faults, 0700) != 0 && errno != EEXIST) return -1;
    pid_t pid = s_spawn(argv, log, faults);
    if (pid < 0) return -1;
    r->pid[who] = pid;
    return 0;
}

int rig_fault(rig *r, int who, const char *point, int on)
{
    char path[700];
    snprintf(path, sizeof path, "%s/faults-%s/%s", r->dir, rig_org[who], point);
    if (!on) return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int rig_signal(rig *r, int who, int sig)
{
    if (r->pid[who] <= 0) return 0;
    kill(r->pid[who], sig);
    int st = 0;
    while (waitpid(r->pid[who], &st, 0) < 0 && errno == EINTR)
        ;
    r->pid[who] = 0;
    if (r->req[who]) { /* a REQ socket mid-request is unusable: make a new one next time */
        zmq_close(r->req[who]);
        r->req[who] = NULL;
    }
    return st;
}

int rig_wait_exit(rig *r, int who, int timeout_ms)
{
    int64_t end = rig_ms() + timeout_ms;
    int st = 0;
    while (r->pid[who] > 0 && rig_ms() < end) {
        pid_t p = waitpid(r->pid[who], &st, WNOHANG);
        if (p == r->pid[who]) {
            r->pid[who] = 0;
            return st;
        }
        usleep(10 * 1000);
    }
    if (r->pid[who] > 0) rig_signal(r, who, SIGKILL);
    return -1;
}

int rig_stop_all(rig *r)
{
    int bad = 0;
    for (int i = RIG_N - 1; i >= 0; i--) {
        if (r->pid[i] <= 0) continue;
        int st = rig_signal(r, i, SIGTERM);
        if (st != 0) {
            fprintf(stderr, "rig: %s did not stop cleanly (wait status %d; see %s/%s.log)\n",
                    rig_org[i], st, r->dir, rig_org[i]);
            bad++;
        }
    }
    return bad;
}

static void *s_req(rig *r, int who)
{
    if (!r->req[who]) {
        char ep[600];
        snprintf(ep, sizeof ep, "ipc://%s/%s.sock", r->dir, rig_org[who]);
        void *s = zmq_socket(r->zctx, ZMQ_REQ);
        int linger = 0;
        if (!s) return NULL;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect(s, ep)) {
            zmq_close(s);
            return NULL;
        }
        r->req[who] = s;
    }
    return r->req[who];
}

int rig_send(rig *r, int who, const char *request)
{
    return s_req(r, who) && zmq_send(r->req[who], request, strlen(request), 0) >= 0 ? 0 : -1;
}

json_object *rig_call(rig *r, int who, const char *request, int timeout_ms)
{
    if (!s_req(r, who)) return NULL;
    zmq_setsockopt(r->req[who], ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(r->req[who], ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    json_object *out = NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_send(r->req[who], request, strlen(request), 0) >= 0 &&
        zmq_msg_recv(&m, r->req[who], 0) >= 0) {
        json_tokener *tok = json_tokener_new();
        if (tok) {
            out = json_tokener_parse_ex(tok, zmq_msg_data(&m), (int)zmq_msg_size(&m));
            json_tokener_free(tok);
        }
    } else {
        zmq_close(r->req[who]);
        r->req[who] = NULL;
    }
    zmq_msg_close(&m);
    return out;
}

int rig_status(rig *r, int who, long *outbox, long *received, int *connected)
{
    *outbox = *received = -1;
    *connected = -1;
    json_object *o = rig_call(r, who, "{\"op\":\"status\"}", 1000), *v;
    if (!o) return -1;
    if (json_object_object_get_ex(o, "outbox", &v)) *outbox = (long)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "received", &v)) *received = (long)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "connected", &v)) *connected = json_object_get_boolean(v);
    json_object_put(o);
    return 0;
}

int rig_wait_connected(rig *r, int who, int timeout_ms)
{
    int64_t end = rig_ms() + timeout_ms;
    while (rig_ms() < end) {
        long ob, rc;
        int conn;
        if (rig_status(r, who, &ob, &rc, &conn) == 0 && conn == 1) return 0;
        usleep(20 * 1000);
    }
    return -1;
}

char *rig_publish_request(uint64_t *rng, int type, uint8_t id[16], char nhs[11])
{
    sh_synth_child c;
    sh_synth_child_make(rng, "881", &c);
    char idt[SH_EVENT_ID_STR], *out = NULL;
    if (sh_event_id_new(id)) return NULL;
    sh_event_id_format(id, idt);
    memcpy(nhs, c.nhs_number, 11);
    static const char *basis = "\"lawful_basis\":{\"article6\":\"e_public_task\",\"article9\":"
                               "\"2g_substantial_public_interest\",\"dpa_schedule1_paragraph\":18}";
    char child[512];
    snprintf(child, sizeof child,
             "\"child\":{\"nhs_number\":\"%s\",\"upn\":\"%s\",\"given_name\":\"%s\","
             "\"family_name\":\"%s\",\"date_of_birth\":\"%s\",\"responsible_la\":\"881\"}",
             c.nhs_number, c.upn, c.given_name, c.family_name, c.date_of_birth);
    int n;
    if (type == 0)
        n = asprintf(&out,
                     "{\"op\":\"publish\",\"user\":\"hv-1\",\"purpose\":\"safeguarding\","
                     "\"event\":{\"event_id\":\"%s\",\"event_type\":\"safeguarding_concern\","
                     "\"purpose\":\"safeguarding\",\"consent\":\"not_sought_risk_of_harm\","
                     "\"level_of_need\":4,%s,%s,\"safeguarding_concern\":{\"category\":"
                     "\"neglect\",\"narrative\":\"SYNTHETIC-NARRATIVE: seen at a home visit\","
                     "\"reported_by\":{\"org_code\":\"R1L\",\"role\":\"Health visitor\"}}}}",
                     idt, basis, child);
    else
        n = asprintf(&out,
                     "{\"op\":\"publish\",\"user\":\"hv-1\",\"purpose\":\"early_help\","
                     "\"event\":{\"event_id\":\"%s\",\"event_type\":\"request_for_support\","
                     "\"purpose\":\"early_help\",\"consent\":\"given\",\"level_of_need\":3,%s,%s,"
                     "\"request_for_support\":{\"referrer\":{\"org_code\":\"R1L\",\"role\":"
                     "\"Health visitor\"},\"concerns\":[{\"category\":\"neglect\",\"about\":"
                     "\"the child\",\"examples\":\"SYNTHETIC-NARRATIVE: often hungry\"}]}}}",
                     idt, basis, child);
    return n < 0 ? NULL : out;
}

int rig_cli(rig *r, const char *const *args)
{
    char bin[600], log[600];
    snprintf(bin, sizeof bin, "%s/tools/sharehub", r->bindir);
    snprintf(log, sizeof log, "%s/cli.log", r->dir);
    const char *argv[40];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = s_spawn(argv, log, NULL);
    if (pid < 0) return -1;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int rig_client(rig *r, int who, sh_client **out)
{
    char path[600], secret[64], pub[SH_Z85_LEN + 1];
    size_t n = 0;
    sh_error err;
    snprintf(path, sizeof path, "%s/%s.curve", r->dir, rig_org[who]);
    if (sh_secret_file_read(path, secret, sizeof secret, &n, &err) || n < SH_Z85_LEN) return -1;
    secret[SH_Z85_LEN] = '\0';
    int rc = zmq_curve_public(pub, secret) == 0 &&
                     sh_client_new(r->endpoint, r->bpub, pub, secret, out, &err) == SH_OK
                 ? 0
                 : -1;
    sh_wipe(secret, sizeof secret);
    return rc;
}

const char *rig_endpoint(const rig *r)
{
    return r->endpoint;
}

const char *rig_broker_public(const rig *r)
{
    return r->bpub;
}

long rig_rss_kib(const rig *r, int who, long *peak_kib, long *anon_kib)
{
    char p[64], line[256];
    long rss = -1, hwm = -1, anon = -1;
    snprintf(p, sizeof p, "/proc/%d/status", (int)r->pid[who]);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld kB", &rss);
        sscanf(line, "VmHWM: %ld kB", &hwm);
        sscanf(line, "RssAnon: %ld kB", &anon);
    }
    fclose(f);
    if (peak_kib) *peak_kib = hwm;
    if (anon_kib) *anon_kib = anon;
    return rss;
}

long long rig_write_bytes(const rig *r, int who)
{
    char p[64], line[128];
    long long v = -1;
    snprintf(p, sizeof p, "/proc/%d/io", (int)r->pid[who]);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1) break;
    fclose(f);
    return v;
}

/* One HTTP request with curl: the status (0 when curl could not connect) and the body
 * (malloc'd, NUL-ended) in *body when asked. */
int rig_http(int port, const char *method, const char *path, char **body)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -s --max-time 5 -X %s -o - -w '\\n%%{http_code}' http://127.0.0.1:%d%s", method,
             port, path);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) {
                free(buf);
                buf = NULL;
            }
            buf = more;
        }
    }
    pclose(p);
    if (!buf) return 0;
    buf[n] = '\0';
    char *nl = strrchr(buf, '\n');
    int status = nl ? atoi(nl + 1) : 0;
    if (nl) *nl = '\0';
    if (body)
        *body = buf;
    else
        free(buf);
    return status;
}

size_t rig_count_in(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}
