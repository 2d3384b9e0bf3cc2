/* openai: the OpenAI-compatible endpoints (see openai.h): request decoding and validation with
 * OpenAI error objects, conversion to engine jobs (messages, content parts, sampling fields,
 * reasoning effort), chat.completion / text_completion answers, SSE chunk streams (role in the
 * first delta, a finish chunk, an optional usage chunk, `data: [DONE]`), and the model listing. */
#include "api/openai.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "api/api_common.h"
#include "api/format.h"
#include "api/tojson.h"
#include "common/buf.h"
#include "common/json_type.h"

#define STATUS_OK 200u
#define STATUS_BAD_REQUEST 400u
#define STATUS_NOT_FOUND 404u
#define STATUS_INTERNAL_ERROR 500u

#define CONTENT_TYPE_SSE "text/event-stream"
#define SYSTEM_FINGERPRINT "fp_ollama"

/* ------------------------------------------------------------------------------------ helpers */

/* n random characters of [a-zA-Z0-9] into out (n + 1 bytes). */
static void random_alnum(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char bytes[64];
    if (n > sizeof bytes)
        n = sizeof bytes;
    if (getrandom(bytes, n, 0) != (ssize_t)n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^ (unsigned long)(uintptr_t)out;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            bytes[i] = (unsigned char)(x >> 33);
        }
    }
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[bytes[i] % (sizeof alphabet - 1)];
    out[n] = '\0';
}

/* ------------------------------------------------------------------------------------ errors */

static const char *error_type(unsigned status)
{
    if (status == STATUS_BAD_REQUEST)
        return "invalid_request_error";
    if (status == STATUS_NOT_FOUND)
        return "not_found_error";
    return "api_error";
}

/* {"error":{"message","type","param","code":null}} */
static json_t *error_object(unsigned status, const char *message, const char *param)
{
    json_t *e = json_object();
    json_object_set_new(e, "message", http_json_string(message));
    json_object_set_new(e, "type", json_string(error_type(status)));
    json_object_set_new(e, "param", param ? http_json_string(param) : json_null());
    json_object_set_new(e, "code", json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return o;
}

static http_response *error_vreply(unsigned status, const char *param, const char *fmt, va_list ap)
{
    strbuf msg = {0};
    sb_vprintf(&msg, fmt, ap);
    json_t *o = error_object(status, msg.data ? msg.data : "", param);
    http_response *r = http_response_json(status, o);
    json_decref(o);
    sb_free(&msg);
    return r;
}

static http_response *oai_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static http_response *oai_error(unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_response *r = error_vreply(status, NULL, fmt, ap);
    va_end(ap);
    return r;
}

/* A 400 naming the request field at fault (OpenAI's `param`). */
static http_response *bad_param(const char *param, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static http_response *bad_param(const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_response *r = error_vreply(STATUS_BAD_REQUEST, param, fmt, ap);
    va_end(ap);
    return r;
}

static unsigned event_status(const job_event *ev)
{
    return ev->http_status >= 400 && ev->http_status <= 599 ? (unsigned)ev->http_status : STATUS_INTERNAL_ERROR;
}

/* ------------------------------------------------------------------------------------ decoding */

static http_response *decode_body(const http_request *req, json_t **out)
{
    *out = NULL;
    size_t start = 0, len = req->body_len;
    while (start < len && isspace((unsigned char)req->body[start]))
        start++;
    if (start == len)
        return oai_error(STATUS_BAD_REQUEST, "missing request body");
    json_error_t jerr;
    json_t *v = api_load_body(req->body + start, len - start, JSON_DECODE_ANY, &jerr);
    if (!v)
        return oai_error(STATUS_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
    if (!json_is_object(v)) {
        http_response *r = oai_error(STATUS_BAD_REQUEST, "the request body must be a JSON object, not %s", json_type_name(v, false));
        json_decref(v);
        return r;
    }
    *out = v;
    return NULL;
}

typedef enum { KIND_CHAT, KIND_COMPLETION } request_kind;

/* One decoded request: borrowed strings point into body. */
typedef struct {
    request_kind kind;
    json_t *body;
    const char *model;
    const model_manifest *manifest;
    bool stream, include_usage;
    int think; /* -1 default, 0 off, 1 on */
    gen_options opts;
    json_t *messages;
    char **tools_json; /* serialised tool definitions (owned) */
    size_t n_tools;
    format_spec format; /* response_format (owned until run_job takes it) */
    const char *prompt;
} oai_request;

static http_response *get_bool(json_t *b, const char *key, bool *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    if (!json_is_boolean(v))
        return bad_param(key, "invalid type for '%s': expected a boolean, got %s", key, json_type_name(v, false));
    *out = json_is_true(v);
    return NULL;
}

static http_response *get_number(json_t *b, const char *key, bool *has, double *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    if (!json_is_number(v))
        return bad_param(key, "invalid type for '%s': expected a number, got %s", key, json_type_name(v, false));
    *has = true;
    *out = json_number_value(v);
    return NULL;
}

/* An integer (a number with no fraction, as JavaScript clients may send 5.0). */
static http_response *get_integer(json_t *b, const char *key, bool *has, long long *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    double d = json_is_number(v) ? json_number_value(v) : 0.5;
    if (!json_is_number(v) || d != floor(d) || d > (double)INT_MAX || d < (double)INT_MIN)
        return bad_param(key, "invalid type for '%s': expected an integer, got %s", key, json_type_name(v, false));
    *has = true;
    *out = (long long)d;
    return NULL;
}

/* stop: a string or an array of strings (empty strings are dropped). */
static http_response *decode_stop(json_t *b, gen_options *o)
{
    json_t *v = api_field(b, "stop");
    if (!v)
        return NULL;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return NULL;
        o->stop = xcalloc(2, sizeof *o->stop);
        o->stop[o->n_stop++] = xstrdup(json_string_value(v));
        return NULL;
    }
    if (!json_is_array(v))
        return bad_param("stop", "invalid type for 'stop' field: %s", json_type_name(v, false));
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return bad_param("stop", "invalid type for 'stop' field: %s", json_type_name(e, false));
    }
    o->stop = xcalloc(json_array_size(v) + 1, sizeof *o->stop);
    json_array_foreach(v, i, e)
    {
        if (json_string_length(e) > 0)
            o->stop[o->n_stop++] = xstrdup(json_string_value(e));
    }
    return NULL;
}

/* reasoning_effort "x" or reasoning {"effort":"x"} -> think (Ollama's mapping: none = off, every
 * level = on; this runtime has no levels). */
static http_response *decode_reasoning(json_t *b, int *think)
{
    *think = -1;
    const char *param = "reasoning_effort";
    json_t *v = api_field(b, "reasoning_effort");
    if (!v) {
        json_t *r = api_field(b, "reasoning");
        if (r && json_is_object(r)) {
            v = api_field(r, "effort");
            param = "reasoning.effort";
        } else if (r && json_is_string(r)) {
            v = r;
            param = "reasoning";
        } else if (r) {
            return bad_param("reasoning", "invalid type for 'reasoning': expected an object, got %s", json_type_name(r, false));
        }
    }
    if (!v)
        return NULL;
    if (!json_is_string(v))
        return bad_param(param, "invalid type for '%s': expected a string, got %s", param, json_type_name(v, false));
    const char *s = json_string_value(v);
    static const char *const on[] = {"minimal", "low", "medium", "high", "max", "xhigh", "ultra"};
    if (!strcmp(s, "none")) {
        *think = 0;
        return NULL;
    }
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        if (!strcmp(s, on[i])) {
            *think = 1;
            return NULL;
        }
    }
    return bad_param(param,
                     "invalid reasoning value: '%s' (must be \"none\", \"minimal\", \"low\", \"medium\", \"high\", "
                     "\"max\", \"xhigh\" or \"ultra\")",
                     s);
}

