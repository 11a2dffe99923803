/*
 * broker_record.h — the records of the broker's store (docs/protocol.md, "The broker's
 * store"): the accepted event and the queued delivery. Each is written and parsed here and
 * nowhere else; the broker and `sharehub audit` both use these functions.
 *
 *   events  event id (16)            -> u8 n, sender[n] | u32 BE n, outcome text[n] |
 *                                       u32 BE n, envelope[n] | [u8 form]
 *   queue   org (9, NUL-padded) |    -> event id (16) | u8 n, sender[n] | u8 n, rule[n] |
 *           seq (u64 BE)                u8 flags | [i64 BE accepted ms, if flags has
 *                                       SH_DELIVERY_TIME] | [u16 BE count, u8 unit 'd'|'m',
 *                                       u8 review, if SH_DELIVERY_RETAIN] | [u16 BE n,
 *                                       recipients text[n], if SH_DELIVERY_TO] | minimised copy
 *                                       (u32 BE day | sealed, if SH_DELIVERY_SEALED; none,
 *                                       if SH_DELIVERY_WHOLE)
 *
 * An event record's form says what its envelope field holds: absent (records written before
 * forms) or 0, the envelope; 1, the envelope sealed under the key of the day the broker's copy
 * is erased (shred.h: u32 BE day | sealed value, bound to the event id); 2, only the SHA-256
 * of the envelope — the copy was erased (docs/store-format.md, "Erasure at the broker").
 *
 * Never: reads past the value it is given; a parser that returns 0 has checked every length.
 */
#ifndef SHAREHUB_BROKER_RECORD_H
#define SHAREHUB_BROKER_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "ident.h"
#include "wire.h"

#define SH_QKEY_ORG         9 /* queue keys start with the org code, NUL-padded to 9 bytes */
#define SH_QKEY_BYTES       (SH_QKEY_ORG + 8)
#define SH_DELIVERY_OVERDUE 1u /* the ISP that permitted it was past its review date */
#define SH_DELIVERY_TIME    2u /* the record holds the time the broker accepted the event */
#define SH_DELIVERY_RETAIN  4u /* the record holds the recipient's retention */
#define SH_DELIVERY_SEALED  8u /* the copy is sealed under its event's erasure day */
#define SH_DELIVERY_WHOLE                                                                          \
    16u /* no copy: the recipient gets the event's own envelope,                                   \
           read from its record (nothing was withheld) */
#define SH_DELIVERY_TO                                                                             \
    32u /* a peer's delivery: the record names the recipients in the other authority, as the       \
           DELIVER's to= tokens (docs/federation.md) */
#define SH_EVENT_PLAIN  0         /* an event record's forms: the envelope as sent */
#define SH_EVENT_SEALED 1         /* sealed under the day the broker erases it */
#define SH_EVENT_ERASED 2         /* erased: the envelope's SHA-256 (32 bytes) */
#define SH_RULE_RECEIPT "receipt" /* the rule of a delivery that is a receipt */

_Static_assert(SH_QKEY_BYTES == 17, "docs/protocol.md: a queue key is 9 + 8 bytes");

/* The parts of an event record, pointing into the value parsed. */
typedef struct sh_broker_event {
    char sender[SH_ORG_MAX + 1];
    const char *outcome; /* outcome lines, '\n'-separated, not NUL-terminated */
    size_t outcome_len;
    const uint8_t *env; /* as its form says */
    size_t env_len;
    uint8_t form; /* SH_EVENT_PLAIN, _SEALED or _ERASED */
} sh_broker_event;

/* 0, or -1 when v[0..n) is not a whole event record. */
int sh_broker_event_parse(const uint8_t *v, size_t n, sh_broker_event *ev);

/* A new event record of form (malloc'd, *len bytes) whose envelope field is env[0..env_len),
 * or, when env is NULL, env_len bytes left for the caller to fill at *slot; NULL when out of
 * memory or sender is over SH_ORG_MAX bytes. */
uint8_t *sh_broker_event_build(const char *sender, const char *outcome, const uint8_t *env,
                               size_t env_len, uint8_t form, size_t *len, uint8_t **slot);

/* The parts of a delivery record, pointing into the value parsed. */
typedef struct sh_broker_delivery {
    const uint8_t *id; /* 16 bytes */
    char sender[SH_ORG_MAX + 1];
    const uint8_t *rule;
    size_t rule_len;
    uint8_t flags;
    int64_t accepted_ms; /* 0 when the record does not hold it */
    sh_retain retain;    /* count 0 when the record does not hold it */
    const char *to;      /* SH_DELIVERY_TO: "to=ORG/RULE/ITEMS ..." (not NUL-terminated) */
    size_t to_len;
    const uint8_t *copy;
    size_t copy_len;
} sh_broker_delivery;

/* 0, or -1 when v[0..n) is not a whole delivery record. */
int sh_broker_delivery_parse(const uint8_t *v, size_t n, sh_broker_delivery *d);

/* A new delivery record (malloc'd, *len bytes) accepted at accepted_ms, with the recipient's
 * retention when retain is given and says something, and a peer's recipients when to is not
 * NULL; NULL when out of memory or sender, rule or to is too long (SH_ORG_MAX, 255, 65535).
 * SH_DELIVERY_TIME is always set. When copy is NULL the copy's copy_len bytes are the record's
 * last, left for the caller to fill. */
uint8_t *sh_broker_delivery_build(const uint8_t id[16], const char *sender, const char *rule,
                                  uint8_t flags, int64_t accepted_ms, const sh_retain *retain,
                                  const char *to, const uint8_t *copy, size_t copy_len,
                                  size_t *len);

/* 1 when the delivery is a receipt (receipts are not answered with receipts). */
int sh_broker_delivery_is_receipt(const sh_broker_delivery *d);

/* The queue key of org's entry seq. */
void sh_broker_qkey(const char *org, uint64_t seq, uint8_t key[SH_QKEY_BYTES]);

#endif
