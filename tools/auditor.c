/*
 * auditor.c — what the `sharehub audit` commands share (auditor.h): opening a store's audit
 * log with an auditor's keyring or an operator's own keys, a child's blinded references,
 * verifying a log against the broker's witness of it, and the time format of reports.
 *
 * Owns: the keys loaded for an audit (freed with the log). Never: opens a store for writing
 * unless the master key was given; prints a blinded reference next to its identifier.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auditor.h"
#include "ident.h"

int sh_auth_given(const cli_cmd *c, const sh_auth *a)
{
    if (a->master && !a->sign) return cli_usage(c, "--master needs --sign-key (the store's own)");
    if (!a->master && a->sign) return cli_usage(c, "--sign-key needs --master (the store's own)");
    if (!a->keyring && !a->master)
        return cli_usage(c, "no keys: give --keyring FILE, or --master KEY and --sign-key PEM");
    return CLI_RUN;
}

void sh_auth_free(sh_auth *a)
{
    sh_keyring_destroy(&a->ring);
}

void sh_alog_close(sh_alog *l)
{
    sh_audit_destroy(&l->audit);
    sh_store_destroy(&l->store);
    sh_keyring_destroy(&l->own);
    sh_key_destroy(&l->master);
    sh_signkey_destroy(&l->sign);
    memset(l, 0, sizeof *l);
}

sh_err sh_alog_open(const char *dir, sh_auth *auth, sh_alog *l, sh_error *err)
{
    memset(l, 0, sizeof *l);
    l->dir = dir;
    sh_err rc = SH_OK;
    if (auth->master) {
        /* an operator's own store: keys derived from its master key */
        struct stat st;
        char data[4096];
        snprintf(data, sizeof data, "%s/data.mdb", dir);
        sh_key *audit = NULL, *blind = NULL;
        uint8_t pub[SH_SIGN_PUB_BYTES];
        if (!auth->sign) return sh_error_set(err, SH_E_INVAL, "--master needs --sign-key");
        if (stat(dir, &st) != 0) return sh_error_set(err, SH_E_IO, "%s: %s", dir, strerror(errno));
        if (stat(data, &st) != 0)
            return sh_error_set(err, SH_E_NOT_FOUND, "%s: not a sharehub store (no data.mdb)", dir);
        rc = sh_key_load_file(auth->master, &l->master, err);
        if (!rc) rc = sh_signkey_load_file(auth->sign, &l->sign, err);
        if (!rc) rc = sh_store_open(dir, l->master, NULL, &l->store, err);
        if (!rc && (sh_store_derive_key(l->store, "audit mac", &audit) ||
                    sh_store_derive_key(l->store, "blind index", &blind)))
            rc = sh_error_set(err, SH_E_CRYPTO, "deriving the audit keys");
        if (!rc && sh_keyring_new(&l->own)) rc = sh_error_set(err, SH_E_NOMEM, "keyring");
        if (!rc) sh_signkey_public(l->sign, pub);
        if (!rc)
            rc = sh_keyring_put(l->own, sh_store_id(l->store), "store", audit, blind, pub, err);
        sh_key_destroy(&audit);
        sh_key_destroy(&blind);
        if (!rc) l->keys = sh_keyring_find(l->own, sh_store_id(l->store));
    } else {
        if (!auth->keyring)
            return sh_error_set(err, SH_E_INVAL,
                                "give --keyring FILE (or --master and --sign-key)");
        if (!auth->ring) rc = sh_keyring_load(auth->keyring, &auth->ring, err);
        if (!rc) rc = sh_store_open_ro(dir, &l->store, err);
        if (!rc && !(l->keys = sh_keyring_find(auth->ring, sh_store_id(l->store)))) {
            char id[2 * SH_STORE_ID_BYTES + 1];
            sh_hex_encode(sh_store_id(l->store), SH_STORE_ID_BYTES, id);
            rc = sh_error_set(err, SH_E_KEY_MISSING,
                              "%s: store %s is not in the keyring (sharehub audit grant)", dir, id);
        }
    }
    if (!rc) rc = sh_audit_open(l->store, l->keys->audit, l->sign, 0, &l->audit, err);
    if (rc == SH_E_NOT_FOUND && !err->detail[0])
        sh_error_set(err, rc, "%s: the store holds no audit log", dir);
    if (rc) sh_alog_close(l);
    return rc;
}

