/* metrics: the counters and histograms of GET /metrics and their Prometheus text (see metrics.h). */
#include "api/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Time to first token: from a fast local answer to a cold load on a Pi (133 s) and more. */
static const double ttft_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
/* Time per generated token: 4 tok/s on a Pi is 0.27 s; the emulator's fast profile far less. */
static const double tpot_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5};

#define MAX_BOUNDS 16

typedef struct {
    const double *bounds;
    size_t n_bounds;
    _Atomic uint64_t buckets[MAX_BOUNDS + 1]; /* per bucket, not cumulative; the last one is +Inf */
    _Atomic uint64_t sum_ns;
} histogram;

typedef struct {
    char method[8];
    char route[64];
    unsigned status;
    uint64_t count;
} request_series;

struct api_metrics {
    pthread_mutex_t lock; /* requests */
    request_series *requests;
    size_t n_requests;
    uint64_t overflow; /* requests past METRICS_MAX_REQUEST_SERIES series */

    _Atomic uint64_t generations, prompt_evaluated, prompt_cached, generated;
    histogram ttft, tpot;
};

static void histogram_init(histogram *h, const double *bounds, size_t n)
{
    h->bounds = bounds;
    h->n_bounds = n;
    for (size_t i = 0; i <= MAX_BOUNDS; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_ns, 0);
}

static void histogram_observe(histogram *h, double seconds)
{
    if (!(seconds >= 0))
        seconds = 0;
    size_t i = 0;
    while (i < h->n_bounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->sum_ns, (uint64_t)(seconds * 1e9 + 0.5));
}

api_metrics *api_metrics_new(void)
{
    api_metrics *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->requests = xcalloc(METRICS_MAX_REQUEST_SERIES, sizeof *m->requests);
    atomic_init(&m->generations, 0);
    atomic_init(&m->prompt_evaluated, 0);
    atomic_init(&m->prompt_cached, 0);
    atomic_init(&m->generated, 0);
    histogram_init(&m->ttft, ttft_bounds, sizeof ttft_bounds / sizeof ttft_bounds[0]);
    histogram_init(&m->tpot, tpot_bounds, sizeof tpot_bounds / sizeof tpot_bounds[0]);
    return m;
}

void api_metrics_free(api_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->requests);
    free(m);
}

/* ------------------------------------------------------------------------------------ notes */

static const char *known_method(const char *method)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; method && i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(method, methods[i]))
            return methods[i];
    return "other";
}

void api_metrics_note_request(void *user, const char *method, const char *route, unsigned status)
{
    api_metrics *m = user;
    if (!m)
        return;
    method = known_method(method);
    if (!route || strlen(route) >= sizeof m->requests[0].route)
        route = "other";
    pthread_mutex_lock(&m->lock);
    request_series *found = NULL;
    for (size_t i = 0; i < m->n_requests && !found; i++) {
        request_series *s = &m->requests[i];
        if (s->status == status && !strcmp(s->method, method) && !strcmp(s->route, route))
            found = s;
    }
    if (!found && m->n_requests < METRICS_MAX_REQUEST_SERIES) {
        found = &m->requests[m->n_requests++];
        snprintf(found->method, sizeof found->method, "%s", method);
        snprintf(found->route, sizeof found->route, "%s", route);
        found->status = status;
    }
    if (found)
        found->count++;
    else
        m->overflow++; /* too many series: counted apart */
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_note_first_piece(api_metrics *m, double seconds)
{
    if (m)
        histogram_observe(&m->ttft, seconds);
}

void api_metrics_note_done(api_metrics *m, const job_event *done)
{
    if (!m || done->kind != JOB_EV_DONE || (done->done_reason && !strcmp(done->done_reason, "load")))
        return;
    const job_metrics *mt = &done->metrics;
    atomic_fetch_add(&m->generations, 1);
    int evaluated = mt->prompt_eval_count > 0 ? mt->prompt_eval_count : 0;
    int cached = mt->prompt_tokens > evaluated ? mt->prompt_tokens - evaluated : 0;
    atomic_fetch_add(&m->prompt_evaluated, (uint64_t)evaluated);
    atomic_fetch_add(&m->prompt_cached, (uint64_t)cached);
    if (mt->eval_count > 0) {
        atomic_fetch_add(&m->generated, (uint64_t)mt->eval_count);
        histogram_observe(&m->tpot, (double)mt->eval_ns / 1e9 / mt->eval_count);
    }
}

/* ------------------------------------------------------------------------------------ text */

/* A label value: backslash, double quote and newline escaped. */
static void put_label_value(strbuf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            sb_printf(out, "\\%c", *p);
        else if (*p == '\n')
            sb_puts(out, "\\n");
        else
            sb_putc(out, *p);
    }
}

