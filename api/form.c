/*
 * form.c — a browser's form body (application/x-www-form-urlencoded) as a JSON object of
 * strings (form.h), for the workspace's pages.
 *
 * Owns: nothing. Never: reads past len; keeps a NUL (other control characters pass through:
 * the agent refuses them, naming the field).
 */
#include "form.h"

#include <stdlib.h>

static int s_hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

json_object *ws_form_parse(const char *body, size_t len)
{
    json_object *o = json_object_new_object();
    char *k = malloc(len + 1), *v = malloc(len + 1);
    if (!o || !k || !v) {
        free(k);
        free(v);
        json_object_put(o);
        return NULL;
    }
    size_t i = 0;
    while (i < len) {
        char *dst = k;
        size_t n = 0;
        int in_value = 0, bad = 0;
        for (; i < len && body[i] != '&'; i++) {
            char ch = body[i];
            if (ch == '=' && !in_value) {
                dst[n] = '\0';
                dst = v;
                n = 0;
                in_value = 1;
                continue;
            }
            if (ch == '+') ch = ' ';
            if (ch == '%') {
                int h = i + 2 < len ? s_hex(body[i + 1]) : -1, l = h >= 0 ? s_hex(body[i + 2]) : -1;
                if (h < 0 || l < 0) {
                    bad = 1;
                    break;
                }
                ch = (char)(h << 4 | l);
                i += 2;
            }
            if (ch == '\r' || ch == '\n' || ch == '\t') ch = ' ';
            if (ch == '\0') bad = 1;
            dst[n++] = ch;
        }
        dst[n] = '\0';
        if (!in_value) v[0] = '\0';
        if (bad) {
            json_object_put(o);
            o = NULL;
            break;
        }
        /* names starting '_' are the server's own notes on a request (pages.c): never taken */
        if (k[0] && k[0] != '_')
            json_object_object_add(o, k, json_object_new_string(in_value ? v : ""));
        i++;
    }
    free(k);
    free(v);
    return o;
}
