/*
 * wal.c — the store's WAL file (wal.h; the layout is in docs/store-format.md).
 *
 * Owns: the WAL's descriptor, its write offset and a buffer for one record.
 * Never: moves the write offset past a record that is not durable, or gives a reader bytes
 * whose checksum it has not checked.
 */
#define _GNU_SOURCE
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fault.h"
#include "store.h"

#define GROW ((size_t)1 << 20) /* the file grows by whole MiB of zeros, written once */

static const char s_magic[4] = {'S', 'H', 'W', '1'};
static const char s_label[] = "sharehub/v1/wal";

struct sh_wal {
    int fd;
    size_t off;  /* where the next record goes */
    size_t size; /* bytes of the file */
    sh_buf rec;  /* the record being written */
};

static sh_err s_errno(int e, const char *what, sh_error *err)
{
    return sh_error_set(err, e == ENOSPC || e == EDQUOT ? SH_E_DISK_FULL : SH_E_IO, "wal: %s: %s",
                        what, strerror(e));
}

sh_err sh_wal_open(const char *dir, int create, sh_wal **out, sh_error *err)
{
    *out = NULL;
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, SH_WAL_FILE) >= sizeof path)
        return sh_error_set(err, SH_E_INVAL, "wal: the store's path is too long");
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
    if (fd < 0 && errno == ENOENT && !create) return sh_error_set(err, SH_E_NOT_FOUND, "wal: none");
    if (fd < 0 && errno == ELOOP)
        return sh_error_set(err, SH_E_STORE_CORRUPT, "wal: %s is a symbolic link", path);
    if (fd < 0) return s_errno(errno, "open", err);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sh_err e = s_errno(errno, "fstat", err);
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sh_error_set(err, SH_E_STORE_CORRUPT, "wal: %s is not a regular file", path);
    }
    sh_wal *j = calloc(1, sizeof *j);
    if (!j) {
        close(fd);
        return sh_error_set(err, SH_E_NOMEM, "wal");
    }
    j->fd = fd;
    j->size = (size_t)st.st_size;
    *out = j;
    return SH_OK;
}

void sh_wal_close(sh_wal **jp)
{
    if (!jp || !*jp) return;
    sh_wal *j = *jp;
    if (j->fd >= 0) close(j->fd);
    sh_buf_free(&j->rec);
    free(j);
    *jp = NULL;
}

static int s_pwrite_all(int fd, const void *p, size_t n, size_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w == 0 ? (errno = EIO, -1) : -1;
        b += w, n -= (size_t)w, off += (size_t)w;
    }
    return 0;
}

/* The first SH_WAL_MAC bytes of SHA-256(label || head || body). */
static int s_mac(const uint8_t *head, const uint8_t *body, size_t len, uint8_t out[SH_WAL_MAC])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t md[32];
    unsigned mdlen = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, s_label, sizeof s_label - 1) == 1 &&
             EVP_DigestUpdate(c, head, SH_WAL_HEAD) == 1 && EVP_DigestUpdate(c, body, len) == 1 &&
             EVP_DigestFinal_ex(c, md, &mdlen) == 1;
    EVP_MD_CTX_free(c);
    if (ok) memcpy(out, md, SH_WAL_MAC);
    return ok ? 0 : -1;
}

static void s_head(uint8_t h[SH_WAL_HEAD], uint64_t seq, size_t len)
{
    memcpy(h, s_magic, 4);
    sh_be64_put(h + 4, seq);
    h[12] = (uint8_t)(len >> 24), h[13] = (uint8_t)(len >> 16), h[14] = (uint8_t)(len >> 8);
    h[15] = (uint8_t)len;
}

/* Zeros from the end of the file to past end: the blocks exist before a record lands there,
 * so a record's fdatasync has no allocation to record, save when the file grows. */
static sh_err s_grow(sh_wal *j, size_t end, sh_error *err)
{
    static const uint8_t zero[65536];
    size_t want = (end + GROW - 1) / GROW * GROW;
    while (j->size < want) {
        size_t n = want - j->size < sizeof zero ? want - j->size : sizeof zero;
        if (s_pwrite_all(j->fd, zero, n, j->size)) return s_errno(errno, "grow", err);
        j->size += n;
    }
    return SH_OK;
}

