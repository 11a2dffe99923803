/* test_crypto.c — sealing, tamper and wrong-key refusal, nonce uniqueness, HKDF, HMAC,
 * Ed25519, and key-file permission rules. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "crypto.h"
#include "shred.h"
#include "testutil.h"

static const char ad[] = "events\0key-1";

Test(crypto, seal_open_round_trip_all_sizes)
{
    sh_key *k = tu_key();
    size_t sizes[] = {0, 1, 15, 16, 17, 1000, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *pt = malloc(n + 1), *sealed = malloc(n + SH_SEAL_OVERHEAD), *back = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            pt[j] = (uint8_t)(j * 31 + 7);
        size_t slen = 0, blen = 99;
        cr_assert_eq(sh_seal(k, ad, sizeof ad, pt, n, sealed, n + SH_SEAL_OVERHEAD, &slen), SH_OK);
        cr_assert_eq(slen, n + SH_SEAL_OVERHEAD);
        cr_assert_eq(sealed[0], SH_SEAL_VERSION);
        if (n >= 16) cr_assert(memcmp(sealed + SH_SEAL_HEADER, pt, 16) != 0, "not encrypted");
        cr_assert_eq(sh_open(k, ad, sizeof ad, sealed, slen, back, n + 1, &blen), SH_OK);
        cr_assert_eq(blen, n);
        if (n) cr_assert_arr_eq(back, pt, n);
        free(pt);
        free(sealed);
        free(back);
    }
    sh_key_destroy(&k);
    cr_assert_null(k, "destroy clears the caller's pointer");
}

Test(crypto, every_flipped_bit_is_caught)
{
    sh_key *k = tu_key();
    const char msg[] = "a safeguarding narrative";
    uint8_t sealed[sizeof msg + SH_SEAL_OVERHEAD], back[sizeof msg];
    size_t slen = 0, blen = 0;
    cr_assert_eq(sh_seal(k, ad, sizeof ad, msg, sizeof msg, sealed, sizeof sealed, &slen), SH_OK);
    for (size_t byte = 0; byte < slen; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[byte] ^= (uint8_t)(1u << bit);
            memset(back, 0x55, sizeof back);
            sh_err rc = sh_open(k, ad, sizeof ad, sealed, slen, back, sizeof back, &blen);
            sh_err want = byte == 0                 ? SH_E_SEAL_FORMAT
                          : byte <= SH_KEY_ID_BYTES ? SH_E_WRONG_KEY
                                                    : SH_E_AUTH_FAILED;
            cr_assert_eq(rc, want, "byte %zu bit %d: got %s", byte, bit, sh_err_name(rc));
            cr_assert_eq(blen, 0);
            if (rc == SH_E_AUTH_FAILED)
                for (size_t j = 0; j < sizeof back; j++)
                    cr_assert_eq(back[j], 0, "no garbage plaintext is left behind");
            sealed[byte] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(sh_open(k, ad, sizeof ad, sealed, slen, back, sizeof back, &blen), SH_OK);
    sh_key_destroy(&k);
}

Test(crypto, associated_data_binds_the_value_to_its_place)
{
    sh_key *k = tu_key();
    uint8_t sealed[64], back[64];
    size_t slen, blen;
    cr_assert_eq(sh_seal(k, "events\0a", 8, "x", 1, sealed, sizeof sealed, &slen), SH_OK);
    cr_assert_eq(sh_open(k, "events\0b", 8, sealed, slen, back, sizeof back, &blen),
                 SH_E_AUTH_FAILED, "moved to another key");
    cr_assert_eq(sh_open(k, "others\0a", 8, sealed, slen, back, sizeof back, &blen),
                 SH_E_AUTH_FAILED, "moved to another database");
    cr_assert_eq(sh_open(k, NULL, 0, sealed, slen, back, sizeof back, &blen), SH_E_AUTH_FAILED);
    sh_key_destroy(&k);
}

Test(crypto, wrong_key_truncation_and_small_buffers)
{
    sh_key *k = tu_key(), *other = tu_key();
    uint8_t sealed[64], back[64];
    size_t slen, blen;
    cr_assert_eq(sh_seal(k, NULL, 0, "hello", 5, sealed, sizeof sealed, &slen), SH_OK);
    cr_assert_eq(sh_open(other, NULL, 0, sealed, slen, back, sizeof back, &blen), SH_E_WRONG_KEY);
    cr_assert_eq(sh_open(k, NULL, 0, sealed, slen - 1, back, sizeof back, &blen), SH_E_AUTH_FAILED);
    cr_assert_eq(sh_open(k, NULL, 0, sealed, SH_SEAL_OVERHEAD - 1, back, sizeof back, &blen),
                 SH_E_SEAL_FORMAT);
    cr_assert_eq(sh_open(k, NULL, 0, sealed, slen, back, 4, &blen), SH_E_RANGE);
    cr_assert_eq(sh_seal(k, NULL, 0, "hello", 5, sealed, 5 + SH_SEAL_OVERHEAD - 1, &slen),
                 SH_E_RANGE);
    sh_key_destroy(&k);
    sh_key_destroy(&other);
}

static int cmp12(const void *a, const void *b)
{
    return memcmp(a, b, SH_NONCE_BYTES);
}

Test(crypto, nonces_never_repeat)
{
    enum { N = 200000 };
    sh_key *k = tu_key();
    uint8_t *nonces = malloc((size_t)N * SH_NONCE_BYTES), sealed[SH_SEAL_OVERHEAD + 4];
    size_t slen;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sh_seal(k, NULL, 0, "same", 4, sealed, sizeof sealed, &slen), SH_OK);
        memcpy(nonces + (size_t)i * SH_NONCE_BYTES, sealed + 1 + SH_KEY_ID_BYTES, SH_NONCE_BYTES);
    }
    qsort(nonces, N, SH_NONCE_BYTES, cmp12);
    for (int i = 1; i < N; i++)
        cr_assert_neq(memcmp(nonces + (size_t)(i - 1) * SH_NONCE_BYTES,
                             nonces + (size_t)i * SH_NONCE_BYTES, SH_NONCE_BYTES),
                      0, "nonce repeated");
    free(nonces);
    sh_key_destroy(&k);
}

/* A forked child discards its copy of the random pool behind the nonces: a child and its
 * parent sealing with the same key (an agent forks nothing, but a library user might) never
 * draw the same nonce. */
