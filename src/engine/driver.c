/* driver: the runtime protocol and its quirks. See driver.h for what it handles and why.
 * (§ numbers: docs/spec/runtime-protocol.md.) */
#include "engine/driver.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "net/http_client.h"

#define DEFAULT_CALL_TIMEOUT_S 5.0
#define DEFAULT_BUSY_TIMEOUT_S 60.0
#define DEFAULT_STALL_TIMEOUT_S 120.0
#define DEFAULT_STOP_GRACE_S 30.0
#define BUSY_BACKOFF_FIRST_S 0.005     /* "llm is running": retry after 5 ms, doubling ... */
#define BUSY_BACKOFF_MAX_S 0.25        /* ... up to 250 ms: ~20 calls for a 300-token reset on a Pi */
#define RESET_CHUNK_TOKENS 128         /* a reset's system block is prefilled in chunks of 128 (§2.3) */
#define RESET_WAIT_SHARE 0.9           /* a generate refused after a reset waits this share of the prefill */
#define STOP_RESEND_S 0.5              /* a stop that lands before Run begins is lost (§2.7): repeat it */
#define WATCHDOG_POLL_S 1.0            /* while a run goes on: a poll a second, to catch what no decode tells */
#define AFTER_STOP_POLL_S 0.1          /* after a stop the end is near */
#define FIRST_POLL_AFTER_ENCODE_S 0.02 /* a context-full refusal ends the run right after /encode */
#define CONFIRM_POLL_FIRST_S 0.002     /* after the final decode, done comes within microseconds */
#define CONFIRM_POLL_MAX_S 0.2
#define CONTEXT_FULL_PREFIX "error: SetKVCache failed"
#define FINAL_DECODE_MIN_IDS 4 /* a decode of more ids than a piece (3) is the final one */

typedef struct observed {
    int32_t *ids;
    size_t n;
    struct observed *next;
} observed;

typedef struct out_event {
    run_event ev;
    struct out_event *next;
} out_event;

struct rt_driver {
    rt_driver_config cfg;
    http_client *http; /* worker only */
    unsigned long calls;
    unsigned long old_connects; /* of the clients of earlier runtimes */

    pthread_mutex_t lock;
    pthread_cond_t cond; /* monotonic; something was seen, or a failure */
    /* under lock: what the tokenizer traffic and the supervisor told us */
    bool listening;
    bool encode_seen;
    long diff_len;
    observed *head, *tail;
    drv_failure failure;
    char failure_msg[320];
    bool interrupted;

    /* the reset prefill (worker only): the fastest seen per chunk, and the one going on */
    double reset_chunk_s; /* 0: none seen yet */
    double reset_at;      /* when the last /api/reset was answered (0: no reset before this generate) */
    long reset_chunks;    /* its prefill in chunks (0: not known) */

    /* the run (worker only) */
    bool running;
    bool started;
    bool ended;
    run_event_kind end_kind;
    drv_failure end_failure;
    char end_error[320];
    idvec streamed;
    idvec final_ids;
    bool have_final;
    observed *maybe_final; /* a <= 3-id decode equal to everything streamed: final unless more come */
    bool confirming;       /* a final decode came: poll until done */
    double confirm_wait;
    bool stop_wanted;
    double stop_deadline, next_stop;
    double last_progress;
    double next_poll;
    bool saw_full_text;
    out_event *out_head, *out_tail;
};

static void free_observed(observed *o)
{
    while (o) {
        observed *next = o->next;
        free(o->ids);
        free(o);
        o = next;
    }
}

rt_driver *driver_new(const rt_driver_config *cfg)
{
    rt_driver *d = xcalloc(1, sizeof *d);
    d->cfg = *cfg;
    if (d->cfg.call_timeout_s <= 0)
        d->cfg.call_timeout_s = DEFAULT_CALL_TIMEOUT_S;
    if (d->cfg.busy_timeout_s <= 0)
        d->cfg.busy_timeout_s = DEFAULT_BUSY_TIMEOUT_S;
    if (d->cfg.stall_timeout_s <= 0)
        d->cfg.stall_timeout_s = DEFAULT_STALL_TIMEOUT_S;
    if (d->cfg.stop_grace_s <= 0)
        d->cfg.stop_grace_s = DEFAULT_STOP_GRACE_S;
    pthread_mutex_init(&d->lock, NULL);
    clock_cond_init(&d->cond);
    d->diff_len = -1;
    return d;
}

