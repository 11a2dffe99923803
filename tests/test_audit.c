/* test_audit.c — the audit chain: append, atomicity with the write it records, signed heads
 * and checkpoints, and every kind of tampering detected at the right sequence number
 * (test_audit_format.c holds the tests written from docs/audit-format.md alone). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "testutil.h"

#include "audit_fixture.h"

TestSuite(audit, .init = audit_fixture_setup, .fini = audit_fixture_teardown);

/* Appends n entries in batches of `batch` per transaction; final checkpoint if asked. */
static void s_fill(unsigned n, unsigned batch, int final_cp)
{
    sh_error err;
    uint8_t ev[16] = {0};
    uint8_t ref[32];
    unsigned done = 0;
    uint64_t last = 0;
    while (done < n) {
        sh_txn *t = NULL;
        cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
        for (unsigned i = 0; i < batch && done < n; i++, done++) {
            ev[15] = (uint8_t)done;
            memset(ref, (int)done, sizeof ref);
            char detail[32];
            snprintf(detail, sizeof detail, "entry %u", done + 1);
            sh_audit_entry e = {.action = (uint8_t)(1 + done % 8),
                                .outcome = (uint8_t)(done % 3),
                                .code = (uint16_t)(done % 3 ? 800 : 0),
                                .event_id = done % 2 ? ev : NULL,
                                .child_ref = done % 3 ? ref : NULL,
                                .actor_org = "881",
                                .actor_user = "hub-practitioner-7",
                                .peer_org = "RH8",
                                .purpose = "safeguarding",
                                .rule = "isp-safeguarding@2",
                                .detail = detail};
            uint64_t seq = 0;
            cr_assert_eq(sh_audit_append(audit, t, &e, &seq, &err), SH_OK, "%s", err.detail);
            cr_assert(last == 0 || seq == last + 1, "sequence %llu after %llu",
                      (unsigned long long)seq, (unsigned long long)last);
            last = seq;
        }
        if (final_cp && done == n) cr_assert_eq(sh_audit_checkpoint(audit, t, &err), SH_OK);
        cr_assert_eq(sh_txn_commit(&t, &err), SH_OK, "%s", err.detail);
    }
}

static sh_audit_report s_verify(void)
{
    uint8_t pub[SH_SIGN_PUB_BYTES];
    sh_signkey_public(signer, pub);
    sh_audit_report r;
    sh_err rc = sh_audit_verify(audit, &pub, 1, &r);
    cr_assert_eq(rc, r.result);
    return r;
}

/* Closes, lets `edit` change the files on disk, reopens, verifies. */
#define AFTER_EDIT(edit)                                                                           \
    do {                                                                                           \
        audit_fixture_close();                                                                     \
        edit;                                                                                      \
        audit_fixture_open(10);                                                                    \
    } while (0)

static int s_del(uint64_t seq)
{
    uint8_t k[8];
    tu_be64(seq, k);
    return tu_raw_del(dir, "sh_audit", k, 8);
}