static void put_header(strbuf *out, const char *name, const char *type, const char *help)
{
    sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A float as Prometheus reads it: 15 significant digits when they read back the same ("0.05", "10",
 * not "0.050000000000000003"), else 17. */
static void put_double(strbuf *out, double v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    sb_puts(out, buf);
}

static void put_histogram(strbuf *out, const char *name, const char *help, histogram *h)
{
    put_header(out, name, "histogram", help);
    uint64_t counts[MAX_BOUNDS + 1], total = 0;
    for (size_t i = 0; i <= h->n_bounds; i++)
        counts[i] = atomic_load(&h->buckets[i]);
    for (size_t i = 0; i < h->n_bounds; i++) {
        total += counts[i];
        sb_printf(out, "%s_bucket{le=\"", name);
        put_double(out, h->bounds[i]);
        sb_printf(out, "\"} %llu\n", (unsigned long long)total);
    }
    total += counts[h->n_bounds];
    sb_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum ", name, (unsigned long long)total, name);
    put_double(out, (double)atomic_load(&h->sum_ns) / 1e9);
    sb_printf(out, "\n%s_count %llu\n", name, (unsigned long long)total);
}

static void put_counter(strbuf *out, const char *name, const char *help, uint64_t v)
{
    put_header(out, name, "counter", help);
    sb_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void put_engine(strbuf *out, const engine_stats *st, const engine_loaded_model *loaded, size_t n)
{
    put_header(out, "axllama_queue_depth", "gauge", "Requests waiting for the model (OLLAMA_MAX_QUEUE caps them).");
    sb_printf(out, "axllama_queue_depth %zu\n", st->queued);
    put_header(out, "axllama_requests_running", "gauge", "Requests the model is working on (0 or 1).");
    sb_printf(out, "axllama_requests_running %d\n", st->running ? 1 : 0);

    /* one family after the other: Prometheus wants each family's lines together */
    static const rt_state states[] = {RT_STOPPED, RT_LOADING, RT_READY, RT_RESTARTING, RT_FAILED};
    put_header(out, "axllama_runtime_state", "gauge",
               "The model runtime's state: 1 for the current one (model \"\" when no model is loaded).");
    for (size_t k = 0; k < (n ? n : 1); k++) {
        const char *model = n ? loaded[k].name : st->loading;
        rt_state cur = n ? loaded[k].state : st->loading[0] ? RT_LOADING : RT_STOPPED;
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            sb_puts(out, "axllama_runtime_state{model=\"");
            put_label_value(out, model);
            sb_printf(out, "\",state=\"%s\"} %d\n", rt_state_name(states[i]), states[i] == cur ? 1 : 0);
        }
    }
    put_header(out, "axllama_runtime_load_progress", "gauge",
               "Load steps done over load steps of the loaded model (the runtime's progress bar; 1 once ready).");
    for (size_t k = 0; k < n; k++) {
        double progress = loaded[k].state == RT_READY ? 1
                          : loaded[k].load_total > 0  ? (double)loaded[k].load_step / loaded[k].load_total
                                                      : 0;
        sb_puts(out, "axllama_runtime_load_progress{model=\"");
        put_label_value(out, loaded[k].name);
        sb_puts(out, "\"} ");
        put_double(out, progress);
        sb_putc(out, '\n');
    }
    put_header(out, "axllama_model_loads_total", "counter", "Model loads, by result.");
    sb_printf(out, "axllama_model_loads_total{result=\"ok\"} %llu\n", (unsigned long long)st->loads_ok);
    sb_printf(out, "axllama_model_loads_total{result=\"failed\"} %llu\n", (unsigned long long)st->loads_failed);
    put_header(out, "axllama_model_load_duration_seconds", "summary",
               "How long model loads took (tokenizer, its service and the runtime until it answers).");
    sb_puts(out, "axllama_model_load_duration_seconds_sum ");
    put_double(out, st->load_seconds);
    sb_printf(out, "\naxllama_model_load_duration_seconds_count %llu\n",
              (unsigned long long)(st->loads_ok + st->loads_failed));
    put_header(out, "axllama_model_last_load_duration_seconds", "gauge", "How long the last model load took.");
    sb_puts(out, "axllama_model_last_load_duration_seconds ");
    put_double(out, st->last_load_seconds);
    sb_putc(out, '\n');
    put_counter(out, "axllama_runtime_restarts_total",
                "Runtime restarts after it died or hung (the supervisor's, every load together).", st->restarts);
}

void api_metrics_render(api_metrics *m, const engine_stats *stats, const engine_loaded_model *loaded, size_t n,
                        strbuf *out)
{
    put_header(out, "axllama_http_requests_total", "counter",
               "HTTP requests answered, by method, route and status (499: the client left first).");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_requests; i++) {
        const request_series *s = &m->requests[i];
        sb_printf(out, "axllama_http_requests_total{method=\"%s\",route=\"", s->method);
        put_label_value(out, s->route);
        sb_printf(out, "\",status=\"%u\"} %llu\n", s->status, (unsigned long long)s->count);
    }
    if (m->overflow)
        sb_printf(out, "axllama_http_requests_total{method=\"other\",route=\"other\",status=\"other\"} %llu\n",
                  (unsigned long long)m->overflow);
    pthread_mutex_unlock(&m->lock);

    put_counter(out, "axllama_generations_total", "Generations that ran to their end (loads not counted).",
                atomic_load(&m->generations));
    put_counter(out, "axllama_prompt_tokens_evaluated_total",
                "Prompt tokens the NPU evaluated (prefilled) for generations.", atomic_load(&m->prompt_evaluated));
    put_counter(out, "axllama_prompt_tokens_cached_total",
                "Prompt tokens the runtime's KV cache already held, so they were not evaluated again.",
                atomic_load(&m->prompt_cached));
    put_counter(out, "axllama_generated_tokens_total", "Tokens generated.", atomic_load(&m->generated));
    put_histogram(out, "axllama_time_to_first_token_seconds",
                  "From taking a generation request to its first piece of answer (queue and load included).", &m->ttft);
    put_histogram(out, "axllama_time_per_output_token_seconds", "Each generation's decode time per generated token.",
                  &m->tpot);
    put_engine(out, stats, loaded, n);
}
