/*
 * error.c — names and messages of the sharehub error codes.
 *
 * Owns: the code → name/message table. Never: decides policy or logs anything.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    sh_err code;
    const char *name;
    const char *message;
} s_table[] = {
    {SH_OK, "SH_OK", "success"},
    {SH_E_NOMEM, "SH_E_NOMEM", "out of memory"},
    {SH_E_INVAL, "SH_E_INVAL", "invalid argument"},
    {SH_E_IO, "SH_E_IO", "input/output error"},
    {SH_E_INTERNAL, "SH_E_INTERNAL", "internal library failure"},
    {SH_E_RANGE, "SH_E_RANGE", "buffer too small"},
    {SH_E_TOO_LARGE, "SH_E_TOO_LARGE", "message exceeds the size limit"},
    {SH_E_MALFORMED, "SH_E_MALFORMED", "message is not valid protobuf"},
    {SH_E_MISSING_FIELD, "SH_E_MISSING_FIELD", "a mandatory field is missing"},
    {SH_E_BAD_FIELD, "SH_E_BAD_FIELD", "a field's value is out of range"},
    {SH_E_SCHEMA_VERSION, "SH_E_SCHEMA_VERSION", "unsupported schema version"},
    {SH_E_BODY_MISMATCH, "SH_E_BODY_MISMATCH", "event type does not match the body"},
    {SH_E_BAD_DATE, "SH_E_BAD_DATE", "not a valid YYYY-MM-DD date"},
    {SH_E_BAD_TEXT, "SH_E_BAD_TEXT", "text is not valid UTF-8 or holds control characters"},
    {SH_E_UNKNOWN_FIELD, "SH_E_UNKNOWN_FIELD", "a field the schema does not have"},
    {SH_E_BAD_NHS_NUMBER, "SH_E_BAD_NHS_NUMBER", "not a valid NHS number"},
    {SH_E_BAD_UPN, "SH_E_BAD_UPN", "not a valid unique pupil number"},
    {SH_E_BAD_LA_CODE, "SH_E_BAD_LA_CODE", "not a valid DfE local authority code"},
    {SH_E_BAD_ORG_CODE, "SH_E_BAD_ORG_CODE", "not a valid organisation code"},
    {SH_E_BAD_EVENT_ID, "SH_E_BAD_EVENT_ID", "not a valid event id (16-byte UUIDv7)"},
    {SH_E_BAD_LA_CHILD_ID, "SH_E_BAD_LA_CHILD_ID", "not a valid local-authority child id"},
    {SH_E_KEY_MISSING, "SH_E_KEY_MISSING", "key file not found"},
    {SH_E_KEY_PERMISSIONS, "SH_E_KEY_PERMISSIONS",
     "key file is accessible by group or others (chmod 600)"},
    {SH_E_KEY_FORMAT, "SH_E_KEY_FORMAT", "key file does not hold a key of the expected kind"},
    {SH_E_AUTH_FAILED, "SH_E_AUTH_FAILED", "sealed value failed authentication (altered or moved)"},
    {SH_E_WRONG_KEY, "SH_E_WRONG_KEY", "value was sealed under a different key"},
    {SH_E_CRYPTO, "SH_E_CRYPTO", "cryptographic operation failed"},
    {SH_E_BAD_SIGNATURE, "SH_E_BAD_SIGNATURE", "signature does not verify"},
    {SH_E_SEAL_FORMAT, "SH_E_SEAL_FORMAT", "sealed value is truncated or of unknown version"},
    {SH_E_NOT_FOUND, "SH_E_NOT_FOUND", "not found"},
    {SH_E_EXISTS, "SH_E_EXISTS", "already exists"},
    {SH_E_MAP_FULL, "SH_E_MAP_FULL", "store is full (map size reached)"},
    {SH_E_DISK_FULL, "SH_E_DISK_FULL", "no space left on the store's disk"},
    {SH_E_STORE, "SH_E_STORE", "store operation failed"},
    {SH_E_STORE_VERSION, "SH_E_STORE_VERSION", "store has an unsupported format version"},
    {SH_E_STORE_CORRUPT, "SH_E_STORE_CORRUPT", "store metadata is damaged"},
    {SH_E_TXN, "SH_E_TXN", "transaction misuse"},
    {SH_E_AUDIT_ALTERED, "SH_E_AUDIT_ALTERED", "audit entry was altered"},
    {SH_E_AUDIT_MISSING, "SH_E_AUDIT_MISSING", "audit entry is missing"},
    {SH_E_AUDIT_REORDERED, "SH_E_AUDIT_REORDERED", "audit entry is out of order"},
    {SH_E_AUDIT_TRUNCATED, "SH_E_AUDIT_TRUNCATED",
     "audit log ends before its last signed checkpoint"},
    {SH_E_AUDIT_CHECKPOINT, "SH_E_AUDIT_CHECKPOINT", "audit checkpoint is invalid"},
    {SH_E_AUDIT_FORMAT, "SH_E_AUDIT_FORMAT", "audit entry cannot be parsed"},
    {SH_E_AUDIT_ROLLED_BACK, "SH_E_AUDIT_ROLLED_BACK",
     "audit log is behind or forked from a checkpoint the broker witnessed"},
    {SH_E_AUDIT_EMPTY, "SH_E_AUDIT_EMPTY", "audit log is empty"},
    {SH_E_AUDIT_WRONG_STORE, "SH_E_AUDIT_WRONG_STORE", "the store is not the one it was named as"},
    {SH_E_AUDIT_UNSIGNED, "SH_E_AUDIT_UNSIGNED", "audit entries follow the last signed head"},
    {SH_E_AUDIT_GENESIS, "SH_E_AUDIT_GENESIS", "audit log does not begin with its genesis entry"},
    {SH_E_EVIDENCE, "SH_E_EVIDENCE", "the sender's evidence does not verify over the event"},
    {SH_E_TIMESTAMP, "SH_E_TIMESTAMP", "a time-stamp of the audit log does not check"},
    {SH_E_PROTOCOL, "SH_E_PROTOCOL", "not a valid sharehub protocol message"},
    {SH_E_NOT_ENROLLED, "SH_E_NOT_ENROLLED", "peer key is not enrolled or was revoked"},
    {SH_E_SPOOFED_SOURCE, "SH_E_SPOOFED_SOURCE",
     "event source is not the authenticated organisation"},
    {SH_E_REPLAYED, "SH_E_REPLAYED", "event id already used for different content"},
    {SH_E_UNKNOWN_EVENT, "SH_E_UNKNOWN_EVENT", "no such event at the broker"},
    {SH_E_UNAVAILABLE, "SH_E_UNAVAILABLE", "broker cannot accept events now"},
    {SH_E_CONNECTION_CLOSED, "SH_E_CONNECTION_CLOSED", "connection closed by the transport"},
    {SH_E_BAD_SUBSCRIPTION, "SH_E_BAD_SUBSCRIPTION", "subscriptions name an unknown event type"},
    {SH_E_EXPIRED, "SH_E_EXPIRED", "the recipient did not take the delivery before it expired"},
    {SH_E_NET_PROCESS, "SH_E_NET_PROCESS", "the broker's network process ended"},
    {SH_E_DENY_NO_ISP, "SH_E_DENY_NO_ISP", "no information sharing protocol covers this share"},
    {SH_E_DENY_NOT_ACTIVE, "SH_E_DENY_NOT_ACTIVE", "the sharing protocol is not active"},
    {SH_E_DENY_LAPSED, "SH_E_DENY_LAPSED", "the sharing protocol has lapsed"},
    {SH_E_DENY_PURPOSE, "SH_E_DENY_PURPOSE", "purpose not covered by the sharing protocol"},
    {SH_E_DENY_BASIS, "SH_E_DENY_BASIS", "lawful basis does not match the sharing protocol"},
    {SH_E_DENY_LEVEL, "SH_E_DENY_LEVEL", "level of need outside the sharing protocol's range"},
    {SH_E_DENY_CONSENT, "SH_E_DENY_CONSENT", "consent required and not given"},
    {SH_E_DENY_PARTY, "SH_E_DENY_PARTY", "not a party to the sharing protocol"},
    {SH_E_DENY_NO_PEER, "SH_E_DENY_NO_PEER", "no peering with the recipient's authority"},
    {SH_E_UNSUBSCRIBED, "SH_E_UNSUBSCRIBED", "the recipient does not take this type of event"},
    {SH_E_POLICY_FILE, "SH_E_POLICY_FILE", "sharing protocol file is invalid"},
    {SH_E_REGISTRY_FILE, "SH_E_REGISTRY_FILE", "enrolment registry is invalid"},
    {SH_E_DIRECTORY_FILE, "SH_E_DIRECTORY_FILE", "federation directory is invalid"},
    {SH_E_NO_CLIENT_CERT, "SH_E_NO_CLIENT_CERT", "no valid client certificate"},
    {SH_E_UNKNOWN_CLIENT, "SH_E_UNKNOWN_CLIENT", "client certificate is not registered"},
    {SH_E_OUT_OF_SCOPE, "SH_E_OUT_OF_SCOPE", "the client system's scopes do not allow this"},
    {SH_E_NO_RESOURCE, "SH_E_NO_RESOURCE", "no such resource"},
    {SH_E_METHOD, "SH_E_METHOD", "method not allowed on this resource"},
    {SH_E_MEDIA_TYPE, "SH_E_MEDIA_TYPE", "unsupported content type"},
    {SH_E_API_CONFIG, "SH_E_API_CONFIG", "API configuration is invalid"},
    {SH_E_AGENT_UNAVAILABLE, "SH_E_AGENT_UNAVAILABLE", "the agent did not answer"},
    {SH_E_SIGN_IN, "SH_E_SIGN_IN", "the user name or password is not right"},
    {SH_E_LOCKED, "SH_E_LOCKED", "the account is locked after repeated failed sign-ins"},
    {SH_E_NO_SESSION, "SH_E_NO_SESSION", "not signed in, or the session has expired"},
    {SH_E_CSRF, "SH_E_CSRF", "the form's security token is missing or wrong"},
    {SH_E_ROLE, "SH_E_ROLE", "the user's role does not allow this"},
    {SH_E_TRIAGE_STATE, "SH_E_TRIAGE_STATE", "the item's triage state does not allow this"},
    {SH_E_LEVEL_OUTCOME, "SH_E_LEVEL_OUTCOME", "the outcome does not fit the level of need"},
};

static int s_find(sh_err code)
{
    for (size_t i = 0; i < sizeof s_table / sizeof s_table[0]; i++)
        if (s_table[i].code == code) return (int)i;
    return -1;
}

const char *sh_err_name(sh_err code)
{
    int i = s_find(code);
    return i < 0 ? "SH_E_UNKNOWN" : s_table[i].name;
}

const char *sh_err_message(sh_err code)
{
    int i = s_find(code);
    return i < 0 ? "unknown error" : s_table[i].message;
}

sh_err sh_error_set(sh_error *e, sh_err code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        e->detail[0] = '\0';
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(e->detail, sizeof e->detail, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

void sh_error_clear(sh_error *e)
{
    if (e) {
        e->code = SH_OK;
        e->detail[0] = '\0';
    }
}

const char *sh_error_format(const sh_error *e, char *buf, size_t len)
{
    if (!buf || len == 0) return "";
    if (e->detail[0])
        snprintf(buf, len, "E%03d %s: %s: %s", (int)e->code, sh_err_name(e->code),
                 sh_err_message(e->code), e->detail);
    else
        snprintf(buf, len, "E%03d %s: %s", (int)e->code, sh_err_name(e->code),
                 sh_err_message(e->code));
    return buf;
}
