/* engine: the worker that runs jobs one at a time, and the engine's public API (engine.h). The other
 * parts: job.c (a request's copy and its event queue), loader.c (loading and unloading a model),
 * turn.c (one turn on the runtime), driver.c (the runtime protocol and its quirks), session.c (what
 * the KV cache holds; continue or reset), compat.c (compatibility mode).
 *
 * A job: the worker takes it from the FIFO queue, loads its model if needed (one model at a time),
 * plans the turn with the session (continue, or reset + fit), runs it (turn.c), commits what the
 * runtime's cache now holds, and ends the job with DONE or ERROR. Idle models are unloaded when their
 * keep_alive expires.
 *
 * Threads:
 *   - API threads (one per HTTP connection): engine_submit, job_next, job_cancel, job_release,
 *     engine_unload, engine_ps, engine_get_stats. They never call the runtime.
 *   - the engine worker (one): everything else here, loader.c, turn.c, compat.c and the driver's run
 *     functions; it alone owns the loaded model's parts, the session and the driver's connection.
 *   - the tokenizer service's threads: the on_* callbacks of loader.c, which only hand what the
 *     runtime sent to the driver (driver_saw_*), record the runtime's uid (status_lock) and pin it
 *     in the service (after releasing status_lock), or note that the service lost it
 *     (tokenizer_lost, driver_fail_run).
 *   - the supervisor's monitor threads (the runtime's, and the upstream's in compatibility mode):
 *     on_runtime_exit / on_upstream_exit set an atomic and fail the driver's run (driver_fail_run).
 * Locks, and what they guard (the lock order is this order: a lock may be taken while holding one
 * above it, never one below):
 *   1. queue_lock: the queue (head, tail, queued), unload_requested, running (the job being run, so
 *      job_cancel can interrupt its wait).
 *   2. status_lock: loaded, tok, svc, sup, up_sup, runtime_port, uid, keep_alive_s, running_job,
 *      expires_mono, and the load counters (loading, loads_*, restarts_before, ...) — written by the
 *      worker, read by engine_ps, engine_get_stats and the uid callback.
 *   3. the driver's lock (driver.c): what the tokenizer service saw, a pending failure.
 *   4. a job's lock (job.h): its references and events. A leaf.
 *   The supervisor's and the tokenizer service's own locks are never held while calling in here, and
 *   the callbacks take only the driver's lock or status_lock.
 * Atomics: shutting_down, runtime_died, upstream_died, tokenizer_lost, a job's cancelled.
 * Ownership: jobs are reference-counted (the API's reference and the engine's; job.h); events belong
 * to the job's queue until job_next hands them to the API.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/utf8.h"
#include "engine/engine_internal.h"

#define DRIVER_CALL_TIMEOUT_S 5.0
#define BUSY_TIMEOUT_S 60.0 /* "llm is running" lasts a reset prefill at most (16 chunks x 1.34 s on a Pi) */
#define IDLE_WAKE_S 1.0     /* the worker's longest sleep while a model idles */

/* Of the prompt text sent to the runtime (runtime_prompt). */
#define RUNTIME_PROMPT_MAX_BYTES 4096

/* ---------------------------------------------------------------- the turn's interfaces */

void engine_beat(engine *e)
{
    atomic_store(&e->heartbeat_ns, clock_mono_ns());
}

bool engine_responsive(engine *e, double max_age_s)
{
    uint64_t beat = atomic_load(&e->heartbeat_ns);
    return (double)(clock_mono_ns() - beat) / 1e9 <= max_age_s;
}

static drv_status rt_reset(void *rt, const char *system_prompt, long prefill_tokens)
{
    engine *e = rt;
    engine_beat(e);
    return driver_reset(e->drv, system_prompt, prefill_tokens);
}

static drv_status rt_start(void *rt, const char *prompt, const drv_sampling *s)
{
    engine *e = rt;
    engine_beat(e);
    return driver_start(e->drv, prompt, s);
}

