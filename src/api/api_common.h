/* api_common: the small pieces the Ollama API (ollama*.c) and the OpenAI API (openai*.c) share:
 * waiting for a job's next event while watching the client, reading a request body (leading
 * whitespace skipped, invalid UTF-8 repaired as Go's decoder does), JSON member lookup with null
 * meaning absent, freeing decoded options, and the model listing both APIs answer (/api/tags,
 * /v1/models: the registry newest first), and the copy of a route table. */
#ifndef AXLLAMA_API_API_COMMON_H
#define AXLLAMA_API_API_COMMON_H

#include <stdbool.h>

#include <jansson.h>

#include "engine/engine.h"
#include "models/manifest.h"
#include "net/http_server.h"

/* The next event of j, in waits of HTTP_STREAM_POLL_S; false (and j cancelled) when the client
 * left or the server stops. */
bool api_wait_event(const http_request *req, job *j, job_event *ev);

/* What reading a request body found. */
typedef enum {
    API_BODY_OK,        /* a JSON value (returned) */
    API_BODY_BLANK,     /* nothing but whitespace: "missing request body" in both APIs */
    API_BODY_TRUNCATED, /* the text ended inside the value (Go's "unexpected EOF") */
    API_BODY_INVALID,   /* not JSON: see err */
} api_body_status;

/* The request body as one JSON value (json_loadb flags), parsed after its leading whitespace and
 * after replacing invalid UTF-8 by U+FFFD as Go's decoder does (jansson refuses such bytes; Ollama
 * accepts them). NULL unless *status is API_BODY_OK. */
json_t *api_read_body(const http_request *req, size_t flags, api_body_status *status, json_error_t *err);

/* obj[key], or NULL when it is absent or JSON null (Go's decoder treats both alike). */
json_t *api_field(json_t *obj, const char *key);

/* Frees the stop sequences a request decoder put into o and leaves it without any. */
void api_gen_options_free(gen_options *o);

/* The registry's models as a JSON array, newest modified first (the order of /api/tags and
 * /v1/models), each entry made by entry(m). models may be NULL (an empty array). */
json_t *api_model_list(const model_registry *models, json_t *(*entry)(const model_manifest *m));

/* Copies table (n routes) into routes, at most max of them; returns how many were copied. */
size_t api_copy_routes(const http_route *table, size_t n, http_route *routes, size_t max);

#endif
