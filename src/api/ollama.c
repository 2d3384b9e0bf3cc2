/* ollama: the native Ollama API handlers (see ollama.h): request decoding with Go-compatible error
 * messages, validation, jobs for the engine, NDJSON / single-object answers, and the model
 * listing endpoints (tags, show, ps). */
#include "api/ollama.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_common.h"
#include "api/format.h"
#include "api/tojson.h"
#include "common/buf.h"
#include "common/json_type.h"
#include "config/config.h"

#define STATUS_OK 200u
#define STATUS_BAD_REQUEST 400u
#define STATUS_NOT_FOUND 404u
#define STATUS_INTERNAL_ERROR 500u

/* /api/ps lists at most this many models (the engine holds one at a time). */
#define PS_MAX 16

/* Go's time.Duration max (math.MaxInt64 ns) in seconds: Ollama's "forever" keep_alive. */
#define FOREVER_S 9223372036LL

/* What /api/show reports as the template: an informational Go-template rendition of the ChatML
 * layout. axllama renders prompts with the model family's real chat template in C
 * (tokenizer/chat_template.c); a request's `template` override is not supported. */
static const char SHOW_TEMPLATE[] = "{{- if .System }}<|im_start|>system\n"
                                    "{{ .System }}<|im_end|>\n"
                                    "{{ end }}{{- range .Messages }}<|im_start|>{{ .Role }}\n"
                                    "{{ .Content }}<|im_end|>\n"
                                    "{{ end }}<|im_start|>assistant\n";

/* ------------------------------------------------------------------------------------ helpers */

/* "2023-08-04T19:22:45.499127Z": now, UTC, microseconds (what generation chunks carry). */
static void rfc3339_utc_now(char *out, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%06ldZ", ts.tv_nsec / 1000);
}

/* "2024-06-04T14:38:31+02:00": local time with its numeric offset (modified_at, expires_at). */
static void rfc3339_local(time_t t, char *out, size_t n)
{
    struct tm tm;
    if (!localtime_r(&t, &tm)) { /* out of the calendar's range: the epoch rather than garbage */
        time_t zero = 0;
        gmtime_r(&zero, &tm);
    }
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out + k, n - k, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
}

/* Go's %q for a string (strconv.Quote, enough of it for error messages). */
static void go_quote(strbuf *out, const char *s)
{
    sb_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': sb_puts(out, "\\\""); break;
        case '\\': sb_puts(out, "\\\\"); break;
        case '\n': sb_puts(out, "\\n"); break;
        case '\r': sb_puts(out, "\\r"); break;
        case '\t': sb_puts(out, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                sb_printf(out, "\\x%02x", *p);
            else
                sb_putc(out, (char)*p);
        }
    }
    sb_putc(out, '"');
}

/* The error response "<go-quoted s><suffix>" (e.g. "\"m\" does not support thinking"). */
static http_response *quoted_error(unsigned status, const char *s, const char *suffix)
{
    strbuf msg = {0};
    go_quote(&msg, s);
    sb_puts(&msg, suffix);
    http_response *r = http_response_error(status, "%s", msg.data);
    sb_free(&msg);
    return r;
}

/* Ollama's full model name for capability errors: registry.ollama.ai/library/qwen3:4b. */
static void full_model_name(const char *display, char *out, size_t n)
{
    int slashes = 0;
    for (const char *p = display; *p; p++)
        slashes += *p == '/';
    if (slashes == 0)
        snprintf(out, n, "registry.ollama.ai/library/%s", display);
    else if (slashes == 1)
        snprintf(out, n, "registry.ollama.ai/%s", display);
    else
        snprintf(out, n, "%s", display);
}

static http_response *capability_error(const model_manifest *m, const char *capability)
{
    char full[600];
    full_model_name(m->name, full, sizeof full);
    return http_response_error(STATUS_BAD_REQUEST, "%s does not support %s", full, capability);
}

/* The `tools` capability: the model's chat template renders tool definitions and the model was
 * trained to answer with <tool_call> blocks. Decided from the manifest's template family: Qwen3
 * (its template is the one the tool-call format and tests are built on). */
static bool model_supports_tools(const model_manifest *m)
{
    return m->template_family == CHAT_TEMPLATE_QWEN3;
}

static const char *architecture(const model_manifest *m)
{
    if (m->family && *m->family)
        return m->family;
    return m->template_family == CHAT_TEMPLATE_QWEN25 ? "qwen2" : "qwen3";
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static json_t *model_details(const model_manifest *m)
{
    json_t *d = json_object();
    json_object_set_new(d, "parent_model", json_string(""));
    json_object_set_new(d, "format", http_json_string(m->format && *m->format ? m->format : "axmodel"));
    json_object_set_new(d, "family", http_json_string(architecture(m)));
    json_t *families = json_array();
    json_array_append_new(families, http_json_string(architecture(m)));
    json_object_set_new(d, "families", families);
    json_object_set_new(d, "parameter_size", http_json_string(or_empty(m->parameter_size)));
    json_object_set_new(d, "quantization_level", http_json_string(or_empty(m->quantization_level)));
    return d;
}

static json_int_t size_value(uint64_t size)
{
    return size > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)size;
}

/* ------------------------------------------------------------------------------------ decoding */

/* Turns a request body into a JSON object the way Go's json.Decoder + ShouldBindJSON do: an empty
 * body is "missing request body", only the first JSON value is read, null is an empty request. */
