/*
 * net.c — the broker's network process (net.h): CURVE, ZAP against the enrolled keys the core
 * sends, the handshake monitor's counts, framing, and the decoding and checking of every
 * PUBLISH (its envelope, its sender's evidence) before the core sees a byte of it. Once its
 * sockets are bound it cannot open a file, start a program or connect anywhere: no new
 * privileges, and a seccomp filter that allows only what serving sockets needs.
 *
 * Owns: the ROUTER, ZAP and monitor sockets, the far end of the channel. Never: holds a store
 * key, the master key or the audit signing key; hands the core a PUBLISH it could not decode;
 * blocks on a peer that does not read.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "codec.h"
#include "crypto.h"
#include "daemon.h"
#include "evidence.h"
#include "fault.h"
#include "log.h"
#include "net.h"
#include "sandbox.h"
#include "wire.h"

#define FRAMES_MAX  (1 + SH_FRAMES_WITNESS) /* routing id and the longest command's frames */
#define ORG_MAX     16                      /* bytes of an org code on the channel */
#define DETAIL_MAX  sizeof(((sh_error *)0)->detail)
#define INBOUND_HWM 1000 /* messages for the core queued on each side of the channel */

typedef struct nk_key {
    uint8_t key[32];
    char org[ORG_MAX + 1];
    const uint8_t (*sign)[32]; /* into the KEYS message kept */
    size_t nsign;
} nk_key;

typedef struct nk {
    void *ctx, *core, *router, *zap, *monitor;
    nk_key *keys;
    size_t nkeys;
    uint8_t *keys_msg; /* the KEYS records the table points into */
    uint64_t counts[BK_NET_COUNTS], sent[BK_NET_COUNTS];
    sh_evidence_cache cache;
} nk;

enum { C_KEY, C_HANDSHAKE, C_INTERRUPTED, C_FAILED, C_CLOSED, C_DROPPED };

static volatile sig_atomic_t s_stop;
static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_control(nk *n, const char *what, const void *data, size_t len)
{
    zmq_send(n->core, "", 0, ZMQ_SNDMORE);
    zmq_send(n->core, what, strlen(what), len || data ? ZMQ_SNDMORE : 0);
    if (len || data) zmq_send(n->core, data, len, 0);
}

static const nk_key *s_key(const nk *n, const uint8_t *key)
{
    for (size_t i = 0; i < n->nkeys; i++)
        if (memcmp(n->keys[i].key, key, 32) == 0) return &n->keys[i];
    return NULL;
}

/* Replaces the key table with the records of a KEYS message (net.h); -1 when they are not
 * well formed (the old table stays). */
static int s_keys(nk *n, zmq_msg_t *m)
{
    size_t len = zmq_msg_size(m), cap = len / 34 + 1, k = 0;
    uint8_t *p = malloc(len ? len : 1);
    nk_key *t = calloc(cap, sizeof *t);
    if (!p || !t) goto bad;
    memcpy(p, zmq_msg_data(m), len);
    for (size_t o = 0; o < len; k++) {
        if (k == cap || len - o < 34) goto bad;
        memcpy(t[k].key, p + o, 32);
        size_t cl = p[o + 32];
        if (cl == 0 || cl > ORG_MAX || len - o - 33 < cl + 1) goto bad;
        memcpy(t[k].org, p + o + 33, cl);
        t[k].org[cl] = '\0';
        o += 33 + cl;
        t[k].nsign = p[o++];
        if (len - o < t[k].nsign * 32) goto bad;
        t[k].sign = (const uint8_t(*)[32])(p + o);
        o += t[k].nsign * 32;
    }
    free(n->keys);
    free(n->keys_msg);
    n->keys = t;
    n->nkeys = k;
    n->keys_msg = p;
    return 0;
bad:
    free(p);
    free(t);
    return -1;
}

