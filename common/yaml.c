/*
 * yaml.c — strict libcyaml loading with the problem captured into an sh_error.
 *
 * Owns: the cyaml config. Never: prints to stderr on its own (the caller decides).
 */
#include "yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct s_log {
    char text[160];
} s_log;

/* Keeps the first error-level message cyaml logs: it names the key or value at fault. */
static void s_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
static void s_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    s_log *log = ctx;
    if (level < CYAML_LOG_ERROR || log->text[0]) return;
    vsnprintf(log->text, sizeof log->text, fmt, args);
    size_t n = strlen(log->text);
    while (n && (log->text[n - 1] == '\n' || log->text[n - 1] == ' '))
        log->text[--n] = '\0';
}

static const cyaml_config_t s_free_config = {
    .log_fn = NULL,
    .mem_fn = cyaml_mem,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};

sh_err sh_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, sh_err code,
                    sh_error *err)
{
    s_log log = {{0}};
    cyaml_config_t config = {
        .log_fn = s_log_fn,
        .log_ctx = &log,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    *out = NULL;
    cyaml_data_t *data = NULL;
    cyaml_err_t rc = cyaml_load_file(path, &config, schema, &data, NULL);
    if (rc != CYAML_OK)
        return sh_error_set(err, code, "%s: %s", path, log.text[0] ? log.text : cyaml_strerror(rc));
    if (!data) /* an empty document (or only a comment) loads as nothing */
        return sh_error_set(err, code, "%s: the file holds no YAML document", path);
    *out = data;
    return SH_OK;
}

void sh_yaml_free(const cyaml_schema_value_t *schema, void *data)
{
    if (data) cyaml_free(&s_free_config, schema, data, 0);
}
