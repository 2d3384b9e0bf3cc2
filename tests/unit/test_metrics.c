/* Tests for api/metrics.c: requests by method, route and status (unusual methods, unrouted paths
 * and too many series folded), the histograms (cumulative buckets, a value on a bound, sum and
 * count), what a DONE event adds (evaluated vs cached prompt tokens, generated tokens, time per
 * token; a load adds nothing), the engine's values, label escaping, notes from many threads, and
 * that the whole text is well-formed Prometheus exposition format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"

static engine_stats no_stats;

static char *render(api_metrics *m, const engine_stats *st, const engine_loaded_model *loaded, size_t n)
{
    strbuf out = {0};
    api_metrics_render(m, st ? st : &no_stats, loaded, n, &out);
    return sb_steal(&out);
}

/* Whether text has this exact line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define assert_line(text, line)                             \
    do {                                                    \
        if (!has_line(text, line))                          \
            fail_msg("no line \"%s\" in:\n%s", line, text); \
    } while (0)

static void test_requests_by_method_route_and_status(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    api_metrics_note_request(m, "POST", "/api/chat", 200);
    api_metrics_note_request(m, "POST", "/api/chat", 200);
    api_metrics_note_request(m, "POST", "/api/chat", 400);
    api_metrics_note_request(m, "GET", "/v1/models/*", 404);
    api_metrics_note_request(m, "HEAD", "/", 200);
    char *t = render(m, NULL, NULL, 0);
    assert_line(t, "# TYPE axllama_http_requests_total counter");
    assert_line(t, "axllama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"200\"} 2");
    assert_line(t, "axllama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"400\"} 1");
    assert_line(t, "axllama_http_requests_total{method=\"GET\",route=\"/v1/models/*\",status=\"404\"} 1");
    assert_line(t, "axllama_http_requests_total{method=\"HEAD\",route=\"/\",status=\"200\"} 1");
    free(t);
    api_metrics_free(m);
}

static void test_unusual_methods_and_unrouted_paths_are_other(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    api_metrics_note_request(m, "BREW", NULL, 404);
    api_metrics_note_request(m, "GET", NULL, 404);
    api_metrics_note_request(m, NULL, "/api/tags", 405);
    char *t = render(m, NULL, NULL, 0);
    assert_line(t, "axllama_http_requests_total{method=\"other\",route=\"other\",status=\"404\"} 1");
    assert_line(t, "axllama_http_requests_total{method=\"GET\",route=\"other\",status=\"404\"} 1");
    assert_line(t, "axllama_http_requests_total{method=\"other\",route=\"/api/tags\",status=\"405\"} 1");
    free(t);
    api_metrics_free(m);
}

static void test_too_many_series_are_counted_together(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    for (unsigned i = 0; i < METRICS_MAX_REQUEST_SERIES + 5; i++)
        api_metrics_note_request(m, "GET", "/x", 100 + i);
    api_metrics_note_request(m, "GET", "/x", 100); /* an existing series still counts on its own */
    char *t = render(m, NULL, NULL, 0);
    assert_line(t, "axllama_http_requests_total{method=\"GET\",route=\"/x\",status=\"100\"} 2");
    assert_line(t, "axllama_http_requests_total{method=\"other\",route=\"other\",status=\"other\"} 5");
    size_t series = 0;
    for (const char *p = strstr(t, "\naxllama_http_requests_total{"); p;
         p = strstr(p + 1, "\naxllama_http_requests_total{"))
        series++;
    assert_int_equal(series, METRICS_MAX_REQUEST_SERIES + 1);
    free(t);
    api_metrics_free(m);
}

static void test_time_to_first_token_histogram(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    char *t = render(m, NULL, NULL, 0);
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(t, "axllama_time_to_first_token_seconds_count 0");
    free(t);
    api_metrics_note_first_piece(m, 0.05); /* on a bound: counted in it (le = less or equal) */
    api_metrics_note_first_piece(m, 0.3);
    api_metrics_note_first_piece(m, 400);
    api_metrics_note_first_piece(NULL, 1); /* no metrics: nothing, no crash */
    t = render(m, NULL, NULL, 0);
    assert_line(t, "# TYPE axllama_time_to_first_token_seconds histogram");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"0.05\"} 1");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"0.25\"} 1");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"0.5\"} 2");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"10\"} 2");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"300\"} 2");
    assert_line(t, "axllama_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3");
    assert_line(t, "axllama_time_to_first_token_seconds_sum 400.35");
    assert_line(t, "axllama_time_to_first_token_seconds_count 3");
    free(t);
    api_metrics_free(m);
}