Test(audit, append_verify_and_read_back)
{
    audit_fixture_open(10);
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_EMPTY, "an empty log does not verify: it was emptied");
    cr_assert_eq(r.entries, 0);
    cr_assert_eq(r.bad_seq, 1);
    s_fill(95, 7, 1);
    r = s_verify();
    cr_assert_eq(r.result, SH_OK, "%s", r.detail);
    cr_assert_eq(r.entries, 96, "the genesis entry and 95");
    cr_assert_eq(r.head_seq, 96);
    cr_assert_eq(r.checkpoints, 10, "commits end at 8, 15, 22 .. 92, 96: the last in each ten");
    cr_assert_eq(r.last_checkpoint_seq, 96);

    sh_txn *t = NULL;
    sh_error err;
    sh_audit_record rec;
    cr_assert_eq(sh_txn_begin(store, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_get(audit, t, 1, &rec, &err), SH_OK);
    cr_assert_eq(rec.version, 2);
    cr_assert_eq(rec.action, SH_AUDIT_ADMIN);
    char id[33], want[64];
    sh_hex_encode(sh_store_id(store), 16, id);
    snprintf(want, sizeof want, "genesis store=%s", id);
    cr_assert_str_eq(rec.detail, want);
    cr_assert_eq(sh_audit_get(audit, t, 7, &rec, &err), SH_OK);
    cr_assert_eq(rec.seq, 7);
    cr_assert_eq(rec.action, 6);
    cr_assert_eq(rec.outcome, 2);
    cr_assert_eq(rec.code, 800);
    cr_assert_eq(rec.has_event, 1);
    cr_assert_eq(rec.event_id[15], 5);
    cr_assert_eq(rec.has_child, 1);
    cr_assert_eq(rec.child_ref[0], 5);
    cr_assert_str_eq(rec.actor_org, "881");
    cr_assert_str_eq(rec.actor_user, "hub-practitioner-7");
    cr_assert_str_eq(rec.peer_org, "RH8");
    cr_assert_str_eq(rec.purpose, "safeguarding");
    cr_assert_str_eq(rec.rule, "isp-safeguarding@2");
    cr_assert_str_eq(rec.detail, "entry 6");
    cr_assert_eq(sh_audit_get(audit, t, 2, &rec, &err), SH_OK);
    cr_assert_eq(rec.has_event, 0);
    cr_assert_eq(rec.has_child, 0);
    cr_assert_eq(sh_audit_get(audit, t, 97, &rec, &err), SH_E_NOT_FOUND);
    sh_txn_abort(&t);
    cr_assert_str_eq(sh_audit_action_name(SH_AUDIT_DENY), "deny");
    cr_assert_str_eq(sh_audit_action_name(99), "unknown");
}

Test(audit, chain_continues_across_reopen)
{
    audit_fixture_open(10);
    s_fill(15, 15, 0);
    audit_fixture_close();
    audit_fixture_open(10);
    s_fill(15, 4, 1);
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_OK, "%s", r.detail);
    cr_assert_eq(r.entries, 31);
    cr_assert_eq(r.checkpoints, 3, "heads at 16, 20, 24, 28, 31: 20 and 24 gave way to 28");
}

Test(audit, entry_commits_with_its_write_or_not_at_all)
{
    audit_fixture_open(10);
    s_fill(3, 3, 0);
    sh_error err;
    sh_db db;
    cr_assert_eq(sh_store_db(store, "events", SH_DB_SEALED, &db, &err), SH_OK);
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, db, "ev", 2, "payload", 7, 0, &err), SH_OK);
    sh_audit_entry e = {.action = SH_AUDIT_WRITE, .actor_org = "881"};
    uint64_t seq;
    cr_assert_eq(sh_audit_append(audit, t, &e, &seq, &err), SH_OK);
    cr_assert_eq(seq, 5);
    sh_txn_abort(&t);
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_OK);
    cr_assert_eq(r.entries, 4, "the aborted write took its entry with it");
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_append(audit, t, &e, &seq, &err), SH_OK);
    cr_assert_eq(seq, 5, "the sequence has no gap");
    cr_assert_eq(sh_txn_commit(&t, &err), SH_OK);
    r = s_verify();
    cr_assert_eq(r.result, SH_OK);
    cr_assert_eq(r.entries, 5);
    cr_assert_eq(r.last_checkpoint_seq, 5, "the commit signed its head");
}

/* Appends e in a transaction of its own that already holds a store write; the append must be
 * refused with want and take the whole transaction with it: the commit fails, nothing is
 * written (defect: an event stored and sent with no audit entry). */
