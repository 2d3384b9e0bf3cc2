/* openai: the OpenAI-compatible API (docs/spec/ollama-api.md §2.17, Ollama's /v1 compatibility layer)
 * on top of the engine:
 *   POST /v1/chat/completions  messages -> a JOB_CHAT; chat.completion, or SSE chat.completion.chunk
 *   POST /v1/completions       prompt -> a JOB_CHAT of [user]; text_completion, or SSE chunks
 *   GET  /v1/models            the registry as {"object":"list","data":[model...]}
 *   GET  /v1/models/{model}    one model, or 404
 *   POST /v1/responses         input items -> a JOB_CHAT; a response object, or its SSE event stream
 *                              (stateless: previous_response_id is refused)
 *   POST /v1/embeddings        the capability error: no model here can embed
 * Errors are OpenAI error objects {"error":{"message","type","param","code"}} with Ollama's
 * statuses (400 invalid_request_error, 404 not_found_error, others api_error); an error after an
 * SSE stream started is one `data: {"error":{...}}` event, then the stream ends (no [DONE]).
 * `stream` defaults to false here. Reasoning goes in message.reasoning / delta.reasoning.
 * docs/openai.md lists the fields supported, ignored and refused. */
#ifndef AXLLAMA_API_OPENAI_H
#define AXLLAMA_API_OPENAI_H

#include <stddef.h>

#include "api/metrics.h"
#include "engine/engine.h"
#include "models/manifest.h"
#include "net/http_server.h"

typedef struct {
    engine *engine;                            /* borrowed */
    const model_registry *models;              /* borrowed */
    api_metrics *metrics;                      /* borrowed; NULL: no metrics */
    void (*log)(void *user, const char *line); /* optional: ignored fields */
    void *log_user;
} openai_api;

/* Upper bound of openai_api_routes()'s count. */
#define OPENAI_API_MAX_ROUTES 16

/* Writes the API's routes (handlers bound to api, which must outlive the server) into routes and
 * returns their number (at most max). */
size_t openai_api_routes(openai_api *api, http_route *routes, size_t max);

#endif
