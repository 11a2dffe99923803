/*
 * broker_bench.c — how fast the broker accepts and delivers, measured through real processes
 * and sockets on loopback. Prints figures; it is not a test.
 *
 * One publisher (a school) publishes N safeguarding concerns of about 1 KB with up to W
 * unconfirmed at a time; the policy sends each to three recipients (the hub and community
 * health see all of it, the police a minimised copy); three recipient processes ACK every
 * delivery at once (they store nothing: this measures the broker, whose every confirm follows
 * a durable, audited, group-committed write).
 *
 * usage: broker_bench [N] [W]      (defaults 20000 and 256)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "client.h"
#include "crypto.h"
#include "ident.h"
#include "synth.h"
#include "measure.h"
#include "isp_fixture.h"

enum { SCHOOL, HUB, POLICE, HEALTH, NORG };
static char pub[NORG][41], sec[NORG][41], bpub[41];
static volatile sig_atomic_t stop_flag, reload_flag;

static void s_on_term(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int s_write(const char *path, const char *text, mode_t mode)
{
    char signed_text[8192];
    if (strstr(path, "/isp-")) { /* a protocol: signed by every party */
        snprintf(signed_text, sizeof signed_text, "%s", text);
        isp_fixture_sign(signed_text, sizeof signed_text);
        text = signed_text;
    }
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

