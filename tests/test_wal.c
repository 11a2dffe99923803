/* test_wal.c — the write-ahead log (common/wal.c) and the store committing through it
 * (common/store_wal.c): records and operations, a torn last record, a damaged one with later
 * ones, and processes killed at each phase of a commit: before any checkpoint, right after a
 * record is durable, half-way through writing one; a checkpoint that fails; who sees what. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"
#include "wal.h"

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

/* ---- the file ---------------------------------------------------------------------------- */

typedef struct {
    uint64_t seq[16];
    char body[16][64];
    int n;
} s_seen;

static sh_err s_collect(void *ctx, uint64_t seq, const uint8_t *body, size_t len, sh_error *err)
{
    (void)err;
    s_seen *s = ctx;
    cr_assert_lt(s->n, 16);
    cr_assert_lt(len, sizeof s->body[0]);
    s->seq[s->n] = seq;
    memcpy(s->body[s->n], body, len);
    s->body[s->n][len] = '\0';
    s->n++;
    return SH_OK;
}

static sh_wal *s_wal_with(unsigned n, size_t *ends)
{
    sh_wal *w = NULL;
    sh_error err;
    cr_assert_eq(sh_wal_open(dir, 1, &w, &err), SH_OK, "%s", err.detail);
    for (unsigned i = 1; i <= n; i++) {
        char b[32];
        int len = snprintf(b, sizeof b, "record number %u", i);
        cr_assert_eq(sh_wal_append(w, i, b, (size_t)len, &err), SH_OK, "%s", err.detail);
        if (ends) ends[i] = sh_wal_used(w);
    }
    return w;
}

static void s_poke(size_t at)
{
    char *p = tu_path(dir, SH_WAL_FILE);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)at), 1);
    b ^= 0x20;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)at), 1);
    close(fd);
    free(p);
}

TestSuite(wal, .init = setup, .fini = teardown);

