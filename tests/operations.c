/*
 * operations.c — the operations programs (docs/operations.md), run by ctest against the real
 * executables in BUILD-DIR:
 *
 *   sharehub-operations metrics BUILD-DIR PROMTOOL
 *       the broker and four agents with their metrics and health endpoints; curl scrapes them
 *       before, while and after events flow, with a recipient offline, and with the broker
 *       stopped: every counter named moves by what went through, the gauges follow the
 *       queues and the connections, readiness follows the broker.
 *   sharehub-operations backup BUILD-DIR
 *       mdb_copy takes a backup of the hub agent's store while events stream into it; the
 *       copy is restored in place of the store and the agent runs on it: its audit chain
 *       verifies and it holds every event the copy had.
 *   sharehub-operations reload BUILD-DIR UNIT-FILE
 *       the broker reloaded with the unit's own ExecReload= command (what `systemctl reload`
 *       runs): a revoked key is refused from then on and its agent's event kept in its outbox;
 *       a policy that does not load is refused and the old one kept; the key enrolled again,
 *       the kept event arrives.
 *
 * Each prints what it checked and exits 0 only when every check held (1 otherwise, 2 on usage
 * or when the scenario could not be set up).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "codec.h"
#include "error.h"
#include "rig.h"
#include "synth.h"

static int s_fails;

static void s_check(const char *prog, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_check(const char *prog, int ok, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("%s: %-4s %s\n", prog, ok ? "ok" : "FAIL", text);
    fflush(stdout);
    if (!ok) s_fails++;
}

/* ---- scraping ------------------------------------------------------------------------- */

/* A metrics page. */
typedef struct page {
    char *text;
} page;

static int s_scrape(int port, page *pg)
{
    free(pg->text);
    pg->text = NULL;
    return rig_http(port, "GET", "/metrics", &pg->text) == 200 ? 0 : -1;
}

/* The value of the sample `series` (a name, with its labels in braces if it has some),
 * -1 when the page has no such sample. */
static double s_value(const page *pg, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = pg->text; l && *l;) {
        const char *end = strchr(l, '\n');
        if (strncmp(l, series, n) == 0 && l[n] == ' ') return strtod(l + n + 1, NULL);
        l = end ? end + 1 : NULL;
    }
    return -1;
}

/* How much a series grew between two pages (an absent series counts as 0). */
static double s_delta(const page *before, const page *after, const char *series)
{
    double a = s_value(before, series), b = s_value(after, series);
    return (b < 0 ? 0 : b) - (a < 0 ? 0 : a);
}

/* ---- publishing ----------------------------------------------------------------------- */

/* Publishes n events through the publisher's agent: 0 or 1 = concern or request for support
 * (alternating, concerns first); the counts of each in *concerns. 0, or -1. */
static int s_publish(rig *r, uint64_t *rng, int n, int *concerns)
{
    for (int i = 0; i < n; i++) {
        uint8_t id[16];
        char nhs[11];
        int type = i % 2;
        char *req = rig_publish_request(rng, type, id, nhs);
        json_object *o = req ? rig_call(r, RIG_PUB, req, 5000) : NULL, *v;
        free(req);
        int ok = o && json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
        if (o) json_object_put(o);
        if (!ok) return -1;
        *concerns += type == 0;
    }
    return 0;
}

/* The sum of every sample of a family (name followed by `{`), -1 when it has none. */
static double s_sum(const page *pg, const char *name)
{
    size_t n = strlen(name);
    double sum = -1;
    for (const char *l = pg->text; l && *l;) {
        const char *end = strchr(l, '\n'), *sp;
        if (strncmp(l, name, n) == 0 && l[n] == '{' && (sp = strchr(l, ' ')) && (!end || sp < end))
            sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
        l = end ? end + 1 : NULL;
    }
    return sum;
}

/* Scrapes until lo <= series <= hi (an absent series reads -1); 0, or -1 after timeout_ms
 * (pg then holds the last page). */
