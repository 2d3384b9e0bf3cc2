/* metrics: what GET /metrics reports (api/health.c serves it), kept with atomics and one small lock:
 *   - requests by method, route and status (the HTTP server's on_response hook);
 *   - per generation (api_pipeline.c, from the job's events): time to the first piece of the answer,
 *     prompt tokens the NPU evaluated and the ones the KV cache supplied, generated tokens, the time
 *     per generated token;
 *   - what the engine counts (queue, runtime state, loads, restarts), read when scraped and handed
 *     to api_metrics_render as values: this module calls no engine function (so the API's tests can
 *     link it with their fake engine).
 * The text is Prometheus' exposition format 0.0.4 (# HELP, # TYPE, counters ending in _total,
 * histograms with cumulative _bucket{le=...}, _sum and _count). docs/api.md lists every series. */
#ifndef AXLLAMA_API_METRICS_H
#define AXLLAMA_API_METRICS_H

#include <stddef.h>

#include "common/buf.h"
#include "engine/engine.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct api_metrics api_metrics;

api_metrics *api_metrics_new(void);
void api_metrics_free(api_metrics *m);

/* A request answered (the signature of http_server_config.on_response; user is the api_metrics):
 * route NULL counts as "other"; a method outside the usual ones as "other". Distinct series are
 * capped (METRICS_MAX_REQUEST_SERIES); past that, requests of new ones are counted together as
 * method, route and status "other". */
#define METRICS_MAX_REQUEST_SERIES 256
void api_metrics_note_request(void *m, const char *method, const char *route, unsigned status);

/* A generation's first piece (thinking, content or a tool call) came seconds after the request
 * was taken (queueing and a load included: what the client waits for). m may be NULL. */
void api_metrics_note_first_piece(api_metrics *m, double seconds);
/* A generation ended with DONE and these counts (a load's DONE, done_reason "load", is not one).
 * m may be NULL. */
void api_metrics_note_done(api_metrics *m, const job_event *done);

/* Appends every series: this module's, then the engine's (stats, and the loaded models of
 * engine_ps, n of them). */
void api_metrics_render(api_metrics *m, const engine_stats *stats, const engine_loaded_model *loaded, size_t n,
                        strbuf *out);

#endif
