/* health: GET /health and GET /metrics (see health.h): what the engine says now, as a readiness
 * answer or as Prometheus text. */
#include "api/health.h"

#include <stdio.h>

#include "api/api_common.h"
#include "common/buf.h"

#define HEALTH_STATUS_OK 200u
#define HEALTH_STATUS_UNAVAILABLE 503u
#define HEALTH_MAX_LOADED 4

static http_response *health_reply(unsigned status, const char *state, const char *model, const char *progress,
                                   const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(state));
    if (model && *model)
        json_object_set_new(o, "model", http_json_string(model));
    if (progress)
        json_object_set_new(o, "progress", json_string(progress));
    if (error && *error)
        json_object_set_new(o, "error", http_json_string(error));
    http_response *resp = http_response_json(status, o);
    json_decref(o);
    return resp;
}

static http_response *health_handle_health(const http_request *req, void *user)
{
    (void)req;
    const health_api *api = user;
    engine_loaded_model lm;
    size_t n = engine_ps(api->engine, &lm, 1);
    engine_stats st;
    engine_get_stats(api->engine, &st);
    if (!n && st.loading[0])
        return health_reply(HEALTH_STATUS_UNAVAILABLE, "loading", st.loading, NULL, NULL);
    if (!n && st.last_load_failed)
        return health_reply(HEALTH_STATUS_UNAVAILABLE, "failed", st.last_load_model, NULL, st.last_load_error);
    if (!n)
        return health_reply(HEALTH_STATUS_OK, "idle", NULL, NULL, NULL);
    char progress[32];
    switch (lm.state) {
    case RT_READY: return health_reply(HEALTH_STATUS_OK, "ready", lm.name, NULL, NULL);
    case RT_LOADING:
        if (lm.load_total > 0)
            snprintf(progress, sizeof progress, "%d/%d", lm.load_step, lm.load_total);
        return health_reply(HEALTH_STATUS_UNAVAILABLE, "loading", lm.name, lm.load_total > 0 ? progress : NULL, NULL);
    case RT_RESTARTING: return health_reply(HEALTH_STATUS_UNAVAILABLE, "restarting", lm.name, NULL, NULL);
    case RT_FAILED: return health_reply(HEALTH_STATUS_UNAVAILABLE, "failed", lm.name, NULL, NULL);
    case RT_STOPPED: break;
    }
    return health_reply(HEALTH_STATUS_OK, "idle", lm.name, NULL, NULL); /* started again by the next request */
}

static http_response *health_handle_metrics(const http_request *req, void *user)
{
    (void)req;
    const health_api *api = user;
    engine_loaded_model loaded[HEALTH_MAX_LOADED];
    size_t n = engine_ps(api->engine, loaded, HEALTH_MAX_LOADED);
    engine_stats st;
    engine_get_stats(api->engine, &st);
    strbuf out = {0};
    api_metrics_render(api->metrics, &st, loaded, n, &out);
    size_t len = out.len;
    return http_response_take(HEALTH_STATUS_OK, METRICS_CONTENT_TYPE, sb_steal(&out), len);
}

size_t health_api_routes(health_api *api, http_route *routes, size_t max)
{
    const http_route all[] = {
        {"GET", "/health", health_handle_health, api, false},
        {"HEAD", "/health", health_handle_health, api, false},
        {"GET", "/metrics", health_handle_metrics, api, false},
    };
    return api_copy_routes(all, sizeof all / sizeof all[0], routes, max);
}