static int s_wait(int port, const char *series, double lo, double hi, int timeout_ms, page *pg)
{
    int64_t end = rig_ms() + timeout_ms;
    while (rig_ms() < end) {
        if (s_scrape(port, pg) == 0) {
            double v = s_value(pg, series);
            if (v >= lo && v <= hi) return 0;
        }
        usleep(200 * 1000);
    }
    return -1;
}

/* Whether pid's probe process (its child started with --http-side, common/probe.h) runs with
 * no new privileges under a seccomp filter. */
static int s_probe_sandboxed(pid_t pid)
{
    char path[96], kids[256] = "", text[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(kids, 1, sizeof kids - 1, f) : 0;
    if (f) fclose(f);
    kids[n] = '\0';
    for (char *tok = strtok(kids, " \n"); tok; tok = strtok(NULL, " \n")) {
        snprintf(path, sizeof path, "/proc/%s/cmdline", tok);
        f = fopen(path, "re");
        size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f) fclose(f);
        if (len < 12 || strcmp(text + strlen(text) + 1, "--http-side") != 0) continue;
        snprintf(path, sizeof path, "/proc/%s/status", tok);
        f = fopen(path, "re");
        len = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f) fclose(f);
        text[len] = '\0';
        return strstr(text, "\nNoNewPrivs:\t1\n") && strstr(text, "\nSeccomp:\t2\n");
    }
    return 0;
}

/* Runs promtool's format check on a page (promtool unpacked by tools/deps). 0 when clean. */
static int s_promtool(const char *promtool, const page *pg, char *report, size_t cap)
{
    char in[] = "/tmp/sharehub-metrics-XXXXXX", cmd[700];
    int fd = mkstemp(in);
    if (fd < 0) return -1;
    size_t len = strlen(pg->text);
    int ok = write(fd, pg->text, len) == (ssize_t)len;
    close(fd);
    snprintf(cmd, sizeof cmd, "%s check metrics < %s 2>&1", promtool, in);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    size_t n = p ? fread(report, 1, cap - 1, p) : 0;
    report[n] = '\0';
    int st = p ? pclose(p) : -1;
    unlink(in);
    return ok && st == 0 ? 0 : -1;
}

