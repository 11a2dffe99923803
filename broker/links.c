/*
 * links.c — the peer links a broker starts itself (--link LA=KEY: docs/federation.md): one
 * sharehub-link process for each neighbouring authority, carrying what that authority's broker
 * holds for this one into this broker, as a client of both. A link that ends is audited and
 * started again a second later; all are stopped with the broker.
 *
 * Owns: the links' processes. Never: holds a link's key (the link reads its own file) or lets
 * a link outlive the broker (PR_SET_PDEATHSIG, and SIGTERM at stop).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_int.h"
#include "clock.h"
#include "sandbox.h"

/* The endpoint a link reaches this broker on: its first ipc:// endpoint, else its first tcp://
 * one with a wildcard host made loopback. */
static int s_local(const sh_broker *b, char *out, size_t cap)
{
    for (int i = 0; i < 4 && b->cfg.endpoints[i]; i++)
        if (strncmp(b->cfg.endpoints[i], "ipc://", 6) == 0)
            return snprintf(out, cap, "%s", b->cfg.endpoints[i]) < (int)cap ? 0 : -1;
    for (int i = 0; i < 4 && b->cfg.endpoints[i]; i++) {
        const char *ep = b->cfg.endpoints[i], *colon = strrchr(ep, ':');
        if (strncmp(ep, "tcp://", 6) != 0 || !colon) continue;
        int wild = strncmp(ep + 6, "0.0.0.0:", 8) == 0 || strncmp(ep + 6, "*:", 2) == 0;
        int n =
            wild ? snprintf(out, cap, "tcp://127.0.0.1%s", colon) : snprintf(out, cap, "%s", ep);
        return n > 0 && (size_t)n < cap ? 0 : -1;
    }
    return -1;
}

static void s_record(sh_broker *b, sh_err code, const char *what)
{
    sh_error err;
    if (bk_admin_record(b, what, code, 0, &err))
        bk_log("error", "could not audit '%s': %s", what, err.detail);
}

static sh_err s_start(sh_broker *b, bk_peer_link *l, sh_error *err)
{
    char prog[PATH_MAX], self[PATH_MAX], local[300], hb[16];
    snprintf(self, sizeof self, "%s", b->cfg.net_program ? b->cfg.net_program : "/proc/self/exe");
    if (snprintf(prog, sizeof prog, "%s/sharehub-link", dirname(self)) >= (int)sizeof prog ||
        s_local(b, local, sizeof local))
        return sh_error_set(err, SH_E_INVAL, "--link %s: no endpoint a link can reach", l->la);
    snprintf(hb, sizeof hb, "%d", b->cfg.heartbeat_ms);
    const char *argv[] = {"sharehub-link",
                          "--directory",
                          b->cfg.directory,
                          "--federation-key",
                          b->cfg.federation_key,
                          "--authority",
                          b->cfg.authority,
                          "--peer",
                          l->la,
                          "--curve-key",
                          l->key,
                          "--local",
                          local,
                          "--local-key",
                          b->public_key,
                          "--heartbeat-ms",
                          hb,
                          NULL};
    pid_t pid = sh_spawn(prog, argv, NULL, 0);
    if (pid < 0) return sh_error_set(err, SH_E_IO, "starting %s: %s", prog, strerror(errno));
    l->pid = pid;
    return SH_OK;
}

sh_err bk_links_start(sh_broker *b, sh_error *err)
{
    for (size_t i = 0; i < b->npeer_links; i++) {
        sh_err rc = s_start(b, &b->peer_links[i], err);
        if (rc) return rc;
        bk_log("info", "started the link from authority %s", b->peer_links[i].la);
    }
    return SH_OK;
}

void bk_links_watch(sh_broker *b, int64_t now)
{
    for (size_t i = 0; i < b->npeer_links; i++) {
        bk_peer_link *l = &b->peer_links[i];
        int status;
        char what[160];
        if (l->pid > 0 && waitpid(l->pid, &status, WNOHANG) == l->pid) {
            if (WIFSIGNALED(status))
                snprintf(what, sizeof what, "the link from authority %s ended by signal %d (%s)",
                         l->la, WTERMSIG(status), strsignal(WTERMSIG(status)));
            else
                snprintf(what, sizeof what, "the link from authority %s exited with status %d",
                         l->la, WEXITSTATUS(status));
            bk_log("error", "%s: starting it again in a second", what);
            s_record(b, SH_E_IO, what);
            l->pid = 0;
            l->down_ms = now;
            continue;
        }
        if (l->pid > 0 || now - l->down_ms < 1000) continue;
        sh_error err;
        if (s_start(b, l, &err)) {
            bk_log("error", "the link from authority %s did not start: %s", l->la, err.detail);
            l->down_ms = now;
            continue;
        }
        l->restarts++;
        snprintf(what, sizeof what, "the link from authority %s started again", l->la);
        s_record(b, SH_OK, what);
    }
}

void bk_links_stop(sh_broker *b)
{
    for (size_t i = 0; i < b->npeer_links; i++)
        if (b->peer_links[i].pid > 0) kill(b->peer_links[i].pid, SIGTERM);
    for (size_t i = 0; i < b->npeer_links; i++) {
        bk_peer_link *l = &b->peer_links[i];
        int status;
        pid_t r = 0;
        for (int k = 0; k < 150 && l->pid > 0 && (r = waitpid(l->pid, &status, WNOHANG)) == 0; k++)
            usleep(20000);
        if (l->pid > 0 && r == 0) {
            kill(l->pid, SIGKILL);
            waitpid(l->pid, &status, 0);
        }
        l->pid = 0;
        l->down_ms = 0; /* (bk_links_watch starts it again at once) */
    }
}
