/* test_protocol.c — the wire protocol held to docs/protocol.md by a real broker process and
 * raw ZeroMQ clients: every command with exactly its frames, refusals that name the event,
 * subscriptions that must name real event types, WITNESSED built only from what the broker
 * computed, a peer gone mid-handshake recorded as a closed connection (not an attack), and a
 * write that cannot be audited refused whole (the fault points of common/fault.h). */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "broker_fixture.h"
#include "evidence.h"
#include "broker_record.h"
#include "clock.h"
#include "codec.h"
#include "crypto.h"
#include "error.h"
#include "store.h"

TestSuite(protocol, .init = bf_setup, .fini = bf_teardown, .timeout = 60);

/* Sends signature, command and the given frames as org's client; returns the client. */
static void s_raw(sh_client *c, const char *cmd, const void *const *args, const size_t *lens,
                  size_t n)
{
    const void *f[8] = {SH_PROTO_SIGNATURE, cmd};
    size_t l[8] = {4, strlen(cmd)};
    for (size_t i = 0; i < n; i++) {
        f[2 + i] = args[i];
        l[2 + i] = lens[i];
    }
    cr_assert_eq(sh_client_send_raw(c, f, l, 2 + n), SH_OK);
}

/* The code of the next ERROR, and its detail into detail (NUL-terminated). */
static int s_error(sh_client *c, char *detail, size_t cap)
{
    sh_msg m;
    cr_assert_eq(sh_client_expect(c, "ERROR", WAIT, &m), SH_OK, "no ERROR");
    snprintf(detail, cap, "%.*s", m.nframes > 1 ? (int)m.len[1] : 0,
             m.nframes > 1 ? (const char *)m.frame[1] : "");
    return sh_msg_code(&m);
}

/* PING answered: "ready" or "hello". */
static void s_pong(sh_client *c, const char *want)
{
    sh_msg m;
    cr_assert_eq(sh_client_ping(c), SH_OK);
    cr_assert_eq(sh_client_expect(c, "PONG", WAIT, &m), SH_OK, "the broker stopped answering");
    cr_assert_eq(m.nframes, 1);
    cr_assert_eq(m.len[0], strlen(want));
    cr_assert_arr_eq(m.frame[0], want, m.len[0]);
}

Test(protocol, every_command_has_exactly_its_frames)
{
    sh_client *c = bf_agent(SCHOOL);
    static const struct {
        const char *cmd;
        size_t n; /* frames after the command */
    } bad[] = {{"PING", 1},    {"PING", 2},    {"HELLO", 0}, {"HELLO", 2},
               {"PUBLISH", 1}, {"PUBLISH", 3}, {"ACK", 0},   {"ACK", 2},
               {"WITNESS", 1}, {"WITNESS", 3}, {"BOGUS", 1}, {"ping", 0}};
    uint8_t id[16] = {1};
    const void *args[3] = {id, id, id};
    size_t lens[3] = {16, 16, 16};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char detail[200];
        s_raw(c, bad[i].cmd, args, lens, bad[i].n);
        cr_assert_eq(s_error(c, detail, sizeof detail), SH_E_PROTOCOL, "%s with %zu", bad[i].cmd,
                     bad[i].n);
        if (strcmp(bad[i].cmd, "BOGUS") == 0)
            cr_assert_not_null(strstr(detail, "unknown command 'BOGUS'"), "%s", detail);
        else if (strcmp(bad[i].cmd, "ping") != 0)
            cr_assert_not_null(strstr(detail, "frames"), "%s names the frame count", detail);
    }
    s_pong(c, "ready"); /* none of it disturbed the session */
    sh_client_destroy(&c);
}

/* A PUBLISH without its sender's evidence, with evidence that is not evidence, or with the
 * evidence of another event, is refused E611 and audited; the same event signed is accepted
 * (docs/evidence.md). */