/* A recipient: HELLO, then ACK every delivery until n distinct events have arrived. */
static int s_recipient(const char *ep, int org, int n)
{
    sh_client *c = NULL;
    sh_error err;
    sh_msg m;
    if (sh_client_new(ep, bpub, pub[org], sec[org], &c, &err) || sh_client_hello(c, "*") ||
        sh_client_expect(c, "READY", 5000, &m))
        return 1;
    int got = 0;
    while (got < n) {
        if (sh_client_expect(c, "DELIVER", 30000, &m)) return 2;
        uint8_t id[16];
        memcpy(id, m.frame[0], 16);
        if (sh_client_ack(c, id)) return 3;
        got++; /* duplicates are possible only after a 30 s silence: not in a healthy run */
    }
    sh_client_destroy(&c);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000, window = argc > 2 ? atoi(argv[2]) : 256;
    char dir[] = "/tmp/sharehub-bench-XXXXXX", path[512], text[4096], ep[64];
    if (!mkdtemp(dir) || n <= 0 || window <= 0) return 2;
    for (int i = 0; i < NORG; i++)
        sh_curve_keypair(pub[i], sec[i]);
    char bsec[42];
    sh_curve_keypair(bpub, bsec);
    strcat(bsec, "\n");
    snprintf(path, sizeof path, "%s/broker.curve", dir);
    s_write(path, bsec, 0600);
    snprintf(
        text, sizeof text,
        "organisations:\n"
        "  - {code: '8819990', name: School, sector: education, locality: essex, keys: ['%s']}\n"
        "  - {code: '881', name: Hub, sector: social_care, locality: essex, keys: ['%s']}\n"
        "  - {code: ESXPOL, name: Police, sector: police, locality: essex, keys: ['%s']}\n"
        "  - {code: R1L, name: Health, sector: health, locality: essex, keys: ['%s']}\n",
        pub[0], pub[1], pub[2], pub[3]);
    snprintf(path, sizeof path, "%s/registry.yaml", dir);
    s_write(path, text, 0600);
    snprintf(path, sizeof path, "%s/policy", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/policy/isp-bench.yaml", dir);
    s_write(path,
            "id: isp-bench\nversion: 1\ntitle: bench\nstatus: active\nreview_date: '2199-01-01'\n"
            "lead: '881'\n"
            "purposes: [safeguarding]\nevent_types: [safeguarding_concern]\n"
            "senders: [{sector: education}]\nrecipients:\n"
            "  - {organisation: '881', data_items: [child, safeguarding_concern]}\n"
            "  - {organisation: R1L, data_items: [child, safeguarding_concern]}\n"
            "  - {sector: police, data_items: [child.nhs_number, safeguarding_concern.category]}\n"
            "lawful_basis: {article6: public_task, article9: substantial_public_interest, "
            "dpa_schedule1_paragraph: 18}\nconsent: not_required\n",
            0600);
    char mk[512], sk[512], st[512], cv[512], rg[512], pd[512];
    snprintf(mk, sizeof mk, "%s/master.key", dir);
    snprintf(sk, sizeof sk, "%s/sign.pem", dir);
    snprintf(st, sizeof st, "%s/store", dir);
    snprintf(cv, sizeof cv, "%s/broker.curve", dir);
    snprintf(rg, sizeof rg, "%s/registry.yaml", dir);
    snprintf(pd, sizeof pd, "%s/policy", dir);
    sh_error err;
    if (sh_key_generate_file(mk, &err) || sh_signkey_generate_file(sk, &err)) return 1;
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 30000 + getpid() % 2000);
    sh_broker_config cfg = {.endpoints = {ep},
                            .net_program = SHAREHUB_BROKER,
                            .store_dir = st,
                            .master_key = mk,
                            .sign_key = sk,
                            .curve_key = cv,
                            .registry = rg,
                            .policy_dir = pd,
                            .log_level = 2,
                            .map_size = (size_t)4 << 30};
    pid_t broker = fork();
    if (broker == 0) {
        signal(SIGTERM, s_on_term);
        sh_broker *b = NULL;
        if (sh_broker_new(&cfg, &b, &err)) {
            fprintf(stderr, "broker: %s\n", err.detail);
            _exit(1);
        }
        sh_broker_run(b, &stop_flag, &reload_flag);
        sh_broker_destroy(&b);
        _exit(0);
    }
    usleep(300 * 1000);
    pid_t rec[3];
    for (int i = 0; i < 3; i++)
        if ((rec[i] = fork()) == 0) _exit(s_recipient(ep, HUB + i, n));

    /* events made in advance: the bench measures the broker, not the generator */
    uint64_t rng = 1;
    uint8_t **ev = calloc((size_t)n, sizeof *ev);
    size_t *len = calloc((size_t)n, sizeof *len), bytes = 0;
    for (int i = 0; i < n; i++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        if (sh_synth_event(&rng, 2, &c, "8819990", NULL, NULL, 700, &ev[i], &len[i], &err))
            return 1;
        bytes += len[i];
    }
    sh_client *pubc = NULL;
    sh_msg m;
    if (sh_client_new(ep, bpub, pub[SCHOOL], sec[SCHOOL], &pubc, &err)) return 1;
    double *sent = calloc((size_t)n, sizeof *sent), *lat = calloc((size_t)n, sizeof *lat);
    int next = 0, done = 0, refused = 0;
    double t0 = bench_now();
    while (done < n) {
        /* refilled as one signed batch once half the window is free (docs/evidence.md) */
        int from = next;
        while (next < n && next - done < window && (next > from || next - done <= window / 2))
            sent[next++] = bench_now();
        if (next > from && sh_client_publish_batch(pubc, (const uint8_t *const *)ev + from,
                                                   len + from, (size_t)(next - from)) != SH_OK)
            break;
        if (sh_client_expect(pubc, "CONFIRM", 30000, &m)) {
            fprintf(stderr, "bench: no confirm after %d\n", done);
            break;
        }
        /* confirms come back in publish order: the broker handles one peer's messages in
         * order and replies after each batch commits */
        lat[done] = bench_now() - sent[done];
        refused += sh_msg_code(&m) != 0;
        done++;
    }
    double t1 = bench_now();
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        int status = 0;
        waitpid(rec[i], &status, 0);
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    double t2 = bench_now();
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
    bench_sort(lat, (size_t)done);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("sharehub broker bench: %d events of %zu bytes on average, window %d, %ld cores\n", n,
           bytes / (size_t)n, window, cores);
    printf("  publisher confirms  %8.0f events/s   (%d refused)\n", done / (t1 - t0), refused);
    printf("  fully delivered     %8.0f events/s   to 3 recipients each (%s)\n", n / (t2 - t0),
           ok ? "all ACKed" : "RECIPIENT FAILED");
    printf("  confirm latency     p50 %.2f ms   p99 %.2f ms   max %.2f ms (at full load)\n",
           lat[done / 2] * 1e3, lat[done * 99 / 100] * 1e3, lat[done - 1] * 1e3);
    sh_client_destroy(&pubc);
    for (int i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
    free(len);
    free(sent);
    free(lat);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", dir);
    return ok && !refused ? 0 : 1;
}