static run_event_kind rt_next(void *rt, run_event *ev, double deadline)
{
    engine *e = rt;
    engine_beat(e);
    return driver_next(e->drv, ev, deadline);
}

static void rt_request_stop(void *rt)
{
    driver_request_stop(((engine *)rt)->drv);
}

static void rt_end(void *rt)
{
    driver_end_run(((engine *)rt)->drv);
}

turn_runtime engine_turn_runtime(engine *e)
{
    return (turn_runtime){
        .reset = rt_reset, .start = rt_start, .next = rt_next, .request_stop = rt_request_stop, .end = rt_end, .rt = e};
}

static bool svc_stage_reset(void *svc, const char *uid, const int32_t *ids, size_t n)
{
    return tok_service_stage_reset(svc, uid, ids, n);
}

static bool svc_stage_encode(void *svc, const char *uid, const int32_t *full, size_t n_full, size_t n_diff)
{
    return tok_service_stage_encode(svc, uid, full, n_full, n_diff);
}

static bool svc_clear_staged(void *svc, const char *uid)
{
    return tok_service_clear_staged(svc, uid);
}

turn_staging engine_turn_staging(engine *e)
{
    return (turn_staging){.stage_reset = svc_stage_reset,
                          .stage_encode = svc_stage_encode,
                          .clear_staged = svc_clear_staged,
                          .svc = e->svc};
}

drv_sampling engine_sampling(const job *j)
{
    const model_manifest *m = j->manifest;
    const gen_options *o = &j->options;
    drv_sampling s = {0};
    double temperature = o->has_temperature ? o->temperature : m->has_temperature ? m->temperature : 0.0;
    bool has_top_k = o->has_top_k || (!o->has_top_p && m->has_top_k);
    int top_k = o->has_top_k ? o->top_k : m->top_k;
    bool has_top_p = !has_top_k && (o->has_top_p || m->has_top_p);
    double top_p = o->has_top_p ? o->top_p : m->top_p;
    /* Every request sends what decides the decoding, since the runtime's settings are sticky (§3):
     * top-k 1 (greedy, whatever temperature an earlier request left: argmax does not change), or a
     * temperature > 0 with top-k or top-p. A temperature <= 0 is never sent: the runtime would log
     * it as an error line ("temperature ... is invalid") to switch temperature off, which greedy
     * decoding does not need. */
    s.has_temperature = temperature > 0;
    s.temperature = temperature;
    if (temperature <= 0 || (!has_top_k && !has_top_p)) { /* greedy: Qwen3-4B's shipped default */
        s.has_top_k = true;
        s.top_k = 1;
    } else if (has_top_k) {
        s.has_top_k = true;
        s.top_k = top_k;
    } else {
        s.has_top_p = true;
        s.top_p = top_p;
    }
    if (o->has_repeat_penalty || m->has_repeat_penalty) {
        s.has_repetition_penalty = true;
        s.repetition_penalty = o->has_repeat_penalty ? o->repeat_penalty : m->repeat_penalty;
    }
    return s;
}

void engine_after_failed_turn(engine *e, const turn_outcome *o)
{
    log_printf(&e->log, "generation failed: %s", o->error);
    if (o->wedged && e->sup)
        supervisor_stop(e->sup); /* wedged or hung: the next job starts it again */
}

void engine_end_job(engine *e, job *j, const turn_outcome *o, job_metrics *mt)
{
    if (o->result == TURN_OK) {
        if (e->sup)
            supervisor_note_served(e->sup); /* a later crash restarts after the shortest back-off */
        job_metrics done = o->metrics;
        done.load_ns = mt->load_ns;
        done.total_ns = (uint64_t)((clock_mono() - j->t_submit) * 1e9);
        job_push(j, (job_event){.kind = JOB_EV_DONE, .done_reason = o->done_reason, .metrics = done});
    } else {
        job_fail(j, 500, "%s", o->error);
    }
}

