/* job: a request's copy, its references and its event queue. See job.h for the rules. */
#include "engine/job.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

job *job_new(const job_request *req, const model_manifest *m, int think)
{
    job *j = xcalloc(1, sizeof *j);
    j->refs = 2; /* the API's and the engine's */
    pthread_mutex_init(&j->lock, NULL);
    clock_cond_init(&j->cond);
    atomic_init(&j->cancelled, false);
    j->kind = req->kind;
    j->model = xstrdup(req->model ? req->model : "");
    j->manifest = m;
    j->think = think;
    j->raw_prompt = dup_or_null(req->raw_prompt);
    j->messages =
        engine_copy_messages(req->messages, req->n_messages, req->kind == JOB_CHAT ? req->system_suffix : NULL,
                             m->system_prompt, &j->n_messages);
    if (req->kind == JOB_CHAT && req->tools_json && req->n_tools) {
        j->tools_json = xcalloc(req->n_tools, sizeof *j->tools_json);
        for (size_t i = 0; i < req->n_tools; i++)
            j->tools_json[i] = xstrdup(req->tools_json[i] ? req->tools_json[i] : "{}");
        j->n_tools = req->n_tools;
    }
    j->options = req->options;
    j->options.stop = xcalloc(req->options.n_stop + 1, sizeof *j->options.stop);
    for (size_t i = 0; i < req->options.n_stop; i++)
        j->options.stop[i] = xstrdup(req->options.stop[i]);
    j->no_truncate = req->no_truncate;
    j->has_keep_alive = req->has_keep_alive;
    j->keep_alive_s = req->keep_alive_s;
    j->t_submit = clock_mono();
    return j;
}

static void job_free(job *j)
{
    for (job_event_node *n = j->head; n;) {
        job_event_node *next = n->next;
        job_event_free(&n->ev);
        free(n);
        n = next;
    }
    engine_messages_free(j->messages, j->n_messages);
    for (size_t i = 0; i < j->n_tools; i++)
        free(j->tools_json[i]);
    free(j->tools_json);
    for (size_t i = 0; i < j->options.n_stop; i++)
        free(j->options.stop[i]);
    free(j->options.stop);
    free(j->model);
    free(j->raw_prompt);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j);
}

void job_unref(job *j)
{
    pthread_mutex_lock(&j->lock);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

void job_push(job *j, job_event ev)
{
    job_event_node *node = xcalloc(1, sizeof *node);
    node->ev = ev;
    pthread_mutex_lock(&j->lock);
    if (j->ended) { /* nothing after the end */
        pthread_mutex_unlock(&j->lock);
        job_event_free(&node->ev);
        free(node);
        return;
    }
    if (ev.kind == JOB_EV_DONE || ev.kind == JOB_EV_ERROR)
        j->ended = true;
    else
        j->streamed = true;
    if (j->tail)
        j->tail->next = node;
    else
        j->head = node;
    j->tail = node;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

void job_fail(job *j, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf msg = {0};
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    job_push(j, (job_event){.kind = JOB_EV_ERROR, .text = sb_steal(&msg), .http_status = status});
}

bool job_streamed(job *j)
{
    pthread_mutex_lock(&j->lock);
    bool streamed = j->streamed;
    pthread_mutex_unlock(&j->lock);
    return streamed;
}

bool job_is_cancelled(job *j)
{
    return atomic_load(&j->cancelled);
}

const char *job_last_user_text(const job *j)
{
    for (size_t i = j->n_messages; i-- > 0;)
        if (!strcmp(j->messages[i].role, "user"))
            return j->messages[i].content ? j->messages[i].content : "";
    return j->raw_prompt ? j->raw_prompt : "";
}

/* ---- the API's side (engine.h) */

chat_message *engine_copy_messages(const chat_message *msgs, size_t n, const char *suffix, const char *default_system,
                                   size_t *n_out)
{
    if (suffix && !*suffix)
        suffix = NULL;
    bool has_system = n > 0 && msgs[0].role && !strcmp(msgs[0].role, "system");
    size_t extra = suffix && !has_system ? 1 : 0;
    *n_out = n + extra;
    chat_message *out = xcalloc(*n_out + 1, sizeof *out);
    if (extra) {
        strbuf sys = {0};
        if (default_system && *default_system)
            sb_printf(&sys, "%s\n\n", default_system);
        sb_puts(&sys, suffix);
        out[0].role = xstrdup("system");
        out[0].content = sb_steal(&sys);
    }
    for (size_t i = 0; i < n; i++) {
        const chat_message *src = &msgs[i];
        chat_message *dst = &out[i + extra];
        dst->role = xstrdup(src->role ? src->role : "");
        if (i == 0 && has_system && suffix) {
            strbuf sys = {0};
            if (src->content && *src->content)
                sb_printf(&sys, "%s\n\n", src->content);
            sb_puts(&sys, suffix);
            dst->content = sb_steal(&sys);
        } else {
            dst->content = xstrdup(src->content ? src->content : "");
        }
        dst->reasoning_content = dup_or_null(src->reasoning_content);
        if (src->tool_calls && src->n_tool_calls) {
            chat_tool_call *calls = xcalloc(src->n_tool_calls, sizeof *calls);
            for (size_t k = 0; k < src->n_tool_calls; k++) {
                calls[k].name = xstrdup(src->tool_calls[k].name ? src->tool_calls[k].name : "");
                calls[k].arguments_json =
                    xstrdup(src->tool_calls[k].arguments_json ? src->tool_calls[k].arguments_json : "{}");
            }
            dst->tool_calls = calls;
            dst->n_tool_calls = src->n_tool_calls;
        }
    }
    return out;
}

void engine_messages_free(chat_message *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++) {
        free((char *)msgs[i].role);
        free((char *)msgs[i].content);
        free((char *)msgs[i].reasoning_content);
        for (size_t k = 0; k < msgs[i].n_tool_calls; k++) {
            free((char *)msgs[i].tool_calls[k].name);
            free((char *)msgs[i].tool_calls[k].arguments_json);
        }
        free((chat_tool_call *)msgs[i].tool_calls);
    }
    free(msgs);
}

bool job_next(job *j, job_event *ev, double timeout_s)
{
    double deadline = deadline_in(timeout_s);
    pthread_mutex_lock(&j->lock);
    while (!j->head && clock_cond_wait_until(&j->cond, &j->lock, deadline))
        ;
    job_event_node *n = j->head;
    if (n) {
        j->head = n->next;
        if (!j->head)
            j->tail = NULL;
    }
    pthread_mutex_unlock(&j->lock);
    if (!n)
        return false;
    *ev = n->ev;
    free(n);
    return true;
}

void job_event_free(job_event *ev)
{
    free(ev->text);
    free(ev->tool_name);
    free(ev->tool_arguments);
    ev->text = ev->tool_name = ev->tool_arguments = NULL;
}

void job_cancel(job *j)
{
    if (!atomic_exchange(&j->cancelled, true) && j->engine)
        engine_job_cancelled(j->engine, j);
}

void job_release(job *j)
{
    job_cancel(j);
    job_unref(j);
}
