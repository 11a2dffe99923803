/* test_store.c — the encrypted LMDB store: round trips, batched durable commits (including a
 * crash after commit and a crash before it), tampering on disk, wrong key, map full, disk
 * full, cursors, blinding. */
#define _GNU_SOURCE /* unshare */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

static char *dir;
static sh_key *master;

static void setup(void)
{
    dir = tu_tmpdir();
    master = tu_key();
}

static void teardown(void)
{
    tu_rmrf(dir);
    free(dir);
    sh_key_destroy(&master);
}

static sh_store *s_open(size_t map)
{
    sh_store_opts o = {.map_size = map};
    sh_store *s = NULL;
    sh_error err;
    cr_assert_eq(sh_store_open(dir, master, &o, &s, &err), SH_OK, "%s", err.detail);
    return s;
}

static void s_key(unsigned i, char out[16])
{
    snprintf(out, 16, "k%08u", i);
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, put_get_sealed_and_plain)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db sealed, plain;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &sealed, &err), SH_OK);
    cr_assert_eq(sh_store_db(s, "index", SH_DB_PLAIN, &plain, &err), SH_OK);
    sh_db again;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &again, &err), SH_OK);
    cr_assert_eq(again, sealed, "reopening a name gives the same handle");
    cr_assert_eq(sh_store_db(s, "events", SH_DB_PLAIN, &again, &err), SH_E_INVAL);

    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, sealed, "a", 1, "secret narrative", 16, 0, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, plain, "a", 1, "public", 6, 0, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, sealed, "empty", 5, "", 0, 0, &err), SH_OK);
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail);
    cr_assert_null(t);

    sh_buf b = {0};
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, sealed, "a", 1, &b, &err), SH_OK);
    cr_assert_eq(b.len, 16);
    cr_assert_arr_eq(b.data, "secret narrative", 16);
    cr_assert_eq(sh_txn_get(t, plain, "a", 1, &b, &err), SH_OK);
    cr_assert_arr_eq(b.data, "public", 6);
    cr_assert_eq(sh_txn_get(t, sealed, "empty", 5, &b, &err), SH_OK);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(sh_txn_get(t, sealed, "nope", 4, &b, &err), SH_E_NOT_FOUND);
    cr_assert_eq(sh_txn_put(t, sealed, "b", 1, "x", 1, 0, &err), SH_E_TXN, "read-only txn");
    cr_assert_eq(sh_txn_del(t, sealed, "a", 1, &err), SH_E_TXN);
    sh_txn_abort(&t);
    cr_assert_null(t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
    cr_assert_null(s);

    /* On disk, the sealed value is not there in clear; the plain one is. */
    uint8_t raw[256];
    size_t n = 0;
    cr_assert_eq(tu_raw_get(dir, "events", "a", 1, raw, sizeof raw, &n), 0);
    cr_assert_eq(n, 16 + SH_SEAL_OVERHEAD);
    cr_assert_null(memmem(raw, n, "secret", 6), "plaintext found on disk");
    cr_assert_eq(tu_raw_get(dir, "index", "a", 1, raw, sizeof raw, &n), 0);
    cr_assert_eq(n, 6);
}

Test(store, argument_checks)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "Bad-Name", SH_DB_SEALED, &db, &err), SH_E_INVAL);
    cr_assert_eq(sh_store_db(s, "", SH_DB_SEALED, &db, &err), SH_E_INVAL);
    cr_assert_eq(sh_store_db(s, "x2345678901234567890123456789012", SH_DB_SEALED, &db, &err),
                 SH_E_INVAL, "32 characters");
    cr_assert_eq(sh_store_db(s, "ok", 7, &db, &err), SH_E_INVAL, "unknown flags");
    cr_assert_eq(sh_store_db(s, "ok", SH_DB_SEALED, &db, &err), SH_OK);
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    uint8_t big[512] = {0};
    cr_assert_eq(sh_txn_put(t, db, big, 0, "x", 1, 0, &err), SH_E_INVAL, "empty key");
    cr_assert_eq(sh_txn_put(t, db, big, 512, "x", 1, 0, &err), SH_E_INVAL, "512-byte key");
    cr_assert_eq(sh_txn_put(t, db, big, 511, "x", 1, 0, &err), SH_OK, "511-byte key");
    cr_assert_eq(sh_txn_put(t, 99, "k", 1, "x", 1, 0, &err), SH_E_INVAL, "unknown handle");
    sh_txn_abort(&t);
    sh_store_destroy(&s);
}

