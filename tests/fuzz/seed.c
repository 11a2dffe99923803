/*
 * seed.c — writes the envelope and JSON seed corpora (tests/fuzz/corpus/): one valid synthetic
 * event of every type, in protobuf and in JSON. Run by hand when the schema changes:
 *   build/fuzz/tests/fuzz/fuzz_seed tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json.h"
#include "synth.h"

static int s_put(const char *dir, const char *kind, int type, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/type-%02d", dir, kind, type);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) return -1;
    return fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: fuzz_seed CORPUS-DIR (with envelope/ and json/ in it)\n", stderr);
        return 2;
    }
    uint64_t rng = 2026;
    for (int t = 1; t <= 13; t++) {
        sh_synth_child c;
        sh_synth_child_make(&rng, "881", &c);
        uint8_t *buf = NULL;
        size_t len = 0;
        sh_error err;
        sh_envelope *e = NULL;
        if (sh_synth_event(&rng, t, &c, "RAJ", NULL, NULL, 0, &buf, &len, &err) ||
            sh_envelope_decode_minimised(buf, len, &e, &err)) {
            fprintf(stderr, "type %d: %s\n", t, err.detail);
            return 1;
        }
        char *json = sh_json_from_message(&e->base, 0);
        int bad = !json || s_put(argv[1], "envelope", t, buf, len) ||
                  s_put(argv[1], "json", t, json, strlen(json));
        free(json);
        free(buf);
        sh_envelope_free(e);
        if (bad) {
            perror("fuzz_seed");
            return 1;
        }
    }
    return 0;
}
