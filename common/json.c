/*
 * json.c — descriptor-driven JSON <-> protobuf-c mapping.
 *
 * Owns: walking descriptors both ways. Messages are built with their descriptor's init and
 * malloc'd members, so protobuf_c_message_free_unpacked frees them like decoded ones.
 * Never: writes past a member, or accepts a key, type or enum value it does not know.
 */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "ident.h"

#define JSON_MAX  (1024 * 1024)
#define DEPTH_MAX 8

/* ---- enums ------------------------------------------------------------------------------ */

/* An enum value from JSON: its name (sh_enum_value) or its number. */
static int s_enum_parse(const ProtobufCEnumDescriptor *e, json_object *j, int *out)
{
    if (json_object_is_type(j, json_type_int)) {
        int64_t v = json_object_get_int64(j);
        if (v < INT32_MIN || v > INT32_MAX || !protobuf_c_enum_descriptor_get_value(e, (int)v))
            return -1;
        *out = (int)v;
        return 0;
    }
    if (!json_object_is_type(j, json_type_string)) return -1;
    return sh_enum_value(e, json_object_get_string(j), out);
}

/* An enum value's name for JSON (sh_enum_name), or its number when it has none. */
static void s_enum_short(const ProtobufCEnumDescriptor *e, int value, char *out, size_t cap)
{
    const char *n = sh_enum_name(e, value);
    if (n)
        snprintf(out, cap, "%s", n);
    else
        snprintf(out, cap, "%d", value);
}

/* ---- ids -------------------------------------------------------------------------------- */

static void s_bytes_text(const ProtobufCBinaryData *b, char *out)
{
    if (b->len == 16)
        sh_event_id_format(b->data, out); /* 8-4-4-4-12 for any 16 bytes */
    else
        sh_hex_encode(b->data, b->len, out);
}

/* UUID text (any version) or plain hex, into a new buffer. */
static int s_bytes_parse(const char *s, ProtobufCBinaryData *b)
{
    size_t n = strlen(s), digits = 0;
    uint8_t *buf = malloc(n / 2 + 1);
    if (!buf) return -1;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' && n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) continue;
        int v = sh_hex_digit(s[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        if (hi < 0)
            hi = v;
        else {
            buf[digits++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0 || (n == 36 && digits != 16)) {
        free(buf);
        return -1;
    }
    b->data = buf;
    b->len = digits;
    return 0;
}

/* ---- JSON -> message -------------------------------------------------------------------- */

typedef struct s_ctx {
    sh_error *err;
    char path[160];
} s_ctx;

static sh_err s_fail_code(s_ctx *c, sh_err code, const char *what)
{
    return sh_error_set(c->err, code, "%s: %s", c->path[0] ? c->path : "(top)", what);
}

static sh_err s_fail(s_ctx *c, const char *what)
{
    return s_fail_code(c, SH_E_BAD_FIELD, what);
}

static sh_err s_object(s_ctx *c, json_object *j, const ProtobufCMessageDescriptor *d,
                       ProtobufCMessage *m, int depth);

/* Sets one value of field f at dst (a member or an array slot). */
static sh_err s_value(s_ctx *c, json_object *j, const ProtobufCFieldDescriptor *f, void *dst,
                      int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_object_is_type(j, json_type_string)) return s_fail(c, "want a string");
        char *s = strdup(json_object_get_string(j));
        if (!s) return sh_error_set(c->err, SH_E_NOMEM, "string");
        *(char **)dst = s;
        return SH_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData b;
        if (!json_object_is_type(j, json_type_string) ||
            s_bytes_parse(json_object_get_string(j), &b))
            return s_fail(c, "want an id as 8-4-4-4-12 hex or hex digits");
        *(ProtobufCBinaryData *)dst = b;
        return SH_OK;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(j, json_type_boolean)) return s_fail(c, "want true or false");
        *(protobuf_c_boolean *)dst = json_object_get_boolean(j);
        return SH_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        int v;
        if (s_enum_parse(f->descriptor, j, &v)) {
            char names[600], what[700];
            sh_enum_names(f->descriptor, names, sizeof names);
            snprintf(what, sizeof what, "not one of: %s", names);
            return s_fail(c, what);
        }
        *(int *)dst = v;
        return SH_OK;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64: {
        int64_t v;
        if (json_object_is_type(j, json_type_int)) {
            errno = 0;
            v = json_object_get_int64(j);
            if (errno) return s_fail(c, "number out of range");
        } else if (json_object_is_type(j, json_type_string)) {
            char *end;
            errno = 0;
            v = strtoll(json_object_get_string(j), &end, 10);
            if (errno || *end || end == json_object_get_string(j))
                return s_fail(c, "want a whole number");
        } else {
            return s_fail(c, "want a whole number");
        }
        if (f->type == PROTOBUF_C_TYPE_UINT32) {
            if (v < 0 || v > UINT32_MAX) return s_fail(c, "number out of range");
            *(uint32_t *)dst = (uint32_t)v;
        } else if (f->type == PROTOBUF_C_TYPE_INT32) {
            if (v < INT32_MIN || v > INT32_MAX) return s_fail(c, "number out of range");
            *(int32_t *)dst = (int32_t)v;
        } else if (f->type == PROTOBUF_C_TYPE_UINT64) {
            if (v < 0) return s_fail(c, "number out of range");
            *(uint64_t *)dst = (uint64_t)v;
        } else {
            *(int64_t *)dst = v;
        }
        return SH_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_object_is_type(j, json_type_object)) return s_fail(c, "want an object");
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = calloc(1, sd->sizeof_message);
        if (!sub) return sh_error_set(c->err, SH_E_NOMEM, "message");
        sd->message_init(sub);
        *(ProtobufCMessage **)dst = sub; /* owned by the parent from here, even on error */
        return s_object(c, j, sd, sub, depth + 1);
    }
    default:
        return s_fail(c, "this field type is not used by sharehub");
    }
}

