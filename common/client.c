/*
 * client.c — DEALER side of docs/protocol.md.
 *
 * Owns: the ZeroMQ context and socket of one connection, and the frames of the last message
 * received. Never: sends before CURVE is configured, or blocks forever when a timeout is given.
 */
#include "client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evidence.h"

struct sh_client {
    void *ctx, *sock;
    zmq_msg_t frames[3]; /* signature, command, body */
    size_t nframes;
    const uint8_t *rest; /* deliveries of the last DELIVER not yet returned */
    size_t rest_len;
    uint8_t head[SH_WIRE_HEAD_BYTES]; /* the broker's newest signed head received */
    uint64_t head_count;              /* heads received: changes with each one */
    const sh_signkey *signer;         /* signs what it publishes (sh_client_sign_with) */
    sh_signkey *own;                  /* a key of its own, made when none was given */
};

/* Keeps a head field a CONFIRM or DELIVER carried (an empty or all-zero one is no head). */
static void s_keep_head(sh_client *c, const uint8_t *f, size_t len)
{
    static const uint8_t zero[SH_WIRE_HEAD_BYTES];
    if (len != SH_WIRE_HEAD_BYTES || memcmp(f, zero, len) == 0) return;
    memcpy(c->head, f, len);
    c->head_count++;
}

uint64_t sh_client_head(const sh_client *c, uint8_t head[SH_WIRE_HEAD_BYTES])
{
    if (c->head_count) memcpy(head, c->head, SH_WIRE_HEAD_BYTES);
    return c->head_count;
}

static void s_release(sh_client *c)
{
    for (size_t i = 0; i < c->nframes; i++)
        zmq_msg_close(&c->frames[i]);
    c->nframes = 0;
    c->rest = NULL;
    c->rest_len = 0;
}

static sh_err s_new(const char *endpoint, const char *server_public, const char *public_key,
                    const char *secret_key, int send_timeout_ms, sh_client **out, sh_error *err)
{
    *out = NULL;
    sh_client *c = calloc(1, sizeof *c);
    if (!c) return sh_error_set(err, SH_E_NOMEM, "client");
    int linger = 0, hwm = 10000, one = 1;
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_public, SH_Z85_LEN) ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, public_key, SH_Z85_LEN) ||
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret_key, SH_Z85_LEN) ||
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        (send_timeout_ms >= 0 &&
         (zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof one) ||
          zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &send_timeout_ms, sizeof send_timeout_ms))) ||
        zmq_connect(c->sock, endpoint)) {
        sh_error_set(err, SH_E_IO, "connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sh_client_destroy(&c);
        return SH_E_IO;
    }
    *out = c;
    return SH_OK;
}

sh_err sh_client_new(const char *endpoint, const char *server_public, const char *public_key,
                     const char *secret_key, sh_client **out, sh_error *err)
{
    return s_new(endpoint, server_public, public_key, secret_key, -1, out, err);
}

sh_err sh_client_new_agent(const char *endpoint, const char *server_public, const char *public_key,
                           const char *secret_key, int send_timeout_ms, sh_client **out,
                           sh_error *err)
{
    return s_new(endpoint, server_public, public_key, secret_key, send_timeout_ms, out, err);
}

void sh_client_destroy(sh_client **cp)
{
    if (!cp || !*cp) return;
    sh_client *c = *cp;
    s_release(c);
    if (c->sock) zmq_close(c->sock);
    if (c->ctx) zmq_ctx_term(c->ctx);
    sh_signkey_destroy(&c->own);
    free(c);
    *cp = NULL;
}

void sh_client_sign_with(sh_client *c, const sh_signkey *k)
{
    c->signer = k;
}

void *sh_client_socket(sh_client *c)
{
    return c->sock;
}

sh_err sh_client_send_raw(sh_client *c, const void *const *frames, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int flags = i + 1 < n ? ZMQ_SNDMORE : 0;
        while (zmq_send(c->sock, frames[i], lens[i], flags) < 0)
            if (zmq_errno() != EINTR) return SH_E_IO;
    }
    return SH_OK;
}

static sh_err s_send(sh_client *c, const char *cmd, const void *body, size_t len, int has_body)
{
    const void *f[3] = {SH_PROTO_SIGNATURE, cmd, body};
    size_t l[3] = {4, strlen(cmd), len};
    return sh_client_send_raw(c, f, l, has_body ? 3 : 2);
}

