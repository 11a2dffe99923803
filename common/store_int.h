/*
 * store_int.h — what store.c and store_wal.c share, and nothing else includes: the store's
 * structures and the WAL glue between them.
 */
#ifndef SHAREHUB_STORE_INT_H
#define SHAREHUB_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

#include "wal.h"
#include "store.h"

struct sh_store {
    MDB_env *env;
    sh_key *root;  /* HKDF(master, store id, "store root") */
    sh_key *data;  /* seals values */
    sh_mac *blind; /* HMAC for blinded keys; guarded by lock */
    uint8_t id[SH_STORE_ID_BYTES];
    bool readonly;        /* opened by sh_store_open_ro: no keys, no writes */
    pthread_mutex_t lock; /* guards dbs[] and blind */
    unsigned ndbs;
    struct {
        MDB_dbi dbi;
        unsigned flags;
        char name[SH_DB_NAME_MAX + 1];
    } dbs[SH_STORE_MAX_DBS];
    char dir[4096];
    /* The WAL (store_wal.c): used only by the thread that opened the store. */
    struct {
        int mode;          /* SH_STORE_WAL_* */
        pthread_t owner;   /* the thread that opened the store */
        sh_wal *file;      /* opened on first use, or at open when it exists */
        MDB_txn *parent;   /* the LMDB transaction batches commit into, until a checkpoint */
        MDB_txn *child;    /* the batch being written: a child of parent */
        unsigned borrows;  /* reads using parent (no checkpoint while there are any) */
        uint64_t seq;      /* the last record written */
        int64_t parent_ms; /* when parent began */
        int64_t last_ms;   /* when the last write transaction ended */
        int64_t failed_ms; /* when a checkpoint last failed */
        sh_err broken;     /* a checkpoint failed: the tree is replayed from the WAL */
    } j;
};

struct sh_txn {
    sh_store *s;
    MDB_txn *txn;
    int write;
    int child;            /* a batch in the WAL's parent transaction */
    int borrowed;         /* a read that uses the WAL's open transaction */
    sh_buf ops;           /* a child's writes, as they go to the WAL (sh_wal_ops_add) */
    sh_err failed;        /* non-zero once a write failed in a way that poisons the transaction */
    char failed_why[160]; /* what failed, for the commit's error (sh_txn_fail) */
    sh_txn_hook hook;     /* sh_txn_on_commit: runs just before, and just after, the commit */
    void *hook_ctx;
};

struct sh_cursor {
    sh_txn *t;
    sh_db db;
    MDB_cursor *cur;
    sh_buf buf;
};

/* Maps an LMDB or errno result to a sharehub error, naming what was being done. */
sh_err sh_mdb_err(int rc, const char *what, sh_error *err);

/* store_wal.c */

/* Replays the WAL's records past the store's last checkpoint into txn (the open's first
 * write transaction) and records the new checkpoint in it. */
sh_err sj_recover_into(sh_store *s, MDB_txn *txn, sh_error *err);
/* After that transaction committed: the WAL is empty again. */
void sj_opened(sh_store *s);
/* Sets t up as a batch or a borrowing read when the WAL is in use, and says so (*took). */
sh_err sj_begin(sh_store *s, sh_txn *t, int write, int *took, sh_error *err);
/* Records a child's put (v) or delete (v NULL) for the WAL. */
void sj_record(sh_txn *t, sh_db db, const MDB_val *k, const MDB_val *v);
/* Commits a child (WAL, then parent) or ends a borrowed read. */
sh_err sj_commit(sh_txn *t, sh_error *err);
/* Ends t's LMDB side without committing: a child is aborted, a borrowed read let go. */
void sj_drop(sh_txn *t);
/* A plain write transaction ended (for the load test). */
void sj_plain_done(sh_store *s);
/* Commits the parent, if one is open: before another top-level transaction, and at close. */
sh_err sj_checkpoint(sh_store *s, sh_error *err);
/* At close: checkpoint and close the file. */
void sj_close(sh_store *s);

#endif
