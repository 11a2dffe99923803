/*
 * broker.c — the broker's life: configuration and keys, the event loop, and the batch — the
 * messages read in one turn are handled in one write transaction and committed once (group
 * commit), then answered. broker_int.h maps the other files.
 *
 * Owns: the sh_broker, its registry, policy and vault. Never: keeps the master key once the
 * store is open; reads the network itself (the network process does: net.h); sends a reply
 * or a delivery that a failed commit undid.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker_int.h"
#include "directory.h"
#include "clock.h"
#include "log.h"

/* The store's pages this process has mapped count in its resident set though they belong
 * to the page cache; past 32 MiB they are unmapped (they stay cached), so the broker's
 * resident set stays flat however long the queues grow. Checked every 100 ms (once a second
 * let a fast publisher map 30 MiB more between two checks). */
#define MAPPED_MAX (32L << 20)
static void s_trim(sh_broker *b)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size = 0, resident = 0, shared = 0;
    int n = f ? fscanf(f, "%ld %ld %ld", &size, &resident, &shared) : 0;
    if (f) fclose(f);
    if (n == 3 && shared * sysconf(_SC_PAGESIZE) > MAPPED_MAX &&
        sh_store_release_pages(b->store) != SH_OK)
        bk_log("warning", "could not release the store's mapped pages");
}

static void s_batch(sh_broker *b)
{
    sh_txn *t = NULL;
    sh_error err;
    if (sh_txn_begin(b->store, 1, &t, &err)) {
        bk_log("error", "cannot begin a transaction: %s", err.detail);
        return;
    }
    uint64_t seq = b->seq;
    b->nreplies = 0;
    bk_stats_reset(&b->stage);
    /* (stop reading while one more message of SH_ACK_MAX acks could not fit its replies) */
    for (int k = 0; k < BATCH_MAX && b->nreplies + SH_ACK_MAX <= REPLIES_MAX; k++) {
        bk_inbound in;
        int got = bk_net_recv(b, &in, 0);
        if (got == 1) bk_dispatch(b, t, &seq, &in);
        if (got == 2) bk_net_control(b, &in, NULL, 0);
        if (got == -1) bk_log("error", "a broken message from the network process, dropped");
        bk_inbound_close(&in);
        if (got == 0) break;
    }
    /* (a failed put leaves the transaction failed: its commit then reports the first error) */
    bk_depths_apply(b, t, &err);
    sh_err rc = sh_txn_commit(&t, &err);
    if (rc) {
        bk_log("error", "commit failed, %zu replies refused: %s", b->nreplies, err.detail);
        b->store_failed_ms = sh_clock_ms();
        for (size_t i = 0; i < b->nreplies; i++) {
            bk_reply *r = &b->replies[i];
            if (r->kind == BK_REPLY_ACK) bk_unflight(b, r, sh_clock_ms() + b->cfg.redeliver_ms);
            if (strcmp(r->cmd, "CONFIRM") == 0) {
                /* every CONFIRM of the batch becomes the commit's refusal, still naming its
                 * event (the sender's outbox keeps it and retries) */
                uint8_t id[16];
                int has = r->has_id;
                memcpy(id, r->id, 16);
                sh_wire_body_clear(&r->body);
                bk_confirm(r, has ? id : NULL, rc, sh_err_message(rc));
                bk_reply_flush(b, r);
            }
        }
        return;
    }
    b->seq = seq;
    b->store_failed_ms = 0;
    bk_stats_merge(&b->stats, &b->stage);
    bk_depths_apply(b, NULL, &err);
    for (size_t i = 0; i < b->nreplies; i++) {
        bk_reply *r = &b->replies[i];
        if (r->kind == BK_REPLY_ACK) bk_unflight(b, r, 0);
        if (strcmp(r->cmd, "NONE") != 0) bk_reply_flush(b, r);
    }
}

/* ---- life cycle ---------------------------------------------------------------------- */

static int s_named(void *ctx, const sh_org *o)
{
    return sh_policy_names_recipient(ctx, o);
}

