/* openai_responses_reply: how /v1/responses answers look (the pipeline's dialect, see
 * openai_internal.h). One response object {"id":"resp_…","object":"response","status",…,"output":[…],
 * "usage"} whose output holds, in the order the model produced them, a reasoning item (the thinking
 * text as its summary), a message item ({"type":"output_text","text","annotations":[]}) and
 * function_call items (arguments as JSON text). A reply cut by max_output_tokens has status
 * "incomplete" with incomplete_details.reason "max_output_tokens".
 *
 * Streaming is SSE with `event: <type>` lines and a sequence_number in every event: response.created,
 * response.in_progress, then per item output_item.added, its content/summary part added, the text
 * deltas (output_text.delta, reasoning_summary_text.delta, function_call_arguments.delta), their
 * .done events and output_item.done, and last response.completed (or response.incomplete) with the
 * whole response and its usage. Under a text.format the message text is held back and validated
 * first; a reply that does not conform, or any error once the stream started, is one `error` event
 * ({"type":"error","code","message","param"} plus OpenAI's error object under "error", which the
 * openai SDKs raise as an APIError) and the stream ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai_internal.h"
#include "common/buf.h"
#include "common/random.h"

/* The item the stream has open (its deltas are being sent). */
typedef enum { RESP_OPEN_NONE, RESP_OPEN_REASONING, RESP_OPEN_MESSAGE } resp_open_kind;

struct responses_reply {
    json_t *base;       /* the response object's fixed fields */
    format_spec format; /* text.format (a reference) */
    /* streaming */
    bool started;   /* response.created went out */
    long long seq;  /* the next sequence_number */
    json_t *output; /* the finished output items */
    resp_open_kind open;
    char item_id[40]; /* the open item's id */
    strbuf text;      /* the open item's text so far */
    strbuf held;      /* with a text.format: the message text, sent once it was validated */
    bool had_message; /* a message item was sent */
    size_t n_calls;
};

responses_reply *responses_reply_new(json_t *base, const format_spec *format)
{
    responses_reply *a = xcalloc(1, sizeof *a);
    a->base = base;
    a->format = format_spec_share(format);
    a->output = json_array();
    return a;
}

static void responses_reply_free(void *state)
{
    responses_reply *a = state;
    json_decref(a->base);
    json_decref(a->output);
    format_spec_free(&a->format);
    sb_free(&a->text);
    sb_free(&a->held);
    free(a);
}

/* ------------------------------------------------------------------------------------ objects */

/* "<prefix>_<24 random>" into out. */
static void resp_new_id(char *out, size_t n, const char *prefix)
{
    char rnd[25];
    random_alnum(rnd, 24);
    snprintf(out, n, "%s_%s", prefix, rnd);
}

/* usage: input_tokens the whole prompt (cached_tokens the part the KV cache held), output_tokens
 * what was generated, reasoning included (not counted apart: reasoning_tokens 0). */
static json_t *resp_usage(const job_metrics *m)
{
    int prompt = m->prompt_tokens > m->prompt_eval_count ? m->prompt_tokens : m->prompt_eval_count;
    return json_pack("{s:i, s:{s:i}, s:i, s:{s:i}, s:i}", "input_tokens", prompt, "input_tokens_details",
                     "cached_tokens", prompt - m->prompt_eval_count, "output_tokens", m->eval_count,
                     "output_tokens_details", "reasoning_tokens", 0, "total_tokens", prompt + m->eval_count);
}

/* The response object: base with status, output (taken), usage (taken; NULL: null) and, for an
 * incomplete one, why. */
static json_t *resp_object(const responses_reply *a, const char *status, json_t *output, json_t *usage)
{
    json_t *o = json_deep_copy(a->base);
    json_object_set_new(o, "status", json_string(status));
    if (!strcmp(status, "incomplete"))
        json_object_set_new(o, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
    json_object_set_new(o, "output", output);
    json_object_set_new(o, "usage", usage ? usage : json_null());
    return o;
}

static json_t *resp_output_text(const char *text)
{
    json_t *p = json_pack("{s:s, s:[], s:[]}", "type", "output_text", "annotations", "logprobs");
    json_object_set_new(p, "text", http_json_string(text));
    return p;
}

/* A message item; text NULL: one being opened (no content yet). */
static json_t *resp_message_item(const char *id, const char *status, const char *text)
{
    json_t *content = json_array();
    if (text)
        json_array_append_new(content, resp_output_text(text));
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "type", "message", "status", status, "role", "assistant",
                     "content", content);
}

