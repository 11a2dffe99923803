/*
 * evidence.c — the senders' evidence at a recipient (docs/evidence.md): each delivery checked
 * against the evidence it came with and against the keys this agency trusts for its sender,
 * kept beside the event, and checked again when someone asks where an event came from.
 *
 * Owns: the senders list (config `senders`: organisation -> signing keys) and the evidence
 * database (sealed: event id -> the evidence received). Never: stores a delivery whose evidence
 * does not verify, or one signed by a key the senders list does not give its sender.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

#define RULE_RECEIPT "receipt" /* the rule the broker gives receipts (docs/protocol.md) */

#define SENDERS_MAX 1024

struct ag_sender {
    char org[SH_ORG_MAX + 1];
    uint8_t key[SH_SIGN_PUB_BYTES];
};

sh_err ag_senders_load(sh_agent *a, sh_error *err)
{
    const char *path = a->cfg->senders;
    if (!path) return SH_OK;
    FILE *f = fopen(path, "r");
    if (!f) return sh_error_set(err, SH_E_IO, "senders: %s: %s", path, strerror(errno));
    a->senders = calloc(SENDERS_MAX, sizeof *a->senders);
    char line[256];
    int lineno = 0;
    sh_err rc = a->senders ? SH_OK : sh_error_set(err, SH_E_NOMEM, "senders");
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char org[SH_ORG_MAX + 2], hex[66];
        int end = 0;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "org=%10s key=%65[0-9a-f]%n", org, hex, &end) != 2 ||
            (line[end] != '\n' && line[end] != '\0') || sh_org_code_check(org) ||
            strlen(hex) != 64 || a->nsenders == SENDERS_MAX) {
            rc = sh_error_set(err, SH_E_INVAL,
                              "senders: %s line %d: want org=<organisation code> key=<64 hex "
                              "digits> (at most %d lines)",
                              path, lineno, SENDERS_MAX);
            break;
        }
        struct ag_sender *s = &a->senders[a->nsenders++];
        memcpy(s->org, org, strlen(org) + 1); /* (checked: an organisation code) */
        for (int i = 0; i < SH_SIGN_PUB_BYTES; i++)
            s->key[i] = (uint8_t)(sh_hex_digit(hex[2 * i]) << 4 | sh_hex_digit(hex[2 * i + 1]));
    }
    fclose(f);
    return rc;
}

void ag_senders_free(sh_agent *a)
{
    free(a->senders);
    a->senders = NULL;
    a->nsenders = 0;
}

/* 1 when the senders list gives org this key (or there is no list: any key that verifies). */
static int s_trusted(const sh_agent *a, const char *org, const uint8_t key[SH_SIGN_PUB_BYTES])
{
    if (!a->cfg->senders) return 1;
    for (size_t i = 0; i < a->nsenders; i++)
        if (strcmp(a->senders[i].org, org) == 0 &&
            memcmp(a->senders[i].key, key, SH_SIGN_PUB_BYTES) == 0)
            return 1;
    return 0;
}

sh_err ag_evidence_check(sh_agent *a, const uint8_t *copy, size_t clen, const uint8_t *ev,
                         size_t evlen, const sh_envelope *e, const char *rule,
                         uint8_t signer[SH_SIGN_PUB_BYTES], sh_error *err)
{
    sh_evidence_batch b;
    uint8_t seed[SH_EVIDENCE_SEED_BYTES];
    memset(signer, 0, SH_SIGN_PUB_BYTES);
    int kind = sh_evidence_kind(ev, evlen);
    if (!kind) {
        /* only the broker's own receipts come unsigned: they are its statements */
        if (!evlen && strcmp(rule, RULE_RECEIPT) == 0 &&
            e->event_type == SHAREHUB__V1__EVENT_TYPE__EVENT_TYPE_DELIVERY_RECEIPT)
            return SH_OK;
        return sh_error_set(err, SH_E_EVIDENCE, "evidence: none came with this %s from %s",
                            sh_event_type_name(e->event_type), e->source_org);
    }
    sh_err rc = kind == SH_EVIDENCE_SENDER
                    ? sh_evidence_check_sender(copy, clen, ev, evlen, &b, seed, &a->ev_cache, err)
                    : sh_evidence_check_copy(copy, clen, ev, evlen, &b, &a->ev_cache, err);
    sh_wipe(seed, sizeof seed);
    if (rc) return rc;
    if (!s_trusted(a, e->source_org, b.signer)) {
        char hex[17];
        sh_hex_encode(b.signer, 8, hex);
        return sh_error_set(err, SH_E_EVIDENCE,
                            "evidence: signed by key %s…, which the senders list does not give "
                            "%s",
                            hex, e->source_org);
    }
    memcpy(signer, b.signer, SH_SIGN_PUB_BYTES);
    return SH_OK;
}

sh_err ag_evidence_keep(sh_agent *a, sh_txn *t, const uint8_t *id, const uint8_t *ev, size_t evlen,
                        sh_error *err)
{
    return evlen ? sh_txn_put(t, a->evidence, id, 16, ev, evlen, 0, err) : SH_OK;
}

sh_err ag_evidence_origin(sh_agent *a, sh_txn *t, const uint8_t *id, const uint8_t *copy,
                          size_t clen, const sh_envelope *e, const char *rule, char *out,
                          size_t cap)
{
    sh_buf v = {0};
    sh_error err;
    uint8_t signer[SH_SIGN_PUB_BYTES];
    sh_err rc = sh_txn_get(t, a->evidence, id, 16, &v, &err);
    if (rc == SH_E_NOT_FOUND) {
        snprintf(out, cap, "%s",
                 strcmp(rule, RULE_RECEIPT) == 0 ? "the broker's receipt (not signed)"
                                                 : "no evidence kept");
        return SH_OK;
    }
    if (rc) return rc;
    rc = ag_evidence_check(a, copy, clen, v.data, v.len, e, rule, signer, &err);
    char hex[2 * SH_SIGN_PUB_BYTES + 1];
    sh_hex_encode(signer, SH_SIGN_PUB_BYTES, hex);
    if (rc)
        snprintf(out, cap, "NOT PROVEN: %s", err.detail);
    else
        snprintf(out, cap, "proven: signed by %s with key %s", e->source_org, hex);
    sh_buf_free(&v);
    return SH_OK;
}