Test(wal, records_come_back_in_order_from_where_asked)
{
    sh_wal *w = s_wal_with(3, NULL);
    s_seen s = {0};
    uint64_t last = 0;
    sh_error err;
    cr_assert_eq(sh_wal_replay(w, 0, s_collect, &s, &last, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(last, 3);
    for (int i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "record number %d", i + 1);
        cr_assert_eq(s.seq[i], (uint64_t)i + 1);
        cr_assert_str_eq(s.body[i], want);
    }
    s_seen t = {0};
    cr_assert_eq(sh_wal_replay(w, 2, s_collect, &t, &last, &err), SH_OK);
    cr_assert_eq(t.n, 1, "only what follows the checkpoint");
    cr_assert_str_eq(t.body[0], "record number 3");
    s_seen u = {0};
    cr_assert_eq(sh_wal_replay(w, 3, s_collect, &u, &last, &err), SH_OK);
    cr_assert_eq(u.n, 0);
    cr_assert_eq(last, 3, "nothing past the checkpoint: last is where it was");
    sh_wal_close(&w);
    cr_assert_null(w);
    cr_assert_eq(sh_wal_open(dir, 0, &w, &err), SH_OK, "an existing log opens without create");
    sh_wal_close(&w);
}

Test(wal, a_torn_last_record_is_the_end_of_the_log)
{
    size_t ends[4];
    sh_wal *w = s_wal_with(3, ends);
    s_seen s = {0};
    uint64_t last = 0;
    sh_error err;
    s_poke(ends[2] + 20); /* a byte of the last record's body: its checksum fails */
    cr_assert_eq(sh_wal_replay(w, 0, s_collect, &s, &last, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(last, 2);
    /* cut in the middle, as a write the power cut short */
    char *p = tu_path(dir, SH_WAL_FILE);
    cr_assert_eq(truncate(p, (off_t)(ends[2] + 10)), 0);
    free(p);
    s_seen t = {0};
    cr_assert_eq(sh_wal_replay(w, 0, s_collect, &t, &last, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(t.n, 2);
    sh_wal_close(&w);
}

Test(wal, a_damaged_record_with_a_later_one_is_refused_not_skipped)
{
    size_t ends[4];
    sh_wal *w = s_wal_with(3, ends);
    s_seen s = {0};
    uint64_t last = 0;
    sh_error err;
    s_poke(ends[1] + 20); /* record 2 of 3 */
    cr_assert_eq(sh_wal_replay(w, 0, s_collect, &s, &last, &err), SH_E_STORE_CORRUPT);
    cr_assert(strstr(err.detail, "record 2") && strstr(err.detail, "record 3"), "%s", err.detail);
    cr_assert_eq(s.n, 1, "what precedes the damage was given");
    s_poke(ends[1] + 20); /* repaired; now its header: the record is missing, not torn */
    s_poke(ends[1] + 1);
    s_seen t = {0};
    cr_assert_eq(sh_wal_replay(w, 0, s_collect, &t, &last, &err), SH_E_STORE_CORRUPT);
    sh_wal_close(&w);
}

Test(wal, records_left_from_before_a_rewind_are_not_replayed)
{
    sh_wal *w = s_wal_with(3, NULL);
    sh_error err;
    sh_wal_rewind(w);
    cr_assert_eq(sh_wal_used(w), 0);
    cr_assert_eq(sh_wal_append(w, 4, "four", 4, &err), SH_OK);
    s_seen s = {0};
    uint64_t last = 0;
    cr_assert_eq(sh_wal_replay(w, 3, s_collect, &s, &last, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.body[0], "four");
    cr_assert_eq(last, 4);
    sh_wal_close(&w);
}

Test(wal, operations_round_trip_and_malformed_ones_are_refused)
{
    sh_buf o = {0};
    cr_assert_eq(sh_wal_ops_add(&o, "events", "k1", 2, "value", 5), 0);
    cr_assert_eq(sh_wal_ops_add(&o, "queue", "k2", 2, NULL, 0), 0);
    cr_assert_eq(sh_wal_ops_add(&o, "events", "k3", 2, "", 0), 0, "an empty value is a put");
    cr_assert_eq(sh_wal_ops_add(&o, "", "k", 1, "v", 1), -1);
    cr_assert_eq(sh_wal_ops_add(&o, "events", "", 0, "v", 1), -1);
    size_t pos = 0;
    sh_wal_op op;
    cr_assert_eq(sh_wal_op_next(o.data, o.len, &pos, &op), 1);
    cr_assert_eq(op.op, SH_WAL_OP_PUT);
    cr_assert_str_eq(op.db, "events");
    cr_assert_eq(op.vlen, 5);
    cr_assert_arr_eq(op.val, "value", 5);
    cr_assert_eq(sh_wal_op_next(o.data, o.len, &pos, &op), 1);
    cr_assert_eq(op.op, SH_WAL_OP_DEL);
    cr_assert_str_eq(op.db, "queue");
    cr_assert_eq(sh_wal_op_next(o.data, o.len, &pos, &op), 1);
    cr_assert_eq(op.op, SH_WAL_OP_PUT);
    cr_assert_eq(op.vlen, 0);
    cr_assert_eq(sh_wal_op_next(o.data, o.len, &pos, &op), 0, "the end");
    for (size_t cut = 1; cut < o.len; cut++) { /* every truncation is malformed or ends early */
        size_t p2 = 0;
        int got;
        while ((got = sh_wal_op_next(o.data, cut, &p2, &op)) == 1)
            ;
        cr_assert(got == -1 || p2 == cut, "cut at %zu", cut);
    }
    o.data[0] = 'X';
    pos = 0;
    cr_assert_eq(sh_wal_op_next(o.data, o.len, &pos, &op), -1);
    sh_buf_free(&o);
}

/* ---- the store through the log ----------------------------------------------------------- */

static sh_store *s_store(int mode)
{
    sh_store_opts o = {.wal = mode};
    sh_store *s = NULL;
    sh_error err;
    cr_assert_eq(sh_store_open(dir, master, &o, &s, &err), SH_OK, "%s", err.detail);
    return s;
}

/* Batch b: keys b*100 .. b*100+9, sealed; and deletes key (b-1)*100 (the previous batch's
 * first). Returns the commit's result. */
static sh_err s_write_batch(sh_store *s, sh_db db, unsigned b, sh_error *err)
{
    sh_txn *t = NULL;
    sh_err e = sh_txn_begin(s, 1, &t, err);
    for (unsigned i = 0; !e && i < 10; i++) {
        char k[16], v[48];
        snprintf(k, sizeof k, "k%06u", b * 100 + i);
        int vl = snprintf(v, sizeof v, "the value of batch %u, item %u", b, i);
        e = sh_txn_put(t, db, k, strlen(k), v, (size_t)vl, 0, err);
    }
    if (!e && b > 0) {
        char k[16];
        snprintf(k, sizeof k, "k%06u", (b - 1) * 100);
        e = sh_txn_del(t, db, k, strlen(k), err);
        if (e == SH_E_NOT_FOUND) e = SH_OK;
    }
    if (e) {
        sh_txn_abort(&t);
        return e;
    }
    return sh_txn_commit(&t, err);
}

/* Checks that batches 0..n-1 are there, whole, and batch n is not. */
static void s_expect_batches(sh_store *s, sh_db db, unsigned n)
{
    sh_txn *t = NULL;
    sh_error err;
    sh_buf b = {0};
    cr_assert_eq(sh_txn_begin(s, 0, &t, &err), SH_OK, "%s", err.detail);
    for (unsigned bt = 0; bt <= n; bt++)
        for (unsigned i = 0; i < 10; i++) {
            char k[16], v[48];
            snprintf(k, sizeof k, "k%06u", bt * 100 + i);
            snprintf(v, sizeof v, "the value of batch %u, item %u", bt, i);
            sh_err rc = sh_txn_get(t, db, k, strlen(k), &b, &err);
            int want = bt < n && !(i == 0 && bt + 1 < n); /* deleted by the next batch */
            cr_assert_eq(rc, want ? SH_OK : SH_E_NOT_FOUND, "batch %u item %u: %s (of %u)", bt, i,
                         sh_err_name(rc), n);
            if (want) cr_assert(b.len == strlen(v) && !memcmp(b.data, v, b.len));
        }
    sh_txn_abort(&t);
    sh_buf_free(&b);
}

static char *s_faults(void)
{
    char *f = tu_path(dir, "faults");
    mkdir(f, 0700);
    setenv("SHAREHUB_FAULT_DIR", f, 1);
    return f;
}

static void s_fault_on(const char *faults, const char *point)
{
    char *p = tu_path(faults, point);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fclose(f);
    free(p);
}

/* A child process writes batches 0..n-1 through the log; with point set, from batch at on.
 * It never closes the store: it ends by SIGKILL, from the fault or from itself. */
static void s_child_writes(unsigned n, const char *point, unsigned at)
{
    char *faults = s_faults();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        sh_store *s = NULL;
        sh_error err;
        sh_db db;
        sh_store_opts o = {.wal = SH_STORE_WAL_ALWAYS};
        if (sh_store_open(dir, master, &o, &s, &err) || sh_store_db(s, "events", 0, &db, &err))
            _exit(3);
        for (unsigned b = 0; b < n; b++) {
            if (point && b == at) s_fault_on(faults, point);
            if (s_write_batch(s, db, b, &err)) _exit(4);
        }
        raise(SIGKILL);
        _exit(5);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    unsetenv("SHAREHUB_FAULT_DIR");
    tu_rmrf(faults);
    free(faults);
}

TestSuite(store_wal, .init = setup, .fini = teardown);

Test(store_wal, every_committed_batch_outlives_a_kill_before_any_checkpoint)
{
    s_child_writes(20, NULL, 0);
    char *p = tu_path(dir, SH_WAL_FILE);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "the batches went through the log");
    free(p);
    sh_store *s = s_store(SH_STORE_WAL_OFF); /* whoever opens it next replays the log */
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 20);
    sh_store_destroy(&s);
    s = s_store(SH_STORE_WAL_OFF); /* and once is enough: nothing is applied twice */
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 20);
    cr_assert_eq(s_write_batch(s, db, 20, &err), SH_OK, "%s", err.detail);
    s_expect_batches(s, db, 21);
    sh_store_destroy(&s);
}

Test(store_wal, a_batch_killed_once_its_record_is_durable_is_kept)
{
    s_child_writes(12, "wal_synced", 7); /* killed inside batch 7's commit, after the sync */
    sh_store *s = s_store(SH_STORE_WAL_ALWAYS);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 8);
    sh_store_destroy(&s);
}

Test(store_wal, a_record_torn_by_the_kill_is_not_kept_and_nothing_before_it_is_lost)
{
    s_child_writes(12, "wal_torn", 7); /* half of batch 7's record, then SIGKILL */
    sh_store *s = s_store(SH_STORE_WAL_ALWAYS);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 7);
    /* the log goes on from there: the next batch is number 7 again, and it stays */
    cr_assert_eq(s_write_batch(s, db, 7, &err), SH_OK, "%s", err.detail);
    sh_store_destroy(&s);
    s = s_store(SH_STORE_WAL_OFF);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 8);
    sh_store_destroy(&s);
}

