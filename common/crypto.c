/*
 * crypto.c — AES-256-GCM sealing, HKDF and HMAC through OpenSSL 3 EVP; Ed25519 signatures and
 * verifications through libsodium (about three times faster to verify than OpenSSL 3's, and a
 * verification per batch is the dearest step of an event at low rates); key files as PEM.
 *
 * Owns: key bytes (zeroised on every exit path), nonce generation, the sealed-value layout.
 * Never: returns unauthenticated plaintext, reuses a nonce on purpose, or trusts a key file
 * whose permissions let anyone but its owner read or change it.
 */
#include "crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <sodium.h>

/* enc and dec hold the AES-256-GCM key schedule, made once: a seal or open sets only its
 * nonce (so a key is used by one thread at a time, as everything in a sharehub process is). */
struct sh_key {
    uint8_t bytes[SH_KEY_BYTES];
    uint8_t id[SH_KEY_ID_BYTES];
    EVP_CIPHER_CTX *enc, *dec;
};

struct sh_mac {
    EVP_MAC_CTX *ctx;
};

/* sk is libsodium's secret key: the 32-byte RFC 8032 seed (the PKCS#8 file's private key)
 * followed by the public key; wiped before it is freed. */
struct sh_signkey {
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    uint8_t pub[SH_SIGN_PUB_BYTES];
};

void sh_wipe(void *p, size_t len)
{
    if (p && len) OPENSSL_cleanse(p, len);
}

void sh_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int sh_hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int sh_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = sh_hex_digit(hex[2 * i]), lo = sh_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Random bytes come from the kernel (getrandom), drawn 4 KiB at a time into a per-thread pool:
 * on this kind of machine a system call per nonce cost more than the seal it was for. Bytes
 * are wiped from the pool as they are handed out, and a forked child discards its copy of the
 * pool (it would otherwise hand out the same bytes as its parent). */
#define POOL_BYTES 4096
static atomic_uint s_fork_gen = 1;
static pthread_once_t s_fork_once = PTHREAD_ONCE_INIT;
static _Thread_local struct {
    uint8_t bytes[POOL_BYTES];
    size_t left; /* unused bytes at the end of bytes[] */
    unsigned gen;
} s_pool;

static void s_forked(void)
{
    atomic_fetch_add(&s_fork_gen, 1);
}

static void s_fork_watch(void)
{
    (void)pthread_atfork(NULL, NULL, s_forked);
}

static sh_err s_getrandom(uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return SH_E_IO;
        }
        p += r;
        len -= (size_t)r;
    }
    return SH_OK;
}

sh_err sh_random(void *buf, size_t len)
{
    if (pthread_once(&s_fork_once, s_fork_watch) != 0) return SH_E_IO;
    if (len > POOL_BYTES / 16) return s_getrandom(buf, len);
    unsigned gen = atomic_load(&s_fork_gen);
    if (s_pool.gen != gen || s_pool.left < len) {
        sh_wipe(s_pool.bytes, sizeof s_pool.bytes);
        s_pool.left = 0;
        if (s_getrandom(s_pool.bytes, sizeof s_pool.bytes) != SH_OK) return SH_E_IO;
        s_pool.left = sizeof s_pool.bytes;
        s_pool.gen = gen;
    }
    uint8_t *from = s_pool.bytes + sizeof s_pool.bytes - s_pool.left;
    memcpy(buf, from, len);
    sh_wipe(from, len);
    s_pool.left -= len;
    return SH_OK;
}

/* ---- key files ------------------------------------------------------------------------ */

/* A file with a POSIX access ACL shows its ACL mask as its group bits. systemd hands a service
 * its credentials that way: mode 0400, owned by root, and an ACL entry letting the service's
 * user read it. Such a file is private when nobody but this process's user may read or write
 * it: no group entry grants anything, no other user is named, "other" has nothing.
 * 1 private, 0 not, -1 no ACL (or none readable: judge by the mode). */
