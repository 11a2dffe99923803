/*
 * form.h — parsing the workspace's posted forms.
 *
 * Owns: nothing. Never: takes a field whose name starts with '_' (the server's own notes on a
 * request, pages.c).
 */
#ifndef SHAREHUB_FORM_H
#define SHAREHUB_FORM_H

#include <json-c/json.h>
#include <stddef.h>

/* application/x-www-form-urlencoded body[0..len) into an object of strings: '+' is a space,
 * %XX its byte; line breaks and tabs become spaces (every field is one line of text to the
 * agent); the last of a repeated name wins. NULL when malformed (a bad escape, a NUL). */
json_object *ws_form_parse(const char *body, size_t len);

#endif
