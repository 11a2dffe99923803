/*
 * selfcheck.c — `sharehub selfcheck`: the foundation checked end to end on this machine
 * (keys, sealed store, audit chain, tamper detection), in a scratch directory.
 *
 * Owns: the scratch directory (removed unless --keep). Never: touches a store it did not make.
 */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit.h"
#include "codec.h"
#include "commands.h"
#include "crypto.h"
#include "daemon.h"
#include "store.h"
#include "synth.h"

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

#define DEMO_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "demo: FAILED: " __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                                   \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Overwrites one byte of the audit entry `seq` directly in LMDB, as an intruder with write
 * access to the disk could. */
static int s_tamper(const char *dir, uint64_t seq)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t key[8], copy[2048];
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
    k.mv_size = 8;
    k.mv_data = key;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_maxdbs(env, SH_STORE_MAX_DBS);
    if (!rc) rc = mdb_env_open(env, dir, 0, 0600);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "sh_audit", 0, &dbi);
    if (!rc) rc = mdb_get(txn, dbi, &k, &v);
    if (!rc && v.mv_size <= sizeof copy) {
        memcpy(copy, v.mv_data, v.mv_size);
        copy[30] ^= 0x01; /* inside the actor / detail fields */
        v.mv_data = copy;
        rc = mdb_put(txn, dbi, &k, &v, 0);
    }
    if (!rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    return rc;
}