/* ZAP (RFC 27): admits a CURVE key the core sent as enrolled. */
static void s_zap(nk *n)
{
    zmq_msg_t f[7];
    size_t k = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch, *m = k < 7 ? &f[k] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, n->zap, 0) < 0) {
            zmq_msg_close(m);
            for (size_t i = 0; i < k; i++)
                zmq_msg_close(&f[i]);
            return;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            k++;
    }
    const char *status = "400", *text = "not enrolled";
    char user[SH_Z85_LEN + 1] = "";
    if (k == 7 && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
        zmq_msg_size(&f[6]) == 32 && s_key(n, zmq_msg_data(&f[6]))) {
        status = "200";
        text = "OK";
        zmq_z85_encode(user, zmq_msg_data(&f[6]), 32);
    }
    /* version, request id, status, text, user id, metadata */
    zmq_send(n->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(n->zap, k > 1 ? zmq_msg_data(&f[1]) : "", k > 1 ? zmq_msg_size(&f[1]) : 0,
             ZMQ_SNDMORE);
    zmq_send(n->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(n->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(n->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(n->zap, "", 0, 0);
    if (status[0] != '2') n->counts[C_KEY]++;
    for (size_t i = 0; i < k; i++)
        zmq_msg_close(&f[i]);
}

/* One event from the router's monitor: a handshake refused below the protocol (a peer
 * without CURVE, with a wrong server key, or sending bytes that are not ZMTP: ZeroMQ reports
 * HANDSHAKE_FAILED_PROTOCOL), a handshake cut short because the connection closed (the peer
 * stopped or crashed, or the network failed: HANDSHAKE_FAILED_NO_DETAIL, whose value is the
 * errno — not an attack, and not reported as one), or a closed connection. ZeroMQ closes a
 * connection without telling the socket when the peer sends a message over ZMQ_MAXMSGSIZE, so a
 * close after the handshake is the only trace of an oversized frame. (The events name the local
 * endpoint, not the peer, and the handshake's success carries no file descriptor: so these are
 * counts.) */
static void s_monitor(nk *n)
{
    zmq_msg_t m[2];
    zmq_msg_init(&m[0]);
    zmq_msg_init(&m[1]);
    if (zmq_msg_recv(&m[0], n->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m[0]) &&
        zmq_msg_recv(&m[1], n->monitor, 0) >= 0 && zmq_msg_size(&m[0]) >= 2) {
        uint16_t ev;
        memcpy(&ev, zmq_msg_data(&m[0]), 2);
        if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) n->counts[C_HANDSHAKE]++;
        if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) n->counts[C_INTERRUPTED]++;
        if (ev & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                  ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
            n->counts[C_FAILED]++;
        if (ev & ZMQ_EVENT_DISCONNECTED) n->counts[C_CLOSED]++;
    }
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
}

/* The verdict on a PUBLISH's envelope and evidence (net.h), into v (BK_VERDICT_HEAD bytes and
 * a detail); its length. 'M' (1 byte) when both pass, or when the key's organisation is not
 * the envelope's source (the core refuses that itself, naming the child in its audit). */
static size_t s_verdict(nk *n, const nk_key *k, const zmq_msg_t *env, const zmq_msg_t *evd,
                        uint8_t *v, size_t cap)
{
    const uint8_t *raw = zmq_msg_data((zmq_msg_t *)env), *ev = zmq_msg_data((zmq_msg_t *)evd);
    size_t len = zmq_msg_size((zmq_msg_t *)env), evlen = zmq_msg_size((zmq_msg_t *)evd);
    sh_error err = {0};
    sh_envelope *e = NULL;
    char kind = 'X';
    sh_err rc = len > SH_ENVELOPE_MAX
                    ? sh_error_set(&err, SH_E_TOO_LARGE, "envelope too large (limit 1 MiB)")
                    : sh_envelope_decode(raw, len, &e, &err);
    int has = rc ? sh_envelope_peek_id(raw, len, v + 4) : 1;
    if (!rc) {
        memcpy(v + 4, e->event_id.data, 16);
        kind = 'V';
        if (!k || strcmp(e->source_org, k->org) != 0) {
            rc = SH_OK; /* the core's to refuse */
        } else if (!evlen) {
            rc = sh_error_set(&err, SH_E_EVIDENCE,
                              "evidence: none: every event is published with its sender's");
        } else {
            sh_evidence_batch eb;
            uint8_t seed[SH_EVIDENCE_SEED_BYTES];
            rc = sh_evidence_check_sender(raw, len, ev, evlen, &eb, seed, &n->cache, &err);
            sh_wipe(seed, sizeof seed);
            int named = !k->nsign; /* the registry names who may sign, when it names any */
            for (size_t i = 0; !rc && i < k->nsign; i++)
                named |= memcmp(k->sign[i], eb.signer, SH_SIGN_PUB_BYTES) == 0;
            if (!rc && !named) {
                char hex[17];
                sh_hex_encode(eb.signer, 8, hex);
                rc = sh_error_set(&err, SH_E_EVIDENCE,
                                  "evidence: signed by key %s…, which the registry does not give "
                                  "%s",
                                  hex, k->org);
            }
        }
    }
    sh_envelope_free(e);
    if (!rc) {
        v[0] = 'M';
        return 1;
    }
    v[0] = (uint8_t)kind;
    v[1] = (uint8_t)((unsigned)rc >> 8);
    v[2] = (uint8_t)rc;
    v[3] = (uint8_t)(has != 0);
    if (!has) memset(v + 4, 0, 16);
    size_t dl = strlen(err.detail);
    if (dl > cap - BK_VERDICT_HEAD) dl = cap - BK_VERDICT_HEAD;
    memcpy(v + BK_VERDICT_HEAD, err.detail, dl);
    return BK_VERDICT_HEAD + dl;
}

/* One message from an agent: read, judged when it is a PUBLISH, handed to the core. */
static int s_from_peer(nk *n)
{
    zmq_msg_t parts[FRAMES_MAX];
    size_t k = 0, got;
    int more = 1, extra = 0;
    while (more) {
        zmq_msg_t scratch, *m = k < FRAMES_MAX ? &parts[k] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, n->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            for (size_t i = 0; i < k; i++)
                zmq_msg_close(&parts[i]);
            return -1;
        }
        more = zmq_msg_more(m);
        if (m == &scratch) {
            zmq_msg_close(m);
            extra = 1;
        } else {
            k++;
        }
    }
    got = k;
    if (extra) k = 2; /* more frames than any command has: the core refuses it */
    uint8_t key[32] = {0};
    const char *user = k > 1 ? zmq_msg_gets(&parts[1], "User-Id") : NULL;
    if (!user || strlen(user) != SH_Z85_LEN || !zmq_z85_decode(key, user)) memset(key, 0, 32);
    uint8_t v[BK_VERDICT_HEAD + DETAIL_MAX];
    size_t vl = 1;
    v[0] = 'M';
    if (k == 1 + SH_FRAMES_PUBLISH && zmq_msg_size(&parts[1]) == 4 &&
        memcmp(zmq_msg_data(&parts[1]), SH_PROTO_SIGNATURE, 4) == 0 &&
        zmq_msg_size(&parts[2]) == 7 && memcmp(zmq_msg_data(&parts[2]), "PUBLISH", 7) == 0) {
        if (sh_fault("net_crash")) abort(); /* the tests' malicious input (fault.h) */
        vl = s_verdict(n, s_key(n, key), &parts[3], &parts[4], v, sizeof v);
    }
    if (v[0] == 'X') k = 1; /* what did not decode goes no further */
    zmq_send(n->core, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0]), ZMQ_SNDMORE);
    zmq_send(n->core, key, 32, ZMQ_SNDMORE);
    zmq_send(n->core, v, vl, k > 1 ? ZMQ_SNDMORE : 0);
    for (size_t i = 1; i < k; i++)
        zmq_msg_send(&parts[i], n->core, i + 1 < k ? ZMQ_SNDMORE : 0);
    for (size_t i = 0; i < got; i++) /* (a frame sent is empty: closing it is harmless) */
        zmq_msg_close(&parts[i]);
    return 0;
}

