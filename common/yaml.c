/*
 * yaml.c — strict libcyaml loading with the problem captured into an sh_error.
 *
 * Owns: the cyaml config. Never: prints to stderr on its own (the caller decides).
 */
#include "yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"

typedef struct s_log {
    char text[200];   /* the first error cyaml reported */
    char key[64];     /* the innermost mapping key of its backtrace */
    int line, column; /* where that key's value is */
} s_log;

/* Keeps the first error-level message cyaml logs, and from the backtrace that follows it the
 * innermost key ("  in mapping field 'status' (line: 4, column: 9)"). */
static void s_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
static void s_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    s_log *log = ctx;
    char line[200];
    if (level < CYAML_LOG_ERROR) return;
    vsnprintf(line, sizeof line, fmt, args);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    const char *at = strstr(line, "in mapping field '");
    if (at && !log->key[0]) {
        at += strlen("in mapping field '");
        size_t k = strcspn(at, "'");
        if (k < sizeof log->key) {
            memcpy(log->key, at, k);
            log->key[k] = '\0';
            const char *pos = strstr(at + k, "(line: ");
            if (pos) sscanf(pos, "(line: %d, column: %d)", &log->line, &log->column);
        }
    } else if (!log->text[0] && !at && strncmp(line, "Load: Backtrace", 15) != 0) {
        snprintf(log->text, sizeof log->text, "%.150s",
                 strncmp(line, "Load: ", 6) == 0 ? line + 6 : line);
    }
}

/* The enumeration the schema names under key (the first mapping field of that name, at any
 * depth), or NULL. */
static const cyaml_schema_value_t *s_enum_of(const cyaml_schema_value_t *v, const char *key,
                                             int depth)
{
    if (!v || depth > 8) return NULL;
    if (v->type == CYAML_SEQUENCE || v->type == CYAML_SEQUENCE_FIXED)
        return s_enum_of(v->sequence.entry, key, depth + 1);
    if (v->type != CYAML_MAPPING) return NULL;
    for (const cyaml_schema_field_t *f = v->mapping.fields; f && f->key; f++) {
        const cyaml_schema_value_t *e = &f->value;
        if (strcmp(f->key, key) == 0) {
            if (e->type == CYAML_SEQUENCE || e->type == CYAML_SEQUENCE_FIXED) e = e->sequence.entry;
            if (e && e->type == CYAML_ENUM) return e;
        }
        const cyaml_schema_value_t *in = s_enum_of(&f->value, key, depth + 1);
        if (in) return in;
    }
    return NULL;
}

static const cyaml_config_t s_free_config = {
    .log_fn = NULL,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};

static sh_err s_load(const char *path, const uint8_t *bytes, size_t len,
                     const cyaml_schema_value_t *schema, void **out, sh_err code, sh_error *err)
{
    s_log log = {.text = ""};
    cyaml_config_t config = {
        .log_fn = s_log_fn,
        .log_ctx = &log,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    *out = NULL;
    cyaml_data_t *data = NULL;
    cyaml_err_t rc = bytes ? cyaml_load_data(bytes, len, &config, schema, &data, NULL)
                           : cyaml_load_file(path, &config, schema, &data, NULL);
    if (rc != CYAML_OK) {
        const char *what = log.text[0] ? log.text : cyaml_strerror(rc);
        const cyaml_schema_value_t *en = log.key[0] ? s_enum_of(schema, log.key, 0) : NULL;
        char allowed[400] = "";
        size_t used = 0;
        for (uint32_t i = 0; en && i < en->enumeration.count && used + 1 < sizeof allowed; i++)
            used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "",
                                     en->enumeration.strings[i].str);
        /* the value cyaml refused: "Invalid INT value: 'bogus'", "Invalid ENUM value: 9" */
        const char *q = strchr(what, '\''), *qe = q ? strrchr(what, '\'') : NULL;
        int ql = q && qe > q ? (int)(qe - q - 1) : 0;
        if (!ql && (q = strstr(what, "value: "))) {
            q += strlen("value: ") - 1;
            ql = (int)strlen(q + 1);
        }
        if (log.key[0] && en)
            return sh_error_set(err, code, "%s:%d:%d: %s: '%.*s' is not one of: %s", path, log.line,
                                log.column, log.key, ql > 60 ? 60 : ql, q ? q + 1 : "", allowed);
        if (log.key[0])
            return sh_error_set(err, code, "%s:%d:%d: %s: %s", path, log.line, log.column, log.key,
                                what);
        return sh_error_set(err, code, "%s: %s", path, what);
    }
    if (!data) /* an empty document (or only a comment) loads as nothing */
        return sh_error_set(err, code, "%s: the file holds no YAML document", path);
    *out = data;
    return SH_OK;
}

sh_err sh_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, sh_err code,
                    sh_error *err)
{
    return s_load(path, NULL, 0, schema, out, code, err);
}

sh_err sh_yaml_load_data(const char *name, const uint8_t *data, size_t len,
                         const cyaml_schema_value_t *schema, void **out, sh_err code, sh_error *err)
{
    *out = NULL;
    if (!len) return sh_error_set(err, code, "%s: the file holds no YAML document", name);
    return s_load(name, data, len, schema, out, code, err);
}

void sh_yaml_free(const cyaml_schema_value_t *schema, void *data)
{
    if (data) cyaml_free(&s_free_config, schema, data, 0);
}

/* "e_", "2g_": a legal reference before the words of a name (an Article 6 or 9 condition) */
static size_t s_reference_len(const char *name)
{
    size_t n = strspn(name, "0123456789");
    if (name[n] >= 'a' && name[n] <= 'z' && name[n + 1] == '_' && name[n + 2]) return n + 2;
    return 0;
}

uint32_t sh_yaml_enum_table(const ProtobufCEnumDescriptor *d, int keep_zero, int plain_too,
                            cyaml_strval_t *table, uint32_t cap)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < d->n_values && n < cap; i++) {
        int v = d->values[i].value;
        const char *name = sh_enum_name(d, v);
        if (!name || (v == 0 && !keep_zero)) continue;
        size_t ref = plain_too ? s_reference_len(name) : 0;
        if (ref && n + 1 < cap) table[n++] = (cyaml_strval_t){name + ref, v};
        table[n++] = (cyaml_strval_t){name, v};
    }
    return n;
}
