/* test_broker.c — a real broker process (forked, its own store and sockets) and real ZeroMQ
 * clients over tcp on loopback and ipc: admission by CURVE key, revocation on SIGHUP, spoofed
 * sources, routing and minimisation under the ISPs, every kind of bad input, idempotent
 * republish, redelivery after a missing ACK, catch-up after a broker restart, receipts, and
 * an audit log that verifies afterwards. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "audit.h"
#include "broker.h"
#include "client.h"
#include "codec.h"
#include "broker_fixture.h"
#include "synth.h"
#include "testutil.h"

TestSuite(broker, .init = bf_setup, .fini = bf_teardown, .timeout = 60);

Test(broker, enrolled_keys_are_admitted_others_refused)
{
    sh_client *c = bf_client(HEALTH);
    sh_msg m;
    cr_assert_eq(sh_client_ping(c), SH_OK);
    cr_assert_eq(sh_client_expect(c, "PONG", WAIT, &m), SH_OK);
    sh_client_destroy(&c);
    /* a key nobody enrolled: the CURVE handshake is refused, nothing comes back */
    char p2[41], s2[41];
    cr_assert_eq(sh_curve_keypair(p2, s2), SH_OK);
    sh_client *stranger = NULL;
    sh_error err;
    cr_assert_eq(sh_client_new(bf_tcp, bf_broker_pub, p2, s2, &stranger, &err), SH_OK);
    cr_assert_eq(sh_client_ping(stranger), SH_OK);
    cr_assert_eq(sh_client_recv(stranger, 1000, &m), SH_E_NOT_FOUND);
    sh_client_destroy(&stranger);
    /* the right key over ipc works too */
    c = bf_client_at(SCHOOL, bf_ipc);
    cr_assert_eq(sh_client_ping(c), SH_OK);
    cr_assert_eq(sh_client_expect(c, "PONG", WAIT, &m), SH_OK);
    sh_client_destroy(&c);
}

Test(broker, routes_minimises_delivers_and_receipts)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB), *police = bf_agent(POLICE);
    sh_client *health = bf_agent(HEALTH);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len);
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "refused: %.*s", (int)m.len[2], m.frame[2]);
    cr_assert(bf_has_line(&m, "881 permit isp-sgc@1"));
    cr_assert(bf_has_line(&m, "ESXPOL permit isp-sgc@1"));
    cr_assert(!bf_has_line(&m, "RAJ permit isp-sgc@1"));

    /* the hub sees the whole concern */
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_arr_eq(m.frame[0], ev + 2, 16, "event id"); /* field 1 tag + length precede it */
    cr_assert_eq(m.len[1], 7);
    cr_assert_arr_eq(m.frame[1], "8819990", 7, "sender");
    sh_envelope *e = NULL;
    sh_error err;
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &e, &err), SH_OK, "%s",
                 err.detail);
    cr_assert_str_neq(e->safeguarding_concern->narrative, "");
    cr_assert_str_neq(e->child->given_name, "");
    sh_envelope_free(e);
    uint8_t id[16];
    memcpy(id, m.frame[0], 16);
    cr_assert_eq(sh_client_ack(hub, id), SH_OK);

    /* the police see the NHS number and the category, nothing else */
    cr_assert_eq(sh_client_expect(police, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &e, &err), SH_OK);
    cr_assert_str_neq(e->child->nhs_number, "");
    cr_assert_str_eq(e->child->given_name, "");
    cr_assert_str_eq(e->safeguarding_concern->narrative, "");
    cr_assert_neq(e->safeguarding_concern->category, 0);
    sh_envelope_free(e);
    cr_assert_eq(sh_client_ack(police, id), SH_OK);

    /* health was not a recipient */
    cr_assert_eq(sh_client_recv(health, 500, &m), SH_E_NOT_FOUND);

    /* the school gets a DELIVERED receipt for each ACK (delivery is at least once: a
     * receipt may come twice if its ACK is slow; agents dedupe by event id, as here) */
    int got_hub = 0, got_police = 0;
    while (!(got_hub && got_police)) {
        cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK, "receipts");
        cr_assert_eq(sh_envelope_decode(m.frame[4], m.len[4], &e, &err), SH_OK, "%s", err.detail);
        cr_assert_eq(e->event_type, SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_DELIVERY_RECEIPT);
        cr_assert_arr_eq(e->delivery_receipt->for_event_id.data, id, 16);
        cr_assert_eq(e->delivery_receipt->status,
                     SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED);
        got_hub |= strcmp(e->delivery_receipt->recipient_org, "881") == 0;
        got_police |= strcmp(e->delivery_receipt->recipient_org, "ESXPOL") == 0;
        uint8_t rid[16];
        memcpy(rid, m.frame[0], 16);
        sh_envelope_free(e);
        cr_assert_eq(sh_client_ack(school, rid), SH_OK);
    }
    free(ev);

    /* the hub's decision goes back to the referrer only, minimised */
    ev = bf_event(3, "881", id, &len);
    bf_publish(hub, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert(bf_has_line(&m, "8819990 permit isp-feedback@1"));
    do { /* a late duplicate receipt may still come first */
        cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK);
        cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &e, &err), SH_OK);
        if (e->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_DELIVERY_RECEIPT) {
            sh_envelope_free(e);
            e = NULL;
        }
    } while (!e);
    cr_assert_eq(e->event_type, SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_HUB_DECISION);
    cr_assert_neq(e->hub_decision->outcome, 0);
    cr_assert_str_eq(e->hub_decision->rationale, "", "rationale withheld");
    sh_envelope_free(e);
    cr_assert_eq(sh_client_recv(police, 500, &m), SH_E_NOT_FOUND);
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    sh_client_destroy(&police);
    sh_client_destroy(&health);
}

