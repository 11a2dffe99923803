/*
 * reply.c — the broker's replies: gathered during a batch, sent once it has committed (or
 * turned into refusals when it has not), and the immediate ERROR outside any batch.
 *
 * Owns: the fields of each pending reply (bk_reply). Never: sends a reply of more than
 * SH_WIRE_FIELDS_MAX fields, or anything a batch produced before that batch committed.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"

bk_reply *bk_reply_new(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *cmd)
{
    if (b->nreplies == REPLIES_MAX || rid_len > RID_MAX) return NULL;
    bk_reply *r = &b->replies[b->nreplies++];
    sh_wire_body body = r->body; /* its buffer is kept from batch to batch */
    memset(r, 0, sizeof *r);
    r->body = body;
    sh_wire_body_clear(&r->body);
    memcpy(r->rid, rid, rid_len);
    r->rid_len = rid_len;
    snprintf(r->cmd, sizeof r->cmd, "%s", cmd);
    return r;
}

void bk_reply_add(bk_reply *r, const void *data, size_t len)
{
    if (!r) return;
    assert(r->body.nfields <= SH_WIRE_FIELDS_MAX);
    if (r->body.nfields == SH_WIRE_FIELDS_MAX) return; /* the protocol's cap (wire.h) */
    /* out of memory: the reply goes short, and its reader sees the fields it lacks */
    (void)sh_wire_body_add(&r->body, data, len);
}

void bk_reply_addf(bk_reply *r, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bk_reply_add(r, buf, n < 0 ? 0 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n);
}

void bk_confirm(bk_reply *r, const uint8_t *id, sh_err code, const char *detail)
{
    if (!r) return;
    r->code = (int)code;
    r->has_id = id != NULL;
    if (id) memcpy(r->id, id, 16);
    bk_reply_add(r, id, id ? 16 : 0);
    bk_reply_addf(r, "%d", (int)code);
    bk_reply_addf(r, "%s", detail);
    /* the broker's signed head after the commit that answers it: known only then (flush) */
    static const uint8_t none[SH_WIRE_HEAD_BYTES];
    bk_reply_add(r, none, sizeof none);
    r->head_at = r->body.len - sizeof none;
}

size_t bk_head(sh_broker *b, uint8_t out[SH_WIRE_HEAD_BYTES])
{
    memcpy(out, sh_store_id(b->store), SH_STORE_ID_BYTES);
    return sh_audit_signed_head(b->audit, out + SH_STORE_ID_BYTES) == SH_OK ? SH_WIRE_HEAD_BYTES
                                                                            : 0;
}

static void s_count_refused(sh_broker *b, sh_err code)
{
    char lab[SH_LABELS_MAX] = "";
    sh_label(lab, sizeof lab, "code", sh_err_name(code));
    sh_tally_add(&b->refused, lab, 1);
}

/* Sends signature, command and body to rid, through the network process (net.h), which
 * drops it when the peer has gone and counts it when the peer's queue is full (it does not
 * read); here EAGAIN means the network process is down (restarting). Nothing of a message is sent
 * when its first frame is refused. The fields go in one body frame (docs/protocol.md): CURVE seals
 * every frame on its own, so one frame for the fields is one seal instead of one a field. */
static void s_send(sh_broker *b, const uint8_t *rid, size_t rid_len, const char *cmd,
                   const uint8_t *body, size_t len)
{
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, len) != 0) return;
    if (len) memcpy(zmq_msg_data(&m), body, len);
    if (zmq_send(b->net, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN) b->dropped_sends++, b->dropped_total++;
        zmq_msg_close(&m);
        return;
    }
    zmq_send(b->net, SH_PROTO_SIGNATURE, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(b->net, cmd, strlen(cmd), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (zmq_msg_send(&m, b->net, ZMQ_DONTWAIT) < 0) zmq_msg_close(&m);
}

void bk_reply_flush(sh_broker *b, bk_reply *r)
{
    if (r->head_at && r->head_at + SH_WIRE_HEAD_BYTES <= r->body.len &&
        !bk_head(b, r->body.p + r->head_at))
        memset(r->body.p + r->head_at, 0, SH_WIRE_HEAD_BYTES); /* none yet: all zero */
    if (strcmp(r->cmd, "CONFIRM") == 0 && r->code != 0) s_count_refused(b, (sh_err)r->code);
    s_send(b, r->rid, r->rid_len, r->cmd, r->body.p, r->body.len);
}

void bk_reply_free(bk_reply *r)
{
    sh_wire_body_free(&r->body);
}

void bk_error_now(sh_broker *b, const uint8_t *rid, size_t rid_len, sh_err code, const char *detail)
{
    sh_wire_body body = {0};
    char c[8];
    int n = snprintf(c, sizeof c, "%d", (int)code);
    s_count_refused(b, code);
    if (sh_wire_body_add(&body, c, (size_t)n) == 0 &&
        sh_wire_body_add(&body, detail, strlen(detail)) == 0)
        s_send(b, rid, rid_len, "ERROR", body.p, body.len);
    sh_wire_body_free(&body);
}
