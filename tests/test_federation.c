/*
 * test_federation.c — a broker in a federation, at its border (docs/federation.md): the peer's
 * FORWARD taken only from a peer, only for its own authority's senders, only with evidence that
 * verifies, only in the link's order; decided again here for the named recipients only; a
 * denial sent back to the sender through the peer; a directory that does not verify refused.
 * The broker under test serves Essex (881); the peer is Thurrock's (883), whose ED is RAJX.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_fixture.h"
#include "codec.h"
#include "crypto.h"
#include "directory.h"
#include "evidence.h"
#include "store.h"
#include "testutil.h"

TestSuite(federation, .init = bf_setup, .fini = bf_teardown);

static char s_peer_pub[41], s_peer_sec[41], *s_dirpath;
static sh_signkey *s_fed, *s_rajx;

/* Restarts the broker in the federation: its registry with the peer LA883 enrolled, and a
 * directory signed by a federation key made for the test. */
static void s_federate(void)
{
    bf_stop();
    cr_assert_eq(sh_curve_keypair(s_peer_pub, s_peer_sec), SH_OK);
    cr_assert_eq(sh_signkey_generate(&s_fed), SH_OK);
    cr_assert_eq(sh_signkey_generate(&s_rajx), SH_OK);
    bf_registry(0);
    char *reg = bf_path("registry.yaml"), line[256];
    FILE *f = fopen(reg, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "  - {code: LA883, name: Thurrock peer, sector: peer, locality: thurrock, "
            "la_code: '883', keys: ['%s']}\n",
            s_peer_pub);
    fclose(f);
    free(reg);
    uint8_t pub[32];
    char rajx[65], dir[2048];
    sh_signkey_public(s_rajx, pub);
    sh_hex_encode(pub, 32, rajx);
    snprintf(line, sizeof line, "%s", bf_broker_pub);
    snprintf(dir, sizeof dir,
             "federation: test\nserial: 1\nauthorities:\n"
             "  - {la_code: '881', name: Essex, broker: {code: SHAREHUB, endpoint: '%s', "
             "curve_key: '%s', sign_key: '%064d'}, organisations: []}\n"
             "  - la_code: '883'\n    name: Thurrock\n"
             "    broker: {code: SH883, endpoint: 'tcp://127.0.0.1:1', curve_key: '%s', "
             "sign_key: '%064d'}\n"
             "    organisations:\n"
             "      - {code: RAJX, name: Thurrock ED, sector: health, locality: thurrock, "
             "sign_keys: ['%s']}\n",
             bf_tcp, line, 0, s_peer_pub, 0, rajx);
    bf_write("directory.yaml", dir);
    sh_error err;
    char *path = s_dirpath = bf_path("directory.yaml");
    cr_assert_eq(sh_directory_sign(path, s_fed, &err), SH_OK, "%s", err.detail);
    sh_signkey_public(s_fed, pub);
    static char fedhex[65];
    sh_hex_encode(pub, 32, fedhex);
    bf_cfg.directory = path; /* (freed at the end of the test) */
    bf_cfg.federation_key = fedhex;
    bf_cfg.authority = "881";
    bf_start();
}

/* A concern from RAJX, with its sender evidence signed by key k. */
static uint8_t *s_event(const sh_signkey *k, size_t *len, uint8_t *ev, size_t *evlen)
{
    uint8_t *env = bf_event(2, "RAJX", NULL, len), seed[32], digest[32], root[32];
    sh_evidence_batch b;
    cr_assert_eq(sh_random(seed, 32), SH_OK);
    cr_assert_eq(sh_evidence_digest(env, *len, seed, digest), SH_OK);
    cr_assert_eq(sh_evidence_batch_prove_all((const uint8_t(*)[32])digest, 1, root, &b), SH_OK);
    cr_assert_eq(sh_evidence_sign(k, root, &b), SH_OK);
    *evlen = sh_evidence_sender_encode(&b, seed, ev, SH_EVIDENCE_SENDER_MAX);
    cr_assert_gt(*evlen, 0);
    return env;
}