Test(broker, spoofed_source_is_refused)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    size_t len;
    uint8_t *ev = bf_event(2, "RAJ", NULL, &len); /* claims to be the hospital */
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_SPOOFED_SOURCE);
    cr_assert_eq(sh_client_recv(hub, 500, &m), SH_E_NOT_FOUND, "nothing delivered");
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}

Test(broker, republish_is_idempotent_and_replay_refused)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len);
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "republish confirmed again");
    cr_assert_arr_eq(m.frame[2], "duplicate", 9);
    cr_assert(bf_has_line(&m, "881 permit isp-sgc@1"), "with the same outcome");
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    uint8_t id[16];
    memcpy(id, m.frame[0], 16);
    cr_assert_eq(sh_client_ack(hub, id), SH_OK);
    cr_assert_eq(sh_client_recv(hub, 800, &m), SH_E_NOT_FOUND, "delivered once");

    /* the same id with other content */
    ev[len - 1] ^= 0x01; /* inside the last text field */
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_REPLAYED);
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}

Test(broker, unacked_delivery_is_resent)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len);
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    uint8_t id[16];
    memcpy(id, m.frame[0], 16);
    /* no ACK: it comes again after redeliver_ms */
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    cr_assert_arr_eq(m.frame[0], id, 16);
    cr_assert_eq(sh_client_ack(hub, id), SH_OK);
    cr_assert_eq(sh_client_recv(hub, 1200, &m), SH_E_NOT_FOUND, "not after the ACK");
    free(ev);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}

Test(broker, offline_recipient_catches_up_after_broker_restart)
{
    sh_client *school = bf_agent(SCHOOL);
    uint8_t ids[5][16];
    bf_publish_concerns(school, ids, 5);
    sh_client_destroy(&school);
    bf_stop();
    bf_start();
    sh_client *hub = bf_agent(HUB);
    for (int i = 0; i < 5; i++) {
        sh_msg m;
        cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK, "delivery %d", i);
        cr_assert_arr_eq(m.frame[0], ids[i], 16, "in publish order");
        cr_assert_eq(sh_client_ack(hub, ids[i]), SH_OK);
    }
    sh_client_destroy(&hub);
}

