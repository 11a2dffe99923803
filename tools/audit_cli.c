/*
 * audit_cli.c — `sharehub audit`: verify, grant, replay and event; the shared opening of a
 * store's log for auditors (subject and whatif are in subject.c and whatif.c).
 *
 * Owns: the auditor's commands, their options, exit codes (0 verified / found, 1 tampered,
 * 2 could not read or usage) and output formats (docs/audit.md).
 * Never: decrypts a stored event without auditing the read in that store's own chain, or
 * prints a child's identifier next to its blinded reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_record.h"
#include "auditor.h"
#include "broker_record.h"
#include "codec.h"
#include "ident.h"
#include "json.h"

int sh_audit_main(int argc, char **argv);

void sh_audit_usage(FILE *f)
{
    fputs("usage (keys: --keyring FILE, or --master KEY --sign-key PEM for one's own store):\n"
          "  sharehub audit verify STORE... [--witness BROKER-STORE] [--json]\n"
          "  sharehub audit grant STORE --master KEY --sign-key PEM --keyring FILE --name NAME\n"
          "                       [--no-blind]      add a store's audit keys to a keyring\n"
          "  sharehub audit replay STORE [--from T] [--to T] [--org ORG] [--action A]\n"
          "                       [--decision ok|denied|failed] [--child ID] [--event ID]\n"
          "                       [--isp ID] [--json] [--no-progress]\n"
          "  sharehub audit subject CHILD-ID [CHILD-ID...] --stores STORE... [--format md|html]\n"
          "                       [--output FILE]\n"
          "  sharehub audit whatif --store BROKER-STORE --policy DIR --registry FILE\n"
          "                       [--examples N] [--json]\n"
          "  sharehub audit event STORE EVENT-ID --master KEY --sign-key PEM --user U\n"
          "                       --purpose P      decrypt one stored event; the read is audited\n"
          "  T: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC) or epoch milliseconds; --to is exclusive\n"
          "  exit: 0 verified / done, 1 tampered, 2 could not read or usage\n",
          f);
}

int sh_audit_fail(const char *what, const sh_error *e)
{
    char buf[320];
    fprintf(stderr, "sharehub audit: %s: %s\n", what, sh_error_format(e, buf, sizeof buf));
    return SH_EXIT_USAGE;
}

int sh_auth_option(sh_auth *a, int argc, char **argv, int *i)
{
    const char **slot = strcmp(argv[*i], "--keyring") == 0    ? &a->keyring
                        : strcmp(argv[*i], "--master") == 0   ? &a->master
                        : strcmp(argv[*i], "--sign-key") == 0 ? &a->sign
                                                              : NULL;
    if (!slot) return 0;
    if (*i + 1 >= argc) return -1;
    *slot = argv[++*i];
    return 1;
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
        const char *kind = sh_ident_kind(ids[i], canon, sizeof canon);
        if (!kind) {
            sh_error_set(err, SH_E_INVAL,
                         "child id %zu is not an NHS number, a UPN or a local-authority id", i + 1);
            return -SH_E_INVAL;
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

static int s_is_tamper(sh_err rc)
{
    return rc >= SH_E_AUDIT_ALTERED && rc <= SH_E_AUDIT_ROLLED_BACK;
}

static int s_verify(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *witness_dir = NULL, *dirs[64];
    size_t ndirs = 0;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        int k = sh_auth_option(&auth, argc, argv, &i);
        if (k > 0) continue;
        if (k == 0 && strcmp(argv[i], "--witness") == 0 && i + 1 < argc)
            witness_dir = argv[++i];
        else if (k == 0 && strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (k == 0 && argv[i][0] != '-' && ndirs < 64)
            dirs[ndirs++] = argv[i];
        else {
            sh_audit_usage(stderr);
            return SH_EXIT_USAGE;
        }
    }
    if (!ndirs) {
        sh_audit_usage(stderr);
        return SH_EXIT_USAGE;
    }
    int worst = SH_EXIT_OK;
    sh_error err = {0};
    sh_alog wlog = {0};
    if (witness_dir && sh_alog_open(witness_dir, &auth, &wlog, &err)) {
        sh_auth_free(&auth);
        return sh_audit_fail(witness_dir, &err);
    }
    for (size_t i = 0; i < ndirs; i++) {
        sh_alog l;
        sh_audit_report r;
        int code;
        memset(&err, 0, sizeof err);
        if (sh_alog_open(dirs[i], &auth, &l, &err)) {
            memset(&r, 0, sizeof r);
            r.result = err.code;
            snprintf(r.detail, sizeof r.detail, "%s", err.detail);
        } else {
            sh_alog_verify(&l, witness_dir ? &wlog : NULL, !json && isatty(2), &r);
            sh_alog_close(&l);
        }
        char head[2 * SH_MAC_BYTES + 1];
        sh_hex_encode(r.head_mac, SH_MAC_BYTES, head);
        code = r.result == SH_OK ? SH_EXIT_OK : s_is_tamper(r.result) ? SH_EXIT_BAD : SH_EXIT_USAGE;
        const char *verdict = code == SH_EXIT_OK    ? "OK"
                              : code == SH_EXIT_BAD ? "TAMPERED"
                                                    : "UNREADABLE";
        if (json) {
            printf("{\"store\":");
            sh_json_put_string(stdout, dirs[i]);
            printf(",\"result\":\"%s\",\"code\":%d,\"entries\":%llu,\"checkpoints\":%llu,"
                   "\"head_seq\":%llu,\"head\":\"%s\",\"bad_seq\":%llu,\"detail\":",
                   verdict, (int)r.result, (unsigned long long)r.entries,
                   (unsigned long long)r.checkpoints, (unsigned long long)r.head_seq, head,
                   (unsigned long long)r.bad_seq);
            sh_json_put_string(stdout, r.detail);
            printf("}\n");
        } else if (code == SH_EXIT_OK) {
            printf("%s: OK: %llu entries, %llu checkpoints (last at %llu), head %llu %.16s%s%s\n",
                   dirs[i], (unsigned long long)r.entries, (unsigned long long)r.checkpoints,
                   (unsigned long long)r.last_checkpoint_seq, (unsigned long long)r.head_seq, head,
                   r.detail[0] ? "; " : "", r.detail);
        } else if (code == SH_EXIT_BAD) {
            printf("%s: TAMPERED: E%03d %s at entry %llu: %s (%llu entries verified before it)\n",
                   dirs[i], (int)r.result, sh_err_name(r.result), (unsigned long long)r.bad_seq,
                   r.detail, (unsigned long long)r.entries);
        } else {
            printf("%s: UNREADABLE: E%03d %s: %s\n", dirs[i], (int)r.result, sh_err_name(r.result),
                   r.detail);
        }
        if (code > worst) worst = code;
    }
    sh_alog_close(&wlog);
    sh_auth_free(&auth);
    return worst;
}

/* ---- grant ----------------------------------------------------------------------------- */