/* Sends one FORWARD of env as sender to, in run `run` at place n; returns the CONFIRM. */
static void s_forward(sh_client *c, const uint8_t *env, size_t len, const uint8_t *ev, size_t evlen,
                      const char *sender, const char *to, char run, uint64_t n, sh_msg *m)
{
    uint8_t id[16], place[16];
    cr_assert(sh_envelope_peek_id(env, len, id));
    memset(place, run, 8);
    sh_be64_put(place + 8, n);
    sh_wire_body body = {0};
    cr_assert_eq(sh_wire_body_add(&body, id, 16), 0);
    cr_assert_eq(sh_wire_body_add(&body, sender, strlen(sender)), 0);
    cr_assert_eq(sh_wire_body_add(&body, "border", 6), 0);
    cr_assert_eq(sh_wire_body_add(&body, to, strlen(to)), 0);
    cr_assert_eq(sh_wire_body_add(&body, env, len), 0);
    cr_assert_eq(sh_wire_body_add(&body, ev, evlen), 0);
    cr_assert_eq(sh_wire_body_add(&body, place, 16), 0);
    const void *fr[3] = {SH_PROTO_SIGNATURE, "FORWARD", body.p};
    const size_t fl[3] = {4, 7, body.len};
    cr_assert_eq(sh_client_send_raw(c, fr, fl, 3), SH_OK);
    sh_wire_body_free(&body);
    cr_assert_eq(sh_client_expect(c, "CONFIRM", WAIT, m), SH_OK, "no CONFIRM");
}

static sh_client *s_peer(void)
{
    sh_client *c = NULL;
    sh_error err;
    cr_assert_eq(sh_client_new(bf_tcp, bf_broker_pub, s_peer_pub, s_peer_sec, &c, &err), SH_OK);
    return c;
}