int sh_alog_child_refs(const sh_alog *l, char *const *ids, size_t nids, uint8_t (*refs)[32],
                       sh_error *err)
{
    if (!l->keys->blind) {
        sh_error_set(err, SH_E_WRONG_KEY,
                     "%s: the keyring holds no blind key for this store: it can be verified "
                     "and replayed, not searched by child",
                     l->dir);
        return -SH_E_WRONG_KEY;
    }
    for (size_t i = 0; i < nids; i++) {
        char canon[64];
        const char *kind, *why;
        sh_err bad = sh_ident_classify(ids[i], canon, sizeof canon, &kind, &why);
        if (bad) {
            sh_error_set(err, bad, "child id %zu: %s", i + 1, why);
            return -(int)bad;
        }
        if (sh_blind_compute(l->keys->blind, kind, canon, refs[i])) {
            sh_error_set(err, SH_E_CRYPTO, "blinding");
            return -SH_E_CRYPTO;
        }
    }
    return (int)nids;
}

/* ---- verify ---------------------------------------------------------------------------- */

static void s_progress(void *ctx, uint64_t done)
{
    uint64_t total = *(uint64_t *)ctx;
    if (total)
        fprintf(stderr, "\r  verifying %3d%%  %llu of %llu entries", (int)(done * 100 / total),
                (unsigned long long)done, (unsigned long long)total);
}

/* Collects the broker's witness records of log l's store from the (verified) broker log. */
typedef struct s_witnesses {
    const uint8_t *store_id;
    const sh_keyring_entry *keys;
    sh_audit_witness *v;
    size_t n, cap, bad;
    int nomem;
} s_witnesses;

static int s_collect_witness(void *ctx, const sh_audit_record *r)
{
    s_witnesses *w = ctx;
    uint8_t id[SH_STORE_ID_BYTES], cp[SH_AUDIT_CP_BYTES];
    sh_audit_cp_info info;
    if (r->action != SH_AUDIT_WITNESS || sh_audit_witness_parse(r->detail, id, cp) != SH_OK ||
        memcmp(id, w->store_id, SH_STORE_ID_BYTES) != 0)
        return 0;
    int trusted = 0;
    if (sh_audit_checkpoint_check(id, cp, sizeof cp, &info) == SH_OK)
        for (size_t i = 0; i < w->keys->nsigners; i++)
            trusted |= memcmp(w->keys->signers[i], info.signer, SH_SIGN_PUB_BYTES) == 0;
    if (!trusted) { /* not this store's signature: the broker cannot vouch for it */
        w->bad++;
        return 0;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? 2 * w->cap : 64;
        sh_audit_witness *v = realloc(w->v, ncap * sizeof *v);
        if (!v) {
            w->nomem = 1;
            return 1;
        }
        w->v = v;
        w->cap = ncap;
    }
    w->v[w->n++] = (sh_audit_witness){.seq = info.seq, .time_ms = info.time_ms};
    memcpy(w->v[w->n - 1].head, info.head, SH_MAC_BYTES);
    return 0;
}

sh_err sh_alog_verify(sh_alog *l, sh_alog *witness, int progress, sh_audit_report *rep)
{
    s_witnesses w = {.store_id = sh_store_id(l->store), .keys = l->keys};
    if (witness) {
        sh_audit_report wr;
        if (sh_alog_verify(witness, NULL, 0, &wr) != SH_OK) {
            memset(rep, 0, sizeof *rep);
            rep->result = SH_E_AUDIT_CHECKPOINT;
            snprintf(rep->detail, sizeof rep->detail,
                     "the witness log %s does not verify (E%03d at entry %llu)", witness->dir,
                     (int)wr.result, (unsigned long long)wr.bad_seq);
            return rep->result;
        }
        sh_audit_scan(witness->audit, 1, s_collect_witness, &w, &wr);
        if (w.nomem) {
            free(w.v);
            memset(rep, 0, sizeof *rep);
            return rep->result = SH_E_NOMEM;
        }
    }
    uint64_t total = 0;
    if (progress) {
        sh_txn *t = NULL;
        sh_error err;
        uint8_t mac[SH_MAC_BYTES];
        if (sh_txn_begin(l->store, 0, &t, &err) == SH_OK &&
            sh_audit_head(l->audit, t, &total, mac, &err) != SH_OK)
            total = 0;
        sh_txn_abort(&t);
    }
    sh_audit_verify_opts o = {.trusted = (const uint8_t(*)[SH_SIGN_PUB_BYTES])l->keys->signers,
                              .ntrusted = l->keys->nsigners,
                              .witnesses = w.v,
                              .nwitnesses = w.n,
                              .progress = progress ? s_progress : NULL,
                              .ctx = &total};
    sh_err rc = sh_audit_verify_ex(l->audit, &o, rep);
    if (progress && total >= 65536) fprintf(stderr, "\r%60s\r", "");
    if (!rc && witness) {
        size_t len = strlen(rep->detail);
        snprintf(rep->detail + len, sizeof rep->detail - len, "%zu witnessed checkpoints match",
                 w.n);
    }
    free(w.v);
    return rc;
}

void sh_iso_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, 32, "%lld", (long long)ms);
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}
