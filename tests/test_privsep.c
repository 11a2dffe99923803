/*
 * test_privsep.c — the broker's network process (broker/net.h): it alone reads the network,
 * holds nothing of the store (no store file, no key file, no store key in its address space),
 * runs with no new privileges under a seccomp filter; when it crashes on a malicious input
 * (the test hook "net_crash") the core and its store carry on, nothing accepted is lost, the
 * crash is audited and the process is restarted. The metrics and health endpoint's process
 * (common/probe.h) likewise: it, not the core, holds every HTTP connection; killed, it is
 * started again and the core serves on.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "audit.h"
#include "broker_fixture.h"
#include "client.h"
#include "codec.h"
#include "error.h"

TestSuite(privsep, .init = bf_setup, .fini = bf_teardown, .timeout = 60);

#define WAIT 3000

/* The core's child whose command line has flag (the network process's, or the probe
 * process's), or 0. */
static pid_t s_child(const char *flag)
{
    char path[96], buf[256] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)bf_broker, (int)bf_broker);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        char line[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", tok);
        FILE *c = fopen(path, "re");
        if (!c) continue;
        size_t len = fread(line, 1, sizeof line - 1, c);
        fclose(c);
        for (size_t i = 0; i < len; i++)
            if (!line[i]) line[i] = ' ';
        line[len] = '\0';
        if (strstr(line, flag)) return (pid_t)atoi(tok);
    }
    return 0;
}

static pid_t s_net_pid(void)
{
    pid_t pid = s_child("--net-side");
    cr_assert_gt(pid, 0, "the broker has no network process");
    return pid;
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

/* pid runs with no new privileges under a seccomp filter, holds no descriptor of the store or
 * of a key file, and has neither the master key nor the audit signing key in its memory. */
static void s_holds_nothing(pid_t pid)
{
    cr_assert_eq(s_status(pid, "NoNewPrivs:"), 1, "no new privileges");
    /* (valgrind, which the test suite also runs under, does not emulate seccomp: the process
     * says so and runs without its filter there, and only there) */
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "vgpreload"))
        cr_assert_eq(s_status(pid, "Seccomp:"), 2, "a seccomp filter");
    char path[64], target[512];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
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
        cr_assert_not(s_in_memory(pid, buf + at, 20), "%s is in its memory", keys[k]);
    }
}

Test(privsep, the_network_process_holds_nothing_of_the_store_and_is_sandboxed)
{
    sh_client *c = bf_agent(SCHOOL); /* serving: the network process is up */
    s_holds_nothing(s_net_pid());
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

/* ---- the metrics and health endpoint's process ---- */

/* A connection to 127.0.0.1:port, or -1. */
static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Sends request as it is and returns the status of the answer (0: none), its text in text. */
static int s_http(int port, const char *request, char *text, size_t cap)
{
    int fd = s_connect(port);
    if (fd < 0) return 0;
    size_t got = 0;
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request)) {
        ssize_t n;
        while (got + 1 < cap && (n = recv(fd, text + got, cap - 1 - got, 0)) > 0)
            got += (size_t)n;
    }
    close(fd);
    text[got] = '\0';
    int status = 0;
    return sscanf(text, "HTTP/1.%*d %d", &status) == 1 ? status : 0;
}

/* The inode of the server's end of the TCP connection fd has to port (/proc/net/tcp), or 0. */
static unsigned long s_server_inode(int fd, int port)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    FILE *f = fopen("/proc/net/tcp", "re");
    cr_assert_not_null(f);
    char line[512];
    unsigned long found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned lport, rport, st;
        unsigned long inode;
        if (sscanf(line, " %*d: %*8x:%4x %*8x:%4x %2x %*s %*s %*s %*d %*d %lu", &lport, &rport, &st,
                   &inode) == 4 &&
            (int)lport == port && rport == ntohs(me.sin_port))
            found = inode;
    }
    fclose(f);
    return found;
}

