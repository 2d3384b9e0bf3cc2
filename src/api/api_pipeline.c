/* api_pipeline: submit, first event, error status, then stream or collect (see api_pipeline.h). */
#include "api/api_pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "api/api_common.h"

#define STATUS_INTERNAL_ERROR 500u

/* What an error event says when the engine gave no text. */
#define PIPELINE_ERROR_TEXT "unknown error"
#define PIPELINE_STREAM_ERROR_TEXT "an error was encountered while running the model"

unsigned api_event_status(const job_event *ev)
{
    return ev->http_status >= 400 && ev->http_status <= 599 ? (unsigned)ev->http_status : STATUS_INTERNAL_ERROR;
}

bool api_reply_conforms(const format_spec *format, const char *content, bool had_tool_calls, size_t *off, size_t *len,
                        char *err, size_t errlen)
{
    *off = 0;
    *len = strlen(content);
    return had_tool_calls || format_validate(format, content, off, len, err, errlen);
}

/* ------------------------------------------------------------------------------------ streaming */

typedef struct {
    job *job;
    job_event first; /* the event that decided to stream, sent first */
    bool has_first;
    const api_dialect *dialect;
    void *state;
} pipeline_stream;

/* One event -> the dialect's bytes; false after the last one (done or error). */
static bool pipeline_stream_pull(void *opaque, strbuf *out, double timeout_s)
{
    pipeline_stream *s = opaque;
    job_event ev;
    if (s->has_first) {
        ev = s->first;
        s->has_first = false;
    } else if (!job_next(s->job, &ev, timeout_s)) {
        return true;
    }
    bool more = true;
    switch (ev.kind) {
    case JOB_EV_CONTENT:
    case JOB_EV_THINKING:
    case JOB_EV_TOOL_CALL: s->dialect->stream_piece(s->state, out, &ev); break;
    case JOB_EV_DONE:
        s->dialect->stream_done(s->state, out, &ev);
        more = false;
        break;
    case JOB_EV_ERROR:
        s->dialect->stream_error(s->state, out, api_event_status(&ev), ev.text ? ev.text : PIPELINE_STREAM_ERROR_TEXT);
        more = false;
        break;
    }
    job_event_free(&ev);
    return more;
}

static void pipeline_stream_cancel(void *opaque)
{
    pipeline_stream *s = opaque;
    job_cancel(s->job);
}

static void pipeline_stream_free(void *opaque)
{
    pipeline_stream *s = opaque;
    if (s->has_first)
        job_event_free(&s->first);
    job_release(s->job);
    s->dialect->free(s->state);
    free(s);
}

static const http_stream_ops pipeline_stream_ops = {pipeline_stream_pull, pipeline_stream_cancel, pipeline_stream_free};

/* A 200 stream that starts with first and owns j and state from now on. */
static http_response *pipeline_stream_start(job *j, job_event first, const api_dialect *d, void *state)
{
    pipeline_stream *s = xcalloc(1, sizeof *s);
    s->job = j;
    s->first = first;
    s->has_first = true;
    s->dialect = d;
    s->state = state;
    http_response *resp = http_response_stream(d->stream_content_type, &pipeline_stream_ops, s);
    if (d->stream_header_name)
        http_response_add_header(resp, d->stream_header_name, d->stream_header_value);
    return resp;
}

/* ------------------------------------------------------------------------------------ collecting */

/* The end of a collected answer: the whole reply, or API_STATUS_FORMAT_MISMATCH when the content
 * does not conform. */
static http_response *pipeline_whole_reply(const api_dialect *d, void *state, const format_spec *format,
                                           const strbuf *content, const strbuf *thinking, json_t *calls,
                                           const job_event *done)
{
    const char *text = content->data ? content->data : "";
    size_t off, len;
    char err[512] = "";
    if (!api_reply_conforms(format, text, json_array_size(calls) > 0, &off, &len, err, sizeof err))
        return d->error_reply(state, API_STATUS_FORMAT_MISMATCH, "response_format", err);
    char *answer = xstrndup(text + off, len);
    api_answer a = {.content = answer, .thinking = thinking->data, .tool_calls = calls, .done = done};
    http_response *resp = d->whole_reply(state, &a);
    free(answer);
    return resp;
}

/* Collects the whole answer (first event given) into one reply; NULL when the client left. */
static http_response *pipeline_collect(const http_request *req, job *j, job_event ev, const api_dialect *d, void *state,
                                       const format_spec *format)
{
    http_response *resp = NULL;
    strbuf content = {0}, thinking = {0};
    json_t *calls = json_array();
    for (;;) {
        if (ev.kind == JOB_EV_CONTENT) {
            sb_puts(&content, ev.text ? ev.text : "");
        } else if (ev.kind == JOB_EV_THINKING) {
            sb_puts(&thinking, ev.text ? ev.text : "");
        } else if (ev.kind == JOB_EV_TOOL_CALL) {
            json_array_append_new(calls, d->tool_call(&ev, json_array_size(calls)));
        } else if (ev.kind == JOB_EV_DONE) {
            resp = pipeline_whole_reply(d, state, format, &content, &thinking, calls, &ev);
        } else {
            resp = d->error_reply(state, api_event_status(&ev), NULL, ev.text ? ev.text : PIPELINE_ERROR_TEXT);
        }
        bool last = ev.kind == JOB_EV_DONE || ev.kind == JOB_EV_ERROR;
        job_event_free(&ev);
        if (last || !api_wait_event(req, j, &ev))
            break;
    }
    sb_free(&content);
    sb_free(&thinking);
    json_decref(calls);
    return resp;
}

/* ------------------------------------------------------------------------------------ running */

http_response *api_pipeline_run(engine *e, const http_request *req, const job_request *jr, bool stream,
                                const api_dialect *d, void *state, const format_spec *format)
{
    job *j = NULL;
    char err[512] = "";
    int status = engine_submit(e, jr, &j, err, sizeof err);
    if (status != 200 || !j) {
        http_response *resp =
            d->error_reply(state, status >= 400 && status <= 599 ? (unsigned)status : STATUS_INTERNAL_ERROR, NULL,
                           err[0] ? err : "cannot queue the request");
        d->free(state);
        return resp;
    }
    job_event ev;
    http_response *resp = NULL;
    if (!api_wait_event(req, j, &ev)) {
        /* the client left: no answer */
    } else if (ev.kind == JOB_EV_ERROR) {
        resp = d->error_reply(state, api_event_status(&ev), NULL, ev.text ? ev.text : PIPELINE_ERROR_TEXT);
        job_event_free(&ev);
    } else if (d->first_reply && (resp = d->first_reply(state, &ev)) != NULL) {
        job_event_free(&ev);
    } else if (stream) {
        return pipeline_stream_start(j, ev, d, state);
    } else {
        resp = pipeline_collect(req, j, ev, d, state, format);
    }
    job_release(j);
    d->free(state);
    return resp;
}
