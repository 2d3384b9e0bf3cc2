/* ollama_decode: reading native Ollama requests as Ollama's Go server does (see ollama_internal.h):
 * the body (json.Decoder + ShouldBindJSON), each field's type with Go's "cannot unmarshal" texts,
 * think, keep_alive, options (Options.FromMap), the checks after decoding in Ollama's order
 * (model, raw mode, capabilities, format), the messages of /api/chat converted for the engine, and
 * /api/show's request. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "common/buf.h"
#include "common/json_type.h"
#include "config/config.h"

/* ------------------------------------------------------------------------------------ errors */

void ollama_go_quote(strbuf *out, const char *s)
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

http_response *ollama_quoted_error(unsigned status, const char *prefix, const char *s, const char *suffix)
{
    strbuf msg = {0};
    sb_puts(&msg, prefix);
    ollama_go_quote(&msg, s);
    sb_puts(&msg, suffix);
    http_response *r = http_response_error(status, "%s", msg.data);
    sb_free(&msg);
    return r;
}

/* Ollama's full model name for capability errors: registry.ollama.ai/library/qwen3:4b. */
static void ollama_full_model_name(const char *display, char *out, size_t n)
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

static http_response *ollama_capability_error(const model_manifest *m, const char *capability)
{
    char full[600];
    ollama_full_model_name(m->name, full, sizeof full);
    return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "%s does not support %s", full, capability);
}

/* ------------------------------------------------------------------------------------ fields */

http_response *ollama_decode_body(const http_request *req, const char *go_type, json_t **out)
{
    *out = NULL;
    api_body_status status;
    json_error_t jerr;
    json_t *v = api_read_body(req, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &status, &jerr);
    if (status == API_BODY_BLANK)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "missing request body");
    if (status == API_BODY_TRUNCATED)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "unexpected EOF");
    if (status == API_BODY_INVALID)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text,
                                   jerr.line, jerr.column);
    if (json_is_null(v)) {
        json_decref(v);
        v = json_object();
    }
    if (!json_is_object(v)) {
        const char *kind = json_is_array(v)     ? "array"
                           : json_is_string(v)  ? "string"
                           : json_is_boolean(v) ? "bool"
                                                : "number";
        json_decref(v);
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "json: cannot unmarshal %s into Go value of type api.%s",
                                   kind, go_type);
    }
    *out = v;
    return NULL;
}

/* Field decoding with Go's messages: "json: cannot unmarshal number into Go struct field
 * GenerateRequest.prompt of type string". A missing or null field leaves the default. The first
 * error is kept; every reader returns false once there is one. */
typedef struct {
    const char *go_struct; /* "GenerateRequest", "ChatRequest.messages" ... */
    http_response *error;
} ollama_decoder;

static bool ollama_type_error(ollama_decoder *d, const char *field, const json_t *v, const char *go_type)
{
    if (!d->error)
        d->error = http_response_error(
            OLLAMA_STATUS_BAD_REQUEST, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
            json_is_boolean(v) ? "bool" : json_type_name(v, false), d->go_struct, field, go_type);
    return false;
}

static bool ollama_field_string(ollama_decoder *d, json_t *obj, const char *key, const char **out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_string(v))
        return ollama_type_error(d, key, v, "string");
    *out = json_string_value(v);
    return true;
}

static bool ollama_field_bool(ollama_decoder *d, json_t *obj, const char *key, bool *out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return ollama_type_error(d, key, v, "bool");
    *out = json_is_true(v);
    return true;
}

static bool ollama_field_int(ollama_decoder *d, json_t *obj, const char *key, long long *out)
{
    json_t *v = api_field(obj, key);
    if (!v)
        return true;
    if (!json_is_integer(v))
        return ollama_type_error(d, key, v, "int");
    *out = json_integer_value(v);
    return true;
}

/* An array field (NULL when absent). */
static bool ollama_field_array(ollama_decoder *d, json_t *obj, const char *key, const char *go_type, json_t **out)
{
    json_t *v = api_field(obj, key);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_array(v))
        return ollama_type_error(d, key, v, go_type);
    *out = v;
    return true;
}