static void clear_out(rt_driver *d)
{
    for (out_event *o = d->out_head; o;) {
        out_event *next = o->next;
        run_event_free(&o->ev);
        free(o);
        o = next;
    }
    d->out_head = d->out_tail = NULL;
}

static void reset_run_state(rt_driver *d)
{
    clear_out(d);
    free_observed(d->maybe_final);
    d->maybe_final = NULL;
    iv_free(&d->streamed);
    iv_free(&d->final_ids);
    d->running = d->started = d->ended = d->have_final = d->confirming = false;
    d->stop_wanted = d->saw_full_text = false;
    d->end_kind = RUN_NONE;
    d->end_failure = DRV_FAIL_NONE;
    d->end_error[0] = '\0';
}

void driver_free(rt_driver *d)
{
    if (!d)
        return;
    reset_run_state(d);
    free_observed(d->head);
    http_client_free(d->http);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d);
}

void driver_attach(rt_driver *d, int port)
{
    if (d->http) {
        d->old_connects += http_client_connects(d->http);
        http_client_free(d->http);
        d->http = NULL;
    }
    if (port > 0) {
        char base[64];
        snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
        http_client_config hc = {.base_url = base,
                                 .timeout_s = d->cfg.call_timeout_s,
                                 .connect_timeout_s = d->cfg.call_timeout_s,
                                 .max_body = (size_t)4 << 20};
        d->http = http_client_new(&hc);
    }
    reset_run_state(d);
    d->reset_chunk_s = d->reset_at = 0; /* another runtime (model) may prefill at another pace */
    d->reset_chunks = 0;
    pthread_mutex_lock(&d->lock);
    d->listening = false;
    free_observed(d->head);
    d->head = d->tail = NULL;
    d->failure = DRV_FAIL_NONE;
    d->failure_msg[0] = '\0';
    pthread_mutex_unlock(&d->lock);
}

unsigned long driver_calls(const rt_driver *d)
{
    return d->calls;
}

unsigned long driver_connects(const rt_driver *d)
{
    return d->old_connects + http_client_connects(d->http);
}

/* ------------------------------------------------------------------ what the service saw */

