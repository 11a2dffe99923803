/*
 * ledger.c — see ledger.h. Record layouts are the agent's (agents/agent.c, docs/agent.md).
 */
#define _GNU_SOURCE /* memmem */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "shred.h"
#include "store.h"
#include "wire.h"

#define ET(x) SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x

typedef struct idvec {
    uint8_t (*id)[16];
    size_t n, cap;
} idvec;

/* a (event id, recipient) pair, for receipts */
typedef struct pair {
    uint8_t id[16];
    int who;
} pair;

static int s_push(idvec *v, const uint8_t id[16])
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        void *p = realloc(v->id, cap * 16);
        if (!p) return -1;
        v->id = p;
        v->cap = cap;
    }
    memcpy(v->id[v->n++], id, 16);
    return 0;
}

static int s_cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int s_cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    int c = memcmp(x->id, y->id, 16);
    return c ? c : x->who - y->who;
}

/* How many times key occurs in the sorted array. */
static size_t s_count_pair(const pair *a, size_t n, const pair *key)
{
    const pair *hit = n ? bsearch(key, a, n, sizeof *a, s_cmp_pair) : NULL;
    if (!hit) return 0;
    const pair *lo = hit, *hi = hit;
    while (lo > a && s_cmp_pair(lo - 1, key) == 0)
        lo--;
    while (hi + 1 < a + n && s_cmp_pair(hi + 1, key) == 0)
        hi++;
    return (size_t)(hi - lo) + 1;
}

static void s_sort(idvec *v)
{
    if (v->n > 1) qsort(v->id, v->n, 16, s_cmp16);
}

/* How many times id occurs in the sorted vector. */
static size_t s_count(const idvec *v, const uint8_t id[16])
{
    if (!v->n) return 0;
    const uint8_t(*hit)[16] = bsearch(id, v->id, v->n, 16, s_cmp16);
    if (!hit) return 0;
    size_t lo = (size_t)(hit - v->id), hi = lo;
    while (lo > 0 && memcmp(v->id[lo - 1], id, 16) == 0)
        lo--;
    while (hi + 1 < v->n && memcmp(v->id[hi + 1], id, 16) == 0)
        hi++;
    return hi - lo + 1;
}

unsigned ledger_permitted(int event_type)
{
    if (event_type == ET(SAFEGUARDING_CONCERN)) return 1u << RIG_HUB | 1u << RIG_HEALTH;
    if (event_type == ET(REQUEST_FOR_SUPPORT)) return 1u << RIG_HUB;
    return 0;
}

static sh_err s_open(rig *r, int who, sh_store **s)
{
    char store[512], master[512], sign[512];
    rig_paths(r, who, store, master, sign);
    sh_key *k = NULL;
    sh_error err;
    sh_err rc = sh_key_load_file(master, &k, &err);
    if (!rc) rc = sh_store_open(store, k, NULL, s, &err);
    sh_key_destroy(&k);
    if (rc) fprintf(stderr, "ledger: %s: %s\n", store, err.detail);
    return rc;
}

/* An agent's event record: u8 direction | i64 at | u8 n peer | u8 n rule | u8 flags | env;
 * with flags bit 1 the env is u32 BE day | sealed under that day's erasure key, the event id
 * its associated data (docs/store-format.md, "Erasure keys"). */
static sh_envelope *s_record_env(const uint8_t *v, size_t n, int *direction, const uint8_t id[16],
                                 sh_shred *shred)
{
    if (n < 12) return NULL;
    size_t pl = v[9];
    if (n < 12 + pl) return NULL;
    size_t rl = v[10 + pl];
    if (n < 12 + pl + rl) return NULL;
    *direction = v[0];
    const uint8_t *env = v + 12 + pl + rl;
    size_t len = n - 12 - pl - rl, plen = 0;
    uint8_t *plain = NULL;
    if (v[11 + pl + rl] & 2) { /* sealed under its day key */
        if (len < SH_SHRED_OVERHEAD || !shred || !(plain = malloc(len - SH_SHRED_OVERHEAD + 1)) ||
            sh_shred_unseal(shred, id, 16, env, len, plain, len - SH_SHRED_OVERHEAD, &plen)) {
            free(plain);
            return NULL;
        }
        env = plain;
        len = plen;
    }
    sh_envelope *e = NULL;
    sh_error err;
    int bad = sh_envelope_decode_minimised(env, len, &e, &err) != SH_OK;
    free(plain);
    return bad ? NULL : e;
}