/* Fields both endpoints share: model, stream, stream_options, max_tokens, temperature, top_p,
 * stop, n, seed and the penalties (accepted, no effect on the NPU runtime). */
static http_response *decode_common(oai_request *r)
{
    json_t *b = r->body;
    json_t *model = api_field(b, "model");
    if (!model)
        return bad_param("model", "model is required");
    if (!json_is_string(model))
        return bad_param("model", "invalid type for 'model': expected a string, got %s", json_type_name(model, false));
    r->model = json_string_value(model);
    if (!r->model[0])
        return bad_param("model", "model is required");

    http_response *e;
    if ((e = get_bool(b, "stream", &r->stream)))
        return e;
    json_t *so = api_field(b, "stream_options");
    if (so && !json_is_object(so))
        return bad_param("stream_options", "invalid type for 'stream_options': expected an object, got %s", json_type_name(so, false));
    if (so && (e = get_bool(so, "include_usage", &r->include_usage)))
        return e;

    bool has = false, has_mct = false;
    long long max_tokens = 0, mct = 0;
    if ((e = get_integer(b, "max_tokens", &has, &max_tokens)))
        return e;
    if ((e = get_integer(b, "max_completion_tokens", &has_mct, &mct)))
        return e;
    if (has_mct) { /* the newer name wins */
        has = true;
        max_tokens = mct;
    }
    if (has && max_tokens < 1)
        return bad_param(has_mct ? "max_completion_tokens" : "max_tokens", "%s must be at least 1, got %lld",
                         has_mct ? "max_completion_tokens" : "max_tokens", max_tokens);
    if (has) {
        r->opts.has_num_predict = true;
        r->opts.num_predict = (int)max_tokens;
    }

    /* Only what the request sets (Ollama forces 1.0 for both when absent, which would override
     * the manifest's tuned defaults). top_p 1 (or 0, as Ollama reads it) means no nucleus cut:
     * the runtime refuses top-p outside (0, 1), so it is then left to the model's defaults. */
    double t = 1.0, p = 1.0;
    bool has_t = false, has_p = false;
    if ((e = get_number(b, "temperature", &has_t, &t)))
        return e;
    if ((e = get_number(b, "top_p", &has_p, &p)))
        return e;
    if (t < 0 || t > 2)
        return bad_param("temperature", "temperature must be between 0 and 2, got %g", t);
    if (p < 0 || p > 1)
        return bad_param("top_p", "top_p must be between 0 and 1, got %g", p);
    r->opts.has_temperature = has_t;
    r->opts.temperature = t;
    r->opts.has_top_p = has_p && p > 0 && p < 1;
    r->opts.top_p = p;

    if ((e = decode_stop(b, &r->opts)))
        return e;

    long long n = 1, seed = 0;
    bool has_n = false, has_seed = false, ignored = false;
    double penalty = 0;
    if ((e = get_integer(b, "n", &has_n, &n)))
        return e;
    if (n != 1)
        return bad_param("n", "n must be 1: axllama returns one choice per request");
    if ((e = get_integer(b, "seed", &has_seed, &seed)) || (e = get_number(b, "frequency_penalty", &ignored, &penalty)) ||
        (e = get_number(b, "presence_penalty", &ignored, &penalty)))
        return e;
    return NULL; /* seed and the penalties: accepted, no effect (docs/openai.md) */
}

