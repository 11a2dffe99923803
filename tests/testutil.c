/*
 * testutil.c — see testutil.h.
 */
#define _GNU_SOURCE /* asprintf */
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "synth.h"

char *tu_tmpdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/sharehub-test-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
    cr_assert_not_null(mkdtemp(p), "mkdtemp failed");
    return p;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmrf(const char *path)
{
    if (path) nftw(path, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

sh_key *tu_key(void)
{
    uint8_t raw[SH_KEY_BYTES];
    sh_key *k = NULL;
    cr_assert_eq(sh_random(raw, sizeof raw), SH_OK);
    cr_assert_eq(sh_key_from_bytes(raw, &k), SH_OK);
    return k;
}

char *tu_path(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

typedef struct raw {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
} raw;

static int s_raw_open(raw *r, const char *dir, const char *db)
{
    memset(r, 0, sizeof *r);
    int rc = mdb_env_create(&r->env);
    if (!rc) rc = mdb_env_set_maxdbs(r->env, SH_STORE_MAX_DBS);
    if (!rc) rc = mdb_env_set_mapsize(r->env, (size_t)1 << 30);
    if (!rc) rc = mdb_env_open(r->env, dir, 0, 0600);
    if (!rc) rc = mdb_txn_begin(r->env, NULL, 0, &r->txn);
    if (!rc) rc = mdb_dbi_open(r->txn, db, 0, &r->dbi);
    return rc;
}

static int s_raw_close(raw *r, int rc)
{
    if (r->txn) {
        if (rc == 0)
            rc = mdb_txn_commit(r->txn);
        else
            mdb_txn_abort(r->txn);
    }
    if (r->env) mdb_env_close(r->env);
    return rc;
}

int tu_raw_get(const char *dir, const char *db, const void *key, size_t klen, uint8_t *out,
               size_t cap, size_t *len)
{
    raw r;
    MDB_val k = {klen, (void *)key}, v;
    int rc = s_raw_open(&r, dir, db);
    if (!rc) rc = mdb_get(r.txn, r.dbi, &k, &v);
    if (!rc && v.mv_size > cap) rc = ENOMEM;
    if (!rc) {
        memcpy(out, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    if (r.txn) mdb_txn_abort(r.txn);
    r.txn = NULL;
    return s_raw_close(&r, rc);
}

int tu_raw_put(const char *dir, const char *db, const void *key, size_t klen, const void *val,
               size_t vlen)
{
    raw r;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = s_raw_open(&r, dir, db);
    if (!rc) rc = mdb_put(r.txn, r.dbi, &k, &v, 0);
    return s_raw_close(&r, rc);
}

int tu_raw_del(const char *dir, const char *db, const void *key, size_t klen)
{
    raw r;
    MDB_val k = {klen, (void *)key};
    int rc = s_raw_open(&r, dir, db);
    if (!rc) rc = mdb_del(r.txn, r.dbi, &k, NULL);
    return s_raw_close(&r, rc);
}

int tu_raw_flip(const char *dir, const char *db, const void *key, size_t klen, size_t at,
                uint8_t mask)
{
    uint8_t buf[1 << 16];
    size_t n = 0;
    int rc = tu_raw_get(dir, db, key, klen, buf, sizeof buf, &n);
    if (rc) return rc;
    if (at >= n) return EINVAL;
    buf[at] ^= mask;
    return tu_raw_put(dir, db, key, klen, buf, n);
}

void tu_be64(uint64_t v, uint8_t out[8])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

sh_envelope *tu_envelope(int t)
{
    uint64_t rng = 42 + (uint64_t)t;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    sh_envelope *e = NULL;
    cr_assert_eq(sh_synth_event(&rng, t, &c, "RH8", NULL, NULL, 0, &buf, &len, &err), SH_OK,
                 "synth type %d: %s", t, err.detail);
    cr_assert_eq(sh_envelope_decode(buf, len, &e, &err), SH_OK, "decode type %d: %s", t,
                 err.detail);
    free(buf);
    return e;
}

int tu_cli(char **out, const char *const *args)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = SHAREHUB_CLI;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && (r = read(fd[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    close(fd[0]);
    if (buf) buf[len] = '\0';
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
