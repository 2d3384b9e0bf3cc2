/* End-to-end tests of GET /health and GET /metrics (api/health.c) through `axllama serve` on
 * axllama-emu (fast profile): idle, loading with its progress, ready, a failed load, a runtime that
 * died and came back; the metrics of real requests (exact token counts against the replies, KV
 * reuse as cached tokens, the time to the first token, loads, restarts, refusals by route); the
 * Host and CORS rules the rest of the API follows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "serve_harness.h"

#include "server_fixture.h"

#include "chat_result.h"

/* A server with one model "m" (emulator args). */
static void start(h_server *s, const char *const *emu_args)
{
    h_server_dir(s);
    h_write_manifest(s->dir, "m", emu_args, NULL);
    bool started = h_server_start(s, NULL);
    current = *s;
    if (!started)
        fail_msg("the server did not start");
}

/* GET path with extra request headers (NULL-terminated "Name: value"). */
static h_http get_with_headers(const h_server *s, const char *path, const char *const *headers)
{
    h_http r = {0};
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    if (!r.body.data)
        sb_puts(&r.body, "");
    if (!r.headers.data)
        sb_puts(&r.headers, "");
    return r;
}

static void assert_health(h_server *s, long status, const char *body)
{
    h_http h = h_srv(s, "GET", "/health", NULL);
    if (h.status != status || strcmp(h.body.data, body))
        fail_msg("/health: %ld %s (wanted %ld %s)", h.status, h.body.data, status, body);
    assert_non_null(strstr(h.headers.data, "application/json"));
    h_http_free(&h);
}

/* The value of one exact series in the server's /metrics (-1 when it is not there). */
static double metric(h_server *s, const char *series)
{
    h_http h = h_srv(s, "GET", "/metrics", NULL);
    assert_int_equal(h.status, 200);
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = strstr(h.body.data, series); p; p = strstr(p + 1, series))
        if ((p == h.body.data || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    h_http_free(&h);
    return v;
}

static void test_idle_then_ready_and_the_metrics_of_two_turns(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    assert_health(&s, 200, "{\"status\":\"idle\"}");
    h_http head = h_srv(&s, "HEAD", "/health", NULL);
    assert_int_equal(head.status, 200);
    assert_string_equal(head.body.data, "");
    h_http_free(&head);
    assert_int_equal(metric(&s, "axllama_runtime_state{model=\"\",state=\"stopped\"}"), 1);

    chat_result r1 =
        post(&s, "/api/chat", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"First question\"}]}");
    assert_done(&r1, "stop");
    /* the second turn through the OpenAI API, whose usage tells what the KV cache supplied */
    h_http r2 = h_srv(&s, "POST", "/v1/chat/completions",
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"First question\"},"
                      "{\"role\":\"assistant\",\"content\":\"First question\"},{\"role\":\"user\",\"content\":"
                      "\"Second\"}]}");
    assert_int_equal(r2.status, 200);
    json_t *answer = json_loads(r2.body.data, 0, NULL);
    json_t *usage = json_object_get(answer, "usage");
    long prompt2 = num(usage, "prompt_tokens"), generated2 = num(usage, "completion_tokens");
    long cached2 = num(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    assert_true(cached2 > 0);
    json_decref(answer);
    h_http_free(&r2);
    assert_health(&s, 200, "{\"status\":\"ready\",\"model\":\"m:latest\"}");

    h_http m = h_srv(&s, "GET", "/metrics", NULL);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.headers.data, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    h_http_free(&m);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"200\"}"), 1);
    assert_int_equal(
        metric(&s, "axllama_http_requests_total{method=\"POST\",route=\"/v1/chat/completions\",status=\"200\"}"), 1);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"), 2);
    assert_int_equal(metric(&s, "axllama_generations_total"), 2);
    assert_int_equal(metric(&s, "axllama_prompt_tokens_evaluated_total"),
                     num(r1.last, "prompt_eval_count") + prompt2 - cached2);
    assert_int_equal(metric(&s, "axllama_prompt_tokens_cached_total"), cached2);
    assert_int_equal(metric(&s, "axllama_generated_tokens_total"), num(r1.last, "eval_count") + generated2);
    assert_int_equal(metric(&s, "axllama_time_to_first_token_seconds_count"), 2);
    assert_true(metric(&s, "axllama_time_to_first_token_seconds_sum") > 0);
    assert_int_equal(metric(&s, "axllama_time_per_output_token_seconds_count"), 2);
    assert_int_equal(metric(&s, "axllama_model_loads_total{result=\"ok\"}"), 1);
    assert_int_equal(metric(&s, "axllama_model_loads_total{result=\"failed\"}"), 0);
    assert_true(metric(&s, "axllama_model_load_duration_seconds_sum") > 0);
    assert_int_equal(metric(&s, "axllama_runtime_state{model=\"m:latest\",state=\"ready\"}"), 1);
    assert_int_equal(metric(&s, "axllama_runtime_load_progress{model=\"m:latest\"}"), 1);
    assert_int_equal(metric(&s, "axllama_queue_depth"), 0);
    assert_int_equal(metric(&s, "axllama_runtime_restarts_total"), 0);
    chat_free(&r1);
    h_server_stop(&s);
}

