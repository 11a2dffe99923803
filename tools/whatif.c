/*
 * whatif.c — `sharehub audit whatif`: the broker's recorded routing decisions decided again
 * under another policy directory, and what would have been shared differently.
 *
 * Owns: rebuilding each event's decision inputs from the broker's `receive` entry (the context
 * the broker recorded: type, purpose, lawful basis, level, consent on record, responsible LA,
 * school of record, referrer — docs/audit.md), deciding every recipient again at the time the
 * event was accepted, and comparing with the recorded `send`/`deny` entries.
 * Never: reads an event's contents (no data key is needed), or trusts a log that does not
 * verify.
 */
#include <stdlib.h>
#include <string.h>

#include "auditor.h"
#include "clock.h"
#include "decide.h"
#include "codec.h"
#include "ident.h"
#include "policy.h"
#include "registry.h"
#include "wire.h"

#define MAX_RECORDED 256

typedef struct s_recorded {
    char peer[SH_AUDIT_SHORT_MAX + 1];
    int permit; /* the policy permitted (sent, or permitted but not subscribed) */
    uint16_t code;
    char rule[SH_AUDIT_SHORT_MAX + 1];
    char items[SH_AUDIT_DETAIL_MAX + 1];
    sh_retain keep; /* the recipient's retention, as the send entry recorded it */
} s_recorded;

enum {
    C_PERMITTED,
    C_DENIED,
    C_ITEMS_ADDED,
    C_ITEMS_REMOVED,
    C_RULE,
    C_RETENTION,
    C_ERASED_NOW,
    C_KINDS
};
static const char *const s_kind_names[] = {"newly permitted",
                                           "newly denied",
                                           "data items added",
                                           "data items removed",
                                           "permitted under another protocol",
                                           "kept for another time",
                                           "would be erased now"};
static const char *const s_kind_keys[] = {"newly_permitted", "newly_denied",   "items_added",
                                          "items_removed",   "other_protocol", "retention",
                                          "would_be_erased"};

typedef struct s_example {
    char text[1400];
} s_example;

typedef struct s_whatif {
    const sh_policy *policy;
    const sh_registry *registry;
    uint8_t cur[16];
    int has_cur;
    s_recorded rec[MAX_RECORDED];
    size_t nrec;
    uint64_t events, decisions, unchanged;
    uint64_t count[C_KINDS];
    s_example *ex[C_KINDS];
    size_t nex[C_KINDS], max_ex;
    /* counts by (kind, recipient, type) for the summary table */
    struct s_bucket {
        int kind;
        char org[16], type[48];
        uint64_t n;
    } * buckets;
    size_t nbuckets, capbuckets;
    int nomem;
    int64_t at_ms; /* "now" for retention: what would be erased by then */
} s_whatif;

/* Whether comma list a holds item x. */
static int s_has_item(const char *list, const char *x, size_t xn)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == xn && strncmp(p, x, n) == 0) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Items of list a not in list b, comma-separated, into out. */
static void s_minus(const char *a, const char *b, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = a; *p;) {
        size_t n = strcspn(p, ",");
        if (n && !s_has_item(b, p, n) && used + n + 2 < cap)
            used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)n, p);
        p += n + (p[n] == ',');
    }
}

static void s_count(s_whatif *w, int kind, const char *org, const char *type, const char *text)
{
    w->count[kind]++;
    struct s_bucket *b = NULL;
    for (size_t i = 0; i < w->nbuckets && !b; i++)
        if (w->buckets[i].kind == kind && strcmp(w->buckets[i].org, org) == 0 &&
            strcmp(w->buckets[i].type, type) == 0)
            b = &w->buckets[i];
    if (!b) {
        if (w->nbuckets == w->capbuckets) {
            size_t ncap = w->capbuckets ? 2 * w->capbuckets : 32;
            struct s_bucket *v = realloc(w->buckets, ncap * sizeof *v);
            if (!v) {
                w->nomem = 1;
                return;
            }
            w->buckets = v;
            w->capbuckets = ncap;
        }
        b = &w->buckets[w->nbuckets++];
        memset(b, 0, sizeof *b);
        b->kind = kind;
        snprintf(b->org, sizeof b->org, "%s", org);
        snprintf(b->type, sizeof b->type, "%s", type);
    }
    b->n++;
    if (w->nex[kind] < w->max_ex)
        snprintf(w->ex[kind][w->nex[kind]++].text, sizeof w->ex[kind][0].text, "%s", text);
}

