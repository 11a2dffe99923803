/*
 * store.h — an LMDB environment with named databases whose values are sealed (AES-256-GCM).
 *
 * Owns: the LMDB environment, its named databases, the store's metadata (format version,
 * random store id, key check), and the keys derived for this store.
 * Never: stores a plaintext value in a sealed database, or personal data in a key. Keys are
 * not encrypted: use event ids, sequence numbers, or sh_store_blind() of an identifier.
 *
 * Durability: a write transaction's commit returns once all of it is durable, or none of it
 * is. Group commit is the caller's batch: put as many values as are ready into one write
 * transaction, then commit. Each commit is an LMDB commit (two syncs), unless the store was
 * opened with its write-ahead log (sh_store_opts.wal) and is busy: then a commit is one
 * record written and synced to the log, and the LMDB tree commits every 250 ms or when the
 * batches stop (store_wal.c). Other processes see the tree as of its last commit; the
 * thread that opened the store sees everything. Whoever next opens the store for writing
 * after a crash replays the log.
 *
 * Integrity: a sealed value is bound (GCM additional data) to its database name and key, so a
 * value altered on disk, or moved to another key or database, fails with SH_E_AUTH_FAILED and
 * is never returned. The format is in docs/store-format.md.
 *
 * Threads: one sh_store may be shared; each sh_txn and sh_cursor belongs to one thread. One
 * write transaction at a time per store (LMDB serialises writers). With the log, only the
 * thread that opened the store writes, and a read it begins while its own write transaction
 * is open is refused (SH_E_TXN): it reads through the write transaction.
 */
#ifndef SHAREHUB_STORE_H
#define SHAREHUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"

#define SH_STORE_FORMAT      1
#define SH_STORE_ID_BYTES    16
#define SH_BLIND_BYTES       32
#define SH_DB_NAME_MAX       31
#define SH_STORE_MAX_DBS     32
#define SH_STORE_DEFAULT_MAP ((size_t)1 << 30) /* 1 GiB of address space, not of disk */

typedef struct sh_store sh_store;
typedef struct sh_txn sh_txn;
typedef struct sh_cursor sh_cursor;
typedef unsigned sh_db; /* handle from sh_store_db, valid for the store's lifetime */

enum {
    SH_STORE_WAL_OFF = 0,    /* every commit is an LMDB commit */
    SH_STORE_WAL_LOAD = 1,   /* batches go through the log while they come fast */
    SH_STORE_WAL_ALWAYS = 2, /* every batch goes through the log (tests) */
};

typedef struct sh_store_opts {
    size_t map_size; /* maximum size of the store in bytes; 0 = SH_STORE_DEFAULT_MAP */
    int wal;         /* SH_STORE_WAL_*: only for a store one thread uses */
} sh_store_opts;

/* A growable buffer that receives opened (plaintext) values. Zero-initialise it; release
 * with sh_buf_free, which wipes it. */
typedef struct sh_buf {
    uint8_t *data;
    size_t len, cap;
} sh_buf;

/* Grows b to hold at least n bytes, its contents kept and its old memory wiped. SH_E_NOMEM. */
sh_err sh_buf_reserve(sh_buf *b, size_t n) SH_WUR;

void sh_buf_free(sh_buf *b);

/* Big-endian u64, the byte order of integer keys (so LMDB's byte order is numeric order). */
static inline void sh_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t sh_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Opens (creating if need be) the store in directory dir (created 0700 if absent), keyed by
 * master. A new store gets a random id and a key check; an existing one must have been
 * created under the same master key.
 * Errors: SH_E_WRONG_KEY (another master key), SH_E_STORE_VERSION, SH_E_STORE_CORRUPT,
 * SH_E_DISK_FULL, SH_E_IO, SH_E_STORE, SH_E_NOMEM. */
sh_err sh_store_open(const char *dir, const sh_key *master, const sh_store_opts *opts,
                     sh_store **out, sh_error *err) SH_WUR;

/* Opens an existing store read-only and without its master key: for auditors. Plain databases
 * (the audit log) can be read; sealed values give SH_E_WRONG_KEY; write transactions, blinding
 * and key derivation are refused; sh_store_db opens only databases that exist (SH_E_NOT_FOUND
 * otherwise). Never creates anything. Errors: SH_E_NOT_FOUND (no store in dir), SH_E_IO,
 * SH_E_STORE_VERSION, SH_E_STORE_CORRUPT, SH_E_STORE. */
