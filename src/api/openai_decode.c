/* openai_decode: reading /v1 requests (see openai_internal.h): the body, typed fields with OpenAI's
 * "invalid type for '<field>'" errors naming the field in `param`, the sampling fields both
 * endpoints share, reasoning effort, tools, response_format, the fields each endpoint refuses, the
 * model check, and the messages (string, null or text content parts; developer = system; an
 * assistant's reasoning and tool calls) converted for the engine. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_common.h"
#include "api/openai_internal.h"
#include "api/tojson.h"
#include "common/buf.h"
#include "common/json_type.h"
#include "common/log.h"

http_response *openai_decode_body(const http_request *req, json_t **out)
{
    *out = NULL;
    api_body_status status;
    json_error_t jerr;
    json_t *v = api_read_body(req, JSON_DECODE_ANY, &status, &jerr);
    if (status == API_BODY_BLANK)
        return openai_error(OPENAI_STATUS_BAD_REQUEST, "missing request body");
    if (!v)
        return openai_error(OPENAI_STATUS_BAD_REQUEST, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                            jerr.column);
    if (!json_is_object(v)) {
        http_response *r = openai_error(OPENAI_STATUS_BAD_REQUEST, "the request body must be a JSON object, not %s",
                                        json_type_name(v, false));
        json_decref(v);
        return r;
    }
    *out = v;
    return NULL;
}

void openai_request_free(openai_request *r)
{
    for (size_t i = 0; i < r->n_tools; i++)
        free(r->tools_json[i]);
    free(r->tools_json);
    format_spec_free(&r->format);
    api_gen_options_free(&r->opts);
    json_decref(r->body);
}

/* ------------------------------------------------------------------------------------ fields */

http_response *openai_field_bool(json_t *b, const char *key, bool *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    if (!json_is_boolean(v))
        return openai_bad_param(key, "invalid type for '%s': expected a boolean, got %s", key,
                                json_type_name(v, false));
    *out = json_is_true(v);
    return NULL;
}

http_response *openai_field_number(json_t *b, const char *key, bool *has, double *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    if (!json_is_number(v))
        return openai_bad_param(key, "invalid type for '%s': expected a number, got %s", key, json_type_name(v, false));
    *has = true;
    *out = json_number_value(v);
    return NULL;
}

/* An integer (a number with no fraction, as JavaScript clients may send 5.0). */
http_response *openai_field_integer(json_t *b, const char *key, bool *has, long long *out)
{
    json_t *v = api_field(b, key);
    if (!v)
        return NULL;
    double d = json_is_number(v) ? json_number_value(v) : 0.5;
    if (!json_is_number(v) || d != floor(d) || d > (double)INT_MAX || d < (double)INT_MIN)
        return openai_bad_param(key, "invalid type for '%s': expected an integer, got %s", key,
                                json_type_name(v, false));
    *has = true;
    *out = (long long)d;
    return NULL;
}

/* stop: a string or an array of strings (empty strings are dropped). */
static http_response *openai_decode_stop(json_t *b, gen_options *o)
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
        return openai_bad_param("stop", "invalid type for 'stop' field: %s", json_type_name(v, false));
    size_t max_stop = api_get_limits().max_stop;
    if (json_array_size(v) > max_stop)
        return openai_bad_param("stop", "too many stop sequences: %zu (at most %zu; AXLLAMA_MAX_STOP sets the limit)",
                                json_array_size(v), max_stop);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return openai_bad_param("stop", "invalid type for 'stop' field: %s", json_type_name(e, false));
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
http_response *openai_decode_reasoning(json_t *b, int *think)
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
            return openai_bad_param("reasoning", "invalid type for 'reasoning': expected an object, got %s",
                                    json_type_name(r, false));
        }
    }
    if (!v)
        return NULL;
    if (!json_is_string(v))
        return openai_bad_param(param, "invalid type for '%s': expected a string, got %s", param,
                                json_type_name(v, false));
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
    return openai_bad_param(param,
                            "invalid reasoning value: '%s' (must be \"none\", \"minimal\", \"low\", \"medium\", "
                            "\"high\", \"max\", \"xhigh\" or \"ultra\")",
                            s);
}

