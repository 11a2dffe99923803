/*
 * tstamp.c — RFC 3161 requests and the check of their answers, through OpenSSL's TS code
 * (tstamp.h). Nothing here talks to an authority: the caller carries the bytes.
 *
 * Owns: nothing. Never: accepts a response that is not granted, not over the digest asked for,
 * not signed by a time-stamping certificate that chains to the given roots.
 */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "tstamp.h"

void sh_tstamp_digest(const uint8_t store_id[16], uint64_t seq, const uint8_t hash[32],
                      uint8_t out[32])
{
    static const char label[] = "sharehub/v1/timestamp";
    uint8_t buf[sizeof label - 1 + 16 + 8 + 32];
    memcpy(buf, label, sizeof label - 1);
    memcpy(buf + sizeof label - 1, store_id, 16);
    sh_be64_put(buf + sizeof label - 1 + 16, seq);
    memcpy(buf + sizeof label - 1 + 24, hash, 32);
    unsigned n = 32;
    if (EVP_Digest(buf, sizeof buf, out, &n, EVP_sha256(), NULL) != 1) memset(out, 0, 32);
}

/* A request over digest; with a random 64-bit nonce when nonce is set. */
static TS_REQ *s_request(const uint8_t digest[32], int nonce)
{
    TS_REQ *req = TS_REQ_new();
    TS_MSG_IMPRINT *mi = TS_MSG_IMPRINT_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    BIGNUM *bn = nonce ? BN_new() : NULL;
    ASN1_INTEGER *n = NULL;
    int ok = req && mi && alg && (!nonce || bn) && TS_REQ_set_version(req, 1) &&
             X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) &&
             TS_MSG_IMPRINT_set_algo(mi, alg) &&
             TS_MSG_IMPRINT_set_msg(mi, (uint8_t *)digest, 32) && TS_REQ_set_msg_imprint(req, mi) &&
             TS_REQ_set_cert_req(req, 1);
    if (ok && nonce)
        ok = BN_rand(bn, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             (n = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && TS_REQ_set_nonce(req, n);
    ASN1_INTEGER_free(n);
    BN_free(bn);
    X509_ALGOR_free(alg);
    TS_MSG_IMPRINT_free(mi);
    if (!ok) {
        TS_REQ_free(req);
        return NULL;
    }
    return req;
}

sh_err sh_tstamp_request(const uint8_t digest[32], uint8_t **der, size_t *len, sh_error *err)
{
    *der = NULL;
    *len = 0;
    TS_REQ *req = s_request(digest, 1);
    uint8_t *p = NULL;
    int n = req ? i2d_TS_REQ(req, &p) : -1;
    TS_REQ_free(req);
    if (n <= 0) return sh_error_set(err, SH_E_CRYPTO, "time-stamp request");
    *der = malloc((size_t)n);
    if (*der) memcpy(*der, p, (size_t)n);
    OPENSSL_free(p);
    if (!*der) return sh_error_set(err, SH_E_NOMEM, "time-stamp request");
    *len = (size_t)n;
    return SH_OK;
}

sh_err sh_tstamp_check(const uint8_t *resp, size_t len, const uint8_t digest[32],
                       const uint8_t *reqder, size_t reqlen, const char *ca_file, int64_t *gen_ms,
                       sh_error *err)
{
    *gen_ms = 0;
    const uint8_t *p = resp;
    TS_RESP *r = len < 1u << 20 ? d2i_TS_RESP(NULL, &p, (long)len) : NULL;
    if (!r || p != resp + len) {
        TS_RESP_free(r);
        return sh_error_set(err, SH_E_TIMESTAMP, "not a DER TimeStampResp");
    }
    /* what was asked: the request sent (its nonce too), or one rebuilt over the digest */
    TS_REQ *req = NULL;
    if (reqder) {
        const uint8_t *q = reqder;
        req = d2i_TS_REQ(NULL, &q, (long)reqlen);
    } else {
        req = s_request(digest, 0);
    }
    X509_STORE *store = X509_STORE_new();
    TS_VERIFY_CTX *ctx = req ? TS_REQ_to_TS_VERIFY_CTX(req, NULL) : NULL;
    sh_err rc = SH_OK;
    if (!store || !ctx) {
        rc = sh_error_set(err, SH_E_NOMEM, "time-stamp check");
    } else if (X509_STORE_load_file(store, ca_file) != 1) {
        rc = sh_error_set(err, SH_E_KEY_MISSING, "%s: no PEM certificate to check time-stamps by",
                          ca_file);
    } else {
        /* the digest, nonce and version as asked; the signature and the signer's chain */
        TS_VERIFY_CTX_add_flags(ctx, TS_VFY_SIGNATURE | TS_VFY_SIGNER);
        TS_VERIFY_CTX_set_store(ctx, store);
        store = NULL; /* the context's now */
        ERR_clear_error();
        if (TS_RESP_verify_response(ctx, r) != 1) {
            char why[120];
            ERR_error_string_n(ERR_get_error(), why, sizeof why);
            rc = sh_error_set(err, SH_E_TIMESTAMP, "the token does not verify: %s", why);
        }
    }
    if (!rc) {
        const ASN1_GENERALIZEDTIME *gt = TS_TST_INFO_get_time(TS_RESP_get_tst_info(r));
        struct tm tm;
        if (!gt || ASN1_TIME_to_tm(gt, &tm) != 1)
            rc = sh_error_set(err, SH_E_TIMESTAMP, "the token carries no time");
        else
            *gen_ms = (int64_t)timegm(&tm) * 1000;
    }
    ERR_clear_error();
    TS_VERIFY_CTX_free(ctx);
    X509_STORE_free(store);
    TS_REQ_free(req);
    TS_RESP_free(r);
    return rc;
}