typedef struct agent_view {
    idvec inbox;    /* event ids in arrival order, then sorted */
    idvec sent;     /* events this agent published */
    int *sent_type; /* parallel to sent before sorting: only the publisher uses it */
    pair *receipts;
    size_t nreceipts;
    idvec confirmed, refused;
    size_t resent, outbox;
} agent_view;

static void s_view_free(agent_view *v)
{
    free(v->inbox.id);
    free(v->sent.id);
    free(v->sent_type);
    free(v->receipts);
    free(v->confirmed.id);
    free(v->refused.id);
}

static int s_who(const char *org)
{
    for (int i = 1; i < RIG_N; i++)
        if (strcmp(rig_org[i], org) == 0) return i;
    return -1;
}

static int s_read_agent(rig *r, int who, agent_view *v)
{
    sh_store *s = NULL;
    if (s_open(r, who, &s)) return -1;
    char store[512], master[512], sign[512], sp[600];
    rig_paths(r, who, store, master, sign);
    snprintf(sp, sizeof sp, "%s/erase.shred", store);
    sh_shred *shred = NULL;
    sh_error serr;
    if (sh_shred_open(sp, 0, &shred, &serr) && serr.code != SH_E_KEY_MISSING)
        fprintf(stderr, "ledger: %s: %s\n", sp, serr.detail);
    sh_db events, inbox, outbox, outcome;
    sh_error err;
    sh_txn *t = NULL;
    sh_cursor *c = NULL;
    sh_kv kv;
    sh_buf b = {0};
    int bad = sh_store_db(s, "events", SH_DB_SEALED, &events, &err) ||
              sh_store_db(s, "inbox", SH_DB_PLAIN, &inbox, &err) ||
              sh_store_db(s, "outbox", SH_DB_SEALED, &outbox, &err) ||
              sh_store_db(s, "outcome", SH_DB_PLAIN, &outcome, &err) ||
              sh_txn_begin(s, 0, &t, &err);
    /* inbox: seq -> event id; each one's record tells receipts apart */
    if (!bad && !(bad = sh_cursor_open(t, inbox, &c, &err) != SH_OK)) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK && !bad;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.vlen != 16) continue;
            bad = s_push(&v->inbox, kv.val);
            if (bad || sh_txn_get(t, events, kv.val, 16, &b, &err) != SH_OK) {
                fprintf(stderr, "ledger: %s: inbox entry without its event\n", rig_org[who]);
                bad = 1;
                break;
            }
            int dir = 0;
            sh_envelope *e = s_record_env(b.data, b.len, &dir, kv.val, shred);
            /* the broker's DELIVERED receipts (the recipients' own STORED receipts are checked
             * by the origin tests) */
            const Sharehub__V1__DeliveryReceipt *dr =
                e && e->event_type == ET(DELIVERY_RECEIPT) && e->delivery_receipt &&
                        e->delivery_receipt->status ==
                            SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED
                    ? e->delivery_receipt
                    : NULL;
            /* one receipt may cover several events (more_event_ids) */
            for (size_t k = 0; dr && !bad && k <= dr->n_more_event_ids; k++) {
                const ProtobufCBinaryData *id = k ? &dr->more_event_ids[k - 1] : &dr->for_event_id;
                if (id->len != 16) continue;
                pair *p = realloc(v->receipts, (v->nreceipts + 1) * sizeof *p);
                if (!p) bad = 1;
                if (p) {
                    v->receipts = p;
                    memcpy(p[v->nreceipts].id, id->data, 16);
                    p[v->nreceipts++].who = s_who(dr->recipient_org);
                }
            }
            sh_envelope_free(e);
        }
        sh_cursor_close(&c);
    }
    /* events this agent sent, with their types */
    if (!bad && !(bad = sh_cursor_open(t, events, &c, &err) != SH_OK)) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK && !bad;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            int dir = 0;
            sh_envelope *e = s_record_env(kv.val, kv.vlen, &dir, kv.key, shred);
            if (!e) {
                fprintf(stderr, "ledger: %s: an event record does not decode\n", rig_org[who]);
                bad = 1;
                break;
            }
            if (dir == 1) {
                int *ty = realloc(v->sent_type, (v->sent.n + 1) * sizeof *ty);
                if (!ty) {
                    bad = 1;
                } else {
                    v->sent_type = ty;
                    ty[v->sent.n] = e->event_type;
                    bad = s_push(&v->sent, kv.key);
                }
            }
            sh_envelope_free(e);
        }
        sh_cursor_close(&c);
    }
    /* the broker's answers */
    if (!bad && !(bad = sh_cursor_open(t, outcome, &c, &err) != SH_OK)) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK && !bad;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err)) {
            if (kv.klen != 16) continue;
            int refused = kv.vlen >= 7 && memcmp(kv.val, "refused", 7) == 0;
            bad = s_push(refused ? &v->refused : &v->confirmed, kv.key);
            if (kv.vlen >= 9 && memcmp(kv.val, "duplicate", 9) == 0) v->resent++;
        }
        sh_cursor_close(&c);
    }
    if (!bad && !(bad = sh_cursor_open(t, outbox, &c, &err) != SH_OK)) {
        for (sh_err rc = sh_cursor_get(c, SH_CURSOR_FIRST, NULL, 0, &kv, &err); rc == SH_OK;
             rc = sh_cursor_get(c, SH_CURSOR_NEXT, NULL, 0, &kv, &err))
            v->outbox++;
        sh_cursor_close(&c);
    }
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&s);
    sh_shred_destroy(&shred);
    if (bad) fprintf(stderr, "ledger: reading %s's store failed\n", rig_org[who]);
    s_sort(&v->inbox);
    s_sort(&v->confirmed);
    s_sort(&v->refused);
    if (v->nreceipts > 1) qsort(v->receipts, v->nreceipts, sizeof *v->receipts, s_cmp_pair);
    return bad ? -1 : 0;
}

