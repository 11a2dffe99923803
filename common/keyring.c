/*
 * keyring.c — the auditor's keyring file.
 *
 * Owns: parsing and writing the file below, and the keys while loaded.
 * Never: accepts a line it does not fully understand, or leaves key bytes in freed memory.
 *
 * FORMAT: UTF-8 text, one store per line; blank lines and lines starting '#' are ignored.
 *   store=<32 hex> name=<1-64 of [A-Za-z0-9._-]> audit=<64 hex> blind=<64 hex or -> \
 *   signers=<64 hex>[,<64 hex>]...
 * The five fields appear in this order, separated by one space. Hex is lower case.
 */
#include "keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (256 * 1024)

typedef struct s_entry {
    sh_keyring_entry pub;
    sh_key *blind_key; /* kept to write the file back */
} s_entry;

struct sh_keyring {
    s_entry *v;
    size_t n, cap;
};

sh_err sh_keyring_new(sh_keyring **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? SH_OK : SH_E_NOMEM;
}

static void s_entry_free(s_entry *e)
{
    sh_key_destroy(&e->pub.audit);
    sh_mac_destroy(&e->pub.blind);
    sh_key_destroy(&e->blind_key);
}

void sh_keyring_destroy(sh_keyring **kp)
{
    if (!kp || !*kp) return;
    sh_keyring *k = *kp;
    for (size_t i = 0; i < k->n; i++)
        s_entry_free(&k->v[i]);
    free(k->v);
    free(k);
    *kp = NULL;
}

size_t sh_keyring_count(const sh_keyring *k)
{
    return k->n;
}

const sh_keyring_entry *sh_keyring_at(const sh_keyring *k, size_t i)
{
    return i < k->n ? &k->v[i].pub : NULL;
}

const sh_keyring_entry *sh_keyring_find(const sh_keyring *k, const uint8_t id[SH_STORE_ID_BYTES])
{
    for (size_t i = 0; i < k->n; i++)
        if (memcmp(k->v[i].pub.store_id, id, SH_STORE_ID_BYTES) == 0) return &k->v[i].pub;
    return NULL;
}

static int s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SH_KEYRING_NAME_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

sh_err sh_keyring_put(sh_keyring *k, const uint8_t id[SH_STORE_ID_BYTES], const char *name,
                      const sh_key *audit, const sh_key *blind,
                      const uint8_t signer[SH_SIGN_PUB_BYTES], sh_error *err)
{
    if (!name || !s_name_ok(name))
        return sh_error_set(err, SH_E_INVAL, "keyring name: 1-64 of A-Z a-z 0-9 . _ -");
    s_entry *e = NULL;
    for (size_t i = 0; i < k->n && !e; i++)
        if (memcmp(k->v[i].pub.store_id, id, SH_STORE_ID_BYTES) == 0) e = &k->v[i];
    s_entry fresh = {0};
    if (e) fresh.pub = e->pub; /* keep the signers */
    memcpy(fresh.pub.store_id, id, SH_STORE_ID_BYTES);
    snprintf(fresh.pub.name, sizeof fresh.pub.name, "%s", name);
    fresh.pub.audit = NULL;
    fresh.pub.blind = NULL;
    uint8_t raw[SH_KEY_BYTES];
    sh_err rc = SH_OK;
    if (audit) {
        sh_key_export(audit, raw);
        rc = sh_key_from_bytes(raw, &fresh.pub.audit);
    }
    if (!rc && blind) {
        sh_key_export(blind, raw);
        rc = sh_key_from_bytes(raw, &fresh.blind_key);
        if (!rc) rc = sh_mac_new(fresh.blind_key, &fresh.pub.blind);
    }
    sh_wipe(raw, sizeof raw);
    int known = 0;
    for (size_t i = 0; i < fresh.pub.nsigners; i++)
        known |= memcmp(fresh.pub.signers[i], signer, SH_SIGN_PUB_BYTES) == 0;
    if (!rc && !known) {
        if (fresh.pub.nsigners == SH_KEYRING_SIGNERS_MAX)
            rc = sh_error_set(err, SH_E_INVAL, "more than %d signers for one store",
                              SH_KEYRING_SIGNERS_MAX);
        else
            memcpy(fresh.pub.signers[fresh.pub.nsigners++], signer, SH_SIGN_PUB_BYTES);
    }
    if (!rc && !e && k->n == k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 8;
        s_entry *v = realloc(k->v, ncap * sizeof *v);
        if (!v)
            rc = SH_E_NOMEM;
        else {
            k->v = v;
            k->cap = ncap;
        }
    }
    if (rc) {
        s_entry_free(&fresh);
        return err && err->code ? rc : sh_error_set(err, rc, "keyring entry");
    }
    if (e)
        s_entry_free(e);
    else
        e = &k->v[k->n++];
    *e = fresh;
    return SH_OK;
}

