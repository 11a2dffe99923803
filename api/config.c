/*
 * config.c — sharehub-api's configuration file (docs/api.md, "Configuration") and its client
 * registry: each client system's name, the SHA-256 fingerprint of its certificate, its scopes.
 *
 * Owns: the api_config and its clients. Never: accepts an unknown key, a fingerprint that is
 * not 32 bytes, a client twice (by name or by fingerprint), or a scope it does not know.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "cli.h"
#include "clock.h"
#include "codec.h"
#include "ident.h"
#include "yaml.h"

typedef struct y_tls {
    char *certificate, *key, *client_ca;
} y_tls;

typedef struct y_client {
    char *name, *fingerprint, *site, *setting;
    unsigned scopes;
} y_client;

typedef struct y_workspace {
    char *listen, *root, *idle, *absolute, *site, *setting;
} y_workspace;

typedef struct y_api {
    char *listen, *agent_socket, *stream_poll_text;
    y_tls *tls;
    y_workspace *workspace;
    y_client *clients;
    unsigned clients_count;
    int log_level;
} y_api;

static const cyaml_strval_t s_levels[] = {{"info", 0}, {"warning", 1}, {"error", 2}};
static const cyaml_strval_t s_scopes[] = {{"publish", SCOPE_PUBLISH},
                                          {"inbox", SCOPE_INBOX},
                                          {"track", SCOPE_TRACK},
                                          {"flags", SCOPE_FLAGS},
                                          {"admin", SCOPE_ADMIN}};
static const cyaml_schema_field_t s_tls_fields[] = {
    CYAML_FIELD_STRING_PTR("certificate", CYAML_FLAG_POINTER, y_tls, certificate, 1, 4096),
    CYAML_FIELD_STRING_PTR("key", CYAML_FLAG_POINTER, y_tls, key, 1, 4096),
    CYAML_FIELD_STRING_PTR("client_ca", CYAML_FLAG_POINTER, y_tls, client_ca, 1, 4096),
    CYAML_FIELD_END};
static const cyaml_schema_field_t s_client_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_client, name, 1, 64),
    CYAML_FIELD_STRING_PTR("fingerprint", CYAML_FLAG_POINTER, y_client, fingerprint, 64, 120),
    CYAML_FIELD_FLAGS("scopes", CYAML_FLAG_STRICT, y_client, scopes, s_scopes, 5),
    CYAML_FIELD_STRING_PTR("site", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_client, site, 1, 9),
    CYAML_FIELD_STRING_PTR("setting", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_client, setting,
                           1, 40),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_client = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_client, s_client_fields)};
static const cyaml_schema_field_t s_workspace_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, y_workspace, listen, 1, 64),
    CYAML_FIELD_STRING_PTR("root", CYAML_FLAG_POINTER, y_workspace, root, 1, 4096),
    CYAML_FIELD_STRING_PTR("session_idle", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_workspace,
                           idle, 1, 16),
    CYAML_FIELD_STRING_PTR("session_absolute", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           y_workspace, absolute, 1, 16),
    CYAML_FIELD_STRING_PTR("site", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_workspace, site, 1,
                           9),
    CYAML_FIELD_STRING_PTR("setting", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_workspace,
                           setting, 1, 40),
    CYAML_FIELD_END};
static const cyaml_schema_field_t s_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, y_api, listen, 1, 64),
    CYAML_FIELD_STRING_PTR("agent_socket", CYAML_FLAG_POINTER, y_api, agent_socket, 1, 100),
    CYAML_FIELD_MAPPING_PTR("tls", CYAML_FLAG_POINTER, y_api, tls, s_tls_fields),
    CYAML_FIELD_SEQUENCE("clients", CYAML_FLAG_POINTER, y_api, clients, &s_client, 0, 1000),
    CYAML_FIELD_MAPPING_PTR("workspace", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_api, workspace,
                            s_workspace_fields),
    CYAML_FIELD_STRING_PTR("stream_poll_ms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_api,
                           stream_poll_text, 1, 12),
    CYAML_FIELD_ENUM("log_level", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_api, log_level,
                     s_levels, 3),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_api, s_fields)};

/* "AB:CD:…" (openssl's form), "ab cd …" or 64 hex digits; a "sha256:" or "SHA256 Fingerprint="
 * prefix is allowed. 0, or -1 when it is not 32 bytes of hex. */