/* model, stream and stream_options. */
http_response *openai_decode_model_and_stream(openai_request *r)
{
    json_t *b = r->body;
    json_t *model = api_field(b, "model");
    if (!model)
        return openai_bad_param("model", "model is required");
    if (!json_is_string(model))
        return openai_bad_param("model", "invalid type for 'model': expected a string, got %s",
                                json_type_name(model, false));
    r->model = json_string_value(model);
    if (!r->model[0])
        return openai_bad_param("model", "model is required");
    http_response *e;
    if ((e = openai_field_bool(b, "stream", &r->stream)))
        return e;
    json_t *so = api_field(b, "stream_options");
    if (so && !json_is_object(so))
        return openai_bad_param("stream_options", "invalid type for 'stream_options': expected an object, got %s",
                                json_type_name(so, false));
    if (so && (e = openai_field_bool(so, "include_usage", &r->include_usage)))
        return e;
    return NULL;
}

/* max_tokens / max_completion_tokens (the newer name wins), temperature, top_p. */
http_response *openai_decode_sampling(openai_request *r)
{
    json_t *b = r->body;
    http_response *e;
    bool has = false, has_mct = false;
    long long max_tokens = 0, mct = 0;
    if ((e = openai_field_integer(b, "max_tokens", &has, &max_tokens)) ||
        (e = openai_field_integer(b, "max_completion_tokens", &has_mct, &mct)))
        return e;
    if (has_mct) {
        has = true;
        max_tokens = mct;
    }
    const char *max_name = has_mct ? "max_completion_tokens" : "max_tokens";
    if (has && max_tokens < 1)
        return openai_bad_param(max_name, "%s must be at least 1, got %lld", max_name, max_tokens);
    if (has) {
        r->opts.has_num_predict = true;
        r->opts.num_predict = (int)max_tokens;
    }

    /* Only what the request sets (Ollama forces 1.0 for both when absent, which would override
     * the manifest's tuned defaults). top_p 1 (or 0, as Ollama reads it) means no nucleus cut:
     * the runtime refuses top-p outside (0, 1), so it is then left to the model's defaults. */
    double t = 1.0, p = 1.0;
    bool has_t = false, has_p = false;
    if ((e = openai_field_number(b, "temperature", &has_t, &t)) || (e = openai_field_number(b, "top_p", &has_p, &p)))
        return e;
    if (t < 0 || t > 2)
        return openai_bad_param("temperature", "temperature must be between 0 and 2, got %g", t);
    if (p < 0 || p > 1)
        return openai_bad_param("top_p", "top_p must be between 0 and 1, got %g", p);
    r->opts.has_temperature = has_t;
    r->opts.temperature = t;
    r->opts.has_top_p = has_p && p > 0 && p < 1;
    r->opts.top_p = p;
    return NULL;
}

/* Fields both endpoints share: model, stream, stream_options, max_tokens, temperature, top_p,
 * stop, n, seed and the penalties (accepted, no effect on the NPU runtime), reasoning effort. */
static http_response *openai_decode_common(openai_request *r)
{
    json_t *b = r->body;
    http_response *e;
    if ((e = openai_decode_model_and_stream(r)) || (e = openai_decode_sampling(r)) ||
        (e = openai_decode_stop(b, &r->opts)))
        return e;
    long long n = 1, seed = 0;
    bool has_n = false, has_seed = false, ignored = false;
    double penalty = 0;
    if ((e = openai_field_integer(b, "n", &has_n, &n)))
        return e;
    if (n != 1)
        return openai_bad_param("n", "n must be 1: axllama returns one choice per request");
    if ((e = openai_field_integer(b, "seed", &has_seed, &seed)) ||
        (e = openai_field_number(b, "frequency_penalty", &ignored, &penalty)) ||
        (e = openai_field_number(b, "presence_penalty", &ignored, &penalty)))
        return e;
    /* seed and the penalties: accepted, no effect (docs/openai.md) */
    return openai_decode_reasoning(b, &r->think);
}

http_response *openai_check_model(const openai_api *api, openai_request *r)
{
    char display[600];
    if (!model_name_normalize(r->model, display, sizeof display))
        return openai_error(OPENAI_STATUS_NOT_FOUND, "model '%s' not found", r->model);
    r->manifest = model_registry_find(api->models, r->model);
    if (!r->manifest)
        return openai_error(OPENAI_STATUS_NOT_FOUND, "model '%s' not found", r->model);
    if (r->think == 1 && !r->manifest->thinking)
        return openai_bad_param("reasoning_effort", "\"%s\" does not support thinking", r->model);
    return NULL;
}

