/*
 * cli.c — options, help and errors for every sharehub program (cli.h).
 *
 * Owns: whether this process reports errors as JSON. Never: prints an option's value when
 * it may be personal data (values are quoted only for number and argument errors, where they
 * are a mistyped number or a stray word).
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int s_json;

int cli_json(void)
{
    return s_json;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int cli_read_file(const cli_cmd *c, const char *path, size_t max, sh_err too_large, char **out,
                  size_t *len)
{
    int in = strcmp(path, "-") == 0;
    const char *name = in ? "standard input" : path;
    struct stat st;
    *out = NULL;
    *len = 0;
    if (!in && stat(path, &st) != 0)
        return cli_error(c, SH_EXIT_FAILED, SH_E_IO, "%s: %s", name, strerror(errno));
    if (!in && S_ISDIR(st.st_mode))
        return cli_error(c, SH_EXIT_FAILED, SH_E_IO, "%s: is a directory, not a file", name);
    FILE *f = in ? stdin : fopen(path, "rb");
    if (!f) return cli_error(c, SH_EXIT_FAILED, SH_E_IO, "%s: %s", name, strerror(errno));
    char *buf = malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f);
    if (!in) fclose(f);
    if (bad) {
        free(buf);
        return cli_error(c, SH_EXIT_FAILED, buf ? SH_E_IO : SH_E_NOMEM, "%s: cannot be read", name);
    }
    if (n > max) {
        free(buf);
        if (max == 1024 * 1024)
            return cli_error(c, SH_EXIT_FAILED, too_large, "%s: too large (limit 1 MiB)", name);
        return cli_error(c, SH_EXIT_FAILED, too_large, "%s: too large (limit %zu bytes)", name,
                         max);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return CLI_RUN;
}

int cli_number(const char *text, long lo, long hi, long *out)
{
    char *end;
    if (!text || !*text || strspn(text, "-0123456789") != strlen(text)) return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int s_verror(const cli_cmd *c, int exit, sh_err code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int s_verror(const cli_cmd *c, int exit, sh_err code, const char *fmt, va_list ap)
{
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (s_json) {
        fprintf(stderr, "{\"ok\":false,\"code\":%d,\"name\":\"%s\",\"message\":", (int)code,
                code ? sh_err_name(code) : "usage");
        cli_json_string(stderr, msg);
        fputs("}\n", stderr);
    } else if (code) {
        fprintf(stderr, "%s: E%03d %s: %s\n", c->name, (int)code, sh_err_name(code), msg);
    } else {
        fprintf(stderr, "%s: %s\n", c->name, msg);
    }
    return exit;
}

int cli_error(const cli_cmd *c, int exit, sh_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = s_verror(c, exit, code, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_fail(const cli_cmd *c, const sh_error *e)
{
    return cli_error(c, SH_EXIT_FAILED, e->code, "%s",
                     e->detail[0] ? e->detail : sh_err_message(e->code));
}

/* A usage error: the message, then where help is. */
int cli_usage(const cli_cmd *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s_json) return cli_error(c, SH_EXIT_USAGE, 0, "%s", msg);
    fprintf(stderr, "%s: %s (see '%s --help')\n", c->name, msg, c->name);
    return SH_EXIT_USAGE;
}

int cli_parse(const cli_cmd *c, int argc, char **argv, const char **pos, size_t *npos)
{
    *npos = 0;
    s_json = 0;
    for (int i = 0; i < argc; i++) /* known before any error is reported */
        if (strcmp(argv[i], "--") == 0)
            break;
        else if (strcmp(argv[i], "--json") == 0) {
            for (const cli_opt *o = c->opts; o && o->name; o++)
                if (strcmp(o->name, "--json") == 0) s_json = 1;
        }
    int only_pos = 0;
    cli_list *rest = NULL; /* after a CLI_REST option, where arguments go */
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (!only_pos && (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0)) {
            fputs(c->usage, stdout);
            return SH_EXIT_OK;
        }
        if (!only_pos && strcmp(w, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || w[0] != '-' || strcmp(w, "-") == 0) {
            if (rest) {
                if (rest->n == rest->cap)
                    return cli_usage(c, "more than %zu of '%.60s'", rest->cap, w);
                rest->v[rest->n++] = w;
                continue;
            }
            if (*npos == c->max_pos) return cli_usage(c, "extra argument '%.60s'", w);
            pos[(*npos)++] = w;
            continue;
        }
        size_t klen = strcspn(w, "=");
        const cli_opt *o = c->opts;
        while (o && o->name && (strlen(o->name) != klen || strncmp(o->name, w, klen) != 0))
            o++;
        if (!o || !o->name) return cli_usage(c, "unknown option '%.*s'", (int)klen, w);
        const char *v = w[klen] == '=' ? w + klen + 1 : NULL;
        if (o->kind == CLI_FLAG || o->kind == CLI_REST) {
            if (v) return cli_usage(c, "option '%s' takes no value", o->name);
            if (o->kind == CLI_FLAG)
                *(int *)o->out = 1;
            else
                rest = o->out;
            continue;
        }
        if (!v) {
            if (i + 1 == argc) return cli_usage(c, "option '%s' needs a value", o->name);
            v = argv[++i];
        }
        if (o->kind == CLI_TEXT) {
            *(const char **)o->out = v;
        } else if (o->kind == CLI_NUMBER) {
            if (cli_number(v, o->lo, o->hi, (long *)o->out))
                return cli_usage(c, "option '%s' needs a whole number from %ld to %ld, not '%.30s'",
                                 o->name, o->lo, o->hi, v);
        } else {
            cli_list *l = o->out;
            if (l->n == l->cap)
                return cli_usage(c, "option '%s' given more than %zu times", o->name, l->cap);
            l->v[l->n++] = v;
        }
    }
    if (*npos < c->min_pos) {
        /* name the first argument missing */
        const char *a = c->args ? c->args : "";
        for (size_t k = 0; k < *npos && *a; k++) {
            a += strcspn(a, " ");
            a += strspn(a, " ");
        }
        return cli_usage(c, "missing argument %.*s", (int)strcspn(a, " "),
                         *a ? a : "(see the usage)");
    }
    return CLI_RUN;
}

int cli_signals(void (*on_signal)(int), int hup)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ||
        (hup && sigaction(SIGHUP, &sa, NULL)))
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}