static int s_acl_private(int fd)
{
    /* linux/posix_acl_xattr.h: u32 version 2, then entries of u16 tag, u16 perm, u32 id */
    uint8_t buf[8 * 64 + 4];
    ssize_t n = fgetxattr(fd, "system.posix_acl_access", buf, sizeof buf);
    if (n < 4 || (n - 4) % 8 || buf[0] != 2) return -1;
    unsigned mask = 7;
    for (ssize_t at = 4; at < n; at += 8)
        if ((buf[at] | buf[at + 1] << 8) == 0x10) mask = buf[at + 2] & 7u;
    for (ssize_t at = 4; at < n; at += 8) {
        unsigned tag = buf[at] | buf[at + 1] << 8, perm = buf[at + 2] & 7u;
        uint32_t id = (uint32_t)buf[at + 4] | (uint32_t)buf[at + 5] << 8 |
                      (uint32_t)buf[at + 6] << 16 | (uint32_t)buf[at + 7] << 24;
        if (tag == 0x20 && perm) return 0;                             /* other */
        if ((tag == 0x04 || tag == 0x08) && (perm & mask)) return 0;   /* a group */
        if (tag == 0x02 && (perm & mask) && id != geteuid()) return 0; /* another user */
    }
    return 1;
}

/* Opens a key file for reading and refuses it unless it is a regular file that only its owner
 * (or, through an ACL, only this process's user) can access. The check is made on the open
 * descriptor, so the file cannot be swapped between check and read. Reads at most cap-1 bytes and
 * NUL-terminates. */
static sh_err s_read_key_file(const char *path, char *buf, size_t cap, size_t *len, sh_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return sh_error_set(err, SH_E_KEY_MISSING, "%s", path);
        if (errno == ELOOP)
            return sh_error_set(err, SH_E_KEY_PERMISSIONS, "%s is a symbolic link", path);
        return sh_error_set(err, SH_E_IO, "open %s: %s", path, strerror(errno));
    }
    struct stat st;
    sh_err rc = SH_OK;
    if (fstat(fd, &st) != 0) {
        rc = sh_error_set(err, SH_E_IO, "fstat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = sh_error_set(err, SH_E_KEY_PERMISSIONS, "%s is not a regular file", path);
    } else if ((st.st_mode & S_IRWXO) || ((st.st_mode & S_IRWXG) && s_acl_private(fd) != 1)) {
        rc = sh_error_set(err, SH_E_KEY_PERMISSIONS, "%s has mode %04o; want 0600 or 0400", path,
                          (unsigned)(st.st_mode & 07777));
    } else {
        size_t n = 0;
        while (n < cap - 1) {
            ssize_t r = read(fd, buf + n, cap - 1 - n);
            if (r < 0) {
                if (errno == EINTR) continue;
                rc = sh_error_set(err, SH_E_IO, "read %s: %s", path, strerror(errno));
                break;
            }
            if (r == 0) break;
            n += (size_t)r;
        }
        buf[n] = '\0';
        *len = n;
    }
    close(fd);
    return rc;
}

void sh_key_export(const sh_key *k, uint8_t out[SH_KEY_BYTES])
{
    memcpy(out, k->bytes, SH_KEY_BYTES);
}

sh_err sh_secret_file_read(const char *path, char *buf, size_t cap, size_t *len, sh_error *err)
{
    return s_read_key_file(path, buf, cap, len, err);
}

/* Creates path exclusively with mode 0600 and writes data. */
static sh_err s_write_new_file(const char *path, const void *data, size_t len, sh_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return sh_error_set(err, SH_E_EXISTS, "%s already exists; not overwritten", path);
        return sh_error_set(err, SH_E_IO, "create %s: %s", path, strerror(errno));
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            sh_error_set(err, SH_E_IO, "write %s: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return SH_E_IO;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        sh_error_set(err, SH_E_IO, "sync %s: %s", path, strerror(errno));
        unlink(path);
        return SH_E_IO;
    }
    return SH_OK;
}