/* The model must exist (404 otherwise) and take the request's think value. */
static http_response *check_model(const openai_api *api, oai_request *r)
{
    char display[600];
    if (!model_name_normalize(r->model, display, sizeof display))
        return oai_error(STATUS_NOT_FOUND, "model '%s' not found", r->model);
    r->manifest = model_registry_find(api->models, r->model);
    if (!r->manifest)
        return oai_error(STATUS_NOT_FOUND, "model '%s' not found", r->model);
    if (r->think == 1 && !r->manifest->thinking)
        return bad_param("reasoning_effort", "\"%s\" does not support thinking", r->model);
    return NULL;
}

/* response_format -> a format spec (format module: an instruction in the system prompt, then
 * the reply is validated). */
static http_response *decode_response_format(json_t *b, format_spec *out)
{
    char err[512] = "";
    if (!format_from_openai(api_field(b, "response_format"), out, err, sizeof err))
        return bad_param("response_format", "%s", err);
    return NULL;
}

/* tools: [{"type":"function","function":{"name",...}}], each serialised as the template's
 * `tool | tojson` prints it. tool_choice "none" drops them; other values are accepted and not
 * enforced (as in Ollama). */
static http_response *decode_tools(const openai_api *api, json_t *b, oai_request *r)
{
    json_t *tools = api_field(b, "tools"), *choice = api_field(b, "tool_choice");
    if (!tools)
        return NULL;
    if (!json_is_array(tools))
        return bad_param("tools", "invalid type for 'tools': expected an array, got %s", json_type_name(tools, false));
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", i);
        json_t *type = json_is_object(t) ? api_field(t, "type") : NULL;
        json_t *fn = json_is_object(t) ? api_field(t, "function") : NULL;
        if (!json_is_object(t) || (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function"))))
            return bad_param(param, "invalid tool in '%s': only {\"type\":\"function\",\"function\":{...}} tools are "
                                    "supported", param);
        if (!json_is_object(fn) || !json_is_string(api_field(fn, "name")) || !json_string_length(api_field(fn, "name")))
            return bad_param(param, "invalid tool in '%s': function.name is required", param);
    }
    if (choice && json_is_string(choice) && !strcmp(json_string_value(choice), "none"))
        return NULL;
    if (choice && !(json_is_string(choice) && !strcmp(json_string_value(choice), "auto")))
        api_logf(api->log, api->log_user, "openai: tool_choice other than \"auto\" / \"none\" is not enforced (the model chooses)");
    r->n_tools = json_array_size(tools);
    r->tools_json = xcalloc(r->n_tools + 1, sizeof *r->tools_json);
    json_array_foreach(tools, i, t)
        r->tools_json[i] = tojson_dumps(t);
    return NULL;
}

/* ------------------------------------------------------------------------------------ messages */

/* The request's messages for the engine. Strings stay owned by the JSON body, except joined
 * content parts (texts) and tool-call argument texts (args). */
typedef struct {
    chat_message *msgs;
    size_t n;
    chat_tool_call *calls;
    size_t n_calls;
    char **owned;
    size_t n_owned;
} message_list;

static void message_list_free(message_list *l)
{
    for (size_t i = 0; i < l->n_owned; i++)
        free(l->owned[i]);
    free(l->owned);
    free(l->calls);
    free(l->msgs);
    memset(l, 0, sizeof *l);
}

static const char *keep(message_list *l, char *s)
{
    l->owned[l->n_owned++] = s;
    return s;
}

static const char *canonical_role(const char *role)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    if (!strcasecmp(role, "developer")) /* OpenAI's newer name for system instructions */
        return "system";
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcasecmp(role, roles[i]))
            return roles[i];
    return NULL;
}

