/* emu_http: the vendor runtime's /api endpoints with cpp-httplib's and nlohmann's observable
 * behaviour. See emu_http.h. */
#include "emu/emu_http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_type.h"
#include "emu/emu_log.h"

#define MAX_BODY ((size_t)64 << 20)

struct emu_http {
    struct MHD_Daemon *daemon;
    emu_runtime *rt;
    int port;
};

typedef struct {
    strbuf body;
    bool too_large;
} request_ctx;

/* ---- answers ---- */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body, const char *exception)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    if (body)
        MHD_add_response_header(r, "Content-Type", "application/json");
    if (exception)
        MHD_add_response_header(r, "EXCEPTION_WHAT", exception);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_options(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

#define BAD_FORMAT "{\"error\": \"Invalid request format\"}"
#define LLM_RUNNING "{\"error\": \"llm is running\"}"
#define STATUS_OK "{\"status\": \"ok\"}"

/* ---- nlohmann's conversions ---- */

static void type_error(char *what, size_t n, const char *want, const json_t *got)
{
    snprintf(what, n, "[json.exception.type_error.302] type must be %s, but is %s", want, json_type_name(got, false));
}

/* json.get<float/int>(): numbers and booleans convert. */
static bool get_number(const json_t *v, double *out)
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
static json_t *member(json_t *body, const char *key)
{
    return json_is_object(body) ? json_object_get(body, key) : NULL;
}

/* set_llm_config: each key in turn; a wrongly typed one throws after the earlier ones applied. */
static bool apply_sampling(emu_runtime *rt, json_t *body, char *what, size_t n)
{
    static const char *keys[] = {"temperature", "repetition_penalty", "top-p", "top-k"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = member(body, keys[i]);
        if (!v)
            continue;
        double d;
        if (!get_number(v, &d)) {
            type_error(what, n, "number", v);
            return false;
        }
        emu_runtime_set_sampling(rt, keys[i], d);
    }
    return true;
}

/* ---- endpoints ---- */

static json_t *parse_body(const strbuf *body)
{
    if (!body->len)
        return NULL;
    /* nlohmann takes integers of any size (beyond 64 bits as floating point); jansson rejects
     * those unless every integer is read as a real, which loses nothing the handlers use */
    return json_loadb(body->data, body->len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
}

static enum MHD_Result handle_reset(emu_runtime *rt, struct MHD_Connection *conn, json_t *body)
{
    if (!body) {
        EMU_LOGE("handle_reset", 372, "Invalid request format, body is discarded");
        return answer(conn, 400, BAD_FORMAT, NULL);
    }
    const char *system_prompt = "";
    json_t *sp = member(body, "system_prompt");
    if (sp && !json_is_string(sp)) {
        char what[160];
        type_error(what, sizeof what, "string", sp);
        return answer(conn, 500, NULL, what);
    }
    if (sp)
        system_prompt = json_string_value(sp);
    if (emu_runtime_busy(rt))
        return answer(conn, 400, LLM_RUNNING, NULL);
    emu_runtime_queue_reset(rt, system_prompt);
    return answer(conn, 200, STATUS_OK, NULL);
}

static enum MHD_Result handle_generate(emu_runtime *rt, struct MHD_Connection *conn, json_t *body)
{
    json_t *prompt = member(body, "prompt");
    if (!prompt)
        return answer(conn, 400, BAD_FORMAT, NULL);
    if (emu_runtime_busy(rt)) {
        EMU_LOGE("handle_generate", 349, "model not available");
        return answer(conn, 400, LLM_RUNNING, NULL);
    }
    char what[160];
    if (!apply_sampling(rt, body, what, sizeof what))
        return answer(conn, 500, NULL, what);
    if (!json_is_string(prompt)) {
        type_error(what, sizeof what, "string", prompt);
        return answer(conn, 500, NULL, what);
    }
    EMU_LOGI("handle_generate", 356, "%s", json_string_value(prompt));
    emu_runtime_queue_generate(rt, json_string_value(prompt));
    return answer(conn, 200, STATUS_OK, NULL);
}

static char *dump_sorted(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    return s;
}

static enum MHD_Result handle_provider(emu_runtime *rt, struct MHD_Connection *conn)
{
    bool done;
    char *text = emu_runtime_drain(rt, &done);
    char *body = dump_sorted(json_pack("{s:b,s:s}", "done", done, "response", text));
    enum MHD_Result ret = answer(conn, 200, body, NULL);
    free(body);
    free(text);
    return ret;
}

static enum MHD_Result handle_chat(emu_runtime *rt, struct MHD_Connection *conn, json_t *body)
{
    json_t *messages = member(body, "messages");
    if (!messages) {
        EMU_LOGE("handle_chat", 395, "Invalid request format");
        return answer(conn, 400, BAD_FORMAT, NULL);
    }
    if (emu_runtime_busy(rt))
        return answer(conn, 400, LLM_RUNNING, NULL);
    char what[160];
    if (!apply_sampling(rt, body, what, sizeof what))
        return answer(conn, 500, NULL, what);
    if (!json_is_array(messages)) {
        type_error(what, sizeof what, "array", messages);
        return answer(conn, 500, NULL, what);
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *content = member(m, "content");
        if (!member(m, "role") || !content)
            continue; /* the first element with both is the one that runs; its role is ignored */
        if (!json_is_string(content)) {
            type_error(what, sizeof what, "string", content);
            return answer(conn, 500, NULL, what);
        }
        char *reply = emu_runtime_chat(rt, json_string_value(content));
        char *out = dump_sorted(json_pack("{s:b,s:s}", "done", 1, "message", reply));
        enum MHD_Result ret = answer(conn, 200, out, NULL);
        free(out);
        free(reply);
        return ret;
    }
    return answer(conn, 400, "{\"error\": \"Invalid message format\"}", NULL);
}

static bool method_in(const char *m, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m, set[i]))
            return true;
    return false;
}

