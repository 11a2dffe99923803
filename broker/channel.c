/*
 * channel.c — the core's end of the network process (net.h): starting it as a program of its
 * own, the enrolled keys it answers ZAP from, the messages and counts it hands over, and its
 * restart when it dies.
 *
 * Owns: the channel socket, the network process's pid and its channel directory. Never:
 * reads a message from the network but through the channel; lets the network process inherit
 * a descriptor or a byte of the core's memory (it is a fresh program, every descriptor above
 * stderr closed); restarts it more often than once a second.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_int.h"
#include "clock.h"
#include "net.h"
#include "sandbox.h"

#define READY_MS 10000 /* how long a starting network process may take to bind */

/* Removes the channel directory (its socket first); dir may be an old run's. */
static void s_rmdir(const char *dir)
{
    char sock[PATH_MAX + 3];
    snprintf(sock, sizeof sock, "%s/s", dir);
    unlink(sock);
    rmdir(dir);
}

/* Channel directories a broker that was killed left in the store. */
static void s_sweep(const char *store)
{
    DIR *d = opendir(store);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "net.", 4) == 0) {
            char dir[PATH_MAX];
            if (snprintf(dir, sizeof dir, "%s/%s", store, e->d_name) < (int)sizeof dir)
                s_rmdir(dir);
        }
    if (d) closedir(d);
}

void bk_net_keys(sh_broker *b)
{
    size_t n = sh_registry_key_count(b->registry), cap = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t key[32];
        const sh_org *o = sh_registry_key_at(b->registry, i, key);
        cap += 34 + strlen(o->code) + 32 * o->nsign_keys;
    }
    uint8_t *p = malloc(cap ? cap : 1), *w = p;
    if (!p) {
        bk_log("error", "no memory for the network process's keys (it keeps the old ones)");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const sh_org *o = sh_registry_key_at(b->registry, i, w);
        w += 32;
        *w++ = (uint8_t)strlen(o->code);
        memcpy(w, o->code, strlen(o->code));
        w += strlen(o->code);
        *w++ = (uint8_t)o->nsign_keys;
        for (size_t k = 0; k < o->nsign_keys; k++, w += 32)
            memcpy(w, o->sign_keys[k], 32);
    }
    zmq_send(b->net, "", 0, ZMQ_SNDMORE);
    zmq_send(b->net, "KEYS", 4, ZMQ_SNDMORE);
    zmq_send(b->net, p, cap, 0);
    free(p);
}

/* A control message (net.h): "READY", "FAILED" (its text into why), or "COUNTS". Returns 1
 * for READY, -1 for FAILED, 0 otherwise. */
static int s_control(sh_broker *b, zmq_msg_t *what, zmq_msg_t *data, char *why, size_t cap)
{
    size_t wl = zmq_msg_size(what), dl = data ? zmq_msg_size(data) : 0;
    const char *w = zmq_msg_data(what);
    const uint8_t *d = data ? zmq_msg_data(data) : NULL;
    if (wl == 5 && memcmp(w, "READY", 5) == 0) return 1;
    if (wl == 6 && memcmp(w, "FAILED", 6) == 0) {
        if (why) snprintf(why, cap, "%.*s", (int)(dl < 180 ? dl : 180), (const char *)d);
        return -1;
    }
    if (wl == 6 && memcmp(w, "COUNTS", 6) == 0 && dl == 8 * BK_NET_COUNTS) {
        uint64_t c[BK_NET_COUNTS];
        for (int i = 0; i < BK_NET_COUNTS; i++)
            c[i] = sh_be64_get(d + 8 * i);
        /* the counts admission.c audits and stats.c reports */
        b->refused_key += (unsigned)c[0];
        b->refused_key_total += c[0];
        b->refused_handshake += (unsigned)c[1];
        b->refused_handshake_total += c[1];
        b->interrupted += (unsigned)c[2];
        b->interrupted_total += c[2];
        b->failed_total += c[3];
        b->closed_total += c[4];
        b->dropped_sends += (unsigned)c[5];
        b->dropped_total += c[5];
        if (c[0] && b->refused_key == c[0])
            bk_log("warning", "connection refused: key not enrolled");
        if (c[1] && b->refused_handshake == c[1])
            bk_log("warning", "connection refused: handshake failed (no CURVE, or not ZMTP)");
        if (c[2] && b->interrupted == c[2])
            bk_log("info", "a connection closed during its handshake (the peer went away)");
    }
    return 0;
}

