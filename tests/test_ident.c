/* test_ident.c — identifier check algorithms against DOMAIN.md's vectors, and generators. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ident.h"
#include "synth.h"

Test(ident, nhs_valid_vectors)
{
    const char *ok[] = {"9434765919", "4010232137", "6541003238", "9990000018"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(sh_nhs_check(ok[i]), SH_OK, "%s", ok[i]);
}

Test(ident, nhs_invalid_vectors)
{
    const char *bad[] = {"9434765918",               /* wrong check digit */
                         "9991234560",               /* check would be 10 */
                         "1234561234", "0000000000", /* passes arithmetic, not a number */
                         "943476591",  "94347659190", "943476591a", "943 476 5919",
                         "",           "-434765919"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sh_nhs_check(bad[i]), SH_E_BAD_NHS_NUMBER, "%s", bad[i]);
    cr_assert_eq(sh_nhs_check(NULL), SH_E_BAD_NHS_NUMBER);
}

Test(ident, nhs_every_single_digit_error_is_caught)
{
    /* Modulus 11 catches every single-digit substitution. */
    char s[11];
    for (int pos = 0; pos < 10; pos++) {
        for (char d = '0'; d <= '9'; d++) {
            strcpy(s, "9434765919");
            if (s[pos] == d) continue;
            s[pos] = d;
            cr_assert_eq(sh_nhs_check(s), SH_E_BAD_NHS_NUMBER, "%s passed", s);
        }
    }
}

Test(ident, nhs_normalise)
{
    char out[11];
    cr_assert_eq(sh_nhs_normalise("943 476 5919", out), SH_OK);
    cr_assert_str_eq(out, "9434765919");
    cr_assert_eq(sh_nhs_normalise("943-476-5919", out), SH_OK);
    cr_assert_str_eq(out, "9434765919");
    cr_assert_eq(sh_nhs_normalise("943 476 59199", out), SH_E_BAD_NHS_NUMBER);
    cr_assert_eq(sh_nhs_normalise("943 476 591x", out), SH_E_BAD_NHS_NUMBER);
    cr_assert_eq(sh_nhs_normalise("943 476 5918", out), SH_E_BAD_NHS_NUMBER);
    cr_assert_eq(sh_nhs_normalise(NULL, out), SH_E_BAD_NHS_NUMBER);
}

Test(ident, nhs_synthetic_are_valid_and_never_issued)
{
    uint64_t rng = 7;
    char s[11];
    for (int i = 0; i < 20000; i++) {
        sh_nhs_synthetic(&rng, s);
        cr_assert_eq(sh_nhs_check(s), SH_OK, "%s", s);
        cr_assert_eq(strncmp(s, "999", 3), 0, "%s is outside the 999 range", s);
    }
}

Test(ident, upn_vectors)
{
    cr_assert_eq(sh_upn_check("B801200005001"), SH_OK);
    cr_assert_eq(sh_upn_check("P207000016049"), SH_OK);
    cr_assert_eq(sh_upn_check("A801200005001"), SH_E_BAD_UPN);
    cr_assert_eq(sh_upn_check("B80120000500"), SH_E_BAD_UPN, "too short");
    cr_assert_eq(sh_upn_check("B8012000050011"), SH_E_BAD_UPN, "too long");
    cr_assert_eq(sh_upn_check("b801200005001"), SH_E_BAD_UPN, "lower-case letter");
    cr_assert_eq(sh_upn_check("B80120000500X1"), SH_E_BAD_UPN);
    cr_assert_eq(sh_upn_check(NULL), SH_E_BAD_UPN);
    cr_assert_eq(sh_upn_check_letter("801200005001"), 'B');
    cr_assert_eq(sh_upn_check_letter("80120000500!"), 0);
}

Test(ident, upn_temporary)
{
    /* A temporary UPN has a letter in place of the last serial digit; the letter takes its
     * table value (A=0 ... Z=22) in the weighted sum. */
    char upn[14] = "?80120000500A";
    upn[0] = sh_upn_check_letter(upn + 1);
    cr_assert_neq(upn[0], 0);
    cr_assert_eq(sh_upn_check(upn), SH_OK, "%s", upn);
    /* 'A' has value 0, so the check letter equals that of a final digit 0 */
    cr_assert_eq(sh_upn_check_letter("80120000500A"), sh_upn_check_letter("801200005000"));
    cr_assert_eq(sh_upn_check_letter("80120000500I"), 0, "I is not in the table");
    cr_assert_eq(sh_upn_check_letter("8012000050A0"), 0, "a letter only in the last place");
}