static int s_grant(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *dir = NULL, *name = NULL;
    int no_blind = 0;
    for (int i = 0; i < argc; i++) {
        int k = sh_auth_option(&auth, argc, argv, &i);
        if (k > 0) continue;
        if (k == 0 && strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (k == 0 && strcmp(argv[i], "--no-blind") == 0)
            no_blind = 1;
        else if (k == 0 && !dir && argv[i][0] != '-')
            dir = argv[i];
        else {
            sh_audit_usage(stderr);
            return SH_EXIT_USAGE;
        }
    }
    if (!dir || !name || !auth.master || !auth.sign || !auth.keyring) {
        fprintf(stderr, "sharehub audit grant: give STORE, --master, --sign-key, --keyring and "
                        "--name\n");
        return SH_EXIT_USAGE;
    }
    const char *ring_path = auth.keyring;
    auth.keyring = NULL;
    sh_alog l;
    sh_error err = {0};
    sh_keyring *ring = NULL;
    if (sh_alog_open(dir, &auth, &l, &err)) return sh_audit_fail(dir, &err);
    struct stat st;
    sh_err rc = stat(ring_path, &st) == 0 ? sh_keyring_load(ring_path, &ring, &err)
                                          : (sh_keyring_new(&ring) ? SH_E_NOMEM : SH_OK);
    sh_key *audit = NULL, *blind = NULL;
    if (!rc && (sh_store_derive_key(l.store, "audit mac", &audit) ||
                (!no_blind && sh_store_derive_key(l.store, "blind index", &blind))))
        rc = sh_error_set(&err, SH_E_CRYPTO, "deriving keys");
    if (!rc)
        rc = sh_keyring_put(ring, sh_store_id(l.store), name, audit, blind, l.keys->signers[0],
                            &err);
    if (!rc) rc = sh_keyring_save(ring, ring_path, &err);
    char id[2 * SH_STORE_ID_BYTES + 1];
    sh_hex_encode(sh_store_id(l.store), SH_STORE_ID_BYTES, id);
    sh_key_destroy(&audit);
    sh_key_destroy(&blind);
    sh_keyring_destroy(&ring);
    sh_alog_close(&l);
    if (rc) return sh_audit_fail(ring_path, &err);
    printf("%s: store %s added to %s as %s (%s)\n", dir, id, ring_path, name,
           no_blind ? "verify and replay only" : "verify, replay and search by child");
    return SH_EXIT_OK;
}

/* ---- replay ---------------------------------------------------------------------------- */

void sh_json_put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
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

/* Parses a time option; *day is set when only a date was given. -1 on bad input. */
static int s_parse_time(const char *s, int64_t *out, int *day)
{
    struct tm tm = {0};
    char *end;
    *day = 0;
    if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) && (*end == '\0' || strcmp(end, "Z") == 0)) {
        *out = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    if ((end = strptime(s, "%Y-%m-%d", &tm)) && *end == '\0') {
        *out = (int64_t)timegm(&tm) * 1000;
        *day = 1;
        return 0;
    }
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 0) return -1;
    *out = v;
    return 0;
}