static http_response *decode_body(const http_request *req, const char *go_type, json_t **out)
{
    *out = NULL;
    size_t start = 0, len = req->body_len;
    while (start < len && isspace((unsigned char)req->body[start]))
        start++;
    if (start == len)
        return http_response_error(STATUS_BAD_REQUEST, "missing request body");
    json_error_t jerr;
    json_t *v = api_load_body(req->body + start, len - start, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
    if (!v) {
        if ((size_t)jerr.position >= len - start)
            return http_response_error(STATUS_BAD_REQUEST, "unexpected EOF");
        return http_response_error(STATUS_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                                   jerr.column);
    }
    if (json_is_null(v)) {
        json_decref(v);
        v = json_object();
    }
    if (!json_is_object(v)) {
        const char *kind = json_is_array(v) ? "array" : json_is_string(v) ? "string" : json_is_boolean(v) ? "bool" : "number";
        json_decref(v);
        return http_response_error(STATUS_BAD_REQUEST, "json: cannot unmarshal %s into Go value of type api.%s", kind,
                                   go_type);
    }
    *out = v;
    return NULL;
}

/* The type name in Go's json errors ("cannot unmarshal bool into ..."). */
static const char *json_kind(const json_t *v)
{
    return json_is_boolean(v) ? "bool" : json_type_name(v, false);
}

/* Field decoding with Go's messages: "json: cannot unmarshal number into Go struct field
 * GenerateRequest.prompt of type string". A missing or null field leaves the default. */
typedef struct {
    const char *go_struct; /* "GenerateRequest", "ChatRequest.messages" ... */
    http_response *error;
} decoder;

static bool type_error(decoder *d, const char *field, const json_t *v, const char *go_type)
{
    if (!d->error)
        d->error = http_response_error(STATUS_BAD_REQUEST, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                                       json_kind(v), d->go_struct, field, go_type);
    return false;
}

static bool get_string(decoder *d, json_t *obj, const char *key, const char **out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_string(v))
        return type_error(d, key, v, "string");
    *out = json_string_value(v);
    return true;
}

static bool get_bool(decoder *d, json_t *obj, const char *key, bool *out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return type_error(d, key, v, "bool");
    *out = json_is_true(v);
    return true;
}

static bool get_int(decoder *d, json_t *obj, const char *key, long long *out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_integer(v))
        return type_error(d, key, v, "int");
    *out = json_integer_value(v);
    return true;
}

/* An array field (NULL when absent); elem_check validates each element's JSON type. */
static bool get_array(decoder *d, json_t *obj, const char *key, const char *go_type, json_t **out)
{
    json_t *v = api_field(obj, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_array(v))
        return type_error(d, key, v, go_type);
    *out = v;
    return true;
}

static bool get_string_array(decoder *d, json_t *obj, const char *key, const char *go_type, json_t **out)
{
    if (!get_array(d, obj, key, go_type, out) || !*out)
        return !d->error;
    size_t i;
    json_t *e;
    json_array_foreach(*out, i, e)
    {
        if (!json_is_string(e))
            return type_error(d, key, e, go_type + 2); /* the element type: "[]T" -> "T" */
    }
    return true;
}

/* think: true/false or "low"/"medium"/"high"/"max" (levels count as on); absent/null: -1. */
static bool decode_think(decoder *d, json_t *obj, int *think)
{
    json_t *v = api_field(obj, "think");
    *think = -1;
    if (!v)
        return true;
    if (json_is_boolean(v)) {
        *think = json_is_true(v) ? 1 : 0;
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "low") || !strcmp(s, "medium") || !strcmp(s, "high") || !strcmp(s, "max")) {
            *think = 1;
            return true;
        }
        strbuf msg = {0};
        sb_puts(&msg, "invalid think value: ");
        go_quote(&msg, s);
        sb_puts(&msg, " (must be \"high\", \"medium\", \"low\", \"max\", true, or false)");
        d->error = http_response_error(STATUS_BAD_REQUEST, "%s", msg.data);
        sb_free(&msg);
        return false;
    }
    d->error = http_response_error(STATUS_BAD_REQUEST,
                                   "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)");
    return false;
}

/* ------------------------------------------------------------------------------------ options */

typedef enum { OPT_INT, OPT_FLOAT, OPT_BOOL, OPT_STRINGS } option_type;

/* Ollama's current Options + Runner fields. Only temperature, top_k, top_p, repeat_penalty,
 * num_predict and stop act on the NPU runtime; the others are accepted and have no effect (the
 * context size is compiled into the model, sampling is the runtime's). */
static const struct {
    const char *name;
    option_type type;
} known_options[] = {
    {"num_keep", OPT_INT},        {"seed", OPT_INT},
    {"num_predict", OPT_INT},     {"top_k", OPT_INT},
    {"top_p", OPT_FLOAT},         {"min_p", OPT_FLOAT},
    {"typical_p", OPT_FLOAT},     {"repeat_last_n", OPT_INT},
    {"temperature", OPT_FLOAT},   {"repeat_penalty", OPT_FLOAT},
    {"presence_penalty", OPT_FLOAT}, {"frequency_penalty", OPT_FLOAT},
    {"stop", OPT_STRINGS},        {"num_ctx", OPT_INT},
    {"num_batch", OPT_INT},       {"num_gpu", OPT_INT},
    {"main_gpu", OPT_INT},        {"use_mmap", OPT_BOOL},
    {"num_thread", OPT_INT},
};

static int clamp_int(double v)
{
    if (v > INT_MAX)
        return INT_MAX;
    if (v < INT_MIN)
        return INT_MIN;
    return (int)v; /* truncation, like Go's int(float64) */
}

/* Ollama's Options.FromMap: unknown keys are logged and ignored (clients still send removed
 * options such as numa or mirostat), null values are skipped, numbers become ints by truncation,
 * a known key with the wrong type is an error. Ollama answers that with 500; we answer 400 (the
 * request is wrong, not the server), with Ollama's message. */
