/*
 * probe.c — the metrics and health endpoint as a process of its own (probe.h): the daemon's
 * end (listening socket, the process's start and restart, answers from the event loop) and
 * the probe process's (HTTP through http.h, in a sandbox, asking the daemon for each answer).
 *
 * The socket pair carries, one way, a question of 5 bytes: a kind ('M' metrics, 'R'
 * readiness, 'H' health) and a 32-bit big-endian number the probe process chose; the other
 * way, an answer: the kind ('E' for a metrics page that could not be written), the same
 * number, a 32-bit big-endian length and that many bytes (the page, or the reason the daemon
 * is not ready; nothing for 'H' or when ready).
 *
 * Owns: the listening socket, the probe process's pid and the daemon's end of the pair.
 * Never: parses HTTP in the daemon; waits on the probe process longer than ANSWER_MS.
 */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "sandbox.h"
#include "wire.h"

#define ANSWER_MS        1000 /* the longest the daemon's loop waits to hand over one answer */
#define ASK_MS           3000 /* the longest the probe process waits for the daemon's answer */
#define BODY_MAX         (64 << 20) /* an answer longer than this is a broken pair */
#define QUESTIONS_A_TURN 4          /* the most answered in one call of sh_probe_serve */
#define FD_LISTEN        3
#define FD_PAIR          4

struct sh_probe {
    sh_probe_site site;
    char *program, *component;
    int listen_fd, pair; /* pair -1 while the probe process is down */
    pid_t pid;
    int64_t down_ms;
    uint64_t restarts;
    uint8_t q[5];
    size_t nq;
};

/* Writes all of buf to fd by deadline; 0, or -1 (timed out, or the other end is gone). */
static int s_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        int left = (int)(deadline - sh_clock_ms());
        struct pollfd pf = {fd, POLLOUT, 0};
        if (left <= 0 || (poll(&pf, 1, left) < 0 && errno != EINTR)) return -1;
    }
    return 0;
}

/* ---- the daemon's end ---- */

static void s_close_pair(sh_probe *p)
{
    if (p->pair >= 0) close(p->pair);
    p->pair = -1;
    p->nq = 0;
}