static int s_metrics(const char *bindir, const char *promtool)
{
    const char *P = "metrics";
    /* below the kernel's ephemeral range (32768 and up): the five metrics endpoints on
     * 4000-5999, apart from the faults program's */
    int base = 31000 + getpid() % 1700;
    rig_opts o = {.port = base, .http_port = 4000 + (int)(getpid() % 400) * 5};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    int bport = o.http_port, hub = o.http_port + RIG_HUB, pub = o.http_port + RIG_PUB,
        school = o.http_port + RIG_SCHOOL;
    uint64_t rng = 0x5eed0fa11;
    page b0 = {0}, b1 = {0}, p0 = {0}, p1 = {0}, h0 = {0}, h1 = {0}, s1 = {0}, x = {0};
    sh_client *direct = NULL;
    char *body = NULL, report[2048];
    int status = 2, concerns = 0, n = 20;
    for (int who = 0; who < RIG_N; who++)
        if (rig_start(r, who)) goto out;
    for (int who = 1; who < RIG_N; who++)
        if (rig_wait_connected(r, who, 15000)) goto out;
    status = 1;

    /* 1. every endpoint answers; what is not served is refused */
    for (int who = 0; who < RIG_N; who++) {
        int port = o.http_port + who, st = rig_http(port, "GET", "/healthz", &body);
        s_check(P, st == 200 && body && strcmp(body, "ok\n") == 0, "%-8s /healthz 200 ok",
                rig_org[who]);
        free(body);
        body = NULL;
        st = rig_http(port, "GET", "/readyz", &body);
        s_check(P, st == 200, "%-8s /readyz %d", rig_org[who], st);
        free(body);
        body = NULL;
        s_check(P, s_probe_sandboxed(rig_pid(r, who)),
                "%-8s serves them from a process of its own, sandboxed", rig_org[who]);
    }
    s_check(P, rig_http(bport, "GET", "/nothing", NULL) == 404, "an unknown path: 404");
    s_check(P, rig_http(bport, "POST", "/metrics", NULL) == 405, "POST /metrics: 405");
    if (s_scrape(bport, &b0) || s_scrape(pub, &p0) || s_scrape(hub, &h0)) {
        s_check(P, 0, "first scrape");
        goto out;
    }
    s_check(P,
            s_value(&b0, "sharehub_broker_agents_connected") == 4 &&
                s_value(&b0, "sharehub_broker_agent_connected{org=\"881\"}") == 1,
            "broker: 4 agents connected, the hub among them");
    s_check(P,
            s_value(&b0, "sharehub_broker_isps{state=\"active\"}") == 2 &&
                s_value(&b0, "sharehub_broker_isps{state=\"lapsed\"}") == 0,
            "broker: the rig's 2 ISPs counted active, none lapsed");

    /* 2. n events through the publisher's agent: every counter moves by what went through */
    if (s_publish(r, &rng, n, &concerns)) {
        s_check(P, 0, "publishing %d events", n);
        goto out;
    }
    int copies = n + concerns; /* the hub takes every event, RAJ the concerns */
    if (s_wait(hub, "sharehub_agent_events_received_total", n, n, 20000, &h1) ||
        s_wait(pub, "sharehub_agent_events_delivered_total", copies, copies, 20000, &p1) ||
        s_wait(bport, "sharehub_broker_queue_depth{recipient=\"R1L\"}", 0, 0, 20000, &b1) ||
        s_scrape(school, &s1)) {
        s_check(P, 0, "the events and their receipts arrive");
        goto out;
    }
    /* one receipt covers every event of one ACK (up to 65): how many there were depends on
     * how the recipients' ACKs fell, so the receipts are counted, and must cover every copy */
    double receipts = s_delta(&p0, &p1, "sharehub_agent_events_received_total");
    printf("%s: %d events published (%d concerns for the hub and RAJ, %d requests for support "
           "for the hub): %d copies, delivered to the publisher in %.0f receipts\n",
           P, n, concerns, n - concerns, copies, receipts);
    s_check(P, receipts >= 1 && receipts <= copies, "publisher: %.0f receipts cover %d copies",
            receipts, copies);
#define DELTA(pa, pb, series, want)                                                                \
    s_check(P, s_delta(pa, pb, series) == (want), "%s +%g (want +%d)", series,                     \
            s_delta(pa, pb, series), (int)(want))
    DELTA(&b0, &b1, "sharehub_broker_events_accepted_total", n);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_queued_total{recipient=\"881\"}", n);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_queued_total{recipient=\"RAJ\"}", concerns);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_queued_total{recipient=\"R1L\"}", receipts);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_acked_total{recipient=\"881\"}", n);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_acked_total{recipient=\"RAJ\"}", concerns);
    DELTA(&b0, &b1, "sharehub_broker_deliveries_acked_total{recipient=\"R1L\"}", receipts);
    DELTA(&b0, &b1, "sharehub_broker_delivery_latency_seconds_count", copies);
    DELTA(&b0, &b1, "sharehub_broker_delivery_latency_seconds_bucket{le=\"+Inf\"}", copies);
    /* the school is a recipient under neither protocol, RAJ only under the concerns': no
     * protocol names them, so none is the closest */
    DELTA(&b0, &b1, "sharehub_broker_shares_denied_total{reason=\"SH_E_DENY_NO_ISP\",isp=\"-\"}",
          concerns + 2 * (n - concerns));
    s_check(P, s_sum(&b1, "sharehub_broker_shares_denied_total") == concerns + 2 * (n - concerns),
            "broker shares_denied_total: %g in all",
            s_sum(&b1, "sharehub_broker_shares_denied_total"));
    s_check(P,
            s_value(&b1, "sharehub_broker_queue_depth{recipient=\"881\"}") == 0 &&
                s_value(&b1, "sharehub_broker_queue_depth{recipient=\"RAJ\"}") == 0,
            "broker queue_depth back to 0 for the hub and RAJ");
    s_check(P,
            s_value(&b1, "sharehub_broker_audit_entries") >
                s_value(&b0, "sharehub_broker_audit_entries"),
            "broker audit_entries %g -> %g", s_value(&b0, "sharehub_broker_audit_entries"),
            s_value(&b1, "sharehub_broker_audit_entries"));
    DELTA(&p0, &p1, "sharehub_agent_events_published_total", n);
    DELTA(&p0, &p1, "sharehub_agent_events_confirmed_total", n);
    DELTA(&p0, &p1, "sharehub_agent_confirm_latency_seconds_count", n);
    double sent = s_delta(&p0, &p1, "sharehub_agent_publishes_sent_total"),
           batches = s_delta(&p0, &p1, "sharehub_agent_publish_batches_total");
    s_check(P, sent >= n && batches >= 1 && batches <= sent,
            "publisher: %g PUBLISHes (at least the %d events) in %g signed batches", sent, n,
            batches);
    DELTA(&p0, &p1, "sharehub_agent_events_delivered_total", copies);
    s_check(P, s_value(&p1, "sharehub_agent_outbox_depth") == 0, "publisher outbox_depth 0");
    DELTA(&h0, &h1, "sharehub_agent_events_received_total", n);
    DELTA(&h0, &h1, "sharehub_agent_delivery_latency_seconds_count", n);
    s_check(P, s_value(&s1, "sharehub_agent_events_received_total") == 0,
            "the school received nothing");
    const page *pages[3] = {&b1, &p1, &h1};
    const char *names[3] = {"broker", "publisher's agent", "hub's agent"};
    for (int i = 0; i < 3; i++) {
        int clean = s_promtool(promtool, pages[i], report, sizeof report) == 0;
        s_check(P, clean, "promtool check metrics: the %s's page is clean%s%s", names[i],
                clean ? "" : ":\n", clean ? "" : report);
    }

    /* 3. refusals, by code: the broker's to a spoofed source, the agent's to a bad request */
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *env = NULL;
    size_t len = 0;
    sh_error err;
    sh_msg m;
    int code = -1;
    if (rig_client(r, RIG_PUB, &direct) == 0 &&
        sh_synth_event(&rng, 2, &c, "RAJ", NULL, NULL, 0, &env, &len, &err) == SH_OK &&
        sh_client_publish(direct, env, len) == SH_OK &&
        sh_client_expect(direct, "CONFIRM", 5000, &m) == SH_OK)
        code = sh_msg_code(&m);
    free(env);
    json_object *bad = rig_call(r, RIG_PUB, "{\"op\":\"no-such-op\"}", 5000);
    if (bad) json_object_put(bad);
    if (s_scrape(bport, &x)) goto out;
    s_check(P,
            code == SH_E_SPOOFED_SOURCE &&
                s_value(&x, "sharehub_broker_refused_total{code=\"SH_E_SPOOFED_SOURCE\"}") == 1,
            "a spoofed source (E%03d): broker refused_total{code=\"SH_E_SPOOFED_SOURCE\"} 1", code);
    if (s_scrape(pub, &x)) goto out;
    s_check(P, s_value(&x, "sharehub_agent_refused_total{code=\"SH_E_INVAL\",by=\"local\"}") == 1,
            "a bad request to the agent: refused_total{code=\"SH_E_INVAL\",by=\"local\"} 1");

    /* 4. the hub offline: its queue grows, ages, and shows it disconnected */
    int m1 = 6, m2 = 3, more = 0;
    if (rig_signal(r, RIG_HUB, SIGTERM)) goto out;
    int w = s_wait(bport, "sharehub_broker_agent_connected{org=\"881\"}", 0, 0, 10000, &x);
    s_check(P, w == 0 && s_value(&x, "sharehub_broker_agents_connected") == 3,
            "the hub stopped: agent_connected{org=\"881\"} 0, agents_connected 3");
    if (s_publish(r, &rng, m1, &more)) goto out;
    w = s_wait(bport, "sharehub_broker_queue_depth{recipient=\"881\"}", m1, m1, 10000, &x);
    s_check(P, w == 0, "%d events for the offline hub: queue_depth{recipient=\"881\"} %g", m1,
            s_value(&x, "sharehub_broker_queue_depth{recipient=\"881\"}"));
    sleep(2);
    if (s_scrape(bport, &x)) goto out;
    double age = s_value(&x, "sharehub_broker_queue_oldest_age_seconds{recipient=\"881\"}");
    s_check(P, age >= 2 && age < 30, "queue_oldest_age_seconds{recipient=\"881\"} %g", age);

    /* 5. the broker killed (SIGKILL): the publisher's agent is not ready, its outbox grows */
    rig_signal(r, RIG_BROKER, SIGKILL);
    int st = 0;
    int64_t until = rig_ms() + 10000;
    while (rig_ms() < until && (st = rig_http(pub, "GET", "/readyz", NULL)) != 503)
        usleep(200 * 1000);
    s_check(P, st == 503, "broker killed: the publisher's agent /readyz %d", st);
    if (s_publish(r, &rng, m2, &more)) goto out;
    sleep(1);
    if (s_scrape(pub, &x)) goto out;
    s_check(P,
            s_value(&x, "sharehub_agent_outbox_depth") == m2 &&
                s_value(&x, "sharehub_agent_outbox_oldest_age_seconds") >= 1 &&
                s_value(&x, "sharehub_agent_broker_connected") == 0,
            "publisher's agent: outbox_depth %g (want %d), oldest %g s, broker_connected %g",
            s_value(&x, "sharehub_agent_outbox_depth"), m2,
            s_value(&x, "sharehub_agent_outbox_oldest_age_seconds"),
            s_value(&x, "sharehub_agent_broker_connected"));

    /* 6. the broker back: it counts what is queued from its store; the outbox drains */
    if (rig_start(r, RIG_BROKER)) goto out;
    w = s_wait(pub, "sharehub_agent_outbox_depth", 0, 0, 15000, &x);
    s_check(P, w == 0 && rig_http(pub, "GET", "/readyz", NULL) == 200,
            "broker back: the outbox drained, the publisher's agent ready");
    w = s_wait(bport, "sharehub_broker_queue_depth{recipient=\"881\"}", m1 + m2, m1 + m2, 10000,
               &x);
    s_check(
        P, w == 0,
        "restarted broker: queue_depth{recipient=\"881\"} %g (want %d: as its store recorded it "
        "through the kill, and since)",
        s_value(&x, "sharehub_broker_queue_depth{recipient=\"881\"}"), m1 + m2);
    if (rig_start(r, RIG_HUB)) goto out;
    w = s_wait(bport, "sharehub_broker_queue_depth{recipient=\"881\"}", 0, 0, 15000, &x);
    s_check(P,
            w == 0 &&
                s_value(&x, "sharehub_broker_deliveries_acked_total{recipient=\"881\"}") == m1 + m2,
            "the hub back: queue_depth 0, deliveries_acked_total{recipient=\"881\"} %g since the "
            "restart",
            s_value(&x, "sharehub_broker_deliveries_acked_total{recipient=\"881\"}"));
    status = s_fails ? 1 : 0;
out:
    if (status) fprintf(stderr, "metrics: FAILED (KEEP=1 keeps the files)\n");
    sh_client_destroy(&direct);
    free(b0.text), free(b1.text), free(p0.text), free(p1.text), free(h0.text), free(h1.text);
    free(s1.text), free(x.text);
    rig_destroy(&r);
    return status;
}