static http_response *decode_options(const ollama_api *api, json_t *opts, gen_options *out)
{
    memset(out, 0, sizeof *out);
    if (!opts)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        size_t k = 0, n = sizeof known_options / sizeof known_options[0];
        while (k < n && strcmp(known_options[k].name, key) != 0)
            k++;
        if (k == n) {
            api_logf(api->log, api->log_user, "invalid option provided: \"%s\" (ignored)", key);
            continue;
        }
        if (json_is_null(v))
            continue;
        switch (known_options[k].type) {
        case OPT_INT:
            if (!json_is_number(v))
                return http_response_error(STATUS_BAD_REQUEST, "option \"%s\" must be of type integer", key);
            break;
        case OPT_FLOAT:
            if (!json_is_number(v))
                return http_response_error(STATUS_BAD_REQUEST, "option \"%s\" must be of type float32", key);
            break;
        case OPT_BOOL:
            if (!json_is_boolean(v))
                return http_response_error(STATUS_BAD_REQUEST, "option \"%s\" must be of type boolean", key);
            break;
        case OPT_STRINGS: {
            if (!json_is_array(v))
                return http_response_error(STATUS_BAD_REQUEST, "option \"%s\" must be of type array", key);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e))
                    return http_response_error(STATUS_BAD_REQUEST, "option \"%s\" must be of an array of strings", key);
            }
            break;
        }
        }
        double num = json_is_number(v) ? json_number_value(v) : 0;
        if (!strcmp(key, "temperature")) {
            out->has_temperature = true;
            out->temperature = num;
        } else if (!strcmp(key, "top_k")) {
            out->has_top_k = true;
            out->top_k = clamp_int(num);
        } else if (!strcmp(key, "top_p")) {
            /* the runtime takes 0 < p < 1 only; 1 (no nucleus cut) or 0 would switch both top-p
             * and top-k off there (greedy): leave the manifest's sampler in place instead */
            out->has_top_p = num > 0 && num < 1;
            out->top_p = num;
        } else if (!strcmp(key, "repeat_penalty")) {
            out->has_repeat_penalty = true;
            out->repeat_penalty = num;
        } else if (!strcmp(key, "num_predict")) {
            out->has_num_predict = true;
            out->num_predict = clamp_int(num);
        } else if (!strcmp(key, "stop")) {
            api_gen_options_free(out);
            out->n_stop = json_array_size(v);
            out->stop = xcalloc(out->n_stop + 1, sizeof *out->stop);
            for (size_t i = 0; i < out->n_stop; i++)
                out->stop[i] = xstrdup(json_string_value(json_array_get(v, i)));
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ requests */

typedef struct {
    bool is_chat;
    json_t *body;
    const char *model; /* as sent */
    const model_manifest *manifest;
    bool stream;
    int think;
    bool has_keep_alive;
    double keep_alive_s;
    json_t *options, *format;
    bool logprobs, debug_render_only;
    long long top_logprobs;
    /* generate */
    const char *prompt, *system, *suffix, *template_text;
    bool raw;
    json_t *context, *images;
    /* chat */
    json_t *messages, *tools;
    format_spec fmt; /* the decoded `format` (validate_gen_request) */
} gen_request;

/* Everything Go would reject while decoding the JSON (types, think, keep_alive). */
static http_response *decode_gen_request(gen_request *r)
{
    decoder d = {.go_struct = r->is_chat ? "ChatRequest" : "GenerateRequest"};
    json_t *b = r->body;
    r->model = "";
    r->prompt = r->system = r->suffix = r->template_text = "";
    r->stream = true; /* native endpoints stream unless told otherwise */
    bool ok = get_string(&d, b, "model", &r->model) && get_bool(&d, b, "stream", &r->stream) &&
              get_bool(&d, b, "logprobs", &r->logprobs) && get_int(&d, b, "top_logprobs", &r->top_logprobs) &&
              get_bool(&d, b, "_debug_render_only", &r->debug_render_only);
    bool ignored_bool;
    ok = ok && get_bool(&d, b, "truncate", &ignored_bool) && get_bool(&d, b, "shift", &ignored_bool);
    if (ok) {
        r->options = api_field(b, "options");
        if (r->options && !json_is_object(r->options))
            ok = type_error(&d, "options", r->options, "map[string]interface {}");
    }
    r->format = api_field(b, "format");
    if (ok && !r->is_chat) {
        ok = get_string(&d, b, "prompt", &r->prompt) && get_string(&d, b, "system", &r->system) &&
             get_string(&d, b, "suffix", &r->suffix) && get_string(&d, b, "template", &r->template_text) &&
             get_bool(&d, b, "raw", &r->raw) && get_string_array(&d, b, "images", "[]api.ImageData", &r->images);
        if (ok && get_array(&d, b, "context", "[]int", &r->context) && r->context) {
            size_t i;
            json_t *e;
            json_array_foreach(r->context, i, e)
            {
                if (ok && !json_is_integer(e))
                    ok = type_error(&d, "context", e, "int");
            }
        }
        ok = ok && !d.error;
    }
    if (ok && r->is_chat)
        ok = get_array(&d, b, "messages", "[]api.Message", &r->messages) &&
             get_array(&d, b, "tools", "api.Tools", &r->tools);
    if (!ok)
        return d.error;
    if (r->is_chat && r->messages) {
        decoder md = {.go_struct = "ChatRequest.messages"};
        size_t i;
        json_t *m;
        json_array_foreach(r->messages, i, m)
        {
            if (!json_is_object(m))
                return (type_error(&md, "messages", m, "api.Message"), md.error);
            const char *s;
            json_t *arr;
            if (!get_string(&md, m, "role", &s) || !get_string(&md, m, "content", &s) ||
                !get_string(&md, m, "thinking", &s) || !get_string(&md, m, "tool_name", &s) ||
                !get_string(&md, m, "tool_call_id", &s) ||
                !get_string_array(&md, m, "images", "[]api.ImageData", &arr) ||
                !get_array(&md, m, "tool_calls", "[]api.ToolCall", &arr) || md.error)
                return md.error;
            for (size_t k = 0; arr && k < json_array_size(arr); k++) {
                json_t *call = json_array_get(arr, k);
                json_t *fn = json_is_object(call) ? api_field(call, "function") : NULL;
                decoder fd = {.go_struct = "ChatRequest.messages.tool_calls.function"};
                if (!json_is_object(call))
                    return (type_error(&md, "tool_calls", call, "api.ToolCall"), md.error);
                if (fn && !json_is_object(fn))
                    return (type_error(&md, "tool_calls.function", fn, "api.ToolCallFunction"), md.error);
                if (fn && !get_string(&fd, fn, "name", &s))
                    return fd.error;
                json_t *arguments = fn ? api_field(fn, "arguments") : NULL;
                if (arguments && !json_is_object(arguments))
                    return (type_error(&fd, "arguments", arguments, "api.ToolCallFunctionArguments"), fd.error);
            }
        }
    }
    if (r->is_chat && r->tools) {
        size_t i;
        json_t *t;
        json_array_foreach(r->tools, i, t)
        {
            if (!json_is_object(t))
                return (type_error(&d, "tools", t, "api.Tool"), d.error);
            json_t *fn = api_field(t, "function");
            if (fn && !json_is_object(fn))
                return (type_error(&d, "tools.function", fn, "api.ToolFunction"), d.error);
        }
    }
    if (!decode_think(&d, b, &r->think))
        return d.error;
    char err[256] = "";
    if (!parse_keep_alive(json_object_get(b, "keep_alive"), &r->has_keep_alive, &r->keep_alive_s, err, sizeof err))
        return http_response_error(STATUS_BAD_REQUEST, "%s", err);
    return NULL;
}

/* The checks Ollama makes after decoding, in its order, up to the point where the model runs. */
static http_response *validate_gen_request(const ollama_api *api, gen_request *r)
{
    if (r->top_logprobs < 0 || r->top_logprobs > 20)
        return http_response_error(STATUS_BAD_REQUEST, "top_logprobs must be between 0 and 20");
    if (r->is_chat && !r->model[0])
        return http_response_error(STATUS_BAD_REQUEST, "model is required");
    char display[600];
    if (!model_name_normalize(r->model, display, sizeof display))
        return http_response_error(STATUS_NOT_FOUND, "model '%s' not found", r->model);
    if (!r->is_chat && r->raw && (r->template_text[0] || r->system[0] || json_array_size(r->context) > 0))
        return http_response_error(STATUS_BAD_REQUEST, "raw mode does not support template, system, or context");
    r->manifest = model_registry_find(api->models, r->model);
    if (!r->manifest)
        return http_response_error(STATUS_NOT_FOUND, "model '%s' not found", r->model);
    const model_manifest *m = r->manifest;

    /* capabilities: completion (always), insert, vision, tools */
    if (!r->is_chat && r->suffix[0])
        return capability_error(m, "insert");
    if (json_array_size(r->images) > 0)
        return capability_error(m, "vision");
    if (r->is_chat) {
        if (json_array_size(r->tools) > 0 && !model_supports_tools(m))
            return capability_error(m, "tools");
        size_t i;
        json_t *msg;
        json_array_foreach(r->messages, i, msg)
        {
            if (json_array_size(api_field(msg, "images")) > 0)
                return capability_error(m, "vision");
        }
    }
    if (r->think == 1 && !m->thinking)
        return quoted_error(STATUS_BAD_REQUEST, r->model, " does not support thinking");

    /* format: instructed through the system prompt, the reply validated (api/format.h); never
     * ignored silently: unconstrained prose with 200 is the bug users report */
    char ferr[512];
    if (!format_from_ollama(r->format, &r->fmt, ferr, sizeof ferr))
        return http_response_error(STATUS_BAD_REQUEST, "%s", ferr);
    if (!r->is_chat && r->template_text[0])
        return http_response_error(STATUS_BAD_REQUEST,
                                   "template overrides are not supported: axllama renders the model's own chat template");
    if (r->logprobs || r->top_logprobs > 0)
        return http_response_error(STATUS_BAD_REQUEST, "logprobs are not supported");
    if (r->debug_render_only)
        return http_response_error(STATUS_BAD_REQUEST, "_debug_render_only is not supported");
    return NULL;
}

/* ------------------------------------------------------------------------------------ chunks */

typedef struct {
    bool is_chat;
    char *model; /* echoed exactly as the request sent it */
} chunk_format;

static json_t *chunk_new(const chunk_format *f, const char *content, const char *thinking, bool done)
{
    char now[64];
    rfc3339_utc_now(now, sizeof now);
    json_t *o = json_object();
    json_object_set_new(o, "model", http_json_string(f->model));
    json_object_set_new(o, "created_at", json_string(now));
    if (f->is_chat) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", http_json_string(content));
        if (thinking && *thinking)
            json_object_set_new(msg, "thinking", http_json_string(thinking));
        json_object_set_new(o, "message", msg);
    } else {
        json_object_set_new(o, "response", http_json_string(content));
        if (thinking && *thinking)
            json_object_set_new(o, "thinking", http_json_string(thinking));
    }
    json_object_set_new(o, "done", json_boolean(done));
    return o;
}

