/* driver: axllama's client of the vendor runtime's HTTP API (spec/runtime-protocol.md §1, §7):
 * POST /api/reset, POST /api/generate (sampling keys with the runtime's spelling), GET
 * /api/generate_provider, GET /api/stop. Every call has a timeout; "400 llm is running" is reported
 * as DRV_BUSY so the caller can retry. Thread-safe (one curl handle per call). */
#ifndef AXLLAMA_ENGINE_DRIVER_H
#define AXLLAMA_ENGINE_DRIVER_H

#include <stdbool.h>

#include "common/buf.h"

typedef enum {
    DRV_OK,
    DRV_BUSY,     /* 400 {"error": "llm is running"} */
    DRV_REJECTED, /* another 4xx/5xx answer */
    DRV_DOWN,     /* no answer (refused, timed out) */
} drv_status;

/* The runtime's sampling keys for one request (has_* false = key not sent). */
typedef struct {
    bool has_temperature, has_repetition_penalty, has_top_p, has_top_k;
    double temperature, repetition_penalty, top_p;
    int top_k;
} drv_sampling;

typedef struct {
    int port;
    double timeout_s; /* per call */
} rt_driver;

drv_status driver_reset(const rt_driver *d, const char *system_prompt);
drv_status driver_generate(const rt_driver *d, const char *prompt, const drv_sampling *s);
/* generate_provider: appends the drained text to text, sets *done. */
drv_status driver_poll(const rt_driver *d, strbuf *text, bool *done);
drv_status driver_stop(const rt_driver *d);

#endif