sh_err sh_secret_file_write(const char *path, const void *data, size_t len, sh_error *err)
{
    return s_write_new_file(path, data, len, err);
}

/* ---- symmetric keys ------------------------------------------------------------------- */

static sh_err s_key_finish(sh_key *k)
{
    static const char label[] = "sharehub/v1/key-id";
    uint8_t mac[SH_MAC_BYTES];
    size_t maclen = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->bytes, SH_KEY_BYTES,
                   (const unsigned char *)label, sizeof label - 1, mac, sizeof mac, &maclen))
        return SH_E_CRYPTO;
    memcpy(k->id, mac, SH_KEY_ID_BYTES);
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    k->enc = EVP_CIPHER_CTX_new();
    k->dec = EVP_CIPHER_CTX_new();
    int ok = gcm && k->enc && k->dec &&
             EVP_EncryptInit_ex(k->enc, gcm, NULL, k->bytes, NULL) == 1 &&
             EVP_DecryptInit_ex(k->dec, gcm, NULL, k->bytes, NULL) == 1;
    EVP_CIPHER_free(gcm); /* the contexts hold their own reference */
    return ok ? SH_OK : SH_E_CRYPTO;
}

sh_err sh_key_from_bytes(const uint8_t raw[SH_KEY_BYTES], sh_key **out)
{
    *out = NULL;
    sh_key *k = calloc(1, sizeof *k);
    if (!k) return SH_E_NOMEM;
    memcpy(k->bytes, raw, SH_KEY_BYTES);
    sh_err rc = s_key_finish(k);
    if (rc != SH_OK) {
        sh_key_destroy(&k);
        return rc;
    }
    *out = k;
    return SH_OK;
}

sh_err sh_key_generate_file(const char *path, sh_error *err)
{
    uint8_t raw[SH_KEY_BYTES];
    char hex[2 * SH_KEY_BYTES + 1];
    if (sh_random(raw, sizeof raw) != SH_OK)
        return sh_error_set(err, SH_E_IO, "no random bytes for a key");
    sh_hex_encode(raw, sizeof raw, hex);
    hex[2 * SH_KEY_BYTES] = '\n'; /* replaces the NUL: the file is 64 digits and a newline */
    sh_err rc = s_write_new_file(path, hex, sizeof hex, err);
    sh_wipe(raw, sizeof raw);
    sh_wipe(hex, sizeof hex);
    return rc;
}

sh_err sh_key_load_file(const char *path, sh_key **out, sh_error *err)
{
    *out = NULL;
    char buf[128];
    size_t n = 0;
    uint8_t raw[SH_KEY_BYTES];
    sh_err rc = s_read_key_file(path, buf, sizeof buf, &n, err);
    if (rc != SH_OK) goto done;
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n != 2 * SH_KEY_BYTES) {
        rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: want 64 hex digits", path);
        goto done;
    }
    for (size_t i = 0; i < SH_KEY_BYTES; i++) {
        int hi = sh_hex_digit(buf[2 * i]), lo = sh_hex_digit(buf[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: want 64 hex digits", path);
            goto done;
        }
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    rc = sh_key_from_bytes(raw, out);
    if (rc != SH_OK) sh_error_set(err, rc, "%s", path);
done:
    sh_wipe(buf, sizeof buf);
    sh_wipe(raw, sizeof raw);
    return rc;
}

sh_err sh_key_derive(const sh_key *master, const void *salt, size_t saltlen, const char *label,
                     sh_key **out)
{
    *out = NULL;
    char info[128];
    int n = snprintf(info, sizeof info, "sharehub/v1/%s", label);
    if (n < 0 || (size_t)n >= sizeof info) return SH_E_INVAL;

    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!ctx) return SH_E_CRYPTO;

    OSSL_PARAM params[5], *p = params;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master->bytes, SH_KEY_BYTES);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, (size_t)n);
    if (salt && saltlen)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    *p = OSSL_PARAM_construct_end();

    uint8_t raw[SH_KEY_BYTES];
    int ok = EVP_KDF_derive(ctx, raw, sizeof raw, params);
    EVP_KDF_CTX_free(ctx);
    sh_err rc = ok == 1 ? sh_key_from_bytes(raw, out) : SH_E_CRYPTO;
    sh_wipe(raw, sizeof raw);
    return rc;
}