static int s_start(sh_probe *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return -1;
    char level[12];
    snprintf(level, sizeof level, "%d", p->site.log_level);
    const char *argv[] = {p->component, SH_PROBE_FLAG, p->component, level, NULL};
    int keep[2] = {p->listen_fd, sv[1]};
    pid_t pid = sh_spawn(p->program, argv, keep, 2);
    int e = errno;
    close(sv[1]);
    if (pid < 0 || fcntl(sv[0], F_SETFL, O_NONBLOCK)) {
        close(sv[0]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        errno = e;
        return -1;
    }
    p->pid = pid;
    p->pair = sv[0];
    p->nq = 0;
    return 0;
}

/* The probe process misbehaved (or is stuck): it is killed, and reaped by sh_probe_serve. */
static void s_kill(sh_probe *p, const char *why)
{
    sh_log(SH_LOG_ERROR, NULL, NULL, "the probe process %s: restarting it", why);
    if (p->pid > 0) kill(p->pid, SIGKILL);
    s_close_pair(p);
}

static void s_answer(sh_probe *p, const uint8_t q[5])
{
    char *body = NULL;
    size_t len = 0;
    uint8_t head[9];
    memcpy(head, q, 5);
    if (q[0] == 'R') {
        const char *why = p->site.not_ready(p->site.ctx);
        const char *more = !why && p->site.ready_detail ? p->site.ready_detail(p->site.ctx) : NULL;
        if (more && *more) { /* ready, with detail: answered as kind 'r' */
            why = more;
            head[0] = 'r';
        }
        if (why && !(body = strdup(why))) return; /* (no answer: it says the daemon is slow) */
        len = body ? strlen(body) : 0;
    } else if (q[0] == 'M') {
        FILE *f = open_memstream(&body, &len);
        if (!f) return;
        int bad = p->site.metrics(p->site.ctx, f);
        if (fclose(f) || bad || len > BODY_MAX) {
            head[0] = 'E';
            len = 0;
        }
    } else if (q[0] != 'H') {
        s_kill(p, "asked an unknown question");
        return;
    }
    sh_be32_put(head + 5, (uint32_t)len);
    int64_t deadline = sh_clock_ms() + ANSWER_MS;
    if (s_write_all(p->pair, head, sizeof head, deadline) ||
        s_write_all(p->pair, body, len, deadline))
        s_kill(p, "did not take its answer within a second");
    free(body);
}

sh_err sh_probe_new(const char *listen, const sh_probe_site *site, sh_probe **out, sh_error *err)
{
    *out = NULL;
    sh_probe *p = calloc(1, sizeof *p);
    if (!p) return sh_error_set(err, SH_E_NOMEM, "probe");
    p->site = *site;
    p->pair = -1;
    p->listen_fd = -1;
    p->component = strdup(site->component);
    p->program = site->program ? strdup(site->program) : NULL;
    sh_err rc = !p->component || (site->program && !p->program)
                    ? sh_error_set(err, SH_E_NOMEM, "probe")
                    : sh_http_listen(listen, &p->listen_fd, err);
    if (!rc && s_start(p))
        rc = sh_error_set(err, SH_E_IO, "the probe process for http://%s did not start: %s", listen,
                          strerror(errno));
    if (rc) {
        sh_probe_destroy(&p);
        return rc;
    }
    *out = p;
    return SH_OK;
}

int sh_probe_fd(const sh_probe *p)
{
    return p->pair;
}

void sh_probe_serve(sh_probe *p, int64_t now)
{
    int status;
    if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid) {
        if (WIFSIGNALED(status))
            sh_log(SH_LOG_ERROR, NULL, NULL,
                   "the probe process ended by signal %d (%s): metrics and health are down "
                   "for a second",
                   WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            sh_log(SH_LOG_ERROR, NULL, NULL,
                   "the probe process exited with status %d: metrics and health are down for "
                   "a second",
                   WEXITSTATUS(status));
        p->pid = 0;
        p->down_ms = now;
        s_close_pair(p);
    }
    if (p->pid <= 0) {
        if (now - p->down_ms < 1000) return;
        if (s_start(p)) {
            sh_log(SH_LOG_ERROR, NULL, NULL, "the probe process did not start: %s",
                   strerror(errno));
            p->down_ms = now;
        } else {
            p->restarts++;
            sh_log(SH_LOG_INFO, NULL, NULL, "the probe process restarted");
        }
        return;
    }
    /* a few questions a call, so that a probe process asking without end cannot take the
     * daemon's loop from its work (the rest wait for the next turn) */
    for (int answered = 0; p->pair >= 0 && answered < QUESTIONS_A_TURN;) {
        ssize_t n = recv(p->pair, p->q + p->nq, sizeof p->q - p->nq, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            s_kill(p, "closed its end");
            break;
        }
        p->nq += (size_t)n;
        if (p->nq < sizeof p->q) continue;
        p->nq = 0;
        s_answer(p, p->q);
        answered++;
    }
}

uint64_t sh_probe_restarts(const sh_probe *p)
{
    return p->restarts;
}

void sh_probe_destroy(sh_probe **pp)
{
    sh_probe *p = *pp;
    if (!p) return;
    s_close_pair(p); /* the probe process reads the end of the pair, and exits */
    if (p->pid > 0) {
        pid_t r = 0;
        for (int i = 0; i < 50 && (r = waitpid(p->pid, NULL, WNOHANG)) == 0; i++)
            usleep(20000);
        if (r == 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
    }
    if (p->listen_fd >= 0) close(p->listen_fd);
    free(p->program);
    free(p->component);
    free(p);
    *pp = NULL;
}

/* ---- the probe process ---- */

typedef struct asker {
    uint32_t seq;
    int broken; /* the pair is out of step, or the daemon is gone: the process ends */
} asker;

/* Reads exactly len bytes by deadline: 0; 1 when nothing came (only when nothing was read);
 * -1 when the pair broke (timed out part way, or the daemon is gone). */
static int s_read_all(void *buf, size_t len, int64_t deadline)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(FD_PAIR, p + got, len - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0) return -1;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        int left = (int)(deadline - sh_clock_ms());
        struct pollfd pf = {FD_PAIR, POLLIN, 0};
        if (left <= 0 || (poll(&pf, 1, left) < 0 && errno != EINTR)) return got ? -1 : 1;
    }
    return 0;
}

/* One answer from the daemon by deadline into kind, seq and body (malloc'd); 0, 1 when none
 * came, -1 when the pair broke. */
static int s_receive(asker *a, int64_t deadline, uint8_t *kind, uint32_t *seq, char **body,
                     size_t *len)
{
    uint8_t head[9];
    int rc = s_read_all(head, sizeof head, deadline);
    if (rc) return rc;
    *kind = head[0];
    *seq = sh_be32_get(head + 1);
    *len = sh_be32_get(head + 5);
    if (*len > BODY_MAX || !(*body = malloc(*len + 1)) || s_read_all(*body, *len, deadline) != 0) {
        if (*len <= BODY_MAX) free(*body);
        *body = NULL;
        a->broken = 1;
        return -1;
    }
    (*body)[*len] = '\0';
    return 0;
}