sh_err sh_store_open_ro(const char *dir, sh_store **out, sh_error *err) SH_WUR;

/* For the owner's loop, each turn (or at least every 100 ms): commits the LMDB tree when
 * batches went through the log and none came for 20 ms, so other processes see them (after a
 * failed commit, not again within a second). Errors as sh_txn_commit. */
sh_err sh_store_tick(sh_store *s, sh_error *err);

/* Closes the store and wipes its keys. All transactions must be finished. Sets *s to NULL. */
void sh_store_destroy(sh_store **s);

enum {
    SH_DB_SEALED = 0, /* values sealed under the store's data key (the default) */
    SH_DB_PLAIN = 1,  /* values stored as given: for data that carries its own integrity
                         (the audit chain) or holds nothing confidential (index entries) */
};

/* Opens or creates the named database (1-31 characters of [a-z0-9_]; names starting "sh_" are
 * the store's own). Re-opening a name returns the same handle; its flags must match.
 * Opening a new database runs its own write transaction: do it at start-up, never while this
 * thread holds a write transaction.
 * Errors: SH_E_INVAL (bad name, flag mismatch, too many databases), SH_E_STORE. */
sh_err sh_store_db(sh_store *s, const char *name, unsigned flags, sh_db *out, sh_error *err);

/* 1 when the store holds a database of this name (opened or not; nothing is created), else 0:
 * what tells a broker's store (it has "queue") from an agent's ("outbox"). */
int sh_store_db_exists(sh_store *s, const char *name);

/* The store's random 16-byte id (fixed at creation). */
const uint8_t *sh_store_id(const sh_store *s);

/* HKDF of the master key, salted with the store id, for a named job ("audit mac", "blind
 * index"). SH_E_WRONG_KEY on a store opened with sh_store_open_ro. */
sh_err sh_store_derive_key(const sh_store *s, const char *label, sh_key **out) SH_WUR;

/* The blinding of sh_store_blind under a given blind key (an HMAC keyed with the store's
 * "blind index" key): how an auditor holding that key finds a child's entries. */
sh_err sh_blind_compute(sh_mac *blind, const char *kind, const char *value,
                        uint8_t out[SH_BLIND_BYTES]) SH_WUR;

/* A keyed, one-way reference to an identifier for use as (part of) a key:
 * HMAC-SHA256(blind key, kind || 0x00 || value). kind names the identifier ("nhs", "upn"). */
sh_err sh_store_blind(sh_store *s, const char *kind, const char *value,
                      uint8_t out[SH_BLIND_BYTES]) SH_WUR;

typedef struct sh_store_info {
    size_t map_size;  /* configured maximum, bytes */
    size_t used;      /* bytes of the map in use (last page used x page size) */
    size_t page_size; /* bytes */
    size_t file_size; /* bytes of the data file */
} sh_store_info;

sh_err sh_store_get_info(sh_store *s, sh_store_info *info);

/* Unmaps from this process the store's pages it has touched: they stay in the kernel's page
 * cache (nothing is written or lost: LMDB maps the file read-only and writes with pwrite) and
 * fault back in when next read. Keeps a long-running process's resident set from growing
 * with the size of the store it walks. SH_E_IO if the kernel refuses. */
sh_err sh_store_release_pages(sh_store *s);

/* ---- transactions -------------------------------------------------------------------- */

/* Begins a transaction; write != 0 for a write transaction (one at a time; blocks). */
sh_err sh_txn_begin(sh_store *s, int write, sh_txn **out, sh_error *err) SH_WUR;

enum {
    SH_PUT_OVERWRITE = 0,
    SH_PUT_NEW = 1, /* refuse with SH_E_EXISTS if the key is present */
};

/* Stores val under key (1-511 bytes) in db, sealing it for sealed databases.
 * Errors: SH_E_EXISTS (with SH_PUT_NEW; the transaction stays usable), SH_E_MAP_FULL (the
 * transaction is finished: abort it), SH_E_TXN (read-only or failed transaction),
 * SH_E_INVAL, SH_E_CRYPTO, SH_E_STORE. */
