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

/* The signed heads one log holds of other stores: its `witness` entries whose checkpoint
 * verifies under the key it carries (whether that key is the store's is checked per store). */
typedef struct s_held {
    uint8_t store_id[SH_STORE_ID_BYTES];
    uint8_t signer[SH_SIGN_PUB_BYTES];
    sh_audit_witness w;
} s_held;

typedef struct s_holds {
    s_held *v;
    size_t n, cap;
    const char *by;
    int nomem;
} s_holds;

static int s_collect(void *ctx, const sh_audit_record *r)
{
    s_holds *h = ctx;
    uint8_t id[SH_STORE_ID_BYTES], cp[SH_AUDIT_CP_BYTES];
    sh_audit_cp_info info;
    if (r->action != SH_AUDIT_WITNESS || r->outcome != SH_AUDIT_OK ||
        sh_audit_witness_parse(r->detail, id, cp) != SH_OK ||
        sh_audit_checkpoint_check(id, cp, sizeof cp, &info) != SH_OK || h->nomem)
        return 0;
    if (h->n == h->cap) {
        size_t ncap = h->cap ? 2 * h->cap : 64;
        s_held *v = realloc(h->v, ncap * sizeof *v);
        if (!v) {
            h->nomem = 1;
            return 0;
        }
        h->v = v;
        h->cap = ncap;
    }
    s_held *e = &h->v[h->n++];
    memcpy(e->store_id, id, SH_STORE_ID_BYTES);
    memcpy(e->signer, info.signer, SH_SIGN_PUB_BYTES);
    e->w = (sh_audit_witness){.seq = info.seq, .time_ms = info.time_ms, .by = h->by};
    memcpy(e->w.head, info.head, SH_MAC_BYTES);
    return 0;
}

static int s_trusts(const sh_keyring_entry *k, const uint8_t signer[SH_SIGN_PUB_BYTES])
{
    for (size_t i = 0; i < k->nsigners; i++)
        if (memcmp(k->signers[i], signer, SH_SIGN_PUB_BYTES) == 0) return 1;
    return 0;
}

const char *sh_alog_label(const sh_alog *l)
{
    if (l->keys && l->keys->name[0] && strcmp(l->keys->name, "store") != 0) return l->keys->name;
    const char *slash = strrchr(l->dir, '/');
    return slash && slash[1] ? slash + 1 : l->dir;
}

void sh_alog_verify_all(sh_alog *logs, size_t n, int progress, sh_audit_report *reps)
{
    s_holds *holds = calloc(n ? n : 1, sizeof *holds);
    for (size_t i = 0; i < n; i++) {
        uint64_t total = 0;
        if (progress) {
            sh_txn *t = NULL;
            sh_error err;
            uint8_t mac[SH_MAC_BYTES];
            if (sh_txn_begin(logs[i].store, 0, &t, &err) == SH_OK &&
                sh_audit_head(logs[i].audit, t, &total, mac, &err) != SH_OK)
                total = 0;
            sh_txn_abort(&t);
        }
        if (holds) holds[i].by = sh_alog_label(&logs[i]);
        sh_audit_verify_opts o = {.trusted =
                                      (const uint8_t(*)[SH_SIGN_PUB_BYTES])logs[i].keys->signers,
                                  .ntrusted = logs[i].keys->nsigners,
                                  .progress = progress ? s_progress : NULL,
                                  .ctx = &total,
                                  .visit = holds && n > 1 ? s_collect : NULL,
                                  .visit_ctx = holds ? &holds[i] : NULL};
        sh_audit_verify_ex(logs[i].audit, &o, &reps[i]);
        if (progress && total >= 65536) fprintf(stderr, "\r%60s\r", "");
    }
    /* each log against the signed heads of it that the other (verified) logs hold */
    for (size_t i = 0; holds && n > 1 && i < n; i++) {
        if (reps[i].result != SH_OK) continue;
        const uint8_t *id = sh_store_id(logs[i].store);
        size_t m = 0, cap = 0, nholders = 0;
        sh_audit_witness *w = NULL;
        char who[120] = "";
        for (size_t j = 0; j < n; j++) {
            if (j == i || reps[j].result != SH_OK || holds[j].nomem) continue;
            size_t before = m;
            for (size_t k = 0; k < holds[j].n; k++) {
                const s_held *e = &holds[j].v[k];
                if (memcmp(e->store_id, id, SH_STORE_ID_BYTES) != 0 ||
                    !s_trusts(logs[i].keys, e->signer))
                    continue;
                if (m == cap) {
                    size_t ncap = cap ? 2 * cap : 64;
                    sh_audit_witness *v = realloc(w, ncap * sizeof *v);
                    if (!v) break;
                    w = v;
                    cap = ncap;
                }
                w[m++] = e->w;
            }
            if (m > before) {
                size_t used = strlen(who);
                snprintf(who + used, sizeof who - used, "%s%s", nholders++ ? ", " : "",
                         holds[j].by);
            }
        }
        if (sh_audit_check_witnesses(logs[i].audit, w, m, &reps[i]) == SH_OK) {
            size_t used = strlen(reps[i].detail);
            snprintf(reps[i].detail + used, sizeof reps[i].detail - used,
                     "%zu witnessed heads match%s%s%s", m, nholders ? " (held by " : "", who,
                     nholders ? ")" : "");
        }
        free(w);
    }
    for (size_t i = 0; holds && i < n; i++)
        free(holds[i].v);
    free(holds);
}

sh_err sh_alog_verify(sh_alog *l, int progress, sh_audit_report *rep)
{
    sh_alog_verify_all(l, 1, progress, rep);
    return rep->result;
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
