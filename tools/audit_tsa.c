/*
 * audit_tsa.c — time from outside (docs/audit-format.md, "Time-stamps"): `sharehub audit
 * timestamp` has an RFC 3161 authority stamp a store's newest signed head and keeps the token
 * beside the store (timestamps/<seq>.tsr); `audit verify --tsa-ca` checks every token kept.
 *
 * Owns: the store's timestamps/ directory. Never: stamps a log that does not verify; keeps a
 * token it has not checked (digest, nonce, signature, chain); takes a token's word for an entry
 * the log no longer holds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auditor.h"
#include "cli.h"
#include "crypto.h"
#include "tstamp.h"

#define TOKEN_MAX (64 * 1024) /* a TimeStampResp with its certificates fits easily */

/* The hash of entry seq of l's log, into hash; SH_E_NOT_FOUND past its end (*last: the end). */
typedef struct s_find {
    uint64_t seq;
    uint8_t hash[32];
    int found;
} s_find;

static int s_take(void *ctx, const sh_audit_record *r)
{
    s_find *f = ctx;
    if (r->seq == f->seq) {
        memcpy(f->hash, r->mac, 32);
        f->found = 1;
    }
    return 1; /* one entry is enough */
}

static sh_err s_entry_hash(sh_alog *l, uint64_t seq, uint8_t hash[32], uint64_t *last,
                           sh_error *err)
{
    sh_txn *t = NULL;
    uint8_t mac[SH_MAC_BYTES];
    sh_err rc = sh_txn_begin(l->store, 0, &t, err);
    if (!rc) rc = sh_audit_head(l->audit, t, last, mac, err);
    sh_txn_abort(&t);
    if (rc) return rc;
    if (seq == 0 || seq > *last) return SH_E_NOT_FOUND;
    s_find f = {.seq = seq};
    sh_audit_report rep = {0};
    rc = sh_audit_scan(l->audit, seq, s_take, &f, &rep);
    if (rc) return sh_error_set(err, rc, "entry %" PRIu64 ": %s", seq, rep.detail);
    if (!f.found) rc = SH_E_NOT_FOUND;
    if (!rc) memcpy(hash, f.hash, 32);
    return rc;
}

/* Runs cmd under /bin/sh with in[0..inlen) on its standard input; its standard output into
 * *out (malloc'd, at most TOKEN_MAX). 0, or -1 with why. */