Test(store_wal, a_failed_append_refuses_the_batch_and_nothing_of_it_is_written)
{
    char *faults = s_faults();
    sh_store *s = s_store(SH_STORE_WAL_ALWAYS);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    cr_assert_eq(s_write_batch(s, db, 0, &err), SH_OK);
    s_fault_on(faults, "wal_append");
    cr_assert_eq(s_write_batch(s, db, 1, &err), SH_E_DISK_FULL);
    s_expect_batches(s, db, 1);
    tu_rmrf(faults);
    cr_assert_eq(s_write_batch(s, db, 1, &err), SH_OK, "%s", err.detail);
    s_expect_batches(s, db, 2);
    sh_store_destroy(&s);
    unsetenv("SHAREHUB_FAULT_DIR");
    free(faults);
}

typedef struct {
    sh_store *s;
    sh_db db;
    int found;
} s_reader;

static void *s_read_other_thread(void *arg)
{
    s_reader *r = arg;
    sh_txn *t = NULL;
    sh_error err;
    sh_buf b = {0};
    if (sh_txn_begin(r->s, 0, &t, &err) == SH_OK) {
        r->found = sh_txn_get(t, r->db, "k000001", 7, &b, &err) == SH_OK;
        sh_txn_abort(&t);
    }
    sh_buf_free(&b);
    return NULL;
}