/* Compares one recipient's new decision d with what the broker recorded for the event of r. */
static void s_compare(s_whatif *w, const sh_audit_record *r, const char *type, const char *code,
                      const sh_decision *dp)
{
    sh_decision d = *dp;
    const s_recorded *old = NULL;
    for (size_t k = 0; k < w->nrec && !old; k++)
        if (strcmp(w->rec[k].peer, code) == 0) old = &w->rec[k];
    w->decisions++;
    char ev[SH_EVENT_ID_STR], when[32], text[1400], items[SH_POLICY_ITEMS_TEXT_MAX + 1] = "";
    sh_event_id_format(r->event_id, ev);
    sh_iso_time(r->time_ms, when);
    if (d.permit) sh_decision_items(&d, items, sizeof items);
    const char *newrule = d.isp ? sh_isp_rule(d.isp) : "-";
    int old_permit = old && old->permit;
    if (!old_permit && d.permit) {
        snprintf(text, sizeof text, "%s %s %s -> %s: was %s%s%s, now permitted by %s (items %s)",
                 when, ev, type, code, old ? "denied" : "not decided", old ? " " : "",
                 old ? old->rule : "", newrule, items);
        s_count(w, C_PERMITTED, code, type, text);
    } else if (old_permit && !d.permit) {
        snprintf(text, sizeof text, "%s %s %s -> %s: was permitted by %s, now denied: E%03d %s",
                 when, ev, type, code, old->rule, (int)d.code, d.reason);
        s_count(w, C_DENIED, code, type, text);
    } else if (old_permit && d.permit) {
        char added[600], removed[600];
        s_minus(items, old->items, added, sizeof added);
        s_minus(old->items, items, removed, sizeof removed);
        int changed = 0;
        if (added[0]) {
            snprintf(text, sizeof text, "%s %s %s -> %s: %s would also share %s", when, ev, type,
                     code, newrule, added);
            s_count(w, C_ITEMS_ADDED, code, type, text);
            changed = 1;
        }
        if (removed[0]) {
            snprintf(text, sizeof text, "%s %s %s -> %s: %s would no longer share %s", when, ev,
                     type, code, newrule, removed);
            s_count(w, C_ITEMS_REMOVED, code, type, text);
            changed = 1;
        }
        /* retention: counted from when the broker accepted the event (the recipient stored it
         * moments later); a copy whose new period has already run out would be erased now */
        sh_retain nk = {0};
        if (d.retention && d.retention->count)
            nk = (sh_retain){(uint16_t)d.retention->count, d.retention->unit,
                             (uint8_t)d.retention->review};
        if (memcmp(&nk, &old->keep, sizeof nk) != 0 && old->keep.count) {
            int64_t now = w->at_ms, was = sh_clock_add(r->time_ms, old->keep.count, old->keep.unit),
                    will = nk.count ? sh_clock_add(r->time_ms, nk.count, nk.unit) : INT64_MAX;
            char ot[40] = "", nt[40] = "none";
            sh_retain_format(&old->keep, ot, sizeof ot);
            sh_retain_format(&nk, nt, sizeof nt);
            if (nk.count && !nk.review && will <= now && was > now) {
                char due[32];
                sh_iso_time(will, due);
                snprintf(text, sizeof text,
                         "%s %s %s -> %s: %s keeps it %s instead of %s: due %s, so erased now",
                         when, ev, type, code, newrule, nt + 7, ot + 7, due);
                s_count(w, C_ERASED_NOW, code, type, text);
            } else {
                snprintf(text, sizeof text, "%s %s %s -> %s: %s keeps it %s instead of %s", when,
                         ev, type, code, newrule, nt + (nk.count ? 7 : 0), ot + 7);
                s_count(w, C_RETENTION, code, type, text);
            }
            changed = 1;
        }
        if (!changed && strcmp(old->rule, newrule) != 0) {
            snprintf(text, sizeof text, "%s %s %s -> %s: was permitted by %s, now by %s", when, ev,
                     type, code, old->rule, newrule);
            s_count(w, C_RULE, code, type, text);
            changed = 1;
        }
        if (!changed) w->unchanged++;
    } else {
        w->unchanged++;
    }
}

typedef struct s_again {
    s_whatif *w;
    const sh_audit_record *r;
    const char *type;
} s_again;

static int s_again_one(void *ctx, const sh_org *to, const sh_decision *d)
{
    s_again *x = ctx;
    s_compare(x->w, x->r, x->type, to->code, d);
    return 0;
}

