/*
 * directory.c — loading, checking and signing the federation directory (directory.h).
 *
 * File format (docs/federation.md):
 *   federation: weisf
 *   serial: 3
 *   authorities:
 *     - la_code: "881"
 *       name: Essex County Council
 *       broker:
 *         code: SH881
 *         endpoint: tcp://10.0.1.1:7750
 *         curve_key: "<Z85>"
 *         sign_key: "<64 hex>"
 *       organisations: [<registry entries without keys>]
 * and beside it <file>.sig: 128 hex digits and a newline, the federation key's Ed25519
 * signature of SH_DIRECTORY_LABEL followed by the file's bytes.
 *
 * Owns: the parsed directory. Never: parses bytes other than those whose signature it checked.
 */
#include "directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "ident.h"
#include "registry_int.h"

#define FILE_MAX (16u << 20)

typedef struct y_broker {
    char *code, *endpoint, *curve_key, *sign_key;
} y_broker;

typedef struct y_authority {
    char *la_code, *name;
    y_broker broker;
    y_org *organisations;
    unsigned organisations_count;
} y_authority;

typedef struct y_directory {
    char *federation;
    uint64_t serial;
    y_authority *authorities;
    unsigned authorities_count;
} y_directory;

static const cyaml_schema_field_t s_broker_fields[] = {
    CYAML_FIELD_STRING_PTR("code", CYAML_FLAG_POINTER, y_broker, code, 1, 9),
    CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_POINTER, y_broker, endpoint, 1, 200),
    CYAML_FIELD_STRING_PTR("curve_key", CYAML_FLAG_POINTER, y_broker, curve_key, 40, 40),
    CYAML_FIELD_STRING_PTR("sign_key", CYAML_FLAG_POINTER, y_broker, sign_key, 64, 64),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t s_authority_fields[] = {
    CYAML_FIELD_STRING_PTR("la_code", CYAML_FLAG_POINTER, y_authority, la_code, 3, 3),
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_authority, name, 1, 200),
    CYAML_FIELD_MAPPING("broker", CYAML_FLAG_DEFAULT, y_authority, broker, s_broker_fields),
    CYAML_FIELD_SEQUENCE("organisations", CYAML_FLAG_POINTER, y_authority, organisations,
                         &sh_registry_org_schema_nokeys, 0, 100000),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t s_authority = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_authority, s_authority_fields),
};

static const cyaml_schema_field_t s_top_fields[] = {
    CYAML_FIELD_STRING_PTR("federation", CYAML_FLAG_POINTER, y_directory, federation, 1, 60),
    CYAML_FIELD_UINT("serial", CYAML_FLAG_DEFAULT, y_directory, serial),
    CYAML_FIELD_SEQUENCE("authorities", CYAML_FLAG_POINTER, y_directory, authorities, &s_authority,
                         1, 1000),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t s_top = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_directory, s_top_fields),
};

typedef struct s_index { /* an organisation code and the authority listing it */
    const char *code;
    size_t authority;
} s_index;

struct sh_directory {
    y_directory *y;
    sh_authority *auth;
    size_t nauth;
    sh_org *orgs;         /* every authority's, in file order */
    uint8_t (*signs)[32]; /* their signing keys */
    s_index *index;       /* by code */
    size_t norgs;
};

static int s_indexcmp(const void *a, const void *b)
{
    return strcmp(((const s_index *)a)->code, ((const s_index *)b)->code);
}

