/* openai_responses: POST /v1/responses, OpenAI's Responses API as Ollama's OpenAI layer serves it for
 * a local model: the request's fields (model, stream, instructions, max_output_tokens, temperature,
 * top_p, reasoning, text.format, tools, tool_choice, truncation), its input (a string, or an array
 * of items: messages with text parts, function_call, function_call_output, reasoning) converted to
 * the engine's conversation, and the job run through the shared pipeline with the Responses dialect
 * (openai_responses_reply.c). Stateless: nothing is stored (store is always false), so
 * previous_response_id, conversation, background and prompt templates are refused with a 400 that
 * says to send the whole conversation as input. Errors are OpenAI error objects naming the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_common.h"
#include "api/openai_internal.h"
#include "api/tojson.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json_type.h"
#include "common/log.h"
#include "common/random.h"

/* One decoded request: borrowed strings point into r.body. */
typedef struct {
    openai_request r; /* model, stream, think, opts, tools_json, format (text.format) */
    const char *instructions;
    json_t *input;
    bool no_truncate;    /* truncation "disabled" */
    json_t *text_format; /* the request's text.format object (echoed), or NULL */
} responses_request;

/* ------------------------------------------------------------------------------------ fields */

/* The fields that need state this server does not keep, or features it lacks. */
static http_response *responses_refuse_stateful(json_t *b)
{
    static const char stateless[] = "axllama stores no responses (store is always false): send the whole "
                                    "conversation as input";
    if (api_field(b, "previous_response_id"))
        return openai_bad_param("previous_response_id", "previous_response_id is not supported: %s", stateless);
    if (api_field(b, "conversation"))
        return openai_bad_param("conversation", "conversation is not supported: %s", stateless);
    bool background = false;
    http_response *e = openai_field_bool(b, "background", &background);
    if (e)
        return e;
    if (background)
        return openai_bad_param("background", "background responses are not supported: %s", stateless);
    if (api_field(b, "prompt"))
        return openai_bad_param("prompt", "prompt templates are not supported: send instructions and input instead");
    bool store = false;
    return openai_field_bool(b, "store", &store); /* accepted: nothing is stored either way */
}

/* text.format: {"type":"text"} (none), {"type":"json_object"}, {"type":"json_schema","schema":{…}}. */
static http_response *responses_decode_text_format(responses_request *q)
{
    json_t *text = api_field(q->r.body, "text");
    if (!text)
        return NULL;
    if (!json_is_object(text))
        return openai_bad_param("text", "invalid type for 'text': expected an object, got %s",
                                json_type_name(text, false));
    json_t *fmt = api_field(text, "format");
    if (!fmt)
        return NULL;
    json_t *type = json_is_object(fmt) ? api_field(fmt, "type") : NULL;
    if (!json_is_string(type))
        return openai_bad_param("text.format", "text.format must be an object with a string \"type\"");
    const char *t = json_string_value(type);
    char err[512] = "";
    q->text_format = fmt;
    if (!strcmp(t, "text"))
        return NULL;
    if (!strcmp(t, "json_object")) {
        q->r.format.kind = FORMAT_JSON;
        return NULL;
    }
    if (strcmp(t, "json_schema") != 0)
        return openai_bad_param("text.format",
                                "invalid text.format type: \"%s\" (must be \"text\", \"json_object\" or "
                                "\"json_schema\")",
                                t);
    json_t *schema = api_field(fmt, "schema");
    if (!json_is_object(schema))
        return openai_bad_param("text.format", "text.format json_schema must have a \"schema\" object");
    if (!format_from_ollama(schema, &q->r.format, err, sizeof err))
        return openai_bad_param("text.format", "%s", err);
    return NULL;
}

/* tools: [{"type":"function","name","description","parameters","strict"}], each converted to the
 * chat form the template renders ({"type":"function","function":{name, description, parameters}}).
 * tool_choice "none" drops them; other values are accepted and not enforced (as in Ollama). */
