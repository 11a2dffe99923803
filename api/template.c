/*
 * template.c — the Mustache subset of template.h: loading, checking, rendering with escaping.
 *
 * Owns: the loaded templates. Never: emits a value without escaping it; nests deeper than
 * DEPTH (a template that includes itself is refused at load).
 */
#include "template.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATES_MAX 64
#define TEMPLATE_MAX  (256 * 1024)
#define DEPTH         24

typedef struct tpl {
    char name[64];
    char *text;
    size_t len;
} tpl;

struct sh_templates {
    tpl t[TEMPLATES_MAX];
    size_t n;
};

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void s_put(buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void s_escaped(buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            s_put(b, "&amp;", 5);
            break;
        case '<':
            s_put(b, "&lt;", 4);
            break;
        case '>':
            s_put(b, "&gt;", 4);
            break;
        case '"':
            s_put(b, "&quot;", 6);
            break;
        case '\'':
            s_put(b, "&#39;", 5);
            break;
        default:
            s_put(b, s, 1);
        }
    }
}

static const tpl *s_find(const sh_templates *t, const char *name, size_t n)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->t[i].name) == n && memcmp(t->t[i].name, name, n) == 0) return &t->t[i];
    return NULL;
}

/* name (n bytes, trimmed) looked up through the context stack. */
static json_object *s_lookup(json_object **stack, int depth, const char *name, size_t n)
{
    if (n == 1 && name[0] == '.') return stack[depth - 1];
    char key[96];
    for (int d = depth - 1; d >= 0; d--) {
        json_object *cur = stack[d];
        const char *p = name, *end = name + n;
        int first = 1;
        while (cur && p < end) {
            size_t k = strcspn(p, ".");
            if (p + k > end) k = (size_t)(end - p);
            if (k >= sizeof key) return NULL;
            memcpy(key, p, k);
            key[k] = '\0';
            json_object *next = NULL;
            if (json_object_is_type(cur, json_type_array) && key[0] >= '0' && key[0] <= '9') {
                size_t idx = (size_t)strtoul(key, NULL, 10); /* a.0: an array's element */
                next = idx < json_object_array_length(cur) ? json_object_array_get_idx(cur, idx)
                                                           : NULL;
                if (!next) return NULL;
            } else if (!json_object_is_type(cur, json_type_object) ||
                       !json_object_object_get_ex(cur, key, &next)) {
                if (first)
                    cur = NULL; /* not here: an enclosing context */
                else
                    return NULL; /* a.b where a is here but has no b */
                break;
            }
            cur = next;
            first = 0;
            p += k + 1;
        }
        if (!first) return cur;
    }
    return NULL;
}

static int s_truthy(json_object *v)
{
    if (!v) return 0;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return 0;
    case json_type_boolean:
        return json_object_get_boolean(v);
    case json_type_int:
        return json_object_get_int64(v) != 0;
    case json_type_double:
        return json_object_get_double(v) != 0;
    case json_type_string:
        return json_object_get_string_len(v) != 0;
    case json_type_array:
        return json_object_array_length(v) != 0;
    default:
        return 1;
    }
}

/* Where the section opened with name ends: the offset of its "{{/name}}" in s[0..n), or -1. */
static long s_close(const char *s, size_t n, const char *name, size_t nl, size_t *after)
{
    int nest = 0;
    for (size_t i = 0; i + 4 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '{') continue;
        char k = s[i + 2];
        const char *e = strstr(s + i, "}}");
        if (!e || (size_t)(e - s) > n) return -1;
        const char *nm = s + i + 3;
        while (*nm == ' ')
            nm++;
        size_t l = (size_t)(e - nm);
        while (l && nm[l - 1] == ' ')
            l--;
        if ((k == '#' || k == '^') && l == nl && memcmp(nm, name, nl) == 0) nest++;
        if (k == '/' && l == nl && memcmp(nm, name, nl) == 0) {
            if (nest == 0) {
                *after = (size_t)(e - s) + 2;
                return (long)i;
            }
            nest--;
        }
    }
    return -1;
}