int ledger_count(rig *r, const uint8_t (*ids)[16], size_t n, ledger_result *out)
{
    memset(out, 0, sizeof *out);
    agent_view v[RIG_N];
    memset(v, 0, sizeof v);
    int bad = 0;
    for (int i = 1; i < RIG_N && !bad; i++)
        bad = s_read_agent(r, i, &v[i]);
    if (bad) goto done;
    const agent_view *p = &v[RIG_PUB];
    out->published = n;
    out->confirmed = p->confirmed.n;
    out->refused = p->refused.n;
    out->resent = p->resent;
    out->outbox = p->outbox;
    out->receipts = p->nreceipts;
    /* every event the test saw accepted was confirmed */
    for (size_t k = 0; k < n; k++)
        if (!s_count(&p->confirmed, ids[k])) {
            out->lost++;
            fprintf(stderr, "ledger: accepted event %zu was never confirmed\n", k);
        }
    /* every confirmed event, once at each permitted recipient, and nowhere else */
    idvec allowed[RIG_N];
    memset(allowed, 0, sizeof allowed);
    for (size_t k = 0; k < p->sent.n; k++) {
        const uint8_t *id = p->sent.id[k];
        if (!s_count(&p->confirmed, id)) continue;
        unsigned perm = ledger_permitted(p->sent_type[k]);
        int whole = 1;
        for (int w = 1; w < RIG_N; w++) {
            if (!(perm & 1u << w)) continue;
            if (s_push(&allowed[w], id)) bad = 1;
            out->copies++;
            size_t c = s_count(&v[w].inbox, id);
            if (c == 0) out->lost++;
            if (c > 1) out->duplicated += c - 1;
            whole &= c == 1;
            /* and its receipt came back to the publisher, once */
            pair key = {.who = w};
            memcpy(key.id, id, 16);
            size_t nr = s_count_pair(p->receipts, p->nreceipts, &key);
            if (nr == 0 && c > 0) out->lost++; /* the copy arrived, its receipt did not */
            if (nr > 1) out->duplicated += nr - 1;
        }
        out->delivered += whole;
    }
    for (int w = 1; w < RIG_N; w++) {
        if (w == RIG_PUB) continue;
        s_sort(&allowed[w]);
        for (size_t k = 0; k < v[w].inbox.n; k++)
            if (!s_count(&allowed[w], v[w].inbox.id[k])) out->leaked++;
        free(allowed[w].id);
    }
done:
    for (int i = 1; i < RIG_N; i++)
        s_view_free(&v[i]);
    return bad ? -1 : 0;
}

