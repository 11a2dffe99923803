/*
 * agent_int.h — the agent's private state, shared by its files and by nothing else.
 *
 *   agent.c     configuration, the loop, start and stop
 *   journal.c   log lines, audit entries, commits; readiness and the link's loss they cause
 *   holdings.c  storing an event with its indexes (by child, by thread); sequence numbers
 *   outbox.c    local publishes made durable, drained to the broker, settled by CONFIRM
 *   inbox.c     deliveries stored in batches (one commit each) and acknowledged
 *   link.c      the broker link: HELLO, PING, the messages received
 *   witness.c   witnessing: this store's head to the broker, the broker's into this log
 *   evidence.c  the senders' evidence: each delivery checked, kept, and checked again on show
 *   local.c     the local interface: one JSON request, one JSON answer; status
 *   request.c   the pieces of requests and answers (errors, user and purpose)
 *   publish.c   the publish request (JSON to the outbox; a republish; CP-IS's hook)
 *   reads.c     reading what the agency holds (inbox, show, child), every read audited
 *   cpis.c      health's CP-IS: the flag of a child, the access notification
 *   triage.c    the hub's triage: a hub decision made from a referral
 *   tracking.c  each sent event's fate per recipient; READ receipts for what is opened here
 *   api.c       what the agency API (sharehub-api) asks beyond the CLI: acknowledging the
 *               inbox per client system, auditing the API's refusals
 *   accounts.c  the workspace's named users: role, password hash, failed sign-ins, lockout
 *   frontdoor.c the hub's front-door queue: each received referral's triage state, deadline
 *               and holder; the queue listing and assignment
 *   search.c    finding a child by name and date of birth through a blinded index
 *   stats.c     counters, the metrics page and readiness
 *   retention.c each received event's retention and the day it falls due
 *
 * Store layout (one LMDB environment, docs/agent.md):
 *   events    (sealed) event id -> agent record (agent_record.h)
 *   by_child  (plain)  blind(kind, identifier) (32) | event id (16) -> ""
 *   by_thread (plain)  correlation id (16) | event id (16)          -> ""
 *   inbox     (plain)  u64 BE arrival seq -> event id
 *   outbox    (sealed) u64 BE seq -> encoded envelope waiting for the broker's CONFIRM
 *   outcome   (plain)  event id -> the broker's answer (outcome lines or the refusal)
 *   state     (plain)  "inbox_seq", "outbox_seq" -> u64 BE
 *   tracking  (plain)  event id (16) | recipient org -> 4 x i64 BE times (queued, delivered,
 *                      read, expired; 0 not yet) | u16 BE expiry reason code
 *   read      (plain)  event id (16) -> i64 BE when its READ receipt was made
 *   acks      (plain)  client system name -> u64 BE inbox seq it has taken up to (exclusive)
 *   accounts  (sealed) account name -> JSON (role, display name, Argon2id hash, lockout)
 *   front_door (plain) queue key (26: risk, level, newest first, event id) -> item (frontdoor.c)
 *   fd_by_id  (plain)  event id (16) -> its queue key
 *   by_name   (plain)  blind("name", normalised name + date of birth) (32) | event id -> ""
 *   retention (plain)  event id (16) -> when it falls due, its retention, the rule (retention.c)
 *   retention_due (plain) i64 BE due ms | event id (16) -> ""
 * Never: acknowledges a delivery before it is durable here; drops an outbox entry before the
 * broker has answered it with a final code; lets a write stand whose audit entry failed.
 */
#ifndef SHAREHUB_AGENT_INT_H
#define SHAREHUB_AGENT_INT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "agent.h"
#include "agent_record.h"
#include "audit.h"
#include "client.h"
#include "codec.h"
#include "daemon.h"
#include "evidence.h"
#include "probe.h"
#include "ident.h"
#include "metrics.h"
#include "shred.h"
#include "store.h"
#include "yaml.h"

#define ET(x)    SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x
#define WINDOW   64                 /* publishes sent to the broker and not yet confirmed */
#define USER_MAX SH_AUDIT_SHORT_MAX /* bytes of a user or purpose named in a request */

