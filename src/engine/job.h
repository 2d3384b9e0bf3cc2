/* job: one request's life inside the engine, and its event queue (internal to src/engine/; the API
 * sees the opaque `job` of engine.h).
 *
 * Ownership and references, the rules in one place:
 *   - engine_submit makes a job with two references: the API's (dropped by job_release) and the
 *     engine's (dropped by the worker once the job ended, or by engine_free for a job still queued).
 *     Whoever drops the last one frees it; nothing else frees a job.
 *   - The job owns copies of everything in the request (messages, tools, options, prompt): the API's
 *     buffers may go away right after engine_submit.
 *   - Events are produced by the worker only (job_push / job_fail), consumed by the API only
 *     (job_next). An event's strings belong to the queue until job_next hands the event over; then
 *     to the API, which frees them with job_event_free. Exactly one terminal event (DONE or ERROR)
 *     ends the queue; anything pushed after it is dropped.
 *   - `cancelled` is atomic: the API sets it (client gone), the worker reads it.
 * Locks: each job has its own lock, guarding refs and the event queue. It is a leaf lock: nothing
 * else is taken while it is held. */
#ifndef AXLLAMA_ENGINE_JOB_H
#define AXLLAMA_ENGINE_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "engine/engine.h"

typedef struct job_event_node {
    job_event ev;
    struct job_event_node *next;
} job_event_node;

struct job {
    engine *engine; /* to wake when the job is cancelled while it runs (NULL: none) */
    int refs;       /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* monotonic: an event was queued */
    job_event_node *head, *tail;
    bool ended;    /* DONE or ERROR queued */
    bool streamed; /* a piece was queued */
    atomic_bool cancelled;

    /* the request, owned copies (set by engine_submit, read-only afterwards) */
    job_kind kind;
    char *model;
    const model_manifest *manifest;
    chat_message *messages;
    size_t n_messages;
    char *raw_prompt;
    int think; /* 0 or 1, the model's default applied */
    char **tools_json;
    size_t n_tools;
    gen_options options;
    bool no_truncate;
    bool has_keep_alive;
    double keep_alive_s;
    double t_submit; /* clock_mono() */
    size_t bytes;    /* the request's text, counted in the engine's held bytes until the job ends */

    struct job *next; /* queue link, under the engine's queue_lock */
};

/* A new job holding copies of req for manifest m (think resolved to 0/1), two references. */
job *job_new(const job_request *req, const model_manifest *m, int think);
/* Drops one reference; frees the job with the last. */
void job_unref(job *j);

/* Queues an event (its strings are taken over). After the terminal event nothing more is queued. */
void job_push(job *j, job_event ev);
/* Queues the terminal ERROR event with status and a formatted message. */
void job_fail(job *j, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether a piece (thinking, content, tool call) has been queued. */
bool job_streamed(job *j);
bool job_is_cancelled(job *j);

/* The engine's side of job_cancel: a running job's turn is woken at once (engine.c). */
void engine_job_cancelled(engine *e, job *j);

/* The text of the last user message (or the raw prompt; "" when none). */
const char *job_last_user_text(const job *j);

#endif