Test(crypto, nonces_differ_after_fork)
{
    sh_key *k = tu_key();
    uint8_t mine[SH_SEAL_OVERHEAD + 4], theirs[SH_SEAL_OVERHEAD + 4];
    size_t slen;
    cr_assert_eq(sh_seal(k, NULL, 0, "warm", 4, mine, sizeof mine, &slen), SH_OK);
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        size_t n = 0;
        int ok = sh_seal(k, NULL, 0, "same", 4, theirs, sizeof theirs, &n) == SH_OK &&
                 write(fd[1], theirs, n) == (ssize_t)n;
        _exit(ok ? 0 : 1);
    }
    cr_assert_eq(sh_seal(k, NULL, 0, "same", 4, mine, sizeof mine, &slen), SH_OK);
    cr_assert_eq(read(fd[0], theirs, sizeof theirs), (ssize_t)sizeof theirs);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_neq(memcmp(mine + 1 + SH_KEY_ID_BYTES, theirs + 1 + SH_KEY_ID_BYTES, SH_NONCE_BYTES),
                  0, "parent and child drew the same nonce");
    close(fd[0]);
    close(fd[1]);
    sh_key_destroy(&k);
}

Test(crypto, hkdf_is_deterministic_and_separates_jobs)
{
    sh_key *m = tu_key(), *a1, *a2, *b, *salted;
    cr_assert_eq(sh_key_derive(m, NULL, 0, "store data", &a1), SH_OK);
    cr_assert_eq(sh_key_derive(m, NULL, 0, "store data", &a2), SH_OK);
    cr_assert_eq(sh_key_derive(m, NULL, 0, "audit mac", &b), SH_OK);
    cr_assert_eq(sh_key_derive(m, "salt", 4, "store data", &salted), SH_OK);
    uint8_t i1[8], i2[8], ib[8], is[8], im[8];
    sh_key_id(a1, i1);
    sh_key_id(a2, i2);
    sh_key_id(b, ib);
    sh_key_id(salted, is);
    sh_key_id(m, im);
    cr_assert_arr_eq(i1, i2, 8, "same master and label give the same key");
    cr_assert(memcmp(i1, ib, 8) != 0, "labels separate keys");
    cr_assert(memcmp(i1, is, 8) != 0, "salts separate keys");
    cr_assert(memcmp(i1, im, 8) != 0, "a derived key is not the master");
    /* a value sealed under one derived key opens only under that key */
    uint8_t sealed[64], back[64];
    size_t slen, blen;
    cr_assert_eq(sh_seal(a1, NULL, 0, "x", 1, sealed, sizeof sealed, &slen), SH_OK);
    cr_assert_eq(sh_open(a2, NULL, 0, sealed, slen, back, sizeof back, &blen), SH_OK);
    cr_assert_eq(sh_open(b, NULL, 0, sealed, slen, back, sizeof back, &blen), SH_E_WRONG_KEY);
    sh_key *m2;
    char long_label[200];
    memset(long_label, 'x', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    cr_assert_eq(sh_key_derive(m, NULL, 0, long_label, &m2), SH_E_INVAL);
    sh_key_destroy(&m);
    sh_key_destroy(&a1);
    sh_key_destroy(&a2);
    sh_key_destroy(&b);
    sh_key_destroy(&salted);
}

Test(crypto, hmac_matches_openssl_one_shot_on_reuse)
{
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)i;
    sh_key *k = NULL;
    sh_mac *m = NULL;
    cr_assert_eq(sh_key_from_bytes(raw, &k), SH_OK);
    cr_assert_eq(sh_mac_new(k, &m), SH_OK);
    const char *msgs[] = {"", "a", "the quick brown fox", "another message, reusing the ctx"};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 4; i++) {
            uint8_t ours[32], ref[32];
            unsigned reflen = 0;
            size_t n = strlen(msgs[i]);
            cr_assert_eq(sh_mac_compute(m, msgs[i], n / 2, msgs[i] + n / 2, n - n / 2, ours),
                         SH_OK);
            HMAC(EVP_sha256(), raw, 32, (const unsigned char *)msgs[i], n, ref, &reflen);
            cr_assert_arr_eq(ours, ref, 32, "round %d message %zu", round, i);
            cr_assert(sh_mac_equal(ours, ref));
            ref[31] ^= 1;
            cr_assert(!sh_mac_equal(ours, ref));
        }
    }
    sh_mac_destroy(&m);
    sh_key_destroy(&k);
}

