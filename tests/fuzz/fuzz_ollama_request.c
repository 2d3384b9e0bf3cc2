/* fuzz_ollama_request: native Ollama request decoding (src/api/ollama_decode.c and what it uses)
 * down to the job request. The input is a request body; it is decoded as /api/generate, as
 * /api/chat and as /api/show, through the same calls the handlers make (ollama_decode_body,
 * ollama_decode_gen_request, ollama_validate_gen_request, ollama_decode_options,
 * ollama_build_messages), against a registry of two in-memory models. The job_request is then built
 * by ollama_job_build, as ollama_run_generation builds it (the engine is not involved), and checked
 * (fuzz_job.h): every role is system/user/assistant/tool, strings are UTF-8, tool-call arguments
 * are JSON, think and keep_alive are in range, and the conversation renders with the model's
 * template. An error is a 400 or 404 response. No crash, no leak, no sanitizer report. */
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

/* The job of a decoded, validated request, built as ollama_run_generation builds it, checked. */
static void check_generation(ollama_gen_request *r, const gen_options *opts)
{
    ollama_job j;
    http_response *resp = ollama_job_build(r, opts, &j);
    if (resp) {
        fuzz_check_error(resp, "ollama_build_messages");
    } else {
        if (r->is_chat && j.jr.kind == JOB_CHAT)
            FUZZ_CHECK(j.list.n == json_array_size(r->messages), "%zu messages of %zu built", j.list.n,
                       json_array_size(r->messages));
        fuzz_check_job(&j.jr, r->manifest);
    }
    ollama_job_free(&j);
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
