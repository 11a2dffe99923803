/* audit_fixture.c — a store, its audit log and a signing key in a fresh directory, for the
 * audit suites (audit_fixture.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "audit_fixture.h"
#include "testutil.h"

char *dir, *signpath;
sh_key *master, *akey;
sh_signkey *signer;
sh_store *store;
sh_audit *audit;

void audit_fixture_open(uint32_t every)
{
    sh_error err;
    cr_assert_eq(sh_store_open(dir, master, NULL, &store, &err), SH_OK, "%s", err.detail);
    cr_assert_eq(sh_store_derive_key(store, "audit mac", &akey), SH_OK);
    cr_assert_eq(sh_audit_open(store, akey, signer, every, &audit, &err), SH_OK, "%s", err.detail);
}

void audit_fixture_close(void)
{
    sh_audit_destroy(&audit);
    sh_store_destroy(&store);
    sh_key_destroy(&akey);
}

void audit_fixture_setup(void)
{
    sh_error err;
    dir = tu_tmpdir();
    master = tu_key();
    char *base = tu_tmpdir();
    signpath = tu_path(base, "sign.pem");
    free(base);
    cr_assert_eq(sh_signkey_generate_file(signpath, &err), SH_OK);
    cr_assert_eq(sh_signkey_load_file(signpath, &signer, &err), SH_OK);
}

void audit_fixture_teardown(void)
{
    audit_fixture_close();
    sh_signkey_destroy(&signer);
    sh_key_destroy(&master);
    tu_rmrf(dir);
    free(dir);
    char *slash = strrchr(signpath, '/');
    *slash = '\0';
    tu_rmrf(signpath);
    free(signpath);
}