typedef struct s_filter {
    int64_t from, to; /* [from, to) */
    const char *org, *isp;
    int action, outcome; /* -1: any */
    int has_event;
    uint8_t event[16];
    uint8_t refs[8][32];
    size_t nrefs;
} s_filter;

static int s_match(const s_filter *f, const sh_audit_record *r)
{
    if (r->time_ms < f->from || r->time_ms >= f->to) return 0;
    if (f->action >= 0 && r->action != f->action) return 0;
    if (f->outcome >= 0 && r->outcome != f->outcome) return 0;
    if (f->org && strcmp(r->actor_org, f->org) != 0 && strcmp(r->peer_org, f->org) != 0) return 0;
    if (f->has_event && (!r->has_event || memcmp(r->event_id, f->event, 16) != 0)) return 0;
    if (f->isp) {
        size_t n = strlen(f->isp);
        if (strncmp(r->rule, f->isp, n) != 0 || (r->rule[n] != '\0' && r->rule[n] != '@')) return 0;
    }
    if (f->nrefs) {
        int hit = 0;
        for (size_t i = 0; i < f->nrefs && !hit; i++)
            hit = r->has_child && memcmp(r->child_ref, f->refs[i], 32) == 0;
        if (!hit) return 0;
    }
    return 1;
}

static const char *const s_outcomes[] = {"ok", "denied", "failed"};

typedef struct s_replay {
    s_filter f;
    int json, progress;
    uint64_t total, seen, shown;
} s_replay;

