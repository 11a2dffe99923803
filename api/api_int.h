/*
 * api_int.h — sharehub-api's private state, shared by its files and by nothing else.
 *
 *   main.c       options, signals, the process's life
 *   config.c     the configuration file and its client registry (fingerprints, scopes)
 *   server.c     HTTPS (libmicrohttpd with GnuTLS): TLS and client certificates, requests
 *                and their bodies, routing, JSON errors, the event loop
 *   link.c       the agent's local interface: requests in flight, matched by tag
 *   resources.c  the /v1 resources: what each asks the agent and how its answer reads
 *   stream.c     GET /v1/inbox/stream: server-sent events
 *   fhir.c       FHIR R4 for health systems: the Flag search (a CP-IS access), Encounter
 *   ws.c         the workspace for people (docs/workspace.md): its own HTTPS listener,
 *                sessions, CSRF, forms, static assets, pages rendered from templates
 *   pages.c      the workspace's pages: sign-in, the queue, an item, triage; the routes;
 *                what the page files share (pages.h)
 *   records.c    the workspace's record pages: child search and record, the clinician's
 *                view, the auditor's view of the log
 *   template.c   the templates' Mustache subset, escaping every value
 *
 * sharehub-api is a process of its own beside the agent: untrusted TLS and HTTP parsing, and
 * a thousand connections, live where neither the store's keys nor the broker link are, and a
 * fault or overload here cannot stall the agent's deliveries (docs/api.md, "Design").
 * Never: answers a request from a client whose certificate is not registered; lets a request
 * read personal data without naming its user and purpose; logs personal data.
 */
#ifndef SHAREHUB_API_INT_H
#define SHAREHUB_API_INT_H

#include <json-c/json.h>
#include <microhttpd.h>
#include <stdint.h>

#include "error.h"

#define BODY_MAX      (1024 * 1024) /* bytes of a request body */
#define AGENT_WAIT_MS 10000         /* an agent silent this long: 503 */
#define SCOPE_PUBLISH 1u
#define SCOPE_INBOX   2u
#define SCOPE_TRACK   4u
#define SCOPE_FLAGS   8u
#define SCOPE_ADMIN   16u

typedef struct api_client {
    char name[65];
    char site[10];    /* the ODS site its users work at (CP-IS access notifications) */
    char setting[40]; /* its care setting name (emergency_department…); "" the default */
    uint8_t fp[32];   /* SHA-256 of the certificate (DER) */
    unsigned scopes;
} api_client;

typedef struct api_config {
    char *listen, *agent_socket;
    char *cert_file, *key_file, *ca_file;
    api_client *clients;
    size_t nclients;
    int log_level;
    int64_t stream_poll_ms;
    /* the workspace (ws.c): absent when ws_listen is NULL */
    char *ws_listen, *ws_root;
    int64_t ws_idle_ms, ws_absolute_ms;
    char ws_site[10], ws_setting[40];
} api_config;

typedef struct api api;
typedef struct api_req api_req;

/* A route: method, path pattern ('*' matches one segment), the scopes any of which admits,
 * and the handler. start answers at once (api_answer) or asks the agent (api_ask); finish
 * turns the agent's answer into the response. */
typedef struct api_route {
    const char *method, *pattern;
    unsigned scopes;
    void (*start)(api *s, api_req *r);
    void (*finish)(api *s, api_req *r, json_object *reply);
} api_route;

struct api_req {
    struct MHD_Connection *c;
    const api_route *route;
    char method[8];
    char arg[160]; /* the path's '*' segment, decoded */
    const api_client *client;
    char *body;
    size_t len;
    int too_large, started;
    /* the agent's part */
    uint64_t tag;
    int64_t asked_ms;
    api_req *next; /* in the link's list of requests waiting for the agent */
    /* the response, once known */
    unsigned status;
    char *resp;
    size_t resp_len;
    const char *ctype;
    char location[96];
    char allow[48]; /* a 405's Allow header */
    int retry_after;
    int suspended;
    /* a stream (stream.c) */
    int fhir; /* a /fhir path: errors are OperationOutcomes */
    int streaming;
    uint64_t stream_cursor;
    int64_t stream_beat_ms;
    char *out;
    size_t out_len, out_off;
    api_req *snext;
    /* the workspace's part (ws.c) */
    struct ws_session *sess;
    json_object *form; /* a POST's fields, or the GET's query */
    int step;
    int signing; /* counted in api.signing_in until it ends */
    char url[200];
    char cookie[160]; /* a Set-Cookie to send */
};

/* ---- config.c ---- */
sh_err api_config_load(const char *path, api_config **out, sh_error *err);
void api_config_free(api_config **c);
const api_client *api_client_find(const api_config *c, const uint8_t fp[32]);
/* "publish inbox" for a scope mask. */
void api_scopes_text(unsigned scopes, char *out, size_t cap);

/* ---- server.c ---- */
struct api {
    api_config *cfg;
    struct MHD_Daemon *d;
    void *zctx, *agent; /* the DEALER socket to the agent's REP */
    uint64_t tag;
    api_req *waiting, *waiting_tail; /* asked the agent, oldest first */
    api_req *streams;                /* open server-sent event streams */
    uint64_t inbox_seq;              /* the agent's inbox, as last seen (stream.c) */
    int64_t stream_polled_ms;
    uint64_t stream_polling; /* the tag of the streams' status request in flight */
    unsigned refusals;       /* refusals this second beyond the ones audited singly */
    int64_t refusal_second;
    unsigned refusals_this_second;
    char last_refusal[200];
    int role; /* the agent's role: 2 health (FHIR) */
    char org[16];
    struct MHD_Daemon *wd; /* the workspace's listener (NULL: none configured) */
    unsigned signing_in;   /* sign-ins begun and not yet answered (pages.c) */
    struct ws *ws;
};
sh_err api_new(api_config *cfg, api **out, sh_error *err);
sh_err api_run(api *s, volatile int *stop, volatile int *reload, const char *config_path);
void api_destroy(api **s);