sh_err sh_client_witness(sh_client *c, const uint8_t store_id[16], const uint8_t *cp, size_t len)
{
    const void *f[4] = {SH_PROTO_SIGNATURE, "WITNESS", store_id, cp};
    size_t l[4] = {4, 7, 16, len};
    return sh_client_send_raw(c, f, l, 4);
}

sh_err sh_client_hello(sh_client *c, const char *subscriptions)
{
    return s_send(c, "HELLO", subscriptions, strlen(subscriptions), 1);
}

static sh_err s_publish(sh_client *c, const uint8_t *env, size_t len, const uint8_t *ev,
                        size_t evlen)
{
    const void *f[4] = {SH_PROTO_SIGNATURE, "PUBLISH", env, ev};
    size_t l[4] = {4, 7, len, evlen};
    return sh_client_send_raw(c, f, l, 4);
}

sh_err sh_client_publish(sh_client *c, const uint8_t *env, size_t len)
{
    return sh_client_publish_batch(c, &env, &len, 1);
}

sh_err sh_client_publish_batch(sh_client *c, const uint8_t *const *envs, const size_t *lens,
                               size_t n)
{
    if (n == 0) return SH_OK;
    if (n > SH_EVIDENCE_BATCH_MAX) return SH_E_INVAL;
    if (!c->signer && !c->own && sh_signkey_generate(&c->own) != SH_OK) return SH_E_CRYPTO;
    const sh_signkey *k = c->signer ? c->signer : c->own;
    uint8_t(*digest)[32] = malloc(n * sizeof *digest), (*seed)[32] = malloc(n * sizeof *seed);
    sh_evidence_batch *bs = malloc(n * sizeof *bs);
    uint8_t root[32];
    sh_err rc = digest && seed && bs ? SH_OK : SH_E_NOMEM;
    /* an event that cannot be walked goes without evidence: the broker refuses it, naming
     * what is wrong with the event itself */
    size_t m = 0;
    int *ok = rc ? NULL : calloc(n, sizeof *ok);
    if (!rc && !ok) rc = SH_E_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        if ((rc = sh_random(seed[i], 32)) != SH_OK) break;
        if (sh_evidence_digest(envs[i], lens[i], seed[i], digest[m]) == SH_OK) ok[i] = 1, m++;
    }
    if (!rc && m && !(rc = sh_evidence_batch_prove_all((const uint8_t(*)[32])digest, m, root, bs)))
        rc = sh_evidence_sign(k, root, &bs[0]);
    for (size_t i = 0, j = 0; !rc && i < n; i++) {
        uint8_t ev[SH_EVIDENCE_SENDER_MAX];
        size_t evlen = 0;
        if (ok[i]) {
            if (j) memcpy(bs[j].signer, bs[0].signer, 32), memcpy(bs[j].sig, bs[0].sig, 64);
            evlen = sh_evidence_sender_encode(&bs[j++], seed[i], ev, sizeof ev);
        }
        rc = s_publish(c, envs[i], lens[i], ev, evlen);
    }
    free(ok);
    free(digest);
    free(seed);
    free(bs);
    return rc;
}

int sh_gather_due(size_t unconfirmed, size_t waiting, int64_t waited_ms)
{
    return waiting > 0 &&
           (unconfirmed == 0 || waiting >= SH_GATHER_MAX || waited_ms >= SH_GATHER_MS);
}

sh_err sh_client_ack(sh_client *c, const uint8_t event_id[16])
{
    return s_send(c, "ACK", event_id, 16, 1);
}

sh_err sh_client_ack_many(sh_client *c, const uint8_t (*ids)[16], size_t n)
{
    if (n == 0) return SH_OK;
    if (n > SH_ACK_MAX) return SH_E_INVAL;
    return s_send(c, "ACK", ids, n * 16, 1);
}

sh_err sh_client_ping(sh_client *c)
{
    return s_send(c, "PING", NULL, 0, 0);
}

/* The next delivery of a DELIVER message already received and checked. */
static sh_err s_next_delivery(sh_client *c, sh_msg *m)
{
    size_t used = 0;
    memcpy(m->command, "DELIVER", 8);
    sh_err rc = sh_wire_body_read(c->rest, c->rest_len, SH_DELIVER_FIELDS, m->frame, m->len,
                                  SH_DELIVER_FIELDS, &used, &m->nframes);
    c->rest += used;
    c->rest_len -= used;
    return rc;
}

