/* test_codec.c — Envelope round trips for every event type, every validation rule, limits,
 * malformed input, and random mutation of encoded bytes. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ident.h"
#include "minimise.h"
#include "synth.h"
#include "testutil.h"

#define EXPECT(env, code, field)                                                                   \
    do {                                                                                           \
        sh_error e_;                                                                               \
        sh_err r_ = sh_envelope_validate(env, &e_);                                                \
        cr_assert_eq(r_, code, "want %s, got %s (%s)", sh_err_name(code), sh_err_name(r_),         \
                     e_.detail);                                                                   \
        cr_assert_not_null(strstr(e_.detail, field), "detail '%s' does not name '%s'", e_.detail,  \
                           field);                                                                 \
    } while (0)

/* Sets lv to val on a fresh envelope of type t, expects code naming field, restores, frees. */
#define CASE(t, lv, val, code, field)                                                              \
    do {                                                                                           \
        sh_envelope *env = tu_envelope(t);                                                         \
        __typeof__(env->lv) saved_ = env->lv;                                                      \
        env->lv = (val);                                                                           \
        EXPECT(env, code, field);                                                                  \
        env->lv = saved_;                                                                          \
        sh_envelope_free(env);                                                                     \
    } while (0)

Test(codec, every_event_type_round_trips)
{
    for (int t = 1; t <= 13; t++) {
        uint64_t rng = (uint64_t)t;
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *buf = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        sh_error err;
        cr_assert_eq(sh_synth_event(&rng, t, &c, "RH8", NULL, NULL, 300, &buf, &len, &err), SH_OK,
                     "type %d: %s", t, err.detail);
        sh_envelope *e = NULL;
        cr_assert_eq(sh_envelope_decode(buf, len, &e, &err), SH_OK, "%s", err.detail);
        cr_assert_eq((int)e->event_type, t);
        cr_assert_eq((int)e->body_case, t + 19, "body field = type + 19");
        cr_assert_str_eq(e->source_org, "RH8");
        cr_assert_eq(e->schema_version, 1);
        if (t != 13) {
            cr_assert_str_eq(e->child->nhs_number, c.nhs_number);
            cr_assert_str_eq(e->child->upn, c.upn);
            cr_assert_str_eq(e->child->date_of_birth, c.date_of_birth);
        } else {
            cr_assert_null(e->child);
        }
        cr_assert_eq(sh_envelope_encode(e, &again, &len2, &err), SH_OK, "%s", err.detail);
        cr_assert_eq(len2, len, "type %d re-encodes to the same size", t);
        cr_assert_arr_eq(again, buf, len, "type %d re-encodes to the same bytes", t);
        cr_assert_str_neq(sh_event_type_name(t), "unknown");
        sh_envelope_free(e);
        free(buf);
        free(again);
    }
    cr_assert_str_eq(sh_event_type_name(0), "unknown");
    cr_assert_str_eq(sh_event_type_name(14), "unknown");
    cr_assert_str_eq(sh_event_type_name(1), "request_for_support");
}

Test(codec, envelope_fields_survive)
{
    sh_envelope *e = tu_envelope(3);
    cr_assert_eq(e->hub_decision->level_of_need, 3);
    cr_assert_eq(e->level_of_need, 3);
    cr_assert_eq(e->hub_decision->outcome, SHAREHUB__V1__HUB_OUTCOME__HUB_OUTCOME_FAMILY_SOLUTIONS);
    cr_assert_eq(e->lawful_basis->dpa_schedule1_paragraph, 18);
    cr_assert_eq(sh_event_id_check(e->event_id.data, e->event_id.len), SH_OK);
    sh_envelope_free(e);
}

Test(codec, size_limits)
{
    sh_error err;
    sh_envelope *e = NULL;
    uint8_t *big = calloc(1, SH_ENVELOPE_MAX + 1);
    cr_assert_eq(sh_envelope_decode(big, SH_ENVELOPE_MAX + 1, &e, &err), SH_E_TOO_LARGE);
    cr_assert_null(e);
    free(big);

    /* 64 concerns of 60 KiB each: every field is within its own limit, the whole is not. */
    e = tu_envelope(1);
    char *text = malloc(60 * 1024 + 1);
    memset(text, 'a', 60 * 1024);
    text[60 * 1024] = '\0';
    Sharehub__V1__Concern cs[64], *cp[64];
    for (int i = 0; i < 64; i++) {
        sharehub__v1__concern__init(&cs[i]);
        cs[i].category = SHAREHUB__V1__CONCERN_CATEGORY__CONCERN_CATEGORY_NEGLECT;
        cs[i].examples = text;
        cp[i] = &cs[i];
    }
    size_t saved_n = e->request_for_support->n_concerns;
    Sharehub__V1__Concern **saved = e->request_for_support->concerns;
    e->request_for_support->n_concerns = 64;
    e->request_for_support->concerns = cp;
    uint8_t *out = NULL;
    size_t len = 0;
    cr_assert_eq(sh_envelope_encode(e, &out, &len, &err), SH_E_TOO_LARGE);
    cr_assert_null(out);
    e->request_for_support->n_concerns = saved_n;
    e->request_for_support->concerns = saved;
    sh_envelope_free(e);
    free(text);
}