/* Fields in a DELIVER body read straight off the socket (docs/protocol.md), or -1. */
static long s_raw_deliver_fields(void *sock)
{
    zmq_msg_t f[3];
    int n = 0, more = 1;
    long fields = -1;
    while (more && n < 3) {
        zmq_msg_init(&f[n]);
        if (zmq_msg_recv(&f[n], sock, 0) < 0) return -1;
        more = zmq_msg_more(&f[n++]);
    }
    if (n == 3 && !more && zmq_msg_size(&f[1]) == 7 && !memcmp(zmq_msg_data(&f[1]), "DELIVER", 7)) {
        const uint8_t *p = zmq_msg_data(&f[2]);
        size_t left = zmq_msg_size(&f[2]);
        for (fields = 0; left >= 4 && sh_be32_get(p) <= left - 4; fields++) {
            size_t l = sh_be32_get(p);
            p += 4 + l;
            left -= 4 + l;
        }
        if (left) fields = -1;
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return fields;
}

Test(broker, a_backlog_goes_out_many_deliveries_to_a_message)
{
    enum { N = 100 };
    sh_client *school = bf_agent(SCHOOL);
    uint8_t ids[N][16];
    bf_publish_concerns(school, ids, N);
    sh_client *hub = bf_agent(HUB);
    /* the first message holds the first 64 (five fields each), the next the other 36 */
    /* (each body: the broker's signed head, then its deliveries) */
    cr_assert_eq(s_raw_deliver_fields(sh_client_socket(hub)), 1 + 64 * SH_DELIVER_FIELDS);
    cr_assert_eq(s_raw_deliver_fields(sh_client_socket(hub)), 1 + (N - 64) * SH_DELIVER_FIELDS);
    /* unacknowledged, they come again after redeliver_ms, the same way: read through the
     * client this time, one delivery a call, in publish order */
    for (int i = 0; i < N; i++) {
        sh_msg m;
        cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK, "delivery %d", i);
        cr_assert_eq(m.nframes, SH_DELIVER_FIELDS);
        cr_assert_arr_eq(m.frame[0], ids[i], 16, "delivery %d in publish order", i);
    }
    cr_assert_eq(sh_client_ack_many(hub, (const uint8_t(*)[16])ids, N), SH_OK);
    /* that one ACK becomes two receipts for the school: 65 events (the most one covers), 35 */
    size_t covered[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        sh_msg m;
        sh_envelope *r = NULL;
        sh_error err;
        cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK, "receipt %d", k);
        cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &r, &err), SH_OK);
        cr_assert_eq(r->event_type, SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_DELIVERY_RECEIPT);
        covered[k] = 1 + r->delivery_receipt->n_more_event_ids;
        size_t first = k ? 65 : 0;
        cr_assert_arr_eq(r->delivery_receipt->for_event_id.data, ids[first], 16);
        for (size_t i = 1; i < covered[k]; i++)
            cr_assert_arr_eq(r->delivery_receipt->more_event_ids[i - 1].data, ids[first + i], 16);
        sh_envelope_free(r);
        cr_assert_eq(sh_client_ack(school, m.frame[0]), SH_OK);
    }
    cr_assert_eq(covered[0], 65);
    cr_assert_eq(covered[1], N - 65);
    sh_client_destroy(&hub);
    sh_client_destroy(&school);
}