static bool ollama_field_string_array(ollama_decoder *d, json_t *obj, const char *key, const char *go_type,
                                      json_t **out)
{
    if (!ollama_field_array(d, obj, key, go_type, out) || !*out)
        return !d->error;
    size_t i;
    json_t *e;
    json_array_foreach(*out, i, e)
    {
        if (!json_is_string(e))
            return ollama_type_error(d, key, e, go_type + 2); /* the element type: "[]T" -> "T" */
    }
    return true;
}

/* think: true/false or "low"/"medium"/"high"/"max" (levels count as on); absent/null: -1. */
static bool ollama_decode_think(ollama_decoder *d, json_t *obj, int *think)
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
        d->error = ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "invalid think value: ", s,
                                       " (must be \"high\", \"medium\", \"low\", \"max\", true, or false)");
        return false;
    }
    d->error = http_response_error(
        OLLAMA_STATUS_BAD_REQUEST,
        "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)");
    return false;
}

/* ------------------------------------------------------------------------------------ options */

typedef enum { OLLAMA_OPT_INT, OLLAMA_OPT_FLOAT, OLLAMA_OPT_BOOL, OLLAMA_OPT_STRINGS } ollama_option_type;

/* Ollama's current Options + Runner fields. Only temperature, top_k, top_p, repeat_penalty,
 * num_predict and stop act on the NPU runtime; the others are accepted and have no effect (the
 * context size is compiled into the model, sampling is the runtime's). */
static const struct {
    const char *name;
    ollama_option_type type;
} ollama_known_options[] = {
    {"num_keep", OLLAMA_OPT_INT},
    {"seed", OLLAMA_OPT_INT},
    {"num_predict", OLLAMA_OPT_INT},
    {"top_k", OLLAMA_OPT_INT},
    {"top_p", OLLAMA_OPT_FLOAT},
    {"min_p", OLLAMA_OPT_FLOAT},
    {"typical_p", OLLAMA_OPT_FLOAT},
    {"repeat_last_n", OLLAMA_OPT_INT},
    {"temperature", OLLAMA_OPT_FLOAT},
    {"repeat_penalty", OLLAMA_OPT_FLOAT},
    {"presence_penalty", OLLAMA_OPT_FLOAT},
    {"frequency_penalty", OLLAMA_OPT_FLOAT},
    {"stop", OLLAMA_OPT_STRINGS},
    {"num_ctx", OLLAMA_OPT_INT},
    {"num_batch", OLLAMA_OPT_INT},
    {"num_gpu", OLLAMA_OPT_INT},
    {"main_gpu", OLLAMA_OPT_INT},
    {"use_mmap", OLLAMA_OPT_BOOL},
    {"num_thread", OLLAMA_OPT_INT},
};

static int ollama_clamp_int(double v)
{
    if (v > INT_MAX)
        return INT_MAX;
    if (v < INT_MIN)
        return INT_MIN;
    return (int)v; /* truncation, like Go's int(float64) */
}

/* Ollama's message when a known option has the wrong JSON type; NULL when it is right. */
static http_response *ollama_option_type_error(const char *key, ollama_option_type type, json_t *v)
{
    switch (type) {
    case OLLAMA_OPT_INT:
        if (!json_is_number(v))
            return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "option \"%s\" must be of type integer", key);
        break;
    case OLLAMA_OPT_FLOAT:
        if (!json_is_number(v))
            return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "option \"%s\" must be of type float32", key);
        break;
    case OLLAMA_OPT_BOOL:
        if (!json_is_boolean(v))
            return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "option \"%s\" must be of type boolean", key);
        break;
    case OLLAMA_OPT_STRINGS: {
        if (!json_is_array(v))
            return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "option \"%s\" must be of type array", key);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e))
                return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "option \"%s\" must be of an array of strings",
                                           key);
        }
        break;
    }
    }
    return NULL;
}

/* Puts one well-typed option into out (those the runtime has no use for are left out). */
static void ollama_apply_option(const char *key, json_t *v, gen_options *out)
{
    double num = json_is_number(v) ? json_number_value(v) : 0;
    if (!strcmp(key, "temperature")) {
        out->has_temperature = true;
        out->temperature = num;
    } else if (!strcmp(key, "top_k")) {
        out->has_top_k = true;
        out->top_k = ollama_clamp_int(num);
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
        out->num_predict = ollama_clamp_int(num);
    } else if (!strcmp(key, "stop")) {
        api_gen_options_free(out);
        out->n_stop = json_array_size(v);
        out->stop = xcalloc(out->n_stop + 1, sizeof *out->stop);
        for (size_t i = 0; i < out->n_stop; i++)
            out->stop[i] = xstrdup(json_string_value(json_array_get(v, i)));
    }
}

