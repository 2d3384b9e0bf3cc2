/* ollama: the native Ollama HTTP API (docs/spec/ollama-api.md §1–§3) on top of the engine:
 *   GET|HEAD /              "Ollama is running"
 *   GET|HEAD /api/version   {"version": OLLAMA_API_VERSION}
 *   GET|HEAD /api/tags      the models of the registry
 *   POST     /api/show      details, model_info, capabilities, parameters, template, system
 *   GET      /api/ps        what the engine has loaded (with an "axllama" state/progress object)
 *   POST     /api/generate  prompt -> a JOB_CHAT of [system, user] (JOB_RAW with raw:true)
 *   POST     /api/chat      messages -> a JOB_CHAT
 *   POST     /api/embed, /api/embeddings   Ollama's "does not support embeddings" error
 *   POST     /api/pull      success for an installed model (nothing is downloaded), else 404
 *   POST     /api/push, /api/create, /api/copy, DELETE /api/delete, HEAD|POST /api/blobs/{digest}
 *                           JSON errors saying what is not supported (models are vendor packages)
 * Request validation uses Ollama's error strings and statuses; answers stream as NDJSON
 * (application/x-ndjson, one compact object per line, flushed per line, done:true last) or come
 * as one JSON object with stream:false. Deliberate differences are listed in docs/api.md.
 *
 * The model's default system prompt (manifest system_prompt) is the engine's business: it is
 * prepended when the conversation does not start with a system message. So generate sends
 * [system, user] only when the request has a `system`, else [user]. */
#ifndef AXLLAMA_API_OLLAMA_H
#define AXLLAMA_API_OLLAMA_H

#include <stddef.h>

#include "api/metrics.h"
#include "engine/engine.h"
#include "models/manifest.h"
#include "net/http_server.h"

/* The Ollama version /api/version reports. Clients gate features on it: VS Code Copilot refuses
 * servers below 0.6.4, Open WebUI parses it as dot-separated integers, and thinking-by-default
 * (0.12.4) and /api/ps context_length are part of the surface we implement. So we report the
 * Ollama release whose native API we match, never axllama's own version. */
#define OLLAMA_API_VERSION "0.12.6"

typedef struct {
    engine *engine;                            /* borrowed */
    const model_registry *models;              /* borrowed */
    api_metrics *metrics;                      /* borrowed; NULL: no metrics */
    void (*log)(void *user, const char *line); /* optional: ignored options, deprecated fields */
    void *log_user;
} ollama_api;

/* Upper bound of ollama_api_routes()'s count. */
#define OLLAMA_API_MAX_ROUTES 32

/* Writes the API's routes (handlers bound to api, which must outlive the server) into routes and
 * returns their number (at most max). */
size_t ollama_api_routes(ollama_api *api, http_route *routes, size_t max);

#endif
