/*
 * store_wal.c — commits through the WAL (wal.h) when the store is busy: a batch
 * becomes durable with one sequential write and one fdatasync, and the LMDB tree commits (two
 * syncs, every page the batches dirtied written once) only every CHECKPOINT_MS, or when the
 * batches stop. docs/store-format.md, "The write-ahead log", says what is where.
 *
 * How: the first write transaction that starts within BUSY_MS of the previous one opens a
 * top-level LMDB transaction, the parent; each batch is a child of it. A child's commit
 * writes its puts and deletes (values as stored: sealed values stay sealed) to the WAL,
 * numbered, and then merges into the parent. A checkpoint records the last number in
 * sh_meta "wal_seq" inside the parent and commits it. Whoever next opens the store for
 * writing after a crash replays the records past wal_seq. A read in the thread that
 * owns the store uses the parent, so it sees every batch.
 *
 * Owns: the parent and child transactions and the WAL file. Never: says a batch is
 * committed before its record is durable; rewinds the WAL before the checkpoint that
 * holds its records is durable; frees a transaction a borrowing read still uses.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fault.h"
#include "store_int.h"

#define BUSY_MS       5
#define CHECKPOINT_MS 250
#define IDLE_MS       20
#define RETRY_MS      1000               /* after a failed checkpoint, before the next */
#define WAL_MAX       ((size_t)4 << 20)  /* bytes of records before a checkpoint is due */
#define RECORD_MAX    ((size_t)8 << 20)  /* a larger batch commits the tree itself */
#define PARENT_ROOM   ((size_t)64 << 20) /* of the map left free, to open a parent */

static const char s_seq_key[] = "wal_seq";

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static MDB_dbi s_meta_dbi(const sh_store *s)
{
    for (unsigned i = 0; i < s->ndbs; i++)
        if (strcmp(s->dbs[i].name, "sh_meta") == 0) return s->dbs[i].dbi;
    return 0; /* never: sh_meta is the first database every open makes */
}

static sh_err s_put_seq(sh_store *s, MDB_txn *txn, uint64_t seq, sh_error *err)
{
    uint8_t b[8];
    sh_be64_put(b, seq);
    MDB_val k = {sizeof s_seq_key - 1, (void *)s_seq_key}, v = {8, b};
    return sh_mdb_err(mdb_put(txn, s_meta_dbi(s), &k, &v, 0), "sh_meta.wal_seq", err);
}

/* ---- recovery -------------------------------------------------------------------------- */

typedef struct {
    sh_store *s;
    MDB_txn *txn;
} s_replay;

static sh_err s_apply(void *ctx, uint64_t seq, const uint8_t *body, size_t len, sh_error *err)
{
    s_replay *r = ctx;
    size_t pos = 0;
    sh_wal_op op;
    int got;
    for (unsigned n = 1; (got = sh_wal_op_next(body, len, &pos, &op)) == 1; n++) {
        MDB_dbi dbi;
        int rc = mdb_dbi_open(r->txn, op.db, MDB_CREATE, &dbi);
        MDB_val k = {op.klen, (void *)op.key}, v = {op.vlen, (void *)op.val};
        if (!rc)
            rc = op.op == SH_WAL_OP_PUT ? mdb_put(r->txn, dbi, &k, &v, 0)
                                        : mdb_del(r->txn, dbi, &k, NULL);
        if (rc && rc != MDB_NOTFOUND) {
            char what[96];
            snprintf(what, sizeof what, "WAL record %llu, operation %u (%s)",
                     (unsigned long long)seq, n, op.db);
            return sh_mdb_err(rc, what, err);
        }
    }
    if (got < 0)
        return sh_error_set(err, SH_E_STORE_CORRUPT,
                            "WAL record %llu: an operation at byte %zu is malformed",
                            (unsigned long long)seq, pos);
    return SH_OK;
}