/* ---------------------------------------------------------------- one job */

static void finish_job(engine *e, job *j)
{
    double ka = j->has_keep_alive ? j->keep_alive_s : e->keep_alive_s;
    pthread_mutex_lock(&e->status_lock);
    e->keep_alive_s = ka; /* sticks to the loaded model */
    e->running_job = false;
    e->expires_mono = clock_mono() + (ka > 0 ? ka : 0);
    pthread_mutex_unlock(&e->status_lock);
    if (ka == 0)
        engine_unload_now(e);
}

/* Plans the job's turn with the session (attempt 1: the fallback after a full context). */
static bool plan_turn(engine *e, job *j, int attempt, session_plan *plan, char *err, size_t errlen)
{
    session_model sm = {.tok = e->tok,
                        .family = j->manifest->template_family,
                        .max_prefill = j->manifest->max_prefill,
                        .max_positions = j->manifest->max_positions,
                        .default_system = j->manifest->system_prompt,
                        .retain_ratio = e->cfg.context_retain,
                        .truncate = !j->no_truncate};
    if (j->kind == JOB_RAW)
        return session_plan_raw(&sm, j->raw_prompt, plan, err, errlen);
    return session_plan_chat_tools(&e->sess, &sm, j->messages, j->n_messages, (const char *const *)j->tools_json,
                                   j->n_tools, j->think, attempt > 0 ? PLAN_RESET_LAST_TURN : e->plan_mode, plan, err,
                                   errlen);
}

/* The prompt text handed to the runtime with /api/generate. The runtime prefills what axllama staged,
 * so the text only reaches its log and its /encode call (answered from the stage): a prompt of
 * megabytes would flood the log and pass the tokenizer service's body limit. At most
 * RUNTIME_PROMPT_MAX_BYTES of it, cut at a character boundary; free it. */
static char *runtime_prompt(const job *j)
{
    const char *text = job_last_user_text(j);
    size_t n = strlen(text);
    if (n > RUNTIME_PROMPT_MAX_BYTES)
        n = utf8_complete_prefix(text, RUNTIME_PROMPT_MAX_BYTES);
    return xstrndup(text, n);
}

