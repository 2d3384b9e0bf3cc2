/* openai: the OpenAI-compatible API's routes (see openai.h), and POST /v1/chat/completions and
 * POST /v1/completions from a decoded request to the engine's job, answered through the shared
 * pipeline. Decoding is in openai_decode.c, the answers' shape in openai_reply.c, the model
 * endpoints in openai_models.c. */
#include "api/openai.h"

#include <stdlib.h>

#include "api/api_common.h"
#include "api/openai_internal.h"

/* Runs jr for r through the pipeline with the /v1 dialect. */
static http_response *openai_run(openai_api *api, const http_request *req, const openai_request *r,
                                 const job_request *jr)
{
    return api_pipeline_run(api->engine, api->metrics, req, jr, r->stream, &openai_reply_dialect, openai_reply_new(r),
                            &r->format);
}

job_request openai_chat_job(const openai_request *r, const api_message_list *list, const char *instruction)
{
    return (job_request){
        .kind = JOB_CHAT,
        .model = r->model,
        .messages = list->msgs,
        .n_messages = list->n,
        .think = r->think,
        .options = r->opts,
        .tools_json = (const char *const *)r->tools_json,
        .n_tools = r->n_tools,
        .system_suffix = instruction,
    };
}

job_request openai_completion_job(const openai_request *r, chat_message *msg)
{
    *msg = (chat_message){.role = "user", .content = r->prompt};
    return (job_request){
        .kind = r->prompt[0] ? JOB_CHAT : JOB_LOAD,
        .model = r->model,
        .messages = msg,
        .n_messages = 1,
        .think = r->think,
        .options = r->opts,
    };
}

/* POST /v1/chat/completions */
static http_response *openai_handle_chat_completions(const http_request *req, void *user)
{
    openai_api *api = user;
    openai_request r = {.kind = OPENAI_CHAT};
    http_response *resp = openai_decode_body(req, &r.body);
    if (resp)
        return resp;
    resp = openai_decode_chat_request(api, &r);
    if (!resp)
        resp = openai_check_model(api, &r);
    api_message_list list = {0};
    if (!resp)
        resp = openai_build_messages(&r, &list);
    if (!resp) {
        char *instruction = format_instruction(&r.format);
        job_request jr = openai_chat_job(&r, &list, instruction);
        resp = openai_run(api, req, &r, &jr);
        free(instruction);
    }
    api_message_list_free(&list);
    openai_request_free(&r);
    return resp;
}

/* POST /v1/completions: the prompt as one user message (not raw), as Ollama's layer does. An
 * empty prompt loads the model and answers an empty text. */
static http_response *openai_handle_completions(const http_request *req, void *user)
{
    openai_api *api = user;
    openai_request r = {.kind = OPENAI_COMPLETION};
    http_response *resp = openai_decode_body(req, &r.body);
    if (resp)
        return resp;
    resp = openai_decode_completion_request(&r);
    if (!resp)
        resp = openai_check_model(api, &r);
    if (!resp) {
        chat_message msg;
        job_request jr = openai_completion_job(&r, &msg);
        resp = openai_run(api, req, &r, &jr);
    }
    openai_request_free(&r);
    return resp;
}

size_t openai_api_routes(openai_api *api, http_route *routes, size_t max)
{
    const http_route all[] = {
        {"POST", "/v1/chat/completions", openai_handle_chat_completions, api, true},
        {"POST", "/v1/completions", openai_handle_completions, api, true},
        {"POST", "/v1/responses", openai_handle_responses, api, true},
        {"GET", "/v1/models", openai_handle_models, api, false},
        {"GET", "/v1/models/*", openai_handle_model, api, false},
        {"POST", "/v1/embeddings", openai_handle_embeddings, api, false},
    };
    return api_copy_routes(all, sizeof all / sizeof all[0], routes, max);
}