/* The whole of a file (at most FILE_MAX bytes) into *out (malloc'd). */
static sh_err s_read(const char *path, uint8_t **out, size_t *len, sh_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sh_error_set(err, errno == ENOENT ? SH_E_DIRECTORY_FILE : SH_E_IO, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    sh_err rc = SH_OK;
    if (fstat(fd, &st) != 0)
        rc = sh_error_set(err, SH_E_IO, "fstat %s: %s", path, strerror(errno));
    else if (st.st_size < 0 || (uint64_t)st.st_size > FILE_MAX)
        rc = sh_error_set(err, SH_E_DIRECTORY_FILE, "%s: larger than %u bytes", path, FILE_MAX);
    uint8_t *p = rc ? NULL : malloc((size_t)st.st_size + 1);
    if (!rc && !p) rc = sh_error_set(err, SH_E_NOMEM, "%s", path);
    size_t got = 0;
    while (!rc && got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            rc = sh_error_set(err, SH_E_IO, "read %s: %s", path, n ? strerror(errno) : "short");
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    *len = got;
    return SH_OK;
}

/* The message the federation key signs, for data[0..len) (malloc'd). */
static uint8_t *s_message(const uint8_t *data, size_t len, size_t *mlen)
{
    size_t ll = sizeof SH_DIRECTORY_LABEL - 1;
    uint8_t *m = malloc(ll + len + 1);
    if (!m) return NULL;
    memcpy(m, SH_DIRECTORY_LABEL, ll);
    if (len) memcpy(m + ll, data, len);
    *mlen = ll + len;
    return m;
}

/* Parses and checks data[0..len) read from path. */
static sh_err s_parse(const char *path, const uint8_t *data, size_t len, sh_directory **out,
                      sh_error *err)
{
    *out = NULL;
    sh_directory *d = calloc(1, sizeof *d);
    if (!d) return sh_error_set(err, SH_E_NOMEM, "directory");
    void *y = NULL;
    sh_err rc = sh_yaml_load_data(path, data, len, &s_top, &y, SH_E_DIRECTORY_FILE, err);
    d->y = y;
    size_t total = 0, signs = 0;
    if (!rc) {
        d->nauth = d->y->authorities_count;
        for (size_t i = 0; i < d->nauth; i++) {
            total += d->y->authorities[i].organisations_count;
            for (size_t k = 0; k < d->y->authorities[i].organisations_count; k++)
                signs += d->y->authorities[i].organisations[k].sign_keys_count;
        }
        d->auth = calloc(d->nauth, sizeof *d->auth);
        d->orgs = calloc(total ? total : 1, sizeof *d->orgs);
        d->signs = calloc(signs ? signs : 1, sizeof *d->signs);
        d->index = calloc(total ? total : 1, sizeof *d->index);
        if (!d->auth || !d->orgs || !d->signs || !d->index)
            rc = sh_error_set(err, SH_E_NOMEM, "directory");
    }
    size_t at = 0, sat = 0;
    for (size_t i = 0; !rc && i < d->nauth; i++) {
        const y_authority *ya = &d->y->authorities[i];
        sh_authority *a = &d->auth[i];
        uint8_t curve[32];
        *a = (sh_authority){.la_code = ya->la_code,
                            .name = ya->name,
                            .broker_code = ya->broker.code,
                            .endpoint = ya->broker.endpoint,
                            .curve_key = ya->broker.curve_key,
                            .orgs = d->orgs + at,
                            .norgs = ya->organisations_count};
        if (sh_la_code_check(ya->la_code) != SH_OK)
            rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                              "%s: authority %zu: la_code is not a DfE LA code", path, i + 1);
        else if (sh_org_code_check(ya->broker.code) != SH_OK)
            rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                              "%s: %s: broker.code is not 1-9 of [A-Z0-9]", path, ya->la_code);
        else if (!zmq_z85_decode(curve, ya->broker.curve_key))
            rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                              "%s: %s: broker.curve_key is not a 40-character Z85 CURVE key", path,
                              ya->la_code);
        else if (sh_hex_decode(ya->broker.sign_key, a->sign_key, sizeof a->sign_key))
            rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                              "%s: %s: broker.sign_key is not 64 hex digits (an Ed25519 public "
                              "key)",
                              path, ya->la_code);
        for (size_t j = 0; !rc && j < i; j++)
            if (strcmp(d->auth[j].la_code, ya->la_code) == 0)
                rc = sh_error_set(err, SH_E_DIRECTORY_FILE, "%s: authority %s is listed twice",
                                  path, ya->la_code);
        for (size_t k = 0; !rc && k < ya->organisations_count; k++) {
            const y_org *yo = &ya->organisations[k];
            rc = sh_registry_org_make(path, yo, k, d->signs + sat, &d->orgs[at],
                                      SH_E_DIRECTORY_FILE, err);
            sat += yo->sign_keys_count;
            d->orgs[at].authority = ya->la_code;
            d->index[at] = (s_index){yo->code, i};
            at++;
        }
    }
    d->norgs = at;
    if (!rc) {
        qsort(d->index, d->norgs, sizeof *d->index, s_indexcmp);
        for (size_t i = 1; !rc && i < d->norgs; i++)
            if (strcmp(d->index[i - 1].code, d->index[i].code) == 0) {
                size_t a = d->index[i - 1].authority, b = d->index[i].authority;
                rc = a == b ? sh_error_set(err, SH_E_DIRECTORY_FILE,
                                           "%s: organisation %s is listed twice under %s", path,
                                           d->index[i].code, d->auth[a].la_code)
                            : sh_error_set(err, SH_E_DIRECTORY_FILE,
                                           "%s: organisation %s is listed under two authorities, "
                                           "%s and %s: each is served by one",
                                           path, d->index[i].code, d->auth[a < b ? a : b].la_code,
                                           d->auth[a < b ? b : a].la_code);
            }
    }
    if (rc) {
        sh_directory_destroy(&d);
        return rc;
    }
    *out = d;
    return SH_OK;
}