static void s_refused_whole(const sh_audit_entry *e, sh_err want, const char *field)
{
    sh_error err;
    sh_txn *t = NULL;
    sh_db other;
    cr_assert_eq(sh_store_db(store, "other", SH_DB_PLAIN, &other, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_put(t, other, "k", 1, "v", 1, 0, &err), SH_OK);
    cr_assert_eq(sh_audit_append(audit, t, e, NULL, &err), want);
    if (field) cr_assert_not_null(strstr(err.detail, field), "%s", err.detail);
    cr_assert_eq(sh_txn_commit(&t, &err), want, "the commit reports the append's error");
    cr_assert_not_null(strstr(err.detail, "audit entry refused"), "%s", err.detail);
    cr_assert_eq(sh_txn_begin(store, 0, &t, &err), SH_OK);
    sh_buf v = {0};
    cr_assert_eq(sh_txn_get(t, other, "k", 1, &v, &err), SH_E_NOT_FOUND, "nothing was written");
    sh_txn_abort(&t);
}

Test(audit, bad_entries_are_refused)
{
    audit_fixture_open(10);
    sh_error err;
    sh_txn *t = NULL;
    char longs[80];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    sh_audit_entry e = {.action = SH_AUDIT_READ, .actor_user = longs};
    s_refused_whole(&e, SH_E_INVAL, "actor_user");
    e.actor_user = "ok";
    e.detail = "line\x1b[2J";
    s_refused_whole(&e, SH_E_INVAL, "detail");
    e.detail = NULL;
    e.action = 0;
    s_refused_whole(&e, SH_E_INVAL, NULL);
    e.action = SH_AUDIT_ACTION_MAX + 1;
    s_refused_whole(&e, SH_E_INVAL, NULL);
    e.action = SH_AUDIT_READ;
    e.outcome = 3;
    s_refused_whole(&e, SH_E_INVAL, NULL);
    e.outcome = 0;
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_append(audit, t, &e, NULL, &err), SH_OK);
    sh_txn_abort(&t);

    /* a log opened without a signing key can be verified but not written */
    sh_audit *ro = NULL;
    cr_assert_eq(sh_audit_open(store, akey, NULL, 10, &ro, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(store, 1, &t, &err), SH_OK);
    cr_assert_eq(sh_audit_append(ro, t, &e, NULL, &err), SH_E_INVAL);
    sh_txn_abort(&t);
    sh_audit_report r;
    cr_assert_eq(sh_audit_verify(ro, NULL, 0, &r), SH_E_AUDIT_EMPTY, "nothing was committed");
    sh_audit_destroy(&ro);
}

Test(audit, altered_entry)
{
    audit_fixture_open(10);
    s_fill(25, 25, 1);
    uint8_t k[8];
    tu_be64(13, k);
    AFTER_EDIT(cr_assert_eq(tu_raw_flip(dir, "sh_audit", k, 8, 40, 0x01), 0));
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_ALTERED, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 13);
    cr_assert_eq(r.entries, 12);
    cr_assert_not_null(strstr(r.detail, "entry 13"), "%s", r.detail);
}

Test(audit, altered_in_every_byte)
{
    /* Each byte of one entry flipped in turn is caught at that entry. */
    audit_fixture_open(10);
    s_fill(3, 3, 1);
    uint8_t k[8], v[2048];
    size_t n;
    tu_be64(2, k);
    audit_fixture_close();
    cr_assert_eq(tu_raw_get(dir, "sh_audit", k, 8, v, sizeof v, &n), 0);
    for (size_t at = 0; at < n; at++) {
        cr_assert_eq(tu_raw_flip(dir, "sh_audit", k, 8, at, 0x80), 0);
        audit_fixture_open(10);
        sh_audit_report r = s_verify();
        cr_assert_neq(r.result, SH_OK, "flip at byte %zu of %zu went unseen", at, n);
        cr_assert_eq(r.bad_seq, 2, "byte %zu: blamed entry %llu", at,
                     (unsigned long long)r.bad_seq);
        audit_fixture_close();
        cr_assert_eq(tu_raw_put(dir, "sh_audit", k, 8, v, n), 0);
    }
    audit_fixture_open(10);
    cr_assert_eq(s_verify().result, SH_OK);
}