Test(broker, revoked_key_is_refused_after_sighup)
{
    sh_client *health = bf_agent(HEALTH);
    size_t len;
    uint8_t *ev = bf_event(2, "RAJ", NULL, &len);
    sh_msg m;
    bf_publish(health, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    free(ev);
    bf_registry(1u << HEALTH);
    kill(bf_broker, SIGHUP);
    usleep(300 * 1000);
    ev = bf_event(2, "RAJ", NULL, &len);
    cr_assert_eq(sh_client_publish(health, ev, len), SH_OK);
    cr_assert_eq(sh_client_expect(health, "ERROR", WAIT, &m), SH_OK,
                 "the connected peer's next message is refused");
    cr_assert_eq(sh_msg_code(&m), SH_E_NOT_ENROLLED);
    free(ev);
    sh_client_destroy(&health);
    /* a new connection with that key is not admitted at all */
    sh_client *again = bf_client(HEALTH);
    cr_assert_eq(sh_client_ping(again), SH_OK);
    cr_assert_eq(sh_client_recv(again, 1000, &m), SH_E_NOT_FOUND);
    sh_client_destroy(&again);
}

Test(broker, audit_log_verifies_after_a_session)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len);
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    bf_publish(school, (const uint8_t *)"\xff\xff", 2, &m);
    free(ev);
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK);
    uint8_t id[16];
    memcpy(id, m.frame[0], 16);
    cr_assert_eq(sh_client_ack(hub, id), SH_OK);
    usleep(200 * 1000);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    bf_stop();

    sh_key *mk = NULL, *ak = NULL;
    sh_signkey *sk = NULL;
    sh_store *st = NULL;
    sh_audit *a = NULL;
    sh_error err;
    cr_assert_eq(sh_key_load_file(bf_cfg.master_key, &mk, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(bf_cfg.sign_key, &sk, &err), SH_OK);
    cr_assert_eq(sh_store_open(bf_cfg.store_dir, mk, NULL, &st, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_derive_key(st, "audit mac", &ak), SH_OK);
    cr_assert_eq(sh_audit_open(st, ak, NULL, 0, &a, &err), SH_OK);
    uint8_t spub[32];
    sh_signkey_public(sk, spub);
    sh_audit_report r;
    cr_assert_eq(sh_audit_verify(a, &spub, 1, &r), SH_OK, "%s", r.detail);
    /* start, receive, 2 sends (hub, police), 2 denials (RAJ, 882), refuse, deliver, stop */
    cr_assert_geq(r.entries, 8);
    cr_assert_eq(r.last_checkpoint_seq, r.head_seq, "a clean stop checkpoints the head");
    int seen[SH_AUDIT_ACTION_MAX + 1] = {0};
    sh_txn *t = NULL;
    cr_assert_eq(sh_txn_begin(st, 0, &t, &err), SH_OK);
    for (uint64_t s = 1; s <= r.head_seq; s++) {
        sh_audit_record rec;
        cr_assert_eq(sh_audit_get(a, t, s, &rec, &err), SH_OK);
        cr_assert_leq(rec.action, SH_AUDIT_ACTION_MAX);
        seen[rec.action]++;
        if (rec.action == SH_AUDIT_SEND) cr_assert_str_eq(rec.rule, "isp-sgc@1");
    }
    sh_txn_abort(&t);
    cr_assert_eq(seen[SH_AUDIT_RECEIVE], 1);
    cr_assert_eq(seen[SH_AUDIT_SEND], 2);
    cr_assert_eq(seen[SH_AUDIT_DENY], 2, "every decision: RAJ and 882 are denied");
    cr_assert_eq(seen[SH_AUDIT_REFUSE], 1);
    cr_assert_eq(seen[SH_AUDIT_DELIVER], 1);
    cr_assert_geq(seen[SH_AUDIT_ADMIN], 2);
    sh_audit_destroy(&a);
    sh_store_destroy(&st);
    sh_key_destroy(&ak);
    sh_key_destroy(&mk);
    sh_signkey_destroy(&sk);
}

Test(broker, read_receipts_go_to_the_sender_only)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB), *health = bf_agent(HEALTH);
    size_t len;
    uint8_t *ev = bf_event(2, "8819990", NULL, &len);
    sh_msg m;
    bf_publish(school, ev, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    uint8_t id[16];
    memcpy(id, m.frame[0], 16);
    free(ev);
    /* the hub received it and reports it read */
    uint8_t *rc = bf_event(13, "881", id, &len);
    sh_envelope *e = NULL;
    sh_error err;
    cr_assert_eq(sh_envelope_decode(rc, len, &e, &err), SH_OK);
    e->delivery_receipt->status = SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_READ;
    char *decoded_org = e->delivery_receipt->recipient_org;
    e->delivery_receipt->recipient_org = "881";
    uint8_t *buf = NULL;
    size_t blen = 0;
    cr_assert_eq(sh_envelope_encode(e, &buf, &blen, &err), SH_OK);
    e->delivery_receipt->recipient_org = decoded_org; /* the literal is not ours to free */
    bf_publish(hub, buf, blen, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "%.*s", (int)m.len[2], m.frame[2]);
    cr_assert(bf_has_line(&m, "8819990 permit receipt"));
    int read = 0;
    while (!read) {
        sh_envelope *r = NULL;
        cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK);
        cr_assert_eq(sh_envelope_decode(m.frame[4], m.len[4], &r, &err), SH_OK);
        read = r->delivery_receipt->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_READ;
        sh_envelope_free(r);
    }
    /* an agent's receipt covers one event: more_event_ids is the broker's alone */
    ProtobufCBinaryData extra = {16, id}, first_id = e->event_id;
    uint8_t fresh[16];
    cr_assert_eq(sh_event_id_new(fresh), SH_OK);
    e->event_id = (ProtobufCBinaryData){16, fresh};
    e->delivery_receipt->recipient_org = "881";
    e->delivery_receipt->n_more_event_ids = 1;
    e->delivery_receipt->more_event_ids = &extra;
    uint8_t *multi = NULL;
    size_t mlen = 0;
    cr_assert_eq(sh_envelope_encode(e, &multi, &mlen, &err), SH_OK, "%s", err.detail);
    e->delivery_receipt->n_more_event_ids = 0;
    e->delivery_receipt->more_event_ids = NULL;
    e->delivery_receipt->recipient_org = decoded_org;
    e->event_id = first_id;
    bf_publish(hub, multi, mlen, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_BAD_FIELD);
    char detail[256];
    snprintf(detail, sizeof detail, "%.*s", m.nframes > 2 ? (int)m.len[2] : 0,
             m.nframes > 2 ? (const char *)m.frame[2] : "");
    cr_assert_not_null(strstr(detail, "more_event_ids"), "names the field: %s", detail);
    free(multi);
    /* DELIVERED is the broker's word: an agent may not say it */
    cr_assert_eq(sh_event_id_new(fresh), SH_OK);
    e->event_id = (ProtobufCBinaryData){16, fresh};
    e->delivery_receipt->recipient_org = "881";
    e->delivery_receipt->status = SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED;
    cr_assert_eq(sh_envelope_encode(e, &multi, &mlen, &err), SH_OK, "%s", err.detail);
    e->delivery_receipt->recipient_org = decoded_org;
    e->event_id = first_id;
    bf_publish(hub, multi, mlen, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_BAD_FIELD);
    snprintf(detail, sizeof detail, "%.*s", m.nframes > 2 ? (int)m.len[2] : 0,
             m.nframes > 2 ? (const char *)m.frame[2] : "");
    cr_assert_not_null(strstr(detail, "delivery_receipt.status"), "names the field: %s", detail);
    free(multi);
    /* health never received the event: it cannot report on it */
    uint8_t *hr = bf_event(13, "RAJ", id, &len);
    bf_publish(health, hr, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_DENY_PARTY);
    free(hr);
    /* nor on an event the broker never saw */
    uint8_t unknown[16];
    cr_assert_eq(sh_event_id_new(unknown), SH_OK);
    hr = bf_event(13, "RAJ", unknown, &len);
    bf_publish(health, hr, len, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_UNKNOWN_EVENT);
    free(hr);
    free(buf);
    free(rc);
    sh_envelope_free(e);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    sh_client_destroy(&health);
}