sh_err sh_client_recv(sh_client *c, int timeout_ms, sh_msg *m)
{
    memset(m, 0, sizeof *m);
    if (c->rest_len) return s_next_delivery(c, m);
    s_release(c);
    zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
    int rc;
    while ((rc = zmq_poll(&item, 1, timeout_ms)) < 0)
        if (zmq_errno() != EINTR) return SH_E_IO;
    if (rc == 0) return SH_E_NOT_FOUND;
    int more = 1, extra = 0;
    while (more) {
        zmq_msg_t scratch, *f = c->nframes < 3 ? &c->frames[c->nframes++] : &scratch;
        zmq_msg_init(f);
        while (zmq_msg_recv(f, c->sock, 0) < 0)
            if (zmq_errno() != EINTR) {
                if (f == &scratch) zmq_msg_close(f);
                return SH_E_IO;
            }
        more = zmq_msg_more(f);
        if (f == &scratch) {
            zmq_msg_close(f); /* a fourth frame: not a broker message */
            extra = 1;
        }
    }
    if (c->nframes < 2 || zmq_msg_size(&c->frames[0]) != 4 ||
        memcmp(zmq_msg_data(&c->frames[0]), SH_PROTO_SIGNATURE, 4) != 0 ||
        zmq_msg_size(&c->frames[1]) >= sizeof m->command)
        return SH_E_PROTOCOL;
    memcpy(m->command, zmq_msg_data(&c->frames[1]), zmq_msg_size(&c->frames[1]));
    /* the fields, in one body frame: u32 BE length and bytes each */
    if (c->nframes != 3 || extra) return SH_E_PROTOCOL;
    const uint8_t *p = zmq_msg_data(&c->frames[2]);
    size_t left = zmq_msg_size(&c->frames[2]), used = 0, count = 0;
    if (strcmp(m->command, "DELIVER") != 0) {
        /* every field kept; one past the limit is not a broker message */
        if (sh_wire_body_read(p, left, SH_WIRE_FIELDS_MAX + 1, m->frame, m->len, SH_WIRE_FIELDS_MAX,
                              &used, &count) != SH_OK ||
            used != left || count > SH_WIRE_FIELDS_MAX)
            return SH_E_PROTOCOL;
        m->nframes = count;
        if (strcmp(m->command, "CONFIRM") == 0 && count >= SH_CONFIRM_LINES_AT)
            s_keep_head(c, m->frame[3], m->len[3]);
        return SH_OK;
    }
    /* the broker's head, then one or more deliveries of five fields each: the whole body is
     * checked before the first is returned, so a malformed message hands out none of them */
    const uint8_t *hf[1];
    size_t hl[1];
    if (sh_wire_body_read(p, left, SIZE_MAX, hf, hl, 1, &used, &count) != SH_OK || count < 2 ||
        (count - 1) % SH_DELIVER_FIELDS != 0)
        return SH_E_PROTOCOL;
    s_keep_head(c, hf[0], hl[0]);
    c->rest = hf[0] + hl[0];
    c->rest_len = left - (size_t)(c->rest - p);
    return s_next_delivery(c, m);
}

sh_err sh_client_expect(sh_client *c, const char *command, int timeout_ms, sh_msg *m)
{
    for (;;) {
        sh_err rc = sh_client_recv(c, timeout_ms, m);
        if (rc != SH_OK) return rc;
        if (strcmp(m->command, command) == 0) return SH_OK;
    }
}

int sh_msg_code(const sh_msg *m)
{
    size_t at = strcmp(m->command, "CONFIRM") == 0 || strcmp(m->command, "WITNESSED") == 0;
    if (m->nframes <= at || m->len[at] == 0 || m->len[at] > 6) return -1;
    char buf[8];
    memcpy(buf, m->frame[at], m->len[at]);
    buf[m->len[at]] = '\0';
    return atoi(buf);
}

sh_err sh_curve_keypair(char public_key[SH_Z85_LEN + 1], char secret_key[SH_Z85_LEN + 1])
{
    return zmq_curve_keypair(public_key, secret_key) == 0 ? SH_OK : SH_E_CRYPTO;
}
