/*
 * store.c — LMDB environment, named databases, sealed values.
 *
 * Owns: the MDB_env and its handles; the store metadata in database "sh_meta":
 *   "format"    u32 big-endian SH_STORE_FORMAT          (plain)
 *   "store_id"  16 random bytes                          (plain)
 *   "key_check" sh_seal(data key, "sh_meta\0key_check", "sharehub key check v1")
 * and the keys of this store: root = HKDF(master, salt = store id, "store root"); every other
 * key is HKDF(root, label): "store data" seals values, "blind index" makes blinded keys.
 * The master key itself is not kept.
 * Never: returns a value that failed to open, or leaves a failed write transaction usable.
 */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>

#include "fault.h"
#include "store_int.h"

static const char s_meta_name[] = "sh_meta";
static const char s_check_text[] = "sharehub key check v1";

void sh_buf_free(sh_buf *b)
{
    if (!b) return;
    if (b->data) {
        sh_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

sh_err sh_buf_reserve(sh_buf *b, size_t n)
{
    if (b->cap >= n) return SH_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p) return SH_E_NOMEM;
    if (b->data) {
        memcpy(p, b->data, b->len);
        sh_wipe(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return SH_OK;
}

/* Maps an LMDB or errno result to a sharehub error, naming what was being done. */
sh_err sh_mdb_err(int rc, const char *what, sh_error *err)
{
    switch (rc) {
    case MDB_SUCCESS:
        return SH_OK;
    case MDB_NOTFOUND:
        return sh_error_set(err, SH_E_NOT_FOUND, "%s", what);
    case MDB_KEYEXIST:
        return sh_error_set(err, SH_E_EXISTS, "%s", what);
    case MDB_MAP_FULL:
        return sh_error_set(err, SH_E_MAP_FULL, "%s: raise map_size", what);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return sh_error_set(err, SH_E_DISK_FULL, "%s: %s", what, strerror(rc));
    case MDB_BAD_TXN:
        return sh_error_set(err, SH_E_TXN, "%s: transaction already failed", what);
    case EIO:
        return sh_error_set(err, SH_E_IO, "%s: %s", what, strerror(rc));
    default:
        return sh_error_set(err, SH_E_STORE, "%s: %s", what, mdb_strerror(rc));
    }
}

/* Additional data binding a sealed value to its place: db name || 0x00 || key. */
static size_t s_ad(const sh_store *s, sh_db db, const void *key, size_t klen, uint8_t *ad)
{
    size_t n = strlen(s->dbs[db].name);
    memcpy(ad, s->dbs[db].name, n);
    ad[n] = 0;
    memcpy(ad + n + 1, key, klen);
    return n + 1 + klen;
}

#define SH_KEY_MAX 511 /* LMDB's default maximum key size */
#define SH_AD_MAX  (SH_DB_NAME_MAX + 1 + SH_KEY_MAX)

/* ---- open / close -------------------------------------------------------------------- */

static bool s_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SH_DB_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

/* Opens a database inside txn and records it in the handle table. Caller holds s->lock. */
static sh_err s_db_open_locked(sh_store *s, MDB_txn *txn, const char *name, unsigned flags,
                               sh_db *out, sh_error *err)
{
    for (unsigned i = 0; i < s->ndbs; i++) {
        if (strcmp(s->dbs[i].name, name) == 0) {
            if (s->dbs[i].flags != flags)
                return sh_error_set(err, SH_E_INVAL, "database %s reopened with other flags", name);
            *out = i;
            return SH_OK;
        }
    }
    if (s->ndbs == SH_STORE_MAX_DBS)
        return sh_error_set(err, SH_E_INVAL, "more than %d databases", SH_STORE_MAX_DBS);
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn, name, s->readonly ? 0 : MDB_CREATE, &dbi);
    if (rc == MDB_NOTFOUND) return sh_error_set(err, SH_E_NOT_FOUND, "no database %s", name);
    if (rc) return sh_mdb_err(rc, name, err);
    unsigned i = s->ndbs++;
    s->dbs[i].dbi = dbi;
    s->dbs[i].flags = flags;
    strcpy(s->dbs[i].name, name);
    *out = i;
    return SH_OK;
}

/* Creates or checks the metadata, deriving the store's keys. Runs in the first write txn. */
static sh_err s_meta(sh_store *s, MDB_txn *txn, const sh_key *master, sh_error *err)
{
    sh_db meta;
    sh_err rc = s_db_open_locked(s, txn, s_meta_name, SH_DB_PLAIN, &meta, err);
    if (rc) return rc;
    MDB_dbi dbi = s->dbs[meta].dbi;
    MDB_val k = {6, (void *)"format"}, v;
    int mrc = mdb_get(txn, dbi, &k, &v);
    bool fresh = mrc == MDB_NOTFOUND;
    if (mrc && !fresh) return sh_mdb_err(mrc, "read sh_meta.format", err);

    if (fresh && s->readonly) return sh_error_set(err, SH_E_NOT_FOUND, "not a sharehub store");
    if (fresh) {
        uint8_t fmt[4] = {0, 0, 0, SH_STORE_FORMAT};
        if (sh_random(s->id, sizeof s->id) != SH_OK)
            return sh_error_set(err, SH_E_IO, "no random bytes for the store id");
        MDB_val fv = {4, fmt}, ik = {8, (void *)"store_id"}, iv = {SH_STORE_ID_BYTES, s->id};
        if ((mrc = mdb_put(txn, dbi, &k, &fv, 0)) || (mrc = mdb_put(txn, dbi, &ik, &iv, 0)))
            return sh_mdb_err(mrc, "write sh_meta", err);
    } else {
        const uint8_t *f = v.mv_data;
        if (v.mv_size != 4)
            return sh_error_set(err, SH_E_STORE_CORRUPT, "sh_meta.format has %zu bytes", v.mv_size);
        uint32_t fmt = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
        if (fmt != SH_STORE_FORMAT)
            return sh_error_set(err, SH_E_STORE_VERSION, "format %u; this build reads %d", fmt,
                                SH_STORE_FORMAT);
        MDB_val ik = {8, (void *)"store_id"}, iv;
        if ((mrc = mdb_get(txn, dbi, &ik, &iv)) || iv.mv_size != SH_STORE_ID_BYTES)
            return sh_error_set(err, SH_E_STORE_CORRUPT, "sh_meta.store_id missing or damaged");
        memcpy(s->id, iv.mv_data, SH_STORE_ID_BYTES);
    }

    if (!master) return SH_OK; /* sh_store_open_ro: the id is all it needs */
    if (sh_key_derive(master, s->id, sizeof s->id, "store root", &s->root) != SH_OK ||
        sh_key_derive(s->root, NULL, 0, "store data", &s->data) != SH_OK)
        return sh_error_set(err, SH_E_CRYPTO, "key derivation");
    sh_key *blind = NULL;
    rc = sh_key_derive(s->root, NULL, 0, "blind index", &blind);
    if (rc == SH_OK) rc = sh_mac_new(blind, &s->blind);
    sh_key_destroy(&blind);
    if (rc) return sh_error_set(err, SH_E_CRYPTO, "key derivation");

    static const char check_key[] = "key_check";
    uint8_t ad[SH_AD_MAX];
    size_t adlen = s_ad(s, meta, check_key, sizeof check_key - 1, ad);
    MDB_val ck = {sizeof check_key - 1, (void *)check_key}, cv;
    if (fresh) {
        uint8_t sealed[sizeof s_check_text - 1 + SH_SEAL_OVERHEAD];
        size_t n = 0;
        if (sh_seal(s->data, ad, adlen, s_check_text, sizeof s_check_text - 1, sealed,
                    sizeof sealed, &n) != SH_OK)
            return sh_error_set(err, SH_E_CRYPTO, "sealing the key check");
        cv.mv_size = n;
        cv.mv_data = sealed;
        if ((mrc = mdb_put(txn, dbi, &ck, &cv, 0))) return sh_mdb_err(mrc, "write sh_meta", err);
        return SH_OK;
    }
    if ((mrc = mdb_get(txn, dbi, &ck, &cv)))
        return sh_error_set(err, SH_E_STORE_CORRUPT, "sh_meta.key_check missing");
    uint8_t plain[64];
    size_t n = 0;
    rc = cv.mv_size > sizeof plain + SH_SEAL_OVERHEAD
             ? SH_E_SEAL_FORMAT
             : sh_open(s->data, ad, adlen, cv.mv_data, cv.mv_size, plain, sizeof plain, &n);
    if (rc == SH_E_WRONG_KEY)
        return sh_error_set(err, SH_E_WRONG_KEY, "the store was created under another master key");
    if (rc != SH_OK || n != sizeof s_check_text - 1 || memcmp(plain, s_check_text, n) != 0)
        return sh_error_set(err, SH_E_STORE_CORRUPT, "sh_meta.key_check does not open");
    return SH_OK;
}

static sh_err s_open(const char *dir, const sh_key *master, const sh_store_opts *opts,
                     sh_store **out, sh_error *err)
{
    *out = NULL;
    sh_error_clear(err);
    struct stat st;
    if (!master) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(dir, &st) != 0) return sh_error_set(err, SH_E_IO, "%s: %s", dir, strerror(errno));
        if (stat(path, &st) != 0)
            return sh_error_set(err, SH_E_NOT_FOUND, "%s: not a sharehub store (no data.mdb)", dir);
    } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return sh_error_set(err, errno == ENOSPC ? SH_E_DISK_FULL : SH_E_IO, "mkdir %s: %s", dir,
                            strerror(errno));
    }
    sh_store *s = calloc(1, sizeof *s);
    if (!s) return sh_error_set(err, SH_E_NOMEM, "store");
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return sh_error_set(err, SH_E_NOMEM, "store mutex");
    }
    s->readonly = !master;
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->j.mode = opts ? opts->wal : SH_STORE_WAL_OFF;
    s->j.owner = pthread_self();
    size_t map = opts && opts->map_size ? opts->map_size : SH_STORE_DEFAULT_MAP;
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, SH_STORE_MAX_DBS);
    if (!rc && !s->readonly) rc = mdb_env_set_mapsize(s->env, map);
    if (!rc) rc = mdb_env_open(s->env, dir, MDB_NOTLS | (s->readonly ? MDB_RDONLY : 0), 0600);
    /* a process killed inside a read transaction leaves its reader slot behind, which would
     * pin old pages (the file grows) until cleared */
    int dead = 0;
    if (!rc) rc = mdb_reader_check(s->env, &dead);
    if (!rc) rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    sh_err e = rc ? sh_mdb_err(rc, dir, err) : SH_OK;
    if (!e) {
        pthread_mutex_lock(&s->lock);
        e = s_meta(s, txn, master, err);
        pthread_mutex_unlock(&s->lock);
    }
    if (!e && !s->readonly) e = sj_recover_into(s, txn, err); /* a crash's WAL tail */
    if (!e) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
        e = sh_mdb_err(rc, "commit sh_meta", err);
    }
    if (!e && !s->readonly) sj_opened(s);
    if (txn) mdb_txn_abort(txn);
    if (e) {
        sh_store_destroy(&s);
        return e;
    }
    *out = s;
    return SH_OK;
}