Test(protocol, an_event_is_accepted_only_with_its_senders_evidence)
{
    sh_client *c = bf_agent(SCHOOL);
    size_t l1, l2;
    uint8_t *ev1 = bf_event(2, "8819990", NULL, &l1), *ev2 = bf_event(2, "8819990", NULL, &l2);
    uint8_t junk[120] = {1, 2, 3};
    const void *args[2] = {ev1, NULL};
    size_t lens[2] = {l1, 0};
    sh_msg m;
    s_raw(c, "PUBLISH", args, lens, 2);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_EVIDENCE, "no evidence");
    args[1] = junk;
    lens[1] = sizeof junk;
    s_raw(c, "PUBLISH", args, lens, 2);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_EVIDENCE, "not evidence");
    /* the evidence of ev2, signed and sent with ev2 by a client we then read it from */
    uint8_t seed[32] = {7}, digest[1][32], root[32], sev[SH_EVIDENCE_SENDER_MAX];
    sh_evidence_batch b;
    sh_signkey *k = NULL;
    cr_assert_eq(sh_signkey_generate(&k), SH_OK);
    cr_assert_eq(sh_evidence_digest(ev2, l2, seed, digest[0]), SH_OK);
    cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])digest, 1, root, &b), SH_OK);
    cr_assert_eq(sh_evidence_sign(k, root, &b), SH_OK);
    args[1] = sev;
    lens[1] = sh_evidence_sender_encode(&b, seed, sev, sizeof sev);
    s_raw(c, "PUBLISH", args, lens, 2);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_EVIDENCE, "another event's evidence");
    args[0] = ev2;
    lens[0] = l2;
    s_raw(c, "PUBLISH", args, lens, 2);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), 0, "its own evidence");
    cr_assert_eq(sh_client_publish(c, ev1, l1), SH_OK); /* signed by the client */
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), 0);
    sh_signkey_destroy(&k);
    free(ev1);
    free(ev2);
    sh_client_destroy(&c);
}

/* An envelope made invalid after it was built (pack does not validate); malloc'd. */
static uint8_t *s_broken(int how, uint8_t id[16], size_t *len)
{
    size_t l;
    uint8_t *good = bf_event(2, "8819990", NULL, &l);
    sh_envelope *e = NULL;
    sh_error err;
    cr_assert_eq(sh_envelope_decode(good, l, &e, &err), SH_OK);
    free(good);
    if (how == 0) { /* a check digit that does not hold */
        char *nhs = e->child->nhs_number;
        nhs[9] = nhs[9] == '9' ? '0' : (char)(nhs[9] + 1);
    } else if (how == 1) {
        e->schema_version = 2;
    } else { /* a version 4 id: not the UUIDv7 the protocol wants */
        e->event_id.data[6] = (uint8_t)(0x40 | (e->event_id.data[6] & 0x0f));
    }
    memcpy(id, e->event_id.data, 16);
    *len = protobuf_c_message_get_packed_size(&e->base);
    uint8_t *out = malloc(*len);
    cr_assert_not_null(out);
    protobuf_c_message_pack(&e->base, out);
    sh_envelope_free(e);
    return out;
}

Test(protocol, a_refused_publish_names_its_event)
{
    sh_client *c = bf_agent(SCHOOL);
    static const sh_err want[3] = {SH_E_BAD_NHS_NUMBER, SH_E_SCHEMA_VERSION, SH_E_BAD_EVENT_ID};
    for (int how = 0; how < 3; how++) {
        uint8_t id[16];
        size_t len;
        uint8_t *ev = s_broken(how, id, &len);
        sh_msg m;
        bf_publish(c, ev, len, &m);
        free(ev);
        cr_assert_eq(sh_msg_code(&m), want[how], "case %d: code %d", how, sh_msg_code(&m));
        cr_assert_eq(m.len[0], 16, "case %d: the refusal names the event", how);
        cr_assert_arr_eq(m.frame[0], id, 16);
    }
    /* bytes that hold no id: the refusal has an empty id */
    sh_msg m;
    bf_publish(c, (const uint8_t *)"\x08\x01", 2, &m);
    cr_assert_neq(sh_msg_code(&m), 0);
    cr_assert_eq(m.len[0], 0);
    sh_client_destroy(&c);
}