Test(codec, too_many_repeated)
{
    sh_envelope *e = tu_envelope(1);
    Sharehub__V1__Concern cs[65], *cp[65];
    for (int i = 0; i < 65; i++) {
        sharehub__v1__concern__init(&cs[i]);
        cs[i].category = SHAREHUB__V1__CONCERN_CATEGORY__CONCERN_CATEGORY_NEGLECT;
        cp[i] = &cs[i];
    }
    size_t saved_n = e->request_for_support->n_concerns;
    Sharehub__V1__Concern **saved = e->request_for_support->concerns;
    e->request_for_support->n_concerns = 65;
    e->request_for_support->concerns = cp;
    EXPECT(e, SH_E_BAD_FIELD, "request_for_support.concerns");
    e->request_for_support->n_concerns = saved_n;
    e->request_for_support->concerns = saved;
    sh_envelope_free(e);
}

Test(codec, malformed_bytes)
{
    sh_error err;
    sh_envelope *e = NULL;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(sh_envelope_decode(junk, sizeof junk, &e, &err), SH_E_MALFORMED);
    cr_assert_null(e);
    /* a length-delimited field that claims more bytes than there are */
    const uint8_t short_len[] = {0x0a, 0x10, 0x01, 0x02};
    cr_assert_eq(sh_envelope_decode(short_len, sizeof short_len, &e, &err), SH_E_MALFORMED);
    /* nothing at all is a message with no fields: refused for the first missing field */
    cr_assert_eq(sh_envelope_decode((const uint8_t *)"", 0, &e, &err), SH_E_MISSING_FIELD);
    cr_assert_str_eq(err.detail, "event_id");
}

Test(codec, every_truncation_is_refused)
{
    uint64_t rng = 3;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, 2, &c, "RH8", NULL, NULL, 0, &buf, &len, &err), SH_OK);
    for (size_t n = 0; n < len; n++) {
        sh_envelope *e = NULL;
        sh_err rc = sh_envelope_decode(buf, n, &e, &err);
        cr_assert_neq(rc, SH_OK, "a prefix of %zu of %zu bytes was accepted", n, len);
        cr_assert_null(e);
    }
    free(buf);
}

Test(codec, unknown_field_is_refused)
{
    uint64_t rng = 9;
    sh_synth_child c;
    sh_synth_child_make(&rng, "881", &c);
    uint8_t *buf = NULL;
    size_t len = 0;
    sh_error err;
    cr_assert_eq(sh_synth_event(&rng, 2, &c, "RH8", NULL, NULL, 0, &buf, &len, &err), SH_OK);
    uint8_t *more = malloc(len + 3);
    memcpy(more, buf, len);
    /* field 99, varint: tag = 99 << 3 | 0 = 792 = 0x98 0x06, value 1 */
    more[len] = 0x98;
    more[len + 1] = 0x06;
    more[len + 2] = 0x01;
    sh_envelope *e = NULL;
    cr_assert_eq(sh_envelope_decode(more, len + 3, &e, &err), SH_E_UNKNOWN_FIELD);
    cr_assert_not_null(strstr(err.detail, "unknown field number 99"), "%s", err.detail);
    free(buf);
    free(more);
}

