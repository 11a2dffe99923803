/*
 * agent.c — the agent's life: its configuration, the loop that serves the broker link, the
 * local interface and the metrics page, and start and stop. agent_int.h maps the other files.
 *
 * Owns: the sh_agent, its vault, sockets and configuration. Never: keeps the master key once
 * the store is open; lets a write stand whose audit entry failed (ag_audit, ag_commit).
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "agent_int.h"
#include "cli.h"
#include "clock.h"
#include "ident.h"
#include "log.h"

static const cyaml_strval_t s_levels[] = {{"info", 0}, {"warning", 1}, {"error", 2}};
static const cyaml_strval_t s_roles[] = {
    {"education", ROLE_EDUCATION}, {"health", ROLE_HEALTH}, {"social_care", ROLE_SOCIAL_CARE}};
static const cyaml_schema_field_t s_broker_fields[] = {
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_POINTER, y_broker, endpoint, 1, 256),
    CYAML_FIELD_STRING_PTR("public_key", CYAML_FLAG_POINTER, y_broker, public_key, 40, 40),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_short_string = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 64)};
static const cyaml_schema_field_t s_locality_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_locality, name, 1, 32),
    CYAML_FIELD_SEQUENCE("referrers", CYAML_FLAG_POINTER, y_locality, referrers, &s_short_string, 0,
                         1000),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_locality = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_locality, s_locality_fields)};
static const cyaml_schema_field_t s_front_door_fields[] = {
    CYAML_FIELD_STRING_PTR("working_days", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_front_door,
                           working_days, 1, 8),
    CYAML_FIELD_STRING_PTR("day_ends", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_front_door,
                           day_ends, 1, 8),
    CYAML_FIELD_STRING_PTR("due_soon", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_front_door,
                           due_soon, 1, 16),
    CYAML_FIELD_SEQUENCE("bank_holidays", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_front_door,
                         bank_holidays, &s_short_string, 0, FD_HOLIDAYS_MAX + 1),
    CYAML_FIELD_SEQUENCE("localities", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_front_door,
                         localities, &s_locality, 0, 64),
    CYAML_FIELD_END};
static const cyaml_schema_field_t s_config_fields[] = {
    CYAML_FIELD_STRING_PTR("org", CYAML_FLAG_POINTER, y_config, org, 1, 9),
    CYAML_FIELD_ENUM("role", CYAML_FLAG_STRICT, y_config, role, s_roles, 3),
    CYAML_FIELD_MAPPING_PTR("broker", CYAML_FLAG_POINTER, y_config, broker, s_broker_fields),
    CYAML_FIELD_STRING_PTR("curve_key", CYAML_FLAG_POINTER, y_config, curve_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("store", CYAML_FLAG_POINTER, y_config, store, 1, 4096),
    CYAML_FIELD_STRING_PTR("master_key", CYAML_FLAG_POINTER, y_config, master_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("sign_key", CYAML_FLAG_POINTER, y_config, sign_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("senders", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config, senders,
                           1, 4096),
    CYAML_FIELD_STRING_PTR("socket", CYAML_FLAG_POINTER, y_config, socket, 1, 100),
    CYAML_FIELD_STRING_PTR("socket_group", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           socket_group, 1, 32),
    CYAML_FIELD_STRING_PTR("erase_keys", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           erase_keys, 1, 4096),
    CYAML_FIELD_STRING_PTR("subscriptions", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           subscriptions, 1, 1000),
    CYAML_FIELD_STRING_PTR("http", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config, http, 1, 64),
    CYAML_FIELD_STRING_PTR("heartbeat_ms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           heartbeat_text, 1, 12),
    CYAML_FIELD_STRING_PTR("witness_ms", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                           witness_text, 1, 12),
    CYAML_FIELD_MAPPING_PTR("front_door", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, y_config,
                            front_door, s_front_door_fields),
    CYAML_FIELD_ENUM("log_level", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_config, log_level,
                     s_levels, 3),
    CYAML_FIELD_END};
static const cyaml_schema_value_t s_config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_config, s_config_fields)};

/* 0 when subs is "*" or event type names separated by commas (what the broker accepts). */
static int s_subscriptions_check(const char *subs)
{
    if (strcmp(subs, "*") == 0) return 0;
    char name[40];
    for (const char *p = subs;;) {
        size_t l = strcspn(p, ",");
        if (l == 0 || l >= sizeof name) return -1;
        memcpy(name, p, l);
        name[l] = '\0';
        if (!sh_event_type_from_name(name)) return -1;
        if (!p[l]) return 0;
        p += l + 1;
    }
}

