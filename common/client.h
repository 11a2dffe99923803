/*
 * client.h — the agent side of the sharehub wire protocol (docs/protocol.md) over ZeroMQ.
 *
 * Owns: one CURVE-secured DEALER connection to the broker, framing and parsing of protocol
 * messages. Never: retries a publish on its own (the caller's outbox decides), or hides a
 * refusal: every CONFIRM is returned with its code.
 *
 * Not thread-safe: one sh_client per thread.
 */
#ifndef SHAREHUB_CLIENT_H
#define SHAREHUB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"
#include "wire.h"

typedef struct sh_client sh_client;

/* Connects to endpoint (tcp://host:port or ipc://path). server_public is the broker's Z85
 * public key; public_key/secret_key are this agent's Z85 keypair. Connecting is asynchronous
 * (ZeroMQ reconnects by itself); the first exchange tells whether the broker admitted us. */
sh_err sh_client_new(const char *endpoint, const char *server_public, const char *public_key,
                     const char *secret_key, sh_client **out, sh_error *err)
    __attribute__((warn_unused_result));

/* As sh_client_new, for a long-lived agent: messages go only to a connection whose handshake
 * is complete (ZMQ_IMMEDIATE), and a send waits at most send_timeout_ms, failing with SH_E_IO
 * while the broker is unreachable instead of queueing without bound. */
sh_err sh_client_new_agent(const char *endpoint, const char *server_public, const char *public_key,
                           const char *secret_key, int send_timeout_ms, sh_client **out,
                           sh_error *err) __attribute__((warn_unused_result));

void sh_client_destroy(sh_client **c);

/* The ZeroMQ socket, for callers that poll it with others. */
void *sh_client_socket(sh_client *c);

/* A message from the broker, parsed. Frames point into the message and live until the next
 * sh_client_recv or sh_client_destroy. A DELIVER message may carry several deliveries: each
 * call returns the next one (SH_DELIVER_FIELDS frames) before reading the socket again, so a
 * caller drains with sh_client_recv(c, 0, &m) until SH_E_NOT_FOUND before polling the socket.
 * A body of more than SH_WIRE_FIELDS_MAX fields is refused (SH_E_PROTOCOL): the broker never
 * sends one. */
typedef struct sh_msg {
    char command[SH_WIRE_CMD_MAX + 1];
    size_t nframes; /* fields of the body */
    const uint8_t *frame[SH_WIRE_FIELDS_MAX];
    size_t len[SH_WIRE_FIELDS_MAX];
} sh_msg;

/* The broker's newest signed audit head received with a CONFIRM or DELIVER (store id, then
 * checkpoint: SH_WIRE_HEAD_BYTES) into head, and how many heads have been received (0: none,
 * head untouched). Not checked here: the count changes with every head, so a caller checks
 * a new one once. */
uint64_t sh_client_head(const sh_client *c, uint8_t head[SH_WIRE_HEAD_BYTES]);

/* Sends HELLO with a comma-separated list of event type names to receive ("*" = all). */
sh_err sh_client_hello(sh_client *c, const char *subscriptions);

/* Sends PUBLISH with an encoded envelope. The CONFIRM comes back through sh_client_recv. */
sh_err sh_client_publish(sh_client *c, const uint8_t *env, size_t len);

/* Sends n (1..SH_EVIDENCE_BATCH_MAX) PUBLISHes, each with its sender evidence, the batch signed
 * once (docs/evidence.md): one signature for the lot. A client without a key of its own
 * (sh_client_sign_with) signs with one it makes. SH_E_INVAL, SH_E_NOMEM, SH_E_CRYPTO, or the
 * first send's error. */
sh_err sh_client_publish_batch(sh_client *c, const uint8_t *const *envs, const size_t *lens,
                               size_t n);

/* When a sender's waiting publishes should go (docs/agent.md#publishing): at once when none of
 * its earlier publishes is unconfirmed; otherwise once SH_GATHER_MAX are waiting or the first
 * has waited SH_GATHER_MS, so that one signature, four verifications and one commit at each
 * hop serve several events. 1 when they should go now, else 0 (and none waiting: 0). */
#define SH_GATHER_MS  5
#define SH_GATHER_MAX 16
int sh_gather_due(size_t unconfirmed, size_t waiting, int64_t waited_ms);

/* The key publishes are signed with (borrowed: it must outlive the client): an agency's
 * signing key. */
void sh_client_sign_with(sh_client *c, const sh_signkey *k);

/* Sends ACK for a delivered event, after the agent has made it durable. */
sh_err sh_client_ack(sh_client *c, const uint8_t event_id[16]);

/* One ACK for n (1..SH_ACK_MAX) delivered events, their ids in one frame. SH_E_INVAL if n is
 * too large. */
sh_err sh_client_ack_many(sh_client *c, const uint8_t (*ids)[16], size_t n);

sh_err sh_client_ping(sh_client *c);

/* Sends WITNESS: this store's id (16 bytes) and its newest signed audit checkpoint (145
 * bytes), for the broker to record in its own chain. Answered with WITNESSED. */
sh_err sh_client_witness(sh_client *c, const uint8_t store_id[16], const uint8_t *cp, size_t len);

/* Sends arbitrary frames (tests use this to send malformed messages). */
sh_err sh_client_send_raw(sh_client *c, const void *const *frames, const size_t *lens, size_t n);

/* Waits up to timeout_ms (-1: forever) for the next message. SH_E_NOT_FOUND on timeout;
 * SH_E_PROTOCOL if the message is not a protocol message. */
sh_err sh_client_recv(sh_client *c, int timeout_ms, sh_msg *m);

/* Waits for the next message with this command, skipping others (up to timeout_ms). */
sh_err sh_client_expect(sh_client *c, const char *command, int timeout_ms, sh_msg *m);

/* The numeric code of a CONFIRM or WITNESSED (frame 1) or ERROR (frame 0) message; -1 if
 * absent. */
int sh_msg_code(const sh_msg *m);

/* Generates a CURVE keypair as Z85 text (41 bytes each with NUL). */
sh_err sh_curve_keypair(char public_key[SH_Z85_LEN + 1], char secret_key[SH_Z85_LEN + 1]);

#endif
