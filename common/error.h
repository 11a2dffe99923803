/*
 * error.h — the one error enum of sharehub, shared by every module, the wire and the CLI.
 *
 * Owns: the stable numeric codes, their stable names and their messages.
 * Never: renumber or reuse a code. Codes are on the wire (refusals, receipts) and in audit
 * logs; a retired code stays in the table, marked retired. docs/errors.md lists them all.
 *
 * Ranges: 1xx general, 2xx codec/schema, 3xx identifiers, 4xx crypto and keys, 5xx store,
 * 6xx audit, 7xx wire protocol (reserved for the broker), 8xx policy: 80x are sharing
 * denials, 81x configuration files; 9xx the agency API (HTTPS, docs/api.md).
 */
#ifndef SHAREHUB_ERROR_H
#define SHAREHUB_ERROR_H

/* On every function whose result must be checked (verify, decrypt, open, load). */
#define SH_WUR __attribute__((warn_unused_result))

#include <stddef.h>

typedef enum sh_err {
    SH_OK = 0,

    SH_E_NOMEM = 100,    /* an allocation failed */
    SH_E_INVAL = 101,    /* an argument is out of its documented range */
    SH_E_IO = 102,       /* a system call failed; the detail names it and errno */
    SH_E_INTERNAL = 103, /* a library (OpenSSL, LMDB) failed in an unexpected way */
    SH_E_RANGE = 104,    /* a caller buffer is too small */

    SH_E_TOO_LARGE = 200,      /* encoded message over the hard size limit */
    SH_E_MALFORMED = 201,      /* bytes are not a valid protobuf message */
    SH_E_MISSING_FIELD = 202,  /* a mandatory field is absent; detail names it */
    SH_E_BAD_FIELD = 203,      /* a field's value is out of range; detail names it */
    SH_E_SCHEMA_VERSION = 204, /* schema_version is not one this build speaks */
    SH_E_BODY_MISMATCH = 205,  /* event_type does not match the body present */
    SH_E_BAD_DATE = 206,       /* not a valid YYYY-MM-DD calendar date */
    SH_E_BAD_TEXT = 207,       /* a string is not valid UTF-8 or holds control characters */
    SH_E_UNKNOWN_FIELD = 208,  /* a field the schema does not have; detail names it */

    SH_E_BAD_NHS_NUMBER = 300,
    SH_E_BAD_UPN = 301,
    SH_E_BAD_LA_CODE = 302,
    SH_E_BAD_ORG_CODE = 303,
    SH_E_BAD_EVENT_ID = 304,
    SH_E_BAD_LA_CHILD_ID = 305,

    SH_E_KEY_MISSING = 400,     /* key file does not exist */
    SH_E_KEY_PERMISSIONS = 401, /* key file readable or writable by group or others */
    SH_E_KEY_FORMAT = 402,      /* key file content is not a key of the expected kind */
    SH_E_AUTH_FAILED = 403,     /* a sealed value failed its GCM tag: altered, or moved */
    SH_E_WRONG_KEY = 404,       /* sealed under another key (key id differs) */
    SH_E_CRYPTO = 405,          /* OpenSSL or libsodium refused an operation */
    SH_E_BAD_SIGNATURE = 406,   /* an Ed25519 signature does not verify */
    SH_E_SEAL_FORMAT = 407,     /* a sealed value is too short or of an unknown version */

    SH_E_NOT_FOUND = 500,
    SH_E_EXISTS = 501,        /* key already present where overwrite was refused */
    SH_E_MAP_FULL = 502,      /* the store reached its configured map size */
    SH_E_DISK_FULL = 503,     /* the filesystem is full; nothing of the batch was written */
    SH_E_STORE = 504,         /* LMDB failed; detail carries its message */
    SH_E_STORE_VERSION = 505, /* store written by an unknown format version */
    SH_E_STORE_CORRUPT = 506, /* the store's own metadata is damaged */
    SH_E_TXN = 507,           /* transaction misuse (read-only txn written, txn finished) */

    SH_E_AUDIT_ALTERED = 600,     /* an entry's MAC does not verify: content changed */
    SH_E_AUDIT_MISSING = 601,     /* a sequence number is absent from the chain */
    SH_E_AUDIT_REORDERED = 602,   /* an entry is stored under another sequence number */
    SH_E_AUDIT_TRUNCATED = 603,   /* the chain ends before its last signed checkpoint */
    SH_E_AUDIT_CHECKPOINT = 604,  /* a checkpoint is unsigned, mis-signed or disagrees */
    SH_E_AUDIT_FORMAT = 605,      /* an entry cannot be parsed */
    SH_E_AUDIT_ROLLED_BACK = 606, /* the log is behind or forked from a witnessed checkpoint */
    SH_E_AUDIT_EMPTY = 607,       /* the log holds no entry: it was emptied */
    SH_E_AUDIT_WRONG_STORE = 608, /* the store is not the one it was named as */
    SH_E_AUDIT_UNSIGNED = 609,    /* entries follow the last signed head */
    SH_E_AUDIT_GENESIS = 610,     /* entry 1 is not the genesis entry naming this store */
    SH_E_EVIDENCE = 611,          /* a sender's evidence does not verify over the event */
    SH_E_TIMESTAMP = 612,         /* an RFC 3161 time-stamp of a head does not check */

    SH_E_PROTOCOL = 700,          /* not a sharehub protocol message; detail says why */
    SH_E_NOT_ENROLLED = 701,      /* the peer's key is not (or no longer) enrolled */
    SH_E_SPOOFED_SOURCE = 702,    /* envelope source_org is not the authenticated organisation */
    SH_E_REPLAYED = 703,          /* an event id already used for different content */
    SH_E_UNKNOWN_EVENT = 704,     /* a receipt or ack names an event the broker does not hold */
    SH_E_UNAVAILABLE = 705,       /* the broker cannot accept now (store full, shutting down) */
    SH_E_CONNECTION_CLOSED = 706, /* the transport closed an authenticated connection */
    SH_E_BAD_SUBSCRIPTION = 707,  /* HELLO names an event type that does not exist */
    SH_E_EXPIRED = 708,           /* a delivery waited undelivered past its expiry */
    SH_E_NET_PROCESS = 709,       /* the broker's network process ended (it is restarted) */

    SH_E_DENY_NO_ISP = 800,     /* no Information Sharing Protocol covers this share */
    SH_E_DENY_NOT_ACTIVE = 801, /* the covering ISP is a draft or suspended */
    SH_E_DENY_LAPSED = 802,     /* the covering ISP is 3 months past its review date */
    SH_E_DENY_PURPOSE = 803,    /* the event's purpose is not one the ISP names */
    SH_E_DENY_BASIS = 804,      /* the event's lawful basis is not the ISP's */
    SH_E_DENY_LEVEL = 805,      /* level of need outside the ISP's range */
    SH_E_DENY_CONSENT = 806,    /* consent required and not given */
    SH_E_DENY_PARTY = 807,      /* sender or recipient is not a party to the ISP */
    SH_E_DENY_NO_PEER = 808,    /* the recipient's authority is not one this broker peers with */
    SH_E_UNSUBSCRIBED = 809,    /* permitted, but the recipient does not take this type */
    SH_E_POLICY_FILE = 810,     /* an ISP file is invalid; detail names file and problem */
    SH_E_REGISTRY_FILE = 811,   /* the enrolment registry is invalid */
    SH_E_DIRECTORY_FILE = 812,  /* the federation directory is invalid or not signed */

    SH_E_NO_CLIENT_CERT = 900,    /* an API request without a valid client certificate */
    SH_E_UNKNOWN_CLIENT = 901,    /* a valid certificate the client registry does not name */
    SH_E_OUT_OF_SCOPE = 902,      /* the client system's scopes do not allow this request */
    SH_E_NO_RESOURCE = 903,       /* no such resource (path) */
    SH_E_METHOD = 904,            /* the method is not allowed on this resource */
    SH_E_MEDIA_TYPE = 905,        /* the body is not of a content type the resource takes */
    SH_E_API_CONFIG = 906,        /* the API's configuration is invalid */
    SH_E_AGENT_UNAVAILABLE = 907, /* the agent did not answer the API in time */

    SH_E_SIGN_IN = 910,       /* a user name and password that do not match an account */
    SH_E_LOCKED = 911,        /* an account locked after repeated failed sign-ins */
    SH_E_NO_SESSION = 912,    /* not signed in, or the session has expired */
    SH_E_CSRF = 913,          /* a form posted without its session's CSRF token */
    SH_E_ROLE = 914,          /* the signed-in user's role does not allow this */
    SH_E_TRIAGE_STATE = 915,  /* a triage step the item's state does not allow */
    SH_E_LEVEL_OUTCOME = 916, /* a hub outcome that does not fit the level of need */
} sh_err;

/* An error with the detail that names the problem (a field, a path, a sequence number).
 * Details never contain personal data: they name fields, never echo their values. */
typedef struct sh_error {
    sh_err code;
    char detail[200];
} sh_error;

/* Stable symbolic name of a code, e.g. "SH_E_MISSING_FIELD"; "SH_E_UNKNOWN" if not a code. */
const char *sh_err_name(sh_err code);

/* One-line English message for a code; never NULL. */
const char *sh_err_message(sh_err code);

/* Records code and a printf-style detail into *e (if e is not NULL) and returns code, so a
 * failure path reads `return sh_error_set(err, SH_E_BAD_FIELD, "level_of_need > 4");`. */
sh_err sh_error_set(sh_error *e, sh_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears *e to SH_OK with an empty detail. */
void sh_error_clear(sh_error *e);

/* Writes "E203 SH_E_BAD_FIELD: a field's value is out of range: <detail>" into buf. */
const char *sh_error_format(const sh_error *e, char *buf, size_t len);

#endif