sh_err sj_recover_into(sh_store *s, MDB_txn *txn, sh_error *err)
{
    uint64_t applied = 0;
    MDB_val k = {sizeof s_seq_key - 1, (void *)s_seq_key}, v;
    int rc = mdb_get(txn, s_meta_dbi(s), &k, &v);
    if (rc == 0 && v.mv_size == 8)
        applied = sh_be64_get(v.mv_data);
    else if (rc == 0)
        return sh_error_set(err, SH_E_STORE_CORRUPT, "sh_meta.wal_seq has %zu bytes", v.mv_size);
    else if (rc != MDB_NOTFOUND)
        return sh_mdb_err(rc, "sh_meta.wal_seq", err);
    s->j.seq = applied;
    if (!s->j.file) {
        sh_err e = sh_wal_open(s->dir, 0, &s->j.file, err);
        if (e == SH_E_NOT_FOUND) return SH_OK; /* never logged */
        if (e) return e;
    }
    s_replay r = {s, txn};
    uint64_t last = applied;
    sh_err e = sh_wal_replay(s->j.file, applied, s_apply, &r, &last, err);
    if (!e && last > applied) e = s_put_seq(s, txn, last, err);
    if (!e) s->j.seq = last;
    return e;
}

void sj_opened(sh_store *s)
{
    sh_wal_rewind(s->j.file);
    s->j.broken = SH_OK;
}

/* After a failed checkpoint, or a batch that reached the WAL but not the parent: a new parent
 * holds the last checkpoint's tree with every record since replayed into it. It needs no room
 * on the disk (a full disk is what fails a checkpoint), so the store serves on, in memory and
 * in the WAL, until a checkpoint succeeds. */
static sh_err s_rebuild(sh_store *s, sh_error *err)
{
    MDB_txn *txn = NULL;
    sh_err e = sh_mdb_err(mdb_txn_begin(s->env, NULL, 0, &txn), "begin a rebuild", err);
    if (!e) e = sj_recover_into(s, txn, err);
    if (e) {
        if (txn) mdb_txn_abort(txn);
        return e;
    }
    s->j.parent = txn;
    s->j.parent_ms = s_now();
    s->j.broken = SH_OK;
    return SH_OK;
}

/* ---- batches --------------------------------------------------------------------------- */

/* Room for a parent: one holds every page its batches dirty until the checkpoint, where a
 * run of plain commits reuses the pages each one frees; so near a full map the store commits
 * plainly, and a full map refuses a batch as it always did (E502), never a checkpoint. */
static int s_room(const sh_store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &st)) return 0;
    size_t used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    return info.me_mapsize > used && info.me_mapsize - used >= PARENT_ROOM;
}

static int s_owner(const sh_store *s)
{
    return pthread_equal(pthread_self(), s->j.owner);
}

sh_err sj_begin(sh_store *s, sh_txn *t, int write, int *took, sh_error *err)
{
    *took = 0;
    if (s->readonly || !s->j.mode || !s_owner(s)) return SH_OK;
    if (s->j.broken) {
        sh_err e = s_rebuild(s, err);
        if (e) return e;
    }
    if (!write) {
        if (!s->j.parent) return SH_OK;
        if (s->j.child)
            return sh_error_set(err, SH_E_TXN,
                                "a read begun inside a write transaction: "
                                "read through the write transaction");
        t->txn = s->j.parent;
        t->borrowed = 1;
        s->j.borrows++;
        *took = 1;
        return SH_OK;
    }
    if (s->j.child) return sh_error_set(err, SH_E_TXN, "a write transaction is already open");
    int64_t now = s_now();
    if (!s->j.parent) {
        int always = s->j.mode == SH_STORE_WAL_ALWAYS || sh_fault("wal_always");
        if (!always && !(s->j.last_ms && now - s->j.last_ms < BUSY_MS)) return SH_OK;
        if (!s_room(s)) return SH_OK;
        int rc = mdb_txn_begin(s->env, NULL, 0, &s->j.parent);
        if (rc) return sh_mdb_err(rc, "begin transaction", err);
        s->j.parent_ms = now;
    }
    int rc = mdb_txn_begin(s->env, s->j.parent, 0, &t->txn);
    if (rc) return sh_mdb_err(rc, "begin a batch", err);
    s->j.child = t->txn;
    t->child = 1;
    *took = 1;
    return SH_OK;
}