/* Ollama's Options.FromMap: unknown keys are logged and ignored (clients still send removed
 * options such as numa or mirostat), null values are skipped, numbers become ints by truncation,
 * a known key with the wrong type is an error. Ollama answers that with 500; we answer 400 (the
 * request is wrong, not the server), with Ollama's message. */
http_response *ollama_decode_options(const log_sink *log, json_t *opts, gen_options *out)
{
    memset(out, 0, sizeof *out);
    if (!opts)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        size_t k = 0, n = sizeof ollama_known_options / sizeof ollama_known_options[0];
        while (k < n && strcmp(ollama_known_options[k].name, key) != 0)
            k++;
        if (k == n) {
            log_printf(log, "invalid option provided: \"%s\" (ignored)", key);
            continue;
        }
        if (json_is_null(v))
            continue;
        http_response *e = ollama_option_type_error(key, ollama_known_options[k].type, v);
        if (e)
            return e;
        size_t max_stop = api_get_limits().max_stop;
        if (!strcmp(key, "stop") && json_array_size(v) > max_stop)
            return http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                       "too many stop sequences: %zu (at most %zu; AXLLAMA_MAX_STOP sets the limit)",
                                       json_array_size(v), max_stop);
        ollama_apply_option(key, v, out);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ requests */

/* The fields of /api/generate only: prompt, system, suffix, template, raw, images, context. */
static bool ollama_decode_generate_fields(ollama_decoder *d, ollama_gen_request *r)
{
    json_t *b = r->body;
    bool ok = ollama_field_string(d, b, "prompt", &r->prompt) && ollama_field_string(d, b, "system", &r->system) &&
              ollama_field_string(d, b, "suffix", &r->suffix) &&
              ollama_field_string(d, b, "template", &r->template_text) && ollama_field_bool(d, b, "raw", &r->raw) &&
              ollama_field_string_array(d, b, "images", "[]api.ImageData", &r->images);
    if (ok && ollama_field_array(d, b, "context", "[]int", &r->context) && r->context) {
        size_t i;
        json_t *e;
        json_array_foreach(r->context, i, e)
        {
            if (ok && !json_is_integer(e))
                ok = ollama_type_error(d, "context", e, "int");
        }
    }
    return ok && !d->error;
}

/* One tool call of a chat message: an object whose function (if any) is an object with a string
 * name and object arguments. */
static http_response *ollama_check_message_tool_call(ollama_decoder *md, json_t *call)
{
    json_t *fn = json_is_object(call) ? api_field(call, "function") : NULL;
    ollama_decoder fd = {.go_struct = "ChatRequest.messages.tool_calls.function"};
    const char *s;
    if (!json_is_object(call))
        return (ollama_type_error(md, "tool_calls", call, "api.ToolCall"), md->error);
    if (fn && !json_is_object(fn))
        return (ollama_type_error(md, "tool_calls.function", fn, "api.ToolCallFunction"), md->error);
    if (fn && !ollama_field_string(&fd, fn, "name", &s))
        return fd.error;
    json_t *arguments = fn ? api_field(fn, "arguments") : NULL;
    if (arguments && !json_is_object(arguments))
        return (ollama_type_error(&fd, "arguments", arguments, "api.ToolCallFunctionArguments"), fd.error);
    return NULL;
}

/* The types of every message of /api/chat (ChatRequest.messages). */
static http_response *ollama_check_messages(json_t *messages)
{
    ollama_decoder md = {.go_struct = "ChatRequest.messages"};
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        if (!json_is_object(m))
            return (ollama_type_error(&md, "messages", m, "api.Message"), md.error);
        const char *s;
        json_t *arr;
        if (!ollama_field_string(&md, m, "role", &s) || !ollama_field_string(&md, m, "content", &s) ||
            !ollama_field_string(&md, m, "thinking", &s) || !ollama_field_string(&md, m, "tool_name", &s) ||
            !ollama_field_string(&md, m, "tool_call_id", &s) ||
            !ollama_field_string_array(&md, m, "images", "[]api.ImageData", &arr) ||
            !ollama_field_array(&md, m, "tool_calls", "[]api.ToolCall", &arr) || md.error)
            return md.error;
        for (size_t k = 0; arr && k < json_array_size(arr); k++) {
            http_response *e = ollama_check_message_tool_call(&md, json_array_get(arr, k));
            if (e)
                return e;
        }
    }
    return NULL;
}

