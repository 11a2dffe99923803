/*
 * holdings.c — what the agency holds: each event it sent or received stored with its indexes
 * (by each of the child's blinded identifiers, and by thread), and the sequence numbers.
 *
 * Owns: the events, by_child, by_thread and state databases' entries. Never: stores an
 * identifier in the clear in a key (only its blinded reference).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "clock.h"

sh_err ag_put_seq(sh_agent *a, sh_txn *t, const char *key, uint64_t v, sh_error *err)
{
    uint8_t b[8];
    sh_be64_put(b, v);
    return sh_txn_put(t, a->state, key, strlen(key), b, 8, 0, err);
}

/* Stores an event (sent or received) with its indexes, inside t; refs[0..nr) are the
 * child's blinded references (sh_child_refs: the caller has them for its audit entry). */
sh_err ag_store_event(sh_agent *a, sh_txn *t, int direction, const char *peer, const char *rule,
                      uint8_t flags, const sh_envelope *e, const uint8_t *raw, size_t len,
                      const uint8_t (*refs)[SH_BLIND_BYTES], int nr, sh_error *err)
{
    size_t n = 0;
    uint8_t *v = sh_agent_record_build(direction, sh_clock_ms(), peer, rule, flags, raw, len, &n);
    if (!v) return sh_error_set(err, SH_E_NOMEM, "event record");
    const uint8_t *id = e->event_id.data;
    sh_err rc = sh_txn_put(t, a->events, id, 16, v, n, SH_PUT_NEW, err);
    free(v);
    if (rc) return rc;
    uint8_t key[SH_BLIND_BYTES + 16];
    for (int i = 0; i < nr && !rc; i++) {
        memcpy(key, refs[i], SH_BLIND_BYTES);
        memcpy(key + SH_BLIND_BYTES, id, 16);
        rc = sh_txn_put(t, a->by_child, key, sizeof key, "", 0, 0, err);
    }
    uint8_t name[SH_BLIND_BYTES];
    if (!rc && e->child &&
        ag_name_key(a->store, e->child->given_name, e->child->family_name, e->child->date_of_birth,
                    name) == 0) {
        memcpy(key, name, SH_BLIND_BYTES);
        memcpy(key + SH_BLIND_BYTES, id, 16);
        rc = sh_txn_put(t, a->by_name, key, sizeof key, "", 0, 0, err);
    }
    if (!rc && e->correlation_id.len == 16) {
        memcpy(key, e->correlation_id.data, 16);
        memcpy(key + 16, id, 16);
        rc = sh_txn_put(t, a->by_thread, key, 32, "", 0, 0, err);
    }
    return rc;
}

sh_err ag_load_seq(sh_agent *a, const char *key, uint64_t *v, sh_error *err)
{
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_err rc = sh_txn_begin(a->store, 0, &t, err);
    if (rc) return rc;
    rc = sh_txn_get(t, a->state, key, strlen(key), &b, err);
    if (rc == SH_OK && b.len == 8) *v = sh_be64_get(b.data);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    return rc == SH_E_NOT_FOUND || rc == SH_OK ? SH_OK : rc;
}
