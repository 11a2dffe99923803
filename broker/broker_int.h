/*
 * broker_int.h — the broker's private state, shared by its files and by nothing else.
 *
 *   broker.c     the event loop, configuration, the batch (one transaction, one commit)
 *   dispatch.c   one message: who sent it, which command, its frames
 *   reply.c      replies that wait for the batch to commit; immediate errors
 *   session.c    sessions: HELLO and subscriptions, PING, the delivery window, ACK, timers
 *   publish.c    PUBLISH: decode, spoof check, dedupe, decide, minimise, outcome lines
 *   queue.c      queue entries, receipts, the delivery pump, queue depths
 *   border.c     events to and from other authorities' brokers: peer queues, FORWARD
 *   expiry.c     deliveries left undelivered past their expiry: removed, audited, reported
 *   keep.c       how long the broker keeps an event's copies; their erasure
 *   facts.c      what the broker knows about a child: consent and school on record
 *   witness.c    recording agents' audit checkpoints
 *   channel.c    the network process (net.c, a program of its own: net.h): its start,
 *                channel, keys and restart
 *   admission.c  refused and dropped connections, audited
 *   stats.c      counters, the metrics page and readiness
 *   links.c      the peer links it starts itself (--link): sharehub-link processes
 *
 * Store layout (one LMDB environment; docs/protocol.md, "The broker's store"):
 *   events  (sealed)  event id (16)          -> event record (broker_record.h)
 *   queue   (sealed)  org code (9, NUL-padded) || seq (u64 BE) -> delivery record
 *   state   (plain)   "seq"                  -> next queue sequence number (u64 BE)
 *                     "depth:" org code      -> entries in the org's queue (u64 BE)
 *                     "depths"               -> "1": the depth records are complete
                     "keep_seq"             -> the audit seq the keep sweep has read to (keep.c)
 *   subs    (plain)   org code               -> the org's HELLO subscriptions (text)
 *   consent (plain)   blind(child id) (32) || purpose (1) -> u8 consent state | i64 BE time
 *   school  (plain)   blind(child id) (32)   -> the child's school of record (org code)
 *   links   (plain)   blind(id a) (32) || blind(id b) (32) -> "" : a and b were seen together
 *                     on one accepted event (each pair both ways)
 *   witness (plain)   agent store id (16)    -> u8 n, org[n] | u64 BE seq | head mac (32)
 *   plus the store's own sh_meta and the audit log, and beside the store erase.shred, the day
 *   keys the event copies are sealed under (shred.h).
 *
 * A batch of messages is processed inside one write transaction and committed once (group
 * commit); replies and deliveries are sent only after the commit succeeds. Never: sends a
 * CONFIRM for an event that is not durable; lets a write stand whose audit entry failed.
 */
#ifndef SHAREHUB_BROKER_INT_H
#define SHAREHUB_BROKER_INT_H

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <zmq.h>

#include "audit.h"
#include "broker.h"
#include "broker_record.h"
#include "codec.h"
#include "daemon.h"
#include "evidence.h"
#include "probe.h"
#include "metrics.h"
#include "policy.h"
#include "registry.h"
#include "shred.h"
#include "store.h"
#include "wire.h"

#define BATCH_MAX   512 /* messages read into one transaction */
#define REPLIES_MAX (BATCH_MAX * 2)
#define WINDOW_MAX  4096                  /* deliveries unacknowledged per recipient */
#define RID_MAX     256                   /* bytes of a ZeroMQ routing id */
#define RECEIPT_IDS (1 + SH_REPEATED_MAX) /* events one DeliveryReceipt covers */
#define ET(x)       SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_##x

/* A delivery sent and not yet acknowledged, with what its ACK needs from the queue record
 * (so the ACK does not open the record again). */
typedef struct bk_flight {
    uint64_t seq;
    uint8_t id[16];
    int64_t sent_ms;
    int64_t accepted_ms; /* 0 when the record does not hold it */
    char sender[SH_ORG_MAX + 1];
    uint8_t receipt; /* the delivery is a receipt (no receipt for a receipt) */
    uint8_t acked;   /* its ACK committed; it leaves when every older entry has */
} bk_flight;

