/*
 * broker.h — the sharehub broker: authenticated routing under WEISF with durable
 * store-and-forward (docs/protocol.md, docs/policy.md).
 *
 * Owns: the ROUTER socket and its ZAP handler, sessions, the broker's store (accepted events,
 * per-recipient queues, the audit log), the loaded registry and policy.
 * Never: confirms an event before it and its queue entries are durable; believes an
 * envelope's source over the key that sent it; delivers a field an ISP does not allow; drops
 * a queued delivery before the recipient's ACK.
 */
#ifndef SHAREHUB_BROKER_H
#define SHAREHUB_BROKER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sh_broker_config {
    const char *endpoints[4]; /* tcp://127.0.0.1:7750, ipc:///run/sharehub/broker; NULL-ended */
    const char *store_dir;
    const char *master_key;    /* store master key file (0600) */
    const char *sign_key;      /* Ed25519 PEM for audit checkpoints (0600) */
    const char *curve_key;     /* file holding the broker's Z85 CURVE secret key (0600) */
    const char *registry;      /* enrolment registry file */
    const char *policy_dir;    /* directory of isp-*.yaml */
    const char *org_code;      /* the broker's own code, source of its receipts; "SHAREHUB" */
    int heartbeat_ms;          /* peers silent 3x this long are forgotten; default 5000 */
    int redeliver_ms;          /* unacked deliveries are resent after this; default 30000 */
    unsigned window;           /* deliveries in flight per recipient; default 1024, max 4096 */
    int64_t expiry_ms;         /* undelivered entries expire after this (an ISP may say
                                  otherwise); default 5 days */
    int64_t keep_ms;           /* the broker's copies of an event are erased after this; default
                                  30 days, never less than the longest delivery expiry */
    size_t map_size;           /* store map size; 0 = default */
    uint32_t checkpoint_every; /* audit checkpoint interval; 0 = default */
    int log_level;             /* 0 info and up (default), 1 warnings and errors, 2 errors */
    const char *http_listen;   /* metrics and health endpoint, "127.0.0.1:9750"; NULL: none */
    const char *net_program;   /* the sharehub-broker program, run as the network process
                                  (net.h); NULL: this process's own (/proc/self/exe) */
    /* federation (docs/federation.md): all three, or none */
    const char *directory;      /* the signed federation directory file */
    const char *federation_key; /* the federation's Ed25519 public key, 64 hex digits */
    const char *authority;      /* this broker's local authority, its LA code ("881") */
    const char *links[9];       /* "LA=KEYFILE": a link this broker starts for each neighbour
                                   (sharehub-link, with that CURVE secret key); NULL-ended */
} sh_broker_config;

typedef struct sh_broker sh_broker;

/* Loads keys, registry and policy, opens the store, binds the endpoints. */
sh_err sh_broker_new(const sh_broker_config *cfg, sh_broker **out, sh_error *err);

/* Serves until *stop becomes non-zero; reloads registry and policy whenever *reload is
 * non-zero (and clears it). Returns SH_OK on a clean stop. */
sh_err sh_broker_run(sh_broker *b, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload);

/* Writes a final audit checkpoint, closes sockets and the store. */
void sh_broker_destroy(sh_broker **b);

/* The broker's public CURVE key (Z85) derived from its secret key file. */
const char *sh_broker_public_key(const sh_broker *b);

#endif