/* A job in the normal mode: plan, run, commit; a full context resets and retries once. */
static void run_planned_job(engine *e, job *j, job_metrics *mt)
{
    turn_runtime rt = engine_turn_runtime(e);
    turn_staging staging = engine_turn_staging(e);
    char uid[TOK_SERVICE_UID_LEN + 1];
    pthread_mutex_lock(&e->status_lock);
    snprintf(uid, sizeof uid, "%s", e->uid);
    pthread_mutex_unlock(&e->status_lock);
    turn_outcome o = {0};
    char *prompt = runtime_prompt(j);
    for (int attempt = 0; attempt < 2; attempt++) {
        session_plan plan;
        char err[512];
        if (!plan_turn(e, j, attempt, &plan, err, sizeof err)) {
            turn_outcome_free(&o);
            free(prompt);
            job_fail(j, 400, "%s", err);
            return;
        }
        if (plan.dropped)
            log_printf(&e->log, "dropped the %zu oldest messages to fit the context", plan.dropped);
        if (plan.truncated)
            log_printf(&e->log,
                       "truncated the prompt: cut %s%zu tokens from the middle of the newest message to fit "
                       "the context (truncate: false refuses it instead)",
                       plan.truncated_at_least ? "at least " : "", plan.truncated);
        turn_plan tp = {.reset = plan.reset,
                        /* a non-empty system_prompt: an empty one is left out by the runtime, which is
                         * fine too (the staged answer is used either way), but keeps its log readable */
                        .reset_system = "(staged by axllama)",
                        .prompt = prompt,
                        .staged = true,
                        .uid = uid,
                        .reset_ids = &plan.reset_ids,
                        .held_ids = &e->sess.kv_ids,
                        .diff = &plan.diff,
                        .max_positions = j->manifest->max_positions,
                        .sampling = engine_sampling(j),
                        .per_token_hint_s = e->per_token_s,
                        .shutting_down = &e->shutting_down};
        turn_outcome_free(&o);
        restore_note_displaced(e, &plan, j->manifest);
        unsigned long calls = driver_calls(e->drv), connects = driver_connects(e->drv);
        turn_run(&tp, j, e->tok, &rt, &staging, &o);
        if (log_debug_enabled())
            log_printf(&e->log, "[DEBUG] turn: %s, prefilled %zu, %lu runtime calls, %lu new connections",
                       plan.reset ? "reset" : "continued", plan.reset_ids.len + plan.diff.len,
                       driver_calls(e->drv) - calls, driver_connects(e->drv) - connects);
        if (o.result == TURN_OK && o.per_token_s > 0)
            e->per_token_s = o.per_token_s;
        if (o.result == TURN_OK) {
            session_commit_calls(&e->sess, &plan, o.generated.v, o.generated.len, o.content, o.calls, o.n_calls, o.eos);
            e->sess.last_greedy = tp.sampling.has_top_k && tp.sampling.top_k == 1;
        }
        session_plan_free(&plan);
        if (o.result != TURN_CONTEXT_FULL)
            break;
        log_printf(&e->log, "the runtime reported a full context; resetting and retrying once");
        session_invalidate(&e->sess);
        snprintf(o.error, sizeof o.error, "the context is full even after a reset");
        o.result = TURN_FAILED;
    }
    /* the runtime's uid is gone (its reset or generate may have failed in any way): say so, and start
     * the runtime and the service again */
    bool uid_lost = o.result != TURN_OK && atomic_exchange(&e->tokenizer_lost, false);
    if (uid_lost)
        snprintf(o.error, sizeof o.error, "%s", TOKENIZER_LOST_MESSAGE);
    if (o.result != TURN_OK) {
        session_invalidate(&e->sess);
        engine_after_failed_turn(e, &o);
    }
    free(prompt);
    engine_end_job(e, j, &o, mt);
    if (uid_lost)
        engine_unload_now(e);
    turn_outcome_free(&o);
}

static void set_running(engine *e, job *j)
{
    pthread_mutex_lock(&e->queue_lock);
    e->running = j;
    pthread_mutex_unlock(&e->queue_lock);
    pthread_mutex_lock(&e->status_lock);
    e->running_job = j != NULL;
    pthread_mutex_unlock(&e->status_lock);
}

static void run_job(engine *e, job *j)
{
    char err[512];
    set_running(e, j);
    int status = engine_ensure_loaded(e, j->manifest, err, sizeof err);
    if (status == 503) {
        log_printf(&e->log, "%s: %s", j->manifest->name, err);
        job_fail(j, 503, "%s", err);
        set_running(e, NULL);
        return;
    }
    if (status) {
        log_printf(&e->log, "loading %s failed: %s", j->manifest->name, err);
        job_fail(j, 500, "failed to load model %s: %s", j->manifest->name, err);
        set_running(e, NULL);
        return;
    }
    if (job_is_cancelled(j) || atomic_load(&e->shutting_down)) {
        /* the client left while the model loaded: nothing to run (and no reset that would throw
         * away the conversation the runtime holds) */
        if (atomic_load(&e->shutting_down))
            job_fail(j, 503, "the server is shutting down");
        else
            job_fail(j, 499, "request canceled");
    } else {
        job_metrics mt = {.load_ns = (uint64_t)((clock_mono() - j->t_submit) * 1e9)};
        if (j->kind == JOB_LOAD) {
            mt.total_ns = mt.load_ns;
            job_push(j, (job_event){.kind = JOB_EV_DONE, .done_reason = "load", .metrics = mt});
        } else if (j->manifest->upstream_url) {
            compat_run_job(e, j, &mt);
        } else {
            run_planned_job(e, j, &mt);
        }
    }
    pthread_mutex_lock(&e->queue_lock);
    e->running = NULL;
    pthread_mutex_unlock(&e->queue_lock);
    finish_job(e, j);
}

