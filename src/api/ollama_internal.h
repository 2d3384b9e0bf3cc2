/* ollama_internal: what the files of the native Ollama API share (not for other modules):
 *   ollama.c         the routes, and /api/generate + /api/chat from request to job
 *   ollama_decode.c  request decoding and validation with Go's messages and Ollama's statuses,
 *                    options, and the conversion of chat messages
 *   ollama_reply.c   generation answers: NDJSON chunks, the final chunk, one object (the
 *                    pipeline's dialect)
 *   ollama_models.c  /api/tags, /api/show, /api/ps
 *   ollama_embed.c   /api/embed, /api/embeddings (no model here can embed: Ollama's errors)
 *   ollama_manage.c  /api/pull, /api/push, /api/create, /api/copy, /api/delete, /api/blobs/{digest}
 *                    (models are vendor packages: pull succeeds for an installed model only) */
#ifndef AXLLAMA_API_OLLAMA_INTERNAL_H
#define AXLLAMA_API_OLLAMA_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "api/api_messages.h"
#include "api/api_pipeline.h"
#include "api/format.h"
#include "api/ollama.h"
#include "common/buf.h"
#include "common/log.h"

#define OLLAMA_STATUS_OK 200u
#define OLLAMA_STATUS_BAD_REQUEST 400u
#define OLLAMA_STATUS_NOT_FOUND 404u
#define OLLAMA_STATUS_INTERNAL_ERROR 500u

/* ---- ollama_decode.c */

/* A decoded /api/generate or /api/chat request: borrowed strings point into body. */
typedef struct {
    bool is_chat;
    json_t *body;
    const char *model; /* as sent */
    const model_manifest *manifest;
    bool stream;
    bool truncate; /* false: a prompt too long for the context is refused (job_request.no_truncate) */
    int think;
    bool has_keep_alive;
    double keep_alive_s;
    json_t *options, *format;
    bool logprobs, debug_render_only;
    long long top_logprobs;
    /* generate */
    const char *prompt, *system, *suffix, *template_text;
    bool raw;
    json_t *context, *images;
    /* chat */
    json_t *messages, *tools;
    format_spec fmt; /* the decoded `format` (ollama_validate_gen_request) */
} ollama_gen_request;

/* Go's %q of s (strconv.Quote, enough of it for error messages) appended to out. */
void ollama_go_quote(strbuf *out, const char *s);
/* An error answer "<prefix><Go-quoted s><suffix>" (e.g. "\"m\" does not support thinking"). */
http_response *ollama_quoted_error(unsigned status, const char *prefix, const char *s, const char *suffix);

/* A request body as one JSON object, the way Go's json.Decoder + ShouldBindJSON read it: an empty
 * body is "missing request body", only the first JSON value is read, null is an empty request;
 * go_type names the request in the errors ("GenerateRequest"). */
http_response *ollama_decode_body(const http_request *req, const char *go_type, json_t **out);

/* Everything Go would reject while decoding r->body (types, think, keep_alive). */
http_response *ollama_decode_gen_request(ollama_gen_request *r);

/* The checks Ollama makes after decoding, in its order, up to the point where the model runs. */
http_response *ollama_validate_gen_request(const ollama_api *api, ollama_gen_request *r);

/* Ollama's Options.FromMap into out (see ollama_decode.c); opts may be NULL. */
http_response *ollama_decode_options(const log_sink *log, json_t *opts, gen_options *out);

/* The request's messages (validated by ollama_decode_gen_request) for the engine. */
http_response *ollama_build_messages(json_t *messages, api_message_list *l);

/* POST /api/show's request: the model it names (400 / 404 errors as Ollama's). */
http_response *ollama_decode_show_request(const ollama_api *api, const http_request *req, const model_manifest **out);

/* ---- ollama.c */

/* A generate with an empty prompt, or a chat without messages: it only loads (or unloads). */
bool ollama_nothing_to_run(const ollama_gen_request *r);

/* The engine's job for a decoded, validated request, and what it points into. */
typedef struct {
    job_request jr;
    api_message_list list;
    chat_message prompt_msgs[2]; /* a generate's [system, user] */
    char **tools_json;           /* the tools as the template's `tool | tojson` */
    char *instruction;           /* the format's instruction for the system prompt */
} ollama_job;

/* Builds j->jr from r (a load when ollama_nothing_to_run; a raw prompt; a generate's [system, user];
 * a chat's messages with its tools); j must not move while jr is used. Returns the error of a chat
 * whose messages cannot be built (j is built all the same); free j with ollama_job_free either way. */
http_response *ollama_job_build(const ollama_gen_request *r, const gen_options *opts, ollama_job *j);
void ollama_job_free(ollama_job *j);

/* ---- ollama_models.c */

/* The `tools` capability (see ollama_models.c). */
bool ollama_model_supports_tools(const model_manifest *m);

http_response *ollama_handle_tags(const http_request *req, void *user);
http_response *ollama_handle_show(const http_request *req, void *user);
http_response *ollama_handle_ps(const http_request *req, void *user);

/* ---- ollama_embed.c, ollama_manage.c: their routes into routes (at most max); the count. */

size_t ollama_embed_routes(ollama_api *api, http_route *routes, size_t max);
size_t ollama_manage_routes(ollama_api *api, http_route *routes, size_t max);

/* ---- ollama_reply.c */

typedef struct ollama_reply ollama_reply;

/* The pipeline's dialect for native answers, and its state for one request: model echoed as sent,
 * format a reference of the request's (the streamed content is checked at the end), load_only for
 * a JOB_LOAD (its DONE is answered with one object even when streaming was asked for). */
extern const api_dialect ollama_reply_dialect;
ollama_reply *ollama_reply_new(bool is_chat, const char *model, const format_spec *format, bool load_only);

/* The load / unload answer: one object, done_reason as given, no metrics. */
http_response *ollama_lifecycle_reply(bool is_chat, const char *model, const char *done_reason);

#endif
