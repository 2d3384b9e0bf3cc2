/* health: the server's own endpoints for monitors, next to the Ollama and OpenAI APIs (same server,
 * same Host and CORS rules):
 *   GET|HEAD /health   200 when a request can be served now or by loading on demand ("ready",
 *                      "idle"), 503 while it cannot ("loading" with the progress, "restarting",
 *                      "failed" with the error); a JSON object {"status", "model", "progress",
 *                      "error"}. A readiness probe: a failed load keeps it at 503 until a load
 *                      succeeds, so use GET / (always 200) for liveness.
 *   GET      /metrics  the Prometheus text of api/metrics.h.
 * docs/api.md describes both, with a scrape configuration. */
#ifndef AXLLAMA_API_HEALTH_H
#define AXLLAMA_API_HEALTH_H

#include <stddef.h>

#include "api/metrics.h"
#include "engine/engine.h"
#include "net/http_server.h"

typedef struct {
    engine *engine;       /* borrowed */
    api_metrics *metrics; /* borrowed */
} health_api;

/* Upper bound of health_api_routes()'s count. */
#define HEALTH_API_MAX_ROUTES 4

/* Writes the routes (bound to api, which must outlive the server) into routes; returns their
 * number (at most max). */
size_t health_api_routes(health_api *api, http_route *routes, size_t max);

#endif