/* content: a string, null, or an array of parts; text parts are joined with "\n". */
static http_response *message_content(const oai_request *r, message_list *l, json_t *m, size_t i, const char **out)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    json_t *c = api_field(m, "content");
    *out = "";
    if (!c)
        return NULL;
    if (json_is_string(c)) {
        *out = json_string_value(c);
        return NULL;
    }
    if (!json_is_array(c))
        return bad_param(param, "invalid type for '%s': expected a string or an array of content parts, got %s", param,
                         json_type_name(c, false));
    strbuf text = {0};
    sb_puts(&text, "");
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part)
    {
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, k);
        json_t *type = json_is_object(part) ? api_field(part, "type") : NULL;
        const char *t = json_is_string(type) ? json_string_value(type) : NULL;
        if (!t) {
            sb_free(&text);
            return bad_param(param, "invalid content part in '%s': expected an object with a string 'type'", param);
        }
        if (!strcmp(t, "text") || !strcmp(t, "refusal")) {
            json_t *s = api_field(part, t);
            if (!json_is_string(s)) {
                sb_free(&text);
                return bad_param(param, "invalid content part in '%s': '%s' must be a string", param, t);
            }
            if (k > 0)
                sb_putc(&text, '\n');
            sb_puts(&text, json_string_value(s));
        } else if (!strcmp(t, "image_url") || !strcmp(t, "input_image") || !strcmp(t, "image")) {
            sb_free(&text);
            return bad_param(param, "image input is not supported: model '%s' does not support vision (%s)", r->model, param);
        } else {
            sb_free(&text);
            return bad_param(param, "unsupported content part type '%s' in '%s': only \"text\" parts are supported", t,
                             param);
        }
    }
    *out = keep(l, sb_steal(&text));
    return NULL;
}

/* An assistant message's tool_calls (function.arguments a JSON string, or an object). */
static http_response *message_tool_calls(message_list *l, chat_message *cm, json_t *m, size_t i)
{
    json_t *calls = api_field(m, "tool_calls");
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
    if (!calls)
        return NULL;
    if (!json_is_array(calls))
        return bad_param(param, "invalid type for '%s': expected an array, got %s", param, json_type_name(calls, false));
    if (json_array_size(calls) == 0)
        return NULL;
    cm->tool_calls = &l->calls[l->n_calls];
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call)
    {
        snprintf(param, sizeof param, "messages[%zu].tool_calls[%zu]", i, k);
        json_t *fn = json_is_object(call) ? api_field(call, "function") : NULL;
        json_t *name = fn ? api_field(fn, "name") : NULL;
        if (!json_is_object(fn) || !json_is_string(name))
            return bad_param(param, "invalid tool call in '%s': expected {\"type\":\"function\",\"function\":{\"name\","
                                    "\"arguments\"}}", param);
        json_t *args = api_field(fn, "arguments"), *parsed = NULL;
        if (json_is_string(args)) {
            const char *text = json_string_value(args);
            parsed = *text ? json_loads(text, JSON_DECODE_ANY, NULL) : json_object();
            if (!parsed)
                return bad_param(param, "invalid tool call arguments in '%s': not valid JSON", param);
        } else if (args) {
            parsed = json_incref(args);
        } else {
            parsed = json_object();
        }
        char *text = tojson_dumps(parsed); /* as the template's `tojson` prints it */
        json_decref(parsed);
        l->calls[l->n_calls].name = json_string_value(name);
        l->calls[l->n_calls].arguments_json = keep(l, text);
        l->n_calls++;
        cm->n_tool_calls++;
    }
    return NULL;
}

static http_response *build_messages(const oai_request *r, message_list *l)
{
    memset(l, 0, sizeof *l);
    json_t *messages = r->messages;
    size_t n = json_array_size(messages), total_calls = 0;
    for (size_t i = 0; i < n; i++)
        total_calls += json_array_size(api_field(json_array_get(messages, i), "tool_calls"));
    l->msgs = xcalloc(n ? n : 1, sizeof *l->msgs);
    l->calls = xcalloc(total_calls ? total_calls : 1, sizeof *l->calls);
    l->owned = xcalloc(n + total_calls + 1, sizeof *l->owned);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(messages, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return bad_param(param, "invalid type for '%s': expected an object, got %s", param, json_type_name(m, false));
        json_t *role = api_field(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role))
            return bad_param(param, "'%s' is required (system, developer, user, assistant or tool)", param);
        const char *canonical = canonical_role(json_string_value(role));
        if (!canonical)
            return bad_param(param, "invalid role '%s' in '%s': must be one of system, developer, user, assistant, tool",
                             json_string_value(role), param);
        chat_message *cm = &l->msgs[l->n++];
        cm->role = canonical;
        http_response *e = message_content(r, l, m, i, &cm->content);
        if (e)
            return e;
        if (!strcmp(canonical, "assistant")) {
            json_t *reasoning = api_field(m, "reasoning");
            if (!reasoning)
                reasoning = api_field(m, "reasoning_content");
            if (reasoning && !json_is_string(reasoning)) {
                snprintf(param, sizeof param, "messages[%zu].reasoning", i);
                return bad_param(param, "invalid type for '%s': expected a string, got %s", param, json_type_name(reasoning, false));
            }
            cm->reasoning_content = reasoning ? json_string_value(reasoning) : NULL;
            if ((e = message_tool_calls(l, cm, m, i)))
                return e;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ answers */

typedef struct {
    request_kind kind;
    char *model; /* echoed as the request sent it */
    char id[48];
    long long created;
    bool include_usage;
    format_spec format; /* response_format (owned); FORMAT_NONE for completions */
} answer_format;

static void format_init(answer_format *f, const oai_request *r)
{
    f->kind = r->kind;
    f->model = xstrdup(r->model);
    char rnd[25];
    random_alnum(rnd, 24);
    snprintf(f->id, sizeof f->id, "%s-%s", r->kind == KIND_CHAT ? "chatcmpl" : "cmpl", rnd);
    f->created = (long long)time(NULL);
    f->include_usage = r->include_usage;
    f->format = r->format; /* taken over */
}

static void format_done(answer_format *f)
{
    free(f->model);
    f->model = NULL;
    format_spec_free(&f->format);
}

static json_t *usage_object(const job_metrics *m)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(m->prompt_eval_count));
    json_object_set_new(u, "completion_tokens", json_integer(m->eval_count));
    json_object_set_new(u, "total_tokens", json_integer((json_int_t)m->prompt_eval_count + m->eval_count));
    return u;
}

