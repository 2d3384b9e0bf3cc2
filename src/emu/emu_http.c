/* emu_http: the vendor runtime's /api endpoints with cpp-httplib's and nlohmann's observable
 * behaviour, on net/http_server (thread per connection, no CORS rules or Host guard of the API:
 * the emulator adds httplib's own CORS header; every unrouted request goes to the fallback, which
 * answers as httplib does). See emu_http.h. */
#include "emu/emu_http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_type.h"
#include "emu/emu_log.h"
#include "net/http_server.h"

#define EMU_MAX_BODY ((size_t)64 << 20)
#define EMU_IDLE_TIMEOUT_S 5u
#define EMU_MAX_CONNECTIONS 256u

#define BAD_FORMAT "{\"error\": \"Invalid request format\"}"
#define LLM_RUNNING "{\"error\": \"llm is running\"}"
#define STATUS_OK "{\"status\": \"ok\"}"

struct emu_http {
    http_server *srv;
    emu_runtime *rt;
};

/* ---- answers ---- */

/* status with body (NULL: empty, and no Content-Type), the CORS header every httplib answer of the
 * vendor has, and the EXCEPTION_WHAT header of an uncaught exception when given. */
static http_response *emu_answer(unsigned status, const char *body, const char *exception)
{
    http_response *r = http_response_bytes(status, NULL, body ? body : "", body ? strlen(body) : 0);
    http_response_add_header(r, "Access-Control-Allow-Origin", "*");
    if (body)
        http_response_add_header(r, "Content-Type", "application/json");
    if (exception)
        http_response_add_header(r, "EXCEPTION_WHAT", exception);
    return r;
}

static http_response *emu_answer_options(void)
{
    http_response *r = http_response_empty(200);
    http_response_add_header(r, "Access-Control-Allow-Origin", "*");
    http_response_add_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    http_response_add_header(r, "Access-Control-Allow-Headers", "Content-Type");
    return r;
}

/* ---- nlohmann's conversions ---- */

static void emu_type_error(char *what, size_t n, const char *want, const json_t *got)
{
    snprintf(what, n, "[json.exception.type_error.302] type must be %s, but is %s", want, json_type_name(got, false));
}

/* json.get<float/int>(): numbers and booleans convert. */
static bool emu_json_get_number(const json_t *v, double *out)
{
    if (json_is_number(v))
        *out = json_number_value(v);
    else if (json_is_boolean(v))
        *out = json_is_true(v) ? 1.0 : 0.0;
    else
        return false;
    return true;
}

/* body.contains(key): false for anything but an object. */
static json_t *emu_json_member(json_t *body, const char *key)
{
    return json_is_object(body) ? json_object_get(body, key) : NULL;
}

/* set_llm_config: each key in turn; a wrongly typed one throws after the earlier ones applied. */
static bool apply_sampling(emu_runtime *rt, json_t *body, char *what, size_t n)
{
    static const char *keys[] = {"temperature", "repetition_penalty", "top-p", "top-k"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = emu_json_member(body, keys[i]);
        if (!v)
            continue;
        double d;
        if (!emu_json_get_number(v, &d)) {
            emu_type_error(what, n, "number", v);
            return false;
        }
        emu_runtime_set_sampling(rt, keys[i], d);
    }
    return true;
}

/* ---- endpoints ---- */

static json_t *emu_parse_body(const http_request *req)
{
    if (!req->body_len)
        return NULL;
    /* nlohmann takes integers of any size (beyond 64 bits as floating point); jansson rejects
     * those unless every integer is read as a real, which loses nothing the handlers use */
    return json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
}

/* What every request meets first, routed or not: a hung runtime answers nothing (the thread blocks
 * for good); an oversized body is 413 (after the method checks of the fallback). NULL: go on. */
static http_response *emu_gate(emu_runtime *rt, const http_request *req)
{
    emu_runtime_block_if_hung(rt);
    return req->body_too_large ? emu_answer(413, NULL, NULL) : NULL;
}