static size_t s_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static sh_err s_object(s_ctx *c, json_object *j, const ProtobufCMessageDescriptor *d,
                       ProtobufCMessage *m, int depth)
{
    if (depth > DEPTH_MAX) return s_fail(c, "nested too deeply");
    size_t plen = strlen(c->path);
    sh_err rc = SH_OK;
    json_object_object_foreach(j, key, val)
    {
        snprintf(c->path + plen, sizeof c->path - plen, "%s%s", plen ? "." : "", key);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        if (!f) {
            rc = s_fail_code(c, SH_E_UNKNOWN_FIELD, "unknown field");
            break;
        }
        if (json_object_is_type(val, json_type_null)) continue;
        char *base = (char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_object_is_type(val, json_type_array)) {
                rc = s_fail(c, "want an array");
                break;
            }
            size_t n = json_object_array_length(val),
                   *count = (size_t *)(base + f->quantifier_offset);
            void **arr = (void **)(base + f->offset);
            if (*count) {
                rc = s_fail(c, "given twice");
                break;
            }
            if (n > 1024) {
                rc = s_fail(c, "too many elements");
                break;
            }
            *arr = calloc(n ? n : 1, s_elem_size(f));
            if (!*arr) {
                rc = sh_error_set(c->err, SH_E_NOMEM, "array");
                break;
            }
            for (size_t i = 0; i < n && !rc; i++) {
                /* count grows with each element set, so free_unpacked frees exactly those */
                rc = s_value(c, json_object_array_get_idx(val, i), f,
                             (char *)*arr + i * s_elem_size(f), depth);
                if (!rc || f->type == PROTOBUF_C_TYPE_MESSAGE) (*count)++;
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
                if (*which) {
                    rc = s_fail(c, "only one body may be given");
                    break;
                }
                *which = f->id;
            }
            rc = s_value(c, val, f, base + f->offset, depth);
        }
        c->path[plen] = '\0';
        if (rc) break;
    }
    return rc;
}

