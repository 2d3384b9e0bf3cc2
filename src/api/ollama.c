/* ollama: the native Ollama API's routes (see ollama.h), and /api/generate + /api/chat from a
 * decoded request to the engine's job (chat, raw, load, or an unload without a job), answered
 * through the shared pipeline. Decoding is in ollama_decode.c, the answers' shape in
 * ollama_reply.c, the model endpoints in ollama_models.c. */
#include "api/ollama.h"

#include <stdlib.h>
#include <string.h>
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

bool ollama_nothing_to_run(const ollama_gen_request *r)
{
    return r->is_chat ? json_array_size(r->messages) == 0 : r->prompt[0] == '\0';
}

http_response *ollama_job_build(const ollama_gen_request *r, const gen_options *opts, ollama_job *j)
{
    memset(j, 0, sizeof *j);
    j->jr = (job_request){
        .model = r->model,
        .think = r->think,
        .has_keep_alive = r->has_keep_alive,
        .keep_alive_s = r->keep_alive_s,
        .options = *opts,
        .no_truncate = !r->truncate,
    };
    http_response *resp = NULL;
    if (ollama_nothing_to_run(r)) {
        j->jr.kind = JOB_LOAD;
    } else if (!r->is_chat && r->raw) {
        j->jr.kind = JOB_RAW;
        j->jr.raw_prompt = r->prompt;
    } else if (!r->is_chat) { /* [system, user] only when the request has a system */
        j->jr.kind = JOB_CHAT;
        size_t n = 0;
        if (r->system[0])
            j->prompt_msgs[n++] = (chat_message){.role = "system", .content = r->system};
        j->prompt_msgs[n++] = (chat_message){.role = "user", .content = r->prompt};
        j->jr.messages = j->prompt_msgs;
        j->jr.n_messages = n;
    } else {
        resp = ollama_build_messages(r->messages, &j->list);
        j->jr.kind = JOB_CHAT;
        j->jr.messages = j->list.msgs;
        j->jr.n_messages = j->list.n;
    }
    size_t n_tools = r->is_chat && j->jr.kind == JOB_CHAT ? json_array_size(r->tools) : 0;
    j->tools_json = xcalloc(n_tools + 1, sizeof *j->tools_json);
    for (size_t i = 0; i < n_tools; i++)
        j->tools_json[i] = tojson_dumps(json_array_get(r->tools, i));
    j->jr.tools_json = (const char *const *)j->tools_json;
    j->jr.n_tools = n_tools;
    j->instruction = format_instruction(&r->fmt);
    j->jr.system_suffix = j->instruction;
    return resp;
}

void ollama_job_free(ollama_job *j)
{
    free(j->instruction);
    for (size_t i = 0; i < j->jr.n_tools; i++)
        free(j->tools_json[i]);
    free(j->tools_json);
    api_message_list_free(&j->list);
}

/* A request that has something to run (or a load), run through the pipeline. */
static http_response *ollama_run_generation(ollama_api *api, const http_request *req, ollama_gen_request *r,
                                            const gen_options *opts)
{
    ollama_job j;
    http_response *resp = ollama_job_build(r, opts, &j);
    if (!resp) {
        ollama_reply *reply = ollama_reply_new(r->is_chat, r->model, &r->fmt, j.jr.kind == JOB_LOAD);
        resp =
            api_pipeline_run(api->engine, api->metrics, req, &j.jr, r->stream, &ollama_reply_dialect, reply, &r->fmt);
    }
    ollama_job_free(&j);
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
        if (ollama_nothing_to_run(&r) && r.has_keep_alive && r.keep_alive_s == 0) { /* unload without loading */
            engine_unload(api->engine, r.model);
            resp = ollama_lifecycle_reply(is_chat, r.model, "unload");
        } else {
            resp = ollama_run_generation(api, req, &r, &opts);
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