static http_response *emu_reset(emu_runtime *rt, json_t *body)
{
    if (!body) {
        EMU_LOGE("handle_reset", 372, "Invalid request format, body is discarded");
        return emu_answer(400, BAD_FORMAT, NULL);
    }
    const char *system_prompt = "";
    json_t *sp = emu_json_member(body, "system_prompt");
    if (sp && !json_is_string(sp)) {
        char what[160];
        emu_type_error(what, sizeof what, "string", sp);
        return emu_answer(500, NULL, what);
    }
    if (sp)
        system_prompt = json_string_value(sp);
    if (emu_runtime_busy(rt))
        return emu_answer(400, LLM_RUNNING, NULL);
    emu_runtime_queue_reset(rt, system_prompt);
    return emu_answer(200, STATUS_OK, NULL);
}

static http_response *emu_generate(emu_runtime *rt, json_t *body)
{
    json_t *prompt = emu_json_member(body, "prompt");
    if (!prompt)
        return emu_answer(400, BAD_FORMAT, NULL);
    if (emu_runtime_busy(rt)) {
        EMU_LOGE("handle_generate", 349, "model not available");
        return emu_answer(400, LLM_RUNNING, NULL);
    }
    char what[160];
    if (!apply_sampling(rt, body, what, sizeof what))
        return emu_answer(500, NULL, what);
    if (!json_is_string(prompt)) {
        emu_type_error(what, sizeof what, "string", prompt);
        return emu_answer(500, NULL, what);
    }
    EMU_LOGI("handle_generate", 356, "%s", json_string_value(prompt));
    emu_runtime_queue_generate(rt, json_string_value(prompt));
    return emu_answer(200, STATUS_OK, NULL);
}

/* nlohmann's dump() of an object built in code: compact, keys sorted. Takes obj. */
static char *emu_dump_sorted(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    return s;
}

static http_response *emu_chat(emu_runtime *rt, json_t *body)
{
    json_t *messages = emu_json_member(body, "messages");
    if (!messages) {
        EMU_LOGE("handle_chat", 395, "Invalid request format");
        return emu_answer(400, BAD_FORMAT, NULL);
    }
    if (emu_runtime_busy(rt))
        return emu_answer(400, LLM_RUNNING, NULL);
    char what[160];
    if (!apply_sampling(rt, body, what, sizeof what))
        return emu_answer(500, NULL, what);
    if (!json_is_array(messages)) {
        emu_type_error(what, sizeof what, "array", messages);
        return emu_answer(500, NULL, what);
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        json_t *content = emu_json_member(m, "content");
        if (!emu_json_member(m, "role") || !content)
            continue; /* the first element with both is the one that runs; its role is ignored */
        if (!json_is_string(content)) {
            emu_type_error(what, sizeof what, "string", content);
            return emu_answer(500, NULL, what);
        }
        char *reply = emu_runtime_chat(rt, json_string_value(content));
        char *out = emu_dump_sorted(json_pack("{s:b,s:s}", "done", 1, "message", reply));
        http_response *r = emu_answer(200, out, NULL);
        free(out);
        free(reply);
        return r;
    }
    return emu_answer(400, "{\"error\": \"Invalid message format\"}", NULL);
}

/* POST /api/reset, /api/generate, /api/chat: the body parsed as nlohmann would. */
static http_response *emu_on_post(const http_request *req, void *user)
{
    emu_runtime *rt = user;
    emu_runtime_count_call(rt, !strcmp(req->path, "/api/reset")      ? EMU_CALL_RESET
                               : !strcmp(req->path, "/api/generate") ? EMU_CALL_GENERATE
                                                                     : EMU_CALL_CHAT);
    http_response *gated = emu_gate(rt, req);
    if (gated)
        return gated;
    json_t *body = emu_parse_body(req);
    http_response *r = !strcmp(req->path, "/api/reset")      ? emu_reset(rt, body)
                       : !strcmp(req->path, "/api/generate") ? emu_generate(rt, body)
                                                             : emu_chat(rt, body);
    json_decref(body);
    return r;
}

/* GET (or HEAD) /api/generate_provider: everything queued, and whether the runtime is idle. */
static http_response *emu_on_provider(const http_request *req, void *user)
{
    emu_runtime *rt = user;
    emu_runtime_count_call(rt, EMU_CALL_PROVIDER);
    http_response *gated = emu_gate(rt, req);
    if (gated)
        return gated;
    bool done;
    char *text = emu_runtime_drain(rt, &done);
    char *body = emu_dump_sorted(json_pack("{s:b,s:s}", "done", done, "response", text));
    http_response *r = emu_answer(200, body, NULL);
    free(body);
    free(text);
    return r;
}