Test(federation, a_forward_is_decided_again_here_in_the_links_order_only)
{
    s_federate();
    sh_client *peer = s_peer(), *school = bf_client(SCHOOL), *hub = bf_agent(HUB);
    uint8_t ev[SH_EVIDENCE_SENDER_MAX], ev2[SH_EVIDENCE_SENDER_MAX];
    size_t len, evlen, len2, evlen2;
    uint8_t *env = s_event(s_rajx, &len, ev, &evlen), *other = s_event(s_rajx, &len2, ev2, &evlen2);
    const char *to = "to=881/isp-other@1/child,safeguarding_concern";
    sh_msg m;
    /* only a peer forwards */
    s_forward(school, env, len, ev, evlen, "RAJX", to, 'a', 0, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_PROTOCOL);
    /* the first of a run: decided here for 881 under this broker's protocol */
    s_forward(peer, env, len, ev, evlen, "RAJX", to, 'a', 0, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "%.*s", (int)m.len[2], (const char *)m.frame[2]);
    cr_assert(bf_has_line(&m, "881 permit isp-sgc@1"));
    sh_msg d;
    cr_assert_eq(sh_client_expect(hub, "DELIVER", WAIT, &d), SH_OK, "the hub got nothing");
    cr_assert(d.len[1] == 4 && memcmp(d.frame[1], "RAJX", 4) == 0);
    /* the same event again, next in the run: stored once */
    s_forward(peer, env, len, ev, evlen, "RAJX", to, 'a', 1, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert(m.len[2] == strlen("duplicate: already accepted"));
    /* a gap in the run (a FORWARD lost with a process): 705, naming the event, not taken */
    s_forward(peer, other, len2, ev2, evlen2, "RAJX", to, 'a', 5, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_UNAVAILABLE);
    uint8_t oid[16];
    cr_assert(sh_envelope_peek_id(other, len2, oid));
    cr_assert(m.len[0] == 16 && memcmp(m.frame[0], oid, 16) == 0);
    /* a new run from its start is taken */
    s_forward(peer, other, len2, ev2, evlen2, "RAJX", to, 'b', 0, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "%.*s", (int)m.len[2], (const char *)m.frame[2]);
    /* a sender of this authority (the peer speaks for its own only) */
    size_t l3, e3;
    uint8_t ev3[SH_EVIDENCE_SENDER_MAX], *env3 = s_event(s_rajx, &l3, ev3, &e3);
    s_forward(peer, env3, l3, ev3, e3, "8819990", to, 'b', 1, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_SPOOFED_SOURCE);
    /* evidence signed by a key the directory does not give RAJX */
    sh_signkey *other_key = NULL;
    cr_assert_eq(sh_signkey_generate(&other_key), SH_OK);
    size_t l4, e4;
    uint8_t ev4[SH_EVIDENCE_SENDER_MAX], *env4 = s_event(other_key, &l4, ev4, &e4);
    s_forward(peer, env4, l4, ev4, e4, "RAJX", to, 'b', 2, &m);
    cr_assert_eq(sh_msg_code(&m), SH_E_EVIDENCE);
    /* a recipient no protocol here names: denied here, and RAJX told through the peer */
    s_forward(peer, env3, l3, ev3, e3, "RAJX", "to=8819990/isp-other@1/child", 'b', 3, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert(bf_has_line(&m, "8819990 deny 800 -"));
    /* many recipients (a sector party's), one of them named twice: each decided once */
    size_t l5, e5;
    uint8_t ev5[SH_EVIDENCE_SENDER_MAX], *env5 = s_event(s_rajx, &l5, ev5, &e5);
    char many[1024] = "to=881/isp-other@1/child,safeguarding_concern";
    for (int i = 0; i < 12; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), " to=88199%02d/isp-other@1/child",
                 i);
    strcat(many, " to=881/isp-other@1/child");
    s_forward(peer, env5, l5, ev5, e5, "RAJX", many, 'b', 4, &m);
    cr_assert_eq(sh_msg_code(&m), 0, "%.*s", (int)m.len[2], (const char *)m.frame[2]);
    int permits = 0, lines = 0;
    for (size_t i = 4; i < m.nframes; i++, lines++)
        permits += m.len[i] > 4 && memcmp(m.frame[i], "881 ", 4) == 0;
    cr_assert_eq(permits, 1, "881 decided once");
    cr_assert_eq(lines, 13, "each named recipient answered once (%d lines)", lines);
    free(env5);
    /* permitted here to the police, whose agent takes plan status only: RAJX is told (809) */
    sh_client *police = bf_client(POLICE);
    cr_assert_eq(sh_client_hello(police, "cp_plan_status"), SH_OK);
    cr_assert_eq(sh_client_expect(police, "READY", WAIT, &d), SH_OK);
    size_t l6, e6;
    uint8_t ev6[SH_EVIDENCE_SENDER_MAX], *env6 = s_event(s_rajx, &l6, ev6, &e6);
    s_forward(peer, env6, l6, ev6, e6, "RAJX", "to=ESXPOL/isp-other@1/child", 'b', 5, &m);
    cr_assert_eq(sh_msg_code(&m), 0);
    cr_assert(bf_has_line(&m, "ESXPOL unsubscribed isp-sgc@1"));
    /* every denial here went back to RAJX through the peer, as a DENIED receipt with its code */
    cr_assert_eq(sh_client_hello(peer, "*"), SH_OK);
    int denied800 = 0, denied809 = 0;
    while (!(denied800 && denied809) && sh_client_expect(peer, "DELIVER", WAIT, &d) == SH_OK) {
        sh_envelope *r = NULL;
        sh_error e2;
        if (d.len[2] != 7 || memcmp(d.frame[2], "receipt", 7) ||
            d.len[3] != strlen("to=RAJX/receipt/") ||
            memcmp(d.frame[3], "to=RAJX/receipt/", d.len[3]) ||
            sh_envelope_decode(d.frame[4], d.len[4], &r, &e2))
            continue;
        if (r->delivery_receipt->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DENIED) {
            denied800 |= r->delivery_receipt->reason_code == SH_E_DENY_NO_ISP;
            denied809 |= r->delivery_receipt->reason_code == SH_E_UNSUBSCRIBED;
        }
        sh_envelope_free(r);
    }
    cr_assert(denied800, "no DENIED receipt (800) for RAJX went to the peer");
    cr_assert(denied809, "no DENIED receipt (809) for RAJX went to the peer");
    sh_client_destroy(&police);
    free(env6);
    sh_client_destroy(&peer);
    sh_client_destroy(&school);
    sh_client_destroy(&hub);
    sh_signkey_destroy(&other_key);
    sh_signkey_destroy(&s_fed);
    sh_signkey_destroy(&s_rajx);
    free(env);
    free(other);
    free(env3);
    free(env4);
    bf_stop();
    bf_cfg.directory = NULL;
    free(s_dirpath);
}