sh_err sh_wal_append(sh_wal *j, uint64_t seq, const void *body, size_t len, sh_error *err)
{
    if (!j || (!body && len) || len > SH_WAL_MAX_BODY)
        return sh_error_set(err, SH_E_INVAL, "wal: a record of %zu bytes", len);
    size_t total = SH_WAL_HEAD + len + SH_WAL_MAC;
    if (sh_buf_reserve(&j->rec, total)) return sh_error_set(err, SH_E_NOMEM, "wal: a record");
    uint8_t *r = j->rec.data;
    s_head(r, seq, len);
    if (len) memcpy(r + SH_WAL_HEAD, body, len);
    if (s_mac(r, r + SH_WAL_HEAD, len, r + SH_WAL_HEAD + len))
        return sh_error_set(err, SH_E_CRYPTO, "wal: SHA-256");
    if (sh_fault("wal_append"))
        return sh_error_set(err, SH_E_DISK_FULL, "wal: injected fault; nothing was written");
    sh_err e = s_grow(j, j->off + total, err);
    if (e) return e;
    if (sh_fault("wal_torn")) { /* the tests' power cut: half a record, then nothing */
        if (s_pwrite_all(j->fd, r, total / 2, j->off) == 0) (void)fdatasync(j->fd);
        raise(SIGKILL);
    }
    if (s_pwrite_all(j->fd, r, total, j->off)) return s_errno(errno, "write", err);
    if (fdatasync(j->fd) != 0) return s_errno(errno, "fdatasync", err);
    if (sh_fault("wal_synced")) raise(SIGKILL); /* durable here, in the tree nowhere */
    j->off += total;
    return SH_OK;
}

void sh_wal_rewind(sh_wal *j)
{
    if (j) j->off = 0;
}

size_t sh_wal_used(const sh_wal *j)
{
    return j ? j->off : 0;
}

/* The record at pos of buf[0..n) if it is whole, numbered seq or later (when at_least) or
 * exactly seq, and its checksum holds: its payload length; else -1. */
static long s_record_at(const uint8_t *buf, size_t n, size_t pos, uint64_t seq, int at_least,
                        uint64_t *got)
{
    if (n - pos < SH_WAL_HEAD + SH_WAL_MAC || memcmp(buf + pos, s_magic, 4) != 0) return -1;
    const uint8_t *h = buf + pos;
    *got = sh_be64_get(h + 4);
    size_t len = (size_t)h[12] << 24 | (size_t)h[13] << 16 | (size_t)h[14] << 8 | h[15];
    if (at_least ? *got < seq : *got != seq) return -1;
    if (len > SH_WAL_MAX_BODY || len > n - pos - SH_WAL_HEAD - SH_WAL_MAC) return -1;
    uint8_t mac[SH_WAL_MAC];
    if (s_mac(h, h + SH_WAL_HEAD, len, mac) || memcmp(mac, h + SH_WAL_HEAD + len, SH_WAL_MAC) != 0)
        return -1;
    return (long)len;
}

