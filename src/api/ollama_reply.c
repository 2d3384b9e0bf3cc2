/* ollama_reply: how native generation answers look (the pipeline's dialect, see ollama_internal.h):
 * chunks {"model","created_at","response"|"message",...,"done"} streamed as NDJSON (one compact
 * object per line, flushed per line, done:true last), the final chunk with done_reason and the six
 * metrics, one whole object with stream:false, tool calls, the load / unload answer, and errors as
 * {"error": message} (a status before streaming, one line after). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/ollama_internal.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/random.h"

struct ollama_reply {
    bool is_chat;
    bool load_only;     /* a JOB_LOAD: its DONE is one object */
    char *model;        /* echoed exactly as the request sent it */
    format_spec format; /* the request's `format`: streamed content is checked at the end */
    strbuf content;     /* content streamed so far (with a format) */
    size_t n_calls;     /* tool calls streamed */
};

ollama_reply *ollama_reply_new(bool is_chat, const char *model, const format_spec *format, bool load_only)
{
    ollama_reply *r = xcalloc(1, sizeof *r);
    r->is_chat = is_chat;
    r->load_only = load_only;
    r->model = xstrdup(model);
    r->format = format_spec_share(format);
    return r;
}

static void ollama_reply_free(void *state)
{
    ollama_reply *r = state;
    free(r->model);
    format_spec_free(&r->format);
    sb_free(&r->content);
    free(r);
}

/* ------------------------------------------------------------------------------------ chunks */

/* "2023-08-04T19:22:45.499127Z": now, UTC, microseconds (what generation chunks carry). */
static void ollama_rfc3339_utc_now(char *out, size_t n)
{
    double now = clock_wall();
    time_t secs = (time_t)now;
    long micros = (long)((now - (double)secs) * 1e6);
    if (micros > 999999)
        micros = 999999;
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%06ldZ", micros);
}

static json_t *ollama_chunk_new(bool is_chat, const char *model, const char *content, const char *thinking, bool done)
{
    char now[64];
    ollama_rfc3339_utc_now(now, sizeof now);
    json_t *o = json_object();
    json_object_set_new(o, "model", http_json_string(model));
    json_object_set_new(o, "created_at", json_string(now));
    if (is_chat) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", http_json_string(content));
        if (thinking && *thinking)
            json_object_set_new(msg, "thinking", http_json_string(thinking));
        json_object_set_new(o, "message", msg);
    } else {
        json_object_set_new(o, "response", http_json_string(content));
        if (thinking && *thinking)
            json_object_set_new(o, "thinking", http_json_string(thinking));
    }
    json_object_set_new(o, "done", json_boolean(done));
    return o;
}

static json_int_t ollama_ns_value(uint64_t ns)
{
    return ns > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)ns;
}

/* The last chunk: done_reason and the six metrics. Ollama's `context` (token ids of the whole
 * exchange, deprecated) is left out: the runtime holds the conversation, and clients that sent
 * it back would get no benefit (docs/spec/ollama-api.md §3.9 allows leaving it out). */
static json_t *ollama_chunk_final(const ollama_reply *r, const char *content, const char *thinking,
                                  const job_event *done)
{
    json_t *o = ollama_chunk_new(r->is_chat, r->model, content, thinking, true);
    json_object_set_new(o, "done_reason", json_string(done->done_reason ? done->done_reason : "stop"));
    const job_metrics *m = &done->metrics;
    json_object_set_new(o, "total_duration", json_integer(ollama_ns_value(m->total_ns)));
    json_object_set_new(o, "load_duration", json_integer(ollama_ns_value(m->load_ns)));
    json_object_set_new(o, "prompt_eval_count", json_integer(m->prompt_eval_count));
    json_object_set_new(o, "prompt_eval_duration", json_integer(ollama_ns_value(m->prompt_eval_ns)));
    json_object_set_new(o, "eval_count", json_integer(m->eval_count));
    json_object_set_new(o, "eval_duration", json_integer(ollama_ns_value(m->eval_ns)));
    return o;
}

http_response *ollama_lifecycle_reply(bool is_chat, const char *model, const char *done_reason)
{
    json_t *o = ollama_chunk_new(is_chat, model, "", NULL, true);
    json_object_set_new(o, "done_reason", json_string(done_reason));
    http_response *r = http_response_json(OLLAMA_STATUS_OK, o);
    json_decref(o);
    return r;
}

/* One tool call as Ollama sends it: {"id":"call_<8 of [a-z0-9]>","function":{"index":i,"name":…,
 * "arguments":{…}}} (arguments an object, in the model's key order). */