int cmd_selfcheck(int argc, char **argv)
{
    int keep = 0;
    size_t npos = 0;
    const cli_opt opts[] = {{"--keep", CLI_FLAG, &keep, 0, 0}, {0}};
    const cli_cmd c = {
        "sharehub selfcheck",
        "usage: sharehub selfcheck [--keep]\n"
        "  The foundation's self-check, in a scratch directory with keys made for the run: a\n"
        "  loose key file refused; events of all 13 types sealed, audited and committed in one\n"
        "  transaction, read back after reopening; the audit chain verified; another master key\n"
        "  refused; one byte flipped on disk found. --keep keeps the directory.\n",
        opts,
        0,
        0,
        ""};
    int prc = cli_parse(&c, argc, argv, NULL, &npos);
    if (prc != CLI_RUN) return prc;
    int result = SH_EXIT_FAILED;
    const char *tmp = getenv("TMPDIR");
    char root[512], dir[600], master[600], other[600], sign[600];
    snprintf(root, sizeof root, "%s/sharehub-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        fprintf(stderr, "demo: mkdtemp: %s\n", strerror(errno));
        return SH_EXIT_FAILED;
    }
    snprintf(dir, sizeof dir, "%s/store", root);
    snprintf(master, sizeof master, "%s/master.key", root);
    snprintf(other, sizeof other, "%s/other.key", root);
    snprintf(sign, sizeof sign, "%s/audit-sign.pem", root);

    sh_error err = {0};
    sh_vault o = {0};
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_envelope *env = NULL;
    uint8_t *enc = NULL;
    uint8_t ids[13][16];
    struct timespec t0, t1;
    enum { N_CHILDREN = 3 };

    printf("sharehub %s — foundation self-check\n", SHAREHUB_VERSION);
    printf("working in %s (keys generated for this run only)\n\n", root);
    DEMO_CHECK(!sh_key_generate_file(master, &err) && !sh_key_generate_file(other, &err) &&
                   !sh_signkey_generate_file(sign, &err),
               "keygen: %s", err.detail);
    DEMO_CHECK(!chmod(master, 0644), "chmod");
    sh_key *k = NULL;
    sh_err rc = sh_key_load_file(master, &k, &err);
    sh_key_destroy(&k);
    DEMO_CHECK(rc == SH_E_KEY_PERMISSIONS, "a 0644 key file was not refused");
    printf("[keys]   a key file readable by others is refused: E%03d %s\n", (int)rc,
           sh_err_name(rc));
    DEMO_CHECK(!chmod(master, 0600), "chmod");

    DEMO_CHECK(!sh_vault_open(dir, master, sign, NULL, 10, &o, &err), "open: %s", err.detail);
    sh_db events;
    DEMO_CHECK(!sh_store_db(o.store, "events", SH_DB_SEALED, &events, &err), "db: %s", err.detail);

    /* One batch: every event of every type for three synthetic children, and an audit
     * entry for each write, made durable by a single commit (one fsync). */
    uint64_t rng = (uint64_t)time(NULL);
    sh_synth_child kids[N_CHILDREN];
    int written = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    DEMO_CHECK(!sh_txn_begin(o.store, 1, &t, &err), "begin: %s", err.detail);
    for (int ch = 0; ch < N_CHILDREN; ch++) {
        sh_synth_child_make(&rng, ch == 2 ? "882" : "881", &kids[ch]);
        for (int type = 1; type <= 13; type++) {
            size_t len = 0;
            DEMO_CHECK(
                !sh_synth_event(&rng, type, &kids[ch], "RH8", NULL, NULL, 600, &enc, &len, &err),
                "synth: %s", err.detail);
            DEMO_CHECK(!sh_envelope_decode(enc, len, &env, &err), "decode: %s", err.detail);
            memcpy(ids[type - 1], env->event_id.data, 16);
            uint8_t ref[SH_BLIND_BYTES];
            DEMO_CHECK(!sh_store_blind(o.store, "nhs", kids[ch].nhs_number, ref), "blind");
            sh_audit_entry ae = {.action = SH_AUDIT_WRITE,
                                 .event_id = env->event_id.data,
                                 .child_ref = type == 13 ? NULL : ref,
                                 .actor_org = "RH8",
                                 .actor_user = "demo",
                                 .purpose = "safeguarding",
                                 .detail = sh_event_type_name(env->event_type)};
            DEMO_CHECK(!sh_txn_put(t, events, env->event_id.data, 16, enc, len, SH_PUT_NEW, &err) &&
                           !sh_audit_append(o.audit, t, &ae, NULL, &err),
                       "write: %s", err.detail);
            sh_envelope_free(env);
            env = NULL;
            free(enc);
            enc = NULL;
            written++;
        }
    }
    DEMO_CHECK(!sh_audit_checkpoint(o.audit, t, &err), "checkpoint: %s", err.detail);
    DEMO_CHECK(!sh_txn_commit(&t, &err), "commit: %s", err.detail);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("[store]  %d events of all 13 types for %d synthetic children sealed with "
           "AES-256-GCM,\n         audited and committed in one transaction (one fsync): "
           "%.1f ms\n",
           written, N_CHILDREN,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

    /* Read back the last child's events after closing and reopening the store. */
    sh_vault_close(&o);
    DEMO_CHECK(!sh_vault_open(dir, master, sign, NULL, 10, &o, &err), "reopen: %s", err.detail);
    DEMO_CHECK(!sh_store_db(o.store, "events", SH_DB_SEALED, &events, &err), "db");
    DEMO_CHECK(!sh_txn_begin(o.store, 1, &t, &err), "begin: %s", err.detail);
    for (int type = 1; type <= 13; type++) {
        DEMO_CHECK(!sh_txn_get(t, events, ids[type - 1], 16, &b, &err), "get: %s", err.detail);
        DEMO_CHECK(!sh_envelope_decode(b.data, b.len, &env, &err), "decode: %s", err.detail);
        DEMO_CHECK((int)env->event_type == type, "wrong event read back");
        sh_audit_entry ae = {.action = SH_AUDIT_READ,
                             .event_id = ids[type - 1],
                             .actor_org = "RH8",
                             .actor_user = "demo",
                             .purpose = "self-check"};
        DEMO_CHECK(!sh_audit_append(o.audit, t, &ae, NULL, &err), "audit: %s", err.detail);
        sh_envelope_free(env);
        env = NULL;
    }
    DEMO_CHECK(!sh_audit_checkpoint(o.audit, t, &err) && !sh_txn_commit(&t, &err), "commit");
    printf("[store]  reopened; 13 events read back, opened, decoded and validated; each read "
           "audited\n");

    uint8_t pub[SH_SIGN_PUB_BYTES];
    sh_signkey_public(o.signer, pub);
    sh_audit_report r;
    sh_audit_verify(o.audit, &pub, 1, &r);
    DEMO_CHECK(r.result == SH_OK, "audit chain did not verify: %s", r.detail);
    printf("[audit]  chain verified: %llu entries, %llu signed checkpoints\n",
           (unsigned long long)r.entries, (unsigned long long)r.checkpoints);
    sh_vault_close(&o);

    sh_key *wrong = NULL;
    DEMO_CHECK(!sh_key_load_file(other, &wrong, &err), "load other key");
    sh_store *st = NULL;
    rc = sh_store_open(dir, wrong, NULL, &st, &err);
    sh_key_destroy(&wrong);
    sh_store_destroy(&st);
    DEMO_CHECK(rc == SH_E_WRONG_KEY, "the store opened under the wrong key");
    printf("[store]  opening with another master key is refused: E%03d %s\n", (int)rc,
           sh_err_name(rc));

    DEMO_CHECK(s_tamper(dir, 20) == 0, "could not edit the store for the tamper check");
    DEMO_CHECK(!sh_vault_open(dir, master, sign, NULL, 10, &o, &err), "reopen: %s", err.detail);
    sh_audit_verify(o.audit, &pub, 1, &r);
    DEMO_CHECK(r.result == SH_E_AUDIT_ALTERED && r.bad_seq == 20,
               "a flipped byte in entry 20 was not found (got %s at %llu)", sh_err_name(r.result),
               (unsigned long long)r.bad_seq);
    printf("[audit]  one byte of entry 20 flipped on disk: E%03d %s at entry %llu\n", (int)r.result,
           sh_err_name(r.result), (unsigned long long)r.bad_seq);
    printf("\nself-check passed\n");
    result = SH_EXIT_OK;
out:
    sh_txn_abort(&t);
    sh_vault_close(&o);
    sh_buf_free(&b);
    sh_envelope_free(env);
    free(enc);
    if (keep)
        printf("kept %s\n", root);
    else
        nftw(root, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    return result;
}