static int s_fingerprint(const char *text, uint8_t out[32])
{
    const char *p = strchr(text, '=');
    p = p ? p + 1 : text;
    if (strncasecmp(p, "sha256:", 7) == 0) p += 7;
    size_t n = 0;
    int half = -1;
    for (; *p; p++) {
        if (*p == ':' || *p == ' ') {
            if (half >= 0) return -1;
            continue;
        }
        if (!isxdigit((unsigned char)*p) || n == 32) return -1;
        int v = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
        if (half < 0) {
            half = v;
        } else {
            out[n++] = (uint8_t)(half << 4 | v);
            half = -1;
        }
    }
    return n == 32 && half < 0 ? 0 : -1;
}

static int s_name_ok(const char *name)
{
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_' ||
              *p == '.'))
            return 0;
    return *name != '\0';
}

sh_err api_config_load(const char *path, api_config **out, sh_error *err)
{
    *out = NULL;
    void *data = NULL;
    sh_err rc = sh_yaml_load(path, &s_schema, &data, SH_E_API_CONFIG, err);
    if (rc) return rc;
    y_api *y = data;
    api_config *c = calloc(1, sizeof *c);
    if (!c) {
        sh_yaml_free(&s_schema, y);
        return sh_error_set(err, SH_E_NOMEM, "configuration");
    }
    c->clients = calloc(y->clients_count ? y->clients_count : 1, sizeof *c->clients);
    c->listen = strdup(y->listen);
    c->agent_socket = strdup(y->agent_socket);
    c->cert_file = strdup(y->tls->certificate);
    c->key_file = strdup(y->tls->key);
    c->ca_file = strdup(y->tls->client_ca);
    c->log_level = y->log_level;
    c->stream_poll_ms = 200;
    if (!c->clients || !c->listen || !c->agent_socket || !c->cert_file || !c->key_file ||
        !c->ca_file)
        rc = sh_error_set(err, SH_E_NOMEM, "configuration");
    long poll = 0;
    if (!rc && y->stream_poll_text) {
        if (cli_number(y->stream_poll_text, 20, 5000, &poll))
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: stream_poll_ms: '%.12s' is not a whole number from 20 to 5000",
                              path, y->stream_poll_text);
        else
            c->stream_poll_ms = poll;
    }
    const y_workspace *w = y->workspace;
    if (!rc && w) {
        c->ws_idle_ms = 30 * 60000LL;
        c->ws_absolute_ms = 10 * 3600000LL;
        int setting = 0;
        if (!(c->ws_listen = strdup(w->listen)) || !(c->ws_root = strdup(w->root)))
            rc = sh_error_set(err, SH_E_NOMEM, "configuration");
        else if (w->idle && (sh_duration_parse(w->idle, &c->ws_idle_ms) || c->ws_idle_ms < 1000 ||
                             c->ws_idle_ms > 86400000))
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: workspace.session_idle: want a duration from 1s to 24h", path);
        else if (w->absolute &&
                 (sh_duration_parse(w->absolute, &c->ws_absolute_ms) ||
                  c->ws_absolute_ms < c->ws_idle_ms || c->ws_absolute_ms > 7 * 86400000LL))
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: workspace.session_absolute: want a duration from "
                              "session_idle to 7d",
                              path);
        else if (w->site && sh_org_code_check(w->site) != SH_OK)
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: workspace.site: want an ODS site code (1-9 of A-Z 0-9)", path);
        else if (w->setting &&
                 (sh_enum_value(&sharehub__v1__care_setting__descriptor, w->setting, &setting) ||
                  setting <= 0))
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: workspace.setting: not a care setting (docs/schema.md)", path);
        snprintf(c->ws_site, sizeof c->ws_site, "%s", w && w->site ? w->site : "");
        snprintf(c->ws_setting, sizeof c->ws_setting, "%s",
                 setting ? sh_enum_name(&sharehub__v1__care_setting__descriptor, setting) : "");
    }
    for (unsigned i = 0; !rc && i < y->clients_count; i++) {
        const y_client *yc = &y->clients[i];
        api_client *ac = &c->clients[i];
        if (!s_name_ok(yc->name)) {
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: clients[%u].name: want 1-64 of a-z 0-9 - _ .", path, i);
            break;
        }
        if (s_fingerprint(yc->fingerprint, ac->fp)) {
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: clients[%u].fingerprint: want the certificate's SHA-256 "
                              "fingerprint, 32 bytes in hex (openssl x509 -noout -fingerprint "
                              "-sha256 prints it)",
                              path, i);
            break;
        }
        if (!yc->scopes) {
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: clients[%u].scopes: name at least one of publish, inbox, "
                              "track, flags, admin",
                              path, i);
            break;
        }
        int setting = 0;
        if (yc->site && sh_org_code_check(yc->site) != SH_OK) {
            rc = sh_error_set(err, SH_E_API_CONFIG,
                              "%s: clients[%u].site: want an ODS site code (1-9 of A-Z 0-9)", path,
                              i);
            break;
        }
        if (yc->setting &&
            (sh_enum_value(&sharehub__v1__care_setting__descriptor, yc->setting, &setting) ||
             setting <= 0)) {
            char names[300];
            sh_enum_names(&sharehub__v1__care_setting__descriptor, names, sizeof names);
            rc = sh_error_set(err, SH_E_API_CONFIG, "%s: clients[%u].setting: want one of %s", path,
                              i, names);
            break;
        }
        snprintf(ac->name, sizeof ac->name, "%s", yc->name);
        snprintf(ac->site, sizeof ac->site, "%s", yc->site ? yc->site : "");
        snprintf(ac->setting, sizeof ac->setting, "%s",
                 setting ? sh_enum_name(&sharehub__v1__care_setting__descriptor, setting) : "");
        ac->scopes = yc->scopes;
        for (unsigned k = 0; k < i; k++) {
            if (strcmp(c->clients[k].name, ac->name) == 0)
                rc = sh_error_set(err, SH_E_API_CONFIG, "%s: clients[%u].name: '%s' twice", path, i,
                                  ac->name);
            else if (memcmp(c->clients[k].fp, ac->fp, 32) == 0)
                rc = sh_error_set(err, SH_E_API_CONFIG,
                                  "%s: clients[%u].fingerprint: the same certificate as "
                                  "clients[%u]: one certificate is one client system",
                                  path, i, k);
            if (rc) break;
        }
        c->nclients = i + 1;
    }
    sh_yaml_free(&s_schema, y);
    if (rc) {
        api_config_free(&c);
        return rc;
    }
    *out = c;
    return SH_OK;
}

void api_config_free(api_config **cp)
{
    api_config *c = *cp;
    if (!c) return;
    free(c->listen);
    free(c->agent_socket);
    free(c->cert_file);
    free(c->key_file);
    free(c->ca_file);
    free(c->ws_listen);
    free(c->ws_root);
    free(c->clients);
    free(c);
    *cp = NULL;
}

const api_client *api_client_find(const api_config *c, const uint8_t fp[32])
{
    for (size_t i = 0; i < c->nclients; i++)
        if (memcmp(c->clients[i].fp, fp, 32) == 0) return &c->clients[i];
    return NULL;
}

void api_scopes_text(unsigned scopes, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof s_scopes / sizeof s_scopes[0]; i++)
        if (scopes & s_scopes[i].val)
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? " " : "",
                                  s_scopes[i].str);
}