static int s_replay_visit(void *ctx, const sh_audit_record *r)
{
    s_replay *p = ctx;
    if (p->progress && (++p->seen & 0xffff) == 0 && p->total)
        fprintf(stderr, "\r  replaying %3d%%  %llu of %llu entries",
                (int)(p->seen * 100 / p->total), (unsigned long long)p->seen,
                (unsigned long long)p->total);
    if (!s_match(&p->f, r)) return 0;
    p->shown++;
    char when[32], ev[SH_EVENT_ID_STR] = "";
    sh_iso_time(r->time_ms, when);
    if (r->has_event) sh_event_id_format(r->event_id, ev);
    const char *outcome = r->outcome < 3 ? s_outcomes[r->outcome] : "unknown";
    if (p->json) {
        char ref[65] = "";
        if (r->has_child) sh_hex_encode(r->child_ref, 32, ref);
        printf(
            "{\"seq\":%llu,\"time\":\"%s\",\"time_ms\":%lld,\"action\":\"%s\",\"outcome\":\"%s\","
            "\"code\":%u,\"event_id\":%s%s%s,\"child_ref\":%s%s%s,\"actor_org\":",
            (unsigned long long)r->seq, when, (long long)r->time_ms,
            sh_audit_action_name(r->action), outcome, r->code, ev[0] ? "\"" : "",
            ev[0] ? ev : "null", ev[0] ? "\"" : "", ref[0] ? "\"" : "", ref[0] ? ref : "null",
            ref[0] ? "\"" : "");
        sh_json_put_string(stdout, r->actor_org);
        fputs(",\"actor_user\":", stdout);
        sh_json_put_string(stdout, r->actor_user);
        fputs(",\"peer_org\":", stdout);
        sh_json_put_string(stdout, r->peer_org);
        fputs(",\"purpose\":", stdout);
        sh_json_put_string(stdout, r->purpose);
        fputs(",\"rule\":", stdout);
        sh_json_put_string(stdout, r->rule);
        fputs(",\"detail\":", stdout);
        sh_json_put_string(stdout, r->detail);
        fputs("}\n", stdout);
    } else {
        char code[8] = "";
        if (r->code) snprintf(code, sizeof code, "E%03u", r->code);
        printf("%8llu  %.19s  %-8s %-6s %-4s  %-9s %-12.12s %-9s %-32.32s %-36s  %.70s\n",
               (unsigned long long)r->seq, when, sh_audit_action_name(r->action), outcome, code,
               r->actor_org, r->actor_user, r->peer_org[0] ? r->peer_org : "-",
               r->rule[0] ? r->rule : "-", ev[0] ? ev : "-", r->detail);
    }
    return 0;
}

