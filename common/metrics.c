/*
 * metrics.c — counters and histograms, rendered as Prometheus text.
 *
 * Owns: the containers of metrics.h and the exposition format. Never: allocates while
 * counting; writes a label value unescaped.
 */
#include "metrics.h"

#include <string.h>

#include "audit.h"
#include "store.h"

static const double s_bounds[SH_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1,     2.5,  5,     10,   60};

void sh_tally_add(sh_tally *t, const char *labels, uint64_t v)
{
    if (strlen(labels) >= SH_LABELS_MAX) {
        t->overflow += v;
        return;
    }
    for (unsigned i = 0; i < t->n; i++)
        if (strcmp(t->e[i].labels, labels) == 0) {
            t->e[i].value += v;
            return;
        }
    if (t->n == SH_TALLY_MAX) {
        t->overflow += v;
        return;
    }
    strcpy(t->e[t->n].labels, labels);
    t->e[t->n++].value = v;
}

uint64_t sh_tally_get(const sh_tally *t, const char *labels)
{
    for (unsigned i = 0; i < t->n; i++)
        if (strcmp(t->e[i].labels, labels) == 0) return t->e[i].value;
    return 0;
}

void sh_tally_merge(sh_tally *dst, const sh_tally *src)
{
    for (unsigned i = 0; i < src->n; i++)
        sh_tally_add(dst, src->e[i].labels, src->e[i].value);
    dst->overflow += src->overflow;
}

void sh_tally_reset(sh_tally *t)
{
    t->n = 0;
    t->overflow = 0;
}

void sh_hist_observe(sh_hist *h, double seconds)
{
    if (!(seconds >= 0)) seconds = 0; /* a clock step backwards, or NaN */
    for (int i = 0; i < SH_HIST_BUCKETS; i++)
        if (seconds <= s_bounds[i]) {
            h->bucket[i]++;
            break;
        }
    h->count++;
    h->sum += seconds;
}

void sh_hist_merge(sh_hist *dst, const sh_hist *src)
{
    for (int i = 0; i < SH_HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum += src->sum;
}

int sh_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
    return fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0 ? -1 : 0;
}

int sh_prom_sample(FILE *f, const char *name, const char *labels, double v)
{
    int has = labels && labels[0];
    /* integers exactly (counters pass 2^53 only after centuries at any rate seen here) */
    if (v > -9e15 && v < 9e15 && (double)(long long)v == v)
        return fprintf(f, "%s%s%s%s %lld\n", name, has ? "{" : "", has ? labels : "",
                       has ? "}" : "", (long long)v) < 0
                   ? -1
                   : 0;
    return fprintf(f, "%s%s%s%s %.6g\n", name, has ? "{" : "", has ? labels : "", has ? "}" : "",
                   v) < 0
               ? -1
               : 0;
}

int sh_prom_tally(FILE *f, const char *name, const sh_tally *t)
{
    for (unsigned i = 0; i < t->n; i++)
        if (sh_prom_sample(f, name, t->e[i].labels, (double)t->e[i].value)) return -1;
    if (t->overflow && sh_prom_sample(f, name, "overflow=\"true\"", (double)t->overflow)) return -1;
    return 0;
}

int sh_prom_hist(FILE *f, const char *name, const sh_hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < SH_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, s_bounds[i], (unsigned long long)cum) <
            0)
            return -1;
    }
    if (fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count) < 0)
        return -1;
    return 0;
}

int sh_prom_value(FILE *f, const char *name, const char *type, const char *help, double v)
{
    return sh_prom_family(f, name, type, help) || sh_prom_sample(f, name, NULL, v) ? -1 : 0;
}

int sh_prom_counters(FILE *f, const char *name, const char *help, const sh_tally *t)
{
    return sh_prom_family(f, name, "counter", help) || sh_prom_tally(f, name, t) ? -1 : 0;
}

int sh_prom_histogram(FILE *f, const char *name, const char *help, const sh_hist *h)
{
    return sh_prom_family(f, name, "histogram", help) || sh_prom_hist(f, name, h) ? -1 : 0;
}

int sh_label(char *out, size_t cap, const char *key, const char *value)
{
    size_t n0 = strlen(out), n = n0;
    int w = snprintf(out + n, cap - n, "%s%s=\"", n0 ? "," : "", key);
    if (w < 0 || (size_t)w >= cap - n) goto full;
    n += (size_t)w;
    for (const char *p = value; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t need = esc ? 2 : 1;
        if (n + need + 2 > cap) goto full; /* room for the closing quote and the NUL */
        memcpy(out + n, esc ? esc : p, need);
        n += need;
    }
    out[n++] = '"';
    out[n] = '\0';
    return 0;
full:
    out[n0] = '\0';
    return -1;
}

static int s_gauge(FILE *f, const char *prefix, const char *name, const char *help, double v)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return sh_prom_value(f, full, "gauge", help, v);
}

int sh_prom_store_audit(FILE *f, const char *prefix, sh_store *s, sh_audit *a, sh_txn *t)
{
    sh_store_info info;
    sh_error err;
    uint64_t head = 0, cp_seq = 0;
    uint8_t mac[SH_MAC_BYTES], cp[SH_AUDIT_CP_BYTES];
    sh_audit_cp_info ci = {0};
    if (sh_store_get_info(s, &info) || sh_audit_head(a, t, &head, mac, &err)) return -1;
    if (sh_audit_last_checkpoint(a, t, cp, &cp_seq, &err) != SH_OK ||
        sh_audit_checkpoint_check(sh_store_id(s), cp, sizeof cp, &ci) != SH_OK)
        cp_seq = 0, ci.time_ms = 0;
    int e = 0;
    e |= s_gauge(f, prefix, "store_file_bytes", "Size of the store's data file.",
                 (double)info.file_size);
    e |= s_gauge(f, prefix, "store_map_used_bytes",
                 "Bytes of the store's map in use (the store refuses writes when full).",
                 (double)info.used);
    e |= s_gauge(f, prefix, "store_map_size_bytes", "The store's configured map size.",
                 (double)info.map_size);
    e |= s_gauge(f, prefix, "audit_entries", "Entries in the audit chain.", (double)head);
    e |= s_gauge(f, prefix, "audit_checkpoint_entries",
                 "Entries covered by the newest signed checkpoint (0: none yet).", (double)cp_seq);
    e |= s_gauge(f, prefix, "audit_checkpoint_time_seconds",
                 "When the newest signed checkpoint was made (Unix time; 0: none yet).",
                 (double)(ci.time_ms / 1000));
    return e;
}
