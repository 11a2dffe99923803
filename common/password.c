/*
 * password.c — Argon2id hashing and checking of the workspace's passwords (password.h).
 *
 * Owns: nothing. Never: accepts a hash that is not Argon2id; leaves a password copy behind.
 */
#include "password.h"

#include <argon2.h>
#include <string.h>

#include "crypto.h"

#define T_COST 2
#define M_COST 19456 /* KiB */
#define P_COST 1

sh_err sh_password_hash(const char *password, char out[SH_PASSWORD_HASH], sh_error *err)
{
    size_t n = strnlen(password, SH_PASSWORD_MAX + 1), chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)password[i] & 0xC0) != 0x80;
    if (chars < SH_PASSWORD_MIN || n > SH_PASSWORD_MAX)
        return sh_error_set(err, SH_E_INVAL, "a password has %d to %d characters", SH_PASSWORD_MIN,
                            SH_PASSWORD_MAX);
    unsigned char salt[16];
    if (sh_random(salt, sizeof salt)) return sh_error_set(err, SH_E_CRYPTO, "salt");
    int rc = argon2id_hash_encoded(T_COST, M_COST, P_COST, password, n, salt, sizeof salt, 32, out,
                                   SH_PASSWORD_HASH);
    if (rc != ARGON2_OK)
        return sh_error_set(err, SH_E_CRYPTO, "argon2id: %s", argon2_error_message(rc));
    return SH_OK;
}

int sh_password_check(const char *encoded, const char *password)
{
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0 || !password) return 0;
    size_t n = strnlen(password, SH_PASSWORD_MAX + 1);
    if (n > SH_PASSWORD_MAX) return 0;
    return argon2id_verify(encoded, password, n) == ARGON2_OK; /* constant-time compare inside */
}