/* response_format -> a format spec (format module: an instruction in the system prompt, then
 * the reply is validated). */
static http_response *openai_decode_response_format(json_t *b, format_spec *out)
{
    char err[512] = "";
    if (!format_from_openai(api_field(b, "response_format"), out, err, sizeof err))
        return openai_bad_param("response_format", "%s", err);
    return NULL;
}

/* The tools list of either endpoint: an array of at most AXLLAMA_MAX_TOOLS; else the 400. */
http_response *openai_check_tools_list(json_t *tools)
{
    if (!json_is_array(tools))
        return openai_bad_param("tools", "invalid type for 'tools': expected an array, got %s",
                                json_type_name(tools, false));
    size_t max_tools = api_get_limits().max_tools;
    if (json_array_size(tools) > max_tools)
        return openai_bad_param("tools", "too many tools: %zu (at most %zu; AXLLAMA_MAX_TOOLS sets the limit)",
                                json_array_size(tools), max_tools);
    return NULL;
}

/* tool_choice "none" drops the tools (true); "auto" and absent keep them; other values keep them
 * too, with a log line: they are not enforced (as in Ollama). */
bool openai_tool_choice_drops_tools(const openai_api *api, json_t *choice)
{
    if (choice && json_is_string(choice) && !strcmp(json_string_value(choice), "none"))
        return true;
    if (choice && !(json_is_string(choice) && !strcmp(json_string_value(choice), "auto"))) {
        log_sink log = {.fn = api->log, .user = api->log_user};
        log_printf(&log, "openai: tool_choice other than \"auto\" / \"none\" is not enforced (the model chooses)");
    }
    return false;
}

/* tools: [{"type":"function","function":{"name",...}}], each serialised as the template's
 * `tool | tojson` prints it. tool_choice "none" drops them; other values are accepted and not
 * enforced (as in Ollama). */