static json_int_t ns_value(uint64_t ns)
{
    return ns > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)ns;
}

/* The last chunk: done_reason and the six metrics. Ollama's `context` (token ids of the whole
 * exchange, deprecated) is left out: the runtime holds the conversation, and clients that sent
 * it back would get no benefit (spec §3.9 allows leaving it out). */
static json_t *chunk_final(const chunk_format *f, const char *content, const char *thinking, const job_event *done)
{
    json_t *o = chunk_new(f, content, thinking, true);
    json_object_set_new(o, "done_reason", json_string(done->done_reason ? done->done_reason : "stop"));
    const job_metrics *m = &done->metrics;
    json_object_set_new(o, "total_duration", json_integer(ns_value(m->total_ns)));
    json_object_set_new(o, "load_duration", json_integer(ns_value(m->load_ns)));
    json_object_set_new(o, "prompt_eval_count", json_integer(m->prompt_eval_count));
    json_object_set_new(o, "prompt_eval_duration", json_integer(ns_value(m->prompt_eval_ns)));
    json_object_set_new(o, "eval_count", json_integer(m->eval_count));
    json_object_set_new(o, "eval_duration", json_integer(ns_value(m->eval_ns)));
    return o;
}

/* The load / unload answer: one object, no metrics. */
static http_response *lifecycle_reply(const chunk_format *f, const char *done_reason)
{
    json_t *o = chunk_new(f, "", NULL, true);
    json_object_set_new(o, "done_reason", json_string(done_reason));
    http_response *r = http_response_json(STATUS_OK, o);
    json_decref(o);
    return r;
}

static void append_line(strbuf *out, json_t *o)
{
    size_t len;
    char *text = http_json_encode(o, &len);
    json_decref(o);
    if (!text) { /* cannot happen with the objects built here */
        sb_puts(out, "{\"error\":\"cannot serialise a chunk\"}\n");
        return;
    }
    sb_append(out, text, len);
    sb_putc(out, '\n');
    free(text);
}

/* One tool call as Ollama sends it: {"id":"call_<8 of [a-z0-9]>","function":{"index":i,"name":…,
 * "arguments":{…}}} (arguments an object, in the model's key order). */