/* ---- backup and restore --------------------------------------------------------------- */

/* The hub's count of stored deliveries, -1 when it does not answer. */
static long s_received(rig *r)
{
    long ob, rc;
    int conn;
    return rig_status(r, RIG_HUB, &ob, &rc, &conn) ? -1 : rc;
}

static int s_wait_received(rig *r, long want, int timeout_ms)
{
    int64_t end = rig_ms() + timeout_ms;
    while (rig_ms() < end) {
        if (s_received(r) >= want) return 0;
        usleep(100 * 1000);
    }
    return -1;
}

static int s_backup(const char *bindir)
{
    const char *P = "backup";
    rig_opts o = {.port = 31000 + getpid() % 1700};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    uint64_t rng = 0xbac0;
    int status = 2, concerns = 0;
    char store[512], master[512], sign[512], copy[600], lost[600], cmd[2600];
    rig_paths(r, RIG_HUB, store, master, sign);
    snprintf(copy, sizeof copy, "%s/hub-backup", rig_dir(r));
    snprintf(lost, sizeof lost, "%s.lost", store);
    if (rig_start(r, RIG_BROKER) || rig_start(r, RIG_HUB) || rig_start(r, RIG_PUB) ||
        rig_wait_connected(r, RIG_HUB, 15000) || rig_wait_connected(r, RIG_PUB, 15000) ||
        mkdir(copy, 0700))
        goto out;
    status = 1;

    /* 1. events flowing into the hub while mdb_copy copies its store */
    if (s_publish(r, &rng, 40, &concerns) || s_wait_received(r, 40, 20000)) goto out;
    long before = s_received(r);
    const char *mdb_copy[] = {"mdb_copy", store, copy, NULL};
    pid_t pid = fork();
    if (pid < 0) goto out;
    if (pid == 0) {
        execvp(mdb_copy[0], (char *const *)mdb_copy);
        _exit(127);
    }
    int pub_err = s_publish(r, &rng, 60, &concerns), st = -1;
    waitpid(pid, &st, 0);
    long after = s_received(r);
    s_check(P, !pub_err && WIFEXITED(st) && WEXITSTATUS(st) == 0,
            "mdb_copy of the running hub's store while 60 more events were published (the hub "
            "held %ld when the copy began, %ld when it ended)",
            before, after);
    if (s_wait_received(r, 100, 20000)) goto out;

    /* 2. the copy opens with the hub's keys and its audit chain verifies */
    const char *verify[] = {"audit", "verify", copy, "--master", master, "--sign-key", sign, NULL};
    s_check(P, rig_cli(r, verify) == 0, "sharehub audit verify on the backup: the chain verifies");

    /* 3. the store lost: the backup restored in its place, the hub runs on it */
    if (rig_signal(r, RIG_HUB, SIGTERM)) goto out;
    snprintf(cmd, sizeof cmd, "mv '%s' '%s' && cp -a '%s' '%s'", store, lost, copy, store);
    if (system(cmd) != 0) goto out;
    if (rig_start(r, RIG_HUB) || rig_wait_connected(r, RIG_HUB, 15000)) {
        s_check(P, 0, "the hub starts on the restored store");
        goto out;
    }
    long restored = s_received(r);
    s_check(P, restored >= before && restored <= after,
            "the hub restarted on the restored store: it holds %ld events (%ld to %ld expected: "
            "what it held while the copy ran); the %ld delivered after the copy are not in it",
            restored, before, after, 100 - restored);
    if (s_publish(r, &rng, 10, &concerns) || s_wait_received(r, restored + 10, 20000)) {
        s_check(P, 0, "new events reach the restored hub");
        goto out;
    }
    s_check(P, 1, "10 new events reached the restored hub (it holds %ld)", s_received(r));

    /* 4. the restore shows in the audit: the restored log is behind what the broker witnessed
     * of the lost one, and the auditor's check says so */
    if (rig_stop_all(r)) goto out;
    const char *again[] = {"audit", "verify", store, "--master", master, "--sign-key", sign, NULL};
    s_check(P, rig_cli(r, again) == 0, "the restored store's own chain verifies");
    char keyring[600], bstore[512], bm[512], bs[512];
    rig_paths(r, RIG_BROKER, bstore, bm, bs);
    snprintf(keyring, sizeof keyring, "%s/auditor.keyring", rig_dir(r));
    const char *grant[] = {"audit", "grant",     bstore,  "--master", bm,         "--sign-key",
                           bs,      "--keyring", keyring, "--name",   "SHAREHUB", NULL};
    const char *grant_hub[] = {"audit", "grant",     store,   "--master", master, "--sign-key",
                               sign,    "--keyring", keyring, "--name",   "881",  NULL};
    const char *witness[] = {"audit", "verify",    store,   "--witness",
                             bstore,  "--keyring", keyring, NULL};
    int wst = rig_cli(r, grant) == 0 && rig_cli(r, grant_hub) == 0 ? rig_cli(r, witness) : -1;
    char log[700], line[600] = "", last[600] = "";
    snprintf(log, sizeof log, "%s/cli.log", rig_dir(r));
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof line, f)) /* the hub's line (the broker's follows it) */
        if (strncmp(line, store, strlen(store)) == 0 && line[strlen(store)] == ':')
            memcpy(last, line, sizeof last);
    if (f) fclose(f);
    s_check(P, wst == 1 && strstr(last, "E606 SH_E_AUDIT_ROLLED_BACK"),
            "sharehub audit verify --witness flags the restored log against the broker's record: "
            "E606 SH_E_AUDIT_ROLLED_BACK (a restore is visible to auditors)");
    status = s_fails ? 1 : 0;