/* ---------------------------------------------------------------- the worker */

/* Whether the loaded model's keep_alive ran out (and when it will, in *expires). */
static bool keep_alive_expired(engine *e, bool *expiring, double *expires)
{
    pthread_mutex_lock(&e->status_lock);
    *expiring = e->loaded && !e->running_job && e->keep_alive_s >= 0;
    *expires = e->expires_mono;
    pthread_mutex_unlock(&e->status_lock);
    return *expiring && clock_mono() >= *expires;
}

/* Takes the next job (or an unload request, or an expiry) from the queue, waiting for one. false
 * when the engine shuts down. */
static bool next_work(engine *e, job **j, char **unload_name)
{
    *j = NULL;
    *unload_name = NULL;
    pthread_mutex_lock(&e->queue_lock);
    while (!e->head && !atomic_load(&e->shutting_down) && !e->unload_requested) {
        engine_beat(e);
        bool expiring;
        double expires;
        if (keep_alive_expired(e, &expiring, &expires))
            break;
        double wake = clock_mono() + IDLE_WAKE_S;
        if (expiring && expires + 0.001 < wake)
            wake = expires + 0.001;
        clock_cond_wait_until(&e->queue_cond, &e->queue_lock, wake);
    }
    if (atomic_load(&e->shutting_down)) {
        pthread_mutex_unlock(&e->queue_lock);
        return false;
    }
    *j = e->head;
    if (*j) {
        e->head = (*j)->next;
        if (!e->head)
            e->tail = NULL;
        e->queued--;
    }
    *unload_name = e->unload_requested;
    e->unload_requested = NULL;
    pthread_mutex_unlock(&e->queue_lock);
    return true;
}

/* The job no longer counts in the engine's held bytes. */
static void release_bytes(engine *e, job *j)
{
    pthread_mutex_lock(&e->queue_lock);
    e->held_bytes -= j->bytes;
    j->bytes = 0;
    pthread_mutex_unlock(&e->queue_lock);
}

static void *engine_worker_main(void *arg)
{
    engine *e = arg;
    job *j;
    char *unload_name;
    while (next_work(e, &j, &unload_name)) {
        if (unload_name) {
            if (e->loaded && !strcmp(e->loaded->name, unload_name))
                engine_unload_now(e);
            free(unload_name);
        }
        if (!j) {
            bool expiring;
            double expires;
            if (keep_alive_expired(e, &expiring, &expires))
                engine_unload_now(e);
            continue;
        }
        if (job_is_cancelled(j)) /* the client left while it waited */
            job_fail(j, 499, "request canceled");
        else
            run_job(e, j);
        release_bytes(e, j);
        job_unref(j);
        restore_if_due(e); /* the runtime is idle: win back a conversation a side request pushed out */
    }
    return NULL;
}

/* ---------------------------------------------------------------- public */

engine *engine_new(const engine_config *cfg)
{
    engine *e = xcalloc(1, sizeof *e);
    e->cfg = *cfg;
    if (!e->cfg.max_queue)
        e->cfg.max_queue = 512;
    e->log = (log_sink){.fn = cfg->log, .user = cfg->log_user};
    e->plan_mode = cfg->reset_every_turn ? PLAN_RESET : PLAN_ANY;
    rt_driver_config dc = {.call_timeout_s = DRIVER_CALL_TIMEOUT_S,
                           .busy_timeout_s = BUSY_TIMEOUT_S,
                           .stall_timeout_s = cfg->stall_timeout_s,
                           .log = e->log};
    e->drv = driver_new(&dc);
    pthread_mutex_init(&e->queue_lock, NULL);
    clock_cond_init(&e->queue_cond);
    pthread_mutex_init(&e->status_lock, NULL);
    atomic_init(&e->runtime_died, false);
    atomic_init(&e->upstream_died, false);
    atomic_init(&e->tokenizer_lost, false);
    atomic_init(&e->shutting_down, false);
    atomic_init(&e->heartbeat_ns, clock_mono_ns());
    session_init(&e->sess);
    session_init(&e->displaced);
    pthread_create(&e->worker, NULL, engine_worker_main, e);
    return e;
}