Test(audit, deleted_entry)
{
    audit_fixture_open(10);
    s_fill(25, 25, 1);
    AFTER_EDIT(cr_assert_eq(s_del(7), 0));
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_MISSING, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 7);
    cr_assert_eq(r.entries, 6);
}

Test(audit, deleted_first_entry)
{
    audit_fixture_open(10);
    s_fill(5, 5, 1);
    AFTER_EDIT(cr_assert_eq(s_del(1), 0));
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_MISSING);
    cr_assert_eq(r.bad_seq, 1);
}

Test(audit, reordered_entries)
{
    audit_fixture_open(10);
    s_fill(25, 25, 1);
    uint8_t k5[8], k6[8], v5[2048], v6[2048];
    size_t n5, n6;
    tu_be64(5, k5);
    tu_be64(6, k6);
    audit_fixture_close();
    cr_assert_eq(tu_raw_get(dir, "sh_audit", k5, 8, v5, sizeof v5, &n5), 0);
    cr_assert_eq(tu_raw_get(dir, "sh_audit", k6, 8, v6, sizeof v6, &n6), 0);
    cr_assert_eq(tu_raw_put(dir, "sh_audit", k5, 8, v6, n6), 0);
    cr_assert_eq(tu_raw_put(dir, "sh_audit", k6, 8, v5, n5), 0);
    audit_fixture_open(10);
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_REORDERED, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 5);
    cr_assert_eq(r.entries, 4);
}

Test(audit, truncated_past_checkpoint)
{
    audit_fixture_open(10);
    s_fill(25, 25, 1); /* 26 entries with the genesis; checkpoints at 10, 20, 26 */
    AFTER_EDIT({
        cr_assert_eq(s_del(26), 0);
        cr_assert_eq(s_del(25), 0);
    });
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_TRUNCATED, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 25);
    cr_assert_eq(r.entries, 24);
    cr_assert_not_null(strstr(r.detail, "covers entry 26"), "%s", r.detail);
}

Test(audit, truncated_to_before_an_earlier_checkpoint)
{
    audit_fixture_open(10);
    s_fill(25, 25, 1);
    AFTER_EDIT(for (uint64_t s = 15; s <= 26; s++) cr_assert_eq(s_del(s), 0));
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_TRUNCATED);
    cr_assert_eq(r.bad_seq, 15);
}

static int s_del_cp(uint64_t seq)
{
    uint8_t k[8];
    tu_be64(seq, k);
    return tu_raw_del(dir, "sh_audit_cp", k, 8);
}

Test(audit, every_commit_signs_its_head_so_the_newest_entries_cannot_be_cut)
{
    /* Without a checkpoint asked for, each commit still signs the head it leaves: cutting the
     * newest entries is seen; so is removing the signed head; only the whole log put back to an
     * older signed head verifies on its own, and a witness's copy of the newer head catches it. */
    audit_fixture_open(10);
    s_fill(25, 5, 0); /* 26 entries, committed up to 6, 11, 16, 21, 26 */
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_OK, "%s", r.detail);
    cr_assert_eq(r.checkpoints, 3, "6, 16 (the last of their tens) and the head at 26");
    cr_assert_eq(r.last_checkpoint_seq, 26);
    uint8_t head26[32];
    memcpy(head26, r.head_mac, 32);

    AFTER_EDIT(cr_assert_eq(s_del(26), 0));
    r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_TRUNCATED, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 26);

    AFTER_EDIT(cr_assert_eq(s_del_cp(26), 0)); /* and its signed head */
    r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_UNSIGNED, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 17, "entries 17 to 25 follow the checkpoint at 16");
    cr_assert_not_null(strstr(r.detail, "17 to 25"), "%s", r.detail);

    AFTER_EDIT(for (uint64_t s = 17; s <= 25; s++) cr_assert_eq(s_del(s), 0));
    r = s_verify();
    cr_assert_eq(r.result, SH_OK, "rolled back whole to the signed checkpoint at 16");
    cr_assert_eq(r.head_seq, 16);
    sh_audit_witness w = {.seq = 26, .time_ms = 1, .by = "broker"};
    memcpy(w.head, head26, 32);
    sh_audit_verify_opts o = {.witnesses = &w, .nwitnesses = 1};
    cr_assert_eq(sh_audit_verify_ex(audit, &o, &r), SH_E_AUDIT_ROLLED_BACK);
    cr_assert_eq(r.bad_seq, 17);
    cr_assert_not_null(strstr(r.detail, "broker holds"), "%s", r.detail);
}