enum { ROLE_EDUCATION = 1, ROLE_HEALTH = 2, ROLE_SOCIAL_CARE = 3 };

typedef struct y_broker {
    char *endpoint, *public_key;
} y_broker;

typedef struct y_locality {
    char *name;
    char **referrers;
    unsigned referrers_count;
} y_locality;

typedef struct y_front_door {
    char *working_days, *day_ends, *due_soon;
    char **bank_holidays;
    unsigned bank_holidays_count;
    y_locality *localities;
    unsigned localities_count;
} y_front_door;

typedef struct y_config {
    char *org;
    int role;
    y_broker *broker;
    char *curve_key, *store, *master_key, *sign_key, *socket, *subscriptions, *http;
    char *senders;      /* the senders' signing keys this agency trusts (evidence.c) */
    char *socket_group; /* its members may use the local socket, each as themselves */
    char *erase_keys;   /* the shred file of day keys (default <store>/erase.shred) */
    char *heartbeat_text, *witness_text; /* read as text, parsed strictly (cli_number) */
    unsigned heartbeat_ms, witness_ms;
    y_front_door *front_door;
    int log_level;
} y_config;

/* The front door's deadline rules (frontdoor.c), read from front_door: in the configuration. */
#define FD_HOLIDAYS_MAX 200
typedef struct ag_fd_rules {
    int working_days;    /* a decision is due this many working days after arrival (0-10) */
    int end_minute;      /* ... at this minute of the day, local time (default 17:00) */
    int64_t due_soon_ms; /* open items due within this are "due soon" (default 4 h) */
    char holidays[FD_HOLIDAYS_MAX][11]; /* YYYY-MM-DD: not working days */
    unsigned nholidays;
    int64_t memo_minute, memo_deadline; /* the last answer, by the minute of arrival (+1: 0 none) */
} ag_fd_rules;

typedef struct ag_flight {
    uint64_t seq;
    uint8_t id[16];
    int64_t sent_ms;
} ag_flight;

/* Deliveries drained from the broker together are stored in one write transaction (group
 * commit: one fsync for the batch) and acknowledged together once it has committed. */
#define DELIVER_BATCH SH_ACK_MAX
_Static_assert(DELIVER_BATCH <= SH_ACK_MAX, "one ACK acknowledges a whole batch");
/* The broker's CONFIRMs read in the same turn are recorded in that transaction too, and
 * counted once it has committed. */
#define CONFIRM_BATCH 256
typedef struct ag_batch {
    sh_txn *t;
    uint64_t inbox_seq; /* the next arrival number inside t */
    size_t n;
    uint8_t ack[DELIVER_BATCH][16];
    uint64_t stored;    /* new events in t (not redeliveries) */
    uint64_t due;       /* STORED receipts noted as due in t (receipts.c) */
    uint64_t delivered; /* events of ours the DELIVERED receipts in t cover */
    sh_hist latency;    /* their delivery latency, counted if t commits */
    size_t nconfirm;    /* CONFIRMs recorded in t */
    uint64_t settled, accepted;
    sh_tally refused, denied; /* as the agent's, for the CONFIRMs in t */
    sh_hist confirm_latency;
} ag_batch;

/* Local publishes read in one turn are written in the turn's transaction (the broker's
 * deliveries and CONFIRMs are in it too) and answered once it has committed: one fsync for
 * the lot. */
#define LOCAL_BATCH 64
#define ID_MAX      256 /* bytes of a ZeroMQ routing id */
typedef struct ag_pending {
    uint8_t id[ID_MAX];
    size_t id_len;
    json_object *out, *req;
} ag_pending;
typedef struct ag_local {
    unsigned n;  /* publishes written: outbox seqs a->outbox_seq .. a->outbox_seq + n - 1 */
    unsigned np; /* answers waiting for the commit */
    ag_pending p[LOCAL_BATCH];
} ag_local;