static int s_replay_cmd(int argc, char **argv)
{
    sh_auth auth = {0};
    s_replay p = {.f = {.from = INT64_MIN, .to = INT64_MAX, .action = -1, .outcome = -1}};
    const char *dir = NULL, *child[8];
    size_t nchild = 0;
    int no_progress = 0, bad = 0;
    for (int i = 0; i < argc && !bad; i++) {
        int k = sh_auth_option(&auth, argc, argv, &i), day;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (k > 0) continue;
        bad = k < 0;
        if (bad) break;
        if (strcmp(argv[i], "--json") == 0)
            p.json = 1;
        else if (strcmp(argv[i], "--no-progress") == 0)
            no_progress = 1;
        else if (!v && argv[i][0] == '-')
            bad = 1;
        else if (strcmp(argv[i], "--from") == 0)
            bad = s_parse_time(argv[++i], &p.f.from, &day);
        else if (strcmp(argv[i], "--to") == 0) {
            bad = s_parse_time(argv[++i], &p.f.to, &day);
            if (day) p.f.to += 86400000; /* a date names the whole day */
        } else if (strcmp(argv[i], "--org") == 0)
            p.f.org = argv[++i];
        else if (strcmp(argv[i], "--isp") == 0)
            p.f.isp = argv[++i];
        else if (strcmp(argv[i], "--action") == 0) {
            p.f.action = 0;
            for (int a = SH_AUDIT_WRITE; a <= SH_AUDIT_CONNECTION; a++)
                if (strcmp(sh_audit_action_name(a), v) == 0) p.f.action = a;
            bad = p.f.action == 0;
            i++;
        } else if (strcmp(argv[i], "--decision") == 0) {
            for (int o = 0; o < 3; o++)
                if (strcmp(s_outcomes[o], v) == 0) p.f.outcome = o;
            bad = p.f.outcome < 0;
            i++;
        } else if (strcmp(argv[i], "--event") == 0) {
            bad = sh_event_id_parse(argv[++i], p.f.event) != SH_OK;
            p.f.has_event = 1;
        } else if (strcmp(argv[i], "--child") == 0 && nchild < 8)
            child[nchild++] = argv[++i];
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            bad = 1;
        if (bad) fprintf(stderr, "sharehub audit replay: bad option or value: %s\n", argv[i]);
    }
    if (bad || !dir) {
        sh_audit_usage(stderr);
        sh_auth_free(&auth);
        return SH_EXIT_USAGE;
    }
    sh_alog l;
    sh_error err = {0};
    if (sh_alog_open(dir, &auth, &l, &err)) {
        sh_auth_free(&auth);
        return sh_audit_fail(dir, &err);
    }
    int rc = SH_EXIT_OK;
    if (nchild) {
        int n = sh_alog_child_refs(&l, (char *const *)child, nchild, p.f.refs, &err);
        if (n < 0) rc = sh_audit_fail("--child", &err);
        p.f.nrefs = nchild;
    }
    if (rc == SH_EXIT_OK) {
        static char outbuf[1 << 20];
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
        p.progress = !no_progress && isatty(2);
        if (p.progress) {
            sh_txn *t = NULL;
            uint8_t mac[SH_MAC_BYTES];
            if (sh_txn_begin(l.store, 0, &t, &err) == SH_OK &&
                sh_audit_head(l.audit, t, &p.total, mac, &err) != SH_OK)
                p.total = 0;
            sh_txn_abort(&t);
        }
        if (!p.json)
            printf("%8s  %-19s  %-8s %-6s %-4s  %-9s %-12s %-9s %-32s %-36s  %s\n", "SEQ",
                   "TIME (UTC)", "ACTION", "RESULT", "CODE", "ORG", "USER", "PEER", "RULE", "EVENT",
                   "DETAIL");
        sh_audit_report r;
        sh_audit_scan(l.audit, 1, s_replay_visit, &p, &r);
        fflush(stdout);
        if (p.progress && p.total >= 65536) fprintf(stderr, "\r%60s\r", "");
        if (r.result != SH_OK) {
            fprintf(stderr,
                    "sharehub audit replay: %s: stopped at entry %llu: E%03d %s: %s\n"
                    "  (entries before it are shown; run `sharehub audit verify`)\n",
                    dir, (unsigned long long)r.bad_seq, (int)r.result, sh_err_name(r.result),
                    r.detail);
            rc = s_is_tamper(r.result) ? SH_EXIT_BAD : SH_EXIT_USAGE;
        } else if (!p.json) {
            fprintf(stderr, "%llu of %llu entries shown\n", (unsigned long long)p.shown,
                    (unsigned long long)r.entries);
        }
    }
    sh_alog_close(&l);
    sh_auth_free(&auth);
    return rc;
}

/* ---- event: an audited read of one stored payload --------------------------------------- */