/* One message from the network process: parts[0] its routing id (empty for a control
 * message), key and verdict (net.h; a control message's name and data), parts[1..n) the
 * agent's frames. */
#define BK_FRAMES_MAX (1 + SH_FRAMES_WITNESS) /* routing id and the longest command's frames */
typedef struct bk_inbound {
    zmq_msg_t parts[BK_FRAMES_MAX], key, verdict;
    size_t n;
} bk_inbound;

typedef struct bk_session {
    uint8_t rid[RID_MAX]; /* ZeroMQ routing id */
    size_t rid_len;
    char org[SH_ORG_MAX + 1];
    int64_t seen_ms;
    int ready;         /* said HELLO: deliveries may flow */
    uint64_t next;     /* next queue seq to send */
    bk_flight *flight; /* the window: a ring of cfg.window entries, oldest at head */
    unsigned head, nflight;
    int64_t rewind_ms; /* an ACK was not committed: offer the queue again from its start */
} bk_session;

/* A reply or side effect that waits for the batch to commit. */
typedef enum { BK_REPLY_FRAMES = 0, BK_REPLY_ACK = 1 } bk_reply_kind;
typedef struct bk_reply {
    uint8_t rid[RID_MAX];
    size_t rid_len;
    bk_reply_kind kind;
    char cmd[SH_WIRE_CMD_MAX + 1]; /* "NONE": nothing is sent */
    sh_wire_body body;             /* its fields */
    int code;                      /* a CONFIRM's code, once added */
    uint8_t id[16];                /* a CONFIRM's event id, or an ACK's */
    int has_id;
    size_t head_at; /* a CONFIRM's head field: its offset in body, filled in when sent */
} bk_reply;

/* Counters for the metrics endpoint (docs/operations.md#metrics). A batch counts into
 * b->stage, emptied as it begins and added to b->stats only when the batch commits: the
 * counters agree with the store and its audit log. */
typedef struct bk_stats {
    uint64_t accepted; /* events accepted (not counting duplicates) */
    sh_tally queued;   /* recipient=: queue entries written, events and receipts */
    sh_tally acked;    /* recipient=: queue entries acknowledged and removed */
    sh_tally expired;  /* recipient=: queue entries removed undelivered past their expiry */
    sh_tally denied;   /* reason=,isp=: shares the policy refused */
    sh_tally forwards; /* peer=: FORWARDs taken (in the link's order) */
    sh_hist latency;   /* accepted to acknowledged by the recipient, events only */
} bk_stats;

/* A peer link this broker starts (--link LA=KEY: links.c). */
#define BK_LINKS_MAX 8
typedef struct bk_peer_link {
    char la[4];      /* the neighbouring authority */
    const char *key; /* the link's CURVE secret key file (in cfg's text) */
    pid_t pid;       /* 0 while down */
    int64_t down_ms;
    unsigned restarts;
} bk_peer_link;

typedef struct bk_depth {
    char org[SH_QKEY_ORG + 1];
    uint64_t n;
} bk_depth;

/* What one ACK message acknowledged that its senders get a receipt for. */
typedef struct bk_acked {
    size_t n;
    struct {
        char sender[SH_ORG_MAX + 1];
        uint8_t id[16];
    } e[SH_ACK_MAX];
} bk_acked;