Test(protocol, subscriptions_must_name_event_types)
{
    sh_client *c = bf_client(SCHOOL);
    static const char *const bad[] = {"SAFEGUARDING_CONCERN",
                                      "consent_change",
                                      "no_such_type",
                                      "safeguarding_concern, hub_decision",
                                      "safeguarding_concern,,hub_decision",
                                      "hub_decision,",
                                      ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char detail[300];
        const void *a[1] = {bad[i]};
        size_t l[1] = {strlen(bad[i])};
        s_raw(c, "HELLO", a, l, 1);
        cr_assert_eq(s_error(c, detail, sizeof detail), SH_E_BAD_SUBSCRIPTION, "'%s'", bad[i]);
        cr_assert_not_null(strstr(detail, "subscriptions"), "%s", detail);
        s_pong(c, "hello"); /* not ready: nothing would be delivered */
    }
    char detail[300];
    const void *a[1] = {"no_such_type"};
    size_t l[1] = {12};
    s_raw(c, "HELLO", a, l, 1);
    s_error(c, detail, sizeof detail);
    cr_assert_not_null(strstr(detail, "'no_such_type' is not an event type"), "%s", detail);
    sh_msg m;
    cr_assert_eq(sh_client_hello(c, "safeguarding_concern,hub_decision"), SH_OK);
    cr_assert_eq(sh_client_expect(c, "READY", WAIT, &m), SH_OK);
    s_pong(c, "ready");
    sh_client_destroy(&c);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_REFUSE, SH_E_BAD_SUBSCRIPTION, NULL), 8);
}

Test(protocol, witnessed_answers_only_what_the_broker_computed)
{
    sh_client *c = bf_agent(SCHOOL);
    uint8_t store_id[16], cp[SH_AUDIT_CP_BYTES];
    memset(store_id, 0x5a, sizeof store_id);
    memset(cp, 0x77, sizeof cp);
    const void *args[2] = {store_id, cp};
    size_t cases[3][2] = {{15, sizeof cp}, {16, sizeof cp}, {16, 20}};
    for (int i = 0; i < 3; i++) {
        sh_msg m;
        s_raw(c, "WITNESS", args, cases[i], 2);
        cr_assert_eq(sh_client_expect(c, "WITNESSED", WAIT, &m), SH_OK);
        cr_assert_eq(m.nframes, 3);
        cr_assert_eq(m.len[0], 1, "case %d: seq is '0', %zu bytes came", i, m.len[0]);
        cr_assert_eq(m.frame[0][0], '0');
        cr_assert_neq(sh_msg_code(&m), 0);
        for (size_t k = 0; k < m.len[2]; k++) /* the detail is the broker's own text */
            cr_assert(m.frame[2][k] >= 0x20 && m.frame[2][k] < 0x7f, "case %d byte %zu", i, k);
    }
    sh_client_destroy(&c);
}

Test(protocol, a_write_that_cannot_be_audited_is_not_made)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len), id[16];
    cr_assert(sh_envelope_peek_id(ev, len, id));
    sh_msg m;
    bf_fault("audit_append", 1);
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_IO, "refused with the append's error, got %d",
                 sh_msg_code(&m));
    cr_assert_eq(m.len[0], 16);
    cr_assert_arr_eq(m.frame[0], id, 16);
    cr_assert_eq(sh_client_expect(hub, "DELIVER", 300, &m), SH_E_NOT_FOUND, "nothing was sent");
    bf_fault("audit_append", 0);
    bf_fault("txn_commit", 1);
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_DISK_FULL);
    bf_fault("txn_commit", 0);
    /* accepted now as new, not as a duplicate: nothing of the refused attempts was stored */
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert_eq(m.len[2], strlen("accepted"));
    cr_assert_arr_eq(m.frame[2], "accepted", m.len[2]);
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_arr_eq(m.frame[0], id, 16);
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_RECEIVE, -1, NULL), 1, "one accepted event, audited");
}

