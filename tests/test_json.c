/* test_json.c — the generic JSON mapping: every event type round-trips byte for byte through
 * JSON, enums and ids read both ways, and every kind of bad JSON is refused by path. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"
#include "synth.h"
#include "testutil.h"

static sh_envelope *s_parse(const char *json, sh_err want, const char *detail)
{
    ProtobufCMessage *m = NULL;
    sh_error err;
    sh_err rc =
        sh_json_to_message(json, strlen(json), &sharehub__v1__envelope__descriptor, &m, &err);
    cr_assert_eq(rc, want, "%s: got %s (%s)", json, sh_err_name(rc), err.detail);
    if (detail)
        cr_assert_not_null(strstr(err.detail, detail), "'%s' lacks '%s'", err.detail, detail);
    if (rc) cr_assert_null(m);
    return (sh_envelope *)m;
}

Test(json, every_event_type_round_trips_through_json)
{
    for (int t = 1; t <= 13; t++) {
        uint64_t rng = (uint64_t)t * 7;
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *buf = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        sh_error err;
        cr_assert_eq(sh_synth_event(&rng, t, &c, "RAJ", NULL, NULL, 100, &buf, &len, &err), SH_OK);
        sh_envelope *e = NULL;
        cr_assert_eq(sh_envelope_decode(buf, len, &e, &err), SH_OK);
        char *json = sh_json_from_message(&e->base, t % 2);
        cr_assert_not_null(json);
        sh_envelope *back = s_parse(json, SH_OK, NULL);
        cr_assert_eq(sh_envelope_encode(back, &again, &len2, &err), SH_OK, "type %d: %s\n%s", t,
                     err.detail, json);
        cr_assert_eq(len2, len, "type %d", t);
        cr_assert_arr_eq(again, buf, len, "type %d differs after JSON:\n%s", t, json);
        sh_envelope_free(e);
        protobuf_c_message_free_unpacked(&back->base, NULL);
        free(json);
        free(buf);
        free(again);
    }
}

Test(json, readable_names)
{
    sh_envelope *e = tu_envelope(3);
    char *json = sh_json_from_message(&e->base, 0);
    cr_assert_not_null(strstr(json, "\"event_type\":\"hub_decision\""), "%s", json);
    cr_assert_not_null(strstr(json, "\"article6\":\"e_public_task\""), "%s", json);
    cr_assert_not_null(strstr(json, "\"outcome\":\"family_solutions\""), "%s", json);
    cr_assert_not_null(strstr(json, "\"consent\":\"given\""), "%s", json);
    char id[37];
    sh_event_id_format(e->event_id.data, id);
    cr_assert_not_null(strstr(json, id), "event id as UUID text");
    cr_assert_null(strstr(json, "\"correlation_id\""), "defaults are left out");
    free(json);
    sh_envelope_free(e);
}

Test(json, input_forms)
{
    /* full enum names and numbers are accepted as well as short names */
    sh_envelope *e =
        s_parse("{\"event_type\": \"EVENT_TYPE_EXCLUSION\", \"consent\": 5, "
                "\"purpose\": \"Education_Welfare\", \"occurred_at_ms\": \"1767225600000\","
                "\"correlation_id\": \"0123456789abcdef0123456789ABCDEF\","
                "\"exclusion\": {}}",
                SH_OK, NULL);
    cr_assert_eq(e->event_type, SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_EXCLUSION);
    cr_assert_eq(e->consent, 5);
    cr_assert_eq(e->purpose, SHAREHUB__V1__PURPOSE__PURPOSE_EDUCATION_WELFARE);
    cr_assert_eq(e->occurred_at_ms, 1767225600000LL);
    cr_assert_eq(e->correlation_id.len, 16);
    cr_assert_eq(e->correlation_id.data[15], 0xef);
    cr_assert_eq(e->body_case, SHAREHUB__V1__ENVELOPE__BODY_EXCLUSION);
    protobuf_c_message_free_unpacked(&e->base, NULL);
}

Test(json, bad_json_is_refused_by_path)
{
    s_parse("{\"event_type\": ", SH_E_MALFORMED, "JSON");
    s_parse("{} trailing", SH_E_MALFORMED, "JSON");
    s_parse("[1, 2]", SH_E_BAD_FIELD, "want an object");
    s_parse("{\"shoe_size\": 9}", SH_E_UNKNOWN_FIELD, "shoe_size: unknown field");
    s_parse("{\"child\": {\"shoe_size\": 9}}", SH_E_UNKNOWN_FIELD,
            "child.shoe_size: unknown field");
    s_parse("{\"child\": {\"nhs_number\": 9434765919}}", SH_E_BAD_FIELD,
            "child.nhs_number: want a string");
    s_parse("{\"event_type\": \"parking_ticket\"}", SH_E_BAD_FIELD,
            "event_type: not one of: request_for_support, safeguarding_concern, hub_decision");
    s_parse("{\"purpose\": \"curiosity\"}", SH_E_BAD_FIELD,
            "purpose: not one of: safeguarding, early_help, direct_care");
    s_parse("{\"event_type\": 99}", SH_E_BAD_FIELD, "event_type");
    s_parse("{\"level_of_need\": -1}", SH_E_BAD_FIELD, "level_of_need: number out of range");
    s_parse("{\"level_of_need\": 1.5}", SH_E_BAD_FIELD, "want a whole number");
    s_parse("{\"event_id\": \"not-a-uuid\"}", SH_E_BAD_FIELD, "event_id");
    s_parse("{\"child\": [1]}", SH_E_BAD_FIELD, "child: want an object");
    s_parse("{\"request_for_support\": {\"concerns\": {}}}", SH_E_BAD_FIELD,
            "request_for_support.concerns: want an array");
    s_parse("{\"request_for_support\": {\"concerns\": [{\"category\": \"nonsense\"}]}}",
            SH_E_BAD_FIELD, "request_for_support.concerns.category");
    s_parse("{\"exclusion\": {}, \"hub_decision\": {}}", SH_E_BAD_FIELD, "only one body");
    s_parse("{\"child\": {\"unborn\": \"yes\"}}", SH_E_BAD_FIELD, "child.unborn: want true");
    /* null means absent */
    sh_envelope *e = s_parse("{\"child\": null, \"event_type\": null}", SH_OK, NULL);
    cr_assert_null(e->child);
    protobuf_c_message_free_unpacked(&e->base, NULL);
    /* a deeply nested document is refused, not recursed into without end */
    char deep[4096] = "";
    for (int i = 0; i < 600; i++)
        strcat(deep, "[");
    s_parse(deep, SH_E_MALFORMED, "JSON");
}