struct sh_broker {
    sh_broker_config cfg;
    sh_wire_body deliver; /* the DELIVER being gathered by the pump (its buffer is reused) */
    void *ctx, *net;      /* net: the channel to the network process (channel.c) */
    pid_t net_pid;        /* 0 while it is down */
    int64_t net_down_ms;
    unsigned net_restarts;
    /* refused connections since the last audit entry about them (written at most once a
     * second, so a flood of bad handshakes cannot flood the log or the disk) */
    unsigned refused_key, refused_handshake, interrupted;
    int64_t refused_audit_ms;
    /* connections closed, and handshakes failed, since start: every connection that fails
     * its handshake is reported as failed before it is reported closed, so closed - failed
     * never exceeds the number of connections closed after their handshake succeeded */
    uint64_t closed_total, failed_total, dropped_audited;
    unsigned dropped_sends; /* messages refused by a full peer queue since the last log line */
    char public_key[SH_Z85_LEN + 1];
    sh_vault vault;
    sh_store *store; /* vault.store */
    sh_audit *audit; /* vault.audit */
    sh_db events, queue, state, subs, consent, school, links;
    sh_db witnessed, witness_v1; /* witness.c: sealed records; an older version's plain ones */
    sh_db evidence;              /* evidence.c: each event's sender evidence, sealed */
    sh_buf ev_sender, ev_event, ev_full; /* the pump's evidence scratch */
    sh_buf tampered;                     /* queue.c's test hook "deliver_tamper" */
    uint8_t *ev_copy;
    sh_shred *shred;       /* the day keys event copies are sealed under (keep.c) */
    sh_buf opened, whole;  /* the pump's scratch: a sealed copy opened to be sent; the
                              record of an event delivered whole */
    int64_t kept_swept_ms; /* when the keep sweep last ran */
    sh_registry *registry;
    sh_policy *policy;
    bk_session *sessions;
    size_t nsessions, capsessions;
    bk_reply *replies;
    size_t nreplies;
    uint64_t seq; /* next queue sequence number, as committed */
    bk_stats stats, stage;
    bk_depth *depths; /* entries in each recipient's queue, as committed */
    size_t ndepths, capdepths;
    sh_tally refused; /* code=: refusals sent (CONFIRM and ERROR), not in a batch's stage */
    uint64_t refused_key_total, refused_handshake_total, interrupted_total, dropped_total;
    int64_t started_ms, store_failed_ms;   /* store_failed_ms: the last commit failed then */
    sh_probe *probe;                       /* the metrics and health endpoint's process (probe.h) */
    char peers_text[2048];                 /* bk_ready_detail's answer */
    bk_peer_link peer_links[BK_LINKS_MAX]; /* links.c */
    size_t npeer_links;
    sh_evidence_cache forwarded; /* border.c: the last batch signature a FORWARD's
                                    evidence verified under (a batch shares one) */
};

/* The k-th entry of session s's window, oldest first (k < s->nflight, or the next free slot
 * when k == s->nflight < cfg.window). */
static inline bk_flight *bk_flight_at(const sh_broker *b, const bk_session *s, unsigned k)
{
    assert(k < b->cfg.window && s->nflight <= b->cfg.window);
    return &s->flight[(s->head + k) % b->cfg.window];
}

/* ---- journal.c ---- */
void bk_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends an audit entry in t. A failed append fails t (its commit reports the error) and is
 * returned: the caller stops writing for this message. */
sh_err bk_audit(sh_broker *b, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                const uint8_t *event_id, const uint8_t *child_ref, const char *actor,
                const char *peer, const char *rule, const char *detail);
/* The same, with the purpose the event was shared for (its Purpose name). */
sh_err bk_audit_for(sh_broker *b, sh_txn *t, uint8_t action, uint8_t outcome, sh_err code,
                    const uint8_t *event_id, const uint8_t *child_ref, const char *actor,
                    const char *peer, const char *rule, const char *purpose, const char *detail);

/* ---- dispatch.c ---- */
/* What the network process said of a PUBLISH (net.h): kind 'M' nothing; 'X' refused before
 * or in decoding; 'V' its evidence refused. */
typedef struct bk_verdict {
    char kind;
    sh_err code;
    int has_id;
    uint8_t id[16];
    char detail[200];
} bk_verdict;
void bk_dispatch(sh_broker *b, sh_txn *t, uint64_t *seq, bk_inbound *in);