static json_t *tool_call_json(const job_event *ev, int index)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[8];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(rnd, 1, sizeof rnd, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = got; i < sizeof rnd; i++)
        rnd[i] = (unsigned char)rand();
    char id[5 + 8 + 1] = "call_";
    for (size_t i = 0; i < 8; i++)
        id[5 + i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    id[13] = '\0';
    json_t *args = json_loads(ev->tool_arguments ? ev->tool_arguments : "{}", 0, NULL);
    if (!json_is_object(args)) { /* the engine sends objects only */
        json_decref(args);
        args = json_object();
    }
    json_t *fn = json_object();
    json_object_set_new(fn, "index", json_integer(index));
    json_object_set_new(fn, "name", http_json_string(ev->tool_name ? ev->tool_name : ""));
    json_object_set_new(fn, "arguments", args);
    json_t *call = json_object();
    json_object_set_new(call, "id", json_string(id));
    json_object_set_new(call, "function", fn);
    return call;
}

static unsigned error_status(const job_event *ev)
{
    return ev->http_status >= 400 && ev->http_status <= 599 ? (unsigned)ev->http_status : STATUS_INTERNAL_ERROR;
}

/* ------------------------------------------------------------------------------------ streaming */

typedef struct {
    job *job;
    chunk_format format;
    job_event first;
    bool has_first;
    format_spec fmt;   /* the request's `format`: the content is validated at the end */
    strbuf content;    /* content so far (with a format) */
    int n_calls;       /* tool calls sent */
} ndjson_stream;

/* One event -> one NDJSON line; false after the last one (done or error). */
static bool stream_pull(void *state, strbuf *out, double timeout_s)
{
    ndjson_stream *s = state;
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
        if (s->fmt.kind != FORMAT_NONE)
            sb_puts(&s->content, ev.text ? ev.text : "");
        append_line(out, chunk_new(&s->format, ev.text, NULL, false));
        break;
    case JOB_EV_THINKING: append_line(out, chunk_new(&s->format, "", ev.text, false)); break;
    case JOB_EV_TOOL_CALL: {
        /* each call whole, in its own chunk with content "" (as Ollama streams them); only chat
         * requests carry tools */
        if (!s->format.is_chat)
            break;
        json_t *o = chunk_new(&s->format, "", NULL, false);
        json_t *calls = json_array();
        json_array_append_new(calls, tool_call_json(&ev, s->n_calls++));
        json_object_set_new(json_object_get(o, "message"), "tool_calls", calls);
        append_line(out, o);
        break;
    }
    case JOB_EV_DONE: {
        char ferr[512];
        /* a reply that calls tools answers with the calls: the format applies to prose answers */
        if (s->n_calls == 0 &&
            !format_validate(&s->fmt, s->content.data ? s->content.data : "", NULL, NULL, ferr, sizeof ferr)) {
            /* the text went out already: end with an error line instead of done */
            json_t *o = json_object();
            json_object_set_new(o, "error", http_json_string(ferr));
            append_line(out, o);
        } else {
            append_line(out, chunk_final(&s->format, "", NULL, &ev));
        }
        more = false;
        break;
    }
    case JOB_EV_ERROR: {
        /* the status line is gone: one {"error"} line, then the stream ends without done */
        json_t *o = json_object();
        json_object_set_new(o, "error", http_json_string(ev.text ? ev.text : "an error was encountered while running the model"));
        append_line(out, o);
        more = false;
        break;
    }
    }
    job_event_free(&ev);
    return more;
}

static void stream_cancel(void *state)
{
    ndjson_stream *s = state;
    job_cancel(s->job);
}

static void stream_free(void *state)
{
    ndjson_stream *s = state;
    if (s->has_first)
        job_event_free(&s->first);
    job_release(s->job);
    free(s->format.model);
    format_spec_free(&s->fmt);
    sb_free(&s->content);
    free(s);
}

static const http_stream_ops ndjson_ops = {stream_pull, stream_cancel, stream_free};

/* ------------------------------------------------------------------------------------ running */

/* Submits the job and answers: the first event decides between an error status and a 200; then
 * a stream, or one object collecting every piece. NULL when the client left. */
static http_response *run_job(ollama_api *api, const http_request *req, const gen_request *r, const job_request *jr)
{
    job *j = NULL;
    char err[512] = "";
    int status = engine_submit(api->engine, jr, &j, err, sizeof err);
    if (status != 200 || !j)
        return http_response_error(status >= 400 && status <= 599 ? (unsigned)status : STATUS_INTERNAL_ERROR, "%s",
                                   err[0] ? err : "cannot queue the request");
    chunk_format fmt = {.is_chat = r->is_chat, .model = xstrdup(r->model)};
    job_event ev;
    if (!api_wait_event(req, j, &ev)) {
        job_release(j);
        free(fmt.model);
        return NULL;
    }
    http_response *resp = NULL;
    if (ev.kind == JOB_EV_ERROR) {
        resp = http_response_error(error_status(&ev), "%s", ev.text ? ev.text : "unknown error");
        job_event_free(&ev);
    } else if (jr->kind == JOB_LOAD && ev.kind == JOB_EV_DONE) {
        resp = lifecycle_reply(&fmt, ev.done_reason ? ev.done_reason : "load");
        job_event_free(&ev);
    } else if (r->stream) {
        ndjson_stream *s = xcalloc(1, sizeof *s);
        s->job = j;
        s->format = fmt;
        s->first = ev;
        s->has_first = true;
        s->fmt = r->fmt;
        if (s->fmt.schema)
            json_incref(s->fmt.schema);
        return http_response_stream(HTTP_CONTENT_TYPE_NDJSON, &ndjson_ops, s);
    } else {
        strbuf content = {0}, thinking = {0};
        json_t *calls = json_array();
        for (;;) {
            if (ev.kind == JOB_EV_CONTENT) {
                sb_puts(&content, ev.text ? ev.text : "");
            } else if (ev.kind == JOB_EV_THINKING) {
                sb_puts(&thinking, ev.text ? ev.text : "");
            } else if (ev.kind == JOB_EV_TOOL_CALL) {
                json_array_append_new(calls, tool_call_json(&ev, (int)json_array_size(calls)));
            } else if (ev.kind == JOB_EV_DONE) {
                const char *text = content.data ? content.data : "";
                size_t off = 0, len = strlen(text);
                char ferr[512];
                bool calls_made = json_array_size(calls) > 0; /* then the format does not apply */
                if (!calls_made && !format_validate(&r->fmt, text, &off, &len, ferr, sizeof ferr)) {
                    resp = http_response_error(STATUS_INTERNAL_ERROR, "%s", ferr);
                } else {
                    /* with a format: the JSON itself (whitespace and a code fence removed) */
                    char *answer = xstrndup(text + off, len);
                    json_t *o = chunk_final(&fmt, answer, thinking.data, &ev);
                    if (json_array_size(calls) > 0 && r->is_chat)
                        json_object_set(json_object_get(o, "message"), "tool_calls", calls);
                    resp = http_response_json(STATUS_OK, o);
                    json_decref(o);
                    free(answer);
                }
            } else {
                resp = http_response_error(error_status(&ev), "%s", ev.text ? ev.text : "unknown error");
            }
            bool last = ev.kind == JOB_EV_DONE || ev.kind == JOB_EV_ERROR;
            job_event_free(&ev);
            if (last || !api_wait_event(req, j, &ev))
                break;
        }
        sb_free(&content);
        sb_free(&thinking);
        json_decref(calls);
    }
    job_release(j);
    free(fmt.model);
    return resp;
}

