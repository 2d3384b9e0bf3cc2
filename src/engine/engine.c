/* engine: the job queue, model loading and unloading, and one turn on the runtime. See engine.h.
 *
 * One turn (run_turn):
 *   1. plan it with the session (continue, or reset + fit);
 *   2. stage the reset ids (if any) and the encode answer in our tokenizer service, then call the
 *      runtime's /api/reset (if any) and /api/generate, retrying "llm is running" while a reset
 *      prefill runs (spec §7.4);
 *   3. the runtime's /decode calls to our service carry the generated ids: they are taken straight
 *      from there (no polling delay) and go through the output filter to the client; a decode of
 *      more than 3 ids, or of exactly the ids streamed so far, is the runtime's final decode of the
 *      whole reply (§2.6), not a piece;
 *   4. /api/generate_provider is polled every few ms only to learn that the run ended (done:true
 *      after our staged /encode was seen: §7.6's start race cannot fool us), to drain the text queue
 *      that is never cleared (§7.5) and to catch the context-full text (§2.8: reset and retry once
 *      with a fitted history);
 *   5. num_predict, stop sequences and a client that left end the run with /api/stop (§7.8).
 *
 * Compatibility mode (manifest "tokenizer_upstream", docs/models.md): the upstream command (if
 * any) runs under its own supervisor, started before the runtime and stopped after it; our service
 * is a proxy to it, so nothing is staged: a turn continues (the new user message as the prompt)
 * when the request extends the held conversation at the message level (compat_plan), else resets
 * with the real system prompt and sends the last user message. prompt_eval_count is the diff the
 * proxy saw; an upstream failure fails the turn and unloads the model (the next job starts both
 * again). */
#include "engine/engine.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/driver.h"
#include "engine/output.h"
#include "engine/session.h"
#include "engine/toolcall.h"
#include "tokensvc/tokensvc.h"

#define POLL_INTERVAL_S 0.005
#define DRIVER_TIMEOUT_S 5.0
#define BUSY_RETRY_S 0.005
#define CONTEXT_FULL_PREFIX "error: SetKVCache failed"
#define BUSY_TIMEOUT_S 60.0
#define STOP_GRACE_S 30.0 /* after /api/stop, how long the run may take to end */
#define STOP_RESEND_S 0.5 /* a stop that lands before the runtime's Run starts is lost (§2.7): repeat it */

/* ---------------------------------------------------------------- jobs */

typedef struct event_node {
    job_event ev;
    struct event_node *next;
} event_node;

struct job {
    engine *e;
    int refs; /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    event_node *head, *tail;
    bool ended;     /* DONE or ERROR queued */
    bool streamed;  /* a piece was queued */
    atomic_bool cancelled;

    /* the request, owned copies */
    job_kind kind;
    char *model;
    const model_manifest *manifest;
    chat_message *messages;
    size_t n_messages;
    char *raw_prompt;
    int think;
    char **tools_json; /* n_tools entries */
    size_t n_tools;
    gen_options options;
    bool has_keep_alive;
    double keep_alive_s;
    double t_submit;

    struct job *next; /* queue link */
};

/* ---------------------------------------------------------------- engine */

/* One decode call of the runtime, as observed by our tokenizer service. */
typedef struct observed {
    int32_t *ids;
    size_t n;
    struct observed *next;
} observed;

/* What the worker and the tokenizer-service callbacks share during one turn. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool active;
    bool encode_seen;
    observed *head, *tail;
    /* compatibility mode: what the proxy saw (the last /encode's diff, an upstream failure) */
    bool have_diff;
    size_t diff_len;
    bool upstream_failed;
    char upstream_err[320];
} turn_channel;

/* Compatibility mode (manifest "tokenizer_upstream"): what the runtime's conversation holds, at the
 * message level (the upstream renders it, so ids cannot be compared). */
typedef struct {
    bool valid;
    char *system;
    char **roles, **contents; /* after the system message, the reply last */
    size_t n;
} compat_session;

/* One compat turn: reset with system (or not), then generate with prompt. */
typedef struct {
    bool reset;
    const char *system;
    const char *prompt;
    const char *held_system; /* what to commit */
    size_t first;            /* index of the first message after the system message */
} compat_turn;

struct engine {
    engine_config cfg;
    double stall_timeout_s;
    plan_mode plan_mode; /* PLAN_RESET with AXLLAMA_RESET_EVERY_TURN=1: the seeds' design, for make bench */

    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;
    job *head, *tail;
    size_t queued;
    atomic_bool shutting_down;
    char *unload_requested; /* model name, handled by the worker when idle */
    pthread_t worker;

    /* the loaded model (worker-owned; status fields also read by engine_ps under status_lock) */
    pthread_mutex_t status_lock;
    const model_manifest *loaded;
    tokenizer *tok;
    tok_service *svc;
    supervisor *sup;
    int runtime_port;
    char uid[TOK_SERVICE_UID_LEN + 1];
    session sess;
    double keep_alive_s;  /* sticky, per loaded model */
    bool running_job;
    double expires_mono;  /* CLOCK_MONOTONIC; valid when !running_job and keep_alive >= 0 */
    atomic_bool runtime_died;