sh_err sh_store_open(const char *dir, const sh_key *master, const sh_store_opts *opts,
                     sh_store **out, sh_error *err)
{
    *out = NULL;
    if (!dir || !master) return sh_error_set(err, SH_E_INVAL, "no directory or key");
    return s_open(dir, master, opts, out, err);
}

sh_err sh_store_open_ro(const char *dir, sh_store **out, sh_error *err)
{
    *out = NULL;
    if (!dir) return sh_error_set(err, SH_E_INVAL, "no directory");
    return s_open(dir, NULL, NULL, out, err);
}

void sh_store_destroy(sh_store **sp)
{
    if (!sp || !*sp) return;
    sh_store *s = *sp;
    if (s->env) sj_close(s);
    if (s->env) mdb_env_close(s->env);
    sh_key_destroy(&s->root);
    sh_key_destroy(&s->data);
    sh_mac_destroy(&s->blind);
    pthread_mutex_destroy(&s->lock);
    sh_wipe(s, sizeof *s);
    free(s);
    *sp = NULL;
}

sh_err sh_store_db(sh_store *s, const char *name, unsigned flags, sh_db *out, sh_error *err)
{
    if (!s_name_ok(name) || (flags != SH_DB_SEALED && flags != SH_DB_PLAIN))
        return sh_error_set(err, SH_E_INVAL, "database name or flags");
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->ndbs; i++) {
        if (strcmp(s->dbs[i].name, name) == 0) {
            /* already open: no transaction needed (and none may be started if the caller
             * holds the write transaction) */
            sh_err e =
                s->dbs[i].flags == flags
                    ? SH_OK
                    : sh_error_set(err, SH_E_INVAL, "database %s reopened with other flags", name);
            if (!e) *out = i;
            pthread_mutex_unlock(&s->lock);
            return e;
        }
    }
    MDB_txn *txn = NULL;
    sh_err e = s->readonly ? SH_OK : sj_checkpoint(s, err); /* (LMDB: one writer at a time) */
    int rc = e ? 0 : mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (!e) e = rc ? sh_mdb_err(rc, name, err) : s_db_open_locked(s, txn, name, flags, out, err);
    if (txn && !e) {
        rc = mdb_txn_commit(txn);
        e = sh_mdb_err(rc, name, err);
        if (e) s->ndbs--; /* the handle was not committed */
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

int sh_store_db_exists(sh_store *s, const char *name)
{
    if (!s_name_ok(name)) return 0;
    MDB_txn *txn = NULL;
    MDB_dbi main;
    MDB_val k = {strlen(name), (void *)name}, v;
    int found = 0;
    /* named databases are keys of the main (unnamed) database */
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) == 0) {
        found = mdb_dbi_open(txn, NULL, 0, &main) == 0 && mdb_get(txn, main, &k, &v) == 0;
        mdb_txn_abort(txn);
    }
    return found;
}