/* keep_alive 0 with nothing to run: unload without loading. */
static http_response *unload_reply(ollama_api *api, const gen_request *r)
{
    engine_unload(api->engine, r->model);
    chunk_format fmt = {.is_chat = r->is_chat, .model = (char *)r->model};
    return lifecycle_reply(&fmt, "unload");
}

static void base_job(const gen_request *r, job_request *jr)
{
    jr->model = r->model;
    jr->think = r->think;
    jr->has_keep_alive = r->has_keep_alive;
    jr->keep_alive_s = r->keep_alive_s;
}

/* Converts the request's messages (validated by decode_gen_request) for the engine. The strings
 * stay owned by the JSON body; tool-call argument texts are owned by *args. */
typedef struct {
    chat_message *msgs;
    size_t n;
    chat_tool_call *calls;
    char **args;
    size_t n_calls;
} message_list;

static void message_list_free(message_list *l)
{
    for (size_t i = 0; i < l->n_calls; i++)
        free(l->args[i]);
    free(l->args);
    free(l->calls);
    free(l->msgs);
}

static const char *canonical_role(const char *role)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (role && strcasecmp(role, roles[i]) == 0) /* Ollama lower-cases roles */
            return roles[i];
    return NULL;
}

static http_response *build_messages(json_t *messages, message_list *l)
{
    memset(l, 0, sizeof *l);
    size_t n = json_array_size(messages), total_calls = 0;
    for (size_t i = 0; i < n; i++)
        total_calls += json_array_size(api_field(json_array_get(messages, i), "tool_calls"));
    l->msgs = xcalloc(n ? n : 1, sizeof *l->msgs);
    l->calls = xcalloc(total_calls ? total_calls : 1, sizeof *l->calls);
    l->args = xcalloc(total_calls ? total_calls : 1, sizeof *l->args);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(messages, i);
        json_t *role = api_field(m, "role");
        const char *canonical = canonical_role(role ? json_string_value(role) : "");
        if (!canonical) {
            strbuf msg = {0};
            sb_puts(&msg, "invalid role ");
            go_quote(&msg, role ? json_string_value(role) : "");
            sb_printf(&msg, " in message %zu: must be one of system, user, assistant, tool", i);
            http_response *resp = http_response_error(STATUS_BAD_REQUEST, "%s", msg.data);
            sb_free(&msg);
            return resp;
        }
        chat_message *cm = &l->msgs[l->n++];
        cm->role = canonical;
        json_t *content = api_field(m, "content"), *thinking = api_field(m, "thinking");
        cm->content = content ? json_string_value(content) : "";
        cm->reasoning_content = thinking ? json_string_value(thinking) : NULL;
        json_t *calls = api_field(m, "tool_calls");
        if (json_array_size(calls) > 0) {
            cm->tool_calls = &l->calls[l->n_calls];
            for (size_t k = 0; k < json_array_size(calls); k++) {
                json_t *fn = api_field(json_array_get(calls, k), "function");
                json_t *name = fn ? api_field(fn, "name") : NULL;
                json_t *arguments = fn ? api_field(fn, "arguments") : NULL;
                /* serialised as the template's `arguments | tojson` (api/tojson.h) */
                l->args[l->n_calls] = arguments ? tojson_dumps(arguments) : xstrdup("{}");
                l->calls[l->n_calls].name = name ? json_string_value(name) : "";
                l->calls[l->n_calls].arguments_json = l->args[l->n_calls];
                l->n_calls++;
                cm->n_tool_calls++;
            }
        }
    }
    return NULL;
}

/* POST /api/generate and /api/chat. */
static http_response *handle_generation(ollama_api *api, const http_request *req, bool is_chat)
{
    gen_request r = {.is_chat = is_chat};
    http_response *resp = decode_body(req, is_chat ? "ChatRequest" : "GenerateRequest", &r.body);
    if (resp)
        return resp;
    resp = decode_gen_request(&r);
    if (!resp)
        resp = validate_gen_request(api, &r);
    gen_options opts = {0};
    if (!resp)
        resp = decode_options(api, r.options, &opts);
    if (resp) {
        api_gen_options_free(&opts);
        format_spec_free(&r.fmt);
        json_decref(r.body);
        return resp;
    }
    if (!is_chat && json_array_size(r.context) > 0)
        api_logf(api->log, api->log_user, "generate: the deprecated `context` field is ignored (axllama keeps the conversation itself)");

    bool nothing_to_run = is_chat ? json_array_size(r.messages) == 0 : r.prompt[0] == '\0';
    if (nothing_to_run && r.has_keep_alive && r.keep_alive_s == 0) {
        resp = unload_reply(api, &r);
    } else {
        job_request jr = {0};
        base_job(&r, &jr);
        jr.options = opts;
        message_list list = {0};
        chat_message prompt_msgs[2];
        if (nothing_to_run) {
            jr.kind = JOB_LOAD;
        } else if (!is_chat && r.raw) {
            jr.kind = JOB_RAW;
            jr.raw_prompt = r.prompt;
        } else if (!is_chat) {
            jr.kind = JOB_CHAT;
            size_t n = 0;
            if (r.system[0])
                prompt_msgs[n++] = (chat_message){.role = "system", .content = r.system};
            prompt_msgs[n++] = (chat_message){.role = "user", .content = r.prompt};
            jr.messages = prompt_msgs;
            jr.n_messages = n;
        } else {
            resp = build_messages(r.messages, &list);
            jr.kind = JOB_CHAT;
            jr.messages = list.msgs;
            jr.n_messages = list.n;
        }
        /* tools, each serialised as the template's `tool | tojson` */
        size_t n_tools = is_chat && jr.kind == JOB_CHAT ? json_array_size(r.tools) : 0;
        char **tools_json = xcalloc(n_tools + 1, sizeof *tools_json);
        for (size_t i = 0; i < n_tools; i++)
            tools_json[i] = tojson_dumps(json_array_get(r.tools, i));
        jr.tools_json = (const char *const *)tools_json;
        jr.n_tools = n_tools;
        char *instruction = format_instruction(&r.fmt);
        jr.system_suffix = instruction;
        if (!resp)
            resp = run_job(api, req, &r, &jr);
        free(instruction);
        for (size_t i = 0; i < n_tools; i++)
            free(tools_json[i]);
        free(tools_json);
        message_list_free(&list);
    }
    api_gen_options_free(&opts);
    format_spec_free(&r.fmt);
    json_decref(r.body);
    return resp;
}