/* GET (or HEAD) /api/stop: a body is ignored. */
static http_response *emu_on_stop(const http_request *req, void *user)
{
    emu_runtime *rt = user;
    emu_runtime_count_call(rt, EMU_CALL_STOP);
    http_response *gated = emu_gate(rt, req);
    if (gated)
        return gated;
    emu_runtime_stop_generation(rt);
    return emu_answer(200, STATUS_OK, NULL);
}

/* ---- httplib's answers to everything else ---- */

static bool method_in(const char *m, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m, set[i]))
            return true;
    return false;
}

/* httplib's request-line parser accepts these methods; any other is answered 400 before the
 * pre-routing hook (so without the CORS header). */
static bool httplib_parses_method(const char *m)
{
    static const char *const methods[] = {"GET",     "HEAD",  "POST",    "PUT",   "DELETE",
                                          "OPTIONS", "PATCH", "CONNECT", "TRACE", "PRI"};
    return method_in(m, methods, sizeof methods / sizeof methods[0]);
}

/* httplib's routing dispatches these methods (to no handler: 404); CONNECT, TRACE and PRI fall
 * through to 400 after the pre-routing hook. */
static bool httplib_routes_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    return method_in(m, methods, sizeof methods / sizeof methods[0]);
}

static http_response *emu_on_unrouted(const http_request *req, void *user)
{
    emu_runtime *rt = user;
    emu_runtime_block_if_hung(rt);
    if (!httplib_parses_method(req->method))
        return http_response_empty(400);
    if (!strcmp(req->method, "OPTIONS"))
        return emu_answer_options();
    if (!httplib_routes_method(req->method))
        return emu_answer(400, NULL, NULL);
    if (req->body_too_large)
        return emu_answer(413, NULL, NULL);
    return emu_answer(404, NULL, NULL);
}

/* ---- the server ---- */

emu_http *emu_http_start(emu_runtime *rt, const char *host, int port, char *err, size_t errlen)
{
    /* GET routes take HEAD too, as httplib's Get() does */
    const http_route routes[] = {
        {.method = "POST", .path = "/api/reset", .handler = emu_on_post, .user = rt},
        {.method = "POST", .path = "/api/generate", .handler = emu_on_post, .user = rt},
        {.method = "POST", .path = "/api/chat", .handler = emu_on_post, .user = rt},
        {.method = "GET", .path = "/api/generate_provider", .handler = emu_on_provider, .user = rt},
        {.method = "HEAD", .path = "/api/generate_provider", .handler = emu_on_provider, .user = rt},
        {.method = "GET", .path = "/api/stop", .handler = emu_on_stop, .user = rt},
        {.method = "HEAD", .path = "/api/stop", .handler = emu_on_stop, .user = rt},
    };
    http_server_config cfg = {
        .host = host,
        .port = port,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
        .max_body_bytes = EMU_MAX_BODY,
        .idle_timeout_s = EMU_IDLE_TIMEOUT_S,
        .max_connections = EMU_MAX_CONNECTIONS,
        .fallback = emu_on_unrouted,
        .fallback_user = rt,
        .handler_takes_oversize = true,
        .disable_cors = true,
        .disable_host_guard = true,
        .threading = HTTP_THREAD_PER_CONNECTION,
    };
    char why[256];
    http_server *srv = http_server_start(&cfg, why, sizeof why);
    if (!srv) {
        /* the emulator's own wording (docs/emulator.md); a name that does not resolve says so */
        if (!strncmp(why, "cannot resolve", 14))
            snprintf(err, errlen, "%s", why);
        else
            snprintf(err, errlen, "cannot listen on %s:%d", host, port);
        return NULL;
    }
    emu_http *h = xcalloc(1, sizeof *h);
    h->srv = srv;
    h->rt = rt;
    return h;
}

int emu_http_port(const emu_http *h)
{
    return http_server_port(h->srv);
}

void emu_http_stop(emu_http *h)
{
    if (!h)
        return;
    http_server_stop(h->srv);
    free(h);
}