const uint8_t *sh_store_id(const sh_store *s)
{
    return s->id;
}

sh_err sh_store_derive_key(const sh_store *s, const char *label, sh_key **out)
{
    *out = NULL;
    if (!s->root) return SH_E_WRONG_KEY; /* opened read-only, without the master key */
    return sh_key_derive(s->root, NULL, 0, label, out);
}

sh_err sh_blind_compute(sh_mac *blind, const char *kind, const char *value,
                        uint8_t out[SH_BLIND_BYTES])
{
    if (!blind || !kind || !value) return SH_E_INVAL;
    return sh_mac_compute(blind, kind, strlen(kind) + 1, value, strlen(value), out);
}

sh_err sh_store_blind(sh_store *s, const char *kind, const char *value, uint8_t out[SH_BLIND_BYTES])
{
    if (!s->blind) return SH_E_WRONG_KEY;
    pthread_mutex_lock(&s->lock);
    sh_err rc = sh_blind_compute(s->blind, kind, value, out);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

sh_err sh_store_get_info(sh_store *s, sh_store_info *info)
{
    MDB_envinfo ei;
    MDB_stat st;
    if (mdb_env_info(s->env, &ei) || mdb_env_stat(s->env, &st)) return SH_E_STORE;
    info->map_size = ei.me_mapsize;
    info->page_size = st.ms_psize;
    info->used = (ei.me_last_pgno + 1) * (size_t)st.ms_psize;
    int fd = -1;
    struct stat fs;
    if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &fs) != 0) return SH_E_STORE;
    info->file_size = (size_t)fs.st_size;
    return SH_OK;
}

