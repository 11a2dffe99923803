/*
 * subject.c — `sharehub audit subject`: one report, across the broker's and the agents' audit
 * logs, of everything recorded about one child: every event, every organisation it reached or
 * was denied to and why, every delivery and receipt, every local read by whom and why.
 *
 * Owns: finding the child's entries (blinded references, then the events they name, followed
 * across logs by event id) and rendering the report as Markdown or a self-contained HTML page.
 * Never: needs or uses a data key: the report is built from the audit logs alone; prints a
 * blinded reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auditor.h"
#include "clock.h"
#include "codec.h"
#include "decide.h"
#include "ident.h"

#define MAX_STORES 32
#define MAX_IDS    8

typedef struct s_hit {
    int store;
    sh_audit_record r;
} s_hit;

typedef struct s_ev {
    uint8_t id[16];
    int64_t first_ms;
} s_ev;

typedef struct s_subject {
    size_t nstores;
    sh_alog logs[MAX_STORES];
    sh_audit_report reports[MAX_STORES];
    uint8_t refs[MAX_STORES][MAX_IDS][32];
    int nrefs[MAX_STORES]; /* -1: the store cannot be searched (no blind key) */
    size_t nids;
    s_ev *evs;
    size_t nevs, capevs;
    s_hit *hits;
    size_t nhits, caphits;
    int pass, store, nomem;
    size_t matched[MAX_STORES];
} s_subject;

static int s_ev_find(const s_subject *s, const uint8_t id[16])
{
    for (size_t i = 0; i < s->nevs; i++)
        if (memcmp(s->evs[i].id, id, 16) == 0) return (int)i;
    return -1;
}

static int s_about_child(const s_subject *s, const sh_audit_record *r)
{
    if (!r->has_child) return 0;
    for (int i = 0; i < s->nrefs[s->store]; i++)
        if (memcmp(r->child_ref, s->refs[s->store][i], 32) == 0) return 1;
    return 0;
}

static int s_visit(void *ctx, const sh_audit_record *r)
{
    s_subject *s = ctx;
    int child = s_about_child(s, r);
    if (s->pass == 1) { /* the events that name the child, in any log */
        if (child && r->has_event) {
            int i = s_ev_find(s, r->event_id);
            if (i < 0) {
                if (s->nevs == s->capevs) {
                    size_t ncap = s->capevs ? 2 * s->capevs : 64;
                    s_ev *v = realloc(s->evs, ncap * sizeof *v);
                    if (!v) return s->nomem = 1;
                    s->evs = v;
                    s->capevs = ncap;
                }
                memcpy(s->evs[s->nevs].id, r->event_id, 16);
                s->evs[s->nevs++].first_ms = r->time_ms;
            } else if (r->time_ms < s->evs[i].first_ms) {
                s->evs[i].first_ms = r->time_ms;
            }
        }
        return 0;
    }
    /* pass 2: every entry about the child or about one of those events */
    if (!child && !(r->has_event && s_ev_find(s, r->event_id) >= 0)) return 0;
    if (s->nhits == s->caphits) {
        size_t ncap = s->caphits ? 2 * s->caphits : 256;
        s_hit *v = realloc(s->hits, ncap * sizeof *v);
        if (!v) return s->nomem = 1;
        s->hits = v;
        s->caphits = ncap;
    }
    s->hits[s->nhits].store = s->store;
    s->hits[s->nhits++].r = *r;
    s->matched[s->store]++;
    return 0;
}

static int s_ev_cmp(const void *x, const void *y)
{
    const s_ev *a = x, *b = y;
    return a->first_ms < b->first_ms ? -1 : a->first_ms > b->first_ms;
}

static int s_hit_cmp(const void *x, const void *y)
{
    const s_hit *a = x, *b = y;
    if (a->r.time_ms != b->r.time_ms) return a->r.time_ms < b->r.time_ms ? -1 : 1;
    if (a->store != b->store) return a->store < b->store ? -1 : 1;
    return a->r.seq < b->r.seq ? -1 : a->r.seq > b->r.seq;
}

/* ---- output: Markdown or HTML ------------------------------------------------------------ */

typedef struct s_out {
    FILE *f;
    int html;
} s_out;

static void s_text(s_out *o, const char *t, int cell)
{
    for (; *t; t++) {
        if (o->html) {
            switch (*t) {
            case '<':
                fputs("&lt;", o->f);
                break;
            case '>':
                fputs("&gt;", o->f);
                break;
            case '&':
                fputs("&amp;", o->f);
                break;
            case '"':
                fputs("&quot;", o->f);
                break;
            default:
                fputc(*t, o->f);
            }
        } else if (cell && *t == '|') {
            fputs("\\|", o->f);
        } else if (cell && (*t == '\n' || *t == '\r')) {
            fputc(' ', o->f);
        } else if (*t == '*' || *t == '`' || *t == '<') {
            fputc('\\', o->f);
            fputc(*t, o->f);
        } else {
            fputc(*t, o->f);
        }
    }
}