typedef struct {
    h_server *s;
    chat_result r;
} request_thread;

static void *run_request(void *arg)
{
    request_thread *t = arg;
    t->r = post(t->s, "/api/generate", "{\"model\":\"m\",\"prompt\":\"after load\",\"stream\":false}");
    return NULL;
}

static void test_loading_with_progress_is_503_then_ready(void **state)
{
    (void)state;
    h_server s;
    const char *args[] = {"--emu-init-seconds", "1.5", "--axmodel_num", "10", NULL};
    start(&s, args);
    request_thread t = {.s = &s};
    pthread_t th;
    pthread_create(&th, NULL, run_request, &t);
    bool saw_progress = false, saw_queue = false;
    for (double end = h_now() + 5; !saw_progress && h_now() < end; h_sleep(0.05)) {
        h_http h = h_srv(&s, "GET", "/health", NULL);
        if (h.status == 503 && strstr(h.body.data, "{\"status\":\"loading\",\"model\":\"m:latest\",\"progress\":\"") &&
            strstr(h.body.data, "/13\"}"))
            saw_progress = true;
        else if (h.status != 503 && h.status != 200)
            fail_msg("/health: %ld %s", h.status, h.body.data);
        h_http_free(&h);
        saw_queue |= metric(&s, "axllama_requests_running") == 1;
    }
    pthread_join(th, NULL);
    assert_true(saw_progress);
    assert_true(saw_queue);
    assert_int_equal(t.r.http.status, 200);
    assert_health(&s, 200, "{\"status\":\"ready\",\"model\":\"m:latest\"}");
    assert_true(metric(&s, "axllama_model_last_load_duration_seconds") >= 1.4);
    chat_free(&t.r);
    h_server_stop(&s);
}

static void test_a_failed_load_is_503_with_the_error_until_a_load_succeeds(void **state)
{
    (void)state;
    h_server s;
    h_server_dir(&s);
    const char *bad[] = {"--emu-exit-during-init", "2", NULL};
    h_write_manifest(s.dir, "bad", bad, NULL);
    h_write_manifest(s.dir, "good", NULL, NULL);
    assert_true(h_server_start(&s, NULL));
    current = s;
    chat_result r = post(&s, "/api/generate", "{\"model\":\"bad\",\"prompt\":\"x\"}");
    assert_int_equal(r.http.status, 500);
    chat_free(&r);
    h_http h = h_srv(&s, "GET", "/health", NULL);
    assert_int_equal(h.status, 503);
    json_t *body = json_loads(h.body.data, 0, NULL);
    assert_string_equal(str(body, "status"), "failed");
    assert_string_equal(str(body, "model"), "bad:latest");
    assert_non_null(strstr(str(body, "error"), "exit"));
    json_decref(body);
    h_http_free(&h);
    assert_int_equal(metric(&s, "axllama_model_loads_total{result=\"failed\"}"), 1);
    assert_int_equal(metric(&s, "axllama_runtime_state{model=\"\",state=\"stopped\"}"), 1);

    r = post(&s, "/api/generate", "{\"model\":\"good\",\"prompt\":\"y\",\"stream\":false}");
    assert_int_equal(r.http.status, 200);
    chat_free(&r);
    assert_health(&s, 200, "{\"status\":\"ready\",\"model\":\"good:latest\"}");
    assert_int_equal(metric(&s, "axllama_model_loads_total{result=\"ok\"}"), 1);
    h_server_stop(&s);
}