/* Finds LMDB's map of the data file in /proc/self/maps (LMDB does not say where it is: its
 * envinfo address is only the MDB_FIXEDMAP one), by the data file's device and inode. */
static sh_err s_find_map(sh_store *s, void **addr, size_t *len)
{
    *addr = NULL;
    int fd = -1;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) || fstat(fd, &st) != 0) return SH_E_STORE;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return SH_E_IO;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, ino;
        unsigned maj, mnr;
        if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &mnr, &ino) == 5 &&
            ino == (unsigned long)st.st_ino && maj == major(st.st_dev) && mnr == minor(st.st_dev) &&
            hi > lo) {
            *addr = (void *)lo;
            *len = hi - lo;
            break;
        }
    }
    fclose(f);
    return *addr ? SH_OK : SH_E_NOT_FOUND;
}

sh_err sh_store_release_pages(sh_store *s)
{
    void *addr;
    size_t len = 0;
    sh_err rc = s_find_map(s, &addr, &len); /* found afresh: never a stale address */
    if (rc) return rc;
    /* on a shared file mapping MADV_DONTNEED drops page table entries, never data */
    return madvise(addr, len, MADV_DONTNEED) == 0 ? SH_OK : SH_E_IO;
}

/* ---- transactions -------------------------------------------------------------------- */

