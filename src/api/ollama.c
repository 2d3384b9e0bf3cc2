/* ollama: the native Ollama API's routes (see ollama.h), and /api/generate + /api/chat from a
 * decoded request to the engine's job (chat, raw, load, or an unload without a job), answered
 * through the shared pipeline. Decoding is in ollama_decode.c, the answers' shape in
 * ollama_reply.c, the model endpoints in ollama_models.c. */
#include "api/ollama.h"

#include <stdlib.h>
#include <time.h>

#include "api/api_common.h"
#include "api/ollama_internal.h"
#include "api/tojson.h"
#include "common/buf.h"

/* The API's log (the struct keeps cmd_serve's function + user pointer). */
static log_sink ollama_log(const ollama_api *api)
{
    return (log_sink){.fn = api->log, .user = api->log_user};
}

/* ------------------------------------------------------------------------------------ generation */

/* The job of a request that has something to run (or a load), its tools serialised as the
 * template's `tool | tojson`, run through the pipeline. */
static http_response *ollama_run_generation(ollama_api *api, const http_request *req, ollama_gen_request *r,
                                            const gen_options *opts, bool nothing_to_run)
{
    job_request jr = {
        .model = r->model,
        .think = r->think,
        .has_keep_alive = r->has_keep_alive,
        .keep_alive_s = r->keep_alive_s,
        .options = *opts,
        .no_truncate = !r->truncate,
    };
    api_message_list list = {0};
    chat_message prompt_msgs[2];
    http_response *resp = NULL;
    if (nothing_to_run) {
        jr.kind = JOB_LOAD;
    } else if (!r->is_chat && r->raw) {
        jr.kind = JOB_RAW;
        jr.raw_prompt = r->prompt;
    } else if (!r->is_chat) { /* [system, user] only when the request has a system */
        jr.kind = JOB_CHAT;
        size_t n = 0;
        if (r->system[0])
            prompt_msgs[n++] = (chat_message){.role = "system", .content = r->system};
        prompt_msgs[n++] = (chat_message){.role = "user", .content = r->prompt};
        jr.messages = prompt_msgs;
        jr.n_messages = n;
    } else {
        resp = ollama_build_messages(r->messages, &list);
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
    if (!resp) {
        ollama_reply *reply = ollama_reply_new(r->is_chat, r->model, &r->fmt, jr.kind == JOB_LOAD);
        resp = api_pipeline_run(api->engine, req, &jr, r->stream, &ollama_reply_dialect, reply, &r->fmt);
    }
    free(instruction);
    for (size_t i = 0; i < n_tools; i++)
        free(tools_json[i]);
    free(tools_json);
    api_message_list_free(&list);
    return resp;
}

/* POST /api/generate and /api/chat. */
static http_response *ollama_handle_generation(ollama_api *api, const http_request *req, bool is_chat)
{
    ollama_gen_request r = {.is_chat = is_chat};
    http_response *resp = ollama_decode_body(req, is_chat ? "ChatRequest" : "GenerateRequest", &r.body);
    if (resp)
        return resp;
    log_sink log = ollama_log(api);
    gen_options opts = {0};
    resp = ollama_decode_gen_request(&r);
    if (!resp)
        resp = ollama_validate_gen_request(api, &r);
    if (!resp)
        resp = ollama_decode_options(&log, r.options, &opts);
    if (!resp) {
        if (!is_chat && json_array_size(r.context) > 0)
            log_printf(&log, "generate: the deprecated `context` field is ignored (axllama keeps the conversation "
                             "itself)");
        bool nothing_to_run = is_chat ? json_array_size(r.messages) == 0 : r.prompt[0] == '\0';
        if (nothing_to_run && r.has_keep_alive && r.keep_alive_s == 0) { /* unload without loading */
            engine_unload(api->engine, r.model);
            resp = ollama_lifecycle_reply(is_chat, r.model, "unload");
        } else {
            resp = ollama_run_generation(api, req, &r, &opts, nothing_to_run);
        }
    }
    api_gen_options_free(&opts);
    format_spec_free(&r.fmt);
    json_decref(r.body);
    return resp;
}

static http_response *ollama_handle_generate(const http_request *req, void *user)
{
    return ollama_handle_generation(user, req, false);
}

static http_response *ollama_handle_chat(const http_request *req, void *user)
{
    return ollama_handle_generation(user, req, true);
}

/* ------------------------------------------------------------------------------------ plain */

static http_response *ollama_handle_root(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(OLLAMA_STATUS_OK, HTTP_CONTENT_TYPE_TEXT, "Ollama is running");
}

static http_response *ollama_handle_version(const http_request *req, void *user)
{
    (void)req;
    (void)user;
    return http_response_static(OLLAMA_STATUS_OK, HTTP_CONTENT_TYPE_JSON, "{\"version\":\"" OLLAMA_API_VERSION "\"}");
}

/* ------------------------------------------------------------------------------------ routes */

size_t ollama_api_routes(ollama_api *api, http_route *routes, size_t max)
{
    tzset(); /* localtime_r for modified_at / expires_at */
    const http_route all[] = {
        {"GET", "/", ollama_handle_root, api, false},
        {"HEAD", "/", ollama_handle_root, api, false},
        {"GET", "/api/version", ollama_handle_version, api, false},
        {"HEAD", "/api/version", ollama_handle_version, api, false},
        {"GET", "/api/tags", ollama_handle_tags, api, false},
        {"HEAD", "/api/tags", ollama_handle_tags, api, false},
        {"POST", "/api/show", ollama_handle_show, api, false},
        {"GET", "/api/ps", ollama_handle_ps, api, false},
        {"POST", "/api/generate", ollama_handle_generate, api, true},
        {"POST", "/api/chat", ollama_handle_chat, api, true},
    };
    size_t n = api_copy_routes(all, sizeof all / sizeof all[0], routes, max);
    n += ollama_embed_routes(api, routes + n, max - n);
    n += ollama_manage_routes(api, routes + n, max - n);
    return n;
}