static void test_a_runtime_that_died_is_restarted_and_counted(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    chat_result r = post(&s, "/api/generate", "{\"model\":\"m\"}"); /* load */
    chat_free(&r);
    pid_t rt = h_runtime_pid(&s);
    assert_true(rt > 0);
    kill(rt, SIGKILL);
    bool back = false;
    for (double end = h_now() + 10; !back && h_now() < end; h_sleep(0.05)) {
        h_http h = h_srv(&s, "GET", "/health", NULL);
        pid_t now = h_runtime_pid(&s); /* once: a second look could find the killed one gone */
        back = h.status == 200 && now > 0 && now != rt;
        if (h.status == 503 && !strstr(h.body.data, "\"restarting\"") && !strstr(h.body.data, "\"loading\""))
            fail_msg("/health while the runtime comes back: %s", h.body.data);
        h_http_free(&h);
    }
    assert_true(back);
    assert_int_equal(metric(&s, "axllama_runtime_restarts_total"), 1);
    h_server_stop(&s);
}

static void test_refusals_are_counted_by_route(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    h_http h = h_srv(&s, "GET", "/nowhere", NULL);
    assert_int_equal(h.status, 404);
    h_http_free(&h);
    h = h_srv(&s, "POST", "/health", "{}");
    assert_int_equal(h.status, 405);
    h_http_free(&h);
    chat_result r = post(&s, "/api/chat", "{\"model\":\"nope\",\"messages\":[]}");
    assert_int_equal(r.http.status, 404);
    chat_free(&r);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"GET\",route=\"other\",status=\"404\"}"), 1);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"POST\",route=\"/health\",status=\"405\"}"), 1);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"POST\",route=\"/api/chat\",status=\"404\"}"), 1);
    h_server_stop(&s);
}

static void test_host_and_cors_rules_apply(void **state)
{
    (void)state;
    h_server s;
    start(&s, NULL);
    h_http h = get_with_headers(&s, "/health", (const char *const[]){"Host: evil.example", NULL});
    assert_int_equal(h.status, 403);
    h_http_free(&h);
    h = get_with_headers(&s, "/metrics", (const char *const[]){"Origin: http://evil.example", NULL});
    assert_int_equal(h.status, 403);
    h_http_free(&h);
    h = get_with_headers(&s, "/metrics", (const char *const[]){"Origin: http://localhost:3000", NULL});
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.headers.data, "Access-Control-Allow-Origin: http://localhost:3000"));
    h_http_free(&h);
    assert_int_equal(metric(&s, "axllama_http_requests_total{method=\"GET\",route=\"/health\",status=\"403\"}"), 1);
    h_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_then_ready_and_the_metrics_of_two_turns, stop_current),
        cmocka_unit_test_teardown(test_loading_with_progress_is_503_then_ready, stop_current),
        cmocka_unit_test_teardown(test_a_failed_load_is_503_with_the_error_until_a_load_succeeds, stop_current),
        cmocka_unit_test_teardown(test_a_runtime_that_died_is_restarted_and_counted, stop_current),
        cmocka_unit_test_teardown(test_refusals_are_counted_by_route, stop_current),
        cmocka_unit_test_teardown(test_host_and_cors_rules_apply, stop_current),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