sh_err sh_txn_begin(sh_store *s, int write, sh_txn **out, sh_error *err)
{
    *out = NULL;
    if (write && s->readonly) return sh_error_set(err, SH_E_TXN, "the store is open read-only");
    sh_txn *t = calloc(1, sizeof *t);
    if (!t) return sh_error_set(err, SH_E_NOMEM, "transaction");
    t->s = s;
    t->write = write;
    int took = 0;
    sh_err e = sj_begin(s, t, write, &took, err);
    int rc = e || took ? 0 : mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (e || rc) {
        free(t);
        return e ? e : sh_mdb_err(rc, "begin transaction", err);
    }
    *out = t;
    return SH_OK;
}

static sh_err s_check_db(const sh_txn *t, sh_db db, size_t klen, sh_error *err)
{
    if (!t) return sh_error_set(err, SH_E_TXN, "no transaction");
    if (t->failed) return sh_error_set(err, SH_E_TXN, "transaction already failed");
    if (db >= t->s->ndbs) return sh_error_set(err, SH_E_INVAL, "unknown database handle");
    if (klen == 0 || klen > SH_KEY_MAX)
        return sh_error_set(err, SH_E_INVAL, "key of %zu bytes; want 1-%d", klen, SH_KEY_MAX);
    return SH_OK;
}

sh_err sh_txn_put(sh_txn *t, sh_db db, const void *key, size_t klen, const void *val, size_t vlen,
                  unsigned flags, sh_error *err)
{
    sh_err e = s_check_db(t, db, klen, err);
    if (e) return e;
    if (!t->write) return sh_error_set(err, SH_E_TXN, "write in a read-only transaction");
    if (vlen > (size_t)INT32_MAX - SH_SEAL_OVERHEAD)
        return sh_error_set(err, SH_E_INVAL, "value of %zu bytes", vlen);
    sh_store *s = t->s;
    bool sealed = s->dbs[db].flags == SH_DB_SEALED;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {sealed ? vlen + SH_SEAL_OVERHEAD : vlen, (void *)val};
    unsigned mflags = (flags & SH_PUT_NEW ? MDB_NOOVERWRITE : 0) | (sealed ? MDB_RESERVE : 0);
    int rc = mdb_put(t->txn, s->dbs[db].dbi, &k, &v, mflags);
    if (rc == MDB_KEYEXIST) return sh_error_set(err, SH_E_EXISTS, "key in %s", s->dbs[db].name);
    if (rc) {
        e = sh_mdb_err(rc, s->dbs[db].name, err);
        t->failed = e; /* LMDB marks the transaction broken after a failed put */
        return e;
    }
    if (!sealed) {
        sj_record(t, db, &k, &v);
        return SH_OK;
    }
    /* Seal straight into the space LMDB reserved in the page: no plaintext copy lands. */
    uint8_t ad[SH_AD_MAX];
    size_t adlen = s_ad(s, db, key, klen, ad), n = 0;
    e = sh_seal(s->data, ad, adlen, val, vlen, v.mv_data, v.mv_size, &n);
    if (e) {
        t->failed = e; /* the reserved space holds nothing valid: never commit it */
        return sh_error_set(err, e, "sealing a value for %s", s->dbs[db].name);
    }
    sj_record(t, db, &k, &v);
    return SH_OK;
}

