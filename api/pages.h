/*
 * pages.h — what the workspace's page files (pages.c, records.c) share: asking the agent for
 * the signed-in user, reading its answers by shape, and words and times for people.
 *
 * Owns: nothing. Never: used by the agency API's /v1 resources (they answer JSON).
 */
#ifndef SHAREHUB_PAGES_H
#define SHAREHUB_PAGES_H

#include <json-c/json.h>

#include "api_int.h"

/* The purpose chosen on the form (one of the purpose page's), or NULL. */
const char *pg_purpose(api_req *r);
/* The purposes as radio items, chosen checked. */
json_object *pg_purpose_list(const char *chosen);
json_object *pg_stringf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A request to the agent made by the signed-in user, as the client system "workspace". */
json_object *pg_req(api_req *r, const char *op);
/* Sends q (taken) for r; a page saying the agency is not answering when it cannot. */
void pg_ask(api *s, api_req *r, json_object *q);
/* o's member key as an array or object: an empty one is put there when it is missing or of
 * another type (the pages never trust the shape of an answer blindly). */
json_object *pg_member(json_object *o, const char *key, json_type type);
#define pg_array(o, key)  pg_member(o, key, json_type_array)
#define pg_object(o, key) pg_member(o, key, json_type_object)
/* When the agent's answer is a refusal: a page saying so, and 1. */
int pg_refused(api *s, api_req *r, json_object *reply);
/* o[out_key]: o[key] (milliseconds) as a local time for people. */
void pg_add_when(json_object *o, const char *key, const char *out_key);
/* ctx.attendances: the agent's answer's unscheduled-care attendances, each with its time for
 * people ("when"); returns their count. */
size_t pg_attendances(json_object *ctx, json_object *reply);
/* "section_47_strategy" -> "Section 47 strategy" */
json_object *pg_words(const char *name);
void pg_add_words(json_object *o, const char *key, const char *out_key);
/* A message's fields as label/value rows (nested ones flattened). */
void pg_rows(json_object *o, const char *prefix, json_object *rows);

/* records.c's pages, routed in pages.c */
void p_children(api *s, api_req *r);
void p_children_answer(api *s, api_req *r, json_object *reply);
void p_child(api *s, api_req *r);
void p_clinician(api *s, api_req *r);
void p_clinician_answer(api *s, api_req *r, json_object *reply);
void p_audit(api *s, api_req *r);
void p_audit_answer(api *s, api_req *r, json_object *reply);
/* review.c's */
void p_review(api *s, api_req *r);
void p_review_answer(api *s, api_req *r, json_object *reply);
void p_review_decide(api *s, api_req *r);
void p_review_after(api *s, api_req *r, json_object *reply);

#endif