Test(codec, envelope_rules)
{
    static uint8_t v4[16] = {1, 2, 3, 4, 5, 6, 0x40, 8, 0x80, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t five[5] = {1, 2, 3, 4, 5};
    CASE(2, event_id, ((ProtobufCBinaryData){0, NULL}), SH_E_MISSING_FIELD, "event_id");
    CASE(2, event_id, ((ProtobufCBinaryData){16, v4}), SH_E_BAD_EVENT_ID, "event_id");
    CASE(2, event_id, ((ProtobufCBinaryData){5, five}), SH_E_BAD_EVENT_ID, "event_id");
    CASE(2, schema_version, 2, SH_E_SCHEMA_VERSION, "schema_version 2");
    CASE(2, schema_version, 0, SH_E_SCHEMA_VERSION, "schema_version 0");
    CASE(2, event_type, 0, SH_E_MISSING_FIELD, "event_type");
    CASE(2, event_type, 1, SH_E_BODY_MISMATCH, "request_for_support");
    CASE(2, event_type, 99, SH_E_BAD_FIELD, "event_type: unknown enum value 99");
    CASE(2, source_org, "rh8", SH_E_BAD_ORG_CODE, "source_org");
    CASE(2, source_org, "", SH_E_MISSING_FIELD, "source_org");
    CASE(2, occurred_at_ms, 0, SH_E_MISSING_FIELD, "occurred_at_ms");
    CASE(2, occurred_at_ms, 1700000000, SH_E_BAD_FIELD, "occurred_at_ms"); /* seconds */
    CASE(2, published_at_ms, 0, SH_E_MISSING_FIELD, "published_at_ms");
    CASE(2, occurred_at_ms, env->published_at_ms + SH_CLOCK_SKEW_MS + 1, SH_E_BAD_FIELD,
         "occurred_at_ms: after published_at_ms");
    CASE(2, child, NULL, SH_E_MISSING_FIELD, "child");
    CASE(2, level_of_need, 5, SH_E_BAD_FIELD, "level_of_need");
    CASE(2, purpose, 0, SH_E_MISSING_FIELD, "purpose");
    CASE(2, purpose, 42, SH_E_BAD_FIELD, "purpose: unknown enum value");
    CASE(2, lawful_basis, NULL, SH_E_MISSING_FIELD, "lawful_basis");
    CASE(2, lawful_basis->article6, 0, SH_E_MISSING_FIELD, "lawful_basis.article6");
    CASE(2, lawful_basis->dpa_schedule1_paragraph, 0, SH_E_MISSING_FIELD,
         "dpa_schedule1_paragraph");
    CASE(2, lawful_basis->dpa_schedule1_paragraph, 38, SH_E_BAD_FIELD, "dpa_schedule1_paragraph");
    CASE(2, consent, 0, SH_E_MISSING_FIELD, "consent");
    { /* a risk of significant harm at universal need is a contradiction, not a ground */
        sh_envelope *env = tu_envelope(2);
        env->consent = SHAREHUB__V1__CONSENT_STATE__CONSENT_STATE_NOT_SOUGHT_RISK_OF_HARM;
        env->level_of_need = 1;
        EXPECT(env, SH_E_BAD_FIELD, "contradicts level_of_need 1");
        env->level_of_need = 2;
        sh_error e2 = {0};
        cr_assert_eq(sh_envelope_validate(env, &e2), SH_OK, "%s", e2.detail);
        sh_envelope_free(env);
    }
    CASE(2, correlation_id, ((ProtobufCBinaryData){5, five}), SH_E_BAD_FIELD, "correlation_id");
    CASE(2, body_case, SHAREHUB__V1__ENVELOPE__BODY__NOT_SET, SH_E_MISSING_FIELD, "body");
}

Test(codec, child_rules)
{
    CASE(2, child->nhs_number, "9434765918", SH_E_BAD_NHS_NUMBER, "child.nhs_number");
    CASE(2, child->upn, "A801200005001", SH_E_BAD_UPN, "child.upn");
    CASE(2, child->la_child_id, "no spaces", SH_E_BAD_LA_CHILD_ID, "child.la_child_id");
    CASE(2, child->date_of_birth, "2026-02-30", SH_E_BAD_DATE, "child.date_of_birth");
    CASE(2, child->responsible_la, "999", SH_E_BAD_LA_CODE, "child.responsible_la");
    CASE(2, child->mother_nhs_number, "9434765919", SH_E_BAD_FIELD, "only for an unborn child");

    /* no identifier at all */
    sh_envelope *e = tu_envelope(2);
    char *n = e->child->nhs_number, *u = e->child->upn, *l = e->child->la_child_id;
    char *m = e->child->mother_nhs_number, *d = e->child->expected_due_date;
    e->child->nhs_number = e->child->upn = e->child->la_child_id = "";
    EXPECT(e, SH_E_MISSING_FIELD, "one of nhs_number, upn, la_child_id");
    /* any one identifier is enough */
    e->child->upn = u;
    cr_assert_eq(sh_envelope_validate(e, NULL), SH_OK);
    /* an unborn child is identified through the mother's NHS number */
    e->child->upn = "";
    e->child->unborn = 1;
    EXPECT(e, SH_E_MISSING_FIELD, "child.mother_nhs_number");
    e->child->mother_nhs_number = "9434765919";
    cr_assert_eq(sh_envelope_validate(e, NULL), SH_OK);
    e->child->expected_due_date = "2026-13-01";
    EXPECT(e, SH_E_BAD_DATE, "child.expected_due_date");
    e->child->expected_due_date = d;
    e->child->mother_nhs_number = m;
    e->child->unborn = 0;
    e->child->nhs_number = n;
    e->child->upn = u;
    e->child->la_child_id = l;
    sh_envelope_free(e);
}

Test(codec, text_rules)
{
    CASE(2, safeguarding_concern->narrative, "bell\a", SH_E_BAD_TEXT,
         "safeguarding_concern.narrative");
    CASE(2, safeguarding_concern->narrative, "bad \xc3 utf8", SH_E_BAD_TEXT,
         "safeguarding_concern.narrative");
    CASE(2, child->given_name, "\xc0\xaf", SH_E_BAD_TEXT, "child.given_name");
    CASE(1, request_for_support->referrer->name, "x\x7fy", SH_E_BAD_TEXT,
         "request_for_support.referrer.name");
    /* newlines, tabs and non-ASCII letters are fine in text */
    sh_envelope *e = tu_envelope(2);
    char *saved = e->safeguarding_concern->narrative;
    e->safeguarding_concern->narrative = "Zoë said:\n\t“it hurt” 👍";
    cr_assert_eq(sh_envelope_validate(e, NULL), SH_OK);
    e->safeguarding_concern->narrative = saved;
    sh_envelope_free(e);
}

Test(codec, body_rules)
{
    static uint8_t bad_ref[16];
    CASE(1, request_for_support->n_concerns, 0, SH_E_MISSING_FIELD, "request_for_support.concerns");
    CASE(1, request_for_support->referrer, NULL, SH_E_MISSING_FIELD,
         "request_for_support.referrer");
    CASE(1, request_for_support->referrer->org_code, "x y", SH_E_BAD_ORG_CODE,
         "request_for_support.referrer.org_code");
    CASE(1, request_for_support->concerns[0]->category, 0, SH_E_MISSING_FIELD,
         "request_for_support.concerns.category");
    CASE(2, safeguarding_concern->narrative, "", SH_E_MISSING_FIELD,
         "safeguarding_concern.narrative");
    CASE(2, safeguarding_concern->category, 0, SH_E_MISSING_FIELD, "safeguarding_concern.category");
    CASE(3, hub_decision->referral_event_id, ((ProtobufCBinaryData){16, bad_ref}),
         SH_E_BAD_EVENT_ID, "hub_decision.referral_event_id");
    CASE(3, hub_decision->level_of_need, 0, SH_E_BAD_FIELD, "hub_decision.level_of_need");
    CASE(3, hub_decision->level_of_need, 4, SH_E_BAD_FIELD, "differs");
    CASE(3, hub_decision->outcome, 0, SH_E_MISSING_FIELD, "hub_decision.outcome");
    CASE(3, hub_decision->rationale, "", SH_E_MISSING_FIELD, "hub_decision.rationale");
    CASE(4, cp_plan_status->status, SHAREHUB__V1__PLAN_STATUS__PLAN_STATUS_ENDED,
         SH_E_MISSING_FIELD, "cp_plan_status.end_date");
    CASE(4, cp_plan_status->end_date, "2025-01-01", SH_E_BAD_FIELD, "cp_plan_status.end_date");
    CASE(4, cp_plan_status->responsible_la, NULL, SH_E_MISSING_FIELD,
         "cp_plan_status.responsible_la");
    CASE(4, cp_plan_status->responsible_la->out_of_hours_phone, "", SH_E_MISSING_FIELD,
         "out_of_hours_phone");
    CASE(5, looked_after_status->legal_status, 0, SH_E_MISSING_FIELD, "legal_status");
    CASE(5, looked_after_status->start_date, "2026-02-29", SH_E_BAD_DATE, "start_date");
    CASE(6, unscheduled_care_attendance->site_code, "", SH_E_MISSING_FIELD, "site_code");
    CASE(6, unscheduled_care_attendance->arrived_at_ms, 5, SH_E_BAD_FIELD, "arrived_at_ms");
    CASE(7, access_notification->flag, 0, SH_E_MISSING_FIELD, "access_notification.flag");
    CASE(8, exclusion->sessions, 0, SH_E_BAD_FIELD, "exclusion.sessions");
    CASE(8, exclusion->kind, SHAREHUB__V1__EXCLUSION_KIND__EXCLUSION_KIND_PERMANENT, SH_E_BAD_FIELD,
         "only for a suspension");
    CASE(9, child_missing_education->missing_since, "", SH_E_MISSING_FIELD, "missing_since");
    CASE(10, attendance_concern->attendance_permille, 1001, SH_E_BAD_FIELD, "attendance_permille");
    CASE(10, attendance_concern->period_end, "2025-12-31", SH_E_BAD_FIELD, "period_end");
    CASE(11, ehc_plan_status->status, 0, SH_E_MISSING_FIELD, "ehc_plan_status.status");
    CASE(12, consent_change->given_by, 0, SH_E_MISSING_FIELD, "consent_change.given_by");
    CASE(13, delivery_receipt->recipient_org, "", SH_E_MISSING_FIELD, "recipient_org");
    CASE(13, delivery_receipt->status, 9, SH_E_BAD_FIELD, "unknown enum value");
}

Test(codec, receipt_carries_no_child)
{
    sh_envelope *e = tu_envelope(13);
    sh_envelope *other = tu_envelope(2);
    e->child = other->child;
    EXPECT(e, SH_E_BAD_FIELD, "a delivery receipt carries no child");
    e->child = NULL;
    sh_envelope_free(e);
    sh_envelope_free(other);
}

Test(codec, text_check)
{
    cr_assert_eq(sh_text_check(""), SH_OK);
    cr_assert_eq(sh_text_check(NULL), SH_OK);
    cr_assert_eq(sh_text_check("tab\tnewline\ncr\r"), SH_OK);
    cr_assert_eq(sh_text_check("\xe2\x82\xac"), SH_OK, "euro sign");
    cr_assert_eq(sh_text_check("\xf0\x9f\x91\x8d"), SH_OK, "4-byte emoji");
    cr_assert_eq(sh_text_check("\xc0\xaf"), SH_E_BAD_TEXT, "overlong");
    cr_assert_eq(sh_text_check("\xe0\x80\xaf"), SH_E_BAD_TEXT, "overlong 3-byte");
    cr_assert_eq(sh_text_check("\xed\xa0\x80"), SH_E_BAD_TEXT, "surrogate");
    cr_assert_eq(sh_text_check("\xf4\x90\x80\x80"), SH_E_BAD_TEXT, "above U+10FFFF");
    cr_assert_eq(sh_text_check("\xc2\x85"), SH_E_BAD_TEXT, "C1 control");
    cr_assert_eq(sh_text_check("\x80"), SH_E_BAD_TEXT, "lone continuation");
    cr_assert_eq(sh_text_check("\xe2\x82"), SH_E_BAD_TEXT, "truncated sequence");
    cr_assert_eq(sh_text_check("\x1b[31m"), SH_E_BAD_TEXT, "terminal escape");
    char *big = malloc(SH_TEXT_MAX + 2);
    memset(big, 'a', SH_TEXT_MAX);
    big[SH_TEXT_MAX] = '\0';
    cr_assert_eq(sh_text_check(big), SH_OK, "exactly the limit");
    big[SH_TEXT_MAX] = 'a';
    big[SH_TEXT_MAX + 1] = '\0';
    cr_assert_eq(sh_text_check(big), SH_E_BAD_TEXT, "one byte over");
    free(big);
}

Test(codec, date_check)
{
    cr_assert_eq(sh_date_check("2024-02-29"), SH_OK, "leap year");
    cr_assert_eq(sh_date_check("2000-02-29"), SH_OK, "400-year leap");
    cr_assert_eq(sh_date_check("2100-02-29"), SH_E_BAD_DATE, "100-year non-leap");
    cr_assert_eq(sh_date_check("2026-02-29"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("2026-04-31"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("2026-12-31"), SH_OK);
    cr_assert_eq(sh_date_check("2026-13-01"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("2026-00-10"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("2026-1-01"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("26-01-01"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("2026/01/01"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check("1899-12-31"), SH_E_BAD_DATE);
    cr_assert_eq(sh_date_check(NULL), SH_E_BAD_DATE);
}

Test(codec, random_mutations_never_crash_or_pass_garbage)
{
    /* 30,000 mutated encodings of valid events: each either decodes to an envelope that
     * passes validation again, or is refused with a codec or identifier error. Under the
     * sanitizer build this also proves the decoder never reads out of bounds. */
    uint64_t rng = 0x5eed;
    for (int t = 1; t <= 13; t++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *buf = NULL;
        size_t len = 0;
        sh_error err;
        cr_assert_eq(sh_synth_event(&rng, t, &c, "RH8", NULL, NULL, 0, &buf, &len, &err), SH_OK);
        uint8_t *m = malloc(len + 8);
        for (int i = 0; i < 2300; i++) {
            memcpy(m, buf, len);
            size_t mlen = len;
            int edits = 1 + (int)(sh_rng_next(&rng) % 4);
            for (int k = 0; k < edits; k++) {
                size_t at = sh_rng_next(&rng) % mlen;
                switch (sh_rng_next(&rng) % 3) {
                case 0:
                    m[at] ^= (uint8_t)(1u << (sh_rng_next(&rng) % 8));
                    break;
                case 1:
                    m[at] = (uint8_t)sh_rng_next(&rng);
                    break;
                case 2:
                    mlen = at + 1;
                    break; /* truncate */
                }
            }
            sh_envelope *e = NULL;
            sh_err rc = sh_envelope_decode(m, mlen, &e, &err);
            if (rc == SH_OK) {
                cr_assert_eq(sh_envelope_validate(e, NULL), SH_OK);
                sh_envelope_free(e);
            } else {
                cr_assert_null(e);
                cr_assert(rc >= 200 && rc < 400, "unexpected %s", sh_err_name(rc));
            }
        }
        free(m);
        free(buf);
    }
}

/* A practitioner's recorded judgement of significant harm: who made it and when are required,
 * it cannot postdate publication, and at universal need it is a contradiction. It travels with
 * every minimised copy, like consent. */
Test(codec, harm_judgement)
{
    sh_envelope *env = tu_envelope(1);
    Sharehub__V1__HarmJudgement hj = SHAREHUB__V1__HARM_JUDGEMENT__INIT;
    Sharehub__V1__Professional by = SHAREHUB__V1__PROFESSIONAL__INIT;
    by.org_code = "8819990";
    by.role = "Designated Safeguarding Lead";
    by.name = "A Teacher";
    hj.made_by = &by;
    hj.made_at_ms = env->published_at_ms - 60000;
    env->harm_judgement = &hj;
    env->level_of_need = 3;
    sh_error err = {0};
    cr_assert_eq(sh_envelope_validate(env, &err), SH_OK, "%s", err.detail);
    /* encoded and decoded, then minimised to nothing: the judgement is still there */
    uint8_t *buf = NULL, copy[65536];
    size_t len = 0, clen = 0;
    cr_assert_eq(sh_envelope_encode(env, &buf, &len, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_minimise(buf, len, NULL, 0, copy, sizeof copy, &clen), SH_OK);
    sh_envelope *m = NULL;
    cr_assert_eq(sh_envelope_decode_minimised(copy, clen, &m, &err), SH_OK, "%s", err.detail);
    cr_assert_not_null(m->harm_judgement);
    cr_assert_str_eq(m->harm_judgement->made_by->role, "Designated Safeguarding Lead");
    cr_assert_eq(m->harm_judgement->made_at_ms, hj.made_at_ms);
    cr_assert_null(m->child, "the child is a data item: withheld");
    sh_envelope_free(m);
    free(buf);
    by.name = "";
    EXPECT(env, SH_E_MISSING_FIELD, "harm_judgement.made_by.name");
    by.name = "A Teacher";
    by.role = "";
    EXPECT(env, SH_E_MISSING_FIELD, "harm_judgement.made_by.role");
    by.role = "DSL";
    hj.made_by = NULL;
    EXPECT(env, SH_E_MISSING_FIELD, "harm_judgement.made_by");
    hj.made_by = &by;
    hj.made_at_ms = 0;
    EXPECT(env, SH_E_MISSING_FIELD, "harm_judgement.made_at_ms");
    hj.made_at_ms = env->published_at_ms + SH_CLOCK_SKEW_MS + 1;
    EXPECT(env, SH_E_BAD_FIELD, "harm_judgement.made_at_ms: after published_at_ms");
    hj.made_at_ms = env->published_at_ms;
    env->level_of_need = 1;
    EXPECT(env, SH_E_BAD_FIELD, "harm_judgement contradicts level_of_need 1");
    env->harm_judgement = NULL; /* (the stack's, not the envelope's) */
    sh_envelope_free(env);
}
