/* test_origin.c — sender evidence through the real processes (docs/evidence.md): a received
 * event's origin proven when it is shown; an event injected at the broker under the school's
 * name but not signed with the school's key, and a copy the broker altered on its way, refused
 * by the hub — never stored, audited, and not acknowledged; and a registry that names signing
 * keys making the broker refuse another key. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents_fixture.h"
#include "client.h"
#include "synth.h"
#include "testutil.h"

TestSuite(origin, .init = af_setup, .fini = af_teardown, .timeout = 90);

/* How many items of type the hub's inbox holds now. */
static int s_inbox_count(const char *type)
{
    json_object *r = af_call(HUB, "{\"op\":\"inbox\",\"user\":\"tester\",\"purpose\":\"test\"}");
    cr_assert(af_ok(r));
    json_object *items = json_object_object_get(r, "items");
    int n = 0;
    for (size_t k = 0; k < json_object_array_length(items); k++)
        n += strcmp(af_get(json_object_array_get_idx(items, k), "type"), type) == 0;
    json_object_put(r);
    return n;
}

/* The hub's refusals with code 611, from its own audit log. */
static int s_refusals(char **out)
{
    char *ring = af_keyring(), store[600];
    snprintf(store, sizeof store, "%s/881.store", af_dir);
    const char *args[] = {"audit",  "replay",   store,    "--keyring", ring,
                          "--json", "--action", "refuse", NULL};
    int rc = tu_cli(out, args);
    free(ring);
    return rc;
}

/* With the school's agent stopped, publishes a concern under the school's name and transport
 * key, signed with a key of the client's own; returns the CONFIRM's code, its detail in why. */
static int s_publish_as_school(uint64_t seed, char *why, size_t cap)
{
    af_stop(&af_agent_pid[SCHOOL]);
    sh_client *c = NULL;
    sh_error err;
    cr_assert_eq(sh_client_new(af_ep, af_bpub, af_pub[SCHOOL], af_sec[SCHOOL], &c, &err), SH_OK);
    sh_synth_child ch;
    sh_synth_child_make(&seed, "881", &ch);
    uint8_t *env = NULL;
    size_t len = 0;
    cr_assert_eq(sh_synth_event(&seed, 2, &ch, "8819990", NULL, NULL, 0, &env, &len, &err), SH_OK);
    cr_assert_eq(sh_client_publish(c, env, len), SH_OK); /* (signed with the client's own key) */
    sh_msg m;
    cr_assert_eq(sh_client_expect(c, "CONFIRM", 5000, &m), SH_OK);
    int code = sh_msg_code(&m);
    snprintf(why, cap, "%.*s", m.nframes > 2 ? (int)m.len[2] : 0,
             m.nframes > 2 ? (const char *)m.frame[2] : "");
    free(env);
    sh_client_destroy(&c);
    return code;
}

/* The school publishes a concern about a synthetic child made from seed; its event id into
 * id (cap bytes) when id is given. */
static void s_concern(uint64_t seed, char *id, size_t cap)
{
    sh_synth_child c;
    sh_synth_child_make(&seed, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    if (id) snprintf(id, cap, "%s", af_get(r, "event_id"));
    json_object_put(r);
}

Test(origin, a_received_event_shows_who_signed_it)
{
    s_concern(81, NULL, 0);
    json_object *it = af_wait_for(HUB, "safeguarding_concern");
    json_object *r = af_call(
        HUB, "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"sw-1\",\"purpose\":\"triage\"}",
        af_get(it, "event_id"));
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    const char *origin = af_get(json_object_object_get(r, "item"), "origin");
    cr_assert(origin && strncmp(origin, "proven: signed by 8819990 with key ", 35) == 0, "%s",
              origin ? origin : "(none)");
    json_object_put(r);
    json_object_put(it);
}

/* The tracking entry of the school's sent event id for recipient org, or NULL (a reference). */
static json_object *s_tracking(json_object *shown, const char *org)
{
    json_object *tr = json_object_object_get(json_object_object_get(shown, "item"), "tracking");
    for (size_t k = 0; tr && k < json_object_array_length(tr); k++) {
        json_object *o = json_object_array_get_idx(tr, k);
        if (strcmp(af_get(o, "org"), org) == 0) return o;
    }
    return NULL;
}

Test(origin, the_recipients_signed_receipt_proves_to_the_sender_that_it_stored_the_event)
{
    char id[40], receipt[40] = "";
    s_concern(82, id, sizeof id);
    json_object *r = NULL;
    /* the hub stores it, and within a second or two its STORED receipt is back at the school */
    for (int tries = 0; tries < 100 && !receipt[0]; tries++) {
        usleep(100 * 1000);
        r = af_call(SCHOOL,
                    "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"dsl\","
                    "\"purpose\":\"follow-up\"}",
                    id);
        cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
        json_object *t = s_tracking(r, "881");
        json_object *v;
        if (t && json_object_object_get_ex(t, "stored_receipt", &v)) {
            snprintf(receipt, sizeof receipt, "%s", json_object_get_string(v));
            cr_assert_str_eq(af_get(t, "state"), "delivered");
            cr_assert(json_object_object_get_ex(t, "stored_at_ms", &v) &&
                      json_object_get_int64(v) > 0);
        }
        json_object_put(r);
    }
    cr_assert(receipt[0], "no signed STORED receipt from the hub reached the school");
    /* the receipt itself is held at the school, and its origin is the hub's signature */
    r = af_call(SCHOOL,
                "{\"op\":\"show\",\"event_id\":\"%s\",\"user\":\"dsl\",\"purpose\":"
                "\"follow-up\"}",
                receipt);
    cr_assert(af_ok(r), "%s", json_object_to_json_string(r));
    json_object *item = json_object_object_get(r, "item");
    const char *origin = af_get(item, "origin");
    cr_assert(origin && strncmp(origin, "proven: signed by 881 with key ", 31) == 0, "%s",
              origin ? origin : "(none)");
    const char *text = json_object_to_json_string(item);
    cr_assert(strstr(text, "\"stored\"") && strstr(text, id), "a STORED receipt for %s: %s", id,
              text);
    json_object_put(r);
}

Test(origin, an_event_injected_under_the_schools_name_is_refused_by_the_recipient)
{
    /* whoever holds the broker (or the school's transport key) publishes a concern as the
     * school, signed with a key of its own: the broker, which names no signing keys here,
     * accepts it; the hub does not */
    char why[200];
    cr_assert_eq(s_publish_as_school(82, why, sizeof why), 0, "the broker took it: %s", why);
    usleep(1500 * 1000); /* delivered to the hub, refused, redelivered, refused */
    cr_assert_eq(s_inbox_count("safeguarding_concern"), 0, "never stored");
    char *out = NULL;
    cr_assert_eq(s_refusals(&out), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":611") &&
                  strstr(out, "which the senders list does not give 8819990"),
              "%s", out);
    free(out);
}