static job_event done_event(const char *reason, int evaluated, int prompt, int generated, uint64_t eval_ns)
{
    return (job_event){
        .kind = JOB_EV_DONE,
        .done_reason = reason,
        .metrics = {
            .prompt_eval_count = evaluated, .prompt_tokens = prompt, .eval_count = generated, .eval_ns = eval_ns}};
}

static void test_done_counts_evaluated_cached_and_generated_tokens(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    job_event first = done_event("stop", 50, 50, 10, 2500000000u);   /* a reset: everything evaluated */
    job_event second = done_event("length", 12, 70, 4, 1000000000u); /* 58 came from the cache */
    job_event load = done_event("load", 0, 0, 0, 0);
    job_event error = {.kind = JOB_EV_ERROR};
    api_metrics_note_done(m, &first);
    api_metrics_note_done(m, &second);
    api_metrics_note_done(m, &load);
    api_metrics_note_done(m, &error);
    api_metrics_note_done(NULL, &first);
    char *t = render(m, NULL, NULL, 0);
    assert_line(t, "axllama_generations_total 2");
    assert_line(t, "axllama_prompt_tokens_evaluated_total 62");
    assert_line(t, "axllama_prompt_tokens_cached_total 58");
    assert_line(t, "axllama_generated_tokens_total 14");
    /* 0.25 s and 0.25 s per token */
    assert_line(t, "axllama_time_per_output_token_seconds_bucket{le=\"0.2\"} 0");
    assert_line(t, "axllama_time_per_output_token_seconds_bucket{le=\"0.3\"} 2");
    assert_line(t, "axllama_time_per_output_token_seconds_sum 0.5");
    assert_line(t, "axllama_time_per_output_token_seconds_count 2");
    free(t);
    api_metrics_free(m);
}

static void test_engine_values(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    engine_stats st = {.queued = 3,
                       .running = true,
                       .loads_ok = 4,
                       .loads_failed = 1,
                       .load_seconds = 10.5,
                       .last_load_seconds = 2.25,
                       .restarts = 2};
    engine_loaded_model lm = {.name = "qwen3:4b", .state = RT_LOADING, .load_step = 12, .load_total = 48};
    char *t = render(m, &st, &lm, 1);
    assert_line(t, "# TYPE axllama_queue_depth gauge");
    assert_line(t, "axllama_queue_depth 3");
    assert_line(t, "axllama_requests_running 1");
    assert_line(t, "axllama_runtime_state{model=\"qwen3:4b\",state=\"loading\"} 1");
    assert_line(t, "axllama_runtime_state{model=\"qwen3:4b\",state=\"ready\"} 0");
    assert_line(t, "axllama_runtime_state{model=\"qwen3:4b\",state=\"stopped\"} 0");
    assert_line(t, "axllama_runtime_load_progress{model=\"qwen3:4b\"} 0.25");
    assert_line(t, "axllama_model_loads_total{result=\"ok\"} 4");
    assert_line(t, "axllama_model_loads_total{result=\"failed\"} 1");
    assert_line(t, "# TYPE axllama_model_load_duration_seconds summary");
    assert_line(t, "axllama_model_load_duration_seconds_sum 10.5");
    assert_line(t, "axllama_model_load_duration_seconds_count 5");
    assert_line(t, "axllama_model_last_load_duration_seconds 2.25");
    assert_line(t, "axllama_runtime_restarts_total 2");
    free(t);

    /* nothing loaded: the runtime is stopped, model ""; a load before its runtime starts is loading */
    t = render(m, &no_stats, NULL, 0);
    assert_line(t, "axllama_runtime_state{model=\"\",state=\"stopped\"} 1");
    assert_line(t, "axllama_runtime_state{model=\"\",state=\"loading\"} 0");
    assert_null(strstr(t, "axllama_runtime_load_progress{"));
    free(t);
    engine_stats loading = {.loading = "qwen3:4b"};
    t = render(m, &loading, NULL, 0);
    assert_line(t, "axllama_runtime_state{model=\"qwen3:4b\",state=\"loading\"} 1");
    free(t);
    lm.state = RT_READY;
    t = render(m, &no_stats, &lm, 1);
    assert_line(t, "axllama_runtime_load_progress{model=\"qwen3:4b\"} 1");
    free(t);
    api_metrics_free(m);
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    api_metrics_note_request(m, "GET", "/a\"b\\c\nd", 200);
    engine_loaded_model lm = {.name = "we\"ird", .state = RT_READY};
    char *t = render(m, NULL, &lm, 1);
    assert_line(t, "axllama_http_requests_total{method=\"GET\",route=\"/a\\\"b\\\\c\\nd\",status=\"200\"} 1");
    assert_line(t, "axllama_runtime_state{model=\"we\\\"ird\",state=\"ready\"} 1");
    free(t);
    api_metrics_free(m);
}

