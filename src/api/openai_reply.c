/* openai_reply: how /v1 answers look (the pipeline's dialect, see openai_internal.h): OpenAI error
 * objects, chat.completion and text_completion objects (usage, finish_reason stop / length /
 * tool_calls, reasoning, tool calls with JSON-text arguments), and their SSE streams: `data:
 * <chunk>` events with the role in the first delta, a finish chunk, an optional usage chunk and
 * `data: [DONE]`; content held back and validated first under a response_format; an error after
 * the stream started is one error event and no [DONE]. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai_internal.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/random.h"

#define OPENAI_SYSTEM_FINGERPRINT "fp_ollama"

/* ------------------------------------------------------------------------------------ errors */

static const char *openai_error_type(unsigned status)
{
    if (status == OPENAI_STATUS_BAD_REQUEST)
        return "invalid_request_error";
    if (status == OPENAI_STATUS_NOT_FOUND)
        return "not_found_error";
    return "api_error";
}

json_t *openai_error_object(unsigned status, const char *message, const char *param)
{
    json_t *e = json_object();
    json_object_set_new(e, "message", http_json_string(message));
    json_object_set_new(e, "type", json_string(openai_error_type(status)));
    json_object_set_new(e, "param", param ? http_json_string(param) : json_null());
    json_object_set_new(e, "code", json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return o;
}

bool openai_status_retryable(unsigned status)
{
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

http_response *openai_error_response(unsigned status, const char *param, const char *message)
{
    json_t *o = openai_error_object(status, message, param);
    http_response *r = http_response_json(status, o);
    json_decref(o);
    /* the OpenAI SDKs obey this header before their own rules: a request that failed this way fails
     * again when repeated */
    if (!openai_status_retryable(status))
        http_response_add_header(r, "x-should-retry", "false");
    return r;
}

static http_response *openai_error_vresponse(unsigned status, const char *param, const char *fmt, va_list ap)
{
    strbuf msg = {0};
    sb_vprintf(&msg, fmt, ap);
    http_response *r = openai_error_response(status, param, msg.data ? msg.data : "");
    sb_free(&msg);
    return r;
}

http_response *openai_error(unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_response *r = openai_error_vresponse(status, NULL, fmt, ap);
    va_end(ap);
    return r;
}

http_response *openai_bad_param(const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    http_response *r = openai_error_vresponse(OPENAI_STATUS_BAD_REQUEST, param, fmt, ap);
    va_end(ap);
    return r;
}

/* ------------------------------------------------------------------------------------ answers */

struct openai_reply {
    openai_kind kind;
    char *model; /* echoed as the request sent it */
    char id[48];
    long long created;
    bool include_usage;
    format_spec format; /* response_format (a reference); FORMAT_NONE for completions */
    /* streaming */
    bool role_sent;
    size_t n_calls;
    strbuf held; /* response_format: the content, sent once it was validated */
};

openai_reply *openai_reply_new(const openai_request *r)
{
    openai_reply *a = xcalloc(1, sizeof *a);
    a->kind = r->kind;
    a->model = xstrdup(r->model);
    char rnd[25];
    random_alnum(rnd, 24);
    snprintf(a->id, sizeof a->id, "%s-%s", r->kind == OPENAI_CHAT ? "chatcmpl" : "cmpl", rnd);
    a->created = (long long)clock_wall();
    a->include_usage = r->include_usage;
    a->format = format_spec_share(&r->format);
    return a;
}

static void openai_reply_free(void *state)
{
    openai_reply *a = state;
    free(a->model);
    format_spec_free(&a->format);
    sb_free(&a->held);
    free(a);
}

/* OpenAI's usage: prompt_tokens is the whole prompt the model saw, cached_tokens the part of it the
 * KV cache already held (not evaluated again for this request). */
static json_t *openai_usage_object(const job_metrics *m)
{
    int prompt = m->prompt_tokens > m->prompt_eval_count ? m->prompt_tokens : m->prompt_eval_count;
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(prompt));
    json_object_set_new(u, "completion_tokens", json_integer(m->eval_count));
    json_object_set_new(u, "total_tokens", json_integer((json_int_t)prompt + m->eval_count));
    json_object_set_new(u, "prompt_tokens_details",
                        json_pack("{s:i}", "cached_tokens", (json_int_t)(prompt - m->prompt_eval_count)));
    return u;
}

static const char *openai_finish_reason(const job_event *done, bool had_tool_calls)
{
    const char *r = done->done_reason ? done->done_reason : "stop";
    if (!strcmp(r, "length"))
        return "length";
    return had_tool_calls ? "tool_calls" : "stop";
}

/* {"id":"call_<random>","index":i,"type":"function","function":{"name","arguments":"<JSON text>"}} */
static json_t *openai_tool_call(const job_event *ev, size_t index)
{
    char rnd[25], id[32];
    random_alnum(rnd, 24);
    snprintf(id, sizeof id, "call_%s", rnd);
    json_t *fn = json_object();
    json_object_set_new(fn, "name", http_json_string(ev->tool_name));
    json_object_set_new(fn, "arguments",
                        http_json_string(ev->tool_arguments && *ev->tool_arguments ? ev->tool_arguments : "{}"));
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "index", json_integer((json_int_t)index));
    json_object_set_new(o, "type", json_string("function"));
    json_object_set_new(o, "function", fn);
    return o;
}