/* Renders s[0..n); -1 on a template error (err names it), 0 otherwise. */
static int s_render(const sh_templates *t, const char *s, size_t n, json_object **stack, int depth,
                    buf *b, char *err, size_t cap)
{
    if (depth >= DEPTH) {
        snprintf(err, cap, "nested deeper than %d", DEPTH);
        return -1;
    }
    size_t i = 0;
    while (i < n) {
        const char *open = strstr(s + i, "{{");
        if (!open || (size_t)(open - s) >= n) {
            s_put(b, s + i, n - i);
            break;
        }
        s_put(b, s + i, (size_t)(open - (s + i)));
        const char *close = strstr(open, "}}");
        if (!close || (size_t)(close - s) + 2 > n) {
            snprintf(err, cap, "a tag is not closed");
            return -1;
        }
        char k = open[2];
        const char *nm = open + 2 + (k == '#' || k == '^' || k == '/' || k == '>' || k == '!');
        while (*nm == ' ')
            nm++;
        size_t l = (size_t)(close - nm);
        while (l && nm[l - 1] == ' ')
            l--;
        size_t next = (size_t)(close - s) + 2;
        if (k == '!') {
            i = next;
        } else if (k == '>') {
            if (*nm == '$') { /* {{> $name}}: the template the value of name names */
                json_object *v = s_lookup(stack, depth, nm + 1, l - 1);
                nm = v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                l = strlen(nm);
                if (!l) {
                    i = next;
                    continue;
                }
            }
            const tpl *p = s_find(t, nm, l);
            if (!p) {
                snprintf(err, cap, "no template '%.*s'", (int)(l < 60 ? l : 60), nm);
                return -1;
            }
            stack[depth] = stack[depth - 1]; /* the same context, one level deeper */
            if (s_render(t, p->text, p->len, stack, depth + 1, b, err, cap)) return -1;
            i = next;
        } else if (k == '#' || k == '^') {
            size_t after = 0;
            long end = s_close(s + next, n - next, nm, l, &after);
            if (end < 0) {
                snprintf(err, cap, "section '%.*s' is not closed", (int)(l < 60 ? l : 60), nm);
                return -1;
            }
            const char *body = s + next;
            size_t bl = (size_t)end;
            json_object *v = s_lookup(stack, depth, nm, l);
            if (k == '^') {
                if (!s_truthy(v) && s_render(t, body, bl, stack, depth, b, err, cap)) return -1;
            } else if (v && json_object_is_type(v, json_type_array)) {
                for (size_t j = 0; j < json_object_array_length(v); j++) {
                    stack[depth] = json_object_array_get_idx(v, j);
                    if (s_render(t, body, bl, stack, depth + 1, b, err, cap)) return -1;
                }
            } else if (v && json_object_is_type(v, json_type_object)) {
                stack[depth] = v;
                if (s_render(t, body, bl, stack, depth + 1, b, err, cap)) return -1;
            } else if (s_truthy(v)) {
                if (s_render(t, body, bl, stack, depth, b, err, cap)) return -1;
            }
            i = next + after;
        } else if (k == '/') {
            snprintf(err, cap, "'/%.*s' closes nothing", (int)(l < 60 ? l : 60), nm);
            return -1;
        } else {
            json_object *v = s_lookup(stack, depth, nm, l);
            if (v && !json_object_is_type(v, json_type_null) &&
                !json_object_is_type(v, json_type_object) &&
                !json_object_is_type(v, json_type_array))
                s_escaped(b, json_object_get_string(v));
            i = next;
        }
    }
    return 0;
}

sh_err sh_templates_load(const char *dir, sh_templates **out, sh_error *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return sh_error_set(err, SH_E_API_CONFIG, "templates: %s: %s", dir, strerror(errno));
    sh_templates *t = calloc(1, sizeof *t);
    sh_err rc = t ? SH_OK : sh_error_set(err, SH_E_NOMEM, "templates");
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || l - 5 >= sizeof t->t[0].name || strcmp(de->d_name + l - 5, ".html") != 0)
            continue;
        if (t->n == TEMPLATES_MAX) {
            rc = sh_error_set(err, SH_E_API_CONFIG, "templates: more than %d", TEMPLATES_MAX);
            break;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        char *text = f ? malloc(TEMPLATE_MAX + 1) : NULL;
        size_t n = text ? fread(text, 1, TEMPLATE_MAX + 1, f) : 0;
        if (f) fclose(f);
        if (!text || n > TEMPLATE_MAX) {
            free(text);
            rc = sh_error_set(err, SH_E_API_CONFIG, "templates: %s: cannot read (or over 256 KiB)",
                              path);
            break;
        }
        text[n] = '\0';
        tpl *p = &t->t[t->n++];
        memcpy(p->name, de->d_name, l - 5);
        p->name[l - 5] = '\0';
        p->text = text;
        p->len = n;
    }
    closedir(d);
    /* each renders in an empty context without a template error */
    for (size_t i = 0; !rc && i < t->n; i++) {
        json_object *ctx = json_object_new_object(), *stack[DEPTH + 1] = {ctx};
        buf b = {0};
        char why[160] = "";
        if (s_render(t, t->t[i].text, t->t[i].len, stack, 1, &b, why, sizeof why))
            rc = sh_error_set(err, SH_E_API_CONFIG, "templates: %s.html: %s", t->t[i].name, why);
        free(b.p);
        json_object_put(ctx);
    }
    if (rc) {
        sh_templates_free(&t);
        return rc;
    }
    *out = t;
    return SH_OK;
}

void sh_templates_free(sh_templates **tp)
{
    sh_templates *t = *tp;
    if (!t) return;
    for (size_t i = 0; i < t->n; i++)
        free(t->t[i].text);
    free(t);
    *tp = NULL;
}

char *sh_template_render(const sh_templates *t, const char *name, json_object *ctx, size_t *len)
{
    const tpl *p = s_find(t, name, strlen(name));
    if (!p) return NULL;
    json_object *stack[DEPTH + 1] = {ctx};
    buf b = {0};
    char why[160];
    if (s_render(t, p->text, p->len, stack, 1, &b, why, sizeof why) || b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p ? b.p : strdup("");
}
