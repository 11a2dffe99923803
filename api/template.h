/*
 * template.h — the workspace's HTML templates: a small subset of Mustache over json-c values,
 * read from files (api/workspace/templates) once at start.
 *
 *   {{name}} {{a.b}} {{.}}   the value, HTML-escaped (& < > " ' all are): there is no raw form
 *   {{#name}}…{{/name}}      an array: once per element; an object: once, inside it; any other
 *                            value: once when truthy (not false, null, 0, "" or [])
 *   {{^name}}…{{/name}}      once when name is falsy
 *   {{> other}}              the template other.html, in the same context
 *   {{> $name}}              the template whose name is the value of name (nothing if none)
 *   {{! comment }}
 * A name not found in the innermost context is looked up in the enclosing ones.
 *
 * Owns: the templates' text. Never: writes a value unescaped; recurses without a bound.
 */
#ifndef SHAREHUB_TEMPLATE_H
#define SHAREHUB_TEMPLATE_H

#include <json-c/json.h>
#include <stddef.h>

#include "error.h"

typedef struct sh_templates sh_templates;

/* Every *.html in dir, each checked (sections closed, partials known). */
sh_err sh_templates_load(const char *dir, sh_templates **out, sh_error *err);
void sh_templates_free(sh_templates **t);
/* The template name rendered in ctx: a malloc'd string (*len bytes), or NULL (out of memory,
 * no such template). */
char *sh_template_render(const sh_templates *t, const char *name, json_object *ctx, size_t *len);

#endif