/* Decides the buffered event again and compares. r is its broker `receive` entry. */
static void s_decide_again(s_whatif *w, const sh_audit_record *r)
{
    sh_decide_context c;
    if (sh_decide_context_read(r->detail, &c))
        return; /* a receipt, or an entry from before contexts were recorded */
    const char *type = sh_event_type_name(c.event_type);
    const sh_org *sender = sh_registry_by_code(w->registry, r->actor_org);
    w->events++;
    /* every recipient the new registry names, decided as the broker decides */
    s_again x = {w, r, type};
    if (sender)
        sh_decide_all(w->policy, w->registry, &c.env, sender, c.referrer, c.school, r->time_ms,
                      s_again_one, &x);
    /* and every one the broker decided about that the registry no longer holds (or all, when
     * the sender is gone): nothing covers them now */
    size_t nreg = sh_registry_count(w->registry);
    for (size_t i = 0; i < nreg + w->nrec; i++) {
        const char *code = i < nreg ? sh_registry_at(w->registry, i)->code : w->rec[i - nreg].peer;
        if (sender && i < nreg) continue;
        if (i >= nreg && sh_registry_by_code(w->registry, code)) continue;
        if (strcmp(code, r->actor_org) == 0) continue;
        sh_decision d;
        memset(&d, 0, sizeof d);
        d.code = SH_E_DENY_NO_ISP;
        snprintf(d.reason, sizeof d.reason, "%s is not in the registry",
                 sender ? code : r->actor_org);
        s_compare(w, r, type, code, &d);
    }
}

static int s_visit(void *ctx, const sh_audit_record *r)
{
    s_whatif *w = ctx;
    if (strcmp(r->actor_user, "broker") != 0 || !r->has_event) return 0;
    if (!w->has_cur || memcmp(w->cur, r->event_id, 16) != 0) {
        memcpy(w->cur, r->event_id, 16);
        w->has_cur = 1;
        w->nrec = 0;
    }
    if ((r->action == SH_AUDIT_SEND || r->action == SH_AUDIT_DENY) && w->nrec < MAX_RECORDED) {
        s_recorded *x = &w->rec[w->nrec++];
        snprintf(x->peer, sizeof x->peer, "%s", r->peer_org);
        snprintf(x->rule, sizeof x->rule, "%s", r->rule);
        x->code = r->code;
        x->permit = r->action == SH_AUDIT_SEND;
        const char *items = strstr(r->detail, "items=");
        snprintf(x->items, sizeof x->items, "%s", items ? items + 6 : "");
        /* "queued ground=... retain=72m:review items=...": the retain= token, if any */
        const char *keep = strstr(r->detail, " retain=");
        int overdue;
        x->keep = (sh_retain){0};
        if (keep && x->permit)
            sh_deliver_flags_parse((const uint8_t *)keep + 1, strcspn(keep + 1, " "), &overdue,
                                   &x->keep);
    } else if (r->action == SH_AUDIT_RECEIVE) {
        s_decide_again(w, r);
        w->has_cur = 0;
    }
    return w->nomem;
}

static int s_bucket_cmp(const void *x, const void *y)
{
    const struct s_bucket *a = x, *b = y;
    if (a->kind != b->kind) return a->kind - b->kind;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    int c = strcmp(a->org, b->org);
    return c ? c : strcmp(a->type, b->type);
}

static void s_print(const s_whatif *w, const char *policy_dir, int json)
{
    if (json) {
        printf("{\"policy\":");
        cli_json_string(stdout, policy_dir);
        printf(",\"events\":%llu,\"decisions\":%llu,\"unchanged\":%llu",
               (unsigned long long)w->events, (unsigned long long)w->decisions,
               (unsigned long long)w->unchanged);
        for (int k = 0; k < C_KINDS; k++) {
            printf(",\"%s\":{\"count\":%llu,\"by\":[", s_kind_keys[k],
                   (unsigned long long)w->count[k]);
            int first = 1;
            for (size_t i = 0; i < w->nbuckets; i++) {
                if (w->buckets[i].kind != k) continue;
                printf("%s{\"recipient\":\"%s\",\"type\":\"%s\",\"count\":%llu}", first ? "" : ",",
                       w->buckets[i].org, w->buckets[i].type, (unsigned long long)w->buckets[i].n);
                first = 0;
            }
            printf("],\"examples\":[");
            for (size_t i = 0; i < w->nex[k]; i++) {
                if (i) putchar(',');
                cli_json_string(stdout, w->ex[k][i].text);
            }
            printf("]}");
        }
        printf("}\n");
        return;
    }
    printf("What-if under %s: %llu recorded events, %llu routing decisions decided again\n\n",
           policy_dir, (unsigned long long)w->events, (unsigned long long)w->decisions);
    printf("  %-34s %10s\n", "change", "decisions");
    for (int k = 0; k < C_KINDS; k++)
        printf("  %-34s %10llu\n", s_kind_names[k], (unsigned long long)w->count[k]);
    printf("  %-34s %10llu\n", "unchanged", (unsigned long long)w->unchanged);
    for (int k = 0; k < C_KINDS; k++) {
        if (!w->count[k]) continue;
        printf("\n%s (%llu):\n", s_kind_names[k], (unsigned long long)w->count[k]);
        printf("  %-10s %-30s %10s\n", "recipient", "event type", "decisions");
        for (size_t i = 0; i < w->nbuckets; i++)
            if (w->buckets[i].kind == k)
                printf("  %-10s %-30s %10llu\n", w->buckets[i].org, w->buckets[i].type,
                       (unsigned long long)w->buckets[i].n);
        printf("  examples:\n");
        for (size_t i = 0; i < w->nex[k]; i++)
            printf("    %s\n", w->ex[k][i].text);
    }
}