Test(crypto, key_files)
{
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "master.key");
    sh_error err;
    sh_key *k = NULL, *k2 = NULL;
    struct stat st;
    cr_assert_eq(sh_key_generate_file(path, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 65, "64 hex digits and a newline");
    cr_assert_eq(sh_key_generate_file(path, &err), SH_E_EXISTS, "never overwritten");
    cr_assert_eq(sh_key_load_file(path, &k, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_key_load_file(path, &k2, &err), SH_OK);
    uint8_t a[8], b[8];
    sh_key_id(k, a);
    sh_key_id(k2, b);
    cr_assert_arr_eq(a, b, 8, "the same file gives the same key");
    sh_key_destroy(&k);
    sh_key_destroy(&k2);

    mode_t loose[] = {0640, 0604, 0660, 0644, 0602, 0620, 0610, 0601};
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        cr_assert_eq(chmod(path, loose[i]), 0);
        cr_assert_eq(sh_key_load_file(path, &k, &err), SH_E_KEY_PERMISSIONS, "mode %o", loose[i]);
        cr_assert_null(k);
        cr_assert_not_null(strstr(err.detail, "want 0600"), "%s", err.detail);
    }
    cr_assert_eq(chmod(path, 0400), 0);
    cr_assert_eq(sh_key_load_file(path, &k, &err), SH_OK, "0400 is fine");
    sh_key_destroy(&k);

    /* as systemd hands over a credential: 0400, and an ACL that lets one user read it; the
     * group bits then show the ACL's mask (r), yet only that user can read the file */
    uint32_t me = (uint32_t)geteuid(), someone = me + 4242;
    struct {
        uint32_t uid;
        unsigned group_perm;
        int ok;
        const char *what;
    } acls[] = {{me, 0, 1, "an ACL naming this user alone"},
                {someone, 0, 0, "an ACL naming another user"},
                {me, 4, 0, "an ACL letting the owning group read"}};
    for (size_t i = 0; i < sizeof acls / sizeof acls[0]; i++) {
        /* version 2; user::r, user:uid:r, group::perm, mask::r, other::- */
        uint8_t x[4 + 5 * 8] = {2, 0, 0, 0};
        const unsigned tags[5] = {0x01, 0x02, 0x04, 0x10, 0x20},
                       perms[5] = {4, 4, acls[i].group_perm, 4, 0};
        for (int e = 0; e < 5; e++) {
            uint8_t *p = x + 4 + 8 * e;
            uint32_t id = tags[e] == 0x02 ? acls[i].uid : 0xffffffffu;
            p[0] = (uint8_t)tags[e];
            p[1] = 0;
            p[2] = (uint8_t)perms[e];
            p[3] = 0;
            for (int j = 0; j < 4; j++)
                p[4 + j] = (uint8_t)(id >> (8 * j));
        }
        if (setxattr(path, "system.posix_acl_access", x, sizeof x, 0) != 0)
            cr_skip_test("this filesystem does not take POSIX ACLs: %s", strerror(errno));
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0070, 0040, "the mask shows as the group bits");
        cr_assert_eq(sh_key_load_file(path, &k, &err), acls[i].ok ? SH_OK : SH_E_KEY_PERMISSIONS,
                     "%s", acls[i].what);
        sh_key_destroy(&k);
    }
    cr_assert_eq(removexattr(path, "system.posix_acl_access"), 0);
    cr_assert_eq(chmod(path, 0600), 0);

    char *missing = tu_path(dir, "absent.key");
    cr_assert_eq(sh_key_load_file(missing, &k, &err), SH_E_KEY_MISSING);
    char *link = tu_path(dir, "link.key");
    cr_assert_eq(symlink(path, link), 0);
    cr_assert_eq(sh_key_load_file(link, &k, &err), SH_E_KEY_PERMISSIONS, "symlinks refused");
    cr_assert_eq(sh_key_load_file(dir, &k, &err), SH_E_KEY_PERMISSIONS, "directory refused");

    char *bad = tu_path(dir, "bad.key");
    FILE *f = fopen(bad, "w");
    fputs("not a key\n", f);
    fclose(f);
    chmod(bad, 0600);
    cr_assert_eq(sh_key_load_file(bad, &k, &err), SH_E_KEY_FORMAT);
    f = fopen(bad, "w");
    fputs("zz00000000000000000000000000000000000000000000000000000000000000\n", f);
    fclose(f);
    cr_assert_eq(sh_key_load_file(bad, &k, &err), SH_E_KEY_FORMAT, "non-hex digits");

    tu_rmrf(dir);
    free(dir);
    free(path);
    free(missing);
    free(link);
    free(bad);
}