void sh_sha256(const void *p, size_t n, uint8_t out[32])
{
    /* a context and digest fetched once per thread: every audit entry is hashed, and OpenSSL 3
     * fetches the algorithm again on each EVP_Digest */
    static _Thread_local EVP_MD_CTX *ctx;
    static _Thread_local EVP_MD *md;
    unsigned len = 0;
    if ((!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL))) ||
        (!ctx && !(ctx = EVP_MD_CTX_new())) || EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, p, n) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
        memset(out, 0, 32); /* (only when out of memory) */
}

void sh_key_id(const sh_key *k, uint8_t out[SH_KEY_ID_BYTES])
{
    memcpy(out, k->id, SH_KEY_ID_BYTES);
}

void sh_key_destroy(sh_key **k)
{
    if (!k || !*k) return;
    EVP_CIPHER_CTX_free((*k)->enc); /* cleanses the key schedule */
    EVP_CIPHER_CTX_free((*k)->dec);
    sh_wipe(*k, sizeof **k);
    free(*k);
    *k = NULL;
}

/* ---- sealing -------------------------------------------------------------------------- */

sh_err sh_seal(const sh_key *k, const void *ad, size_t adlen, const void *pt, size_t ptlen,
               uint8_t *out, size_t outcap, size_t *outlen)
{
    *outlen = 0;
    if (ptlen > (size_t)INT32_MAX - SH_SEAL_OVERHEAD || adlen > (size_t)INT32_MAX)
        return SH_E_INVAL;
    if (outcap < ptlen + SH_SEAL_OVERHEAD) return SH_E_RANGE;

    uint8_t *hdr = out, *nonce = out + 1 + SH_KEY_ID_BYTES, *ct = out + SH_SEAL_HEADER;
    hdr[0] = SH_SEAL_VERSION;
    memcpy(hdr + 1, k->id, SH_KEY_ID_BYTES);
    if (sh_random(nonce, SH_NONCE_BYTES) != SH_OK) return SH_E_IO;

    EVP_CIPHER_CTX *ctx = k->enc;
    int len = 0, ok = 1;
    size_t total = 0;
    ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce);
    ok = ok && EVP_EncryptUpdate(ctx, NULL, &len, hdr, SH_SEAL_HEADER);
    if (ok && adlen) ok = EVP_EncryptUpdate(ctx, NULL, &len, ad, (int)adlen);
    if (ok && ptlen) {
        ok = EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen);
        total = (size_t)len;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, ct + total, &len);
    total += (size_t)len;
    ok = ok && total == ptlen &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SH_TAG_BYTES, ct + total);
    if (!ok) {
        sh_wipe(out, outcap);
        return SH_E_CRYPTO;
    }
    *outlen = total + SH_SEAL_OVERHEAD;
    return SH_OK;
}