Test(audit, forged_or_untrusted_checkpoints)
{
    audit_fixture_open(10);
    s_fill(20, 10, 1); /* signed heads at 11 and 21, in different tens: both kept */
    /* a checkpoint's signature byte flipped */
    uint8_t k[8];
    tu_be64(11, k);
    AFTER_EDIT(cr_assert_eq(tu_raw_flip(dir, "sh_audit_cp", k, 8, 100, 0x01), 0));
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_CHECKPOINT);
    cr_assert_eq(r.bad_seq, 11);
    cr_assert_not_null(strstr(r.detail, "signature"), "%s", r.detail);
    AFTER_EDIT(cr_assert_eq(tu_raw_flip(dir, "sh_audit_cp", k, 8, 100, 0x01), 0));
    cr_assert_eq(s_verify().result, SH_OK);

    /* pinned to another key: refused; unpinned: accepted */
    char *d2 = tu_tmpdir(), *p2 = tu_path(d2, "other.pem");
    sh_signkey *other = NULL;
    sh_error err;
    cr_assert_eq(sh_signkey_generate_file(p2, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(p2, &other, &err), SH_OK);
    uint8_t pub[32];
    sh_signkey_public(other, pub);
    cr_assert_eq(sh_audit_verify(audit, &pub, 1, &r), SH_E_AUDIT_CHECKPOINT);
    cr_assert_not_null(strstr(r.detail, "untrusted"), "%s", r.detail);
    cr_assert_eq(sh_audit_verify(audit, NULL, 0, &r), SH_OK);

    /* a well-signed checkpoint (by the trusted key, forged with the documented format) whose
     * head does not match the chain */
    audit_fixture_close();
    uint8_t cp[145];
    size_t n;
    tu_be64(21, k);
    cr_assert_eq(tu_raw_get(dir, "sh_audit_cp", k, 8, cp, sizeof cp, &n), 0);
    cr_assert_eq(n, 145);
    cp[17] ^= 0xff; /* head_mac */
    audit_fixture_open(10);
    uint8_t msg[28 + 16 + 48];
    memcpy(msg, "sharehub/v1/audit-checkpoint", 28);
    memcpy(msg + 28, sh_store_id(store), 16);
    memcpy(msg + 44, cp + 1, 48);
    cr_assert_eq(sh_sign(signer, msg, sizeof msg, cp + 81), SH_OK);
    audit_fixture_close();
    cr_assert_eq(tu_raw_put(dir, "sh_audit_cp", k, 8, cp, n), 0);
    audit_fixture_open(10);
    r = s_verify();
    cr_assert_eq(r.result, SH_E_AUDIT_CHECKPOINT, "got %s", sh_err_name(r.result));
    cr_assert_eq(r.bad_seq, 21);
    cr_assert_not_null(strstr(r.detail, "disagrees"), "%s", r.detail);
    sh_signkey_destroy(&other);
    tu_rmrf(d2);
    free(d2);
    free(p2);
}

Test(audit, many_entries)
{
    audit_fixture_open(1000);
    s_fill(20000, 2000, 1);
    sh_audit_report r = s_verify();
    cr_assert_eq(r.result, SH_OK);
    cr_assert_eq(r.entries, 20001);
    cr_assert_eq(r.checkpoints, 10, "each commit of 2,000 ends a run of 1,000: all kept");
}