Test(store, put_new_refuses_overwrite_and_keeps_txn)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    sh_txn *t = NULL;
    sh_buf b = {0};
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, db, "id", 2, "first", 5, SH_PUT_NEW, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, db, "id", 2, "second", 6, SH_PUT_NEW, &err), SH_E_EXISTS);
    cr_assert_eq(sh_txn_put(t, db, "id2", 3, "other", 5, SH_PUT_NEW, &err), SH_OK,
                 "the transaction is still usable");
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, db, "id", 2, &b, &err), SH_OK);
    cr_assert_arr_eq(b.data, "first", 5, "the first value stands");
    sh_txn_abort(&t);
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, db, "id", 2, "third", 5, SH_PUT_OVERWRITE, &err), SH_OK);
    cr_assert_eq(sh_txn_del(t, db, "id2", 3, &err), SH_OK);
    cr_assert_eq(sh_txn_del(t, db, "id2", 3, &err), SH_E_NOT_FOUND);
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, db, "id", 2, &b, &err), SH_OK);
    cr_assert_arr_eq(b.data, "third", 5);
    cr_assert_eq(sh_txn_get(t, db, "id2", 3, &b, &err), SH_E_NOT_FOUND);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
}

/* Writes n values k00000000.. in one batch and commits. */
static void s_batch(sh_store *s, sh_db db, unsigned from, unsigned n, int commit)
{
    sh_txn *t = NULL;
    sh_error err;
    char key[16], val[64];
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    for (unsigned i = from; i < from + n; i++) {
        s_key(i, key);
        int vl = snprintf(val, sizeof val, "value number %u", i);
        cr_assert_eq(sh_txn_put(t, db, key, strlen(key), val, (size_t)vl, 0, &err), SH_OK);
    }
    if (commit)
        cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail);
    else
        sh_txn_abort(&t);
}

static unsigned s_count(sh_store *s, sh_db db)
{
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    unsigned n = 0;
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_cursor_open(t, db, &c, &err), SH_OK);
    for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
         rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
        char want[64];
        int wl = snprintf(want, sizeof want, "value number %u", atoi((const char *)kv.key + 1));
        cr_assert_eq(kv.vlen, (size_t)wl);
        cr_assert_arr_eq(kv.val, want, (size_t)wl);
        n++;
    }
    sh_cursor_close(&c);
    sh_txn_abort(&t);
    return n;
}

Test(store, group_commit_is_durable_across_reopen)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_batch(s, db, 0, 5000, 1);
    s_batch(s, db, 5000, 100, 0); /* aborted: never lands */
    sh_store_destroy(&s);
    s = s_open(0);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    cr_assert_eq(s_count(s, db), 5000);
    sh_store_destroy(&s);
}

Test(store, crash_after_commit_keeps_the_batch_crash_before_loses_it_whole)
{
    /* A child process writes a batch; one is killed right after commit returns, the other
     * in the middle of its batch. Neither closes the store. */
    for (int commit = 1; commit >= 0; commit--) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            sh_store *s = NULL;
            sh_error err;
            sh_db db;
            if (sh_store_open(dir, master, NULL, &s, &err) ||
                sh_store_db(s, "events", 0, &db, &err))
                _exit(3);
            sh_txn *t = NULL;
            if (sh_txn_begin(s, 1, &t, &err)) _exit(4);
            char key[16];
            for (unsigned i = 0; i < 1000; i++) {
                s_key(commit ? i : 1000 + i, key);
                char val[64];
                int vl = snprintf(val, sizeof val, "value number %u", commit ? i : 1000 + i);
                if (sh_txn_put(t, db, key, strlen(key), val, (size_t)vl, 0, &err)) _exit(5);
            }
            if (commit && sh_txn_commit(&t, &err)) _exit(6);
            kill(getpid(), SIGKILL);
            _exit(7);
        }
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    }
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    cr_assert_eq(s_count(s, db), 1000, "the committed batch whole, nothing of the other");
    sh_store_destroy(&s);
}