    turn_channel turn;
    /* compatibility mode */
    supervisor *up_sup;       /* the upstream tokenizer command, NULL when none */
    atomic_bool upstream_died;
    bool reload_needed;       /* an upstream failure: unload after the job */
    compat_session compat;
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void elog(engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void elog(engine *e, const char *fmt, ...)
{
    if (!e->cfg.log)
        return;
    va_list ap;
    va_start(ap, fmt);
    strbuf line = {0};
    sb_vprintf(&line, fmt, ap);
    va_end(ap);
    e->cfg.log(e->cfg.log_user, line.data);
    sb_free(&line);
}

/* ---------------------------------------------------------------- job events */

static void job_push(job *j, job_event ev)
{
    event_node *node = xcalloc(1, sizeof *node);
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

static void job_fail(job *j, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(job *j, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf msg = {0};
    sb_vprintf(&msg, fmt, ap);
    va_end(ap);
    job_push(j, (job_event){.kind = JOB_EV_ERROR, .text = sb_steal(&msg), .http_status = status});
}

/* Where one turn's output goes: thinking straight to the job; content through the tool-call
 * parser when the request has tools; the answer as the client got it is kept for the session. */
typedef struct {
    job *j;
    toolcall_parser *tc; /* NULL without tools */
    strbuf content;      /* content pieces sent (tool-call blocks not included) */
    chat_tool_call *calls;
    size_t n_calls;
} turn_sink;

static void sink_text(void *user, const char *text, size_t len)
{
    turn_sink *k = user;
    sb_append(&k->content, text, len);
    job_push(k->j, (job_event){.kind = JOB_EV_CONTENT, .text = xstrndup(text, len)});
}

static void sink_call(void *user, const char *name, const char *arguments)
{
    turn_sink *k = user;
    k->calls = xrealloc(k->calls, (k->n_calls + 1) * sizeof *k->calls);
    k->calls[k->n_calls++] = (chat_tool_call){.name = xstrdup(name), .arguments_json = xstrdup(arguments)};
    job_push(k->j, (job_event){.kind = JOB_EV_TOOL_CALL, .tool_name = xstrdup(name), .tool_arguments = xstrdup(arguments)});
}

static void job_piece(void *user, bool thinking, const char *text, size_t len)
{
    turn_sink *k = user;
    if (thinking)
        job_push(k->j, (job_event){.kind = JOB_EV_THINKING, .text = xstrndup(text, len)});
    else if (k->tc)
        toolcall_push(k->tc, text, len);
    else
        sink_text(k, text, len);
}

static void sink_init(turn_sink *k, job *j)
{
    memset(k, 0, sizeof *k);
    k->j = j;
    if (j->n_tools)
        k->tc = toolcall_new(sink_text, sink_call, k);
    sb_puts(&k->content, "");
}

static void sink_free(turn_sink *k)
{
    toolcall_free(k->tc);
    sb_free(&k->content);
    for (size_t i = 0; i < k->n_calls; i++) {
        free((char *)k->calls[i].name);
        free((char *)k->calls[i].arguments_json);
    }
    free(k->calls);
    memset(k, 0, sizeof *k);
}

static void job_free(job *j)
{
    for (event_node *n = j->head; n;) {
        event_node *next = n->next;
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

static void job_unref(job *j)
{
    pthread_mutex_lock(&j->lock);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

bool job_next(job *j, job_event *ev, double timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_nsec / 1e9 + timeout_s;
    until.tv_sec += (time_t)t;
    until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    pthread_mutex_lock(&j->lock);
    while (!j->head) {
        if (pthread_cond_timedwait(&j->cond, &j->lock, &until) != 0)
            break;
    }
    event_node *n = j->head;
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
    atomic_store(&j->cancelled, true);
}

void job_release(job *j)
{
    job_cancel(j);
    job_unref(j);
}

/* ---------------------------------------------------------------- tokenizer-service callbacks */

static void on_new_uid(void *user, const char *uid)
{
    engine *e = user;
    pthread_mutex_lock(&e->status_lock);
    snprintf(e->uid, sizeof e->uid, "%s", uid);
    pthread_mutex_unlock(&e->status_lock);
}

static void on_decode(void *user, const char *uid, const int32_t *ids, size_t n, const char *text, size_t len)
{
    (void)uid;
    (void)text;
    (void)len;
    engine *e = user;
    turn_channel *t = &e->turn;
    pthread_mutex_lock(&t->lock);
    if (t->active) {
        observed *o = xcalloc(1, sizeof *o);
        o->ids = xmalloc((n ? n : 1) * sizeof *ids);
        memcpy(o->ids, ids, n * sizeof *ids);
        o->n = n;
        if (t->tail)
            t->tail->next = o;
        else
            t->head = o;
        t->tail = o;
        pthread_cond_signal(&t->cond);
    }
    pthread_mutex_unlock(&t->lock);
}

static void on_request(void *user, const char *method, const char *path, const char *body, size_t len)
{
    (void)method;
    (void)body;
    (void)len;
    engine *e = user;
    if (strncmp(path, "/encode", 7) && strncmp(path, "//encode", 8))
        return;
    pthread_mutex_lock(&e->turn.lock);
    if (e->turn.active)
        e->turn.encode_seen = true;
    pthread_mutex_unlock(&e->turn.lock);
}

static void on_encode(void *user, const char *uid, const int32_t *diff, size_t n)
{
    (void)uid;
    (void)diff;
    engine *e = user;
    pthread_mutex_lock(&e->turn.lock);
    if (e->turn.active) {
        e->turn.have_diff = true;
        e->turn.diff_len = n;
    }
    pthread_mutex_unlock(&e->turn.lock);
}

static void on_upstream_error(void *user, const char *path, const char *message)
{
    (void)path;
    engine *e = user;
    pthread_mutex_lock(&e->turn.lock);
    if (!e->turn.upstream_failed)
        snprintf(e->turn.upstream_err, sizeof e->turn.upstream_err, "%s", message);
    e->turn.upstream_failed = true;
    pthread_cond_signal(&e->turn.cond);
    pthread_mutex_unlock(&e->turn.lock);
    elog(e, "%s", message);
}

static void on_upstream_log(void *user, const char *line)
{
    engine *e = user;
    elog(e, "tokenizer upstream: %s", line);
}

static void on_upstream_exit(void *user, const rt_status *st)
{
    engine *e = user;
    atomic_store(&e->upstream_died, true);
    pthread_mutex_lock(&e->turn.lock);
    pthread_cond_signal(&e->turn.cond);
    pthread_mutex_unlock(&e->turn.lock);
    elog(e, "the tokenizer upstream exited (status %d)", st->last_exit);
}

static void compat_clear(compat_session *c)
{
    free(c->system);
    for (size_t i = 0; i < c->n; i++) {
        free(c->roles[i]);
        free(c->contents[i]);
    }
    free(c->roles);
    free(c->contents);
    memset(c, 0, sizeof *c);
}

static void on_runtime_log(void *user, const char *line)
{
    engine *e = user;
    elog(e, "runtime: %s", line);
}

static void on_runtime_exit(void *user, const rt_status *st)
{
    engine *e = user;
    atomic_store(&e->runtime_died, true);
    pthread_mutex_lock(&e->turn.lock);
    pthread_cond_signal(&e->turn.cond);
    pthread_mutex_unlock(&e->turn.lock);
    elog(e, "runtime exited (status %d); restarting", st->last_exit);
}

/* ---------------------------------------------------------------- loading */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void unload(engine *e)
{
    if (!e->loaded)
        return;
    elog(e, "unloading %s", e->loaded->name);
    pthread_mutex_lock(&e->status_lock); /* engine_ps must not see half-freed parts */
    supervisor *sup = e->sup;
    supervisor *up = e->up_sup;
    tok_service *svc = e->svc;
    tokenizer *tok = e->tok;
    e->sup = NULL;
    e->up_sup = NULL;
    e->svc = NULL;
    e->tok = NULL;
    e->loaded = NULL;
    e->uid[0] = '\0';
    pthread_mutex_unlock(&e->status_lock);
    supervisor_free(sup); /* stops the runtime: /api/stop, SIGINT, SIGKILL after a timeout */
    supervisor_free(up);  /* then the upstream tokenizer it used (compatibility mode) */
    tok_service_stop(svc);
    tokenizer_free(tok);
    session_free(&e->sess);
    compat_clear(&e->compat);
}

static char *substitute_port(const char *arg, int port)
{
    strbuf out = {0};
    for (const char *p = arg; *p;) {
        if (!strncmp(p, "{port}", 6)) {
            sb_printf(&out, "%d", port);
            p += 6;
        } else {
            sb_putc(&out, *p++);
        }
    }
    return sb_steal(&out);
}

/* Makes m the loaded model, ready to run. */
/* The load timeout in seconds (no limit: a very large number). */
static double load_timeout(const engine *e, const model_manifest *m)
{
    double t = m->has_load_timeout ? m->load_timeout_s : e->cfg.load_timeout_s;
    return t > 0 ? t : 1e9;
}

/* True once an HTTP server answers (any status) at url within timeout_s (polled). */
static bool upstream_answers(const char *url, double timeout_s)
{
    double end = now_mono() + timeout_s;
    strbuf target = {0};
    sb_printf(&target, "%s/bos_id", url);
    bool ok = false;
    for (;;) {
        CURL *curl = curl_easy_init();
        if (curl) {
            curl_easy_setopt(curl, CURLOPT_URL, target.data);
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(curl, CURLOPT_PROXY, "");
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
            curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
            ok = curl_easy_perform(curl) == CURLE_OK;
            curl_easy_cleanup(curl);
        }
        if (ok || now_mono() >= end)
            break;
        sleep_s(0.2);
    }
    sb_free(&target);
    return ok;
}

/* Compatibility mode: starts the manifest's upstream command and waits until it is ready, or
 * (without a command) waits until the upstream's url answers. */
static bool start_upstream(engine *e, const model_manifest *m, supervisor **out, char *err, size_t errlen)
{
    *out = NULL;
    double timeout = m->upstream_start_timeout_s > 0 ? m->upstream_start_timeout_s : 60;
    if (m->upstream_command) {
        elog(e, "starting the tokenizer upstream %s", m->upstream_command[0]);
        supervisor_config sc = {.binary = m->upstream_command[0],
                                .args = (const char *const *)m->upstream_command + 1,
                                .workdir = m->upstream_workdir,
                                .port = m->upstream_port,
                                .load_timeout_s = timeout,
                                .stop_timeout_s = 5,
                                .restart = false,
                                .on_log = on_upstream_log,
                                .on_exit = on_upstream_exit,
                                .user = e};
        supervisor *up = supervisor_new(&sc);
        char why[256];
        if (!supervisor_start(up, why, sizeof why) || !supervisor_wait_ready(up, timeout + 5, why, sizeof why)) {
            snprintf(err, errlen, "the tokenizer upstream (%s) did not start: %s", m->upstream_command[0], why);
            supervisor_free(up);
            return false;
        }
        /* ready means its port (the url's, manifest.c checks that) answered HTTP */
        *out = up;
        return true;
    }
    if (!upstream_answers(m->upstream_url, timeout)) {
        snprintf(err, errlen, "the tokenizer upstream %s does not answer", m->upstream_url);
        return false;
    }
    return true;
}

/* supervisor_wait_ready in short slices, so that a server shutting down does not wait out a
 * load (133 s on a Pi, or forever with load_timeout 0). */
static bool wait_ready(engine *e, supervisor *sup, double timeout_s, char *err, size_t errlen)
{
    double end = now_mono() + timeout_s;
    for (;;) {
        if (atomic_load(&e->shutting_down)) {
            snprintf(err, errlen, "the server is shutting down");
            return false;
        }
        double left = end - now_mono();
        if (supervisor_wait_ready(sup, left < 0.5 ? (left > 0 ? left : 0) : 0.5, err, errlen))
            return true;
        rt_state st = supervisor_status(sup).state;
        if ((st != RT_LOADING && st != RT_RESTARTING) || now_mono() >= end)
            return false;
    }
}

static bool ensure_loaded(engine *e, const model_manifest *m, char *err, size_t errlen)
{
    if (e->loaded == m && m->upstream_url &&
        (atomic_load(&e->upstream_died) || (e->up_sup && supervisor_status(e->up_sup).state != RT_READY)))
        unload(e); /* the upstream is gone: the runtime's uid with it; start both again */
    if (e->loaded == m && e->sup) {
        rt_status st = supervisor_status(e->sup);
        if (st.state == RT_READY || st.state == RT_LOADING || st.state == RT_RESTARTING) {
            if (wait_ready(e, e->sup, load_timeout(e, m), err, errlen)) {
                if (atomic_exchange(&e->runtime_died, false)) {
                    session_invalidate(&e->sess); /* a restarted runtime holds nothing */
                    compat_clear(&e->compat);
                }
                return true;
            }
        }
        unload(e); /* failed or stopped: start over */
    }
    if (e->loaded)
        unload(e);

    elog(e, "loading %s", m->name);
    tokenizer *tok = tokenizer_load(m->tokenizer_dir, err, errlen);
    if (!tok)
        return false;
    supervisor *up = NULL;
    atomic_store(&e->upstream_died, false);
    if (m->upstream_url && !start_upstream(e, m, &up, err, errlen)) {
        tokenizer_free(tok);
        return false;
    }
    tok_service_config tc = {.tok = tok,
                             .host = "127.0.0.1",
                             .port = (uint16_t)m->tokenizer_port,
                             .on_new_uid = on_new_uid,
                             .on_decode = on_decode,
                             .on_request = on_request,
                             .upstream_url = m->upstream_url,
                             .on_encode = on_encode,
                             .on_upstream_error = on_upstream_error,
                             .user = e};
    char svc_err[256];
    tok_service *svc = tok_service_start(&tc, svc_err, sizeof svc_err);
    if (!svc) {
        snprintf(err, errlen, "cannot start the tokenizer service: %s", svc_err);
        supervisor_free(up);
        tokenizer_free(tok);
        return false;
    }
    int port = m->runtime_port > 0 ? m->runtime_port : free_port();

    /* args: the manifest's ({port} filled in), then --url_tokenizer_model and --devices */
    size_t n = 0;
    char **args = xcalloc(m->n_runtime_args + 6, sizeof *args);
    for (size_t i = 0; i < m->n_runtime_args; i++)
        args[n++] = substitute_port(m->runtime_args[i], port);
    args[n++] = xstrdup("--url_tokenizer_model");
    strbuf url = {0};
    sb_printf(&url, "http://127.0.0.1:%u", (unsigned)tok_service_port(svc));
    args[n++] = sb_steal(&url);
    if (m->devices) {
        args[n++] = xstrdup("--devices");
        args[n++] = !strcmp(m->devices, "auto") ? supervisor_detect_devices() : xstrdup(m->devices);
    }
    double timeout = load_timeout(e, m);
    supervisor_config sc = {.binary = m->runtime_binary,
                            .args = (const char *const *)args,
                            .env = (const char *const *)m->env,
                            .workdir = m->runtime_workdir,
                            .port = port,
                            .load_timeout_s = timeout,
                            .restart = true,
                            .on_log = on_runtime_log,
                            .on_exit = on_runtime_exit,
                            .user = e};
    supervisor *sup = supervisor_new(&sc);
    for (size_t i = 0; i < n; i++)
        free(args[i]);
    free(args);

    pthread_mutex_lock(&e->status_lock);
    e->loaded = m;
    e->tok = tok;
    e->svc = svc;
    e->sup = sup;
    e->up_sup = up;
    e->runtime_port = port;
    e->uid[0] = '\0';
    e->keep_alive_s = e->cfg.default_keep_alive_s;
    pthread_mutex_unlock(&e->status_lock);
    session_init(&e->sess);
    atomic_store(&e->runtime_died, false);

    if (!supervisor_start(sup, err, errlen) || !wait_ready(e, sup, timeout, err, errlen)) {
        unload(e);
        return false;
    }
    elog(e, "%s is ready", m->name);
    return true;
}

/* ---------------------------------------------------------------- one turn */

typedef enum { TURN_OK, TURN_CONTEXT_FULL, TURN_FAILED } turn_result;

typedef struct {
    idvec streamed;    /* ids of the pieces so far */
    idvec final_ids;   /* the final decode (all generated ids) */
    bool have_final;
    observed *maybe_final; /* a <= 3-id decode equal to everything streamed: final unless more come */
    double t_first;    /* first piece */
    double t_last;     /* last piece */
} turn_ids;

static void take_piece(output_filter *out, turn_ids *ti, const int32_t *ids, size_t n, output_status *ost)
{
    if (!n)
        return;
    if (ti->t_first == 0)
        ti->t_first = now_mono();
    ti->t_last = now_mono();
    iv_append(&ti->streamed, ids, n);
    if (*ost == OUTPUT_MORE)
        *ost = output_push(out, ids, n);
}

static void free_observed(observed *o)
{
    if (o) {
        free(o->ids);
        free(o);
    }
}

/* Classifies the runtime's decode calls (see the top of this file). */
static void take_observed(output_filter *out, turn_ids *ti, observed *o, output_status *ost)
{
    if (ti->maybe_final) { /* something came after it: it was a piece */
        observed *p = ti->maybe_final;
        ti->maybe_final = NULL;
        ti->have_final = false;
        take_piece(out, ti, p->ids, p->n, ost);
        free_observed(p);
    }
    bool same_as_streamed = o->n == ti->streamed.len && o->n > 0 &&
                            !memcmp(o->ids, ti->streamed.v, o->n * sizeof *o->ids);
    if (o->n > 3 || same_as_streamed) {
        iv_clear(&ti->final_ids);
        iv_append(&ti->final_ids, o->ids, o->n);
        ti->have_final = true;
        if (o->n <= 3) {
            ti->maybe_final = o;
            return;
        }
    } else {
        take_piece(out, ti, o->ids, o->n, ost);
    }
    free_observed(o);
}

static drv_sampling sampling_for(const job *j)
{
    const model_manifest *m = j->manifest;
    const gen_options *o = &j->options;
    drv_sampling s = {0};
    double temperature = o->has_temperature ? o->temperature : m->has_temperature ? m->temperature : 0.0;
    bool has_top_k = o->has_top_k || (!o->has_top_p && m->has_top_k);
    int top_k = o->has_top_k ? o->top_k : m->top_k;
    bool has_top_p = !has_top_k && (o->has_top_p || m->has_top_p);
    double top_p = o->has_top_p ? o->top_p : m->top_p;
    /* every request sends a full set: the runtime's settings are sticky (§3) */
    s.has_temperature = true;
    s.temperature = temperature; /* <= 0 switches it off */
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

static const char *drv_status_text(drv_status st)
{
    return st == DRV_DOWN ? "no answer" : st == DRV_BUSY ? "it stays busy" : "error";
}

static const char *last_user_text(const job *j)
{
    for (size_t i = j->n_messages; i-- > 0;)
        if (!strcmp(j->messages[i].role, "user"))
            return j->messages[i].content ? j->messages[i].content : "";
    return j->raw_prompt ? j->raw_prompt : "";
}

/* Sends one request to the runtime, retrying "llm is running" (a reset prefill) until timeout. */
static drv_status call_retrying(engine *e, const rt_driver *d, bool reset, const char *text, const drv_sampling *s,
                                double timeout_s)
{
    double end = now_mono() + timeout_s;
    for (;;) {
        drv_status st = reset ? driver_reset(d, text) : driver_generate(d, text, s);
        if (st != DRV_BUSY || now_mono() > end || atomic_load(&e->runtime_died))
            return st;
        sleep_s(BUSY_RETRY_S);
    }
}

static void turn_begin(engine *e)
{
    pthread_mutex_lock(&e->turn.lock);
    e->turn.active = true;
    e->turn.encode_seen = false;
    pthread_mutex_unlock(&e->turn.lock);
}

static void turn_end(engine *e)
{
    pthread_mutex_lock(&e->turn.lock);
    e->turn.active = false;
    observed *o = e->turn.head;
    e->turn.head = e->turn.tail = NULL;
    pthread_mutex_unlock(&e->turn.lock);
    while (o) {
        observed *next = o->next;
        free_observed(o);
        o = next;
    }
}

/* Takes every decode call observed so far, in order. */
static void take_all_observed(engine *e, output_filter *out, turn_ids *ti, output_status *ost)
{
    pthread_mutex_lock(&e->turn.lock);
    observed *o = e->turn.head;
    e->turn.head = e->turn.tail = NULL;
    pthread_mutex_unlock(&e->turn.lock);
    while (o) {
        observed *next = o->next;
        o->next = NULL;
        take_observed(out, ti, o, ost);
        o = next;
    }
}

/* Compatibility mode: the upstream failed or exited since the turn began (message in err). */
static bool upstream_failed(engine *e, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->turn.lock);
    bool failed = e->turn.upstream_failed;
    if (failed)
        snprintf(err, errlen, "the tokenizer upstream failed: %s", e->turn.upstream_err);
    pthread_mutex_unlock(&e->turn.lock);
    if (!failed && atomic_load(&e->upstream_died)) {
        failed = true;
        snprintf(err, errlen, "the tokenizer upstream exited unexpectedly");
    }
    return failed;
}

/* Compatibility mode: the conversation the runtime holds after a turn that ended with EOS. */
static void compat_commit(engine *e, const job *j, const compat_turn *ct, const char *reply, bool eos)
{
    compat_session *c = &e->compat;
    compat_clear(c);
    if (!eos || j->kind != JOB_CHAT)
        return;
    c->valid = true;
    c->system = xstrdup(ct->held_system);
    size_t n = j->n_messages - ct->first + 1;
    c->roles = xcalloc(n, sizeof *c->roles);
    c->contents = xcalloc(n, sizeof *c->contents);
    for (size_t i = ct->first; i < j->n_messages; i++) {
        c->roles[c->n] = xstrdup(j->messages[i].role);
        c->contents[c->n++] = xstrdup(j->messages[i].content ? j->messages[i].content : "");
    }
    c->roles[c->n] = xstrdup("assistant");
    c->contents[c->n++] = xstrdup(reply ? reply : "");
}

static turn_result run_turn(engine *e, job *j, session_plan *plan, const compat_turn *ct, job_metrics *mt,
                            const char **done_reason, char *err, size_t errlen)
{
    const model_manifest *m = j->manifest;
    rt_driver d = {.port = e->runtime_port, .timeout_s = DRIVER_TIMEOUT_S};
    char uid[TOK_SERVICE_UID_LEN + 1];
    pthread_mutex_lock(&e->status_lock);
    snprintf(uid, sizeof uid, "%s", e->uid);
    pthread_mutex_unlock(&e->status_lock);
    if (!uid[0]) {
        snprintf(err, errlen, "the runtime did not register with the tokenizer service");
        return TURN_FAILED;
    }

    pthread_mutex_lock(&e->turn.lock);
    e->turn.upstream_failed = false;
    e->turn.have_diff = false;
    e->turn.diff_len = 0;
    pthread_mutex_unlock(&e->turn.lock);
    size_t start_pos = 0;
    if (!ct) { /* (compatibility mode: the upstream decides what is prefilled) */
        /* stage what the runtime will prefill */
        idvec full = {0};
        if (plan->reset) {
            if (!tok_service_stage_reset(e->svc, uid, plan->reset_ids.v, plan->reset_ids.len)) {
                snprintf(err, errlen, "cannot stage the reset");
                return TURN_FAILED;
            }
            iv_append(&full, plan->reset_ids.v, plan->reset_ids.len);
        } else {
            iv_append(&full, e->sess.kv_ids.v, e->sess.kv_ids.len);
        }
        iv_append(&full, plan->diff.v, plan->diff.len);
        bool staged = tok_service_stage_encode(e->svc, uid, full.v, full.len, plan->diff.len);
        start_pos = full.len;
        iv_free(&full);
        if (!staged) {
            snprintf(err, errlen, "cannot stage the prompt");
            return TURN_FAILED;
        }
    }

    (void)m;
    /* "llm is running" lasts a reset prefill at most (16 chunks x 1.34 s on a Pi): longer means the
     * runtime is wedged (the old build's context-full bug) and only a restart helps */
    double busy_timeout = BUSY_TIMEOUT_S;
    if (ct ? ct->reset : plan->reset) {
        /* a non-empty system_prompt: an empty one is left out by the runtime, which is fine too
         * (the staged answer is used either way), but keeps the runtime's log readable; in
         * compatibility mode the real one (the upstream renders it) */
        drv_status st = call_retrying(e, &d, true, ct ? ct->system : "(staged by axllama)", NULL, busy_timeout);
        if (st != DRV_OK) {
            tok_service_clear_staged(e->svc, uid);
            snprintf(err, errlen, "the runtime refused the reset (%s)", drv_status_text(st));
            if (st == DRV_BUSY)
                supervisor_stop(e->sup); /* wedged: the next job starts it again */
            return TURN_FAILED;
        }
    }
    turn_sink sink;
    sink_init(&sink, j);
    output_filter *out = output_new(e->tok, j->think == 1, (const char *const *)j->options.stop, j->options.n_stop,
                                    j->options.has_num_predict ? j->options.num_predict : -1, job_piece, &sink);
    drv_sampling s = sampling_for(j);
    turn_begin(e);
    double t_gen = now_mono();
    drv_status st = call_retrying(e, &d, false, ct ? ct->prompt : last_user_text(j), &s, busy_timeout);
    if (st != DRV_OK) {
        turn_end(e);
        output_free(out);
        sink_free(&sink);
        tok_service_clear_staged(e->svc, uid);
        snprintf(err, errlen, "the runtime refused the generation (%s)", drv_status_text(st));
        if (st == DRV_BUSY)
            supervisor_stop(e->sup); /* wedged: the next job starts it again */
        return TURN_FAILED;
    }

    turn_ids ti = {0};
    output_status ost = OUTPUT_MORE;
    bool stop_sent = false, started = false, finished = false, context_full = false, died = false;
    bool upstream_bad = false;
    double stop_deadline = 0, next_stop = 0, last_progress = now_mono(), next_poll = 0;
    bool was_started = false, saw_full_text = false;
    strbuf queue_text = {0};
    while (!finished) {
        /* take what the runtime decoded */
        pthread_mutex_lock(&e->turn.lock);
        if (!e->turn.head && !atomic_load(&e->runtime_died)) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += (long)(POLL_INTERVAL_S * 1e9);
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&e->turn.cond, &e->turn.lock, &until);
        }
        observed *o = e->turn.head;
        e->turn.head = e->turn.tail = NULL;
        started = started || e->turn.encode_seen;
        pthread_mutex_unlock(&e->turn.lock);
        if (started && !was_started) { /* the runtime took the turn: its prefill begins */
            was_started = true;
            last_progress = now_mono();
        }
        for (; o;) {
            observed *next = o->next;
            o->next = NULL;
            take_observed(out, &ti, o, &ost);
            last_progress = now_mono();
            o = next;
        }
        if (atomic_load(&e->runtime_died)) {
            died = true;
            break;
        }
        if (ct && upstream_failed(e, err, errlen)) {
            upstream_bad = true;
            break;
        }
        /* limits and cancellation: stop the runtime once */
        bool want_stop = ost != OUTPUT_MORE || atomic_load(&j->cancelled) || atomic_load(&e->shutting_down);
        if (want_stop && (!stop_sent || now_mono() >= next_stop)) {
            driver_stop(&d);
            if (!stop_sent)
                stop_deadline = now_mono() + STOP_GRACE_S;
            stop_sent = true;
            next_stop = now_mono() + STOP_RESEND_S;
        }
        if (now_mono() >= next_poll) {
            bool done = false;
            sb_clear(&queue_text);
            drv_status ps = driver_poll(&d, &queue_text, &done);
            next_poll = now_mono() + POLL_INTERVAL_S;
            if (ps == DRV_OK) {
                if (queue_text.len && strstr(queue_text.data, CONTEXT_FULL_PREFIX))
                    saw_full_text = true;
                if (done && (started || saw_full_text))
                    finished = true;
                /* done:false alone is no progress: a runtime whose NPU call hangs (or the old
                 * build's context-full wedge) answers it forever; progress is its decode calls */
            }
        }
        if (stop_sent && !finished && now_mono() > stop_deadline) {
            snprintf(err, errlen, "the runtime did not stop");
            break;
        }
        if (!finished && now_mono() - last_progress > e->stall_timeout_s) {
            snprintf(err, errlen, "the runtime stopped answering (no progress for %.0f s)", e->stall_timeout_s);
            break;
        }
    }
    /* The runtime makes all its decode calls (the leftover ids at EOS, the final decode) before it
     * reports done, but they may have come in after the take at the top of the last round: take
     * them now, or the end of the reply would be lost. */
    if (finished)
        take_all_observed(e, out, &ti, &ost);
    /* Context full (§2.8): the run ended without a single decode call (every real run makes at
     * least the final one). Not the queue text alone: it also carries the model's own words, and
     * the runtime clears busy before it pushes the error text, so a poll may miss it. */
    context_full = finished && ti.streamed.len == 0 && !ti.have_final && !ti.maybe_final;
    if (context_full && !saw_full_text)
        elog(e, "the run ended without generating: taken as a full context");
    turn_end(e);
    free_observed(ti.maybe_final);
    sb_free(&queue_text);

    turn_result result = TURN_OK;
    if (ct && !upstream_bad && finished && upstream_failed(e, err, errlen))
        upstream_bad = true; /* a failure in the last decode calls */
    if (upstream_bad) {
        e->reload_needed = true; /* the runtime's uid and history are in doubt: start both again */
        result = TURN_FAILED;
    } else if (died) {
        snprintf(err, errlen, "the model runtime exited unexpectedly; it is being restarted");
        result = TURN_FAILED;
    } else if (!finished) {
        result = TURN_FAILED;
        if (e->sup) /* a hung runtime: restart it */
            supervisor_stop(e->sup);
    } else if (context_full) {
        result = TURN_CONTEXT_FULL;
    }
    if (result != TURN_OK) {
        output_free(out);
        sink_free(&sink);
        iv_free(&ti.streamed);
        iv_free(&ti.final_ids);
        tok_service_clear_staged(e->svc, uid);
        return result;
    }

    /* At the context end (and after a stop) the runtime does not stream its 1-2 leftover ids
     * (§2.6); they are in the final decode. Hand them on unless a limit already ended the text. */
    if (ti.have_final && ost == OUTPUT_MORE && ti.final_ids.len > ti.streamed.len &&
        (ti.streamed.len == 0 || !memcmp(ti.final_ids.v, ti.streamed.v, ti.streamed.len * sizeof *ti.streamed.v))) {
        size_t from = ti.streamed.len;
        take_piece(out, &ti, ti.final_ids.v + from, ti.final_ids.len - from, &ost);
    }
    output_finish(out);
    if (sink.tc)
        toolcall_finish(sink.tc);
    const idvec *gen = ti.have_final ? &ti.final_ids : &ti.streamed;
    size_t n_gen = gen->len;
    bool hit_end = start_pos + n_gen + 1 >= (size_t)m->max_positions;
    *done_reason = ost == OUTPUT_LIMIT ? "length" : ost == OUTPUT_STOP ? "stop" : hit_end ? "length" : "stop";
    bool eos = !stop_sent && !hit_end;
    double t_end = now_mono();
    if (ct) {
        pthread_mutex_lock(&e->turn.lock);
        mt->prompt_eval_count = (int)e->turn.diff_len; /* as the upstream computed it */
        pthread_mutex_unlock(&e->turn.lock);
    } else {
        mt->prompt_eval_count = (int)plan->diff.len;
    }
    mt->eval_count = (int)(ost == OUTPUT_MORE ? n_gen : output_ids_taken(out));
    /* the first piece comes after the prefill and two decode steps */
    double per_token = ti.streamed.len > 3 && ti.t_last > ti.t_first ? (ti.t_last - ti.t_first) / (double)(ti.streamed.len - 3) : 0;
    double prefill = (ti.t_first > 0 ? ti.t_first : t_end) - t_gen - 2 * per_token;
    if (prefill < 0)
        prefill = 0;
    mt->prompt_eval_ns = (uint64_t)(prefill * 1e9);
    double eval = (ti.t_last > 0 ? ti.t_last : t_end) - t_gen - prefill;
    mt->eval_ns = (uint64_t)((eval > 0 ? eval : 0) * 1e9);

    if (ct)
        compat_commit(e, j, ct, sink.content.data, eos);
    else
        session_commit_calls(&e->sess, plan, gen->v, n_gen, sink.content.data, sink.calls, sink.n_calls, eos);
    sink_free(&sink);
    output_free(out);
    iv_free(&ti.streamed);
    iv_free(&ti.final_ids);
    return TURN_OK;
}

/* ---------------------------------------------------------------- compatibility mode */

/* Plans a compat turn (docs/models.md, "Compatibility mode"): continue when the request is the held
 * conversation + one new user message (assistant replies compared as the session compares them),
 * else reset with the request's system prompt (or the manifest's) and send the last user message. */
static void compat_plan(const compat_session *c, const job *j, bool force_reset, compat_turn *ct)
{
    memset(ct, 0, sizeof *ct);
    const chat_message *msgs = j->messages;
    size_t n = j->kind == JOB_CHAT ? j->n_messages : 0;
    const char *system = j->manifest->system_prompt ? j->manifest->system_prompt : "";
    if (n && !strcmp(msgs[0].role, "system")) {
        system = msgs[0].content ? msgs[0].content : "";
        ct->first = 1;
    }
    ct->system = ct->held_system = system;
    ct->prompt = last_user_text(j);
    bool cont = !force_reset && c->valid && j->kind == JOB_CHAT && n - ct->first == c->n + 1 &&
                !strcmp(msgs[n - 1].role, "user") && !strcmp(system, c->system ? c->system : "");
    for (size_t i = 0; cont && i < c->n; i++) {
        const chat_message *m = &msgs[ct->first + i];
        const char *content = m->content ? m->content : "";
        cont = !strcmp(m->role, c->roles[i]) && !m->n_tool_calls;
        if (cont && !strcmp(m->role, "assistant")) {
            char *a = session_normalize_reply(content), *b = session_normalize_reply(c->contents[i]);
            cont = !strcmp(a, b);
            free(a);
            free(b);
        } else if (cont) {
            cont = !strcmp(content, c->contents[i]);
        }
    }
    ct->reset = !cont;
}

/* ---------------------------------------------------------------- the worker */

static void finish_job(engine *e, job *j)
{
    double ka = j->has_keep_alive ? j->keep_alive_s : e->keep_alive_s;
    pthread_mutex_lock(&e->status_lock);
    e->keep_alive_s = ka; /* sticks to the loaded model */
    e->running_job = false;
    e->expires_mono = now_mono() + (ka > 0 ? ka : 0);
    pthread_mutex_unlock(&e->status_lock);
    if (ka == 0)
        unload(e);
}

static void run_job(engine *e, job *j)
{
    char err[512];
    pthread_mutex_lock(&e->status_lock);
    e->running_job = true;
    pthread_mutex_unlock(&e->status_lock);
    if (!ensure_loaded(e, j->manifest, err, sizeof err)) {
        elog(e, "loading %s failed: %s", j->manifest->name, err);
        job_fail(j, 500, "failed to load model %s: %s", j->manifest->name, err);
        pthread_mutex_lock(&e->status_lock);
        e->running_job = false;
        pthread_mutex_unlock(&e->status_lock);
        return;
    }
    if (atomic_load(&j->cancelled) || atomic_load(&e->shutting_down)) {
        /* the client left while the model loaded: nothing to run (and no reset that would throw
         * away the conversation the runtime holds) */
        if (atomic_load(&e->shutting_down))
            job_fail(j, 503, "the server is shutting down");
        else
            job_fail(j, 499, "request canceled");
        finish_job(e, j);
        return;
    }
    double t_ready = now_mono();
    job_metrics mt = {.load_ns = (uint64_t)((t_ready - j->t_submit) * 1e9)};
    if (j->kind == JOB_LOAD) {
        mt.total_ns = (uint64_t)((now_mono() - j->t_submit) * 1e9);
        job_push(j, (job_event){.kind = JOB_EV_DONE, .done_reason = "load", .metrics = mt});
        finish_job(e, j);
        return;
    }

    if (j->manifest->upstream_url) { /* compatibility mode */
        const char *done = "stop";
        turn_result cr = TURN_FAILED;
        for (int attempt = 0; attempt < 2; attempt++) {
            compat_turn ct;
            compat_plan(&e->compat, j, attempt > 0 || e->plan_mode == PLAN_RESET, &ct);
            elog(e, "compatibility mode: %s", ct.reset ? "reset, sending the last user message" : "continuing");
            cr = run_turn(e, j, NULL, &ct, &mt, &done, err, sizeof err);
            if (cr != TURN_CONTEXT_FULL)
                break;
            elog(e, "the runtime reported a full context; resetting and retrying once");
            compat_clear(&e->compat);
            snprintf(err, sizeof err, "the context is full even after a reset");
        }
        if (cr == TURN_OK) {
            mt.total_ns = (uint64_t)((now_mono() - j->t_submit) * 1e9);
            job_push(j, (job_event){.kind = JOB_EV_DONE, .done_reason = done, .metrics = mt});
        } else {
            compat_clear(&e->compat);
            elog(e, "generation failed: %s", err);
            job_fail(j, 500, "%s", err);
            if (e->reload_needed)
                unload(e);
        }
        e->reload_needed = false;
        finish_job(e, j);
        return;
    }

    session_model sm = {.tok = e->tok,
                        .family = j->manifest->template_family,
                        .max_prefill = j->manifest->max_prefill,
                        .max_positions = j->manifest->max_positions,
                        .default_system = j->manifest->system_prompt};
    const char *done_reason = "stop";
    turn_result r = TURN_FAILED;
    for (int attempt = 0; attempt < 2; attempt++) {
        session_plan plan;
        bool ok = j->kind == JOB_RAW ? session_plan_raw(&sm, j->raw_prompt, &plan, err, sizeof err)
                                     : session_plan_chat_tools(&e->sess, &sm, j->messages, j->n_messages,
                                                               (const char *const *)j->tools_json, j->n_tools, j->think,
                                                               attempt > 0 ? PLAN_RESET_LAST_TURN : e->plan_mode, &plan,
                                                               err, sizeof err);
        if (!ok) {
            job_fail(j, 400, "%s", err);
            finish_job(e, j);
            return;
        }
        if (plan.dropped)
            elog(e, "dropped the %zu oldest messages to fit the context", plan.dropped);
        r = run_turn(e, j, &plan, NULL, &mt, &done_reason, err, sizeof err);
        session_plan_free(&plan);
        if (r != TURN_CONTEXT_FULL)
            break;
        elog(e, "the runtime reported a full context; resetting and retrying once");
        session_invalidate(&e->sess);
        snprintf(err, sizeof err, "the context is full even after a reset");
    }
    if (r == TURN_OK) {
        mt.total_ns = (uint64_t)((now_mono() - j->t_submit) * 1e9);
        job_push(j, (job_event){.kind = JOB_EV_DONE, .done_reason = done_reason, .metrics = mt});
    } else {
        session_invalidate(&e->sess);
        elog(e, "generation failed: %s", err);
        job_fail(j, 500, "%s", err);
    }
    finish_job(e, j);
}

static void *worker_main(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->queue_lock);
        while (!e->head && !atomic_load(&e->shutting_down) && !e->unload_requested) {
            pthread_mutex_lock(&e->status_lock);
            bool expiring = e->loaded && !e->running_job && e->keep_alive_s >= 0;
            double expires = e->expires_mono;
            pthread_mutex_unlock(&e->status_lock);
            if (expiring && now_mono() >= expires)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            double wait = expiring ? expires - now_mono() + 0.001 : 1.0;
            if (wait > 1.0)
                wait = 1.0;
            double t = (double)until.tv_nsec / 1e9 + (wait > 0 ? wait : 0);
            until.tv_sec += (time_t)t;
            until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
            pthread_cond_timedwait(&e->queue_cond, &e->queue_lock, &until);
        }
        if (atomic_load(&e->shutting_down)) {
            pthread_mutex_unlock(&e->queue_lock);
            break;
        }
        job *j = e->head;
        if (j) {
            e->head = j->next;
            if (!e->head)
                e->tail = NULL;
            e->queued--;
        }
        char *unload_name = e->unload_requested;
        e->unload_requested = NULL;
        pthread_mutex_unlock(&e->queue_lock);

        if (unload_name) {
            if (e->loaded && !strcmp(e->loaded->name, unload_name))
                unload(e);
            free(unload_name);
        }
        if (!j) {
            pthread_mutex_lock(&e->status_lock);
            bool expired = e->loaded && !e->running_job && e->keep_alive_s >= 0 && now_mono() >= e->expires_mono;
            pthread_mutex_unlock(&e->status_lock);
            if (expired)
                unload(e);
            continue;
        }
        if (atomic_load(&j->cancelled)) /* the client left while it waited */
            job_fail(j, 499, "request canceled");
        else
            run_job(e, j);
        job_unref(j);
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
    e->stall_timeout_s = cfg->stall_timeout_s > 0 ? cfg->stall_timeout_s : 120.0;
    e->plan_mode = cfg->reset_every_turn ? PLAN_RESET : PLAN_ANY;
    pthread_mutex_init(&e->queue_lock, NULL);
    pthread_cond_init(&e->queue_cond, NULL);
    pthread_mutex_init(&e->status_lock, NULL);
    pthread_mutex_init(&e->turn.lock, NULL);
    pthread_cond_init(&e->turn.cond, NULL);
    atomic_init(&e->runtime_died, false);
    atomic_init(&e->upstream_died, false);
    session_init(&e->sess);
    pthread_create(&e->worker, NULL, worker_main, e);
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
    pthread_join(e->worker, NULL);
    for (job *j = e->head; j;) {
        job *next = j->next;
        job_fail(j, 503, "the server is shutting down");
        job_unref(j);
        j = next;
    }
    unload(e);
    free(e->unload_requested);
    session_free(&e->sess);
    pthread_mutex_destroy(&e->queue_lock);
    pthread_cond_destroy(&e->queue_cond);
    pthread_mutex_destroy(&e->status_lock);
    pthread_mutex_destroy(&e->turn.lock);
    pthread_cond_destroy(&e->turn.cond);
    free(e);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

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
    job *j = xcalloc(1, sizeof *j);
    j->e = e;
    j->refs = 2; /* the API and the engine */
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    atomic_init(&j->cancelled, false);
    j->kind = req->kind;
    j->model = xstrdup(req->model);
    j->manifest = m;
    j->think = think;
    j->raw_prompt = dup_or_null(req->raw_prompt);
    j->messages = engine_copy_messages(req->messages, req->n_messages, req->kind == JOB_CHAT ? req->system_suffix : NULL,
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
    j->has_keep_alive = req->has_keep_alive;
    j->keep_alive_s = req->keep_alive_s;
    j->t_submit = now_mono();

    pthread_mutex_lock(&e->queue_lock);
    if (e->queued >= e->cfg.max_queue || atomic_load(&e->shutting_down)) {
        pthread_mutex_unlock(&e->queue_lock);
        j->refs = 1;
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
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_lock);
    *out = j;
    return 200;
}

bool engine_unload(engine *e, const char *model)
{
    const model_manifest *m = model_registry_find(e->cfg.models, model ? model : "");
    if (!m)
        return false;
    pthread_mutex_lock(&e->queue_lock);
    free(e->unload_requested);
    e->unload_requested = xstrdup(m->name);
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_lock);
    return true;
}

size_t engine_ps(engine *e, engine_loaded_model *out, size_t max)
{
    if (max == 0)
        return 0;
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
        double left = e->running_job ? e->keep_alive_s : e->expires_mono - now_mono();
        l->expires_at = time(NULL) + (time_t)(left > 0 ? left : 0);
        l->size = m->size;
        l->context_length = m->max_positions;
        l->manifest = m;
        n = 1;
    }
    pthread_mutex_unlock(&e->status_lock);
    return n;
}