void bk_inbound_close(bk_inbound *in)
{
    for (size_t i = 0; i < in->n; i++)
        zmq_msg_close(&in->parts[i]);
    zmq_msg_close(&in->key);
    zmq_msg_close(&in->verdict);
    in->n = 0;
}

int bk_net_recv(sh_broker *b, bk_inbound *in, int wait)
{
    in->n = 0;
    zmq_msg_init(&in->key);
    zmq_msg_init(&in->verdict);
    zmq_msg_init(&in->parts[0]);
    if (zmq_msg_recv(&in->parts[0], b->net, wait ? 0 : ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&in->parts[0]);
        return 0;
    }
    in->n = 1;
    int more = zmq_msg_more(&in->parts[0]), control = zmq_msg_size(&in->parts[0]) == 0;
    /* routing id, then key and verdict (or a control message's name and data), then the
     * agent's frames; frames past any command's are read and dropped */
    zmq_msg_t *head[2] = {&in->key, &in->verdict};
    for (int h = 0; h < 2 && more; h++) {
        if (zmq_msg_recv(head[h], b->net, 0) < 0) return -1;
        more = zmq_msg_more(head[h]);
    }
    while (more) {
        zmq_msg_t scratch, *m = in->n < BK_FRAMES_MAX ? &in->parts[in->n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, b->net, 0) < 0) {
            zmq_msg_close(m);
            return -1;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            in->n++;
    }
    if (!control) return zmq_msg_size(&in->key) == 32 && zmq_msg_size(&in->verdict) ? 1 : -1;
    return 2;
}

int bk_net_control(sh_broker *b, bk_inbound *in, char *why, size_t cap)
{
    return s_control(b, &in->key, &in->verdict, why, cap);
}