/* The types of /api/chat's tools (api.Tools): objects whose function, if any, is an object. */
static http_response *ollama_check_tools(ollama_decoder *d, json_t *tools)
{
    size_t max_tools = api_get_limits().max_tools;
    if (json_array_size(tools) > max_tools)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST,
                                   "too many tools: %zu (at most %zu; AXLLAMA_MAX_TOOLS sets the limit)",
                                   json_array_size(tools), max_tools);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (!json_is_object(t))
            return (ollama_type_error(d, "tools", t, "api.Tool"), d->error);
        json_t *fn = api_field(t, "function");
        if (fn && !json_is_object(fn))
            return (ollama_type_error(d, "tools.function", fn, "api.ToolFunction"), d->error);
    }
    return NULL;
}

http_response *ollama_decode_gen_request(ollama_gen_request *r)
{
    ollama_decoder d = {.go_struct = r->is_chat ? "ChatRequest" : "GenerateRequest"};
    json_t *b = r->body;
    r->model = "";
    r->prompt = r->system = r->suffix = r->template_text = "";
    r->stream = true;   /* native endpoints stream unless told otherwise */
    r->truncate = true; /* Ollama's default: a prompt too long for the context is cut, not refused */
    bool ignored_bool;
    bool ok = ollama_field_string(&d, b, "model", &r->model) && ollama_field_bool(&d, b, "stream", &r->stream) &&
              ollama_field_bool(&d, b, "logprobs", &r->logprobs) &&
              ollama_field_int(&d, b, "top_logprobs", &r->top_logprobs) &&
              ollama_field_bool(&d, b, "_debug_render_only", &r->debug_render_only) &&
              ollama_field_bool(&d, b, "truncate", &r->truncate) && ollama_field_bool(&d, b, "shift", &ignored_bool);
    if (ok) {
        r->options = api_field(b, "options");
        if (r->options && !json_is_object(r->options))
            ok = ollama_type_error(&d, "options", r->options, "map[string]interface {}");
    }
    r->format = api_field(b, "format");
    if (ok && !r->is_chat)
        ok = ollama_decode_generate_fields(&d, r);
    if (ok && r->is_chat)
        ok = ollama_field_array(&d, b, "messages", "[]api.Message", &r->messages) &&
             ollama_field_array(&d, b, "tools", "api.Tools", &r->tools);
    if (!ok)
        return d.error;
    http_response *e = NULL;
    if (r->is_chat && r->messages && (e = ollama_check_messages(r->messages)))
        return e;
    if (r->is_chat && r->tools && (e = ollama_check_tools(&d, r->tools)))
        return e;
    if (!ollama_decode_think(&d, b, &r->think))
        return d.error;
    char err[256] = "";
    if (!parse_keep_alive(json_object_get(b, "keep_alive"), &r->has_keep_alive, &r->keep_alive_s, err, sizeof err))
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "%s", err);
    return NULL;
}

/* The capabilities a request needs of its model: completion (always), insert, vision, tools. */
static http_response *ollama_check_capabilities(const ollama_gen_request *r, const model_manifest *m)
{
    if (!r->is_chat && r->suffix[0])
        return ollama_capability_error(m, "insert");
    if (json_array_size(r->images) > 0)
        return ollama_capability_error(m, "vision");
    if (r->is_chat) {
        if (json_array_size(r->tools) > 0 && !ollama_model_supports_tools(m))
            return ollama_capability_error(m, "tools");
        size_t i;
        json_t *msg;
        json_array_foreach(r->messages, i, msg)
        {
            if (json_array_size(api_field(msg, "images")) > 0)
                return ollama_capability_error(m, "vision");
        }
    }
    return NULL;
}

