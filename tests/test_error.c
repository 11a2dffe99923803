/* test_error.c — the error table: stable codes, unique names, formatted details. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static const sh_err all[] = {
    SH_OK,
    SH_E_NOMEM,
    SH_E_INVAL,
    SH_E_IO,
    SH_E_INTERNAL,
    SH_E_RANGE,
    SH_E_TOO_LARGE,
    SH_E_MALFORMED,
    SH_E_MISSING_FIELD,
    SH_E_BAD_FIELD,
    SH_E_SCHEMA_VERSION,
    SH_E_BODY_MISMATCH,
    SH_E_BAD_DATE,
    SH_E_BAD_TEXT,
    SH_E_BAD_NHS_NUMBER,
    SH_E_BAD_UPN,
    SH_E_BAD_LA_CODE,
    SH_E_BAD_ORG_CODE,
    SH_E_BAD_EVENT_ID,
    SH_E_BAD_LA_CHILD_ID,
    SH_E_KEY_MISSING,
    SH_E_KEY_PERMISSIONS,
    SH_E_KEY_FORMAT,
    SH_E_AUTH_FAILED,
    SH_E_WRONG_KEY,
    SH_E_CRYPTO,
    SH_E_BAD_SIGNATURE,
    SH_E_SEAL_FORMAT,
    SH_E_NOT_FOUND,
    SH_E_EXISTS,
    SH_E_MAP_FULL,
    SH_E_DISK_FULL,
    SH_E_STORE,
    SH_E_STORE_VERSION,
    SH_E_STORE_CORRUPT,
    SH_E_TXN,
    SH_E_AUDIT_ALTERED,
    SH_E_AUDIT_MISSING,
    SH_E_AUDIT_REORDERED,
    SH_E_AUDIT_TRUNCATED,
    SH_E_AUDIT_CHECKPOINT,
    SH_E_AUDIT_FORMAT,
};
#define N (sizeof all / sizeof all[0])

Test(error, codes_are_stable)
{
    /* These numbers are on the wire and in audit logs: changing one breaks peers. */
    cr_assert_eq(SH_E_MISSING_FIELD, 202);
    cr_assert_eq(SH_E_BAD_NHS_NUMBER, 300);
    cr_assert_eq(SH_E_KEY_PERMISSIONS, 401);
    cr_assert_eq(SH_E_AUTH_FAILED, 403);
    cr_assert_eq(SH_E_MAP_FULL, 502);
    cr_assert_eq(SH_E_DISK_FULL, 503);
    cr_assert_eq(SH_E_AUDIT_TRUNCATED, 603);
}

Test(error, every_code_has_a_unique_name_and_a_message)
{
    for (size_t i = 0; i < N; i++) {
        const char *name = sh_err_name(all[i]);
        cr_assert_str_neq(name, "SH_E_UNKNOWN", "code %d has no name", all[i]);
        cr_assert_str_neq(sh_err_message(all[i]), "unknown error");
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(all[i], all[j]);
            cr_assert_str_neq(name, sh_err_name(all[j]));
        }
    }
}

Test(error, unknown_code)
{
    cr_assert_str_eq(sh_err_name((sh_err)999), "SH_E_UNKNOWN");
    cr_assert_str_eq(sh_err_message((sh_err)999), "unknown error");
}

Test(error, set_and_format)
{
    sh_error e;
    char buf[256];
    cr_assert_eq(sh_error_set(&e, SH_E_MISSING_FIELD, "child.%s", "nhs_number"),
                 SH_E_MISSING_FIELD);
    cr_assert_str_eq(e.detail, "child.nhs_number");
    sh_error_format(&e, buf, sizeof buf);
    cr_assert_str_eq(buf, "E202 SH_E_MISSING_FIELD: a mandatory field is missing: "
                          "child.nhs_number");
    sh_error_clear(&e);
    cr_assert_eq(e.code, SH_OK);
    cr_assert_str_eq(e.detail, "");
    cr_assert_eq(sh_error_set(NULL, SH_E_IO, "x"), SH_E_IO, "NULL error is allowed");
    sh_error_set(&e, SH_E_IO, NULL);
    cr_assert_str_eq(sh_error_format(&e, buf, sizeof buf), "E102 SH_E_IO: input/output error");
}

Test(error, long_detail_is_truncated_not_overflowed)
{
    sh_error e;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sh_error_set(&e, SH_E_INVAL, "%s", big);
    cr_assert_eq(strlen(e.detail), sizeof e.detail - 1);
}