/* An administrative audit entry of this agent (start, stop), in its own transaction. */
static sh_err s_record(sh_agent *a, const char *what, int checkpoint, sh_error *err)
{
    sh_audit_entry e = {.action = SH_AUDIT_ADMIN,
                        .outcome = SH_AUDIT_OK,
                        .actor_org = a->cfg->org,
                        .actor_user = "agent",
                        .detail = what};
    return sh_vault_record(&a->vault, &e, checkpoint, err);
}

sh_err sh_agent_new(const char *config_path, sh_agent **out, sh_error *err)
{
    *out = NULL;
    sh_agent *a = calloc(1, sizeof *a);
    if (!a) return sh_error_set(err, SH_E_NOMEM, "agent");
    void *data = NULL;
    sh_err rc = sh_yaml_load(config_path, &s_config_schema, &data, SH_E_INVAL, err);
    a->cfg = data;
    if (!rc) sh_log_init("agent", a->cfg->log_level);
    if (!rc && sh_org_code_check(a->cfg->org))
        rc = sh_error_set(err, SH_E_INVAL, "%s: org is not an organisation code", config_path);
    if (!rc && a->cfg->subscriptions && s_subscriptions_check(a->cfg->subscriptions))
        rc = sh_error_set(err, SH_E_BAD_SUBSCRIPTION,
                          "%s: subscriptions: want * or event type names separated by commas, "
                          "no spaces (docs/agent.md lists them)",
                          config_path);
    /* numbers are whole numbers in their range: libcyaml would read "2.5" as 2 */
    const struct {
        const char *key, *text;
        unsigned *out;
        long lo, hi;
    } nums[] = {{"heartbeat_ms", rc ? NULL : a->cfg->heartbeat_text,
                 rc ? NULL : &a->cfg->heartbeat_ms, 100, 3600000},
                {"witness_ms", rc ? NULL : a->cfg->witness_text, rc ? NULL : &a->cfg->witness_ms,
                 100, 86400000}};
    for (size_t i = 0; !rc && i < sizeof nums / sizeof nums[0]; i++) {
        long v = 0;
        if (!nums[i].text) continue;
        if (cli_number(nums[i].text, nums[i].lo, nums[i].hi, &v))
            rc = sh_error_set(err, SH_E_INVAL,
                              "%s: %s: '%.12s' is not a whole number from %ld to %ld", config_path,
                              nums[i].key, nums[i].text, nums[i].lo, nums[i].hi);
        else
            *nums[i].out = (unsigned)v;
    }
    if (!rc && (rc = ag_fd_rules_load(a->cfg->front_door, &a->fd, err))) {
        char why[sizeof err->detail];
        snprintf(why, sizeof why, "%s", err->detail);
        sh_error_set(err, rc, "%s: %s", config_path, why);
    }
    char secret[SH_Z85_LEN + 1] = "", pub[SH_Z85_LEN + 1];
    if (!rc) rc = sh_curve_secret_load(a->cfg->curve_key, secret, pub, err);
    if (!rc)
        rc = sh_vault_open(a->cfg->store, a->cfg->master_key, a->cfg->sign_key,
                           &(sh_store_opts){.wal = SH_STORE_WAL_LOAD}, 0, &a->vault, err);
    a->store = a->vault.store;
    a->audit = a->vault.audit;
    const struct {
        const char *name;
        unsigned flags;
        sh_db *db;
    } dbs[] = {{"events", SH_DB_SEALED, &a->events},
               {"evidence", SH_DB_SEALED, &a->evidence},
               {"by_child", SH_DB_PLAIN, &a->by_child},
               {"by_thread", SH_DB_PLAIN, &a->by_thread},
               {"inbox", SH_DB_PLAIN, &a->inbox},
               {"outbox", SH_DB_SEALED, &a->outbox},
               {"outcome", SH_DB_PLAIN, &a->outcome},
               {"state", SH_DB_PLAIN, &a->state},
               {"tracking", SH_DB_PLAIN, &a->tracking},
               {"read", SH_DB_PLAIN, &a->read},
               {"acks", SH_DB_PLAIN, &a->acks},
               {"accounts", SH_DB_SEALED, &a->accounts},
               {"front_door", SH_DB_PLAIN, &a->front_door},
               {"fd_by_id", SH_DB_PLAIN, &a->fd_by_id},
               {"by_name", SH_DB_PLAIN, &a->by_name},
               {"retention", SH_DB_PLAIN, &a->retention},
               {"retention_due", SH_DB_PLAIN, &a->retention_due},
               {"stored_due", SH_DB_PLAIN, &a->stored_due}};
    for (size_t i = 0; !rc && i < sizeof dbs / sizeof dbs[0]; i++)
        rc = sh_store_db(a->store, dbs[i].name, dbs[i].flags, dbs[i].db, err);
    if (!rc) { /* the day keys that erase by forgetting (docs/store-format.md) */
        char path[4200];
        if (a->cfg->erase_keys)
            snprintf(path, sizeof path, "%s", a->cfg->erase_keys);
        else
            snprintf(path, sizeof path, "%s/erase.shred", a->cfg->store);
        rc = sh_shred_open(path, 1, &a->shred, err);
    }
    if (!rc) rc = ag_indexes_upgrade(a, err);
    if (!rc) rc = ag_load_seq(a, "inbox_seq", &a->inbox_seq, err);
    if (!rc) rc = ag_load_seq(a, "outbox_seq", &a->outbox_seq, err);
    if (!rc) rc = ag_receipts_load(a, err);
    if (!rc) {
        sh_txn *t = NULL;
        sh_cursor *c = NULL;
        sh_kv kv;
        rc = sh_txn_begin(a->store, 0, &t, err);
        if (!rc) rc = sh_cursor_open(t, a->outbox, &c, err);
        for (rc = rc ? rc : sh_cursor_key(c, SH_CURSOR_FIRST, NULL, 0, &kv, err); rc == SH_OK;
             rc = sh_cursor_key(c, SH_CURSOR_NEXT, NULL, 0, &kv, err))
            a->outbox0++;
        sh_cursor_close(&c);
        sh_txn_abort(&t);
        if (rc == SH_E_NOT_FOUND) rc = SH_OK;
    }
    a->started_ms = sh_clock_ms();
    if (!rc) { /* what fell due while the agent was stopped goes before anyone can read it */
        sh_error e2;
        if (ag_retain_sweep(a, a->started_ms, NULL, NULL, &e2))
            ag_log(a, "error", "retention: the sweep at start failed: %s", e2.detail);
    }
    if (!rc && a->cfg->http) {
        /* served by a process of its own: this one, which holds the store, parses no HTTP */
        sh_probe_site site = {ag_metrics,        ag_not_ready, a,   "agent-probe",
                              a->cfg->log_level, NULL,         NULL};
        rc = sh_probe_new(a->cfg->http, &site, &a->probe, err);
    }
    if (!rc) rc = ag_senders_load(a, err);
    if (!rc)
        rc = sh_client_new_agent(a->cfg->broker->endpoint, a->cfg->broker->public_key, pub, secret,
                                 100, &a->broker, err);
    if (!rc) sh_client_sign_with(a->broker, a->vault.signer); /* what it publishes, it signs */
    sh_wipe(secret, sizeof secret);
    if (!rc) {
        /* the local interface: a socket file only this user can open */
        char ep[160];
        snprintf(ep, sizeof ep, "ipc://%s", a->cfg->socket);
        a->ctx = zmq_ctx_new();
        a->rep = a->ctx ? zmq_socket(a->ctx, ZMQ_ROUTER) : NULL;
        mode_t old = umask(0077);
        int linger = 0;
        if (!a->rep || zmq_setsockopt(a->rep, ZMQ_LINGER, &linger, sizeof linger) ||
            zmq_bind(a->rep, ep))
            rc = sh_error_set(err, SH_E_IO, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
        umask(old);
        /* with socket_group, its members may connect too: each as themselves (local.c) */
        struct group gr, *g = NULL;
        char gbuf[4096];
        if (!rc && a->cfg->socket_group &&
            (getgrnam_r(a->cfg->socket_group, &gr, gbuf, sizeof gbuf, &g) != 0 || !g))
            rc = sh_error_set(err, SH_E_INVAL, "socket_group: no group '%.32s' on this host",
                              a->cfg->socket_group);
        if (!rc && g && chown(a->cfg->socket, (uid_t)-1, g->gr_gid))
            rc = sh_error_set(err, SH_E_IO, "chown %s: %s", a->cfg->socket, strerror(errno));
        if (!rc && chmod(a->cfg->socket, g ? 0660 : 0600))
            rc = sh_error_set(err, SH_E_IO, "chmod %s: %s", a->cfg->socket, strerror(errno));
    }
    if (!rc) {
        /* a store that refuses the start's entry: serve, not ready, until a write works */
        sh_error e2;
        if (s_record(a, "agent started", 0, &e2)) {
            ag_log(a, "error", "the start could not be audited (not ready): %s", e2.detail);
            a->store_failed_ms = sh_clock_ms();
        }
        ag_broker_head_load(a);
        ag_log(a, "info", "serving %s", a->cfg->socket);
        if (a->probe) ag_log(a, "info", "metrics and health on http://%s", a->cfg->http);
    }
    if (rc) {
        sh_agent_destroy(&a);
        return rc;
    }
    *out = a;
    return SH_OK;
}

sh_err sh_agent_run(sh_agent *a, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        int probe = a->probe ? sh_probe_fd(a->probe) : -1;
        zmq_pollitem_t items[3] = {{sh_client_socket(a->broker), 0, ZMQ_POLLIN, 0},
                                   {a->rep, 0, ZMQ_POLLIN, 0},
                                   {NULL, probe, ZMQ_POLLIN, 0}};
        int gather = ag_gather_wait_ms(a, sh_clock_ms());
        int rc = zmq_poll(items, probe >= 0 ? 3 : 2, gather >= 0 && gather < 100 ? gather : 100);
        if (rc < 0 && zmq_errno() != EINTR) return SH_E_IO;
        /* (every turn: its answers, and its restart if it died) */
        if (a->probe) sh_probe_serve(a->probe, sh_clock_ms());
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) ag_broker_io(a);
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) ag_local_io(a);
        ag_flush(a, &a->batch); /* one commit for the turn: deliveries, CONFIRMs, publishes */
        ag_timers(a);
        ag_drain(a);
        sh_error te; /* the tree's commit once batches stop (store.h) */
        if (sh_store_tick(a->store, &te)) ag_log(a, "error", "store: %s", te.detail);
    }
    return SH_OK;
}