/* httplib's request-line parser accepts these methods; any other is answered 400 before the
 * pre-routing hook (so without the CORS header). */
static bool known_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PRI"};
    return method_in(m, methods, sizeof methods / sizeof methods[0]);
}

/* httplib's routing dispatches these methods (to no handler: 404); CONNECT, TRACE and PRI fall
 * through to 400 after the pre-routing hook. */
static bool routed_method(const char *m)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    return method_in(m, methods, sizeof methods / sizeof methods[0]);
}

static enum MHD_Result answer_bare_400(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 400, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result route(emu_http *h, struct MHD_Connection *conn, const char *url, const char *method,
                             request_ctx *ctx)
{
    emu_runtime *rt = h->rt;
    emu_runtime_block_if_hung(rt);
    if (!known_method(method))
        return answer_bare_400(conn);
    if (!strcmp(method, "OPTIONS"))
        return answer_options(conn);
    if (!routed_method(method))
        return answer(conn, 400, NULL, NULL);
    if (ctx->too_large)
        return answer(conn, 413, NULL, NULL);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    if (get && !strcmp(url, "/api/stop")) {
        emu_runtime_stop_generation(rt);
        return answer(conn, 200, STATUS_OK, NULL);
    }
    if (get && !strcmp(url, "/api/generate_provider"))
        return handle_provider(rt, conn);
    if (post && (!strcmp(url, "/api/reset") || !strcmp(url, "/api/generate") || !strcmp(url, "/api/chat"))) {
        json_t *body = parse_body(&ctx->body);
        enum MHD_Result ret = !strcmp(url, "/api/reset")      ? handle_reset(rt, conn, body)
                              : !strcmp(url, "/api/generate") ? handle_generate(rt, conn, body)
                                                              : handle_chat(rt, conn, body);
        json_decref(body);
        return ret;
    }
    return answer(conn, 404, NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    request_ctx *ctx = *con_cls;
    if (!ctx) {
        *con_cls = xcalloc(1, sizeof *ctx);
        return MHD_YES;
    }
    if (*upload_size) {
        if (ctx->body.len + *upload_size > MAX_BODY)
            ctx->too_large = true;
        else
            sb_append(&ctx->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return route(cls, conn, url, method, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_ctx *ctx = *con_cls;
    if (ctx) {
        sb_free(&ctx->body);
        free(ctx);
    }
    *con_cls = NULL;
}

emu_http *emu_http_start(emu_runtime *rt, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    emu_http *h = xcalloc(1, sizeof *h);
    h->rt = rt;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                 NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d", host, port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

int emu_http_port(const emu_http *h)
{
    return h->port;
}

void emu_http_stop(emu_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
