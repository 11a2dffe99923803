/*
 * minimise.c — wire-level field filter driven by the protobuf-c descriptors.
 *
 * Walks the encoding field by field. For each field it decides, from its dotted path: keep it
 * whole (copy its bytes), drop it, or descend into it (a message some of whose fields are
 * allowed: filter its bytes and write it back with its new length). Output is never longer
 * than input. Never: decodes into objects or re-encodes kept bytes.
 */
#include "minimise.h"

#include <stdio.h>
#include <string.h>

#include "codec.h"

enum { DROP, KEEP, DESCEND };

static int s_header(uint32_t number)
{
    return (number >= 1 && number <= 6) || (number >= 9 && number <= 13);
}

/* What to do with path given the allowed items. */
static int s_verdict(const char *path, const char *const *items, size_t n)
{
    size_t plen = strlen(path);
    int descend = 0;
    for (size_t i = 0; i < n; i++) {
        size_t ilen = strlen(items[i]);
        /* the item names this path or an ancestor of it */
        if (ilen <= plen && memcmp(items[i], path, ilen) == 0 &&
            (ilen == plen || path[ilen] == '.'))
            return KEEP;
        /* the item names a descendant of this path */
        if (ilen > plen && memcmp(items[i], path, plen) == 0 && items[i][plen] == '.') descend = 1;
    }
    return descend ? DESCEND : DROP;
}

static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

static size_t s_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* Filters one message body; returns bytes written to out or (size_t)-1 when malformed. */
static size_t s_filter(const ProtobufCMessageDescriptor *d, const uint8_t *in, size_t len,
                       char *path, size_t plen, size_t pcap, const char *const *items, size_t n,
                       int depth, uint8_t *out)
{
    int top = depth == 0;
    if (depth > SH_MINIMISE_DEPTH) return (size_t)-1;
    const uint8_t *p = in, *end = in + len;
    uint8_t *o = out;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t tag, v;
        if (s_varint(&p, end, &tag)) return (size_t)-1;
        uint32_t number = (uint32_t)(tag >> 3), wt = tag & 7;
        const uint8_t *body = p;
        size_t blen = 0;
        switch (wt) {
        case 0:
            if (s_varint(&p, end, &v)) return (size_t)-1;
            break;
        case 1:
            if (end - p < 8) return (size_t)-1;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return (size_t)-1;
            p += 4;
            break;
        case 2:
            if (s_varint(&p, end, &v) || v > (uint64_t)(end - p)) return (size_t)-1;
            body = p;
            blen = (size_t)v;
            p += blen;
            break;
        default:
            return (size_t)-1;
        }
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, number);
        if (!f) return (size_t)-1; /* validated input has no unknown fields */
        int body_field = top && number >= 20 && number <= 32;
        int verdict;
        size_t np = plen;
        if (top && s_header(number)) {
            verdict = KEEP;
        } else {
            int w = snprintf(path + plen, pcap - plen, "%s%s", plen ? "." : "", f->name);
            if (w < 0 || (size_t)w >= pcap - plen) return (size_t)-1;
            np = plen + (size_t)w;
            verdict = s_verdict(path, items, n);
            /* the body is always sent, if need be empty, so event_type still matches it */
            if (body_field && verdict == DROP) verdict = DESCEND;
        }
        if (verdict == KEEP) {
            memcpy(o, start, (size_t)(p - start));
            o += p - start;
        } else if (verdict == DESCEND && wt == 2 && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* filter the sub-message in place after its tag, then fix its length prefix */
            uint8_t tagbuf[10], lenbuf[10];
            size_t tl = s_put_varint(tagbuf, tag);
            size_t got = s_filter(f->descriptor, body, blen, path, np, pcap, items, n, depth + 1,
                                  o + tl + 10);
            if (got == (size_t)-1) return (size_t)-1;
            if (got > 0 || body_field) {
                size_t ll = s_put_varint(lenbuf, got);
                memcpy(o, tagbuf, tl);
                memcpy(o + tl, lenbuf, ll);
                memmove(o + tl + ll, o + tl + 10, got);
                o += tl + ll + got;
            }
        }
        path[plen] = '\0';
    }
    return (size_t)(o - out);
}

sh_err sh_minimise(const uint8_t *in, size_t len, const char *const *items, size_t n_items,
                   uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    /* Filtering a sub-message writes it up to 9 bytes further ahead than its input position
     * before moving it back, at each level of nesting; the final output is never longer than
     * the input. */
    if (cap < len + SH_MINIMISE_SLACK) return SH_E_RANGE;
    char path[256] = "";
    size_t n = s_filter(&sharehub__v1__envelope__descriptor, in, len, path, 0, sizeof path, items,
                        n_items, 0, out);
    if (n == (size_t)-1) return SH_E_MALFORMED;
    *outlen = n;
    return SH_OK;
}