/* Opens a TCP connection to the broker, sends the first bytes of a ZMTP greeting and closes
 * it: what a peer killed during its handshake looks like from the broker. */
static void s_half_handshake(void)
{
    int port = 0;
    cr_assert_eq(sscanf(bf_tcp, "tcp://127.0.0.1:%d", &port), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const uint8_t greeting[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f};
    cr_assert_eq(write(fd, greeting, sizeof greeting), (ssize_t)sizeof greeting);
    usleep(50 * 1000);
    close(fd);
}

Test(protocol, a_peer_gone_mid_handshake_is_not_recorded_as_refused)
{
    for (int i = 0; i < 3; i++)
        s_half_handshake();
    usleep(1300 * 1000); /* the broker audits connection counts once a second */
    sh_client *c = bf_agent(SCHOOL);
    s_pong(c, "ready");
    sh_client_destroy(&c);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_REFUSE, SH_E_PROTOCOL, NULL), 0,
                 "a closed handshake is not an attack");
    cr_assert_geq(
        bf_audit_count(SH_AUDIT_CONNECTION, SH_E_CONNECTION_CLOSED, "closed during the handshake"),
        1);
}

Test(protocol, bad_input_gets_its_code_and_the_broker_keeps_serving)
{
    sh_client *c = bf_agent(HEALTH);
    sh_msg m;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    bf_publish(c, junk, sizeof junk, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_MALFORMED);

    size_t len;
    uint8_t *ev = bf_event(2, "RAJ", NULL, &len);
    sh_envelope *e = NULL;
    sh_error err;
    cr_assert_eq(sh_envelope_decode(ev, len, &e, &err), SH_OK);
    struct {
        const char *what;
        sh_err want;
    } cases[] = {{"nhs", SH_E_BAD_NHS_NUMBER},
                 {"upn", SH_E_BAD_UPN},
                 {"missing", SH_E_MISSING_FIELD},
                 {"type", SH_E_BAD_FIELD}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *nhs = e->child->nhs_number, *upn = e->child->upn,
             *sg = e->safeguarding_concern->narrative;
        int type = e->event_type;
        if (i == 0) e->child->nhs_number = "9434765918";
        if (i == 1) e->child->upn = "A801200005001";
        if (i == 2) e->safeguarding_concern->narrative = "";
        if (i == 3) e->event_type = 99;
        size_t n = sharehub__v1__envelope__get_packed_size(e);
        uint8_t *buf = malloc(n);
        sharehub__v1__envelope__pack(e, buf);
        e->child->nhs_number = nhs;
        e->child->upn = upn;
        e->safeguarding_concern->narrative = sg;
        e->event_type = type;
        bf_publish(c, buf, n, &m);
        cr_assert_eq(sh_msg_code(&m), cases[i].want, "%s: got %d", cases[i].what, sh_msg_code(&m));
        free(buf);
    }
    sh_envelope_free(e);

    /* oversize: 1.5 MiB */
    uint8_t *big = calloc(1, 1536 * 1024);
    bf_publish(c, big, 1536 * 1024, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_TOO_LARGE);
    free(big);

    /* not the protocol */
    const void *f[2] = {"XXv9", "PUBLISH"};
    size_t l[2] = {4, 7};
    cr_assert_eq(sh_client_send_raw(c, f, l, 2), SH_OK);
    cr_assert_eq(sh_client_expect(c, "ERROR", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_PROTOCOL);
    const void *g[2] = {SH_PROTO_SIGNATURE, "FROBNICATE"};
    size_t gl[2] = {4, 10};
    cr_assert_eq(sh_client_send_raw(c, g, gl, 2), SH_OK);
    cr_assert_eq(sh_client_expect(c, "ERROR", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_PROTOCOL);

    /* a burst of garbage, then a good event still goes through */
    for (int i = 0; i < 200; i++)
        cr_assert_eq(sh_client_publish(c, junk, sizeof junk), SH_OK);
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, &m), SH_OK, "confirm %d", i);
        cr_assert_eq(sh_msg_code(&m), SH_E_MALFORMED);
    }
    bf_publish(c, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    free(ev);
    sh_client_destroy(&c);
}