static int s_seen_elsewhere(sh_store *s, sh_db db)
{
    s_reader r = {s, db, -1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, s_read_other_thread, &r), 0);
    pthread_join(th, NULL);
    return r.found;
}

Test(store_wal, the_owner_sees_every_batch_and_others_the_tree_once_batches_stop)
{
    sh_store *s = s_store(SH_STORE_WAL_LOAD);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    cr_assert_eq(s_write_batch(s, db, 99, &err), SH_OK); /* plain: nothing came before */
    cr_assert_eq(s_write_batch(s, db, 0, &err), SH_OK);  /* at once after it: the log */
    char *p = tu_path(dir, SH_WAL_FILE);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "a batch right after another went through the log");
    free(p);
    s_expect_batches(s, db, 1);
    cr_assert_eq(s_seen_elsewhere(s, db), 0, "not in the tree until a checkpoint");
    /* a read inside a batch must use the batch */
    sh_txn *w = NULL, *r = NULL;
    cr_assert_eq(sh_txn_begin(s, 1, &w, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(s, 0, &r, &err), SH_E_TXN);
    sh_txn_abort(&w);
    usleep(30 * 1000);
    cr_assert_eq(sh_store_tick(s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(s_seen_elsewhere(s, db), 1, "20 ms without a batch: the tree committed");
    sh_store_destroy(&s);
}

Test(store_wal, a_failed_checkpoint_is_rebuilt_from_the_log_and_retried)
{
    char *faults = s_faults();
    sh_store *s = s_store(SH_STORE_WAL_ALWAYS);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    for (unsigned b = 0; b < 3; b++)
        cr_assert_eq(s_write_batch(s, db, b, &err), SH_OK);
    s_fault_on(faults, "wal_checkpoint");
    usleep(30 * 1000);
    cr_assert_eq(sh_store_tick(s, &err), SH_E_DISK_FULL, "the checkpoint failed");
    cr_assert_eq(s_seen_elsewhere(s, db), 0);
    s_expect_batches(s, db, 3); /* rebuilt, in memory, from the tree and the log */
    cr_assert_eq(s_write_batch(s, db, 3, &err), SH_OK, "%s", err.detail);
    s_expect_batches(s, db, 4);
    tu_rmrf(faults);
    usleep(30 * 1000); /* no batch for 20 ms: only the wait after a failure holds it back */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(sh_store_tick(s, &err), SH_OK, "%s", err.detail);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (t1.tv_sec - t0.tv_sec < 1) /* (too slow a machine, as under valgrind, cannot tell) */
        cr_assert_eq(s_seen_elsewhere(s, db), 0, "no retry within a second of the failure");
    usleep(1100 * 1000);
    cr_assert_eq(sh_store_tick(s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(s_seen_elsewhere(s, db), 1, "the retry committed the tree");
    sh_store_destroy(&s);
    s = s_store(SH_STORE_WAL_OFF);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    s_expect_batches(s, db, 4);
    sh_store_destroy(&s);
    unsetenv("SHAREHUB_FAULT_DIR");
    free(faults);
}

Test(store_wal, near_a_full_map_batches_commit_plainly_and_a_full_one_refuses_the_batch)
{
    sh_store_opts o = {.map_size = 4u << 20, .wal = SH_STORE_WAL_ALWAYS};
    sh_store *s = NULL;
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_open(dir, master, &o, &s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_db(s, "events", SH_DB_SEALED, &db, &err), SH_OK);
    unsigned b = 0;
    sh_err rc = SH_OK;
    for (; rc == SH_OK && b < 10000; b++)
        rc = s_write_batch(s, db, b, &err);
    cr_assert_eq(rc, SH_E_MAP_FULL, "got %s: %s", sh_err_name(rc), err.detail);
    char *p = tu_path(dir, SH_WAL_FILE);
    struct stat st;
    cr_assert_neq(stat(p, &st), 0, "a 4 MiB map leaves no room for a parent: no log");
    free(p);
    s_expect_batches(s, db, b - 1); /* everything before the refused batch */
    sh_store_destroy(&s);
}