void engine_free(engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->queue_lock);
    atomic_store(&e->shutting_down, true);
    pthread_cond_broadcast(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_lock);
    driver_interrupt(e->drv); /* a running turn sees shutting_down now */
    pthread_join(e->worker, NULL);
    for (job *j = e->head; j;) {
        job *next = j->next;
        job_fail(j, 503, "the server is shutting down");
        job_unref(j);
        j = next;
    }
    engine_unload_now(e);
    free(e->unload_requested);
    session_free(&e->sess);
    session_free(&e->displaced);
    driver_free(e->drv);
    pthread_mutex_destroy(&e->queue_lock);
    pthread_cond_destroy(&e->queue_cond);
    pthread_mutex_destroy(&e->status_lock);
    free(e);
}

static size_t text_bytes(const char *s)
{
    return s ? strlen(s) : 0;
}

/* The bytes of text a request holds (what job_new copies): messages, tool calls, tools, prompt, stop
 * sequences. */
static size_t request_bytes(const job_request *req)
{
    size_t n = text_bytes(req->raw_prompt) + text_bytes(req->system_suffix);
    for (size_t i = 0; req->messages && i < req->n_messages; i++) {
        const chat_message *m = &req->messages[i];
        n += text_bytes(m->content) + text_bytes(m->reasoning_content);
        for (size_t k = 0; m->tool_calls && k < m->n_tool_calls; k++)
            n += text_bytes(m->tool_calls[k].name) + text_bytes(m->tool_calls[k].arguments_json);
    }
    for (size_t i = 0; req->tools_json && i < req->n_tools; i++)
        n += text_bytes(req->tools_json[i]);
    for (size_t i = 0; req->options.stop && i < req->options.n_stop; i++)
        n += text_bytes(req->options.stop[i]);
    return n;
}

int engine_submit(engine *e, const job_request *req, job **out, char *err, size_t errlen)
{
    const model_manifest *m = model_registry_find(e->cfg.models, req->model ? req->model : "");
    if (!m) {
        snprintf(err, errlen, "model '%s' not found", req->model ? req->model : "");
        return 404;
    }
    int think = req->think < 0 ? (m->thinking && m->think_default ? 1 : 0) : req->think;
    if (req->think == 1 && !m->thinking) {
        snprintf(err, errlen, "\"%s\" does not support thinking", req->model);
        return 400;
    }
    if (m->upstream_url && req->kind == JOB_CHAT && req->n_tools) { /* the vendor's tokenizer renders no tools */
        snprintf(err, errlen, "\"%s\" does not support tools (its tokenizer service runs in compatibility mode)",
                 req->model);
        return 400;
    }
    size_t bytes = request_bytes(req);
    pthread_mutex_lock(&e->queue_lock);
    if (e->cfg.max_queued_bytes && e->held_bytes > 0 && e->held_bytes + bytes > e->cfg.max_queued_bytes) {
        size_t held = e->held_bytes;
        pthread_mutex_unlock(&e->queue_lock);
        snprintf(err, errlen,
                 "server busy, please try again.  the requests waiting hold %zu bytes, this one %zu more (at most "
                 "%zu: AXLLAMA_MAX_QUEUED_BYTES)",
                 held, bytes, e->cfg.max_queued_bytes);
        return 503;
    }
    e->held_bytes += bytes; /* reserved before the copy: parallel submits cannot all pass */
    pthread_mutex_unlock(&e->queue_lock);
    job *j = job_new(req, m, think);
    j->engine = e;
    j->bytes = bytes;
    pthread_mutex_lock(&e->queue_lock);
    if (e->queued >= e->cfg.max_queue || atomic_load(&e->shutting_down)) {
        e->held_bytes -= bytes;
        pthread_mutex_unlock(&e->queue_lock);
        job_unref(j);
        job_unref(j);
        snprintf(err, errlen, "server busy, please try again.  maximum pending requests exceeded");
        return 503;
    }
    if (e->tail)
        e->tail->next = j;
    else
        e->head = j;
    e->tail = j;
    e->queued++;
    bool restoring = e->restoring;
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_lock);
    if (restoring)
        driver_interrupt(e->drv); /* the restore yields unless this is its conversation's next turn */
    *out = j;
    return 200;
}