http_response *ollama_validate_gen_request(const ollama_api *api, ollama_gen_request *r)
{
    if (r->top_logprobs < 0 || r->top_logprobs > 20)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "top_logprobs must be between 0 and 20");
    if (r->is_chat && !r->model[0])
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "model is required");
    char display[600];
    if (!model_name_normalize(r->model, display, sizeof display))
        return http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '%s' not found", r->model);
    if (!r->is_chat && r->raw && (r->template_text[0] || r->system[0] || json_array_size(r->context) > 0))
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "raw mode does not support template, system, or context");
    r->manifest = model_registry_find(api->models, r->model);
    if (!r->manifest)
        return http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '%s' not found", r->model);
    http_response *e = ollama_check_capabilities(r, r->manifest);
    if (e)
        return e;
    if (r->think == 1 && !r->manifest->thinking)
        return ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "", r->model, " does not support thinking");

    /* format: instructed through the system prompt, the reply validated (api/format.h); never
     * ignored silently: unconstrained prose with 200 is the bug users report */
    char ferr[512];
    if (!format_from_ollama(r->format, &r->fmt, ferr, sizeof ferr))
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "%s", ferr);
    if (!r->is_chat && r->template_text[0])
        return http_response_error(
            OLLAMA_STATUS_BAD_REQUEST,
            "template overrides are not supported: axllama renders the model's own chat template");
    if (r->logprobs || r->top_logprobs > 0)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "logprobs are not supported");
    if (r->debug_render_only)
        return http_response_error(OLLAMA_STATUS_BAD_REQUEST, "_debug_render_only is not supported");
    return NULL;
}

/* ------------------------------------------------------------------------------------ messages */

http_response *ollama_build_messages(json_t *messages, api_message_list *l)
{
    api_message_list_init(l, messages);
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i);
        json_t *role = api_field(m, "role");
        const char *canonical = api_canonical_role(role ? json_string_value(role) : "", false);
        if (!canonical) {
            strbuf suffix = {0};
            sb_printf(&suffix, " in message %zu: must be one of system, user, assistant, tool", i);
            http_response *resp = ollama_quoted_error(OLLAMA_STATUS_BAD_REQUEST, "invalid role ",
                                                      role ? json_string_value(role) : "", suffix.data);
            sb_free(&suffix);
            return resp;
        }
        chat_message *cm = api_message_list_add(l, canonical);
        json_t *content = api_field(m, "content"), *thinking = api_field(m, "thinking");
        cm->content = content ? json_string_value(content) : "";
        cm->reasoning_content = thinking ? json_string_value(thinking) : NULL;
        json_t *calls = api_field(m, "tool_calls");
        for (size_t k = 0; k < json_array_size(calls); k++) {
            json_t *fn = api_field(json_array_get(calls, k), "function");
            json_t *name = fn ? api_field(fn, "name") : NULL;
            api_message_add_tool_call(l, cm, name ? json_string_value(name) : "",
                                      fn ? api_field(fn, "arguments") : NULL);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ show */

http_response *ollama_decode_show_request(const ollama_api *api, const http_request *req, const model_manifest **out)
{
    *out = NULL;
    json_t *body;
    http_response *resp = ollama_decode_body(req, "ShowRequest", &body);
    if (resp)
        return resp;
    ollama_decoder d = {.go_struct = "ShowRequest"};
    const char *model = "", *name = "", *ignored = "";
    bool verbose = false; /* no tensor listing: nothing to add */
    if (!ollama_field_string(&d, body, "model", &model) || !ollama_field_string(&d, body, "name", &name) ||
        !ollama_field_string(&d, body, "system", &ignored) || !ollama_field_string(&d, body, "template", &ignored) ||
        !ollama_field_bool(&d, body, "verbose", &verbose)) {
        json_decref(body);
        return d.error;
    }
    if (!model[0])
        model = name;
    char display[600];
    if (!model[0])
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "model is required");
    else if (!model_name_normalize(model, display, sizeof display))
        resp = http_response_error(OLLAMA_STATUS_BAD_REQUEST, "invalid model name");
    else if (!(*out = model_registry_find(api->models, model)))
        resp = http_response_error(OLLAMA_STATUS_NOT_FOUND, "model '%s' not found", display);
    json_decref(body);
    return resp;
}