/* Starts the network process and waits until it serves (or says why it cannot). */
sh_err bk_net_start(sh_broker *b, sh_error *err)
{
    char dir[PATH_MAX], ep[PATH_MAX + 8];
    int n = snprintf(dir, sizeof dir, "%s/net.XXXXXX", b->cfg.store_dir);
    /* an ipc:// path must fit a sockaddr_un (108 bytes) */
    if (n < 0 || (size_t)n + 2 >= 108)
        return sh_error_set(err, SH_E_INVAL,
                            "--store %s: too long a path for the network process's channel (at "
                            "most 90 bytes)",
                            b->cfg.store_dir);
    if (!mkdtemp(dir)) return sh_error_set(err, SH_E_IO, "%s: %s", dir, strerror(errno));
    snprintf(ep, sizeof ep, "ipc://%s/s", dir);
    /* from the network process, a bounded queue (it waits, and so do the agents, when the
     * core falls behind); to it, none: the core never waits (net.c) */
    int zero = 0, inbound = 1000, linger = 0;
    if (b->net) zmq_close(b->net);
    b->net = zmq_socket(b->ctx, ZMQ_PAIR);
    if (!b->net || zmq_setsockopt(b->net, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(b->net, ZMQ_SNDHWM, &zero, sizeof zero) ||
        zmq_setsockopt(b->net, ZMQ_RCVHWM, &inbound, sizeof inbound) || zmq_bind(b->net, ep)) {
        s_rmdir(dir);
        return sh_error_set(err, SH_E_IO, "channel %s: %s", ep, zmq_strerror(zmq_errno()));
    }
    char level[8];
    snprintf(level, sizeof level, "%d", b->cfg.log_level);
    const char *argv[6 + 4] = {"sharehub-broker", BK_NET_FLAG, ep, b->cfg.curve_key, level};
    size_t na = 5;
    for (int i = 0; i < 4 && b->cfg.endpoints[i]; i++)
        argv[na++] = b->cfg.endpoints[i];
    argv[na] = NULL;
    pid_t pid = sh_spawn(b->cfg.net_program, argv, NULL, 0);
    if (pid < 0) {
        s_rmdir(dir);
        return sh_error_set(err, SH_E_IO, "fork: %s", strerror(errno));
    }
    b->net_pid = pid;
    bk_net_keys(b);
    char why[200] = "";
    int state = 0, status = 0;
    for (int64_t until = sh_clock_ms() + READY_MS; !state && sh_clock_ms() < until;) {
        zmq_pollitem_t it = {b->net, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) > 0) {
            bk_inbound in;
            if (bk_net_recv(b, &in, 0) == 2) state = bk_net_control(b, &in, why, sizeof why);
            bk_inbound_close(&in);
        } else if (waitpid(pid, &status, WNOHANG) == pid) {
            b->net_pid = 0;
            snprintf(why, sizeof why, "it exited (status %d) before serving: see its log",
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            state = -1;
        }
    }
    /* the channel is connected; with its path gone nothing else can connect (zmq_unbind would
     * close the connection too) */
    s_rmdir(dir);
    if (state == 1) return SH_OK;
    bk_net_stop(b);
    return sh_error_set(err, SH_E_IO, "network process: %s",
                        why[0] ? why : "not serving after 10 s");
}

void bk_net_stop(sh_broker *b)
{
    if (b->net_pid > 0) {
        kill(b->net_pid, SIGTERM);
        int status;
        pid_t r = 0;
        for (int i = 0; i < 50 && (r = waitpid(b->net_pid, &status, WNOHANG)) == 0; i++)
            usleep(20000);
        if (r == 0) {
            kill(b->net_pid, SIGKILL);
            waitpid(b->net_pid, &status, 0);
        }
    }
    b->net_pid = 0;
}

sh_err bk_net_open(sh_broker *b, sh_error *err)
{
    s_sweep(b->cfg.store_dir);
    return bk_net_start(b, err);
}

/* Records the network process's end or restart in the audit log. */
static void s_record(sh_broker *b, sh_err code, const char *detail)
{
    sh_error err;
    if (bk_admin_record(b, detail, code, 0, &err))
        bk_log("error", "could not audit '%s': %s", detail, err.detail);
}

void bk_net_watch(sh_broker *b, int64_t now)
{
    int status;
    if (b->net_pid > 0 && waitpid(b->net_pid, &status, WNOHANG) == b->net_pid) {
        char detail[120];
        if (WIFSIGNALED(status))
            snprintf(detail, sizeof detail, "the network process ended by signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(detail, sizeof detail, "the network process exited with status %d",
                     WEXITSTATUS(status));
        bk_log("error", "%s: every connection is gone; restarting it", detail);
        b->net_pid = 0;
        b->net_down_ms = now;
        /* its connections went with it: their sessions, and what was in flight on them (the
         * queue keeps every delivery until it is acknowledged) */
        while (b->nsessions)
            bk_session_drop(b, b->nsessions - 1);
        s_record(b, SH_E_NET_PROCESS, detail);
        return;
    }
    if (b->net_pid > 0 || now - b->net_down_ms < 1000) return;
    sh_error err;
    if (bk_net_start(b, &err)) {
        bk_log("error", "the network process did not restart: %s (tried again in a second)",
               err.detail);
        b->net_down_ms = sh_clock_ms();
        return;
    }
    b->net_restarts++;
    bk_log("info", "the network process restarted");
    s_record(b, SH_OK, "the network process restarted");
}