/* Whether pid holds the socket with that inode. */
static int s_holds_socket(pid_t pid, unsigned long inode)
{
    char path[64], want[64], target[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    struct dirent *e;
    int held = 0;
    while (!held && (e = readdir(d))) {
        char fd[600];
        snprintf(fd, sizeof fd, "%s/%s", path, e->d_name);
        ssize_t n = readlink(fd, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            held = strcmp(target, want) == 0;
        }
    }
    closedir(d);
    return held;
}

Test(privsep, the_metrics_endpoint_is_a_process_of_its_own_and_a_kill_of_it_is_survived)
{
    bf_stop();
    int port = 2000 + (int)(getpid() % 1900); /* apart from the fixtures' and rigs' ports */
    char listen[32], text[8192];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    bf_cfg.http_listen = listen;
    bf_start();
    pid_t probe = s_child("--http-side");
    cr_assert_gt(probe, 0, "the broker has a probe process");
    /* it answers from the core's state (and, answering, has its sandbox on; under valgrind it
     * takes a few seconds to start) */
    int st = 0;
    for (int i = 0; i < 200 && st != 200; i++, usleep(100000))
        st = s_http(port, "GET /healthz HTTP/1.0\r\n\r\n", text, sizeof text);
    cr_assert_eq(st, 200, "%s", text);
    cr_assert_eq(s_http(port, "GET /readyz HTTP/1.0\r\n\r\n", text, sizeof text), 200, "%s", text);
    cr_assert_eq(s_http(port, "GET /metrics HTTP/1.0\r\n\r\n", text, sizeof text), 200);
    cr_assert_not_null(strstr(text, "\nsharehub_broker_agents_connected 0\n"), "%s", text);
    cr_assert_eq(s_http(port, "DELETE /metrics HTTP/1.0\r\n\r\n", text, sizeof text), 405);
    s_holds_nothing(probe);
    /* a connection open: the probe process holds it, the core does not */
    int fd = s_connect(port);
    cr_assert_geq(fd, 0);
    unsigned long inode = 0;
    for (int i = 0; i < 50 && !inode; i++, usleep(20000))
        inode = s_server_inode(fd, port);
    cr_assert_neq(inode, 0, "the server's end of the connection");
    int held = 0;
    for (int i = 0; i < 50 && !held; i++, usleep(20000))
        held = s_holds_socket(probe, inode);
    cr_assert(held, "the probe process holds the connection");
    cr_assert_not(s_holds_socket(bf_broker, inode), "the core does not");
    close(fd);
    /* what is not HTTP is refused there, and the probe process serves on */
    st = s_http(port, "\x01\x02 not http at all\r\n\r\n", text, sizeof text);
    cr_assert(st == 0 || st == 400, "junk: %d", st);
    cr_assert_eq(s_child("--http-side"), probe, "the same probe process");
    /* killed, it is started again within a couple of seconds; the core serves throughout */
    cr_assert_eq(kill(probe, SIGKILL), 0);
    sh_client *c = bf_agent(SCHOOL);
    st = 0;
    for (int i = 0; i < 200 && st != 200; i++, usleep(100000))
        st = s_http(port, "GET /healthz HTTP/1.0\r\n\r\n", text, sizeof text);
    cr_assert_eq(st, 200, "answering again");
    pid_t again = s_child("--http-side");
    cr_assert(again > 0 && again != probe, "a new probe process");
    s_holds_nothing(again);
    cr_assert_eq(kill(bf_broker, 0), 0, "the core is running");
    cr_assert_eq(s_http(port, "GET /metrics HTTP/1.0\r\n\r\n", text, sizeof text), 200);
    cr_assert_not_null(strstr(text, "\nsharehub_broker_probe_restarts_total 1\n"), "%s", text);
    sh_client_destroy(&c);
    bf_stop();
    bf_cfg.http_listen = NULL;
}