Test(crypto, ed25519)
{
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "sign.pem"), *other = tu_path(dir, "other.pem");
    char *master = tu_path(dir, "master.key");
    sh_error err;
    sh_signkey *k = NULL, *k2 = NULL;
    cr_assert_eq(sh_signkey_generate_file(path, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_signkey_generate_file(other, &err), SH_OK);
    cr_assert_eq(sh_signkey_generate_file(path, &err), SH_E_EXISTS);
    cr_assert_eq(sh_signkey_load_file(path, &k, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_signkey_load_file(other, &k2, &err), SH_OK);
    uint8_t pub[32], pub2[32], sig[64];
    sh_signkey_public(k, pub);
    sh_signkey_public(k2, pub2);
    const char msg[] = "checkpoint 1000";
    cr_assert_eq(sh_sign(k, msg, sizeof msg, sig), SH_OK);
    cr_assert_eq(sh_verify(pub, msg, sizeof msg, sig), SH_OK);
    cr_assert_eq(sh_verify(pub2, msg, sizeof msg, sig), SH_E_BAD_SIGNATURE, "other key");
    cr_assert_eq(sh_verify(pub, msg, sizeof msg - 1, sig), SH_E_BAD_SIGNATURE, "other message");
    for (int i = 0; i < 64; i++) {
        sig[i] ^= 0x10;
        cr_assert_eq(sh_verify(pub, msg, sizeof msg, sig), SH_E_BAD_SIGNATURE, "byte %d", i);
        sig[i] ^= 0x10;
    }
    cr_assert_eq(chmod(path, 0644), 0);
    sh_signkey *k3 = NULL;
    cr_assert_eq(sh_signkey_load_file(path, &k3, &err), SH_E_KEY_PERMISSIONS);
    cr_assert_eq(sh_key_generate_file(master, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(master, &k3, &err), SH_E_KEY_FORMAT);
    cr_assert_null(k3);
    sh_signkey_destroy(&k);
    sh_signkey_destroy(&k2);
    cr_assert_null(k);
    tu_rmrf(dir);
    free(dir);
    free(path);
    free(other);
    free(master);
}

/* Day keys that can be forgotten: a key derived today is the same tomorrow and after a
 * reopen; once the days before D are forgotten, no key of theirs can be had again, the file
 * holds none of them (nor the root), and a damaged or exposed file is refused. */
Test(crypto, shred_forgets_days_for_good)
{
    char *d = tu_tmpdir(), *path = tu_path(d, "erase.shred");
    sh_shred *s = NULL;
    sh_error err;
    cr_assert_eq(sh_shred_open(path, 0, &s, &err), SH_E_KEY_MISSING);
    cr_assert_eq(sh_shred_open(path, 1, &s, &err), SH_OK, "%s", err.detail);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(sh_shred_first_day(s), 0);
    uint8_t k_before[SH_KEY_BYTES], k_keep[SH_KEY_BYTES], k_far[SH_KEY_BYTES], k[SH_KEY_BYTES];
    uint8_t root[4096];
    size_t rootlen = 0;
    FILE *f = fopen(path, "rb");
    rootlen = fread(root, 1, sizeof root, f);
    fclose(f);
    sh_key *key = NULL;
    cr_assert_eq(sh_shred_day_key(s, 19999, &key), SH_OK);
    sh_key_export(key, k_before);
    sh_key_destroy(&key);
    cr_assert_eq(sh_shred_day_key(s, 20000, &key), SH_OK);
    sh_key_export(key, k_keep);
    sh_key_destroy(&key);
    cr_assert_eq(sh_shred_day_key(s, 65535, &key), SH_OK);
    sh_key_export(key, k_far);
    sh_key_destroy(&key);
    cr_assert(memcmp(k_before, k_keep, sizeof k) != 0, "each day has its own key");
    cr_assert_eq(sh_shred_day_of(20000LL * 86400000 + 5), 20000);

    cr_assert_eq(sh_shred_forget_before(s, 20000, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_shred_first_day(s), 20000);
    cr_assert_eq(sh_shred_day_key(s, 19999, &key), SH_E_NOT_FOUND);
    cr_assert_eq(sh_shred_day_key(s, 0, &key), SH_E_NOT_FOUND);
    cr_assert_eq(sh_shred_day_key(s, 20000, &key), SH_OK);
    sh_key_export(key, k);
    sh_key_destroy(&key);
    cr_assert(memcmp(k, k_keep, sizeof k) == 0, "a day not forgotten keeps its key");
    sh_shred_destroy(&s);

    /* the same after a reopen; the file holds neither the root nor the forgotten day's key */
    cr_assert_eq(sh_shred_open(path, 0, &s, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_shred_first_day(s), 20000);
    cr_assert_eq(sh_shred_day_key(s, 65535, &key), SH_OK);
    sh_key_export(key, k);
    sh_key_destroy(&key);
    cr_assert(memcmp(k, k_far, sizeof k) == 0);
    uint8_t now[4096];
    f = fopen(path, "rb");
    size_t nowlen = fread(now, 1, sizeof now, f);
    fclose(f);
    cr_assert_leq(nowlen, 13 + 16 * 37 + 32, "at most 16 subtree keys: %zu bytes", nowlen);
    cr_assert_null(memmem(now, nowlen, root + 18, SH_KEY_BYTES), "the root key is gone");
    cr_assert_null(memmem(now, nowlen, k_before, SH_KEY_BYTES));
    /* forgetting further, and asking to forget what is already forgotten */
    cr_assert_eq(sh_shred_forget_before(s, 20500, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_shred_forget_before(s, 100, &err), SH_OK);
    cr_assert_eq(sh_shred_first_day(s), 20500);
    cr_assert_eq(sh_shred_day_key(s, 20499, &key), SH_E_NOT_FOUND);
    cr_assert_eq(sh_shred_day_key(s, 65535, &key), SH_OK);
    sh_key_export(key, k);
    sh_key_destroy(&key);
    cr_assert(memcmp(k, k_far, sizeof k) == 0);
    sh_shred_destroy(&s);
    (void)rootlen;

    /* values sealed under a day open until the day is forgotten (its cached key goes too) */
    cr_assert_eq(sh_shred_open(path, 0, &s, &err), SH_OK, "%s", err.detail);
    const uint8_t msg[] = "a synthetic copy", bind[16] = {9};
    uint8_t sealed[sizeof msg + SH_SHRED_OVERHEAD], back[sizeof msg];
    size_t sl = 0, bl = 0;
    cr_assert_eq(sh_shred_seal(s, 20600, bind, 16, msg, sizeof msg, sealed, sizeof sealed - 1, &sl),
                 SH_E_INVAL, "too small an output is refused");
    cr_assert_eq(sh_shred_seal(s, 20600, bind, 16, msg, sizeof msg, sealed, sizeof sealed, &sl),
                 SH_OK);
    cr_assert_eq(sl, sizeof sealed);
    cr_assert_eq(sh_shred_sealed_day(sealed, sl), 20600);
    cr_assert_eq(sh_shred_seal(s, 20499, bind, 16, msg, sizeof msg, sealed, sizeof sealed, &bl),
                 SH_E_NOT_FOUND, "a forgotten day seals nothing");
    cr_assert_eq(sh_shred_unseal(s, bind, 16, sealed, sl, back, sizeof back, &bl), SH_OK);
    cr_assert(bl == sizeof msg && memcmp(back, msg, bl) == 0);
    cr_assert_eq(sh_shred_unseal(s, bind, 15, sealed, sl, back, sizeof back, &bl),
                 SH_E_STORE_CORRUPT, "bound to its associated data");
    cr_assert_eq(
        sh_shred_unseal(s, bind, 16, sealed, SH_SHRED_OVERHEAD - 1, back, sizeof back, &bl),
        SH_E_STORE_CORRUPT);
    cr_assert_eq(sh_shred_forget_before(s, 20601, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_shred_unseal(s, bind, 16, sealed, sl, back, sizeof back, &bl), SH_E_NOT_FOUND,
                 "erased: its day's key is gone, from the cache too");
    sh_shred_destroy(&s);

    /* a damaged file, and one others could read, are refused */
    f = fopen(path, "r+b");
    fseek(f, 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 20, SEEK_SET);
    fputc(0x5a ^ c, f);
    fclose(f);
    cr_assert_eq(sh_shred_open(path, 1, &s, &err), SH_E_KEY_FORMAT, "%s", err.detail);
    chmod(path, 0644);
    cr_assert_eq(sh_shred_open(path, 1, &s, &err), SH_E_KEY_PERMISSIONS);
    tu_rmrf(d);
    free(path);
    free(d);
}

/* Hex as keys and signatures are written in files and options: exactly 2n digits, either case. */
Test(crypto, hex_decodes_exactly_what_it_is_given)
{
    uint8_t out[4], back[4] = {0xde, 0xad, 0xbe, 0xef};
    char text[9];
    cr_assert_eq(sh_hex_decode("DeadBeef", out, 4), 0);
    cr_assert_arr_eq(out, back, 4);
    sh_hex_encode(out, 4, text);
    cr_assert_str_eq(text, "deadbeef");
    cr_assert_eq(sh_hex_decode("deadbee", out, 4), -1, "too short");
    cr_assert_eq(sh_hex_decode("deadbeef0", out, 4), -1, "too long");
    cr_assert_eq(sh_hex_decode("deadbeeg", out, 4), -1, "not a digit");
    cr_assert_eq(sh_hex_decode("dead beef", out, 4), -1);
    cr_assert_eq(sh_hex_decode(NULL, out, 4), -1);
}