static http_response *responses_decode_tools(const openai_api *api, responses_request *q)
{
    json_t *tools = api_field(q->r.body, "tools"), *choice = api_field(q->r.body, "tool_choice");
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
        json_t *name = json_is_object(t) ? api_field(t, "name") : NULL;
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
            return openai_bad_param(param,
                                    "unsupported tool in '%s': only function tools ({\"type\":\"function\",\"name\","
                                    "...}) are supported",
                                    param);
        if (!json_is_string(name) || !json_string_length(name))
            return openai_bad_param(param, "invalid tool in '%s': name is required", param);
    }
    if (openai_tool_choice_drops_tools(api, choice))
        return NULL;
    q->r.n_tools = json_array_size(tools);
    q->r.tools_json = xcalloc(q->r.n_tools + 1, sizeof *q->r.tools_json);
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object();
        json_object_set(fn, "name", api_field(t, "name"));
        if (api_field(t, "description"))
            json_object_set(fn, "description", api_field(t, "description"));
        if (api_field(t, "parameters"))
            json_object_set(fn, "parameters", api_field(t, "parameters"));
        json_t *chat_form = json_pack("{s:s, s:o}", "type", "function", "function", fn);
        q->r.tools_json[i] = tojson_dumps(chat_form);
        json_decref(chat_form);
    }
    return NULL;
}

/* max_output_tokens (>= 1) -> num_predict; truncation "auto" / "disabled". */
static http_response *responses_decode_limits(responses_request *q)
{
    bool has = false;
    long long max = 0;
    http_response *e = openai_field_integer(q->r.body, "max_output_tokens", &has, &max);
    if (e)
        return e;
    if (has && max < 1)
        return openai_bad_param("max_output_tokens", "max_output_tokens must be at least 1, got %lld", max);
    if (has) {
        q->r.opts.has_num_predict = true;
        q->r.opts.num_predict = (int)max;
    }
    json_t *tr = api_field(q->r.body, "truncation");
    if (tr &&
        !(json_is_string(tr) && (!strcmp(json_string_value(tr), "auto") || !strcmp(json_string_value(tr), "disabled"))))
        return openai_bad_param("truncation", "invalid truncation: must be \"auto\" or \"disabled\"");
    q->no_truncate = tr && !strcmp(json_string_value(tr), "disabled");
    return NULL;
}

static http_response *responses_decode(const openai_api *api, responses_request *q)
{
    json_t *b = q->r.body;
    http_response *e;
    if ((e = responses_refuse_stateful(b)) || (e = openai_decode_model_and_stream(&q->r)) ||
        (e = openai_decode_sampling(&q->r)) || (e = responses_decode_limits(q)) ||
        (e = openai_decode_reasoning(b, &q->r.think)) || (e = responses_decode_text_format(q)) ||
        (e = responses_decode_tools(api, q)))
        return e;
    json_t *instructions = api_field(b, "instructions");
    if (instructions && !json_is_string(instructions))
        return openai_bad_param("instructions", "invalid type for 'instructions': expected a string, got %s",
                                json_type_name(instructions, false));
    q->instructions = instructions ? json_string_value(instructions) : NULL;
    q->input = api_field(b, "input");
    if (!q->input)
        return openai_bad_param("input", "input is required");
    if (!json_is_string(q->input) && !json_is_array(q->input))
        return openai_bad_param("input", "invalid type for 'input': expected a string or an array of items, got %s",
                                json_type_name(q->input, false));
    if ((json_is_string(q->input) && !json_string_length(q->input)) ||
        (json_is_array(q->input) && !json_array_size(q->input)))
        return openai_bad_param("input", "input must not be empty");
    return NULL;
}

/* ------------------------------------------------------------------------------------ input */

/* Text parts joined with "\n" (input_text, output_text, refusal, summary_text, reasoning_text); a
 * string is itself. Images, files and audio are refused. */
