/* test_audit_format.c — docs/audit-format.md proved with OpenSSL alone: entries and signed
 * heads recomputed from the document, a version 1 (HMAC) log built from it and continued, a
 * log that does not begin with its genesis entry, entries outside the format. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "audit_fixture.h"
#include "testutil.h"

TestSuite(audit_format, .init = audit_fixture_setup, .fini = audit_fixture_teardown);

static void s_fill(unsigned n)
{
    sh_error err;
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    for (unsigned i = 0; i < n; i++) {
        sh_audit_entry e = {.action = SH_AUDIT_WRITE, .actor_org = "881", .detail = "an entry"};
        cr_assert_eq(sh_audit_append(audit, t, &e, NULL, &err), SH_OK, "%s", err.detail);
    }
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail);
}

/* Encodes the documented fixed part of an entry (version v, seq) with the given strings into
 * p; returns the end. No event id or child reference unless ev is given. */
static uint8_t *s_doc_entry(uint8_t *p, uint8_t v, uint64_t seq, uint8_t action, const uint8_t *ev,
                            const char *actor_org, const char *peer_org, const char *rule,
                            const char *detail)
{
    *p++ = v;
    tu_be64(seq, p), p += 8;
    tu_be64(1767225600000ULL, p), p += 8;        /* time */
    *p++ = action, *p++ = 0, *p++ = 0, *p++ = 0; /* action, ok, code 0 */
    *p++ = ev ? 1 : 0;                           /* flags */
    if (ev) memcpy(p, ev, 16), p += 16;
    const char *s5[5] = {actor_org, "", peer_org, "", rule};
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(s5[i]);
        *p++ = (uint8_t)n, memcpy(p, s5[i], n), p += n;
    }
    size_t n = strlen(detail);
    *p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)n, memcpy(p, detail, n), p += n;
    return p;
}

Test(audit_format, format_document_is_exact)
{
    /* Recompute the genesis entry and the entry after it from docs/audit-format.md with
     * OpenSSL's SHA-256 and nothing from sharehub, and the signed head over them with the
     * documented message. */
    sh_error err;
    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
    cr_assert_eq(sh_audit_open(store, NULL, signer, 10, &audit, &err), SH_OK);
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    uint8_t ev[16] = {0x01, 0x93};
    sh_audit_entry e = {.time_ms = 1767225600000LL,
                        .action = SH_AUDIT_SEND,
                        .outcome = SH_AUDIT_OK,
                        .code = 0,
                        .event_id = ev,
                        .actor_org = "RH8",
                        .peer_org = "881",
                        .rule = "isp-cpis@3",
                        .detail = "ok"};
    cr_assert_eq(sh_audit_append(audit, t, &e, NULL, &err), SH_OK);
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    uint8_t store_id[16];
    memcpy(store_id, sh_store_id(store), 16);
    sh_audit_destroy(&audit);
    sh_store_destroy(&store);

    char id[33], gdetail[64];
    sh_hex_encode(store_id, 16, id);
    snprintf(gdetail, sizeof gdetail, "genesis store=%s", id);
    uint8_t gen_in[25 + 16], prev[32];
    memcpy(gen_in, "sharehub/v2/audit-genesis", 25);
    memcpy(gen_in + 25, store_id, 16);
    SHA256(gen_in, sizeof gen_in, prev);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        uint8_t want[256], got[256], key[8], *p = want;
        p = seq == 1 ? s_doc_entry(p, 2, 1, 8, NULL, "", "", "", gdetail)
                     : s_doc_entry(p, 2, 2, 3, ev, "RH8", "881", "isp-cpis@3", "ok");
        memcpy(p, prev, 32), p += 32;
        SHA256(want, (size_t)(p - want), p);
        memcpy(prev, p, 32);
        p += 32;
        size_t n = 0;
        tu_be64(seq, key);
        cr_assert_eq(tu_raw_get(dir, "sh_audit", key, 8, got, sizeof got, &n), 0);
        cr_assert_eq(n, (size_t)(p - want), "entry %llu is %zu bytes, the document says %td",
                     (unsigned long long)seq, n, p - want);
        cr_assert_arr_eq(got, want, n, "stored entry %llu differs from the documented format",
                         (unsigned long long)seq);
    }
    /* the signed head: 145 bytes over entry 2, verifying under the documented message */
    uint8_t cp[145], key[8], msg[28 + 16 + 48], pub[32];
    size_t n = 0;
    tu_be64(2, key);
    cr_assert_eq(tu_raw_get(dir, "sh_audit_cp", key, 8, cp, sizeof cp, &n), 0);
    cr_assert_eq(n, 145);
    cr_assert_arr_eq(cp + 17, prev, 32, "the head is entry 2's hash");
    memcpy(msg, "sharehub/v1/audit-checkpoint", 28);
    memcpy(msg + 28, store_id, 16);
    memcpy(msg + 44, cp + 1, 48);
    sh_signkey_public(signer, pub);
    cr_assert_arr_eq(cp + 49, pub, 32);
    cr_assert_eq(sh_verify(pub, msg, sizeof msg, cp + 81), SH_OK);
}