static void s_heading(s_out *o, int level, const char *t)
{
    if (o->html) {
        fprintf(o->f, "<h%d>", level);
        s_text(o, t, 0);
        fprintf(o->f, "</h%d>\n", level);
    } else {
        fprintf(o->f, "\n%.*s ", level, "######");
        s_text(o, t, 0);
        fputs("\n\n", o->f);
    }
}

static void s_para(s_out *o, const char *t)
{
    fputs(o->html ? "<p>" : "", o->f);
    s_text(o, t, 0);
    fputs(o->html ? "</p>\n" : "\n\n", o->f);
}

static void s_list_start(s_out *o)
{
    if (o->html) fputs("<ul>\n", o->f);
}

static void s_item(s_out *o, const char *t)
{
    fputs(o->html ? "<li>" : "- ", o->f);
    s_text(o, t, 0);
    fputs(o->html ? "</li>\n" : "\n", o->f);
}

static void s_list_end(s_out *o)
{
    fputs(o->html ? "</ul>\n" : "\n", o->f);
}

static void s_row(s_out *o, int header, const char *const *cells, size_t n)
{
    if (o->html) {
        fputs("<tr>", o->f);
        for (size_t i = 0; i < n; i++) {
            fputs(header ? "<th>" : "<td>", o->f);
            s_text(o, cells[i], 1);
            fputs(header ? "</th>" : "</td>", o->f);
        }
        fputs("</tr>\n", o->f);
        return;
    }
    fputs("|", o->f);
    for (size_t i = 0; i < n; i++) {
        fputc(' ', o->f);
        s_text(o, cells[i], 1);
        fputs(" |", o->f);
    }
    fputc('\n', o->f);
    if (header) {
        fputs("|", o->f);
        for (size_t i = 0; i < n; i++)
            fputs("---|", o->f);
        fputc('\n', o->f);
    }
}

static void s_table_start(s_out *o, const char *const *cells, size_t n)
{
    if (o->html) fputs("<table>\n", o->f);
    s_row(o, 1, cells, n);
}

static void s_table_end(s_out *o)
{
    fputs(o->html ? "</table>\n" : "\n", o->f);
}

/* ---- the report ---------------------------------------------------------------------------- */

/* "type=X ..." (broker: a decision context) or "X" (agents): the event type an entry names,
 * or "". */
static void s_type_of(const char *detail, char *out, size_t cap)
{
    sh_decide_context_type(detail, out, cap);
    if (out[0]) return;
    size_t n = strcspn(detail, " ;");
    snprintf(out, cap, "%.*s", (int)n, detail);
    if (!sh_event_type_from_name(out)) out[0] = '\0';
}

static const char *s_store_name(const s_subject *s, int i)
{
    return s->logs[i].keys->name;
}

static void s_hm(int64_t ms, char out[32])
{
    sh_iso_time(ms, out);
    out[10] = ' ';
    out[19] = '\0';
}