int sh_audit_whatif_main(int argc, char **argv)
{
    sh_auth auth = {0};
    const char *store = NULL, *policy_dir = NULL, *registry = NULL, *at = NULL;
    int json = 0;
    long examples = 5;
    size_t npos = 0;
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--store", CLI_TEXT, &store, 0, 0},
                            {"--policy", CLI_TEXT, &policy_dir, 0, 0},
                            {"--registry", CLI_TEXT, &registry, 0, 0},
                            {"--examples", CLI_NUMBER, &examples, 0, 1000},
                            {"--at", CLI_TEXT, &at, 0, 0},
                            {"--json", CLI_FLAG, &json, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit whatif",
        "usage: sharehub audit whatif --store BROKER-STORE --policy DIR --registry FILE\n"
        "                             [--examples N] [--at YYYY-MM-DD] [--json]\n"
        "  Decides every event in the broker's audit log again under another policy and\n"
        "  registry, and counts what would change: recipients newly permitted or denied, data\n"
        "  items added or removed, another ISP deciding, a recipient keeping it for another\n"
        "  time — and what a shorter retention would have the recipients erase by --at (default\n"
        "  now). N examples of each (default 5).\n",
        opts,
        0,
        0,
        ""};
    int prc = cli_parse(&c, argc, argv, NULL, &npos);
    if (prc != CLI_RUN || (prc = sh_auth_given(&c, &auth)) != CLI_RUN) return prc;
    if (!store || !policy_dir || !registry)
        return cli_usage(&c, "missing option '%s'",
                         !store        ? "--store"
                         : !policy_dir ? "--policy"
                                       : "--registry");
    static s_whatif w;
    memset(&w, 0, sizeof w);
    w.max_ex = (size_t)examples;
    w.at_ms = sh_clock_ms();
    if (at && (w.at_ms = sh_clock_noon(at)) < 0)
        return cli_usage(&c, "--at '%.20s' is not a calendar date written YYYY-MM-DD", at);
    sh_error err = {0};
    sh_policy *pol = NULL;
    sh_registry *reg = NULL;
    sh_alog l = {0};
    int rc = SH_EXIT_OK;
    if (sh_policy_load(policy_dir, &pol, &err))
        rc = cli_fail(&c, &err);
    else if (sh_registry_load(registry, &reg, &err))
        rc = cli_fail(&c, &err);
    else if (sh_alog_open(store, &auth, &l, &err))
        rc = cli_fail(&c, &err);
    for (int k = 0; rc == SH_EXIT_OK && k < C_KINDS; k++)
        if (w.max_ex && !(w.ex[k] = calloc(w.max_ex, sizeof *w.ex[k])))
            rc = cli_error(&c, SH_EXIT_FAILED, SH_E_NOMEM, "out of memory");
    if (rc == SH_EXIT_OK) {
        sh_audit_report r;
        if (sh_alog_verify(&l, 0, &r) != SH_OK) {
            rc = cli_error(&c, SH_EXIT_FAILED, r.result,
                           "%s does not verify (at entry %llu: %s); a what-if over it would "
                           "mislead",
                           store, (unsigned long long)r.bad_seq, r.detail);
        }
    }
    if (rc == SH_EXIT_OK) {
        w.policy = pol;
        w.registry = reg;
        sh_audit_report r;
        sh_audit_scan(l.audit, 1, s_visit, &w, &r);
        if (w.nomem || r.result != SH_OK) {
            rc = cli_error(&c, SH_EXIT_FAILED, w.nomem ? SH_E_NOMEM : r.result, "%s",
                           w.nomem ? "out of memory" : r.detail);
        } else {
            if (w.nbuckets) qsort(w.buckets, w.nbuckets, sizeof *w.buckets, s_bucket_cmp);
            s_print(&w, policy_dir, json);
        }
    }
    for (int k = 0; k < C_KINDS; k++)
        free(w.ex[k]);
    free(w.buckets);
    sh_alog_close(&l);
    sh_policy_destroy(&pol);
    sh_registry_destroy(&reg);
    sh_auth_free(&auth);
    return rc;
}
