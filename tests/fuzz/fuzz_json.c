/*
 * fuzz_json.c — libFuzzer target: the JSON mapper that turns a host system's event (the
 * agent's local publish) into an envelope, then the envelope back into JSON.
 */
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ProtobufCMessage *m = NULL;
    sh_error err;
    if (sh_json_to_message((const char *)data, size, &sharehub__v1__envelope__descriptor, &m,
                           &err) == SH_OK) {
        char *text = sh_json_from_message(m, 0);
        free(text);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (sh_envelope_encode((sh_envelope *)m, &buf, &len, &err) == SH_OK) free(buf);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}