static void s_report_event(const s_subject *s, s_out *o, const s_ev *ev)
{
    char idtext[SH_EVENT_ID_STR], type[48] = "", source[SH_AUDIT_SHORT_MAX + 1] = "", when[32];
    char line[1400];
    sh_event_id_format(ev->id, idtext);
    for (size_t i = 0; i < s->nhits; i++) {
        const sh_audit_record *r = &s->hits[i].r;
        if (!r->has_event || memcmp(r->event_id, ev->id, 16) != 0) continue;
        if (!type[0] && (r->action == SH_AUDIT_RECEIVE || r->action == SH_AUDIT_WRITE))
            s_type_of(r->detail, type, sizeof type);
        if (!source[0] && r->action == SH_AUDIT_RECEIVE && strcmp(r->actor_user, "broker") == 0)
            snprintf(source, sizeof source, "%s", r->actor_org);
    }
    s_hm(ev->first_ms, when);
    snprintf(line, sizeof line, "%s  %s%s%s  (event %s)", when, type[0] ? type : "event",
             source[0] ? " from " : "", source, idtext);
    s_heading(o, 3, line);
    s_list_start(o);
    char unnamed[600] = "";
    size_t un = 0;
    for (size_t i = 0; i < s->nhits; i++) {
        const sh_audit_record *r = &s->hits[i].r;
        const char *log = s_store_name(s, s->hits[i].store);
        if (!r->has_event || memcmp(r->event_id, ev->id, 16) != 0) continue;
        s_hm(r->time_ms, when);
        const char *items = strstr(r->detail, "items=");
        int broker = strcmp(r->actor_user, "broker") == 0;
        line[0] = '\0';
        switch (r->action) {
        case SH_AUDIT_SEND:
            if (broker && r->outcome == SH_AUDIT_OK)
                snprintf(line, sizeof line, "%s  shared with %s under %s; data items: %s  [%s]",
                         when, r->peer_org, r->rule, items ? items + 6 : "(not recorded)", log);
            else if (broker)
                snprintf(line, sizeof line, "%s  permitted for %s under %s but not sent: %s  [%s]",
                         when, r->peer_org, r->rule, r->detail, log);
            else
                snprintf(line, sizeof line, "%s  sent by %s to the broker (%s)  [%s]", when,
                         r->actor_org, r->detail, log);
            break;
        case SH_AUDIT_DENY:
            if (r->code == SH_E_DENY_NO_ISP || r->code == SH_E_DENY_PARTY) {
                if (un < sizeof unnamed - 20)
                    un += (size_t)snprintf(unnamed + un, sizeof unnamed - un, "%s%s",
                                           un ? ", " : "", r->peer_org);
                continue;
            }
            snprintf(line, sizeof line, "%s  DENIED to %s: E%03u %s: %s  [%s]", when, r->peer_org,
                     r->code, r->rule, r->detail, log);
            break;
        case SH_AUDIT_RECEIVE:
            if (broker)
                snprintf(line, sizeof line, "%s  accepted by the broker from %s  [%s]", when,
                         r->actor_org, log);
            else
                snprintf(line, sizeof line, "%s  received and stored by %s from %s under %s  [%s]",
                         when, r->actor_org, r->peer_org, r->rule[0] ? r->rule : "-", log);
            break;
        case SH_AUDIT_DELIVER:
            snprintf(line, sizeof line, "%s  delivered to %s and acknowledged  [%s]", when,
                     r->peer_org, log);
            break;
        case SH_AUDIT_WRITE:
            if (strncmp(r->detail, "kept on review", 14) == 0) /* a retention review's */
                snprintf(line, sizeof line, "%s  KEPT ON REVIEW at %s by %s: %s  [%s]", when,
                         r->actor_org, r->actor_user, r->detail, log);
            else
                snprintf(line, sizeof line, "%s  recorded by %s user %s for %s  [%s]", when,
                         r->actor_org, r->actor_user, r->purpose[0] ? r->purpose : "-", log);
            break;
        case SH_AUDIT_READ:
            snprintf(line, sizeof line, "%s  READ at %s by %s for \"%s\" (%s)  [%s]", when,
                     r->actor_org, r->actor_user, r->purpose, r->detail, log);
            break;
        case SH_AUDIT_REFUSE:
            snprintf(line, sizeof line, "%s  refused: E%03u %s  [%s]", when, r->code, r->detail,
                     log);
            break;
        case SH_AUDIT_ERASE: /* (by a person on review: who, too) */
            snprintf(
                line, sizeof line, "%s  %s at %s%s%s under %s: %s  [%s]", when,
                r->outcome == SH_AUDIT_OK ? "ERASED" : "DUE FOR REVIEW", r->actor_org,
                strcmp(r->actor_user, "agent") && strcmp(r->actor_user, "broker") ? " by " : "",
                strcmp(r->actor_user, "agent") && strcmp(r->actor_user, "broker") ? r->actor_user
                                                                                  : "",
                r->rule[0] ? r->rule : "-", r->detail, log);
            break;
        default:
            snprintf(line, sizeof line, "%s  %s %s %s  [%s]", when, sh_audit_action_name(r->action),
                     r->actor_org, r->detail, log);
        }
        s_item(o, line);
    }
    if (un) {
        snprintf(line, sizeof line,
                 "not shared with (no protocol names them as recipients, or not from this "
                 "sender: E800/E807): %s",
                 unnamed);
        s_item(o, line);
    }
    s_list_end(o);
}