/* A request's end (either listener): forgotten by the link and the streams, freed. */
void api_req_free(api *s, api_req *r);
/* Both listeners' MHD_OPTION_NOTIFY_COMPLETED: api_req_free of the request (cls: the api). */
void api_completed(void *cls, struct MHD_Connection *c, void **ctx,
                   enum MHD_RequestTerminationCode toe);
/* The response of r: status, JSON (taken: freed after sending). */
void api_answer(api_req *r, unsigned status, json_object *body);
/* A sharehub error as the response of r ({"code","name","message","detail","field"}),
 * with the HTTP status its code takes. */
void api_error(api_req *r, sh_err code, const char *detail);
/* The HTTP status of a sharehub error code. */
unsigned api_status_of(sh_err code);
/* When the agent's answer is an error (ok false): makes it r's response (an OperationOutcome
 * naming expression on a /fhir path) and returns 1; else 0. */
int api_agent_failed(api_req *r, json_object *reply, const char *expression);
/* A request header (case-insensitive), or NULL. */
const char *api_header(api_req *r, const char *name);
const char *api_query(api_req *r, const char *name);
/* The body parsed as one JSON object; NULL after answering r with the error. */
json_object *api_body_json(api_req *r, const char *const *ctypes);
/* Adds the reader's user, purpose and the client's name to req (from the headers). 0, or -1
 * after answering r with the error. */
int api_reader(api_req *r, json_object *req, int purpose_required);

/* ---- link.c ---- */
sh_err api_link_open(api *s, sh_error *err);
/* Sends req (taken) to the agent for r, which waits (suspended) for the answer. 0, or -1
 * after answering r with 503. */
int api_ask(api *s, api_req *r, json_object *req);
/* Sends req (taken) with nobody waiting on its answer; its tag, or 0 when the agent is not
 * there. */
uint64_t api_tell(api *s, json_object *req);
/* Reads the agent's answers and hands each to its request; answers 503 to those waiting
 * past AGENT_WAIT_MS. */
void api_link_io(api *s);
void api_link_forget(api *s, api_req *r);
/* Audits a refusal of a client system at the agent (rate-limited: beyond 20 a second, one
 * entry a second counts the rest). */
void api_audit_refusal(api *s, const char *client, const char *route, sh_err code, const char *why);
void api_refusals_flush(api *s, int64_t now);

/* ---- resources.c ---- */
extern const api_route api_routes[];
extern const size_t api_nroutes;

/* ---- stream.c ---- */
void api_stream_start(api *s, api_req *r);
void api_stream_finish(api *s, api_req *r, json_object *reply);
/* Polls the agent's inbox for open streams and wakes those with news. */
void api_streams_tick(api *s, int64_t now);
void api_stream_status(api *s, json_object *reply);
ssize_t api_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void api_stream_closed(api *s, api_req *r);

/* ---- fhir.c ---- */
void api_fhir_flag_start(api *s, api_req *r);
void api_fhir_flag_finish(api *s, api_req *r, json_object *reply);
void api_fhir_encounter_start(api *s, api_req *r);
void api_fhir_encounter_finish(api *s, api_req *r, json_object *reply);
/* The sharehub error as a FHIR OperationOutcome (for the /fhir paths). */
void api_fhir_error(api_req *r, sh_err code, const char *detail, const char *expression);

/* ---- ws.c ---- */
/* The roles of the workspace's accounts, as the agent names them (agents/accounts.c). */
enum { WS_NOBODY = 0, WS_PRACTITIONER, WS_MANAGER, WS_READ_ONLY, WS_AUDITOR };
#define WS_ROLE(x) (1u << (x))
#define WS_ANYONE  (WS_ROLE(WS_PRACTITIONER) | WS_ROLE(WS_MANAGER) | WS_ROLE(WS_READ_ONLY))
typedef struct ws_session {
    char id[48], csrf[48];
    char user[65], display[65];
    int role; /* WS_NOBODY: not signed in yet (a sign-in form's session) */
    int64_t created_ms, seen_ms;
    char flash[200];      /* a one-off confirmation shown on the next page */
    char error[400];      /* a one-off error for the next page's form */
    char error_field[40]; /* the field it concerns */
    json_object *values;  /* the form values that failed, to fill it again */
} ws_session;
sh_err ws_new(api *s, sh_error *err);
void ws_destroy(api *s);
/* The workspace's routes; `scopes` holds the roles (WS_ROLE bits) it admits, 0: anyone. */
extern const api_route ws_routes[];
extern const size_t ws_nroutes;
/* Renders template tpl (inside the layout) in ctx (taken), as r's response. */
void ws_page(api *s, api_req *r, unsigned status, const char *title, const char *tpl,
             json_object *ctx);
/* A page saying what went wrong (code's message, detail), with its HTTP status. */
void ws_fail(api *s, api_req *r, sh_err code, const char *detail);
/* 303 See Other to location. */
void ws_redirect(api_req *r, const char *location);
/* A form or query field, or NULL. */
const char *ws_field(api_req *r, const char *name);
/* A new session (its cookie set on r); NULL when the table is full of live ones. */
ws_session *ws_session_new(api *s, api_req *r);
void ws_session_end(api *s, api_req *r);
/* The agent's error answer, when it is one, as the session's one-off error (for the next
 * page): 1; else 0. */
int ws_agent_error(api_req *r, json_object *reply);
const char *ws_role_name(int role);
int ws_role_value(const char *name);

#endif
