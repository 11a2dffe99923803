/*
 * wire.h — the framing of the sharehub wire protocol (docs/protocol.md), shared by the
 * broker and every client: the signature, the limits, and the body of a broker message.
 *
 * Owns: the byte layout of a message body (fields, each a u32 BE length and its bytes).
 * Never: touches a socket (client.c and the broker send and receive), or reads a length
 * past the end of the buffer it was given.
 */
#ifndef SHAREHUB_WIRE_H
#define SHAREHUB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SH_PROTO_SIGNATURE "SHv4"
#define SH_Z85_LEN         40                /* a CURVE key as Z85 text */
#define SH_WIRE_MSG_MAX    (4 * 1024 * 1024) /* the broker drops a peer that sends more */
#define SH_WIRE_CMD_MAX    15                /* bytes in a command name */
#define SH_WIRE_FIELDS_MAX 64                /* fields in one message body other than DELIVER */
#define SH_ACK_MAX         256               /* event ids in one ACK */
#define SH_DELIVER_FIELDS  6                 /* id, sender, rule, flags, copy, evidence */
#define SH_DELIVER_MAX     64                /* deliveries in one DELIVER */
#define SH_DELIVER_BYTES   (512 * 1024)      /* a DELIVER is closed once its body passes this */
/* The broker's signed audit head, as CONFIRM and DELIVER carry it: its store id (16 bytes)
 * and the 145-byte checkpoint over its newest committed entry (docs/audit-format.md). */
#define SH_WIRE_HEAD_BYTES (16 + 145)
/* A CONFIRM is the event id, the code, the detail, the broker's head and then one outcome
 * line a recipient; at most SH_OUTCOME_LINES_MAX lines are sent (docs/protocol.md). */
#define SH_CONFIRM_LINES_AT  4
#define SH_OUTCOME_LINES_MAX (SH_WIRE_FIELDS_MAX - SH_CONFIRM_LINES_AT)

_Static_assert(SH_OUTCOME_LINES_MAX > 0, "a CONFIRM has room for outcome lines");
_Static_assert(SH_ACK_MAX * 16 < SH_WIRE_MSG_MAX, "a full ACK fits in one message");

/* The frame counts of the commands an agent sends (signature and command included). */
#define SH_FRAMES_PUBLISH 4 /* envelope, sender evidence */
#define SH_FRAMES_ACK     3
#define SH_FRAMES_HELLO   3
#define SH_FRAMES_PING    2
#define SH_FRAMES_WITNESS 4
#define SH_FRAMES_FORWARD 3 /* a peer's: one delivery's six fields in one body frame */

/* How long a recipient keeps a delivery and what then happens: the `retain=` token of a
 * DELIVER's flags field, "retain=<count><d|m>:<erase|review>" (docs/protocol.md): count days,
 * or calendar months (a year is 12), counted from when the recipient stores it. */
typedef struct sh_retain {
    uint16_t count; /* 0: the delivery says nothing (a receipt, a draft's share) */
    char unit;      /* 'd' or 'm' */
    uint8_t review; /* at the end: 1 mark it for review, 0 erase it */
} sh_retain;

/* Writes r's token into out (cap bytes); its length, or 0 when r says nothing. */
size_t sh_retain_format(const sh_retain *r, char *out, size_t cap);

/* Reads a DELIVER's flags field (tokens separated by single spaces: "overdue",
 * "retain=72m:review"; unknown tokens are skipped, so later ones can be added) into
 * *overdue and *r. 0, or -1 when a retain token is malformed. */
int sh_deliver_flags_parse(const uint8_t *flags, size_t len, int *overdue, sh_retain *r);

/* Big-endian u32: the length before each field of a body. */
static inline void sh_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t sh_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A body being built: fields appended one after another into one growing buffer. */
typedef struct sh_wire_body {
    uint8_t *p;
    size_t len, cap;
    size_t nfields;
} sh_wire_body;

/* Appends one field of len bytes. -1 (nothing appended) when out of memory. */
int sh_wire_body_add(sh_wire_body *b, const void *field, size_t len);

/* Forgets the fields (the buffer is kept for the next body). */
void sh_wire_body_clear(sh_wire_body *b);

/* Frees the buffer. */
void sh_wire_body_free(sh_wire_body *b);

/* Reads the fields of body[0..len): stops after max fields or at the end. For each field
 * read, and while fewer than keep have been stored, stores its start and length in
 * fields[i]/lens[i]. *used is the bytes the fields read take, *count how many were read.
 * SH_E_PROTOCOL when a length runs past the end (nothing is stored past keep). */
sh_err sh_wire_body_read(const uint8_t *body, size_t len, size_t max, const uint8_t **fields,
                         size_t *lens, size_t keep, size_t *used, size_t *count);

#endif
