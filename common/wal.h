/*
 * wal.h — the store's write-ahead log (WAL): an append-only file of checksummed, numbered records,
 * each made durable by one fdatasync, that lets a busy store commit a batch without committing its
 * LMDB tree (store.c decides when; docs/store-format.md, "The write-ahead log", has the byte
 * layout).
 *
 * Owns: the file <store dir>/wal and the encoding of the records and of the operations a
 * record holds. Knows nothing of LMDB.
 * Never: reports a record durable before fdatasync returned; hands back a record whose
 * checksum fails; passes over a damaged record that later records depend on.
 */
#ifndef SHAREHUB_WAL_H
#define SHAREHUB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#define SH_WAL_FILE     "wal"
#define SH_WAL_HEAD     16 /* "SHW1", sequence number (u64), payload length (u32) */
#define SH_WAL_MAC      16 /* the first 16 bytes of a SHA-256 of label, head and payload */
#define SH_WAL_OP_PUT   'P'
#define SH_WAL_OP_DEL   'D'
#define SH_WAL_MAX_BODY ((size_t)64 << 20) /* a longer record is refused, never written */

typedef struct sh_wal sh_wal;

/* Opens dir/wal, creating it (0600) when create is set; SH_E_NOT_FOUND when it is absent
 * and create is not; SH_E_STORE_CORRUPT when it is not a regular file (a link is not
 * followed); SH_E_IO otherwise. The next append goes to offset 0. */
sh_err sh_wal_open(const char *dir, int create, sh_wal **out, sh_error *err);

void sh_wal_close(sh_wal **j);

/* Writes record seq holding body[0..len) at the write offset and fdatasyncs it; the offset
 * moves past it only when both succeeded. Errors: SH_E_DISK_FULL, SH_E_IO, SH_E_INVAL. */
sh_err sh_wal_append(sh_wal *j, uint64_t seq, const void *body, size_t len, sh_error *err);

/* The next append goes to offset 0: every record in the file is in the tree. */
void sh_wal_rewind(sh_wal *j);

/* Bytes written since the last rewind. */
size_t sh_wal_used(const sh_wal *j);

/* Calls fn for records after+1, after+2, ... up to the first that is missing, torn (short,
 * or its checksum fails) or numbered otherwise: the end. They start at offset 0, or after
 * whole records numbered after and less, in a row. *last is the number of
 * the last record given to fn (after, if none). SH_E_STORE_CORRUPT when a whole record
 * numbered past the end lies beyond it (a damaged record with later ones after it); fn's
 * error stops the replay and is returned. */
typedef sh_err (*sh_wal_fn)(void *ctx, uint64_t seq, const uint8_t *body, size_t len,
                            sh_error *err);
sh_err sh_wal_replay(sh_wal *j, uint64_t after, sh_wal_fn fn, void *ctx, uint64_t *last,
                     sh_error *err);

/* ---- the operations in a record's body -------------------------------------------------- */

/* Appends to o (a body being built; sh_buf_free wipes it) one put (val non-NULL) or delete
 * (val NULL) of key in the named database. -1 when out of memory or a length is out of range. */
int sh_wal_ops_add(sh_buf *o, const char *db, const void *key, size_t klen, const void *val,
                   size_t vlen);

typedef struct sh_wal_op {
    uint8_t op; /* SH_WAL_OP_PUT or SH_WAL_OP_DEL */
    char db[32];
    const uint8_t *key, *val;
    size_t klen, vlen;
} sh_wal_op;

/* Reads the operation at *pos of body and moves *pos past it: 1 read, 0 at the end, -1 when
 * malformed. */
int sh_wal_op_next(const uint8_t *body, size_t len, size_t *pos, sh_wal_op *op);

#endif