/* Opens (or copies) a stored value into b. */
static sh_err s_open_value(sh_store *s, sh_db db, const MDB_val *k, const MDB_val *v, sh_buf *b,
                           sh_error *err)
{
    b->len = 0;
    if (s->dbs[db].flags == SH_DB_PLAIN) {
        if (sh_buf_reserve(b, v->mv_size ? v->mv_size : 1))
            return sh_error_set(err, SH_E_NOMEM, "value");
        memcpy(b->data, v->mv_data, v->mv_size);
        b->len = v->mv_size;
        return SH_OK;
    }
    if (!s->data)
        return sh_error_set(err, SH_E_WRONG_KEY,
                            "%s is sealed and the store was opened without its master key",
                            s->dbs[db].name);
    if (v->mv_size < SH_SEAL_OVERHEAD)
        return sh_error_set(err, SH_E_SEAL_FORMAT, "value in %s is %zu bytes", s->dbs[db].name,
                            v->mv_size);
    size_t need = v->mv_size - SH_SEAL_OVERHEAD;
    if (sh_buf_reserve(b, need ? need : 1)) return sh_error_set(err, SH_E_NOMEM, "value");
    uint8_t ad[SH_AD_MAX];
    size_t adlen = s_ad(s, db, k->mv_data, k->mv_size, ad);
    sh_err e = sh_open(s->data, ad, adlen, v->mv_data, v->mv_size, b->data, b->cap, &b->len);
    if (e) return sh_error_set(err, e, "value in %s does not open", s->dbs[db].name);
    return SH_OK;
}

sh_err sh_txn_get(sh_txn *t, sh_db db, const void *key, size_t klen, sh_buf *out, sh_error *err)
{
    sh_err e = s_check_db(t, db, klen, err);
    if (e) return e;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->txn, t->s->dbs[db].dbi, &k, &v);
    if (rc) return sh_mdb_err(rc, t->s->dbs[db].name, err);
    return s_open_value(t->s, db, &k, &v, out, err);
}

sh_err sh_txn_del(sh_txn *t, sh_db db, const void *key, size_t klen, sh_error *err)
{
    sh_err e = s_check_db(t, db, klen, err);
    if (e) return e;
    if (!t->write) return sh_error_set(err, SH_E_TXN, "delete in a read-only transaction");
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(t->txn, t->s->dbs[db].dbi, &k, NULL);
    if (!rc) sj_record(t, db, &k, NULL);
    e = sh_mdb_err(rc, t->s->dbs[db].name, err);
    if (rc && rc != MDB_NOTFOUND) t->failed = e; /* LMDB marks the transaction broken */
    return e;
}

/* Ends t's LMDB side without committing it. */
static void s_txn_drop(sh_txn *t)
{
    if (t->child || t->borrowed)
        sj_drop(t);
    else
        mdb_txn_abort(t->txn);
}

/* LMDB reports a short write as EIO (mdb_page_flush), which is what a full filesystem
 * gives. Tell the two apart by asking the filesystem how much room is left. */
static bool s_disk_nearly_full(sh_store *s)
{
    int fd = -1;
    struct statvfs vfs;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &vfs) != 0) return false;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)1 << 20);
}

sh_err sh_txn_commit(sh_txn **tp, sh_error *err)
{
    if (!tp || !*tp) return sh_error_set(err, SH_E_TXN, "no transaction");
    sh_txn *t = *tp;
    *tp = NULL;
    sh_err e;
    if (t->failed) {
        s_txn_drop(t);
        e = sh_error_set(err, t->failed, "%s%snothing was written",
                         t->failed_why[0] ? t->failed_why : "transaction failed earlier", "; ");
    } else if (t->write && sh_fault("txn_commit")) {
        s_txn_drop(t);
        e = sh_error_set(err, SH_E_DISK_FULL, "commit: injected fault; nothing was written");
    } else if (t->hook && (e = t->hook(t->hook_ctx, t, SH_TXN_BEFORE, err)) != SH_OK) {
        s_txn_drop(t); /* what the hook must add could not be: nothing is written */
    } else if (t->child || t->borrowed) {
        e = sj_commit(t, err);
    } else {
        /* mdb_txn_commit frees the transaction whether or not it succeeds. */
        int rc = mdb_txn_commit(t->txn);
        if (rc == EIO && s_disk_nearly_full(t->s)) rc = ENOSPC;
        e = sh_mdb_err(rc, "commit", err);
        if (t->write) sj_plain_done(t->s);
    }
    if (t->hook) (void)t->hook(t->hook_ctx, NULL, e ? SH_TXN_FAILED : SH_TXN_DONE, NULL);
    sh_buf_free(&t->ops);
    free(t);
    return e;
}

