/*
 * fuzz_audit.c — libFuzzer target: the audit verifier, on a log an intruder has written to.
 * The input is a list of operations on a real store's audit databases — append a genuine
 * entry, write a raw value under any key, write a checkpoint or a raw one, flip a byte, delete
 * an entry — after which the log is verified (with and without a witness), scanned forwards
 * and backwards, and the witness text parser and the broker-head reader (a store id and a
 * checkpoint, as CONFIRM and DELIVER carry it) are fed the input. The verifier must report, never
 * crash or pass a log it should not: a log with a raw write or a flip must not verify clean unless
 * the bytes written were the genuine ones (checked where that can be known: after one flip).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "crypto.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sh_store *s_store;
static sh_audit *s_audit;
static sh_key *s_master, *s_akey;
static sh_signkey *s_signer;
static sh_db s_entries, s_cps;
static uint8_t s_pub[SH_SIGN_PUB_BYTES];
static char s_dir[256];

static void s_init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char sign[300];
    snprintf(s_dir, sizeof s_dir, "%s/sharehub-fuzz-audit-%d", base, (int)getpid());
    snprintf(sign, sizeof sign, "%s.sign", s_dir);
    uint8_t raw[SH_KEY_BYTES];
    sh_error err;
    sh_store_opts o = {.map_size = 64u << 20};
    if (sh_random(raw, sizeof raw) || sh_key_from_bytes(raw, &s_master) ||
        sh_signkey_generate_file(sign, &err) || sh_signkey_load_file(sign, &s_signer, &err) ||
        sh_store_open(s_dir, s_master, &o, &s_store, &err) ||
        sh_store_derive_key(s_store, "audit mac", &s_akey) ||
        sh_audit_open(s_store, s_akey, s_signer, 4, &s_audit, &err) ||
        sh_store_db(s_store, "sh_audit", SH_DB_PLAIN, &s_entries, &err) ||
        sh_store_db(s_store, "sh_audit_cp", SH_DB_PLAIN, &s_cps, &err))
        abort();
    unlink(sign);
    sh_signkey_public(s_signer, s_pub);
}

static void s_clear(sh_txn *t, sh_db db)
{
    sh_cursor *c = NULL;
    sh_error err;
    sh_kv kv;
    uint8_t keys[64][8];
    for (;;) {
        size_t n = 0;
        if (sh_cursor_open(t, db, &c, &err)) abort();
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err);
             rc == SH_OK && n < 64; rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err))
            if (kv.klen == 8) memcpy(keys[n++], kv.key, 8);
        sh_cursor_close(&c);
        if (!n) return;
        for (size_t i = 0; i < n; i++)
            if (sh_txn_del(t, db, keys[i], 8, &err)) abort();
    }
}

static int s_visit(void *ctx, const sh_audit_record *r)
{
    *(uint64_t *)ctx += r->seq + r->action + strlen(r->detail);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_store) s_init();
    const uint8_t *all = data;
    size_t all_size = size;
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(s_store, 1, &t, &err)) abort();
    s_clear(t, s_entries);
    s_clear(t, s_cps);
    int flips = 0, other = 0; /* tampering done: flips of genuine entries, anything else */
    while (size >= 2) {
        unsigned op = data[0] % 6;
        size_t n = data[1] < size - 2 ? data[1] : size - 2;
        const uint8_t *b = data + 2;
        data += 2 + n;
        size -= 2 + n;
        uint8_t key[8] = {0};
        key[7] = n > 0 ? b[0] : 1;
        if (op == 0) { /* a genuine entry */
            char detail[256];
            memcpy(detail, b, n);
            detail[n] = '\0';
            sh_audit_entry e = {.action = (uint8_t)(n > 1 ? b[1] % 10 : 1),
                                .outcome = (uint8_t)(n > 2 ? b[2] % 3 : 0),
                                .actor_org = "R1L",
                                .detail = detail};
            uint64_t seq;
            sh_err rc = sh_audit_append(s_audit, t, &e, &seq, &err);
            if (rc && rc != SH_E_INVAL && rc != SH_E_BAD_TEXT && rc != SH_E_AUDIT_FORMAT) break;
        } else if (op == 1 || op == 3) { /* raw bytes where an entry or checkpoint goes */
            if (sh_txn_put(t, op == 1 ? s_entries : s_cps, key, 8, b, n, 0, &err)) break;
            other = 1;
        } else if (op == 2) {
            if (sh_audit_checkpoint(s_audit, t, &err)) break;
        } else if (op == 4 && n >= 3) { /* flip a byte of an entry */
            sh_buf v = {0};
            if (sh_txn_get(t, s_entries, key, 8, &v, &err) == SH_OK && v.len) {
                v.data[b[1] % v.len] ^= b[2] ? b[2] : 1;
                if (sh_txn_put(t, s_entries, key, 8, v.data, v.len, 0, &err)) {
                    sh_buf_free(&v);
                    break;
                }
                flips++;
            }
            sh_buf_free(&v);
        } else if (op == 5) {
            if (sh_txn_del(t, s_entries, key, 8, &err) == SH_OK) other = 1;
        }
    }
    if (sh_txn_commit(&t, &err)) return 0;
    sh_audit_report rep;
    sh_err rc = sh_audit_verify(s_audit, (const uint8_t(*)[SH_SIGN_PUB_BYTES]) & s_pub, 1, &rep);
    /* one flipped byte in a genuine entry, and nothing else touched, can never verify */
    if (flips == 1 && !other && rc == SH_OK) abort();
    sh_audit_witness w = {.seq = all_size};
    memset(w.head, all_size ? all[0] : 0, sizeof w.head);
    sh_audit_verify_opts o = {.trusted = (const uint8_t(*)[SH_SIGN_PUB_BYTES]) & s_pub,
                              .ntrusted = 1,
                              .witnesses = &w,
                              .nwitnesses = 1};
    (void)sh_audit_verify_ex(s_audit, &o, &rep);
    uint64_t sum = 0;
    (void)sh_audit_scan(s_audit, 1, s_visit, &sum, &rep);
    if (sh_txn_begin(s_store, 0, &t, &err) == SH_OK) {
        (void)sh_audit_find_back(s_audit, t, s_visit, &sum, &err);
        sh_txn_abort(&t);
    }
    /* the witness text parser, on the raw input */
    char text[512];
    size_t tl = all_size < sizeof text - 1 ? all_size : sizeof text - 1;
    memcpy(text, all, tl);
    text[tl] = '\0';
    uint8_t id[SH_STORE_ID_BYTES], cp[SH_AUDIT_CP_BYTES];
    (void)sh_audit_witness_parse(text, id, cp);
    sh_audit_record r;
    (void)sh_audit_parse(all, all_size, &r);
    sh_audit_cp_info info;
    if (all_size >= SH_STORE_ID_BYTES)
        (void)sh_audit_checkpoint_check(all, all + SH_STORE_ID_BYTES, all_size - SH_STORE_ID_BYTES,
                                        &info);
    return 0;
}
