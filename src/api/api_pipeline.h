/* api_pipeline: the one path a decoded generation request of either API takes: submit the job to
 * the engine, wait for its first event (giving up, and cancelling the job, when the client
 * leaves), answer an error status when the job could not start or failed before its first piece,
 * then stream the answer or collect it into one reply (checked against the request's format). How
 * the answer looks is the dialect's business, given as an api_dialect: ollama_reply.c (NDJSON
 * lines, one object) and openai_reply.c (chat.completion / text_completion objects, SSE). */
#ifndef AXLLAMA_API_API_PIPELINE_H
#define AXLLAMA_API_API_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/format.h"
#include "common/buf.h"
#include "engine/engine.h"
#include "net/http_server.h"

/* A collected answer. */
typedef struct {
    const char *content;   /* the answer text (never NULL); with a format, the JSON itself */
    const char *thinking;  /* the reasoning text; NULL when there was none */
    json_t *tool_calls;    /* the dialect's tool-call objects in order (an array, maybe empty; borrowed) */
    const job_event *done; /* the DONE event: done_reason and metrics */
} api_answer;

/* A dialect: callbacks on its own state (made per request, freed by the pipeline). */
typedef struct {
    /* The reply to an error before any byte was sent: status, the request field at fault (NULL
     * for none; "response_format" when the reply does not conform to the format, with status
     * API_STATUS_FORMAT_MISMATCH), message. */
    http_response *(*error_reply)(void *state, unsigned status, const char *param, const char *message);
    /* Optional (may be NULL): the reply when the first event decides it alone (Ollama answers a
     * load with one object even when streaming was asked for); NULL to carry on. */
    http_response *(*first_reply)(void *state, const job_event *first);
    /* One tool call of a collected answer, as the dialect shows it; index counts from 0. */
    json_t *(*tool_call)(const job_event *ev, size_t index);
    /* The collected answer (not called when it did not conform to the format). */
    http_response *(*whole_reply)(void *state, const api_answer *answer);

    /* Streaming: the content type, an optional extra header (name NULL: none), and the bytes of
     * the events: a piece (CONTENT, THINKING, TOOL_CALL), the end (DONE), or an error once the
     * status line is gone (ERROR: its text, or a generic message). */
    const char *stream_content_type;
    const char *stream_header_name, *stream_header_value;
    void (*stream_piece)(void *state, strbuf *out, const job_event *ev);
    void (*stream_done)(void *state, strbuf *out, const job_event *done);
    void (*stream_error)(void *state, strbuf *out, unsigned status, const char *message);

    void (*free)(void *state);
} api_dialect;

/* Submits jr to e and answers req: an error status (submit refused, or the first event is an
 * error), the dialect's first_reply, a stream (stream true), or one collected reply whose content
 * must conform to format (NULL: no format; borrowed for the call). NULL when the client left (the
 * job is then cancelled). state is taken over: freed with d->free whatever happens. */
http_response *api_pipeline_run(engine *e, const http_request *req, const job_request *jr, bool stream,
                                const api_dialect *d, void *state, const format_spec *format);

/* The status of a reply that does not conform to the request's format (when it is known before the
 * status line went out): 400, a status no client library retries (openai-node and the AI SDK retry
 * 408, 409, 429 and 5xx; LangChain retries everything but 400-407 and 409). A retry would only
 * regenerate the same reply on the NPU while every other client waits in the queue. */
#define API_STATUS_FORMAT_MISMATCH 400u

/* The status to report for an ERROR event: its http_status when it is an error status, else 500. */
unsigned api_event_status(const job_event *ev);

/* Whether a complete reply conforms to format: always when tool calls answered (the format applies
 * to prose answers) or there is no format. Then *off / *len locate the text to send in content
 * (with a format: the JSON itself, without surrounding whitespace and code fence). Else false with
 * the reason in err (format_validate's messages). */
bool api_reply_conforms(const format_spec *format, const char *content, bool had_tool_calls, size_t *off, size_t *len,
                        char *err, size_t errlen);

#endif