static void s_report(s_subject *s, s_out *o, char *const *ids)
{
    char line[600], now[32];
    sh_iso_time(sh_clock_ms() / 1000 * 1000, now);
    if (o->html)
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<title>sharehub subject report</title>\n<style>\n"
              "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}\n"
              "table{border-collapse:collapse;width:100%;font-size:90%}\n"
              "th,td{border:1px solid #999;padding:.25em .5em;text-align:left;"
              "vertical-align:top}\n"
              "th{background:#eee}li{margin:.2em 0}h3{margin-top:1.5em;font-size:105%}\n"
              ".warn{color:#a00;font-weight:bold}\n"
              "@media print{body{margin:0;max-width:none}h3{break-after:avoid}}\n"
              "</style></head><body>\n",
              o->f);
    s_heading(o, 1, "Subject report: who saw what about this child, when, and why");
    snprintf(line, sizeof line,
             "Generated %s by sharehub audit subject, from the audit logs alone (no data key "
             "was used; event contents are not shown).",
             now);
    s_para(o, line);
    size_t n = 0;
    n += (size_t)snprintf(line, sizeof line, "Child identifiers searched: ");
    for (size_t i = 0; i < s->nids; i++) {
        char canon[64];
        const char *kind = sh_ident_kind(ids[i], canon, sizeof canon);
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %s", i ? ", " : "",
                              kind && strcmp(kind, "nhs") == 0   ? "NHS number"
                              : kind && strcmp(kind, "upn") == 0 ? "UPN"
                                                                 : "LA child id",
                              canon);
        if (n >= sizeof line) break;
    }
    s_para(o, line);

    s_heading(o, 2, "Logs examined");
    const char *hdr[] = {"log", "directory", "verification", "entries in this report"};
    s_table_start(o, hdr, 4);
    for (size_t i = 0; i < s->nstores; i++) {
        const sh_audit_report *r = &s->reports[i];
        char verdict[320], count[32];
        if (r->result == SH_OK)
            snprintf(verdict, sizeof verdict, "verified: %llu entries, %llu signed checkpoints",
                     (unsigned long long)r->entries, (unsigned long long)r->checkpoints);
        else
            snprintf(verdict, sizeof verdict, "DOES NOT VERIFY: E%03d %s at entry %llu: %s",
                     (int)r->result, sh_err_name(r->result), (unsigned long long)r->bad_seq,
                     r->detail);
        if (s->nrefs[i] < 0)
            snprintf(count, sizeof count, "not searchable (no blind key)");
        else
            snprintf(count, sizeof count, "%zu", s->matched[i]);
        const char *cells[] = {s_store_name(s, (int)i), s->logs[i].dir, verdict, count};
        s_row(o, 0, cells, 4);
    }
    s_table_end(o);

    snprintf(line, sizeof line, "Events about the child (%zu)", s->nevs);
    s_heading(o, 2, line);
    if (!s->nevs) s_para(o, "No entry in these logs refers to this child.");
    for (size_t i = 0; i < s->nevs; i++)
        s_report_event(s, o, &s->evs[i]);

    s_heading(o, 2, "Every read of the child's records");
    const char *rh[] = {"time (UTC)", "organisation", "user", "purpose", "what", "event", "log"};
    size_t reads = 0;
    for (size_t i = 0; i < s->nhits; i++) {
        const sh_audit_record *r = &s->hits[i].r;
        if (r->action != SH_AUDIT_READ) continue;
        if (!reads++) s_table_start(o, rh, 7);
        char when[32], ev[SH_EVENT_ID_STR] = "-";
        s_hm(r->time_ms, when);
        if (r->has_event) sh_event_id_format(r->event_id, ev);
        const char *cells[] = {when,
                               r->actor_org,
                               r->actor_user,
                               r->purpose,
                               r->detail,
                               ev,
                               s_store_name(s, s->hits[i].store)};
        s_row(o, 0, cells, 7);
    }
    if (reads)
        s_table_end(o);
    else
        s_para(o, "No local read of the child's records is recorded.");

    s_heading(o, 2, "Full timeline");
    const char *th[] = {"time (UTC)",   "log",  "seq",  "action", "result",
                        "organisation", "user", "peer", "rule",   "detail"};
    s_table_start(o, th, 10);
    for (size_t i = 0; i < s->nhits; i++) {
        const sh_audit_record *r = &s->hits[i].r;
        char when[32], seq[24], result[24];
        s_hm(r->time_ms, when);
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
        snprintf(result, sizeof result, "%s",
                 r->outcome == 0   ? "ok"
                 : r->outcome == 1 ? "denied"
                                   : "failed");
        if (r->code)
            snprintf(result + strlen(result), sizeof result - strlen(result), " E%03u", r->code);
        const char *cells[] = {when,          s_store_name(s, s->hits[i].store),
                               seq,           sh_audit_action_name(r->action),
                               result,        r->actor_org,
                               r->actor_user, r->peer_org,
                               r->rule,       r->detail};
        s_row(o, 0, cells, 10);
    }
    s_table_end(o);
    if (o->html) fputs("</body></html>\n", o->f);
}

