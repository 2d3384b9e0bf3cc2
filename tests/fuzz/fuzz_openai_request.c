/* fuzz_openai_request: OpenAI-compatible request decoding (src/api/openai_decode.c and what it
 * uses) down to the job request. The input is a request body; it is decoded as
 * /v1/chat/completions and as /v1/completions through the calls the handlers make
 * (openai_decode_body, openai_decode_chat_request / openai_decode_completion_request,
 * openai_check_model, openai_build_messages, openai_request_free), against a registry of two
 * in-memory models. The job_request is built by the handlers' openai_chat_job /
 * openai_completion_job and checked (fuzz_job.h): every role is system/user/assistant/tool
 * (developer became system), strings are UTF-8, tool-call arguments are JSON, think is in range,
 * and the conversation renders with the model's template.
 * An error is a 400 or 404 response. No crash, no leak, no sanitizer report. */
#include "api/api_common.h"
#include "api/openai_internal.h"
#include "fuzz_job.h"

static openai_api g_api = {.engine = NULL, .models = &fuzz_registry};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_request_fields(const openai_request *r)
{
    FUZZ_CHECK(r->model && r->model[0], "decoded without a model");
    FUZZ_CHECK(r->think >= -1 && r->think <= 1, "think %d", r->think);
    FUZZ_CHECK(r->n_tools == 0 || r->tools_json, "%zu tools without an array", r->n_tools);
    FUZZ_CHECK(!r->opts.has_num_predict || r->opts.num_predict >= 1, "num_predict %d", r->opts.num_predict);
    FUZZ_CHECK(!r->opts.has_temperature || (r->opts.temperature >= 0 && r->opts.temperature <= 2), "temperature %g",
               r->opts.temperature);
}

/* POST /v1/chat/completions, as openai_handle_chat_completions decodes it. */
static void decode_chat(const http_request *req)
{
    openai_request r = {.kind = OPENAI_CHAT};
    http_response *resp = openai_decode_body(req, &r.body);
    if (resp) {
        FUZZ_CHECK(!r.body, "a refused body was kept");
        fuzz_check_error(resp, "openai_decode_body");
        return;
    }
    resp = openai_decode_chat_request(&g_api, &r);
    if (!resp) {
        check_request_fields(&r);
        FUZZ_CHECK(json_array_size(r.messages) > 0, "a chat request without messages");
        resp = openai_check_model(&g_api, &r);
    }
    api_message_list list = {0};
    if (!resp) {
        FUZZ_CHECK(r.manifest, "the model checked without a manifest");
        resp = openai_build_messages(&r, &list);
    }
    if (resp) {
        fuzz_check_error(resp, "/v1/chat/completions");
    } else {
        FUZZ_CHECK(list.n == json_array_size(r.messages), "%zu messages of %zu built", list.n,
                   json_array_size(r.messages));
        char *instruction = format_instruction(&r.format);
        job_request jr = openai_chat_job(&r, &list, instruction);
        fuzz_check_job(&jr, r.manifest);
        free(instruction);
    }
    api_message_list_free(&list);
    openai_request_free(&r);
}

/* POST /v1/completions, as openai_handle_completions decodes it. */
static void decode_completion(const http_request *req)
{
    openai_request r = {.kind = OPENAI_COMPLETION};
    http_response *resp = openai_decode_body(req, &r.body);
    if (resp) {
        fuzz_check_error(resp, "openai_decode_body");
        return;
    }
    resp = openai_decode_completion_request(&r);
    if (!resp) {
        check_request_fields(&r);
        FUZZ_CHECK(r.prompt, "a completion request without a prompt");
        resp = openai_check_model(&g_api, &r);
    }
    if (resp) {
        fuzz_check_error(resp, "/v1/completions");
    } else {
        chat_message msg;
        job_request jr = openai_completion_job(&r, &msg);
        fuzz_check_job(&jr, r.manifest);
    }
    openai_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_request req = fuzz_request("/v1/chat/completions", data, size);
    decode_chat(&req);
    req.path = "/v1/completions";
    decode_completion(&req);
    fuzz_request_free(&req);
    return 0;
}