static http_response *responses_join_text(const openai_request *r, api_message_list *l, json_t *content,
                                          const char *param, const char **out)
{
    *out = "";
    if (!content)
        return NULL;
    if (json_is_string(content)) {
        *out = json_string_value(content);
        return NULL;
    }
    if (!json_is_array(content))
        return openai_bad_param(param, "invalid type for '%s': expected a string or an array of content parts, got %s",
                                param, json_type_name(content, false));
    strbuf text = {0};
    sb_puts(&text, "");
    size_t k;
    json_t *part;
    json_array_foreach(content, k, part)
    {
        char pp[96];
        snprintf(pp, sizeof pp, "%s[%zu]", param, k);
        json_t *type = json_is_object(part) ? api_field(part, "type") : NULL;
        const char *t = json_is_string(type) ? json_string_value(type) : NULL;
        const char *key = !t                      ? NULL
                          : !strcmp(t, "refusal") ? "refusal"
                          : !strcmp(t, "input_text") || !strcmp(t, "output_text") || !strcmp(t, "summary_text") ||
                                  !strcmp(t, "reasoning_text")
                              ? "text"
                              : NULL;
        json_t *s = key ? api_field(part, key) : NULL;
        http_response *e = NULL;
        if (!t)
            e = openai_bad_param(pp, "invalid content part in '%s': expected an object with a string 'type'", pp);
        else if (!strcmp(t, "input_image"))
            e = openai_bad_param(pp, "image input is not supported: model '%s' does not support vision (%s)", r->model,
                                 pp);
        else if (!strcmp(t, "input_file") || !strcmp(t, "input_audio"))
            e = openai_bad_param(pp, "%s parts are not supported (%s): send the text itself", t, pp);
        else if (!key)
            e = openai_bad_param(pp, "unsupported content part type '%s' in '%s': only text parts are supported", t,
                                 pp);
        else if (!json_is_string(s))
            e = openai_bad_param(pp, "invalid content part in '%s': '%s' must be a string", pp, key);
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

/* A reasoning item's text: its reasoning_text content, else its summary (NULL when empty). */
static http_response *responses_reasoning_text(const openai_request *r, api_message_list *l, json_t *item,
                                               const char *param, const char **out)
{
    char pp[80];
    json_t *content = api_field(item, "content");
    const char *key = content && json_array_size(content) ? "content" : "summary";
    snprintf(pp, sizeof pp, "%s.%s", param, key);
    http_response *e = responses_join_text(r, l, api_field(item, key), pp, out);
    if (!e && !**out)
        *out = NULL;
    return e;
}

/* A function_call item: an assistant tool call (added to the assistant message just before it, as
 * Ollama does with parallel calls). */
static http_response *responses_function_call(api_message_list *l, json_t *item, const char *param,
                                              const char **pending_reasoning)
{
    json_t *name = api_field(item, "name"), *args = api_field(item, "arguments");
    if (!json_is_string(name) || !json_string_length(name))
        return openai_bad_param(param, "invalid function_call in '%s': name is required", param);
    if (args && !json_is_string(args))
        return openai_bad_param(param, "invalid function_call in '%s': arguments must be a JSON string", param);
    const char *text = args ? json_string_value(args) : "";
    json_t *parsed = *text ? json_loads(text, JSON_DECODE_ANY, NULL) : json_object();
    if (!parsed)
        return openai_bad_param(param, "invalid function_call arguments in '%s': not valid JSON", param);
    chat_message *last = l->n ? &l->msgs[l->n - 1] : NULL;
    if (!last || strcmp(last->role, "assistant") != 0) {
        last = api_message_list_add(l, "assistant");
        last->content = "";
    }
    if (*pending_reasoning && !last->reasoning_content)
        last->reasoning_content = *pending_reasoning;
    *pending_reasoning = NULL;
    api_message_add_tool_call(l, last, json_string_value(name), parsed);
    json_decref(parsed);
    return NULL;
}

/* One input item into l (pending_reasoning: a reasoning item's text for the next assistant turn). */
static http_response *responses_input_item(const openai_request *r, api_message_list *l, json_t *item, size_t i,
                                           const char **pending_reasoning)
{
    char param[48];
    snprintf(param, sizeof param, "input[%zu]", i);
    if (!json_is_object(item))
        return openai_bad_param(param, "invalid type for '%s': expected an object, got %s", param,
                                json_type_name(item, false));
    json_t *type = api_field(item, "type"), *role = api_field(item, "role");
    const char *t = json_is_string(type) ? json_string_value(type) : role ? "message" : NULL;
    if (!t)
        return openai_bad_param(param,
                                "'%s' needs a string 'type' (message, function_call, function_call_output, "
                                "reasoning)",
                                param);
    char pp[80];
    if (!strcmp(t, "message")) {
        const char *canonical = json_is_string(role) ? api_canonical_role(json_string_value(role), true) : NULL;
        snprintf(pp, sizeof pp, "%s.role", param);
        if (!canonical || !strcmp(canonical, "tool"))
            return openai_bad_param(pp, "invalid role in '%s': must be one of user, system, developer, assistant", pp);
        snprintf(pp, sizeof pp, "%s.content", param);
        const char *content;
        http_response *e = responses_join_text(r, l, api_field(item, "content"), pp, &content);
        if (e)
            return e;
        chat_message *cm = api_message_list_add(l, canonical);
        cm->content = content;
        if (!strcmp(canonical, "assistant")) {
            cm->reasoning_content = *pending_reasoning;
            *pending_reasoning = NULL;
        }
        return NULL;
    }
    if (!strcmp(t, "function_call"))
        return responses_function_call(l, item, param, pending_reasoning);
    if (!strcmp(t, "function_call_output")) {
        snprintf(pp, sizeof pp, "%s.output", param);
        const char *output;
        http_response *e = responses_join_text(r, l, api_field(item, "output"), pp, &output);
        if (e)
            return e;
        api_message_list_add(l, "tool")->content = output;
        return NULL;
    }
    if (!strcmp(t, "reasoning"))
        return responses_reasoning_text(r, l, item, param, pending_reasoning);
    if (!strcmp(t, "item_reference"))
        return openai_bad_param(param, "item_reference is not supported: axllama stores no items, send the items "
                                       "themselves");
    return openai_bad_param(param,
                            "unsupported input item type '%s' in '%s': message, function_call, function_call_output "
                            "and reasoning items are supported",
                            t, param);
}

/* instructions (a system message first), then the input as messages. */
static http_response *responses_build_messages(const responses_request *q, api_message_list *l)
{
    size_t n = json_is_array(q->input) ? json_array_size(q->input) : 1;
    /* per item at most one message, one tool call and two kept strings */
    api_message_list_init_sized(l, n + 1, n, 2 * n);
    if (q->instructions && *q->instructions)
        api_message_list_add(l, "system")->content = q->instructions;
    if (json_is_string(q->input)) {
        api_message_list_add(l, "user")->content = json_string_value(q->input);
        return NULL;
    }
    const char *pending_reasoning = NULL; /* a reasoning item waits for its assistant turn */
    for (size_t i = 0; i < n; i++) {
        http_response *e = responses_input_item(&q->r, l, json_array_get(q->input, i), i, &pending_reasoning);
        if (e)
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ the answer */

/* The response object's fixed fields: the id, creation time, model as sent and the request's
 * settings echoed (what OpenAI's SDKs and the Agents SDK read back). */
static json_t *responses_base(const responses_request *q)
{
    json_t *b = q->r.body;
    char rnd[25], id[32];
    random_alnum(rnd, 24);
    snprintf(id, sizeof id, "resp_%s", rnd);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "object", json_string("response"));
    json_object_set_new(o, "created_at", json_integer((json_int_t)clock_wall()));
    json_object_set_new(o, "status", json_string("in_progress"));
    json_object_set_new(o, "background", json_false());
    json_object_set_new(o, "error", json_null());
    json_object_set_new(o, "incomplete_details", json_null());
    json_object_set_new(o, "instructions", q->instructions ? json_string(q->instructions) : json_null());
    json_t *max = api_field(b, "max_output_tokens");
    json_object_set_new(o, "max_output_tokens", max ? json_integer(q->r.opts.num_predict) : json_null());
    json_object_set_new(o, "max_tool_calls", json_null());
    json_object_set_new(o, "model", http_json_string(q->r.model));
    json_object_set_new(o, "output", json_array());
    json_t *parallel = api_field(b, "parallel_tool_calls");
    json_object_set_new(o, "parallel_tool_calls", json_boolean(!parallel || json_is_true(parallel)));
    json_object_set_new(o, "previous_response_id", json_null());
    json_t *reasoning = api_field(b, "reasoning");
    json_t *effort = json_is_object(reasoning) ? api_field(reasoning, "effort") : NULL;
    json_t *summary = json_is_object(reasoning) ? api_field(reasoning, "summary") : NULL;
    json_object_set_new(o, "reasoning", json_pack("{s:O?, s:O?}", "effort", effort, "summary", summary));
    json_object_set_new(o, "service_tier", json_string("default"));
    json_object_set_new(o, "store", json_false());
    const model_manifest *m = q->r.manifest;
    json_object_set_new(o, "temperature",
                        q->r.opts.has_temperature ? json_real(q->r.opts.temperature)
                        : m->has_temperature      ? json_real(m->temperature)
                                                  : json_null());
    json_t *format = q->text_format ? json_deep_copy(q->text_format) : json_pack("{s:s}", "type", "text");
    json_object_set_new(o, "text", json_pack("{s:o}", "format", format));
    json_t *choice = api_field(b, "tool_choice");
    json_object_set_new(o, "tool_choice", choice ? json_deep_copy(choice) : json_string("auto"));
    json_t *tools = api_field(b, "tools");
    json_object_set_new(o, "tools", tools ? json_deep_copy(tools) : json_array());
    json_object_set_new(o, "top_logprobs", json_integer(0));
    json_object_set_new(o, "top_p",
                        q->r.opts.has_top_p ? json_real(q->r.opts.top_p)
                        : m->has_top_p      ? json_real(m->top_p)
                                            : json_null());
    json_object_set_new(o, "truncation", json_string(q->no_truncate ? "disabled" : "auto"));
    json_object_set_new(o, "usage", json_null());
    json_t *user = api_field(b, "user"), *metadata = api_field(b, "metadata");
    json_object_set_new(o, "user", json_is_string(user) ? json_deep_copy(user) : json_null());
    json_object_set_new(o, "metadata", json_is_object(metadata) ? json_deep_copy(metadata) : json_object());
    return o;
}

http_response *openai_handle_responses(const http_request *req, void *user)
{
    openai_api *api = user;
    responses_request q = {.r = {.kind = OPENAI_RESPONSES}};
    http_response *resp = openai_decode_body(req, &q.r.body);
    if (resp)
        return resp;
    resp = responses_decode(api, &q);
    int think = q.r.think;
    q.r.think = -1; /* thinking is checked here, naming the Responses API's field */
    if (!resp)
        resp = openai_check_model(api, &q.r);
    q.r.think = think;
    if (!resp && think == 1 && !q.r.manifest->thinking)
        resp = openai_bad_param("reasoning.effort", "\"%s\" does not support thinking", q.r.model);
    api_message_list list = {0};
    if (!resp)
        resp = responses_build_messages(&q, &list);
    if (!resp) {
        char *instruction = format_instruction(&q.r.format);
        job_request jr = {
            .kind = JOB_CHAT,
            .model = q.r.model,
            .messages = list.msgs,
            .n_messages = list.n,
            .think = q.r.think,
            .options = q.r.opts,
            .tools_json = (const char *const *)q.r.tools_json,
            .n_tools = q.r.n_tools,
            .system_suffix = instruction,
            .no_truncate = q.no_truncate,
        };
        responses_reply *reply = responses_reply_new(responses_base(&q), &q.r.format);
        resp = api_pipeline_run(api->engine, api->metrics, req, &jr, q.r.stream, &responses_reply_dialect, reply,
                                &q.r.format);
        free(instruction);
    }
    api_message_list_free(&list);
    openai_request_free(&q.r);
    return resp;
}