Test(store, damaged_values_are_never_returned)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_batch(s, db, 0, 3, 1);
    sh_store_destroy(&s);

    char k0[16], k1[16], k2[16];
    s_key(0, k0);
    s_key(1, k1);
    s_key(2, k2);
    /* flip one bit in the ciphertext of k0; swap the values of k1 and k2 */
    cr_assert_eq(tu_raw_flip(dir, "events", k0, strlen(k0), SH_SEAL_HEADER + 2, 0x04), 0);
    uint8_t v1[256], v2[256];
    size_t n1, n2;
    cr_assert_eq(tu_raw_get(dir, "events", k1, strlen(k1), v1, sizeof v1, &n1), 0);
    cr_assert_eq(tu_raw_get(dir, "events", k2, strlen(k2), v2, sizeof v2, &n2), 0);
    cr_assert_eq(tu_raw_put(dir, "events", k1, strlen(k1), v2, n2), 0);
    cr_assert_eq(tu_raw_put(dir, "events", k2, strlen(k2), v1, n1), 0);

    s = s_open(0);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    sh_txn *t = NULL;
    sh_buf b = {0};
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, db, k0, strlen(k0), &b, &err), SH_E_AUTH_FAILED);
    cr_assert_eq(b.len, 0);
    cr_assert_not_null(strstr(err.detail, "events"), "%s", err.detail);
    cr_assert_eq(sh_txn_get(t, db, k1, strlen(k1), &b, &err), SH_E_AUTH_FAILED, "swapped");
    cr_assert_eq(sh_txn_get(t, db, k2, strlen(k2), &b, &err), SH_E_AUTH_FAILED, "swapped");
    /* a cursor names the damaged key and can step past it */
    sh_cursor *c = NULL;
    sh_kv kv;
    cr_assert_eq(sh_cursor_open(t, db, &c, &err), SH_OK);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err), SH_E_AUTH_FAILED);
    cr_assert_eq(kv.klen, 9, "the damaged key is named");
    cr_assert_null(kv.val, "no value is returned");
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err), SH_E_AUTH_FAILED);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err), SH_E_AUTH_FAILED);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err), SH_E_NOT_FOUND);
    sh_cursor_close(&c);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
}

Test(store, value_moved_to_another_database_fails)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db a, b2;
    cr_assert_eq(sh_store_db(s, "alpha", SH_DB_SEALED, &a, &err), SH_OK);
    cr_assert_eq(sh_store_db(s, "beta", SH_DB_SEALED, &b2, &err), SH_OK);
    s_batch(s, a, 0, 1, 1);
    s_batch(s, b2, 7, 1, 1);
    sh_store_destroy(&s);
    char k[16];
    s_key(0, k);
    uint8_t v[256];
    size_t n;
    cr_assert_eq(tu_raw_get(dir, "alpha", k, strlen(k), v, sizeof v, &n), 0);
    cr_assert_eq(tu_raw_put(dir, "beta", k, strlen(k), v, n), 0);
    s = s_open(0);
    cr_assert_eq(sh_store_db(s, "beta", SH_DB_SEALED, &b2, &err), SH_OK);
    sh_txn *t = NULL;
    sh_buf b = {0};
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, b2, k, strlen(k), &b, &err), SH_E_AUTH_FAILED);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
}

Test(store, wrong_master_key_is_refused)
{
    sh_store *s = s_open(0);
    uint8_t id[SH_STORE_ID_BYTES];
    memcpy(id, sh_store_id(s), sizeof id);
    sh_store_destroy(&s);
    sh_key *other = tu_key();
    sh_error err;
    cr_assert_eq(sh_store_open(dir, other, NULL, &s, &err), SH_E_WRONG_KEY);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err.detail, "another master key"), "%s", err.detail);
    sh_key_destroy(&other);
    s = s_open(0);
    cr_assert_arr_eq(sh_store_id(s), id, sizeof id, "the store id is kept");
    sh_store_destroy(&s);
}

Test(store, damaged_metadata_is_reported)
{
    sh_store *s = s_open(0);
    sh_store_destroy(&s);
    uint8_t fmt[4] = {0, 0, 0, 9};
    cr_assert_eq(tu_raw_put(dir, "sh_meta", "format", 6, fmt, 4), 0);
    sh_error err;
    cr_assert_eq(sh_store_open(dir, master, NULL, &s, &err), SH_E_STORE_VERSION);
    cr_assert_eq(tu_raw_put(dir, "sh_meta", "format", 6, fmt, 3), 0);
    cr_assert_eq(sh_store_open(dir, master, NULL, &s, &err), SH_E_STORE_CORRUPT);
    fmt[3] = 1;
    cr_assert_eq(tu_raw_put(dir, "sh_meta", "format", 6, fmt, 4), 0);
    cr_assert_eq(tu_raw_flip(dir, "sh_meta", "key_check", 9, 30, 1), 0);
    cr_assert_eq(sh_store_open(dir, master, NULL, &s, &err), SH_E_STORE_CORRUPT);
    cr_assert_null(s);
}