void engine_job_cancelled(engine *e, job *j)
{
    pthread_mutex_lock(&e->queue_lock);
    bool running = e->running == j;
    pthread_mutex_unlock(&e->queue_lock);
    if (running)
        driver_interrupt(e->drv); /* its turn stops the runtime at once */
}

bool engine_unload(engine *e, const char *model)
{
    const model_manifest *m = model_registry_find(e->cfg.models, model ? model : "");
    if (!m)
        return false;
    pthread_mutex_lock(&e->queue_lock);
    free(e->unload_requested);
    e->unload_requested = xstrdup(m->name);
    bool restoring = e->restoring;
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_lock);
    if (restoring)
        driver_interrupt(e->drv);
    return true;
}

size_t engine_ps(engine *e, engine_loaded_model *out, size_t max)
{
    if (max == 0)
        return 0;
    pthread_mutex_lock(&e->queue_lock);
    size_t queued = e->queued;
    pthread_mutex_unlock(&e->queue_lock);
    pthread_mutex_lock(&e->status_lock);
    const model_manifest *m = e->loaded;
    size_t n = 0;
    if (m) {
        engine_loaded_model *l = &out[0];
        memset(l, 0, sizeof *l);
        snprintf(l->name, sizeof l->name, "%s", m->name);
        rt_status st = e->sup ? supervisor_status(e->sup) : (rt_status){.state = RT_STOPPED};
        l->state = st.state;
        l->load_step = st.load_step;
        l->load_total = st.load_total;
        l->forever = e->keep_alive_s < 0;
        double left = e->running_job ? e->keep_alive_s : e->expires_mono - clock_mono();
        l->expires_at = (time_t)clock_wall() + (time_t)(left > 0 ? left : 0);
        l->size = m->size;
        l->context_length = m->max_positions;
        l->manifest = m;
        l->running = e->running_job;
        l->queued = queued;
        n = 1;
    }
    pthread_mutex_unlock(&e->status_lock);
    return n;
}

void engine_get_stats(engine *e, engine_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->queue_lock);
    out->queued = e->queued;
    out->running = e->running != NULL;
    pthread_mutex_unlock(&e->queue_lock);
    pthread_mutex_lock(&e->status_lock);
    if (e->loading)
        snprintf(out->loading, sizeof out->loading, "%s", e->loading->name);
    out->loads_ok = e->loads_ok;
    out->loads_failed = e->loads_failed;
    out->load_seconds = e->load_seconds;
    out->last_load_seconds = e->last_load_seconds;
    out->restarts = e->restarts_before + (e->sup ? (uint64_t)supervisor_status(e->sup).restarts : 0);
    out->last_load_failed = e->last_load_failed;
    snprintf(out->last_load_model, sizeof out->last_load_model, "%s", e->last_load_model);
    snprintf(out->last_load_error, sizeof out->last_load_error, "%s", e->last_load_error);
    pthread_mutex_unlock(&e->status_lock);
}
