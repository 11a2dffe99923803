/*
 * stream.c — GET /v1/inbox/stream: server-sent events that tell a consuming system at once
 * that its inbox has moved (docs/api.md, "The inbox stream"). An event carries the inbox's
 * new position, nothing about the events themselves: the system then pages GET /v1/inbox,
 * where each read is audited with its user and purpose. While any stream is open the agent's
 * inbox position is polled (stream_poll_ms, a status request that reads no personal data).
 *
 * Owns: the list of open streams and what each has still to send. Never: puts personal data
 * in a stream; holds the loop (a stream with nothing to say is suspended).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "clock.h"

#define BEAT_MS 15000 /* a comment line this often keeps proxies from closing an idle stream */
#define FRESH   UINT64_MAX

static void s_resume(api_req *r)
{
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->c);
    }
}

/* Appends text to what r has to send. */
static void s_put(api_req *r, const char *text)
{
    size_t n = strlen(text);
    if (r->out_off == r->out_len) r->out_off = r->out_len = 0;
    char *b = realloc(r->out, r->out_len + n);
    if (!b) return; /* the next news repeats the position */
    memcpy(b + r->out_len, text, n);
    r->out = b;
    r->out_len += n;
}

void api_stream_start(api *s, api_req *r)
{
    const char *after = api_query(r, "after");
    if (!after) after = api_header(r, "Last-Event-ID"); /* a reconnecting EventSource */
    r->stream_cursor = FRESH;
    if (after) {
        size_t n = strspn(after, "0123456789");
        if (n == 0 || n > 18 || after[n]) {
            api_error(r, SH_E_BAD_FIELD,
                      "after: not a cursor this API gave (an inbox page's next)");
            return;
        }
        r->stream_cursor = strtoull(after, NULL, 10);
    }
    r->streaming = 1;
    r->stream_beat_ms = sh_clock_ms();
    s_put(r, "retry: 2000\n\n");
    r->snext = s->streams;
    s->streams = r;
    s->stream_polled_ms = 0; /* ask for the position now */
}

void api_stream_finish(api *s, api_req *r, json_object *reply)
{
    (void)s;
    (void)reply;
    api_error(r, SH_E_INTERNAL, "a stream asks the agent nothing itself");
}

void api_stream_closed(api *s, api_req *r)
{
    for (api_req **p = &s->streams; *p; p = &(*p)->snext)
        if (*p == r) {
            *p = r->snext;
            return;
        }
}

ssize_t api_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    api_req *r = cls;
    size_t n = r->out_len - r->out_off;
    if (n == 0) { /* nothing to say: wait, without holding the loop */
        r->suspended = 1;
        MHD_suspend_connection(r->c);
        return 0;
    }
    if (n > max) n = max;
    memcpy(buf, r->out + r->out_off, n);
    r->out_off += n;
    return (ssize_t)n;
}

void api_stream_status(api *s, json_object *reply)
{
    json_object *v;
    static const char *const roles[] = {"", "education", "health", "social_care"};
    if (json_object_object_get_ex(reply, "org", &v))
        snprintf(s->org, sizeof s->org, "%s", json_object_get_string(v));
    for (int i = 1; i < 4 && json_object_object_get_ex(reply, "role", &v); i++)
        if (strcmp(json_object_get_string(v), roles[i]) == 0) s->role = i;
    if (!json_object_object_get_ex(reply, "received", &v)) return;
    s->inbox_seq = (uint64_t)json_object_get_int64(v);
    for (api_req *r = s->streams; r; r = r->snext) {
        if (r->stream_cursor != FRESH && s->inbox_seq <= r->stream_cursor) continue;
        char ev[96];
        snprintf(ev, sizeof ev, "id: %llu\nevent: inbox\ndata: {\"next\":\"%llu\"}\n\n",
                 (unsigned long long)s->inbox_seq, (unsigned long long)s->inbox_seq);
        s_put(r, ev);
        r->stream_cursor = s->inbox_seq;
        s_resume(r);
    }
}

void api_streams_tick(api *s, int64_t now)
{
    if (!s->streams && s->role) return; /* (the first poll learns the agency's role) */
    for (api_req *r = s->streams; r; r = r->snext)
        if (now - r->stream_beat_ms >= BEAT_MS) {
            r->stream_beat_ms = now;
            s_put(r, ": keep-alive\n\n");
            s_resume(r);
        }
    if (s->stream_polling && now - s->stream_polled_ms > AGENT_WAIT_MS)
        s->stream_polling = 0; /* its answer is lost: ask again */
    if (s->stream_polling || now - s->stream_polled_ms < s->cfg->stream_poll_ms) return;
    s->stream_polled_ms = now;
    json_object *req = json_object_new_object();
    json_object_object_add(req, "op", json_object_new_string("status"));
    s->stream_polling = api_tell(s, req);
}