sh_err sh_directory_load(const char *path, const uint8_t federation_key[SH_SIGN_PUB_BYTES],
                         sh_directory **out, sh_error *err)
{
    *out = NULL;
    uint8_t *data = NULL, *sigtext = NULL, *msg = NULL;
    size_t len = 0, slen = 0, mlen = 0;
    char sigpath[4096];
    int n = snprintf(sigpath, sizeof sigpath, "%s.sig", path);
    if (n < 0 || (size_t)n >= sizeof sigpath)
        return sh_error_set(err, SH_E_IO, "%s: path too long", path);
    sh_err rc = s_read(path, &data, &len, err);
    if (!rc) rc = s_read(sigpath, &sigtext, &slen, err);
    uint8_t sig[SH_SIG_BYTES];
    if (!rc && slen == 2 * SH_SIG_BYTES + 1 && sigtext[slen - 1] == '\n') slen--;
    if (!rc) sigtext[slen] = '\0'; /* (s_read left room for it) */
    int ok = !rc && sh_hex_decode((const char *)sigtext, sig, sizeof sig) == 0;
    if (!rc && !ok)
        rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                          "%s: not a signature: want 128 hex digits and a newline", sigpath);
    if (!rc && !(msg = s_message(data, len, &mlen)))
        rc = sh_error_set(err, SH_E_NOMEM, "directory");
    if (!rc && sh_verify(federation_key, msg, mlen, sig) != SH_OK)
        rc = sh_error_set(err, SH_E_DIRECTORY_FILE,
                          "%s: the signature in %s does not verify under the federation key: the "
                          "file was changed after it was signed, or signed with another key",
                          path, sigpath);
    if (!rc) rc = s_parse(path, data, len, out, err);
    free(data);
    free(sigtext);
    free(msg);
    return rc;
}

sh_err sh_directory_sign(const char *path, const sh_signkey *k, sh_error *err)
{
    uint8_t *data = NULL, *msg = NULL;
    size_t len = 0, mlen = 0;
    sh_directory *d = NULL;
    sh_err rc = s_read(path, &data, &len, err);
    if (!rc) rc = s_parse(path, data, len, &d, err);
    sh_directory_destroy(&d);
    uint8_t sig[SH_SIG_BYTES];
    if (!rc && !(msg = s_message(data, len, &mlen)))
        rc = sh_error_set(err, SH_E_NOMEM, "directory");
    if (!rc && sh_sign(k, msg, mlen, sig) != SH_OK)
        rc = sh_error_set(err, SH_E_CRYPTO, "signing %s", path);
    free(data);
    free(msg);
    char tmp[4096], dst[4096], text[2 * SH_SIG_BYTES + 2];
    int n = snprintf(dst, sizeof dst, "%s.sig", path),
        m = snprintf(tmp, sizeof tmp, "%s.sig.tmp", path);
    if (!rc && (n < 0 || (size_t)n >= sizeof dst || m < 0 || (size_t)m >= sizeof tmp))
        rc = sh_error_set(err, SH_E_IO, "%s: path too long", path);
    if (rc) return rc;
    sh_hex_encode(sig, SH_SIG_BYTES, text);
    text[2 * SH_SIG_BYTES] = '\n';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return sh_error_set(err, SH_E_IO, "%s: %s", tmp, strerror(errno));
    int bad = write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1) || fsync(fd) != 0;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, dst) != 0) {
        rc = sh_error_set(err, SH_E_IO, "writing %s: %s", dst, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

void sh_directory_destroy(sh_directory **dp)
{
    if (!dp || !*dp) return;
    sh_directory *d = *dp;
    sh_yaml_free(&s_top, d->y);
    free(d->auth);
    free(d->orgs);
    free(d->signs);
    free(d->index);
    free(d);
    *dp = NULL;
}

uint64_t sh_directory_serial(const sh_directory *d)
{
    return d->y->serial;
}

size_t sh_directory_count(const sh_directory *d)
{
    return d->nauth;
}

const sh_authority *sh_directory_at(const sh_directory *d, size_t i)
{
    return i < d->nauth ? &d->auth[i] : NULL;
}

const sh_authority *sh_directory_find(const sh_directory *d, const char *la_code)
{
    for (size_t i = 0; la_code && i < d->nauth; i++)
        if (strcmp(d->auth[i].la_code, la_code) == 0) return &d->auth[i];
    return NULL;
}

const sh_authority *sh_directory_serving(const sh_directory *d, const char *org_code)
{
    s_index probe = {org_code, 0};
    const s_index *hit =
        org_code ? bsearch(&probe, d->index, d->norgs, sizeof *d->index, s_indexcmp) : NULL;
    return hit ? &d->auth[hit->authority] : NULL;
}