static http_response *handle_generate(const http_request *req, void *user)
{
    return handle_generation(user, req, false);
}

static http_response *handle_chat(const http_request *req, void *user)
{
    return handle_generation(user, req, true);
}

/* ------------------------------------------------------------------------------------ listings */

static http_response *handle_root(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(STATUS_OK, HTTP_CONTENT_TYPE_TEXT, "Ollama is running");
}

static http_response *handle_version(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(STATUS_OK, HTTP_CONTENT_TYPE_JSON, "{\"version\":\"" OLLAMA_API_VERSION "\"}");
}

static http_response *handle_tags(const http_request *req, void *user)
{
    (void)req;
    ollama_api *api = user;
    size_t n = api->models ? api->models->n : 0;
    const model_manifest **sorted = xcalloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &api->models->models[i];
    qsort(sorted, n, sizeof *sorted, api_by_modified_desc);
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        const model_manifest *m = sorted[i];
        char modified[64];
        rfc3339_local(m->modified, modified, sizeof modified);
        json_t *o = json_object();
        json_object_set_new(o, "name", http_json_string(m->name));
        json_object_set_new(o, "model", http_json_string(m->name));
        json_object_set_new(o, "modified_at", json_string(modified));
        json_object_set_new(o, "size", json_integer(size_value(m->size)));
        json_object_set_new(o, "digest", json_string(m->digest));
        json_object_set_new(o, "details", model_details(m));
        json_array_append_new(models, o);
    }
    free(sorted);
    json_t *root = json_object();
    json_object_set_new(root, "models", models);
    http_response *resp = http_response_json(STATUS_OK, root);
    json_decref(root);
    return resp;
}

/* "4.0B" -> 4000000000; 0 when it does not parse. */
static long long parameter_count(const char *size)
{
    if (!size || !*size)
        return 0;
    char *end;
    double v = strtod(size, &end);
    if (end == size || v <= 0)
        return 0;
    double scale = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': scale = 1e3; break;
    case 'M': scale = 1e6; break;
    case 'B': scale = 1e9; break;
    case 'T': scale = 1e12; break;
    case '\0': break;
    default: return 0;
    }
    return llround(v * scale);
}

static void append_parameter(strbuf *params, strbuf *modelfile, const char *key, const char *value)
{
    if (params->len)
        sb_putc(params, '\n');
    sb_printf(params, "%-30s %s", key, value); /* Ollama's "%-*s %#v" with width 30 */
    sb_printf(modelfile, "PARAMETER %s %s\n", key, value);
}

static http_response *handle_show(const http_request *req, void *user)
{
    ollama_api *api = user;
    json_t *body;
    http_response *resp = decode_body(req, "ShowRequest", &body);
    if (resp)
        return resp;
    decoder d = {.go_struct = "ShowRequest"};
    const char *model = "", *name = "", *ignored = "";
    bool verbose = false;
    if (!get_string(&d, body, "model", &model) || !get_string(&d, body, "name", &name) ||
        !get_string(&d, body, "system", &ignored) || !get_string(&d, body, "template", &ignored) ||
        !get_bool(&d, body, "verbose", &verbose)) {
        json_decref(body);
        return d.error;
    }
    if (!model[0])
        model = name;
    char display[600];
    if (!model[0])
        resp = http_response_error(STATUS_BAD_REQUEST, "model is required");
    else if (!model_name_normalize(model, display, sizeof display))
        resp = http_response_error(STATUS_BAD_REQUEST, "invalid model name");
    if (resp) {
        json_decref(body);
        return resp;
    }
    const model_manifest *m = model_registry_find(api->models, model);
    json_decref(body);
    if (!m)
        return http_response_error(STATUS_NOT_FOUND, "model '%s' not found", display);

    const char *arch = architecture(m);
    strbuf params = {0}, modelfile = {0}, num = {0};
    sb_printf(&modelfile, "# Modelfile generated by axllama (informational: models are defined by manifests)\n");
    if (m->path)
        sb_printf(&modelfile, "# manifest: %s\n", m->path);
    sb_printf(&modelfile, "FROM %s\nTEMPLATE \"\"\"%s\"\"\"\n", m->name, SHOW_TEMPLATE);
    if (m->system_prompt && *m->system_prompt)
        sb_printf(&modelfile, "SYSTEM \"\"\"%s\"\"\"\n", m->system_prompt);
    if (m->has_temperature) {
        sb_clear(&num);
        sb_printf(&num, "%g", m->temperature);
        append_parameter(&params, &modelfile, "temperature", num.data);
    }
    if (m->has_top_k) {
        sb_clear(&num);
        sb_printf(&num, "%d", m->top_k);
        append_parameter(&params, &modelfile, "top_k", num.data);
    }
    if (m->has_top_p) {
        sb_clear(&num);
        sb_printf(&num, "%g", m->top_p);
        append_parameter(&params, &modelfile, "top_p", num.data);
    }
    if (m->has_repeat_penalty) {
        sb_clear(&num);
        sb_printf(&num, "%g", m->repeat_penalty);
        append_parameter(&params, &modelfile, "repeat_penalty", num.data);
    }
    sb_free(&num);

    json_t *o = json_object();
    json_object_set_new(o, "modelfile", http_json_string(modelfile.data));
    if (params.len)
        json_object_set_new(o, "parameters", http_json_string(params.data));
    json_object_set_new(o, "template", json_string(SHOW_TEMPLATE));
    if (m->system_prompt && *m->system_prompt)
        json_object_set_new(o, "system", http_json_string(m->system_prompt));
    json_object_set_new(o, "details", model_details(m));

    /* always present (several clients crash without it); Copilot reads the context window as
     * model_info[architecture + ".context_length"] and the display name from general.basename */
    json_t *info = json_object();
    json_object_set_new(info, "general.architecture", http_json_string(arch));
    const char *base = strrchr(m->name, '/');
    base = base ? base + 1 : m->name;
    const char *colon = strchr(base, ':');
    json_object_set_new(info, "general.basename", json_stringn(base, colon ? (size_t)(colon - base) : strlen(base)));
    long long count = parameter_count(m->parameter_size);
    if (count > 0)
        json_object_set_new(info, "general.parameter_count", json_integer(count));
    char key[256];
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_object_set_new(info, key, json_integer(m->max_positions));
    json_object_set_new(info, "axllama.max_prefill", json_integer(m->max_prefill));
    json_object_set_new(o, "model_info", info);

    json_t *caps = json_array();
    json_array_append_new(caps, json_string("completion"));
    if (model_supports_tools(m))
        json_array_append_new(caps, json_string("tools"));
    if (m->thinking)
        json_array_append_new(caps, json_string("thinking"));
    json_object_set_new(o, "capabilities", caps);
    char modified[64];
    rfc3339_local(m->modified, modified, sizeof modified);
    json_object_set_new(o, "modified_at", json_string(modified));
    (void)verbose; /* no tensor listing: nothing to add */

    resp = http_response_json(STATUS_OK, o);
    json_decref(o);
    sb_free(&params);
    sb_free(&modelfile);
    return resp;
}