static int s_event(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *dir = NULL, *idtext = NULL, *user = NULL, *purpose = NULL;
    for (int i = 0; i < argc; i++) {
        int k = sh_auth_option(&auth, argc, argv, &i);
        if (k > 0) continue;
        if (k == 0 && strcmp(argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (k == 0 && strcmp(argv[i], "--purpose") == 0 && i + 1 < argc)
            purpose = argv[++i];
        else if (k == 0 && argv[i][0] != '-' && !dir)
            dir = argv[i];
        else if (k == 0 && argv[i][0] != '-' && !idtext)
            idtext = argv[i];
        else {
            sh_audit_usage(stderr);
            return SH_EXIT_USAGE;
        }
    }
    uint8_t id[16];
    if (!dir || !idtext || !user || !purpose || !auth.master || !auth.sign) {
        fprintf(stderr, "sharehub audit event: reading a payload needs STORE, EVENT-ID, the "
                        "store's --master and --sign-key, and --user and --purpose (audited)\n");
        return SH_EXIT_USAGE;
    }
    if (sh_event_id_parse(idtext, id) != SH_OK) {
        fprintf(stderr, "sharehub audit event: E%03d %s\n", SH_E_BAD_EVENT_ID,
                sh_err_message(SH_E_BAD_EVENT_ID));
        return SH_EXIT_USAGE;
    }
    if (sh_text_check(user) || sh_text_check(purpose) || strlen(user) > SH_AUDIT_SHORT_MAX ||
        strlen(purpose) > SH_AUDIT_SHORT_MAX) {
        fprintf(stderr, "sharehub audit event: --user and --purpose: clean text of 1-64 bytes\n");
        return SH_EXIT_USAGE;
    }
    sh_alog l;
    sh_error err = {0};
    if (sh_alog_open(dir, &auth, &l, &err)) return sh_audit_fail(dir, &err);
    sh_db events;
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_envelope *e = NULL;
    sh_err rc = sh_store_db(l.store, "events", SH_DB_SEALED, &events, &err);
    if (!rc) rc = sh_txn_begin(l.store, 1, &t, &err);
    if (!rc) rc = sh_txn_get(t, events, id, 16, &b, &err);
    /* the record's owner parses it: a broker's store has a queue, an agent's an outbox */
    int broker = sh_store_db_exists(l.store, "queue"),
        agent = sh_store_db_exists(l.store, "outbox");
    const uint8_t *env = NULL;
    size_t envlen = 0;
    sh_broker_event bev;
    sh_agent_record arec;
    if (!rc && broker && sh_broker_event_parse(b.data, b.len, &bev) == 0) {
        env = bev.env;
        envlen = bev.env_len;
    } else if (!rc && agent && sh_agent_record_parse(b.data, b.len, &arec) == 0) {
        env = arec.env;
        envlen = arec.env_len;
    }
    if (!rc && !broker && !agent)
        rc = sh_error_set(&err, SH_E_STORE_CORRUPT, "%s: neither a broker's nor an agent's store",
                          dir);
    else if (!rc && (!env || sh_envelope_decode_minimised(env, envlen, &e, &err) != SH_OK))
        rc = sh_error_set(&err, SH_E_STORE_CORRUPT, "stored event cannot be decoded");
    if (!rc) {
        sh_audit_entry ae = {.action = SH_AUDIT_READ,
                             .event_id = id,
                             .actor_org = "auditor",
                             .actor_user = user,
                             .purpose = purpose,
                             .detail = "auditor read of a stored event (sharehub audit event)"};
        rc = sh_audit_append(l.audit, t, &ae, NULL, &err);
    }
    if (!rc) rc = sh_txn_commit(&t, &err);
    sh_txn_abort(&t);
    sh_buf_free(&b);
    int code = SH_EXIT_OK;
    if (rc) {
        code = sh_audit_fail(idtext, &err);
    } else {
        char *json = sh_json_from_message((const ProtobufCMessage *)e, 1);
        if (json) printf("%s\n", json);
        free(json);
        code = json ? SH_EXIT_OK : SH_EXIT_USAGE;
    }
    sh_envelope_free(e);
    sh_alog_close(&l);
    return code;
}

int sh_audit_main(int argc, char **argv)
{
    if (argc < 1) {
        sh_audit_usage(stderr);
        return SH_EXIT_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "verify") == 0) return s_verify(argc - 1, argv + 1);
    if (strcmp(sub, "grant") == 0) return s_grant(argc - 1, argv + 1);
    if (strcmp(sub, "replay") == 0) return s_replay_cmd(argc - 1, argv + 1);
    if (strcmp(sub, "subject") == 0) return sh_audit_subject_main(argc - 1, argv + 1);
    if (strcmp(sub, "whatif") == 0) return sh_audit_whatif_main(argc - 1, argv + 1);
    if (strcmp(sub, "event") == 0) return s_event(argc - 1, argv + 1);
    sh_audit_usage(stderr);
    return SH_EXIT_USAGE;
}