static json_t *resp_summary_part(const char *text)
{
    json_t *p = json_pack("{s:s}", "type", "summary_text");
    json_object_set_new(p, "text", http_json_string(text));
    return p;
}

/* A reasoning item: the thinking text as its summary; text NULL: one being opened. */
static json_t *resp_reasoning_item(const char *id, const char *text)
{
    json_t *summary = json_array();
    if (text)
        json_array_append_new(summary, resp_summary_part(text));
    return json_pack("{s:s, s:s, s:o}", "id", id, "type", "reasoning", "summary", summary);
}

/* A function_call item for a TOOL_CALL event (new item and call ids); arguments "" while it is
 * being added. */
static json_t *resp_call_item(const job_event *ev, const char *status, bool with_arguments)
{
    char id[40], call_id[40];
    resp_new_id(id, sizeof id, "fc");
    resp_new_id(call_id, sizeof call_id, "call");
    const char *args = ev->tool_arguments && *ev->tool_arguments ? ev->tool_arguments : "{}";
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "type", "function_call", "status", status);
    json_object_set_new(o, "arguments", http_json_string(with_arguments ? args : ""));
    json_object_set_new(o, "call_id", json_string(call_id));
    json_object_set_new(o, "name", http_json_string(ev->tool_name));
    return o;
}

/* ------------------------------------------------------------------------------------ one object */

static const char *resp_param(const char *param)
{
    return param && !strcmp(param, "response_format") ? "text.format" : param;
}

static http_response *responses_error_reply(void *state, unsigned status, const char *param, const char *message)
{
    (void)state;
    return openai_error_response(status, resp_param(param), message);
}

static json_t *responses_tool_call(const job_event *ev, size_t index)
{
    (void)index;
    return resp_call_item(ev, "completed", true);
}

static bool resp_cut(const job_event *done)
{
    return done->done_reason && !strcmp(done->done_reason, "length");
}

static http_response *responses_whole_reply(void *state, const api_answer *ans)
{
    const responses_reply *a = state;
    bool cut = resp_cut(ans->done);
    size_t n_calls = json_array_size(ans->tool_calls);
    json_t *output = json_array();
    char id[40];
    if (ans->thinking && *ans->thinking) {
        resp_new_id(id, sizeof id, "rs");
        json_array_append_new(output, resp_reasoning_item(id, ans->thinking));
    }
    if (*ans->content || n_calls == 0) {
        resp_new_id(id, sizeof id, "msg");
        json_array_append_new(output, resp_message_item(id, cut ? "incomplete" : "completed", ans->content));
    }
    json_array_extend(output, ans->tool_calls);
    json_t *o = resp_object(a, cut ? "incomplete" : "completed", output, resp_usage(&ans->done->metrics));
    http_response *resp = http_response_json(OPENAI_STATUS_OK, o);
    json_decref(o);
    return resp;
}

/* ------------------------------------------------------------------------------------ SSE */

