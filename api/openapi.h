/*
 * openapi.h — the OpenAPI 3.1 document of the agency API (docs/openapi.json), built into
 * sharehub-api so that GET /v1/openapi.json serves exactly the committed document.
 */
#ifndef SHAREHUB_OPENAPI_H
#define SHAREHUB_OPENAPI_H

#include <stddef.h>

extern const unsigned char sh_openapi[];
extern const size_t sh_openapi_len;

#endif