sh_err sh_txn_put(sh_txn *t, sh_db db, const void *key, size_t klen, const void *val, size_t vlen,
                  unsigned flags, sh_error *err) SH_WUR;

/* Reads the value under key into out (opened if sealed). Errors: SH_E_NOT_FOUND,
 * SH_E_AUTH_FAILED / SH_E_WRONG_KEY / SH_E_SEAL_FORMAT (damaged value: nothing returned),
 * SH_E_NOMEM, SH_E_STORE. */
sh_err sh_txn_get(sh_txn *t, sh_db db, const void *key, size_t klen, sh_buf *out,
                  sh_error *err) SH_WUR;

/* Deletes key. Errors: SH_E_NOT_FOUND, SH_E_TXN, SH_E_STORE. */
sh_err sh_txn_del(sh_txn *t, sh_db db, const void *key, size_t klen, sh_error *err);

/* Makes every write of the transaction durable with one fsync, then frees it (*t = NULL),
 * whether or not it succeeded. A transaction that failed earlier is aborted and its error
 * returned. Errors: SH_E_DISK_FULL (nothing of the transaction was written), SH_E_MAP_FULL,
 * SH_E_IO, SH_E_STORE. */
sh_err sh_txn_commit(sh_txn **t, sh_error *err);

/* Marks write transaction t failed with code and detail: its commit then writes nothing and
 * returns code. For writes that must stand or fall together (an audited write and its audit
 * entry). A transaction already failed keeps its first error. */
void sh_txn_fail(sh_txn *t, sh_err code, const char *detail);

/* One hook per write transaction, for a module whose writes must be completed at commit (the
 * audit log signs its head there). Called with SH_TXN_BEFORE and t just before the commit
 * (a non-SH_OK return aborts it: nothing is written, and the commit returns that error); then
 * with t == NULL and SH_TXN_DONE once the commit is durable, or SH_TXN_FAILED when the commit
 * failed or the transaction was aborted (its return value is ignored then). Setting it again
 * replaces it. A failed transaction (sh_txn_fail) is aborted without calling SH_TXN_BEFORE. */
typedef enum sh_txn_phase { SH_TXN_BEFORE, SH_TXN_DONE, SH_TXN_FAILED } sh_txn_phase;
typedef sh_err (*sh_txn_hook)(void *ctx, sh_txn *t, sh_txn_phase phase, sh_error *err);
void sh_txn_on_commit(sh_txn *t, sh_txn_hook fn, void *ctx);

/* Discards the transaction and frees it; *t = NULL. Accepts NULL and *t == NULL. */
void sh_txn_abort(sh_txn **t);

/* ---- cursors ------------------------------------------------------------------------- */

typedef enum sh_cursor_op {
    SH_CURSOR_FIRST,
    SH_CURSOR_LAST,
    SH_CURSOR_NEXT,
    SH_CURSOR_PREV,
    SH_CURSOR_SEEK, /* the first key >= the given key */
} sh_cursor_op;

/* A key and its (opened) value. Both stay valid until the next call on the cursor or the end
 * of its transaction, whichever comes first. */
typedef struct sh_kv {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} sh_kv;

sh_err sh_cursor_open(sh_txn *t, sh_db db, sh_cursor **out, sh_error *err) SH_WUR;

/* Moves the cursor and returns its entry. SH_E_NOT_FOUND past either end. A sealed value that
 * does not open gives its error with the cursor positioned on it (kv->key is set, kv->val is
 * NULL), so a scan can name the damaged key and carry on. */
sh_err sh_cursor_get(sh_cursor *c, sh_cursor_op op, const void *seek, size_t seeklen, sh_kv *kv,
                     sh_error *err) SH_WUR;

/* Moves the cursor like sh_cursor_get without opening the value (kv->val is NULL): for
 * counting or scanning keys of a sealed database without decrypting it. */
sh_err sh_cursor_key(sh_cursor *c, sh_cursor_op op, const void *seek, size_t seeklen, sh_kv *kv,
                     sh_error *err) SH_WUR;

void sh_cursor_close(sh_cursor **c);

#endif
