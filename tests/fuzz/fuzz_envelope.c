/*
 * fuzz_envelope.c — libFuzzer target: the envelope decoder, as the broker runs it on every
 * PUBLISH (full rules) and the agent on every DELIVER (minimised rules). A decoded envelope
 * must encode again and decode to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_error err;
    sh_envelope *e = NULL;
    if (sh_envelope_decode(data, size, &e, &err) == SH_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (sh_envelope_encode(e, &buf, &len, &err) != SH_OK) abort(); /* valid must encode */
        sh_envelope *again = NULL;
        if (sh_envelope_decode(buf, len, &again, &err) != SH_OK) abort();
        sh_envelope_free(again);
        free(buf);
    }
    sh_envelope_free(e);
    e = NULL;
    if (sh_envelope_decode_minimised(data, size, &e, &err) == SH_OK) sh_envelope_free(e);
    return 0;
}