Test(audit_format, a_version_1_log_is_checked_with_its_key_and_continues_in_version_2)
{
    /* A log begun before version 2: two HMAC-chained entries and a checkpoint, written from the
     * document. Appending continues it in version 2; verifying it needs the audit key. */
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(200 - i);
    sh_key *k = NULL;
    sh_error err;
    cr_assert_eq(sh_key_from_bytes(raw, &k), SH_OK);
    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
    sh_db dummy;
    cr_assert_eq(sh_store_db(store, "sh_audit", SH_DB_PLAIN, &dummy, &err), SH_OK);
    cr_assert_eq(sh_store_db(store, "sh_audit_cp", SH_DB_PLAIN, &dummy, &err), SH_OK);
    uint8_t store_id[16];
    memcpy(store_id, sh_store_id(store), 16);
    sh_store_destroy(&store);
    uint8_t gen_in[25 + 16], prev[32];
    unsigned ml = 0;
    memcpy(gen_in, "sharehub/v1/audit-genesis", 25);
    memcpy(gen_in + 25, store_id, 16);
    HMAC(EVP_sha256(), raw, 32, gen_in, sizeof gen_in, prev, &ml);
    for (uint64_t seq = 1; seq <= 2; seq++) {
        uint8_t v[256], key[8], *p = s_doc_entry(v, 1, seq, 8, NULL, "881", "", "", "started");
        memcpy(p, prev, 32), p += 32;
        HMAC(EVP_sha256(), raw, 32, v, (size_t)(p - v), p, &ml);
        memcpy(prev, p, 32);
        p += 32;
        tu_be64(seq, key);
        cr_assert_eq(tu_raw_put(dir, "sh_audit", key, 8, v, (size_t)(p - v)), 0);
    }
    uint8_t cp[145], msg[28 + 16 + 48], key[8];
    cp[0] = 1;
    tu_be64(2, cp + 1);
    tu_be64(1767225600000ULL, cp + 9);
    memcpy(cp + 17, prev, 32);
    sh_signkey_public(signer, cp + 49);
    memcpy(msg, "sharehub/v1/audit-checkpoint", 28);
    memcpy(msg + 28, store_id, 16);
    memcpy(msg + 44, cp + 1, 48);
    cr_assert_eq(sh_sign(signer, msg, sizeof msg, cp + 81), SH_OK);
    tu_be64(2, key);
    cr_assert_eq(tu_raw_put(dir, "sh_audit_cp", key, 8, cp, sizeof cp), 0);

    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
    cr_assert_eq(sh_audit_open(store, k, signer, 10, &audit, &err), SH_OK);
    sh_audit_report r;
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_OK, "%s", r.detail);
    sh_txn *t = NULL;
    sh_audit_entry e = {.action = SH_AUDIT_READ, .actor_org = "881", .detail = "after"};
    uint64_t seq = 0;
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_append(audit, t, &e, &seq, &err), SH_OK);
    cr_assert_eq(seq, 3, "no genesis entry in a log that has begun");
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    sh_audit_record rec;
    cr_assert_eq(sh_txn_begin(store, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_get(audit, t, 3, &rec, &err), SH_OK);
    sh_txn_abort(&t);
    cr_assert_eq(rec.version, 2);
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_OK, "%s", r.detail);
    cr_assert_eq(r.entries, 3);
    sh_audit_destroy(&audit);

    /* without the key: cannot be checked (not tampered); with a wrong key: altered at 1 */
    cr_assert_eq(sh_audit_open(store, NULL, NULL, 10, &audit, &err), SH_OK);
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_E_KEY_MISSING);
    cr_assert_eq(r.bad_seq, 1);
    sh_audit_destroy(&audit);
    sh_key *wrong = tu_key();
    cr_assert_eq(sh_audit_open(store, wrong, NULL, 10, &audit, &err), SH_OK);
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_E_AUDIT_ALTERED);
    cr_assert_eq(r.bad_seq, 1);
    sh_key_destroy(&wrong);
    sh_key_destroy(&k);
}

