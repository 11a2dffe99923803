/*
 * faults.c — `sharehub-faults BINDIR`: every agent write path with its audit append or its
 * commit made to fail (common/fault.h, test builds only), through the real processes of the
 * rig (tests/rig.h), and the `sharehub` command against real agents (a sanitizer build of it
 * when BINDIR is one). What it proves:
 *   - a publish whose audit entry fails is refused with the error, and nothing of it stays
 *     (no outbox entry, nothing sent); the same publish succeeds afterwards;
 *   - deliveries a recipient cannot store or cannot audit are not acknowledged; the agent says
 *     not ready (/readyz 503, sharehub_agent_store_writable 0) and, as soon as a write works
 *     again, asks for them (HELLO) instead of waiting for the broker's redelivery timer;
 *   - a read that cannot be audited shows nothing;
 *   - `sharehub publish` of an event the agent already holds exits 0, "already accepted";
 *     a user name over 64 characters is refused as too long, not as missing;
 *   - `sharehub inbox --json` parses the agent's reply by its length;
 *   - an agent logs losing the broker once, and refuses a subscription no event type has.
 * Prints a line per check; exits 1 when any fails, 2 when the rig cannot start.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rig.h"

static int s_fails;

static void s_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("faults: %s  ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
    s_fails += !ok;
}

/* The value of an unlabelled sample on an agent's metrics page, -1 if absent. */
static double s_metric(int port, const char *name)
{
    char *body = NULL;
    double v = -1;
    if (rig_http(port, "GET", "/metrics", &body) == 200 && body) {
        size_t n = strlen(name);
        for (const char *l = body; l && *l;) {
            if (strncmp(l, name, n) == 0 && l[n] == ' ') {
                v = strtod(l + n + 1, NULL);
                break;
            }
            l = strchr(l, '\n');
            l = l ? l + 1 : NULL;
        }
    }
    free(body);
    return v;
}

/* Waits up to timeout_ms for agent who's received count to reach want; the count. */
static long s_wait_received(rig *r, int who, long want, int timeout_ms)
{
    long outbox = -1, received = -1;
    int connected;
    for (int64_t until = rig_ms() + timeout_ms; rig_ms() < until; usleep(50 * 1000))
        if (rig_status(r, who, &outbox, &received, &connected) == 0 && received >= want) break;
    return received;
}

/* Publishes one R1L concern; the reply's "ok", with its code in *code (0 when ok). */
static int s_publish(rig *r, uint64_t *rng, char **req_out, int *code)
{
    uint8_t id[16];
    char nhs[11];
    char *req = rig_publish_request(rng, 0, id, nhs);
    json_object *rep = req ? rig_call(r, RIG_PUB, req, 10000) : NULL, *v;
    int ok = rep && json_object_object_get_ex(rep, "ok", &v) && json_object_get_boolean(v);
    *code = rep && json_object_object_get_ex(rep, "code", &v) ? json_object_get_int(v) : 0;
    json_object_put(rep);
    if (req_out)
        *req_out = req;
    else
        free(req);
    return ok;
}

/* The text of DIR/cli.log from offset `from`, malloc'd. */
static char *s_cli_log(rig *r, long *from)
{
    char path[600];
    snprintf(path, sizeof path, "%s/cli.log", rig_dir(r));
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    if (f && buf) {
        fseek(f, *from, SEEK_SET);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        *from += (long)n;
    }
    if (f) fclose(f);
    return buf;
}