Test(origin, a_copy_the_broker_altered_is_refused_by_the_recipient)
{
    /* a broker that changes a word of the narrative as the copy goes out (a test hook) */
    af_stop(&af_broker_pid);
    setenv("SHAREHUB_FAULT_DIR", af_dir, 1);
    af_write("deliver_tamper", "", 0600);
    af_start_broker();
    af_wait_ready();
    uint64_t rng = 83;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, c.nhs_number, c.upn);
    cr_assert(af_ok(r));
    json_object_put(r);
    usleep(1500 * 1000);
    cr_assert_eq(s_inbox_count("safeguarding_concern"), 0, "never stored");
    char *out = NULL;
    cr_assert_eq(s_refusals(&out), 0, "%s", out);
    cr_assert(strstr(out, "\"code\":611"), "%s", out);
    free(out);
    /* the broker mended, the same copy goes out whole and is taken */
    char *hook = af_path("deliver_tamper");
    unlink(hook);
    free(hook);
    json_object_put(af_wait_for(HUB, "safeguarding_concern"));
    unsetenv("SHAREHUB_FAULT_DIR");
}

/* A registry that names an organisation's signing keys (sign_keys) makes the broker itself
 * refuse an event signed by another key (E611, naming the registry); the agency's own key is
 * accepted. Applied by a reload (SIGHUP), like any enrolment. */
Test(origin, a_registry_that_names_signing_keys_makes_the_broker_refuse_another_key)
{
    char *path = af_path("registry.yaml"), *school = af_path("8819990.sign");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[16384], out[16400];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    sh_signkey *k = NULL;
    sh_error err;
    uint8_t pub[32];
    char hex[65], keys[120];
    cr_assert_eq(sh_signkey_load_file(school, &k, &err), SH_OK);
    sh_signkey_public(k, pub);
    sh_signkey_destroy(&k);
    sh_hex_encode(pub, 32, hex);
    snprintf(keys, sizeof keys, "keys: ['%s']", af_pub[SCHOOL]);
    char *at = strstr(text, keys);
    cr_assert_not_null(at, "%s", text);
    at += strlen(keys);
    snprintf(out, sizeof out, "%.*s, sign_keys: ['%s']%s", (int)(at - text), text, hex, at);
    af_write("registry.yaml", out, 0600);
    cr_assert_eq(kill(af_broker_pid, SIGHUP), 0);
    usleep(500 * 1000);
    /* another key, under the school's name: refused by the broker */
    char why[200];
    cr_assert_eq(s_publish_as_school(84, why, sizeof why), SH_E_EVIDENCE, "%s", why);
    cr_assert(strstr(why, "registry does not give 8819990"), "%s", why);
    /* the school's own key: accepted, and delivered */
    af_start_agent(SCHOOL);
    af_wait_ready();
    uint64_t rng = 85;
    sh_synth_child ch;
    sh_synth_child_make(&rng, "881", &ch);
    json_object *r = af_call(SCHOOL, CONCERN_JSON, ch.nhs_number, ch.upn);
    cr_assert(af_ok(r));
    json_object_put(r);
    json_object_put(af_wait_for(HUB, "safeguarding_concern"));
    free(path);
    free(school);
}