sh_err sh_open(const sh_key *k, const void *ad, size_t adlen, const uint8_t *in, size_t inlen,
               uint8_t *out, size_t outcap, size_t *outlen)
{
    *outlen = 0;
    if (inlen < SH_SEAL_OVERHEAD || in[0] != SH_SEAL_VERSION) return SH_E_SEAL_FORMAT;
    if (inlen > (size_t)INT32_MAX || adlen > (size_t)INT32_MAX) return SH_E_INVAL;
    if (CRYPTO_memcmp(in + 1, k->id, SH_KEY_ID_BYTES) != 0) return SH_E_WRONG_KEY;
    size_t ctlen = inlen - SH_SEAL_OVERHEAD;
    if (outcap < ctlen) return SH_E_RANGE;

    const uint8_t *nonce = in + 1 + SH_KEY_ID_BYTES, *ct = in + SH_SEAL_HEADER;
    EVP_CIPHER_CTX *ctx = k->dec;
    int len = 0, ok = 1;
    size_t total = 0;
    ok = ok && EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce);
    ok = ok && EVP_DecryptUpdate(ctx, NULL, &len, in, SH_SEAL_HEADER);
    if (ok && adlen) ok = EVP_DecryptUpdate(ctx, NULL, &len, ad, (int)adlen);
    if (ok && ctlen) {
        ok = EVP_DecryptUpdate(ctx, out, &len, ct, (int)ctlen);
        total = (size_t)len;
    }
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SH_TAG_BYTES, (void *)(ct + ctlen));
    sh_err rc = SH_OK;
    if (!ok) {
        rc = SH_E_CRYPTO;
    } else if (EVP_DecryptFinal_ex(ctx, out + total, &len) != 1) {
        rc = SH_E_AUTH_FAILED;
    } else {
        total += (size_t)len;
    }
    if (rc != SH_OK || total != ctlen) {
        sh_wipe(out, ctlen);
        return rc != SH_OK ? rc : SH_E_CRYPTO;
    }
    *outlen = total;
    return SH_OK;
}

/* ---- HMAC ----------------------------------------------------------------------------- */

sh_err sh_mac_new(const sh_key *k, sh_mac **out)
{
    *out = NULL;
    sh_mac *m = calloc(1, sizeof *m);
    if (!m) return SH_E_NOMEM;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    m->ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!m->ctx || !EVP_MAC_init(m->ctx, k->bytes, SH_KEY_BYTES, params)) {
        sh_mac_destroy(&m);
        return SH_E_CRYPTO;
    }
    *out = m;
    return SH_OK;
}

sh_err sh_mac_compute(sh_mac *m, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t out[SH_MAC_BYTES])
{
    size_t outl = 0;
    /* A NULL key re-initialises with the key given to sh_mac_new (OpenSSL >= 3.0.3). */
    if (!EVP_MAC_init(m->ctx, NULL, 0, NULL) || !EVP_MAC_update(m->ctx, a, alen) ||
        (blen && !EVP_MAC_update(m->ctx, b, blen)) ||
        !EVP_MAC_final(m->ctx, out, &outl, SH_MAC_BYTES) || outl != SH_MAC_BYTES)
        return SH_E_CRYPTO;
    return SH_OK;
}

void sh_mac_destroy(sh_mac **m)
{
    if (!m || !*m) return;
    EVP_MAC_CTX_free((*m)->ctx);
    free(*m);
    *m = NULL;
}

int sh_mac_equal(const uint8_t a[SH_MAC_BYTES], const uint8_t b[SH_MAC_BYTES])
{
    return CRYPTO_memcmp(a, b, SH_MAC_BYTES) == 0;
}

/* ---- Ed25519 -------------------------------------------------------------------------- */

sh_err sh_signkey_generate_file(const char *path, sh_error *err)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey) return sh_error_set(err, SH_E_CRYPTO, "Ed25519 key generation failed");
    BIO *bio = BIO_new(BIO_s_secmem());
    sh_err rc = SH_OK;
    char *pem = NULL;
    long len = 0;
    if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) ||
        (len = BIO_get_mem_data(bio, &pem)) <= 0)
        rc = sh_error_set(err, SH_E_CRYPTO, "Ed25519 key encoding failed");
    else
        rc = s_write_new_file(path, pem, (size_t)len, err);
    BIO_free(bio); /* secure-memory BIO: cleansed on free */
    EVP_PKEY_free(pkey);
    return rc;
}

static pthread_once_t s_sodium_once = PTHREAD_ONCE_INIT;
static int s_sodium_rc = -1;

static void s_sodium_init(void)
{
    s_sodium_rc = sodium_init();
}

