/*
 * link.c — sharehub-api's side of the agent's local interface (docs/agent.md): a DEALER
 * socket on the agent's REP, so many requests can be in flight; each carries a tag the agent
 * echoes, and answers are matched to their requests by it. An agent silent for AGENT_WAIT_MS
 * gets its waiting requests answered 503; a late answer is dropped, never given to another.
 *
 * Owns: the DEALER socket and the list of requests waiting for the agent. Never: hands an
 * answer to a request other than the one that asked; waits without a deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "api_int.h"
#include "clock.h"
#include "log.h"

#define REFUSALS_SINGLY 20 /* refusals audited one by one each second; the rest counted */

sh_err api_link_open(api *s, sh_error *err)
{
    char ep[160];
    int linger = 0, one = 1, hwm = 100000;
    snprintf(ep, sizeof ep, "ipc://%s", s->cfg->agent_socket);
    s->zctx = zmq_ctx_new();
    s->agent = s->zctx ? zmq_socket(s->zctx, ZMQ_DEALER) : NULL;
    if (!s->agent || zmq_setsockopt(s->agent, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(s->agent, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt(s->agent, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s->agent, ZMQ_RCVHWM, &hwm, sizeof hwm) || zmq_connect(s->agent, ep))
        return sh_error_set(err, SH_E_API_CONFIG, "agent_socket %s: %s", s->cfg->agent_socket,
                            zmq_strerror(zmq_errno()));
    return SH_OK;
}

/* Sends one request; its tag, or 0 when the agent cannot take it now. */
static uint64_t s_send(api *s, json_object *req)
{
    uint64_t tag = ++s->tag;
    json_object_object_add(req, "tag", json_object_new_int64((int64_t)tag));
    const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    int ok = zmq_send(s->agent, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0 &&
             zmq_send(s->agent, text, strlen(text), ZMQ_DONTWAIT) >= 0;
    json_object_put(req);
    return ok ? tag : 0;
}

uint64_t api_tell(api *s, json_object *req)
{
    return s_send(s, req);
}

int api_ask(api *s, api_req *r, json_object *req)
{
    uint64_t tag = s_send(s, req);
    if (!tag) {
        api_error(r, SH_E_AGENT_UNAVAILABLE,
                  "the agent's local socket is not there: the agent is stopped or starting");
        return -1;
    }
    r->tag = tag;
    r->asked_ms = sh_clock_ms();
    r->next = NULL;
    if (s->waiting_tail)
        s->waiting_tail->next = r;
    else
        s->waiting = r;
    s->waiting_tail = r;
    return 0;
}

void api_link_forget(api *s, api_req *r)
{
    api_req *prev = NULL;
    for (api_req *w = s->waiting; w; prev = w, w = w->next) {
        if (w != r) continue;
        if (prev)
            prev->next = w->next;
        else
            s->waiting = w->next;
        if (s->waiting_tail == w) s->waiting_tail = prev;
        w->next = NULL;
        return;
    }
}

static void s_resume(api_req *r)
{
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->c);
    }
}

/* One answer from the agent: to the request that asked, or to the streams' poll. */
static void s_answer(api *s, const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *reply = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL, *v;
    if (tok) json_tokener_free(tok);
    if (!reply || !json_object_is_type(reply, json_type_object) ||
        !json_object_object_get_ex(reply, "tag", &v)) {
        sh_log(SH_LOG_WARNING, NULL, NULL, "the agent sent an answer without a tag: dropped");
        json_object_put(reply);
        return;
    }
    uint64_t tag = (uint64_t)json_object_get_int64(v);
    if (s->stream_polling && tag == s->stream_polling) {
        s->stream_polling = 0;
        api_stream_status(s, reply);
    }
    for (api_req *w = s->waiting; w; w = w->next) {
        if (w->tag != tag) continue;
        api_link_forget(s, w);
        w->route->finish(s, w, reply);
        if (w->tag != tag && !w->status) break; /* it asked the agent again (a page's steps) */
        if (!w->status && !w->streaming) api_error(w, SH_E_INTERNAL, "no answer was made");
        s_resume(w);
        break;
    }
    json_object_put(reply);
}

void api_link_io(api *s)
{
    for (int k = 0; k < 1024; k++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->agent, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        int more = zmq_msg_more(&m);
        if (zmq_msg_size(&m) == 0 && more) { /* the delimiter; the answer follows */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s->agent, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (!more) s_answer(s, zmq_msg_data(&m), zmq_msg_size(&m));
        }
        while (more) { /* anything longer is not an answer: drained */
            zmq_msg_close(&m);
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s->agent, ZMQ_DONTWAIT) < 0) break;
            more = zmq_msg_more(&m);
        }
        zmq_msg_close(&m);
    }
    int64_t now = sh_clock_ms();
    while (s->waiting && now - s->waiting->asked_ms > AGENT_WAIT_MS) {
        api_req *w = s->waiting;
        api_link_forget(s, w);
        api_error(w, SH_E_AGENT_UNAVAILABLE, "the agent did not answer within 10 s");
        s_resume(w);
    }
}

static void s_refused(api *s, const char *client, const char *route, sh_err code, const char *why,
                      unsigned count)
{
    json_object *req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string("refused"));
    json_object_object_add(req, "client", json_object_new_string(client));
    json_object_object_add(req, "route", json_object_new_string(route));
    json_object_object_add(req, "why", json_object_new_string(why));
    json_object_object_add(req, "code", json_object_new_int(code));
    json_object_object_add(req, "count", json_object_new_int64(count));
    if (!api_tell(s, req))
        sh_log(SH_LOG_ERROR, NULL, NULL,
               "a refusal (E%03d) could not be audited: the agent is "
               "not there",
               code);
}

void api_audit_refusal(api *s, const char *client, const char *route, sh_err code, const char *why)
{
    int64_t second = sh_clock_ms() / 1000;
    if (second != s->refusal_second) {
        s->refusal_second = second;
        s->refusals_this_second = 0;
    }
    char w[64];
    snprintf(w, sizeof w, "%s", why); /* the agent takes 64 characters */
    char c[64];
    snprintf(c, sizeof c, "%s", client);
    if (s->refusals_this_second++ < REFUSALS_SINGLY) {
        s_refused(s, c, route, code, w, 1);
        return;
    }
    s->refusals++;
    snprintf(s->last_refusal, sizeof s->last_refusal, "%s|%s|%d|%s", c, route, code, w);
}

void api_refusals_flush(api *s, int64_t now)
{
    (void)now;
    if (!s->refusals) return;
    char c[64] = "", route[64] = "", why[64] = "";
    int code = SH_E_NO_CLIENT_CERT;
    sscanf(s->last_refusal, "%63[^|]|%63[^|]|%d|%63[^\n]", c, route, &code, why);
    s_refused(s, c, route, (sh_err)code, why, s->refusals);
    s->refusals = 0;
}