/* One message from the core: a reply or delivery to send on, or new keys. */
static int s_from_core(nk *n)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, n->core, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    if (zmq_msg_size(&m) == 0) { /* control: KEYS */
        int ok = zmq_msg_more(&m);
        zmq_msg_t c, body;
        zmq_msg_init(&c);
        zmq_msg_init(&body);
        ok = ok && zmq_msg_recv(&c, n->core, 0) >= 0 && zmq_msg_more(&c) &&
             zmq_msg_recv(&body, n->core, 0) >= 0 && zmq_msg_size(&c) == 4 &&
             memcmp(zmq_msg_data(&c), "KEYS", 4) == 0;
        while (zmq_msg_more(&body) && zmq_msg_recv(&body, n->core, 0) >= 0) {
        }
        if (!ok || s_keys(n, &body)) sh_log(SH_LOG_ERROR, NULL, NULL, "bad KEYS from the core");
        zmq_msg_close(&c);
        zmq_msg_close(&body);
        zmq_msg_close(&m);
        return 0;
    }
    /* routing id first: a peer that has gone (EHOSTUNREACH) or does not read (EAGAIN) gets
     * none of the message; the rest of the frames are read and dropped */
    int sending = zmq_msg_send(&m, n->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0;
    if (!sending) {
        if (zmq_errno() == EAGAIN) n->counts[C_DROPPED]++;
        zmq_msg_close(&m);
    }
    int more = 1;
    while (more) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, n->core, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        more = zmq_msg_more(&m);
        if (!sending || zmq_msg_send(&m, n->router, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
            zmq_msg_close(&m);
    }
    return 0;
}

/* The allowlist (sandbox.h); where the kernel has no seccomp, it says so. */
static int s_sandbox(char *why, size_t cap)
{
    sh_error err;
    int filtered = 0;
    if (sh_sandbox_confine(&filtered, &err)) {
        snprintf(why, cap, "%s", err.detail);
        return -1;
    }
    if (!filtered)
        sh_log(SH_LOG_ERROR, NULL, NULL,
               "this kernel has no seccomp (or this is valgrind): no system call filter");
    return 0;
}

/* Sets up the sockets (keys first: ZAP answers from them), binds, sandboxes. */
static int s_start(nk *n, const char *keyfile, char **eps, int neps, char *why, size_t cap)
{
    char secret[SH_Z85_LEN + 1], zpub[SH_Z85_LEN + 1];
    sh_error err;
    if (sh_curve_secret_load(keyfile, secret, zpub, &err)) {
        snprintf(why, cap, "%s", err.detail);
        return -1;
    }
    zmq_pollitem_t it = {n->core, 0, ZMQ_POLLIN, 0};
    for (int64_t until = sh_clock_ms() + 10000; !n->keys_msg && sh_clock_ms() < until;)
        if (zmq_poll(&it, 1, 100) > 0) s_from_core(n);
    /* messages queued to one peer: ZeroMQ learns what the peer has read only every half of
     * this, so about 8,000 are dependable: a full window sent one delivery a message (at most
     * 4,096; usually 64 share a message) plus the CONFIRMs of its agent's publish window (64)
     * plus receipts fit with room */
    int one = 1, linger = 0, hwm = 16384;
    int64_t maxmsg = SH_WIRE_MSG_MAX;
    int rc = n->keys_msg ? 0 : -1;
    if (rc) snprintf(why, cap, "no keys from the core");
    n->zap = zmq_socket(n->ctx, ZMQ_REP);
    n->router = zmq_socket(n->ctx, ZMQ_ROUTER);
    if (!rc && (!n->zap || !n->router || zmq_bind(n->zap, "inproc://zeromq.zap.01") ||
                zmq_setsockopt(n->router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
                zmq_setsockopt(n->router, ZMQ_CURVE_SECRETKEY, secret, SH_Z85_LEN) ||
                zmq_setsockopt(n->router, ZMQ_ZAP_DOMAIN, "sharehub", 8) ||
                zmq_setsockopt(n->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
                zmq_setsockopt(n->router, ZMQ_LINGER, &linger, sizeof linger) ||
                zmq_setsockopt(n->router, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
                zmq_setsockopt(n->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
                zmq_socket_monitor(n->router, "inproc://sharehub-monitor",
                                   ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) ||
                !(n->monitor = zmq_socket(n->ctx, ZMQ_PAIR)) ||
                zmq_setsockopt(n->monitor, ZMQ_LINGER, &linger, sizeof linger) ||
                zmq_connect(n->monitor, "inproc://sharehub-monitor"))) {
        snprintf(why, cap, "zmq: %s", zmq_strerror(zmq_errno()));
        rc = -1;
    }
    sh_wipe(secret, sizeof secret);
    for (int i = 0; !rc && i < neps; i++)
        if (zmq_bind(n->router, eps[i])) {
            snprintf(why, cap, "bind %s: %s", eps[i], zmq_strerror(zmq_errno()));
            rc = -1;
        }
    /* OpenSSL reads its configuration and loads its algorithms on first use: all of it now,
     * while files can still be opened (a signature made and checked, the evidence's digests) */
    sh_signkey *sk = NULL;
    uint8_t pub[SH_SIGN_PUB_BYTES], sig[SH_SIG_BYTES];
    if (!rc &&
        (sh_signkey_generate(&sk) || sh_sign(sk, "x", 1, sig) ||
         (sh_signkey_public(sk, pub), sh_verify(pub, "x", 1, sig)) || sh_evidence_prepare())) {
        snprintf(why, cap, "OpenSSL: Ed25519, SHA-256 or AES-256-CTR unavailable");
        rc = -1;
    }
    sh_signkey_destroy(&sk);
    if (!rc) rc = s_sandbox(why, cap);
    return rc;
}

int bk_net_main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "sharehub-broker " BK_NET_FLAG ": run by the broker, not by hand\n");
        return 2;
    }
    sh_log_init("broker-net", atoi(argv[2]));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* the core reloads; a terminal's HUP is not for this process */
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    nk n = {0};
    pid_t core = getppid();
    /* to the core, at most INBOUND_HWM messages wait (then this process waits, and stops
     * reading the network: a flood backs up to its sender, as it did before the separation);
     * from the core, no limit (the core never waits on this process) */
    int linger = 0, hwm = INBOUND_HWM, unlimited = 0, never = -1;
    char why[DETAIL_MAX] = "";
    n.ctx = zmq_ctx_new();
    n.core = n.ctx ? zmq_socket(n.ctx, ZMQ_PAIR) : NULL;
    int rc = !n.core || zmq_setsockopt(n.core, ZMQ_LINGER, &linger, sizeof linger) ||
                     zmq_setsockopt(n.core, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
                     zmq_setsockopt(n.core, ZMQ_RCVHWM, &unlimited, sizeof unlimited) ||
                     zmq_setsockopt(n.core, ZMQ_RECONNECT_IVL, &never, sizeof never) ||
                     zmq_connect(n.core, argv[0])
                 ? -1
                 : 0;
    if (rc) {
        fprintf(stderr, "sharehub-broker: network process: channel %s: %s\n", argv[0],
                zmq_strerror(zmq_errno()));
    } else if (s_start(&n, argv[1], argv + 3, argc - 3, why, sizeof why)) {
        s_control(&n, "FAILED", why, strlen(why));
        rc = -1;
    } else {
        s_control(&n, "READY", NULL, 0);
    }
    int64_t last = sh_clock_ms();
    while (!rc && !s_stop) {
        zmq_pollitem_t items[4] = {{n.router, 0, ZMQ_POLLIN, 0},
                                   {n.core, 0, ZMQ_POLLIN, 0},
                                   {n.zap, 0, ZMQ_POLLIN, 0},
                                   {n.monitor, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 4, 100) < 0 && zmq_errno() != EINTR) break;
        /* a turn reads what is waiting, up to a bound each way, so neither starves */
        for (int i = 0; i < 512 && (items[0].revents & ZMQ_POLLIN) && !s_from_peer(&n); i++) {
        }
        for (int i = 0; i < 1024 && (items[1].revents & ZMQ_POLLIN) && !s_from_core(&n); i++) {
        }
        if (items[2].revents & ZMQ_POLLIN) s_zap(&n);
        if (items[3].revents & ZMQ_POLLIN) s_monitor(&n);
        int64_t now = sh_clock_ms();
        if (now - last >= 100) {
            last = now;
            uint8_t c[8 * BK_NET_COUNTS];
            int any = 0;
            for (int i = 0; i < BK_NET_COUNTS; i++) {
                sh_be64_put(c + 8 * i, n.counts[i] - n.sent[i]);
                any |= n.counts[i] != n.sent[i];
                n.sent[i] = n.counts[i];
            }
            if (any) s_control(&n, "COUNTS", c, sizeof c);
            if (getppid() != core) break; /* the core is gone */
        }
    }
    if (n.monitor) zmq_close(n.monitor);
    if (n.router) zmq_close(n.router);
    if (n.zap) zmq_close(n.zap);
    if (n.core) zmq_close(n.core);
    if (n.ctx) zmq_ctx_term(n.ctx);
    free(n.keys);
    free(n.keys_msg);
    /* (_exit: after the sandbox, nothing at exit may open a file) */
    fflush(stderr);
    _exit(rc || !s_stop ? 1 : 0);
}