/* The envelope every answer and chunk shares. */
static json_t *openai_envelope(const openai_reply *a, const char *object)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer(a->created));
    json_object_set_new(o, "model", http_json_string(a->model));
    json_object_set_new(o, "system_fingerprint", json_string(OPENAI_SYSTEM_FINGERPRINT));
    return o;
}

/* {"choices":[choice]} into o. */
static void openai_set_choice(json_t *o, json_t *choice)
{
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
}

static http_response *openai_error_reply(void *state, unsigned status, const char *param, const char *message)
{
    (void)state;
    return openai_error_response(status, param, message);
}

/* A whole (non-streamed) answer. */
static http_response *openai_whole_reply(void *state, const api_answer *ans)
{
    const openai_reply *a = state;
    bool calls = json_array_size(ans->tool_calls) > 0;
    json_t *o = openai_envelope(a, a->kind == OPENAI_CHAT ? "chat.completion" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (a->kind == OPENAI_CHAT) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        /* as OpenAI: content null when the answer is only tool calls */
        json_object_set_new(msg, "content", calls && !*ans->content ? json_null() : http_json_string(ans->content));
        if (ans->thinking && *ans->thinking)
            json_object_set_new(msg, "reasoning", http_json_string(ans->thinking));
        if (calls)
            json_object_set(msg, "tool_calls", ans->tool_calls);
        json_object_set_new(choice, "message", msg);
    } else { /* a completion carries no reasoning (as Ollama's) */
        json_object_set_new(choice, "text", http_json_string(ans->content));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", json_string(openai_finish_reason(ans->done, calls)));
    openai_set_choice(o, choice);
    json_object_set_new(o, "usage", openai_usage_object(&ans->done->metrics));
    http_response *resp = http_response_json(OPENAI_STATUS_OK, o);
    json_decref(o);
    return resp;
}

/* ------------------------------------------------------------------------------------ SSE */

/* One streamed chunk: a chat delta (taken over) or a completion text; finish NULL = null. */
static json_t *openai_chunk(const openai_reply *a, json_t *delta, const char *text, const char *finish)
{
    json_t *o = openai_envelope(a, a->kind == OPENAI_CHAT ? "chat.completion.chunk" : "text_completion");
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    if (a->kind == OPENAI_CHAT) {
        json_object_set_new(choice, "delta", delta ? delta : json_object());
    } else {
        json_object_set_new(choice, "text", http_json_string(text));
        json_object_set_new(choice, "logprobs", json_null());
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    openai_set_choice(o, choice);
    if (a->include_usage) /* as OpenAI: usage null on every chunk but the last */
        json_object_set_new(o, "usage", json_null());
    return o;
}

/* "data: <json>\n\n" (the value is released). */
static void openai_sse_event(strbuf *out, json_t *o)
{
    size_t len;
    char *text = http_json_encode(o, &len);
    json_decref(o);
    sb_puts(out, "data: ");
    if (text)
        sb_append(out, text, len);
    else /* cannot happen with the objects built here */
        sb_puts(out, "{\"error\":{\"message\":\"cannot serialise a chunk\",\"type\":\"api_error\",\"param\":null,"
                     "\"code\":null}}");
    sb_puts(out, "\n\n");
    free(text);
}

/* A new delta; the first one names the role. */
static json_t *openai_delta_new(openai_reply *a)
{
    json_t *d = json_object();
    if (!a->role_sent) {
        json_object_set_new(d, "role", json_string("assistant"));
        a->role_sent = true;
    }
    return d;
}

static void openai_send_content(openai_reply *a, strbuf *out, const char *text)
{
    if (a->kind == OPENAI_CHAT) {
        json_t *d = openai_delta_new(a);
        json_object_set_new(d, "content", http_json_string(text));
        openai_sse_event(out, openai_chunk(a, d, NULL, NULL));
    } else {
        openai_sse_event(out, openai_chunk(a, NULL, text, NULL));
    }
}

static void openai_stream_piece(void *state, strbuf *out, const job_event *ev)
{
    openai_reply *a = state;
    if (ev->kind == JOB_EV_CONTENT) {
        if (a->format.kind != FORMAT_NONE)
            sb_puts(&a->held, ev->text ? ev->text : "");
        else
            openai_send_content(a, out, ev->text);
    } else if (ev->kind == JOB_EV_THINKING && a->kind == OPENAI_CHAT) { /* a completion carries no reasoning */
        json_t *d = openai_delta_new(a);
        json_object_set_new(d, "reasoning", http_json_string(ev->text));
        openai_sse_event(out, openai_chunk(a, d, NULL, NULL));
    } else if (ev->kind == JOB_EV_TOOL_CALL && a->kind == OPENAI_CHAT) { /* each call whole, in one delta */
        json_t *d = openai_delta_new(a);
        json_t *calls = json_array();
        json_array_append_new(calls, openai_tool_call(ev, a->n_calls++));
        json_object_set_new(d, "tool_calls", calls);
        openai_sse_event(out, openai_chunk(a, d, NULL, NULL));
    }
}

/* The end of the answer: held content, the finish chunk, the usage chunk, [DONE]; or, when the
 * held content does not conform to response_format, one error event instead. */
static void openai_stream_done(void *state, strbuf *out, const job_event *done)
{
    openai_reply *a = state;
    if (a->format.kind != FORMAT_NONE) {
        const char *held = a->held.data ? a->held.data : "";
        size_t off, len;
        char err[512] = "";
        if (!api_reply_conforms(&a->format, held, a->n_calls > 0, &off, &len, err, sizeof err)) {
            openai_sse_event(out, openai_error_object(API_STATUS_FORMAT_MISMATCH, err, "response_format"));
            return;
        }
        if (len) {
            char *clean = xstrndup(held + off, len);
            openai_send_content(a, out, clean);
            free(clean);
        }
    }
    if (a->kind == OPENAI_CHAT && !a->role_sent) /* an empty reply still names its role */
        openai_send_content(a, out, "");
    openai_sse_event(out, openai_chunk(a, NULL, "", openai_finish_reason(done, a->n_calls > 0)));
    if (a->include_usage) {
        json_t *o = openai_envelope(a, a->kind == OPENAI_CHAT ? "chat.completion.chunk" : "text_completion");
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", openai_usage_object(&done->metrics));
        openai_sse_event(out, o);
    }
    sb_puts(out, "data: [DONE]\n\n");
}

/* The status line is gone: one error event, then the stream ends (no [DONE]). */
static void openai_stream_error(void *state, strbuf *out, unsigned status, const char *message)
{
    (void)state;
    openai_sse_event(out, openai_error_object(status, message, NULL));
}

const api_dialect openai_reply_dialect = {
    .error_reply = openai_error_reply,
    .tool_call = openai_tool_call,
    .whole_reply = openai_whole_reply,
    .stream_content_type = "text/event-stream",
    .stream_header_name = "Cache-Control",
    .stream_header_value = "no-cache",
    .stream_piece = openai_stream_piece,
    .stream_done = openai_stream_done,
    .stream_error = openai_stream_error,
    .free = openai_reply_free,
};