static int s_run(const char *cmd, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                 char *why, size_t cap)
{
    int to[2], from[2];
    *out = NULL;
    *outlen = 0;
    if (pipe(to) != 0 || pipe(from) != 0) {
        snprintf(why, cap, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    if (pid < 0) {
        close(to[1]);
        close(from[0]);
        snprintf(why, cap, "fork: %s", strerror(errno));
        return -1;
    }
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &ign, &old);
    ssize_t w = write(to[1], in, inlen); /* (a request is a few dozen bytes: the pipe holds it) */
    close(to[1]);
    uint8_t *buf = malloc(TOKEN_MAX);
    size_t len = 0;
    ssize_t r = 0;
    while (buf && len < TOKEN_MAX && (r = read(from[0], buf + len, TOKEN_MAX - len)) > 0)
        len += (size_t)r;
    close(from[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    sigaction(SIGPIPE, &old, NULL);
    if (!buf || w != (ssize_t)inlen || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !len) {
        snprintf(why, cap, "the --tsa-command %s",
                 !buf                  ? "could not be read: no memory"
                 : w != (ssize_t)inlen ? "did not read the request"
                 : !len                ? "answered nothing"
                                       : "failed (exit status not 0)");
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Writes the token for entry seq into dir/timestamps/, atomically. */
static int s_keep(const char *dir, uint64_t seq, const uint8_t *tok, size_t len, char *path,
                  size_t cap, char *why, size_t wcap)
{
    char tsdir[4096], tmp[4200];
    snprintf(tsdir, sizeof tsdir, "%s/timestamps", dir);
    if (mkdir(tsdir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, wcap, "%.120s: %s", tsdir, strerror(errno));
        return -1;
    }
    snprintf(path, cap, "%s/%020" PRIu64 ".tsr", tsdir, seq);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, tok, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(why, wcap, "%.120s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int sh_audit_timestamp_main(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *dir = NULL, *cmd = NULL, *ca = NULL;
    size_t npos = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--tsa-command", CLI_TEXT, &cmd, 0, 0},
                            {"--tsa-ca", CLI_TEXT, &ca, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit timestamp",
        "usage: sharehub audit timestamp STORE --tsa-command CMD --tsa-ca PEM\n"
        "                                (--keyring FILE | --master KEY --sign-key PEM)\n"
        "  Has an RFC 3161 time-stamping authority stamp the store's newest signed head: CMD\n"
        "  (run by /bin/sh) reads the DER request on its standard input and writes the DER\n"
        "  response, e.g. curl -s -H 'Content-Type: application/timestamp-query'\n"
        "  --data-binary @- https://tsa.example/. The response is checked against the\n"
        "  authority's certificates in PEM and kept as STORE/timestamps/<seq>.tsr; `audit\n"
        "  verify --tsa-ca PEM` checks every one kept. Run it from a timer (docs/operations.md).\n",
        opts,
        1,
        1,
        "STORE"};
    int prc = cli_parse(&c, argc, argv, &dir, &npos);
    if (prc != CLI_RUN || (prc = sh_auth_given(&c, &auth)) != CLI_RUN) return prc;
    if (!cmd || !ca)
        return cli_usage(&c, "missing option '%s'", !cmd ? "--tsa-command" : "--tsa-ca");
    sh_alog l;
    sh_error err = {0};
    sh_audit_report rep = {0};
    char why[256] = "", path[4200] = "", when[32];
    uint8_t hash[32], digest[32], *req = NULL, *tok = NULL;
    size_t reqlen = 0, toklen = 0;
    uint64_t last = 0;
    int64_t gen_ms = 0;
    int rc = SH_EXIT_FAILED;
    if (sh_alog_open(dir, &auth, &l, &err)) {
        fprintf(stderr, "sharehub audit timestamp: %s\n", err.detail);
        sh_auth_free(&auth);
        return SH_EXIT_FAILED;
    }
    if (sh_alog_verify(&l, 0, &rep) != SH_OK) {
        snprintf(why, sizeof why, "the log does not verify (E%03d at entry %" PRIu64 ": %s)",
                 (int)rep.result, rep.bad_seq, rep.detail);
    } else if (!rep.last_checkpoint_seq) {
        snprintf(why, sizeof why, "the log has no signed head yet");
    } else if (s_entry_hash(&l, rep.last_checkpoint_seq, hash, &last, &err) != SH_OK) {
        snprintf(why, sizeof why, "entry %" PRIu64 ": %s", rep.last_checkpoint_seq, err.detail);
    } else {
        sh_tstamp_digest(sh_store_id(l.store), rep.last_checkpoint_seq, hash, digest);
        if (sh_tstamp_request(digest, &req, &reqlen, &err) != SH_OK)
            snprintf(why, sizeof why, "%s", err.detail);
        else if (s_run(cmd, req, reqlen, &tok, &toklen, why, sizeof why) == 0) {
            if (sh_tstamp_check(tok, toklen, digest, req, reqlen, ca, &gen_ms, &err) != SH_OK)
                snprintf(why, sizeof why, "E%03d %s: %s", (int)err.code, sh_err_name(err.code),
                         err.detail);
            else if (s_keep(dir, rep.last_checkpoint_seq, tok, toklen, path, sizeof path, why,
                            sizeof why) == 0)
                rc = SH_EXIT_OK;
        }
    }
    if (rc == SH_EXIT_OK) {
        sh_iso_time(gen_ms, when);
        printf("%s: head %" PRIu64 " time-stamped at %s: %s\n", sh_alog_label(&l),
               rep.last_checkpoint_seq, when, path);
    } else {
        fprintf(stderr, "sharehub audit timestamp: %s: %s\n", dir, why);
    }
    free(req);
    free(tok);
    sh_alog_close(&l);
    sh_auth_free(&auth);
    return rc;
}

void sh_alog_check_timestamps(sh_alog *l, const char *ca, sh_audit_report *rep)
{
    char tsdir[4096];
    snprintf(tsdir, sizeof tsdir, "%s/timestamps", l->dir);
    DIR *d = opendir(tsdir);
    struct dirent *e;
    size_t ok = 0;
    uint64_t newest = 0;
    int64_t newest_ms = 0;
    while (d && rep->result == SH_OK && (e = readdir(d))) {
        char *end = NULL;
        uint64_t seq = strtoull(e->d_name, &end, 10);
        if (!end || strcmp(end, ".tsr") != 0 || end - e->d_name != 20) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", tsdir, e->d_name);
        FILE *f = fopen(path, "rb");
        uint8_t *tok = malloc(TOKEN_MAX);
        size_t len = f && tok ? fread(tok, 1, TOKEN_MAX, f) : 0;
        if (f) fclose(f);
        uint8_t hash[32], digest[32];
        uint64_t last = 0;
        int64_t gen_ms = 0;
        sh_error err = {0};
        sh_err rc = s_entry_hash(l, seq, hash, &last, &err);
        if (rc == SH_E_NOT_FOUND) {
            rc = sh_error_set(&err, SH_E_TIMESTAMP,
                              "%s stamps entry %" PRIu64 ", past the log's end (%" PRIu64
                              "): the log was cut back",
                              e->d_name, seq, last);
        } else if (!rc) {
            sh_tstamp_digest(sh_store_id(l->store), seq, hash, digest);
            rc = sh_tstamp_check(tok, len, digest, NULL, 0, ca, &gen_ms, &err);
        }
        free(tok);
        if (rc) {
            rep->result = rc == SH_E_KEY_MISSING ? rc : SH_E_TIMESTAMP;
            rep->bad_seq = seq;
            snprintf(rep->detail, sizeof rep->detail, "%.40s: %.150s", e->d_name, err.detail);
            break;
        }
        ok++;
        if (seq > newest) newest = seq, newest_ms = gen_ms;
    }
    if (d) closedir(d);
    if (rep->result != SH_OK) return;
    size_t n = strlen(rep->detail);
    char when[32] = "";
    if (ok) sh_iso_time(newest_ms, when);
    if (ok)
        snprintf(rep->detail + n, sizeof rep->detail - n,
                 "%s%zu time-stamps check (newest: entry %" PRIu64 " at %s)", n ? "; " : "", ok,
                 newest, when);
    else
        snprintf(rep->detail + n, sizeof rep->detail - n, "%sno time-stamps", n ? "; " : "");
}