struct sh_agent {
    y_config *cfg;
    sh_vault vault;
    sh_store *store; /* vault.store */
    sh_audit *audit; /* vault.audit */
    sh_db events, by_child, by_thread, inbox, outbox, outcome, state, tracking, read, acks;
    sh_db accounts, front_door, fd_by_id, by_name, retention, retention_due;
    sh_db stored_due; /* receipts.c: events stored whose STORED receipt is not yet made */
    uint64_t due;     /* notes in stored_due */
    int64_t due_ms;   /* when the oldest of them was noted, near enough (0: none) */
    sh_shred *shred;  /* day keys: received copies to be erased are sealed under their day */
    int64_t swept_ms; /* when retention was last swept */
    ag_fd_rules fd;
    sh_client *broker;
    void *ctx, *rep;
    int connected;
    int64_t heard_ms, hello_ms, ping_ms, witness_ms;
    int64_t retry_ms;          /* the broker asked us to retry: no resend before this time */
    uint64_t witnessed_seq;    /* newest checkpoint the broker has recorded */
    struct ag_sender *senders; /* evidence.c: the senders list, and the last batch verified */
    size_t nsenders;
    sh_evidence_cache ev_cache;
    sh_db evidence;
    /* the broker's newest signed head seen (witness.c): store id and checkpoint */
    uint8_t bhead[SH_WIRE_HEAD_BYTES];
    int bhead_have, bhead_dirty;           /* one is held; it is newer than the last recorded */
    uint64_t bhead_count;                  /* sh_client_head's count when last looked at */
    uint64_t bhead_alarm_seq;              /* the newest head held when an alarm was raised */
    uint8_t bhead_bad[SH_WIRE_HEAD_BYTES]; /* that head, to be audited with the next commit */
    int bhead_bad_pending;
    int64_t bhead_recorded_ms; /* when one was last recorded in this log */
    uint64_t inbox_seq, outbox_seq;
    ag_flight flight[WINDOW];
    unsigned nflight;
    int64_t gather_ms;       /* since when publishes have waited behind those in flight (0: none) */
    int64_t store_failed_ms; /* the last commit failed then (disk or map full); 0 when it works */
    /* metrics (docs/operations.md#metrics), each counted once its write has committed */
    uint64_t outbox0;         /* outbox entries when the agent started */
    uint64_t queued, settled; /* entries put into the outbox, and removed by a CONFIRM */
    uint64_t sent, batches;   /* PUBLISHes sent, and the signed batches they went in */
    uint64_t accepted;        /* of those settled: accepted by the broker */
    uint64_t received;        /* deliveries stored */
    uint64_t delivered;       /* our events recipients acknowledged, from DELIVERED receipts */
    sh_tally refused;         /* code=,by=: refusals by the broker, and of local requests */
    sh_tally denied;          /* reason=,isp=: recipients the broker's policy refused */
    sh_hist confirm_latency;  /* stored in the outbox to confirmed by the broker */
    sh_hist delivery_latency; /* the sender's published_at to stored here */
    int64_t started_ms;
    sh_probe *probe; /* the metrics and health endpoint's process (probe.h) */
    ag_batch batch;  /* the turn's transaction: deliveries, CONFIRMs, local publishes (large:
                        kept here, not on the stack) */
    ag_local local;  /* the local publishes in it, waiting for their answers */
};

