/* fuzz_job: what the request-decoding harnesses (fuzz_ollama_request, fuzz_openai_request) share:
 * a registry of two in-memory models (a thinking Qwen3 one and a Qwen2.5 one without thinking, as
 * tests/unit/test_api_ollama.c builds them), the http_request of a body (conn NULL: decoding never
 * touches the connection), the checks on an error response, and the checks on the job_request a
 * decoded request becomes, down to its prompt: the conversation copied the way engine_submit does
 * (engine_copy_messages, with the format instruction) and rendered with the model's template. */
#ifndef AXLLAMA_TESTS_FUZZ_JOB_H
#define AXLLAMA_TESTS_FUZZ_JOB_H

#include <jansson.h>
#include <math.h>

#include "engine/engine.h"
#include "fuzz_common.h"
#include "models/manifest.h"
#include "net/http_server_internal.h"
#include "tokenizer/chat_template.h"

static char *fuzz_no_args[] = {NULL};
static model_manifest fuzz_models[2] = {
    {
        .name = "qwen3-test:latest",
        .modified = 1000000000,
        .digest = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        .runtime_args = fuzz_no_args,
        .env = fuzz_no_args,
        .template_family = CHAT_TEMPLATE_QWEN3,
        .max_prefill = 2048,
        .max_positions = 2559,
        .system_prompt = "You are a test.",
        .thinking = true,
        .has_temperature = true,
        .temperature = 0.7,
        .has_top_k = true,
        .top_k = 20,
        .family = "qwen3",
        .parameter_size = "4.0B",
        .quantization_level = "W8A16",
        .format = "axmodel",
        .size = 5000000000ULL,
    },
    {
        .name = "plain:latest",
        .modified = 1100000000,
        .digest = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        .runtime_args = fuzz_no_args,
        .env = fuzz_no_args,
        .template_family = CHAT_TEMPLATE_QWEN25,
        .max_prefill = 1024,
        .max_positions = 1280,
        .size = 1000,
    },
};
static const model_registry fuzz_registry = {.models = fuzz_models, .n = 2, .watch = NULL};

/* A POST of body (size bytes; copied NUL-terminated, as the server hands it over) to path. The
 * copy is freed with fuzz_request_free. */
static inline http_request fuzz_request(const char *path, const uint8_t *body, size_t size)
{
    char *copy = xmalloc(size + 1);
    if (size)
        memcpy(copy, body, size);
    copy[size] = '\0';
    return (http_request){.method = "POST", .path = path, .body = copy, .body_len = size, .conn = NULL};
}

static inline void fuzz_request_free(http_request *req)
{
    free((char *)req->body);
}

/* An error answer: one of the statuses the decoders may give; freed. */
static inline void fuzz_check_error(http_response *resp, const char *where)
{
    FUZZ_CHECK(resp, "%s: no response", where);
    FUZZ_CHECK(resp->status == 400 || resp->status == 404, "%s: status %u", where, resp->status);
    FUZZ_CHECK(!resp->stream, "%s: an error answer streams", where);
    http_response_free(resp);
}

static inline bool fuzz_role_known(const char *role)
{
    return role &&
           (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant") || !strcmp(role, "tool"));
}

/* The properties of a job_request built from a request that decoded without error. */
static inline void fuzz_check_job(const job_request *jr, const model_manifest *m)
{
    FUZZ_CHECK(m, "a job without its model");
    FUZZ_CHECK(jr->model && model_registry_find(&fuzz_registry, jr->model) == m, "the job's model is not its manifest");
    FUZZ_CHECK(jr->think >= -1 && jr->think <= 1, "think %d", jr->think);
    FUZZ_CHECK(jr->think != 1 || m->thinking, "think on for a model that cannot think");
    FUZZ_CHECK(!jr->has_keep_alive || jr->keep_alive_s == -1 || (jr->keep_alive_s >= 0 && jr->keep_alive_s < 1e10),
               "keep_alive %g s", jr->keep_alive_s);
    const gen_options *o = &jr->options;
    FUZZ_CHECK(!o->has_top_p || (o->top_p > 0 && o->top_p < 1), "top_p %g passed on", o->top_p);
    FUZZ_CHECK(!o->has_temperature || isfinite(o->temperature), "temperature %g", o->temperature);
    FUZZ_CHECK(o->n_stop == 0 || o->stop, "%zu stops without an array", o->n_stop);
    for (size_t i = 0; i < o->n_stop; i++)
        FUZZ_CHECK(o->stop[i] && utf8_is_valid(o->stop[i], strlen(o->stop[i])), "stop %zu is not a UTF-8 string", i);
    FUZZ_CHECK(jr->n_tools == 0 || jr->tools_json, "%zu tools without an array", jr->n_tools);
    for (size_t i = 0; i < jr->n_tools; i++) {
        json_t *t = jr->tools_json[i] ? json_loads(jr->tools_json[i], 0, NULL) : NULL;
        FUZZ_CHECK(json_is_object(t), "tool %zu is not a JSON object: %s", i, jr->tools_json[i]);
        json_decref(t);
    }
    if (jr->kind == JOB_RAW) {
        FUZZ_CHECK(jr->raw_prompt, "a raw job without a prompt");
        return;
    }
    if (jr->kind == JOB_LOAD)
        return;
    FUZZ_CHECK(jr->kind == JOB_CHAT, "job kind %d", (int)jr->kind);
    FUZZ_CHECK(jr->n_messages > 0 && jr->messages, "a chat job without messages");
    for (size_t i = 0; i < jr->n_messages; i++) {
        const chat_message *cm = &jr->messages[i];
        FUZZ_CHECK(fuzz_role_known(cm->role), "message %zu has role %s", i, cm->role ? cm->role : "(null)");
        FUZZ_CHECK(cm->content && utf8_is_valid(cm->content, strlen(cm->content)), "message %zu content", i);
        FUZZ_CHECK(!cm->reasoning_content || utf8_is_valid(cm->reasoning_content, strlen(cm->reasoning_content)),
                   "message %zu reasoning", i);
        FUZZ_CHECK(cm->n_tool_calls == 0 || cm->tool_calls, "message %zu: calls without an array", i);
        for (size_t k = 0; k < cm->n_tool_calls; k++) {
            const chat_tool_call *c = &cm->tool_calls[k];
            FUZZ_CHECK(c->name && c->arguments_json, "message %zu call %zu lacks name or arguments", i, k);
            json_error_t err;
            json_t *args = json_loads(c->arguments_json, JSON_DECODE_ANY, &err);
            FUZZ_CHECK(args, "message %zu call %zu: arguments are not JSON (%s): %s", i, k, err.text,
                       c->arguments_json);
            json_decref(args);
        }
    }

    /* down to the prompt: what engine_submit copies, rendered as a turn renders it */
    size_t n = 0;
    chat_message *copy = engine_copy_messages(jr->messages, jr->n_messages, jr->system_suffix, m->system_prompt, &n);
    chat_template_options opt = {
        .add_generation_prompt = true,
        .enable_thinking = jr->think == 1   ? 1
                           : jr->think == 0 ? 0
                                            : (m->think_default ? 1 : 0),
        .tools_json = jr->tools_json,
        .n_tools = jr->n_tools,
    };
    strbuf prompt = {0};
    FUZZ_CHECK(chat_template_render(m->template_family, copy, n, &opt, &prompt),
               "the job's conversation does not render");
    FUZZ_CHECK(utf8_is_valid(prompt.data, prompt.len), "the prompt is not valid UTF-8");
    sb_free(&prompt);
    engine_messages_free(copy, n);
}

#endif
