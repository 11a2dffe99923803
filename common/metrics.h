/*
 * metrics.h — counters and histograms, and their rendering as Prometheus text (exposition
 * format 0.0.4, docs/operations.md#metrics).
 *
 * Owns: the text format — HELP and TYPE lines, label escaping, histogram buckets — and the
 * fixed-size containers the daemons count into. The containers hold no pointers, so a
 * daemon can copy them with one assignment (the broker counts a batch into a copy and keeps
 * it only when the batch commits).
 * Never: allocates while counting; takes a label value from personal data (label values
 * are organisation codes, rule ids, error names and states).
 */
#ifndef SHAREHUB_METRICS_H
#define SHAREHUB_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A counter with labels: up to SH_TALLY_MAX label sets (enough for a recipient label per
 * enrolled organisation of a county: its schools, trusts and services), each a rendered label
 * list such as `code="E601",isp="isp-cpis@3"`. Label sets past the limit are counted under
 * `overflow="true"` so the total stays right. Finding a label set is a linear search: count a
 * batch into a small tally, then merge it into the large one. */
#define SH_TALLY_MAX  1024
#define SH_LABELS_MAX 120
typedef struct sh_tally {
    unsigned n;
    uint64_t overflow;
    struct {
        char labels[SH_LABELS_MAX];
        uint64_t value;
    } e[SH_TALLY_MAX];
} sh_tally;

/* Adds v to the label set; labels longer than SH_LABELS_MAX - 1 count as overflow. */
void sh_tally_add(sh_tally *t, const char *labels, uint64_t v);

/* The value of one label set (0 when absent). */
uint64_t sh_tally_get(const sh_tally *t, const char *labels);

/* Adds every count of src to dst. */
void sh_tally_merge(sh_tally *dst, const sh_tally *src);

/* Empties the tally (its memory stays as it is: a tally is large and mostly unused). */
void sh_tally_reset(sh_tally *t);

/* A latency histogram in seconds with fixed upper bounds 1 ms .. 60 s. */
#define SH_HIST_BUCKETS 14
typedef struct sh_hist {
    uint64_t bucket[SH_HIST_BUCKETS]; /* observations <= bound[i] (not cumulative) */
    uint64_t count;
    double sum;
} sh_hist;

void sh_hist_observe(sh_hist *h, double seconds);

/* Adds src's observations to dst. */
void sh_hist_merge(sh_hist *dst, const sh_hist *src);

/* ---- rendering: each writes to f, and returns 0 or -1 (a write failed) ----------------- */

/* `# HELP name help` and `# TYPE name type` (type: counter, gauge, histogram). */
int sh_prom_family(FILE *f, const char *name, const char *type, const char *help);

/* One sample: `name{labels} value`; labels may be NULL or "". */
int sh_prom_sample(FILE *f, const char *name, const char *labels, double v);

/* Every label set of a tally as samples of name (no samples when empty). */
int sh_prom_tally(FILE *f, const char *name, const sh_tally *t);

/* A histogram's _bucket (cumulative, with le), _sum and _count samples. */
int sh_prom_hist(FILE *f, const char *name, const sh_hist *h);

/* A family of one unlabelled sample: HELP, TYPE (counter or gauge) and the value. */
int sh_prom_value(FILE *f, const char *name, const char *type, const char *help, double v);

/* A counter family whose samples are a tally's label sets. */
int sh_prom_counters(FILE *f, const char *name, const char *help, const sh_tally *t);

/* A histogram family. */
int sh_prom_histogram(FILE *f, const char *name, const char *help, const sh_hist *h);

/* The store's and the audit log's gauges, names prefixed with prefix ("sharehub_broker_"):
 * store_file_bytes, store_map_used_bytes, store_map_size_bytes, audit_entries,
 * audit_checkpoint_entries, audit_checkpoint_time_seconds; read in transaction t. */
struct sh_store;
struct sh_audit;
struct sh_txn;
int sh_prom_store_audit(FILE *f, const char *prefix, struct sh_store *s, struct sh_audit *a,
                        struct sh_txn *t);

/* Renders `key="value"` into out (cap bytes), escaping \, " and newline as the format asks;
 * appended after a comma when out is not empty. Returns 0, or -1 when it does not fit. */
int sh_label(char *out, size_t cap, const char *key, const char *value);

#endif
