/* fuzz_ollama_request: native Ollama request decoding (src/api/ollama_decode.c and what it uses)
 * down to the job request. The input is a request body; it is decoded as /api/generate, as
 * /api/chat and as /api/show, through the same calls the handlers make (ollama_decode_body,
 * ollama_decode_gen_request, ollama_validate_gen_request, ollama_decode_options,
 * ollama_build_messages), against a registry of two in-memory models. The job_request is then built
 * as ollama_run_generation builds it (the engine is not involved) and checked (fuzz_job.h): every
 * role is system/user/assistant/tool, strings are UTF-8, tool-call arguments are JSON, think and
 * keep_alive are in range, and the conversation renders with the model's template. An error is a
 * 400 or 404 response. No crash, no leak, no sanitizer report. */
#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "api/tojson.h"
#include "fuzz_job.h"

static ollama_api g_api = {.engine = NULL, .models = &fuzz_registry};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* The job of a decoded, validated request, as ollama_run_generation makes it, checked. */
static void check_generation(ollama_gen_request *r, const gen_options *opts)
{
    job_request jr = {
        .model = r->model,
        .think = r->think,
        .has_keep_alive = r->has_keep_alive,
        .keep_alive_s = r->keep_alive_s,
        .options = *opts,
        .no_truncate = !r->truncate,
    };
    bool nothing_to_run = r->is_chat ? json_array_size(r->messages) == 0 : r->prompt[0] == '\0';
    api_message_list list = {0};
    chat_message prompt_msgs[2];
    if (nothing_to_run) {
        jr.kind = JOB_LOAD;
    } else if (!r->is_chat && r->raw) {
        jr.kind = JOB_RAW;
        jr.raw_prompt = r->prompt;
    } else if (!r->is_chat) {
        jr.kind = JOB_CHAT;
        size_t n = 0;
        if (r->system[0])
            prompt_msgs[n++] = (chat_message){.role = "system", .content = r->system};
        prompt_msgs[n++] = (chat_message){.role = "user", .content = r->prompt};
        jr.messages = prompt_msgs;
        jr.n_messages = n;
    } else {
        http_response *resp = ollama_build_messages(r->messages, &list);
        if (resp) {
            fuzz_check_error(resp, "ollama_build_messages");
            api_message_list_free(&list);
            return;
        }
        FUZZ_CHECK(list.n == json_array_size(r->messages), "%zu messages of %zu built", list.n,
                   json_array_size(r->messages));
        jr.kind = JOB_CHAT;
        jr.messages = list.msgs;
        jr.n_messages = list.n;
    }
    size_t n_tools = r->is_chat && jr.kind == JOB_CHAT ? json_array_size(r->tools) : 0;
    char **tools_json = xcalloc(n_tools + 1, sizeof *tools_json);
    for (size_t i = 0; i < n_tools; i++)
        tools_json[i] = tojson_dumps(json_array_get(r->tools, i));
    jr.tools_json = (const char *const *)tools_json;
    jr.n_tools = n_tools;
    char *instruction = format_instruction(&r->fmt);
    jr.system_suffix = instruction;
    fuzz_check_job(&jr, r->manifest);
    free(instruction);
    for (size_t i = 0; i < n_tools; i++)
        free(tools_json[i]);
    free(tools_json);
    api_message_list_free(&list);
}

static void decode_generation(const http_request *req, bool is_chat)
{
    ollama_gen_request r = {.is_chat = is_chat};
    http_response *resp = ollama_decode_body(req, is_chat ? "ChatRequest" : "GenerateRequest", &r.body);
    if (resp) {
        FUZZ_CHECK(!r.body, "a refused body was kept");
        fuzz_check_error(resp, "ollama_decode_body");
        return;
    }
    FUZZ_CHECK(json_is_object(r.body), "the body is not an object");
    log_sink log = {0};
    gen_options opts = {0};
    resp = ollama_decode_gen_request(&r);
    if (!resp) {
        FUZZ_CHECK(r.model && r.prompt && r.system && r.suffix && r.template_text, "a string field is NULL");
        FUZZ_CHECK(r.think >= -1 && r.think <= 1, "think %d", r.think);
        resp = ollama_validate_gen_request(&g_api, &r);
    }
    if (!resp) {
        FUZZ_CHECK(r.manifest, "validated without a model");
        resp = ollama_decode_options(&log, r.options, &opts);
    }
    if (resp)
        fuzz_check_error(resp, is_chat ? "/api/chat" : "/api/generate");
    else
        check_generation(&r, &opts);
    api_gen_options_free(&opts);
    format_spec_free(&r.fmt);
    json_decref(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_request req = fuzz_request("/api/chat", data, size);
    decode_generation(&req, true);
    req.path = "/api/generate";
    decode_generation(&req, false);

    req.path = "/api/show";
    const model_manifest *m = NULL;
    http_response *resp = ollama_decode_show_request(&g_api, &req, &m);
    if (resp) {
        FUZZ_CHECK(!m, "/api/show: an error with a model");
        fuzz_check_error(resp, "/api/show");
    } else {
        FUZZ_CHECK(m == &fuzz_models[0] || m == &fuzz_models[1], "/api/show: no model");
    }
    fuzz_request_free(&req);
    return 0;
}