/* A new event object of this type (the first key, as OpenAI writes it). */
static json_t *resp_event(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

/* "event: <type>\ndata: <json>\n\n" with the next sequence_number (ev is released). */
static void resp_emit(responses_reply *a, strbuf *out, json_t *ev)
{
    json_object_set_new(ev, "sequence_number", json_integer(a->seq++));
    size_t len;
    char *text = http_json_encode(ev, &len);
    sb_printf(out, "event: %s\ndata: ", json_string_value(json_object_get(ev, "type")));
    if (text)
        sb_append(out, text, len);
    else /* cannot happen with the objects built here */
        sb_puts(out, "{\"type\":\"error\",\"code\":null,\"message\":\"cannot serialise an event\",\"param\":null}");
    sb_puts(out, "\n\n");
    free(text);
    json_decref(ev);
}

/* response.created and response.in_progress, once, before anything else. */
static void resp_start(responses_reply *a, strbuf *out)
{
    if (a->started)
        return;
    a->started = true;
    static const char *const types[] = {"response.created", "response.in_progress"};
    for (size_t i = 0; i < 2; i++) {
        json_t *ev = resp_event(types[i]);
        json_object_set_new(ev, "response", resp_object(a, "in_progress", json_array(), NULL));
        resp_emit(a, out, ev);
    }
}

/* The index the open item has (or the next item will have) in output. */
static json_int_t resp_index(const responses_reply *a)
{
    return (json_int_t)json_array_size(a->output);
}

/* An event about the open item: type, item_id, output_index (and content/summary index 0). */
static json_t *resp_item_event(const responses_reply *a, const char *type, const char *index_key)
{
    json_t *ev = resp_event(type);
    json_object_set_new(ev, "item_id", json_string(a->item_id));
    json_object_set_new(ev, "output_index", json_integer(resp_index(a)));
    if (index_key)
        json_object_set_new(ev, index_key, json_integer(0));
    return ev;
}

/* output_item.added / .done for item (taken) at the open index. */
static void resp_emit_item(responses_reply *a, strbuf *out, const char *type, json_t *item)
{
    json_t *ev = resp_event(type);
    json_object_set_new(ev, "output_index", json_integer(resp_index(a)));
    json_object_set_new(ev, "item", item);
    resp_emit(a, out, ev);
}

/* Ends the open item: its text's .done events, its part's .done, output_item.done; the item joins
 * output. status: a message's ("completed", "incomplete"). */
static void resp_close(responses_reply *a, strbuf *out, const char *status)
{
    const char *text = a->text.data ? a->text.data : "";
    json_t *ev, *item;
    if (a->open == RESP_OPEN_REASONING) {
        ev = resp_item_event(a, "response.reasoning_summary_text.done", "summary_index");
        json_object_set_new(ev, "text", http_json_string(text));
        resp_emit(a, out, ev);
        ev = resp_item_event(a, "response.reasoning_summary_part.done", "summary_index");
        json_object_set_new(ev, "part", resp_summary_part(text));
        resp_emit(a, out, ev);
        item = resp_reasoning_item(a->item_id, text);
    } else if (a->open == RESP_OPEN_MESSAGE) {
        ev = resp_item_event(a, "response.output_text.done", "content_index");
        json_object_set_new(ev, "text", http_json_string(text));
        json_object_set_new(ev, "logprobs", json_array());
        resp_emit(a, out, ev);
        ev = resp_item_event(a, "response.content_part.done", "content_index");
        json_object_set_new(ev, "part", resp_output_text(text));
        resp_emit(a, out, ev);
        item = resp_message_item(a->item_id, status, text);
    } else {
        return;
    }
    resp_emit_item(a, out, "response.output_item.done", json_incref(item));
    json_array_append_new(a->output, item);
    a->open = RESP_OPEN_NONE;
    sb_clear(&a->text);
}

/* Makes kind the open item (closing another one first). */
static void resp_open(responses_reply *a, strbuf *out, resp_open_kind kind)
{
    if (a->open == kind)
        return;
    resp_close(a, out, "completed");
    a->open = kind;
    json_t *ev;
    if (kind == RESP_OPEN_REASONING) {
        resp_new_id(a->item_id, sizeof a->item_id, "rs");
        resp_emit_item(a, out, "response.output_item.added", resp_reasoning_item(a->item_id, NULL));
        ev = resp_item_event(a, "response.reasoning_summary_part.added", "summary_index");
        json_object_set_new(ev, "part", resp_summary_part(""));
    } else {
        resp_new_id(a->item_id, sizeof a->item_id, "msg");
        a->had_message = true;
        resp_emit_item(a, out, "response.output_item.added", resp_message_item(a->item_id, "in_progress", NULL));
        ev = resp_item_event(a, "response.content_part.added", "content_index");
        json_object_set_new(ev, "part", resp_output_text(""));
    }
    resp_emit(a, out, ev);
}

/* A piece of message text as an output_text.delta of the open message. */
static void resp_send_text(responses_reply *a, strbuf *out, const char *text)
{
    resp_open(a, out, RESP_OPEN_MESSAGE);
    sb_puts(&a->text, text);
    json_t *ev = resp_item_event(a, "response.output_text.delta", "content_index");
    json_object_set_new(ev, "delta", http_json_string(text));
    json_object_set_new(ev, "logprobs", json_array());
    resp_emit(a, out, ev);
}

/* A tool call: a function_call item added, its arguments in one delta, done. */
static void resp_send_call(responses_reply *a, strbuf *out, const job_event *call)
{
    resp_close(a, out, "completed");
    json_t *item = resp_call_item(call, "in_progress", false);
    snprintf(a->item_id, sizeof a->item_id, "%s", json_string_value(json_object_get(item, "id")));
    const char *args = call->tool_arguments && *call->tool_arguments ? call->tool_arguments : "{}";
    resp_emit_item(a, out, "response.output_item.added", json_deep_copy(item));
    json_t *ev = resp_item_event(a, "response.function_call_arguments.delta", NULL);
    json_object_set_new(ev, "delta", http_json_string(args));
    resp_emit(a, out, ev);
    ev = resp_item_event(a, "response.function_call_arguments.done", NULL);
    json_object_set_new(ev, "name", http_json_string(call->tool_name));
    json_object_set_new(ev, "arguments", http_json_string(args));
    resp_emit(a, out, ev);
    json_object_set_new(item, "status", json_string("completed"));
    json_object_set_new(item, "arguments", http_json_string(args));
    resp_emit_item(a, out, "response.output_item.done", json_incref(item));
    json_array_append_new(a->output, item);
    a->n_calls++;
}

static void responses_stream_piece(void *state, strbuf *out, const job_event *ev)
{
    responses_reply *a = state;
    resp_start(a, out);
    if (ev->kind == JOB_EV_THINKING) {
        resp_open(a, out, RESP_OPEN_REASONING);
        sb_puts(&a->text, ev->text ? ev->text : "");
        json_t *d = resp_item_event(a, "response.reasoning_summary_text.delta", "summary_index");
        json_object_set_new(d, "delta", http_json_string(ev->text));
        resp_emit(a, out, d);
    } else if (ev->kind == JOB_EV_CONTENT) {
        if (a->format.kind != FORMAT_NONE)
            sb_puts(&a->held, ev->text ? ev->text : "");
        else
            resp_send_text(a, out, ev->text ? ev->text : "");
    } else if (ev->kind == JOB_EV_TOOL_CALL) {
        resp_send_call(a, out, ev);
    }
}

/* The end once the status line is gone: {"type":"error",...} plus the error object. */
static void resp_send_error(responses_reply *a, strbuf *out, unsigned status, const char *param, const char *message)
{
    json_t *ev = resp_event("error");
    json_object_set_new(ev, "code", json_null());
    json_object_set_new(ev, "message", http_json_string(message));
    json_object_set_new(ev, "param", param ? json_string(param) : json_null());
    json_t *wrapped = openai_error_object(status, message, param);
    json_object_set(ev, "error", json_object_get(wrapped, "error"));
    json_decref(wrapped);
    resp_emit(a, out, ev);
}

static void responses_stream_done(void *state, strbuf *out, const job_event *done)
{
    responses_reply *a = state;
    resp_start(a, out);
    bool cut = resp_cut(done);
    if (a->format.kind != FORMAT_NONE) {
        const char *held = a->held.data ? a->held.data : "";
        size_t off, len;
        char err[512] = "";
        if (!api_reply_conforms(&a->format, held, a->n_calls > 0, &off, &len, err, sizeof err)) {
            resp_send_error(a, out, API_STATUS_FORMAT_MISMATCH, "text.format", err);
            return;
        }
        if (len) {
            char *clean = xstrndup(held + off, len);
            resp_send_text(a, out, clean);
            free(clean);
        }
    }
    if (!a->had_message && a->n_calls == 0) /* an empty reply is still one (empty) message */
        resp_open(a, out, RESP_OPEN_MESSAGE);
    resp_close(a, out, cut ? "incomplete" : "completed");
    json_t *ev = resp_event(cut ? "response.incomplete" : "response.completed");
    json_object_set_new(
        ev, "response",
        resp_object(a, cut ? "incomplete" : "completed", json_deep_copy(a->output), resp_usage(&done->metrics)));
    resp_emit(a, out, ev);
}

static void responses_stream_error(void *state, strbuf *out, unsigned status, const char *message)
{
    responses_reply *a = state;
    resp_start(a, out);
    resp_send_error(a, out, status, NULL, message);
}

const api_dialect responses_reply_dialect = {
    .error_reply = responses_error_reply,
    .tool_call = responses_tool_call,
    .whole_reply = responses_whole_reply,
    .stream_content_type = "text/event-stream",
    .stream_header_name = "Cache-Control",
    .stream_header_value = "no-cache",
    .stream_piece = responses_stream_piece,
    .stream_done = responses_stream_done,
    .stream_error = responses_stream_error,
    .free = responses_reply_free,
};