static const char *state_name(rt_state s)
{
    switch (s) {
    case RT_STOPPED: return "stopped";
    case RT_LOADING: return "loading";
    case RT_READY: return "ready";
    case RT_RESTARTING: return "restarting";
    case RT_FAILED: return "failed";
    }
    return "unknown";
}

typedef struct {
    const engine_loaded_model *model;
    time_t expires;
} ps_entry;

static int by_expiry_desc(const void *a, const void *b)
{
    const ps_entry *x = a, *y = b;
    return (x->expires < y->expires) - (x->expires > y->expires);
}

static http_response *handle_ps(const http_request *req, void *user)
{
    (void)req;
    ollama_api *api = user;
    engine_loaded_model loaded[PS_MAX];
    size_t n = engine_ps(api->engine, loaded, PS_MAX);
    if (n > PS_MAX)
        n = PS_MAX;
    time_t now = time(NULL);
    ps_entry entries[PS_MAX];
    for (size_t i = 0; i < n; i++) {
        entries[i].model = &loaded[i];
        /* keep_alive < 0: Ollama's MaxInt64 ns, about 292 years ahead (the CLI shows "Forever") */
        entries[i].expires = loaded[i].forever ? now + (time_t)FOREVER_S : loaded[i].expires_at;
    }
    qsort(entries, n, sizeof entries[0], by_expiry_desc); /* longest time left first */
    json_t *models = json_array();
    for (size_t i = 0; i < n; i++) {
        const engine_loaded_model *lm = entries[i].model;
        const model_manifest *m = lm->manifest ? lm->manifest : model_registry_find(api->models, lm->name);
        char expires[64];
        rfc3339_local(entries[i].expires, expires, sizeof expires);
        json_t *o = json_object();
        json_object_set_new(o, "name", http_json_string(lm->name));
        json_object_set_new(o, "model", http_json_string(lm->name));
        json_object_set_new(o, "size", json_integer(size_value(lm->size)));
        json_object_set_new(o, "digest", json_string(m ? m->digest : ""));
        if (m)
            json_object_set_new(o, "details", model_details(m));
        json_object_set_new(o, "expires_at", json_string(expires));
        json_object_set_new(o, "size_vram", json_integer(size_value(lm->size)));
        json_object_set_new(o, "context_length", json_integer(lm->context_length));
        /* axllama's own: the runtime's state, and "k/N" while it loads */
        json_t *ax = json_object();
        json_object_set_new(ax, "state", json_string(state_name(lm->state)));
        if (lm->state == RT_LOADING && lm->load_total > 0) {
            char progress[32];
            snprintf(progress, sizeof progress, "%d/%d", lm->load_step, lm->load_total);
            json_object_set_new(ax, "progress", json_string(progress));
        }
        json_object_set_new(o, "axllama", ax);
        json_array_append_new(models, o);
    }
    json_t *root = json_object();
    json_object_set_new(root, "models", models);
    http_response *resp = http_response_json(STATUS_OK, root);
    json_decref(root);
    return resp;
}

/* ------------------------------------------------------------------------------------ routes */

size_t ollama_api_routes(ollama_api *api, http_route *routes, size_t max)
{
    tzset(); /* localtime_r for modified_at / expires_at */
    const http_route all[] = {
        {"GET", "/", handle_root, api, false},
        {"HEAD", "/", handle_root, api, false},
        {"GET", "/api/version", handle_version, api, false},
        {"HEAD", "/api/version", handle_version, api, false},
        {"GET", "/api/tags", handle_tags, api, false},
        {"HEAD", "/api/tags", handle_tags, api, false},
        {"POST", "/api/show", handle_show, api, false},
        {"GET", "/api/ps", handle_ps, api, false},
        {"POST", "/api/generate", handle_generate, api, true},
        {"POST", "/api/chat", handle_chat, api, true},
    };
    size_t n = sizeof all / sizeof all[0];
    if (n > max)
        n = max;
    memcpy(routes, all, n * sizeof all[0]);
    return n;
}