sh_err sh_json_to_message(const char *text, size_t len, const ProtobufCMessageDescriptor *d,
                          ProtobufCMessage **out, sh_error *err)
{
    *out = NULL;
    sh_error_clear(err);
    if (len > JSON_MAX) return sh_error_set(err, SH_E_TOO_LARGE, "JSON over 1 MiB");
    json_tokener *tok = json_tokener_new_ex(DEPTH_MAX * 2 + 4);
    if (!tok) return sh_error_set(err, SH_E_NOMEM, "JSON parser");
    json_object *j = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (j && (size_t)json_tokener_get_parse_end(tok) < len) {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
            if (!isspace((unsigned char)text[i])) {
                json_object_put(j);
                j = NULL;
                jerr = json_tokener_error_parse_unexpected;
                break;
            }
    }
    json_tokener_free(tok);
    if (!j) {
        const char *why = jerr == json_tokener_continue ? "unexpected end of input"
                                                        : json_tokener_error_desc(jerr);
        return sh_error_set(err, SH_E_MALFORMED, "JSON: %s", why);
    }
    s_ctx c = {.err = err};
    sh_err rc;
    ProtobufCMessage *m = NULL;
    if (!json_object_is_type(j, json_type_object)) {
        rc = sh_error_set(err, SH_E_BAD_FIELD, "(top): want an object");
    } else if (!(m = calloc(1, d->sizeof_message))) {
        rc = sh_error_set(err, SH_E_NOMEM, "message");
    } else {
        d->message_init(m);
        rc = s_object(&c, j, d, m, 0);
    }
    json_object_put(j);
    if (rc) {
        if (m) protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return SH_OK;
}

/* ---- message -> JSON -------------------------------------------------------------------- */

static json_object *s_to_json(const ProtobufCMessage *m, int depth);

static json_object *s_scalar(const ProtobufCFieldDescriptor *f, const void *p, int depth,
                             int *is_default)
{
    char buf[80];
    *is_default = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        *is_default = !s || !s[0];
        return *is_default ? NULL : json_object_new_string(s);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        *is_default = b->len == 0;
        if (*is_default || b->len > 32) return *is_default ? NULL : json_object_new_string("");
        s_bytes_text(b, buf);
        return json_object_new_string(buf);
    }
    case PROTOBUF_C_TYPE_BOOL:
        *is_default = !*(const protobuf_c_boolean *)p;
        return *is_default ? NULL : json_object_new_boolean(1);
    case PROTOBUF_C_TYPE_ENUM:
        *is_default = *(const int *)p == 0;
        s_enum_short(f->descriptor, *(const int *)p, buf, sizeof buf);
        return *is_default ? NULL : json_object_new_string(buf);
    case PROTOBUF_C_TYPE_UINT32:
        *is_default = *(const uint32_t *)p == 0;
        return *is_default ? NULL : json_object_new_int64(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT32:
        *is_default = *(const int32_t *)p == 0;
        return *is_default ? NULL : json_object_new_int64(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
        *is_default = *(const int64_t *)p == 0;
        return *is_default ? NULL : json_object_new_int64(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
        *is_default = *(const uint64_t *)p == 0;
        return *is_default ? NULL : json_object_new_uint64(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        *is_default = sub == NULL;
        return sub ? s_to_json(sub, depth + 1) : NULL;
    }
    default:
        *is_default = 1;
        return NULL;
    }
}

static json_object *s_to_json(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_object *o = json_object_new_object();
    if (!o || depth > DEPTH_MAX) return o;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *member = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(const void *)(base + f->quantifier_offset);
            if (which != f->id) continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            if (!n) continue;
            json_object *a = json_object_new_array();
            const char *arr = *(const char *const *)member;
            for (size_t k = 0; a && k < n; k++) {
                int def;
                json_object *v = s_scalar(f, arr + k * s_elem_size(f), depth, &def);
                json_object_array_add(a, v ? v : json_object_new_object());
            }
            json_object_object_add(o, f->name, a);
            continue;
        }
        int def;
        json_object *v = s_scalar(f, member, depth, &def);
        /* a oneof member is always written, even empty, so the body's kind survives */
        if (v || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            json_object_object_add(o, f->name, v ? v : json_object_new_object());
    }
    return o;
}

char *sh_json_from_message(const ProtobufCMessage *msg, int pretty)
{
    json_object *o = s_to_json(msg, 0);
    if (!o) return NULL;
    const char *s = json_object_to_json_string_ext(
        o, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    json_object_put(o);
    return out;
}