static int s_run(const char *bindir)
{
    /* ports below the kernel's ephemeral range (32768 and up), apart from the other tests':
     * the broker's on 8000-9995, the five metrics endpoints on 6000-7999 */
    int slot = (int)(getpid() % 400) * 5;
    /* a redelivery timer far longer than the test: what arrives comes from the agent's HELLO */
    rig_opts o = {.port = 8000 + slot, .http_port = 6000 + slot, .redeliver_ms = 120000};
    rig *r = rig_new(bindir, &o);
    if (!r) return 2;
    int hub = o.http_port + RIG_HUB, status = 2, code = 0;
    uint64_t rng = 0xfa17;
    long cli_at = 0;
    for (int who = 0; who < RIG_N; who++)
        if (rig_start(r, who)) goto out;
    for (int who = 1; who < RIG_N; who++)
        if (rig_wait_connected(r, who, 15000)) goto out;
    status = 1;

    /* 1. the publisher's audit append fails: the publish is refused, nothing stays */
    rig_fault(r, RIG_PUB, "audit_append", 1);
    int ok = s_publish(r, &rng, NULL, &code);
    long outbox = -1, received = -1;
    int connected = 0;
    rig_status(r, RIG_PUB, &outbox, &received, &connected);
    s_check(!ok && code == 102 && outbox == 0,
            "publisher cannot audit: publish refused (E%03d), outbox %ld", code, outbox);
    rig_fault(r, RIG_PUB, "audit_append", 0);
    usleep(1500 * 1000); /* (its store probe runs once a second) */
    s_check(s_publish(r, &rng, NULL, &code) && s_wait_received(r, RIG_HUB, 1, 10000) == 1,
            "and once it can: published, and the hub has exactly that one");

    /* 2. the hub cannot commit: deliveries wait at the broker, the hub is not ready */
    rig_fault(r, RIG_HUB, "txn_commit", 1);
    for (int i = 0; i < 5; i++)
        s_publish(r, &rng, NULL, &code);
    int st = 0;
    for (int64_t until = rig_ms() + 10000; rig_ms() < until; usleep(100 * 1000))
        if ((st = rig_http(hub, "GET", "/readyz", NULL)) == 503) break;
    s_check(st == 503, "hub's commits fail: /readyz %d", st);
    s_check(s_metric(hub, "sharehub_agent_store_writable") == 0, "hub: store_writable 0");
    usleep(500 * 1000);
    rig_status(r, RIG_HUB, &outbox, &received, &connected);
    s_check(received == 1, "hub stored none of the 5 (received %ld)", received);
    int64_t t0 = rig_ms();
    rig_fault(r, RIG_HUB, "txn_commit", 0);
    received = s_wait_received(r, RIG_HUB, 6, 20000);
    int64_t took = rig_ms() - t0;
    s_check(received == 6 && took < 10000,
            "writes work again: the 5 arrive %.1f s later (redelivery timer: 120 s)",
            (double)took / 1e3);
    st = rig_http(hub, "GET", "/readyz", NULL);
    s_check(st == 200 && s_metric(hub, "sharehub_agent_store_writable") == 1,
            "hub ready again (/readyz %d), store_writable 1", st);

    /* 3. the hub cannot audit: deliveries are not stored, reads show nothing */
    rig_fault(r, RIG_HUB, "audit_append", 1);
    for (int i = 0; i < 3; i++)
        s_publish(r, &rng, NULL, &code);
    json_object *rep = rig_call(r, RIG_HUB, "{\"op\":\"inbox\",\"user\":\"t\",\"purpose\":\"t\"}",
                                10000),
                *v;
    int shown = rep && json_object_object_get_ex(rep, "items", &v);
    int rcode = rep && json_object_object_get_ex(rep, "code", &v) ? json_object_get_int(v) : 0;
    json_object_put(rep);
    s_check(!shown && rcode != 0, "hub cannot audit: its inbox shows nothing (E%03d)", rcode);
    usleep(500 * 1000);
    rig_status(r, RIG_HUB, &outbox, &received, &connected);
    s_check(received == 6, "and stores none of the 3 (received %ld)", received);
    rig_fault(r, RIG_HUB, "audit_append", 0);
    s_check(s_wait_received(r, RIG_HUB, 9, 15000) == 9, "auditing again: the 3 arrive");

    /* 4. the sharehub command: a republish, a long user name, a JSON reply by its length */
    char sock[600], *req = NULL, evfile[600];
    snprintf(sock, sizeof sock, "%s/%s.sock", rig_dir(r), rig_org[RIG_PUB]);
    snprintf(evfile, sizeof evfile, "%s/event.json", rig_dir(r));
    s_publish(r, &rng, &req, &code);
    json_object *jr = req ? json_tokener_parse(req) : NULL, *ev = NULL;
    FILE *f = fopen(evfile, "w");
    if (jr && json_object_object_get_ex(jr, "event", &ev) && f)
        fputs(json_object_to_json_string(ev), f);
    if (f) fclose(f);
    json_object_put(jr);
    free(req);
    const char *again[] = {"publish", evfile, "--user", "tester", "--socket", sock, NULL};
    int rc = rig_cli(r, again);
    char *log = s_cli_log(r, &cli_at);
    s_check(rc == 0 && strstr(log, "already accepted"),
            "sharehub publish of an event already held: exit %d, already accepted", rc);
    free(log);
    char user[101];
    memset(user, 'u', 100);
    user[100] = '\0';
    const char *longu[] = {"publish", evfile, "--user", user, "--socket", sock, NULL};
    rc = rig_cli(r, longu);
    log = s_cli_log(r, &cli_at);
    s_check(rc == 1 && strstr(log, "too long (at most 64"),
            "a 100-character user: exit %d, too long", rc);
    free(log);
    snprintf(sock, sizeof sock, "%s/%s.sock", rig_dir(r), rig_org[RIG_HUB]);
    const char *inbox[] = {"inbox",    "--user", "tester", "--purpose", "test",
                           "--socket", sock,     "--json", NULL};
    rc = rig_cli(r, inbox);
    log = s_cli_log(r, &cli_at);
    s_check(rc == 0 && strstr(log, "\"items\"") && !strstr(log, "Sanitizer"),
            "sharehub inbox --json: exit %d, one JSON reply parsed by its length", rc);
    free(log);

    /* 5. an agent says once that the broker went, and once that it is back */
    char logpath[600], cfgpath[600], cmd[2000];
    snprintf(logpath, sizeof logpath, "%s/%s.log", rig_dir(r), rig_org[RIG_HUB]);
    long lost0 = (long)rig_count_in(logpath, "lost the broker");
    rig_signal(r, RIG_BROKER, SIGKILL);
    usleep(4000 * 1000); /* hub heartbeat 500 ms: silent after 1.5 s, HELLOs every 250 ms after */
    long lost1 = (long)rig_count_in(logpath, "lost the broker");
    s_check(lost1 - lost0 == 1, "the hub logs losing the broker once in 4 s of outage (%ld lines)",
            lost1 - lost0);
    if (rig_start(r, RIG_BROKER) || rig_wait_connected(r, RIG_HUB, 15000))
        s_check(0, "the broker comes back and the hub reconnects");

    /* 6. an agent configured with a subscription that names no event type does not start */
    snprintf(cfgpath, sizeof cfgpath, "%s/badsubs.yaml", rig_dir(r));
    snprintf(cmd, sizeof cmd,
             "sed 's|^socket: .*|socket: %s/badsubs.sock|' '%s/%s.yaml' > '%s' && "
             "echo \"subscriptions: 'consent_change'\" >> '%s' && "
             "'%s/agents/sharehub-agent' --config '%s' > '%s/badsubs.out' 2>&1",
             rig_dir(r), rig_dir(r), rig_org[RIG_SCHOOL], cfgpath, cfgpath, bindir, cfgpath,
             rig_dir(r));
    int st5 = system(cmd);
    snprintf(logpath, sizeof logpath, "%s/badsubs.out", rig_dir(r));
    s_check(WIFEXITED(st5) && WEXITSTATUS(st5) == 1 && (long)rig_count_in(logpath, "E707") == 1,
            "an agent with subscriptions 'consent_change' refuses to start (E707)");

    if (rig_stop_all(r)) s_check(0, "every process stops cleanly");
out:
    if (status == 2) fprintf(stderr, "faults: the rig did not start\n");
    rig_destroy(&r);
    return status == 2 ? 2 : s_fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sharehub-faults BINDIR\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    return s_run(argv[1]);
}