static const char *finish_reason(const job_event *done, bool had_tool_calls)
{
    const char *r = done->done_reason ? done->done_reason : "stop";
    if (!strcmp(r, "length"))
        return "length";
    return had_tool_calls ? "tool_calls" : "stop";
}

/* {"id":"call_<random>","index":i,"type":"function","function":{"name","arguments":"<JSON text>"}} */
static json_t *tool_call_object(const job_event *ev, size_t index)
{
    char rnd[25], id[32];
    random_alnum(rnd, 24);
    snprintf(id, sizeof id, "call_%s", rnd);
    json_t *fn = json_object();
    json_object_set_new(fn, "name", http_json_string(ev->tool_name));
    json_object_set_new(fn, "arguments", http_json_string(ev->tool_arguments && *ev->tool_arguments ? ev->tool_arguments : "{}"));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "index", json_integer((json_int_t)index));
    json_object_set_new(o, "type", json_string("function"));
    json_object_set_new(o, "function", fn);
    return o;
}

/* response_format on the complete content: true with the JSON text (no fences, no surrounding
 * whitespace) in *clean, or false with the reason in err. Content next to tool calls is free. */
static bool conform(const answer_format *f, const char *content, bool had_calls, strbuf *clean, char *err, size_t errlen)
{
    sb_clear(clean);
    if (f->format.kind == FORMAT_NONE || had_calls) {
        sb_puts(clean, content);
        return true;
    }
    size_t off = 0, len = 0;
    if (!format_validate(&f->format, content, &off, &len, err, errlen))
        return false;
    sb_append(clean, content + off, len);
    if (!clean->data)
        sb_puts(clean, "");
    return true;
}

/* The envelope every answer and chunk shares. */
static json_t *envelope(const answer_format *f, const char *object)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(f->id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer(f->created));
    json_object_set_new(o, "model", http_json_string(f->model));
    json_object_set_new(o, "system_fingerprint", json_string(SYSTEM_FINGERPRINT));
    return o;
}