Test(ident, upn_synthetic)
{
    uint64_t rng = 11;
    char s[14];
    for (int i = 0; i < 5000; i++) {
        sh_upn_synthetic(&rng, "881", s);
        cr_assert_eq(sh_upn_check(s), SH_OK, "%s", s);
        cr_assert_eq(strncmp(s + 1, "881", 3), 0);
    }
}

Test(ident, la_codes)
{
    const char *ok[] = {"881", "882", "883", "884", "201", "938"};
    const char *bad[] = {"200", "939", "88", "8811", "88a", "", "000"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(sh_la_code_check(ok[i]), SH_OK, "%s", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sh_la_code_check(bad[i]), SH_E_BAD_LA_CODE, "%s", bad[i]);
    cr_assert_str_eq(sh_la_name("881"), "Essex");
    cr_assert_str_eq(sh_la_name("882"), "Southend-on-Sea");
    cr_assert_str_eq(sh_la_name("883"), "Thurrock");
    cr_assert_str_eq(sh_la_name("884"), "Herefordshire");
    cr_assert_null(sh_la_name("999"));
}

Test(ident, org_codes)
{
    const char *ok[] = {"RH8", "RH802", "G82052", "881", "8814001", "A", "ABCDEFGH9"};
    const char *bad[] = {"", "rh8", "RH-8", "ABCDEFGHIJ", "RH8 ", " RH8"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(sh_org_code_check(ok[i]), SH_OK, "%s", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sh_org_code_check(bad[i]), SH_E_BAD_ORG_CODE, "'%s'", bad[i]);
    cr_assert_eq(sh_org_code_check(NULL), SH_E_BAD_ORG_CODE);
}

Test(ident, la_child_ids)
{
    cr_assert_eq(sh_la_child_id_check("LA881-000123"), SH_OK);
    cr_assert_eq(sh_la_child_id_check("abc"), SH_OK);
    cr_assert_eq(sh_la_child_id_check(""), SH_E_BAD_LA_CHILD_ID);
    cr_assert_eq(sh_la_child_id_check("has space"), SH_E_BAD_LA_CHILD_ID);
    cr_assert_eq(sh_la_child_id_check("0123456789012345678901234567890123"), SH_E_BAD_LA_CHILD_ID,
                 "33 characters");
}

Test(ident, event_ids_are_uuidv7_and_strictly_increasing)
{
    uint8_t prev[16], id[16];
    cr_assert_eq(sh_event_id_new(prev), SH_OK);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    cr_assert(llabs(sh_event_id_time_ms(prev) - now) < 5000);
    for (int i = 0; i < 100000; i++) {
        cr_assert_eq(sh_event_id_new(id), SH_OK);
        cr_assert_eq(sh_event_id_check(id, 16), SH_OK);
        cr_assert_eq(id[6] >> 4, 7, "version 7");
        cr_assert_eq(id[8] >> 6, 2, "RFC 9562 variant");
        cr_assert_gt(memcmp(id, prev, 16), 0, "id %d not after the one before", i);
        memcpy(prev, id, 16);
    }
}

Test(ident, event_id_text_round_trip)
{
    uint8_t id[16], back[16];
    char s[SH_EVENT_ID_STR];
    cr_assert_eq(sh_event_id_new(id), SH_OK);
    sh_event_id_format(id, s);
    cr_assert_eq(strlen(s), 36);
    cr_assert_eq(s[14], '7');
    cr_assert_eq(sh_event_id_parse(s, back), SH_OK);
    cr_assert_arr_eq(id, back, 16);
    for (char *p = s; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    cr_assert_eq(sh_event_id_parse(s, back), SH_OK, "upper case accepted");
    cr_assert_eq(sh_event_id_parse("0190a4e8-7f3c-4d2a-9b1e-123456789abc", back), SH_E_BAD_EVENT_ID,
                 "version 4 refused");
    cr_assert_eq(sh_event_id_parse("0190a4e87f3c-7d2a-9b1e-123456789abc", back), SH_E_BAD_EVENT_ID);
    cr_assert_eq(sh_event_id_parse("0190a4e8-7f3c-7d2a-9b1e-123456789abg", back),
                 SH_E_BAD_EVENT_ID);
    cr_assert_eq(sh_event_id_parse("", back), SH_E_BAD_EVENT_ID);
    cr_assert_eq(sh_event_id_check(id, 15), SH_E_BAD_EVENT_ID);
    cr_assert_eq(sh_event_id_check(NULL, 16), SH_E_BAD_EVENT_ID);
}

Test(ident, rng_is_deterministic)
{
    uint64_t a = 5, b = 5;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sh_rng_next(&a), sh_rng_next(&b));
    uint64_t c = 6;
    cr_assert_neq(sh_rng_next(&a), sh_rng_next(&c));
}

Test(ident, every_synthetic_index_is_a_different_valid_child)
{
    /* seeds 100766 and 101262 once gave the same NHS number: now every index below
     * SH_SYNTH_INDEXES has its own, and its own UPN and LA id */
    uint8_t *seen = calloc(10000000 / 8, 1), *seen_la = calloc(1000000 / 8, 1);
    cr_assert(seen && seen_la);
    for (uint64_t i = 0; i < SH_SYNTH_INDEXES; i++) {
        char nhs[SH_NHS_LEN + 1];
        sh_nhs_synthetic_at(i, nhs);
        cr_assert_eq(sh_nhs_check(nhs), SH_OK, "index %llu: %s", (unsigned long long)i, nhs);
        cr_assert_eq(memcmp(nhs, "999", 3), 0);
        unsigned v = (unsigned)strtoul(nhs + 3, NULL, 10);
        cr_assert_eq(seen[v / 8] & (1u << (v % 8)), 0, "index %llu repeats an NHS number",
                     (unsigned long long)i);
        seen[v / 8] |= (uint8_t)(1u << (v % 8));
        if (i % 97 == 0) { /* the whole child, for a sample (UPN and LA id are permutations) */
            sh_synth_child c;
            sh_synth_child_at(i, "881", &c);
            cr_assert_str_eq(c.nhs_number, nhs);
            cr_assert_eq(sh_upn_check(c.upn), SH_OK, "%s", c.upn);
            cr_assert_eq(sh_la_child_id_check(c.la_child_id), SH_OK);
            unsigned la = (unsigned)strtoul(c.la_child_id + 6, NULL, 10);
            cr_assert_eq(seen_la[la / 8] & (1u << (la % 8)), 0, "index %llu repeats an LA id",
                         (unsigned long long)i);
            seen_la[la / 8] |= (uint8_t)(1u << (la % 8));
        }
    }
    free(seen);
    free(seen_la);
}

/* A typed identifier is what its shape says it is: a mistyped NHS number or UPN is an error
 * naming the check, never taken for an LA child id (which would find "nothing"). */
Test(ident, classify_never_turns_a_typo_into_another_kind)
{
    char canon[40], nhs[SH_NHS_LEN + 1];
    const char *kind, *why;
    sh_nhs_synthetic_at(42, nhs);
    cr_assert_eq(sh_ident_classify(nhs, canon, sizeof canon, &kind, &why), SH_OK);
    cr_assert_str_eq(kind, "nhs");
    cr_assert_str_eq(canon, nhs);
    char typo[SH_NHS_LEN + 1];
    memcpy(typo, nhs, sizeof typo);
    typo[9] = (char)('0' + (typo[9] - '0' + 1) % 10);
    cr_assert_eq(sh_ident_classify(typo, canon, sizeof canon, &kind, &why), SH_E_BAD_NHS_NUMBER);
    cr_assert_null(kind);
    cr_assert(strstr(why, "modulus 11") != NULL, "%s", why);
    cr_assert_null(sh_ident_kind(typo, canon, sizeof canon));
    char spaced[16];
    snprintf(spaced, sizeof spaced, "%.3s %.3s %.4s", nhs, nhs + 3, nhs + 6);
    cr_assert_eq(sh_ident_classify(spaced, canon, sizeof canon, &kind, &why), SH_OK);
    cr_assert_str_eq(canon, nhs);
    char upn[SH_UPN_LEN + 1];
    sh_upn_synthetic_at(7, "881", upn);
    cr_assert_eq(sh_ident_classify(upn, canon, sizeof canon, &kind, &why), SH_OK);
    cr_assert_str_eq(kind, "upn");
    upn[0] = upn[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(sh_ident_classify(upn, canon, sizeof canon, &kind, &why), SH_E_BAD_UPN);
    cr_assert(strstr(why, "check letter") != NULL, "%s", why);
    cr_assert_eq(sh_ident_classify("LA881-0042", canon, sizeof canon, &kind, &why), SH_OK);
    cr_assert_str_eq(kind, "la");
    /* an LA id shaped like an NHS number is said to be one with the la: prefix */
    cr_assert_eq(sh_ident_classify("la:1234567890", canon, sizeof canon, &kind, &why), SH_OK);
    cr_assert_str_eq(kind, "la");
    cr_assert_str_eq(canon, "1234567890");
    cr_assert_eq(sh_ident_classify("nhs:12345", canon, sizeof canon, &kind, &why),
                 SH_E_BAD_NHS_NUMBER);
    cr_assert_eq(sh_ident_classify("", canon, sizeof canon, &kind, &why), SH_E_BAD_LA_CHILD_ID);
    cr_assert_eq(sh_ident_classify("no spaces allowed", canon, sizeof canon, &kind, &why),
                 SH_E_BAD_LA_CHILD_ID);
}