Test(broker, full_store_refuses_new_publishes_and_keeps_the_old)
{
    bf_stop();
    bf_cfg.map_size = 2u << 20; /* 2 MiB */
    bf_start();
    sh_client *school = bf_agent(SCHOOL);
    uint8_t ids[400][16];
    int accepted = 0, refused = 0;
    static uint64_t rng = 5;
    for (int i = 0; i < 400 && !refused; i++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *buf = NULL;
        size_t len = 0;
        sh_error err;
        cr_assert_eq(sh_synth_event(&rng, 2, &c, "8819990", NULL, NULL, 20000, &buf, &len, &err),
                     SH_OK);
        sh_msg m;
        bf_publish(school, buf, len, &m);
        int code = sh_msg_code(&m);
        if (code == 0)
            memcpy(ids[accepted++], m.frame[0], 16);
        else {
            cr_assert_eq(code, SH_E_MAP_FULL, "refused with %d", code);
            refused = 1;
        }
        free(buf);
    }
    cr_assert(refused, "a 2 MiB store never filled");
    cr_assert_gt(accepted, 10);
    /* everything confirmed before is still delivered, in order */
    sh_client *hub = bf_agent(HUB);
    for (int i = 0; i < accepted; i++) {
        sh_msg m;
        cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &m), SH_OK, "delivery %d of %d", i,
                     accepted);
        cr_assert_arr_eq(m.frame[0], ids[i], 16);
        cr_assert_eq(sh_client_ack(hub, ids[i]), SH_OK);
    }
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}