/* ---- the file ------------------------------------------------------------------------- */

static int s_hex(const char *s, size_t n, uint8_t *out)
{
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = sh_hex_digit(s[2 * i]), lo = sh_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Splits "key=value" off *p (space-separated) and checks the key. */
static char *s_field(char **p, const char *key)
{
    char *tok = strsep(p, " ");
    size_t n = strlen(key);
    if (!tok || strncmp(tok, key, n) != 0 || tok[n] != '=') return NULL;
    return tok + n + 1;
}

static sh_err s_parse_line(sh_keyring *k, char *line, int lineno, sh_error *err)
{
    char *p = line, *v;
    uint8_t id[SH_STORE_ID_BYTES], raw[SH_KEY_BYTES], braw[SH_KEY_BYTES];
    uint8_t signers[SH_KEYRING_SIGNERS_MAX][SH_SIGN_PUB_BYTES];
    size_t nsigners = 0;
    char name[SH_KEYRING_NAME_MAX + 1];
    int has_blind = 0, has_audit = 0;
    const char *bad = NULL;
    if (!(v = s_field(&p, "store")) || s_hex(v, sizeof id, id))
        bad = "store=<32 hex digits> expected first";
    else if (!(v = s_field(&p, "name")) || !s_name_ok(v))
        bad = "name=<1-64 of A-Z a-z 0-9 . _ -> expected second";
    else if ((snprintf(name, sizeof name, "%s", v), !(v = s_field(&p, "audit"))) ||
             (strcmp(v, "-") != 0 && (has_audit = 1, s_hex(v, sizeof raw, raw))))
        bad = "audit=<64 hex digits or -> expected third";
    else if (!(v = s_field(&p, "blind")) ||
             (strcmp(v, "-") != 0 && (has_blind = 1, s_hex(v, sizeof braw, braw))))
        bad = "blind=<64 hex digits or -> expected fourth";
    else if (!(v = s_field(&p, "signers")) || !*v)
        bad = "signers=<64 hex digits>[,...] expected fifth";
    else if (p)
        bad = "unexpected text after signers";
    else {
        for (char *s = strsep(&v, ","); s && !bad; s = strsep(&v, ","))
            if (nsigners == SH_KEYRING_SIGNERS_MAX ||
                s_hex(s, SH_SIGN_PUB_BYTES, signers[nsigners++]))
                bad = "signers: up to 8 public keys of 64 hex digits, comma-separated";
    }
    sh_err rc = SH_OK;
    if (bad) rc = sh_error_set(err, SH_E_KEY_FORMAT, "keyring line %d: %s", lineno, bad);
    sh_key *audit = NULL, *blind = NULL;
    if (!rc && ((has_audit && sh_key_from_bytes(raw, &audit)) ||
                (has_blind && sh_key_from_bytes(braw, &blind))))
        rc = sh_error_set(err, SH_E_NOMEM, "keyring");
    for (size_t i = 0; !rc && i < nsigners; i++)
        rc = sh_keyring_put(k, id, name, audit, blind, signers[i], err);
    sh_key_destroy(&audit);
    sh_key_destroy(&blind);
    sh_wipe(raw, sizeof raw);
    sh_wipe(braw, sizeof braw);
    return rc;
}

sh_err sh_keyring_load(const char *path, sh_keyring **out, sh_error *err)
{
    *out = NULL;
    char *buf = malloc(FILE_MAX);
    if (!buf) return sh_error_set(err, SH_E_NOMEM, "keyring");
    size_t len = 0;
    sh_err rc = sh_secret_file_read(path, buf, FILE_MAX, &len, err);
    sh_keyring *k = NULL;
    if (!rc && len == FILE_MAX - 1) rc = sh_error_set(err, SH_E_KEY_FORMAT, "keyring too large");
    if (!rc && sh_keyring_new(&k)) rc = sh_error_set(err, SH_E_NOMEM, "keyring");
    int lineno = 0;
    for (char *p = rc ? NULL : buf, *line; !rc && (line = strsep(&p, "\n"));) {
        lineno++;
        if (!*line || line[0] == '#') continue;
        rc = s_parse_line(k, line, lineno, err);
    }
    sh_wipe(buf, FILE_MAX);
    free(buf);
    if (!rc && k->n == 0) rc = sh_error_set(err, SH_E_KEY_FORMAT, "%s: no stores in keyring", path);
    if (rc) {
        sh_keyring_destroy(&k);
        return rc;
    }
    *out = k;
    return SH_OK;
}

sh_err sh_keyring_save(const sh_keyring *k, const char *path, sh_error *err)
{
    size_t cap = 128 + k->n * (300 + SH_KEYRING_SIGNERS_MAX * 65), used = 0;
    char *buf = malloc(cap), tmp[4096];
    if (!buf) return sh_error_set(err, SH_E_NOMEM, "keyring");
    used += (size_t)snprintf(buf, cap,
                             "# sharehub auditor keyring (docs/audit.md). Secret: keep it 0600.\n");
    for (size_t i = 0; i < k->n; i++) {
        const s_entry *e = &k->v[i];
        char id[2 * SH_STORE_ID_BYTES + 1], hex[2 * SH_KEY_BYTES + 1], bhex[2 * SH_KEY_BYTES + 1];
        uint8_t raw[SH_KEY_BYTES];
        sh_hex_encode(e->pub.store_id, SH_STORE_ID_BYTES, id);
        strcpy(hex, "-");
        if (e->pub.audit) {
            sh_key_export(e->pub.audit, raw);
            sh_hex_encode(raw, SH_KEY_BYTES, hex);
        }
        strcpy(bhex, "-");
        if (e->blind_key) {
            sh_key_export(e->blind_key, raw);
            sh_hex_encode(raw, SH_KEY_BYTES, bhex);
        }
        sh_wipe(raw, sizeof raw);
        used += (size_t)snprintf(buf + used, cap - used,
                                 "store=%s name=%s audit=%s blind=%s signers=", id, e->pub.name,
                                 hex, bhex);
        sh_wipe(hex, sizeof hex);
        sh_wipe(bhex, sizeof bhex);
        for (size_t j = 0; j < e->pub.nsigners; j++) {
            char pub[2 * SH_SIGN_PUB_BYTES + 1];
            sh_hex_encode(e->pub.signers[j], SH_SIGN_PUB_BYTES, pub);
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", j ? "," : "", pub);
        }
        used += (size_t)snprintf(buf + used, cap - used, "\n");
    }
    snprintf(tmp, sizeof tmp, "%s.new", path);
    (void)remove(tmp);
    sh_err rc = sh_secret_file_write(tmp, buf, used, err);
    sh_wipe(buf, cap);
    free(buf);
    if (!rc && rename(tmp, path) != 0) {
        rc = sh_error_set(err, SH_E_IO, "rename %s: %m", tmp);
        (void)remove(tmp);
    }
    return rc;
}