Test(audit_format, a_log_must_begin_with_its_own_genesis_entry)
{
    /* Entry 1 rewritten to name another store, its hash recomputed (anyone can: the chain is
     * a hash chain), is refused at entry 1 before anything else. */
    audit_fixture_open(10);
    s_fill(3);
    audit_fixture_close();
    uint8_t v[256], key[8];
    size_t n = 0;
    tu_be64(1, key);
    cr_assert_eq(tu_raw_get(dir, "sh_audit", key, 8, v, sizeof v, &n), 0);
    uint8_t *d = memmem(v, n, "store=", 6);
    cr_assert_not_null(d);
    d[6] = d[6] == '0' ? '1' : '0';
    SHA256(v, n - 32, v + n - 32);
    cr_assert_eq(tu_raw_put(dir, "sh_audit", key, 8, v, n), 0);
    audit_fixture_open(10);
    sh_audit_report r;
    sh_audit_verify(audit, NULL, 0, &r);
    cr_assert_eq(r.result, SH_E_AUDIT_GENESIS, "got %s: %s", sh_err_name(r.result), r.detail);
    cr_assert_eq(r.bad_seq, 1);
}

/* An entry outside the documented format is refused even when whoever wrote it re-hashed it: an
 * action or outcome the format does not name, a control character, a NUL, bytes that are not UTF-8
 * (docs/audit-format.md, "Entries"). */
Test(audit_format, an_entry_re_hashed_outside_the_format_is_refused)
{
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(90 + i);
    sh_key *k = NULL;
    sh_error err;
    cr_assert_eq(sh_key_from_bytes(raw, &k), SH_OK);
    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
    cr_assert_eq(sh_audit_open(store, k, signer, 1000, &audit, &err), SH_OK);
    for (int i = 0; i < 2; i++) {
        sh_txn *t = NULL;
        sh_audit_entry e = {.action = SH_AUDIT_READ, .actor_org = "881", .detail = "a reading"};
        cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
        cr_assert_eq(sh_audit_append(audit, t, &e, NULL, &err), SH_OK);
        cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    }
    sh_audit_destroy(&audit);
    sh_store_destroy(&store);
    uint8_t orig[256], v[256], key[8];
    size_t n = 0;
    tu_be64(2, key);
    cr_assert_eq(tu_raw_get(dir, "sh_audit", key, 8, orig, sizeof orig, &n), 0);
    const uint8_t *d = memmem(orig, n, "a reading", 9);
    cr_assert_not_null(d);
    size_t at = (size_t)(d - orig);
    /* {offset, byte}: 17 the action, 18 the outcome, then bytes of the detail */
    const size_t where[][2] = {{17, 14},       {17, 0},        {18, 3},
                               {at, 0x01},     {at, 0x00},     {at, 0xff},
                               {at + 2, 0x7f}, {at + 1, 0xc0}, {at + 3, 0x1b}};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        memcpy(v, orig, n);
        v[where[i][0]] = (uint8_t)where[i][1];
        SHA256(v, n - 32, v + n - 32); /* re-hashed, as anyone can */
        cr_assert_eq(tu_raw_put(dir, "sh_audit", key, 8, v, n), 0);
        cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
        cr_assert_eq(sh_audit_open(store, k, NULL, 1000, &audit, &err), SH_OK);
        sh_audit_report r;
        cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_E_AUDIT_FORMAT, "case %zu: %s", i,
                     r.detail);
        cr_assert_eq(r.bad_seq, 2, "case %zu", i);
        sh_audit_destroy(&audit);
        sh_store_destroy(&store);
    }
    cr_assert_eq(tu_raw_put(dir, "sh_audit", key, 8, orig, n), 0); /* the real one verifies */
    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK);
    cr_assert_eq(sh_audit_open(store, k, NULL, 1000, &audit, &err), SH_OK);
    sh_audit_report r;
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_OK, "%s", r.detail);
    sh_key_destroy(&k);
}