/* The name of the family a sample belongs to, given the family's type. */
static bool sample_of_family(const char *sample, const char *family, const char *type)
{
    size_t n = strlen(family);
    if (strncmp(sample, family, n))
        return false;
    const char *rest = sample + n;
    if (!strcmp(rest, ""))
        return true;
    if (!strcmp(type, "histogram"))
        return !strcmp(rest, "_bucket") || !strcmp(rest, "_sum") || !strcmp(rest, "_count");
    if (!strcmp(type, "summary"))
        return !strcmp(rest, "_sum") || !strcmp(rest, "_count");
    return false;
}

static void test_text_is_well_formed_exposition_format(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    api_metrics_note_request(m, "GET", "/api/tags", 200);
    api_metrics_note_first_piece(m, 1.5);
    job_event done = done_event("stop", 5, 9, 3, 300000000u);
    api_metrics_note_done(m, &done);
    engine_loaded_model lm[2] = {{.name = "a", .state = RT_READY}, {.name = "b", .state = RT_RESTARTING}};
    engine_stats st = {.loads_ok = 1};
    char *t = render(m, &st, lm, 2);
    char *copy = strdup(t);
    char family[128] = "", type[32] = "";
    char *seen = calloc(1, 1);
    size_t n_samples = 0;
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "# HELP ", 7)) {
            continue;
        } else if (!strncmp(line, "# TYPE ", 7)) {
            assert_int_equal(sscanf(line + 7, "%127s %31s", family, type), 2);
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram") ||
                        !strcmp(type, "summary"));
            /* each family once */
            char key[160];
            snprintf(key, sizeof key, "|%s|", family);
            if (strstr(seen, key))
                fail_msg("family %s twice", family);
            seen = realloc(seen, strlen(seen) + strlen(key) + 1);
            strcat(seen, key);
            if (!strcmp(type, "counter"))
                assert_non_null(strstr(family, "_total"));
        } else {
            /* name{labels} value, the name of the current family */
            char name[128];
            size_t len = strcspn(line, "{ ");
            assert_true(len > 0 && len < sizeof name);
            memcpy(name, line, len);
            name[len] = '\0';
            if (!sample_of_family(name, family, type))
                fail_msg("sample %s outside its family (current: %s %s)", line, family, type);
            const char *value = strrchr(line, ' ') + 1;
            char *end;
            double v = strtod(value, &end);
            assert_true(*end == '\0' && end != value && !isnan(v));
            if (line[len] == '{')
                assert_true(strstr(line, "} ") == value - 2);
            n_samples++;
        }
    }
    assert_true(n_samples > 30);
    free(seen);
    free(copy);
    free(t);
    api_metrics_free(m);
}

#define THREADS 4
#define NOTES 5000

static void *note_many(void *arg)
{
    api_metrics *m = arg;
    job_event done = done_event("stop", 2, 3, 1, 1000000u);
    for (int i = 0; i < NOTES; i++) {
        api_metrics_note_request(m, "POST", "/api/chat", 200);
        api_metrics_note_first_piece(m, 0.01);
        api_metrics_note_done(m, &done);
    }
    return NULL;
}

static void test_notes_from_many_threads_all_count(void **state)
{
    (void)state;
    api_metrics *m = api_metrics_new();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, note_many, m);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = render(m, NULL, NULL, 0);
    char line[160];
    snprintf(line, sizeof line, "axllama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"200\"} %d",
             THREADS * NOTES);
    assert_line(text, line);
    snprintf(line, sizeof line, "axllama_time_to_first_token_seconds_count %d", THREADS * NOTES);
    assert_line(text, line);
    snprintf(line, sizeof line, "axllama_prompt_tokens_cached_total %d", THREADS * NOTES);
    assert_line(text, line);
    free(text);
    api_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_by_method_route_and_status),
        cmocka_unit_test(test_unusual_methods_and_unrouted_paths_are_other),
        cmocka_unit_test(test_too_many_series_are_counted_together),
        cmocka_unit_test(test_time_to_first_token_histogram),
        cmocka_unit_test(test_done_counts_evaluated_cached_and_generated_tokens),
        cmocka_unit_test(test_engine_values),
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_text_is_well_formed_exposition_format),
        cmocka_unit_test(test_notes_from_many_threads_all_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
