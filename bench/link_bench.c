/*
 * link_bench.c — one publisher's events to one recipient, and the recipient's DELIVERED
 * receipts back (bench/federation drives it; docs/performance.md, "Across a peer link").
 *
 *   link_bench ENDPOINT BROKER-KEY CURVE-KEY SIGN-KEY SOURCE RECIPIENT N W
 *
 * Connects to the broker at ENDPOINT as SOURCE (its CURVE secret key file and Ed25519 signing
 * key), says HELLO for receipts, and publishes N requests for support of about 1 KB (synthetic
 * children) with at most W unconfirmed, gathered into signed batches of up to 16; it counts an
 * event delivered when a DELIVERED receipt names it for RECIPIENT, whose agent sends the ACK
 * only once the copy is stored: so the figure is publish -> stored at the recipient, durably,
 * whether RECIPIENT is served by this broker or by another authority's. Prints key value lines.
 *
 * Owns: its connection and its events. Never: counts an event twice, or one it did not publish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "daemon.h"
#include "measure.h"
#include "synth.h"

#define NARRATIVE 560 /* an encoded request for support of about 1 KB */
#define BATCH     16

typedef struct ev {
    uint8_t *buf, id[16];
    size_t len;
    int confirmed, delivered;
} ev;

static int s_cmp(const void *a, const void *b)
{
    return memcmp(((const ev *)a)->id, ((const ev *)b)->id, 16);
}

static ev *s_find(ev *v, size_t n, const uint8_t *id)
{
    ev key;
    memcpy(key.id, id, 16);
    return bsearch(&key, v, n, sizeof *v, s_cmp);
}

/* Counts the events a receipt names as delivered to recipient; 0, or -1 when it is not one. */
static void s_receipt(ev *v, size_t n, const uint8_t *env, size_t len, const char *recipient,
                      size_t *delivered)
{
    sh_envelope *e = NULL;
    sh_error err;
    if (sh_envelope_decode_minimised(env, len, &e, &err)) return;
    const Sharehub__V1__DeliveryReceipt *r = e->delivery_receipt;
    if (r && r->status == SHAREHUB__V1__RECEIPT_STATUS__RECEIPT_STATUS_DELIVERED &&
        r->recipient_org && strcmp(r->recipient_org, recipient) == 0)
        for (size_t i = 0; i <= r->n_more_event_ids; i++) {
            const ProtobufCBinaryData *id = i ? &r->more_event_ids[i - 1] : &r->for_event_id;
            ev *x = id->len == 16 ? s_find(v, n, id->data) : NULL;
            if (x && !x->delivered) {
                x->delivered = 1;
                (*delivered)++;
            }
        }
    sh_envelope_free(e);
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: link_bench ENDPOINT BROKER-KEY CURVE-KEY SIGN-KEY SOURCE "
                        "RECIPIENT N W\n");
        return 2;
    }
    const char *ep = argv[1], *bkey = argv[2], *source = argv[5], *recipient = argv[6];
    size_t n = strtoul(argv[7], NULL, 10), w = strtoul(argv[8], NULL, 10);
    char sec[SH_Z85_LEN + 1], pub[SH_Z85_LEN + 1];
    sh_error err = {0};
    sh_signkey *sk = NULL;
    sh_client *c = NULL;
    if (!n || !w || sh_curve_secret_load(argv[3], sec, pub, &err) ||
        sh_signkey_load_file(argv[4], &sk, &err) || sh_client_new(ep, bkey, pub, sec, &c, &err)) {
        fprintf(stderr, "link_bench: %s\n", n && w ? err.detail : "N and W must be over 0");
        return 1;
    }
    sh_client_sign_with(c, sk);
    ev *v = calloc(n, sizeof *v);
    uint64_t rng = 2026;
    sh_synth_child child;
    for (size_t i = 0; v && i < n; i++) {
        sh_envelope *e = NULL;
        if (i % 50 == 0) sh_synth_child_make(&rng, "883", &child);
        if (sh_synth_event(&rng, 1, &child, source, NULL, NULL, NARRATIVE, &v[i].buf, &v[i].len,
                           &err) ||
            sh_envelope_decode(v[i].buf, v[i].len, &e, &err)) {
            fprintf(stderr, "link_bench: event: %s\n", err.detail);
            return 1;
        }
        memcpy(v[i].id, e->event_id.data, 16);
        sh_envelope_free(e);
    }
    if (!v) return 1;
    size_t bytes = v[0].len;
    qsort(v, n, sizeof *v, s_cmp); /* (order of publishing: the sorted order, UUIDv7 by time) */
    sh_msg m;
    if (sh_client_hello(c, "delivery_receipt") || sh_client_expect(c, "READY", 5000, &m)) {
        fprintf(stderr, "link_bench: the broker did not answer HELLO\n");
        return 1;
    }
    size_t next = 0, confirmed = 0, delivered = 0, refused = 0;
    double t0 = bench_now(), t_confirmed = 0;
    while (delivered < n) {
        size_t inflight = next - confirmed - refused;
        if (next < n && inflight < w) {
            const uint8_t *envs[BATCH];
            size_t lens[BATCH], k = 0;
            while (k < BATCH && next < n && inflight + k < w) {
                envs[k] = v[next].buf;
                lens[k++] = v[next++].len;
            }
            if (sh_client_publish_batch(c, envs, lens, k)) {
                fprintf(stderr, "link_bench: publish failed\n");
                return 1;
            }
        }
        sh_err rc = sh_client_recv(c, next < n && next - confirmed - refused < w ? 0 : 30000, &m);
        if (rc == SH_E_NOT_FOUND && (next == n || next - confirmed - refused >= w)) {
            fprintf(stderr, "link_bench: nothing for 30 s: %zu confirmed, %zu delivered\n",
                    confirmed, delivered);
            return 1;
        }
        for (; rc == SH_OK; rc = sh_client_recv(c, 0, &m)) {
            if (strcmp(m.command, "CONFIRM") == 0 && m.len[0] == 16) {
                ev *x = s_find(v, n, m.frame[0]);
                if (x && !x->confirmed) {
                    x->confirmed = 1;
                    if (sh_msg_code(&m) == 0)
                        confirmed++;
                    else
                        refused++;
                    if (confirmed + refused == n) t_confirmed = bench_now();
                }
            } else if (strcmp(m.command, "DELIVER") == 0 && m.nframes == SH_DELIVER_FIELDS) {
                s_receipt(v, n, m.frame[4], m.len[4], recipient, &delivered);
                sh_client_ack(c, m.frame[0]);
            }
        }
        if (refused) {
            fprintf(stderr, "link_bench: %zu refused\n", refused);
            return 1;
        }
    }
    double t = bench_now() - t0;
    printf("events %zu\nevent_bytes %zu\nwindow %zu\nseconds %.3f\nconfirmed_per_s %.0f\n"
           "delivered_per_s %.0f\n",
           n, bytes, w, t, (double)n / (t_confirmed - t0), (double)n / t);
    for (size_t i = 0; i < n; i++)
        free(v[i].buf);
    free(v);
    sh_client_destroy(&c);
    sh_signkey_destroy(&sk);
    return 0;
}