sh_err sh_wal_replay(sh_wal *j, uint64_t after, sh_wal_fn fn, void *ctx, uint64_t *last,
                     sh_error *err)
{
    *last = after;
    struct stat st;
    if (fstat(j->fd, &st) != 0) return s_errno(errno, "fstat", err);
    size_t n = (size_t)st.st_size;
    if (n == 0) return SH_OK;
    uint8_t *buf = malloc(n);
    if (!buf) return sh_error_set(err, SH_E_NOMEM, "wal: %zu bytes to read", n);
    sh_err e = SH_OK;
    for (size_t got = 0; got < n && !e;) {
        ssize_t r = pread(j->fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            e = r == 0 ? sh_error_set(err, SH_E_IO, "wal: shorter than its size")
                       : s_errno(errno, "read", err);
        else
            got += (size_t)r;
    }
    size_t pos = 0;
    uint64_t seq = after + 1, got = 0, prev = 0;
    /* Records the tree already holds, in a row (a checkpoint that reported a failure but
     * reached the disk leaves them in front of the ones that followed): passed over. */
    for (long len; !e && (len = s_record_at(buf, n, pos, 1, 1, &got)) >= 0 && got <= after &&
                   (!prev || got == prev + 1);
         prev = got)
        pos += SH_WAL_HEAD + (size_t)len + SH_WAL_MAC;
    for (long len; !e && (len = s_record_at(buf, n, pos, seq, 0, &got)) >= 0; seq++) {
        e = fn(ctx, seq, buf + pos + SH_WAL_HEAD, (size_t)len, err);
        if (!e) *last = seq;
        pos += SH_WAL_HEAD + (size_t)len + SH_WAL_MAC;
    }
    /* The end: a torn last record, zeros, or older records. A whole record numbered from here
     * on beyond it means the one here was damaged after it was written. */
    for (size_t p = pos; !e && p + SH_WAL_HEAD + SH_WAL_MAC <= n; p++) {
        const uint8_t *m = memmem(buf + p, n - p, s_magic, sizeof s_magic);
        if (!m) break;
        p = (size_t)(m - buf);
        if (s_record_at(buf, n, p, seq, 1, &got) >= 0)
            e = sh_error_set(err, SH_E_STORE_CORRUPT,
                             "wal: record %llu at offset %zu is damaged or missing, and "
                             "record %llu follows it at offset %zu",
                             (unsigned long long)seq, pos, (unsigned long long)got, p);
    }
    sh_wipe(buf, n);
    free(buf);
    return e;
}

/* ---- operations ------------------------------------------------------------------------ */

int sh_wal_ops_add(sh_buf *o, const char *db, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    size_t nl = strlen(db);
    if (nl == 0 || nl > SH_DB_NAME_MAX || klen == 0 || klen > 0xffff || vlen > 0xffffffffu)
        return -1;
    size_t need = 2 + nl + 2 + klen + (val ? 4 + vlen : 0);
    if (need > SIZE_MAX - o->len || sh_buf_reserve(o, o->len + need)) return -1;
    uint8_t *p = o->data + o->len;
    *p++ = val ? SH_WAL_OP_PUT : SH_WAL_OP_DEL;
    *p++ = (uint8_t)nl;
    memcpy(p, db, nl), p += nl;
    *p++ = (uint8_t)(klen >> 8), *p++ = (uint8_t)klen;
    memcpy(p, key, klen), p += klen;
    if (val) {
        *p++ = (uint8_t)(vlen >> 24), *p++ = (uint8_t)(vlen >> 16), *p++ = (uint8_t)(vlen >> 8);
        *p++ = (uint8_t)vlen;
        if (vlen) memcpy(p, val, vlen);
        p += vlen;
    }
    o->len = (size_t)(p - o->data);
    return 0;
}

int sh_wal_op_next(const uint8_t *b, size_t len, size_t *pos, sh_wal_op *op)
{
    size_t p = *pos;
    if (p == len) return 0;
    if (len - p < 2 || (b[p] != SH_WAL_OP_PUT && b[p] != SH_WAL_OP_DEL)) return -1;
    op->op = b[p];
    size_t nl = b[p + 1];
    p += 2;
    if (nl == 0 || nl > SH_DB_NAME_MAX || len - p < nl + 2) return -1;
    memcpy(op->db, b + p, nl);
    op->db[nl] = '\0';
    p += nl;
    op->klen = (size_t)b[p] << 8 | b[p + 1];
    p += 2;
    if (op->klen == 0 || len - p < op->klen) return -1;
    op->key = b + p;
    p += op->klen;
    op->val = NULL;
    op->vlen = 0;
    if (op->op == SH_WAL_OP_PUT) {
        if (len - p < 4) return -1;
        op->vlen = (size_t)b[p] << 24 | (size_t)b[p + 1] << 16 | (size_t)b[p + 2] << 8 | b[p + 3];
        p += 4;
        if (len - p < op->vlen) return -1;
        op->val = b + p;
        p += op->vlen;
    }
    *pos = p;
    return 1;
}