/* A whole (non-streamed) answer; tool_calls (taken over) may be NULL or empty. */
static json_t *full_answer(const answer_format *f, const char *content, const char *reasoning, json_t *tool_calls,
                           const job_event *done)
{
    bool calls = json_array_size(tool_calls) > 0;
    json_t *o = envelope(f, f->kind == KIND_CHAT ? "chat.completion" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (f->kind == KIND_CHAT) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        /* as OpenAI: content null when the answer is only tool calls */
        json_object_set_new(msg, "content", calls && !*content ? json_null() : http_json_string(content));
        if (reasoning && *reasoning)
            json_object_set_new(msg, "reasoning", http_json_string(reasoning));
        if (calls)
            json_object_set(msg, "tool_calls", tool_calls);
        json_object_set_new(choice, "message", msg);
    } else {
        json_object_set_new(choice, "text", http_json_string(content));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", json_string(finish_reason(done, calls)));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_object(&done->metrics));
    json_decref(tool_calls);
    return o;
}

/* One streamed chunk: a chat delta (taken over) or a completion text; finish NULL = null. */
static json_t *chunk(const answer_format *f, json_t *delta, const char *text, const char *finish)
{
    json_t *o = envelope(f, f->kind == KIND_CHAT ? "chat.completion.chunk" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (f->kind == KIND_CHAT) {
        json_object_set_new(choice, "delta", delta ? delta : json_object());
    } else {
        json_object_set_new(choice, "text", http_json_string(text));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    if (f->include_usage) /* as OpenAI: usage null on every chunk but the last */
        json_object_set_new(o, "usage", json_null());
    return o;
}

/* "data: <json>\n\n" (the value is released). */
static void sse_event(strbuf *out, json_t *o)
{
    size_t len;
    char *text = http_json_encode(o, &len);
    json_decref(o);
    sb_puts(out, "data: ");
    if (text)
        sb_append(out, text, len);
    else /* cannot happen with the objects built here */
        sb_puts(out, "{\"error\":{\"message\":\"cannot serialise a chunk\",\"type\":\"api_error\",\"param\":null,\"code\":null}}");
    sb_puts(out, "\n\n");
    free(text);
}

/* ------------------------------------------------------------------------------------ streaming */

typedef struct {
    job *job;
    answer_format format;
    job_event first;
    bool has_first;
    bool role_sent;
    size_t n_calls;
    strbuf held; /* response_format: the content, sent once it was validated */
} sse_stream;

static json_t *delta_new(sse_stream *s)
{
    json_t *d = json_object();
    if (!s->role_sent) {
        json_object_set_new(d, "role", json_string("assistant"));
        s->role_sent = true;
    }
    return d;
}

static void send_content(sse_stream *s, strbuf *out, const char *text)
{
    if (s->format.kind == KIND_CHAT) {
        json_t *d = delta_new(s);
        json_object_set_new(d, "content", http_json_string(text));
        sse_event(out, chunk(&s->format, d, NULL, NULL));
    } else {
        sse_event(out, chunk(&s->format, NULL, text, NULL));
    }
}

/* The end of the answer: held content, the finish chunk, the usage chunk, [DONE]; or, when the
 * held content does not conform to response_format, one error event instead. */
static void send_end(sse_stream *s, strbuf *out, const job_event *done)
{
    const answer_format *f = &s->format;
    if (f->format.kind != FORMAT_NONE) {
        strbuf clean = {0};
        char err[512] = "";
        bool ok = conform(f, s->held.data ? s->held.data : "", s->n_calls > 0, &clean, err, sizeof err);
        if (!ok) {
            sse_event(out, error_object(STATUS_INTERNAL_ERROR, err, "response_format"));
            sb_free(&clean);
            return;
        }
        if (clean.len)
            send_content(s, out, clean.data);
        sb_free(&clean);
    }
    if (f->kind == KIND_CHAT && !s->role_sent) /* an empty reply still names its role */
        send_content(s, out, "");
    sse_event(out, chunk(f, NULL, "", finish_reason(done, s->n_calls > 0)));
    if (f->include_usage) {
        json_t *o = envelope(f, f->kind == KIND_CHAT ? "chat.completion.chunk" : "text_completion");
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_object(&done->metrics));
        sse_event(out, o);
    }
    sb_puts(out, "data: [DONE]\n\n");
}

/* One event -> SSE events; false after the last one. */
static bool sse_pull(void *state, strbuf *out, double timeout_s)
{
    sse_stream *s = state;
    const answer_format *f = &s->format;
    job_event ev;
    if (s->has_first) {
        ev = s->first;
        s->has_first = false;
    } else if (!job_next(s->job, &ev, timeout_s)) {
        return true;
    }
    bool more = true;
    switch (ev.kind) {
    case JOB_EV_CONTENT:
        if (f->format.kind != FORMAT_NONE)
            sb_puts(&s->held, ev.text ? ev.text : "");
        else
            send_content(s, out, ev.text);
        break;
    case JOB_EV_THINKING:
        if (f->kind == KIND_CHAT) {
            json_t *d = delta_new(s);
            json_object_set_new(d, "reasoning", http_json_string(ev.text));
            sse_event(out, chunk(f, d, NULL, NULL));
        } /* a completion carries no reasoning (as Ollama's) */
        break;
    case JOB_EV_TOOL_CALL:
        if (f->kind == KIND_CHAT) { /* each call whole, in one delta */
            json_t *d = delta_new(s);
            json_t *calls = json_array();
            json_array_append_new(calls, tool_call_object(&ev, s->n_calls++));
            json_object_set_new(d, "tool_calls", calls);
            sse_event(out, chunk(f, d, NULL, NULL));
        }
        break;
    case JOB_EV_DONE:
        send_end(s, out, &ev);
        more = false;
        break;
    case JOB_EV_ERROR:
        /* the status line is gone: one error event, then the stream ends (no [DONE]) */
        sse_event(out, error_object(event_status(&ev), ev.text ? ev.text : "an error was encountered while running the model",
                                    NULL));
        more = false;
        break;
    }
    job_event_free(&ev);
    return more;
}

static void sse_cancel(void *state)
{
    sse_stream *s = state;
    job_cancel(s->job);
}

static void sse_free(void *state)
{
    sse_stream *s = state;
    if (s->has_first)
        job_event_free(&s->first);
    job_release(s->job);
    format_done(&s->format);
    sb_free(&s->held);
    free(s);
}

static const http_stream_ops sse_ops = {sse_pull, sse_cancel, sse_free};

/* ------------------------------------------------------------------------------------ running */

/* Collects a whole answer (first event given) into one response. */
static http_response *collect(const http_request *req, job *j, answer_format *fmt, job_event ev)
{
    http_response *resp = NULL;
    strbuf content = {0}, reasoning = {0};
    sb_puts(&content, "");
    json_t *calls = json_array();
    for (;;) {
        if (ev.kind == JOB_EV_CONTENT) {
            sb_puts(&content, ev.text ? ev.text : "");
        } else if (ev.kind == JOB_EV_THINKING) {
            sb_puts(&reasoning, ev.text ? ev.text : "");
        } else if (ev.kind == JOB_EV_TOOL_CALL) {
            json_array_append_new(calls, tool_call_object(&ev, json_array_size(calls)));
        } else if (ev.kind == JOB_EV_DONE) {
            strbuf clean = {0};
            char err[512] = "";
            if (conform(fmt, content.data, json_array_size(calls) > 0, &clean, err, sizeof err)) {
                json_t *o = full_answer(fmt, clean.data, fmt->kind == KIND_CHAT ? reasoning.data : NULL,
                                        json_incref(calls), &ev);
                resp = http_response_json(STATUS_OK, o);
                json_decref(o);
            } else {
                json_t *o = error_object(STATUS_INTERNAL_ERROR, err, "response_format");
                resp = http_response_json(STATUS_INTERNAL_ERROR, o);
                json_decref(o);
            }
            sb_free(&clean);
        } else {
            resp = oai_error(event_status(&ev), "%s", ev.text ? ev.text : "unknown error");
        }
        bool last = ev.kind == JOB_EV_DONE || ev.kind == JOB_EV_ERROR;
        job_event_free(&ev);
        if (last || !api_wait_event(req, j, &ev))
            break;
    }
    json_decref(calls);
    sb_free(&content);
    sb_free(&reasoning);
    return resp;
}

/* Submits the job and answers: an error before the first piece is a status with an error object;
 * then an SSE stream, or one object collecting every piece. NULL when the client left. Takes over
 * r->format. */
static http_response *run_job(openai_api *api, const http_request *req, oai_request *r, const job_request *jr)
{
    job *j = NULL;
    char err[512] = "";
    int status = engine_submit(api->engine, jr, &j, err, sizeof err);
    if (status != 200 || !j)
        return oai_error(status >= 400 && status <= 599 ? (unsigned)status : STATUS_INTERNAL_ERROR, "%s",
                         err[0] ? err : "cannot queue the request");
    answer_format fmt = {0};
    format_init(&fmt, r);
    memset(&r->format, 0, sizeof r->format);
    job_event ev;
    if (!api_wait_event(req, j, &ev)) {
        job_release(j);
        format_done(&fmt);
        return NULL;
    }
    http_response *resp = NULL;
    if (ev.kind == JOB_EV_ERROR) {
        resp = oai_error(event_status(&ev), "%s", ev.text ? ev.text : "unknown error");
        job_event_free(&ev);
    } else if (r->stream) {
        sse_stream *s = xcalloc(1, sizeof *s);
        s->job = j;
        s->format = fmt;
        s->first = ev;
        s->has_first = true;
        resp = http_response_stream(CONTENT_TYPE_SSE, &sse_ops, s);
        http_response_add_header(resp, "Cache-Control", "no-cache");
        return resp;
    } else {
        resp = collect(req, j, &fmt, ev);
    }
    job_release(j);
    format_done(&fmt);
    return resp;
}

/* ------------------------------------------------------------------------------------ endpoints */

static void request_free(oai_request *r)
{
    for (size_t i = 0; i < r->n_tools; i++)
        free(r->tools_json[i]);
    free(r->tools_json);
    format_spec_free(&r->format);
    api_gen_options_free(&r->opts);
    json_decref(r->body);
}

/* POST /v1/chat/completions */
static http_response *handle_chat(const http_request *req, void *user)
{
    openai_api *api = user;
    oai_request r = {.kind = KIND_CHAT};
    http_response *resp = decode_body(req, &r.body);
    if (resp)
        return resp;
    json_t *b = r.body;
    bool logprobs = false, has = false;
    long long top_logprobs = 0;
    if (!(resp = decode_common(&r)) && !(resp = decode_reasoning(b, &r.think)) &&
        !(resp = get_bool(b, "logprobs", &logprobs)) && !(resp = get_integer(b, "top_logprobs", &has, &top_logprobs)) &&
        !(resp = decode_response_format(b, &r.format)) && !(resp = decode_tools(api, b, &r))) {
        r.messages = api_field(b, "messages");
        if (!r.messages)
            resp = bad_param("messages", "messages is required");
        else if (!json_is_array(r.messages))
            resp = bad_param("messages", "invalid type for 'messages': expected an array, got %s", json_type_name(r.messages, false));
        else if (json_array_size(r.messages) == 0)
            resp = bad_param("messages", "[] is too short - 'messages'");
        else if (logprobs || top_logprobs > 0)
            resp = bad_param("logprobs", "logprobs are not supported");
    }
    if (!resp)
        resp = check_model(api, &r);
    message_list list = {0};
    if (!resp)
        resp = build_messages(&r, &list);
    if (!resp) {
        char *instruction = format_instruction(&r.format);
        job_request jr = {
            .kind = JOB_CHAT,
            .model = r.model,
            .messages = list.msgs,
            .n_messages = list.n,
            .think = r.think,
            .options = r.opts,
            .tools_json = (const char *const *)r.tools_json,
            .n_tools = r.n_tools,
            .system_suffix = instruction,
        };
        resp = run_job(api, req, &r, &jr);
        free(instruction);
    }
    message_list_free(&list);
    request_free(&r);
    return resp;
}

/* POST /v1/completions: the prompt as one user message (not raw), as Ollama's layer does. An
 * empty prompt loads the model and answers an empty text. */
static http_response *handle_completion(const http_request *req, void *user)
{
    openai_api *api = user;
    oai_request r = {.kind = KIND_COMPLETION};
    http_response *resp = decode_body(req, &r.body);
    if (resp)
        return resp;
    json_t *b = r.body;
    if (!(resp = decode_common(&r)) && !(resp = decode_reasoning(b, &r.think))) {
        json_t *prompt = api_field(b, "prompt");
        if (prompt && json_is_array(prompt) && json_array_size(prompt) == 1 && json_is_string(json_array_get(prompt, 0)))
            prompt = json_array_get(prompt, 0);
        if (!prompt)
            resp = bad_param("prompt", "prompt is required");
        else if (json_is_array(prompt))
            resp = bad_param("prompt", "prompt must be a string (arrays of several prompts or of token ids are not "
                                       "supported)");
        else if (!json_is_string(prompt))
            resp = bad_param("prompt", "invalid type for 'prompt': expected a string, got %s", json_type_name(prompt, false));
        else
            r.prompt = json_string_value(prompt);
        json_t *suffix = api_field(b, "suffix"), *echo = api_field(b, "echo"), *best_of = api_field(b, "best_of"),
               *logprobs = api_field(b, "logprobs");
        if (resp) {
        } else if (suffix && (!json_is_string(suffix) || json_string_length(suffix) > 0)) {
            resp = bad_param("suffix", "suffix is not supported: the models have no fill-in-the-middle template");
        } else if (echo && !json_is_false(echo)) {
            resp = bad_param("echo", "echo is not supported");
        } else if (best_of && !(json_is_integer(best_of) && json_integer_value(best_of) == 1)) {
            resp = bad_param("best_of", "best_of must be 1: axllama returns one choice per request");
        } else if (logprobs && !(json_is_integer(logprobs) && json_integer_value(logprobs) == 0) && !json_is_false(logprobs)) {
            resp = bad_param("logprobs", "logprobs are not supported");
        }
    }
    if (!resp)
        resp = check_model(api, &r);
    if (!resp) {
        chat_message msg = {.role = "user", .content = r.prompt};
        job_request jr = {
            .kind = r.prompt[0] ? JOB_CHAT : JOB_LOAD,
            .model = r.model,
            .messages = &msg,
            .n_messages = 1,
            .think = r.think,
            .options = r.opts,
        };
        resp = run_job(api, req, &r, &jr);
    }
    request_free(&r);
    return resp;
}

/* ------------------------------------------------------------------------------------ models */

/* The namespace of a display name ("ns/model:tag" -> "ns"), "library" without one. */
static json_t *owner_of(const char *name)
{
    const char *last = strrchr(name, '/');
    if (!last)
        return json_string("library");
    const char *start = last;
    while (start > name && start[-1] != '/')
        start--;
    return json_stringn(start, (size_t)(last - start));
}

static json_t *model_object(const char *id, const model_manifest *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", http_json_string(id));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer((json_int_t)m->modified));
    json_object_set_new(o, "owned_by", owner_of(m->name));
    return o;
}

/* GET /v1/models: the registry, newest first (as /api/tags). */
static http_response *handle_models(const http_request *req, void *user)
{
    (void)req;
    openai_api *api = user;
    size_t n = api->models ? api->models->n : 0;
    const model_manifest **sorted = xcalloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &api->models->models[i];
    qsort(sorted, n, sizeof *sorted, api_by_modified_desc);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, model_object(sorted[i]->name, sorted[i]));
    free(sorted);
    json_t *root = json_object();
    json_object_set_new(root, "object", json_string("list"));
    json_object_set_new(root, "data", data);
    http_response *resp = http_response_json(STATUS_OK, root);
    json_decref(root);
    return resp;
}

/* GET /v1/models/{model}: id is the path parameter exactly as given. */
static http_response *handle_model(const http_request *req, void *user)
{
    openai_api *api = user;
    const char *name = req->path + strlen("/v1/models/");
    const model_manifest *m = model_registry_find(api->models, name);
    if (!m)
        return oai_error(STATUS_NOT_FOUND, "model '%s' not found", name);
    json_t *o = model_object(name, m);
    http_response *resp = http_response_json(STATUS_OK, o);
    json_decref(o);
    return resp;
}

/* ------------------------------------------------------------------------------------ routes */

size_t openai_api_routes(openai_api *api, http_route *routes, size_t max)
{
    const http_route all[] = {
        {"POST", "/v1/chat/completions", handle_chat, api, true},
        {"POST", "/v1/completions", handle_completion, api, true},
        {"GET", "/v1/models", handle_models, api, false},
        {"GET", "/v1/models/*", handle_model, api, false},
    };
    size_t n = sizeof all / sizeof all[0];
    if (n > max)
        n = max;
    memcpy(routes, all, n * sizeof all[0]);
    return n;
}