void driver_saw_encode(rt_driver *d, long diff_len)
{
    pthread_mutex_lock(&d->lock);
    if (d->listening) {
        d->encode_seen = true;
        if (diff_len >= 0)
            d->diff_len = diff_len;
        pthread_cond_signal(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
}

void driver_saw_decode(rt_driver *d, const int32_t *ids, size_t n)
{
    pthread_mutex_lock(&d->lock);
    if (d->listening) {
        observed *o = xcalloc(1, sizeof *o);
        o->ids = xmalloc((n ? n : 1) * sizeof *ids);
        if (n)
            memcpy(o->ids, ids, n * sizeof *ids);
        o->n = n;
        if (d->tail)
            d->tail->next = o;
        else
            d->head = o;
        d->tail = o;
        pthread_cond_signal(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
}

void driver_fail_run(rt_driver *d, drv_failure kind, const char *message)
{
    pthread_mutex_lock(&d->lock);
    if (d->failure == DRV_FAIL_NONE) {
        d->failure = kind;
        snprintf(d->failure_msg, sizeof d->failure_msg, "%s", message ? message : "");
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

void driver_interrupt(rt_driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->interrupted = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ HTTP calls */

/* One call; the answer's body (if any) into *body (may be NULL). */
static drv_status runtime_call(rt_driver *d, const char *path, const char *json, strbuf *body)
{
    if (!d->http)
        return DRV_DOWN;
    d->calls++;
    http_reply r;
    http_call call = {.path = path, .body = json, .body_len = json ? strlen(json) : 0};
    http_client_call(d->http, &call, &r);
    drv_status st = DRV_DOWN;
    if (r.result == HTTPC_OK) {
        if (r.status == 200)
            st = DRV_OK;
        else if (r.status == 400 && r.body.data && strstr(r.body.data, "llm is running"))
            st = DRV_BUSY;
        else
            st = DRV_REJECTED;
    }
    if (body && r.body.len)
        sb_append(body, r.body.data, r.body.len);
    http_reply_free(&r);
    return st;
}

static drv_failure pending_failure(rt_driver *d, char *msg, size_t n)
{
    pthread_mutex_lock(&d->lock);
    drv_failure f = d->failure;
    if (f != DRV_FAIL_NONE && msg)
        snprintf(msg, n, "%s", d->failure_msg);
    pthread_mutex_unlock(&d->lock);
    return f;
}

/* Sleeps until deadline unless a failure is noted first (then false). */
static bool pause_unless_failed(rt_driver *d, double deadline)
{
    pthread_mutex_lock(&d->lock);
    while (d->failure == DRV_FAIL_NONE && clock_cond_wait_until(&d->cond, &d->lock, deadline))
        ;
    bool ok = d->failure == DRV_FAIL_NONE;
    pthread_mutex_unlock(&d->lock);
    return ok;
}

/* Sends one request, retrying "llm is running" with back-off until busy_timeout_s. quiet_until: a
 * time before which asking again is pointless (a reset prefill that takes that long; 0: none): the
 * first refusal waits for it, then the back-off starts over. *busy_answers: the refusals. */
static drv_status call_while_busy(rt_driver *d, const char *path, const char *json, double quiet_until,
                                  int *busy_answers)
{
    double end = deadline_in(d->cfg.busy_timeout_s), wait = BUSY_BACKOFF_FIRST_S;
    *busy_answers = 0;
    for (;;) {
        drv_status st = runtime_call(d, path, json, NULL);
        if (st != DRV_BUSY || deadline_passed(end))
            return st;
        ++*busy_answers;
        double next = clock_mono() + wait;
        if (quiet_until > next)
            next = quiet_until;
        else
            wait = wait * 2 < BUSY_BACKOFF_MAX_S ? wait * 2 : BUSY_BACKOFF_MAX_S;
        quiet_until = 0;
        if (!pause_unless_failed(d, next < end ? next : end))
            return st;
    }
}

drv_status driver_reset(rt_driver *d, const char *system_prompt, long prefill_tokens)
{
    json_t *body = json_object();
    if (system_prompt)
        json_object_set_new(body, "system_prompt", json_string(system_prompt));
    char *text = json_dumps(body, JSON_COMPACT);
    int busy;
    drv_status st = call_while_busy(d, "/api/reset", text, 0, &busy);
    free(text);
    json_decref(body);
    d->reset_at = st == DRV_OK ? clock_mono() : 0;
    d->reset_chunks = prefill_tokens > 0 ? (prefill_tokens + RESET_CHUNK_TOKENS - 1) / RESET_CHUNK_TOKENS : 0;
    return st;
}

/* The generate after a reset: the runtime refuses it until the reset's prefill is over (§2.3). With
 * the fastest pace seen so far, the first refusal waits out most of the prefill instead of asking
 * every 250 ms; a generate accepted only after refusals tells the pace (an upper bound). */
static drv_status generate_after_reset(rt_driver *d, const char *json)
{
    double quiet_until = 0;
    if (d->reset_at > 0 && d->reset_chunks > 0 && d->reset_chunk_s > 0)
        quiet_until = d->reset_at + RESET_WAIT_SHARE * (double)d->reset_chunks * d->reset_chunk_s;
    int busy;
    drv_status st = call_while_busy(d, "/api/generate", json, quiet_until, &busy);
    if (st == DRV_OK && busy > 0 && d->reset_at > 0 && d->reset_chunks > 0) {
        double per_chunk = (clock_mono() - d->reset_at) / (double)d->reset_chunks;
        if (d->reset_chunk_s <= 0 || per_chunk < d->reset_chunk_s)
            d->reset_chunk_s = per_chunk;
    }
    d->reset_at = 0;
    return st;
}

static void begin_listening(rt_driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->listening = true;
    d->encode_seen = false;
    d->diff_len = -1;
    free_observed(d->head);
    d->head = d->tail = NULL;
    pthread_mutex_unlock(&d->lock);
}

static void stop_listening(rt_driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->listening = false;
    free_observed(d->head);
    d->head = d->tail = NULL;
    d->failure = DRV_FAIL_NONE; /* it ended this run */
    d->failure_msg[0] = '\0';
    pthread_mutex_unlock(&d->lock);
}

drv_status driver_start(rt_driver *d, const char *prompt, const drv_sampling *s)
{
    reset_run_state(d);
    json_t *body = json_pack("{s:s}", "prompt", prompt ? prompt : "");
    /* the runtime applies them in this order: temperature, repetition_penalty, top-p, top-k */
    if (s && s->has_temperature)
        json_object_set_new(body, "temperature", json_real(s->temperature));
    if (s && s->has_repetition_penalty)
        json_object_set_new(body, "repetition_penalty", json_real(s->repetition_penalty));
    if (s && s->has_top_p)
        json_object_set_new(body, "top-p", json_real(s->top_p));
    if (s && s->has_top_k)
        json_object_set_new(body, "top-k", json_integer(s->top_k));
    char *text = json_dumps(body, JSON_COMPACT);
    begin_listening(d); /* before the call: the runtime may call /encode before we get the answer */
    drv_status st = generate_after_reset(d, text);
    free(text);
    json_decref(body);
    if (st != DRV_OK) {
        stop_listening(d);
        return st;
    }
    d->running = true;
    d->last_progress = clock_mono();
    d->next_poll = clock_mono() + WATCHDOG_POLL_S;
    return DRV_OK;
}

/* GET /api/generate_provider: *done, and whether it answered at all. */
static drv_status poll_runtime(rt_driver *d, bool *done)
{
    strbuf resp = {0};
    drv_status st = runtime_call(d, "/api/generate_provider", NULL, &resp);
    if (st == DRV_OK) {
        json_t *ans = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
        json_t *r = json_object_get(ans, "response"), *dn = json_object_get(ans, "done");
        if (json_is_string(r) && json_is_boolean(dn)) {
            *done = json_is_true(dn);
            if (strstr(json_string_value(r), CONTEXT_FULL_PREFIX))
                d->saw_full_text = true;
        } else {
            st = DRV_REJECTED;
        }
        json_decref(ans);
    }
    sb_free(&resp);
    return st;
}

void driver_request_stop(rt_driver *d)
{
    if (!d->running || d->stop_wanted)
        return;
    d->stop_wanted = true;
    runtime_call(d, "/api/stop", NULL, NULL);
    double now = clock_mono();
    d->stop_deadline = now + d->cfg.stop_grace_s;
    d->next_stop = now + STOP_RESEND_S;
    if (d->next_poll > now + AFTER_STOP_POLL_S)
        d->next_poll = now + AFTER_STOP_POLL_S;
}

void driver_end_run(rt_driver *d)
{
    stop_listening(d);
    reset_run_state(d);
}

/* ------------------------------------------------------------------ the run's events */

void run_event_free(run_event *ev)
{
    iv_free(&ev->ids);
}

static void emit(rt_driver *d, run_event ev)
{
    out_event *o = xcalloc(1, sizeof *o);
    o->ev = ev;
    if (d->out_tail)
        d->out_tail->next = o;
    else
        d->out_head = o;
    d->out_tail = o;
}

static void emit_piece(rt_driver *d, const int32_t *ids, size_t n)
{
    if (!n)
        return;
    iv_append(&d->streamed, ids, n);
    run_event ev = {.kind = RUN_PIECE};
    iv_append(&ev.ids, ids, n);
    emit(d, ev);
}

static void begin_confirming(rt_driver *d)
{
    d->confirming = true;
    d->confirm_wait = CONFIRM_POLL_FIRST_S;
    d->next_poll = clock_mono();
}

/* Classifies one decode call of the runtime (see driver.h): a piece, or the final decode. */
static void take_decode(rt_driver *d, observed *o)
{
    if (d->maybe_final) { /* something came after it: it was a piece */
        observed *p = d->maybe_final;
        d->maybe_final = NULL;
        d->have_final = false;
        emit_piece(d, p->ids, p->n);
        free_observed(p);
    }
    bool same_as_streamed =
        o->n == d->streamed.len && o->n > 0 && !memcmp(o->ids, d->streamed.v, o->n * sizeof *o->ids);
    if (o->n >= FINAL_DECODE_MIN_IDS || same_as_streamed) {
        iv_clear(&d->final_ids);
        iv_append(&d->final_ids, o->ids, o->n);
        d->have_final = true;
        begin_confirming(d);
        if (o->n < FINAL_DECODE_MIN_IDS) {
            d->maybe_final = o;
            return;
        }
    } else {
        emit_piece(d, o->ids, o->n);
    }
    free_observed(o);
}

/* Takes what the tokenizer service saw since the last call (under no lock on entry). */
static void take_seen(rt_driver *d)
{
    pthread_mutex_lock(&d->lock);
    observed *o = d->head;
    d->head = d->tail = NULL;
    bool encode_seen = d->encode_seen;
    pthread_mutex_unlock(&d->lock);
    double now = clock_mono();
    if (encode_seen && !d->started) { /* the runtime took the turn: its prefill begins */
        d->started = true;
        d->last_progress = now;
        if (d->next_poll > now + FIRST_POLL_AFTER_ENCODE_S)
            d->next_poll = now + FIRST_POLL_AFTER_ENCODE_S;
    }
    while (o) {
        observed *next = o->next;
        o->next = NULL;
        take_decode(d, o);
        d->last_progress = now;
        o = next;
    }
}

static void end_run(rt_driver *d, run_event_kind kind, drv_failure failure, const char *error)
{
    d->ended = true;
    d->end_kind = kind;
    d->end_failure = failure;
    snprintf(d->end_error, sizeof d->end_error, "%s", error ? error : "");
}

/* The runtime reported done after our run started: the pieces still unstreamed, then END. */
static void run_fail(rt_driver *d, drv_failure failure, const char *msg);

static void run_finish(rt_driver *d)
{
    take_seen(d); /* decode calls made before done may have come in after the last take */
    char msg[320];
    if (pending_failure(d, msg, sizeof msg) == DRV_FAIL_UPSTREAM) { /* a bad answer to the last decodes */
        run_fail(d, DRV_FAIL_UPSTREAM, msg);
        return;
    }
    bool context_full = d->streamed.len == 0 && !d->have_final;
    free_observed(d->maybe_final); /* nothing came after it: it was the final decode */
    d->maybe_final = NULL;
    /* the 1-2 ids never streamed at the context end or after a stop (§2.6) */
    if (d->have_final && d->final_ids.len > d->streamed.len &&
        (d->streamed.len == 0 || !memcmp(d->final_ids.v, d->streamed.v, d->streamed.len * sizeof *d->streamed.v))) {
        size_t from = d->streamed.len;
        emit_piece(d, d->final_ids.v + from, d->final_ids.len - from);
    }
    run_event ev = {.kind = RUN_END, .context_full = context_full};
    const idvec *gen = d->have_final ? &d->final_ids : &d->streamed;
    iv_append(&ev.ids, gen->v, gen->len);
    pthread_mutex_lock(&d->lock);
    ev.prefilled = d->diff_len;
    pthread_mutex_unlock(&d->lock);
    emit(d, ev);
    end_run(d, RUN_END, DRV_FAIL_NONE, NULL);
}

static void run_fail(rt_driver *d, drv_failure failure, const char *msg)
{
    run_event ev = {.kind = RUN_FAILED, .failure = failure};
    snprintf(ev.error, sizeof ev.error, "%s", msg);
    emit(d, ev);
    end_run(d, RUN_FAILED, failure, msg);
}

/* One round of the run's housekeeping: stop resends, the poll that is due, the time limits. */
static void housekeeping(rt_driver *d)
{
    double now = clock_mono();
    if (d->stop_wanted && now >= d->next_stop) {
        runtime_call(d, "/api/stop", NULL, NULL);
        d->next_stop = now + STOP_RESEND_S;
    }
    if (now >= d->next_poll) {
        bool done = false;
        drv_status st = poll_runtime(d, &done);
        now = clock_mono();
        /* done:false alone is no progress: a runtime whose NPU call hangs answers it forever */
        if (st == DRV_OK && done && (d->started || d->saw_full_text)) {
            run_finish(d);
            return;
        }
        if (d->confirming) {
            d->next_poll = now + d->confirm_wait;
            d->confirm_wait = d->confirm_wait * 2 < CONFIRM_POLL_MAX_S ? d->confirm_wait * 2 : CONFIRM_POLL_MAX_S;
        } else {
            d->next_poll = now + (d->stop_wanted ? AFTER_STOP_POLL_S : WATCHDOG_POLL_S);
        }
    }
    if (d->stop_wanted && now > d->stop_deadline) {
        run_fail(d, DRV_FAIL_STOP, "the runtime did not stop");
    } else if (now - d->last_progress > d->cfg.stall_timeout_s) {
        char msg[128];
        snprintf(msg, sizeof msg, "the runtime stopped answering (no progress for %.0f s)", d->cfg.stall_timeout_s);
        run_fail(d, DRV_FAIL_HUNG, msg);
    }
}

static bool pop_out(rt_driver *d, run_event *ev)
{
    out_event *o = d->out_head;
    if (!o)
        return false;
    d->out_head = o->next;
    if (!d->out_head)
        d->out_tail = NULL;
    *ev = o->ev;
    free(o);
    return true;
}

static double earliest(double a, double b)
{
    return a < b ? a : b;
}

run_event_kind driver_next(rt_driver *d, run_event *ev, double deadline)
{
    memset(ev, 0, sizeof *ev);
    for (;;) {
        if (pop_out(d, ev))
            return ev->kind;
        if (d->ended) {
            ev->kind = d->end_kind;
            ev->failure = d->end_failure;
            snprintf(ev->error, sizeof ev->error, "%s", d->end_error);
            return ev->kind;
        }
        if (!d->running) {
            ev->kind = RUN_FAILED;
            ev->failure = DRV_FAIL_NONE;
            snprintf(ev->error, sizeof ev->error, "no run is going");
            return ev->kind;
        }
        char msg[320];
        drv_failure f = pending_failure(d, msg, sizeof msg);
        if (f != DRV_FAIL_NONE) {
            run_fail(d, f, msg);
            continue;
        }
        take_seen(d);
        if (d->out_head)
            continue;
        housekeeping(d);
        if (d->out_head || d->ended)
            continue;
        if (deadline_passed(deadline))
            return RUN_NONE;
        double wake = earliest(deadline, d->next_poll);
        wake = earliest(wake, d->last_progress + d->cfg.stall_timeout_s + 0.001);
        if (d->stop_wanted)
            wake = earliest(earliest(wake, d->next_stop), d->stop_deadline + 0.001);
        pthread_mutex_lock(&d->lock);
        if (!d->head && d->failure == DRV_FAIL_NONE && !d->interrupted && !(d->encode_seen && !d->started))
            clock_cond_wait_until(&d->cond, &d->lock, wake);
        bool interrupted = d->interrupted;
        d->interrupted = false;
        pthread_mutex_unlock(&d->lock);
        if (interrupted)
            return RUN_NONE;
    }
}