static sh_err s_load_config(sh_broker *b, sh_error *err)
{
    sh_registry *reg = NULL;
    sh_policy *pol = NULL;
    sh_err rc = sh_registry_load(b->cfg.registry, &reg, err);
    if (!rc && b->cfg.directory) {
        uint8_t key[SH_SIGN_PUB_BYTES];
        sh_directory *dir = NULL;
        rc = sh_hex_decode(b->cfg.federation_key, key, sizeof key)
                 ? sh_error_set(err, SH_E_INVAL, "--federation-key: want 64 hex digits")
                 : sh_directory_load(b->cfg.directory, key, &dir, err);
        if (!rc) rc = sh_registry_federate(reg, dir, b->cfg.authority, err);
    }
    if (!rc) rc = sh_policy_load(b->cfg.policy_dir, &pol, err);
    /* a copy must be deliverable for as long as any delivery can wait */
    for (size_t i = 0; !rc && i < sh_policy_count(pol); i++) {
        const sh_isp *isp = sh_policy_at(pol, i);
        if (sh_isp_expiry_ms(isp) > b->cfg.keep_ms) {
            char keep[24];
            rc = sh_error_set(err, SH_E_INVAL,
                              "protocol %s: its delivery_expiry is longer than the broker keeps "
                              "an event (--keep-events %s): lengthen --keep-events",
                              sh_isp_rule(isp), sh_duration_format(b->cfg.keep_ms, keep, 24));
        }
    }
    if (!rc && b->cfg.directory) rc = sh_registry_candidates(reg, s_named, pol, err);
    if (rc) {
        sh_registry_destroy(&reg);
        sh_policy_destroy(&pol);
        return rc;
    }
    sh_registry_destroy(&b->registry);
    sh_policy_destroy(&b->policy);
    b->registry = reg;
    b->policy = pol;
    int64_t now = sh_clock_ms();
    for (size_t i = 0; i < sh_policy_count(pol); i++) {
        const sh_isp *isp = sh_policy_at(pol, i);
        sh_isp_state st = sh_isp_state_at(isp, now);
        if (st != SH_ISP_ACTIVE)
            bk_log("warning", "protocol %s is %s (review date %s)", sh_isp_rule(isp),
                   sh_isp_state_name(st), sh_isp_review_date(isp));
    }
    bk_log("info", "loaded %zu organisations and %zu protocols", sh_registry_count(reg),
           sh_policy_count(pol));
    return SH_OK;
}

sh_err bk_admin_record(sh_broker *b, const char *what, sh_err code, int checkpoint, sh_error *err)
{
    sh_audit_entry e = {.action = SH_AUDIT_ADMIN,
                        .outcome = code ? SH_AUDIT_FAILED : SH_AUDIT_OK,
                        .code = (uint16_t)code,
                        .actor_org = b->cfg.org_code,
                        .actor_user = "broker",
                        .detail = what};
    return sh_vault_record(&b->vault, &e, checkpoint, err);
}

