/*
 * password.h — the workspace's passwords: hashed with Argon2id (RFC 9106) at the cost OWASP
 * recommends for interactive sign-in (t=2, m=19 MiB, p=1), a 16-byte random salt, encoded in
 * the PHC string form ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash").
 *
 * Owns: nothing. Never: keeps a password after the call; compares hashes in variable time.
 */
#ifndef SHAREHUB_PASSWORD_H
#define SHAREHUB_PASSWORD_H

#include <stddef.h>

#include "error.h"

#define SH_PASSWORD_MIN  12  /* characters a new password has at least */
#define SH_PASSWORD_MAX  256 /* bytes a password has at most */
#define SH_PASSWORD_HASH 128 /* bytes of an encoded hash, with its NUL */

/* The encoded hash of password into out. SH_E_INVAL when the password is shorter than
 * SH_PASSWORD_MIN characters or longer than SH_PASSWORD_MAX bytes. */
sh_err sh_password_hash(const char *password, char out[SH_PASSWORD_HASH], sh_error *err);

/* 1 when password matches encoded (an Argon2id hash), else 0 (also for a malformed hash). */
int sh_password_check(const char *encoded, const char *password);

#endif