/* An event of `type` about child c, with purpose early help and (for consent events) the
 * given action, published by the school. */
static uint8_t *s_eh_event(int type, const sh_synth_child *c, int action, size_t *len)
{
    static uint64_t rng = 31;
    uint8_t *buf = NULL, *out = NULL;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, type, c, "8819990", NULL, NULL, 0, &buf, len, &err), SH_OK);
    sh_envelope *e = NULL;
    cr_assert_eq(sh_envelope_decode(buf, *len, &e, &err), SH_OK);
    e->purpose = SHAREHUB__V1__PURPOSE__PURPOSE_EARLY_HELP;
    if (type == 1) {
        e->lawful_basis->article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_2G_SUBSTANTIAL_PUBLIC_INTEREST;
        e->lawful_basis->dpa_schedule1_paragraph = 18;
    }
    if (type == 12) {
        e->consent_change->action = action;
        e->lawful_basis->article9 = SHAREHUB__V1__ARTICLE9__ARTICLE9_NONE; /* no health data */
        e->lawful_basis->dpa_schedule1_paragraph = 0;
    }
    cr_assert_eq(sh_envelope_encode(e, &out, len, &err), SH_OK, "%s", err.detail);
    sh_envelope_free(e);
    free(buf);
    return out;
}

Test(broker, consent_withdrawal_is_honoured_from_then_on)
{
    sh_client *school = bf_agent(SCHOOL);
    uint64_t rng = 555;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    sh_msg m;
    size_t len;
    struct {
        int type, action;
        const char *want;
    } steps[] = {
        {1, 0, "881 permit isp-eh@1"}, /* consent given */
        {12, SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_WITHDRAWN, "881 permit isp-consent@1"},
        {1, 0, "881 deny 806 isp-eh@1"}, /* claims given: on record withdrawn */
        {12, SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_RECORDED, "881 permit isp-consent@1"},
        {1, 0, "881 permit isp-eh@1"}, /* consent given again */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        usleep(5000); /* records are ordered by time */
        uint8_t *ev = s_eh_event(steps[i].type, &c, steps[i].action, &len);
        bf_publish(school, ev, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0, "step %zu refused", i);
        cr_assert(bf_has_line(&m, steps[i].want), "step %zu: want '%s'", i, steps[i].want);
        free(ev);
    }
    /* another child is unaffected by this child's withdrawal */
    sh_synth_child other;
    sh_synth_child_make(&rng, "881", &other);
    uint8_t *ev = s_eh_event(12, &c, SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_WITHDRAWN, &len);
    bf_publish(school, ev, len, &m);
    free(ev);
    ev = s_eh_event(1, &other, 0, &len);
    bf_publish(school, ev, len, &m);
    cr_assert(bf_has_line(&m, "881 permit isp-eh@1"));
    free(ev);
    sh_client_destroy(&school);
}

/* Consent follows the child: a withdrawal recorded under the NHS number governs a request
 * that carries only the UPN once the broker has seen the two together on one event — and,
 * before that, cannot (the documented limit). */