Test(protocol, one_ack_settles_a_batch_and_a_malformed_ack_is_refused)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    sh_msg m;
    uint8_t ids[3][16];
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *ev = bf_event(2, "8819990", NULL, &len);
        bf_publish(school, ev, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0);
        free(ev);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
        memcpy(ids[i], m.frame[0], 16);
    }
    /* one ACK, three ids: one DELIVERED receipt covers all three, in the order acknowledged */
    cr_assert_eq(sh_client_ack_many(hub, (const uint8_t(*)[16])ids, 3), SH_OK);
    sh_envelope *r = NULL;
    sh_error err;
    cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
    cr_assert_eq(r->delivery_receipt->status,
                 SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED);
    cr_assert_str_eq(r->delivery_receipt->recipient_org, "881");
    cr_assert_arr_eq(r->delivery_receipt->for_event_id.data, ids[0], 16);
    cr_assert_eq(r->delivery_receipt->n_more_event_ids, 2);
    for (int i = 1; i < 3; i++)
        cr_assert_arr_eq(r->delivery_receipt->more_event_ids[i - 1].data, ids[i], 16);
    sh_envelope_free(r);
    uint8_t rid[16];
    memcpy(rid, m.frame[0], 16);
    cr_assert_eq(sh_client_ack(school, rid), SH_OK);
    /* the same ACK again changes nothing: no second receipts */
    cr_assert_eq(sh_client_ack_many(hub, (const uint8_t(*)[16])ids, 3), SH_OK);
    cr_assert_eq(sh_client_recv(school, 500, &m), SH_E_NOT_FOUND);
    /* not a whole number of ids, or too many: refused with its code */
    uint8_t junk[17] = {0};
    const void *f[3] = {SH_PROTO_SIGNATURE, "ACK", junk};
    size_t l[3] = {4, 3, sizeof junk};
    cr_assert_eq(sh_client_send_raw(hub, f, l, 3), SH_OK);
    cr_assert_eq(sh_client_expect(hub, "ERROR", WAIT, &m), SH_OK);
    cr_assert_eq(sh_msg_code(&m), SH_E_PROTOCOL);
    cr_assert_eq(sh_client_ack_many(hub, (const uint8_t(*)[16])ids, SH_ACK_MAX + 1), SH_E_INVAL);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}

/* Expiry (docs/protocol.md#expiry): a recipient that never connects has its deliveries removed
 * after the expiry, audited, and each sender gets an EXPIRED receipt naming it; a recipient
 * that is connected and being offered its deliveries is not expired under. */
Test(protocol, deliveries_nobody_collects_expire_and_the_sender_is_told)
{
    bf_stop();
    bf_cfg.expiry_ms = 1500;
    bf_start();
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    sh_msg m;
    uint8_t ids[2][16];
    for (int i = 0; i < 2; i++) {
        size_t len;
        uint8_t *ev = bf_event(2, "8819990", NULL, &len);
        bf_publish(school, ev, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0);
        cr_assert(bf_has_line(&m, "ESXPOL permit isp-sgc@1"));
        memcpy(ids[i], m.frame[0], 16);
        free(ev);
        /* the hub is offered it and holds its ACK back, past the expiry */
        cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    }
    int expired[2] = {0, 0};
    for (int n = 0; n < 2; n++) { /* police never connects: one receipt per event */
        sh_envelope *r = NULL;
        sh_error err;
        cr_assert_eq(sh_client_expect(school, "DELIVER", 4000, &m), SH_OK);
        cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
        cr_assert_eq(r->delivery_receipt->status,
                     SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_EXPIRED);
        cr_assert_str_eq(r->delivery_receipt->recipient_org, "ESXPOL");
        cr_assert_eq(r->delivery_receipt->reason_code, SH_E_EXPIRED);
        cr_assert_eq(r->delivery_receipt->n_more_event_ids, 0);
        for (int i = 0; i < 2; i++)
            expired[i] += memcmp(r->delivery_receipt->for_event_id.data, ids[i], 16) == 0;
        sh_envelope_free(r);
        cr_assert_eq(sh_client_ack(school, m.frame[0]), SH_OK);
    }
    cr_assert(expired[0] == 1 && expired[1] == 1);
    /* the hub, connected all along, still has both: its ACK settles them */
    cr_assert_eq(sh_client_ack_many(hub, (const uint8_t(*)[16])ids, 2), SH_OK);
    sh_envelope *r = NULL;
    sh_error err;
    cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
    cr_assert_eq(r->delivery_receipt->status,
                 SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED);
    cr_assert_str_eq(r->delivery_receipt->recipient_org, "881");
    sh_envelope_free(r);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_EXPIRE, SH_E_EXPIRED, "expired"), 2);
    bf_start(); /* (the fixture's teardown stops it) */
}