/* Asks the daemon (kind 'M', 'R' or 'H') and waits up to ASK_MS for its answer; 0, or -1. */
static int s_ask(asker *a, uint8_t q, uint8_t *kind, char **body, size_t *len)
{
    uint8_t ask[5] = {q};
    sh_be32_put(ask + 1, ++a->seq);
    int64_t deadline = sh_clock_ms() + ASK_MS;
    if (s_write_all(FD_PAIR, ask, sizeof ask, deadline)) {
        a->broken = 1;
        return -1;
    }
    for (;;) {
        uint32_t seq = 0;
        int rc = s_receive(a, deadline, kind, &seq, body, len);
        if (rc) {
            if (rc < 0) a->broken = 1;
            return -1;
        }
        if (seq == a->seq) return 0;
        free(*body); /* the late answer to a question that timed out */
        *body = NULL;
    }
}

static unsigned s_text(char **body, size_t *len, unsigned status, const char *text)
{
    *body = strdup(text);
    *len = *body ? strlen(text) : 0;
    return status;
}

static unsigned s_site(void *ctx, const char *path, char **body, size_t *len, const char **ctype)
{
    asker *a = ctx;
    uint8_t q = strcmp(path, "/metrics") == 0   ? 'M'
                : strcmp(path, "/readyz") == 0  ? 'R'
                : strcmp(path, "/healthz") == 0 ? 'H'
                                                : 0;
    if (!q) return s_text(body, len, 404, "not found\n");
    uint8_t kind = 0;
    char *got = NULL;
    size_t n = 0;
    if (s_ask(a, q, &kind, &got, &n))
        return s_text(body, len, 503,
                      q == 'R'   ? "not ready: the daemon did not answer within 3 s\n"
                      : q == 'H' ? "not alive: the daemon did not answer within 3 s\n"
                                 : "the daemon did not answer within 3 s\n");
    if (q == 'H') {
        free(got);
        return s_text(body, len, 200, "ok\n");
    }
    if (q == 'R' && kind == 'r') { /* ready, and what the daemon adds */
        char text[4096];
        snprintf(text, sizeof text, "ready\n%.4000s", got);
        free(got);
        return s_text(body, len, 200, text);
    }
    if (q == 'R') {
        char text[256];
        snprintf(text, sizeof text, n ? "not ready: %.200s\n" : "ready\n", got);
        free(got);
        return s_text(body, len, n ? 503 : 200, text);
    }
    if (kind != 'M') {
        free(got);
        return s_text(body, len, 500, "internal error\n");
    }
    *body = got;
    *len = n;
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}

int sh_probe_main(int argc, char **argv)
{
    if (argc < 2 || fcntl(FD_LISTEN, F_GETFD) < 0 || fcntl(FD_PAIR, F_GETFD) < 0) {
        fprintf(stderr, "sharehub " SH_PROBE_FLAG ": run by a daemon, not by hand\n");
        return 2;
    }
    sh_log_init(argv[0], atoi(argv[1]));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN; /* the daemon reloads; a terminal's HUP is not for this process */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    asker a = {0};
    sh_http *h = NULL;
    sh_error err;
    int filtered = 0;
    if (sh_http_new(FD_LISTEN, s_site, &a, &h, &err) || sh_sandbox_confine(&filtered, &err)) {
        sh_log(SH_LOG_ERROR, NULL, NULL, "the probe process cannot serve: %s", err.detail);
        sh_http_destroy(&h);
        fflush(stderr);
        _exit(1);
    }
    if (!filtered)
        sh_log(SH_LOG_ERROR, NULL, NULL,
               "this kernel has no seccomp (or this is valgrind): no system call filter");
    while (!a.broken) {
        struct pollfd pf[2] = {{sh_http_fd(h), POLLIN, 0}, {FD_PAIR, POLLIN, 0}};
        if (poll(pf, 2, sh_http_wait_ms(h, 1000)) < 0 && errno != EINTR) break;
        if (pf[1].revents) { /* a late answer, or the daemon gone */
            uint8_t kind;
            uint32_t seq;
            char *body = NULL;
            size_t len;
            if (s_receive(&a, sh_clock_ms() + ASK_MS, &kind, &seq, &body, &len) < 0) break;
            free(body);
        }
        sh_http_serve(h);
    }
    sh_http_destroy(&h);
    /* (_exit: after the sandbox, nothing at exit may open a file) */
    fflush(stderr);
    _exit(a.broken ? 1 : 0);
}