Test(broker, consent_follows_the_child_across_linked_identifiers)
{
    sh_client *school = bf_agent(SCHOOL);
    uint64_t rng = 909;
    sh_synth_child c, by_nhs, by_upn, by_la;
    sh_synth_child_make(&rng, "881", &c);
    by_nhs = by_upn = by_la = c;
    by_nhs.upn[0] = by_nhs.la_child_id[0] = '\0';
    by_upn.nhs_number[0] = by_upn.la_child_id[0] = '\0';
    by_la.nhs_number[0] = by_la.upn[0] = '\0';
    sh_synth_child upn_la = by_upn;
    memcpy(upn_la.la_child_id, c.la_child_id, sizeof c.la_child_id);
    sh_msg m;
    size_t len;
    struct {
        int type, action;
        const sh_synth_child *child;
        const char *want;
    } steps[] = {
        {12, SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_WITHDRAWN, &by_nhs,
         "881 permit isp-consent@1"},
        /* the UPN was never seen with the NHS number: nothing links them yet */
        {1, 0, &by_upn, "881 permit isp-eh@1"},
        /* the UPN and the LA id together; still nothing reaches the NHS number */
        {1, 0, &upn_la, "881 permit isp-eh@1"},
        /* the NHS number and the LA id together: the withdrawal is on record for the NHS number */
        {1, 0, &c, "881 deny 806 isp-eh@1"},
        /* now the UPN alone reaches it, through the LA id (UPN-LA, then LA-NHS) */
        {1, 0, &by_upn, "881 deny 806 isp-eh@1"},
        {1, 0, &by_la, "881 deny 806 isp-eh@1"},
        /* consent recorded again, under the UPN: newest wins for every linked identifier */
        {12, SHAREHUB__V1__CONSENT_ACTION__CONSENT_ACTION_RECORDED, &by_upn,
         "881 permit isp-consent@1"},
        {1, 0, &by_nhs, "881 permit isp-eh@1"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        usleep(5000); /* records are ordered by time */
        uint8_t *ev = s_eh_event(steps[i].type, steps[i].child, steps[i].action, &len);
        bf_publish(school, ev, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0, "step %zu refused", i);
        cr_assert(bf_has_line(&m, steps[i].want), "step %zu: want '%s'", i, steps[i].want);
        free(ev);
    }
    sh_client_destroy(&school);
}

Test(broker, cp_status_reaches_the_childs_school_of_record_only)
{
    sh_client *school = bf_agent(SCHOOL), *hub = bf_agent(HUB);
    uint64_t rng = 808;
    sh_synth_child c, unknown;
    sh_synth_child_make(&rng, "881", &c);
    sh_synth_child_make(&rng, "881", &unknown);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    sh_msg m;
    /* the school raises a concern about the child: it becomes the school of record */
    cr_assert_eq(sh_synth_event(&rng, 2, &c, "8819990", NULL, NULL, 0, &buf, &len, &err), SH_OK);
    bf_publish(school, buf, len, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    free(buf);
    /* a child-protection plan starts for that child and for a child it never reported */
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(
            sh_synth_event(&rng, 4, k ? &unknown : &c, "881", NULL, NULL, 0, &buf, &len, &err),
            SH_OK);
        bf_publish(hub, buf, len, &m);
        cr_assert_eq(sh_msg_code(&m), 0);
        cr_assert_eq(bf_has_line(&m, "8819990 permit isp-cp-school@1"), !k,
                     "child %d: only the school of record is told", k);
        free(buf);
    }
    int got = 0;
    for (int tries = 0; tries < 5 && !got; tries++) {
        cr_assert_eq(sh_client_expect(school, "DELIVER", WAIT, &m), SH_OK);
        sh_envelope *e = NULL;
        cr_assert_eq(sh_envelope_decode_minimised(m.frame[4], m.len[4], &e, &err), SH_OK);
        if (e->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_CP_PLAN_STATUS) {
            got = 1;
            cr_assert_str_eq(e->child->upn, c.upn);
            cr_assert_str_eq(e->child->given_name, "", "minimised");
            cr_assert_eq(e->cp_plan_status->category, 0, "minimised");
        }
        uint8_t id[16];
        memcpy(id, m.frame[0], 16);
        sh_client_ack(school, id);
        sh_envelope_free(e);
    }
    cr_assert(got, "the school never received the CP status");
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
}