int sh_audit_subject_main(int argc, char **argv)
{
    static s_subject s; /* large: the refs and reports of up to 32 logs */
    memset(&s, 0, sizeof s);
    sh_auth auth = {0};
    const char *idv[MAX_IDS], *dirs[MAX_STORES], *output = NULL, *format = NULL;
    char *ids[MAX_IDS];
    cli_list stores = {dirs, 0, MAX_STORES};
    const cli_opt opts[] = {SH_AUTH_OPTS(auth),
                            {"--stores", CLI_REST, &stores, 0, 0},
                            {"--format", CLI_TEXT, &format, 0, 0},
                            {"--output", CLI_TEXT, &output, 0, 0},
                            {0}};
    const cli_cmd c = {
        "sharehub audit subject",
        "usage: sharehub audit subject CHILD-ID... --stores STORE... [--format md|html]\n"
        "                              [--output FILE]\n"
        "  One report, across the broker's and the agents' audit logs, of everything recorded\n"
        "  about a child (NHS number, UPN or LA child id; up to 8): every event, who it reached\n"
        "  or was denied to and why, every delivery and every read, by whom and why. Needs a\n"
        "  keyring with each store's blind key; each log is verified and the report says how.\n"
        "  exit 1 when a log does not verify (the report is still written)\n",
        opts,
        1,
        MAX_IDS,
        "CHILD-ID"};
    int prc = cli_parse(&c, argc, argv, idv, &s.nids);
    if (prc != CLI_RUN || (prc = sh_auth_given(&c, &auth)) != CLI_RUN) return prc;
    s.nstores = stores.n;
    if (!s.nstores) return cli_usage(&c, "missing option '--stores' and its stores");
    int html = format && strcmp(format, "html") == 0;
    if (format && !html && strcmp(format, "md") != 0)
        return cli_usage(&c, "--format '%.20s': want md or html", format);
    for (size_t i = 0; i < s.nids; i++)
        ids[i] = (char *)idv[i];
    int rc = SH_EXIT_OK;
    sh_error err = {0};
    size_t opened = 0;
    for (; opened < s.nstores && rc == SH_EXIT_OK; opened++) {
        if (sh_alog_open(dirs[opened], &auth, &s.logs[opened], &err)) {
            rc = cli_fail(&c, &err);
            break;
        }
        s.nrefs[opened] = sh_alog_child_refs(&s.logs[opened], ids, s.nids, s.refs[opened], &err);
        if (s.nrefs[opened] == -SH_E_INVAL)
            rc = cli_error(&c, SH_EXIT_USAGE, SH_E_INVAL, "%s", err.detail);
    }
    /* each store on its own, and against the signed heads of it the others hold */
    if (rc == SH_EXIT_OK) sh_alog_verify_all(s.logs, s.nstores, 0, s.reports);
    for (s.pass = 1; rc == SH_EXIT_OK && s.pass <= 2; s.pass++) {
        for (s.store = 0; s.store < (int)s.nstores; s.store++) {
            sh_audit_report r;
            sh_audit_scan(s.logs[s.store].audit, 1, s_visit, &s, &r);
        }
        if (s.nomem) {
            rc = cli_error(&c, SH_EXIT_FAILED, SH_E_NOMEM, "out of memory");
        }
    }
    if (rc == SH_EXIT_OK) {
        if (s.nevs) qsort(s.evs, s.nevs, sizeof *s.evs, s_ev_cmp);
        if (s.nhits) qsort(s.hits, s.nhits, sizeof *s.hits, s_hit_cmp);
        s_out o = {.f = output ? fopen(output, "w") : stdout, .html = html};
        if (!o.f) {
            rc = cli_error(&c, SH_EXIT_FAILED, SH_E_IO, "--output %s: cannot write: %s", output,
                           strerror(errno));
        } else {
            s_report(&s, &o, ids);
            if ((output && fclose(o.f) != 0) || (!output && fflush(stdout) != 0)) {
                rc = cli_error(&c, SH_EXIT_FAILED, SH_E_IO, "writing the report failed");
            }
        }
        for (size_t i = 0; i < s.nstores && rc == SH_EXIT_OK; i++)
            if (s.reports[i].result != SH_OK) {
                rc = cli_error(&c, SH_EXIT_FAILED, s.reports[i].result,
                               "%s does not verify: the report says so", s.logs[i].dir);
            }
    }
    for (size_t i = 0; i < s.nstores; i++)
        sh_alog_close(&s.logs[i]);
    free(s.evs);
    free(s.hits);
    sh_auth_free(&auth);
    return rc;
}