out:
    if (status) fprintf(stderr, "backup: FAILED (KEEP=1 keeps the files)\n");
    rig_destroy(&r);
    return status;
}

/* ---- reload, as systemctl reload does it ------------------------------------------------ */

/* The unit's ExecReload= command with $MAINPID replaced by pid, into cmd. 0, or -1. */
static int s_exec_reload(const char *unit, pid_t pid, char *cmd, size_t cap)
{
    FILE *f = fopen(unit, "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strncmp(line, "ExecReload=", 11) == 0;
    if (f) fclose(f);
    char *at = found ? strstr(line, "$MAINPID") : NULL;
    if (!at) return -1;
    line[strcspn(line, "\n")] = '\0';
    *at = '\0';
    snprintf(cmd, cap, "%s%ld%s", line + 11, (long)pid, at + 8);
    return 0;
}

/* Whether the broker's log holds text, waiting up to timeout_ms. */
static int s_log_has(rig *r, const char *text, int timeout_ms)
{
    char path[700], line[1024];
    snprintf(path, sizeof path, "%s/SHAREHUB.log", rig_dir(r));
    int64_t end = rig_ms() + timeout_ms;
    do {
        FILE *f = fopen(path, "r");
        int hit = 0;
        while (f && !hit && fgets(line, sizeof line, f))
            hit = strstr(line, text) != NULL;
        if (f) fclose(f);
        if (hit) return 1;
        usleep(100 * 1000);
    } while (rig_ms() < end);
    return 0;
}

static int s_reload(const char *bindir, const char *unit)
{
    const char *P = "reload";
    rig_opts o = {.port = 31000 + getpid() % 1700};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    uint64_t rng = 0x7e10ad;
    int status = 2, concerns = 0;
    char cmd[700], reg[600], curve[600], secret[64] = "", pub[41], bad[700];
    snprintf(reg, sizeof reg, "%s/registry.yaml", rig_dir(r));
    snprintf(curve, sizeof curve, "%s/R1L.curve", rig_dir(r));
    snprintf(bad, sizeof bad, "%s/policy/isp-broken.yaml", rig_dir(r));
    FILE *f = fopen(curve, "r");
    int got = f && fgets(secret, sizeof secret, f) != NULL;
    if (f) fclose(f);
    secret[strcspn(secret, "\n")] = '\0';
    if (!got || zmq_curve_public(pub, secret)) goto out;
    if (rig_start(r, RIG_BROKER) || rig_start(r, RIG_HUB) || rig_start(r, RIG_PUB) ||
        rig_wait_connected(r, RIG_HUB, 15000) || rig_wait_connected(r, RIG_PUB, 15000))
        goto out;
    if (s_exec_reload(unit, rig_pid(r, RIG_BROKER), cmd, sizeof cmd)) {
        fprintf(stderr, "reload: no ExecReload=...$MAINPID in %s\n", unit);
        goto out;
    }
    status = 1;
    printf("%s: the unit's reload command: %s\n", P, cmd);
    if (s_publish(r, &rng, 5, &concerns) || s_wait_received(r, 5, 15000)) goto out;

    /* 1. R1L's key revoked, the broker reloaded: its agent is refused, nothing is lost */
    const char *revoke[] = {"enrol", "--registry", reg,        "--code", "R1L",
                            "--key", pub,          "--revoke", NULL};
    if (rig_cli(r, revoke) != 0 || system(cmd) != 0) goto out;
    if (s_publish(r, &rng, 1, &concerns)) goto out;
    sleep(3);
    long ob = -1, rc = -1, held = s_received(r);
    int conn;
    rig_status(r, RIG_PUB, &ob, &rc, &conn);
    s_check(P, ob == 1 && held == 5,
            "R1L's key revoked and the broker reloaded with the unit's command: its agent's next "
            "event is refused by the broker and kept in its outbox "
            "(%ld waiting; the hub holds %ld)",
            ob, held);

    /* 2. a policy file that does not load: the reload is refused, the old policy kept */
    f = fopen(bad, "w");
    if (!f || fputs("id: isp-broken\nnot_a_key: [\n", f) < 0 || fclose(f)) goto out;
    if (system(cmd) != 0) goto out;
    s_check(P, s_log_has(r, "reload refused, keeping the old configuration", 5000),
            "a broken ISP file: the reload refused, the configuration kept");
    if (unlink(bad)) goto out;

    /* 3. the key enrolled again and reloaded: the outbox drains, everything arrives */
    const char *enrol[] = {"enrol", "--registry", reg, "--code", "R1L", "--key", pub, NULL};
    if (rig_cli(r, enrol) != 0 || system(cmd) != 0) goto out;
    int w = s_wait_received(r, 6, 20000);
    held = s_received(r);
    s_check(P, w == 0,
            "R1L enrolled again and the broker reloaded: the kept event arrived (the hub holds "
            "%ld)",
            held);
    s_check(P, rig_stop_all(r) == 0, "every process stopped cleanly");
    status = s_fails ? 1 : 0;
out:
    if (status) fprintf(stderr, "reload: FAILED (KEEP=1 keeps the files)\n");
    rig_destroy(&r);
    return status;
}

static void s_usage(void)
{
    fputs("usage: sharehub-operations metrics BUILD-DIR PROMTOOL\n"
          "       sharehub-operations backup BUILD-DIR\n"
          "       sharehub-operations reload BUILD-DIR UNIT-FILE\n",
          stderr);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        s_usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "metrics") == 0 && argc == 4) return s_metrics(argv[2], argv[3]);
    if (strcmp(argv[1], "backup") == 0 && argc == 3) return s_backup(argv[2]);
    if (strcmp(argv[1], "reload") == 0 && argc == 4) return s_reload(argv[2], argv[3]);
    s_usage();
    return 2;
}
