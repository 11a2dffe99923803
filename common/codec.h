/*
 * codec.h — the Envelope on the wire: decode, validate and encode, with a hard size limit.
 *
 * Owns: what a well-formed v1 Envelope is (mandatory fields, ranges, identifiers, dates,
 * text, event type agreeing with the body, no unknown fields).
 * Never: decides who may see an event (that is policy), or puts field values into errors —
 * details name the field ("child.nhs_number"), never its content.
 *
 * The generated types come from proto/sharehub/v1/envelope.proto via protoc-c; this header
 * gives them short names.
 */
#ifndef SHAREHUB_CODEC_H
#define SHAREHUB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sharehub/v1/envelope.pb-c.h"

typedef Sharehub__V1__Envelope sh_envelope;
typedef Sharehub__V1__Child sh_child;

#define SH_SCHEMA_VERSION 1
#define SH_ENVELOPE_MAX   (1024 * 1024) /* hard limit on an encoded Envelope, bytes */
#define SH_TEXT_MAX       65536         /* any one string field, bytes of UTF-8 */
#define SH_REPEATED_MAX   64            /* any one repeated field, elements */
#define SH_CLOCK_SKEW_MS  (5 * 60 * 1000)

/* Decodes and validates buf. On success *out owns a new Envelope (free with
 * sh_envelope_free). Errors: SH_E_TOO_LARGE (len > SH_ENVELOPE_MAX), SH_E_MALFORMED, and
 * every error of sh_envelope_validate. On error *out is NULL. */
sh_err sh_envelope_decode(const uint8_t *buf, size_t len, sh_envelope **out, sh_error *err);

/* Checks every rule of docs/schema.md. Returns SH_OK or the first violation, with the field
 * path in err->detail: SH_E_MISSING_FIELD, SH_E_BAD_FIELD, SH_E_SCHEMA_VERSION,
 * SH_E_BODY_MISMATCH, SH_E_BAD_DATE, SH_E_BAD_TEXT, SH_E_BAD_EVENT_ID, SH_E_BAD_NHS_NUMBER,
 * SH_E_BAD_UPN, SH_E_BAD_LA_CODE, SH_E_BAD_ORG_CODE, SH_E_BAD_LA_CHILD_ID. */
sh_err sh_envelope_validate(const sh_envelope *env, sh_error *err);

/* As sh_envelope_decode, for a copy the broker minimised for its recipient: every field that
 * is present must be valid, but fields a sharing protocol withheld may be absent (the child's
 * identifiers, mandatory body fields). Header fields are still mandatory. */
sh_err sh_envelope_decode_minimised(const uint8_t *buf, size_t len, sh_envelope **out,
                                    sh_error *err);

/* Validates env and encodes it into a new malloc'd buffer *out of *len bytes (free()).
 * Errors: those of sh_envelope_validate, SH_E_TOO_LARGE, SH_E_NOMEM. */
sh_err sh_envelope_encode(const sh_envelope *env, uint8_t **out, size_t *len, sh_error *err);

/* The event id of encoded envelope bytes that may not be valid: the first field 1 of 16
 * bytes at the top level, whatever else is wrong (so a refusal can name the event). 1 when
 * found (copied into id), 0 when the bytes hold none or are not protobuf. Never reads past
 * buf[len). */
int sh_envelope_peek_id(const uint8_t *buf, size_t len, uint8_t id[16]);

/* Starts an envelope a daemon makes itself (a delivery receipt, an access notification):
 * initialises *e, draws a new event id into id (e points at it), and sets this schema
 * version, type, source (not copied), occurred and published times now_ms, purpose, the
 * lawful basis lb (not copied) and consent "not required". The caller adds the child, the
 * thread and the body. SH_E_IO when no event id can be drawn. */
sh_err sh_envelope_start(sh_envelope *e, uint8_t id[16], int type, const char *source, int purpose,
                         Sharehub__V1__LawfulBasis *lb, int64_t now_ms) SH_WUR;

/* A DeliveryReceipt envelope made in place, nothing allocated: e points into the struct, so
 * keep it alive while e is used. */
typedef struct sh_receipt {
    sh_envelope e;
    Sharehub__V1__DeliveryReceipt body;
    Sharehub__V1__LawfulBasis basis;
    ProtobufCBinaryData more[SH_REPEATED_MAX];
    uint8_t id[16];
} sh_receipt;

/* Starts a receipt from source (not copied) about the events ids[0..n) (1 to
 * 1 + SH_REPEATED_MAX; not copied) at recipient, with status (ReceiptStatus), reason (a
 * sharehub code, or SH_OK) and time now_ms. The header is every receipt's: a new event id,
 * purpose service_operation, lawful basis Article 6(1)(e), consent not required, no child
 * (docs/schema.md). SH_E_INVAL for another n, SH_E_IO when no event id can be drawn. */
sh_err sh_receipt_start(sh_receipt *r, const char *source, const uint8_t (*ids)[16], size_t n,
                        const char *recipient, int status, sh_err reason, int64_t now_ms) SH_WUR;

/* Frees an Envelope returned by sh_envelope_decode. Accepts NULL. */
void sh_envelope_free(sh_envelope *env);

/* The name of an enum value, from its protobuf-c descriptor: the value's name after the prefix
 * all the enum's values share, in lower case ("EVENT_TYPE_HUB_DECISION" -> "hub_decision",
 * "ARTICLE6_E_PUBLIC_TASK" -> "e_public_task"). NULL when value is not one of the enum's.
 * The string is the library's (never freed). These names are the JSON mapping's, the
 * protocol's subscriptions and the policy files'. */
const char *sh_enum_name(const ProtobufCEnumDescriptor *d, int value);

/* The value of an enum name: the short name above (any case) or the full one
 * ("EVENT_TYPE_HUB_DECISION"). 0 and *out set when found, -1 otherwise. */
int sh_enum_value(const ProtobufCEnumDescriptor *d, const char *name, int *out);

/* The names of an enum's values except the unspecified 0, ", "-separated, into out. */
void sh_enum_names(const ProtobufCEnumDescriptor *d, char *out, size_t cap);

/* "request_for_support", "hub_decision", ... for an EventType value (sh_enum_name);
 * "unknown" otherwise. */
const char *sh_event_type_name(int event_type);

/* The event type a name from sh_event_type_name stands for; 0 when it names none. */
int sh_event_type_from_name(const char *name);

/* Checks a "YYYY-MM-DD" calendar date (years 1900-2199). SH_OK or SH_E_BAD_DATE. */
sh_err sh_date_check(const char *s);

/* Checks UTF-8 text: well-formed, at most SH_TEXT_MAX bytes, no control characters other than
 * tab, newline and carriage return. SH_OK or SH_E_BAD_TEXT. */
sh_err sh_text_check(const char *s);

#endif