/* libsodium's own setup, once a process, before its first signature or verification (the
 * broker's network process does both before it enters its sandbox). */
static int s_sodium(void)
{
    return pthread_once(&s_sodium_once, s_sodium_init) == 0 && s_sodium_rc >= 0;
}

/* The key libsodium signs with, from an OpenSSL Ed25519 key: its seed expanded, and checked
 * against the public key OpenSSL derives from the same seed. */
static sh_err s_signkey_from(EVP_PKEY *pkey, sh_signkey *k)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pub[SH_SIGN_PUB_BYTES];
    size_t seedlen = sizeof seed, publen = sizeof pub;
    int ok = s_sodium() && EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) == 1 &&
             seedlen == sizeof seed && EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 &&
             publen == sizeof pub && crypto_sign_seed_keypair(k->pub, k->sk, seed) == 0 &&
             memcmp(pub, k->pub, sizeof pub) == 0;
    sh_wipe(seed, sizeof seed);
    return ok ? SH_OK : SH_E_CRYPTO;
}

sh_err sh_signkey_load_file(const char *path, sh_signkey **out, sh_error *err)
{
    *out = NULL;
    char buf[4096];
    size_t n = 0;
    sh_err rc = s_read_key_file(path, buf, sizeof buf, &n, err);
    if (rc != SH_OK) return rc;
    BIO *bio = BIO_new_mem_buf(buf, (int)n);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    sh_wipe(buf, sizeof buf);
    sh_signkey *k = NULL;
    if (!pkey || !EVP_PKEY_is_a(pkey, "ED25519")) {
        rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: not an Ed25519 PKCS#8 PEM private key", path);
    } else if (!(k = calloc(1, sizeof *k))) {
        rc = sh_error_set(err, SH_E_NOMEM, "%s", path);
    } else if (s_signkey_from(pkey, k) != SH_OK) {
        rc = sh_error_set(err, SH_E_CRYPTO, "%s: cannot read the key", path);
    } else {
        EVP_PKEY_free(pkey);
        *out = k;
        return SH_OK;
    }
    EVP_PKEY_free(pkey); /* OpenSSL cleanses a private key as it frees it */
    sh_signkey_destroy(&k);
    return rc;
}

sh_err sh_signkey_generate(sh_signkey **out)
{
    *out = NULL;
    sh_signkey *k = s_sodium() ? calloc(1, sizeof *k) : NULL;
    if (!k || crypto_sign_keypair(k->pub, k->sk) != 0) {
        sh_signkey_destroy(&k);
        return SH_E_CRYPTO;
    }
    *out = k;
    return SH_OK;
}

void sh_signkey_public(const sh_signkey *k, uint8_t pub[SH_SIGN_PUB_BYTES])
{
    memcpy(pub, k->pub, SH_SIGN_PUB_BYTES);
}

sh_err sh_sign(const sh_signkey *k, const void *msg, size_t len, uint8_t sig[SH_SIG_BYTES])
{
    if (!s_sodium()) return SH_E_CRYPTO;
    return crypto_sign_detached(sig, NULL, msg, len, k->sk) == 0 ? SH_OK : SH_E_CRYPTO;
}

/* RFC 8032 verification, with libsodium's stricter checks: besides an S of at least the group
 * order, it refuses a public key or an R that is not canonical or is of small order, which no
 * honest signer produces (docs/evidence.md says so). */
sh_err sh_verify(const uint8_t pub[SH_SIGN_PUB_BYTES], const void *msg, size_t len,
                 const uint8_t sig[SH_SIG_BYTES])
{
    if (!s_sodium()) return SH_E_CRYPTO;
    return crypto_sign_verify_detached(sig, msg, len, pub) == 0 ? SH_OK : SH_E_BAD_SIGNATURE;
}

void sh_signkey_destroy(sh_signkey **k)
{
    if (!k || !*k) return;
    sh_wipe(*k, sizeof **k);
    free(*k);
    *k = NULL;
}