void sj_record(sh_txn *t, sh_db db, const MDB_val *k, const MDB_val *v)
{
    if (!t->child || t->failed) return;
    if (sh_wal_ops_add(&t->ops, t->s->dbs[db].name, k->mv_data, k->mv_size, v ? v->mv_data : NULL,
                       v ? v->mv_size : 0)) {
        t->failed = SH_E_NOMEM;
        snprintf(t->failed_why, sizeof t->failed_why, "the WAL's copy of a write");
    }
}

void sj_drop(sh_txn *t)
{
    sh_store *s = t->s;
    if (t->borrowed) {
        s->j.borrows--;
    } else {
        mdb_txn_abort(t->txn);
        if (t->child) s->j.child = NULL;
    }
    sh_buf_free(&t->ops);
}

void sj_plain_done(sh_store *s)
{
    if (s->j.mode) s->j.last_ms = s_now();
}

sh_err sj_checkpoint(sh_store *s, sh_error *err)
{
    if (!s->j.parent) return SH_OK;
    if (s->j.child || s->j.borrows)
        return sh_error_set(err, SH_E_TXN, "a checkpoint while a transaction is open");
    MDB_txn *p = s->j.parent;
    s->j.parent = NULL;
    sh_err e = s_put_seq(s, p, s->j.seq, err);
    if (!e && sh_fault("wal_checkpoint"))
        e = sh_error_set(err, SH_E_DISK_FULL, "checkpoint: injected fault");
    if (e)
        mdb_txn_abort(p);
    else
        e = sh_mdb_err(mdb_txn_commit(p), "commit", err);
    if (e) { /* the WAL holds every batch since the last checkpoint */
        s->j.broken = e;
        s->j.failed_ms = s_now();
    } else {
        sh_wal_rewind(s->j.file);
    }
    return e;
}

sh_err sj_commit(sh_txn *t, sh_error *err)
{
    sh_store *s = t->s;
    if (t->borrowed) {
        s->j.borrows--;
        return SH_OK;
    }
    sh_err e = SH_OK;
    size_t n = t->ops.len;
    if (n > RECORD_MAX) { /* too large for one record: the tree takes it, durably, now */
        int rc = mdb_txn_commit(t->txn);
        s->j.child = NULL;
        e = rc ? sh_mdb_err(rc, "commit", err) : sj_checkpoint(s, err);
        s->j.last_ms = s_now();
        return e;
    }
    if (n && !s->j.file) e = sh_wal_open(s->dir, 1, &s->j.file, err);
    if (n && !e) e = sh_wal_append(s->j.file, s->j.seq + 1, t->ops.data, n, err);
    if (e) {
        mdb_txn_abort(t->txn);
        s->j.child = NULL;
        return e;
    }
    if (n) s->j.seq++;
    int rc = mdb_txn_commit(t->txn);
    s->j.child = NULL;
    s->j.last_ms = s_now();
    if (rc) { /* durable in the WAL, not in the parent: rebuild from the WAL */
        mdb_txn_abort(s->j.parent);
        s->j.parent = NULL;
        s->j.broken = sh_mdb_err(rc, "merge a batch", err);
        return n ? SH_OK : s->j.broken;
    }
    if ((s->j.last_ms - s->j.parent_ms >= CHECKPOINT_MS || sh_wal_used(s->j.file) >= WAL_MAX) &&
        s->j.last_ms - s->j.failed_ms >= RETRY_MS) {
        sh_error e2; /* on failure, broken is set, and every batch is in the WAL */
        (void)sj_checkpoint(s, &e2);
    }
    return SH_OK;
}

sh_err sh_store_tick(sh_store *s, sh_error *err)
{
    if (!s || s->readonly || !s->j.mode || !s_owner(s)) return SH_OK;
    int64_t now = s_now();
    if (s->j.parent && !s->j.child && !s->j.borrows && now - s->j.last_ms >= IDLE_MS &&
        now - s->j.failed_ms >= RETRY_MS)
        return sj_checkpoint(s, err);
    return SH_OK;
}

void sj_close(sh_store *s)
{
    sh_error err;
    if (s->j.parent && !s->j.child && !s->j.borrows) (void)sj_checkpoint(s, &err);
    if (s->j.parent) mdb_txn_abort(s->j.parent); /* (the WAL keeps its batches) */
    s->j.parent = NULL;
    sh_wal_close(&s->j.file);
}