void sh_txn_fail(sh_txn *t, sh_err code, const char *detail)
{
    if (!t || t->failed || !code) return;
    t->failed = code;
    snprintf(t->failed_why, sizeof t->failed_why, "%s", detail ? detail : "");
}

void sh_txn_on_commit(sh_txn *t, sh_txn_hook fn, void *ctx)
{
    if (!t || !t->write) return;
    t->hook = fn;
    t->hook_ctx = ctx;
}

void sh_txn_abort(sh_txn **tp)
{
    if (!tp || !*tp) return;
    if ((*tp)->hook) (void)(*tp)->hook((*tp)->hook_ctx, NULL, SH_TXN_FAILED, NULL);
    s_txn_drop(*tp);
    sh_buf_free(&(*tp)->ops);
    free(*tp);
    *tp = NULL;
}

/* ---- cursors ------------------------------------------------------------------------- */

sh_err sh_cursor_open(sh_txn *t, sh_db db, sh_cursor **out, sh_error *err)
{
    *out = NULL;
    sh_err e = s_check_db(t, db, 1, err);
    if (e) return e;
    sh_cursor *c = calloc(1, sizeof *c);
    if (!c) return sh_error_set(err, SH_E_NOMEM, "cursor");
    int rc = mdb_cursor_open(t->txn, t->s->dbs[db].dbi, &c->cur);
    if (rc) {
        free(c);
        return sh_mdb_err(rc, t->s->dbs[db].name, err);
    }
    c->t = t;
    c->db = db;
    *out = c;
    return SH_OK;
}

static sh_err s_cursor_move(sh_cursor *c, sh_cursor_op op, const void *seek, size_t seeklen,
                            sh_kv *kv, int open, sh_error *err)
{
    static const MDB_cursor_op ops[] = {
        [SH_CURSOR_FIRST] = MDB_FIRST,    [SH_CURSOR_LAST] = MDB_LAST,
        [SH_CURSOR_NEXT] = MDB_NEXT,      [SH_CURSOR_PREV] = MDB_PREV,
        [SH_CURSOR_SEEK] = MDB_SET_RANGE,
    };
    memset(kv, 0, sizeof *kv);
    if ((unsigned)op > SH_CURSOR_SEEK) return sh_error_set(err, SH_E_INVAL, "cursor op");
    MDB_val k = {seeklen, (void *)seek}, v;
    if (op == SH_CURSOR_SEEK && (seeklen == 0 || seeklen > SH_KEY_MAX))
        return sh_error_set(err, SH_E_INVAL, "seek key of %zu bytes", seeklen);
    int rc = mdb_cursor_get(c->cur, &k, &v, ops[op]);
    if (rc) return sh_mdb_err(rc, c->t->s->dbs[c->db].name, err);
    kv->key = k.mv_data;
    kv->klen = k.mv_size;
    if (!open) return SH_OK;
    if (c->t->s->dbs[c->db].flags == SH_DB_PLAIN) {
        kv->val = v.mv_data; /* points into the map: valid for the transaction */
        kv->vlen = v.mv_size;
        return SH_OK;
    }
    sh_err e = s_open_value(c->t->s, c->db, &k, &v, &c->buf, err);
    if (e) return e;
    kv->val = c->buf.data;
    kv->vlen = c->buf.len;
    return SH_OK;
}

sh_err sh_cursor_get(sh_cursor *c, sh_cursor_op op, const void *seek, size_t seeklen, sh_kv *kv,
                     sh_error *err)
{
    return s_cursor_move(c, op, seek, seeklen, kv, 1, err);
}

sh_err sh_cursor_key(sh_cursor *c, sh_cursor_op op, const void *seek, size_t seeklen, sh_kv *kv,
                     sh_error *err)
{
    return s_cursor_move(c, op, seek, seeklen, kv, 0, err);
}

void sh_cursor_close(sh_cursor **cp)
{
    if (!cp || !*cp) return;
    mdb_cursor_close((*cp)->cur);
    sh_buf_free(&(*cp)->buf);
    free(*cp);
    *cp = NULL;
}