/* What the broker keeps of an event it keeps for --keep-events: then the envelope gives way to
 * its hash (a retry is still recognised, a replay still refused), a copy still queued is
 * removed and its sender told, each erasure audited (docs/store-format.md). */
Test(protocol, the_broker_erases_its_copies_after_keep_events)
{
    bf_stop();
    bf_cfg.expiry_ms = 1000;
    bf_cfg.keep_ms = 1500;
    bf_start();
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    sh_msg m;
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len), id[16];
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    memcpy(id, m.frame[0], 16);
    /* the hub is offered it and never acknowledges; police never connects and its copy expires */
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    sh_envelope *r = NULL;
    sh_error err;
    cr_assert_eq(sh_client_expect(school, "DELIVER", 4000, &m), SH_OK);
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
    cr_assert_str_eq(r->delivery_receipt->recipient_org, "ESXPOL");
    sh_envelope_free(r);
    cr_assert_eq(sh_client_ack(school, m.frame[0]), SH_OK);
    sh_client_destroy(&hub);
    usleep(1600 * 1000);
    bf_stop();
    bf_start(); /* its sweep runs before it serves */
    sh_client_destroy(&school);
    school = bf_agent(SCHOOL);

    /* the record holds the envelope's hash, not the envelope */
    sh_key *mk = NULL;
    sh_store *st = NULL;
    sh_db events;
    sh_txn *t = NULL;
    sh_buf b = {0};
    sh_broker_event rec;
    uint8_t sum[32];
    cr_assert_eq(sh_key_load_file(bf_cfg.master_key, &mk, &err), SH_OK);
    cr_assert_eq(sh_store_open(bf_cfg.store_dir, mk, NULL, &st, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_db(st, "events", SH_DB_SEALED, &events, &err), SH_OK);
    cr_assert_eq(sh_txn_begin(st, 0, &t, &err), SH_OK);
    cr_assert_eq(sh_txn_get(t, events, id, 16, &b, &err), SH_OK);
    cr_assert_eq(sh_broker_event_parse(b.data, b.len, &rec), 0);
    cr_assert_eq(rec.form, SH_EVENT_ERASED);
    sh_sha256(ev, len, sum);
    cr_assert(rec.env_len == 32 && memcmp(rec.env, sum, 32) == 0);
    cr_assert(memmem(b.data, b.len, ev + len - 8, 8) == NULL, "no byte of the event is left");
    sh_txn_abort(&t);
    sh_buf_free(&b);
    sh_store_destroy(&st);
    sh_key_destroy(&mk);

    /* the hub's copy, still queued, was removed: its sender learns it was not delivered */
    cr_assert_eq(sh_client_expect(school, "DELIVER", 4000, &m), SH_OK);
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
    cr_assert_eq(r->delivery_receipt->status, SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_EXPIRED);
    cr_assert_str_eq(r->delivery_receipt->recipient_org, "881");
    cr_assert_arr_eq(r->delivery_receipt->for_event_id.data, id, 16);
    sh_envelope_free(r);
    cr_assert_eq(sh_client_ack(school, m.frame[0]), SH_OK);
    hub = bf_agent(HUB);
    cr_assert_eq(sh_client_recv(hub, 800, &m), SH_E_NOT_FOUND, "nothing left for the hub");
    /* a retry of the same bytes is still a duplicate; other bytes under its id a replay */
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert_arr_eq(m.frame[2], "duplicate", 9);
    cr_assert(bf_has_line(&m, "881 permit isp-sgc@1"), "with the outcome it had");
    ev[len - 1] ^= 0x01;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_REPLAYED);
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    bf_stop();
    cr_assert_eq(bf_audit_count(SH_AUDIT_ERASE, 0,
                                "erased: the broker's copy of a "
                                "safeguarding_concern from 8819990, kept 1500ms"),
                 1);
    cr_assert_eq(bf_audit_count(SH_AUDIT_ERASE, 0, "erased: a copy still queued for 881"), 1);
    cr_assert_eq(bf_audit_count(SH_AUDIT_EXPIRE, SH_E_EXPIRED, "expired"), 1, "police's");
    bf_start(); /* (the fixture's teardown stops it) */
}

