/*
 * daemon.c — the broker's and the agents' common start-up and child references (daemon.h).
 *
 * Owns: nothing past the calls. Never: leaves the master key or a CURVE secret in memory.
 */
#include "daemon.h"

#include <string.h>
#include <zmq.h>

sh_err sh_vault_open(const char *dir, const char *master_file, const char *sign_file,
                     const sh_store_opts *opts, uint32_t checkpoint_every, sh_vault *v,
                     sh_error *err)
{
    sh_key *master = NULL, *audit_key = NULL;
    memset(v, 0, sizeof *v);
    sh_err rc = sh_key_load_file(master_file, &master, err);
    if (!rc) rc = sh_signkey_load_file(sign_file, &v->signer, err);
    if (!rc) rc = sh_store_open(dir, master, opts, &v->store, err);
    sh_key_destroy(&master); /* the store keeps only what it derived */
    if (!rc && (rc = sh_store_derive_key(v->store, "audit mac", &audit_key)))
        sh_error_set(err, rc, "audit key");
    if (!rc) rc = sh_audit_open(v->store, audit_key, v->signer, checkpoint_every, &v->audit, err);
    sh_key_destroy(&audit_key); /* the log keeps its own MAC context */
    if (rc) sh_vault_close(v);
    return rc;
}

sh_err sh_vault_record(sh_vault *v, const sh_audit_entry *e, int checkpoint, sh_error *err)
{
    sh_txn *t = NULL;
    sh_err rc = sh_txn_begin(v->store, 1, &t, err);
    if (!rc) rc = sh_audit_append(v->audit, t, e, NULL, err);
    if (!rc && checkpoint) rc = sh_audit_checkpoint(v->audit, t, err);
    if (!rc) return sh_txn_commit(&t, err);
    sh_txn_abort(&t);
    return rc;
}

void sh_vault_close(sh_vault *v)
{
    sh_audit_destroy(&v->audit);
    sh_store_destroy(&v->store);
    sh_signkey_destroy(&v->signer);
}

sh_err sh_curve_secret_load(const char *path, char secret[SH_Z85_LEN + 1],
                            char public_key[SH_Z85_LEN + 1], sh_error *err)
{
    char buf[128];
    size_t n = 0;
    uint8_t raw[32];
    sh_err rc = sh_secret_file_read(path, buf, sizeof buf, &n, err);
    if (rc) return rc;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (n != SH_Z85_LEN || !zmq_z85_decode(raw, buf) || zmq_curve_public(public_key, buf))
        rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: want a 40-character Z85 CURVE secret key",
                          path);
    else
        memcpy(secret, buf, SH_Z85_LEN + 1);
    sh_wipe(buf, sizeof buf);
    sh_wipe(raw, sizeof raw);
    return rc;
}

int sh_child_refs(sh_store *s, const sh_child *c, uint8_t refs[SH_CHILD_REFS_MAX][SH_BLIND_BYTES])
{
    if (!c) return 0;
    const struct {
        const char *kind, *value;
    } ids[SH_CHILD_REFS_MAX] = {{"nhs", c->nhs_number},
                                {"upn", c->upn},
                                {"la", c->la_child_id},
                                {"nhs", c->mother_nhs_number}};
    int n = 0;
    for (int i = 0; i < SH_CHILD_REFS_MAX; i++)
        if (ids[i].value && ids[i].value[0] &&
            sh_store_blind(s, ids[i].kind, ids[i].value, refs[n]) == SH_OK)
            n++;
    return n;
}
