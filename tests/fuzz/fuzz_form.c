/*
 * fuzz_form.c — the workspace's input from the network: a posted form body (api/form.c), and
 * whatever it holds rendered into a template (api/template.c). Nothing may crash, and no value
 * may come out unescaped: the page's own markup is all the '<' there is.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "form.h"
#include "template.h"

static sh_templates *s_tpl;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/fuzz-form-XXXXXX";
    if (!mkdtemp(dir)) abort();
    char path[64];
    snprintf(path, sizeof path, "%s/page.html", dir);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs("<p title=\"{{name}}\">{{password}}</p>{{#level}}{{outcome}}{{/level}}{{^x}}{{.}}{{/x}}",
          f);
    fclose(f);
    sh_error err;
    if (sh_templates_load(dir, &s_tpl, &err)) abort();
    unlink(path);
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *form = ws_form_parse((const char *)data, size);
    if (!form) return 0;
    size_t len = 0;
    char *html = sh_template_render(s_tpl, "page", form, &len);
    if (!html) abort();
    size_t lt = 0;
    for (size_t i = 0; i < len; i++)
        lt += html[i] == '<';
    if (lt != 2) abort(); /* a value's '<' came through unescaped */
    free(html);
    json_object_put(form);
    return 0;
}
