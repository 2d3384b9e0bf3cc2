/* openai_internal: what the files of the OpenAI-compatible API share (not for other modules):
 *   openai.c         the routes, and the two generation endpoints from request to job
 *   openai_decode.c  request decoding and validation (sampling fields, reasoning effort, tools,
 *                    response_format, messages with content parts) with OpenAI error objects
 *   openai_reply.c   error objects, chat.completion / text_completion answers and their SSE chunk
 *                    streams (the pipeline's dialect)
 *   openai_responses.c        POST /v1/responses from request to job: fields, input items and
 *                             tools of the Responses API converted for the engine
 *   openai_responses_reply.c  response objects and their SSE event streams (the pipeline's dialect)
 *   openai_models.c  /v1/models and /v1/models/{model}
 *   openai_embeddings.c  /v1/embeddings (no model here can embed: the capability error) */
#ifndef AXLLAMA_API_OPENAI_INTERNAL_H
#define AXLLAMA_API_OPENAI_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "api/api_messages.h"
#include "api/api_pipeline.h"
#include "api/format.h"
#include "api/openai.h"

#define OPENAI_STATUS_OK 200u
#define OPENAI_STATUS_BAD_REQUEST 400u
#define OPENAI_STATUS_NOT_FOUND 404u
#define OPENAI_STATUS_INTERNAL_ERROR 500u

typedef enum { OPENAI_CHAT, OPENAI_COMPLETION, OPENAI_RESPONSES } openai_kind;

/* One decoded request: borrowed strings point into body. */
typedef struct {
    openai_kind kind;
    json_t *body;
    const char *model;
    const model_manifest *manifest;
    bool stream, include_usage;
    int think; /* -1 default, 0 off, 1 on */
    gen_options opts;
    json_t *messages;
    char **tools_json; /* serialised tool definitions (owned) */
    size_t n_tools;
    format_spec format; /* response_format (owned) */
    const char *prompt;
} openai_request;

/* ---- openai_decode.c */

/* The request body as a JSON object (errors: missing body, invalid JSON, not an object). */
http_response *openai_decode_body(const http_request *req, json_t **out);

/* Typed fields of the body b with OpenAI's "invalid type for '<key>'" errors (param = key); an
 * absent or null field leaves *out (and *has) alone. An integer is a number without a fraction. */
http_response *openai_field_bool(json_t *b, const char *key, bool *out);
http_response *openai_field_number(json_t *b, const char *key, bool *has, double *out);
http_response *openai_field_integer(json_t *b, const char *key, bool *has, long long *out);

/* model (required), stream and stream_options.include_usage into r. */
http_response *openai_decode_model_and_stream(openai_request *r);
/* max_tokens / max_completion_tokens, temperature, top_p into r->opts. */
http_response *openai_decode_sampling(openai_request *r);
/* reasoning_effort, reasoning.effort (or reasoning as a string) -> *think (-1 when absent). */
http_response *openai_decode_reasoning(json_t *b, int *think);

/* The fields of POST /v1/chat/completions and POST /v1/completions into r (r->body decoded). */
http_response *openai_decode_chat_request(const openai_api *api, openai_request *r);
http_response *openai_decode_completion_request(openai_request *r);

/* The model must exist (404 otherwise) and take the request's think value. */
http_response *openai_check_model(const openai_api *api, openai_request *r);

/* The request's messages for the engine (each checked, with the field at fault in errors). */
http_response *openai_build_messages(const openai_request *r, api_message_list *l);

void openai_request_free(openai_request *r);

/* ---- openai.c */

/* The engine's job for a decoded /v1/chat/completions request: its messages (openai_build_messages)
 * and tools, the format's instruction (format_instruction) for the system prompt. */
job_request openai_chat_job(const openai_request *r, const api_message_list *list, const char *instruction);
/* The engine's job for a decoded /v1/completions request: the prompt as the one user message, put in
 * *msg (a load when the prompt is empty). */
job_request openai_completion_job(const openai_request *r, chat_message *msg);

/* ---- openai_reply.c */

/* Whether an OpenAI client should repeat a request that got this status (408, 409, 429, 5xx: what
 * openai-node and the AI SDK retry). Every other error answer carries `x-should-retry: false`. */
bool openai_status_retryable(unsigned status);

/* {"error":{"message","type","param","code":null}}: type from the status (400
 * invalid_request_error, 404 not_found_error, others api_error), param NULL or the field at fault. */
json_t *openai_error_object(unsigned status, const char *message, const char *param);
/* The error object as a response with this status (x-should-retry: false unless retryable). */
http_response *openai_error_response(unsigned status, const char *param, const char *message);
http_response *openai_error(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A 400 naming the request field at fault (OpenAI's `param`). */
http_response *openai_bad_param(const char *param, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The tools list of either endpoint: an array of at most AXLLAMA_MAX_TOOLS; else the 400. */
http_response *openai_check_tools_list(json_t *tools);
/* tool_choice: true for "none" (the tools are dropped); other values than "auto" are logged as not enforced. */
bool openai_tool_choice_drops_tools(const openai_api *api, json_t *choice);

typedef struct openai_reply openai_reply;

/* The pipeline's dialect for /v1 answers, and its state for one request (its kind, model,
 * include_usage and a reference of its response_format; a fresh id and creation time). */
extern const api_dialect openai_reply_dialect;
openai_reply *openai_reply_new(const openai_request *r);

/* ---- openai_responses.c, openai_responses_reply.c */

/* POST /v1/responses */
http_response *openai_handle_responses(const http_request *req, void *user);

typedef struct responses_reply responses_reply;

/* The pipeline's dialect for /v1/responses, and its state for one request: base is the response
 * object's fixed fields (id, created_at, model and the request's settings echoed; taken over),
 * format a reference of the request's text.format. */
extern const api_dialect responses_reply_dialect;
responses_reply *responses_reply_new(json_t *base, const format_spec *format);

/* ---- openai_models.c */

http_response *openai_handle_models(const http_request *req, void *user);
http_response *openai_handle_model(const http_request *req, void *user);

/* ---- openai_embeddings.c */

http_response *openai_handle_embeddings(const http_request *req, void *user);

#endif