static http_response *openai_decode_tools(const openai_api *api, json_t *b, openai_request *r)
{
    json_t *tools = api_field(b, "tools"), *choice = api_field(b, "tool_choice");
    if (!tools)
        return NULL;
    http_response *bad = openai_check_tools_list(tools);
    if (bad)
        return bad;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", i);
        json_t *type = json_is_object(t) ? api_field(t, "type") : NULL;
        json_t *fn = json_is_object(t) ? api_field(t, "function") : NULL;
        if (!json_is_object(t) || (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function"))))
            return openai_bad_param(param,
                                    "invalid tool in '%s': only {\"type\":\"function\",\"function\":{...}} tools are "
                                    "supported",
                                    param);
        if (!json_is_object(fn) || !json_is_string(api_field(fn, "name")) || !json_string_length(api_field(fn, "name")))
            return openai_bad_param(param, "invalid tool in '%s': function.name is required", param);
    }
    if (openai_tool_choice_drops_tools(api, choice))
        return NULL;
    r->n_tools = json_array_size(tools);
    r->tools_json = xcalloc(r->n_tools + 1, sizeof *r->tools_json);
    json_array_foreach(tools, i, t)
    {
        r->tools_json[i] = tojson_dumps(t);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ endpoints */

http_response *openai_decode_chat_request(const openai_api *api, openai_request *r)
{
    json_t *b = r->body;
    bool logprobs = false, has = false;
    long long top_logprobs = 0;
    http_response *e;
    if ((e = openai_decode_common(r)) || (e = openai_field_bool(b, "logprobs", &logprobs)) ||
        (e = openai_field_integer(b, "top_logprobs", &has, &top_logprobs)) ||
        (e = openai_decode_response_format(b, &r->format)) || (e = openai_decode_tools(api, b, r)))
        return e;
    r->messages = api_field(b, "messages");
    if (!r->messages)
        return openai_bad_param("messages", "messages is required");
    if (!json_is_array(r->messages))
        return openai_bad_param("messages", "invalid type for 'messages': expected an array, got %s",
                                json_type_name(r->messages, false));
    if (json_array_size(r->messages) == 0)
        return openai_bad_param("messages", "[] is too short - 'messages'");
    if (logprobs || top_logprobs > 0)
        return openai_bad_param("logprobs", "logprobs are not supported");
    return NULL;
}

/* prompt: a string, or an array of exactly one string. */
static http_response *openai_decode_prompt(openai_request *r)
{
    json_t *prompt = api_field(r->body, "prompt");
    if (prompt && json_is_array(prompt) && json_array_size(prompt) == 1 && json_is_string(json_array_get(prompt, 0)))
        prompt = json_array_get(prompt, 0);
    if (!prompt)
        return openai_bad_param("prompt", "prompt is required");
    if (json_is_array(prompt))
        return openai_bad_param("prompt", "prompt must be a string (arrays of several prompts or of token ids are not "
                                          "supported)");
    if (!json_is_string(prompt))
        return openai_bad_param("prompt", "invalid type for 'prompt': expected a string, got %s",
                                json_type_name(prompt, false));
    r->prompt = json_string_value(prompt);
    return NULL;
}

http_response *openai_decode_completion_request(openai_request *r)
{
    json_t *b = r->body;
    http_response *e;
    if ((e = openai_decode_common(r)) || (e = openai_decode_prompt(r)))
        return e;
    json_t *suffix = api_field(b, "suffix"), *echo = api_field(b, "echo"), *best_of = api_field(b, "best_of"),
           *logprobs = api_field(b, "logprobs");
    if (suffix && (!json_is_string(suffix) || json_string_length(suffix) > 0))
        return openai_bad_param("suffix", "suffix is not supported: the models have no fill-in-the-middle template");
    if (echo && !json_is_false(echo))
        return openai_bad_param("echo", "echo is not supported");
    if (best_of && !(json_is_integer(best_of) && json_integer_value(best_of) == 1))
        return openai_bad_param("best_of", "best_of must be 1: axllama returns one choice per request");
    if (logprobs && !(json_is_integer(logprobs) && json_integer_value(logprobs) == 0) && !json_is_false(logprobs))
        return openai_bad_param("logprobs", "logprobs are not supported");
    return NULL;
}

/* ------------------------------------------------------------------------------------ messages */

/* content: a string, null, or an array of parts; text parts are joined with "\n". */
static http_response *openai_message_content(const openai_request *r, api_message_list *l, json_t *m, size_t i,
                                             const char **out)
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
        return openai_bad_param(param, "invalid type for '%s': expected a string or an array of content parts, got %s",
                                param, json_type_name(c, false));
    strbuf text = {0};
    sb_puts(&text, "");
    size_t k;
    json_t *part;
    http_response *e = NULL;
    json_array_foreach(c, k, part)
    {
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", i, k);
        json_t *type = json_is_object(part) ? api_field(part, "type") : NULL;
        const char *t = json_is_string(type) ? json_string_value(type) : NULL;
        json_t *s = t && (!strcmp(t, "text") || !strcmp(t, "refusal")) ? api_field(part, t) : NULL;
        if (!t)
            e = openai_bad_param(param, "invalid content part in '%s': expected an object with a string 'type'", param);
        else if (!strcmp(t, "image_url") || !strcmp(t, "input_image") || !strcmp(t, "image"))
            e = openai_bad_param(param, "image input is not supported: model '%s' does not support vision (%s)",
                                 r->model, param);
        else if (strcmp(t, "text") != 0 && strcmp(t, "refusal") != 0)
            e = openai_bad_param(param, "unsupported content part type '%s' in '%s': only \"text\" parts are supported",
                                 t, param);
        else if (!json_is_string(s))
            e = openai_bad_param(param, "invalid content part in '%s': '%s' must be a string", param, t);
        if (e) {
            sb_free(&text);
            return e;
        }
        if (k > 0)
            sb_putc(&text, '\n');
        sb_puts(&text, json_string_value(s));
    }
    *out = api_message_list_keep(l, sb_steal(&text));
    return NULL;
}

/* An assistant message's tool_calls (function.arguments a JSON string, or an object). Their types
 * (an array of objects) were checked with the other fields' (openai_message_field_types). */
static http_response *openai_message_tool_calls(api_message_list *l, chat_message *cm, json_t *m, size_t i)
{
    json_t *calls = api_field(m, "tool_calls");
    char param[64];
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call)
    {
        snprintf(param, sizeof param, "messages[%zu].tool_calls[%zu]", i, k);
        json_t *fn = api_field(call, "function");
        json_t *name = fn ? api_field(fn, "name") : NULL;
        if (!json_is_object(fn) || !json_is_string(name))
            return openai_bad_param(param,
                                    "invalid tool call in '%s': expected {\"type\":\"function\",\"function\":{\"name\","
                                    "\"arguments\"}}",
                                    param);
        json_t *args = api_field(fn, "arguments"), *parsed = NULL;
        if (json_is_string(args)) {
            const char *text = json_string_value(args);
            parsed = *text ? api_load_json_text(text, json_string_length(args), JSON_DECODE_ANY, NULL) : json_object();
            if (!parsed)
                return openai_bad_param(param, "invalid tool call arguments in '%s': not valid JSON", param);
        } else if (args) {
            parsed = json_incref(args);
        } else {
            parsed = json_object();
        }
        api_message_add_tool_call(l, cm, json_string_value(name), parsed);
        json_decref(parsed);
    }
    return NULL;
}

/* An assistant message's reasoning (or reasoning_content) and tool calls. */
static http_response *openai_message_assistant_fields(api_message_list *l, chat_message *cm, json_t *m, size_t i)
{
    json_t *reasoning = api_field(m, "reasoning");
    if (!reasoning)
        reasoning = api_field(m, "reasoning_content");
    if (reasoning && !json_is_string(reasoning)) {
        char param[64];
        snprintf(param, sizeof param, "messages[%zu].reasoning", i);
        return openai_bad_param(param, "invalid type for '%s': expected a string, got %s", param,
                                json_type_name(reasoning, false));
    }
    cm->reasoning_content = reasoning ? json_string_value(reasoning) : NULL;
    return openai_message_tool_calls(l, cm, m, i);
}

/* The types of a message's fields that every role may carry (OpenAI answers 400 to a wrong one):
 * name and tool_call_id strings, tool_calls an array of objects. */
static http_response *openai_message_field_types(json_t *m, size_t i)
{
    static const char *const string_fields[] = {"name", "tool_call_id"};
    char param[64];
    for (size_t k = 0; k < sizeof string_fields / sizeof string_fields[0]; k++) {
        json_t *v = api_field(m, string_fields[k]);
        snprintf(param, sizeof param, "messages[%zu].%s", i, string_fields[k]);
        if (v && !json_is_string(v))
            return openai_bad_param(param, "invalid type for '%s': expected a string, got %s", param,
                                    json_type_name(v, false));
    }
    json_t *calls = api_field(m, "tool_calls");
    snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
    if (calls && !json_is_array(calls))
        return openai_bad_param(param, "invalid type for '%s': expected an array, got %s", param,
                                json_type_name(calls, false));
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call)
    {
        snprintf(param, sizeof param, "messages[%zu].tool_calls[%zu]", i, k);
        if (!json_is_object(call))
            return openai_bad_param(param, "invalid type for '%s': expected an object, got %s", param,
                                    json_type_name(call, false));
    }
    return NULL;
}

http_response *openai_build_messages(const openai_request *r, api_message_list *l)
{
    api_message_list_init(l, r->messages);
    for (size_t i = 0; i < json_array_size(r->messages); i++) {
        json_t *m = json_array_get(r->messages, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return openai_bad_param(param, "invalid type for '%s': expected an object, got %s", param,
                                    json_type_name(m, false));
        json_t *role = api_field(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role))
            return openai_bad_param(param, "'%s' is required (system, developer, user, assistant or tool)", param);
        const char *canonical = api_canonical_role(json_string_value(role), true);
        if (!canonical)
            return openai_bad_param(param,
                                    "invalid role '%s' in '%s': must be one of system, developer, user, assistant, "
                                    "tool",
                                    json_string_value(role), param);
        http_response *e = openai_message_field_types(m, i);
        if (e)
            return e;
        chat_message *cm = api_message_list_add(l, canonical);
        e = openai_message_content(r, l, m, i, &cm->content);
        if (!e && !strcmp(canonical, "assistant"))
            e = openai_message_assistant_fields(l, cm, m, i);
        if (e)
            return e;
    }
    return NULL;
}
