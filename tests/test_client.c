/* test_client.c — the client's reading of broker messages (docs/protocol.md): fields in one
 * body frame, each a u32 BE length and its bytes; anything else refused, never overrun. */
#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "client.h"

static void *s_ctx, *s_server;
static sh_client *s_c;
static uint8_t s_rid[256];
static size_t s_rid_len;

/* A CURVE ROUTER standing in for the broker, and a client connected to it that has said PING
 * (so the server knows its routing id). */
static void s_setup(void)
{
    char spub[41], ssec[41], cpub[41], csec[41];
    cr_assert_eq(sh_curve_keypair(spub, ssec), SH_OK);
    cr_assert_eq(sh_curve_keypair(cpub, csec), SH_OK);
    s_ctx = zmq_ctx_new();
    s_server = zmq_socket(s_ctx, ZMQ_ROUTER);
    int one = 1, linger = 0;
    cr_assert_eq(zmq_setsockopt(s_server, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    cr_assert_eq(zmq_setsockopt(s_server, ZMQ_CURVE_SECRETKEY, ssec, 40), 0);
    cr_assert_eq(zmq_setsockopt(s_server, ZMQ_LINGER, &linger, sizeof linger), 0);
    cr_assert_eq(zmq_bind(s_server, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t epl = sizeof ep;
    cr_assert_eq(zmq_getsockopt(s_server, ZMQ_LAST_ENDPOINT, ep, &epl), 0);
    sh_error err;
    cr_assert_eq(sh_client_new(ep, spub, cpub, csec, &s_c, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_client_ping(s_c), SH_OK);
    int n = zmq_recv(s_server, s_rid, sizeof s_rid, 0);
    cr_assert(n > 0);
    s_rid_len = (size_t)n;
    char drop[64];
    while (zmq_getsockopt(s_server, ZMQ_RCVMORE, &one, &(size_t){sizeof one}) == 0 && one)
        zmq_recv(s_server, drop, sizeof drop, 0);
}

static void s_teardown(void)
{
    sh_client_destroy(&s_c);
    zmq_close(s_server);
    zmq_ctx_term(s_ctx);
}

/* Sends signature, command, and the given frames after it. */
static void s_send(const char *cmd, const void *const *frames, const size_t *lens, size_t n)
{
    zmq_send(s_server, s_rid, s_rid_len, ZMQ_SNDMORE);
    zmq_send(s_server, SH_PROTO_SIGNATURE, 4, ZMQ_SNDMORE);
    zmq_send(s_server, cmd, strlen(cmd), n ? ZMQ_SNDMORE : 0);
    for (size_t i = 0; i < n; i++)
        zmq_send(s_server, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

TestSuite(client, .init = s_setup, .fini = s_teardown);

Test(client, fields_come_out_of_the_body_and_bad_bodies_are_refused)
{
    sh_msg m;
    /* two fields: "0" and "ok" */
    uint8_t good[] = {0, 0, 0, 1, '0', 0, 0, 0, 2, 'o', 'k'};
    const void *f[2] = {good, good};
    size_t l[2] = {sizeof good, sizeof good};
    s_send("ERROR", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_str_eq(m.command, "ERROR");
    cr_assert_eq(m.nframes, 2);
    cr_assert_eq(m.len[1], 2);
    cr_assert_eq(memcmp(m.frame[1], "ok", 2), 0);
    cr_assert_eq(sh_msg_code(&m), 0);
    /* an empty body: no fields */
    l[0] = 0;
    s_send("PONG", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_eq(m.nframes, 0);
    /* a length past the end, a length cut short, two frames, no body frame: refused */
    uint8_t past[] = {0, 0, 0, 9, 'x'}, cut[] = {0, 0, 0, 1, 'x', 0, 0};
    const void *bad[3][2] = {{past, NULL}, {cut, NULL}, {good, good}};
    size_t badl[3][2] = {{sizeof past, 0}, {sizeof cut, 0}, {sizeof good, sizeof good}};
    size_t badn[3] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
        s_send("DELIVER", bad[i], badl[i], badn[i]);
        cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "case %d", i);
    }
    s_send("READY", NULL, NULL, 0);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "no body frame");
    /* every field up to SH_WIRE_FIELDS_MAX is kept; a body with more is not a broker
     * message (the broker never sends one) */
    uint8_t many[(SH_WIRE_FIELDS_MAX + 1) * 5];
    for (int i = 0; i <= SH_WIRE_FIELDS_MAX; i++) {
        sh_be32_put(many + 5 * i, 1);
        many[5 * i + 4] = (uint8_t)i;
    }
    const void *mf[2] = {many, good};
    size_t ml[2] = {SH_WIRE_FIELDS_MAX * 5, sizeof good};
    s_send("CONFIRM", mf, ml, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_eq(m.nframes, SH_WIRE_FIELDS_MAX);
    cr_assert_eq(m.frame[SH_WIRE_FIELDS_MAX - 1][0], SH_WIRE_FIELDS_MAX - 1);
    ml[0] = sizeof many;
    s_send("CONFIRM", mf, ml, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "one field past the limit");
    ml[0] = 5;
    s_send("CONFIRM", mf, ml, 2);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "a frame after the body");
    s_send("PONG", mf, ml, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK, "and the next message reads");
    cr_assert_eq(m.nframes, 1);
}

/* Builds a body of n one-byte fields 'a', 'b', ... into out (5 bytes each). */
static size_t s_body(uint8_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        sh_be32_put(out + 5 * i, 1);
        out[5 * i + 4] = (uint8_t)('a' + i);
    }
    return (size_t)n * 5;
}

Test(client, a_deliver_of_several_deliveries_comes_out_one_at_a_time)
{
    sh_msg m;
    const int F = SH_DELIVER_FIELDS;
    uint8_t body[(1 + 3 * SH_DELIVER_FIELDS) * 5];
    const void *f[1] = {body};
    size_t l[1] = {s_body(body, 1 + 3 * F)}; /* the head ('a', not a head: ignored), then 3 */
    s_send("DELIVER", f, l, 1);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK, "delivery %d", k);
        cr_assert_str_eq(m.command, "DELIVER");
        cr_assert_eq(m.nframes, (size_t)F);
        for (int i = 0; i < F; i++)
            cr_assert_eq(m.frame[i][0], 'b' + F * k + i);
    }
    cr_assert_eq(sh_client_recv(s_c, 100, &m), SH_E_NOT_FOUND, "three, no more");
    uint8_t head[SH_WIRE_HEAD_BYTES];
    cr_assert_eq(sh_client_head(s_c, head), 0, "a field that is not a head is not one");
    /* a body that is not a head and whole deliveries hands out none of them */
    l[0] = s_body(body, F + 2);
    s_send("DELIVER", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL);
    l[0] = 0;
    s_send("DELIVER", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "an empty DELIVER");
    l[0] = s_body(body, 1);
    s_send("DELIVER", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_E_PROTOCOL, "a head and no delivery");
    l[0] = s_body(body, 1 + F);
    s_send("DELIVER", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK, "and the next message reads");
    cr_assert_eq(m.frame[F - 1][0], 'a' + F);
    cr_assert_eq(sh_client_recv(s_c, 100, &m), SH_E_NOT_FOUND);
}

/* The broker's signed head rides first in a DELIVER and fourth in a CONFIRM; the client keeps
 * the newest (an all-zero field, sent before the broker's first commit, is none). */
Test(client, the_brokers_head_is_kept_from_deliver_and_confirm)
{
    sh_msg m;
    uint8_t body[2 * (4 + SH_WIRE_HEAD_BYTES) + SH_DELIVER_FIELDS * 5], head[SH_WIRE_HEAD_BYTES];
    uint8_t h1[SH_WIRE_HEAD_BYTES], h2[SH_WIRE_HEAD_BYTES];
    memset(h1, 0x11, sizeof h1);
    memset(h2, 0x22, sizeof h2);
    size_t n = 0;
    sh_be32_put(body, SH_WIRE_HEAD_BYTES);
    memcpy(body + 4, h1, sizeof h1);
    n = 4 + sizeof h1;
    n += s_body(body + n, SH_DELIVER_FIELDS);
    const void *f[1] = {body};
    size_t l[1] = {n};
    s_send("DELIVER", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_eq(m.frame[0][0], 'a', "the deliveries start after the head");
    cr_assert_eq(sh_client_head(s_c, head), 1);
    cr_assert_arr_eq(head, h1, sizeof h1);
    /* a CONFIRM: id, code, detail, head, an outcome line */
    n = s_body(body, 3);
    sh_be32_put(body + n, SH_WIRE_HEAD_BYTES);
    memcpy(body + n + 4, h2, sizeof h2);
    n += 4 + sizeof h2;
    n += s_body(body + n, 1);
    l[0] = n;
    s_send("CONFIRM", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_eq(m.nframes, SH_CONFIRM_LINES_AT + 1);
    cr_assert_eq(sh_client_head(s_c, head), 2);
    cr_assert_arr_eq(head, h2, sizeof h2);
    /* all zero: no head; the newest stays */
    memset(body + 3 * 5 + 4, 0, SH_WIRE_HEAD_BYTES);
    s_send("CONFIRM", f, l, 1);
    cr_assert_eq(sh_client_recv(s_c, 2000, &m), SH_OK);
    cr_assert_eq(sh_client_head(s_c, head), 2);
    cr_assert_arr_eq(head, h2, sizeof h2);
}

/* The sender's gathering rule (docs/agent.md#publishing): nothing waits behind nothing, and
 * nothing waits longer than SH_GATHER_MS or behind more than SH_GATHER_MAX - 1 others. */
Test(client, publishes_gather_only_behind_unconfirmed_ones_and_never_for_long)
{
    cr_assert_eq(sh_gather_due(0, 0, 0), 0, "nothing waiting: nothing to send");
    cr_assert_eq(sh_gather_due(0, 1, 0), 1, "nothing unconfirmed: a lone event goes at once");
    cr_assert_eq(sh_gather_due(3, 1, 0), 0, "behind unconfirmed ones it waits");
    cr_assert_eq(sh_gather_due(3, SH_GATHER_MAX - 1, SH_GATHER_MS - 1), 0);
    cr_assert_eq(sh_gather_due(3, SH_GATHER_MAX, 0), 1, "a full batch goes at once");
    cr_assert_eq(sh_gather_due(3, 1, SH_GATHER_MS), 1, "and a lone one once it has waited");
    cr_assert_eq(sh_gather_due(64, 2, 1000), 1);
}
