/*
 * enums.c — the names of the schema's enum values, taken from the protobuf-c descriptors
 * (codec.h: sh_enum_name, sh_enum_value, sh_enum_names, sh_event_type_name,
 * sh_event_type_from_name): the JSON mapping's, the protocol's and the policy files' names.
 *
 * Owns: a small cache of the lower-case names it has made. Never: keeps a hand-typed table
 * of names (the descriptors are the one source).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec.h"

/* ---- enum names, from the descriptors ------------------------------------------------ */

#define ENUM_CACHE 256 /* distinct (enum, value) names the process asks for */

static pthread_mutex_t s_enum_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const ProtobufCEnumDescriptor *d;
    int value;
    char name[64];
} s_enum_cache[ENUM_CACHE];
static size_t s_enum_n;

/* Length of the prefix all of an enum's value names share, up to and including an '_'. */
static size_t s_enum_prefix(const ProtobufCEnumDescriptor *e)
{
    if (e->n_values < 2) return 0;
    const char *first = e->values[0].name;
    size_t n = strlen(first);
    for (unsigned i = 1; i < e->n_values; i++) {
        size_t k = 0;
        while (k < n && first[k] == e->values[i].name[k])
            k++;
        n = k;
    }
    while (n > 0 && first[n - 1] != '_')
        n--;
    return n;
}

const char *sh_enum_name(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (!v) return NULL;
    const char *out = NULL;
    pthread_mutex_lock(&s_enum_lock);
    for (size_t i = 0; i < s_enum_n && !out; i++)
        if (s_enum_cache[i].d == d && s_enum_cache[i].value == value) out = s_enum_cache[i].name;
    if (!out && s_enum_n < ENUM_CACHE) {
        char *name = s_enum_cache[s_enum_n].name;
        const char *src = v->name + s_enum_prefix(d);
        size_t i = 0;
        for (; src[i] && i + 1 < sizeof s_enum_cache[0].name; i++)
            name[i] = (char)tolower((unsigned char)src[i]);
        name[i] = '\0';
        s_enum_cache[s_enum_n].d = d;
        s_enum_cache[s_enum_n].value = value;
        out = s_enum_cache[s_enum_n++].name;
    }
    pthread_mutex_unlock(&s_enum_lock);
    return out;
}

int sh_enum_value(const ProtobufCEnumDescriptor *d, const char *name, int *out)
{
    if (!name) return -1;
    size_t pre = s_enum_prefix(d);
    for (unsigned i = 0; i < d->n_values; i++)
        if (strcmp(name, d->values[i].name) == 0 ||
            strcasecmp(name, d->values[i].name + pre) == 0) {
            *out = d->values[i].value;
            return 0;
        }
    return -1;
}

void sh_enum_names(const ProtobufCEnumDescriptor *d, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < d->n_values && used + 1 < cap; i++) {
        if (d->values[i].value == 0) continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "",
                         sh_enum_name(d, d->values[i].value));
        if (n < 0) break;
        used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
    }
}

const char *sh_event_type_name(int t)
{
    const char *n = t > 0 ? sh_enum_name(&sharehub__v1__event_type__descriptor, t) : NULL;
    return n ? n : "unknown";
}

int sh_event_type_from_name(const char *name)
{
    /* names only: the lower-case short name ("hub_decision") */
    int v = 0;
    for (const char *c = name; c && *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_')) return 0;
    return name && sh_enum_value(&sharehub__v1__event_type__descriptor, name, &v) == 0 && v > 0 ? v
                                                                                                : 0;
}