static json_t *ollama_tool_call(const job_event *ev, size_t index)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[8];
    random_bytes(rnd, sizeof rnd);
    char id[5 + 8 + 1] = "call_";
    for (size_t i = 0; i < 8; i++)
        id[5 + i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    id[13] = '\0';
    json_t *args = json_loads(ev->tool_arguments ? ev->tool_arguments : "{}", 0, NULL);
    if (!json_is_object(args)) { /* the engine sends objects only */
        json_decref(args);
        args = json_object();
    }
    json_t *fn = json_object();
    json_object_set_new(fn, "index", json_integer((json_int_t)index));
    json_object_set_new(fn, "name", http_json_string(ev->tool_name ? ev->tool_name : ""));
    json_object_set_new(fn, "arguments", args);
    json_t *call = json_object();
    json_object_set_new(call, "id", json_string(id));
    json_object_set_new(call, "function", fn);
    return call;
}

/* ------------------------------------------------------------------------------------ one object */

static http_response *ollama_error_reply(void *state, unsigned status, const char *param, const char *message)
{
    (void)state;
    (void)param; /* Ollama's errors name no field */
    return http_response_error(status, "%s", message);
}

static http_response *ollama_first_reply(void *state, const job_event *first)
{
    const ollama_reply *r = state;
    if (!r->load_only || first->kind != JOB_EV_DONE)
        return NULL;
    return ollama_lifecycle_reply(r->is_chat, r->model, first->done_reason ? first->done_reason : "load");
}

static http_response *ollama_whole_reply(void *state, const api_answer *a)
{
    const ollama_reply *r = state;
    json_t *o = ollama_chunk_final(r, a->content, a->thinking, a->done);
    if (json_array_size(a->tool_calls) > 0 && r->is_chat)
        json_object_set(json_object_get(o, "message"), "tool_calls", a->tool_calls);
    http_response *resp = http_response_json(OLLAMA_STATUS_OK, o);
    json_decref(o);
    return resp;
}

/* ------------------------------------------------------------------------------------ NDJSON */

/* o (released) as one line. */
static void ollama_append_line(strbuf *out, json_t *o)
{
    size_t len;
    char *text = http_json_encode(o, &len);
    json_decref(o);
    if (!text) { /* cannot happen with the objects built here */
        sb_puts(out, "{\"error\":\"cannot serialise a chunk\"}\n");
        return;
    }
    sb_append(out, text, len);
    sb_putc(out, '\n');
    free(text);
}

/* {"error": message} as one line: once streaming started the status line is gone. */
static void ollama_append_error_line(strbuf *out, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", http_json_string(message));
    ollama_append_line(out, o);
}

static void ollama_stream_piece(void *state, strbuf *out, const job_event *ev)
{
    ollama_reply *r = state;
    if (ev->kind == JOB_EV_CONTENT) {
        if (r->format.kind != FORMAT_NONE)
            sb_puts(&r->content, ev->text ? ev->text : "");
        ollama_append_line(out, ollama_chunk_new(r->is_chat, r->model, ev->text, NULL, false));
    } else if (ev->kind == JOB_EV_THINKING) {
        ollama_append_line(out, ollama_chunk_new(r->is_chat, r->model, "", ev->text, false));
    } else if (ev->kind == JOB_EV_TOOL_CALL && r->is_chat) {
        /* each call whole, in its own chunk with content "" (as Ollama streams them); only chat
         * requests carry tools */
        json_t *o = ollama_chunk_new(r->is_chat, r->model, "", NULL, false);
        json_t *calls = json_array();
        json_array_append_new(calls, ollama_tool_call(ev, r->n_calls++));
        json_object_set_new(json_object_get(o, "message"), "tool_calls", calls);
        ollama_append_line(out, o);
    }
}

static void ollama_stream_done(void *state, strbuf *out, const job_event *done)
{
    ollama_reply *r = state;
    const char *content = r->content.data ? r->content.data : "";
    size_t off, len;
    char err[512];
    if (!api_reply_conforms(&r->format, content, r->n_calls > 0, &off, &len, err, sizeof err))
        ollama_append_error_line(out, err); /* the text went out already: an error line instead of done */
    else
        ollama_append_line(out, ollama_chunk_final(r, "", NULL, done));
}

static void ollama_stream_error(void *state, strbuf *out, unsigned status, const char *message)
{
    (void)state;
    (void)status;
    ollama_append_error_line(out, message);
}

const api_dialect ollama_reply_dialect = {
    .error_reply = ollama_error_reply,
    .first_reply = ollama_first_reply,
    .tool_call = ollama_tool_call,
    .whole_reply = ollama_whole_reply,
    .stream_content_type = HTTP_CONTENT_TYPE_NDJSON,
    .stream_piece = ollama_stream_piece,
    .stream_done = ollama_stream_done,
    .stream_error = ollama_stream_error,
    .free = ollama_reply_free,
};