void sh_agent_destroy(sh_agent **ap)
{
    if (!ap || !*ap) return;
    sh_agent *a = *ap;
    if (a->audit) {
        sh_error err;
        sh_txn *t = NULL;
        if (a->bhead_dirty && sh_txn_begin(a->store, 1, &t, &err) == SH_OK &&
            (ag_broker_head_record(a, t, 1, &err) || sh_txn_commit(&t, &err)))
            ag_log(a, "error", "the broker's last head could not be recorded: %s", err.detail);
        sh_txn_abort(&t);
        if (s_record(a, "agent stopped", 1, &err))
            ag_log(a, "error", "the stop could not be audited: %s", err.detail);
        /* have the broker witness the final checkpoint, if it is there to answer */
        sh_msg m;
        if (a->connected && a->broker && a->witnessed_seq != UINT64_MAX) {
            ag_witness(a);
            if (sh_client_expect(a->broker, "WITNESSED", 1000, &m) == SH_OK) ag_on_witnessed(a, &m);
        }
    }
    sh_probe_destroy(&a->probe);
    if (a->rep) zmq_close(a->rep);
    if (a->ctx) zmq_ctx_term(a->ctx);
    if (a->cfg && a->cfg->socket) unlink(a->cfg->socket);
    sh_client_destroy(&a->broker);
    ag_senders_free(a);
    sh_shred_destroy(&a->shred);
    sh_vault_close(&a->vault);
    sh_yaml_free(&s_config_schema, a->cfg);
    free(a);
    *ap = NULL;
}
