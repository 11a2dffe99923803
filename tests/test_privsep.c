/*
 * test_privsep.c — the broker's network process (broker/net.h): it alone reads the network,
 * holds nothing of the store (no store file, no key file, no store key in its address space),
 * runs with no new privileges under a seccomp filter; when it crashes on a malicious input
 * (the test hook "net_crash") the core and its store carry on, nothing accepted is lost, the
 * crash is audited and the process is restarted.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "broker_fixture.h"
#include "client.h"
#include "codec.h"
#include "error.h"

TestSuite(privsep, .init = bf_setup, .fini = bf_teardown, .timeout = 60);

#define WAIT 3000

/* The broker's network process: the core's one child. */
static pid_t s_net_pid(void)
{
    char path[64], buf[64] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)bf_broker, (int)bf_broker);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_not_null(fgets(buf, sizeof buf, f), "the broker has no network process");
    fclose(f);
    int pid = atoi(buf);
    cr_assert_gt(pid, 0);
    return (pid_t)pid;
}

/* The line of /proc/pid/status that begins with key, its value. */
static long s_status(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) v = atol(line + strlen(key));
    fclose(f);
    return v;
}

/* Whether needle[0..len) occurs in the memory of pid (its readable regions). */
static int s_in_memory(pid_t pid, const uint8_t *needle, size_t len)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "re");
    snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
    FILE *mem = fopen(path, "re");
    cr_assert(maps && mem);
    int found = 0;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            hi - lo > (256UL << 20) || strstr(line, "[vvar]"))
            continue;
        uint8_t *buf = malloc(hi - lo);
        cr_assert_not_null(buf);
        if (fseek(mem, (long)lo, SEEK_SET) == 0) {
            size_t got = fread(buf, 1, hi - lo, mem);
            for (size_t i = 0; !found && got >= len && i <= got - len; i++)
                found = buf[i] == needle[0] && memcmp(buf + i, needle, len) == 0;
        }
        clearerr(mem);
        free(buf);
    }
    fclose(maps);
    fclose(mem);
    return found;
}

Test(privsep, the_network_process_holds_nothing_of_the_store_and_is_sandboxed)
{
    sh_client *c = bf_agent(SCHOOL); /* serving: the network process is up */
    pid_t net = s_net_pid();
    cr_assert_eq(s_status(net, "NoNewPrivs:"), 1, "no new privileges");
    /* (valgrind, which the test suite also runs under, does not emulate seccomp: the network
     * process says so and runs without its filter there, and only there) */
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "vgpreload"))
        cr_assert_eq(s_status(net, "Seccomp:"), 2, "a seccomp filter");
    /* no descriptor of the store's or of a key file */
    char path[64], target[512];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)net);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char fd[600];
        snprintf(fd, sizeof fd, "%s/%s", path, e->d_name);
        ssize_t n = readlink(fd, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        cr_assert_null(strstr(target, bf_cfg.store_dir), "it holds %s", target);
        cr_assert_null(strstr(target, ".key"), "it holds %s", target);
        cr_assert_null(strstr(target, ".pem"), "it holds %s", target);
    }
    closedir(d);
    /* neither the master key nor the audit signing key is in its memory */
    const char *keys[] = {bf_cfg.master_key, bf_cfg.sign_key};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(keys[k], "re");
        cr_assert_not_null(f);
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        /* (past a PEM file's header and the fixed start of an Ed25519 PKCS#8 key) */
        size_t at = buf[0] == '-' ? 28 + 21 : 0;
        cr_assert_gt(n, at + 20);
        cr_assert_not(s_in_memory(net, buf + at, 20), "%s is in its memory", keys[k]);
    }
    sh_client_destroy(&c);
}

Test(privsep, a_crash_of_the_network_process_loses_nothing_and_it_is_restarted)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    pid_t net = s_net_pid();
    size_t len1, len2;
    uint8_t *ev1 = bf_event(2, "8819990", NULL, &len1), *ev2 = bf_event(2, "8819990", NULL, &len2);
    uint8_t id1[16], id2[16];
    cr_assert(sh_envelope_peek_id(ev1, len1, id1) && sh_envelope_peek_id(ev2, len2, id2));
    sh_msg m;
    bf_publish(school, ev1, len1, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    /* a PUBLISH that kills the network process as it decodes it */
    bf_fault("net_crash", 1);
    cr_assert_eq(sh_client_publish(school, ev2, len2), SH_OK);
    cr_assert_eq(sh_client_expect(school, "CONFIRM", 1000, &m), SH_E_NOT_FOUND, "no answer");
    bf_fault("net_crash", 0);
    /* the core lives on; a new network process serves within a few seconds */
    cr_assert_eq(kill(bf_broker, 0), 0, "the core is running");
    sh_client *again = bf_client(HUB);
    int up = 0;
    for (int i = 0; i < 50 && !up; i++) {
        cr_assert_eq(sh_client_ping(again), SH_OK);
        up = sh_client_expect(again, "PONG", 100, &m) == SH_OK;
    }
    cr_assert(up, "serving again");
    cr_assert_eq(sh_client_hello(again, "*"), SH_OK);
    cr_assert_eq(sh_client_expect(again, "READY", WAIT, &m), SH_OK);
    cr_assert_neq(s_net_pid(), net, "a new network process");
    /* nothing accepted was lost: the delivery the hub never acknowledged comes again; the
     * event the crash cut off is accepted now as new */
    cr_assert_eq(sh_client_expect(again, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_arr_eq(m.frame[0], id1, 16);
    sh_client *school2 = bf_agent(SCHOOL);
    bf_publish(school2, ev2, len2, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert_eq(m.len[2], strlen("accepted"), "accepted, not a duplicate");
    free(ev1);
    free(ev2);
    sh_client_destroy(&school);
    sh_client_destroy(&school2);
    sh_client_destroy(&hub);
    sh_client_destroy(&again);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_ADMIN, SH_E_NET_PROCESS, "signal 6"), 1,
                 "the crash is audited, naming its signal");
    cr_assert_eq(bf_audit_count(SH_AUDIT_ADMIN, 0, "the network process restarted"), 1);
    cr_assert_eq(bf_audit_count(SH_AUDIT_RECEIVE, -1, NULL), 2, "both events, once each");
}