/* ---- journal.c ---- */
/* logfmt lines on stderr (common/log.h), naming this agency; never personal data. */
void ag_log_event(const sh_agent *a, const char *level, const uint8_t *event_id, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
#define ag_log(a, level, ...) ag_log_event(a, level, NULL, __VA_ARGS__)
/* Appends an audit entry in t. A failed append fails t (its commit reports the error) and is
 * returned: the caller stops writing. */
sh_err ag_audit(sh_agent *a, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                const uint8_t *id, const uint8_t *child, const char *user, const char *peer,
                const char *purpose, const char *rule, const char *detail);
/* Commits t and records whether the store took it (the agent's readiness and the
 * store_writable metric); a commit that works after failures asks the broker to resend. */
sh_err ag_commit(sh_agent *a, sh_txn **t, sh_error *err);
/* While the store refuses writes: one audited write a STORE_PROBE_MS to learn when it takes
 * them again. */
#define STORE_PROBE_MS 1000
void ag_store_probe(sh_agent *a);
/* The broker is gone (why, for the log): logged once, when the agent was connected. */
void ag_link_down(sh_agent *a, const char *why);

/* ---- holdings.c ---- */
sh_err ag_put_seq(sh_agent *a, sh_txn *t, const char *key, uint64_t v, sh_error *err);
sh_err ag_load_seq(sh_agent *a, const char *key, uint64_t *v, sh_error *err);
sh_err ag_store_event(sh_agent *a, sh_txn *t, int direction, const char *peer, const char *rule,
                      uint8_t flags, const sh_envelope *e, const uint8_t *raw, size_t len,
                      const uint8_t (*refs)[SH_BLIND_BYTES], int nr, sh_error *err);

/* ---- retention.c ---- */
/* The record of event id with its envelope opened: r->env points into b (the caller frees
 * b). SH_E_NOT_FOUND when there is none, or it was erased (its day key forgotten);
 * SH_E_STORE_CORRUPT when it cannot be parsed or opened. */
sh_err ag_record_get(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_agent_record *r, sh_buf *b,
                     sh_error *err);
/* The same for a record already read and parsed (r from v): opens its envelope into b when it
 * is sealed under a day key, else leaves r as it is. */
sh_err ag_record_open(sh_agent *a, const uint8_t id[16], sh_agent_record *r, sh_buf *b);
/* The envelope raw[0..len) of a received event sealed under the key of the day its retention
 * ends (erase_day), into a new buffer (*out, *outlen; free()): "u32 BE day | sealed". */
sh_err ag_seal_for_day(sh_agent *a, const uint8_t id[16], uint32_t erase_day, const uint8_t *raw,
                       size_t len, uint8_t **out, size_t *outlen, sh_error *err);
/* Erases what has fallen due by now_ms (and marks what is due for review), in one transaction
 * each of up to 1,000, each with its audit entry; then forgets the day keys of the days before
 * today that nothing still needs. The counts, when not NULL. */
sh_err ag_retain_sweep(sh_agent *a, int64_t now_ms, size_t *erased, size_t *reviewed,
                       sh_error *err);
/* Records that the received event id, permitted under rule, is kept for r from stored_ms (a
 * retention that says nothing records nothing). */
sh_err ag_retain_schedule(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *rule,
                          const sh_retain *r, int64_t stored_ms, sh_error *err);
/* 1 with when id falls due and its retention, or 0 when none is recorded. */
int ag_retain_get(sh_agent *a, sh_txn *t, const uint8_t id[16], int64_t *due_ms, sh_retain *r);
/* Removes the received copy id (e, its envelope, for its indexes; may be NULL) and every index
 * that leads to it. */
sh_err ag_retain_erase(sh_agent *a, sh_txn *t, const uint8_t id[16], const sh_envelope *e,
                       sh_error *err);
/* Seals the received copy id again, under the key of day. */
sh_err ag_record_reseal(sh_agent *a, sh_txn *t, const uint8_t id[16], uint32_t day, sh_error *err);
/* Removes the retention_due entry that holds a copy waiting for review (its sealed day's). */
sh_err ag_retain_release(sh_agent *a, sh_txn *t, const uint8_t id[16], sh_error *err);

/* ---- review.c ---- */
json_object *ag_op_review(sh_agent *a, json_object *req);
json_object *ag_op_review_due(sh_agent *a, json_object *req);

/* ---- outbox.c ---- */
sh_err ag_complete(sh_agent *a, sh_envelope *e, uint8_t idbuf[16], sh_error *err);
sh_err ag_publish_env(sh_agent *a, sh_envelope *e, const char *user, const char *purpose,
                      sh_error *err);
sh_err ag_publish_marked(sh_agent *a, sh_envelope *e, const char *user, const char *purpose,
                         const uint8_t *read_of, const char *client, sh_error *err);
/* Writes a locally made envelope into t: the sent copy with its indexes, the outbox entry seq,
 * the read mark (read_of) and the audit entry. The caller commits t. */
sh_err ag_publish_put(sh_agent *a, sh_txn *t, uint64_t seq, sh_envelope *e, const char *user,
                      const char *purpose, const uint8_t *read_of, const char *client,
                      sh_error *err);
void ag_drain(sh_agent *a);
/* How long the loop may sleep before what gathers in the outbox is due (ms), or -1. */
int ag_gather_wait_ms(const sh_agent *a, int64_t now);
/* Records the broker's CONFIRM in the batch's transaction (begun if need be). */
void ag_on_confirm(sh_agent *a, const sh_msg *m, ag_batch *bt);
/* Counts a CONFIRM into the batch's counters (added to the agent's when it commits). */
void ag_count_confirm(ag_batch *bt, const sh_msg *m, int code, int64_t stored_ms);

/* ---- receipts.c ---- */
/* Notes in t that the event id from sender was stored: its STORED receipt is due. */
sh_err ag_receipt_due(sh_agent *a, sh_txn *t, const char *sender, const uint8_t id[16],
                      sh_error *err);
/* Counts the notes left from before a restart. */
sh_err ag_receipts_load(sh_agent *a, sh_error *err);
/* Makes the receipts due (a full one, or any once the oldest note has waited a second) and
 * puts them in the outbox. Never inside another write transaction. */
void ag_receipts_send(sh_agent *a, int64_t now);

/* ---- inbox.c ---- */
/* The batch's transaction, begun when it is not yet; NULL when the store refuses one. */
sh_txn *ag_batch_txn(sh_agent *a, ag_batch *bt);
void ag_flush(sh_agent *a, ag_batch *bt);
void ag_on_deliver(sh_agent *a, const sh_msg *m, ag_batch *bt);

/* ---- evidence.c ---- */
/* Reads the senders list (config `senders`), if one is configured. */
sh_err ag_senders_load(sh_agent *a, sh_error *err);
void ag_senders_free(sh_agent *a);
/* Checks a delivery's copy against the evidence it came with (docs/evidence.md) and the key
 * against the senders list; on SH_OK fills signer (zero for the broker's unsigned receipts).
 * SH_E_EVIDENCE names what failed. */
sh_err ag_evidence_check(sh_agent *a, const uint8_t *copy, size_t clen, const uint8_t *ev,
                         size_t evlen, const sh_envelope *e, const char *rule,
                         uint8_t signer[SH_SIGN_PUB_BYTES], sh_error *err);
/* Keeps a delivery's evidence, sealed, in t (nothing for none). */
sh_err ag_evidence_keep(sh_agent *a, sh_txn *t, const uint8_t *id, const uint8_t *ev, size_t evlen,
                        sh_error *err);
/* Where a received event came from, checked again from the evidence kept: one line into out
 * ("proven: signed by 8819990 with key …", "NOT PROVEN: …"). */
sh_err ag_evidence_origin(sh_agent *a, sh_txn *t, const uint8_t *id, const uint8_t *copy,
                          size_t clen, const sh_envelope *e, const char *rule, char *out,
                          size_t cap);

/* ---- witness.c ---- */
void ag_witness(sh_agent *a);
void ag_on_witnessed(sh_agent *a, const sh_msg *m);
/* Looks at the broker head the last messages carried: a newer one is kept (to be recorded);
 * one that went back is an audited alarm. */
void ag_broker_head_seen(sh_agent *a);
/* Records the kept broker head in t (a `witness` entry and state "broker_head") if it is newer
 * than the last recorded and a second has passed since, or now_anyway. */
sh_err ag_broker_head_record(sh_agent *a, sh_txn *t, int now_anyway, sh_error *err);
/* Audits a broker head that went back in a transaction of its own, when no batch took it. */
void ag_broker_head_alarm(sh_agent *a);
/* Reads the newest broker head recorded, at start. */
void ag_broker_head_load(sh_agent *a);
void ag_broker_io(sh_agent *a);
void ag_timers(sh_agent *a);

/* ---- request.c ---- */
json_object *ag_error_json(sh_err code, const char *detail);
json_object *ag_ok(void);
const char *ag_str(json_object *req, const char *key);
/* A short text argument (user, purpose): 1 to USER_MAX bytes of clean text. NULL when it is
 * good (or absent and not required; *out NULL then), else the error to answer with. */
json_object *ag_text_arg(json_object *req, const char *key, int required, const char *what,
                         const char **out);
/* The same for longer text (a rationale): up to max bytes. */
#define TEXT_MAX 2000
json_object *ag_text_arg_max(json_object *req, const char *key, int required, const char *what,
                             size_t max, const char **out);
json_object *ag_require_reader(json_object *req, const char **user, const char **purpose);
/* The audit detail of a request: what, and "what via api:<client>" when the agency API made
 * it for an authenticated client system (docs/agent.md). */
#define VIA_MAX (USER_MAX + 80)
const char *ag_via(json_object *req, const char *what, char *buf, size_t cap);

/* ---- publish.c ---- */
/* A publish request; with lb, written into the turn's transaction (a->batch: answered when
 * it commits, failed if it does not), else in a transaction of its own. */
json_object *ag_op_publish(sh_agent *a, json_object *req, ag_local *lb);

/* ---- local.c ---- */
void ag_local_io(sh_agent *a);
/* The turn's transaction committed (rc 0) or failed (rc, err): the local publishes in it are
 * counted and answered. */
void ag_local_settled(sh_agent *a, sh_err rc, const sh_error *err);

/* ---- reads.c ---- */
json_object *ag_op_inbox(sh_agent *a, json_object *req);
json_object *ag_op_show(sh_agent *a, json_object *req);
json_object *ag_op_child(sh_agent *a, json_object *req);
json_object *ag_op_item(sh_agent *a, json_object *req);

/* ---- cpis.c ---- */
/* A child's current CP-IS flag: its type (FlagType, 0 when none), the status event that set
 * it, and the responsible local authority with its contact numbers. */
typedef struct ag_flag {
    int type;
    uint8_t event_id[16];
    int64_t at_ms;
    char start[11];
    char la[8];
    char office[40], out_of_hours[40];
} ag_flag;
/* The flag for this child (its blinded NHS number or other reference); returns f->type != 0. */
int ag_flag_for(sh_agent *a, sh_txn *t, const uint8_t ref[SH_BLIND_BYTES], ag_flag *f);
/* Queues the access notification of a flagged child seen at site (NULL: this agency) in
 * setting: after an attendance (attendance names it) or a flag lookup (attendance NULL). */
sh_err ag_cpis_notify(sh_agent *a, const char *nhs, const char *dob, const ag_flag *f,
                      const char *site, int setting, const ProtobufCBinaryData *attendance,
                      ProtobufCBinaryData correlation, uint8_t nid[16], sh_error *err);
/* After a health agent published an unscheduled-care attendance of a flagged child: queues
 * the access notification to its responsible LA and names it in out. */
void ag_cpis_attendance(sh_agent *a, const sh_envelope *e, json_object *out);

/* ---- triage.c ---- */
json_object *ag_op_triage(sh_agent *a, json_object *req);

/* ---- tracking.c ---- */
/* The CONFIRM of event id was accepted with these outcome lines: each permitted recipient is
 * queued now. */
sh_err ag_track_confirm(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *lines,
                        sh_error *err);
/* A receipt from peer arrived: the events of ours it names move on (delivered, read,
 * expired). */
sh_err ag_track_receipt(sh_agent *a, sh_txn *t, const char *peer, const sh_envelope *e,
                        sh_error *err);
/* The tracking of event id: one object per recipient its outcome lines name. */
json_object *ag_tracking_json(sh_agent *a, sh_txn *t, const uint8_t id[16], const char *lines,
                              size_t len);
/* The first time a person opens event id (received here): its READ receipt, published. */
sh_err ag_read_receipt(sh_agent *a, const uint8_t id[16], const char *user, sh_error *err);

/* ---- api.c ---- */
json_object *ag_op_ack(sh_agent *a, json_object *req);
json_object *ag_op_refused(sh_agent *a, json_object *req);
json_object *ag_op_audit(sh_agent *a, json_object *req);
/* The inbox seq client has acknowledged up to (exclusive); 0 when none. */
uint64_t ag_acked(sh_agent *a, sh_txn *t, const char *client);

/* ---- accounts.c ---- */
enum { ACC_NONE = 0, ACC_PRACTITIONER, ACC_MANAGER, ACC_READ_ONLY, ACC_AUDITOR };
#define ACCOUNT_NAME_MAX 64
#define LOCK_AFTER       5              /* failed sign-ins in a row that lock an account */
#define LOCK_MS          (15 * 60000LL) /* for this long */
const char *ag_role_name(int role);
/* The role of account name (ACC_NONE when there is none, or it is disabled); its display name
 * into display (ACCOUNT_NAME_MAX + 1 bytes) when display is not NULL. */
int ag_account_role(sh_agent *a, sh_txn *t, const char *name, char *display);
/* The "user" of req as an account whose role is one of the allowed (a bit per role): NULL and
 * *role set, or the error to answer with. */
json_object *ag_require_account(sh_agent *a, json_object *req, unsigned allowed, const char **user,
                                int *role);
#define ROLES(...) ag_role_bits((int[]){__VA_ARGS__, -1})
unsigned ag_role_bits(const int *roles);
json_object *ag_op_account_set(sh_agent *a, json_object *req);
json_object *ag_op_account_get(sh_agent *a, json_object *req);
json_object *ag_op_sign_in(sh_agent *a, json_object *req);
json_object *ag_op_accounts(sh_agent *a, json_object *req);

/* ---- frontdoor.c ---- */
enum { FD_OPEN = 1, FD_ASSIGNED = 2, FD_DECIDED = 3 };
#define FD_KEY 26
typedef struct ag_fd_item {
    uint8_t id[16];
    int state, type, immediate, level;
    int64_t received_ms, deadline_ms, assigned_ms, decided_ms;
    uint8_t decision[16]; /* the newest decision (an amendment replaces it) */
    unsigned amendments;
    char referrer[SH_ORG_MAX + 1], locality[33];
    char assignee[ACCOUNT_NAME_MAX + 1], assigned_by[ACCOUNT_NAME_MAX + 1];
    char decided_by[ACCOUNT_NAME_MAX + 1];
} ag_fd_item;
sh_err ag_fd_rules_load(const y_front_door *y, ag_fd_rules *r, sh_error *err);
/* The decision deadline of something received at received_ms (local time, the rules' working
 * days and bank holidays). */
int64_t ag_fd_deadline(ag_fd_rules *r, int64_t received_ms);
/* A received referral or concern at the hub joins the queue (others are not front-door
 * items: nothing is done). Inside t, with the delivery. */
sh_err ag_fd_arrived(sh_agent *a, sh_txn *t, const sh_envelope *e, const char *peer, int64_t at_ms,
                     sh_error *err);
/* The item of event id: 1 and *it (and its key) when the queue holds it, 0 when not. */
int ag_fd_get(sh_agent *a, sh_txn *t, const uint8_t id[16], ag_fd_item *it, uint8_t key[FD_KEY]);
sh_err ag_fd_put(sh_agent *a, sh_txn *t, const ag_fd_item *it, const uint8_t key[FD_KEY],
                 sh_error *err);
json_object *ag_fd_json(sh_agent *a, const ag_fd_item *it, int64_t now);
json_object *ag_op_queue(sh_agent *a, json_object *req);
json_object *ag_op_assign(sh_agent *a, json_object *req);

/* ---- search.c ---- */
/* The blinded name key of a child (normalised given and family name, date of birth): 0 and
 * out, or -1 when the child lacks one of the three. */
int ag_name_key(sh_store *s, const char *given, const char *family, const char *dob,
                uint8_t out[SH_BLIND_BYTES]);
/* Indexes (by_name, the front door) built for events stored before they existed: once. */
sh_err ag_indexes_upgrade(sh_agent *a, sh_error *err);
json_object *ag_op_find(sh_agent *a, json_object *req);

/* ---- stats.c ---- */
void ag_count_refused(sh_agent *a, int code, const char *by);

int ag_metrics(void *ctx, FILE *f);
const char *ag_not_ready(void *ctx);

#endif