int ledger_report(const ledger_result *l)
{
    printf("%zu confirmed, %zu delivered, %zu lost, %zu duplicated\n", l->confirmed, l->delivered,
           l->lost, l->duplicated);
    printf("  %zu events accepted by the publisher's agent, %zu refused by the broker, %zu copies "
           "to recipients, %zu receipts back, %zu leaked to an organisation not permitted, "
           "%zu resends answered \"duplicate: already accepted\", %zu left in the outbox\n",
           l->published, l->refused, l->copies, l->receipts, l->leaked, l->resent, l->outbox);
    int ok = l->lost == 0 && l->duplicated == 0 && l->leaked == 0 && l->outbox == 0 &&
             l->refused == 0 && l->confirmed == l->published && l->delivered == l->confirmed &&
             l->receipts == l->copies && l->confirmed > 0;
    if (!ok) printf("FAILED: the figures above do not balance\n");
    return ok ? 0 : -1;
}

int ledger_verify_audit(rig *r)
{
    char keyring[600];
    snprintf(keyring, sizeof keyring, "%s/auditor.keyring", rig_dir(r));
    int bad = 0;
    for (int i = 0; i < RIG_N; i++) {
        char store[512], master[512], sign[512];
        rig_paths(r, i, store, master, sign);
        const char *v[] = {"audit", "verify", store, "--master", master, "--sign-key", sign, NULL};
        const char *g[] = {"audit", "grant",     store,   "--master", master,     "--sign-key",
                           sign,    "--keyring", keyring, "--name",   rig_org[i], NULL};
        if (rig_cli(r, v) != 0 || rig_cli(r, g) != 0) {
            fprintf(stderr, "audit: %s's chain does not verify (see %s/cli.log)\n", rig_org[i],
                    rig_dir(r));
            bad++;
        }
    }
    char s[RIG_N][512], m[512], k[512];
    for (int i = 0; i < RIG_N; i++)
        rig_paths(r, i, s[i], m, k);
    const char *w[] = {"audit",       "verify",   s[RIG_HUB],  s[RIG_SCHOOL],
                       s[RIG_HEALTH], s[RIG_PUB], "--witness", s[RIG_BROKER],
                       "--keyring",   keyring,    NULL};
    if (!bad && rig_cli(r, w) != 0) {
        fprintf(stderr, "audit: an agent's chain disagrees with the broker's witness records\n");
        bad++;
    }
    return bad;
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

size_t ledger_grep_logs(rig *r, const char (*nhs)[11], size_t n)
{
    size_t hits = 0;
    for (int i = 0; i <= RIG_N; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.log", rig_dir(r), i < RIG_N ? rig_org[i] : "cli");
        size_t len = 0;
        char *text = s_slurp(path, &len);
        if (!text) continue;
        static const char *const markers[] = {"ZZTEST", "SYNTHETIC-NARRATIVE"};
        for (size_t m = 0; m < 2; m++)
            if (memmem(text, len, markers[m], strlen(markers[m]))) {
                fprintf(stderr, "logs: %s holds personal data (%s)\n", path, markers[m]);
                hits++;
            }
        for (size_t k = 0; k < n; k++)
            if (memmem(text, len, nhs[k], 10)) {
                fprintf(stderr, "logs: %s holds an NHS number\n", path);
                hits++;
                break;
            }
        free(text);
    }
    return hits;
}