sh_err sh_broker_new(const sh_broker_config *cfg, sh_broker **out, sh_error *err)
{
    *out = NULL;
    /* deliveries, confirms and receipts share ZeroMQ's queue per connection (below) */
    if (cfg->window > WINDOW_MAX)
        return sh_error_set(err, SH_E_INVAL,
                            "window %u: at most %d unacknowledged deliveries per recipient",
                            cfg->window, WINDOW_MAX);
    if (cfg->keep_ms > 0 && cfg->keep_ms < (cfg->expiry_ms > 0 ? cfg->expiry_ms : 5 * 86400000LL))
        return sh_error_set(err, SH_E_INVAL,
                            "--keep-events is shorter than --delivery-expiry: an event must be "
                            "kept at least as long as its deliveries can wait");
    sh_broker *b = calloc(1, sizeof *b);
    if (!b) return sh_error_set(err, SH_E_NOMEM, "broker");
    b->cfg = *cfg;
    sh_log_init("broker", cfg->log_level);
    if (!b->cfg.org_code) b->cfg.org_code = "SHAREHUB";
    if (b->cfg.heartbeat_ms <= 0) b->cfg.heartbeat_ms = 5000;
    if (b->cfg.redeliver_ms <= 0) b->cfg.redeliver_ms = 30000;
    if (!b->cfg.window) b->cfg.window = 1024;
    if (b->cfg.expiry_ms <= 0) b->cfg.expiry_ms = 5LL * 86400 * 1000;
    if (b->cfg.keep_ms <= 0) b->cfg.keep_ms = 30LL * 86400 * 1000;
    b->replies = calloc(REPLIES_MAX, sizeof *b->replies);
    char secret[SH_Z85_LEN + 1] = "";
    sh_store_opts so = {.map_size = cfg->map_size, .wal = SH_STORE_WAL_LOAD};
    sh_err rc = b->replies ? SH_OK : sh_error_set(err, SH_E_NOMEM, "replies");
    /* (its public key, for the log; the network process loads the secret itself) */
    if (!rc) rc = sh_curve_secret_load(cfg->curve_key, secret, b->public_key, err);
    sh_wipe(secret, sizeof secret);
    if (!rc) rc = s_load_config(b, err);
    if (!rc)
        rc = sh_vault_open(cfg->store_dir, cfg->master_key, cfg->sign_key, &so,
                           cfg->checkpoint_every, &b->vault, err);
    b->store = b->vault.store;
    b->audit = b->vault.audit;
    if (!rc) rc = sh_store_db(b->store, "events", SH_DB_SEALED, &b->events, err);
    if (!rc) rc = sh_store_db(b->store, "queue", SH_DB_SEALED, &b->queue, err);
    if (!rc) rc = sh_store_db(b->store, "state", SH_DB_PLAIN, &b->state, err);
    if (!rc) rc = sh_store_db(b->store, "subs", SH_DB_PLAIN, &b->subs, err);
    if (!rc) rc = sh_store_db(b->store, "consent", SH_DB_PLAIN, &b->consent, err);
    if (!rc) rc = sh_store_db(b->store, "school", SH_DB_PLAIN, &b->school, err);
    if (!rc) rc = sh_store_db(b->store, "links", SH_DB_PLAIN, &b->links, err);
    if (!rc) rc = sh_store_db(b->store, "witnessed", SH_DB_SEALED, &b->witnessed, err);
    if (!rc) rc = sh_store_db(b->store, "witness", SH_DB_PLAIN, &b->witness_v1, err);
    if (!rc) rc = sh_store_db(b->store, "evidence", SH_DB_SEALED, &b->evidence, err);
    if (!rc) rc = bk_keep_init(b, err);
    if (!rc) {
        sh_txn *t = NULL;
        sh_buf v = {0};
        if (sh_txn_begin(b->store, 0, &t, err) == SH_OK) {
            if (sh_txn_get(t, b->state, "seq", 3, &v, err) == SH_OK && v.len == 8)
                b->seq = sh_be64_get(v.data);
            sh_txn_abort(&t);
        }
        sh_buf_free(&v);
    }
    /* the network process: a program of its own that alone reads the network (net.h) */
    if (!rc && !(b->ctx = zmq_ctx_new()))
        rc = sh_error_set(err, SH_E_IO, "zmq: %s", zmq_strerror(zmq_errno()));
    if (!rc) rc = bk_net_open(b, err);
    b->started_ms = sh_clock_ms();
    for (size_t i = 0; !rc && i < 8 && cfg->links[i]; i++) { /* (main checked their form) */
        const char *eq = strchr(cfg->links[i], '=');
        bk_peer_link *l = &b->peer_links[b->npeer_links++];
        snprintf(l->la, sizeof l->la, "%.*s", (int)(eq - cfg->links[i]), cfg->links[i]);
        l->key = eq + 1;
        if (!b->cfg.directory || !sh_registry_peer(b->registry, l->la))
            rc = sh_error_set(err, SH_E_INVAL,
                              "--link %s: no peer LA%s is enrolled in the registry (a link "
                              "forwards as its authority's peer: docs/federation.md)",
                              l->la, l->la);
    }
    if (!rc) rc = bk_links_start(b, err);
    if (!rc) rc = bk_depths_load(b, err);
    if (!rc) { /* (a failure is tried again within the hour; serving does not wait for it) */
        sh_error e2;
        if (bk_keep_sweep(b, sh_clock_ms(), &e2))
            bk_log("error", "erasing past --keep-events: %s (tried again in an hour)", e2.detail);
    }
    if (!rc && cfg->http_listen) {
        /* served by a process of its own: this one, which holds the store, parses no HTTP */
        sh_probe_site site = {bk_metrics,       bk_not_ready,   b, "broker-probe", cfg->log_level,
                              cfg->net_program, bk_ready_detail};
        rc = sh_probe_new(cfg->http_listen, &site, &b->probe, err);
    }
    if (!rc) {
        /* a store that refuses the start's entry: serve, not ready, until a batch commits */
        sh_error e2;
        if (bk_admin_record(b, "broker started", 0, 0, &e2)) {
            bk_log("error", "the start could not be audited (not ready): %s", e2.detail);
            b->store_failed_ms = sh_clock_ms();
        }
        bk_log("info", "serving on %s (public key %s)", cfg->endpoints[0], b->public_key);
        if (b->probe) bk_log("info", "metrics and health on http://%s", cfg->http_listen);
    }
    if (rc) {
        sh_broker_destroy(&b);
        return rc;
    }
    *out = b;
    return SH_OK;
}