/* A DELIVER's flags field: tokens separated by single spaces; the recipient's retention in
 * retain=<count><d|m>:<erase|review>; unknown tokens are skipped; a bad retain token is an
 * error. The queue record keeps the retention between them. */
Test(protocol, deliveries_carry_their_retention)
{
    int overdue;
    sh_retain r;
    const char *ok = "overdue retain=72m:review";
    cr_assert_eq(sh_deliver_flags_parse((const uint8_t *)ok, strlen(ok), &overdue, &r), 0);
    cr_assert(overdue && r.count == 72 && r.unit == 'm' && r.review == 1);
    const char *later = "retain=14d:erase someday=1";
    cr_assert_eq(sh_deliver_flags_parse((const uint8_t *)later, strlen(later), &overdue, &r), 0);
    cr_assert(!overdue && r.count == 14 && r.unit == 'd' && r.review == 0);
    cr_assert_eq(sh_deliver_flags_parse((const uint8_t *)"", 0, &overdue, &r), 0);
    cr_assert(!overdue && r.count == 0);
    const char *bad[] = {"retain=72y:review", "retain=0d:erase",     "retain=72m:shred",
                         "retain=72m",        "retain=99999d:erase", "retain=-1d:erase"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sh_deliver_flags_parse((const uint8_t *)bad[i], strlen(bad[i]), &overdue, &r),
                     -1, "%s", bad[i]);
    char text[40];
    sh_retain six = {72, 'm', 1};
    cr_assert_eq(sh_retain_format(&six, text, sizeof text), strlen("retain=72m:review"));
    cr_assert_str_eq(text, "retain=72m:review");
    sh_retain none = {0};
    cr_assert_eq(sh_retain_format(&none, text, sizeof text), 0);
    /* the queue record between the decision and the DELIVER */
    uint8_t id[16] = {1}, copy[3] = {7, 8, 9};
    size_t len = 0;
    uint8_t *v = sh_broker_delivery_build(id, "8819990", "isp-x@1", SH_DELIVERY_OVERDUE, 1234, &six,
                                          NULL, copy, sizeof copy, &len);
    sh_broker_delivery d;
    cr_assert_eq(sh_broker_delivery_parse(v, len, &d), 0);
    cr_assert(d.retain.count == 72 && d.retain.unit == 'm' && d.retain.review == 1);
    cr_assert(d.flags & SH_DELIVERY_OVERDUE);
    cr_assert_eq(d.accepted_ms, 1234);
    cr_assert(d.copy_len == 3 && memcmp(d.copy, copy, 3) == 0);
    cr_assert_eq(sh_broker_delivery_parse(v, len - 2, &d), 0, "a shorter copy still parses");
    for (size_t cut = 0; cut < 16 + 1 + 7 + 1 + 7 + 1 + 8 + 4; cut++)
        cr_assert_eq(sh_broker_delivery_parse(v, cut, &d), -1, "cut at %zu", cut);
    free(v);
    v = sh_broker_delivery_build(id, "8819990", "isp-x@1", 0, 1234, NULL, NULL, copy, sizeof copy,
                                 &len);
    cr_assert_eq(sh_broker_delivery_parse(v, len, &d), 0);
    cr_assert_eq(d.retain.count, 0);
    free(v);
    /* a peer's delivery names its recipients in the other authority (docs/federation.md) */
    const char *to = "to=883/isp-xb@1/child,level_of_need to=883A/isp-xb@1/";
    v = sh_broker_delivery_build(id, "RAJ", "border", 0, 1234, &six, to, copy, sizeof copy, &len);
    cr_assert_eq(sh_broker_delivery_parse(v, len, &d), 0);
    cr_assert(d.flags & SH_DELIVERY_TO);
    cr_assert(d.to_len == strlen(to) && memcmp(d.to, to, d.to_len) == 0);
    cr_assert(d.retain.count == 72 && d.copy_len == 3 && memcmp(d.copy, copy, 3) == 0);
    for (size_t cut = 0; cut < len - 3; cut++)
        cr_assert_eq(sh_broker_delivery_parse(v, cut, &d), -1, "cut at %zu", cut);
    free(v);
    /* the event record's forms: as written before forms, sealed, erased */
    const uint8_t env[5] = {1, 2, 3, 4, 5};
    uint8_t *slot = NULL;
    sh_broker_event ev;
    v = sh_broker_event_build("8819990", "A permit x", env, sizeof env, SH_EVENT_PLAIN, &len, NULL);
    cr_assert_eq(sh_broker_event_parse(v, len - 1, &ev), 0, "a record without a form byte");
    cr_assert(ev.form == SH_EVENT_PLAIN && ev.env_len == 5 && memcmp(ev.env, env, 5) == 0);
    cr_assert_eq(sh_broker_event_parse(v, len, &ev), 0);
    cr_assert_eq(ev.form, SH_EVENT_PLAIN);
    v[len - 1] = 3;
    cr_assert_eq(sh_broker_event_parse(v, len, &ev), -1, "an unknown form");
    v[len - 1] = SH_EVENT_ERASED;
    cr_assert_eq(sh_broker_event_parse(v, len, &ev), -1, "an erased record holds a 32-byte hash");
    free(v);
    v = sh_broker_event_build("8819990", "A permit x", NULL, 32, SH_EVENT_ERASED, &len, &slot);
    memset(slot, 0xab, 32);
    cr_assert_eq(sh_broker_event_parse(v, len, &ev), 0);
    cr_assert(ev.form == SH_EVENT_ERASED && ev.env_len == 32 && ev.env[31] == 0xab);
    cr_assert_str_eq(ev.sender, "8819990");
    cr_assert(ev.outcome_len == 10 && memcmp(ev.outcome, "A permit x", 10) == 0);
    cr_assert_eq(sh_broker_event_parse(v, len + 0 - 2, &ev), -1, "cut");
    free(v);
    /* calendar months: 31 January plus a month is the end of February */
    int64_t jan31 = 1769860800000LL; /* 2026-01-31T12:00:00Z */
    char iso[32];
    cr_assert_str_eq(sh_clock_iso(sh_clock_add(jan31, 1, 'm'), iso, sizeof iso),
                     "2026-02-28T12:00:00Z");
    cr_assert_str_eq(sh_clock_iso(sh_clock_add(jan31, 73, 'm'), iso, sizeof iso),
                     "2032-02-29T12:00:00Z");
    cr_assert_str_eq(sh_clock_iso(sh_clock_add(jan31, 30, 'd'), iso, sizeof iso),
                     "2026-03-02T12:00:00Z");
    /* a decision "on a day" is taken at its noon, UTC */
    cr_assert_eq(sh_clock_noon("2026-01-31"), jan31);
    cr_assert_eq(sh_clock_noon("2026-02-30"), -1);
    cr_assert_eq(sh_clock_noon("31/01/2026"), -1);
}