Test(store, map_full_is_a_clean_error)
{
    sh_store *s = s_open(1 << 20); /* 1 MiB */
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_batch(s, db, 0, 100, 1);
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
    static uint8_t val[4000];
    sh_err rc = SH_OK;
    unsigned i;
    for (i = 1000; i < 2000 && rc == SH_OK; i++) {
        char key[16];
        s_key(i, key);
        rc = sh_txn_put(t, db, key, strlen(key), val, sizeof val, 0, &err);
    }
    cr_assert_eq(rc, SH_E_MAP_FULL, "got %s", sh_err_name(rc));
    cr_assert_not_null(strstr(err.detail, "map_size"), "%s", err.detail);
    char key[16];
    s_key(5000, key);
    cr_assert_eq(sh_txn_put(t, db, key, strlen(key), "x", 1, 0, &err), SH_E_TXN,
                 "the failed transaction takes no more writes");
    cr_assert_eq(sh_txn_commit(&t, &err), SH_E_MAP_FULL, "and does not commit");
    cr_assert_null(t);
    cr_assert_eq(s_count(s, db), 100, "what was committed before is intact");
    s_batch(s, db, 100, 10, 1); /* and the store takes small writes again */
    cr_assert_eq(s_count(s, db), 110);
    sh_store_info info;
    cr_assert_eq(sh_store_get_info(s, &info), SH_OK);
    cr_assert_eq(info.map_size, 1 << 20);
    cr_assert_gt(info.used, 0);
    cr_assert_leq(info.used, info.map_size);
    sh_store_destroy(&s);
}

Test(store, disk_full_is_a_clean_error)
{
    /* A private mount namespace with a 512 KiB tmpfs: needs root (CI and the dev machines
     * run as root); skipped where the kernel refuses. */
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0700") != 0) {
        cr_skip_test("cannot mount a small tmpfs here (%s)", strerror(errno));
    }
    sh_store *s = s_open(64 << 20); /* the map is larger than the disk */
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_batch(s, db, 0, 50, 1);
    sh_err rc = SH_OK;
    unsigned batches = 0;
    static uint8_t val[8000];
    while (rc == SH_OK && batches < 200) {
        sh_txn *t = NULL;
        cr_assert_eq(sh_txn_begin(s, 1, &t, &err), SH_OK);
        for (unsigned i = 0; i < 10 && rc == SH_OK; i++) {
            char key[16];
            s_key(100000 + batches * 10 + i, key);
            rc = sh_txn_put(t, db, key, strlen(key), val, sizeof val, 0, &err);
        }
        rc = rc ? (sh_txn_abort(&t), rc) : sh_txn_commit(&t, &err);
        batches++;
    }
    cr_assert_eq(rc, SH_E_DISK_FULL, "got %s: %s", sh_err_name(rc), err.detail);
    sh_store_destroy(&s);
    s = s_open(64 << 20);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    sh_txn *t = NULL;
    sh_buf b = {0};
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    for (unsigned i = 0; i < 50; i++) {
        char key[16];
        s_key(i, key);
        cr_assert_eq(sh_txn_get(t, db, key, strlen(key), &b, &err), SH_OK,
                     "committed value %u lost after disk full", i);
    }
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
    umount(dir);
}

Test(store, cursor_order_and_seek)
{
    sh_store *s = s_open(0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_batch(s, db, 10, 20, 1);
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_kv kv;
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_cursor_open(t, db, &c, &err), SH_OK);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_LAST, NULL, 0, &kv, &err), SH_OK);
    cr_assert_arr_eq(kv.key, "k00000029", 9);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_SEEK, "k00000015x", 10, &kv, &err), SH_OK);
    cr_assert_arr_eq(kv.key, "k00000016", 9, "first key at or after the seek key");
    cr_assert_arr_eq(kv.val, "value number 16", 15);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_PREV, NULL, 0, &kv, &err), SH_OK);
    cr_assert_arr_eq(kv.key, "k00000015", 9);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_SEEK, "z", 1, &kv, &err), SH_E_NOT_FOUND);
    cr_assert_eq(sh_cursor_get(c, SH_CURSOR_SEEK, NULL, 0, &kv, &err), SH_E_INVAL);
    sh_cursor_close(&c);
    sh_txn_abort(&t);
    cr_assert_eq(s_count(s, db), 20);
    sh_store_destroy(&s);
}

Test(store, blinded_references)
{
    sh_store *s = s_open(0);
    uint8_t a[32], b[32], c[32], d[32];
    cr_assert_eq(sh_store_blind(s, "nhs", "9990000018", a), SH_OK);
    cr_assert_eq(sh_store_blind(s, "nhs", "9990000018", b), SH_OK);
    cr_assert_eq(sh_store_blind(s, "upn", "9990000018", c), SH_OK);
    cr_assert_arr_eq(a, b, 32, "deterministic within a store");
    cr_assert(memcmp(a, c, 32) != 0, "the kind separates references");
    cr_assert_null(memmem(a, 32, "999", 3));
    sh_store_destroy(&s);
    char *dir2 = tu_tmpdir();
    sh_error err;
    cr_assert_eq(sh_store_open(dir2, master, NULL, &s, &err), SH_OK);
    cr_assert_eq(sh_store_blind(s, "nhs", "9990000018", d), SH_OK);
    cr_assert(memcmp(a, d, 32) != 0, "another store gives another reference");
    sh_store_destroy(&s);
    tu_rmrf(dir2);
    free(dir2);
}