sh_err sh_broker_run(sh_broker *b, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload)
{
    int64_t last_timers = sh_clock_ms();
    while (!*stop) {
        if (*reload) {
            *reload = 0;
            sh_error err, e2;
            sh_err rc = s_load_config(b, &err);
            if (rc)
                bk_log("error", "reload refused, keeping the old configuration: %s", err.detail);
            if (!rc && b->net_pid) bk_net_keys(b); /* who may connect, and sign */
            /* the links read the directory when they start: they start again with the new one
             * (bk_links_watch, audited), resuming from the oldest unacknowledged delivery */
            if (!rc) bk_links_stop(b);
            if (bk_admin_record(b, rc ? "reload refused" : "registry and policy reloaded", rc, 0,
                                &e2))
                bk_log("error", "the reload could not be audited: %s", e2.detail);
        }
        int probe = b->probe ? sh_probe_fd(b->probe) : -1;
        zmq_pollitem_t items[2] = {{b->net, 0, ZMQ_POLLIN, 0}, {NULL, probe, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, probe >= 0 ? 2 : 1, 100);
        if (rc < 0 && zmq_errno() != EINTR) return SH_E_IO;
        if (rc > 0 && probe >= 0 && items[1].revents) sh_probe_serve(b->probe, sh_clock_ms());
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) s_batch(b);
        int64_t now = sh_clock_ms();
        if (now - last_timers >= 100) {
            bk_net_watch(b, now);
            bk_links_watch(b, now);
            bk_timers(b);
            s_trim(b);
            bk_audit_refused(b, now);
            if (b->probe) sh_probe_serve(b->probe, now); /* its restart */
            if (now / 1000 != last_timers / 1000) {
                bk_expire(b, now);
                sh_error e2;
                if (now - b->kept_swept_ms >= 3600 * 1000 && bk_keep_sweep(b, now, &e2))
                    bk_log("error", "erasing past --keep-events: %s (tried again in an hour)",
                           e2.detail);
                if (b->dropped_sends)
                    bk_log("warning",
                           "%u messages dropped: a peer's queue was full (it is not reading)",
                           b->dropped_sends);
                b->dropped_sends = 0;
            }
            last_timers = now;
        }
        bk_pump(b);
        sh_error te; /* the tree's commit once batches stop (store.h) */
        if (sh_store_tick(b->store, &te)) bk_log("error", "store: %s", te.detail);
    }
    return SH_OK;
}

const char *sh_broker_public_key(const sh_broker *b)
{
    return b->public_key;
}

void sh_broker_destroy(sh_broker **bp)
{
    if (!bp || !*bp) return;
    sh_broker *b = *bp;
    sh_error err;
    if (b->audit && bk_admin_record(b, "broker stopped", 0, 1, &err))
        bk_log("error", "the stop could not be audited: %s", err.detail);
    sh_probe_destroy(&b->probe);
    bk_links_stop(b);
    bk_net_stop(b);
    if (b->net) zmq_close(b->net);
    if (b->ctx) zmq_ctx_term(b->ctx);
    for (size_t i = 0; i < b->nsessions; i++)
        free(b->sessions[i].flight);
    free(b->sessions);
    free(b->depths);
    if (b->replies)
        for (size_t i = 0; i < REPLIES_MAX; i++)
            bk_reply_free(&b->replies[i]);
    free(b->replies);
    sh_wire_body_free(&b->deliver);
    sh_buf_free(&b->opened);
    sh_buf_free(&b->whole);
    bk_evidence_free(b);
    sh_shred_destroy(&b->shred);
    sh_vault_close(&b->vault);

    sh_registry_destroy(&b->registry);
    sh_policy_destroy(&b->policy);
    free(b);
    *bp = NULL;
}