/* ---- reply.c ---- */
bk_reply *bk_reply_new(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *cmd);
void bk_reply_add(bk_reply *r, const void *data, size_t len);
void bk_reply_addf(bk_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A CONFIRM's first three fields: the event id (when id is not NULL), the code, the detail. */
void bk_confirm(bk_reply *r, const uint8_t *id, sh_err code, const char *detail);
void bk_reply_flush(sh_broker *b, bk_reply *r);
/* The broker's signed head as CONFIRM and DELIVER carry it (store id, then the checkpoint over
 * the newest committed entry) into out: SH_WIRE_HEAD_BYTES, or 0 before the first commit. */
size_t bk_head(sh_broker *b, uint8_t out[SH_WIRE_HEAD_BYTES]);

/* ---- evidence.c ---- */
/* (a PUBLISH's sender evidence is checked in the network process: net.c)
 * A PUBLISH's evidence: kept, sealed, under the event id, in t; forgets it when the event is
 * erased. */
sh_err bk_evidence_keep(sh_broker *b, sh_txn *t, const uint8_t *id, const uint8_t *ev, size_t evlen,
                        sh_error *err);
sh_err bk_evidence_forget(sh_broker *b, sh_txn *t, const uint8_t *id, sh_error *err);
/* The evidence field of delivery d whose copy is copy: the sender's evidence for a whole copy,
 * the copy's evidence for a minimised one, none (length 0) for the broker's own receipts. *out
 * points into the broker's scratch, valid until the next call. */
sh_err bk_evidence_for(sh_broker *b, sh_txn *t, const sh_broker_delivery *d, const uint8_t *copy,
                       size_t clen, const uint8_t **out, size_t *outlen);
void bk_evidence_free(sh_broker *b);
void bk_reply_free(bk_reply *r);
/* An ERROR sent at once, outside any batch. */
void bk_error_now(sh_broker *b, const uint8_t *rid, size_t rid_len, sh_err code,
                  const char *detail);

/* ---- session.c ---- */
int bk_session_find(sh_broker *b, const uint8_t *rid, size_t rid_len);
void bk_session_drop(sh_broker *b, size_t i);
int bk_session_get(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *org);
void bk_hello(sh_broker *b, sh_txn *t, int si, const uint8_t *arg, size_t arglen, bk_reply *r);
int bk_subscribed(sh_broker *b, sh_txn *t, const char *org, int type, sh_buf *buf);
void bk_ack(sh_broker *b, sh_txn *t, int si, const uint8_t *id, bk_reply *r, bk_acked *acked);
void bk_ack_receipts(sh_broker *b, sh_txn *t, uint64_t *seq, const char *recipient,
                     bk_acked *acked);
void bk_unflight(sh_broker *b, const bk_reply *r, int64_t rewind_ms);
void bk_timers(sh_broker *b);

/* ---- publish.c ---- */
/* A PUBLISH: the envelope raw[0..len) and its sender evidence evd[0..evlen), with the network
 * process's verdict on them (kind 'M' or 'V'). */
void bk_publish(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from, const uint8_t *raw,
                size_t len, const uint8_t *evd, size_t evlen, const bk_verdict *verdict,
                bk_reply *r);

/* Appends a formatted line to text[0..cap), never past its end. */
void bk_append(char *text, size_t *used, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A CONFIRM's outcome lines from text[0..len) ('\n'-separated): at most SH_OUTCOME_LINES_MAX;
 * when there are more, the last one sent is "more <n>", n the lines not sent. */
void bk_outcome_lines(bk_reply *r, const char *text, size_t len);

/* A share permitted for another authority's organisation, waiting to cross (border.c). */
typedef struct bk_crossing {
    const sh_org *to;
    sh_decision d;
} bk_crossing;

/* A recipient the sending authority's broker named for an event it forwarded (a to= token:
 * docs/federation.md), with the data items it permitted that recipient. */
#define BK_NAMED_ITEMS 128 /* (a protocol's items for one recipient fit in 700 characters) */
typedef struct bk_named {
    char org[SH_ORG_MAX + 1];
    char rule[64];
    const char *items[BK_NAMED_ITEMS];
    size_t nitems;
} bk_named;

struct bk_refs;

/* One accepted event's shares, decided one recipient at a time (bk_route_one). */
typedef struct bk_route {
    sh_broker *b;
    sh_txn *t;
    uint64_t *seq;
    const sh_org *from;
    const sh_envelope *e;
    const uint8_t *raw;
    size_t len;
    const uint8_t *child;     /* the child's blinded reference, for the audit entries */
    uint8_t *copy, *copy2;    /* room for minimised copies: len + SH_MINIMISE_SLACK each */
    const char *const *limit; /* the items the sending authority allowed this recipient, or NULL */
    size_t nlimit;
    char *outcome; /* outcome lines gathered */
    size_t cap, *used;
    int overridden;     /* the consent decided with came from the record, not the event */
    uint32_t day;       /* the copies are sealed under this day's key (keep.c) */
    const char *border; /* the peer an event came through (its code), or NULL */
    bk_crossing *out;   /* shares with other authorities' organisations, gathered */
    size_t nout;
    sh_buf *buf;
    sh_error *err;
} bk_route;

/* sh_decide_fn for one recipient: audits the decision, queues the minimised copy, adds the
 * outcome line; non-zero (an error code, in r->err) when it could not be queued. */
int bk_route_one(void *ctx, const sh_org *to, const sh_decision *d);

/* Decides, queues, stores and audits an event accepted from `from` (raw its bytes, evd its
 * evidence): for every enrolled organisation when named is NULL, else only for the named
 * recipients another authority's broker forwarded it to (via: that peer's code). Answers r. */
void bk_accept(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *from, sh_envelope *e,
               const struct bk_refs *refs, const uint8_t *raw, size_t len, const uint8_t *evd,
               size_t evlen, const bk_named *named, size_t nnamed, const char *via, bk_reply *r);

/* ---- border.c: events to and from other authorities (docs/federation.md) ---- */
/* Queues the gathered shares r->out for each other authority's peer: one copy per authority,
 * holding what any of its recipients may see, with each recipient's to= token; audits each and
 * adds its outcome line (808 when no peer is enrolled for the authority). */
sh_err bk_border_out(bk_route *r);
/* A FORWARD from a peer: one delivery of the other authority's (body: its six fields and the
 * link's place in its order). */
void bk_forward(sh_broker *b, sh_txn *t, uint64_t *seq, const sh_org *peer, const uint8_t *body,
                size_t len, bk_reply *r);

/* ---- queue.c ---- */
/* Queues a delivery for org; retain (may be NULL) is the recipient's retention under the
 * protocol that permitted it; a copy of an event is sealed under day (keep.c), 0 for a
 * receipt, which is stored as it is. With SH_DELIVERY_WHOLE in flags no copy is stored: the
 * recipient gets the event's envelope from its record. to (NULL but for a peer's delivery)
 * names the recipients in the peer's authority (border.c). A receipt for an organisation
 * another authority serves is queued for that authority's peer, to it. */
sh_err bk_enqueue(sh_broker *b, sh_txn *t, uint64_t *seq, const char *org, const uint8_t id[16],
                  const char *sender, const char *rule, uint8_t flags, const sh_retain *retain,
                  uint32_t day, const char *to, const uint8_t *copy, size_t len, sh_error *err);
sh_err bk_receipt(sh_broker *b, sh_txn *t, uint64_t *seq, const uint8_t (*ids)[16], size_t n,
                  const char *sender, const char *recipient, int status, sh_err reason,
                  sh_error *err);
void bk_pump(sh_broker *b);
sh_err bk_depths_load(sh_broker *b, sh_error *err);
sh_err bk_depths_apply(sh_broker *b, sh_txn *t, sh_error *err);
int64_t bk_oldest_ms(sh_broker *b, sh_txn *t, const char *org);
/* Moves cursor c on the queue to the first entry of the organisation after org. */
sh_err bk_queue_next_org(sh_cursor *c, const char *org, sh_kv *kv, sh_error *err);

/* ---- keep.c ---- */
/* Opens the broker's shred file (<store>/erase.shred, made when missing). */
sh_err bk_keep_init(sh_broker *b, sh_error *err);
/* The day the copies of an event accepted at accepted_ms are sealed under (and erased). */
uint32_t bk_keep_day(const sh_broker *b, int64_t accepted_ms);
/* Seals in[0..len) for event id under day into out, which must be exactly len +
 * SH_SHRED_OVERHEAD bytes. */
sh_err bk_keep_seal(sh_broker *b, const uint8_t id[16], uint32_t day, const uint8_t *in, size_t len,
                    uint8_t *out, size_t cap, sh_error *err);
/* Opens a copy of event id sealed by bk_keep_seal into out (grown as needed): SH_E_NOT_FOUND
 * when it is erased (its day forgotten), SH_E_STORE_CORRUPT when it does not open. */
sh_err bk_keep_open(sh_broker *b, const uint8_t *id, const uint8_t *in, size_t len, sh_buf *out);
/* Erases the event copies past --keep-events and what is still queued of them, each audited,
 * then forgets the day keys before today. Run at start and every hour. */
sh_err bk_keep_sweep(sh_broker *b, int64_t now, sh_error *err);

/* ---- expiry.c ---- */
/* Once a second: removes queue entries older than their expiry (not those in a window),
 * audits each, and queues an EXPIRED receipt for the sender of each event. */
void bk_expire(sh_broker *b, int64_t now);

/* ---- facts.c ---- */
/* The child's blinded references (sh_child_refs), made once per event and handed to each of
 * the functions below: refs[0..n). */
typedef struct bk_refs {
    uint8_t v[SH_CHILD_REFS_MAX][SH_BLIND_BYTES];
    int n;
    int own; /* the first `own` are the child's own identifiers (not a mother's NHS number) */
} bk_refs;
/* Links the child's own identifiers on one accepted event to each other (links db). */
sh_err bk_links_record(sh_broker *b, sh_txn *t, const bk_refs *r, sh_error *err);
sh_err bk_consent_record(sh_broker *b, sh_txn *t, const sh_envelope *e, const bk_refs *r,
                         sh_error *err);
int bk_effective_consent(sh_broker *b, sh_txn *t, const sh_envelope *e, const bk_refs *r,
                         int *recorded);
sh_err bk_school_record(sh_broker *b, sh_txn *t, const sh_envelope *e, const sh_org *from,
                        const bk_refs *r, sh_error *err);
void bk_school_lookup(sh_broker *b, sh_txn *t, const bk_refs *r, char out[SH_ORG_MAX + 1]);

/* ---- witness.c ---- */
void bk_witness(sh_broker *b, sh_txn *t, const sh_org *from, const uint8_t *id, size_t idlen,
                const uint8_t *cp, size_t cplen, bk_reply *r);

/* ---- admission.c ---- */
/* An administrative audit entry of the broker (start, stop, reload, its network process: code
 * and outcome), in a transaction of its own; with a signed checkpoint when checkpoint is set. */
sh_err bk_admin_record(sh_broker *b, const char *what, sh_err code, int checkpoint, sh_error *err);

/* ---- channel.c: the network process ---- */

/* Starts the network process (after removing channel directories a killed broker left). */
sh_err bk_net_open(sh_broker *b, sh_error *err);
sh_err bk_net_start(sh_broker *b, sh_error *err);
/* Stops it: SIGTERM, then SIGKILL after a second. */
void bk_net_stop(sh_broker *b);
/* Sends it the registry's keys (at start and at each reload). */
void bk_net_keys(sh_broker *b);
/* Reaps a network process that died (audited, its sessions dropped) and restarts it, at most
 * once a second. */
void bk_net_watch(sh_broker *b, int64_t now);
/* Reads one message: 0 none waiting, 1 an agent's, 2 a control message, -1 a broken one;
 * bk_inbound_close after each call. */
int bk_net_recv(sh_broker *b, bk_inbound *in, int wait);
void bk_inbound_close(bk_inbound *in);
/* Acts on a control message: 1 READY, -1 FAILED (its text into why), 0 otherwise. */
int bk_net_control(sh_broker *b, bk_inbound *in, char *why, size_t cap);
void bk_audit_refused(sh_broker *b, int64_t now);

/* ---- links.c ---- */
sh_err bk_links_start(sh_broker *b, sh_error *err);
/* Reaps a link that ended (audited) and starts it again, at most once a second. */
void bk_links_watch(sh_broker *b, int64_t now);
void bk_links_stop(sh_broker *b);

/* ---- stats.c ---- */
void bk_stats_reset(bk_stats *st);
void bk_stats_merge(bk_stats *dst, const bk_stats *src);
int bk_metrics(void *ctx, FILE *f);
const char *bk_not_ready(void *ctx);
/* Each peer's state, a line each, for /readyz (docs/federation.md); "" when none is enrolled. */
const char *bk_ready_detail(void *ctx);

#endif
